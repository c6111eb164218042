/*
 * tutil - helpers for the transcript harness.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/tutil.h"

#include <libsmtpx/conf.h>

/* tu_grow - room for n more octets and a NUL */
static void tu_grow(tu_buf *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 256;

    if (b->len + n + 1 <= b->cap)
        return;
    while (cap < b->len + n + 1)
        cap *= 2;
    b->p = realloc(b->p, cap);
    if (b->p == NULL)
        abort();
    b->cap = cap;
}

void tu_add(tu_buf *b, const void *p, size_t n)
{
    tu_grow(b, n);
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void tu_vprintf(tu_buf *b, const char *fmt, va_list ap)
{
    va_list again;
    int n;

    va_copy(again, ap);
    n = vsnprintf(NULL, 0, fmt, again);
    va_end(again);
    if (n <= 0)
        return;
    tu_grow(b, (size_t)n);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void tu_printf(tu_buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tu_vprintf(b, fmt, ap);
    va_end(ap);
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

void tu_escape_add(tu_buf *b, const void *p, size_t n)
{
    const unsigned char *u = p;
    size_t i;

    for (i = 0; i < n; i++) {
        char tmp[8];
        if (u[i] == '\r')
            tu_add(b, "\\r", 2);
        else if (u[i] == '\n')
            tu_add(b, "\\n", 2);
        else if (u[i] == '\t')
            tu_add(b, "\\t", 2);
        else if (u[i] == '\\')
            tu_add(b, "\\\\", 2);
        else if (u[i] < 0x20 || u[i] >= 0x7f) {
            snprintf(tmp, sizeof(tmp), "\\x%02X", u[i]);
            tu_add(b, tmp, 4);
        } else {
            tu_add(b, u + i, 1);
        }
    }
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

/* tu_name - the name of number i in a table, NULL past its end */
static const char *tu_name(int table, int i)
{
    switch (table) {
    case TU_LIMIT:
        return smtpx_limit_name((smtpx_limit)i);
    case TU_TIMEOUT:
        return smtpx_timeout_name((smtpx_timeout)i);
    case TU_POLICY:
        return smtpx_policy_name((smtpx_policy)i);
    default:
        return NULL;
    }
}

int tu_id(int table, const char *name)
{
    const char *n;
    int i;

    for (i = 0; (n = tu_name(table, i)) != NULL; i++)
        if (strcmp(n, name) == 0)
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
