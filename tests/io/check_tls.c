/*
 * check_tls - the mbedTLS adapter (smtpx_mbedtls_*, smtpx_mbedtls_ops()).
 *
 * A client and a server handshake over an in-memory duplex pipe of two
 * smtpx_io ends.  A stingy variant of the pipe blocks at every other call
 * (WANT_READ; WANT_WRITE or a send of 0) and moves one to seven octets at a
 * time, so every non-blocking path of the BIO shim and of the handshake
 * runs.
 * The tests cover data both ways and info(), verification (wrong name,
 * untrusted CA, expired certificate, a name required), opportunistic
 * sessions that report verified 0, SNI by name, wildcard, common name and
 * callback, client certificates, set-up errors and the in-use freeze,
 * close_notify and EOF, I/O failures, a write retried with more data, many
 * threads sharing one configuration, and the adapter under the real
 * transports, server and client sessions (STARTTLS and implicit TLS, with
 * smtpx_transport_set_peer_name() verifying or not).
 *
 * Certificates come from tests/data/tls (see gen.sh there); the tests run
 * from the top of the source tree.  The few mbedTLS values compared with
 * are repeated here: only lib/io/tls_mbedtls.c includes mbedTLS TLS headers.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libsmtpx/smtpx.h>
#include <libsmtpx/tls_mbedtls.h>

#include "suites.h"

#define DATA "tests/data/tls/"

/* mbedtls/x509.h */
#define BADCERT_EXPIRED     0x01
#define BADCERT_CN_MISMATCH 0x04
#define BADCERT_NOT_TRUSTED 0x08
#define BADCERT_MISSING     0x40
/* mbedtls/net_sockets.h, mbedtls/ssl.h */
#define NET_RECV_FAILED (-0x004C)
#define SSL_CONN_EOF    (-0x7280)

/* ---- the in-memory pipe ---------------------------------------------- */

/* One direction: what one end wrote and the other has not read yet. */
typedef struct dir {
    uint8_t *buf;
    size_t len, cap;
    int closed; /* the writer hung up: EOF once drained */
} dir;

typedef struct end {
    dir *in, *out;
    int stingy; /* block every other call, move 1-7 octets at a time */
    unsigned tick;
    uint32_t rng;
    int fail;     /* every call fails with SMTPX_ERR_IO */
    int wblock;   /* every send says WANT_WRITE */
    size_t calls; /* calls that moved octets */
} end;

typedef struct duplex {
    dir c2s, s2c;
    end cli, srv;
    smtpx_io cio, sio;
} duplex;

static size_t piece(end *e, size_t len)
{
    size_t n;

    if (!e->stingy)
        return len;
    e->rng = e->rng * 1103515245u + 12345u;
    n = 1 + (e->rng >> 16) % 7;
    return n < len ? n : len;
}

static smtpx_ssize end_send(void *ctx, const uint8_t *buf, size_t len)
{
    end *e = ctx;
    dir *d = e->out;

    ck_assert_uint_gt(len, 0);
    if (e->fail)
        return SMTPX_ERR_IO;
    if (e->wblock)
        return SMTPX_ERR_WANT_WRITE;
    /* Every other call blocks: WANT_WRITE, or 0 (nothing written). */
    if (e->stingy && e->tick++ % 2 == 0)
        return e->tick % 4 == 1 ? SMTPX_ERR_WANT_WRITE : 0;
    len = piece(e, len);
    if (d->len + len > d->cap) {
        d->cap = (d->len + len) * 2;
        d->buf = realloc(d->buf, d->cap);
        ck_assert_ptr_nonnull(d->buf);
    }
    memcpy(d->buf + d->len, buf, len);
    d->len += len;
    e->calls++;
    return (smtpx_ssize)len;
}

static smtpx_ssize end_recv(void *ctx, uint8_t *buf, size_t len)
{
    end *e = ctx;
    dir *d = e->in;

    ck_assert_uint_gt(len, 0);
    if (e->fail)
        return SMTPX_ERR_IO;
    if (d->len == 0)
        return d->closed ? 0 : SMTPX_ERR_WANT_READ;
    if (e->stingy && e->tick++ % 2 == 0)
        return SMTPX_ERR_WANT_READ;
    len = piece(e, len < d->len ? len : d->len);
    memcpy(buf, d->buf, len);
    memmove(d->buf, d->buf + len, d->len - len);
    d->len -= len;
    e->calls++;
    return (smtpx_ssize)len;
}

/* end_close - the transport that owned the end was freed: the other end
 * reads EOF once it has read the rest */
static void end_close(void *ctx)
{
    ((end *)ctx)->out->closed = 1;
}

static void duplex_init(duplex *p, int stingy)
{
    memset(p, 0, sizeof(*p));
    p->cli.in = &p->s2c;
    p->cli.out = &p->c2s;
    p->srv.in = &p->c2s;
    p->srv.out = &p->s2c;
    p->cli.stingy = p->srv.stingy = stingy;
    p->cli.rng = 1;
    p->srv.rng = 2;
    p->cio.ctx = &p->cli;
    p->cio.send = end_send;
    p->cio.recv = end_recv;
    p->cio.close = end_close;
    p->sio.ctx = &p->srv;
    p->sio.send = end_send;
    p->sio.recv = end_recv;
    p->sio.close = end_close;
}

static void duplex_free(duplex *p)
{
    free(p->c2s.buf);
    free(p->s2c.buf);
}

/* ---- configurations and handshakes ----------------------------------- */

static smtpx_mbedtls *server_cfg(const char *name)
{
    smtpx_mbedtls *m;
    char crt[256], key[256];

    ck_assert_int_eq(smtpx_mbedtls_new(&m, 1), 0);
    snprintf(crt, sizeof(crt), DATA "%s.pem", name);
    snprintf(key, sizeof(key), DATA "%s.key", name);
    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(m, crt, key, NULL), 0);
    return m;
}

static smtpx_mbedtls *client_cfg(const char *ca)
{
    smtpx_mbedtls *m;

    ck_assert_int_eq(smtpx_mbedtls_new(&m, 0), 0);
    if (ca != NULL)
        ck_assert_int_eq(smtpx_mbedtls_add_ca_file(m, ca), 0);
    return m;
}

/* A client and a server connection over one pipe. */
typedef struct pair {
    duplex d;
    const smtpx_tls_ops *ops;
    void *cli, *srv;
    int crc, src; /* handshake results */
} pair;

static int want(int rc)
{
    return rc == SMTPX_ERR_WANT_READ || rc == SMTPX_ERR_WANT_WRITE;
}

/* pair_open - open both sides; returns the client's open result */
static int pair_open(pair *p, smtpx_mbedtls *cm, smtpx_mbedtls *sm, int cflags,
                     const char *name, int stingy)
{
    int rc;

    memset(p, 0, sizeof(*p));
    duplex_init(&p->d, stingy);
    p->ops = smtpx_mbedtls_ops();
    ck_assert_int_eq(
        p->ops->open(sm, SMTPX_TLS_OPEN_SERVER, NULL, &p->d.sio, &p->srv), 0);
    rc = p->ops->open(cm, cflags, name, &p->d.cio, &p->cli);
    if (rc != 0)
        ck_assert_ptr_null(p->cli);
    return rc;
}

/* pair_handshake - run both handshakes until both have ended; a side the
 * other left waiting (after a failure) keeps its WANT_* result */
