/*
 * fuzz_transport - the pump and the STARTTLS hand-over over an in-memory
 * connection and a toy TLS plug-in, with arbitrary bytes around the
 * hand-over, on both sides.
 *
 * The toy TLS (as in tests/io/check_transport.c): the client sends 'H',
 * the server answers 'S', and from then on every octet is XORed with 0x80.
 * The connection hands out the peer's octets in pieces the input chooses,
 * says WANT_READ / WANT_WRITE when it chooses, takes short writes, and
 * ends in EOF.
 *
 * Input: octet 0 chooses the side and the connection's manners, octet 1
 * the piece size; the rest is what the peer sends (clear text, then
 * perhaps 'H' or 'S', then XORed text).
 *
 * Checked beyond the sanitizers: the pump returns 0 or wait bits and the
 * session ends; on_close fires once; TLS opens only after the clear output
 * (the 220, or STARTTLS) was written whole; nothing is obeyed while the
 * handshake runs; once TLS is up, every command the server obeys came
 * through the TLS layer (the plaintext purge: what followed STARTTLS in
 * clear text is never obeyed), and the client saw its STARTTLS answered
 * before it started TLS; the TLS object is freed once.
 */
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/smtpx.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct conn {
    const uint8_t *in;
    size_t len, pos, piece;
    unsigned manners;
    unsigned tick;
    size_t written; /* octets the session wrote */
    uint8_t out[256];
    size_t out_len; /* the last octets written, for checks */
} conn;

typedef struct toy {
    const smtpx_io *lower;
    int server;
    int state; /* 0: first step, 1: second, 2: up */
    int opened, freed;
    size_t written_at_open; /* clear octets written before open */
    uint8_t clear[8192];    /* what came through the layer, decrypted */
    size_t clear_len;
} toy;

static toy the_toy;
static conn the_conn;
static int closes, obeyed_while_handshaking, injected;

static smtpx_ssize c_send(void *ctx, const uint8_t *buf, size_t len)
{
    conn *c = ctx;

    if (len == 0)
        abort();
    if ((c->manners & 1) && c->tick++ % 3 == 0)
        return SMTPX_ERR_WANT_WRITE;
    if ((c->manners & 2) && len > 1)
        len = 1 + len / 3; /* a short write */
    c->written += len;
    if (len >= sizeof(c->out)) {
        memcpy(c->out, buf + len - sizeof(c->out), sizeof(c->out));
        c->out_len = sizeof(c->out);
    } else {
        if (c->out_len + len > sizeof(c->out)) {
            size_t drop = c->out_len + len - sizeof(c->out);
            memmove(c->out, c->out + drop, c->out_len - drop);
            c->out_len -= drop;
        }
        memcpy(c->out + c->out_len, buf, len);
        c->out_len += len;
    }
    return (smtpx_ssize)len;
}

static smtpx_ssize c_recv(void *ctx, uint8_t *buf, size_t len)
{
    conn *c = ctx;
    size_t n;

    if (len == 0)
        abort();
    if (c->pos == c->len)
        return 0;
    if ((c->manners & 4) && c->tick++ % 2 == 0)
        return SMTPX_ERR_WANT_READ;
    n = c->len - c->pos;
    if (n > c->piece)
        n = c->piece;
    if (n > len)
        n = len;
    memcpy(buf, c->in + c->pos, n);
    c->pos += n;
    return (smtpx_ssize)n;
}

static int toy_open(void *cfg, int flags, const char *sni,
                    const smtpx_io *lower, void **out)
{
    toy *t = &the_toy;

    (void)cfg;
    (void)sni;
    if (t->opened)
        abort(); /* one hand-over per connection */
    t->lower = lower;
    t->server = (flags & SMTPX_TLS_OPEN_SERVER) != 0;
    t->state = 0;
    t->opened = 1;
    t->written_at_open = the_conn.written;
    *out = t;
    return 0;
}

static int toy_handshake(void *conn_)
{
    toy *t = conn_;
    uint8_t b;
    smtpx_ssize r;

    while (t->state < 2) {
        int reading = t->server ? t->state == 0 : t->state == 1;
        if (reading) {
            r = t->lower->recv(t->lower->ctx, &b, 1);
            if (r < 0)
                return (int)r;
            if (r == 0 || b != (t->server ? 'H' : 'S'))
                return SMTPX_ERR_TLS;
        } else {
            b = t->server ? 'S' : 'H';
            r = t->lower->send(t->lower->ctx, &b, 1);
            if (r < 0)
                return (int)r;
        }
        t->state++;
    }
    return 0;
}

