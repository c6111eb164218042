/*
 * check_sasl - the crypto wrappers against published vectors (RFC 4648,
 * RFC 4231, RFC 2202, RFC 7914, FIPS 180-2), the SASL engines against the
 * RFC 2195 and RFC 7677 examples on both sides, every mechanism end to
 * end (client engine talking to server engine), hostile and truncated
 * input on guard pages, and allocation failures over whole exchanges.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/smtpx.h>

#include "base/crypto.h"
#include "base/mem.h"
#include "proto/sasl.h"
#include "harness/failmalloc.h"
#include "harness/guard.h"
#include "suites.h"

#define KV "\001" /* RFC 7628 kvsep; octal, so no hex digit is swallowed */

/* A binary string literal with its length (NULs allowed inside). */
#define BIN(s)                                                                 \
    {                                                                          \
        s, sizeof(s) - 1                                                       \
    }

typedef struct bin {
    const char *p;
    size_t n;
} bin;

static const uint8_t test_fake_key[32] = {1, 2, 3, 4, 5, 6, 7, 8};

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    unsigned v;

    while (hex[0] != '\0' && sscanf(hex, "%2x", &v) == 1) {
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return n;
}

/* ---- random sources ---- */

/* A script: its octets, then zeros.  The engines take nonce characters
 * straight from random octets, so a script can impose a nonce. */
typedef struct script {
    const uint8_t *p;
    size_t n, pos;
} script;

static int script_rnd(uint8_t *buf, size_t len, void *ud)
{
    script *s = ud;
    size_t i;

    for (i = 0; i < len; i++)
        buf[i] = s->pos < s->n ? s->p[s->pos++] : 0;
    return 0;
}

static script script_of(const void *p, size_t n)
{
    script s;

    s.p = p;
    s.n = n;
    s.pos = 0;
    return s;
}

static int failing_rnd(uint8_t *buf, size_t len, void *ud)
{
    (void)buf;
    (void)len;
    (void)ud;
    return SMTPX_ERR_INTERNAL;
}

/* ---- base64 (RFC 4648 10) ---- */

static const struct {
    const char *plain, *b64;
} b64_vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

START_TEST(test_b64_vectors)
{
    size_t i;

    for (i = 0; i < sizeof(b64_vectors) / sizeof(b64_vectors[0]); i++) {
        const char *p = b64_vectors[i].plain, *e = b64_vectors[i].b64;
        size_t pn = strlen(p), en = strlen(e);
        char enc[16];
        uint8_t dec[16];

        ck_assert_int_eq(smtpx__b64_encode((const uint8_t *)p, pn, enc,
                                           SMTPX__B64_LEN(pn) + 1),
                         (long)en);
        ck_assert_str_eq(enc, e);
        /* No room for the NUL: refused. */
        ck_assert_int_eq(
            smtpx__b64_encode((const uint8_t *)p, pn, enc, SMTPX__B64_LEN(pn)),
            -1);
        ck_assert_int_eq(smtpx__b64_decode(guard_copy(e, en), en, dec,
                                           SMTPX__B64_DEC_MAX(en)),
                         (long)pn);
        ck_assert(memcmp(dec, p, pn) == 0);
    }
}
END_TEST

START_TEST(test_b64_strict)
{
    static const bin bad[] = {
        BIN("Zg="),
        BIN("Zg"),
        BIN("Z"),
        BIN("Zm9vY"),
        BIN("Zg==Zm9v"),
        BIN("Zm=v"),
        BIN("Z=9v"),
        BIN("=Zm9"),
        BIN("Z==="),
        BIN("===="),
        BIN("Zm9v\n"),
        BIN("Zm9v\r\n"),
        BIN(" Zm9v"),
        BIN("Zm 9v"),
        BIN("Zm9v "),
        BIN("Zm\t9v"),
        BIN("Zm9-"),
        BIN("Zm9_"),
        BIN("Zm9!"),
        BIN("Zm\0v"),
        BIN("Zm9v\xc3\xa9=="),
        BIN("Zg=\0"),
        /* Non-zero pad bits (RFC 4648 3.5): "f" is "Zg==", not "Zh==". */
        BIN("Zh=="),
        BIN("Zm9="),
        BIN("Zm9vYh=="),
        BIN("Zm9vYmF="),
    };
    uint8_t dec[16];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(smtpx__b64_decode(guard_copy(bad[i].p, bad[i].n),
                                        bad[i].n, dec, sizeof(dec)) == -1,
                      "case %zu accepted", i);
    /* The output buffer must hold the decoded octets. */
    ck_assert_int_eq(smtpx__b64_decode("Zm9vYmFy", 8, dec, 5), -1);
    ck_assert_int_eq(smtpx__b64_decode("Zm9vYmFy", 8, dec, 6), 6);
}
END_TEST

/* ---- hashes ---- */

START_TEST(test_hmac_sha256)
{
    /* RFC 4231 4.2 and 4.3 */
    uint8_t key[20], mac[32], want[32];

    memset(key, 0x0b, sizeof(key));
    ck_assert_int_eq(
        smtpx__hmac_sha256(key, 20, (const uint8_t *)"Hi There", 8, mac), 0);
    unhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
          want);
    ck_assert_mem_eq(mac, want, 32);
    ck_assert_int_eq(
        smtpx__hmac_sha256((const uint8_t *)"Jefe", 4,
                           (const uint8_t *)"what do ya want for nothing?", 28,
                           mac),
        0);
    unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
          want);
    ck_assert_mem_eq(mac, want, 32);
}
END_TEST

START_TEST(test_hmac_md5)
{
    /* RFC 2202 2, test cases 1, 2 and 6 (a key longer than a block) */
    uint8_t key[80], mac[16], want[16];

    memset(key, 0x0b, 16);
    ck_assert_int_eq(
        smtpx__hmac_md5(key, 16, (const uint8_t *)"Hi There", 8, mac), 0);
    unhex("9294727a3638bb1c13f48ef8158bfc9d", want);
    ck_assert_mem_eq(mac, want, 16);
    ck_assert_int_eq(
        smtpx__hmac_md5((const uint8_t *)"Jefe", 4,
                        (const uint8_t *)"what do ya want for nothing?", 28,
                        mac),
        0);
    unhex("750c783e6ab0b503eaa86e310a5db738", want);
    ck_assert_mem_eq(mac, want, 16);
    memset(key, 0xaa, 80);
    ck_assert_int_eq(
        smtpx__hmac_md5(
            key, 80,
            (const uint8_t *)"Test Using Larger Than Block-Size Key - Hash "
                             "Key First",
            54, mac),
        0);
    unhex("6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd", want);
    ck_assert_mem_eq(mac, want, 16);
}
END_TEST

START_TEST(test_sha256)
{
    /* FIPS 180-2 appendix B.1 */
    uint8_t h[32], want[32];

    ck_assert_int_eq(smtpx__sha256((const uint8_t *)"abc", 3, h), 0);
    unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
          want);
    ck_assert_mem_eq(h, want, 32);
}
END_TEST

START_TEST(test_pbkdf2)
{
    /* RFC 7914 11, both PBKDF2-HMAC-SHA-256 vectors */
    uint8_t dk[64], want[64];

    ck_assert_int_eq(smtpx__pbkdf2_sha256((const uint8_t *)"passwd", 6,
                                          (const uint8_t *)"salt", 4, 1, dk,
                                          64),
                     0);
    unhex("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
          "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783",
          want);
    ck_assert_mem_eq(dk, want, 64);
    ck_assert_int_eq(smtpx__pbkdf2_sha256((const uint8_t *)"Password", 8,
                                          (const uint8_t *)"NaCl", 4, 80000, dk,
                                          64),
                     0);
    unhex("4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
          "a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d",
          want);
    ck_assert_mem_eq(dk, want, 64);
    /* RFC 8018 5.2: c >= 1. */
    ck_assert_int_eq(smtpx__pbkdf2_sha256((const uint8_t *)"p", 1,
                                          (const uint8_t *)"s", 1, 0, dk, 32),
                     -1);
}
END_TEST

START_TEST(test_random_wipe_ct)
{
    uint8_t a[200], b[200], zero[200];
    uint8_t x[4] = {1, 2, 3, 4}, y[4] = {1, 2, 3, 4};

    /* More than one entropy block per call. */
    memset(zero, 0, sizeof(zero));
    ck_assert_int_eq(smtpx__random_system(a, sizeof(a), NULL), 0);
    ck_assert_int_eq(smtpx__random_system(b, sizeof(b), NULL), 0);
    ck_assert(memcmp(a, b, sizeof(a)) != 0);
    ck_assert(memcmp(a + 150, zero, 50) != 0);
    smtpx__wipe(a, sizeof(a));
    ck_assert_mem_eq(a, zero, sizeof(a));
    smtpx__wipe(NULL, 0);
    ck_assert_int_eq(smtpx__ct_equal(x, y, 4), 1);
    y[3] = 5;
    ck_assert_int_eq(smtpx__ct_equal(x, y, 4), 0);
    y[3] = 4;
    y[0] = 0;
    ck_assert_int_eq(smtpx__ct_equal(x, y, 4), 0);
    ck_assert_int_eq(smtpx__ct_equal(x, y, 0), 1);
}
END_TEST

/* ---- names and picking ---- */

START_TEST(test_names)
{
    static const struct {
        unsigned bit;
        const char *name;
    } m[] = {{SMTPX_SASL_PLAIN, "PLAIN"},
             {SMTPX_SASL_LOGIN, "LOGIN"},
             {SMTPX_SASL_CRAM_MD5, "CRAM-MD5"},
             {SMTPX_SASL_SCRAM_SHA_256, "SCRAM-SHA-256"},
             {SMTPX_SASL_XOAUTH2, "XOAUTH2"},
             {SMTPX_SASL_OAUTHBEARER, "OAUTHBEARER"}};
    size_t i;

    for (i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        ck_assert_str_eq(smtpx_sasl_name(m[i].bit), m[i].name);
        ck_assert_uint_eq(smtpx_sasl_from_name(m[i].name), m[i].bit);
    }
    ck_assert_uint_eq(smtpx_sasl_from_name("scram-sha-256"),
                      SMTPX_SASL_SCRAM_SHA_256);
    ck_assert_uint_eq(smtpx_sasl_from_name("Plain"), SMTPX_SASL_PLAIN);
    ck_assert_uint_eq(smtpx_sasl_from_name("PLAIN2"), 0);
    ck_assert_uint_eq(smtpx_sasl_from_name("PLAI"), 0);
    ck_assert_uint_eq(smtpx_sasl_from_name("SCRAM-SHA-256-PLUS"), 0);
    ck_assert_uint_eq(smtpx_sasl_from_name(""), 0);
    ck_assert_uint_eq(smtpx_sasl_from_name(NULL), 0);
    ck_assert_ptr_null(smtpx_sasl_name(0));
    ck_assert_ptr_null(smtpx_sasl_name(SMTPX_SASL_PLAIN | SMTPX_SASL_LOGIN));
    ck_assert_ptr_null(smtpx_sasl_name(1u << 6));
}
END_TEST