static void pair_handshake(pair *p)
{
    int i, after = 0;

    p->crc = p->src = SMTPX_ERR_WANT_READ;
    for (i = 0; i < 200000 && (want(p->crc) || want(p->src)); i++) {
        if (want(p->crc))
            p->crc = p->ops->handshake(p->cli);
        if (want(p->src))
            p->src = p->ops->handshake(p->srv);
        if ((!want(p->crc) || !want(p->src)) && ++after > 1000)
            break;
    }
    ck_assert_int_lt(i, 200000);
}

static void pair_close(pair *p)
{
    p->ops->free(p->cli);
    p->ops->free(p->srv);
    duplex_free(&p->d);
}

/* xfer - move n octets from one connection to the other through the pipe,
 * calling both sides in turn as an event loop would */
static void xfer(const smtpx_tls_ops *ops, void *from, void *to,
                 const uint8_t *data, size_t n, uint8_t *got)
{
    size_t sent = 0, recvd = 0;
    int i;

    for (i = 0; (sent < n || recvd < n) && i < 1000000; i++) {
        if (sent < n) {
            smtpx_ssize w = ops->send(from, data + sent, n - sent);
            if (w > 0)
                sent += (size_t)w;
            else
                ck_assert_msg(want((int)w), "send: %d", (int)w);
        }
        if (recvd < n) {
            smtpx_ssize r = ops->recv(to, got + recvd, n - recvd);
            if (r > 0)
                recvd += (size_t)r;
            else
                ck_assert_msg(want((int)r), "recv: %d", (int)r);
        }
    }
    ck_assert_uint_eq(recvd, n);
    ck_assert_int_eq(memcmp(data, got, n), 0);
}

/* recv_until - recv until it returns something other than WANT_* */
static smtpx_ssize recv_until(const smtpx_tls_ops *ops, void *conn,
                              uint8_t *buf, size_t len)
{
    smtpx_ssize r;
    int i;

    for (i = 0; i < 100000; i++)
        if (!want((int)(r = ops->recv(conn, buf, len))))
            return r;
    ck_abort_msg("recv kept waiting");
    return 0;
}

static int close_until(const smtpx_tls_ops *ops, void *conn)
{
    int i, rc;

    for (i = 0; i < 100000; i++)
        if (!want(rc = ops->close(conn)))
            return rc;
    ck_abort_msg("close kept waiting");
    return 0;
}

/* verify_fails - a verifying handshake that must fail; returns the
 * client's last_error (the X.509 flags) */
static int verify_fails(smtpx_mbedtls *cm, smtpx_mbedtls *sm, const char *name)
{
    pair p;
    smtpx_tls_info info;
    int flags;

    ck_assert_int_eq(pair_open(&p, cm, sm, SMTPX_TLS_OPEN_VERIFY, name, 0), 0);
    pair_handshake(&p);
    ck_assert_int_eq(p.crc, SMTPX_ERR_TLS_VERIFY);
    /* The client's alert ends the server's handshake too. */
    ck_assert_int_eq(p.src, SMTPX_ERR_TLS);
    ck_assert_int_lt(p.ops->last_error(p.srv), 0);
    /* A failed handshake stays failed and reports nothing. */
    ck_assert_int_eq(p.ops->handshake(p.cli), SMTPX_ERR_TLS_VERIFY);
    ck_assert_int_eq(p.ops->info(p.cli, &info), SMTPX_ERR_INVALID_STATE);
    ck_assert_ptr_null(info.version);
    flags = p.ops->last_error(p.cli);
    ck_assert_int_gt(flags, 0);
    pair_close(&p);
    return flags;
}

/* verify_ok - a verifying handshake for name that must succeed */
static void verify_ok(smtpx_mbedtls *cm, smtpx_mbedtls *sm, const char *name)
{
    pair p;
    smtpx_tls_info info;

    ck_assert_int_eq(pair_open(&p, cm, sm, SMTPX_TLS_OPEN_VERIFY, name, 0), 0);
    pair_handshake(&p);
    ck_assert_msg(p.crc == 0, "%s: client %d (%d)", name, p.crc,
                  p.ops->last_error(p.cli));
    ck_assert_int_eq(p.src, 0);
    ck_assert_int_eq(p.ops->info(p.cli, &info), 0);
    ck_assert_int_eq(info.verified, 1);
    ck_assert_str_eq(info.peer, name);
    pair_close(&p);
}

/* ---- tests ----------------------------------------------------------- */

