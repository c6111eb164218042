/*
 * fields - header fields of a block held in memory (RFC 5322 2.2), the
 * end of a message's header, the trace fields on top of it, and the two
 * values closing the loop needs from a header: a message id (RFC 5322
 * 3.6.4) and a mailbox (Disposition-Notification-To, RFC 8098 2.1).
 *
 * Exports the smtpx__fields_*, smtpx__header_end(), smtpx__trace_end(),
 * smtpx__msgid() and smtpx__mailbox() functions of fields.h.
 *
 * Invariants: nothing is read past the length given; every value written
 * is NUL-terminated within its size; nothing is allocated.
 */
#include <string.h>
#include <strings.h>

#include "mta/fields.h"

static int fields_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* fields_line - the line at p (without its CRLF or LF) and where the next
 * one starts */
static const char *fields_line(const char *p, const char *end, size_t *len)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *next = nl != NULL ? nl + 1 : end;
    size_t n = (size_t)((nl != NULL ? nl : end) - p);

    if (n > 0 && p[n - 1] == '\r')
        n--;
    *len = n;
    return next;
}

/* fields_name_ok - a field name: printable ASCII but ':' (RFC 5322 3.6.8),
 * with the white space RFC 5322 4.5.3 lets stand before the colon cut */
static int fields_name_ok(const char *name, size_t *len)
{
    size_t i, n = *len;

    while (n > 0 && fields_wsp(name[n - 1]))
        n--;
    if (n == 0)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)name[i] < 33 || (unsigned char)name[i] > 126)
            return 0;
    *len = n;
    return 1;
}

/* fields_trim - cut the white space around value[0..n) in place */
static void fields_trim(char *value, size_t n)
{
    size_t s = 0;

    while (n > 0 && fields_wsp(value[n - 1]))
        n--;
    while (s < n && fields_wsp(value[s]))
        s++;
    memmove(value, value + s, n - s);
    value[n - s] = '\0';
}

int smtpx__fields_next(smtpx__fields *f, const char **name, size_t *name_len,
                       char *value, size_t size)
{
    const char *line, *colon, *next;
    size_t len, n = 0, i;
    int long_value = 0;

    if (size > 0)
        value[0] = '\0';
    if (f->p >= f->end)
        return SMTPX__FIELD_END;
    line = f->p;
    next = fields_line(line, f->end, &len);
    f->p = next;
    if (len == 0)
        return SMTPX__FIELD_END;
    colon = memchr(line, ':', len);
    if (fields_wsp(line[0]) || colon == NULL)
        return SMTPX__FIELD_BAD;
    *name = line;
    *name_len = (size_t)(colon - line);
    if (!fields_name_ok(line, name_len)) {
        /* Its continuation lines belong to it. */
        while (f->p < f->end && fields_wsp(*f->p))
            f->p = fields_line(f->p, f->end, &len);
        return SMTPX__FIELD_BAD;
    }
    len -= (size_t)(colon + 1 - line);
    line = colon + 1;
    for (;;) {
        for (i = 0; i < len; i++) {
            unsigned char c = (unsigned char)line[i];
            if (n + 1 >= size) {
                long_value = 1;
                break;
            }
            value[n++] = c < 0x20 && c != '\t' ? ' ' : (char)c;
        }
        if (f->p >= f->end || !fields_wsp(*f->p))
            break;
        /* Unfolding removes the line break only (RFC 5322 2.2.3). */
        line = f->p;
        f->p = fields_line(line, f->end, &len);
    }
    if (size == 0)
        return SMTPX__FIELD_LONG;
    value[n] = '\0';
    if (long_value) {
        value[0] = '\0';
        return SMTPX__FIELD_LONG;
    }
    fields_trim(value, n);
    return SMTPX__FIELD_OK;
}

int smtpx__fields_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

size_t smtpx__header_end(const char *buf, size_t len, size_t *scan)
{
    size_t pos = *scan;

    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n;

        if (nl == NULL)
            break;
        n = (size_t)(nl - (buf + pos));
        if (n == 0 || (n == 1 && buf[pos] == '\r'))
            return (size_t)(nl + 1 - buf);
        pos = (size_t)(nl + 1 - buf);
    }
    *scan = pos;
    return 0;
}

