/*
 * check_transport - the pump over an in-memory smtpx_io that moves one
 * byte at a time and says WANT_READ / WANT_WRITE at every other call, and
 * the STARTTLS hand-over through a toy TLS plug-in (a one-byte handshake and
 * a XOR "cipher"), which proves that the handshake runs through the pump
 * without blocking and that plaintext sent after STARTTLS is never obeyed;
 * and a whole STARTTLS session with every allocation failing in turn.
 */
#include <string.h>

#include <libsmtpx/smtpx.h>

#include "harness/failmalloc.h"
#include "suites.h"

/* One direction of the pipe. */
typedef struct chan {
    uint8_t buf[65536];
    size_t len;
} chan;

typedef struct mem_io {
    chan *in;  /* what the server reads */
    chan *out; /* what the server writes */
    int tick;  /* alternates: every other call would block */
    int eof;   /* the client closed */
    int fail;  /* the next call fails */
    int closed;
    int whole; /* reads return all that is there, as a socket does */
} mem_io;

static smtpx_ssize mem_send(void *ctx, const uint8_t *buf, size_t len)
{
    mem_io *m = ctx;

    ck_assert_uint_gt(len, 0);
    if (m->fail)
        return SMTPX_ERR_IO;
    if (m->tick++ % 2 == 0)
        return SMTPX_ERR_WANT_WRITE;
    ck_assert_uint_lt(m->out->len, sizeof(m->out->buf));
    m->out->buf[m->out->len++] = buf[0]; /* a short write of one byte */
    return 1;
}

static smtpx_ssize mem_recv(void *ctx, uint8_t *buf, size_t len)
{
    mem_io *m = ctx;

    ck_assert_uint_gt(len, 0);
    if (m->fail)
        return SMTPX_ERR_IO;
    if (m->in->len == 0)
        return m->eof ? 0 : SMTPX_ERR_WANT_READ;
    if (m->tick++ % 2 == 0)
        return SMTPX_ERR_WANT_READ;
    if (m->whole) {
        size_t n = m->in->len < len ? m->in->len : len;
        memcpy(buf, m->in->buf, n);
        memmove(m->in->buf, m->in->buf + n, m->in->len - n);
        m->in->len -= n;
        return (smtpx_ssize)n;
    }
    buf[0] = m->in->buf[0];
    memmove(m->in->buf, m->in->buf + 1, --m->in->len);
    return 1;
}

static void mem_close(void *ctx)
{
    ((mem_io *)ctx)->closed++;
}

static void put(chan *c, const char *s)
{
    size_t n = strlen(s);
    ck_assert_uint_lt(c->len + n, sizeof(c->buf));
    memcpy(c->buf + c->len, s, n);
    c->len += n;
}

/* take - what the server wrote so far, as a string, and forget it */
static char *take(chan *c, char *dst, size_t size)
{
    size_t n = c->len < size - 1 ? c->len : size - 1;
    memcpy(dst, c->buf, n);
    dst[n] = '\0';
    c->len = 0;
    return dst;
}

static smtpx_config *make_cfg(void)
{
    smtpx_config *cfg;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, NULL), 0);
    ck_assert_int_eq(smtpx_config_set_hostname(cfg, "mx.test"), 0);
    ck_assert_int_eq(smtpx_config_freeze(cfg), 0);
    return cfg;
}

/* run - pump until the session waits for input that is not there, or is
 * done; returns the last pump result */
static int run(smtpx_server *s, smtpx_transport *t, mem_io *m)
{
    int w = 0, i;

    for (i = 0; i < 100000; i++) {
        w = smtpx_server_pump(s, t, 0);
        if (w == 0)
            return 0;
        ck_assert_int_gt(w, 0);
        /* The io blocks every other call: come back while it could move. */
        if ((w & SMTPX_WAIT_READ) && m->in->len == 0 && !m->eof &&
            !(w & SMTPX_WAIT_WRITE))
            return w;
        if (w == SMTPX_WAIT_APP)
            return w;
    }
    ck_abort_msg("pump did not settle");
    return -1;
}

static char received[4096];
static size_t nreceived;

