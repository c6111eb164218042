/*
 * addr - RFC 5321 path syntax.
 *
 * Exports smtpx__addr_parse_path(), smtpx__addr_domain_ok() and
 * smtpx__utf8_seq().  The parser works on the caller's bytes and never
 * allocates.  It implements RFC 5321 4.1.2 (Path, Mailbox, Local-part as
 * Dot-string or Quoted-string, Domain, and the source route A-d-l, which is
 * accepted and skipped as 4.1.2 and C ask), 4.1.3 (address literals: IPv4,
 * IPv6 and the general form), the special <Postmaster> of 4.1.1.3, and the
 * UTF-8 extension of RFC 6531 3.3 (UTF8-non-ascii in atext, qtextSMTP and
 * sub-domains).  Domain names are limited to 255 octets and labels to 63
 * (RFC 1035 2.3.4).
 */
#include <string.h>

#include "proto/addr.h"

size_t smtpx__utf8_seq(const unsigned char *s, size_t len)
{
    unsigned c;
    size_t n, i;
    uint32_t cp;

    if (len == 0)
        return 0; /* nothing to read, not even s[0] */
    c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* No overlong forms, no surrogates, nothing past U+10FFFF. */
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return n;
}

static int addr_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int addr_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int addr_hex(int c)
{
    return addr_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* addr_atext - RFC 5322 3.2.3 atext, ASCII part */
static int addr_atext(int c)
{
    return addr_alpha(c) || addr_digit(c) ||
           (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* addr_ipv4 - exactly four decimal octets 0-255 (Snum) */
static int addr_ipv4(const char *s, size_t len)
{
    size_t i = 0;
    int part;

    for (part = 0; part < 4; part++) {
        unsigned v = 0;
        size_t digits = 0;

        if (part > 0) {
            if (i >= len || s[i] != '.')
                return 0;
            i++;
        }
        while (i < len && addr_digit(s[i]) && digits < 3) {
            v = v * 10 + (unsigned)(s[i] - '0');
            i++;
            digits++;
        }
        if (digits == 0 || v > 255)
            return 0;
    }
    return i == len;
}

/*
 * addr_ipv6 - RFC 5321 4.1.3 IPv6-addr: full, compressed ("::"), and both
 * with a trailing IPv4 address.  At most 8 groups of 1-4 hex digits.
 */
static int addr_ipv6(const char *s, size_t len)
{
    size_t i = 0, groups = 0;
    int compressed = 0;

    if (len >= 2 && s[0] == ':' && s[1] == ':') {
        compressed = 1;
        i = 2;
        if (i == len)
            return 1;
    } else if (len > 0 && s[0] == ':') {
        return 0;
    }
    while (i < len) {
        size_t start = i, digits = 0;

        while (i < len && addr_hex(s[i]) && digits < 5) {
            i++;
            digits++;
        }
        if (i < len && s[i] == '.') {
            /* The rest is an IPv4 address, worth two groups. */
            if (!addr_ipv4(s + start, len - start))
                return 0;
            groups += 2;
            i = len;
            break;
        }
        if (digits == 0 || digits > 4)
            return 0;
        groups++;
        if (i == len)
            break;
        if (s[i] != ':')
            return 0;
        i++;
        if (i < len && s[i] == ':') {
            if (compressed)
                return 0;
            compressed = 1;
            i++;
            if (i == len)
                break;
        } else if (i == len) {
            return 0; /* a trailing single ':' */
        }
    }
    return compressed ? groups <= 7 : groups == 8;
}

/* addr_literal - "[...]" address literal, RFC 5321 4.1.3 */
static int addr_literal(const char *s, size_t len)
{
    size_t i, tag;

    if (len < 3 || s[0] != '[' || s[len - 1] != ']')
        return 0;
    s++;
    len -= 2;
    if (len >= 5 && strncmp(s, "IPv6:", 5) == 0)
        return addr_ipv6(s + 5, len - 5);
    if (addr_ipv4(s, len))
        return 1;
    /* General-address-literal: Standardized-tag ":" 1*dcontent.  The tag
     * is an Ldh-str that must be registered with IANA; we check syntax. */
    for (tag = 0; tag < len && s[tag] != ':'; tag++)
        if (!(addr_alpha(s[tag]) || addr_digit(s[tag]) || s[tag] == '-'))
            return 0;
    if (tag == 0 || tag == len || s[tag - 1] == '-' || tag + 1 == len)
        return 0;
    for (i = tag + 1; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 33 && c <= 90) || (c >= 94 && c <= 126)))
            return 0;
    }
    return 1;
}

int smtpx__addr_domain_ok(const char *s, size_t len, int utf8)
{
    size_t i = 0, label = 0;
    int last = 0; /* previous character: 0 start, 'a' letter-digit, '-' */

    if (len == 0)
        return 0;
    if (s[0] == '[')
        return addr_literal(s, len);
    if (len > 255)
        return 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.') {
            if (label == 0 || last == '-')
                return 0;
            label = 0;
            last = 0;
            i++;
            continue;
        }
        if (addr_alpha(c) || addr_digit(c)) {
            i++;
            label++;
            last = 'a';
        } else if (c == '-') {
            if (label == 0)
                return 0;
            i++;
            label++;
            last = '-';
        } else if (c >= 0x80 && utf8) {
            size_t n = smtpx__utf8_seq((const unsigned char *)s + i, len - i);
            if (n == 0)
                return 0;
            i += n;
            label += n;
            last = 'a';
        } else {
            return 0;
        }
        if (label > 63)
            return 0;
    }
    return label > 0 && last != '-';
}

