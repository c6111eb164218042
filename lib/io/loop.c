/*
 * loop - many server sessions in one thread, with poll().
 *
 * Exports smtpx_loop_new/free/listen/listen_tls/set_max_sessions/run_once/
 * run/stop/
 * sessions.
 *
 * Each round the loop asks poll() for what every session's last pump said
 * it waits for, with a timeout that ends at the nearest session deadline;
 * then it pumps the sessions that are ready or expired, and accepts new
 * connections.  It holds no protocol knowledge and no per-session buffer:
 * the pump reads into its stack buffer.
 *
 * smtpx_loop_stop() may run in a signal handler: it only stores the request
 * in a sig_atomic_t and writes one byte to a pipe (both async-signal-safe)
 * that the loop polls, so the loop wakes up and applies it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libsmtpx/posix.h>

#include "base/mem.h"
#include "io/posix.h"

/* Connections accepted per listener per round: accepting must not starve
 * the sessions already open. */
#define LOOP_ACCEPTS 64
/* After accept() fails for lack of descriptors, leave the listener alone
 * for this long instead of spinning on it. */
#define LOOP_ACCEPT_BACKOFF_MS 100

typedef struct loop_listener {
    int fd;
    const smtpx_config *cfg;
    smtpx_server_callbacks cbs;
    void *user_data;
    smtpx_tls_ops tls_ops; /* copied */
    int has_tls;
    int implicit_tls; /* TLS from the first byte (RFC 8314) */
    void *tls_cfg;
    uint64_t resume_at; /* accept() back-off */
} loop_listener;

typedef struct loop_session {
    int fd;
    smtpx_server *s;
    smtpx_transport *t;
    int wait; /* the last pump's answer */
} loop_session;

struct smtpx_loop {
    smtpx_mem mem;
    loop_listener *ls;
    size_t nls;
    loop_session *ss;
    size_t nss, capss;
    struct pollfd *pfd;
    size_t cappfd;
    int wake[2];
    volatile sig_atomic_t stop_how;
    int applied_how;
    size_t max_sessions;
};

int smtpx_loop_new(smtpx_loop **out, const smtpx_mem *mem)
{
    smtpx_loop *loop;

    if (out == NULL || !smtpx__mem_valid(mem))
        return SMTPX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (mem == NULL)
        mem = smtpx__mem_default();
    loop = smtpx__calloc(mem, 1, sizeof(*loop));
    if (loop == NULL)
        return SMTPX_ERR_NOMEM;
    loop->mem = *mem;
    if (pipe(loop->wake) < 0) {
        smtpx__free(mem, loop);
        return SMTPX_ERR_IO;
    }
    smtpx__posix_fd_setup(loop->wake[0]);
    smtpx__posix_fd_setup(loop->wake[1]);
    *out = loop;
    return 0;
}

static void loop_close_listeners(smtpx_loop *loop)
{
    size_t i;

    for (i = 0; i < loop->nls; i++)
        close(loop->ls[i].fd);
    smtpx__free(&loop->mem, loop->ls);
    loop->ls = NULL;
    loop->nls = 0;
}

static void loop_drop_session(smtpx_loop *loop, size_t i)
{
    smtpx_server_free(loop->ss[i].s);
    smtpx_transport_free(loop->ss[i].t); /* closes the socket */
    loop->ss[i] = loop->ss[--loop->nss];
}

void smtpx_loop_free(smtpx_loop *loop)
{
    smtpx_mem mem;

    if (loop == NULL)
        return;
    loop_close_listeners(loop);
    while (loop->nss > 0)
        loop_drop_session(loop, loop->nss - 1);
    mem = loop->mem;
    smtpx__free(&mem, loop->ss);
    smtpx__free(&mem, loop->pfd);
    close(loop->wake[0]);
    close(loop->wake[1]);
    smtpx__free(&mem, loop);
}

int smtpx_loop_listen(smtpx_loop *loop, int fd, const smtpx_config *cfg,
                      const smtpx_server_callbacks *cbs, size_t cbs_size,
                      void *user_data, const smtpx_tls_ops *tls, void *tls_cfg)
{
    return smtpx_loop_listen_tls(loop, fd, cfg, cbs, cbs_size, user_data, tls,
                                 tls_cfg, SMTPX_LISTEN_STARTTLS);
}