START_TEST(test_pick)
{
    unsigned all = SMTPX_SASL_ALL;

    ck_assert_uint_eq(smtpx__sasl_cli_pick(all, all, 1, 1),
                      SMTPX_SASL_OAUTHBEARER);
    ck_assert_uint_eq(smtpx__sasl_cli_pick(all, all, 1, 0),
                      SMTPX_SASL_SCRAM_SHA_256);
    ck_assert_uint_eq(
        smtpx__sasl_cli_pick(all & ~SMTPX_SASL_OAUTHBEARER, all, 0, 1),
        SMTPX_SASL_XOAUTH2);
    ck_assert_uint_eq(
        smtpx__sasl_cli_pick(SMTPX_SASL_PLAIN | SMTPX_SASL_LOGIN, all, 0, 1),
        0);
    ck_assert_uint_eq(smtpx__sasl_cli_pick(SMTPX_SASL_CRAM_MD5 |
                                               SMTPX_SASL_PLAIN |
                                               SMTPX_SASL_LOGIN,
                                           all, 1, 0),
                      SMTPX_SASL_CRAM_MD5);
    ck_assert_uint_eq(
        smtpx__sasl_cli_pick(SMTPX_SASL_PLAIN | SMTPX_SASL_LOGIN, all, 1, 0),
        SMTPX_SASL_PLAIN);
    ck_assert_uint_eq(
        smtpx__sasl_cli_pick(SMTPX_SASL_CRAM_MD5 | SMTPX_SASL_PLAIN,
                             SMTPX_SASL_PLAIN, 1, 0),
        SMTPX_SASL_PLAIN);
    ck_assert_uint_eq(smtpx__sasl_cli_pick(SMTPX_SASL_LOGIN, all, 1, 0),
                      SMTPX_SASL_LOGIN);
    ck_assert_uint_eq(smtpx__sasl_cli_pick(SMTPX_SASL_LOGIN, all, 0, 0), 0);
    ck_assert_uint_eq(smtpx__sasl_cli_pick(0, all, 1, 1), 0);
    ck_assert_uint_eq(smtpx__sasl_cli_pick(all, 0, 1, 1), 0);
}
END_TEST

/* ---- RFC 2195 2: the CRAM-MD5 example ---- */

static const char rfc2195_chal[] = "<1896.697170952@postoffice.reston.mci.net>";
static const char rfc2195_resp[] = "tim b913a602c7eda7a495b4e6e7334d3890";
/* 1896 and 697170952 as two 64-bit big-endian numbers. */
static const uint8_t rfc2195_rnd[16] = {0, 0, 0, 0, 0,    0,    0x07, 0x68,
                                        0, 0, 0, 0, 0x29, 0x8d, 0xfc, 0x08};

START_TEST(test_cram_client_rfc2195)
{
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__sasl_cli *c = smtpx__sasl_cli_new(
        mem, SMTPX_SASL_CRAM_MD5, NULL, "tim", "tanstaaftanstaaf", NULL, NULL);
    const uint8_t *out;
    size_t n;

    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(smtpx__sasl_cli_initial(c, &out, &n), 0);
    ck_assert_int_eq(
        smtpx__sasl_cli_step(
            c, (const uint8_t *)guard_copy(rfc2195_chal, strlen(rfc2195_chal)),
            strlen(rfc2195_chal), &out, &n),
        0);
    ck_assert_uint_eq(n, strlen(rfc2195_resp));
    ck_assert(memcmp(out, rfc2195_resp, n) == 0);
    ck_assert_int_eq(smtpx__sasl_cli_done(c), 1);
    /* Server first, once: more challenges make no sense. */
    ck_assert_int_eq(smtpx__sasl_cli_step(c, (const uint8_t *)"x", 1, &out, &n),
                     SMTPX__SASL_BAD);
    smtpx__sasl_cli_free(c);
    c = smtpx__sasl_cli_new(mem, SMTPX_SASL_CRAM_MD5, NULL, "tim", "pw", NULL,
                            NULL);
    ck_assert_int_eq(smtpx__sasl_cli_step(c, NULL, 0, &out, &n),
                     SMTPX__SASL_BAD);
    smtpx__sasl_cli_free(c);
}
END_TEST

/* cram_server - a server engine that has sent the RFC 2195 challenge */
static smtpx__sasl_srv *cram_server(script *s)
{
    smtpx__sasl_srv *st;
    const uint8_t *out;
    size_t n;

    *s = script_of(rfc2195_rnd, sizeof(rfc2195_rnd));
    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_CRAM_MD5,
                             "postoffice.reston.mci.net", script_rnd, s, NULL);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(smtpx__sasl_srv_step(st, NULL, 0, 0),
                     SMTPX__SASL_CHALLENGE);
    out = smtpx__sasl_srv_out(st, &n);
    ck_assert_uint_eq(n, strlen(rfc2195_chal));
    ck_assert(memcmp(out, rfc2195_chal, n) == 0);
    return st;
}

static int cram_server_run(const char *resp, const char *password, int found)
{
    smtpx_auth_secret sec;
    smtpx_auth_info info;
    smtpx__sasl_srv *st;
    script s;
    int rc;

    st = cram_server(&s);
    rc = smtpx__sasl_srv_step(
        st, (const uint8_t *)guard_copy(resp, strlen(resp)), strlen(resp), 1);
    if (rc == SMTPX__SASL_LOOKUP) {
        smtpx__sasl_srv_info(st, &info);
        ck_assert_str_eq(info.authcid, "tim");
        ck_assert_str_eq(info.authzid, "");
        ck_assert_str_eq(info.mech_name, "CRAM-MD5");
        ck_assert_ptr_null(info.secret);
        memset(&sec, 0, sizeof(sec));
        sec.found = found;
        sec.password = (const uint8_t *)password;
        sec.password_len = password ? strlen(password) : 0;
        ck_assert_int_eq(smtpx__sasl_srv_secret(st, found >= 0 ? &sec : NULL),
                         0);
        rc = smtpx__sasl_srv_step(st, NULL, 0, 0);
        /* The end: nothing more is taken. */
        ck_assert_int_eq(smtpx__sasl_srv_step(st, NULL, 0, 1), SMTPX__SASL_BAD);
    }
    smtpx__sasl_srv_free(st);
    return rc;
}

START_TEST(test_cram_server_rfc2195)
{
    smtpx__sasl_srv *st;
    script s;

    ck_assert_int_eq(cram_server_run(rfc2195_resp, "tanstaaftanstaaf", 1),
                     SMTPX__SASL_OK);
    /* Upper-case hex digits are taken too. */
    ck_assert_int_eq(cram_server_run("tim B913A602C7EDA7A495B4E6E7334D3890",
                                     "tanstaaftanstaaf", 1),
                     SMTPX__SASL_OK);
    ck_assert_int_eq(cram_server_run(rfc2195_resp, "tanstaaftanstaafX", 1),
                     SMTPX__SASL_FAIL);
    ck_assert_int_eq(cram_server_run("tim b913a602c7eda7a495b4e6e7334d3891",
                                     "tanstaaftanstaaf", 1),
                     SMTPX__SASL_FAIL);
    /* Unknown user, with or without a secret filled in. */
    ck_assert_int_eq(cram_server_run(rfc2195_resp, "tanstaaftanstaaf", 0),
                     SMTPX__SASL_FAIL);
    ck_assert_int_eq(cram_server_run(rfc2195_resp, NULL, -1), SMTPX__SASL_FAIL);
    /* A secret before the lookup is refused; a lookup with no secret
     * given is an unknown user. */
    st = cram_server(&s);
    ck_assert_int_eq(smtpx__sasl_srv_secret(st, NULL), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx__sasl_srv_step(st, (const uint8_t *)rfc2195_resp,
                                          strlen(rfc2195_resp), 1),
                     SMTPX__SASL_LOOKUP);
    ck_assert_int_eq(smtpx__sasl_srv_step(st, NULL, 0, 0), SMTPX__SASL_FAIL);
    smtpx__sasl_srv_free(st);
}
END_TEST