START_TEST(test_handshake_and_data)
{
    /* _i: 0 a generous pipe, 1 a stingy one */
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem"), *sm = server_cfg("server");
    static uint8_t big[100000], got[100000];
    smtpx_tls_info ci, si;
    uint8_t buf[256];
    pair p;
    size_t i;

    ck_assert_int_eq(
        pair_open(&p, cm, sm, SMTPX_TLS_OPEN_VERIFY, "mx.test", _i), 0);
    ck_assert_int_eq(p.ops->info(p.cli, &ci), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(p.ops->recv(p.cli, buf, sizeof(buf)),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(p.ops->send(p.cli, buf, 1), SMTPX_ERR_INVALID_STATE);
    pair_handshake(&p);
    ck_assert_int_eq(p.crc, 0);
    ck_assert_int_eq(p.src, 0);
    if (_i)
        ck_assert_uint_gt(p.d.cli.calls + p.d.srv.calls, 100);
    ck_assert_int_eq(p.ops->handshake(p.cli), 0); /* done stays done */

    ck_assert_int_eq(p.ops->info(p.cli, &ci), 0);
    ck_assert_str_eq(ci.version, "TLSv1.2");
    ck_assert_ptr_nonnull(ci.cipher);
    ck_assert_ptr_nonnull(strstr(ci.cipher, "ECDSA"));
    ck_assert_int_ge(ci.bits, 128);
    ck_assert_int_eq(ci.verified, 1);
    ck_assert_str_eq(ci.peer, "mx.test");
    ck_assert_int_eq(p.ops->info(p.srv, &si), 0);
    ck_assert_str_eq(si.version, "TLSv1.2");
    ck_assert_str_eq(si.cipher, ci.cipher);
    ck_assert_int_eq(si.bits, ci.bits);
    ck_assert_int_eq(si.verified, 0); /* no client certificate asked */
    ck_assert_ptr_null(si.peer);

    /* Both ways, the long way in several records. */
    xfer(p.ops, p.cli, p.srv, (const uint8_t *)"EHLO client.test\r\n", 18, buf);
    for (i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7 + i / 251);
    xfer(p.ops, p.srv, p.cli, big, sizeof(big), got);

    /* A record read in part leaves the rest pending inside the layer. */
    memset(big, 'x', 100);
    while (want((int)p.ops->send(p.srv, big, 100)))
        ;
    ck_assert_int_eq(recv_until(p.ops, p.cli, buf, 10), 10);
    ck_assert_uint_eq(p.ops->pending(p.cli), 90);
    ck_assert_int_eq(recv_until(p.ops, p.cli, buf, sizeof(buf)), 90);
    ck_assert_uint_eq(p.ops->pending(p.cli), 0);

    /* close_notify: the peer reads the end, as often as it asks. */
    ck_assert_int_eq(close_until(p.ops, p.cli), 0);
    ck_assert_int_eq(p.ops->close(p.cli), 0);
    ck_assert_int_eq(p.ops->send(p.cli, buf, 1), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(recv_until(p.ops, p.srv, buf, sizeof(buf)), 0);
    ck_assert_int_eq(p.ops->recv(p.srv, buf, sizeof(buf)), 0);
    ck_assert_int_eq(close_until(p.ops, p.srv), 0);
    ck_assert_int_eq(recv_until(p.ops, p.cli, buf, sizeof(buf)), 0);
    /* info stays valid until free */
    ck_assert_int_eq(p.ops->info(p.cli, &ci), 0);
    ck_assert_str_eq(ci.peer, "mx.test");
    ck_assert_int_eq(p.ops->last_error(p.cli), 0);
    ck_assert_int_eq(p.ops->last_error(p.srv), 0);
    pair_close(&p);
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
}
END_TEST

START_TEST(test_verify_wrong_name)
{
    /* The certificate is for mx.test; the client asked for wrong.test. */
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem"), *sm = server_cfg("server");
    char msg[512];
    int flags = verify_fails(cm, sm, "wrong.test");

    ck_assert_int_eq(flags, BADCERT_CN_MISMATCH); /* the chain is fine */
    smtpx_mbedtls_strerror(flags, msg, sizeof(msg));
    ck_assert_msg(strstr(msg, "CN") != NULL, "%s", msg);
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
}
END_TEST

START_TEST(test_verify_by_address)
{
    /* A server named by its address is verified against the certificate's
     * iPAddress names (RFC 6125 6.2.1), which mbedTLS 2.28 does not match
     * itself: server.pem carries IP:127.0.0.1. */
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem"), *sm = server_cfg("server");
    smtpx_mbedtls *nosan = server_cfg("cn-only"), *other = server_cfg("other");

    verify_ok(cm, sm, "127.0.0.1");
    /* A mismatch: the chain is fine, the address is not in it. */
    ck_assert_int_eq(verify_fails(cm, sm, "127.0.0.2"), BADCERT_CN_MISMATCH);
    ck_assert_int_eq(verify_fails(cm, sm, "::1"), BADCERT_CN_MISMATCH);
    /* Certificates without iPAddress names (only a CN, or DNS names). */
    ck_assert_int_eq(verify_fails(cm, nosan, "127.0.0.1"), BADCERT_CN_MISMATCH);
    ck_assert_int_eq(verify_fails(cm, other, "127.0.0.1"), BADCERT_CN_MISMATCH);
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
    smtpx_mbedtls_free(nosan);
    smtpx_mbedtls_free(other);
}
END_TEST

START_TEST(test_verify_without_name_refused)
{
    /* mbedTLS 2.28 skips the name check when no name is set: a verifying
     * open without one would trust any certificate from a trusted CA. */
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem"), *sm = server_cfg("server");
    const smtpx_tls_ops *ops = smtpx_mbedtls_ops();
    char longname[300];
    duplex d;
    void *conn = &d;

    duplex_init(&d, 0);
    ck_assert_int_eq(ops->open(cm, SMTPX_TLS_OPEN_VERIFY, NULL, &d.cio, &conn),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(conn);
    ck_assert_int_eq(ops->open(cm, SMTPX_TLS_OPEN_VERIFY, "", &d.cio, &conn),
                     SMTPX_ERR_INVALID_ARGUMENT);
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert_int_eq(ops->open(cm, 0, longname, &d.cio, &conn),
                     SMTPX_ERR_INVALID_ARGUMENT);
    /* The configuration still works with a name. */
    verify_ok(cm, sm, "mx.test");
    verify_ok(cm, sm, "localhost");
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
}
END_TEST

START_TEST(test_verify_untrusted_ca)
{
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem");
    smtpx_mbedtls *sm = server_cfg("untrusted");

    ck_assert_int_eq(verify_fails(cm, sm, "mx.test"), BADCERT_NOT_TRUSTED);
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
}
END_TEST

START_TEST(test_verify_expired)
{
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem"), *sm = server_cfg("expired");

    ck_assert_int_eq(verify_fails(cm, sm, "mx.test"), BADCERT_EXPIRED);
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
}
END_TEST

/* report - an opportunistic handshake: it must succeed; returns what the
 * client's info says about verification, and whether it names the peer
 * (which must then be the name asked for) */
static int report(smtpx_mbedtls *cm, smtpx_mbedtls *sm, const char *name,
                  int *has_peer)
{
    smtpx_tls_info info;
    pair p;

    ck_assert_int_eq(pair_open(&p, cm, sm, 0, name, 0), 0);
    pair_handshake(&p);
    ck_assert_int_eq(p.crc, 0);
    ck_assert_int_eq(p.src, 0);
    ck_assert_int_eq(p.ops->info(p.cli, &info), 0);
    *has_peer = info.peer != NULL;
    if (info.peer != NULL)
        ck_assert_str_eq(info.peer, name);
    pair_close(&p);
    return info.verified;
}

START_TEST(test_no_verify_reports)
{
    /* Without VERIFY any certificate is accepted, and info says whether
     * it would have verified: chain and name. */
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem");
    smtpx_mbedtls *good = server_cfg("server");
    smtpx_mbedtls *bad = server_cfg("untrusted");
    smtpx_mbedtls *old = server_cfg("expired");
    int peer;

    ck_assert_int_eq(report(cm, bad, "mx.test", &peer), 0);
    ck_assert_int_eq(peer, 0);
    ck_assert_int_eq(report(cm, old, "mx.test", &peer), 0);
    ck_assert_int_eq(peer, 0);
    ck_assert_int_eq(report(cm, good, "wrong.test", &peer), 0);
    ck_assert_int_eq(peer, 0);
    /* No name: the chain alone proves nothing about the peer. */
    ck_assert_int_eq(report(cm, good, NULL, &peer), 0);
    ck_assert_int_eq(peer, 0);
    ck_assert_int_eq(report(cm, good, "mx.test", &peer), 1);
    ck_assert_int_eq(peer, 1);
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(good);
    smtpx_mbedtls_free(bad);
    smtpx_mbedtls_free(old);
}
END_TEST

/* ---- resumption ---------------------------------------------------------- */

/* resumed - one handshake; whether both ends say it resumed (they must
 * agree), with the client's verification result in *verified */
static int resumed(smtpx_mbedtls *cm, smtpx_mbedtls *sm, int flags,
                   const char *name, int *verified)
{
    smtpx_tls_info ci, si;
    pair p;

    ck_assert_int_eq(pair_open(&p, cm, sm, flags, name, 0), 0);
    pair_handshake(&p);
    ck_assert_int_eq(p.crc, 0);
    ck_assert_int_eq(p.src, 0);
    ck_assert_int_eq(p.ops->info(p.cli, &ci), 0);
    ck_assert_int_eq(p.ops->info(p.srv, &si), 0);
    ck_assert_int_eq(ci.resumed, si.resumed);
    if (verified != NULL)
        *verified = ci.verified;
    /* Data flows either way. */
    {
        uint8_t got[5];
        xfer(p.ops, p.cli, p.srv, (const uint8_t *)"hello", 5, got);
        ck_assert(memcmp(got, "hello", 5) == 0);
    }
    pair_close(&p);
    return ci.resumed;
}

START_TEST(test_resumption)
{
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem");
    smtpx_mbedtls *sm = server_cfg("server");
    smtpx_mbedtls *other = server_cfg("server");
    int v;

    /* The first handshake is full, the next resumes. */
    ck_assert_int_eq(resumed(cm, sm, 0, "mx.test", NULL), 0);
    ck_assert_int_eq(resumed(cm, sm, 0, "mx.test", &v), 1);
    ck_assert_int_eq(v, 1); /* the verification result comes along */
    ck_assert_int_eq(resumed(cm, sm, 0, "mx.test", NULL), 1);
    /* Per destination: another name is a full handshake (then resumes). */
    ck_assert_int_eq(resumed(cm, sm, 0, "localhost", NULL), 0);
    ck_assert_int_eq(resumed(cm, sm, 0, "localhost", NULL), 1);
    ck_assert_int_eq(resumed(cm, sm, 0, "mx.test", NULL), 1);
    /* A session made without verification never stands in for a
     * verifying connection: that one is full, and verified. */
    ck_assert_int_eq(resumed(cm, sm, SMTPX_TLS_OPEN_VERIFY, "mx.test", &v), 0);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(resumed(cm, sm, SMTPX_TLS_OPEN_VERIFY, "mx.test", &v), 1);
    ck_assert_int_eq(v, 1);
    /* No name: nothing kept, nothing offered. */
    ck_assert_int_eq(resumed(cm, sm, 0, NULL, NULL), 0);
    ck_assert_int_eq(resumed(cm, sm, 0, NULL, NULL), 0);
    /* Another server (other ticket keys) does not take the ticket: a full
     * handshake, whose session is then the one kept. */
    ck_assert_int_eq(resumed(cm, other, 0, "mx.test", NULL), 0);
    ck_assert_int_eq(resumed(cm, other, 0, "mx.test", NULL), 1);
    ck_assert_int_eq(resumed(cm, sm, 0, "mx.test", NULL), 0);
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
    smtpx_mbedtls_free(other);
}
END_TEST

START_TEST(test_resumption_off_and_expiry)
{
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem");
    smtpx_mbedtls *sm = server_cfg("server");
    smtpx_mbedtls *cm2 = client_cfg(DATA "ca.pem");
    smtpx_mbedtls *sm2 = server_cfg("server");
    smtpx_mbedtls *cm3 = client_cfg(DATA "ca.pem");

    /* A server without tickets: never resumed. */
    ck_assert_int_eq(smtpx_mbedtls_set_resumption(sm, 0, 0), 0);
    ck_assert_int_eq(resumed(cm, sm, 0, "mx.test", NULL), 0);
    ck_assert_int_eq(resumed(cm, sm, 0, "mx.test", NULL), 0);
    /* A client that keeps nothing: never resumed. */
    ck_assert_int_eq(smtpx_mbedtls_set_resumption(cm2, 3600, 0), 0);
    ck_assert_int_eq(smtpx_mbedtls_set_resumption(sm2, 3, 0), 0);
    ck_assert_int_eq(resumed(cm2, sm2, 0, "mx.test", NULL), 0);
    ck_assert_int_eq(resumed(cm2, sm2, 0, "mx.test", NULL), 0);
    /* Tickets of a 3 s lifetime (whole seconds: the margin lets two
     * handshakes under valgrind come first): taken at once, refused once
     * the session is older (the keys have turned over meanwhile). */
    ck_assert_int_eq(resumed(cm3, sm2, 0, "mx.test", NULL), 0);
    ck_assert_int_eq(resumed(cm3, sm2, 0, "mx.test", NULL), 1);
    sleep(8);
    ck_assert_int_eq(resumed(cm3, sm2, 0, "mx.test", NULL), 0);
    ck_assert_int_eq(resumed(cm3, sm2, 0, "mx.test", NULL), 1);
    /* Set-up is over once in use; NULL is refused. */
    ck_assert_int_eq(smtpx_mbedtls_set_resumption(cm3, 10, 10),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_mbedtls_set_resumption(NULL, 10, 10),
                     SMTPX_ERR_INVALID_ARGUMENT);
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
    smtpx_mbedtls_free(cm2);
    smtpx_mbedtls_free(sm2);
    smtpx_mbedtls_free(cm3);
}
END_TEST

START_TEST(test_resumption_cache_bound)
{
    /* A client remembers at most max_sessions destinations, the least
     * recently used going first. */
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem");
    smtpx_mbedtls *sm = server_cfg("server");

    ck_assert_int_eq(smtpx_mbedtls_set_resumption(cm, 3600, 2), 0);
    ck_assert_int_eq(resumed(cm, sm, 0, "mx.test", NULL), 0);
    ck_assert_int_eq(resumed(cm, sm, 0, "localhost", NULL), 0);
    ck_assert_int_eq(resumed(cm, sm, 0, "mx.test", NULL), 1); /* used */
    ck_assert_int_eq(resumed(cm, sm, 0, "a.test", NULL), 0);  /* evicts */
    ck_assert_int_eq(resumed(cm, sm, 0, "mx.test", NULL), 1);
    ck_assert_int_eq(resumed(cm, sm, 0, "localhost", NULL), 0);
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
}
END_TEST

START_TEST(test_sni_default)
{
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem"), *sm = server_cfg("server");
    smtpx_mbedtls *sm2 = server_cfg("untrusted");
    int peer;

    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(sm, DATA "other.pem",
                                                 DATA "other.key", NULL),
                     0);
    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(sm, DATA "cn-only.pem",
                                                 DATA "cn-only.key", NULL),
                     0);
    /* A client verifying other.test succeeds only if it got the second
     * certificate. */
    verify_ok(cm, sm, "other.test");
    verify_ok(cm, sm, "mx.test");
    /* A wildcard covers one label, in any case. */
    verify_ok(cm, sm, "A.Wild.TEST");
    ck_assert_int_eq(verify_fails(cm, sm, "a.b.wild.test"),
                     BADCERT_CN_MISMATCH);
    /* The common name counts when there is no subjectAltName. */
    verify_ok(cm, sm, "cn.test");
    /* No SNI: the first certificate. */
    ck_assert_int_eq(report(cm, sm, NULL, &peer), 0);

    /* No match: the first certificate, which here is the untrusted one
     * (so the flags tell which was presented). */
    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(sm2, DATA "other.pem",
                                                 DATA "other.key", NULL),
                     0);
    ck_assert_int_eq(verify_fails(cm, sm2, "nomatch.test"),
                     BADCERT_NOT_TRUSTED | BADCERT_CN_MISMATCH);
    ck_assert_int_eq(verify_fails(cm, sm2, "mx.test"), BADCERT_NOT_TRUSTED);
    verify_ok(cm, sm2, "other.test");
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
    smtpx_mbedtls_free(sm2);
}
END_TEST

static char sni_seen[300];
static int sni_calls;

static int pick(const char *name, void *ud)
{
    snprintf(sni_seen, sizeof(sni_seen), "%s", name);
    sni_calls++;
    return *(const int *)ud;
}

START_TEST(test_sni_callback)
{
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem"), *sm = server_cfg("server");
    static int choice;
    pair p;

    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(sm, DATA "other.pem",
                                                 DATA "other.key", NULL),
                     0);
    ck_assert_int_eq(smtpx_mbedtls_set_sni(sm, pick, &choice), 0);
    choice = 1;
    sni_calls = 0;
    verify_ok(cm, sm, "other.test");
    ck_assert_str_eq(sni_seen, "other.test");
    /* The callback decides, not the names in the certificates. */
    ck_assert_int_eq(verify_fails(cm, sm, "mx.test"), BADCERT_CN_MISMATCH);
    ck_assert_str_eq(sni_seen, "mx.test");
    choice = 0;
    verify_ok(cm, sm, "mx.test");
    ck_assert_int_eq(sni_calls, 3);

    /* -1 refuses the handshake (unrecognized_name), and so does an index
     * past the last certificate. */
    choice = -1;
    ck_assert_int_eq(pair_open(&p, cm, sm, 0, "mx.test", 0), 0);
    pair_handshake(&p);
    ck_assert_int_eq(p.src, SMTPX_ERR_TLS);
    ck_assert_int_eq(p.crc, SMTPX_ERR_TLS);
    ck_assert_int_lt(p.ops->last_error(p.srv), 0);
    pair_close(&p);
    choice = 2;
    ck_assert_int_eq(pair_open(&p, cm, sm, 0, "mx.test", 0), 0);
    pair_handshake(&p);
    ck_assert_int_eq(p.src, SMTPX_ERR_TLS);
    pair_close(&p);
    /* Without SNI the callback is not asked: the first certificate. */
    sni_calls = 0;
    ck_assert_int_eq(pair_open(&p, cm, sm, 0, NULL, 0), 0);
    pair_handshake(&p);
    ck_assert_int_eq(p.src, 0);
    ck_assert_int_eq(sni_calls, 0);
    pair_close(&p);
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
}
END_TEST

