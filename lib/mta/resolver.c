/*
 * resolver - asynchronous DNS for the delivery engine: MX records and host
 * addresses, with answers delivered from smtpx_resolver_process() when a
 * descriptor turns readable, so that an event loop never blocks on DNS.
 *
 * Exports smtpx_resolver_new(), _new_static(), _static_add(), _free(),
 * _query(), _cancel(), _fd(), _expiry(), _process() and _pending() of
 * <libsmtpx/mta.h>.
 *
 * Three back ends share the query list and the answer pipe:
 *  - c-ares (when built with SMTPX_HAVE_CARES, Debian's libc-ares-dev):
 *    the queries run in the caller's thread; c-ares's sockets and the
 *    answer pipe are gathered in one epoll descriptor, so the owner polls
 *    one descriptor and one expiry (c-ares's retransmission time-out).
 *  - thread (without c-ares, or smtpx__resolver_new_thread()): one worker
 *    thread runs the C library's resolver (res_nquery() with a private
 *    resolver state and ns_parserr() for MX; getaddrinfo() for A and
 *    AAAA), one query at a time, and writes a byte to the pipe for each
 *    answer.
 *  - static: answers from a table at once, through the same pipe.
 * Every answer goes through the done list, so that a callback never runs
 * inside smtpx_resolver_query(), even when c-ares answers at once (from
 * /etc/hosts, or a name it refuses).
 *
 * Invariants: a callback runs once per query, from process() only, never
 * for a cancelled query; the worker touches only queries it has taken
 * from the list, under the mutex.
 */
#define _DEFAULT_SOURCE /* resolv.h, arpa/nameser.h */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef SMTPX_HAVE_CARES
#include <ares.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <time.h>
#endif

#include "base/mem.h"
#include "io/posix.h"
#include "mta/resolver.h"

#include <libsmtpx/mta.h>

#define RES_MAX_RR    32
#define RES_NAME_SIZE 256

typedef struct rq_query {
    char name[RES_NAME_SIZE];
    int type;
    smtpx_resolve_fn *fn;
    void *ud;
    int cancelled;
    int status;
    size_t n;
    smtpx_rr rr[RES_MAX_RR];
    char values[RES_MAX_RR][RES_NAME_SIZE];
    struct smtpx_resolver *owner;
    struct rq_query *next;
} rq_query;

typedef struct res_static {
    char name[RES_NAME_SIZE];
    int type;
    uint16_t pref;
    char value[RES_NAME_SIZE];
} res_static;

enum { RES_STATIC, RES_THREAD, RES_ARES };

struct smtpx_resolver {
    smtpx_mem mem;
    int is_static; /* RES_* */
    int pipe[2];
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t thread;
    int has_thread;
    int stop;
    rq_query *todo, *todo_tail; /* waiting for the worker */
    rq_query *busy;             /* the worker's */
    rq_query *done, *done_tail; /* answered */
    rq_query *fly;              /* with c-ares */
    size_t pending;
    res_static *table;
    size_t ntable, captable;
#ifdef SMTPX_HAVE_CARES
    ares_channel channel;
    int has_channel;
    int epfd; /* c-ares's sockets and pipe[0] */
#endif
};

static void res_push(rq_query **head, rq_query **tail, rq_query *q)
{
    q->next = NULL;
    if (*tail)
        (*tail)->next = q;
    else
        *head = q;
    *tail = q;
}

static void res_add(rq_query *q, int type, uint16_t pref, const char *value)
{
    if (q->n == RES_MAX_RR)
        return;
    {
        size_t n = strlen(value);

        if (n >= RES_NAME_SIZE)
            return; /* longer than a domain name may be */
        memcpy(q->values[q->n], value, n + 1);
    }
    q->rr[q->n].type = type;
    q->rr[q->n].pref = pref;
    q->rr[q->n].value = q->values[q->n];
    q->n++;
}

/* ---- the static table ---------------------------------------------------- */