START_TEST(test_cram_server_misc)
{
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__sasl_srv *st;
    const uint8_t *out;
    size_t n;

    /* Server first: an initial response is BAD. */
    st = smtpx__sasl_srv_new(mem, SMTPX_SASL_CRAM_MD5, "mx.example", NULL, NULL,
                             NULL);
    ck_assert_int_eq(smtpx__sasl_srv_step(st, (const uint8_t *)"x", 1, 1),
                     SMTPX__SASL_BAD);
    smtpx__sasl_srv_free(st);
    /* No random octets, no challenge. */
    st = smtpx__sasl_srv_new(mem, SMTPX_SASL_CRAM_MD5, "mx.example",
                             failing_rnd, NULL, NULL);
    ck_assert_int_eq(smtpx__sasl_srv_step(st, NULL, 0, 0), SMTPX__SASL_FAIL);
    smtpx__sasl_srv_free(st);
    /* The system's random digits look right. */
    st = smtpx__sasl_srv_new(mem, SMTPX_SASL_CRAM_MD5, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(smtpx__sasl_srv_step(st, NULL, 0, 0),
                     SMTPX__SASL_CHALLENGE);
    out = smtpx__sasl_srv_out(st, &n);
    ck_assert_uint_gt(n, 14);
    ck_assert_int_eq(out[0], '<');
    ck_assert(memcmp(out + n - 11, "@localhost>", 11) == 0);
    smtpx__sasl_srv_free(st);
}
END_TEST

/* ---- RFC 7677 3: the SCRAM-SHA-256 example ---- */

static const char r7677_cnonce[] = "rOprNGfwEbeRWgbNEkqO";
static const char r7677_snonce[] = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
static const char r7677_cfirst[] = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
static const char r7677_sfirst[] =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
static const char r7677_cfinal[] =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
static const char r7677_sfinal[] =
    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

static int out_is(const uint8_t *out, size_t n, const char *want)
{
    return n == strlen(want) && (n == 0 || memcmp(out, want, n) == 0);
}

/* cli_feed - a challenge on a guard page */
static int cli_feed(smtpx__sasl_cli *c, const char *in, size_t len,
                    const uint8_t **out, size_t *n)
{
    return smtpx__sasl_cli_step(c, (const uint8_t *)guard_copy(in, len), len,
                                out, n);
}

static int srv_feed(smtpx__sasl_srv *st, const char *in, size_t len)
{
    return smtpx__sasl_srv_step(st, (const uint8_t *)guard_copy(in, len), len,
                                1);
}

/* A string literal, NULs and all. */
#define FEED(st, lit) srv_feed(st, lit, sizeof(lit) - 1)

START_TEST(test_scram_client_rfc7677)
{
    script s = script_of(r7677_cnonce, strlen(r7677_cnonce));
    smtpx__sasl_cli *c;
    const uint8_t *out;
    size_t n;

    c = smtpx__sasl_cli_new(smtpx__mem_default(), SMTPX_SASL_SCRAM_SHA_256,
                            NULL, "user", "pencil", script_rnd, &s);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(smtpx__sasl_cli_initial(c, &out, &n), 1);
    ck_assert(out_is(out, n, r7677_cfirst));
    ck_assert_int_eq(cli_feed(c, r7677_sfirst, strlen(r7677_sfirst), &out, &n),
                     0);
    ck_assert(out_is(out, n, r7677_cfinal));
    ck_assert_int_eq(smtpx__sasl_cli_done(c), 0);
    ck_assert_int_eq(cli_feed(c, r7677_sfinal, strlen(r7677_sfinal), &out, &n),
                     0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(smtpx__sasl_cli_done(c), 1);
    ck_assert_int_eq(cli_feed(c, "", 0, &out, &n), SMTPX__SASL_BAD);
    ck_assert_int_eq(smtpx__sasl_cli_done(c), 0);
    smtpx__sasl_cli_free(c);
}
END_TEST

/* scram_client_at - a client that has sent client-first and, if
 * first_too, the answer to the RFC's server-first */
static smtpx__sasl_cli *scram_client_at(script *s, int first_too)
{
    smtpx__sasl_cli *c;
    const uint8_t *out;
    size_t n;

    *s = script_of(r7677_cnonce, strlen(r7677_cnonce));
    c = smtpx__sasl_cli_new(smtpx__mem_default(), SMTPX_SASL_SCRAM_SHA_256,
                            NULL, "user", "pencil", script_rnd, s);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(smtpx__sasl_cli_initial(c, &out, &n), 1);
    if (first_too)
        ck_assert_int_eq(
            cli_feed(c, r7677_sfirst, strlen(r7677_sfirst), &out, &n), 0);
    return c;
}

START_TEST(test_scram_client_hostile)
{
    /* server-first messages a client must refuse before any work */
    static const char *const bad_first[] = {
        "",
        "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=100000000",
        "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1000001",
        "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4294967296",
        ("r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
         "i=99999999999999999999999"),
        "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
        "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",
        "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=",
        "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=04096",
        "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096x",
        "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==",
        "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,",
        "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,m=x",
        "r=rOprNGfwEbeRWgbNEkqO%hv,i=4096",
        "r=rOprNGfwEbeRWgbNEkqO%hv,s=,i=4096",
        "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ,i=4096",
        "r=rOprNGfwEbeRWgbNEkqO%hv,s=W22Z!J0SNY7soEsUEjb6gQ==,i=4096",
        "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "r=XOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "r=rOprNGfwEbeRWgbNEkqO%h v,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "r=rOprNG,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "m=ext,r=rOprNGfwEbeRWgbNEkqO%hv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqO%hv,i=4096",
        "e=other-error",
        "r=",
    };
    /* server-final messages */
    static const struct {
        const char *in;
        int rc;
    } bad_final[] = {
        {"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G8=", SMTPX__SASL_FAIL},
        {"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", SMTPX__SASL_FAIL},
        /* The same octets with a pad bit set: not base64 we take. */
        {"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=", SMTPX__SASL_BAD},
        {"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", SMTPX__SASL_FAIL},
        {"e=invalid-proof", SMTPX__SASL_FAIL},
        {"e=", SMTPX__SASL_FAIL},
        {"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4", SMTPX__SASL_BAD},
        {"v=", SMTPX__SASL_BAD},
        {"", SMTPX__SASL_BAD},
        {"x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", SMTPX__SASL_BAD},
        {"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,", SMTPX__SASL_BAD},
    };
    smtpx__sasl_cli *c;
    const uint8_t *out;
    size_t i, n;
    script s;

    for (i = 0; i < sizeof(bad_first) / sizeof(bad_first[0]); i++) {
        c = scram_client_at(&s, 0);
        ck_assert_msg(cli_feed(c, bad_first[i], strlen(bad_first[i]), &out,
                               &n) == SMTPX__SASL_BAD,
                      "server-first %s taken", bad_first[i]);
        ck_assert_ptr_null(out);
        ck_assert_int_eq(smtpx__sasl_cli_done(c), 0);
        /* Nothing is answered after an error. */
        ck_assert_int_eq(
            cli_feed(c, r7677_sfirst, strlen(r7677_sfirst), &out, &n),
            SMTPX__SASL_BAD);
        smtpx__sasl_cli_free(c);
    }
    for (i = 0; i < sizeof(bad_final) / sizeof(bad_final[0]); i++) {
        c = scram_client_at(&s, 1);
        ck_assert_msg(cli_feed(c, bad_final[i].in, strlen(bad_final[i].in),
                               &out, &n) == bad_final[i].rc,
                      "server-final %s", bad_final[i].in);
        ck_assert_int_eq(smtpx__sasl_cli_done(c), 0);
        smtpx__sasl_cli_free(c);
    }
    /* An extension after the signature is ignored (RFC 5802 7). */
    c = scram_client_at(&s, 1);
    ck_assert_int_eq(cli_feed(c,
                              "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,"
                              "x=y",
                              strlen(r7677_sfinal) + 4, &out, &n),
                     0);
    ck_assert_int_eq(smtpx__sasl_cli_done(c), 1);
    smtpx__sasl_cli_free(c);
    /* Every proper prefix of the RFC's server-first is refused, but those
     * that end in a shorter count ("i=4", "i=40", "i=409"). */
    for (i = 0; i < strlen(r7677_sfirst); i++) {
        c = scram_client_at(&s, 0);
        ck_assert_int_eq(cli_feed(c, r7677_sfirst, i, &out, &n),
                         i + 3 >= strlen(r7677_sfirst) ? 0 : SMTPX__SASL_BAD);
        smtpx__sasl_cli_free(c);
    }
}
END_TEST

/* scram_server_at - a server engine given the RFC's client-first and the
 * stored keys of "pencil", that has sent server-first */
static smtpx__sasl_srv *scram_server_at(script *s)
{
    uint8_t salt[18];
    smtpx_auth_secret sec;
    smtpx_auth_info info;
    smtpx__sasl_srv *st;
    const uint8_t *out;
    size_t n;

    *s = script_of(r7677_snonce, strlen(r7677_snonce));
    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_SCRAM_SHA_256,
                             "mx.example", script_rnd, s, test_fake_key);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(srv_feed(st, r7677_cfirst, strlen(r7677_cfirst)),
                     SMTPX__SASL_LOOKUP);
    smtpx__sasl_srv_info(st, &info);
    ck_assert_str_eq(info.authcid, "user");
    ck_assert_str_eq(info.authzid, "");
    memset(&sec, 0, sizeof(sec));
    sec.found = 1;
    sec.salt = salt;
    sec.salt_len = 16;
    ck_assert_int_eq(
        smtpx__b64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, salt, sizeof(salt)),
        16);
    sec.iterations = 4096;
    ck_assert_int_eq(smtpx_scram_keys((const uint8_t *)"pencil", 6, salt, 16,
                                      4096, sec.stored_key, sec.server_key),
                     0);
    ck_assert_int_eq(smtpx__sasl_srv_secret(st, &sec), 0);
    ck_assert_int_eq(smtpx__sasl_srv_step(st, NULL, 0, 0),
                     SMTPX__SASL_CHALLENGE);
    out = smtpx__sasl_srv_out(st, &n);
    ck_assert_msg(out_is(out, n, r7677_sfirst), "server-first %.*s", (int)n,
                  out);
    return st;
}

START_TEST(test_scram_server_rfc7677)
{
    smtpx_auth_info info;
    smtpx__sasl_srv *st;
    const uint8_t *out;
    size_t n;
    script s;

    st = scram_server_at(&s);
    ck_assert_int_eq(srv_feed(st, r7677_cfinal, strlen(r7677_cfinal)),
                     SMTPX__SASL_CHALLENGE);
    out = smtpx__sasl_srv_out(st, &n);
    ck_assert(out_is(out, n, r7677_sfinal));
    ck_assert_int_eq(srv_feed(st, "", 0), SMTPX__SASL_OK);
    smtpx__sasl_srv_info(st, &info);
    ck_assert_str_eq(info.authcid, "user");
    ck_assert_ptr_null(info.secret);
    ck_assert_uint_eq(info.mech, SMTPX_SASL_SCRAM_SHA_256);
    smtpx__sasl_srv_free(st);
    /* After server-final only an empty response is right. */
    st = scram_server_at(&s);
    ck_assert_int_eq(srv_feed(st, r7677_cfinal, strlen(r7677_cfinal)),
                     SMTPX__SASL_CHALLENGE);
    ck_assert_int_eq(srv_feed(st, "x", 1), SMTPX__SASL_BAD);
    smtpx__sasl_srv_free(st);
}
END_TEST