int smtpx_loop_listen_tls(smtpx_loop *loop, int fd, const smtpx_config *cfg,
                          const smtpx_server_callbacks *cbs, size_t cbs_size,
                          void *user_data, const smtpx_tls_ops *tls,
                          void *tls_cfg, int mode)
{
    loop_listener *ls, *l;

    if (loop == NULL || fd < 0 || cfg == NULL || !smtpx_config_is_frozen(cfg) ||
        (smtpx_config_get_role(cfg) != SMTPX_ROLE_SERVER &&
         smtpx_config_get_role(cfg) != SMTPX_ROLE_LMTP_SERVER) ||
        (tls != NULL && tls->size == 0) ||
        (mode != SMTPX_LISTEN_STARTTLS && mode != SMTPX_LISTEN_IMPLICIT_TLS) ||
        (mode == SMTPX_LISTEN_IMPLICIT_TLS && tls == NULL))
        return SMTPX_ERR_INVALID_ARGUMENT;
    ls = smtpx__realloc(&loop->mem, loop->ls, (loop->nls + 1) * sizeof(*ls));
    if (ls == NULL)
        return SMTPX_ERR_NOMEM;
    loop->ls = ls;
    l = &ls[loop->nls++];
    memset(l, 0, sizeof(*l));
    l->fd = fd;
    l->cfg = cfg;
    if (cbs != NULL)
        memcpy(&l->cbs, cbs,
               cbs_size < sizeof(l->cbs) ? cbs_size : sizeof(l->cbs));
    l->user_data = user_data;
    if (tls != NULL) {
        memcpy(&l->tls_ops, tls,
               tls->size < sizeof(l->tls_ops) ? tls->size : sizeof(l->tls_ops));
        l->tls_ops.size = sizeof(l->tls_ops);
        l->has_tls = 1;
        l->implicit_tls = mode == SMTPX_LISTEN_IMPLICIT_TLS;
    }
    l->tls_cfg = tls_cfg;
    smtpx__posix_fd_setup(fd);
    return 0;
}

void smtpx_loop_set_max_sessions(smtpx_loop *loop, size_t max)
{
    loop->max_sessions = max;
}

size_t smtpx_loop_sessions(const smtpx_loop *loop)
{
    return loop->nss;
}

void smtpx_loop_stop(smtpx_loop *loop, int how)
{
    int saved = errno;
    ssize_t w;

    if (how != SMTPX_SHUTDOWN_NOW)
        how = SMTPX_SHUTDOWN_DRAIN;
    /* NOW is never weakened back to DRAIN. */
    if (loop->stop_how != SMTPX_SHUTDOWN_NOW)
        loop->stop_how = how;
    w = write(loop->wake[1], "", 1);
    (void)w;
    errno = saved;
}

/* loop_refuse - a connection over the session limit: 421 and close */
static void loop_refuse(const loop_listener *l, int fd)
{
    char msg[320];
    int n = snprintf(msg, sizeof(msg),
                     "421 4.7.0 %s Too many connections, try later\r\n",
                     smtpx_config_get_hostname(l->cfg));
    ssize_t w;

    if (n > 0) {
        w = send(fd, msg, (size_t)n, MSG_NOSIGNAL);
        (void)w;
    }
    close(fd);
}

/* loop_start - a new session on an accepted connection */
static int loop_start(smtpx_loop *loop, const loop_listener *l, int fd,
                      const smtpx_posix_addr *pa, uint64_t now)
{
    loop_session *ss;
    smtpx_peer peer;
    smtpx_io io;
    loop_session *n;
    int rc;

    if (loop->nss == loop->capss) {
        size_t cap = loop->capss ? loop->capss * 2 : 16;
        ss = smtpx__realloc(&loop->mem, loop->ss, cap * sizeof(*ss));
        if (ss == NULL) {
            close(fd);
            return SMTPX_ERR_NOMEM;
        }
        loop->ss = ss;
        loop->capss = cap;
    }
    n = &loop->ss[loop->nss];
    memset(n, 0, sizeof(*n));
    n->fd = fd;
    smtpx_posix_io(&io, fd);
    rc = smtpx_transport_new(&n->t, &io, &loop->mem);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    if (l->has_tls)
        rc = smtpx_transport_set_tls(n->t, &l->tls_ops, l->tls_cfg);
    if (rc == 0)
        rc = smtpx_server_new(&n->s, l->cfg, &l->cbs, sizeof(l->cbs),
                              l->user_data);
    if (rc == 0 && l->has_tls && !l->implicit_tls)
        smtpx_server_set_tls_available(n->s, 1);
    if (rc == 0 && l->implicit_tls)
        rc = smtpx_transport_start_tls(n->t, 1, NULL);
    if (rc == 0) {
        peer.addr = pa->addr[0] ? pa->addr : NULL;
        peer.port = pa->port;
        peer.local_addr = pa->local_addr[0] ? pa->local_addr : NULL;
        peer.local_port = pa->local_port;
        peer.name = NULL;
        rc = smtpx_server_start(n->s, &peer, now);
    }
    if (rc < 0) {
        smtpx_server_free(n->s);
        smtpx_transport_free(n->t);
        return rc;
    }
    loop->nss++;
    n->wait = smtpx_server_pump(n->s, n->t, now);
    if (n->wait <= 0)
        loop_drop_session(loop, loop->nss - 1);
    return 0;
}

