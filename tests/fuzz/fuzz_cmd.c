/*
 * fuzz_cmd - the ESMTP parameter parser (RFC 5321 4.1.2), the xtext check
 * (RFC 3461 4) and the small word helpers of cmd.h, each against a plain
 * reference written from the grammar.
 *
 * The first octet chooses UTF-8 and the most parameters; the rest, cut at
 * its first NUL, is the parameter text.  A parse that succeeds gives at
 * most that many parameters, each an esmtp-keyword with an optional
 * esmtp-value, pointing into the text, in order, and re-joining them gives
 * back the text's words; a text the reference finds well-formed parses.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/addr.h"
#include "proto/cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* ref_xtext - RFC 3461 4: xchar (33-126 but "+" and "=") or "+" HEXCHAR
 * HEXCHAR, upper-case hex */
static int ref_xtext(const char *s)
{
    size_t i, n = strlen(s);

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            int k;
            for (k = 1; k <= 2; k++) {
                char h = i + (size_t)k < n ? s[i + (size_t)k] : '\0';
                if (!((h >= '0' && h <= '9') || (h >= 'A' && h <= 'F')))
                    return 0;
            }
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return 0;
        }
    }
    return 1;
}

/* ref_value - esmtp-value: 1*(%d33-60 / %d62-126), or UTF-8 when allowed */
static int ref_value(const char *v, size_t n, int utf8)
{
    size_t i = 0;

    if (n == 0)
        return 0;
    while (i < n) {
        unsigned char c = (unsigned char)v[i];
        if (c >= 33 && c <= 126 && c != '=') {
            i++;
        } else if (c >= 0x80 && utf8) {
            size_t k = smtpx__utf8_seq((const unsigned char *)v + i, n - i);
            if (k == 0)
                return 0;
            i += k;
        } else {
            return 0;
        }
    }
    return 1;
}

/* ref_params - 0 if every space-separated word is keyword[=value] */
static int ref_params(const char *s, int utf8, size_t max)
{
    size_t count = 0;

    for (;;) {
        const char *w, *eq;
        size_t n, k;

        while (*s == ' ')
            s++;
        if (*s == '\0')
            return 0;
        w = s;
        n = strcspn(w, " ");
        s += n;
        eq = memchr(w, '=', n);
        k = eq ? (size_t)(eq - w) : n;
        if (k == 0 || !is_alnum((unsigned char)w[0]))
            return SMTPX__CMD_SYNTAX;
        for (size_t i = 1; i < k; i++)
            if (!is_alnum((unsigned char)w[i]) && w[i] != '-')
                return SMTPX__CMD_SYNTAX;
        if (eq && !ref_value(eq + 1, n - k - 1, utf8))
            return SMTPX__CMD_SYNTAX;
        if (count++ == max)
            return SMTPX__CMD_TOO_MANY;
    }
}

static int ref_name(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 255)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    smtpx_param params[16];
    size_t max, n = 0, i, len, half;
    char *text, *orig;
    int utf8, rc, ref;

    if (size < 1)
        return 0;
    utf8 = data[0] & 1;
    max = (size_t)(data[0] >> 1) % 17;
    len = strnlen((const char *)data + 1, size - 1);
    text = malloc(len + 1);
    orig = malloc(len + 1);
    if (text == NULL || orig == NULL)
        abort();
    memcpy(text, data + 1, len);
    text[len] = '\0';
    memcpy(orig, text, len + 1);

    if (smtpx__cmd_xtext_ok(text) != ref_xtext(text))
        abort();
    if (smtpx__cmd_name_ok(text) != ref_name(text))
        abort();
    half = len / 2;
    {
        char *a = strndup(text, half), *b = strdup(text + half);
        int same = strlen(a) == strlen(b);
        if (a == NULL || b == NULL)
            abort();
        for (i = 0; same && a[i] != '\0'; i++)
            same = lower((unsigned char)a[i]) == lower((unsigned char)b[i]);
        if (smtpx__cmd_ieq(a, b) != same || smtpx__cmd_ieq(a, a) != 1)
            abort();
        if (smtpx__cmd_iprefix(text, len, a) != 1)
            abort();
        if (smtpx__cmd_iprefix(a, strlen(a), text) != (half == len))
            abort();
        free(a);
        free(b);
    }

    ref = ref_params(orig, utf8, max);
    rc = smtpx__cmd_params(text, utf8, params, max, &n);
    if (rc != ref)
        abort();
    if (n > max)
        abort();
    if (rc == 0) {
        const char *prev = text;
        char *words = malloc(len + 1);
        size_t wl = 0;

        if (words == NULL)
            abort();
        for (i = 0; i < n; i++) {
            const char *kw = params[i].keyword, *v = params[i].value;
            if (kw < prev || kw >= text + len || kw[0] == '\0')
                abort();
            if (v != NULL && (v != kw + strlen(kw) + 1 || v[0] == '\0' ||
                              !ref_value(v, strlen(v), utf8)))
                abort();
            if (v != NULL && smtpx__cmd_xtext_ok(v) != ref_xtext(v))
                abort();
            prev = kw + 1;
            if (wl > 0)
                words[wl++] = ' ';
            memcpy(words + wl, kw, strlen(kw));
            wl += strlen(kw);
            if (v != NULL) {
                words[wl++] = '=';
                memcpy(words + wl, v, strlen(v));
                wl += strlen(v);
            }
        }
        words[wl] = '\0';
        /* The words of the original text, single-spaced. */
        {
            char *norm = malloc(len + 1), *w, *save = NULL;
            size_t nl = 0;
            if (norm == NULL)
                abort();
            for (w = strtok_r(orig, " ", &save); w != NULL;
                 w = strtok_r(NULL, " ", &save)) {
                if (nl > 0)
                    norm[nl++] = ' ';
                memcpy(norm + nl, w, strlen(w));
                nl += strlen(w);
            }
            norm[nl] = '\0';
            if (strcmp(norm, words) != 0)
                abort();
            free(norm);
        }
        free(words);
    }
    free(text);
    free(orig);
    return 0;
}
