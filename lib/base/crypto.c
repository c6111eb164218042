/*
 * crypto - base64, HMAC, SHA-256, PBKDF2 and random bytes, from mbedTLS.
 *
 * Exports smtpx__b64_encode(), smtpx__b64_decode(), smtpx__hmac_md5(),
 * smtpx__hmac_sha256(), smtpx__sha256(), the smtpx__sha256_* context
 * functions, smtpx__pbkdf2_sha256(), smtpx__random_system(),
 * smtpx__wipe() and smtpx__ct_equal().
 *
 * Nothing cryptographic is written here: each function wraps mbedTLS.
 * The one piece of our own is the strict check in front of mbedTLS's
 * base64 decoder, which skips white space and line ends (it was written
 * for PEM), while RFC 4954 4 wants AUTH data to be plain RFC 4648 4
 * base64.  No state is kept between calls: every function may be called
 * from any thread.
 */
#include <limits.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/constant_time.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include <libsmtpx/common.h>

#include "base/crypto.h"
#include "base/mem.h"

/* Passed instead of NULL with a length of 0, so that no NULL reaches a
 * function that may hand it to memcpy. */
static const uint8_t crypto_empty[1] = {0};

long smtpx__b64_encode(const uint8_t *in, size_t n, char *out, size_t outsize)
{
    size_t olen = 0;

    /* SMTPX__B64_LEN(n) + 1 must not wrap around. */
    if (n > (SIZE_MAX - 8) / 4 * 3 || n / 3 > (size_t)LONG_MAX / 4 - 1)
        return -1;
    if (outsize < SMTPX__B64_LEN(n) + 1)
        return -1;
    if (n == 0) {
        /* mbedtls_base64_encode() writes no NUL for empty input. */
        out[0] = '\0';
        return 0;
    }
    if (mbedtls_base64_encode((unsigned char *)out, outsize, &olen, in, n) != 0)
        return -1;
    return (long)olen;
}

static int crypto_b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* crypto_b64_value - the 6 bits of a base64 character */
static unsigned crypto_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (unsigned)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (unsigned)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (unsigned)(c - '0' + 52);
    return c == '+' ? 62u : 63u;
}

/* crypto_b64_strict - RFC 4648 4 with padding, nothing else: whole
 * quanta, "=" only as the last one or two characters, and the pad bits
 * before it zero (RFC 4648 3.5 lets a decoder insist), so that each octet
 * string has exactly one encoding and a changed character always changes
 * the data */
static int crypto_b64_strict(const char *in, size_t n)
{
    size_t i, pad = 0;

    if (n % 4 != 0)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];

        if (crypto_b64_char(c))
            continue;
        if (c != '=')
            return 0;
        /* "xxx=" or "xx==": the padding runs to the end. */
        if (i < n - 2 || (i == n - 2 && in[n - 1] != '='))
            return 0;
        pad++;
    }
    if (pad == 1 && (crypto_b64_value((unsigned char)in[n - 2]) & 0x3) != 0)
        return 0;
    if (pad == 2 && (crypto_b64_value((unsigned char)in[n - 3]) & 0xf) != 0)
        return 0;
    return 1;
}

long smtpx__b64_decode(const char *in, size_t n, uint8_t *out, size_t outsize)
{
    size_t olen = 0;

    if (!crypto_b64_strict(in, n) || n > (size_t)LONG_MAX)
        return -1;
    if (n == 0)
        return 0;
    if (mbedtls_base64_decode(out, outsize, &olen, (const unsigned char *)in,
                              n) != 0)
        return -1;
    return (long)olen;
}

static int crypto_hmac(mbedtls_md_type_t type, const uint8_t *key, size_t klen,
                       const uint8_t *msg, size_t mlen, uint8_t *out,
                       size_t outlen)
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(type);

    if (key == NULL)
        key = crypto_empty;
    if (msg == NULL)
        msg = crypto_empty;
    /* mbedtls_md_hmac() allocates a context: it can fail. */
    if (md == NULL || mbedtls_md_hmac(md, key, klen, msg, mlen, out) != 0) {
        memset(out, 0, outlen);
        return -1;
    }
    return 0;
}

