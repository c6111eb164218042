/*
 * tlsfail - a TLS session through the mbedTLS adapter (client and server,
 * their configurations with a certificate, a key and a CA, the handshake
 * with verification, data both ways, close_notify) with every calloc
 * failing in turn, calloc being where mbedTLS gets its memory.  Run under
 * LD_PRELOAD=libfailcalloc.so (make check does):
 *
 *   for n = 1, 2, ...: the n-th calloc and all after it fail; every call
 *   of the adapter returns 0 or an SMTPX_ERR_* code, nothing crashes, and
 *   once everything is freed no block calloc gave out is left; until a run
 *   in which no calloc failed, which must have succeeded whole.
 *
 * A session makes about 40,000 calloc calls (mbedTLS's big numbers take
 * one each time they grow), 7 ms a session: every one of the first
 * STEP_ALL is failed (the configurations, the certificate and key parsing,
 * the start of the handshake), then one in STEP, which keeps the sweep to
 * a few seconds while still failing inside every phase of the handshake.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/smtpx.h>
#include <libsmtpx/tls_mbedtls.h>

#define DATA     "tests/data/tls/"
#define STEP_ALL 600
#define STEP     53

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "tlsfail: %s:%d: %s (calloc %ld fails)\n",         \
                    __FILE__, __LINE__, #cond, fail_at);                       \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

static long fail_at;

typedef struct dir {
    uint8_t buf[65536];
    size_t len;
} dir;

typedef struct end {
    dir *in, *out;
} end;

static smtpx_ssize e_send(void *ctx, const uint8_t *b, size_t n)
{
    end *e = ctx;

    if (n > sizeof(e->out->buf) - e->out->len)
        n = sizeof(e->out->buf) - e->out->len;
    if (n == 0)
        return SMTPX_ERR_WANT_WRITE;
    memcpy(e->out->buf + e->out->len, b, n);
    e->out->len += n;
    return (smtpx_ssize)n;
}

static smtpx_ssize e_recv(void *ctx, uint8_t *b, size_t n)
{
    end *e = ctx;

    if (e->in->len == 0)
        return SMTPX_ERR_WANT_READ;
    if (n > e->in->len)
        n = e->in->len;
    memcpy(b, e->in->buf, n);
    memmove(e->in->buf, e->in->buf + n, e->in->len - n);
    e->in->len -= n;
    return (smtpx_ssize)n;
}

static int want(int rc)
{
    return rc == SMTPX_ERR_WANT_READ || rc == SMTPX_ERR_WANT_WRITE;
}

/* an_error - a result the adapter may give when memory runs out */
static int an_error(int rc)
{
    return rc < 0 && rc != SMTPX_ERR_WANT_READ && rc != SMTPX_ERR_WANT_WRITE;
}

/* session - one whole session; 1 if it went through */
static int session(void)
{
    static dir c2s, s2c;
    end cli = {&s2c, &c2s}, srv = {&c2s, &s2c};
    smtpx_io cio = {&cli, e_send, e_recv, NULL};
    smtpx_io sio = {&srv, e_send, e_recv, NULL};
    const smtpx_tls_ops *ops = smtpx_mbedtls_ops();
    smtpx_mbedtls *sm = NULL, *cm = NULL;
    void *sc = NULL, *cc = NULL;
    smtpx_tls_info info;
    uint8_t buf[64];
    int rc, crc, src, i, ok = 0;
    smtpx_ssize n;

    c2s.len = s2c.len = 0;
    rc = smtpx_mbedtls_new(&sm, 1);
    if (rc == 0)
        rc = smtpx_mbedtls_add_cert_file(sm, DATA "server.pem",
                                         DATA "server.key", NULL);
    if (rc == 0)
        rc = smtpx_mbedtls_new(&cm, 0);
    if (rc == 0)
        rc = smtpx_mbedtls_add_ca_file(cm, DATA "ca.pem");
    if (rc == 0)
        rc = ops->open(sm, SMTPX_TLS_OPEN_SERVER, NULL, &sio, &sc);
    if (rc == 0)
        rc = ops->open(cm, SMTPX_TLS_OPEN_VERIFY, "mx.test", &cio, &cc);
    if (rc != 0) {
        CHECK(an_error(rc));
        goto out;
    }
    crc = src = SMTPX_ERR_WANT_READ;
    for (i = 0; i < 1000 && (want(crc) || want(src)); i++) {
        if (want(crc))
            crc = ops->handshake(cc);
        if (want(src))
            src = ops->handshake(sc);
        if (an_error(crc) || an_error(src))
            break;
    }
    CHECK(i < 1000);
    if (crc != 0 || src != 0) {
        CHECK(an_error(crc) || an_error(src) || want(crc) || want(src));
        goto out;
    }
    CHECK(ops->info(cc, &info) == 0 && info.verified == 1);
    n = ops->send(cc, (const uint8_t *)"EHLO c.test\r\n", 13);
    if (n < 0) {
        CHECK(an_error((int)n));
        goto out;
    }
    CHECK(n == 13);
    n = ops->recv(sc, buf, sizeof(buf));
    if (n < 0) {
        CHECK(an_error((int)n));
        goto out;
    }
    CHECK(n == 13 && memcmp(buf, "EHLO c.test\r\n", 13) == 0);
    n = ops->send(sc, (const uint8_t *)"250 mx.test\r\n", 13);
    if (n < 0) {
        CHECK(an_error((int)n));
        goto out;
    }
    n = ops->recv(cc, buf, sizeof(buf));
    if (n < 0) {
        CHECK(an_error((int)n));
        goto out;
    }
    CHECK(n == 13 && memcmp(buf, "250 mx.test\r\n", 13) == 0);
    rc = ops->close(cc);
    CHECK(rc == 0 || want(rc) || an_error(rc));
    rc = ops->close(sc);
    CHECK(rc == 0 || want(rc) || an_error(rc));
    ok = 1;
out:
    if (cc != NULL)
        ops->free(cc);
    if (sc != NULL)
        ops->free(sc);
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
    return ok;
}

int main(void)
{
    void (*arm)(long) = (void (*)(long))dlsym(RTLD_DEFAULT, "failcalloc_arm");
    long (*disarm)(long *, long *) =
        (long (*)(long *, long *))dlsym(RTLD_DEFAULT, "failcalloc_disarm");
    long calls = 0, failures = 0, live, runs = 0;

    if (arm == NULL || disarm == NULL) {
        fprintf(stderr, "tlsfail: run with LD_PRELOAD=libfailcalloc.so\n");
        return 2;
    }
    for (fail_at = 1; fail_at < 1000000;
         fail_at += fail_at < STEP_ALL ? 1 : STEP) {
        int ok;

        arm(fail_at);
        ok = session();
        live = disarm(&calls, &failures);
        runs++;
        CHECK(live == 0); /* every block mbedTLS got was given back */
        if (failures == 0) {
            CHECK(ok); /* nothing failed: the session went through */
            break;
        }
    }
    CHECK(fail_at < 1000000 && calls > 10);
    printf("tlsfail: %ld TLS sessions with calloc failing (every call of "
           "the first %d, then one in %d, of %ld): every failure reported, "
           "nothing left allocated\n",
           runs, STEP_ALL, STEP, calls);
    return 0;
}