static void res_static_answer(smtpx_resolver *r, rq_query *q)
{
    size_t i;
    int named = 0, fail = 0;

    for (i = 0; i < r->ntable; i++) {
        const res_static *e = &r->table[i];
        if (strcasecmp(e->name, q->name) != 0)
            continue;
        named = 1;
        if (e->type == 0)
            fail = 1;
        else if (e->type == q->type ||
                 (q->type == SMTPX_RR_A && e->type == SMTPX_RR_AAAA))
            res_add(q, e->type, e->pref, e->value);
    }
    if (fail)
        q->status = SMTPX_ERR_RESOLVE;
    else if (q->n > 0)
        q->status = 0;
    else
        q->status = named ? SMTPX_ERR_DNS_NODATA : SMTPX_ERR_DNS_NXDOMAIN;
}

int smtpx_resolver_static_add(smtpx_resolver *r, const char *name, int type,
                              uint16_t pref, const char *value)
{
    unsigned char addr[16];
    res_static *e;

    if (r == NULL || r->is_static != RES_STATIC || name == NULL ||
        strlen(name) >= RES_NAME_SIZE ||
        (type != 0 && (value == NULL || strlen(value) >= RES_NAME_SIZE)) ||
        (type != 0 && type != SMTPX_RR_A && type != SMTPX_RR_AAAA &&
         type != SMTPX_RR_MX) ||
        (type == SMTPX_RR_A && inet_pton(AF_INET, value, addr) != 1) ||
        (type == SMTPX_RR_AAAA && inet_pton(AF_INET6, value, addr) != 1))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (r->ntable == r->captable) {
        size_t nc = r->captable ? r->captable * 2 : 16;
        e = smtpx__realloc(&r->mem, r->table, nc * sizeof(*e));
        if (e == NULL)
            return SMTPX_ERR_NOMEM;
        r->table = e;
        r->captable = nc;
    }
    e = &r->table[r->ntable++];
    memset(e, 0, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->type = type;
    e->pref = pref;
    if (value != NULL)
        snprintf(e->value, sizeof(e->value), "%s", value);
    return 0;
}

/* ---- the worker ---------------------------------------------------------- */

static void res_mx(rq_query *q)
{
    struct __res_state st;
    unsigned char ans[8192];
    ns_msg msg;
    ns_rr rr;
    int len, i, count;

    memset(&st, 0, sizeof(st));
    if (res_ninit(&st) != 0) {
        q->status = SMTPX_ERR_RESOLVE;
        return;
    }
    len = res_nquery(&st, q->name, ns_c_in, ns_t_mx, ans, sizeof(ans));
    if (len < 0) {
        switch (st.res_h_errno) {
        case HOST_NOT_FOUND:
            q->status = SMTPX_ERR_DNS_NXDOMAIN;
            break;
        case NO_DATA:
            q->status = SMTPX_ERR_DNS_NODATA;
            break;
        default:
            q->status = SMTPX_ERR_RESOLVE;
        }
        res_nclose(&st);
        return;
    }
    res_nclose(&st);
    if (ns_initparse(ans, len, &msg) < 0) {
        q->status = SMTPX_ERR_RESOLVE;
        return;
    }
    count = ns_msg_count(msg, ns_s_an);
    for (i = 0; i < count; i++) {
        char host[NS_MAXDNAME];
        const unsigned char *rd;
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) {
            q->status = SMTPX_ERR_RESOLVE;
            return;
        }
        if (ns_rr_type(rr) != ns_t_mx || ns_rr_rdlen(rr) < 3)
            continue;
        rd = ns_rr_rdata(rr);
        if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 2, host,
                      sizeof(host)) < 0)
            continue;
        res_add(q, SMTPX_RR_MX, (uint16_t)((rd[0] << 8) | rd[1]),
                host[0] ? host : ".");
    }
    q->status = q->n > 0 ? 0 : SMTPX_ERR_DNS_NODATA;
}