START_TEST(test_scram_server_final_hostile)
{
    static const struct {
        const char *in;
        int rc;
    } cases[] = {
        /* A wrong proof. */
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=",
         SMTPX__SASL_FAIL},
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
         "p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
         SMTPX__SASL_FAIL},
        /* The RFC's proof with a pad bit set. */
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVR=",
         SMTPX__SASL_BAD},
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
         "p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
         SMTPX__SASL_FAIL},
        /* Channel binding data of another gs2 header ("y,,"). */
        {"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
         SMTPX__SASL_BAD},
        /* Another nonce, a shorter one, none. */
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,"
         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
         SMTPX__SASL_BAD},
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO,"
         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
         SMTPX__SASL_BAD},
        {"c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
         SMTPX__SASL_BAD},
        /* Order, missing or extra parts. */
        {"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,c=biws,"
         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
         SMTPX__SASL_BAD},
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
         SMTPX__SASL_BAD},
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=1",
         SMTPX__SASL_BAD},
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,",
         SMTPX__SASL_BAD},
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",
         SMTPX__SASL_BAD},
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=dHzb",
         SMTPX__SASL_BAD},
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,1=2,"
         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
         SMTPX__SASL_BAD},
        {"", SMTPX__SASL_BAD},
        {",", SMTPX__SASL_BAD},
    };
    smtpx__sasl_srv *st;
    size_t i;
    script s;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        st = scram_server_at(&s);
        ck_assert_msg(srv_feed(st, cases[i].in, strlen(cases[i].in)) ==
                          cases[i].rc,
                      "client-final %zu", i);
        ck_assert_int_eq(smtpx__sasl_srv_step(st, NULL, 0, 1), SMTPX__SASL_BAD);
        smtpx__sasl_srv_free(st);
    }
    /* An extension before the proof is not part of the proof's message
     * in this test, so the RFC proof no longer matches: FAIL, not BAD. */
    st = scram_server_at(&s);
    ck_assert_int_eq(
        srv_feed(st,
                 "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                 "x=1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                 strlen(r7677_cfinal) + 4),
        SMTPX__SASL_FAIL);
    smtpx__sasl_srv_free(st);
    /* Every proper prefix of the RFC's client-final. */
    for (i = 0; i < strlen(r7677_cfinal); i++) {
        st = scram_server_at(&s);
        ck_assert_int_eq(srv_feed(st, r7677_cfinal, i), SMTPX__SASL_BAD);
        smtpx__sasl_srv_free(st);
    }
}
END_TEST

START_TEST(test_scram_keys)
{
    uint8_t a[32], b[32];

    ck_assert_int_eq(
        smtpx_scram_keys(NULL, 0, (const uint8_t *)"s", 1, 4096, a, b),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(
        smtpx_scram_keys((const uint8_t *)"p", 1, NULL, 0, 4096, a, b),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_scram_keys((const uint8_t *)"p", 1,
                                      (const uint8_t *)"s", 1, 0, a, b),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_scram_keys((const uint8_t *)"p", 1,
                                      (const uint8_t *)"s", 1, 1, NULL, b),
                     SMTPX_ERR_INVALID_ARGUMENT);
    /* The RFC 7677 keys are checked by test_scram_server_rfc7677: the
     * engine given them accepts the RFC's proof and signs as the RFC. */
    ck_assert_int_eq(smtpx_scram_keys((const uint8_t *)"pencil", 6,
                                      (const uint8_t *)"s", 1, 1, a, b),
                     0);
    ck_assert(memcmp(a, b, 32) != 0);
}
END_TEST

/* ---- unknown users ---- */

/* scram_unknown_salt - the s= a server engine sends for user (found 0) */
static void scram_unknown_salt(const char *user, const uint8_t *key, char *salt,
                               size_t size, int use_null)
{
    smtpx_auth_secret sec;
    smtpx__sasl_srv *st;
    const uint8_t *out;
    char msg[300];
    const char *p, *e;
    size_t n;

    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_SCRAM_SHA_256,
                             NULL, NULL, NULL, key);
    snprintf(msg, sizeof(msg), "n,,n=%s,r=abcdef", user);
    ck_assert_int_eq(srv_feed(st, msg, strlen(msg)), SMTPX__SASL_LOOKUP);
    memset(&sec, 0, sizeof(sec));
    sec.iterations = 1; /* ignored: not found */
    ck_assert_int_eq(smtpx__sasl_srv_secret(st, use_null ? NULL : &sec), 0);
    ck_assert_int_eq(smtpx__sasl_srv_step(st, NULL, 0, 0),
                     SMTPX__SASL_CHALLENGE);
    out = smtpx__sasl_srv_out(st, &n);
    ck_assert_uint_lt(n, sizeof(msg));
    memcpy(msg, out, n);
    msg[n] = '\0';
    ck_assert(strncmp(msg, "r=abcdef", 8) == 0);
    p = strstr(msg, ",s=");
    e = strstr(msg, ",i=4096");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e, ",i=4096");
    ck_assert_uint_lt((size_t)(e - p - 3), size);
    memcpy(salt, p + 3, (size_t)(e - p - 3));
    salt[e - p - 3] = '\0';
    ck_assert_uint_eq(strlen(salt), SMTPX__B64_LEN(16));
    /* A well-formed client-final with any proof: the end is FAIL. */
    {
        char fin[300];
        int k = snprintf(fin, sizeof(fin), "c=biws,%.*s,p=%s", (int)(p - msg),
                         msg, "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        ck_assert_int_eq(srv_feed(st, fin, (size_t)k), SMTPX__SASL_FAIL);
    }
    smtpx__sasl_srv_free(st);
}

START_TEST(test_scram_unknown_user)
{
    static const uint8_t other_key[32] = {9};
    char s1[64], s2[64], s3[64], s4[64];

    scram_unknown_salt("nobody", test_fake_key, s1, sizeof(s1), 0);
    scram_unknown_salt("nobody", test_fake_key, s2, sizeof(s2), 1);
    scram_unknown_salt("somebody", test_fake_key, s3, sizeof(s3), 0);
    scram_unknown_salt("nobody", other_key, s4, sizeof(s4), 0);
    ck_assert_str_eq(s1, s2);
    ck_assert_str_ne(s1, s3);
    ck_assert_str_ne(s1, s4);
}
END_TEST

/* ---- end to end: client engine against server engine ---- */

enum {
    X_OK = 1,
    X_FAIL,
    X_BAD,
    X_NOMEM,
    X_CLI_BAD,
    X_CLI_FAIL,
    X_CLI_NULL,
    X_SRV_NULL,
    X_LOOP
};

/* The server's one account. */
typedef struct account {
    const char *user;
    const char *password; /* or the token */
} account;

typedef struct outcome {
    int result;
    char authcid[300];
    char authzid[300];
    int refused;
} outcome;

static const uint8_t acct_salt[] = "NaCl-for-tests";

/* app_lookup - on_auth_lookup */
static int app_lookup(smtpx__sasl_srv *st, const account *a, unsigned mech)
{
    smtpx_auth_secret sec;
    smtpx_auth_info info;
    int rc;

    smtpx__sasl_srv_info(st, &info);
    ck_assert_ptr_null(info.secret);
    memset(&sec, 0, sizeof(sec));
    if (strcmp(info.authcid, a->user) == 0) {
        sec.found = 1;
        if (mech == SMTPX_SASL_CRAM_MD5) {
            sec.password = (const uint8_t *)a->password;
            sec.password_len = strlen(a->password);
        } else {
            sec.salt = acct_salt;
            sec.salt_len = sizeof(acct_salt) - 1;
            sec.iterations = 4096;
            ck_assert_int_eq(smtpx_scram_keys((const uint8_t *)a->password,
                                              strlen(a->password), sec.salt,
                                              sec.salt_len, sec.iterations,
                                              sec.stored_key, sec.server_key),
                             0);
        }
    }
    rc = smtpx__sasl_srv_secret(st, &sec);
    smtpx__wipe(&sec, sizeof(sec));
    return rc;
}

/* app_verify - on_auth with a secret: 1 to let in */
static int app_verify(smtpx__sasl_srv *st, const account *a)
{
    smtpx_auth_info info;

    smtpx__sasl_srv_info(st, &info);
    ck_assert_ptr_nonnull(info.secret);
    return strcmp(info.authcid, a->user) == 0 &&
           info.secret_len == strlen(a->password) &&
           memcmp(info.secret, a->password, info.secret_len) == 0;
}

static void note_names(smtpx__sasl_srv *st, outcome *o)
{
    smtpx_auth_info info;

    smtpx__sasl_srv_info(st, &info);
    snprintf(o->authcid, sizeof(o->authcid), "%s", info.authcid);
    snprintf(o->authzid, sizeof(o->authzid), "%s", info.authzid);
}

static int cli_result(int rc)
{
    return rc == SMTPX__SASL_BAD    ? X_CLI_BAD
           : rc == SMTPX__SASL_FAIL ? X_CLI_FAIL
                                    : X_NOMEM;
}

