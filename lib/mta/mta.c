/*
 * mta - the delivery engine: routes the recipients of queued messages,
 * delivers them over many connections at once in one thread, records each
 * result in the queue, retries with back-off, and sends reports.
 *
 * Exports smtpx_mta_new(), _free(), _run_once(), _run(), _wake(), _flush()
 * and _stop() of <libsmtpx/mta.h>.
 *
 * Pieces:
 *   msg   a queued message taken from the queue for one attempt; it counts
 *         its jobs and is given back (state saved first) when the last
 *         one is done.
 *   job   the recipients of one message that go to one destination: one
 *         transaction.
 *   dest  a destination (a domain, the smarthost, or local delivery): its
 *         route (MX hosts, RFC 5321 5.1, resolved once per attempt), its
 *         waiting jobs and its connections.
 *   conn  one connection: address lookup, non-blocking connect, the
 *         session set-up of the attempt module, then transactions until
 *         the destination has no more jobs or the per-connection limit is
 *         reached.  Connection failures move on to the next address, then
 *         the next MX host.
 *
 * Results: 2xx delivered, 5xx failed, 4xx / time-out / lost connection /
 * unknown outcome deferred (an unknown outcome is tried again: RFC 5321
 * 6.1 prefers a duplicate to a loss).  The state of a message is saved
 * after each of its jobs, before it can be tried again; a message whose
 * recipients are all delivered without a report to send is removed at
 * once (the removal is as durable as a state write).
 *
 * With an outbox in its options (<libsmtpx/ack.h>), the engine also runs
 * the outbox's deadlines: each round resends what is due into the queue
 * and gives up what has run out of resends, and the outbox's next
 * deadline bounds the wait.  Its results about the outbox's copies go to
 * the outbox before any report is made (mta_outbox): a failure fails the
 * recipient there (and is reported to the sender once), a local delivery
 * acknowledges it, and the success reports ("delivered", "relayed") the
 * outbox asked for are not sent.  A message cancelled meanwhile (the
 * outbox's copy of a finished message) is removed untried.
 *
 * One thread runs the engine; the only things other threads (or signal
 * handlers) do are smtpx_queue_commit() and smtpx_mta_wake/_flush/_stop,
 * which set a flag and write a byte to a pipe.  Local deliveries are the
 * exception: they block (a command may run for minutes), so their jobs go
 * to worker threads (mta_local_main), which read the message and deliver
 * it but touch nothing of the engine's; each result comes back through
 * a list and the wake-up pipe, and is recorded on the engine's thread
 * (mta_local_collect).  A message with a job there is in flight, so the
 * engine neither gives it back nor stops until the job is back.
 */
#define _DEFAULT_SOURCE /* strcasecmp, struct addrinfo flags */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/epoll.h>
#endif
#include <time.h>
#include <unistd.h>

#include <libsmtpx/ack.h>
#include <libsmtpx/msg.h>
#include <libsmtpx/posix.h>
#include <libsmtpx/transport.h>

#include "base/mem.h"
#include "io/posix.h"
#include "mta/attempt.h"
#include "mta/dsn.h"
#include "mta/engine.h"
#include "mta/outbox.h"
#include "proto/cmd.h"
#include "mta/queue.h"
#include "mta/route.h"

#define MTA_TAKE_MAX       256 /* messages taken from the queue per round */
#define MTA_IN_FLIGHT      4096
#define MTA_PIPELINE       4 /* transactions queued on a connection at once */
#define MTA_MAX_ADDRS      16
#define MTA_REPLY_TEXT     512
#define MTA_MAX_LOCAL      2 /* local deliveries at once, by default */
#define MTA_CONNS_PER_DEST 5 /* connections per destination, by default */

typedef struct mta_msg mta_msg;
typedef struct mta_job mta_job;
typedef struct mta_dest mta_dest;
typedef struct mta_conn mta_conn;

struct mta_msg {
    smtpx__qmsg *q;
    size_t jobs;            /* jobs not yet done */
    int changed;            /* a recipient's state changed in this attempt */
    unsigned char *relayed; /* per recipient: 1 relayed to a server without
                               DSN (ours to report), 2 it took the DSN */
};

/* A local delivery's result, made on a worker thread. */
typedef struct mta_lres {
    int state; /* SMTPX_QRCPT_* */
    smtpx_reply r;
    char text[MTA_REPLY_TEXT];
} mta_lres;

struct mta_job {
    mta_msg *mm;
    size_t *idx; /* recipients */
    size_t n;
    smtpx_txn *txn;
    int fd;                  /* content, while its transaction runs */
    mta_lres *res;           /* a local job's results, one per recipient */
    smtpx_msg_downgrade *dg; /* the content made 7-bit, or NULL */
    mta_job *next;
};

enum { ROUTE_NEW, ROUTE_RESOLVING, ROUTE_READY, ROUTE_FAILED };

struct mta_dest {
    char key[256]; /* the domain, lower case */
    int local;
    int smarthost;
    int route;
    smtpx_mta *m;
    smtpx__route rt; /* the hosts, or (ROUTE_FAILED) what every job gets */
    uint16_t port;
    int tls_level;
    mta_job *jobs, *jobs_tail;
    size_t conns;
    size_t cap;       /* connections at most (a refusal came); 0: limits */
    size_t next_host; /* where the next connection starts */
    mta_dest *next;
};

enum { CONN_RESOLVING, CONN_CONNECTING, CONN_SESSION };

struct mta_conn {
    smtpx_mta *m;
    mta_dest *d;
    int state;
    size_t host;                   /* index in d->rt.hosts */
    size_t start, tried;           /* the first host, hosts given up */
    char addrs[MTA_MAX_ADDRS][64]; /* the host's addresses */
    size_t naddrs, addr;
    int fd;            /* while connecting; then the transport owns it */
    int sock;          /* the connection's socket, for poll */
    uint64_t deadline; /* connecting */
    smtpx_transport *t;
    smtpx_client *c;
    smtpx__attempt a;
    int wait;
    int ready;        /* READY said: transactions may go */
    int quit;         /* QUIT queued */
    int sent_any;     /* a transaction was queued */
    size_t msgs;      /* transactions queued so far */
    mta_job *txns;    /* transactions queued, not done */
    smtpx_reply last; /* why the last address failed */
    char last_text[MTA_REPLY_TEXT];
    mta_conn *next;
};

struct smtpx_mta {
    smtpx_queue *q;
    const smtpx_mem *mem;
    smtpx_mta_opts o;
    char smart_host[256];
    char smart_port[16];
    int wake[2];
    volatile sig_atomic_t stop_req, flush_req;
    int stopping;
    mta_dest *dests;
    mta_conn *conns;
    size_t nconns;
    size_t in_flight;     /* messages taken */
    size_t in_flight_max; /* ... at most (MTA_IN_FLIGHT) */
    struct pollfd *pfd;
    mta_conn **polled; /* the connection of each pfd[2 + i] */
    size_t cappfd;
    int freeing;
    uint64_t next_ms; /* the next deadline (mta_prepare) */
    int epfd;         /* smtpx_mta_fd(), or -1 */
    int *ep;          /* descriptors in the epoll set */
    size_t nep, capep;
    /* Local deliveries: jobs for the workers (ltodo) and back from them
     * (ldone), under lmu; lbusy (the engine's alone) counts the jobs out
     * of the engine's hands, ltodo's too. */
    pthread_mutex_t lmu;
    pthread_cond_t lcv;
    pthread_t *lw;
    size_t nlw;
    int ltried; /* the workers were made (or could not be) */
    int lquit;
    mta_job *ltodo, *ltodo_tail, *ldone;
    size_t lbusy;
};

/* ---- small things -------------------------------------------------------- */

static void mta_log(smtpx_mta *m, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void mta_log(smtpx_mta *m, int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (m->o.on_log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    m->o.on_log(level, line, m->o.log_data);
}

static void mta_reply(smtpx_reply *r, char *buf, size_t size, int code, int e0,
                      int e1, int e2, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 8, 9)))
#endif
    ;

static void mta_reply(smtpx_reply *r, char *buf, size_t size, int code, int e0,
                      int e1, int e2, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    r->code = code;
    r->enh[0] = (uint16_t)e0;
    r->enh[1] = (uint16_t)e1;
    r->enh[2] = (uint16_t)e2;
    r->text = buf;
}

static const char *mta_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');

    return at != NULL ? at + 1 : "";
}

static void mta_signal(smtpx_mta *m)
{
    int saved = errno;
    ssize_t w = write(m->wake[1], "", 1);

    (void)w;
    errno = saved;
}

static void mta_notify(void *ud)
{
    mta_signal(ud);
}

void smtpx_mta_wake(smtpx_mta *m)
{
    if (m != NULL)
        mta_signal(m);
}

void smtpx_mta_flush(smtpx_mta *m)
{
    if (m == NULL)
        return;
    m->flush_req = 1;
    mta_signal(m);
}

void smtpx_mta_stop(smtpx_mta *m)
{
    if (m == NULL)
        return;
    m->stop_req = 1;
    mta_signal(m);
}

/* ---- messages and their end of attempt ----------------------------------- */

static int mta_notify_bit(const smtpx__qrcpt *r, unsigned bit)
{
    if (r->notify & SMTPX_DSN_NOTIFY_NEVER)
        return 0;
    if (r->notify == 0) /* not given: failures and delays (RFC 3461 4.1) */
        return bit == SMTPX_DSN_NOTIFY_FAILURE || bit == SMTPX_DSN_NOTIFY_DELAY;
    return (r->notify & bit) != 0;
}

/* mta_report - queue a report of kind for the recipients that need one;
 * marks them reported.  A failure to queue it leaves them unmarked (the
 * report is tried at the next attempt). */
