/*
 * smtpx-uv-recv - an SMTP receiver on libuv, driving the sans-IO server
 * core with libuv's own TCP streams: the proof that the public API is
 * enough to run sessions in someone else's event loop.
 *
 *   smtpx-uv-recv [--listen 127.0.0.1:2525] [--timeout SECONDS]
 *                 [--delay MS] [--hostname NAME]
 *
 * It accepts every message and throws it away, logging one line per
 * message.  A recipient whose local part is "slow" is decided later: the
 * callback pauses the session, a libuv timer answers after --delay ms
 * (as a directory lookup would), and the session goes on.  SIGTERM or
 * SIGINT lets transactions in progress finish, then closes.
 *
 * libuv reads into buffers it hands over and writes asynchronously, so
 * this driver does without smtpx_server_pump() and the transport: what
 * uv_read_start() delivers goes to smtpx_server_recv(); what
 * smtpx_server_out_peek() shows is written with uv_try_write() and, for
 * the rest, a copy with uv_write() (the core's buffer may move when more
 * input comes), and only once it is written is it dropped with
 * smtpx_server_out_drop(), so the core's output limit still holds the
 * client back.  Reading stops while smtpx_server_want_read() is 0 (paused,
 * output backed up); the session's deadline is a libuv timer set after
 * every step.  Only <libsmtpx/...> and libuv are used.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <libsmtpx/smtpx.h>
#include <libsmtpx/posix.h>

typedef struct app {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_signal_t sigterm, sigint;
    smtpx_config *cfg;
    unsigned delay_ms;
    int stopping;
    size_t conns;
    unsigned long messages;
} app;

typedef struct conn {
    app *a;
    uv_tcp_t tcp;
    uv_timer_t deadline;
    uv_timer_t answer; /* the delayed reply to a "slow" recipient */
    uv_write_t wreq;
    smtpx_server *s;
    char *wbuf;      /* what uv_write() is writing */
    size_t inflight; /* octets of the output being written */
    int reading;
    int closing;
    int handles; /* libuv handles still open (tcp, two timers) */
} conn;

static void conn_kick(conn *c);

static uint64_t now_ms(const app *a)
{
    return uv_now(a->loop);
}

/* ---- the session's callbacks -------------------------------------------- */

static void answer_later(uv_timer_t *t)
{
    conn *c = t->data;
    smtpx_reply r = {250, {2, 1, 5}, "Ok, checked later"};

    /* Outside any callback of the session: the answer, then the driver
     * takes the session up again. */
    smtpx_server_reply(c->s, &r, now_ms(c->a));
    conn_kick(c);
}

static int on_rcpt(smtpx_server *s, const smtpx_rcpt_info *rcpt,
                   void **rcpt_data, smtpx_reply *reply, void *user_data)
{
    conn *c = user_data;

    (void)s;
    (void)rcpt_data;
    (void)reply;
    if (strncmp(rcpt->to, "slow@", 5) != 0)
        return 0;
    uv_timer_start(&c->answer, answer_later, c->a->delay_ms, 0);
    return SMTPX_ERR_PAUSE;
}

static int on_data_end(smtpx_server *s, smtpx_reply *reply, void *user_data)
{
    conn *c = user_data;
    const char *from = smtpx_server_mail_from(s);

    (void)reply;
    c->a->messages++;
    fprintf(stderr, "smtpx-uv-recv: message from=<%s> rcpts=%zu size=%llu\n",
            from != NULL ? from : "", smtpx_server_rcpt_count(s),
            (unsigned long long)smtpx_server_data_size(s));
    return 0; /* 250: thrown away */
}

static const smtpx_server_callbacks callbacks = {
    .on_rcpt = on_rcpt,
    .on_data_end = on_data_end,
};

/* ---- the driver ------------------------------------------------------------
 */

static void handle_closed(uv_handle_t *h)
{
    conn *c = h->data;

    if (--c->handles > 0)
        return;
    smtpx_server_free(c->s);
    free(c->wbuf);
    c->a->conns--;
    if (c->a->stopping && c->a->conns == 0) {
        uv_close((uv_handle_t *)&c->a->sigterm, NULL);
        uv_close((uv_handle_t *)&c->a->sigint, NULL);
    }
    free(c);
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, handle_closed);
    uv_close((uv_handle_t *)&c->deadline, handle_closed);
    uv_close((uv_handle_t *)&c->answer, handle_closed);
}