/* exchange - one AUTH between the engines, as the cores would run it */
static void exchange(const smtpx_mem *mem, unsigned mech, const char *authzid,
                     const char *user, const char *secret, const account *a,
                     int with_initial, outcome *o)
{
    smtpx__sasl_cli *c;
    smtpx__sasl_srv *st;
    const uint8_t *out = NULL, *ch;
    size_t olen = 0, chlen;
    int rc, has = 0, round, r;

    memset(o, 0, sizeof(*o));
    c = smtpx__sasl_cli_new(mem, mech, authzid, user, secret, NULL, NULL);
    if (c == NULL) {
        o->result = X_CLI_NULL;
        return;
    }
    st =
        smtpx__sasl_srv_new(mem, mech, "mx.example", NULL, NULL, test_fake_key);
    if (st == NULL) {
        smtpx__sasl_cli_free(c);
        o->result = X_SRV_NULL;
        return;
    }
    if (with_initial)
        has = smtpx__sasl_cli_initial(c, &out, &olen);
    rc = smtpx__sasl_srv_step(st, out, olen, has);
    for (round = 0; o->result == 0 && round < 10; round++) {
        switch (rc) {
        case SMTPX__SASL_CHALLENGE:
            ch = smtpx__sasl_srv_out(st, &chlen);
            r = smtpx__sasl_cli_step(c, ch, chlen, &out, &olen);
            if (r != 0)
                o->result = cli_result(r);
            else
                rc = smtpx__sasl_srv_step(st, out, olen, 1);
            break;
        case SMTPX__SASL_LOOKUP:
            if (app_lookup(st, a, mech) != 0)
                o->result = X_NOMEM;
            else
                rc = smtpx__sasl_srv_step(st, NULL, 0, 0);
            break;
        case SMTPX__SASL_VERIFY:
            note_names(st, o);
            if (app_verify(st, a)) {
                ck_assert_int_eq(smtpx__sasl_cli_done(c), 1);
                o->result = X_OK;
                break;
            }
            rc = smtpx__sasl_srv_refused(st);
            if (rc == SMTPX__SASL_CHALLENGE) {
                /* The token mechanisms say why; the client answers, then
                 * the core sends 535 without another step. */
                o->refused = 1;
                ch = smtpx__sasl_srv_out(st, &chlen);
                r = smtpx__sasl_cli_step(c, ch, chlen, &out, &olen);
                if (r != 0) {
                    o->result = cli_result(r);
                    break;
                }
                ck_assert_uint_eq(olen, mech == SMTPX_SASL_OAUTHBEARER ? 1 : 0);
                if (olen == 1)
                    ck_assert_int_eq(out[0], 1);
                rc = smtpx__sasl_srv_step(st, out, olen, 1);
                ck_assert_int_eq(rc, SMTPX__SASL_FAIL);
            }
            o->result = rc == SMTPX__SASL_NOMEM ? X_NOMEM : X_FAIL;
            break;
        case SMTPX__SASL_OK:
            note_names(st, o);
            ck_assert_int_eq(smtpx__sasl_cli_done(c), 1);
            o->result = X_OK;
            break;
        case SMTPX__SASL_FAIL:
            o->result = X_FAIL;
            break;
        case SMTPX__SASL_BAD:
            o->result = X_BAD;
            break;
        default:
            o->result = X_NOMEM;
            break;
        }
    }
    if (o->result == 0)
        o->result = X_LOOP;
    smtpx__sasl_srv_free(st);
    smtpx__sasl_cli_free(c);
}

#define PW  "tanstaaf,=pw\xc3\xa9"
#define TOK "ya29.a0Af-_~+/tok=="

static const struct e2e_case {
    unsigned mech;
    const char *authzid, *user, *secret;
    account acct;
    int result;
} e2e_cases[] = {
    {SMTPX_SASL_PLAIN,
     NULL,
     "tim@example.org",
     PW,
     {"tim@example.org", PW},
     X_OK},
    {SMTPX_SASL_PLAIN,
     "boss",
     "tim@example.org",
     PW,
     {"tim@example.org", PW},
     X_OK},
    {SMTPX_SASL_PLAIN,
     NULL,
     "tim@example.org",
     "wrong",
     {"tim@example.org", PW},
     X_FAIL},
    {SMTPX_SASL_PLAIN, NULL, "bob", PW, {"tim@example.org", PW}, X_FAIL},
    {SMTPX_SASL_LOGIN,
     NULL,
     "tim@example.org",
     PW,
     {"tim@example.org", PW},
     X_OK},
    {SMTPX_SASL_LOGIN,
     NULL,
     "tim@example.org",
     "wrong",
     {"tim@example.org", PW},
     X_FAIL},
    {SMTPX_SASL_CRAM_MD5,
     NULL,
     "tim@example.org",
     PW,
     {"tim@example.org", PW},
     X_OK},
    {SMTPX_SASL_CRAM_MD5,
     NULL,
     "tim@example.org",
     "wrong",
     {"tim@example.org", PW},
     X_FAIL},
    {SMTPX_SASL_CRAM_MD5, NULL, "bob", PW, {"tim@example.org", PW}, X_FAIL},
    {SMTPX_SASL_SCRAM_SHA_256,
     NULL,
     "tim@example.org",
     PW,
     {"tim@example.org", PW},
     X_OK},
    {SMTPX_SASL_SCRAM_SHA_256, "a=b,c", "x,y=z", PW, {"x,y=z", PW}, X_OK},
    {SMTPX_SASL_SCRAM_SHA_256,
     NULL,
     "tim@example.org",
     "wrong",
     {"tim@example.org", PW},
     X_FAIL},
    {SMTPX_SASL_SCRAM_SHA_256,
     NULL,
     "bob",
     PW,
     {"tim@example.org", PW},
     X_FAIL},
    {SMTPX_SASL_XOAUTH2,
     NULL,
     "tim@example.org",
     TOK,
     {"tim@example.org", TOK},
     X_OK},
    {SMTPX_SASL_XOAUTH2,
     NULL,
     "tim@example.org",
     "expired",
     {"tim@example.org", TOK},
     X_FAIL},
    {SMTPX_SASL_OAUTHBEARER,
     NULL,
     "tim,=x@example.org",
     TOK,
     {"tim,=x@example.org", TOK},
     X_OK},
    {SMTPX_SASL_OAUTHBEARER, NULL, "", TOK, {"", TOK}, X_OK},
    {SMTPX_SASL_OAUTHBEARER,
     NULL,
     "tim@example.org",
     "expired",
     {"tim@example.org", TOK},
     X_FAIL},
};

#define E2E_N ((int)(sizeof(e2e_cases) / sizeof(e2e_cases[0])))

START_TEST(test_e2e)
{
    const struct e2e_case *k = &e2e_cases[_i / 2];
    int with_initial = _i % 2;
    outcome o;

    exchange(smtpx__mem_default(), k->mech, k->authzid, k->user, k->secret,
             &k->acct, with_initial, &o);
    ck_assert_msg(o.result == k->result, "%s %s initial %d: got %d",
                  smtpx_sasl_name(k->mech), k->user, with_initial, o.result);
    if (o.result == X_OK) {
        ck_assert_str_eq(o.authcid, k->user);
        if (k->mech == SMTPX_SASL_PLAIN || k->mech == SMTPX_SASL_SCRAM_SHA_256)
            ck_assert_str_eq(o.authzid, k->authzid ? k->authzid : "");
        else
            ck_assert_str_eq(o.authzid, "");
    }
    /* Only the token mechanisms explain a refusal in a challenge. */
    ck_assert_int_eq(o.refused, k->result == X_FAIL &&
                                    (k->mech == SMTPX_SASL_XOAUTH2 ||
                                     k->mech == SMTPX_SASL_OAUTHBEARER));
}
END_TEST

/* Allocation failures: fail the Nth allocation, for every N, over a whole
 * exchange.  Each run must end cleanly (ASan checks the rest) and either
 * report NOMEM or reach the right result. */
START_TEST(test_alloc_sweep)
{
    const struct e2e_case *k = &e2e_cases[_i];
    long n;

    for (n = 1; n < 200; n++) {
        failmalloc fm = {.fail_at = n};
        smtpx_mem mem = failmalloc_mem(&fm);
        outcome o;

        exchange(&mem, k->mech, k->authzid, k->user, k->secret, &k->acct, 1,
                 &o);
        ck_assert_msg(fm.live == 0, "%s fail at %ld: %ld blocks leaked",
                      smtpx_sasl_name(k->mech), n, fm.live);
        if (fm.failures == 0) {
            ck_assert_int_eq(o.result, k->result);
            return;
        }
        ck_assert_msg(o.result == X_NOMEM || o.result == X_CLI_NULL ||
                          o.result == X_SRV_NULL,
                      "%s fail at %ld: result %d", smtpx_sasl_name(k->mech), n,
                      o.result);
    }
    ck_abort_msg("no run without a failure");
}
END_TEST

/* ---- server parsers on hostile input ---- */