static void res_addr(rq_query *q)
{
    struct addrinfo hints, *ai, *p;
    char text[INET6_ADDRSTRLEN];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(q->name, NULL, &hints, &ai);
    if (rc != 0) {
        q->status = rc == EAI_NONAME ? SMTPX_ERR_DNS_NXDOMAIN
#ifdef EAI_NODATA
                    : rc == EAI_NODATA ? SMTPX_ERR_DNS_NODATA
#endif
                                       : SMTPX_ERR_RESOLVE;
        return;
    }
    for (p = ai; p != NULL; p = p->ai_next) {
        if (p->ai_family == AF_INET)
            inet_ntop(AF_INET,
                      &((struct sockaddr_in *)(void *)p->ai_addr)->sin_addr,
                      text, sizeof(text));
        else if (p->ai_family == AF_INET6)
            inet_ntop(AF_INET6,
                      &((struct sockaddr_in6 *)(void *)p->ai_addr)->sin6_addr,
                      text, sizeof(text));
        else
            continue;
        res_add(q, p->ai_family == AF_INET ? SMTPX_RR_A : SMTPX_RR_AAAA, 0,
                text);
    }
    freeaddrinfo(ai);
    q->status = q->n > 0 ? 0 : SMTPX_ERR_DNS_NODATA;
}

static void res_signal(smtpx_resolver *r)
{
    ssize_t w = write(r->pipe[1], "", 1);

    (void)w;
}

static void *res_worker(void *arg)
{
    smtpx_resolver *r = arg;
    rq_query *q;

    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->stop && r->todo == NULL)
            pthread_cond_wait(&r->cond, &r->mu);
        if (r->stop)
            break;
        q = r->todo;
        r->todo = q->next;
        if (r->todo == NULL)
            r->todo_tail = NULL;
        r->busy = q;
        pthread_mutex_unlock(&r->mu);
        if (q->type == SMTPX_RR_MX)
            res_mx(q);
        else
            res_addr(q);
        pthread_mutex_lock(&r->mu);
        r->busy = NULL;
        res_push(&r->done, &r->done_tail, q);
        res_signal(r);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- the object ---------------------------------------------------------- */

#ifdef SMTPX_HAVE_CARES
/* ---- c-ares ---------------------------------------------------------------
 */

/* ares_sock - c-ares opens, changes or closes a socket: keep the epoll set
 * the same */
static void ares_sock(void *data, ares_socket_t fd, int readable, int writable)
{
    smtpx_resolver *r = data;
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.data.fd = fd;
    ev.events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u);
    if (!readable && !writable) {
        (void)epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
        return;
    }
    if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev) != 0)
        (void)epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void ares_done(smtpx_resolver *r, rq_query *q)
{
    rq_query **pq;

    pthread_mutex_lock(&r->mu);
    for (pq = &r->fly; *pq != NULL && *pq != q; pq = &(*pq)->next)
        ;
    if (*pq == q)
        *pq = q->next;
    res_push(&r->done, &r->done_tail, q);
    pthread_mutex_unlock(&r->mu);
    res_signal(r);
}

static int ares_status(int st)
{
    switch (st) {
    case ARES_SUCCESS:
        return 0;
    case ARES_ENOTFOUND:
        return SMTPX_ERR_DNS_NXDOMAIN;
    case ARES_ENODATA:
        return SMTPX_ERR_DNS_NODATA;
    case ARES_ENOMEM:
        return SMTPX_ERR_NOMEM;
    default:
        return SMTPX_ERR_RESOLVE;
    }
}

static void ares_mx_cb(void *arg, int status, int timeouts, unsigned char *abuf,
                       int alen)
{
    rq_query *q = arg;
    smtpx_resolver *r = q->owner;
    struct ares_mx_reply *mx = NULL, *p;

    (void)timeouts;
    q->status = ares_status(status);
    if (status == ARES_SUCCESS) {
        int pr = ares_parse_mx_reply(abuf, alen, &mx);
        if (pr == ARES_SUCCESS) {
            for (p = mx; p != NULL; p = p->next)
                res_add(q, SMTPX_RR_MX, (uint16_t)p->priority,
                        p->host[0] ? p->host : ".");
            ares_free_data(mx);
        }
        q->status = pr == ARES_SUCCESS ? (q->n > 0 ? 0 : SMTPX_ERR_DNS_NODATA)
                                       : ares_status(pr);
    }
    ares_done(r, q);
}