static smtpx_ssize toy_recv(void *conn_, uint8_t *buf, size_t len)
{
    toy *t = conn_;
    smtpx_ssize r;
    smtpx_ssize i;

    if (t->state != 2)
        abort(); /* application data before the handshake ended */
    r = t->lower->recv(t->lower->ctx, buf, len);
    for (i = 0; i < r; i++) {
        buf[i] ^= 0x80;
        if (t->clear_len < sizeof(t->clear))
            t->clear[t->clear_len++] = buf[i];
    }
    return r;
}

static smtpx_ssize toy_send(void *conn_, const uint8_t *buf, size_t len)
{
    toy *t = conn_;
    uint8_t tmp[512];
    size_t n = len < sizeof(tmp) ? len : sizeof(tmp), i;

    if (t->state != 2)
        abort();
    for (i = 0; i < n; i++)
        tmp[i] = buf[i] ^ 0x80;
    return t->lower->send(t->lower->ctx, tmp, n);
}

static int toy_info(void *conn_, smtpx_tls_info *out)
{
    (void)conn_;
    out->version = "TOY";
    out->cipher = "XOR";
    out->bits = 8;
    return 0;
}

static int toy_close(void *conn_)
{
    (void)conn_;
    return 0;
}

static void toy_free(void *conn_)
{
    toy *t = conn_;

    if (t->freed++)
        abort();
}

static int toy_last_error(void *conn_)
{
    (void)conn_;
    return 42;
}

static const smtpx_tls_ops toy_ops = {sizeof(smtpx_tls_ops),
                                      toy_open,
                                      toy_handshake,
                                      toy_recv,
                                      toy_send,
                                      NULL,
                                      toy_info,
                                      toy_close,
                                      toy_free,
                                      toy_last_error};

/* came_through_tls - s was received through the TLS layer */
static int came_through_tls(const char *s)
{
    size_t n = strlen(s), i;

    if (n == 0)
        return 1;
    for (i = 0; i + n <= the_toy.clear_len; i++)
        if (memcmp(the_toy.clear + i, s, n) == 0)
            return 1;
    return 0;
}

/* check_obeyed - a command the server acts on */
static void check_obeyed(smtpx_server *s, const char *arg)
{
    if (the_toy.opened && the_toy.state != 2)
        obeyed_while_handshaking = 1;
    if (smtpx_server_tls(s) != NULL && !came_through_tls(arg))
        injected = 1;
}

static int s_helo(smtpx_server *s, int kind, const char *name, smtpx_reply *r,
                  void *ud)
{
    (void)kind;
    (void)r;
    (void)ud;
    check_obeyed(s, name);
    return 0;
}

static int s_mail(smtpx_server *s, const smtpx_mail_info *m, smtpx_reply *r,
                  void *ud)
{
    (void)r;
    (void)ud;
    check_obeyed(s, m->from);
    return 0;
}

static int s_rcpt(smtpx_server *s, const smtpx_rcpt_info *ri, void **rd,
                  smtpx_reply *r, void *ud)
{
    (void)ri;
    (void)rd;
    (void)r;
    (void)ud;
    check_obeyed(s, "");
    return 0;
}

static int s_chunk(smtpx_server *s, const uint8_t *p, size_t n, void *ud)
{
    (void)s;
    (void)ud;
    if (n == 0 || p == NULL)
        abort();
    return 0;
}

static void s_close(smtpx_server *s, int status, void *ud)
{
    (void)s;
    (void)status;
    (void)ud;
    closes++;
}

static void c_reply(smtpx_client *c, int cmd, void *cookie,
                    const smtpx_reply *r, void *ud)
{
    (void)cookie;
    (void)ud;
    if (the_toy.opened && the_toy.state != 2)
        obeyed_while_handshaking = 1;
    if (cmd == SMTPX_CMD_EHLO && r->code == 250 && smtpx_client_tls(c) == NULL)
        smtpx_client_starttls(c, NULL); /* may be refused: not offered */
}

static void c_close(smtpx_client *c, int status, void *ud)
{
    (void)c;
    (void)status;
    (void)ud;
    closes++;
}