static const struct bad_case {
    unsigned mech;
    bin first; /* sent before, when not empty (LOGIN's user name) */
    bin in;
} bad_cases[] = {
    /* PLAIN (RFC 4616 2) */
    {SMTPX_SASL_PLAIN, BIN(""), BIN("")},
    {SMTPX_SASL_PLAIN, BIN(""), BIN("user")},
    {SMTPX_SASL_PLAIN, BIN(""), BIN("\0user")},
    {SMTPX_SASL_PLAIN, BIN(""), BIN("\0\0pass")},
    {SMTPX_SASL_PLAIN, BIN(""), BIN("\0user\0")},
    {SMTPX_SASL_PLAIN, BIN(""), BIN("\0us\0er\0pass")},
    {SMTPX_SASL_PLAIN, BIN(""), BIN("\0\0")},
    {SMTPX_SASL_PLAIN, BIN(""), BIN("\0")},
    {SMTPX_SASL_PLAIN, BIN(""), BIN("a\001b\0user\0pass")},
    {SMTPX_SASL_PLAIN, BIN(""), BIN("\0us\177er\0pass")},
    {SMTPX_SASL_PLAIN, BIN(""), BIN("\0user\n\0pass")},
    {SMTPX_SASL_PLAIN, BIN(""), BIN("\0\xff\0pass")},
    {SMTPX_SASL_PLAIN, BIN(""), BIN("\0\xc3(\0pass")},
    /* LOGIN */
    {SMTPX_SASL_LOGIN, BIN(""), BIN("")},
    {SMTPX_SASL_LOGIN, BIN(""), BIN("us\rer")},
    {SMTPX_SASL_LOGIN, BIN(""), BIN("us\0er")},
    {SMTPX_SASL_LOGIN, BIN("tim"), BIN("")},
    {SMTPX_SASL_LOGIN, BIN("tim"), BIN("pa\0ss")},
    /* CRAM-MD5 (RFC 2195 2) */
    {SMTPX_SASL_CRAM_MD5, BIN(""), BIN("")},
    {SMTPX_SASL_CRAM_MD5, BIN(""), BIN("tim")},
    {SMTPX_SASL_CRAM_MD5, BIN(""), BIN("tim b913a602c7eda7a495b4e6e7334d389")},
    {SMTPX_SASL_CRAM_MD5, BIN(""),
     BIN("tim b913a602c7eda7a495b4e6e7334d38900")},
    {SMTPX_SASL_CRAM_MD5, BIN(""), BIN("timb913a602c7eda7a495b4e6e7334d3890")},
    {SMTPX_SASL_CRAM_MD5, BIN(""), BIN(" b913a602c7eda7a495b4e6e7334d3890")},
    {SMTPX_SASL_CRAM_MD5, BIN(""), BIN("tim g913a602c7eda7a495b4e6e7334d3890")},
    {SMTPX_SASL_CRAM_MD5, BIN(""), BIN("tim b913a602c7eda7a495b4e6e7334d389 ")},
    {SMTPX_SASL_CRAM_MD5, BIN(""),
     BIN("t\001m b913a602c7eda7a495b4e6e7334d3890")},
    {SMTPX_SASL_CRAM_MD5, BIN(""),
     BIN("t\0m b913a602c7eda7a495b4e6e7334d3890")},
    /* SCRAM-SHA-256 client-first (RFC 5802 7) */
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=user")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=user,")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=user,r=")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,r=abc,n=user")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("p=tls-unique,,n=user,r=abc")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("x,,n=user,r=abc")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,m=ext,n=user,r=abc")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=user,r=abc,m=ext")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,n=user,r=abc")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,a=,n=user,r=abc")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,b=x,n=user,r=abc")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=,r=abc")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=us=2Xer,r=abc")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=us=2cer,r=abc")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=user=,r=abc")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=user=3,r=abc")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,a=x=4,,n=user,r=abc")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=user,r=a b")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=user,r=a\tb")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=user,r=abc,")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=user,r=abc,1=x")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=user,r=abc,x")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=user,r=abc,x=")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=u\0ser,r=abc")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=u\001ser,r=abc")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=u\xffser,r=abc")},
    {SMTPX_SASL_SCRAM_SHA_256, BIN(""), BIN("n,,n=user,r=ab\0c")},
    /* XOAUTH2 */
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN("")},
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN(KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN("user=tim" KV "auth=Bearer tok" KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN("user=tim" KV "auth=Bearer tok")},
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN("user=tim" KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN("auth=Bearer tok" KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN("user=" KV "auth=Bearer tok" KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN("user=tim" KV "auth=Basic tok" KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN("user=tim" KV "auth=Bearer" KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN("user=tim" KV "auth=Bearer " KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN("user=tim" KV "auth=Bearertok" KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""),
     BIN("user=tim" KV "auth=Bearer to ken" KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN("user=tim" KV "auth=Bearer =ab" KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN("user=tim" KV "auth=Bearer a=b" KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""),
     BIN("user=tim" KV "auth=Bearer tok" KV KV "x")},
    {SMTPX_SASL_XOAUTH2, BIN(""),
     BIN("user=tim" KV "auth=Bearer tok" KV KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""),
     BIN("user=t\002im" KV "auth=Bearer tok" KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN("user=t\tim" KV "auth=Bearer tok" KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN("=tim" KV "auth=Bearer tok" KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN("user" KV "auth=Bearer tok" KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""),
     BIN("user=tim" KV "user=bob" KV "auth=Bearer tok" KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""),
     BIN("user=tim" KV "auth=Bearer tok" KV "auth=Bearer tok" KV KV)},
    {SMTPX_SASL_XOAUTH2, BIN(""), BIN("user=tim" KV "auth=Bearer t\0k" KV KV)},
    /* OAUTHBEARER (RFC 7628 3.1) */
    {SMTPX_SASL_OAUTHBEARER, BIN(""), BIN("")},
    {SMTPX_SASL_OAUTHBEARER, BIN(""), BIN(KV)},
    {SMTPX_SASL_OAUTHBEARER, BIN(""), BIN("n,,auth=Bearer tok" KV KV)},
    {SMTPX_SASL_OAUTHBEARER, BIN(""), BIN("n,," KV "auth=Bearer tok" KV)},
    {SMTPX_SASL_OAUTHBEARER, BIN(""), BIN("n,," KV KV)},
    {SMTPX_SASL_OAUTHBEARER, BIN(""), BIN("n,," KV)},
    {SMTPX_SASL_OAUTHBEARER, BIN(""), BIN("n,,")},
    {SMTPX_SASL_OAUTHBEARER, BIN(""),
     BIN("p=tls-unique,," KV "auth=Bearer tok" KV KV)},
    {SMTPX_SASL_OAUTHBEARER, BIN(""),
     BIN("n,a=us=3xer," KV "auth=Bearer tok" KV KV)},
    {SMTPX_SASL_OAUTHBEARER, BIN(""),
     BIN("n,a=u\002ser," KV "auth=Bearer tok" KV KV)},
    {SMTPX_SASL_OAUTHBEARER, BIN(""),
     BIN("n,a=user" KV "auth=Bearer tok" KV KV)},
    {SMTPX_SASL_OAUTHBEARER, BIN(""),
     BIN("n,," KV "auth=Bearer tok" KV KV "junk")},
    {SMTPX_SASL_OAUTHBEARER, BIN(""),
     BIN("n,," KV "host" KV "auth=Bearer tok" KV KV)},
    {SMTPX_SASL_OAUTHBEARER, BIN(""), BIN("n,," KV "auth=Bearer t k" KV KV)},
    {SMTPX_SASL_OAUTHBEARER, BIN(""),
     BIN("n,," KV "auth=Bearer tok" KV "auth=Bearer tok" KV KV)},
    {SMTPX_SASL_OAUTHBEARER, BIN(""),
     BIN("n,," KV "h\0st=x" KV "auth=Bearer tok" KV KV)},
    {SMTPX_SASL_OAUTHBEARER, BIN(""), BIN("n,," KV "host=\001x" KV KV)},
};

#define BAD_N ((int)(sizeof(bad_cases) / sizeof(bad_cases[0])))

/* bad_run - feed a bad case after an empty challenge (with_initial 0) or
 * as the initial response */
static int bad_run(const struct bad_case *b, int with_initial)
{
    static const uint8_t rnd[16] = {0};
    script s = script_of(rnd, sizeof(rnd));
    smtpx__sasl_srv *st;
    int rc;

    st = smtpx__sasl_srv_new(smtpx__mem_default(), b->mech, "mx.example",
                             script_rnd, &s, test_fake_key);
    ck_assert_ptr_nonnull(st);
    if (!with_initial || b->mech == SMTPX_SASL_CRAM_MD5)
        ck_assert_int_eq(smtpx__sasl_srv_step(st, NULL, 0, 0),
                         SMTPX__SASL_CHALLENGE);
    if (b->first.n > 0)
        ck_assert_int_eq(srv_feed(st, b->first.p, b->first.n),
                         SMTPX__SASL_CHALLENGE);
    rc = srv_feed(st, b->in.p, b->in.n);
    /* Whatever happened, the exchange is over. */
    ck_assert_int_eq(srv_feed(st, "x", 1), SMTPX__SASL_BAD);
    smtpx__sasl_srv_free(st);
    return rc;
}

START_TEST(test_server_bad)
{
    const struct bad_case *b = &bad_cases[_i];

    ck_assert_msg(bad_run(b, 0) == SMTPX__SASL_BAD, "%s case %d accepted",
                  smtpx_sasl_name(b->mech), _i);
    if (b->mech != SMTPX_SASL_CRAM_MD5)
        ck_assert_msg(bad_run(b, 1) == SMTPX__SASL_BAD,
                      "%s case %d accepted as initial response",
                      smtpx_sasl_name(b->mech), _i);
}
END_TEST

/* Valid responses and what the engine makes of them. */
static const struct good_case {
    unsigned mech;
    bin in;
    int rc;
    const char *authzid, *authcid, *secret;
} good_cases[] = {
    {SMTPX_SASL_PLAIN, BIN("\0tim\0tanstaaf"), SMTPX__SASL_VERIFY, "", "tim",
     "tanstaaf"},
    {SMTPX_SASL_PLAIN, BIN("boss\0tim\0pass word\xff"), SMTPX__SASL_VERIFY,
     "boss", "tim", "pass word\xff"},
    {SMTPX_SASL_PLAIN, BIN("\0\xc3\xa9l\xc3\xa8ve\0p"), SMTPX__SASL_VERIFY, "",
     "\xc3\xa9l\xc3\xa8ve", "p"},
    {SMTPX_SASL_SCRAM_SHA_256, BIN("n,,n=user,r=abc"), SMTPX__SASL_LOOKUP, "",
     "user", NULL},
    {SMTPX_SASL_SCRAM_SHA_256, BIN("y,a=bo=2Css=3D,n=us=3Der=2C,r=a,x=y,z=="),
     SMTPX__SASL_LOOKUP, "bo,ss=", "us=er,", NULL},
    {SMTPX_SASL_XOAUTH2,
     BIN("user=tim@example.org" KV "auth=Bearer ya29.x-_~" KV KV),
     SMTPX__SASL_VERIFY, "", "tim@example.org", "ya29.x-_~"},
    {SMTPX_SASL_XOAUTH2, BIN("auth=bearer  tok==" KV "x=y" KV "user=tim" KV KV),
     SMTPX__SASL_VERIFY, "", "tim", "tok=="},
    /* RFC 7628 4.1 */
    {SMTPX_SASL_OAUTHBEARER,
     BIN("n,a=user@example.com," KV "host=server.example.com" KV "port=143" KV
         "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==" KV KV),
     SMTPX__SASL_VERIFY, "", "user@example.com",
     "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="},
    {SMTPX_SASL_OAUTHBEARER, BIN("n,," KV "auth=Bearer tok" KV KV),
     SMTPX__SASL_VERIFY, "", "", "tok"},
};

START_TEST(test_server_good)
{
    const struct good_case *g = &good_cases[_i];
    smtpx_auth_info info;
    smtpx__sasl_srv *st;

    st = smtpx__sasl_srv_new(smtpx__mem_default(), g->mech, NULL, NULL, NULL,
                             test_fake_key);
    ck_assert_int_eq(srv_feed(st, g->in.p, g->in.n), g->rc);
    smtpx__sasl_srv_info(st, &info);
    ck_assert_str_eq(info.authzid, g->authzid);
    ck_assert_str_eq(info.authcid, g->authcid);
    if (g->secret == NULL) {
        ck_assert_ptr_null(info.secret);
    } else {
        ck_assert_uint_eq(info.secret_len, strlen(g->secret));
        ck_assert(memcmp(info.secret, g->secret, info.secret_len) == 0);
    }
    smtpx__sasl_srv_free(st);
}
END_TEST

START_TEST(test_server_limits)
{
    char buf[2000], user[300];
    smtpx__sasl_srv *st;
    size_t n;

    memset(user, 'u', sizeof(user));
    /* PLAIN: authzid and authcid up to 255 octets, passwd up to 1024. */
    buf[0] = '\0';
    memcpy(buf + 1, user, 255);
    memcpy(buf + 256, "\0pw", 3);
    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_PLAIN, NULL, NULL,
                             NULL, NULL);
    ck_assert_int_eq(srv_feed(st, buf, 259), SMTPX__SASL_VERIFY);
    smtpx__sasl_srv_free(st);
    memcpy(buf + 1, user, 256);
    memcpy(buf + 257, "\0pw", 3);
    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_PLAIN, NULL, NULL,
                             NULL, NULL);
    ck_assert_int_eq(srv_feed(st, buf, 260), SMTPX__SASL_BAD);
    smtpx__sasl_srv_free(st);
    memcpy(buf, user, 256);
    memcpy(buf + 256, "\0u\0pw", 5);
    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_PLAIN, NULL, NULL,
                             NULL, NULL);
    ck_assert_int_eq(srv_feed(st, buf, 261), SMTPX__SASL_BAD);
    smtpx__sasl_srv_free(st);
    memcpy(buf, "\0u\0", 3);
    memset(buf + 3, 'p', 1025);
    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_PLAIN, NULL, NULL,
                             NULL, NULL);
    ck_assert_int_eq(srv_feed(st, buf, 3 + 1024), SMTPX__SASL_VERIFY);
    smtpx__sasl_srv_free(st);
    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_PLAIN, NULL, NULL,
                             NULL, NULL);
    ck_assert_int_eq(srv_feed(st, buf, 3 + 1025), SMTPX__SASL_BAD);
    smtpx__sasl_srv_free(st);
    /* LOGIN: the same bounds. */
    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_LOGIN, NULL, NULL,
                             NULL, NULL);
    ck_assert_int_eq(srv_feed(st, user, 256), SMTPX__SASL_BAD);
    smtpx__sasl_srv_free(st);
    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_LOGIN, NULL, NULL,
                             NULL, NULL);
    ck_assert_int_eq(srv_feed(st, user, 255), SMTPX__SASL_CHALLENGE);
    ck_assert_int_eq(srv_feed(st, buf + 3, 1025), SMTPX__SASL_BAD);
    smtpx__sasl_srv_free(st);
    /* SCRAM: 255 octets once decoded, whatever the escapes. */
    for (n = 0; n < 85; n++)
        memcpy(buf + 5 + 3 * n, "=2C", 3);
    memcpy(buf, "n,,n=", 5);
    memcpy(buf + 5 + 255, ",r=x", 4);
    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_SCRAM_SHA_256,
                             NULL, NULL, NULL, test_fake_key);
    ck_assert_int_eq(srv_feed(st, buf, 5 + 255 + 4), SMTPX__SASL_LOOKUP);
    smtpx__sasl_srv_free(st);
    memcpy(buf + 5, user, 256);
    memcpy(buf + 5 + 256, ",r=x", 4);
    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_SCRAM_SHA_256,
                             NULL, NULL, NULL, test_fake_key);
    ck_assert_int_eq(srv_feed(st, buf, 5 + 256 + 4), SMTPX__SASL_BAD);
    smtpx__sasl_srv_free(st);
    /* 86 escapes decode to 86 octets, 258 raw: fine too. */
    for (n = 0; n < 86; n++)
        memcpy(buf + 5 + 3 * n, "=3D", 3);
    memcpy(buf + 5 + 258, ",r=x", 4);
    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_SCRAM_SHA_256,
                             NULL, NULL, NULL, test_fake_key);
    ck_assert_int_eq(srv_feed(st, buf, 5 + 258 + 4), SMTPX__SASL_LOOKUP);
    smtpx__sasl_srv_free(st);
}
END_TEST