static void ares_addr_cb(void *arg, int status, int timeouts,
                         struct ares_addrinfo *ai)
{
    rq_query *q = arg;
    smtpx_resolver *r = q->owner;
    struct ares_addrinfo_node *n;
    char text[INET6_ADDRSTRLEN];

    (void)timeouts;
    q->status = ares_status(status);
    if (status == ARES_SUCCESS && ai != NULL) {
        for (n = ai->nodes; n != NULL; n = n->ai_next) {
            if (n->ai_family == AF_INET)
                inet_ntop(AF_INET,
                          &((struct sockaddr_in *)(void *)n->ai_addr)->sin_addr,
                          text, sizeof(text));
            else if (n->ai_family == AF_INET6)
                inet_ntop(
                    AF_INET6,
                    &((struct sockaddr_in6 *)(void *)n->ai_addr)->sin6_addr,
                    text, sizeof(text));
            else
                continue;
            res_add(q, n->ai_family == AF_INET ? SMTPX_RR_A : SMTPX_RR_AAAA, 0,
                    text);
        }
        q->status = q->n > 0 ? 0 : SMTPX_ERR_DNS_NODATA;
    }
    if (ai != NULL)
        ares_freeaddrinfo(ai);
    ares_done(r, q);
}

/* Test settings of the next c-ares channel (smtpx__resolver_new_cares):
 * its servers and time-outs instead of the system's. */
typedef struct ares_test {
    const char *servers; /* "host:port,..."; NULL: the system's */
    int timeout_ms, tries;
} ares_test;

static int ares_open(smtpx_resolver *r, const ares_test *t)
{
    struct ares_options o;
    struct epoll_event ev;
    int mask = ARES_OPT_SOCK_STATE_CB;

    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
        return SMTPX_ERR_RESOLVE;
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (r->epfd < 0) {
        ares_library_cleanup();
        return SMTPX_ERR_IO;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.fd = r->pipe[0];
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->pipe[0], &ev) != 0) {
        close(r->epfd);
        ares_library_cleanup();
        return SMTPX_ERR_IO;
    }
    memset(&o, 0, sizeof(o));
    o.sock_state_cb = ares_sock;
    o.sock_state_cb_data = r;
    if (t != NULL) {
        o.timeout = t->timeout_ms;
        o.tries = t->tries;
        mask |= ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    }
    if (ares_init_options(&r->channel, &o, mask) != ARES_SUCCESS) {
        close(r->epfd);
        ares_library_cleanup();
        return SMTPX_ERR_RESOLVE;
    }
    r->has_channel = 1;
    if (t != NULL && t->servers != NULL &&
        ares_set_servers_ports_csv(r->channel, t->servers) != ARES_SUCCESS)
        return SMTPX_ERR_INVALID_ARGUMENT; /* the caller frees r */
    return 0;
}

/* ares_run - let c-ares read what is ready and act on its time-outs */
static void ares_run(smtpx_resolver *r)
{
    struct epoll_event ev[16];
    int n, i;

    n = epoll_wait(r->epfd, ev, 16, 0);
    for (i = 0; i < n; i++) {
        if (ev[i].data.fd == r->pipe[0])
            continue;
        ares_process_fd(
            r->channel,
            (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? ev[i].data.fd
                                                             : ARES_SOCKET_BAD,
            (ev[i].events & EPOLLOUT) ? ev[i].data.fd : ARES_SOCKET_BAD);
    }
    /* Time-outs and retransmissions. */
    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}
#endif

static int res_new(smtpx_resolver **out, const smtpx_mem *mem, int kind,
                   const void *test)
{
    smtpx_resolver *r;

    (void)test; /* without c-ares */
    if (out == NULL || !smtpx__mem_valid(mem))
        return SMTPX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (mem == NULL)
        mem = smtpx__mem_default();
    r = smtpx__calloc(mem, 1, sizeof(*r));
    if (r == NULL)
        return SMTPX_ERR_NOMEM;
    r->mem = *mem;
    r->is_static = kind;
    if (pipe(r->pipe) != 0) {
        smtpx__free(mem, r);
        return SMTPX_ERR_IO;
    }
    smtpx__posix_fd_setup(r->pipe[0]);
    smtpx__posix_fd_setup(r->pipe[1]);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cond, NULL);
    if (kind == RES_THREAD) {
        if (pthread_create(&r->thread, NULL, res_worker, r) != 0) {
            smtpx_resolver_free(r);
            return SMTPX_ERR_IO;
        }
        r->has_thread = 1;
    }
#ifdef SMTPX_HAVE_CARES
    if (kind == RES_ARES) {
        int rc = ares_open(r, test);
        if (rc != 0) {
            smtpx_resolver_free(r);
            return rc;
        }
    }
#endif
    *out = r;
    return 0;
}

