/*
 * tutil - helpers shared by the transcript harnesses.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/transcript.h"
#include "harness/tutil.h"

#include <libsmtpx/conf.h>

void tu_add(tu_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (b->p == NULL)
            abort();
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void tu_printf(tu_buf *b, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        tu_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

int tu_load(const char *path, tu_lines *f)
{
    FILE *fp = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;

    f->v = NULL;
    f->n = 0;
    if (fp == NULL)
        return -1;
    while ((len = getline(&line, &cap, fp)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        f->v = realloc(f->v, (f->n + 1) * sizeof(char *));
        if (f->v == NULL || (f->v[f->n] = strdup(line)) == NULL)
            abort();
        f->n++;
    }
    free(line);
    fclose(fp);
    return 0;
}

void tu_unload(tu_lines *f)
{
    size_t i;

    for (i = 0; i < f->n; i++)
        free(f->v[i]);
    free(f->v);
    f->v = NULL;
    f->n = 0;
}

size_t tu_unescape(const char *in, char *out)
{
    size_t n = 0;

    while (*in != '\0') {
        if (*in == '\\' && in[1] != '\0') {
            in++;
            switch (*in) {
            case 'r':
                out[n++] = '\r';
                break;
            case 'n':
                out[n++] = '\n';
                break;
            case 't':
                out[n++] = '\t';
                break;
            case 's':
                out[n++] = ' ';
                break;
            case 'x': {
                char hex[3] = {in[1], in[1] ? in[2] : 0, 0};
                out[n++] = (char)strtol(hex, NULL, 16);
                in += hex[1] ? 2 : hex[0] ? 1 : 0;
                break;
            }
            default:
                out[n++] = *in;
            }
            in++;
        } else {
            out[n++] = *in++;
        }
    }
    return n;
}

void tu_unescape_add(tu_buf *b, const char *in)
{
    char *tmp = malloc(strlen(in) + 1);

    if (tmp == NULL)
        abort();
    tu_add(b, tmp, tu_unescape(in, tmp));
    free(tmp);
}

void tu_feeder_init(tu_feeder *f, int mode, size_t arg, uint32_t salt,
                    unsigned maxpiece)
{
    memset(f, 0, sizeof(*f));
    f->mode = mode;
    f->arg = arg;
    f->rng = (uint32_t)arg * 2654435761u + salt;
    f->maxpiece = maxpiece ? maxpiece : 1;
}

void tu_feed(tu_feeder *f, const char *p, size_t n,
             void (*recv)(void *ctx, const uint8_t *p, size_t n), void *ctx)
{
    const uint8_t *b = (const uint8_t *)p;
    size_t i, k;

    switch (f->mode) {
    case TR_BYTES:
        for (i = 0; i < n; i++)
            recv(ctx, b + i, 1);
        break;
    case TR_SPLIT:
        if (f->arg > f->fed && f->arg < f->fed + n) {
            k = f->arg - f->fed;
            recv(ctx, b, k);
            recv(ctx, b + k, n - k);
        } else {
            recv(ctx, b, n);
        }
        break;
    case TR_RANDOM:
        for (i = 0; i < n; i += k) {
            f->rng = f->rng * 1103515245u + 12345u;
            k = 1 + (f->rng >> 16) % f->maxpiece;
            if (k > n - i)
                k = n - i;
            recv(ctx, b + i, k);
        }
        break;
    default:
        recv(ctx, b, n);
    }
    f->fed += n;
}

int tu_logdiff(const char *want, const char *got, char *msg, size_t msgsize)
{
    const char *pa = want, *pb = got;
    size_t line = 1;

    if (strcmp(want, got) == 0)
        return 0;
    while (*pa && *pa == *pb) {
        if (*pa == '\n')
            line++;
        pa++;
        pb++;
    }
    while (pa > want && pa[-1] != '\n')
        pa--, pb--;
    snprintf(msg, msgsize,
             "log line %zu differs:\n  expected: %.*s\n  got:      %.*s", line,
             (int)strcspn(pa, "\n"), pa, (int)strcspn(pb, "\n"), pb);
    return -1;
}

int tu_limit_id(const char *name)
{
    int i;

    for (i = 0; i < SMTPX_LIMIT_COUNT; i++)
        if (strcmp(smtpx_limit_name((smtpx_limit)i), name) == 0)
            return i;
    return -1;
}

int tu_timeout_id(const char *name)
{
    int i;

    for (i = 0; i < SMTPX_TIMEOUT_COUNT; i++)
        if (strcmp(smtpx_timeout_name((smtpx_timeout)i), name) == 0)
            return i;
    return -1;
}

void tu_upper(char *out, size_t size, const char *s)
{
    size_t i;

    for (i = 0; i + 1 < size && s[i] != '\0'; i++)
        out[i] = (char)toupper((unsigned char)s[i]);
    out[i] = '\0';
}