/* No prefix of a valid response makes an engine read past its end; each
 * ends the exchange or asks for what the prefix allows. */
START_TEST(test_server_prefixes)
{
    static const struct {
        unsigned mech;
        bin in;
    } full[] = {
        {SMTPX_SASL_PLAIN, BIN("boss\0tim\0tanstaaf")},
        {SMTPX_SASL_LOGIN, BIN("tim")},
        {SMTPX_SASL_CRAM_MD5, BIN("tim b913a602c7eda7a495b4e6e7334d3890")},
        {SMTPX_SASL_SCRAM_SHA_256, BIN("y,a=bo=2Css,n=us=3Der,r=abc,x=y")},
        {SMTPX_SASL_XOAUTH2, BIN("user=tim" KV "auth=Bearer tok" KV KV)},
        {SMTPX_SASL_OAUTHBEARER,
         BIN("n,a=tim," KV "host=x" KV "auth=Bearer tok" KV KV)},
    };
    size_t k, n;

    for (k = 0; k < sizeof(full) / sizeof(full[0]); k++) {
        for (n = 0; n <= full[k].in.n; n++) {
            smtpx__sasl_srv *st =
                smtpx__sasl_srv_new(smtpx__mem_default(), full[k].mech, NULL,
                                    NULL, NULL, test_fake_key);
            int rc;

            if (full[k].mech == SMTPX_SASL_CRAM_MD5)
                smtpx__sasl_srv_step(st, NULL, 0, 0);
            rc = srv_feed(st, full[k].in.p, n);
            ck_assert(rc == SMTPX__SASL_BAD || rc == SMTPX__SASL_VERIFY ||
                      rc == SMTPX__SASL_LOOKUP || rc == SMTPX__SASL_CHALLENGE);
            /* Only the whole token messages are taken. */
            if (n < full[k].in.n && (full[k].mech == SMTPX_SASL_XOAUTH2 ||
                                     full[k].mech == SMTPX_SASL_OAUTHBEARER ||
                                     full[k].mech == SMTPX_SASL_CRAM_MD5))
                ck_assert_int_eq(rc, SMTPX__SASL_BAD);
            smtpx__sasl_srv_free(st);
        }
    }
}
END_TEST

START_TEST(test_server_refused)
{
    static const char xo_err[] = "{\"status\":\"401\",\"schemes\":\"bearer\","
                                 "\"scope\":\"https://mail.google.com/\"}";
    smtpx_auth_info info;
    smtpx__sasl_srv *st;
    const uint8_t *out;
    size_t n;

    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_XOAUTH2, NULL,
                             NULL, NULL, NULL);
    ck_assert_int_eq(smtpx__sasl_srv_refused(st), SMTPX__SASL_FAIL);
    smtpx__sasl_srv_free(st);
    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_XOAUTH2, NULL,
                             NULL, NULL, NULL);
    ck_assert_int_eq(smtpx__sasl_srv_step(st, NULL, 0, 0),
                     SMTPX__SASL_CHALLENGE);
    smtpx__sasl_srv_out(st, &n);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(FEED(st, "user=u" KV "auth=Bearer t" KV KV),
                     SMTPX__SASL_VERIFY);
    ck_assert_int_eq(smtpx__sasl_srv_refused(st), SMTPX__SASL_CHALLENGE);
    out = smtpx__sasl_srv_out(st, &n);
    ck_assert(out_is(out, n, xo_err));
    smtpx__sasl_srv_info(st, &info);
    ck_assert_ptr_null(info.secret);
    ck_assert_int_eq(srv_feed(st, "", 0), SMTPX__SASL_FAIL);
    smtpx__sasl_srv_free(st);
    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_OAUTHBEARER, NULL,
                             NULL, NULL, NULL);
    ck_assert_int_eq(FEED(st, "n,," KV "auth=Bearer t" KV KV),
                     SMTPX__SASL_VERIFY);
    ck_assert_int_eq(smtpx__sasl_srv_refused(st), SMTPX__SASL_CHALLENGE);
    out = smtpx__sasl_srv_out(st, &n);
    ck_assert(out_is(out, n, "{\"status\":\"invalid_token\"}"));
    ck_assert_int_eq(srv_feed(st, KV, 1), SMTPX__SASL_FAIL);
    smtpx__sasl_srv_free(st);
    st = smtpx__sasl_srv_new(smtpx__mem_default(), SMTPX_SASL_PLAIN, NULL, NULL,
                             NULL, NULL);
    ck_assert_int_eq(FEED(st, "\0u\0p"), SMTPX__SASL_VERIFY);
    ck_assert_int_eq(smtpx__sasl_srv_refused(st), SMTPX__SASL_FAIL);
    ck_assert_int_eq(srv_feed(st, "", 0), SMTPX__SASL_BAD);
    smtpx__sasl_srv_free(st);
}
END_TEST