static void mta_report(smtpx_mta *m, mta_msg *mm, int kind, int64_t now)
{
    smtpx__qmsg *q = mm->q;
    size_t *idx, n = 0, i;
    int *rel, fd, rc;
    smtpx__dsn_opts o;
    char id[32];

    idx = smtpx__calloc(m->mem, q->nrcpts, sizeof(*idx));
    rel = smtpx__calloc(m->mem, q->nrcpts, sizeof(*rel));
    if (idx == NULL || rel == NULL)
        goto out;
    for (i = 0; i < q->nrcpts; i++) {
        smtpx__qrcpt *r = &q->rcpts[i];
        if (kind == SMTPX__DSN_FAILED && r->state == SMTPX_QRCPT_FAILED &&
            !(r->reported & SMTPX__QR_REPORTED)) {
            if (mta_notify_bit(r, SMTPX_DSN_NOTIFY_FAILURE))
                idx[n++] = i;
            else
                r->reported |= SMTPX__QR_REPORTED;
        } else if (kind == SMTPX__DSN_DELIVERED &&
                   r->state == SMTPX_QRCPT_DELIVERED &&
                   !(r->reported & SMTPX__QR_REPORTED)) {
            if ((r->notify & SMTPX_DSN_NOTIFY_SUCCESS) &&
                !(r->notify & SMTPX_DSN_NOTIFY_NEVER) &&
                !(mm->relayed && mm->relayed[i] == 2)) {
                rel[n] = mm->relayed ? mm->relayed[i] == 1 : 0;
                idx[n++] = i;
            } else {
                r->reported |= SMTPX__QR_REPORTED;
            }
        } else if (kind == SMTPX__DSN_DELAYED &&
                   (r->state == SMTPX_QRCPT_DEFERRED) &&
                   !(r->reported & SMTPX__QR_DELAYED)) {
            if (mta_notify_bit(r, SMTPX_DSN_NOTIFY_DELAY))
                idx[n++] = i;
            else
                r->reported |= SMTPX__QR_DELAYED;
        }
    }
    if (n == 0)
        goto out;
    memset(&o, 0, sizeof(o));
    o.hostname = m->o.hostname;
    o.postmaster = m->o.postmaster;
    o.full_max = m->o.bounce_full_max ? m->o.bounce_full_max : 50000;
    o.now = now;
    o.retry_until = q->arrival + smtpx__queue_opts(m->q)->expire_s;
    fd = smtpx__queue_open_content(m->q, q);
    rc = smtpx__dsn_queue(m->q, q, kind, idx, rel, n, fd, &o, id, sizeof(id));
    if (fd >= 0)
        close(fd);
    if (rc != 0) {
        mta_log(m, SMTPX_LOG_ERROR, "%s: cannot queue a report: %s", q->id,
                smtpx_strerror(rc));
        goto out;
    }
    if (id[0] != '\0')
        mta_log(m, SMTPX_LOG_INFO, "%s: %s report %s queued to <%s>", q->id,
                kind == SMTPX__DSN_FAILED    ? "failure"
                : kind == SMTPX__DSN_DELAYED ? "delay"
                                             : "success",
                id, q->from[0] ? q->from : m->o.postmaster);
    else
        mta_log(m, SMTPX_LOG_NOTICE,
                "%s: report about a message from <> dropped (no postmaster)",
                q->id);
    for (i = 0; i < n; i++)
        q->rcpts[idx[i]].reported |=
            kind == SMTPX__DSN_DELAYED ? SMTPX__QR_DELAYED : SMTPX__QR_REPORTED;
    mm->changed = 1;
out:
    smtpx__free(m->mem, idx);
    smtpx__free(m->mem, rel);
}

/* mta_outbox - the results of a copy the outbox sent go to the outbox
 * itself rather than as reports to the sender: a failure makes the
 * recipient failed (and is still reported to the sender, once), a local
 * delivery acknowledges it, "relayed" changes nothing; the success
 * reports the outbox asked for are not sent */
static void mta_outbox(smtpx_mta *m, mta_msg *mm)
{
    smtpx__qmsg *q = mm->q;
    unsigned char *quiet;
    size_t i, n = 0;
    int *what, rc;

    what = smtpx__calloc(m->mem, q->nrcpts, sizeof(*what));
    quiet = smtpx__calloc(m->mem, q->nrcpts, 1);
    if (what == NULL || quiet == NULL)
        goto out;
    for (i = 0; i < q->nrcpts; i++) {
        const smtpx__qrcpt *r = &q->rcpts[i];
        int rel = mm->relayed != NULL ? mm->relayed[i] : 0;
        if (r->reported & SMTPX__QR_REPORTED)
            continue;
        if (r->state == SMTPX_QRCPT_FAILED)
            what[i] = SMTPX__OUTBOX_FAILED;
        else if (r->state == SMTPX_QRCPT_DELIVERED && rel != 2)
            what[i] =
                rel == 1 ? SMTPX__OUTBOX_RELAYED : SMTPX__OUTBOX_DELIVERED;
        n += what[i] != 0;
    }
    if (n == 0)
        goto out;
    rc = smtpx__outbox_engine(m->o.outbox, q, what, quiet);
    if (rc < 0)
        mta_log(m, SMTPX_LOG_ERROR, "%s: cannot record in the outbox: %s",
                q->id, smtpx_strerror(rc));
    for (i = 0; i < q->nrcpts; i++)
        if (quiet[i]) {
            q->rcpts[i].reported |= SMTPX__QR_REPORTED;
            mm->changed = 1;
            mta_log(m, SMTPX_LOG_INFO,
                    "%s: to=<%s> %s: for the outbox, no report to <%s>", q->id,
                    q->rcpts[i].addr, smtpx_qrcpt_state_name(q->rcpts[i].state),
                    q->from);
        }
out:
    smtpx__free(m->mem, what);
    smtpx__free(m->mem, quiet);
}

/* mta_all_reported - every final recipient has had its report (or
 * wanted none) */
static int mta_all_reported(const smtpx__qmsg *q)
{
    size_t i;

    for (i = 0; i < q->nrcpts; i++)
        if ((q->rcpts[i].state == SMTPX_QRCPT_FAILED ||
             q->rcpts[i].state == SMTPX_QRCPT_DELIVERED) &&
            !(q->rcpts[i].reported & SMTPX__QR_REPORTED))
            return 0;
    return 1;
}

/* mta_msg_done - the attempt of a message is over: expire, report, save,
 * give back */
static void mta_msg_done(smtpx_mta *m, mta_msg *mm)
{
    smtpx__qmsg *q = mm->q;
    const smtpx_queue_opts *qo = smtpx__queue_opts(m->q);
    int64_t now = smtpx__queue_now(m->q);
    unsigned max_att = 0;
    size_t i, deferred = 0;
    int rc, done;

    for (i = 0; i < q->nrcpts; i++) {
        smtpx__qrcpt *r = &q->rcpts[i];
        if (r->state == SMTPX_QRCPT_DEFERRED &&
            now - q->arrival >= (int64_t)qo->expire_s) {
            smtpx_reply why;
            char text[MTA_REPLY_TEXT];
            mta_reply(&why, text, sizeof(text), 550, 5, 4, 7,
                      "delivery time expired; last: %d %s", r->code,
                      r->text ? r->text : "");
            smtpx__qrcpt_set_reply(r, &why, r->remote, m->mem);
            r->state = SMTPX_QRCPT_FAILED;
            mm->changed = 1;
        }
        if (r->state == SMTPX_QRCPT_DEFERRED ||
            r->state == SMTPX_QRCPT_PENDING) {
            deferred++;
            if (r->attempts > max_att)
                max_att = r->attempts;
        }
    }
    if (!q->deleted && !mta_all_reported(q) && m->o.outbox != NULL)
        mta_outbox(m, mm);
    if (!q->deleted && !mta_all_reported(q)) {
        /* The report is committed before the state that records it. */
        mta_report(m, mm, SMTPX__DSN_FAILED, now);
        mta_report(m, mm, SMTPX__DSN_DELIVERED, now);
    }
    if (!q->deleted && deferred > 0 && qo->delay_warn_s > 0 &&
        now - q->arrival >= (int64_t)qo->delay_warn_s)
        mta_report(m, mm, SMTPX__DSN_DELAYED, now);
    done = q->deleted || (deferred == 0 && mta_all_reported(q));
    /* The next attempt from now rounded up: never sooner than the
     * back-off after this one, at most a second later. */
    if (!done && deferred > 0 && max_att > 0 && mm->changed)
        q->next_attempt =
            smtpx__queue_now_up(m->q) +
            smtpx__attempt_backoff(qo->retry_min_s, qo->retry_max_s, max_att);
    if (!done && deferred == 0) {
        /* A report could not be queued: try it again later. */
        q->next_attempt = smtpx__queue_now_up(m->q) + qo->retry_min_s;
        mm->changed = 1;
    }
    /* A finished message needs no state write: its removal (unlink and
     * directory sync) is the durable record. */
    if (!done && mm->changed) {
        rc = smtpx__queue_save(m->q, q);
        if (rc != 0)
            mta_log(m, SMTPX_LOG_ERROR,
                    "%s: cannot save the delivery state: %s", q->id,
                    smtpx_strerror(rc));
    }
    smtpx__free(m->mem, mm->relayed);
    m->in_flight--;
    smtpx__queue_release(m->q, q, !done);
    smtpx__free(m->mem, mm);
}

/* mta_job_done - a job's recipients have their results */
static void mta_job_done(smtpx_mta *m, mta_job *j)
{
    mta_msg *mm = j->mm;

    if (j->fd >= 0)
        close(j->fd);
    smtpx_txn_free(j->txn);
    smtpx_msg_downgrade_free(j->dg);
    smtpx__free(m->mem, j->idx);
    smtpx__free(m->mem, j->res);
    smtpx__free(m->mem, j);
    if (--mm->jobs == 0) {
        mta_msg_done(m, mm);
        return;
    }
    /* Other jobs of this message go on: save what this one did, so that a
     * crash does not deliver its recipients again. */
    if (mm->changed) {
        int rc = smtpx__queue_save(m->q, mm->q);
        if (rc != 0)
            mta_log(m, SMTPX_LOG_ERROR, "%s: cannot save the state: %s",
                    mm->q->id, smtpx_strerror(rc));
    }
}