static void loop_accept(smtpx_loop *loop, loop_listener *l, uint64_t now)
{
    int i;

    for (i = 0; i < LOOP_ACCEPTS; i++) {
        smtpx_posix_addr pa;
        int fd, rc = smtpx_posix_accept(l->fd, &fd, &pa);

        if (rc == SMTPX_ERR_WANT_READ)
            return;
        if (rc < 0) {
            /* Out of descriptors or memory: the pending connection stays
             * in the backlog; try again a little later. */
            l->resume_at = now + LOOP_ACCEPT_BACKOFF_MS;
            return;
        }
        if (loop->max_sessions != 0 && loop->nss >= loop->max_sessions) {
            loop_refuse(l, fd);
            continue;
        }
        loop_start(loop, l, fd, &pa, now);
    }
}

/* loop_apply_stop - a stop request (from loop_stop, maybe in a signal) */
static void loop_apply_stop(smtpx_loop *loop, uint64_t now)
{
    int how = loop->stop_how;
    size_t i;

    if (how == 0 || how == loop->applied_how)
        return;
    loop->applied_how = how;
    loop_close_listeners(loop);
    for (i = loop->nss; i-- > 0;) {
        smtpx_server_shutdown(loop->ss[i].s, how);
        loop->ss[i].wait = smtpx_server_pump(loop->ss[i].s, loop->ss[i].t, now);
        if (loop->ss[i].wait <= 0)
            loop_drop_session(loop, i);
    }
}

int smtpx_loop_run_once(smtpx_loop *loop, int timeout_ms)
{
    size_t i, n, cap;
    uint64_t now = smtpx_posix_now_ms(), next = 0;
    int timeout, rc;
    char drain[64];

    loop_apply_stop(loop, now);
    if (loop->applied_how != 0 && loop->nss == 0)
        return 0;
    cap = 1 + loop->nls + loop->nss;
    if (cap > loop->cappfd) {
        struct pollfd *p =
            smtpx__realloc(&loop->mem, loop->pfd, cap * sizeof(*p));
        if (p == NULL)
            return SMTPX_ERR_NOMEM;
        loop->pfd = p;
        loop->cappfd = cap;
    }
    n = 0;
    loop->pfd[n].fd = loop->wake[0];
    loop->pfd[n++].events = POLLIN;
    for (i = 0; i < loop->nls; i++) {
        loop_listener *l = &loop->ls[i];
        loop->pfd[n].fd = l->resume_at > now ? -1 : l->fd;
        loop->pfd[n++].events = POLLIN;
        if (l->resume_at > now && (next == 0 || l->resume_at < next))
            next = l->resume_at;
    }
    for (i = 0; i < loop->nss; i++) {
        loop_session *ss = &loop->ss[i];
        uint64_t e = smtpx_server_expiry(ss->s);
        short ev = (short)(((ss->wait & SMTPX_WAIT_READ) ? POLLIN : 0) |
                           ((ss->wait & SMTPX_WAIT_WRITE) ? POLLOUT : 0));
        loop->pfd[n].fd = ev ? ss->fd : -1;
        loop->pfd[n].events = ev;
        n++;
        if (e != 0 && (next == 0 || e < next))
            next = e;
    }
    timeout = timeout_ms;
    for (i = 0; i < loop->nss; i++)
        if (loop->ss[i].wait & SMTPX_WAIT_AGAIN)
            timeout = 0; /* a session has work left: do not sleep */
    if (next != 0 && timeout != 0) {
        uint64_t left = next > now ? next - now : 0;
        if (timeout < 0 || left < (uint64_t)timeout)
            timeout = left > INT32_MAX ? INT32_MAX : (int)left;
    }
    for (i = 0; i < n; i++)
        loop->pfd[i].revents = 0;
    rc = poll(loop->pfd, (nfds_t)n, timeout);
    if (rc < 0 && errno != EINTR)
        return SMTPX_ERR_IO;
    now = smtpx_posix_now_ms();
    if (loop->pfd[0].revents & POLLIN)
        while (read(loop->wake[0], drain, sizeof(drain)) > 0)
            ;
    /* Sessions first, from the end: a finished one is replaced by the
     * last, which was already seen.  New sessions are added after. */
    for (i = loop->nss; i-- > 0;) {
        loop_session *ss = &loop->ss[i];
        struct pollfd *p = &loop->pfd[1 + loop->nls + i];
        uint64_t e = smtpx_server_expiry(ss->s);
        int expired = e != 0 && now >= e;

        if (p->revents == 0 && !expired && !(ss->wait & SMTPX_WAIT_AGAIN))
            continue;
        if (expired)
            smtpx_server_expire(ss->s, now);
        ss->wait = smtpx_server_pump(ss->s, ss->t, now);
        if (ss->wait <= 0)
            loop_drop_session(loop, i);
    }
    for (i = 0; i < loop->nls; i++)
        if (loop->pfd[1 + i].revents & POLLIN)
            loop_accept(loop, &loop->ls[i], now);
    loop_apply_stop(loop, now);
    return loop->applied_how != 0 && loop->nss == 0 ? 0 : 1;
}

int smtpx_loop_run(smtpx_loop *loop)
{
    int rc;

    while ((rc = smtpx_loop_run_once(loop, -1)) > 0)
        ;
    return rc;
}