static smtpx_config *config(int role)
{
    smtpx_config *cfg;

    if (smtpx_config_new(&cfg, role, NULL) != 0 ||
        smtpx_config_set_hostname(cfg, "mx.test") != 0 ||
        smtpx_config_set_limit(cfg, SMTPX_LIMIT_LINE, 256) != 0 ||
        smtpx_config_set_limit(cfg, SMTPX_LIMIT_MSG_SIZE, 1000) != 0 ||
        smtpx_config_freeze(cfg) != 0)
        abort();
    return cfg;
}

/* drive - pump until done; the clock moves when the session waits for
 * nothing the connection can give */
static void drive(int server, void *sess, smtpx_transport *t)
{
    uint64_t now = 0;
    int i, w;

    for (i = 0; i < 20000; i++) {
        w = server ? smtpx_server_pump(sess, t, now)
                   : smtpx_client_pump(sess, t, now);
        if (w < 0)
            abort();
        if (w == 0)
            return;
        if (w == SMTPX_WAIT_APP ||
            (the_conn.pos == the_conn.len && !(w & SMTPX_WAIT_WRITE) &&
             !(w & SMTPX_WAIT_AGAIN))) {
            now += 301000;
            if (server)
                smtpx_server_expire(sess, now);
            else
                smtpx_client_expire(sess, now);
        }
    }
    abort(); /* the session never ended */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static smtpx_config *scfg, *ccfg;
    smtpx_transport *t;
    smtpx_io io = {&the_conn, c_send, c_recv, NULL};
    int server;

    if (scfg == NULL) {
        scfg = config(SMTPX_ROLE_SERVER);
        ccfg = config(SMTPX_ROLE_CLIENT);
    }
    if (size < 2)
        return 0;
    memset(&the_conn, 0, sizeof(the_conn));
    memset(&the_toy, 0, sizeof(the_toy));
    closes = obeyed_while_handshaking = injected = 0;
    the_conn.in = data + 2;
    the_conn.len = size - 2;
    the_conn.manners = data[0] >> 1;
    the_conn.piece = 1 + data[1] % 128;
    server = !(data[0] & 1);
    if (smtpx_transport_new(&t, &io, NULL) != 0 ||
        smtpx_transport_set_tls(t, &toy_ops, NULL) != 0)
        abort();
    if (server) {
        smtpx_server_callbacks cbs = {0};
        smtpx_server *s;
        smtpx_peer peer = {"192.0.2.1", 1, "192.0.2.2", 25, NULL};

        cbs.on_helo = s_helo;
        cbs.on_mail = s_mail;
        cbs.on_rcpt = s_rcpt;
        cbs.on_data_chunk = s_chunk;
        cbs.on_close = s_close;
        if (smtpx_server_new(&s, scfg, &cbs, sizeof(cbs), NULL) != 0)
            abort();
        smtpx_server_set_tls_available(s, 1);
        if ((data[0] & 0x40) && smtpx_transport_start_tls(t, 1, NULL) != 0)
            abort(); /* implicit TLS */
        smtpx_server_start(s, &peer, 0);
        drive(1, s, t);
        smtpx_server_free(s);
    } else {
        smtpx_client_callbacks cbs = {0};
        smtpx_client *c;
        smtpx_txn *txn;

        cbs.on_reply = c_reply;
        cbs.on_close = c_close;
        if (smtpx_client_new(&c, ccfg, &cbs, sizeof(cbs), NULL) != 0 ||
            smtpx_txn_new(&txn, ccfg, "a@b.example") != 0 ||
            smtpx_txn_add_rcpt(txn, "c@d.example", NULL) != 0 ||
            smtpx_txn_set_body(txn, "Subject: x\r\n\r\n.\r\n", 17) != 0)
            abort();
        smtpx_client_start(c, 0);
        smtpx_client_ehlo(c, "c.test", NULL);
        smtpx_client_send(c, txn);
        smtpx_client_quit(c, NULL);
        drive(0, c, t);
        smtpx_client_free(c);
        if (!smtpx_txn_done(txn))
            abort();
        smtpx_txn_free(txn);
    }
    if (closes != 1 || obeyed_while_handshaking || injected)
        abort();
    if (the_toy.opened && !(data[0] & 0x40) && server) {
        /* The 220 went out whole, in clear text, before the hand-over. */
        static const char ready[] = "220 2.0.0 Ready to start TLS\r\n";
        if (the_toy.written_at_open < sizeof(ready) - 1)
            abort();
    }
    smtpx_transport_free(t);
    if (the_toy.opened && the_toy.freed != 1)
        abort();
    return 0;
}