START_TEST(test_client_cert)
{
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem");
    smtpx_mbedtls *anon = client_cfg(DATA "ca.pem");
    smtpx_mbedtls *stranger = client_cfg(DATA "ca.pem");
    smtpx_mbedtls *req = server_cfg("server"), *opt = server_cfg("server");
    smtpx_tls_info info;
    pair p;

    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(cm, DATA "client.pem",
                                                 DATA "client.key", NULL),
                     0);
    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(stranger, DATA "untrusted.pem",
                                                 DATA "untrusted.key", NULL),
                     0);
    ck_assert_int_eq(smtpx_mbedtls_set_client_cert(req, 2), 0);
    ck_assert_int_eq(smtpx_mbedtls_set_client_cert(opt, 1), 0);
    ck_assert_int_eq(smtpx_mbedtls_add_ca_file(req, DATA "ca.pem"), 0);
    ck_assert_int_eq(smtpx_mbedtls_add_ca_file(opt, DATA "ca.pem"), 0);

    /* Required and given: the server knows whom it talks to. */
    ck_assert_int_eq(
        pair_open(&p, cm, req, SMTPX_TLS_OPEN_VERIFY, "mx.test", 1), 0);
    pair_handshake(&p);
    ck_assert_int_eq(p.crc, 0);
    ck_assert_int_eq(p.src, 0);
    ck_assert_int_eq(p.ops->info(p.srv, &info), 0);
    ck_assert_int_eq(info.verified, 1);
    ck_assert_str_eq(info.peer, "client.test");
    pair_close(&p);

    /* Required and missing: the server's verification fails. */
    ck_assert_int_eq(pair_open(&p, anon, req, 0, "mx.test", 0), 0);
    pair_handshake(&p);
    ck_assert_int_eq(p.src, SMTPX_ERR_TLS_VERIFY);
    ck_assert_int_eq(p.ops->last_error(p.srv), BADCERT_MISSING);
    ck_assert_int_eq(p.crc, SMTPX_ERR_TLS);
    pair_close(&p);

    /* Required and from an unknown CA. */
    ck_assert_int_eq(pair_open(&p, stranger, req, 0, "mx.test", 0), 0);
    pair_handshake(&p);
    ck_assert_int_eq(p.src, SMTPX_ERR_TLS_VERIFY);
    ck_assert_int_ne(p.ops->last_error(p.srv) & BADCERT_NOT_TRUSTED, 0);
    pair_close(&p);

    /* Optional: missing or unknown is reported, not refused. */
    ck_assert_int_eq(pair_open(&p, anon, opt, 0, "mx.test", 0), 0);
    pair_handshake(&p);
    ck_assert_int_eq(p.src, 0);
    ck_assert_int_eq(p.ops->info(p.srv, &info), 0);
    ck_assert_int_eq(info.verified, 0);
    ck_assert_ptr_null(info.peer);
    pair_close(&p);
    ck_assert_int_eq(pair_open(&p, stranger, opt, 0, "mx.test", 0), 0);
    pair_handshake(&p);
    ck_assert_int_eq(p.src, 0);
    ck_assert_int_eq(p.ops->info(p.srv, &info), 0);
    ck_assert_int_eq(info.verified, 0);
    ck_assert_ptr_null(info.peer);
    pair_close(&p);
    ck_assert_int_eq(pair_open(&p, cm, opt, 0, "mx.test", 0), 0);
    pair_handshake(&p);
    ck_assert_int_eq(p.ops->info(p.srv, &info), 0);
    ck_assert_int_eq(info.verified, 1);
    ck_assert_str_eq(info.peer, "client.test");
    pair_close(&p);

    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(anon);
    smtpx_mbedtls_free(stranger);
    smtpx_mbedtls_free(req);
    smtpx_mbedtls_free(opt);
}
END_TEST