/*
 * addr_local_part - Dot-string or Quoted-string at s[0..len); returns the
 * octets taken (stopping at the '@'), or 0 on a syntax error.  Sets
 * *non_ascii when UTF-8 was seen.
 */
static size_t addr_local_part(const char *s, size_t len, int *non_ascii)
{
    size_t i = 0;

    if (len == 0)
        return 0;
    if (s[0] == '"') {
        i = 1;
        for (;;) {
            unsigned char c;

            if (i >= len)
                return 0;
            c = (unsigned char)s[i];
            if (c == '"')
                return i + 1;
            if (c == '\\') {
                /* quoted-pairSMTP: backslash and one printable ASCII. */
                if (i + 1 >= len || s[i + 1] < 32 || s[i + 1] > 126)
                    return 0;
                i += 2;
            } else if (c >= 0x80) {
                size_t n =
                    smtpx__utf8_seq((const unsigned char *)s + i, len - i);
                if (n == 0)
                    return 0;
                *non_ascii = 1;
                i += n;
            } else if (c >= 32 && c <= 126) {
                i++;
            } else {
                return 0;
            }
        }
    }
    for (;;) {
        size_t atom = 0;

        while (i < len) {
            unsigned char c = (unsigned char)s[i];
            if (addr_atext(c)) {
                i++;
                atom++;
            } else if (c >= 0x80) {
                size_t n =
                    smtpx__utf8_seq((const unsigned char *)s + i, len - i);
                if (n == 0)
                    return 0;
                *non_ascii = 1;
                i += n;
                atom++;
            } else {
                break;
            }
        }
        if (atom == 0)
            return 0;
        if (i < len && s[i] == '.') {
            i++;
            continue;
        }
        return i;
    }
}

/* addr_mailbox - Local-part "@" (Domain / address-literal), all of s */
static int addr_mailbox(const char *s, size_t len, smtpx__path *out,
                        size_t base)
{
    int non_ascii = 0;
    size_t lp = addr_local_part(s, len, &non_ascii);
    size_t i;

    if (lp == 0 || lp >= len || s[lp] != '@')
        return SMTPX__ADDR_SYNTAX;
    for (i = lp + 1; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            non_ascii = 1;
    if (!smtpx__addr_domain_ok(s + lp + 1, len - lp - 1, 1))
        return SMTPX__ADDR_SYNTAX;
    out->mbox_off = base;
    out->mbox_len = len;
    out->domain_off = base + lp + 1;
    out->non_ascii = non_ascii;
    return 0;
}

/* addr_close - offset of the '>' that ends the path, quotes respected */
static size_t addr_close(const char *s, size_t len)
{
    size_t i;
    int quoted = 0;

    for (i = 1; i < len; i++) {
        if (quoted) {
            if (s[i] == '\\')
                i++;
            else if (s[i] == '"')
                quoted = 0;
        } else if (s[i] == '"') {
            quoted = 1;
        } else if (s[i] == '>') {
            return i;
        }
    }
    return 0;
}

int smtpx__addr_parse_path(const char *s, size_t len, unsigned flags,
                           size_t max_len, smtpx__path *out)
{
    size_t end, i, inner;
    int rc;

    memset(out, 0, sizeof(*out));
    out->domain_off = SIZE_MAX;
    if (len < 2 || s[0] != '<')
        return SMTPX__ADDR_SYNTAX;
    end = addr_close(s, len);
    if (end == 0)
        return SMTPX__ADDR_SYNTAX;
    out->consumed = end + 1;
    inner = end - 1;
    if (inner > max_len)
        return SMTPX__ADDR_TOO_LONG;
    if (inner == 0) {
        if (!(flags & SMTPX__ADDR_NULL_OK))
            return SMTPX__ADDR_SYNTAX;
        out->mbox_off = 1;
        return 0;
    }
    if ((flags & SMTPX__ADDR_POSTMASTER) && inner == 10) {
        /* RFC 5321 4.1.1.3: <Postmaster> is matched without case. */
        static const char pm[] = "postmaster";
        size_t k;
        for (k = 0; k < 10; k++) {
            char c = s[1 + k];
            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            if (c != pm[k])
                break;
        }
        if (k == 10) {
            out->mbox_off = 1;
            out->mbox_len = 10;
            return 0;
        }
    }
    i = 1;
    if (s[i] == '@') {
        /* A-d-l ":" - a source route, accepted and ignored (RFC 5321
         * 4.1.2 and appendix C). */
        for (;;) {
            size_t d = i + 1;
            while (d < end && s[d] != ',' && s[d] != ':')
                d++;
            if (d >= end || !smtpx__addr_domain_ok(s + i + 1, d - i - 1, 1))
                return SMTPX__ADDR_SYNTAX;
            i = d + 1;
            if (s[d] == ':')
                break;
            if (i >= end || s[i] != '@')
                return SMTPX__ADDR_SYNTAX;
        }
    }
    rc = addr_mailbox(s + i, end - i, out, i);
    if (rc != 0)
        return rc;
    if (out->non_ascii && !(flags & SMTPX__ADDR_UTF8))
        return SMTPX__ADDR_NEEDS_UTF8;
    return 0;
}
