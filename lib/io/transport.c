/*
 * transport - an smtpx_io with an optional TLS layer, and the pump.
 *
 * Exports smtpx_transport_new/free/set_tls/has_tls/set_peer_name/
 * start_tls/tls_active/last_error, smtpx_server_pump() and
 * smtpx_client_pump().
 *
 * The pump is the only place where a session meets its connection.  It
 * holds no protocol knowledge: it writes what the session shows, runs the
 * TLS handshake when the session asks for it (after its output - the 220
 * to STARTTLS - has gone out in clear text), and feeds what it reads.
 * Reading uses a buffer on the stack, so a session waiting for its client
 * holds no input buffer.  Data the TLS layer has already decrypted is read
 * before the pump reports that it waits for the socket, since the socket
 * will not become readable for it (mbedtls_ssl_get_bytes_avail).
 */
#include <errno.h>
#include <string.h>

#include <libsmtpx/transport.h>

#include "base/mem.h"

/* Octets read from the connection at a time. */
#define PUMP_READ 16384
/* Reads and writes per pump call, so one busy session cannot starve the
 * others of an event loop. */
#define PUMP_ROUNDS 16

enum { TLS_NONE, TLS_HANDSHAKE, TLS_ACTIVE, TLS_CLOSED };

struct smtpx_transport {
    smtpx_mem mem;
    smtpx_io io;
    smtpx_tls_ops ops;
    int has_tls;
    void *tls_cfg;
    void *conn;
    int tls_state;
    int last_error;
    char *sni;  /* the name a client asks for and verifies */
    int verify; /* the client verifies the chain and sni */
};

