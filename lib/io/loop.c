/*
 * loop - server and client sessions, application descriptors and timers
 * in one thread, over epoll (Linux) or poll() (elsewhere, or when built
 * with -DSMTPX_LOOP_POLL).
 *
 * Exports the smtpx_loop_* functions of <libsmtpx/loop.h>.
 *
 * Every descriptor the loop waits on has a record (loop_rec) that the
 * backend hands back when it is ready: a listener, a session (server or
 * client), an application watch, or the wake-up descriptor.  The backend is
 * level-triggered and a record is registered for exactly what its owner
 * waits for; the registration changes only when that changes (a session
 * that pauses or whose output backs up), so a round costs the ready
 * descriptors, not the number of sessions.  A session that waits for
 * nothing (paused) is not registered at all: epoll would otherwise keep
 * reporting a hang-up nobody reads.
 *
 * Deadlines live in one binary heap (loop_tm): each session's expiry as the
 * core reports it after a pump, each listener's accept back-off, each
 * application timer.  Ties run in the order they were set (a sequence
 * number), and one round runs only the timers set before it began, so a
 * timer that sets another cannot hold the loop.
 *
 * Sessions are on at most one of two queues: "ready" (the pump stopped
 * with work left, SMTPX_WAIT_AGAIN: pump it next round without waiting)
 * and "paused" (it waits for the application, SMTPX_WAIT_APP).  The paused
 * queue is looked at only in rounds in which application code that may
 * have answered a pause ran: a posted function, a timer or watch callback,
 * or smtpx_loop_wake().
 *
 * A record that ends during a round is unregistered at once but freed at
 * the end of the round, since the backend may still hand it back in the
 * same batch.
 *
 * smtpx_loop_stop() and smtpx_loop_wake() may run in a signal handler or
 * another thread: they only store into sig_atomic_t and write to the
 * wake-up descriptor (an eventfd, or a pipe), both async-signal-safe.
 * smtpx_loop_post() takes a mutex.
 */
#if defined(__linux__) && !defined(SMTPX_LOOP_POLL)
#define LOOP_EPOLL 1
#endif

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef LOOP_EPOLL
#include <sys/epoll.h>
#include <sys/eventfd.h>
#else
#include <poll.h>
#endif

#include <libsmtpx/loop.h>
#include <libsmtpx/posix.h>

#include "base/mem.h"
#include "io/netaddr.h"
#include "io/posix.h"
#include "io/proxy.h"

/* Connections accepted per listener per round: accepting must not starve
 * the sessions already open. */
#define LOOP_ACCEPTS 64
/* After accept() fails for lack of descriptors, leave the listener alone
 * for this long instead of spinning on it. */
#define LOOP_ACCEPT_BACKOFF_MS 100
/* Events taken from epoll per wait. */
#define LOOP_EVENTS 512
/* Postfix's smtp_connect_timeout. */
#define LOOP_CONNECT_TIMEOUT_MS 30000
/* Postfix's smtpd_upstream_proxy_timeout. */
#define LOOP_PROXY_TIMEOUT_MS 5000

/* What a record waits for (its registration). */
#define LOOP_IN  1
#define LOOP_OUT 2

#define LOOP_NOPOS ((size_t)-1)

/* The record that holds member m at p. */
#define LOOP_OWNER(p, type, m) ((type *)(void *)((char *)(p)-offsetof(type, m)))

enum { REC_WAKE, REC_LISTENER, REC_SERVER, REC_CLIENT, REC_WATCH, REC_PROXY };
enum { TM_CONN, TM_LISTENER, TM_APP, TM_PROXY };
enum { Q_NONE, Q_READY, Q_PAUSED };

typedef struct loop_rec {
    int kind;
    int fd;
    int want;    /* registered for LOOP_IN | LOOP_OUT; 0: not registered */
    int dead;    /* ended this round; freed at its end */
    size_t slot; /* poll backend: index in the pollfd array */
    struct loop_rec *next_dead;
} loop_rec;

typedef struct loop_tm {
    uint64_t at;
    uint64_t seq;
    size_t pos; /* in the heap; LOOP_NOPOS when not in it */
    int kind;
} loop_tm;

struct smtpx_loop_timer {
    loop_tm tm; /* first: a loop_tm of kind TM_APP is a timer */
    smtpx_loop_fn *cb;
    void *user_data;
};

typedef struct loop_listener {
    loop_rec rec; /* first */
    loop_tm backoff;
    const smtpx_config *cfg;
    smtpx_server_callbacks cbs;
    void *user_data;
    smtpx_tls_ops tls_ops; /* copied */
    int has_tls;
    int implicit_tls; /* TLS from the first byte (RFC 8314) */
    void *tls_cfg;
    smtpx_loop_session_new_fn *on_session_new;
    smtpx_loop_session_free_fn *on_session_free;
    smtpx_limiter *limiter;
    /* the application's on_mail, when the loop puts its own first (the
     * limiter's message rate) */
    int (*app_on_mail)(smtpx_server *s, const smtpx_mail_info *mail,
                       smtpx_reply *reply, void *user_data);
    /* ... and its on_auth (the limiter's AUTH rate) */
    int (*app_on_auth)(smtpx_server *s, const smtpx_auth_info *a,
                       smtpx_reply *reply, void *user_data);
    smtpx_loop *loop;
    int proxy; /* SMTPX__PROXY_* bits */
    smtpx__net *proxy_trusted;
    size_t nproxy_trusted;
    int proxy_timeout_ms;
    smtpx_log_fn *log;
    int log_level;
    void *log_user_data;
    int closed;
    struct loop_listener *next;
} loop_listener;

/* A connection from a trusted proxy whose PROXY header has not all come:
 * no session yet. */
typedef struct loop_proxy {
    loop_rec rec; /* first */
    loop_tm tm;   /* the header's deadline */
    loop_listener *l;
    smtpx_posix_addr pa; /* the connection's own ends */
    size_t have;         /* header octets taken from the socket */
    struct loop_proxy *prev, *next;
    uint8_t buf[SMTPX__PROXY_MAX];
} loop_proxy;

typedef struct loop_conn {
    loop_rec rec; /* first */
    loop_tm tm;   /* the session's expiry, or the connect deadline */
    smtpx_loop *loop;
    smtpx_server *s;
    smtpx_client *c;
    smtpx_transport *t;
    int wait;       /* the last pump's answer */
    int connecting; /* client: connect() in progress */
    int own_fd;     /* close rec.fd after the transport (no io.close) */
    int q;          /* Q_*: on the ready or the paused queue */
    uint64_t q_round, pumped;
    struct loop_conn *prev, *next;   /* every session */
    struct loop_conn *qprev, *qnext; /* its queue */
    smtpx_loop_client_fn *on_done;   /* client */
    void *user_data;                 /* client: on_done's */
    loop_listener *l;                /* server: its listener */
    void *session_data;              /* server: on_session_new's */
    int has_session_data;
    int limited;                  /* server: counted by the limiter */
    int tls_seen;                 /* server: its handshake was counted */
    uint64_t msgs, auth_failures; /* server: counted so far */
} loop_conn;

typedef struct loop_watch {
    loop_rec rec; /* first */
    int events;
    smtpx_loop_io_fn *cb;
    void *user_data;
} loop_watch;

typedef struct loop_post {
    smtpx_loop_fn *fn;
    void *user_data;
    struct loop_post *next;
} loop_post;

typedef struct loop_queue {
    loop_conn *head, *tail;
} loop_queue;

/* A ready record and what it is ready for, as the backend reports it. */
typedef struct loop_event {
    loop_rec *rec;
    int ev;
} loop_event;

struct smtpx_loop {
    smtpx_mem mem;
#ifdef LOOP_EPOLL
    int epfd;
    struct epoll_event evs[LOOP_EVENTS];
#else
    struct pollfd *pfd;
    loop_rec **prec;
    size_t npfd, cappfd;
#endif
    loop_event *ready_ev;
    size_t cap_ready_ev;
    loop_rec wake;
    int wake_fd[2]; /* read end, write end (the same eventfd twice) */
    loop_listener *ls;
    loop_conn *conns;
    loop_proxy *proxies;
    size_t nservers, nclients;
    loop_queue ready, paused;
    loop_tm **heap;
    size_t nheap, capheap, ntm; /* ntm: owners of a timer (tm_claim) */
    uint64_t seq;
    loop_watch **watches; /* by descriptor */
    size_t capwatches;
    loop_rec *dead;
    pthread_mutex_t mu; /* the posted functions */
    loop_post *posts, **posts_tail;
    volatile sig_atomic_t stop_how;
    int applied_how;
    size_t max_sessions;
    int connect_timeout_ms;
    uint64_t now, round;
    int in_round;
    int scan; /* look at the paused sessions at the end of the round */
    /* written by the loop thread only, read by any (smtpx_loop_counter) */
    uint64_t counters[SMTPX_LOOP_COUNTER_COUNT];
    char text[128]; /* a reply the loop gives, until the core copies it */
};