int smtpx__hmac_md5(const uint8_t *key, size_t klen, const uint8_t *msg,
                    size_t mlen, uint8_t out[16])
{
    return crypto_hmac(MBEDTLS_MD_MD5, key, klen, msg, mlen, out, 16);
}

int smtpx__hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *msg,
                       size_t mlen, uint8_t out[32])
{
    return crypto_hmac(MBEDTLS_MD_SHA256, key, klen, msg, mlen, out, 32);
}

int smtpx__sha256(const uint8_t *in, size_t n, uint8_t out[32])
{
    if (mbedtls_sha256_ret(in != NULL ? in : crypto_empty, n, out, 0) != 0) {
        memset(out, 0, 32);
        return -1;
    }
    return 0;
}

struct smtpx__sha256_ctx {
    mbedtls_sha256_context c;
};

int smtpx__sha256_new(smtpx__sha256_ctx **out, const smtpx_mem *mem)
{
    smtpx__sha256_ctx *c = smtpx__malloc(mem, sizeof(*c));

    *out = c;
    if (c == NULL)
        return SMTPX_ERR_NOMEM;
    mbedtls_sha256_init(&c->c);
    if (mbedtls_sha256_starts_ret(&c->c, 0) != 0) {
        smtpx__sha256_free(c, mem);
        *out = NULL;
        return SMTPX_ERR_INTERNAL;
    }
    return 0;
}

int smtpx__sha256_update(smtpx__sha256_ctx *c, const void *in, size_t n)
{
    if (n == 0)
        return 0;
    return mbedtls_sha256_update_ret(&c->c, in, n) == 0 ? 0 : -1;
}

int smtpx__sha256_finish(smtpx__sha256_ctx *c, uint8_t out[32])
{
    if (mbedtls_sha256_finish_ret(&c->c, out) != 0) {
        memset(out, 0, 32);
        return -1;
    }
    return 0;
}

void smtpx__sha256_free(smtpx__sha256_ctx *c, const smtpx_mem *mem)
{
    if (c == NULL)
        return;
    mbedtls_sha256_free(&c->c); /* zeroes the state */
    smtpx__free(mem, c);
}

int smtpx__pbkdf2_sha256(const uint8_t *pw, size_t pwlen, const uint8_t *salt,
                         size_t slen, uint32_t iterations, uint8_t *out,
                         size_t outlen)
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    mbedtls_md_context_t ctx;
    int rc;

    /* mbedTLS would take 0 iterations as 1; RFC 8018 5.2 wants c >= 1. */
    if (iterations == 0 || outlen > UINT32_MAX || md == NULL)
        return -1;
    mbedtls_md_init(&ctx);
    /* The 2.28 API wants a context set up for HMAC (hmac = 1). */
    rc = mbedtls_md_setup(&ctx, md, 1);
    if (rc == 0)
        rc = mbedtls_pkcs5_pbkdf2_hmac(
            &ctx, pw != NULL ? pw : crypto_empty, pwlen,
            salt != NULL ? salt : crypto_empty, slen, (unsigned)iterations,
            (uint32_t)outlen, out);
    mbedtls_md_free(&ctx); /* wipes the HMAC state */
    return rc == 0 ? 0 : -1;
}

int smtpx__random_system(uint8_t *buf, size_t len, void *unused)
{
    /* A context per call: no shared state to lock, and a fresh poll of
     * the system's source (getrandom or /dev/urandom) each time. */
    mbedtls_entropy_context ent;
    int rc = 0;

    (void)unused;
    mbedtls_entropy_init(&ent);
    while (len > 0) {
        /* One call yields at most one block of the accumulator. */
        size_t n =
            len < MBEDTLS_ENTROPY_BLOCK_SIZE ? len : MBEDTLS_ENTROPY_BLOCK_SIZE;

        if (mbedtls_entropy_func(&ent, buf, n) != 0) {
            rc = SMTPX_ERR_INTERNAL;
            break;
        }
        buf += n;
        len -= n;
    }
    mbedtls_entropy_free(&ent);
    return rc;
}

void smtpx__wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        mbedtls_platform_zeroize(p, n);
}

int smtpx__ct_equal(const void *a, const void *b, size_t n)
{
    if (n == 0)
        return 1;
    return mbedtls_ct_memcmp(a, b, n) == 0;
}