static void on_written(uv_write_t *req, int status)
{
    conn *c = req->data;

    free(c->wbuf);
    c->wbuf = NULL;
    if (status < 0) {
        smtpx_server_abort(c->s, SMTPX_ERR_IO);
    } else {
        smtpx_server_out_drop(c->s, c->inflight, now_ms(c->a));
    }
    c->inflight = 0;
    conn_kick(c);
}

/* conn_flush - write what the session has queued: at once as far as the
 * socket takes it, the rest through uv_write() */
static void conn_flush(conn *c)
{
    const uint8_t *p;
    size_t n;

    while (c->inflight == 0 && (n = smtpx_server_out_peek(c->s, &p)) > 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);

        if (w > 0) {
            smtpx_server_out_drop(c->s, (size_t)w, now_ms(c->a));
            continue;
        }
        if (w != UV_EAGAIN && w != UV_ENOSYS) {
            smtpx_server_abort(c->s, SMTPX_ERR_IO);
            return;
        }
        c->wbuf = malloc(n);
        if (c->wbuf == NULL) {
            smtpx_server_abort(c->s, SMTPX_ERR_NOMEM);
            return;
        }
        memcpy(c->wbuf, p, n);
        b = uv_buf_init(c->wbuf, (unsigned)n);
        c->inflight = n;
        c->wreq.data = c;
        if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) !=
            0) {
            free(c->wbuf);
            c->wbuf = NULL;
            c->inflight = 0;
            smtpx_server_abort(c->s, SMTPX_ERR_IO);
        }
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    /* One buffer for every connection: the core takes each read at once
     * (keeping only what it cannot process yet), so an idle session holds
     * none. */
    static char shared[65536];

    (void)h;
    (void)hint;
    *buf = uv_buf_init(shared, sizeof(shared));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    conn *c = st->data;

    if (n > 0)
        smtpx_server_recv(c->s, (const uint8_t *)buf->base, (size_t)n,
                          now_ms(c->a));
    else if (n == UV_EOF)
        smtpx_server_eof(c->s);
    else if (n < 0)
        smtpx_server_abort(c->s, SMTPX_ERR_IO);
    conn_kick(c);
}

static void on_deadline(uv_timer_t *t)
{
    conn *c = t->data;

    smtpx_server_expire(c->s, now_ms(c->a));
    conn_kick(c);
}

/* conn_kick - after anything happened to the session: write, read or
 * not, re-arm the deadline, close when it is over */
static void conn_kick(conn *c)
{
    uint64_t e, now = now_ms(c->a);

    if (c->closing)
        return;
    conn_flush(c);
    if (smtpx_server_done(c->s)) {
        if (c->inflight == 0)
            conn_close(c); /* else after the last write */
        return;
    }
    if (smtpx_server_want_read(c->s) && !c->reading) {
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        c->reading = 1;
    } else if (!smtpx_server_want_read(c->s) && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    e = smtpx_server_expiry(c->s);
    if (e == 0)
        uv_timer_stop(&c->deadline);
    else
        uv_timer_start(&c->deadline, on_deadline, e > now ? e - now : 0, 0);
}

static void on_connection(uv_stream_t *server, int status)
{
    app *a = server->data;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char addr[64] = "";
    smtpx_peer peer;
    conn *c;

    if (status < 0 || (c = calloc(1, sizeof(*c))) == NULL)
        return;
    c->a = a;
    uv_tcp_init(a->loop, &c->tcp);
    uv_timer_init(a->loop, &c->deadline);
    uv_timer_init(a->loop, &c->answer);
    c->tcp.data = c->deadline.data = c->answer.data = c;
    c->handles = 3;
    a->conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        smtpx_server_new(&c->s, a->cfg, &callbacks, sizeof(callbacks), c) !=
            0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    memset(&peer, 0, sizeof(peer));
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            uv_ip4_name(in, addr, sizeof(addr));
            peer.port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(in6, addr, sizeof(addr));
            peer.port = ntohs(in6->sin6_port);
        }
        peer.addr = addr;
    }
    smtpx_server_start(c->s, &peer, now_ms(a));
    conn_kick(c);
}