static int loop_on_mail(smtpx_server *s, const smtpx_mail_info *mail,
                        smtpx_reply *reply, void *user_data);
static int loop_on_auth(smtpx_server *s, const smtpx_auth_info *a,
                        smtpx_reply *reply, void *user_data);

/* ---- counters ------------------------------------------------------------ */

/* The loop thread is the only writer of a counter: a relaxed store after
 * a plain read is enough, and readers elsewhere load atomically. */
static void loop_count(smtpx_loop *loop, int which, uint64_t n)
{
#if defined(__GNUC__)
    __atomic_store_n(&loop->counters[which], loop->counters[which] + n,
                     __ATOMIC_RELAXED);
#else
    loop->counters[which] += n;
#endif
}

static void loop_count_set(smtpx_loop *loop, int which, uint64_t v)
{
#if defined(__GNUC__)
    __atomic_store_n(&loop->counters[which], v, __ATOMIC_RELAXED);
#else
    loop->counters[which] = v;
#endif
}

uint64_t smtpx_loop_counter(const smtpx_loop *loop, int which)
{
    if (loop == NULL || which < 0 || which >= SMTPX_LOOP_COUNTER_COUNT)
        return 0;
#if defined(__GNUC__)
    return __atomic_load_n(&loop->counters[which], __ATOMIC_RELAXED);
#else
    return loop->counters[which];
#endif
}

const char *smtpx_loop_counter_name(int which)
{
    static const char *const names[] = {
#define LOOP_COUNTER_NAME(name, id, text) [id] = text,
        SMTPX_LOOP_COUNTER_MAP(LOOP_COUNTER_NAME)
#undef LOOP_COUNTER_NAME
    };

    return which >= 0 && which < SMTPX_LOOP_COUNTER_COUNT ? names[which] : NULL;
}

/* ---- the backends -------------------------------------------------------- */

#ifdef LOOP_EPOLL

static int bk_open(smtpx_loop *loop)
{
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    return loop->epfd < 0 ? -1 : 0;
}

static void bk_close(smtpx_loop *loop)
{
    if (loop->epfd >= 0)
        close(loop->epfd);
}

/* bk_set - register r for want (LOOP_IN | LOOP_OUT), 0 to unregister;
 * 0, or -1 with errno set */
static int bk_set(smtpx_loop *loop, loop_rec *r, int want)
{
    struct epoll_event ev;
    int op;

    if (want == r->want)
        return 0;
    memset(&ev, 0, sizeof(ev));
    ev.events =
        ((want & LOOP_IN) ? EPOLLIN : 0u) | ((want & LOOP_OUT) ? EPOLLOUT : 0u);
    ev.data.ptr = r;
    op = want == 0      ? EPOLL_CTL_DEL
         : r->want == 0 ? EPOLL_CTL_ADD
                        : EPOLL_CTL_MOD;
    if (epoll_ctl(loop->epfd, op, r->fd, &ev) < 0 && op != EPOLL_CTL_DEL)
        return -1;
    r->want = want;
    return 0;
}

/* bk_wait - wait up to timeout ms; fills loop->ready_ev and returns the
 * count, or -1 with errno set */
static int bk_wait(smtpx_loop *loop, int timeout)
{
    int n = epoll_wait(loop->epfd, loop->evs, LOOP_EVENTS, timeout), i;

    for (i = 0; i < n; i++) {
        uint32_t e = loop->evs[i].events;
        loop->ready_ev[i].rec = loop->evs[i].data.ptr;
        loop->ready_ev[i].ev =
            ((e & (EPOLLIN | EPOLLHUP | EPOLLERR)) ? LOOP_IN : 0) |
            ((e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) ? LOOP_OUT : 0);
    }
    return n;
}

static const char loop_backend_name[] = "epoll";

#else /* poll */

static int bk_open(smtpx_loop *loop)
{
    (void)loop;
    return 0;
}

static void bk_close(smtpx_loop *loop)
{
    smtpx__free(&loop->mem, loop->pfd);
    smtpx__free(&loop->mem, loop->prec);
    loop->pfd = NULL;
    loop->prec = NULL;
}

/* bk_reserve - room for n more registered records, so that registering
 * never fails half-way */
static int bk_reserve(smtpx_loop *loop, size_t n)
{
    size_t cap = loop->cappfd ? loop->cappfd : 16;
    struct pollfd *p;
    loop_rec **r;
    loop_event *e;

    if (loop->npfd + n <= loop->cappfd)
        return 0;
    while (cap < loop->npfd + n)
        cap *= 2;
    p = smtpx__realloc(&loop->mem, loop->pfd, cap * sizeof(*p));
    if (p == NULL)
        return -1;
    loop->pfd = p;
    r = smtpx__realloc(&loop->mem, loop->prec, cap * sizeof(*r));
    if (r == NULL)
        return -1;
    loop->prec = r;
    e = smtpx__realloc(&loop->mem, loop->ready_ev, cap * sizeof(*e));
    if (e == NULL)
        return -1;
    loop->ready_ev = e;
    loop->cap_ready_ev = cap;
    loop->cappfd = cap;
    return 0;
}

static int bk_set(smtpx_loop *loop, loop_rec *r, int want)
{
    if (want == r->want)
        return 0;
    if (r->want == 0) {
        if (bk_reserve(loop, 1) < 0) {
            errno = ENOMEM;
            return -1;
        }
        r->slot = loop->npfd++;
        loop->prec[r->slot] = r;
        loop->pfd[r->slot].fd = r->fd;
    } else if (want == 0) {
        size_t last = --loop->npfd;
        if (r->slot != last) {
            loop->pfd[r->slot] = loop->pfd[last];
            loop->prec[r->slot] = loop->prec[last];
            loop->prec[r->slot]->slot = r->slot;
        }
        r->want = 0;
        return 0;
    }
    loop->pfd[r->slot].events = (short)(((want & LOOP_IN) ? POLLIN : 0) |
                                        ((want & LOOP_OUT) ? POLLOUT : 0));
    r->want = want;
    return 0;
}

static int bk_wait(smtpx_loop *loop, int timeout)
{
    size_t i;
    int n, k = 0;

    for (i = 0; i < loop->npfd; i++)
        loop->pfd[i].revents = 0;
    n = poll(loop->pfd, (nfds_t)loop->npfd, timeout);
    if (n <= 0)
        return n;
    /* poll() has no other way to say what is ready. */
    for (i = 0; i < loop->npfd && k < n; i++) {
        short e = loop->pfd[i].revents;
        if (e == 0)
            continue;
        loop->ready_ev[k].rec = loop->prec[i];
        loop->ready_ev[k].ev =
            ((e & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) ? LOOP_IN : 0) |
            ((e & (POLLOUT | POLLHUP | POLLERR | POLLNVAL)) ? LOOP_OUT : 0);
        k++;
    }
    return k;
}

static const char loop_backend_name[] = "poll";

#endif

/* ---- the timer heap ------------------------------------------------------ */

static int tm_before(const loop_tm *a, const loop_tm *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void tm_place(smtpx_loop *loop, loop_tm *t, size_t i)
{
    loop->heap[i] = t;
    t->pos = i;
}

static void tm_up(smtpx_loop *loop, size_t i)
{
    loop_tm *t = loop->heap[i];

    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!tm_before(t, loop->heap[p]))
            break;
        tm_place(loop, loop->heap[p], i);
        i = p;
    }
    tm_place(loop, t, i);
}

static void tm_down(smtpx_loop *loop, size_t i)
{
    loop_tm *t = loop->heap[i];

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= loop->nheap)
            break;
        if (c + 1 < loop->nheap && tm_before(loop->heap[c + 1], loop->heap[c]))
            c++;
        if (!tm_before(loop->heap[c], t))
            break;
        tm_place(loop, loop->heap[c], i);
        i = c;
    }
    tm_place(loop, t, i);
}

static void tm_del(smtpx_loop *loop, loop_tm *t)
{
    size_t i = t->pos;
    loop_tm *last;

    if (i == LOOP_NOPOS)
        return;
    t->pos = LOOP_NOPOS;
    last = loop->heap[--loop->nheap];
    if (last == t)
        return;
    tm_place(loop, last, i);
    if (i > 0 && tm_before(last, loop->heap[(i - 1) / 2]))
        tm_up(loop, i);
    else
        tm_down(loop, i);
}

