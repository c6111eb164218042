/*
 * words - header text of MIME: charsets to UTF-8, RFC 2047 encoded words
 * (decoding and encoding), RFC 2045 / RFC 2231 parameters.
 */
#ifndef SMTPX_LIB_MSG_WORDS_H
#define SMTPX_LIB_MSG_WORDS_H

#include "msg/codec.h"

/* Flags a decoder sets in *bad. */
#define SMTPX__WORDS_BAD_WORD  (1u << 0) /* an encoded word kept as it was */
#define SMTPX__WORDS_BAD_8BIT  (1u << 1) /* octets that are not UTF-8 */
#define SMTPX__WORDS_BAD_PARAM (1u << 2) /* a malformed parameter */

/* smtpx__to_utf8 - append n octets in charset cs (cslen octets, any case)
 * as UTF-8: UTF-8 and US-ASCII are checked, ISO-8859-1 and windows-1252
 * converted here, anything else through iconv(3).  What cannot be
 * converted becomes U+FFFD and sets SMTPX__WORDS_BAD_8BIT. */
void smtpx__to_utf8(smtpx__mstr *out, const char *cs, size_t cslen,
                    const uint8_t *in, size_t n, unsigned *bad);

/* smtpx__words_decode - append header text with its RFC 2047 encoded words
 * decoded (RFC 2231 5 language tags dropped); white space between two
 * encoded words goes; other octets are taken as UTF-8 (RFC 6532). */
void smtpx__words_decode(smtpx__mstr *out, const char *s, size_t n,
                         unsigned *bad);

/* smtpx__params_parse - a Content-Type or Content-Disposition value: the
 * value before the first ";" (trimmed, lower case) into type, and the
 * parameters into params as "name\0value\0" pairs: names in lower case,
 * RFC 2231 sections joined and decoded, quoted values unquoted with their
 * RFC 2047 words decoded, all in UTF-8.  Parameters past the 64th are
 * dropped (reported). */
void smtpx__params_parse(const char *v, size_t n, smtpx__mstr *type,
                         smtpx__mstr *params, unsigned *bad);

/* smtpx__params_get - the value of a parameter in pairs from
 * smtpx__params_parse() (len octets), or NULL. */
const char *smtpx__params_get(const char *pairs, size_t len, const char *name);

/* smtpx__words_encode - text as RFC 2047 encoded words ("=?utf-8?q?...?="
 * or "?b?", whichever is shorter), each at most 75 characters and never
 * splitting a UTF-8 sequence, separated by spaces (where the folder may
 * break the line); the first word is at most first characters (at least
 * 20), so that it fits the line it starts on.  phrase: only the characters
 * RFC 2047 5 (3) allows in a phrase are left literal in "q" (that is so
 * for both kinds of text). */
void smtpx__words_encode(smtpx__mstr *out, const char *s, size_t n, int phrase,
                         size_t first);

/* 1 if s (n octets) is valid UTF-8. */
int smtpx__utf8_valid(const uint8_t *s, size_t n);

#endif