static int on_chunk(smtpx_server *s, const uint8_t *p, size_t n, void *ud)
{
    (void)s;
    (void)ud;
    memcpy(received + nreceived, p, n);
    nreceived += n;
    return 0;
}

START_TEST(test_pump_short_io)
{
    static chan cin, cout;
    mem_io m = {&cin, &cout, 0, 0, 0, 0, 0};
    smtpx_io io = {&m, mem_send, mem_recv, mem_close};
    smtpx_server_callbacks cbs = {.on_data_chunk = on_chunk};
    smtpx_config *cfg = make_cfg();
    smtpx_transport *t;
    smtpx_server *s;
    char out[4096];

    cin.len = cout.len = 0;
    nreceived = 0;
    ck_assert_int_eq(smtpx_transport_new(&t, &io, NULL), 0);
    ck_assert_int_eq(smtpx_server_new(&s, cfg, &cbs, sizeof(cbs), NULL), 0);
    ck_assert_int_eq(smtpx_server_start(s, NULL, 0), 0);
    ck_assert_int_eq(run(s, t, &m), SMTPX_WAIT_READ);
    ck_assert_str_eq(take(&cout, out, sizeof(out)), "220 mx.test ESMTP\r\n");
    put(&cin, "HELO c.test\r\nMAIL FROM:<a@b.example>\r\n"
              "RCPT TO:<c@d.example>\r\nDATA\r\n");
    run(s, t, &m);
    ck_assert_str_eq(take(&cout, out, sizeof(out)),
                     "250 mx.test\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                     "354 End data with <CR><LF>.<CR><LF>\r\n");
    put(&cin, "Subject: x\r\n\r\n..a\r\n.\r\nQUIT\r\n");
    ck_assert_int_eq(run(s, t, &m), 0);
    ck_assert_str_eq(
        take(&cout, out, sizeof(out)),
        "250 2.0.0 Ok\r\n221 2.0.0 mx.test closing connection\r\n");
    received[nreceived] = '\0';
    ck_assert_str_eq(received, "Subject: x\r\n\r\n.a\r\n");
    smtpx_server_free(s);
    smtpx_transport_free(t);
    ck_assert_int_eq(m.closed, 1);
    smtpx_config_free(cfg);
}
END_TEST

static int close_status;

static void on_close(smtpx_server *s, int status, void *ud)
{
    (void)s;
    (void)ud;
    close_status = status;
}

START_TEST(test_pump_eof_and_error)
{
    static chan cin, cout;
    mem_io m = {&cin, &cout, 0, 0, 0, 0, 0};
    smtpx_io io = {&m, mem_send, mem_recv, NULL};
    smtpx_server_callbacks cbs = {.on_close = on_close};
    smtpx_config *cfg = make_cfg();
    smtpx_transport *t;
    smtpx_server *s;

    /* The client hangs up: the session ends with EOF and the pump says
     * done. */
    cin.len = cout.len = 0;
    ck_assert_int_eq(smtpx_transport_new(&t, &io, NULL), 0);
    ck_assert_int_eq(smtpx_server_new(&s, cfg, &cbs, sizeof(cbs), NULL), 0);
    smtpx_server_start(s, NULL, 0);
    run(s, t, &m);
    m.eof = 1;
    ck_assert_int_eq(run(s, t, &m), 0);
    ck_assert_int_eq(close_status, SMTPX_ERR_EOF);
    smtpx_server_free(s);
    smtpx_transport_free(t);

    /* An I/O error ends it with SMTPX_ERR_IO. */
    m.eof = 0;
    cin.len = cout.len = 0;
    ck_assert_int_eq(smtpx_transport_new(&t, &io, NULL), 0);
    ck_assert_int_eq(smtpx_server_new(&s, cfg, &cbs, sizeof(cbs), NULL), 0);
    smtpx_server_start(s, NULL, 0);
    m.fail = 1;
    ck_assert_int_eq(smtpx_server_pump(s, t, 0), 0);
    ck_assert_int_eq(close_status, SMTPX_ERR_IO);
    smtpx_server_free(s);
    smtpx_transport_free(t);
    smtpx_config_free(cfg);

    ck_assert_int_eq(smtpx_transport_new(NULL, &io, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_server_pump(NULL, NULL, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
}
END_TEST

/*
 * A toy TLS: the client sends 'H', the server answers 'S'; afterwards every
 * octet is XORed with 0x80 (so ASCII never becomes NUL).  It is enough to tell
 * TLS bytes from clear text and to make the handshake need both a read and a
 * write.
 */
typedef struct toy {
    const smtpx_io *lower;
    int state; /* 0: wait for H, 1: send S, 2: up */
} toy;

static int toy_opened;

static int toy_open(void *cfg, int flags, const char *sni,
                    const smtpx_io *lower, void **conn)
{
    static toy t;
    (void)cfg;
    (void)sni;
    ck_assert_int_eq(flags, SMTPX_TLS_OPEN_SERVER);
    t.lower = lower;
    t.state = 0;
    toy_opened++;
    *conn = &t;
    return 0;
}

static int toy_handshake(void *conn)
{
    toy *t = conn;
    uint8_t b;
    smtpx_ssize r;

    while (t->state < 2) {
        if (t->state == 0) {
            r = t->lower->recv(t->lower->ctx, &b, 1);
            if (r < 0)
                return (int)r;
            if (r == 0 || b != 'H')
                return SMTPX_ERR_TLS; /* plaintext is not a handshake */
            t->state = 1;
        } else {
            b = 'S';
            r = t->lower->send(t->lower->ctx, &b, 1);
            if (r < 0)
                return (int)r;
            t->state = 2;
        }
    }
    return 0;
}

static smtpx_ssize toy_recv(void *conn, uint8_t *buf, size_t len)
{
    toy *t = conn;
    smtpx_ssize r = t->lower->recv(t->lower->ctx, buf, len);
    smtpx_ssize i;

    for (i = 0; i < r; i++)
        buf[i] ^= 0x80;
    return r;
}

static smtpx_ssize toy_send(void *conn, const uint8_t *buf, size_t len)
{
    toy *t = conn;
    uint8_t b = buf[0] ^ 0x80;

    (void)len;
    return t->lower->send(t->lower->ctx, &b, 1);
}

static size_t toy_pending(void *conn)
{
    (void)conn;
    return 0;
}

static int toy_info(void *conn, smtpx_tls_info *out)
{
    (void)conn;
    out->version = "TOY";
    out->cipher = "XOR";
    out->bits = 8;
    return 0;
}

static void toy_free(void *conn)
{
    (void)conn;
}

static const smtpx_tls_ops toy_ops = {.size = sizeof(smtpx_tls_ops),
                                      .open = toy_open,
                                      .handshake = toy_handshake,
                                      .recv = toy_recv,
                                      .send = toy_send,
                                      .pending = toy_pending,
                                      .info = toy_info,
                                      .free = toy_free};

static void put_xor(chan *c, const char *s)
{
    while (*s)
        c->buf[c->len++] = (uint8_t)(*s++ ^ 0x80);
}

static char *take_xor(chan *c, char *dst, size_t size)
{
    size_t i;

    take(c, dst, size);
    for (i = 0; dst[i]; i++)
        dst[i] ^= 0x80;
    return dst;
}

static int mails;

static int on_mail(smtpx_server *s, const smtpx_mail_info *mi, smtpx_reply *r,
                   void *ud)
{
    (void)s;
    (void)r;
    (void)ud;
    ck_assert_str_ne(mi->from, "evil@x.example");
    mails++;
    return 0;
}

START_TEST(test_starttls_handover)
{
    static chan cin, cout;
    mem_io m = {&cin, &cout, 0, 0, 0, 0, 0};
    smtpx_io io = {&m, mem_send, mem_recv, NULL};
    smtpx_server_callbacks cbs = {.on_mail = on_mail};
    smtpx_config *cfg = make_cfg();
    smtpx_transport *t;
    smtpx_server *s;
    char out[4096];

    cin.len = cout.len = 0;
    mails = 0;
    toy_opened = 0;
    /* The injected command arrives in the same read as STARTTLS, as it
     * does from a socket when sent in one packet. */
    m.whole = 1;
    ck_assert_int_eq(smtpx_transport_new(&t, &io, NULL), 0);
    ck_assert_int_eq(smtpx_transport_set_tls(t, &toy_ops, NULL), 0);
    ck_assert_int_eq(smtpx_server_new(&s, cfg, &cbs, sizeof(cbs), NULL), 0);
    smtpx_server_set_tls_available(s, 1);
    smtpx_server_start(s, NULL, 0);
    put(&cin, "EHLO c.test\r\n");
    run(s, t, &m);
    ck_assert_ptr_nonnull(strstr(take(&cout, out, sizeof(out)), "STARTTLS"));
    /* The injected command after STARTTLS, in the same packet, is dropped;
     * the 220 goes out in clear text, then the handshake starts. */
    put(&cin, "STARTTLS\r\nMAIL FROM:<evil@x.example>\r\n");
    ck_assert_int_eq(run(s, t, &m) & SMTPX_WAIT_READ, SMTPX_WAIT_READ);
    ck_assert_str_eq(take(&cout, out, sizeof(out)),
                     "220 2.0.0 Ready to start TLS\r\n");
    ck_assert_int_eq(toy_opened, 1);
    ck_assert_int_eq(smtpx_transport_tls_active(t), 0);
    put(&cin, "H");
    run(s, t, &m);
    ck_assert_str_eq(take(&cout, out, sizeof(out)), "S");
    ck_assert_int_eq(smtpx_transport_tls_active(t), 1);
    ck_assert_str_eq(smtpx_server_tls(s)->version, "TOY");
    ck_assert_str_eq(smtpx_server_tls(s)->cipher, "XOR");
    /* Over "TLS" the EHLO state is new (RFC 3207 4.2). */
    put_xor(&cin, "MAIL FROM:<a@b.example>\r\nEHLO c.test\r\n"
                  "MAIL FROM:<a@b.example>\r\n");
    run(s, t, &m);
    take_xor(&cout, out, sizeof(out));
    ck_assert_ptr_nonnull(strstr(out, "503 5.5.1 Send HELO/EHLO first"));
    ck_assert_ptr_null(strstr(out, "STARTTLS"));
    ck_assert_ptr_nonnull(strstr(out, "250 2.1.0 Ok"));
    ck_assert_str_eq(smtpx_server_protocol(s), "ESMTPS");
    ck_assert_int_eq(mails, 1);
    smtpx_server_free(s);
    smtpx_transport_free(t);
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_starttls_plaintext_handshake)
{
    /* A client that keeps talking clear text after the 220, in a later
     * read, fails the handshake: the session ends with SMTPX_ERR_TLS and
     * nothing is obeyed. */
    static chan cin, cout;
    mem_io m = {&cin, &cout, 0, 0, 0, 0, 0};
    smtpx_io io = {&m, mem_send, mem_recv, NULL};
    smtpx_server_callbacks cbs = {.on_mail = on_mail, .on_close = on_close};
    smtpx_config *cfg = make_cfg();
    smtpx_transport *t;
    smtpx_server *s;
    char out[4096];

    cin.len = cout.len = 0;
    mails = 0;
    ck_assert_int_eq(smtpx_transport_new(&t, &io, NULL), 0);
    ck_assert_int_eq(smtpx_transport_set_tls(t, &toy_ops, NULL), 0);
    ck_assert_int_eq(smtpx_server_new(&s, cfg, &cbs, sizeof(cbs), NULL), 0);
    smtpx_server_set_tls_available(s, 1);
    smtpx_server_start(s, NULL, 0);
    put(&cin, "EHLO c.test\r\nSTARTTLS\r\n");
    run(s, t, &m);
    take(&cout, out, sizeof(out));
    put(&cin, "MAIL FROM:<evil@x.example>\r\n");
    ck_assert_int_eq(run(s, t, &m), 0);
    ck_assert_int_eq(close_status, SMTPX_ERR_TLS);
    ck_assert_int_eq(mails, 0);
    ck_assert_int_eq(smtpx_transport_last_error(t), SMTPX_ERR_TLS);
    smtpx_server_free(s);
    smtpx_transport_free(t);
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_set_tls_checks)
{
    static chan cin, cout;
    mem_io m = {&cin, &cout, 0, 0, 0, 0, 0};
    smtpx_io io = {&m, mem_send, mem_recv, NULL};
    smtpx_tls_ops bad = toy_ops;
    smtpx_transport *t;

    ck_assert_int_eq(smtpx_transport_new(&t, &io, NULL), 0);
    ck_assert_int_eq(smtpx_transport_has_tls(t), 0);
    ck_assert_int_eq(smtpx_transport_start_tls(t, 1, NULL),
                     SMTPX_ERR_INVALID_STATE);
    bad.handshake = NULL;
    ck_assert_int_eq(smtpx_transport_set_tls(t, &bad, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    /* A table from an older program (smaller size) lacks functions. */
    bad = toy_ops;
    bad.size = offsetof(smtpx_tls_ops, recv);
    ck_assert_int_eq(smtpx_transport_set_tls(t, &bad, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_transport_set_tls(t, &toy_ops, NULL), 0);
    ck_assert_int_eq(smtpx_transport_has_tls(t), 1);
    ck_assert_int_eq(smtpx_transport_start_tls(t, 1, NULL), 0);
    ck_assert_int_eq(smtpx_transport_start_tls(t, 1, NULL),
                     SMTPX_ERR_INVALID_STATE);
    smtpx_transport_free(t);
}
END_TEST

/* Toy variants that fail where a real TLS library may. */
static int toy_open_fails(void *cfg, int flags, const char *sni,
                          const smtpx_io *lower, void **conn)
{
    (void)cfg;
    (void)flags;
    (void)sni;
    (void)lower;
    *conn = NULL;
    return SMTPX_ERR_TLS;
}

static smtpx_ssize toy_recv_fails(void *conn, uint8_t *buf, size_t len)
{
    (void)conn;
    (void)buf;
    (void)len;
    return SMTPX_ERR_TLS;
}

static smtpx_ssize toy_send_blocks(void *conn, const uint8_t *buf, size_t len)
{
    (void)conn;
    (void)buf;
    (void)len;
    return SMTPX_ERR_WANT_READ; /* a renegotiation: wait for input */
}

static int toy_last_error_code(void *conn)
{
    (void)conn;
    return -0x7780; /* any code of the implementation's own */
}

/* starttls_with - a session that says STARTTLS over the toy variant ops;
 * returns how it ended, after `after` is sent once TLS is up */
static int starttls_with(const smtpx_tls_ops *ops, const char *after,
                         int *last_error, int *wait)
{
    static chan cin, cout;
    mem_io m = {&cin, &cout, 0, 0, 0, 0, 1};
    smtpx_io io = {&m, mem_send, mem_recv, NULL};
    smtpx_server_callbacks cbs = {.on_close = on_close};
    smtpx_config *cfg = make_cfg();
    smtpx_transport *t;
    smtpx_server *s;
    int w;

    cin.len = cout.len = 0;
    close_status = 1;
    ck_assert_int_eq(smtpx_transport_new(&t, &io, NULL), 0);
    if (ops != NULL)
        ck_assert_int_eq(smtpx_transport_set_tls(t, ops, NULL), 0);
    ck_assert_int_eq(smtpx_server_new(&s, cfg, &cbs, sizeof(cbs), NULL), 0);
    smtpx_server_set_tls_available(s, 1);
    smtpx_server_start(s, NULL, 0);
    put(&cin, "EHLO c.test\r\nSTARTTLS\r\n");
    w = run(s, t, &m);
    if (w != 0) {
        /* In a later read: in the same one it would be purged. */
        put(&cin, "H");
        w = run(s, t, &m);
        if (ops != NULL && ops->open == toy_open)
            ck_assert_int_eq(smtpx_transport_tls_active(t), 1);
    }
    if (w != 0 && after != NULL) {
        put_xor(&cin, after);
        w = run(s, t, &m);
    }
    *wait = w;
    if (w != 0 && ops != NULL && ops->send != toy_send_blocks) {
        m.eof = 1;
        run(s, t, &m);
    }
    *last_error = smtpx_transport_last_error(t);
    smtpx_server_free(s);
    smtpx_transport_free(t);
    smtpx_config_free(cfg);
    return close_status;
}

START_TEST(test_tls_failures)
{
    smtpx_tls_ops ops;
    int last, w;

    /* A session offered STARTTLS over a transport without TLS. */
    ck_assert_int_eq(starttls_with(NULL, NULL, &last, &w), SMTPX_ERR_TLS);
    /* The TLS layer cannot open: the session ends, the code is kept. */
    ops = toy_ops;
    ops.open = toy_open_fails;
    ck_assert_int_eq(starttls_with(&ops, NULL, &last, &w), SMTPX_ERR_TLS);
    ck_assert_int_eq(last, SMTPX_ERR_TLS);
    /* Reading under TLS fails: TLS error, with the layer's own code. */
    ops = toy_ops;
    ops.recv = toy_recv_fails;
    ops.last_error = toy_last_error_code;
    ck_assert_int_eq(starttls_with(&ops, "NOOP\r\n", &last, &w), SMTPX_ERR_TLS);
    ck_assert_int_eq(last, -0x7780);
    /* Without last_error the transport keeps the SMTPX code. */
    ops.last_error = NULL;
    ck_assert_int_eq(starttls_with(&ops, "NOOP\r\n", &last, &w), SMTPX_ERR_TLS);
    ck_assert_int_eq(last, SMTPX_ERR_TLS);
    /* A TLS send that waits for input (a renegotiation): the pump says
     * it waits to read, not to write (a poll loop would spin on a
     * writable socket), and the session stays open. */
    ops = toy_ops;
    ops.send = toy_send_blocks;
    ck_assert_int_eq(starttls_with(&ops, "EHLO c.test\r\n", &last, &w),
                     SMTPX_ERR_CLOSED); /* still open when freed */
    ck_assert_int_eq(w & (SMTPX_WAIT_READ | SMTPX_WAIT_WRITE), SMTPX_WAIT_READ);
}
END_TEST

START_TEST(test_transport_args)
{
    static chan cin, cout;
    mem_io m = {&cin, &cout, 0, 0, 0, 0, 1};
    smtpx_io io = {&m, mem_send, mem_recv, NULL}, bad = io;
    smtpx_mem half = {NULL, NULL, NULL, NULL, NULL};
    smtpx_tls_ops ops = toy_ops;
    smtpx_transport *t;

    bad.recv = NULL;
    ck_assert_int_eq(smtpx_transport_new(&t, NULL, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_transport_new(&t, &bad, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(smtpx_transport_new(&t, &io, &half),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_transport_set_tls(NULL, &toy_ops, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_transport_has_tls(NULL), 0);
    ck_assert_int_eq(smtpx_transport_tls_active(NULL), 0);
    ck_assert_int_eq(smtpx_transport_last_error(NULL), 0);
    ck_assert_int_eq(smtpx_transport_set_peer_name(NULL, "x", 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_transport_start_tls(NULL, 1, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_client_pump(NULL, NULL, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);

    ck_assert_int_eq(smtpx_transport_new(&t, &io, NULL), 0);
    /* Verifying needs a name; names are copied and may be replaced. */
    ck_assert_int_eq(smtpx_transport_set_peer_name(t, NULL, 1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_transport_set_peer_name(t, "", 1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_transport_set_peer_name(t, "a.test", 1), 0);
    ck_assert_int_eq(smtpx_transport_set_peer_name(t, "b.test", 0), 0);
    ck_assert_int_eq(smtpx_transport_set_peer_name(t, NULL, 0), 0);
    ops.open = toy_open_fails;
    ck_assert_int_eq(smtpx_transport_set_tls(t, &ops, NULL), 0);
    /* The client side with a name: open fails, the code is kept. */
    ck_assert_int_eq(smtpx_transport_start_tls(t, 0, "mx.test"), SMTPX_ERR_TLS);
    ck_assert_int_eq(smtpx_transport_last_error(t), SMTPX_ERR_TLS);
    ck_assert_int_eq(smtpx_transport_set_tls(t, &toy_ops, NULL), 0);
    ck_assert_int_eq(smtpx_transport_start_tls(t, 1, NULL), 0);
    /* Once TLS has begun nothing about it changes. */
    ck_assert_int_eq(smtpx_transport_set_peer_name(t, "c.test", 0),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_transport_set_tls(t, &toy_ops, NULL),
                     SMTPX_ERR_INVALID_STATE);
    smtpx_transport_free(t);
}
END_TEST

static int sweep_closes, sweep_status;

static void sweep_on_close(smtpx_server *s, int status, void *ud)
{
    (void)s;
    (void)ud;
    sweep_closes++;
    sweep_status = status;
}

START_TEST(test_starttls_nomem)
{
    /* Every allocation of the config, the transport and the session fails
     * in turn over a STARTTLS session through the toy TLS layer: each
     * failure is reported (NOMEM, or a session that ends), nothing
     * crashes, on_close fires once, and everything is freed. */
    static chan cin, cout;
    long n;
    int clean = 0;

    for (n = 1; n < 5000 && !clean; n++) {
        failmalloc fm = {.fail_at = 0};
        smtpx_mem mem = failmalloc_mem(&fm);
        mem_io m = {&cin, &cout, 0, 0, 0, 0, 1};
        smtpx_io io = {&m, mem_send, mem_recv, NULL};
        smtpx_server_callbacks cbs = {.on_close = sweep_on_close};
        smtpx_config *cfg = NULL;
        smtpx_transport *t = NULL;
        smtpx_server *s = NULL;
        char out[4096];

        cin.len = cout.len = 0;
        sweep_closes = 0;
        sweep_status = 1;
        fm.fail_at = n;
        if (smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, &mem) != 0 ||
            smtpx_config_set_hostname(cfg, "mx.test") != 0 ||
            smtpx_config_freeze(cfg) != 0) {
            smtpx_config_free(cfg);
            ck_assert_int_eq(fm.live, 0);
            continue;
        }
        if (smtpx_transport_new(&t, &io, &mem) != 0 ||
            smtpx_transport_set_tls(t, &toy_ops, NULL) != 0 ||
            smtpx_server_new(&s, cfg, &cbs, sizeof(cbs), NULL) != 0) {
            smtpx_transport_free(t);
            smtpx_config_free(cfg);
            ck_assert_int_eq(fm.live, 0);
            continue;
        }
        smtpx_server_set_tls_available(s, 1);
        if (smtpx_server_start(s, NULL, 0) == 0) {
            put(&cin, "EHLO c.test\r\nSTARTTLS\r\n");
            if (run(s, t, &m) != 0 && !smtpx_server_done(s)) {
                put(&cin, "H");
                if (run(s, t, &m) != 0 && !smtpx_server_done(s)) {
                    put_xor(&cin, "EHLO c.test\r\nMAIL FROM:<a@b.example>\r\n"
                                  "RCPT TO:<c@d.example>\r\nDATA\r\n"
                                  "Subject: x\r\n\r\nbody\r\n.\r\n"
                                  "QUIT\r\n");
                    run(s, t, &m);
                }
            }
        }
        take_xor(&cout, out, sizeof(out));
        smtpx_server_free(s);
        smtpx_transport_free(t);
        smtpx_config_free(cfg);
        ck_assert_int_eq(sweep_closes, 1);
        ck_assert_int_eq(fm.live, 0);
        if (fm.failures == 0) {
            ck_assert_int_eq(sweep_status, 0); /* QUIT: the whole session */
            ck_assert_ptr_nonnull(strstr(out, "221 2.0.0"));
            clean = 1;
        } else {
            ck_assert_int_ne(sweep_status, 0);
        }
    }
    ck_assert_int_eq(clean, 1);
    ck_assert_int_gt(n, 10);
}
END_TEST

Suite *suite_transport(void)
{
    Suite *s = suite_create("transport");
    TCase *tc = tcase_create("pump");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pump_short_io);
    tcase_add_test(tc, test_pump_eof_and_error);
    tcase_add_test(tc, test_starttls_handover);
    tcase_add_test(tc, test_starttls_plaintext_handshake);
    tcase_add_test(tc, test_set_tls_checks);
    tcase_add_test(tc, test_starttls_nomem);
    tcase_add_test(tc, test_tls_failures);
    tcase_add_test(tc, test_transport_args);
    suite_add_tcase(s, tc);
    return s;
}