/* tm_set - (re)arm t for at; 0 disarms.  Never allocates: its owner
 * claimed a slot (tm_claim). */
static void tm_set(smtpx_loop *loop, loop_tm *t, uint64_t at)
{
    if (at == 0) {
        tm_del(loop, t);
        return;
    }
    if (t->pos != LOOP_NOPOS && t->at == at)
        return;
    t->seq = loop->seq++;
    if (t->pos == LOOP_NOPOS) {
        t->at = at;
        loop->nheap++;
        tm_place(loop, t, loop->nheap - 1);
        tm_up(loop, t->pos);
        return;
    }
    if (at < t->at) {
        t->at = at;
        tm_up(loop, t->pos);
    } else {
        t->at = at;
        tm_down(loop, t->pos);
    }
}

/* tm_claim - one more owner of a timer: the heap's capacity covers every
 * owner, so arming a timer never allocates; 0, or -1 */
static int tm_claim(smtpx_loop *loop)
{
    if (loop->ntm + 1 > loop->capheap) {
        size_t cap = loop->capheap ? loop->capheap * 2 : 64;
        loop_tm **h = smtpx__realloc(&loop->mem, loop->heap, cap * sizeof(*h));
        if (h == NULL)
            return -1;
        loop->heap = h;
        loop->capheap = cap;
    }
    loop->ntm++;
    return 0;
}

/* tm_release - an owner goes: its timer leaves the heap */
static void tm_release(smtpx_loop *loop, loop_tm *t)
{
    tm_del(loop, t);
    loop->ntm--;
}

/* ---- records, queues and the clock --------------------------------------- */

static uint64_t loop_clock(const smtpx_loop *loop)
{
    return loop->in_round ? loop->now : smtpx_posix_now_ms();
}

/* rec_kill - unregister r now, free it at the end of the round */
static void rec_kill(smtpx_loop *loop, loop_rec *r)
{
    bk_set(loop, r, 0);
    r->dead = 1;
    r->next_dead = loop->dead;
    loop->dead = r;
}

static void q_remove(smtpx_loop *loop, loop_conn *n)
{
    loop_queue *q;

    if (n->q == Q_NONE)
        return;
    q = n->q == Q_READY ? &loop->ready : &loop->paused;
    if (n->qprev != NULL)
        n->qprev->qnext = n->qnext;
    else
        q->head = n->qnext;
    if (n->qnext != NULL)
        n->qnext->qprev = n->qprev;
    else
        q->tail = n->qprev;
    n->qprev = n->qnext = NULL;
    n->q = Q_NONE;
}

/* q_put - to the tail of a queue (also when it was on it), stamped with
 * this round */
static void q_put(smtpx_loop *loop, loop_conn *n, int which)
{
    loop_queue *q = which == Q_READY ? &loop->ready : &loop->paused;

    q_remove(loop, n);
    n->q = which;
    n->q_round = loop->round;
    n->qnext = NULL;
    n->qprev = q->tail;
    if (q->tail != NULL)
        q->tail->qnext = n;
    else
        q->head = n;
    q->tail = n;
}

/* ---- the loop ------------------------------------------------------------ */