int smtpx_resolver_new(smtpx_resolver **out, const smtpx_mem *mem)
{
#ifdef SMTPX_HAVE_CARES
    return res_new(out, mem, RES_ARES, NULL);
#else
    return res_new(out, mem, RES_THREAD, NULL);
#endif
}

int smtpx__resolver_new_thread(smtpx_resolver **out, const smtpx_mem *mem)
{
    return res_new(out, mem, RES_THREAD, NULL);
}

int smtpx__resolver_new_cares(smtpx_resolver **out, const smtpx_mem *mem,
                              const char *servers, int timeout_ms, int tries)
{
#ifdef SMTPX_HAVE_CARES
    ares_test t;

    t.servers = servers;
    t.timeout_ms = timeout_ms;
    t.tries = tries;
    return res_new(out, mem, RES_ARES, &t);
#else
    (void)mem;
    (void)servers;
    (void)timeout_ms;
    (void)tries;
    if (out != NULL)
        *out = NULL;
    return SMTPX_ERR_NOT_SUPPORTED;
#endif
}

int smtpx__resolver_uses_cares(const smtpx_resolver *r)
{
    return r->is_static == RES_ARES;
}

int smtpx_resolver_new_static(smtpx_resolver **out, const smtpx_mem *mem)
{
    return res_new(out, mem, RES_STATIC, NULL);
}

static void res_free_list(smtpx_resolver *r, rq_query *q)
{
    while (q != NULL) {
        rq_query *next = q->next;
        smtpx__free(&r->mem, q);
        q = next;
    }
}

void smtpx_resolver_free(smtpx_resolver *r)
{
    smtpx_mem mem;

    if (r == NULL)
        return;
    if (r->has_thread) {
        pthread_mutex_lock(&r->mu);
        r->stop = 1;
        pthread_cond_signal(&r->cond);
        pthread_mutex_unlock(&r->mu);
        /* The worker finishes the query it runs (the C library's
         * resolver cannot be interrupted), then leaves. */
        pthread_join(r->thread, NULL);
    }
#ifdef SMTPX_HAVE_CARES
    if (r->has_channel) {
        /* Pending queries are answered (ARES_EDESTRUCTION) into the done
         * list, freed below without their callbacks. */
        ares_destroy(r->channel);
        ares_library_cleanup();
    }
    if (r->is_static == RES_ARES)
        close(r->epfd);
#endif
    res_free_list(r, r->todo);
    res_free_list(r, r->busy);
    res_free_list(r, r->done);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cond);
    close(r->pipe[0]);
    close(r->pipe[1]);
    mem = r->mem;
    smtpx__free(&mem, r->table);
    smtpx__free(&mem, r);
}