/* slurp - a whole file, NUL-terminated (not counted in *len) */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p;
    long n;

    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    p = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return p;
}

START_TEST(test_cert_key_mismatch)
{
    smtpx_mbedtls *m;

    ck_assert_int_eq(smtpx_mbedtls_new(&m, 1), 0);
    ck_assert_int_eq(smtpx_mbedtls_last_error(m), 0);
    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(m, DATA "server.pem",
                                                 DATA "other.key", NULL),
                     SMTPX_ERR_TLS);
    ck_assert_int_lt(smtpx_mbedtls_last_error(m), 0);
    /* Nothing was kept: a server with no certificate cannot open. */
    {
        duplex d;
        void *conn;

        duplex_init(&d, 0);
        ck_assert_int_eq(smtpx_mbedtls_ops()->open(m, SMTPX_TLS_OPEN_SERVER,
                                                   NULL, &d.sio, &conn),
                         SMTPX_ERR_INVALID_STATE);
    }
    smtpx_mbedtls_free(m);
}
END_TEST

START_TEST(test_setup_errors)
{
    smtpx_mbedtls *m, *c;
    uint8_t *crt, *key, *der, *dkey, *ca;
    size_t crt_len, key_len, der_len, dkey_len, ca_len;
    char msg[256];
    int i;

    ck_assert_int_eq(smtpx_mbedtls_new(NULL, 1), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_mbedtls_new(&m, 2), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(smtpx_mbedtls_new(&m, 1), 0);
    ck_assert_int_eq(smtpx_mbedtls_new(&c, 0), 0);

    ck_assert_int_eq(
        smtpx_mbedtls_add_cert_file(m, NULL, DATA "server.key", NULL),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(NULL, DATA "server.pem",
                                                 DATA "server.key", NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(m, DATA "missing.pem",
                                                 DATA "server.key", NULL),
                     SMTPX_ERR_TLS);
    ck_assert_int_lt(smtpx_mbedtls_last_error(m), 0);
    smtpx_mbedtls_strerror(smtpx_mbedtls_last_error(m), msg, sizeof(msg));
    ck_assert_msg(strstr(msg, "file") != NULL, "%s", msg);
    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(m, DATA "server.key",
                                                 DATA "server.key", NULL),
                     SMTPX_ERR_TLS);
    /* An encrypted key needs its password. */
    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(m, DATA "server.pem",
                                                 DATA "server-enc.key", NULL),
                     SMTPX_ERR_TLS);
    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(
                         m, DATA "server.pem", DATA "server-enc.key", "wrong"),
                     SMTPX_ERR_TLS);
    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(
                         m, DATA "server.pem", DATA "server-enc.key", "secret"),
                     0);

    /* From memory: PEM with or without its NUL, and DER. */
    crt = slurp(DATA "server.pem", &crt_len);
    key = slurp(DATA "server.key", &key_len);
    der = slurp(DATA "server.der", &der_len);
    dkey = slurp(DATA "server-key.der", &dkey_len);
    ca = slurp(DATA "ca.pem", &ca_len);
    ck_assert_int_eq(
        smtpx_mbedtls_add_cert_mem(m, crt, crt_len + 1, key, key_len + 1, NULL),
        0);
    ck_assert_int_eq(
        smtpx_mbedtls_add_cert_mem(m, crt, crt_len, key, key_len, NULL), 0);
    ck_assert_int_eq(
        smtpx_mbedtls_add_cert_mem(m, der, der_len, dkey, dkey_len, NULL), 0);
    ck_assert_int_eq(
        smtpx_mbedtls_add_cert_mem(m, crt, crt_len, dkey, dkey_len - 1, NULL),
        SMTPX_ERR_TLS);
    ck_assert_int_eq(
        smtpx_mbedtls_add_cert_mem(m, der, der_len - 10, dkey, dkey_len, NULL),
        SMTPX_ERR_TLS);
    ck_assert_int_eq(smtpx_mbedtls_add_cert_mem(m, NULL, 1, key, 1, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    /* 16 certificates at most. */
    for (i = 4; i < 16; i++)
        ck_assert_int_eq(
            smtpx_mbedtls_add_cert_mem(m, der, der_len, dkey, dkey_len, NULL),
            0);
    ck_assert_int_eq(
        smtpx_mbedtls_add_cert_mem(m, der, der_len, dkey, dkey_len, NULL),
        SMTPX_ERR_LIMIT);

    /* CAs: files, a directory, memory, and what is not a certificate. */
    ck_assert_int_eq(smtpx_mbedtls_add_ca_file(c, DATA "gen.sh"),
                     SMTPX_ERR_TLS);
    ck_assert_int_lt(smtpx_mbedtls_last_error(c), 0);
    ck_assert_int_eq(smtpx_mbedtls_add_ca_file(c, DATA "missing.pem"),
                     SMTPX_ERR_TLS);
    ck_assert_int_eq(smtpx_mbedtls_add_ca_mem(c, key, key_len + 1),
                     SMTPX_ERR_TLS);
    ck_assert_int_eq(smtpx_mbedtls_add_ca_mem(c, NULL, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_mbedtls_add_ca_file(c, DATA), 0);
    ck_assert_int_eq(smtpx_mbedtls_add_ca_mem(c, ca, ca_len), 0);
    ck_assert_int_eq(smtpx_mbedtls_add_ca_mem(c, ca, ca_len + 1), 0);
    {
        FILE *f = fopen("/etc/ssl/certs/ca-certificates.crt", "r");
        if (f != NULL) {
            fclose(f);
            ck_assert_int_eq(smtpx_mbedtls_add_ca_file(c, NULL), 0);
        }
    }

    /* Server-only settings on a client, and bad values. */
    ck_assert_int_eq(smtpx_mbedtls_set_sni(c, pick, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_mbedtls_set_client_cert(c, 1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_mbedtls_set_client_cert(m, 3),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_mbedtls_set_client_cert(m, -1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_mbedtls_set_sni(m, NULL, NULL), 0);

    /* NULL everywhere. */
    smtpx_mbedtls_free(NULL);
    ck_assert_int_eq(smtpx_mbedtls_last_error(NULL), 0);
    ck_assert_int_eq(smtpx_mbedtls_add_ca_file(NULL, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_mbedtls_set_sni(NULL, NULL, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_mbedtls_set_client_cert(NULL, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(smtpx_mbedtls_strerror(-1, NULL, 10));
    {
        const smtpx_tls_ops *ops = smtpx_mbedtls_ops();
        smtpx_tls_info info;
        uint8_t b[4];

        ck_assert_uint_eq(ops->size, sizeof(smtpx_tls_ops));
        ck_assert_int_eq(ops->handshake(NULL), SMTPX_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(ops->recv(NULL, b, 4), SMTPX_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(ops->send(NULL, b, 4), SMTPX_ERR_INVALID_ARGUMENT);
        ck_assert_uint_eq(ops->pending(NULL), 0);
        ck_assert_int_eq(ops->info(NULL, &info), SMTPX_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(ops->close(NULL), SMTPX_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(ops->last_error(NULL), 0);
        ops->free(NULL);
        ck_assert_int_eq(ops->open(NULL, 0, NULL, NULL, NULL),
                         SMTPX_ERR_INVALID_ARGUMENT);
    }
    free(crt);
    free(key);
    free(der);
    free(dkey);
    free(ca);
    smtpx_mbedtls_free(m);
    smtpx_mbedtls_free(c);
}
END_TEST

START_TEST(test_setup_after_open)
{
    /* The first open freezes the configuration: it may be shared. */
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem"), *sm = server_cfg("server");
    const smtpx_tls_ops *ops = smtpx_mbedtls_ops();
    uint8_t pem[] = "x";
    duplex d;
    void *conn;

    duplex_init(&d, 0);
    /* Wrong side, unknown flags, no io: refused, and nothing frozen. */
    ck_assert_int_eq(ops->open(sm, 0, "mx.test", &d.cio, &conn),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ops->open(cm, SMTPX_TLS_OPEN_SERVER, NULL, &d.sio, &conn),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ops->open(cm, 4, "mx.test", &d.cio, &conn),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ops->open(cm, 0, "mx.test", NULL, &conn),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_mbedtls_set_client_cert(sm, 1), 0);
    ck_assert_int_eq(smtpx_mbedtls_set_client_cert(sm, 0), 0);

    ck_assert_int_eq(ops->open(sm, SMTPX_TLS_OPEN_SERVER, NULL, &d.sio, &conn),
                     0);
    ops->free(conn);
    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(sm, DATA "other.pem",
                                                 DATA "other.key", NULL),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_mbedtls_add_cert_mem(sm, pem, 2, pem, 2, NULL),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_mbedtls_add_ca_file(sm, DATA "ca.pem"),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_mbedtls_add_ca_mem(sm, pem, 2),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_mbedtls_set_sni(sm, pick, NULL),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_mbedtls_set_client_cert(sm, 2),
                     SMTPX_ERR_INVALID_STATE);

    ck_assert_int_eq(ops->open(cm, 0, NULL, &d.cio, &conn), 0);
    ops->free(conn);
    ck_assert_int_eq(smtpx_mbedtls_add_ca_file(cm, DATA "ca.pem"),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(cm, DATA "client.pem",
                                                 DATA "client.key", NULL),
                     SMTPX_ERR_INVALID_STATE);
    /* ...and goes on working. */
    verify_ok(cm, sm, "mx.test");
    duplex_free(&d);
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
}
END_TEST

START_TEST(test_eof_and_io_errors)
{
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem"), *sm = server_cfg("server");
    uint8_t buf[64];
    pair p;

    /* The connection ends without close_notify: recv says EOF too. */
    ck_assert_int_eq(pair_open(&p, cm, sm, 0, "mx.test", 1), 0);
    pair_handshake(&p);
    ck_assert_int_eq(p.crc, 0);
    p.d.c2s.closed = 1;
    ck_assert_int_eq(recv_until(p.ops, p.srv, buf, sizeof(buf)), 0);
    ck_assert_int_eq(p.ops->recv(p.srv, buf, sizeof(buf)), 0);
    /* An I/O failure below is reported as such. */
    p.d.cli.fail = 1;
    ck_assert_int_eq(p.ops->recv(p.cli, buf, sizeof(buf)), SMTPX_ERR_IO);
    ck_assert_int_eq(p.ops->last_error(p.cli), NET_RECV_FAILED);
    ck_assert_int_eq(p.ops->send(p.cli, buf, 1), SMTPX_ERR_IO);
    pair_close(&p);

    /* EOF or an I/O failure during the handshake is a TLS failure. */
    ck_assert_int_eq(pair_open(&p, cm, sm, 0, "mx.test", 0), 0);
    p.d.s2c.closed = 1;
    p.d.srv.fail = 1;
    pair_handshake(&p);
    ck_assert_int_eq(p.crc, SMTPX_ERR_TLS);
    ck_assert_int_eq(p.ops->last_error(p.cli), SSL_CONN_EOF);
    ck_assert_int_eq(p.src, SMTPX_ERR_TLS);
    ck_assert_int_eq(p.ops->last_error(p.srv), NET_RECV_FAILED);
    pair_close(&p);

    /* A peer that speaks SMTP instead of TLS. */
    ck_assert_int_eq(pair_open(&p, cm, sm, 0, "mx.test", 0), 0);
    p.d.c2s.buf = malloc(28);
    memcpy(p.d.c2s.buf, "MAIL FROM:<evil@x.example>\r\n", 28);
    p.d.c2s.len = p.d.c2s.cap = 28;
    ck_assert_int_eq(p.ops->handshake(p.srv), SMTPX_ERR_TLS);
    ck_assert_int_lt(p.ops->last_error(p.srv), 0);
    pair_close(&p);
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
}
END_TEST

START_TEST(test_send_retry_longer)
{
    /* mbedTLS seals a record on the first call and, retried after WANT_*,
     * reports the length of the retry: offered more octets then (a queue
     * grows), it would claim octets it never sent. */
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem"), *sm = server_cfg("server");
    uint8_t out[300], got[300];
    size_t recvd = 0;
    smtpx_ssize r;
    pair p;

    ck_assert_int_eq(pair_open(&p, cm, sm, 0, "mx.test", 0), 0);
    pair_handshake(&p);
    ck_assert_int_eq(p.crc, 0);
    memset(out, 'A', 100);
    memset(out + 100, 'B', 200);
    p.d.cli.wblock = 1;
    ck_assert_int_eq(p.ops->send(p.cli, out, 100), SMTPX_ERR_WANT_WRITE);
    ck_assert_int_eq(p.ops->send(p.cli, out, 300), SMTPX_ERR_WANT_WRITE);
    /* Fewer octets than the sealed record cannot complete it. */
    ck_assert_int_eq(p.ops->send(p.cli, out, 50), SMTPX_ERR_INVALID_ARGUMENT);
    p.d.cli.wblock = 0;
    ck_assert_int_eq(p.ops->send(p.cli, out, 300), 100);
    ck_assert_int_eq(p.ops->send(p.cli, out + 100, 200), 200);
    while (recvd < 300) {
        r = recv_until(p.ops, p.srv, got + recvd, sizeof(got) - recvd);
        ck_assert_int_gt(r, 0);
        recvd += (size_t)r;
    }
    ck_assert_int_eq(memcmp(out, got, 300), 0);
    pair_close(&p);
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
}
END_TEST

START_TEST(test_strerror)
{
    char buf[512], small[5];

    smtpx_mbedtls_strerror(BADCERT_CN_MISMATCH | BADCERT_NOT_TRUSTED, buf,
                           sizeof(buf));
    ck_assert_msg(strstr(buf, "CN") && strstr(buf, "; ") && !strchr(buf, '\n'),
                  "%s", buf);
    smtpx_mbedtls_strerror(-0x2700, buf, sizeof(buf));
    ck_assert_msg(strstr(buf, "X509") != NULL, "%s", buf);
    ck_assert_str_eq(smtpx_mbedtls_strerror(SMTPX_ERR_TLS, buf, sizeof(buf)),
                     "TLS error");
    ck_assert_str_eq(smtpx_mbedtls_strerror(0, buf, sizeof(buf)), "success");
    ck_assert_str_eq(
        smtpx_mbedtls_strerror(BADCERT_EXPIRED, small, sizeof(small)), "The ");
    smtpx_mbedtls_strerror(-0x7780, small, sizeof(small));
    ck_assert_uint_eq(strlen(small), 4);
}
END_TEST

/* Many threads open their first connections on fresh shared configurations
 * at once: the freeze at first open must hold. */
typedef struct shared {
    smtpx_mbedtls *cm, *sm;
    int ok;
} shared;

static void *worker(void *arg)
{
    shared *s = arg;
    smtpx_tls_info info;
    int i;

    for (i = 0; i < 3; i++) {
        pair p;

        if (pair_open(&p, s->cm, s->sm, SMTPX_TLS_OPEN_VERIFY, "mx.test",
                      i % 2) != 0)
            return NULL;
        pair_handshake(&p);
        if (p.crc == 0 && p.src == 0 && p.ops->info(p.cli, &info) == 0 &&
            info.verified == 1)
            s->ok++;
        pair_close(&p);
    }
    return NULL;
}

START_TEST(test_threads)
{
    shared s[4];
    pthread_t th[4];
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem"), *sm = server_cfg("server");
    int i;

    for (i = 0; i < 4; i++) {
        s[i].cm = cm;
        s[i].sm = sm;
        s[i].ok = 0;
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker, &s[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(s[i].ok, 3);
    }
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
}
END_TEST

/* ---- through the transport and the sessions --------------------------- */

static int replies[16];
static int nreplies;
static int close_status;

/* on_reply - EHLO; STARTTLS unless TLS is up; EHLO again; QUIT */
static void on_reply(smtpx_client *c, int cmd, void *cookie,
                     const smtpx_reply *r, void *ud)
{
    (void)cookie;
    (void)ud;
    if (nreplies < 16)
        replies[nreplies++] = r->code;
    if (cmd == SMTPX_CMD_EHLO && r->code == 250) {
        if (smtpx_client_tls(c) == NULL)
            ck_assert_int_eq(smtpx_client_starttls(c, NULL), 0);
        else
            ck_assert_int_eq(smtpx_client_quit(c, NULL), 0);
    } else if (cmd == SMTPX_CMD_STARTTLS) {
        ck_assert_int_eq(r->code, 220);
        ck_assert_int_eq(smtpx_client_ehlo(c, "client.test", NULL), 0);
    }
}

static void on_close(smtpx_client *c, int status, void *ud)
{
    (void)c;
    (void)ud;
    close_status = status;
}

/* How stack() runs: TLS from the first byte (RFC 8314) or by STARTTLS
 * (RFC 3207), and the name a client asks for and whether it verifies. */
typedef struct stack_mode {
    int implicit;
    const char *name; /* smtpx_transport_set_peer_name(), or NULL */
    int verify;
} stack_mode;

/* stack - a server session and a client session, each over a transport
 * with the adapter, on the two ends of a stingy pipe; returns the client
 * session's end (on_close), and checks what the sessions saw when it is 0 */
static int stack(const stack_mode *mode, int *last_error)
{
    smtpx_mbedtls *cm = client_cfg(DATA "ca.pem"), *sm = server_cfg("server");
    smtpx_client_callbacks ccb = {.on_reply = on_reply, .on_close = on_close};
    smtpx_server_callbacks scb;
    smtpx_config *scfg, *ccfg;
    smtpx_transport *st, *ct;
    smtpx_server *s;
    smtpx_client *c;
    duplex d;
    int i, sw = 1, cw = 1, status;

    memset(&scb, 0, sizeof(scb));
    nreplies = 0;
    close_status = 1;
    duplex_init(&d, 1);
    ck_assert_int_eq(smtpx_config_new(&scfg, SMTPX_ROLE_SERVER, NULL), 0);
    ck_assert_int_eq(smtpx_config_set_hostname(scfg, "mx.test"), 0);
    ck_assert_int_eq(smtpx_config_freeze(scfg), 0);
    ck_assert_int_eq(smtpx_config_new(&ccfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(ccfg), 0);

    ck_assert_int_eq(smtpx_transport_new(&st, &d.sio, NULL), 0);
    ck_assert_int_eq(smtpx_transport_set_tls(st, smtpx_mbedtls_ops(), sm), 0);
    ck_assert_int_eq(smtpx_transport_new(&ct, &d.cio, NULL), 0);
    ck_assert_int_eq(smtpx_transport_set_tls(ct, smtpx_mbedtls_ops(), cm), 0);
    ck_assert_int_eq(
        smtpx_transport_set_peer_name(ct, mode->name, mode->verify), 0);
    ck_assert_int_eq(smtpx_server_new(&s, scfg, &scb, sizeof(scb), NULL), 0);
    ck_assert_int_eq(smtpx_client_new(&c, ccfg, &ccb, sizeof(ccb), NULL), 0);
    if (mode->implicit) {
        ck_assert_int_eq(smtpx_transport_start_tls(st, 1, NULL), 0);
        ck_assert_int_eq(smtpx_transport_start_tls(ct, 0, NULL), 0);
    } else {
        smtpx_server_set_tls_available(s, 1);
    }
    ck_assert_int_eq(smtpx_server_start(s, NULL, 0), 0);
    ck_assert_int_eq(smtpx_client_start(c, 0), 0);
    ck_assert_int_eq(smtpx_client_ehlo(c, "client.test", NULL), 0);

    /* A side that is done closes its connection, as a driver does. */
    for (i = 0; i < 100000 && (st != NULL || ct != NULL); i++) {
        if (st != NULL && (sw = smtpx_server_pump(s, st, 0)) == 0) {
            smtpx_transport_free(st);
            st = NULL;
        }
        if (ct != NULL && (cw = smtpx_client_pump(c, ct, 0)) == 0) {
            *last_error = smtpx_transport_last_error(ct);
            smtpx_transport_free(ct);
            ct = NULL;
        }
        ck_assert_int_ge(sw, 0);
        ck_assert_int_ge(cw, 0);
    }
    ck_assert_ptr_null(st);
    ck_assert_ptr_null(ct);
    status = close_status;
    if (status == 0) {
        /* 220, (EHLO 250, STARTTLS 220,) EHLO 250, QUIT 221 */
        ck_assert_int_eq(nreplies, mode->implicit ? 3 : 5);
        ck_assert_int_eq(replies[0], 220);
        ck_assert_int_eq(replies[nreplies - 1], 221);
        ck_assert_ptr_nonnull(smtpx_server_tls(s));
        ck_assert_str_eq(smtpx_server_tls(s)->version, "TLSv1.2");
        ck_assert_ptr_nonnull(smtpx_client_tls(c));
        ck_assert_str_eq(smtpx_client_tls(c)->version, "TLSv1.2");
        ck_assert_str_eq(smtpx_server_protocol(s), "ESMTPS");
        /* A name is checked, verifying or not; none proves nothing. */
        ck_assert_int_eq(smtpx_client_tls(c)->verified, mode->name != NULL);
        if (mode->name != NULL)
            ck_assert_str_eq(smtpx_client_tls(c)->peer, mode->name);
    } else {
        /* TLS never came up; with implicit TLS not even EHLO went out. */
        ck_assert_ptr_null(smtpx_client_tls(c));
        ck_assert_ptr_null(smtpx_server_tls(s));
        if (mode->implicit)
            ck_assert_ptr_null(smtpx_server_helo(s));
    }
    smtpx_client_free(c);
    smtpx_server_free(s);
    smtpx_config_free(ccfg);
    smtpx_config_free(scfg);
    duplex_free(&d);
    smtpx_mbedtls_free(cm);
    smtpx_mbedtls_free(sm);
    return status;
}

START_TEST(test_transport_starttls)
{
    /* _i: without a name, with one, verifying it */
    static const stack_mode modes[] = {
        {0, NULL, 0}, {0, "mx.test", 0}, {0, "mx.test", 1}};
    int le;

    ck_assert_int_eq(stack(&modes[_i], &le), 0);
}
END_TEST

START_TEST(test_transport_implicit)
{
    static const stack_mode modes[] = {
        {1, NULL, 0}, {1, "localhost", 0}, {1, "mx.test", 1}};
    int le;

    ck_assert_int_eq(stack(&modes[_i], &le), 0);
}
END_TEST

START_TEST(test_transport_verify_fails)
{
    /* Through the whole stack a wrong name ends the client session with
     * SMTPX_ERR_TLS_VERIFY, and the transport has the X.509 flags. */
    static const stack_mode modes[] = {{0, "wrong.test", 1},
                                       {1, "wrong.test", 1}};
    int le;

    ck_assert_int_eq(stack(&modes[_i], &le), SMTPX_ERR_TLS_VERIFY);
    ck_assert_int_eq(le, BADCERT_CN_MISMATCH);
}
END_TEST

Suite *suite_tls(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("handshake");
    TCase *tv = tcase_create("verify");
    TCase *ts = tcase_create("sni");
    TCase *tu = tcase_create("setup");
    TCase *tt = tcase_create("stack");

    /* ECDSA handshakes are quick, but valgrind is slow. */
    tcase_set_timeout(tc, 120);
    tcase_set_timeout(tv, 120);
    tcase_set_timeout(ts, 120);
    tcase_set_timeout(tu, 120);
    tcase_set_timeout(tt, 120);
    tcase_add_loop_test(tc, test_handshake_and_data, 0, 2);
    tcase_add_test(tc, test_eof_and_io_errors);
    tcase_add_test(tc, test_send_retry_longer);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tv, test_verify_wrong_name);
    tcase_add_test(tv, test_verify_without_name_refused);
    tcase_add_test(tv, test_verify_by_address);
    tcase_add_test(tv, test_verify_untrusted_ca);
    tcase_add_test(tv, test_verify_expired);
    tcase_add_test(tv, test_no_verify_reports);
    tcase_add_test(tv, test_client_cert);
    tcase_add_test(tv, test_resumption);
    tcase_add_test(tv, test_resumption_off_and_expiry);
    tcase_add_test(tv, test_resumption_cache_bound);
    tcase_add_test(ts, test_sni_default);
    tcase_add_test(ts, test_sni_callback);
    tcase_add_test(tu, test_cert_key_mismatch);
    tcase_add_test(tu, test_setup_errors);
    tcase_add_test(tu, test_setup_after_open);
    tcase_add_test(tu, test_strerror);
    tcase_add_loop_test(tt, test_transport_starttls, 0, 3);
    tcase_add_loop_test(tt, test_transport_implicit, 0, 3);
    tcase_add_loop_test(tt, test_transport_verify_fails, 0, 2);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, tv);
    suite_add_tcase(s, ts);
    suite_add_tcase(s, tu);
    suite_add_tcase(s, tt);
    return s;
}
