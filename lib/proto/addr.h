/*
 * addr - RFC 5321 path syntax (4.1.2, 4.1.3) with RFC 6531 UTF-8.
 */
#ifndef SMTPX_LIB_ADDR_H
#define SMTPX_LIB_ADDR_H

#include <stddef.h>
#include <stdint.h>

#define SMTPX__ADDR_NULL_OK    (1u << 0) /* "<>" is allowed (reverse-path) */
#define SMTPX__ADDR_POSTMASTER (1u << 1) /* "<Postmaster>" is allowed */
#define SMTPX__ADDR_UTF8       (1u << 2) /* RFC 6531 UTF-8 is allowed */

/* Results, besides 0. */
#define SMTPX__ADDR_SYNTAX     1 /* not a path */
#define SMTPX__ADDR_TOO_LONG   2 /* longer than the limit */
#define SMTPX__ADDR_NEEDS_UTF8 3 /* well-formed UTF-8, but not allowed */

/* A parsed path: offsets into the parsed text. */
typedef struct smtpx__path {
    size_t consumed;   /* octets taken, through the closing '>' */
    size_t mbox_off;   /* the mailbox (after any source route) */
    size_t mbox_len;   /* 0 for "<>" */
    size_t domain_off; /* the domain inside the mailbox; SIZE_MAX if none */
    int non_ascii;     /* the mailbox contains UTF-8 */
} smtpx__path;

/*
 * Parse a path that starts at s[0] == '<' within s[0..len).  max_len bounds
 * the octets between the brackets.  Returns 0 and fills *out, or one of the
 * SMTPX__ADDR_* results.
 */
int smtpx__addr_parse_path(const char *s, size_t len, unsigned flags,
                           size_t max_len, smtpx__path *out);

/* 1 if s[0..len) is a valid domain (RFC 5321 4.1.2 Domain, with U-labels
 * when utf8), or an address literal (4.1.3). */
int smtpx__addr_domain_ok(const char *s, size_t len, int utf8);

/* Length of the well-formed UTF-8 sequence at s[0..len), or 0. */
size_t smtpx__utf8_seq(const unsigned char *s, size_t len);

#endif
