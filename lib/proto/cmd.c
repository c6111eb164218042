/*
 * cmd - command line pieces.
 *
 * Exports smtpx__cmd_params(), smtpx__cmd_ieq(), smtpx__cmd_iprefix(),
 * the xtext functions of cmd.h, and smtpx_xtext_encode() and
 * smtpx_xtext_decode() of <libsmtpx/server.h>.  Parsing happens in place in
 * a copy of the line owned by the caller; nothing is allocated.
 */
#include <string.h>

#include <libsmtpx/server.h>

#include "proto/addr.h"
#include "proto/cmd.h"

static int cmd_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int smtpx__cmd_ieq(const char *a, const char *b)
{
    while (*a != '\0' &&
           cmd_lower((unsigned char)*a) == cmd_lower((unsigned char)*b)) {
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
}

int smtpx__cmd_iprefix(const char *s, size_t len, const char *prefix)
{
    size_t i;

    for (i = 0; prefix[i] != '\0'; i++)
        if (i >= len || cmd_lower((unsigned char)s[i]) !=
                            cmd_lower((unsigned char)prefix[i]))
            return 0;
    return 1;
}

static int cmd_keyword_char(int c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (!first && c == '-');
}

/* cmd_value_ok - RFC 5321 esmtp-value: 1*(%d33-60 / %d62-126) */
static int cmd_value_ok(const char *v, int utf8)
{
    const unsigned char *p = (const unsigned char *)v;
    size_t len = strlen(v), i = 0;

    if (len == 0)
        return 0;
    while (i < len) {
        if (p[i] >= 33 && p[i] <= 126 && p[i] != '=') {
            i++;
        } else if (p[i] >= 0x80 && utf8) {
            size_t n = smtpx__utf8_seq(p + i, len - i);
            if (n == 0)
                return 0;
            i += n;
        } else {
            return 0;
        }
    }
    return 1;
}

int smtpx__cmd_params(char *s, int utf8, smtpx_param *out, size_t max,
                      size_t *n)
{
    *n = 0;
    for (;;) {
        char *kw, *eq;
        size_t i;

        while (*s == ' ')
            s++;
        if (*s == '\0')
            return 0;
        kw = s;
        while (*s != ' ' && *s != '\0')
            s++;
        if (*s == ' ')
            *s++ = '\0';
        eq = strchr(kw, '=');
        if (eq != NULL)
            *eq = '\0';
        for (i = 0; kw[i] != '\0'; i++)
            if (!cmd_keyword_char((unsigned char)kw[i], i == 0))
                return SMTPX__CMD_SYNTAX;
        if (i == 0)
            return SMTPX__CMD_SYNTAX;
        if (eq != NULL && !cmd_value_ok(eq + 1, utf8))
            return SMTPX__CMD_SYNTAX;
        if (*n == max)
            return SMTPX__CMD_TOO_MANY;
        out[*n].keyword = kw;
        out[*n].value = eq ? eq + 1 : NULL;
        (*n)++;
    }
}

static int cmd_upper_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

int smtpx__cmd_xtext_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p != '\0') {
        if (*p == '+') {
            if (!cmd_upper_hex(p[1]) || !cmd_upper_hex(p[2]))
                return 0;
            p += 3;
        } else if (*p >= 33 && *p <= 126 && *p != '=') {
            p++;
        } else {
            return 0;
        }
    }
    return 1;
}

int smtpx__cmd_name_ok(const char *name)
{
    size_t i, n;

    if (name == NULL)
        return 0;
    n = strlen(name);
    if (n == 0 || n > 255)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

const char *smtpx__named_name(const smtpx__named *t, size_t n, unsigned bit)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (t[i].bit == bit)
            return t[i].name;
    return NULL;
}

unsigned smtpx__named_bit(const smtpx__named *t, size_t n, const char *name)
{
    size_t i;

    if (name == NULL)
        return 0;
    for (i = 0; i < n; i++)
        if (smtpx__cmd_ieq(t[i].name, name))
            return t[i].bit;
    return 0;
}

static int cmd_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long smtpx__cmd_xtext_decode(const char *in, size_t len, char *out, size_t size)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '+') {
            int h, l;
            if (i + 2 >= len)
                return -1;
            h = cmd_hex(in[i + 1]);
            l = cmd_hex(in[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (unsigned char)(h * 16 + l);
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return -1;
        }
        if (n + 1 >= size)
            return -1;
        out[n++] = (char)c;
    }
    if (size == 0)
        return -1;
    out[n] = '\0';
    return (long)n;
}

long smtpx__cmd_xtext_encode(const char *in, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    if (size == 0)
        return -1;
    for (; *in != '\0'; in++) {
        unsigned char c = (unsigned char)*in;
        if (c >= 33 && c <= 126 && c != '+' && c != '=') {
            if (n + 1 >= size)
                goto full;
            out[n++] = (char)c;
        } else {
            if (n + 3 >= size)
                goto full;
            out[n++] = '+';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return (long)n;
full:
    out[0] = '\0';
    return -1;
}

smtpx_ssize smtpx_xtext_encode(const char *in, char *out, size_t size)
{
    if (in == NULL || out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    return smtpx__cmd_xtext_encode(in, out, size) < 0
               ? SMTPX_ERR_INVALID_ARGUMENT
               : (smtpx_ssize)strlen(out);
}

smtpx_ssize smtpx_xtext_decode(const char *in, size_t len, char *out,
                               size_t size)
{
    long n;

    if (in == NULL || out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    n = smtpx__cmd_xtext_decode(in, len, out, size);
    if (n < 0) {
        if (size > 0)
            out[0] = '\0';
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    return (smtpx_ssize)n;
}
