/*
 * smtpx-event-recv - an SMTP receiver on libevent, with STARTTLS, driving
 * the sans-IO server core through the pump: the proof that the public
 * API is enough to run sessions, TLS included, in someone else's event
 * loop.
 *
 *   smtpx-event-recv [--listen 127.0.0.1:2525] [--timeout SECONDS]
 *                    [--delay MS] [--hostname NAME]
 *                    [--tls-cert FILE --tls-key FILE]
 *
 * It accepts every message and throws it away, logging one line per
 * message.  A recipient whose local part is "slow" is decided later: the
 * callback pauses the session and a libevent timer answers after --delay
 * ms.  SIGTERM or SIGINT lets transactions in progress finish, then
 * closes.
 *
 * Where smtpx-uv-recv feeds the core by hand, this one uses the library's
 * sockets (smtpx_posix_listen, smtpx_posix_accept), a transport over each
 * connection (TLS through the mbedTLS adapter when a certificate is
 * given) and smtpx_server_pump(), which moves what it can and says what it
 * waits for.  Each connection has one libevent event for its socket,
 * armed for exactly what the last pump asked (SMTPX_WAIT_READ, _WRITE),
 * made active at once for SMTPX_WAIT_AGAIN, and one timer for the
 * session's expiry.  Only <libsmtpx/...> and libevent are used.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include <libsmtpx/smtpx.h>
#include <libsmtpx/posix.h>
#include <libsmtpx/tls_mbedtls.h>

typedef struct app {
    struct event_base *base;
    struct event *accept_ev, *sigterm, *sigint;
    int lfd;
    smtpx_config *cfg;
    smtpx_mbedtls *tls;
    unsigned delay_ms;
    int stopping;
    struct conn *conns;
    unsigned long messages;
} app;

typedef struct conn {
    app *a;
    int fd;
    smtpx_server *s;
    smtpx_transport *t;
    struct event *io, *deadline, *answer;
    struct conn *prev, *next;
} conn;

static void conn_step(conn *c);

/* ---- the session's callbacks -------------------------------------------- */

static void answer_later(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    smtpx_reply r = {250, {2, 1, 5}, "Ok, checked later"};

    (void)fd;
    (void)what;
    smtpx_server_reply(c->s, &r, smtpx_posix_now_ms());
    conn_step(c); /* the driver takes the session up again */
}

static int on_rcpt(smtpx_server *s, const smtpx_rcpt_info *rcpt,
                   void **rcpt_data, smtpx_reply *reply, void *user_data)
{
    conn *c = user_data;
    struct timeval tv;

    (void)s;
    (void)rcpt_data;
    (void)reply;
    if (strncmp(rcpt->to, "slow@", 5) != 0)
        return 0;
    tv.tv_sec = (time_t)(c->a->delay_ms / 1000);
    tv.tv_usec = (suseconds_t)(c->a->delay_ms % 1000) * 1000;
    evtimer_add(c->answer, &tv);
    return SMTPX_ERR_PAUSE;
}

static int on_data_end(smtpx_server *s, smtpx_reply *reply, void *user_data)
{
    conn *c = user_data;
    const char *from = smtpx_server_mail_from(s);
    const smtpx_tls_info *tls = smtpx_server_tls(s);

    (void)reply;
    c->a->messages++;
    fprintf(stderr,
            "smtpx-event-recv: message from=<%s> rcpts=%zu size=%llu%s%s\n",
            from != NULL ? from : "", smtpx_server_rcpt_count(s),
            (unsigned long long)smtpx_server_data_size(s),
            tls != NULL ? " tls=" : "", tls != NULL ? tls->version : "");
    return 0; /* 250: thrown away */
}

static const smtpx_server_callbacks callbacks = {
    .on_rcpt = on_rcpt,
    .on_data_end = on_data_end,
};

/* ---- the driver ------------------------------------------------------------
 */

static void app_maybe_done(app *a)
{
    if (a->stopping && a->conns == NULL)
        event_base_loopexit(a->base, NULL);
}