int smtpx_loop_new(smtpx_loop **out, const smtpx_mem *mem)
{
    smtpx_loop *loop;
    int e;

    if (out == NULL || !smtpx__mem_valid(mem))
        return SMTPX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (mem == NULL)
        mem = smtpx__mem_default();
    loop = smtpx__calloc(mem, 1, sizeof(*loop));
    if (loop == NULL)
        return SMTPX_ERR_NOMEM;
    loop->mem = *mem;
    loop->wake_fd[0] = loop->wake_fd[1] = -1;
    loop->connect_timeout_ms = LOOP_CONNECT_TIMEOUT_MS;
    loop->posts_tail = &loop->posts;
#ifdef LOOP_EPOLL
    loop->epfd = -1;
    loop->ready_ev = smtpx__calloc(mem, LOOP_EVENTS, sizeof(loop_event));
    if (loop->ready_ev == NULL) {
        smtpx__free(mem, loop);
        return SMTPX_ERR_NOMEM;
    }
    loop->cap_ready_ev = LOOP_EVENTS;
#endif
    if (pthread_mutex_init(&loop->mu, NULL) != 0) {
        smtpx__free(mem, loop->ready_ev);
        smtpx__free(mem, loop);
        return SMTPX_ERR_NOMEM;
    }
    if (bk_open(loop) < 0)
        goto io;
#ifdef LOOP_EPOLL
    loop->wake_fd[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_fd[0] < 0)
        goto io;
    loop->wake_fd[1] = loop->wake_fd[0];
#else
    if (pipe(loop->wake_fd) < 0)
        goto io;
    smtpx__posix_fd_setup(loop->wake_fd[0]);
    smtpx__posix_fd_setup(loop->wake_fd[1]);
#endif
    loop->wake.kind = REC_WAKE;
    loop->wake.fd = loop->wake_fd[0];
    if (bk_set(loop, &loop->wake, LOOP_IN) < 0)
        goto io;
    *out = loop;
    return 0;
io:
    e = errno;
    if (loop->wake_fd[0] >= 0)
        close(loop->wake_fd[0]);
    if (loop->wake_fd[1] >= 0 && loop->wake_fd[1] != loop->wake_fd[0])
        close(loop->wake_fd[1]);
    bk_close(loop);
    pthread_mutex_destroy(&loop->mu);
    smtpx__free(mem, loop->ready_ev);
    smtpx__free(mem, loop);
    errno = e;
    return e == ENOMEM ? SMTPX_ERR_NOMEM : SMTPX_ERR_IO;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
loop_log(const loop_listener *l, int level, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    if (l->log == NULL || level > l->log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    l->log(level, msg, l->log_user_data);
}

/* proxy_end - the PROXY phase of a connection is over: its record goes at
 * the end of the round; the descriptor is closed unless a session takes
 * it */
static void proxy_end(smtpx_loop *loop, loop_proxy *p, int close_fd)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        loop->proxies = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    tm_release(loop, &p->tm);
    rec_kill(loop, &p->rec);
    if (close_fd)
        close(p->rec.fd);
}

/* proxy_fail - no valid header: close without a word (the proxy expects
 * none, and the client is unknown) */
static void proxy_fail(smtpx_loop *loop, loop_proxy *p, const char *why)
{
    loop_log(p->l, SMTPX_LOG_NOTICE, "PROXY header from %s refused: %s",
             p->pa.addr[0] ? p->pa.addr : "unknown", why);
    loop_count(loop, SMTPX_LOOP_COUNTER_REFUSED_PROXY, 1);
    proxy_end(loop, p, 1);
}

static void loop_close_proxies(smtpx_loop *loop)
{
    while (loop->proxies != NULL)
        proxy_end(loop, loop->proxies, 1);
}

static void loop_close_listeners(smtpx_loop *loop)
{
    loop_listener *l;

    for (l = loop->ls; l != NULL; l = l->next) {
        if (l->closed)
            continue;
        bk_set(loop, &l->rec, 0);
        tm_del(loop, &l->backoff);
        close(l->rec.fd);
        l->closed = 1;
    }
}

static void loop_reap(smtpx_loop *loop)
{
    loop_rec *r, *next;

    for (r = loop->dead; r != NULL; r = next) {
        next = r->next_dead;
        smtpx__free(&loop->mem, r); /* the record opens its owner */
    }
    loop->dead = NULL;
}

static void loop_run_posts(smtpx_loop *loop)
{
    loop_post *p, *next;

    pthread_mutex_lock(&loop->mu);
    p = loop->posts;
    loop->posts = NULL;
    loop->posts_tail = &loop->posts;
    pthread_mutex_unlock(&loop->mu);
    for (; p != NULL; p = next) {
        next = p->next;
        p->fn(loop, p->user_data);
        smtpx__free(&loop->mem, p);
        loop->scan = 1;
    }
}

/* conn_end - the session is over: unregister it, free it (server) or
 * hand it back (client), free the transport; the record goes at the end
 * of the round */
static void conn_end(smtpx_loop *loop, loop_conn *n)
{
    if (n->rec.dead)
        return;
    q_remove(loop, n);
    tm_release(loop, &n->tm);
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        loop->conns = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    rec_kill(loop, &n->rec); /* before the descriptor is closed */
    if (n->s != NULL) {
        int status = smtpx_server_status(n->s);
        if (status == SMTPX_ERR_TIMEOUT)
            loop_count(loop, SMTPX_LOOP_COUNTER_TIMEOUTS, 1);
        else if (status == SMTPX_ERR_PROTO)
            loop_count(loop, SMTPX_LOOP_COUNTER_PROTO_ERRORS, 1);
        else if (status == SMTPX_ERR_LIMIT)
            loop_count(loop, SMTPX_LOOP_COUNTER_LIMIT_ENDS, 1);
        else if ((status == SMTPX_ERR_TLS || status == SMTPX_ERR_TLS_VERIFY) &&
                 !n->tls_seen)
            loop_count(loop, SMTPX_LOOP_COUNTER_TLS_FAILED, 1);
        if (n->limited)
            smtpx_limiter_close(n->l->limiter, smtpx_server_peer(n->s)->addr,
                                loop->now);
        loop->nservers--;
        loop_count_set(loop, SMTPX_LOOP_COUNTER_SESSIONS_OPEN, loop->nservers);
        smtpx_server_free(n->s);
        if (n->has_session_data && n->l->on_session_free != NULL)
            n->l->on_session_free(loop, n->session_data, n->l->user_data);
    } else {
        loop->nclients--;
        loop_count_set(loop, SMTPX_LOOP_COUNTER_CLIENTS_OPEN, loop->nclients);
        if (n->on_done != NULL) {
            int status = smtpx_client_status(n->c);
            if (n->wait < 0)
                errno = -n->wait; /* why the connection failed */
            n->on_done(loop, n->c, status, n->user_data);
        }
    }
    smtpx_transport_free(n->t);
    if (n->own_fd)
        close(n->rec.fd);
}

/* conn_answered - a paused session the application has answered: it
 * wants I/O again, or has ended */
static int conn_answered(const loop_conn *n)
{
    if (n->s != NULL)
        return smtpx_server_want_read(n->s) || smtpx_server_want_write(n->s) ||
               smtpx_server_want_tls(n->s) || smtpx_server_done(n->s);
    return smtpx_client_want_read(n->c) || smtpx_client_want_write(n->c) ||
           smtpx_client_want_tls(n->c) || smtpx_client_done(n->c);
}

/* conn_settle - wait for what the last pump asked: register for it, arm
 * the expiry, queue the session if it has work left or waits for the
 * application */
static void conn_settle(smtpx_loop *loop, loop_conn *n)
{
    int w = n->wait;
    int want = ((w & SMTPX_WAIT_READ) ? LOOP_IN : 0) |
               ((w & SMTPX_WAIT_WRITE) ? LOOP_OUT : 0);

    if (bk_set(loop, &n->rec, want) < 0) {
        /* The descriptor cannot be waited on: give the connection up. */
        if (n->s != NULL)
            smtpx_server_abort(n->s, SMTPX_ERR_IO);
        else
            smtpx_client_abort(n->c, SMTPX_ERR_IO);
        conn_end(loop, n);
        return;
    }
    tm_set(loop, &n->tm,
           n->s != NULL ? smtpx_server_expiry(n->s)
                        : smtpx_client_expiry(n->c));
    if (w & SMTPX_WAIT_AGAIN)
        q_put(loop, n, Q_READY);
    else if (want == 0)
        q_put(loop, n, Q_PAUSED);
    else
        q_remove(loop, n);
}

/* conn_account - what a server session's pump changed, counted */
static void conn_account(smtpx_loop *loop, loop_conn *n)
{
    uint64_t v = smtpx_server_msg_count(n->s);

    if (v > n->msgs)
        loop_count(loop, SMTPX_LOOP_COUNTER_MESSAGES, v - n->msgs);
    n->msgs = v;
    v = smtpx_server_auth_failures(n->s);
    if (v > n->auth_failures)
        loop_count(loop, SMTPX_LOOP_COUNTER_AUTH_FAILURES,
                   v - n->auth_failures);
    n->auth_failures = v;
    /* The session's record, not the transport: a session may start TLS
     * and end within one pump, the transport closed by then. */
    if (!n->tls_seen && smtpx_server_tls(n->s) != NULL) {
        const smtpx_tls_info *ti = smtpx_server_tls(n->s);
        n->tls_seen = 1;
        loop_count(loop, SMTPX_LOOP_COUNTER_TLS, 1);
        if (ti != NULL && ti->resumed)
            loop_count(loop, SMTPX_LOOP_COUNTER_TLS_RESUMED, 1);
    }
}

/* conn_pump - expire the session if its deadline has come, then pump */
static void conn_pump(smtpx_loop *loop, loop_conn *n)
{
    uint64_t now = loop->now, e;

    n->pumped = loop->round;
    if (n->s != NULL) {
        e = smtpx_server_expiry(n->s);
        if (e != 0 && now >= e)
            smtpx_server_expire(n->s, now);
        n->wait = smtpx_server_pump(n->s, n->t, now);
        conn_account(loop, n);
    } else {
        e = smtpx_client_expiry(n->c);
        if (e != 0 && now >= e)
            smtpx_client_expire(n->c, now);
        n->wait = smtpx_client_pump(n->c, n->t, now);
    }
    if (n->wait <= 0)
        conn_end(loop, n);
    else
        conn_settle(loop, n);
}

/* conn_connect_failed - the connection of an unstarted client was not
 * made: end the client (its queued commands get local replies) */
static void conn_connect_failed(smtpx_loop *loop, loop_conn *n, int err,
                                int sys_err)
{
    n->connecting = 0;
    smtpx_client_abort(n->c, err);
    n->wait = -sys_err;
    conn_end(loop, n);
}

/* conn_connected - an unstarted client's socket became writable: the
 * connection is made, or failed */
static void conn_connected(smtpx_loop *loop, loop_conn *n)
{
    int err = 0, rc;
    socklen_t len = sizeof(err);

    if (getsockopt(n->rec.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        conn_connect_failed(loop, n, SMTPX_ERR_CONNECT, err);
        return;
    }
    n->connecting = 0;
    tm_set(loop, &n->tm, 0);
    rc = smtpx_client_start(n->c, loop->now);
    if (rc < 0) {
        smtpx_client_abort(n->c, rc);
        conn_end(loop, n);
        return;
    }
    conn_pump(loop, n);
}

/* conn_new - a session record, with its slot in the heap; NULL if out of
 * memory */
static loop_conn *conn_new(smtpx_loop *loop, int kind, int fd)
{
    loop_conn *n = smtpx__calloc(&loop->mem, 1, sizeof(*n));

    if (n == NULL)
        return NULL;
    if (tm_claim(loop) < 0) {
        smtpx__free(&loop->mem, n);
        return NULL;
    }
    n->loop = loop;
    n->rec.kind = kind;
    n->rec.fd = fd;
    n->tm.kind = TM_CONN;
    n->tm.pos = LOOP_NOPOS;
    return n;
}

/* conn_drop - undo conn_new for a session that never started */
static void conn_drop(smtpx_loop *loop, loop_conn *n)
{
    bk_set(loop, &n->rec, 0);
    loop->ntm--;
    smtpx__free(&loop->mem, n);
}

static void conn_link(smtpx_loop *loop, loop_conn *n)
{
    n->prev = NULL;
    n->next = loop->conns;
    if (loop->conns != NULL)
        loop->conns->prev = n;
    loop->conns = n;
}

void smtpx_loop_free(smtpx_loop *loop)
{
    loop_listener *l, *lnext;
    smtpx_mem mem;
    size_t i;

    if (loop == NULL)
        return;
    loop_run_posts(loop);
    loop->in_round = 1; /* callbacks from here on see one time */
    loop->now = smtpx_posix_now_ms();
    loop->applied_how = SMTPX_SHUTDOWN_NOW; /* no new clients */
    loop_close_listeners(loop);
    loop_close_proxies(loop);
    while (loop->conns != NULL) {
        loop_conn *n = loop->conns;
        if (n->c != NULL)
            smtpx_client_abort(n->c, SMTPX_ERR_CLOSED);
        conn_end(loop, n);
    }
    loop_run_posts(loop); /* what on_close and on_done posted */
    for (l = loop->ls; l != NULL; l = lnext) {
        lnext = l->next;
        smtpx__free(&loop->mem, l->proxy_trusted);
        smtpx__free(&loop->mem, l);
    }
    for (i = 0; i < loop->capwatches; i++)
        if (loop->watches[i] != NULL)
            rec_kill(loop, &loop->watches[i]->rec);
    for (i = 0; i < loop->nheap; i++)
        if (loop->heap[i]->kind == TM_APP)
            smtpx__free(&loop->mem, loop->heap[i]);
    loop_reap(loop);
    mem = loop->mem;
    smtpx__free(&mem, loop->watches);
    smtpx__free(&mem, loop->heap);
    smtpx__free(&mem, loop->ready_ev);
    bk_close(loop);
    close(loop->wake_fd[0]);
    if (loop->wake_fd[1] != loop->wake_fd[0])
        close(loop->wake_fd[1]);
    pthread_mutex_destroy(&loop->mu);
    smtpx__free(&mem, loop);
}

const char *smtpx_loop_backend(const smtpx_loop *loop)
{
    (void)loop;
    return loop_backend_name;
}

uint64_t smtpx_loop_now(const smtpx_loop *loop)
{
    return loop != NULL ? loop_clock(loop) : smtpx_posix_now_ms();
}

/* ---- listeners and server sessions --------------------------------------- */

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
    smtpx_listen_opts o;

    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.cfg = cfg;
    o.cbs = cbs;
    o.cbs_size = cbs_size;
    o.user_data = user_data;
    o.tls = tls;
    o.tls_cfg = tls_cfg;
    o.mode = mode;
    /* The listener's user_data is the sessions' (no constructor), and
     * cfg NULL is refused below. */
    return smtpx_loop_add_listener(loop, fd, &o);
}

int smtpx_loop_add_listener(smtpx_loop *loop, int fd,
                            const smtpx_listen_opts *opts)
{
    smtpx_listen_opts o;
    loop_listener *l;

    if (loop == NULL || opts == NULL || fd < 0 ||
        smtpx__copy_sized(&o, sizeof(o), opts) != 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (o.cfg == NULL || !smtpx_config_is_frozen(o.cfg) ||
        (smtpx_config_get_role(o.cfg) != SMTPX_ROLE_SERVER &&
         smtpx_config_get_role(o.cfg) != SMTPX_ROLE_LMTP_SERVER) ||
        (o.tls != NULL && o.tls->size == 0) ||
        (o.mode != SMTPX_LISTEN_STARTTLS &&
         o.mode != SMTPX_LISTEN_IMPLICIT_TLS) ||
        (o.mode == SMTPX_LISTEN_IMPLICIT_TLS && o.tls == NULL) ||
        o.proxy < SMTPX_PROXY_NONE || o.proxy > SMTPX_PROXY_ANY ||
        o.proxy_timeout_ms < 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (loop->applied_how != 0 ||
        __atomic_load_n(&loop->stop_how, __ATOMIC_ACQUIRE) != 0)
        return SMTPX_ERR_INVALID_STATE;
    l = smtpx__calloc(&loop->mem, 1, sizeof(*l));
    if (l == NULL)
        return SMTPX_ERR_NOMEM;
    if (o.proxy != SMTPX_PROXY_NONE) {
        int rc = smtpx__net_list_parse(o.proxy_trusted, &loop->mem,
                                       &l->proxy_trusted, &l->nproxy_trusted);
        if (rc == 0 && l->nproxy_trusted == 0)
            rc = SMTPX_ERR_INVALID_ARGUMENT; /* trust nobody: a mistake */
        if (rc < 0) {
            smtpx__free(&loop->mem, l);
            return rc;
        }
        l->proxy = (o.proxy & SMTPX_PROXY_V1 ? SMTPX__PROXY_V1 : 0) |
                   (o.proxy & SMTPX_PROXY_V2 ? SMTPX__PROXY_V2 : 0);
        l->proxy_timeout_ms =
            o.proxy_timeout_ms > 0 ? o.proxy_timeout_ms : LOOP_PROXY_TIMEOUT_MS;
    }
    if (tm_claim(loop) < 0) {
        smtpx__free(&loop->mem, l->proxy_trusted);
        smtpx__free(&loop->mem, l);
        return SMTPX_ERR_NOMEM;
    }
    l->rec.kind = REC_LISTENER;
    l->rec.fd = fd;
    l->backoff.kind = TM_LISTENER;
    l->backoff.pos = LOOP_NOPOS;
    l->cfg = o.cfg;
    if (o.cbs != NULL)
        memcpy(&l->cbs, o.cbs,
               o.cbs_size < sizeof(l->cbs) ? o.cbs_size : sizeof(l->cbs));
    l->user_data = o.user_data;
    if (o.tls != NULL) {
        memcpy(&l->tls_ops, o.tls,
               o.tls->size < sizeof(l->tls_ops) ? o.tls->size
                                                : sizeof(l->tls_ops));
        l->tls_ops.size = sizeof(l->tls_ops);
        l->has_tls = 1;
        l->implicit_tls = o.mode == SMTPX_LISTEN_IMPLICIT_TLS;
    }
    l->tls_cfg = o.tls_cfg;
    l->on_session_new = o.on_session_new;
    l->on_session_free = o.on_session_free;
    l->limiter = o.limiter;
    l->loop = loop;
    l->log = o.log;
    l->log_level = o.log_level != 0 ? o.log_level : SMTPX_LOG_NOTICE;
    l->log_user_data = o.log_user_data;
    if (l->limiter != NULL) {
        l->app_on_mail = l->cbs.on_mail;
        l->cbs.on_mail = loop_on_mail;
        /* Only where AUTH is served at all: a callback of the loop's own
         * would make the core offer it. */
        if (l->cbs.on_auth != NULL) {
            l->app_on_auth = l->cbs.on_auth;
            l->cbs.on_auth = loop_on_auth;
        }
    }
    smtpx__posix_fd_setup(fd);
    if (bk_set(loop, &l->rec, LOOP_IN) < 0) {
        int nomem = errno == ENOMEM;
        loop->ntm--;
        smtpx__free(&loop->mem, l->proxy_trusted);
        smtpx__free(&loop->mem, l);
        return nomem ? SMTPX_ERR_NOMEM : SMTPX_ERR_IO;
    }
    l->next = loop->ls;
    loop->ls = l;
    return 0;
}

void smtpx_loop_set_max_sessions(smtpx_loop *loop, size_t max)
{
    loop->max_sessions = max;
}

size_t smtpx_loop_sessions(const smtpx_loop *loop)
{
    return loop->nservers;
}

size_t smtpx_loop_clients(const smtpx_loop *loop)
{
    return loop->nclients;
}

void smtpx_loop_set_connect_timeout(smtpx_loop *loop, int ms)
{
    loop->connect_timeout_ms = ms > 0 ? ms : LOOP_CONNECT_TIMEOUT_MS;
}

/* loop_refuse - a connection the loop does not serve: 421 and close.
 * One best-effort write: the socket is new, its buffer empty. */
static void loop_refuse(const loop_listener *l, int fd, const char *enh,
                        const char *why)
{
    char msg[320];
    int n = snprintf(msg, sizeof(msg), "421 %s %s %s\r\n", enh,
                     smtpx_config_get_hostname(l->cfg), why);
    ssize_t w;

    if (n > 0) {
        w = send(fd, msg, (size_t)n, MSG_NOSIGNAL);
        (void)w;
    }
    close(fd);
}

/*
 * The sessions' io: the POSIX socket calls (non-blocking, MSG_NOSIGNAL),
 * counting the octets moved.
 */
static smtpx_ssize loop_io_send(void *ctx, const uint8_t *buf, size_t len)
{
    loop_conn *n = ctx;
    ssize_t w;

    do {
        w = send(n->rec.fd, buf, len, MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    if (w >= 0) {
        loop_count(n->loop, SMTPX_LOOP_COUNTER_BYTES_OUT, (uint64_t)w);
        return (smtpx_ssize)w;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK ? SMTPX_ERR_WANT_WRITE
                                                   : SMTPX_ERR_IO;
}

static smtpx_ssize loop_io_recv(void *ctx, uint8_t *buf, size_t len)
{
    loop_conn *n = ctx;
    ssize_t r;

    do {
        r = recv(n->rec.fd, buf, len, 0);
    } while (r < 0 && errno == EINTR);
    if (r >= 0) {
        loop_count(n->loop, SMTPX_LOOP_COUNTER_BYTES_IN, (uint64_t)r);
        return (smtpx_ssize)r;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK ? SMTPX_ERR_WANT_READ
                                                   : SMTPX_ERR_IO;
}

static void loop_io_close(void *ctx)
{
    loop_conn *n = ctx;

    close(n->rec.fd);
}

static void loop_io(smtpx_io *io, loop_conn *n, int closes)
{
    io->ctx = n;
    io->send = loop_io_send;
    io->recv = loop_io_recv;
    io->close = closes ? loop_io_close : NULL;
}

/* loop_on_mail - on_mail of a listener with a limiter: the message rate
 * of the client's address first (Postfix's
 * smtpd_client_message_rate_limit answer), then the application's */
static int loop_on_mail(smtpx_server *s, const smtpx_mail_info *mail,
                        smtpx_reply *reply, void *user_data)
{
    loop_conn *n = smtpx_server_get_driver_data(s);
    const char *addr = smtpx_server_peer(s)->addr;

    if (n != NULL && n->limited &&
        smtpx_limiter_message(n->l->limiter, addr, n->loop->now) ==
            SMTPX_LIMITER_MSG_RATE) {
        snprintf(n->loop->text, sizeof(n->loop->text),
                 "Error: too much mail from %.64s", addr);
        reply->code = 450;
        reply->enh[0] = 4;
        reply->enh[1] = 7;
        reply->enh[2] = 1;
        reply->text = n->loop->text;
        loop_count(n->loop, SMTPX_LOOP_COUNTER_MAIL_RATE, 1);
        return 0;
    }
    return n != NULL && n->l->app_on_mail != NULL
               ? n->l->app_on_mail(s, mail, reply, user_data)
               : 0;
}

/* loop_on_auth - on_auth of a listener with a limiter: the AUTH rate of
 * the client's address first (Postfix's smtpd_client_auth_rate_limit),
 * so that guessing spread over many sessions is refused before the
 * application spends a password check on it; then the application's */
static int loop_on_auth(smtpx_server *s, const smtpx_auth_info *a,
                        smtpx_reply *reply, void *user_data)
{
    loop_conn *n = smtpx_server_get_driver_data(s);
    const char *addr = smtpx_server_peer(s)->addr;

    if (n != NULL && n->limited &&
        smtpx_limiter_auth(n->l->limiter, addr, n->loop->now) ==
            SMTPX_LIMITER_AUTH_RATE) {
        snprintf(n->loop->text, sizeof(n->loop->text),
                 "Error: too many AUTH attempts from %.64s, try later", addr);
        reply->code = 454;
        reply->enh[0] = 4;
        reply->enh[1] = 7;
        reply->enh[2] = 0;
        reply->text = n->loop->text;
        loop_count(n->loop, SMTPX_LOOP_COUNTER_AUTH_RATE, 1);
        return 0;
    }
    return n != NULL && n->l->app_on_auth != NULL
               ? n->l->app_on_auth(s, a, reply, user_data)
               : 0;
}

/* loop_limit - ask the listener's limiter about a new connection: 0 to go
 * on (*limited: counted open), or -1 when it was refused and closed */
static int loop_limit(smtpx_loop *loop, loop_listener *l, int fd,
                      const char *addr, int *limited)
{
    static const int which[SMTPX_LIMITER_COUNT] = {
        [SMTPX_LIMITER_SESSIONS] = SMTPX_LOOP_COUNTER_REFUSED_SESSIONS,
        [SMTPX_LIMITER_ADDR_SESSIONS] = SMTPX_LOOP_COUNTER_REFUSED_ADDR,
        [SMTPX_LIMITER_NET_SESSIONS] = SMTPX_LOOP_COUNTER_REFUSED_NET,
        [SMTPX_LIMITER_CONN_RATE] = SMTPX_LOOP_COUNTER_REFUSED_RATE};
    char text[128];
    int why;

    *limited = 0;
    if (l->limiter == NULL || addr == NULL)
        return 0;
    why = smtpx_limiter_open(l->limiter, addr, loop->now);
    if (why == SMTPX_LIMITER_OK) {
        *limited = 1;
        return 0;
    }
    if (why == SMTPX_ERR_INVALID_ARGUMENT)
        return 0; /* not an IP address: nothing to limit by */
    if (why < 0) {
        loop_refuse(l, fd, "4.3.0", "Service not available, try later");
        loop_count(loop, SMTPX_LOOP_COUNTER_REFUSED_SESSIONS, 1);
        return -1;
    }
    if (why == SMTPX_LIMITER_SESSIONS)
        snprintf(text, sizeof(text), "Too many connections, try later");
    else
        snprintf(text, sizeof(text), "Error: too many connections from %.64s",
                 addr);
    loop_refuse(l, fd, "4.7.0", text);
    if (why > 0 && why < SMTPX_LIMITER_COUNT && which[why] != 0)
        loop_count(loop, which[why], 1);
    return -1;
}

/* loop_start - a new session on an accepted connection */
static void loop_start(smtpx_loop *loop, loop_listener *l, int fd,
                       const smtpx_posix_addr *pa)
{
    loop_conn *n;
    smtpx_peer peer;
    smtpx_io io;
    void *ud = l->user_data;
    int rc, limited;

    peer.addr = pa->addr[0] ? pa->addr : NULL;
    peer.port = pa->port;
    peer.local_addr = pa->local_addr[0] ? pa->local_addr : NULL;
    peer.local_port = pa->local_port;
    peer.name = NULL;
    if (loop_limit(loop, l, fd, peer.addr, &limited) < 0)
        return;
    n = conn_new(loop, REC_SERVER, fd);
    if (n == NULL) {
        if (limited)
            smtpx_limiter_close(l->limiter, peer.addr, loop->now);
        close(fd);
        return;
    }
    n->l = l;
    n->limited = limited;
    if (l->on_session_new != NULL) {
        ud = NULL;
        if (l->on_session_new(loop, &peer, &ud, l->user_data) < 0) {
            loop_refuse(l, fd, "4.3.0", "Service not available, try later");
            loop_count(loop, SMTPX_LOOP_COUNTER_REFUSED_NEW, 1);
            if (limited)
                smtpx_limiter_close(l->limiter, peer.addr, loop->now);
            conn_drop(loop, n);
            return;
        }
        n->session_data = ud;
        n->has_session_data = 1;
    }
    loop_io(&io, n, 1);
    rc = smtpx_transport_new(&n->t, &io, &loop->mem);
    if (rc < 0)
        close(fd);
    if (rc == 0 && l->has_tls)
        rc = smtpx_transport_set_tls(n->t, &l->tls_ops, l->tls_cfg);
    if (rc == 0)
        rc = smtpx_server_new(&n->s, l->cfg, &l->cbs, sizeof(l->cbs), ud);
    if (rc == 0)
        smtpx_server_set_driver_data(n->s, n);
    if (rc == 0 && l->has_tls && !l->implicit_tls)
        smtpx_server_set_tls_available(n->s, 1);
    if (rc == 0 && l->implicit_tls)
        rc = smtpx_transport_start_tls(n->t, 1, NULL);
    if (rc == 0)
        rc = smtpx_server_start(n->s, &peer, loop->now);
    /* A start that failed but ended the session (on_connect failed) has
     * queued its 421: the pump writes it, then reports the session done. */
    if (rc < 0 && (n->s == NULL ||
                   smtpx_server_status(n->s) == SMTPX_ERR_INVALID_STATE)) {
        smtpx_server_free(n->s);
        smtpx_transport_free(n->t); /* closes fd */
        if (n->has_session_data && l->on_session_free != NULL)
            l->on_session_free(loop, ud, l->user_data);
        if (limited)
            smtpx_limiter_close(l->limiter, peer.addr, loop->now);
        conn_drop(loop, n);
        return;
    }
    conn_link(loop, n);
    loop->nservers++;
    loop_count(loop, SMTPX_LOOP_COUNTER_SESSIONS, 1);
    loop_count_set(loop, SMTPX_LOOP_COUNTER_SESSIONS_OPEN, loop->nservers);
    conn_pump(loop, n);
}

/* proxy_begin - a connection from a trusted proxy: wait for its header */
static void proxy_begin(smtpx_loop *loop, loop_listener *l, int fd,
                        const smtpx_posix_addr *pa)
{
    loop_proxy *p = smtpx__calloc(&loop->mem, 1, sizeof(*p));

    if (p == NULL || tm_claim(loop) < 0) {
        smtpx__free(&loop->mem, p);
        close(fd);
        return;
    }
    p->rec.kind = REC_PROXY;
    p->rec.fd = fd;
    p->tm.kind = TM_PROXY;
    p->tm.pos = LOOP_NOPOS;
    p->l = l;
    p->pa = *pa;
    if (bk_set(loop, &p->rec, LOOP_IN) < 0) {
        loop->ntm--;
        smtpx__free(&loop->mem, p);
        close(fd);
        return;
    }
    p->next = loop->proxies;
    if (loop->proxies != NULL)
        loop->proxies->prev = p;
    loop->proxies = p;
    tm_set(loop, &p->tm, loop->now + (uint64_t)l->proxy_timeout_ms);
}

/*
 * proxy_read - more of the header.  The socket is peeked, and only header
 * octets are taken from it: what follows the header is the client's (or,
 * for implicit TLS, its handshake) and stays for the session.  While the
 * header is incomplete everything received belongs to it, so it is taken
 * (a level-triggered wait would otherwise report the same octets again).
 */
static void proxy_read(smtpx_loop *loop, loop_proxy *p)
{
    smtpx_posix_addr pa;
    smtpx__proxy info;
    smtpx_ssize r;
    ssize_t n;
    loop_listener *l = p->l;
    int fd = p->rec.fd;

    do {
        n = recv(fd, p->buf + p->have, sizeof(p->buf) - p->have, MSG_PEEK);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        proxy_fail(loop, p, n == 0 ? "closed before the header" : "I/O error");
        return;
    }
    r = smtpx__proxy_parse(p->buf, p->have + (size_t)n, l->proxy, &info);
    if (r < 0) {
        proxy_fail(loop, p, "not a valid header");
        return;
    }
    if (r == 0) {
        if (recv(fd, p->buf + p->have, (size_t)n, 0) != n) {
            proxy_fail(loop, p, "I/O error");
            return;
        }
        p->have += (size_t)n;
        if (p->have == sizeof(p->buf))
            proxy_fail(loop, p, "header too long");
        return;
    }
    n = (ssize_t)r - (ssize_t)p->have;
    if (recv(fd, p->buf + p->have, (size_t)n, 0) != n) {
        proxy_fail(loop, p, "I/O error");
        return;
    }
    loop_count(loop, SMTPX_LOOP_COUNTER_BYTES_IN, (uint64_t)r);
    pa = p->pa;
    if (!info.local) {
        smtpx__ip_text(&info.src, pa.addr, sizeof(pa.addr));
        pa.port = info.sport;
        smtpx__ip_text(&info.dst, pa.local_addr, sizeof(pa.local_addr));
        pa.local_port = info.dport;
    }
    proxy_end(loop, p, 0);
    loop_start(loop, l, fd, &pa);
}

static void loop_accept(smtpx_loop *loop, loop_listener *l)
{
    int i;

    for (i = 0; i < LOOP_ACCEPTS && !l->closed; i++) {
        smtpx_posix_addr pa;
        int fd, rc = smtpx_posix_accept(l->rec.fd, &fd, &pa);

        if (rc == SMTPX_ERR_WANT_READ)
            return;
        if (rc < 0) {
            /* Out of descriptors or memory: the pending connection stays
             * in the backlog; try again a little later. */
            bk_set(loop, &l->rec, 0);
            tm_set(loop, &l->backoff, loop->now + LOOP_ACCEPT_BACKOFF_MS);
            return;
        }
        if (loop->max_sessions != 0 && loop->nservers >= loop->max_sessions) {
            loop_refuse(l, fd, "4.7.0", "Too many connections, try later");
            loop_count(loop, SMTPX_LOOP_COUNTER_REFUSED_SESSIONS, 1);
            continue;
        }
        if (l->proxy != 0) {
            smtpx__ip ip;
            if (smtpx__ip_parse(pa.addr, &ip) == 0 &&
                smtpx__net_list_match(l->proxy_trusted, l->nproxy_trusted,
                                      &ip)) {
                proxy_begin(loop, l, fd, &pa);
                continue;
            }
        }
        loop_start(loop, l, fd, &pa);
    }
}

/* ---- stopping ------------------------------------------------------------ */

void smtpx_loop_stop(smtpx_loop *loop, int how)
{
    if (how != SMTPX_SHUTDOWN_NOW)
        how = SMTPX_SHUTDOWN_DRAIN;
    /* NOW is never weakened back to DRAIN.  Atomic: other threads call
     * this (lock-free on an int, so a signal handler may too). */
    if (__atomic_load_n(&loop->stop_how, __ATOMIC_ACQUIRE) !=
        SMTPX_SHUTDOWN_NOW)
        __atomic_store_n(&loop->stop_how, how, __ATOMIC_RELEASE);
    smtpx_loop_wake(loop);
}

/* loop_apply_stop - a stop request (from loop_stop, maybe in a signal) */
static void loop_apply_stop(smtpx_loop *loop)
{
    int how = __atomic_load_n(&loop->stop_how, __ATOMIC_ACQUIRE);
    loop_conn *n, *next;

    if (how == 0 || how == loop->applied_how)
        return;
    loop->applied_how = how;
    loop_close_listeners(loop);
    loop_close_proxies(loop); /* no session yet: nothing to finish */
    for (n = loop->conns; n != NULL; n = next) {
        next = n->next;
        if (n->s != NULL) {
            smtpx_server_shutdown(n->s, how);
            conn_pump(loop, n);
        } else if (how == SMTPX_SHUTDOWN_NOW) {
            smtpx_client_abort(n->c, SMTPX_ERR_CLOSED);
            conn_pump(loop, n);
        }
    }
}

static int loop_drained(const smtpx_loop *loop)
{
    return loop->applied_how != 0 && loop->nservers == 0 && loop->nclients == 0;
}

/* ---- a round ------------------------------------------------------------- */

static void loop_drain_wake(smtpx_loop *loop)
{
#ifdef LOOP_EPOLL
    uint64_t v;
    ssize_t r = read(loop->wake_fd[0], &v, sizeof(v));
    (void)r;
#else
    char buf[64];
    while (read(loop->wake_fd[0], buf, sizeof(buf)) > 0)
        ;
#endif
}

static void loop_dispatch(smtpx_loop *loop, loop_rec *r, int ev)
{
    switch (r->kind) {
    case REC_WAKE:
        loop_drain_wake(loop);
        loop->scan = 1;
        break;
    case REC_LISTENER:
        if (!((loop_listener *)(void *)r)->closed)
            loop_accept(loop, (loop_listener *)(void *)r);
        break;
    case REC_SERVER:
    case REC_CLIENT: {
        loop_conn *n = (loop_conn *)(void *)r;
        if (n->connecting)
            conn_connected(loop, n);
        else if (n->pumped != loop->round)
            conn_pump(loop, n);
        break;
    }
    case REC_PROXY:
        proxy_read(loop, (loop_proxy *)(void *)r);
        break;
    case REC_WATCH: {
        loop_watch *w = (loop_watch *)(void *)r;
        int bits = (((ev & LOOP_IN) ? SMTPX_WAIT_READ : 0) |
                    ((ev & LOOP_OUT) ? SMTPX_WAIT_WRITE : 0)) &
                   w->events;
        if (bits != 0) {
            w->cb(loop, w->rec.fd, bits, w->user_data);
            loop->scan = 1;
        }
        break;
    }
    default:
        break;
    }
}

/* loop_run_ready - sessions whose pump stopped with work left in an
 * earlier round */
static void loop_run_ready(smtpx_loop *loop)
{
    loop_conn *n;

    while ((n = loop->ready.head) != NULL && n->q_round < loop->round) {
        q_remove(loop, n);
        if (n->pumped != loop->round)
            conn_pump(loop, n);
        else
            q_put(loop, n, Q_READY); /* pumped this round: keep its turn */
    }
}

/* loop_run_timers - deadlines that have come, set before this round */
static void loop_run_timers(smtpx_loop *loop)
{
    uint64_t mark = loop->seq;

    while (loop->nheap > 0) {
        loop_tm *t = loop->heap[0];

        if (t->at > loop->now || t->seq >= mark)
            break;
        tm_del(loop, t);
        if (t->kind == TM_CONN) {
            loop_conn *n = LOOP_OWNER(t, loop_conn, tm);
            if (n->connecting)
                conn_connect_failed(loop, n, SMTPX_ERR_TIMEOUT, ETIMEDOUT);
            else
                conn_pump(loop, n);
        } else if (t->kind == TM_PROXY) {
            proxy_fail(loop, LOOP_OWNER(t, loop_proxy, tm),
                       "no header in time");
        } else if (t->kind == TM_LISTENER) {
            loop_listener *l = LOOP_OWNER(t, loop_listener, backoff);
            if (!l->closed && bk_set(loop, &l->rec, LOOP_IN) < 0)
                tm_set(loop, t, loop->now + LOOP_ACCEPT_BACKOFF_MS);
        } else {
            smtpx_loop_timer *x = (smtpx_loop_timer *)(void *)t;
            x->cb(loop, x->user_data);
            loop->ntm--;
            smtpx__free(&loop->mem, x);
            loop->scan = 1;
        }
    }
}

/* loop_scan - paused sessions the application may have answered */
static void loop_scan(smtpx_loop *loop)
{
    loop_conn *n = loop->paused.head, *last = loop->paused.tail, *next;

    loop->scan = 0;
    while (n != NULL) {
        int end = n == last;
        next = n->qnext;
        if (conn_answered(n))
            conn_pump(loop, n);
        if (end)
            break;
        n = next;
    }
}

/* loop_timeout - how long the wait may last */
static int loop_timeout(const smtpx_loop *loop, int timeout_ms)
{
    int timeout = timeout_ms < 0 ? -1 : timeout_ms;

    if (loop->ready.head != NULL || loop->scan)
        return 0;
    if (loop->nheap > 0) {
        uint64_t at = loop->heap[0]->at;
        uint64_t left = at > loop->now ? at - loop->now : 0;
        if (timeout < 0 || left < (uint64_t)timeout)
            timeout = left > INT32_MAX ? INT32_MAX : (int)left;
    }
    return timeout;
}

int smtpx_loop_run_once(smtpx_loop *loop, int timeout_ms)
{
    int n, i, rc = 1, err = 0;

    if (loop == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (loop->in_round)
        return SMTPX_ERR_INVALID_STATE;
    loop->in_round = 1;
    loop->round++;
    loop->now = smtpx_posix_now_ms();
    loop_apply_stop(loop);
    if (!loop_drained(loop)) {
        n = bk_wait(loop, loop_timeout(loop, timeout_ms));
        if (n < 0) {
            if (errno != EINTR) {
                err = errno;
                rc = SMTPX_ERR_IO;
            }
            n = 0;
        }
        loop->now = smtpx_posix_now_ms();
        /* Read ready_ev afresh each time: a registration may move it. */
        for (i = 0; i < n; i++)
            if (!loop->ready_ev[i].rec->dead)
                loop_dispatch(loop, loop->ready_ev[i].rec,
                              loop->ready_ev[i].ev);
        loop_run_posts(loop);
        loop_run_ready(loop);
        loop_run_timers(loop);
        if (loop->scan)
            loop_scan(loop);
        loop_apply_stop(loop);
    }
    loop_reap(loop);
    loop->in_round = 0;
    if (rc < 0) {
        errno = err;
        return rc;
    }
    return loop_drained(loop) ? 0 : 1;
}

int smtpx_loop_run(smtpx_loop *loop)
{
    int rc;

    while ((rc = smtpx_loop_run_once(loop, -1)) > 0)
        ;
    return rc;
}

/* ---- other threads, watches and timers ----------------------------------- */

void smtpx_loop_wake(smtpx_loop *loop)
{
    int saved = errno;
    ssize_t w;
#ifdef LOOP_EPOLL
    uint64_t one = 1;
    w = write(loop->wake_fd[1], &one, sizeof(one));
#else
    w = write(loop->wake_fd[1], "", 1);
#endif
    (void)w; /* full: the loop is woken already */
    errno = saved;
}

int smtpx_loop_post(smtpx_loop *loop, smtpx_loop_fn *fn, void *user_data)
{
    loop_post *p;

    if (loop == NULL || fn == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    p = smtpx__malloc(&loop->mem, sizeof(*p));
    if (p == NULL)
        return SMTPX_ERR_NOMEM;
    p->fn = fn;
    p->user_data = user_data;
    p->next = NULL;
    pthread_mutex_lock(&loop->mu);
    *loop->posts_tail = p;
    loop->posts_tail = &p->next;
    pthread_mutex_unlock(&loop->mu);
    smtpx_loop_wake(loop);
    return 0;
}

int smtpx_loop_watch(smtpx_loop *loop, int fd, int events, smtpx_loop_io_fn *cb,
                     void *user_data)
{
    loop_watch *w;
    int want;

    if (loop == NULL || cb == NULL || fd < 0 ||
        (events & ~(SMTPX_WAIT_READ | SMTPX_WAIT_WRITE)) != 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    want = ((events & SMTPX_WAIT_READ) ? LOOP_IN : 0) |
           ((events & SMTPX_WAIT_WRITE) ? LOOP_OUT : 0);
    if ((size_t)fd >= loop->capwatches) {
        size_t cap = loop->capwatches ? loop->capwatches : 64;
        loop_watch **ws;
        while (cap <= (size_t)fd)
            cap *= 2;
        ws = smtpx__realloc(&loop->mem, loop->watches, cap * sizeof(*ws));
        if (ws == NULL)
            return SMTPX_ERR_NOMEM;
        memset(ws + loop->capwatches, 0,
               (cap - loop->capwatches) * sizeof(*ws));
        loop->watches = ws;
        loop->capwatches = cap;
    }
    w = loop->watches[fd];
    if (w == NULL) {
        w = smtpx__calloc(&loop->mem, 1, sizeof(*w));
        if (w == NULL)
            return SMTPX_ERR_NOMEM;
        w->rec.kind = REC_WATCH;
        w->rec.fd = fd;
        if (bk_set(loop, &w->rec, want) < 0) {
            int nomem = errno == ENOMEM;
            smtpx__free(&loop->mem, w);
            return nomem ? SMTPX_ERR_NOMEM : SMTPX_ERR_IO;
        }
        loop->watches[fd] = w;
    } else if (bk_set(loop, &w->rec, want) < 0) {
        return errno == ENOMEM ? SMTPX_ERR_NOMEM : SMTPX_ERR_IO;
    }
    w->events = events;
    w->cb = cb;
    w->user_data = user_data;
    return 0;
}

int smtpx_loop_unwatch(smtpx_loop *loop, int fd)
{
    loop_watch *w;

    if (loop == NULL || fd < 0 || (size_t)fd >= loop->capwatches ||
        (w = loop->watches[fd]) == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    loop->watches[fd] = NULL;
    rec_kill(loop, &w->rec);
    return 0;
}

int smtpx_loop_timer_add(smtpx_loop *loop, uint64_t at_ms, smtpx_loop_fn *cb,
                         void *user_data, smtpx_loop_timer **out)
{
    smtpx_loop_timer *x;

    if (out != NULL)
        *out = NULL;
    if (loop == NULL || cb == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    x = smtpx__calloc(&loop->mem, 1, sizeof(*x));
    if (x == NULL)
        return SMTPX_ERR_NOMEM;
    if (tm_claim(loop) < 0) {
        smtpx__free(&loop->mem, x);
        return SMTPX_ERR_NOMEM;
    }
    x->tm.kind = TM_APP;
    x->tm.pos = LOOP_NOPOS;
    x->cb = cb;
    x->user_data = user_data;
    tm_set(loop, &x->tm, at_ms != 0 ? at_ms : 1); /* 0 would disarm */
    if (out != NULL)
        *out = x;
    return 0;
}

int smtpx_loop_timer_cancel(smtpx_loop *loop, smtpx_loop_timer *timer)
{
    if (loop == NULL || timer == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (timer->tm.pos == LOOP_NOPOS)
        return SMTPX_ERR_INVALID_STATE; /* firing: freed when it returns */
    tm_release(loop, &timer->tm);
    smtpx__free(&loop->mem, timer);
    return 0;
}

/* ---- client sessions ----------------------------------------------------- */

int smtpx_loop_add_client(smtpx_loop *loop, int fd, smtpx_client *c,
                          smtpx_transport *t, smtpx_loop_client_fn *on_done,
                          void *user_data)
{
    loop_conn *n;
    int started, rc;

    if (loop == NULL || c == NULL || fd < 0 ||
        smtpx_client_status(c) != SMTPX_ERR_INVALID_STATE)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (loop->applied_how == SMTPX_SHUTDOWN_NOW)
        return SMTPX_ERR_INVALID_STATE;
    /* A started client that has not ended reads (or waits for TLS). */
    started = smtpx_client_want_read(c) || smtpx_client_want_tls(c);
    n = conn_new(loop, REC_CLIENT, fd);
    if (n == NULL)
        return SMTPX_ERR_NOMEM;
    if (t == NULL) {
        smtpx_io io;
        /* Closed by the loop itself, and only once the call succeeded. */
        loop_io(&io, n, 0);
        rc = smtpx_transport_new(&n->t, &io, &loop->mem);
        if (rc < 0) {
            conn_drop(loop, n);
            return rc;
        }
        n->own_fd = 1;
    } else {
        n->t = t;
    }
    smtpx__posix_fd_setup(fd);
    n->c = c;
    n->on_done = on_done;
    n->user_data = user_data;
    n->connecting = !started;
    if (bk_set(loop, &n->rec, started ? 0 : LOOP_OUT) < 0) {
        int nomem = errno == ENOMEM;
        if (n->own_fd)
            smtpx_transport_free(n->t);
        conn_drop(loop, n);
        return nomem ? SMTPX_ERR_NOMEM : SMTPX_ERR_IO;
    }
    conn_link(loop, n);
    loop->nclients++;
    loop_count(loop, SMTPX_LOOP_COUNTER_CLIENTS, 1);
    loop_count_set(loop, SMTPX_LOOP_COUNTER_CLIENTS_OPEN, loop->nclients);
    if (started)
        q_put(loop, n, Q_READY); /* pumped in the next round */
    else
        tm_set(loop, &n->tm,
               loop_clock(loop) + (uint64_t)loop->connect_timeout_ms);
    return 0;
}