/* The fields a server or a delivery agent adds on top (RFC 5321 4.4; RFC
 * 8601; RFC 7208 9.1; RFC 8617), and common ones that act the same. */
static const char *const fields_trace[] = {
    "Return-Path",
    "Received",
    "X-Received",
    "Delivered-To",
    "X-Original-To",
    "Authentication-Results",
    "Received-SPF",
    "ARC-Seal",
    "ARC-Message-Signature",
    "ARC-Authentication-Results",
};

static int fields_is_trace(const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    size_t n, i;

    if (colon == NULL)
        return 0;
    n = (size_t)(colon - line);
    if (!fields_name_ok(line, &n))
        return 0;
    for (i = 0; i < sizeof(fields_trace) / sizeof(fields_trace[0]); i++)
        if (smtpx__fields_is(line, n, fields_trace[i]))
            return 1;
    return 0;
}

size_t smtpx__trace_end(const char *hdr, size_t len)
{
    const char *p = hdr, *end = hdr + len;

    while (p < end) {
        size_t n;
        const char *next = fields_line(p, end, &n);

        if (n == 0 || !fields_is_trace(p, n))
            break;
        p = next;
        while (p < end && fields_wsp(*p))
            p = fields_line(p, end, &n);
    }
    return (size_t)(p - hdr);
}

/* fields_skip_cfws - white space and comments (nested, with quoted
 * pairs, RFC 5322 3.2.2) */
static const char *fields_skip_cfws(const char *s)
{
    for (;;) {
        int depth = 0;

        while (fields_wsp(*s))
            s++;
        if (*s != '(')
            return s;
        do {
            if (*s == '\\' && s[1] != '\0')
                s++;
            else if (*s == '(')
                depth++;
            else if (*s == ')')
                depth--;
            s++;
        } while (*s != '\0' && depth > 0);
    }
}

/* fields_copy - an id or an address into out: printable ASCII but white
 * space and angle brackets; its length or -1 */
static long fields_copy(const char *s, size_t n, char *out, size_t size)
{
    size_t i;

    if (n == 0 || n >= size)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 32 || c >= 127 || c == '<' || c == '>')
            return -1;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return (long)n;
}

long smtpx__msgid(const char *value, char *out, size_t size)
{
    const char *s = fields_skip_cfws(value), *e;

    if (size > 0)
        out[0] = '\0';
    if (*s == '<') {
        e = strchr(++s, '>');
        if (e == NULL)
            return -1;
        return fields_copy(s, (size_t)(e - s), out, size);
    }
    /* Broken mailers write the id without its brackets: one token with
     * an '@' is taken as it is. */
    e = s + strcspn(s, " \t(");
    if (memchr(s, '@', (size_t)(e - s)) == NULL)
        return -1;
    if (*fields_skip_cfws(e) != '\0')
        return -1;
    return fields_copy(s, (size_t)(e - s), out, size);
}

long smtpx__mailbox(const char *value, char *out, size_t size)
{
    const char *s = value, *lt = NULL, *e;
    long n;

    if (size > 0)
        out[0] = '\0';
    /* The first '<' outside a quoted string or a comment, before the
     * first ',' (the end of the first mailbox). */
    while (*s != '\0' && *s != ',' && lt == NULL) {
        if (*s == '"') {
            for (s++; *s != '\0' && *s != '"'; s++)
                if (*s == '\\' && s[1] != '\0')
                    s++;
            if (*s == '"')
                s++;
        } else if (*s == '(') {
            s = fields_skip_cfws(s);
        } else if (*s == '<') {
            lt = s;
        } else {
            s++;
        }
    }
    if (lt != NULL) {
        e = strchr(lt + 1, '>');
        if (e == NULL)
            return -1;
        s = lt + 1;
    } else {
        s = fields_skip_cfws(value);
        e = s + strcspn(s, " \t(,");
    }
    n = fields_copy(s, (size_t)(e - s), out, size);
    if (n < 0 || strchr(out, '@') == NULL) {
        if (size > 0)
            out[0] = '\0';
        return -1;
    }
    return n;
}
