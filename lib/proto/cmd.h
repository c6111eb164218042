/*
 * cmd - command line pieces: ESMTP parameters (RFC 5321 4.1.2), xtext
 * (RFC 3461 4), and case-insensitive matching.
 */
#ifndef SMTPX_LIB_CMD_H
#define SMTPX_LIB_CMD_H

#include <stddef.h>

#include <libsmtpx/common.h>

/* Results of smtpx__cmd_params besides 0. */
#define SMTPX__CMD_SYNTAX   1 /* a malformed parameter */
#define SMTPX__CMD_TOO_MANY 2 /* more than max parameters */

/*
 * Split s (NUL-terminated, changed in place) into ESMTP parameters
 * separated by spaces: esmtp-keyword ["=" esmtp-value].  Keywords are
 * (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); values are printable ASCII
 * other than "=" (and UTF-8 when utf8 is set, RFC 6531 3.3).
 */
int smtpx__cmd_params(char *s, int utf8, smtpx_param *out, size_t max,
                      size_t *n);

/* 1 if a and b are equal ignoring ASCII case. */
int smtpx__cmd_ieq(const char *a, const char *b);

/* 1 if s starts with prefix, ignoring ASCII case. */
int smtpx__cmd_iprefix(const char *s, size_t len, const char *prefix);

/* smtpx__cmd_xtext_encode - in as xtext (RFC 3461 4: "+", "=" and octets
 * outside 33..126 as "+HH") into out; returns the length, or -1 if it
 * does not fit (out gets a NUL either way when size > 0). */
long smtpx__cmd_xtext_encode(const char *in, char *out, size_t size);

/* smtpx__cmd_xtext_decode - in[0..len) decoded from xtext (RFC 3461 4:
 * "+HH" is the octet HH) into out, NUL-terminated; the length (a decoded
 * NUL counts), or -1 for malformed xtext or too little room */
long smtpx__cmd_xtext_decode(const char *in, size_t len, char *out,
                             size_t size);

/* 1 if s is valid xtext (RFC 3461 4). */
int smtpx__cmd_xtext_ok(const char *s);

/* A name for one bit of a mask (an extension, a SASL mechanism). */
typedef struct smtpx__named {
    unsigned bit;
    const char *name;
} smtpx__named;

/* smtpx__named_name - the name of bit in t[0..n), or NULL */
const char *smtpx__named_name(const smtpx__named *t, size_t n, unsigned bit);

/* smtpx__named_bit - the bit of name (any case) in t[0..n), or 0 */
unsigned smtpx__named_bit(const smtpx__named *t, size_t n, const char *name);

/* 1 if name can stand as one word in a command or reply line: 1 to 255
 * octets, no space, no control character. */
int smtpx__cmd_name_ok(const char *name);

#endif
