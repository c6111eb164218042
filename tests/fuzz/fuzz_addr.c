/*
 * fuzz_addr - the path parser of MAIL FROM and RCPT TO (RFC 5321 4.1.2,
 * 4.1.3, RFC 6531) on arbitrary octets.
 *
 * The first octet chooses the flags, the second the length limit; the
 * rest, after a '<' the parser's contract asks for, is the text.  Checked
 * beyond the sanitizers (the text is an exact-size copy, so one octet read
 * too far is caught): the result is one of the documented ones; a parsed
 * path ends with '>' inside the text, its mailbox and domain lie inside
 * the brackets, the domain follows an '@' and passes the domain check, the
 * mailbox is no longer than the limit, UTF-8 is only accepted when
 * allowed, and a path that parses keeps parsing to the same mailbox with
 * more flags or a larger limit.  The domain and UTF-8 helpers get the raw
 * text too.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    smtpx__path a, b;
    unsigned flags;
    size_t max_len, len, i;
    char *s;
    int rc, rc2;

    if (size < 2)
        return 0;
    flags = data[0] & 7u;
    max_len = data[1] == 255 ? SIZE_MAX : (size_t)data[1] * 2;
    len = size - 2 + 1;
    s = malloc(len);
    if (s == NULL)
        abort();
    s[0] = '<';
    memcpy(s + 1, data + 2, size - 2);
    rc = smtpx__addr_parse_path(s, len, flags, max_len, &a);
    if (rc < 0 || rc > SMTPX__ADDR_NEEDS_UTF8)
        abort();
    if (rc == 0) {
        if (a.consumed < 2 || a.consumed > len || s[a.consumed - 1] != '>')
            abort();
        if (a.consumed - 2 > max_len)
            abort();
        if (a.mbox_off < 1 || a.mbox_off + a.mbox_len > a.consumed - 1)
            abort();
        if (a.mbox_len == 0 && !(flags & SMTPX__ADDR_NULL_OK))
            abort();
        if (a.non_ascii && !(flags & SMTPX__ADDR_UTF8))
            abort();
        if (a.domain_off != SIZE_MAX) {
            size_t dlen = a.mbox_off + a.mbox_len - a.domain_off;
            if (a.domain_off <= a.mbox_off ||
                a.domain_off >= a.mbox_off + a.mbox_len ||
                s[a.domain_off - 1] != '@' ||
                !smtpx__addr_domain_ok(s + a.domain_off, dlen,
                                       (flags & SMTPX__ADDR_UTF8) != 0))
                abort();
        }
        for (i = a.mbox_off; i < a.mbox_off + a.mbox_len; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                abort(); /* no control character in a mailbox */
        rc2 = smtpx__addr_parse_path(s, len, 7u, SIZE_MAX, &b);
        if (rc2 != 0 || b.consumed != a.consumed || b.mbox_off != a.mbox_off ||
            b.mbox_len != a.mbox_len)
            abort();
    } else if (rc == SMTPX__ADDR_TOO_LONG) {
        /* Only the limit was in the way of parsing further. */
        if (max_len == SIZE_MAX)
            abort();
    }
    (void)smtpx__addr_domain_ok(s + 1, len - 1, data[0] >> 7);
    for (i = 1; i < len; i += 1) {
        size_t n = smtpx__utf8_seq((const unsigned char *)s + i, len - i);
        if (n > 4 || n > len - i)
            abort();
    }
    (void)smtpx__utf8_seq((const unsigned char *)s + len, 0);
    free(s);
    return 0;
}