static void shut_one(uv_handle_t *h, void *arg)
{
    app *a = arg;

    if (h->type == UV_TCP && h != (uv_handle_t *)&a->listener &&
        !uv_is_closing(h)) {
        conn *c = h->data;
        smtpx_server_shutdown(c->s, SMTPX_SHUTDOWN_DRAIN);
        conn_kick(c);
    }
}

/* on_signal - stop taking connections; idle sessions get 421 at once,
 * busy ones finish their transaction; the loop ends with the last */
static void on_signal(uv_signal_t *sig, int signum)
{
    app *a = sig->data;

    (void)signum;
    if (a->stopping)
        return;
    a->stopping = 1;
    uv_close((uv_handle_t *)&a->listener, NULL);
    uv_walk(a->loop, shut_one, a);
    if (a->conns == 0) {
        uv_close((uv_handle_t *)&a->sigterm, NULL);
        uv_close((uv_handle_t *)&a->sigint, NULL);
    }
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:2525", *hostname = "localhost";
    struct sockaddr_storage ss;
    char host[256], port[32];
    unsigned timeout_s = 300;
    int i, len = sizeof(ss), rc;
    app a;

    memset(&a, 0, sizeof(a));
    a.delay_ms = 200;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout_s = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--delay") == 0 && i + 1 < argc)
            a.delay_ms = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--hostname") == 0 && i + 1 < argc)
            hostname = argv[++i];
        else {
            fprintf(stderr, "usage: smtpx-uv-recv [--listen ADDR:PORT] "
                            "[--timeout SECONDS] [--delay MS] "
                            "[--hostname NAME]\n");
            return 2;
        }
    }
    if (timeout_s == 0 || smtpx_posix_split_hostport(listen, host, sizeof(host),
                                                     port, sizeof(port)) < 0) {
        fprintf(stderr, "smtpx-uv-recv: bad arguments\n");
        return 2;
    }
    if ((rc = smtpx_config_new(&a.cfg, SMTPX_ROLE_SERVER, NULL)) != 0 ||
        (rc = smtpx_config_set_hostname(a.cfg, hostname)) != 0 ||
        (rc = smtpx_config_set_timeout(a.cfg, SMTPX_TIMEOUT_COMMAND,
                                       timeout_s * 1000)) != 0 ||
        (rc = smtpx_config_set_timeout(a.cfg, SMTPX_TIMEOUT_DATA,
                                       timeout_s * 1000)) != 0 ||
        (rc = smtpx_config_freeze(a.cfg)) != 0) {
        fprintf(stderr, "smtpx-uv-recv: %s\n", smtpx_strerror(rc));
        return 1;
    }
    a.loop = uv_default_loop();
    uv_tcp_init(a.loop, &a.listener);
    a.listener.data = &a;
    if (uv_ip4_addr(host, atoi(port), (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, atoi(port), (struct sockaddr_in6 *)&ss) != 0) {
        fprintf(stderr, "smtpx-uv-recv: %s: not a numeric address\n", host);
        return 2;
    }
    if ((rc = uv_tcp_bind(&a.listener, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&a.listener, SOMAXCONN,
                        on_connection)) != 0) {
        fprintf(stderr, "smtpx-uv-recv: %s: %s\n", listen, uv_strerror(rc));
        return 1;
    }
    uv_tcp_getsockname(&a.listener, (struct sockaddr *)&ss, &len);
    fprintf(stderr, "smtpx-uv-recv: listening on %s:%d\n", host,
            ntohs(((struct sockaddr_in *)&ss)->sin_port));
    uv_signal_init(a.loop, &a.sigterm);
    uv_signal_init(a.loop, &a.sigint);
    a.sigterm.data = a.sigint.data = &a;
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_run(a.loop, UV_RUN_DEFAULT);
    fprintf(stderr, "smtpx-uv-recv: stopped after %lu messages\n", a.messages);
    uv_loop_close(a.loop);
    smtpx_config_free(a.cfg);
    return 0;
}