/* mta_set - record one recipient's result */
static void mta_set(smtpx_mta *m, mta_msg *mm, size_t i, int state,
                    const smtpx_reply *r, const char *remote)
{
    smtpx__qrcpt *rc = &mm->q->rcpts[i];

    rc->state = state;
    rc->attempts++;
    if (r != NULL)
        smtpx__qrcpt_set_reply(rc, r, remote, m->mem);
    mm->changed = 1;
    mta_log(m,
            state == SMTPX_QRCPT_DELIVERED ? SMTPX_LOG_INFO : SMTPX_LOG_NOTICE,
            "%s: to=<%s> relay=%s attempts=%u status=%s (%d %s)", mm->q->id,
            rc->addr, remote && remote[0] ? remote : "none", rc->attempts,
            state == SMTPX_QRCPT_DELIVERED ? "sent"
            : state == SMTPX_QRCPT_FAILED  ? "bounced"
                                           : "deferred",
            r ? r->code : 0, r && r->text ? r->text : "");
}

/* mta_job_fail - every recipient of a job gets the same reply */
static void mta_job_fail(smtpx_mta *m, mta_job *j, const smtpx_reply *r,
                         const char *remote)
{
    size_t i;

    for (i = 0; i < j->n; i++)
        mta_set(m, j->mm, j->idx[i],
                r->code >= 500 ? SMTPX_QRCPT_FAILED : SMTPX_QRCPT_DEFERRED, r,
                remote);
    mta_job_done(m, j);
}

/* ---- destinations -------------------------------------------------------- */

/* mta_tls_policy - the TLS level for MX delivery to domain: the first
 * policy that matches it ("example.org", or ".example.org" for every
 * subdomain), else mx_tls_level */
static int mta_tls_policy(const smtpx_mta *m, const char *domain)
{
    size_t i, n = strlen(domain);

    for (i = 0; i < m->o.ntls_policies; i++) {
        const char *p = m->o.tls_policies[i].domain;
        size_t k = p != NULL ? strlen(p) : 0;
        if (k == 0)
            continue;
        if ((p[0] == '.' && n > k && strcasecmp(domain + n - k, p) == 0) ||
            strcasecmp(domain, p) == 0)
            return m->o.tls_policies[i].level;
    }
    return m->o.mx_tls_level;
}

static mta_dest *mta_dest_get(smtpx_mta *m, const char *domain, int local)
{
    mta_dest *d;
    char key[256];
    size_t i;

    if (m->o.smarthost != NULL && !local)
        domain = "[smarthost]";
    for (i = 0; domain[i] != '\0' && i < sizeof(key) - 1; i++)
        key[i] =
            (char)(domain[i] >= 'A' && domain[i] <= 'Z' ? domain[i] - 'A' + 'a'
                                                        : domain[i]);
    key[i] = '\0';
    if (local)
        snprintf(key, sizeof(key), "[local]");
    for (d = m->dests; d != NULL; d = d->next)
        if (strcmp(d->key, key) == 0)
            return d;
    d = smtpx__calloc(m->mem, 1, sizeof(*d));
    if (d == NULL)
        return NULL;
    memcpy(d->key, key, sizeof(key));
    d->m = m;
    d->local = local;
    d->smarthost = m->o.smarthost != NULL && !local;
    d->route = ROUTE_NEW;
    if (d->smarthost) {
        snprintf(d->rt.hosts[0].name, sizeof(d->rt.hosts[0].name), "%s",
                 m->smart_host);
        d->rt.nhosts = 1;
        d->route = ROUTE_READY;
        d->port = (uint16_t)atoi(m->smart_port);
        d->tls_level = m->o.smarthost_tls_level;
    } else {
        d->port = m->o.mx_port ? m->o.mx_port : 25;
        d->tls_level = mta_tls_policy(m, d->key);
    }
    d->next = m->dests;
    m->dests = d;
    return d;
}

static void mta_dest_free_idle(smtpx_mta *m)
{
    mta_dest **pd = &m->dests, *d;

    while ((d = *pd) != NULL) {
        if (d->jobs == NULL && d->conns == 0 && d->route != ROUTE_RESOLVING) {
            *pd = d->next;
            smtpx__free(m->mem, d);
        } else {
            pd = &d->next;
        }
    }
}

static int mta_is_local(const smtpx_mta *m, const char *domain)
{
    size_t i;

    for (i = 0; i < m->o.nlocal; i++)
        if (strcasecmp(m->o.local_domains[i], domain) == 0)
            return 1;
    return 0;
}

/* mta_mx_answer - the route from the MX answer (route.c) */
static void mta_mx_answer(smtpx_resolver *r, int status, const smtpx_rr *rr,
                          size_t n, void *ud)
{
    mta_dest *d = ud;

    (void)r;
    smtpx__route_mx(&d->rt, d->key, d->m->o.hostname, status, rr, n, NULL,
                    NULL);
    d->route = d->rt.fail.code != 0 ? ROUTE_FAILED : ROUTE_READY;
}

/* ---- local delivery ------------------------------------------------------ */

typedef struct mta_reader {
    int fd;
    uint64_t left;
    const char *head; /* a header to give first */
    size_t head_len;
} mta_reader;