int smtpx_resolver_query(smtpx_resolver *r, const char *name, int type,
                         smtpx_resolve_fn *fn, void *user_data)
{
    rq_query *q;
    size_t i, n;

    if (r == NULL || name == NULL || fn == NULL ||
        (type != SMTPX_RR_MX && type != SMTPX_RR_A))
        return SMTPX_ERR_INVALID_ARGUMENT;
    n = strlen(name);
    if (n == 0 || n >= RES_NAME_SIZE)
        return SMTPX_ERR_INVALID_ARGUMENT;
    for (i = 0; i < n; i++)
        if ((unsigned char)name[i] <= 0x20 || name[i] == 0x7f)
            return SMTPX_ERR_INVALID_ARGUMENT;
    q = smtpx__calloc(&r->mem, 1, sizeof(*q));
    if (q == NULL)
        return SMTPX_ERR_NOMEM;
    memcpy(q->name, name, n + 1);
    if (n > 1 && q->name[n - 1] == '.')
        q->name[n - 1] = '\0';
    q->type = type;
    q->fn = fn;
    q->ud = user_data;
    pthread_mutex_lock(&r->mu);
    r->pending++;
    if (r->is_static == RES_STATIC) {
        res_static_answer(r, q);
        res_push(&r->done, &r->done_tail, q);
        res_signal(r);
#ifdef SMTPX_HAVE_CARES
    } else if (r->is_static == RES_ARES) {
        q->owner = r;
        q->next = r->fly;
        r->fly = q;
        pthread_mutex_unlock(&r->mu);
        /* The callback may run at once: it only files the answer. */
        if (type == SMTPX_RR_MX) {
            ares_query(r->channel, q->name, ns_c_in, ns_t_mx, ares_mx_cb, q);
        } else {
            struct ares_addrinfo_hints h;
            memset(&h, 0, sizeof(h));
            h.ai_family = AF_UNSPEC;
            ares_getaddrinfo(r->channel, q->name, NULL, &h, ares_addr_cb, q);
        }
        return 0;
#endif
    } else {
        res_push(&r->todo, &r->todo_tail, q);
        pthread_cond_signal(&r->cond);
    }
    pthread_mutex_unlock(&r->mu);
    return 0;
}

void smtpx_resolver_cancel(smtpx_resolver *r, void *user_data)
{
    rq_query *q;

    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    for (q = r->todo; q != NULL; q = q->next)
        if (q->ud == user_data)
            q->cancelled = 1;
    if (r->busy != NULL && r->busy->ud == user_data)
        r->busy->cancelled = 1;
    for (q = r->done; q != NULL; q = q->next)
        if (q->ud == user_data)
            q->cancelled = 1;
    for (q = r->fly; q != NULL; q = q->next)
        if (q->ud == user_data)
            q->cancelled = 1;
    pthread_mutex_unlock(&r->mu);
}

int smtpx_resolver_fd(const smtpx_resolver *r)
{
    if (r == NULL)
        return -1;
#ifdef SMTPX_HAVE_CARES
    if (r->is_static == RES_ARES)
        return r->epfd;
#endif
    return r->pipe[0];
}

uint64_t smtpx_resolver_expiry(const smtpx_resolver *r)
{
#ifdef SMTPX_HAVE_CARES
    if (r != NULL && r->is_static == RES_ARES && r->pending > 0) {
        struct timeval tv, *t = ares_timeout(r->channel, NULL, &tv);
        struct timespec ts;
        uint64_t now;

        if (t == NULL)
            return 0;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
        return now + (uint64_t)t->tv_sec * 1000u +
               (uint64_t)t->tv_usec / 1000u + 1;
    }
#endif
    (void)r;
    return 0; /* the worker keeps its own time */
}

size_t smtpx_resolver_pending(const smtpx_resolver *r)
{
    return r != NULL ? r->pending : 0;
}

int smtpx_resolver_process(smtpx_resolver *r)
{
    rq_query *list, *q;
    char drain[64];
    int n = 0;

    if (r == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
#ifdef SMTPX_HAVE_CARES
    if (r->is_static == RES_ARES)
        ares_run(r);
#endif
    while (read(r->pipe[0], drain, sizeof(drain)) > 0)
        ;
    pthread_mutex_lock(&r->mu);
    list = r->done;
    r->done = r->done_tail = NULL;
    pthread_mutex_unlock(&r->mu);
    while ((q = list) != NULL) {
        list = q->next;
        pthread_mutex_lock(&r->mu);
        r->pending--;
        pthread_mutex_unlock(&r->mu);
        /* A callback may cancel queries still in this list. */
        if (!q->cancelled) {
            q->fn(r, q->status, q->status == 0 ? q->rr : NULL,
                  q->status == 0 ? q->n : 0, q->ud);
            n++;
        }
        smtpx__free(&r->mem, q);
    }
    return n;
}
