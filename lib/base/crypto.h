/*
 * crypto - the few primitives SMTP needs (base64, HMAC, SHA-256, PBKDF2,
 * random bytes), all taken from mbedTLS: nothing here is written by hand
 * but the strict checks around base64.  With tls_mbedtls.c this is the
 * only place that includes mbedTLS headers.
 */
#ifndef SMTPX_LIB_CRYPTO_H
#define SMTPX_LIB_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <libsmtpx/common.h>

/* Octets of base64 for n octets of input, without the NUL. */
#define SMTPX__B64_LEN(n) ((((n) + 2) / 3) * 4)
/* Octets a base64 text of n characters decodes to, at most. */
#define SMTPX__B64_DEC_MAX(n) ((((n) + 3) / 4) * 3)

/* smtpx__b64_encode - base64 (RFC 4648 4, with padding) of n octets into
 * out, NUL-terminated; outsize must be at least SMTPX__B64_LEN(n) + 1.
 * Returns the length, or -1 if out is too small. */
long smtpx__b64_encode(const uint8_t *in, size_t n, char *out, size_t outsize);

/* smtpx__b64_decode - strict base64: only the 64 characters, a length
 * that is a multiple of 4, "=" padding only at the end, zero pad bits
 * (RFC 4648 3.5: one encoding per octet string) and no white space (RFC
 * 4954 4 wants exactly this).  "" decodes to nothing.  out must hold
 * SMTPX__B64_DEC_MAX(n) octets.  Returns the decoded length, or -1 on bad
 * input (or an out too small). */
long smtpx__b64_decode(const char *in, size_t n, uint8_t *out, size_t outsize);

/* HMAC (RFC 2104) with MD5 and SHA-256: 0, or -1 when mbedTLS could not
 * allocate its context (mbedtls_md_hmac() does); out is then zeroed. */
int smtpx__hmac_md5(const uint8_t *key, size_t klen, const uint8_t *msg,
                    size_t mlen, uint8_t out[16]);
int smtpx__hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *msg,
                       size_t mlen, uint8_t out[32]);
/* SHA-256 (FIPS 180-4); 0 or -1, out zeroed on failure. */
int smtpx__sha256(const uint8_t *in, size_t n, uint8_t out[32]);

/* SHA-256 over data that comes in pieces (a message being received).  The
 * context is opaque (mbedTLS's, allocated with mem) so that no mbedTLS
 * header leaves this module.  new: 0, or SMTPX_ERR_NOMEM; update and
 * finish cannot fail with mbedTLS 2.28's software SHA-256 but say -1 if
 * they ever do (out zeroed); free is NULL-safe. */
typedef struct smtpx__sha256_ctx smtpx__sha256_ctx;
int smtpx__sha256_new(smtpx__sha256_ctx **out, const smtpx_mem *mem);
int smtpx__sha256_update(smtpx__sha256_ctx *c, const void *in, size_t n);
int smtpx__sha256_finish(smtpx__sha256_ctx *c, uint8_t out[32]);
void smtpx__sha256_free(smtpx__sha256_ctx *c, const smtpx_mem *mem);

/* smtpx__pbkdf2_sha256 - PBKDF2-HMAC-SHA-256 (RFC 8018 5.2); 0 or -1
 * (iterations 0, outlen beyond 2^32 - 1, or mbedTLS out of memory). */
int smtpx__pbkdf2_sha256(const uint8_t *pw, size_t pwlen, const uint8_t *salt,
                         size_t slen, uint32_t iterations, uint8_t *out,
                         size_t outlen);

/* smtpx__random_system - an smtpx_random_fn: the system's entropy through
 * mbedTLS's entropy collector (thread-safe: no shared state).  0 or
 * SMTPX_ERR_INTERNAL. */
int smtpx__random_system(uint8_t *buf, size_t len, void *unused);

/* smtpx__wipe - zero memory in a way the compiler keeps. */
void smtpx__wipe(void *p, size_t n);

/* smtpx__ct_equal - 1 if a and b hold the same n octets, in time that does
 * not depend on where they differ. */
int smtpx__ct_equal(const void *a, const void *b, size_t n);

#endif