static smtpx_ssize mta_read(void *ctx, uint8_t *buf, size_t len)
{
    mta_reader *r = ctx;
    ssize_t n;

    if (r->head_len > 0) {
        size_t k = r->head_len < len ? r->head_len : len;
        memcpy(buf, r->head, k);
        r->head += k;
        r->head_len -= k;
        return (smtpx_ssize)k;
    }
    if (r->left == 0)
        return 0;
    if (len > r->left)
        len = (size_t)r->left;
    do {
        n = read(r->fd, buf, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return SMTPX_ERR_IO;
    if (n == 0)
        return SMTPX_ERR_IO; /* the file is shorter than it was */
    r->left -= (uint64_t)n;
    return n;
}

/* mta_local_part - the local part as a safe file name, lower case */
static int mta_local_part(const char *addr, char *out, size_t size)
{
    const char *at = strrchr(addr, '@');
    size_t n = at ? (size_t)(at - addr) : strlen(addr), i;

    if (n == 0 || n >= size || addr[0] == '.')
        return -1;
    for (i = 0; i < n; i++) {
        char c = addr[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '-' || c == '_' || c == '+'))
            return -1;
        out[i] = c;
    }
    out[n] = '\0';
    return 0;
}

/* mta_local_deliver - deliver recipient i of q locally into res.  It runs
 * on a worker thread (or the engine's, without workers): it reads q's
 * sender, id, size and recipient i's address, which do not change while
 * the message is in flight, and the engine's options, and nothing else of
 * the engine. */
static void mta_local_deliver(smtpx_mta *m, const smtpx__qmsg *q, size_t i,
                              mta_lres *res)
{
    const char *addr = q->rcpts[i].addr;
    char lp[256], path[4096], head[1400], *text = res->text;
    const size_t tsize = sizeof(res->text);
    smtpx_reply r;
    mta_reader rd;
    int rc, hn;

    memset(&r, 0, sizeof(r));
    res->state = SMTPX_QRCPT_FAILED;
    if (mta_local_part(addr, lp, sizeof(lp)) < 0) {
        mta_reply(&res->r, text, tsize, 550, 5, 1, 1,
                  "<%s>: no such local user", addr);
        return;
    }
    rd.fd = smtpx__queue_open_content(m->q, q);
    rd.left = q->size;
    if (rd.fd < 0) {
        mta_reply(&res->r, text, tsize, 451, 4, 3, 0,
                  "cannot read the queued message: %s", strerror(errno));
        res->state = SMTPX_QRCPT_DEFERRED;
        return;
    }
    hn = snprintf(head, sizeof(head),
                  "Return-Path: <%s>\r\nDelivered-To: %s\r\n", q->from, addr);
    rd.head = head;
    rd.head_len = hn > 0 && (size_t)hn < sizeof(head) ? (size_t)hn : 0;
    switch (m->o.local_kind) {
    case SMTPX_LOCAL_MAILDIR: {
        smtpx_maildir *md = NULL;
        smtpx_maildir_msg *msg = NULL;
        uint8_t buf[16384];
        smtpx_ssize got;

        (void)mkdir(m->o.local_path, 0700);
        snprintf(path, sizeof(path), "%s/%s", m->o.local_path, lp);
        rc = smtpx_maildir_open(&md, path, SMTPX_MAILDIR_CREATE, m->mem);
        if (rc == 0)
            rc = smtpx_maildir_begin(md, &msg);
        while (rc == 0 && (got = mta_read(&rd, buf, sizeof(buf))) != 0)
            rc =
                got < 0 ? (int)got : smtpx_maildir_write(msg, buf, (size_t)got);
        if (msg != NULL) {
            if (rc == 0)
                rc = smtpx_maildir_commit(msg, NULL, 0);
            else
                smtpx_maildir_abort(msg);
        }
        smtpx_maildir_free(md);
        if (rc == 0)
            mta_reply(&r, text, tsize, 250, 2, 0, 0, "delivered to maildir");
        else
            mta_reply(&r, text, tsize, 451, 4, 3, 0,
                      "maildir delivery failed: %s", smtpx_strerror(rc));
        break;
    }
    case SMTPX_LOCAL_MBOX:
        (void)mkdir(m->o.local_path, 0700);
        snprintf(path, sizeof(path), "%s/%s", m->o.local_path, lp);
        rc = smtpx_mbox_deliver(path, q->from, smtpx__queue_now(m->q), mta_read,
                                &rd, SMTPX_MBOX_CREATE);
        if (rc == 0)
            mta_reply(&r, text, tsize, 250, 2, 0, 0, "delivered to mailbox");
        else
            mta_reply(&r, text, tsize, 451, 4, 3, 0,
                      "mailbox delivery failed: %s", smtpx_strerror(rc));
        break;
    case SMTPX_LOCAL_PIPE: {
        char e_sender[1100], e_rcpt[1100], e_user[300], e_domain[300], e_id[64];
        const char *env[6];
        snprintf(e_sender, sizeof(e_sender), "SENDER=%s", q->from);
        snprintf(e_rcpt, sizeof(e_rcpt), "RECIPIENT=%s", addr);
        snprintf(e_user, sizeof(e_user), "USER=%s", lp);
        snprintf(e_domain, sizeof(e_domain), "DOMAIN=%s", mta_domain(addr));
        snprintf(e_id, sizeof(e_id), "QUEUE_ID=%s", q->id);
        env[0] = e_sender;
        env[1] = e_rcpt;
        env[2] = e_user;
        env[3] = e_domain;
        env[4] = e_id;
        env[5] = NULL;
        rd.head_len = 0; /* the command gets the message as it came */
        smtpx_pipe_deliver(m->o.local_path, env, mta_read, &rd, 0, &r, text,
                           tsize);
        break;
    }
    default:
        mta_reply(&r, text, tsize, 550, 5, 3, 5,
                  "no local delivery configured");
    }
    close(rd.fd);
    res->r = r;
    res->state = r.code < 300   ? SMTPX_QRCPT_DELIVERED
                 : r.code < 500 ? SMTPX_QRCPT_DEFERRED
                                : SMTPX_QRCPT_FAILED;
}

/* mta_local_main - a worker: local jobs until told to quit */
static void *mta_local_main(void *arg)
{
    smtpx_mta *m = arg;
    mta_job *j;
    size_t i;

    pthread_mutex_lock(&m->lmu);
    for (;;) {
        while (m->ltodo == NULL && !m->lquit)
            pthread_cond_wait(&m->lcv, &m->lmu);
        if (m->lquit)
            break; /* what waits goes back untried (smtpx_mta_free) */
        j = m->ltodo;
        m->ltodo = j->next;
        if (m->ltodo == NULL)
            m->ltodo_tail = NULL;
        pthread_mutex_unlock(&m->lmu);
        for (i = 0; i < j->n; i++)
            mta_local_deliver(m, j->mm->q, j->idx[i], &j->res[i]);
        pthread_mutex_lock(&m->lmu);
        j->next = m->ldone;
        m->ldone = j;
        mta_signal(m);
    }
    pthread_mutex_unlock(&m->lmu);
    return NULL;
}

/* mta_local_start - the workers, made at the first local job; 0 if there
 * are none (then local jobs run on the engine's thread) */
static size_t mta_local_start(smtpx_mta *m)
{
    size_t n = m->o.max_local ? m->o.max_local : MTA_MAX_LOCAL;
    sigset_t all, old;

    if (m->ltried)
        return m->nlw;
    m->ltried = 1;
    m->lw = smtpx__calloc(m->mem, n, sizeof(*m->lw));
    if (m->lw == NULL)
        return 0;
    /* Signals are for the application's threads, not these. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (m->nlw = 0; m->nlw < n; m->nlw++)
        if (pthread_create(&m->lw[m->nlw], NULL, mta_local_main, m) != 0)
            break;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (m->nlw == 0)
        mta_log(m, SMTPX_LOG_WARNING,
                "cannot start local delivery threads: delivering locally "
                "on the engine's thread");
    return m->nlw;
}

/* mta_local_apply - record a local job's results and finish it */
static void mta_local_apply(smtpx_mta *m, mta_job *j)
{
    size_t i;

    for (i = 0; i < j->n; i++)
        mta_set(m, j->mm, j->idx[i], j->res[i].state, &j->res[i].r, NULL);
    mta_job_done(m, j);
}

/* mta_local_run - a local job: to a worker, or (none could be made, or no
 * memory for its results) delivered here and now */
static void mta_local_run(smtpx_mta *m, mta_job *j)
{
    mta_lres one;
    size_t i;

    j->next = NULL;
    if (mta_local_start(m) > 0 &&
        (j->res = smtpx__calloc(m->mem, j->n, sizeof(*j->res))) != NULL) {
        pthread_mutex_lock(&m->lmu);
        if (m->ltodo_tail != NULL)
            m->ltodo_tail->next = j;
        else
            m->ltodo = j;
        m->ltodo_tail = j;
        m->lbusy++;
        pthread_cond_signal(&m->lcv);
        pthread_mutex_unlock(&m->lmu);
        return;
    }
    for (i = 0; i < j->n; i++) {
        mta_local_deliver(m, j->mm->q, j->idx[i], &one);
        mta_set(m, j->mm, j->idx[i], one.state, &one.r, NULL);
    }
    mta_job_done(m, j);
}

/* mta_local_collect - record the results the workers sent back; with
 * reclaim, take back the jobs no worker has begun too (untried).  The
 * number of jobs still out of the engine's hands. */
static size_t mta_local_collect(smtpx_mta *m, int reclaim)
{
    mta_job *done, *todo = NULL, *rev = NULL, *j;
    size_t busy;

    if (m->nlw == 0)
        return 0;
    pthread_mutex_lock(&m->lmu);
    done = m->ldone;
    m->ldone = NULL;
    if (reclaim) {
        todo = m->ltodo;
        m->ltodo = m->ltodo_tail = NULL;
    }
    pthread_mutex_unlock(&m->lmu);
    /* The list is newest first: record them in the order they ended. */
    while ((j = done) != NULL) {
        done = j->next;
        j->next = rev;
        rev = j;
    }
    busy = m->lbusy;
    while ((j = rev) != NULL) {
        rev = j->next;
        busy--;
        mta_local_apply(m, j);
    }
    while ((j = todo) != NULL) {
        todo = j->next;
        busy--;
        mta_job_done(m, j); /* as the queue last recorded it */
    }
    m->lbusy = busy;
    return busy;
}

/* ---- connections --------------------------------------------------------- */

static void mta_conn_addr_answer(smtpx_resolver *r, int status,
                                 const smtpx_rr *rr, size_t n, void *ud);

static void mta_conn_next(mta_conn *c);

/* mta_conn_host_next - on to the next host, wrapping around: a connection
 * that started at a host of equal preference other than the first still
 * tries every host once */
static void mta_conn_host_next(mta_conn *c)
{
    size_t n = c->d->rt.nhosts ? c->d->rt.nhosts : 1;

    c->tried++;
    c->host = (c->start + c->tried) % n;
}

/* mta_conn_connect - start connecting to the current address */
static int mta_conn_connect(mta_conn *c)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    const char *a = c->addrs[c->addr];
    int fd, one = 1;

    memset(&ss, 0, sizeof(ss));
    if (strchr(a, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(c->d->port);
        if (inet_pton(AF_INET6, a, &s6->sin6_addr) != 1)
            return -1;
        sl = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(c->d->port);
        if (inet_pton(AF_INET, a, &s4->sin_addr) != 1)
            return -1;
        sl = sizeof(*s4);
    }
    fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    smtpx__posix_fd_setup(fd);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    c->fd = fd;
    c->state = CONN_CONNECTING;
    c->deadline =
        smtpx_posix_now_ms() + (uint64_t)(c->m->o.connect_timeout_ms > 0
                                              ? c->m->o.connect_timeout_ms
                                              : 30000);
    return 0;
}

/* mta_conn_failed - the current address did not work: note why */
static void mta_conn_note(mta_conn *c, int code, int e0, int e1, int e2,
                          const char *what)
{
    mta_reply(&c->last, c->last_text, sizeof(c->last_text), code, e0, e1, e2,
              "connect to %s[%s]:%u: %s", c->d->rt.hosts[c->host].name,
              c->naddrs ? c->addrs[c->addr] : "?", (unsigned)c->d->port, what);
}

/* mta_conn_resolve - look up the current host's addresses (an address
 * literal needs no lookup) */
static void mta_conn_resolve(mta_conn *c)
{
    const char *h = c->d->rt.hosts[c->host].name;
    unsigned char tmp[16];
    int rc;

    c->naddrs = c->addr = 0;
    c->state = CONN_RESOLVING;
    if (inet_pton(AF_INET, h, tmp) == 1 || inet_pton(AF_INET6, h, tmp) == 1) {
        /* An address literal: at most 45 octets (INET6_ADDRSTRLEN). */
        size_t n = strlen(h);
        if (n >= sizeof(c->addrs[0]))
            n = sizeof(c->addrs[0]) - 1;
        memcpy(c->addrs[0], h, n);
        c->addrs[0][n] = '\0';
        c->naddrs = 1;
        c->addr = 0;
        if (mta_conn_connect(c) != 0) {
            mta_conn_note(c, 451, 4, 4, 1, strerror(errno));
            mta_conn_next(c);
        }
        return;
    }
    if (c->m->o.resolver == NULL) {
        mta_reply(&c->last, c->last_text, sizeof(c->last_text), 451, 4, 3, 5,
                  "no resolver to look up %s", h);
        c->tried = c->d->rt.nhosts;
        mta_conn_next(c);
        return;
    }
    rc = smtpx_resolver_query(c->m->o.resolver, h, SMTPX_RR_A,
                              mta_conn_addr_answer, c);
    if (rc != 0) {
        mta_reply(&c->last, c->last_text, sizeof(c->last_text), 451, 4, 4, 3,
                  "cannot look up %s: %s", h, smtpx_strerror(rc));
        mta_conn_host_next(c);
        mta_conn_next(c);
    }
}

static void mta_conn_addr_answer(smtpx_resolver *r, int status,
                                 const smtpx_rr *rr, size_t n, void *ud)
{
    mta_conn *c = ud;
    size_t i;

    (void)r;
    c->naddrs = c->addr = 0;
    if (status != 0) {
        mta_reply(&c->last, c->last_text, sizeof(c->last_text), 451, 4, 4, 3,
                  "Host %s: %s", c->d->rt.hosts[c->host].name,
                  smtpx_strerror(status));
        mta_conn_host_next(c);
        mta_conn_next(c);
        return;
    }
    for (i = 0; i < n && c->naddrs < MTA_MAX_ADDRS; i++)
        snprintf(c->addrs[c->naddrs++], sizeof(c->addrs[0]), "%s", rr[i].value);
    c->addr = 0;
    while (c->addr < c->naddrs && mta_conn_connect(c) != 0) {
        mta_conn_note(c, 451, 4, 4, 1, strerror(errno));
        c->addr++;
    }
    if (c->addr == c->naddrs) {
        mta_conn_host_next(c);
        mta_conn_next(c);
    }
}

/* mta_conn_next - after a failure: the next address, the next host, or
 * give up (the destination's waiting jobs get the last reason if no other
 * connection serves it) */
static void mta_conn_next(mta_conn *c)
{
    if (c->state == CONN_CONNECTING && c->naddrs > 0) {
        c->addr++;
        while (c->addr < c->naddrs) {
            if (mta_conn_connect(c) == 0)
                return;
            mta_conn_note(c, 451, 4, 4, 1, strerror(errno));
            c->addr++;
        }
        mta_conn_host_next(c);
    }
    if (c->tried < c->d->rt.nhosts) {
        mta_conn_resolve(c);
        return;
    }
    c->state = -1; /* dead: reaped by the round */
}

static smtpx_ssize mta_body_read(void *ctx, uint8_t *buf, size_t len)
{
    mta_job *j = ctx;
    ssize_t n;

    do {
        n = read(j->fd, buf, len);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? SMTPX_ERR_IO : n;
}

static void mta_on_txn_done(smtpx_client *cl, smtpx_txn *t, void *ud)
{
    mta_conn *c = ud;
    mta_job **pj = &c->txns, *j;
    size_t i;

    (void)cl;
    while ((j = *pj) != NULL && j->txn != t)
        pj = &j->next;
    if (j == NULL)
        return;
    *pj = j->next;
    for (i = 0; i < j->n && !c->m->freeing; i++) {
        const smtpx_rcpt_status *st = smtpx_txn_rcpt(t, i);
        int state = st->state == SMTPX_RCPT_ACCEPTED ? SMTPX_QRCPT_DELIVERED
                    : st->state == SMTPX_RCPT_FAILED ? SMTPX_QRCPT_FAILED
                                                     : SMTPX_QRCPT_DEFERRED;
        /* Relayed to a server that took the DSN requests: it reports
         * success itself (2); else "relayed" is ours to report (1). */
        if (state == SMTPX_QRCPT_DELIVERED && j->mm->relayed != NULL)
            j->mm->relayed[j->idx[i]] =
                smtpx_txn_dsn_dropped(t) ||
                        !(smtpx_client_ext_mask(c->c) & SMTPX_EXT_DSN)
                    ? 1
                    : 2;
        mta_set(c->m, j->mm, j->idx[i], state, &st->reply,
                c->d->rt.hosts[c->host < c->d->rt.nhosts ? c->host : 0].name);
    }
    mta_job_done(c->m, j);
}

static void mta_on_log(smtpx_client *cl, int level, const char *msg, void *ud)
{
    mta_conn *c = ud;

    (void)cl;
    mta_log(c->m, level, "%s: %s", c->d->rt.hosts[c->host].name, msg);
}

static void mta_on_trace(smtpx_client *cl, int dir, const char *line,
                         size_t len, void *ud)
{
    mta_conn *c = ud;

    (void)cl;
    if (c->m->o.on_log != NULL)
        mta_log(c->m, SMTPX_LOG_DEBUG, "%s %s %.*s",
                c->d->rt.hosts[c->host].name, dir == SMTPX_TRACE_IN ? "<" : ">",
                (int)(len > 300 ? 300 : len), line);
}

static const smtpx_client_callbacks mta_client_cbs = {
    .on_txn_done = mta_on_txn_done,
    .on_log = mta_on_log,
    .on_trace = mta_on_trace,
};

/* mta_conn_session - the TCP connection is up: transport, client, set-up */
static int mta_conn_session(mta_conn *c)
{
    smtpx_mta *m = c->m;
    smtpx_io io;
    int rc, level = m->o.tls != NULL ? c->d->tls_level : SMTPX_TLS_NONE;

    smtpx_posix_io(&io, c->fd);
    rc = smtpx_transport_new(&c->t, &io, m->mem);
    if (rc != 0)
        return rc;
    c->sock = c->fd;
    c->fd = -1; /* the transport closes it */
    if (c->a.tls_level > SMTPX_TLS_NONE && level > SMTPX_TLS_NONE) {
        rc = smtpx_transport_set_tls(c->t, m->o.tls, m->o.tls_cfg);
        if (rc == 0)
            rc = smtpx_transport_set_peer_name(
                c->t, c->d->rt.hosts[c->host].name,
                c->a.tls_level == SMTPX_TLS_VERIFY);
    }
    if (rc == 0)
        rc = smtpx_client_new(&c->c, m->o.client_cfg, &smtpx__attempt_cbs,
                              sizeof(smtpx__attempt_cbs), &c->a);
    if (rc == 0 && c->a.tls_level >= SMTPX_TLS_ENCRYPT)
        rc = smtpx_client_set_require_tls(c->c, 1);
    if (rc == 0)
        rc = smtpx_client_start(c->c, smtpx_posix_now_ms());
    if (rc == 0)
        rc = smtpx__attempt_start(&c->a, c->c);
    c->state = CONN_SESSION;
    c->wait = SMTPX_WAIT_WRITE | SMTPX_WAIT_READ;
    return rc;
}

static mta_conn *mta_conn_new(smtpx_mta *m, mta_dest *d)
{
    mta_conn *c = smtpx__calloc(m->mem, 1, sizeof(*c));
    int level;

    if (c == NULL)
        return NULL;
    c->m = m;
    c->d = d;
    c->fd = -1;
    c->host = d->next_host % (d->rt.nhosts ? d->rt.nhosts : 1);
    /* Spread connections of a destination over its best hosts only when
     * they share the best preference; otherwise start at the first. */
    if (c->host != 0 && d->rt.hosts[c->host].pref != d->rt.hosts[0].pref)
        c->host = 0;
    c->start = c->host;
    d->next_host++;
    level = m->o.tls != NULL ? d->tls_level : SMTPX_TLS_NONE;
    c->a.helo = m->o.hostname;
    c->a.tls_level = level;
    c->a.auth = d->smarthost ? m->o.smarthost_auth : NULL;
    c->a.user = mta_client_cbs;
    c->a.user_data = c;
    mta_reply(&c->last, c->last_text, sizeof(c->last_text), 451, 4, 4, 1,
              "no address for %s", d->rt.hosts[c->host].name);
    c->next = m->conns;
    m->conns = c;
    m->nconns++;
    d->conns++;
    mta_conn_resolve(c);
    return c;
}

/* mta_job_downgrade - the 8-bit content of j made 7-bit for a server
 * without 8BITMIME (RFC 6152 3: convert, or return the message): the file
 * is scanned, then read again through the converter.  0 and the new size,
 * or an error (SMTPX_ERR_NOT_SUPPORTED, SMTPX_ERR_LIMIT: it cannot be). */
static int mta_job_downgrade(smtpx_mta *m, mta_job *j, uint64_t *size)
{
    uint8_t buf[16384];
    smtpx_ssize n = 0;
    size_t parts = 0;
    int rc;
    off_t start = lseek(j->fd, 0, SEEK_CUR); /* the content's first octet */

    rc = start < 0 ? SMTPX_ERR_IO : smtpx_msg_downgrade_new(&j->dg, m->mem);
    while (rc == 0 && (n = mta_body_read(j, buf, sizeof(buf))) > 0)
        rc = smtpx_msg_downgrade_scan(j->dg, buf, (size_t)n);
    if (rc == 0 && n < 0)
        rc = (int)n;
    if (rc == 0)
        rc = smtpx_msg_downgrade_scan_end(j->dg, size, &parts);
    if (rc == 0 && lseek(j->fd, start, SEEK_SET) != start)
        rc = SMTPX_ERR_IO;
    if (rc == 0)
        rc = smtpx_msg_downgrade_source(j->dg, mta_body_read, j);
    if (rc == 0)
        mta_log(m, SMTPX_LOG_INFO,
                "%s: converted to 7 bits (%zu parts re-encoded, %llu octets)",
                j->mm->q->id, parts, (unsigned long long)*size);
    return rc;
}

/* mta_job_txn - the transaction of a job on a connection; a reply of its
 * own in *why when the message cannot go to this server */
static int mta_job_txn(mta_conn *c, mta_job *j, smtpx_reply *why,
                       char *why_text, size_t why_size)
{
    smtpx_mta *m = c->m;
    smtpx__qmsg *q = j->mm->q;
    char text[SMTPX__QFILE_ADDR_MAX + 1];
    uint64_t size = q->size;
    int body =
        q->body == SMTPX_BODY_8BITMIME || q->body == SMTPX_BODY_BINARYMIME
            ? q->body
            : SMTPX_BODY_7BIT;
    size_t i;
    int rc;

    j->fd = smtpx__queue_open_content(m->q, q);
    if (j->fd < 0)
        return SMTPX_ERR_IO;
    if (body == SMTPX_BODY_8BITMIME && !m->o.no_downgrade &&
        !(smtpx_client_ext_mask(c->c) & SMTPX_EXT_8BITMIME)) {
        rc = mta_job_downgrade(m, j, &size);
        if (rc == SMTPX_ERR_NOT_SUPPORTED || rc == SMTPX_ERR_LIMIT) {
            mta_reply(why, why_text, why_size, 554, 5, 6, 3,
                      "The server does not offer 8BITMIME and the message "
                      "cannot be made 7-bit: %s",
                      smtpx_msg_downgrade_why(j->dg));
            return rc;
        }
        if (rc != 0)
            return rc;
        body = SMTPX_BODY_7BIT;
    }
    rc = smtpx_txn_new(&j->txn, m->o.client_cfg, q->from);
    if (rc != 0)
        return rc;
    /* DSN requests go on when the server offers DSN (the client decides,
     * and smtpx_txn_dsn_dropped() says when it left them out: the
     * reports are then ours to send, RFC 3461 5.2).  They are stored as
     * received, in xtext; the client wants them decoded.  One it refuses
     * is left out: it must not stop the mail. */
    if (q->ret != SMTPX_DSN_RET_NONE || q->envid != NULL)
        (void)smtpx_txn_set_dsn(
            j->txn, q->ret,
            q->envid != NULL &&
                    smtpx__cmd_xtext_decode(q->envid, strlen(q->envid), text,
                                            sizeof(text)) >= 0
                ? text
                : NULL);
    for (i = 0; i < j->n; i++) {
        const smtpx__qrcpt *r = &q->rcpts[j->idx[i]];
        const char *orcpt = NULL;

        rc = smtpx_txn_add_rcpt(j->txn, r->addr, NULL);
        if (rc != 0)
            return rc;
        if (r->notify == 0 && r->orcpt == NULL)
            continue;
        if (r->orcpt != NULL && strncasecmp(r->orcpt, "rfc822;", 7) == 0 &&
            smtpx__cmd_xtext_decode(r->orcpt + 7, strlen(r->orcpt + 7), text,
                                    sizeof(text)) >= 0)
            orcpt = text;
        (void)smtpx_txn_set_rcpt_dsn(j->txn, i, r->notify, orcpt);
    }
    if (j->dg != NULL)
        rc = smtpx_txn_set_body_reader(j->txn, smtpx_msg_downgrade_read, j->dg,
                                       size);
    else
        rc = smtpx_txn_set_body_reader(j->txn, mta_body_read, j, size);
    if (rc == 0 && (body != SMTPX_BODY_7BIT || q->smtputf8))
        rc = smtpx_txn_set_body_type(j->txn, body, q->smtputf8);
    if (rc == 0)
        rc = smtpx_client_send(c->c, j->txn);
    return rc;
}

/* mta_conn_feed - queue transactions while the destination has jobs */
static void mta_conn_feed(mta_conn *c)
{
    smtpx_mta *m = c->m;
    size_t max = m->o.max_msgs_per_conn ? m->o.max_msgs_per_conn : 100;
    size_t queued = 0;
    mta_job *j;

    for (j = c->txns; j != NULL; j = j->next)
        queued++;
    /* Stopping, nothing new is begun: the jobs that wait go back. */
    while (!c->quit && !m->stopping && queued < MTA_PIPELINE && c->msgs < max &&
           c->d->jobs != NULL) {
        smtpx_reply r;
        char text[MTA_REPLY_TEXT];
        int rc;

        j = c->d->jobs;
        c->d->jobs = j->next;
        if (c->d->jobs == NULL)
            c->d->jobs_tail = NULL;
        j->next = c->txns;
        c->txns = j;
        c->msgs++;
        c->sent_any = 1;
        memset(&r, 0, sizeof(r));
        rc = mta_job_txn(c, j, &r, text, sizeof(text));
        if (rc != 0) {
            c->txns = j->next;
            if (r.code == 0)
                mta_reply(&r, text, sizeof(text), 451, 4, 3, 0,
                          "cannot send the message: %s", smtpx_strerror(rc));
            if (j->txn != NULL && !smtpx_txn_done(j->txn) &&
                smtpx_client_status(c->c) != SMTPX_ERR_INVALID_STATE)
                smtpx_txn_fail(j->txn, &r);
            mta_job_fail(m, j, &r, NULL);
            continue;
        }
        queued++;
    }
    if (!c->quit && c->txns == NULL) {
        smtpx_client_quit(c->c, NULL);
        c->quit = 1;
    }
}

/* mta_dest_alive - whether a connection of d is still connecting or in
 * its session */
static int mta_dest_alive(const smtpx_mta *m, const mta_dest *d)
{
    const mta_conn *c;

    for (c = m->conns; c != NULL; c = c->next)
        if (c->d == d && c->state >= 0)
            return 1;
    return 0;
}

/* mta_conn_reap - a finished connection: tell the jobs nobody will take */
static void mta_conn_free(smtpx_mta *m, mta_conn *c)
{
    mta_conn **pc = &m->conns;

    while (*pc != c)
        pc = &(*pc)->next;
    *pc = c->next;
    if (m->o.resolver != NULL)
        smtpx_resolver_cancel(m->o.resolver, c);
    smtpx_client_free(c->c); /* finishes its transactions (callbacks) */
    smtpx_transport_free(c->t);
    if (c->fd >= 0)
        close(c->fd);
    c->d->conns--;
    m->nconns--;
    if (!c->ready && !m->freeing && c->d->route == ROUTE_READY &&
        mta_dest_alive(m, c->d)) {
        /* Refused or unreachable while another connection serves the
         * destination (a "421 too many connections", say): no more
         * connections than are alive now, which take the jobs in turn,
         * as Postfix lowers a destination's concurrency on a failure. */
        c->d->cap = c->d->conns;
    } else if (!c->ready && !m->freeing && c->d->route == ROUTE_READY) {
        /* The destination could not be reached on any address of any
         * host: its waiting jobs get the reason now (the dispatcher
         * fails them, and looks the route up again next time) rather
         * than connection after connection being tried for them, as
         * Postfix marks a destination dead. */
        c->d->rt.fail = c->last;
        snprintf(c->d->rt.fail_text, sizeof(c->d->rt.fail_text), "%s",
                 c->last_text);
        c->d->rt.fail.text = c->d->rt.fail_text;
        c->d->route = ROUTE_FAILED;
    }
    smtpx__free(m->mem, c);
}

/* mta_conn_service - move a connection on after poll said something */
static void mta_conn_service(mta_conn *c, short revents, uint64_t now)
{
    smtpx_mta *m = c->m;

    if (c->state == CONN_CONNECTING) {
        int err = 0;
        socklen_t sl = sizeof(err);
        if (revents == 0 && now < c->deadline)
            return;
        if (revents == 0) {
            close(c->fd);
            c->fd = -1;
            mta_conn_note(c, 451, 4, 4, 1, "connection timed out");
            mta_conn_next(c);
            return;
        }
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0)
            err = errno;
        if (err != 0) {
            close(c->fd);
            c->fd = -1;
            mta_conn_note(c, 451, 4, 4, 1, strerror(err));
            mta_conn_next(c);
            return;
        }
        smtpx__attempt_reset(&c->a);
        if (mta_conn_session(c) != 0) {
            mta_conn_note(c, 451, 4, 3, 0, "cannot start a session");
            c->state = -1;
            return;
        }
    }
    if (c->state != CONN_SESSION)
        return;
    for (;;) {
        const uint8_t *p;
        size_t queued;
        int step;

        smtpx_client_expire(c->c, now);
        c->wait = smtpx_client_pump(c->c, c->t, now);
        if (c->wait <= 0)
            break;
        queued = smtpx_client_out_peek(c->c, &p);
        step = smtpx__attempt_step(&c->a, c->c);
        if (step == SMTPX__ATTEMPT_READY) {
            if (!c->ready && c->d->cap != 0 &&
                ++c->d->cap >= (m->o.max_conns_per_dest
                                    ? m->o.max_conns_per_dest
                                    : MTA_CONNS_PER_DEST))
                c->d->cap = 0; /* a success: one more may try again */
            c->ready = 1;
        } else if (step == SMTPX__ATTEMPT_GIVE_UP || step < 0) {
            smtpx_client_quit(c->c, NULL);
            c->quit = 1;
            continue;
        }
        if (c->ready)
            mta_conn_feed(c);
        if ((c->wait & SMTPX_WAIT_AGAIN) ||
            smtpx_client_out_peek(c->c, &p) > queued)
            continue;
        return;
    }
    /* The session is over. */
    {
        int status = smtpx__attempt_status(&c->a, smtpx_client_status(c->c));
        const smtpx_reply *ref = smtpx__attempt_refusal(&c->a);

        if (!c->ready) {
            /* Refused at greeting, EHLO or AUTH, or lost before: the next
             * address or host may do better (RFC 5321 5.1). */
            if (ref != NULL) {
                c->last = *ref;
                snprintf(c->last_text, sizeof(c->last_text), "host %s said: %s",
                         c->d->rt.hosts[c->host].name,
                         ref->text ? ref->text : "");
                c->last.text = c->last_text;
                if (ref->code < 500)
                    c->last.code = ref->code;
            } else {
                mta_conn_note(c, 451, 4, 4, 2, smtpx_strerror(status));
            }
            smtpx_client_free(c->c);
            c->c = NULL;
            smtpx_transport_free(c->t);
            c->t = NULL;
            if (!c->sent_any && smtpx__attempt_retry_setup(&c->a, status)) {
                /* Same address again with HELO or in clear text. */
                c->addr--;
            }
            c->state = CONN_CONNECTING;
            mta_conn_next(c);
            return;
        }
        c->state = -1;
    }
    (void)m;
}

/* ---- the round ----------------------------------------------------------- */

/* mta_take - messages that are due become jobs on their destinations */
static void mta_take(smtpx_mta *m, int64_t now, int64_t *next)
{
    smtpx__qmsg *due[MTA_TAKE_MAX];
    size_t n, k, i;

    if (m->in_flight >= m->in_flight_max) {
        *next = 0;
        return;
    }
    n = m->in_flight_max - m->in_flight;
    n = smtpx__queue_take_due(m->q, now, due,
                              n < MTA_TAKE_MAX ? n : MTA_TAKE_MAX, next);
    for (k = 0; k < n; k++) {
        smtpx__qmsg *q = due[k];
        mta_msg *mm = smtpx__calloc(m->mem, 1, sizeof(*mm));
        unsigned char *taken;

        if (mm == NULL) {
            smtpx__queue_release(m->q, q, 1);
            continue;
        }
        m->in_flight++;
        mm->q = q;
        mm->jobs = 1; /* held while the jobs are made */
        mm->relayed = smtpx__calloc(m->mem, q->nrcpts, 1);
        taken = smtpx__calloc(m->mem, q->nrcpts, 1);
        if (taken == NULL || mm->relayed == NULL) {
            smtpx__free(m->mem, taken);
            mta_msg_done(m, mm);
            continue;
        }
        if (q->deleted)
            mta_log(m, SMTPX_LOG_INFO, "%s: removed, not delivered (deleted)",
                    q->id);
        for (i = 0; i < q->nrcpts && !q->deleted; i++) {
            const char *dom;
            mta_dest *d;
            mta_job *j;
            size_t x;

            if (taken[i] || (q->rcpts[i].state != SMTPX_QRCPT_PENDING &&
                             q->rcpts[i].state != SMTPX_QRCPT_DEFERRED))
                continue;
            dom = mta_domain(q->rcpts[i].addr);
            d = mta_dest_get(m, dom, mta_is_local(m, dom));
            j = smtpx__calloc(m->mem, 1, sizeof(*j));
            if (d == NULL || j == NULL ||
                (j->idx = smtpx__calloc(m->mem, q->nrcpts, sizeof(size_t))) ==
                    NULL) {
                if (j != NULL)
                    smtpx__free(m->mem, j);
                break;
            }
            j->mm = mm;
            j->fd = -1;
            /* Every recipient of the message for the same destination. */
            for (x = i; x < q->nrcpts; x++) {
                const char *dx;
                if (taken[x] || (q->rcpts[x].state != SMTPX_QRCPT_PENDING &&
                                 q->rcpts[x].state != SMTPX_QRCPT_DEFERRED))
                    continue;
                dx = mta_domain(q->rcpts[x].addr);
                if (mta_dest_get(m, dx, mta_is_local(m, dx)) != d)
                    continue;
                taken[x] = 1;
                j->idx[j->n++] = x;
            }
            mm->jobs++;
            if (d->jobs_tail)
                d->jobs_tail->next = j;
            else
                d->jobs = j;
            d->jobs_tail = j;
        }
        smtpx__free(m->mem, taken);
        if (--mm->jobs == 0)
            mta_msg_done(m, mm);
    }
}

/* mta_dest_wants_conn - whether d has jobs that no connection of its will
 * take and the limits allow one more: a connection that said QUIT, or
 * took its most messages, takes no more, and one still connecting will
 * take up to MTA_PIPELINE */
static int mta_dest_wants_conn(const smtpx_mta *m, const mta_dest *d)
{
    size_t total = m->o.max_conns ? m->o.max_conns : 20;
    size_t per =
        m->o.max_conns_per_dest ? m->o.max_conns_per_dest : MTA_CONNS_PER_DEST;
    size_t max = m->o.max_msgs_per_conn ? m->o.max_msgs_per_conn : 100;
    size_t waiting = 0, takers = 0;
    const mta_conn *c;
    const mta_job *j;

    if (d->jobs == NULL || d->local || d->route != ROUTE_READY || m->stopping ||
        d->conns >= per || m->nconns >= total ||
        (d->cap != 0 && d->conns >= d->cap))
        return 0;
    for (c = m->conns; c != NULL; c = c->next)
        if (c->d == d && c->state >= 0 && !c->quit && c->msgs < max)
            takers++;
    for (j = d->jobs; j != NULL && waiting <= takers * MTA_PIPELINE;
         j = j->next)
        waiting++;
    return waiting > takers * MTA_PIPELINE;
}

/* mta_dispatch - routes, local jobs and new connections */
static void mta_dispatch(smtpx_mta *m)
{
    mta_dest *d;

    for (d = m->dests; d != NULL; d = d->next) {
        mta_job *j;

        if (d->jobs == NULL)
            continue;
        if (d->local) {
            while ((j = d->jobs) != NULL) {
                d->jobs = j->next;
                if (d->jobs == NULL)
                    d->jobs_tail = NULL;
                mta_local_run(m, j);
            }
            continue;
        }
        if (d->route == ROUTE_NEW) {
            int rc = m->o.resolver
                         ? smtpx_resolver_query(m->o.resolver, d->key,
                                                SMTPX_RR_MX, mta_mx_answer, d)
                         : SMTPX_ERR_RESOLVE;
            if (rc != 0) {
                mta_reply(&d->rt.fail, d->rt.fail_text, sizeof(d->rt.fail_text),
                          451, 4, 4, 3, "cannot look up %s: %s", d->key,
                          smtpx_strerror(rc));
                d->route = ROUTE_FAILED;
            } else {
                d->route = ROUTE_RESOLVING;
            }
        }
        if (d->route == ROUTE_FAILED) {
            while ((j = d->jobs) != NULL) {
                d->jobs = j->next;
                if (d->jobs == NULL)
                    d->jobs_tail = NULL;
                mta_job_fail(m, j, &d->rt.fail, NULL);
            }
            /* The route is looked up again at the next attempt. */
            d->route = d->smarthost ? ROUTE_READY : ROUTE_NEW;
            continue;
        }
        if (d->route != ROUTE_READY || m->stopping)
            continue;
        /* More connections while jobs wait that no connection will take
         * and limits allow. */
        while (mta_dest_wants_conn(m, d))
            if (mta_conn_new(m, d) == NULL)
                break;
    }
}

/* mta_prepare - the descriptors to wait for (m->pfd, *n of them, with
 * m->polled) and the next deadline (m->next_ms: 0 none, 1 at once); for a
 * loop that waits on smtpx_mta_fd(), the epoll set is made the same */
static int mta_prepare(smtpx_mta *m, size_t *np)
{
    uint64_t now_ms, next_ms = 0;
    int64_t now = smtpx__queue_now(m->q), next_due;
    const mta_dest *d;
    mta_conn *c;
    size_t n, i;
    int at_once = 0;

    n = 2 + m->nconns;
    if (n > m->cappfd) {
        struct pollfd *p = smtpx__realloc(m->mem, m->pfd, n * sizeof(*p));
        mta_conn **pc;
        if (p == NULL)
            return SMTPX_ERR_NOMEM;
        m->pfd = p;
        pc = smtpx__realloc(m->mem, m->polled, n * sizeof(*pc));
        if (pc == NULL)
            return SMTPX_ERR_NOMEM;
        m->polled = pc;
        m->cappfd = n;
    }
    m->pfd[0].fd = m->wake[0];
    m->pfd[0].events = POLLIN;
    m->pfd[1].fd = m->o.resolver ? smtpx_resolver_fd(m->o.resolver) : -1;
    m->pfd[1].events = POLLIN;
    if (m->o.resolver != NULL) {
        uint64_t e = smtpx_resolver_expiry(m->o.resolver);
        if (e != 0)
            next_ms = e;
    }
    now_ms = smtpx_posix_now_ms();
    for (c = m->conns, i = 2; c != NULL; c = c->next, i++) {
        uint64_t e = 0;
        m->polled[i] = c;
        m->pfd[i].fd = -1;
        m->pfd[i].events = 0;
        if (c->state == CONN_CONNECTING) {
            m->pfd[i].fd = c->fd;
            m->pfd[i].events = POLLOUT;
            e = c->deadline;
        } else if (c->state == CONN_SESSION) {
            m->pfd[i].events =
                (short)(((c->wait & SMTPX_WAIT_READ) ? POLLIN : 0) |
                        ((c->wait & SMTPX_WAIT_WRITE) ? POLLOUT : 0));
            m->pfd[i].fd = m->pfd[i].events ? c->sock : -1;
            e = smtpx_client_expiry(c->c);
            if (c->wait & SMTPX_WAIT_AGAIN)
                at_once = 1;
        } else if (c->state < 0) {
            at_once = 1; /* to be reaped */
        }
        if (e != 0 && (next_ms == 0 || e < next_ms))
            next_ms = e;
    }
    /* Jobs the dispatcher can move on now: a connection that ended (or a
     * route that came) since it ran leaves them to the next round, which
     * a loop waiting on smtpx_mta_fd() must be told to run. */
    for (d = m->dests; d != NULL && !at_once; d = d->next)
        if (d->jobs != NULL && !m->stopping &&
            (d->route == ROUTE_NEW || d->route == ROUTE_FAILED ||
             mta_dest_wants_conn(m, d)))
            at_once = 1;
    /* A stop or flush asked for and not yet seen, or a stop that has
     * nothing left to wait for: the round that acts on it. */
    if ((m->stop_req && !m->stopping) || m->flush_req ||
        (m->stopping && m->nconns == 0 && m->lbusy == 0 &&
         (m->o.resolver == NULL || smtpx_resolver_pending(m->o.resolver) == 0)))
        at_once = 1;
    /* Messages due while as many as the engine holds are in flight wait
     * for one to finish, which makes a round of its own. */
    next_due = m->in_flight >= m->in_flight_max ? 0 : smtpx__queue_next(m->q);
    if (m->o.outbox != NULL) {
        int64_t due = smtpx_outbox_next(m->o.outbox);
        if (due != 0 && (next_due == 0 || due < next_due))
            next_due = due;
    }
    if (next_due > 0 && !m->stopping) {
        uint64_t in = next_due > now ? (uint64_t)(next_due - now) * 1000u : 0;
        if (next_ms == 0 || now_ms + in < next_ms)
            next_ms = now_ms + in;
    }
    if (next_ms != 0 && next_ms <= now_ms)
        at_once = 1;
    m->next_ms = at_once ? 1 : next_ms;
    *np = n;
#ifdef __linux__
    if (m->epfd >= 0) {
        /* Rebuilt each time: a descriptor closed since was dropped from
         * the set by the kernel, and its number may be another's now. */
        for (i = 0; i < m->nep; i++)
            (void)epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->ep[i], NULL);
        m->nep = 0;
        if (m->capep < n) {
            int *ep = smtpx__realloc(m->mem, m->ep, n * sizeof(*ep));
            if (ep == NULL)
                return SMTPX_ERR_NOMEM;
            m->ep = ep;
            m->capep = n;
        }
        for (i = 0; i < n; i++) {
            struct epoll_event ev;
            if (m->pfd[i].fd < 0)
                continue;
            memset(&ev, 0, sizeof(ev));
            ev.events =
                ((m->pfd[i].events & POLLIN) ? (uint32_t)EPOLLIN : 0u) |
                ((m->pfd[i].events & POLLOUT) ? (uint32_t)EPOLLOUT : 0u);
            ev.data.fd = m->pfd[i].fd;
            if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->pfd[i].fd, &ev) == 0)
                m->ep[m->nep++] = m->pfd[i].fd;
        }
    }