int smtpx_transport_new(smtpx_transport **out, const smtpx_io *io,
                        const smtpx_mem *mem)
{
    smtpx_transport *t;

    if (out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (io == NULL || io->send == NULL || io->recv == NULL ||
        !smtpx__mem_valid(mem))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (mem == NULL)
        mem = smtpx__mem_default();
    t = smtpx__calloc(mem, 1, sizeof(*t));
    if (t == NULL)
        return SMTPX_ERR_NOMEM;
    t->mem = *mem;
    t->io = *io;
    *out = t;
    return 0;
}

void smtpx_transport_free(smtpx_transport *t)
{
    smtpx_mem mem;

    if (t == NULL)
        return;
    if (t->conn != NULL && t->ops.free != NULL)
        t->ops.free(t->conn);
    smtpx__free(&t->mem, t->sni);
    if (t->io.close != NULL)
        t->io.close(t->io.ctx);
    mem = t->mem;
    smtpx__free(&mem, t);
}

int smtpx_transport_set_tls(smtpx_transport *t, const smtpx_tls_ops *ops,
                            void *tls_cfg)
{
    smtpx_tls_ops copy;

    if (t == NULL || ops == NULL || ops->size == 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    memset(&copy, 0, sizeof(copy));
    memcpy(&copy, ops, ops->size < sizeof(copy) ? ops->size : sizeof(copy));
    if (copy.open == NULL || copy.handshake == NULL || copy.recv == NULL ||
        copy.send == NULL || copy.free == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (t->tls_state != TLS_NONE)
        return SMTPX_ERR_INVALID_STATE;
    t->ops = copy;
    t->tls_cfg = tls_cfg;
    t->has_tls = 1;
    return 0;
}

int smtpx_transport_has_tls(const smtpx_transport *t)
{
    return t != NULL && t->has_tls;
}

int smtpx_transport_set_peer_name(smtpx_transport *t, const char *name,
                                  int verify)
{
    char *copy = NULL;

    if (t == NULL || (verify && (name == NULL || name[0] == '\0')))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (t->tls_state != TLS_NONE)
        return SMTPX_ERR_INVALID_STATE;
    if (name != NULL && (copy = smtpx__strdup(&t->mem, name)) == NULL)
        return SMTPX_ERR_NOMEM;
    smtpx__free(&t->mem, t->sni);
    t->sni = copy;
    t->verify = verify ? 1 : 0;
    return 0;
}

/* transport_open - make the TLS connection object for one side */
static int transport_open(smtpx_transport *t, int server)
{
    int flags = server ? SMTPX_TLS_OPEN_SERVER : 0;
    int rc;

    if (!server && t->verify)
        flags |= SMTPX_TLS_OPEN_VERIFY;
    rc = t->ops.open(t->tls_cfg, flags, server ? NULL : t->sni, &t->io,
                     &t->conn);
    if (rc < 0) {
        t->last_error = rc;
        return rc;
    }
    t->tls_state = TLS_HANDSHAKE;
    return 0;
}

int smtpx_transport_start_tls(smtpx_transport *t, int server, const char *sni)
{
    if (t == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (!t->has_tls || t->tls_state != TLS_NONE)
        return SMTPX_ERR_INVALID_STATE;
    if (sni != NULL && !server) {
        char *copy = smtpx__strdup(&t->mem, sni);
        if (copy == NULL)
            return SMTPX_ERR_NOMEM;
        smtpx__free(&t->mem, t->sni);
        t->sni = copy;
    }
    return transport_open(t, server);
}

int smtpx_transport_tls_active(const smtpx_transport *t)
{
    return t != NULL && t->tls_state == TLS_ACTIVE;
}

int smtpx_transport_last_error(const smtpx_transport *t)
{
    return t != NULL ? t->last_error : 0;
}

/* transport_failed - keep the detail: errno in clear text, the TLS
 * implementation's own code (or its SMTPX code) under TLS */
static void transport_failed(smtpx_transport *t, int r)
{
    int e = errno;

    if (t->tls_state != TLS_ACTIVE) {
        t->last_error = e;
        return;
    }
    t->last_error = t->ops.last_error != NULL ? t->ops.last_error(t->conn) : 0;
    if (t->last_error == 0)
        t->last_error = r;
}

/* transport_recv / transport_send - through TLS once it is up */
static smtpx_ssize transport_recv(smtpx_transport *t, uint8_t *buf, size_t len)
{
    smtpx_ssize r;

    errno = 0;
    r = t->tls_state == TLS_ACTIVE ? t->ops.recv(t->conn, buf, len)
                                   : t->io.recv(t->io.ctx, buf, len);
    if (r < 0 && r != SMTPX_ERR_WANT_READ && r != SMTPX_ERR_WANT_WRITE)
        transport_failed(t, (int)r);
    return r;
}

static smtpx_ssize transport_send(smtpx_transport *t, const uint8_t *buf,
                                  size_t len)
{
    smtpx_ssize r;

    errno = 0;
    r = t->tls_state == TLS_ACTIVE ? t->ops.send(t->conn, buf, len)
                                   : t->io.send(t->io.ctx, buf, len);
    if (r < 0 && r != SMTPX_ERR_WANT_READ && r != SMTPX_ERR_WANT_WRITE)
        transport_failed(t, (int)r);
    return r;
}

/*
 * A session as the pump sees it: the same few calls for both sides, so one
 * pump serves servers and clients alike.
 */
typedef struct pump_ops {
    int server; /* the TLS side */
    size_t (*out_peek)(void *s, const uint8_t **data);
    void (*out_drop)(void *s, size_t n, uint64_t now_ms);
    int (*want_read)(const void *s);
    int (*want_write)(const void *s);
    int (*want_tls)(const void *s);
    int (*done)(const void *s);
    void (*recv)(void *s, const uint8_t *in, size_t len, uint64_t now_ms);
    void (*eof)(void *s);
    void (*abort)(void *s, int err);
    int (*tls_started)(void *s, const smtpx_tls_info *info, uint64_t now_ms);
} pump_ops;

/* pump_handshake - advance the TLS handshake; returns the wait bits, 0
 * when it completed, or -1 when it failed (the session was ended) */
static int pump_handshake(const pump_ops *o, void *s, smtpx_transport *t,
                          uint64_t now_ms)
{
    smtpx_tls_info info;
    int rc;

    if (t->tls_state == TLS_NONE) {
        if (!t->has_tls) {
            o->abort(s, SMTPX_ERR_TLS);
            return -1;
        }
        if (transport_open(t, o->server) < 0) {
            o->abort(s, SMTPX_ERR_TLS);
            return -1;
        }
    }
    rc = t->ops.handshake(t->conn);
    if (rc == SMTPX_ERR_WANT_READ)
        return SMTPX_WAIT_READ;
    if (rc == SMTPX_ERR_WANT_WRITE)
        return SMTPX_WAIT_WRITE;
    if (rc < 0) {
        t->last_error =
            t->ops.last_error != NULL ? t->ops.last_error(t->conn) : rc;
        if (t->last_error == 0)
            t->last_error = rc;
        o->abort(s, rc == SMTPX_ERR_TLS_VERIFY ? SMTPX_ERR_TLS_VERIFY
                                               : SMTPX_ERR_TLS);
        return -1;
    }
    t->tls_state = TLS_ACTIVE;
    memset(&info, 0, sizeof(info));
    if (t->ops.info != NULL)
        t->ops.info(t->conn, &info);
    if (!o->server && t->verify && !info.verified) {
        /* The implementation should have failed the handshake; a
         * verifying policy does not take its word for it. */
        o->abort(s, SMTPX_ERR_TLS_VERIFY);
        return -1;
    }
    if (o->tls_started(s, &info, now_ms) < 0) {
        o->abort(s, SMTPX_ERR_TLS);
        return -1;
    }
    return 0;
}

/* transport_pump - one step of any session over a transport */
static int transport_pump(const pump_ops *o, void *s, smtpx_transport *t,
                          uint64_t now_ms)
{
    uint8_t buf[PUMP_READ];
    int round, wait = 0, send_needs_read = 0;

    for (round = 0; round < PUMP_ROUNDS; round++) {
        int progress = 0;
        const uint8_t *p;
        size_t n;

        wait = 0;
        send_needs_read = 0;
        /* Output first: replies or commands, and the 220 (or STARTTLS)
         * before a TLS hand-over. */
        while (t->tls_state != TLS_HANDSHAKE && (n = o->out_peek(s, &p)) > 0) {
            smtpx_ssize w = transport_send(t, p, n);
            if (w > 0) {
                o->out_drop(s, (size_t)w, now_ms);
                progress = 1;
            } else if (w == SMTPX_ERR_WANT_WRITE || w == 0) {
                wait |= SMTPX_WAIT_WRITE;
                break;
            } else if (w == SMTPX_ERR_WANT_READ) {
                /* TLS must read before it can write (a renegotiation):
                 * waiting for the socket to be writable would spin. */
                wait |= SMTPX_WAIT_READ;
                send_needs_read = 1;
                break;
            } else {
                o->abort(s, SMTPX_ERR_IO);
                break;
            }
        }
        if (o->done(s))
            break;
        if ((o->want_tls(s) && !o->want_write(s)) ||
            t->tls_state == TLS_HANDSHAKE) {
            int h = pump_handshake(o, s, t, now_ms);
            if (h < 0)
                continue; /* ended: the loop reports done */
            if (h > 0) {
                wait |= h;
                break;
            }
            progress = 1;
        }
        if (o->want_read(s)) {
            smtpx_ssize r = transport_recv(t, buf, sizeof(buf));
            if (r > 0) {
                o->recv(s, buf, (size_t)r, now_ms);
                progress = 1;
            } else if (r == 0) {
                o->eof(s);
                progress = 1;
            } else if (r == SMTPX_ERR_WANT_READ) {
                wait |= SMTPX_WAIT_READ;
            } else if (r == SMTPX_ERR_WANT_WRITE) {
                wait |= SMTPX_WAIT_WRITE;
            } else {
                o->abort(s, t->tls_state == TLS_ACTIVE ? SMTPX_ERR_TLS
                                                       : SMTPX_ERR_IO);
                progress = 1;
            }
        }
        if (!progress)
            break;
    }
    if (o->done(s)) {
        if (t->tls_state == TLS_ACTIVE && t->ops.close != NULL) {
            /* close_notify, best effort: the connection is closing. */
            t->ops.close(t->conn);
            t->tls_state = TLS_CLOSED;
        }
        return 0;
    }
    if (o->want_write(s) && t->tls_state != TLS_HANDSHAKE && !send_needs_read)
        wait |= SMTPX_WAIT_WRITE;
    if (o->want_read(s))
        wait |= SMTPX_WAIT_READ;
    if (round == PUMP_ROUNDS)
        wait |= SMTPX_WAIT_AGAIN; /* the budget ran out, not the work */
    return wait != 0 ? wait : SMTPX_WAIT_APP;
}

/* The two sides, adapted to pump_ops. */
static size_t ps_peek(void *s, const uint8_t **d)
{
    return smtpx_server_out_peek(s, d);
}
static void ps_drop(void *s, size_t n, uint64_t now)
{
    smtpx_server_out_drop(s, n, now);
}
static int ps_want_read(const void *s)
{
    return smtpx_server_want_read(s);
}
static int ps_want_write(const void *s)
{
    return smtpx_server_want_write(s);
}
static int ps_want_tls(const void *s)
{
    return smtpx_server_want_tls(s);
}
static int ps_done(const void *s)
{
    return smtpx_server_done(s);
}
static void ps_recv(void *s, const uint8_t *in, size_t len, uint64_t now)
{
    smtpx_server_recv(s, in, len, now);
}
static void ps_eof(void *s)
{
    smtpx_server_eof(s);
}
static void ps_abort(void *s, int err)
{
    smtpx_server_abort(s, err);
}
static int ps_tls(void *s, const smtpx_tls_info *i, uint64_t now)
{
    return smtpx_server_tls_started(s, i, now);
}

static const pump_ops pump_server = {
    1,       ps_peek, ps_drop, ps_want_read, ps_want_write, ps_want_tls,
    ps_done, ps_recv, ps_eof,  ps_abort,     ps_tls};

static size_t pc_peek(void *c, const uint8_t **d)
{
    return smtpx_client_out_peek(c, d);
}
static void pc_drop(void *c, size_t n, uint64_t now)
{
    smtpx_client_out_drop(c, n, now);
}
static int pc_want_read(const void *c)
{
    return smtpx_client_want_read(c);
}
static int pc_want_write(const void *c)
{
    return smtpx_client_want_write(c);
}
static int pc_want_tls(const void *c)
{
    return smtpx_client_want_tls(c);
}
static int pc_done(const void *c)
{
    return smtpx_client_done(c);
}
static void pc_recv(void *c, const uint8_t *in, size_t len, uint64_t now)
{
    smtpx_client_recv(c, in, len, now);
}
static void pc_eof(void *c)
{
    smtpx_client_eof(c);
}
static void pc_abort(void *c, int err)
{
    smtpx_client_abort(c, err);
}
static int pc_tls(void *c, const smtpx_tls_info *i, uint64_t now)
{
    return smtpx_client_tls_started(c, i, now);
}

static const pump_ops pump_client = {
    0,       pc_peek, pc_drop, pc_want_read, pc_want_write, pc_want_tls,
    pc_done, pc_recv, pc_eof,  pc_abort,     pc_tls};

int smtpx_server_pump(smtpx_server *s, smtpx_transport *t, uint64_t now_ms)
{
    if (s == NULL || t == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    return transport_pump(&pump_server, s, t, now_ms);
}

int smtpx_client_pump(smtpx_client *c, smtpx_transport *t, uint64_t now_ms)
{
    if (c == NULL || t == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    return transport_pump(&pump_client, c, t, now_ms);
}