START_TEST(test_server_misc)
{
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__sasl_srv *st;
    const uint8_t *out;
    size_t n;

    ck_assert_ptr_null(smtpx__sasl_srv_new(mem, 0, NULL, NULL, NULL, NULL));
    ck_assert_ptr_null(smtpx__sasl_srv_new(mem, 3, NULL, NULL, NULL, NULL));
    ck_assert_ptr_null(smtpx__sasl_srv_new(mem, SMTPX_SASL_SCRAM_SHA_256, NULL,
                                           NULL, NULL, NULL));
    smtpx__sasl_srv_free(NULL);
    /* LOGIN's prompts; an initial response is the user name. */
    st = smtpx__sasl_srv_new(mem, SMTPX_SASL_LOGIN, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(smtpx__sasl_srv_step(st, NULL, 0, 0),
                     SMTPX__SASL_CHALLENGE);
    out = smtpx__sasl_srv_out(st, &n);
    ck_assert(out_is(out, n, "Username:"));
    ck_assert_int_eq(smtpx__sasl_srv_step(st, NULL, 0, 0), SMTPX__SASL_BAD);
    smtpx__sasl_srv_free(st);
    st = smtpx__sasl_srv_new(mem, SMTPX_SASL_LOGIN, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(srv_feed(st, "tim", 3), SMTPX__SASL_CHALLENGE);
    out = smtpx__sasl_srv_out(st, &n);
    ck_assert(out_is(out, n, "Password:"));
    ck_assert_int_eq(srv_feed(st, "pw", 2), SMTPX__SASL_VERIFY);
    smtpx__sasl_srv_free(st);
    /* A lookup step must come without input. */
    st = smtpx__sasl_srv_new(mem, SMTPX_SASL_SCRAM_SHA_256, NULL, NULL, NULL,
                             test_fake_key);
    ck_assert_int_eq(srv_feed(st, "n,,n=u,r=x", 10), SMTPX__SASL_LOOKUP);
    ck_assert_int_eq(srv_feed(st, "", 0), SMTPX__SASL_BAD);
    smtpx__sasl_srv_free(st);
    /* No random octets, no server nonce. */
    st = smtpx__sasl_srv_new(mem, SMTPX_SASL_SCRAM_SHA_256, NULL, failing_rnd,
                             NULL, test_fake_key);
    ck_assert_int_eq(srv_feed(st, "n,,n=u,r=x", 10), SMTPX__SASL_LOOKUP);
    ck_assert_int_eq(smtpx__sasl_srv_step(st, NULL, 0, 0), SMTPX__SASL_FAIL);
    smtpx__sasl_srv_free(st);
    /* NULL input with a length is refused, NULL with none is "". */
    st = smtpx__sasl_srv_new(mem, SMTPX_SASL_PLAIN, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(smtpx__sasl_srv_step(st, NULL, 4, 1), SMTPX__SASL_BAD);
    smtpx__sasl_srv_free(st);
    st = smtpx__sasl_srv_new(mem, SMTPX_SASL_PLAIN, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(smtpx__sasl_srv_step(st, NULL, 0, 1), SMTPX__SASL_BAD);
    smtpx__sasl_srv_free(st);
}
END_TEST

/* ---- the client's other mechanisms ---- */

START_TEST(test_client_misc)
{
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__sasl_cli *c;
    const uint8_t *out;
    size_t n;

    /* What cannot be sent. */
    ck_assert_ptr_null(smtpx__sasl_cli_new(mem, 0, NULL, "u", "p", NULL, NULL));
    ck_assert_ptr_null(smtpx__sasl_cli_new(
        mem, SMTPX_SASL_PLAIN | SMTPX_SASL_LOGIN, NULL, "u", "p", NULL, NULL));
    ck_assert_ptr_null(smtpx__sasl_cli_new(mem, SMTPX_SASL_PLAIN, NULL, NULL,
                                           "p", NULL, NULL));
    ck_assert_ptr_null(smtpx__sasl_cli_new(mem, SMTPX_SASL_PLAIN, NULL, "u",
                                           NULL, NULL, NULL));
    ck_assert_ptr_null(smtpx__sasl_cli_new(mem, SMTPX_SASL_XOAUTH2, NULL,
                                           "u" KV "auth=x", "t", NULL, NULL));
    ck_assert_ptr_null(smtpx__sasl_cli_new(mem, SMTPX_SASL_OAUTHBEARER, NULL,
                                           "u", "t" KV KV, NULL, NULL));
    ck_assert_ptr_null(smtpx__sasl_cli_new(mem, SMTPX_SASL_PLAIN, "a\nb", "u",
                                           "p", NULL, NULL));
    ck_assert_ptr_null(smtpx__sasl_cli_new(mem, SMTPX_SASL_SCRAM_SHA_256, NULL,
                                           "", "p", NULL, NULL));
    ck_assert_ptr_null(smtpx__sasl_cli_new(mem, SMTPX_SASL_SCRAM_SHA_256, NULL,
                                           "u", "p", failing_rnd, NULL));
    smtpx__sasl_cli_free(NULL);

    /* PLAIN: the initial response; nothing after it. */
    c = smtpx__sasl_cli_new(mem, SMTPX_SASL_PLAIN, "boss", "tim", "pw", NULL,
                            NULL);
    ck_assert_int_eq(smtpx__sasl_cli_initial(c, &out, &n), 1);
    ck_assert_uint_eq(n, 11);
    ck_assert(memcmp(out, "boss\0tim\0pw", 11) == 0);
    ck_assert_int_eq(smtpx__sasl_cli_initial(c, &out, &n), 0);
    ck_assert_int_eq(smtpx__sasl_cli_step(c, NULL, 0, &out, &n),
                     SMTPX__SASL_BAD);
    smtpx__sasl_cli_free(c);
    /* ... or, when it was not sent, the answer to the empty challenge. */
    c = smtpx__sasl_cli_new(mem, SMTPX_SASL_PLAIN, NULL, "tim", "pw", NULL,
                            NULL);
    ck_assert_int_eq(cli_feed(c, "", 0, &out, &n), 0);
    ck_assert_uint_eq(n, 7);
    ck_assert(memcmp(out, "\0tim\0pw", 7) == 0);
    smtpx__sasl_cli_free(c);
    c = smtpx__sasl_cli_new(mem, SMTPX_SASL_PLAIN, NULL, "tim", "pw", NULL,
                            NULL);
    ck_assert_int_eq(cli_feed(c, "?", 1, &out, &n), SMTPX__SASL_BAD);
    smtpx__sasl_cli_free(c);

    /* LOGIN: the user, then the password, whatever the prompts. */
    c = smtpx__sasl_cli_new(mem, SMTPX_SASL_LOGIN, NULL, "tim", "pw", NULL,
                            NULL);
    ck_assert_int_eq(smtpx__sasl_cli_initial(c, &out, &n), 0);
    ck_assert_int_eq(cli_feed(c, "Who?", 4, &out, &n), 0);
    ck_assert(out_is(out, n, "tim"));
    ck_assert_int_eq(cli_feed(c, "", 0, &out, &n), 0);
    ck_assert(out_is(out, n, "pw"));
    ck_assert_int_eq(cli_feed(c, "Password:", 9, &out, &n), SMTPX__SASL_BAD);
    smtpx__sasl_cli_free(c);

    /* XOAUTH2 and OAUTHBEARER: the messages, and the answer to an error. */
    c = smtpx__sasl_cli_new(mem, SMTPX_SASL_XOAUTH2, "ignored", "tim", "tok",
                            NULL, NULL);
    ck_assert_int_eq(smtpx__sasl_cli_initial(c, &out, &n), 1);
    ck_assert(out_is(out, n, "user=tim" KV "auth=Bearer tok" KV KV));
    ck_assert_int_eq(cli_feed(c, "{\"status\":\"401\"}", 16, &out, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(cli_feed(c, "{}", 2, &out, &n), SMTPX__SASL_BAD);
    smtpx__sasl_cli_free(c);
    c = smtpx__sasl_cli_new(mem, SMTPX_SASL_OAUTHBEARER, NULL, "a,b=c", "tok",
                            NULL, NULL);
    ck_assert_int_eq(smtpx__sasl_cli_initial(c, &out, &n), 1);
    ck_assert(out_is(out, n, "n,a=a=2Cb=3Dc," KV "auth=Bearer tok" KV KV));
    ck_assert_int_eq(
        cli_feed(c, "{\"status\":\"invalid_token\"}", 26, &out, &n), 0);
    ck_assert(out_is(out, n, KV));
    ck_assert_int_eq(smtpx__sasl_cli_done(c), 1);
    smtpx__sasl_cli_free(c);
    c = smtpx__sasl_cli_new(mem, SMTPX_SASL_OAUTHBEARER, NULL, "", "tok", NULL,
                            NULL);
    ck_assert_int_eq(smtpx__sasl_cli_initial(c, &out, &n), 1);
    ck_assert(out_is(out, n, "n,," KV "auth=Bearer tok" KV KV));
    smtpx__sasl_cli_free(c);

    /* SCRAM: the escapes and the authzid; a challenge before client-first
     * makes no sense. */
    c = smtpx__sasl_cli_new(mem, SMTPX_SASL_SCRAM_SHA_256, "z,=", "u=,", "p",
                            NULL, NULL);
    ck_assert_int_eq(smtpx__sasl_cli_initial(c, &out, &n), 1);
    ck_assert_uint_eq(n, 24 + 20);
    ck_assert(memcmp(out, "n,a=z=2C=3D,n=u=3D=2C,r=", 24) == 0);
    smtpx__sasl_cli_free(c);
    c = smtpx__sasl_cli_new(mem, SMTPX_SASL_SCRAM_SHA_256, NULL, "u", "p", NULL,
                            NULL);
    ck_assert_int_eq(cli_feed(c, "r=x", 3, &out, &n), SMTPX__SASL_BAD);
    smtpx__sasl_cli_free(c);
}
END_TEST

Suite *suite_sasl(void)
{
    Suite *s = suite_create("sasl");
    TCase *tc = tcase_create("crypto");

    tcase_add_test(tc, test_b64_vectors);
    tcase_add_test(tc, test_b64_strict);
    tcase_add_test(tc, test_hmac_sha256);
    tcase_add_test(tc, test_hmac_md5);
    tcase_add_test(tc, test_sha256);
    tcase_add_test(tc, test_pbkdf2);
    tcase_add_test(tc, test_random_wipe_ct);
    suite_add_tcase(s, tc);

    tc = tcase_create("vectors");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_pick);
    tcase_add_test(tc, test_cram_client_rfc2195);
    tcase_add_test(tc, test_cram_server_rfc2195);
    tcase_add_test(tc, test_cram_server_misc);
    tcase_add_test(tc, test_scram_client_rfc7677);
    tcase_add_test(tc, test_scram_client_hostile);
    tcase_add_test(tc, test_scram_server_rfc7677);
    tcase_add_test(tc, test_scram_server_final_hostile);
    tcase_add_test(tc, test_scram_keys);
    tcase_add_test(tc, test_scram_unknown_user);
    suite_add_tcase(s, tc);

    tc = tcase_create("engines");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_e2e, 0, 2 * E2E_N);
    tcase_add_loop_test(tc, test_alloc_sweep, 0, E2E_N);
    tcase_add_loop_test(tc, test_server_bad, 0, BAD_N);
    tcase_add_loop_test(tc, test_server_good, 0,
                        (int)(sizeof(good_cases) / sizeof(good_cases[0])));
    tcase_add_test(tc, test_server_limits);
    tcase_add_test(tc, test_server_prefixes);
    tcase_add_test(tc, test_server_refused);
    tcase_add_test(tc, test_server_misc);
    tcase_add_test(tc, test_client_misc);
    suite_add_tcase(s, tc);
    return s;
}