#endif
    return 0;
}

/* mta_reap - free the connections that ended; how many */
static size_t mta_reap(smtpx_mta *m)
{
    mta_conn *c, *cn;
    size_t n = 0;

    for (c = m->conns; c != NULL; c = cn) {
        cn = c->next;
        if (c->state < 0) {
            mta_conn_free(m, c);
            n++;
        }
    }
    return n;
}

int smtpx_mta_run_once(smtpx_mta *m, int timeout_ms)
{
    uint64_t now_ms;
    int64_t now, next_due = 0;
    mta_conn *c;
    size_t n, i, again;
    int timeout, rc;
    char drain[64];

    if (m == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    /* The wake-up pipe is drained before the flags, the queue and the
     * local results are looked at: what is signalled after this leaves
     * its byte for the next round (an outside loop sees the descriptor
     * readable), never drained unseen. */
    while (read(m->wake[0], drain, sizeof(drain)) > 0)
        ;
    if (m->stop_req)
        m->stopping = 1;
    if (m->flush_req) {
        m->flush_req = 0;
        smtpx__queue_flush_all(m->q);
    }
    /* Local deliveries that ended: recorded first, as a reply would be.
     * Stopping, what no worker has begun goes back untried. */
    mta_local_collect(m, m->stopping);
    now = smtpx__queue_now(m->q);
    if (m->o.outbox != NULL && !m->stopping) {
        /* Its resends go into this queue, due now. */
        int64_t due = smtpx_outbox_next(m->o.outbox);
        if (due != 0 && due <= now)
            (void)smtpx_outbox_run(m->o.outbox);
    }
    /* Connections that ended last round go first: what they leave (a
     * destination found dead) is for the dispatcher below. */
    mta_reap(m);
    /* A destination left with neither jobs nor connections is forgotten
     * before new jobs come: a dead mark it got from the last connection
     * that failed is for the jobs that waited then, not for these. */
    mta_dest_free_idle(m);
    if (!m->stopping)
        mta_take(m, now, &next_due);
    mta_dispatch(m);
    /* A connection that failed at once leaves work for another round
     * now, not after the poll. */
    again = mta_reap(m);
    mta_dest_free_idle(m);
    if (m->stopping && m->nconns == 0 && mta_local_collect(m, 1) == 0 &&
        (m->o.resolver == NULL || smtpx_resolver_pending(m->o.resolver) == 0)) {
        /* Jobs that never went out go back untouched. */
        mta_dest *d;
        for (d = m->dests; d != NULL; d = d->next) {
            mta_job *j;
            while ((j = d->jobs) != NULL) {
                d->jobs = j->next;
                mta_job_done(m, j);
            }
            d->jobs_tail = NULL;
        }
        mta_dest_free_idle(m);
        m->next_ms = 0; /* stopped: nothing to run for */
        return 0;
    }
    /* The round's removals share one directory sync. */
    smtpx__queue_sync(m->q);
    rc = mta_prepare(m, &n);
    if (rc < 0)
        return rc;
    timeout = again > 0 || m->next_ms == 1 ? 0 : timeout_ms;
    if (m->next_ms > 1 && timeout != 0) {
        uint64_t t = smtpx_posix_now_ms();
        uint64_t left = m->next_ms > t ? m->next_ms - t : 0;
        if (timeout < 0 || left < (uint64_t)timeout)
            timeout = left > INT32_MAX ? INT32_MAX : (int)left;
    }
    for (i = 0; i < n; i++)
        m->pfd[i].revents = 0;
    rc = poll(m->pfd, (nfds_t)n, timeout);
    if (rc < 0 && errno != EINTR)
        return SMTPX_ERR_IO;
    /* Answers, and with queries pending their time-outs and
     * retransmissions, which come with no descriptor readable. */
    if (m->o.resolver != NULL && ((m->pfd[1].revents & POLLIN) ||
                                  smtpx_resolver_pending(m->o.resolver) > 0))
        smtpx_resolver_process(m->o.resolver);
    now_ms = smtpx_posix_now_ms();
    /* Connections made by resolver callbacks just now wait for the next
     * round; the ones polled are in m->polled (none is freed meanwhile). */
    for (i = 2; i < n; i++) {
        short rev = m->pfd[i].revents;
        c = m->polled[i];
        if (c->state == CONN_SESSION) {
            uint64_t e = smtpx_client_expiry(c->c);
            if (rev == 0 && !(c->wait & SMTPX_WAIT_AGAIN) &&
                !(e != 0 && now_ms >= e) && !(c->ready && !c->quit))
                continue;
        }
        mta_conn_service(c, rev, now_ms);
    }
    /* For a loop that waits on smtpx_mta_fd(): what to wait for now. */
    if (m->epfd >= 0) {
        mta_reap(m);
        if (mta_prepare(m, &n) < 0)
            m->next_ms = 1;
    }
    return 1;
}

int smtpx_mta_run(smtpx_mta *m)
{
    int rc;

    while ((rc = smtpx_mta_run_once(m, -1)) > 0)
        ;
    return rc;
}

/* ---- life ---------------------------------------------------------------- */

int smtpx_mta_new(smtpx_mta **out, smtpx_queue *q, const smtpx_mta_opts *opts)
{
    smtpx_mta *m;
    smtpx_mta_opts o;
    const smtpx_mem *mem;
    size_t i;

    if (out != NULL)
        *out = NULL;
    if (out == NULL || q == NULL || opts == NULL ||
        (smtpx__queue_opts(q)->flags & SMTPX_QUEUE_READONLY) ||
        smtpx__copy_sized(&o, sizeof(o), opts) != 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (o.client_cfg == NULL || !smtpx_config_is_frozen(o.client_cfg) ||
        smtpx_config_get_role(o.client_cfg) != SMTPX_ROLE_CLIENT ||
        o.hostname == NULL || o.hostname[0] == '\0' ||
        (o.nlocal > 0 && o.local_domains == NULL) ||
        (o.nlocal > 0 &&
         (o.local_kind < SMTPX_LOCAL_MAILDIR ||
          o.local_kind > SMTPX_LOCAL_PIPE || o.local_path == NULL)) ||
        (o.ntls_policies > 0 && o.tls_policies == NULL))
        return SMTPX_ERR_INVALID_ARGUMENT;
    for (i = 0; i < o.ntls_policies; i++)
        if (o.tls_policies[i].level < SMTPX_TLS_NONE ||
            o.tls_policies[i].level > SMTPX_TLS_VERIFY)
            return SMTPX_ERR_INVALID_ARGUMENT;
    if (!o.tls_set) {
        o.mx_tls_level = SMTPX_TLS_MAY;
        o.smarthost_tls_level = SMTPX_TLS_VERIFY;
    }
    if (o.tls == NULL)
        o.mx_tls_level = o.smarthost_tls_level = SMTPX_TLS_NONE;
    mem = smtpx__queue_mem(q);
    m = smtpx__calloc(mem, 1, sizeof(*m));
    if (m == NULL)
        return SMTPX_ERR_NOMEM;
    m->q = q;
    m->mem = mem;
    m->o = o;
    m->in_flight_max = MTA_IN_FLIGHT;
    if (o.smarthost != NULL &&
        (smtpx_posix_split_hostport(o.smarthost, m->smart_host,
                                    sizeof(m->smart_host), m->smart_port,
                                    sizeof(m->smart_port)) != 0 ||
         m->smart_host[0] == '\0' || atoi(m->smart_port) <= 0)) {
        smtpx__free(mem, m);
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    if (pipe(m->wake) != 0) {
        smtpx__free(mem, m);
        return SMTPX_ERR_IO;
    }
    smtpx__posix_fd_setup(m->wake[0]);
    smtpx__posix_fd_setup(m->wake[1]);
    if (smtpx__queue_set_notify(q, mta_notify, m) != 0) {
        close(m->wake[0]);
        close(m->wake[1]);
        smtpx__free(mem, m);
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    m->epfd = -1;
    if (pthread_mutex_init(&m->lmu, NULL) != 0)
        goto fail;
    if (pthread_cond_init(&m->lcv, NULL) != 0) {
        pthread_mutex_destroy(&m->lmu);
        goto fail;
    }
    srand((unsigned)(time(NULL) ^ getpid()));
    *out = m;
    return 0;
fail:
    smtpx__queue_set_notify(q, NULL, NULL);
    close(m->wake[0]);
    close(m->wake[1]);
    smtpx__free(mem, m);
    return SMTPX_ERR_NOMEM;
}

void smtpx_mta_free(smtpx_mta *m)
{
    mta_dest *d;

    if (m == NULL)
        return;
    /* The local deliveries under way end first (a command within its
     * time-out): their results are kept; what no worker began goes back
     * as the queue last recorded it. */
    if (m->nlw > 0) {
        size_t i;
        pthread_mutex_lock(&m->lmu);
        m->lquit = 1;
        pthread_cond_broadcast(&m->lcv);
        pthread_mutex_unlock(&m->lmu);
        for (i = 0; i < m->nlw; i++)
            pthread_join(m->lw[i], NULL);
        m->stopping = 1;
        (void)mta_local_collect(m, 1);
    }
    smtpx__free(m->mem, m->lw);
    pthread_cond_destroy(&m->lcv);
    pthread_mutex_destroy(&m->lmu);
    smtpx__queue_set_notify(m->q, NULL, NULL);
    /* Cut connections without recording results: the queue keeps what it
     * last saved, so those recipients are tried again. */
    m->stopping = 1;
    m->freeing = 1;
    while (m->conns != NULL)
        mta_conn_free(m, m->conns);
    for (d = m->dests; d != NULL; d = d->next) {
        mta_job *j;
        while ((j = d->jobs) != NULL) {
            d->jobs = j->next;
            mta_job_done(m, j);
        }
        d->jobs_tail = NULL;
    }
    while ((d = m->dests) != NULL) {
        m->dests = d->next;
        if (m->o.resolver != NULL)
            smtpx_resolver_cancel(m->o.resolver, d);
        smtpx__free(m->mem, d);
    }
    close(m->wake[0]);
    close(m->wake[1]);
    if (m->epfd >= 0)
        close(m->epfd);
    smtpx__free(m->mem, m->ep);
    smtpx__free(m->mem, m->pfd);
    smtpx__free(m->mem, m->polled);
    smtpx__free(m->mem, m);
}

int smtpx_mta_fd(smtpx_mta *m)
{
    size_t n;

    if (m == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
#ifdef __linux__
    if (m->epfd < 0) {
        m->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (m->epfd < 0)
            return SMTPX_ERR_IO;
        if (mta_prepare(m, &n) < 0) {
            close(m->epfd);
            m->epfd = -1;
            return SMTPX_ERR_NOMEM;
        }
    }
    return m->epfd;
#else
    (void)n;
    return SMTPX_ERR_NOT_SUPPORTED;
#endif
}

void smtpx__mta_set_in_flight_max(smtpx_mta *m, size_t n)
{
    m->in_flight_max = n > 0 ? n : MTA_IN_FLIGHT;
}

uint64_t smtpx_mta_expiry(const smtpx_mta *m)
{
    if (m == NULL)
        return 0;
    return m->next_ms == 1 ? smtpx_posix_now_ms() : m->next_ms;
}