static void conn_free(conn *c)
{
    app *a = c->a;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    event_free(c->io);
    event_free(c->deadline);
    event_free(c->answer);
    smtpx_server_free(c->s);
    smtpx_transport_free(c->t); /* closes the socket */
    free(c);
    app_maybe_done(a);
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_step(arg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;

    (void)fd;
    (void)what;
    smtpx_server_expire(c->s, smtpx_posix_now_ms());
    conn_step(c);
}

/* conn_step - pump, then wait for what the pump asks */
static void conn_step(conn *c)
{
    uint64_t now = smtpx_posix_now_ms(), e;
    int wait = smtpx_server_pump(c->s, c->t, now);
    short what = 0;

    if (wait <= 0) {
        conn_free(c);
        return;
    }
    event_del(c->io);
    if (wait & SMTPX_WAIT_READ)
        what |= EV_READ;
    if (wait & SMTPX_WAIT_WRITE)
        what |= EV_WRITE;
    event_assign(c->io, c->a->base, c->fd, what, on_io, c);
    if (wait & SMTPX_WAIT_AGAIN)
        event_active(c->io, EV_READ, 0); /* work left: again, soon */
    else if (what != 0)
        event_add(c->io, NULL);
    /* else paused: answer_later takes it up */
    e = smtpx_server_expiry(c->s);
    if (e == 0) {
        evtimer_del(c->deadline);
    } else {
        uint64_t left = e > now ? e - now : 0;
        struct timeval tv;
        tv.tv_sec = (time_t)(left / 1000);
        tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
        evtimer_add(c->deadline, &tv);
    }
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    app *a = arg;
    smtpx_posix_addr pa;
    smtpx_peer peer;
    smtpx_io io;
    conn *c;
    int fd;

    (void)what;
    while (smtpx_posix_accept(lfd, &fd, &pa) == 0) {
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->a = a;
        c->fd = fd;
        smtpx_posix_io(&io, fd);
        if (smtpx_transport_new(&c->t, &io, NULL) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->io = event_new(a->base, fd, 0, on_io, c);
        c->deadline = evtimer_new(a->base, on_deadline, c);
        c->answer = evtimer_new(a->base, answer_later, c);
        c->next = a->conns;
        if (a->conns != NULL)
            a->conns->prev = c;
        a->conns = c;
        if (c->io == NULL || c->deadline == NULL || c->answer == NULL ||
            smtpx_server_new(&c->s, a->cfg, &callbacks, sizeof(callbacks), c) !=
                0 ||
            (a->tls != NULL &&
             smtpx_transport_set_tls(c->t, smtpx_mbedtls_ops(), a->tls) != 0)) {
            conn_free(c);
            continue;
        }
        if (a->tls != NULL)
            smtpx_server_set_tls_available(c->s, 1); /* STARTTLS */
        memset(&peer, 0, sizeof(peer));
        peer.addr = pa.addr;
        peer.port = pa.port;
        peer.local_addr = pa.local_addr;
        peer.local_port = pa.local_port;
        smtpx_server_start(c->s, &peer, smtpx_posix_now_ms());
        conn_step(c);
    }
}

/* on_signal - stop taking connections; idle sessions get 421 at once,
 * busy ones finish their transaction; the loop ends with the last */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    app *a = arg;
    conn *c, *next;

    (void)sig;
    (void)what;
    if (a->stopping)
        return;
    a->stopping = 1;
    event_del(a->accept_ev);
    for (c = a->conns; c != NULL; c = next) {
        next = c->next;
        smtpx_server_shutdown(c->s, SMTPX_SHUTDOWN_DRAIN);
        conn_step(c);
    }
    app_maybe_done(a);
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:2525", *hostname = "localhost";
    const char *cert = NULL, *key = NULL;
    char host[256], port[32];
    unsigned timeout_s = 300;
    smtpx_posix_addr pa;
    int i, rc, status = 1;
    app a;

    memset(&a, 0, sizeof(a));
    a.lfd = -1;
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
        else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc)
            cert = argv[++i];
        else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc)
            key = argv[++i];
        else {
            fprintf(stderr, "usage: smtpx-event-recv [--listen ADDR:PORT] "
                            "[--timeout SECONDS] [--delay MS] "
                            "[--hostname NAME] [--tls-cert FILE "
                            "--tls-key FILE]\n");
            return 2;
        }
    }
    if (timeout_s == 0 || (cert == NULL) != (key == NULL) ||
        smtpx_posix_split_hostport(listen, host, sizeof(host), port,
                                   sizeof(port)) < 0) {
        fprintf(stderr, "smtpx-event-recv: bad arguments\n");
        return 2;
    }
    if ((rc = smtpx_config_new(&a.cfg, SMTPX_ROLE_SERVER, NULL)) != 0 ||
        (rc = smtpx_config_set_hostname(a.cfg, hostname)) != 0 ||
        (rc = smtpx_config_set_timeout(a.cfg, SMTPX_TIMEOUT_COMMAND,
                                       timeout_s * 1000)) != 0 ||
        (rc = smtpx_config_set_timeout(a.cfg, SMTPX_TIMEOUT_DATA,
                                       timeout_s * 1000)) != 0 ||
        (rc = smtpx_config_freeze(a.cfg)) != 0 ||
        (cert != NULL &&
         ((rc = smtpx_mbedtls_new(&a.tls, 1)) != 0 ||
          (rc = smtpx_mbedtls_add_cert_file(a.tls, cert, key, NULL)) != 0)) ||
        (rc = smtpx_posix_listen(host, port, 0, &a.lfd)) != 0) {
        fprintf(stderr, "smtpx-event-recv: %s\n", smtpx_strerror(rc));
        goto out;
    }
    a.base = event_base_new();
    if (a.base == NULL)
        goto out;
    a.accept_ev = event_new(a.base, a.lfd, EV_READ | EV_PERSIST, on_accept, &a);
    a.sigterm = evsignal_new(a.base, SIGTERM, on_signal, &a);
    a.sigint = evsignal_new(a.base, SIGINT, on_signal, &a);
    if (a.accept_ev == NULL || a.sigterm == NULL || a.sigint == NULL ||
        event_add(a.accept_ev, NULL) != 0 || event_add(a.sigterm, NULL) != 0 ||
        event_add(a.sigint, NULL) != 0)
        goto out;
    smtpx_posix_getaddr(a.lfd, &pa);
    fprintf(stderr, "smtpx-event-recv: listening on %s:%u%s\n", pa.local_addr,
            (unsigned)pa.local_port, a.tls != NULL ? " with STARTTLS" : "");
    event_base_dispatch(a.base);
    fprintf(stderr, "smtpx-event-recv: stopped after %lu messages\n",
            a.messages);
    status = 0;
out:
    while (a.conns != NULL)
        conn_free(a.conns);
    if (a.accept_ev != NULL)
        event_free(a.accept_ev);
    if (a.sigterm != NULL)
        event_free(a.sigterm);
    if (a.sigint != NULL)
        event_free(a.sigint);
    if (a.base != NULL)
        event_base_free(a.base);
    if (a.lfd >= 0)
        close(a.lfd);
    smtpx_mbedtls_free(a.tls);
    smtpx_config_free(a.cfg);
    return status;
}
