/*
 * check_loop - the event loop over real loopback sockets: timers (order,
 * ties, cancel, from callbacks), application descriptors, functions posted
 * from other threads, wake-ups from a signal handler, paused sessions
 * answered from a worker thread, deadlines, write back-pressure, graceful
 * stop with many sessions, and client sessions: thousands at once against
 * a server in the same loop, connections refused and timed out, TLS.
 * Every test runs against whichever backend the library was built with
 * (make check runs the suite against epoll and poll).
 */
#define _DEFAULT_SOURCE /* setitimer, usleep with -std=c99 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libsmtpx/smtpx.h>
#include <libsmtpx/posix.h>
#include <libsmtpx/tls_mbedtls.h>

#include "harness/failmalloc.h"
#include "suites.h"

#ifndef TLS_DIR
#define TLS_DIR "tests/data/tls/"
#endif

static smtpx_config *server_cfg(uint32_t command_timeout)
{
    smtpx_config *cfg;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, NULL), 0);
    ck_assert_int_eq(smtpx_config_set_hostname(cfg, "mx.test"), 0);
    if (command_timeout != 0)
        ck_assert_int_eq(smtpx_config_set_timeout(cfg, SMTPX_TIMEOUT_COMMAND,
                                                  command_timeout),
                         0);
    ck_assert_int_eq(smtpx_config_freeze(cfg), 0);
    return cfg;
}

static smtpx_config *client_cfg(void)
{
    smtpx_config *cfg;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(cfg), 0);
    return cfg;
}

static int local_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);

    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

/* listen_on - a listener on 127.0.0.1, any port; *port gets it */
static int listen_on(int *port)
{
    int fd;

    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "0", 0, &fd), 0);
    *port = local_port(fd);
    return fd;
}

static int connect_to(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* run_until - run rounds until *flag is set or ms have passed; returns
 * the flag */
static int run_until(smtpx_loop *loop, volatile int *flag, int ms)
{
    uint64_t end = smtpx_posix_now_ms() + (uint64_t)ms;

    while (!*flag && smtpx_posix_now_ms() < end)
        ck_assert_int_ge(smtpx_loop_run_once(loop, 50), 0);
    return *flag;
}

/* read_reply - one whole reply from a blocking socket, 10 s at most */
static char *read_reply(int fd, char *buf, size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        char *line;
        ssize_t n;

        ck_assert_int_eq(poll(&p, 1, 10000), 1);
        n = read(fd, buf + len, 1);
        if (n <= 0)
            return buf;
        len++;
        buf[len] = '\0';
        ck_assert_uint_lt(len, size - 1);
        if (buf[len - 1] != '\n')
            continue;
        line = buf + len - 1;
        while (line > buf && line[-1] != '\n')
            line--;
        if (strlen(line) >= 4 && line[3] == ' ')
            return buf;
    }
}

static void say(int fd, const char *s)
{
    ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

START_TEST(test_backend)
{
    smtpx_loop *loop;

    ck_assert_int_eq(smtpx_loop_new(&loop, NULL), 0);
#if defined(__linux__) && !defined(SMTPX_LOOP_POLL)
    ck_assert_str_eq(smtpx_loop_backend(loop), "epoll");
#else
    ck_assert_str_eq(smtpx_loop_backend(loop), "poll");
#endif
    ck_assert_int_eq(smtpx_loop_new(NULL, NULL), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_loop_run_once(NULL, 0), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(smtpx_loop_sessions(loop), 0);
    ck_assert_uint_eq(smtpx_loop_clients(loop), 0);
    /* Nothing to do: a round with a timeout returns after it. */
    ck_assert_int_eq(smtpx_loop_run_once(loop, 10), 1);
    smtpx_loop_free(loop);
    smtpx_loop_free(NULL);
}
END_TEST

/* ---- timers ---------------------------------------------------------------
 */

#define NTIMERS 3000

typedef struct tstate {
    smtpx_loop *loop;
    uint64_t at[NTIMERS];
    int fired[NTIMERS];
    int order[NTIMERS];
    int n;
    uint64_t last_at;
    int late; /* fired before its time, or out of order */
    smtpx_loop_timer *handle[NTIMERS];
} tstate;

static tstate *ts;

static void timer_cb(smtpx_loop *loop, void *ud)
{
    int i = (int)(intptr_t)ud;

    ck_assert_ptr_eq(loop, ts->loop);
    if (smtpx_loop_now(loop) < ts->at[i] || ts->at[i] < ts->last_at)
        ts->late++;
    ts->last_at = ts->at[i];
    ts->fired[i]++;
    ts->order[ts->n++] = i;
}

START_TEST(test_timers_order_and_cancel)
{
    uint64_t base;
    int i, cancelled = 0;

    ts = calloc(1, sizeof(*ts));
    ck_assert_ptr_nonnull(ts);
    ck_assert_int_eq(smtpx_loop_new(&ts->loop, NULL), 0);
    srand(7);
    base = smtpx_posix_now_ms();
    for (i = 0; i < NTIMERS; i++) {
        /* Many ties: 0..199 ms in 20 steps. */
        ts->at[i] = base + 10 * (uint64_t)(rand() % 20);
        ck_assert_int_eq(smtpx_loop_timer_add(ts->loop, ts->at[i], timer_cb,
                                              (void *)(intptr_t)i,
                                              &ts->handle[i]),
                         0);
    }
    for (i = 0; i < NTIMERS; i += 3) {
        ck_assert_int_eq(smtpx_loop_timer_cancel(ts->loop, ts->handle[i]), 0);
        cancelled++;
    }
    while (ts->n < NTIMERS - cancelled && smtpx_posix_now_ms() < base + 5000)
        ck_assert_int_eq(smtpx_loop_run_once(ts->loop, -1), 1);
    ck_assert_int_eq(ts->n, NTIMERS - cancelled);
    ck_assert_int_eq(ts->late, 0);
    for (i = 0; i < NTIMERS; i++)
        ck_assert_int_eq(ts->fired[i], i % 3 == 0 ? 0 : 1);
    /* Ties ran in the order they were added. */
    for (i = 1; i < ts->n; i++)
        if (ts->at[ts->order[i]] == ts->at[ts->order[i - 1]])
            ck_assert_int_lt(ts->order[i - 1], ts->order[i]);
    /* Nothing left: a round waits its whole timeout. */
    base = smtpx_posix_now_ms();
    ck_assert_int_eq(smtpx_loop_run_once(ts->loop, 30), 1);
    ck_assert_uint_ge(smtpx_posix_now_ms() - base, 25);
    smtpx_loop_free(ts->loop);
    free(ts);
}
END_TEST

typedef struct chain {
    smtpx_loop *loop;
    smtpx_loop_timer *self, *other;
    int self_cancel, other_ran, runs, reentry;
    uint64_t round_of_first;
} chain;

static void chain_other(smtpx_loop *loop, void *ud)
{
    chain *c = ud;

    (void)loop;
    c->other_ran++;
}

static void chain_cb(smtpx_loop *loop, void *ud)
{
    chain *c = ud;

    c->runs++;
    /* Its own handle has fired: cancelling it is refused, harmlessly. */
    c->self_cancel = smtpx_loop_timer_cancel(loop, c->self);
    /* Another pending timer can be cancelled from here. */
    if (c->other != NULL) {
        ck_assert_int_eq(smtpx_loop_timer_cancel(loop, c->other), 0);
        c->other = NULL;
    }
    /* A round cannot be run from inside one. */
    c->reentry = smtpx_loop_run_once(loop, 0);
    /* A timer due now, added from a timer, runs in a later round. */
    if (c->runs < 5)
        ck_assert_int_eq(smtpx_loop_timer_add(loop, smtpx_loop_now(loop),
                                              chain_cb, c, &c->self),
                         0);
}

START_TEST(test_timer_from_callback)
{
    chain c;
    int rounds = 0;

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(smtpx_loop_new(&c.loop, NULL), 0);
    ck_assert_int_eq(smtpx_loop_timer_add(c.loop, 1, chain_cb, &c, &c.self), 0);
    ck_assert_int_eq(smtpx_loop_timer_add(c.loop, smtpx_posix_now_ms() + 50,
                                          chain_other, &c, &c.other),
                     0);
    while (c.runs < 5 && rounds < 100) {
        ck_assert_int_eq(smtpx_loop_run_once(c.loop, 1000), 1);
        rounds++;
    }
    ck_assert_int_eq(c.runs, 5);
    ck_assert_int_ge(rounds, 5); /* one per round */
    ck_assert_int_eq(c.self_cancel, SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(c.reentry, SMTPX_ERR_INVALID_STATE);
    /* The other was cancelled before its time. */
    usleep(80000);
    smtpx_loop_run_once(c.loop, 0);
    ck_assert_int_eq(c.other_ran, 0);
    ck_assert_int_eq(smtpx_loop_timer_add(NULL, 1, chain_cb, &c, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_loop_timer_add(c.loop, 1, NULL, &c, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_loop_timer_cancel(c.loop, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    /* A pending timer is dropped with the loop (no call, no leak). */
    ck_assert_int_eq(smtpx_loop_timer_add(c.loop, smtpx_posix_now_ms() + 60000,
                                          chain_other, &c, NULL),
                     0);
    smtpx_loop_free(c.loop);
    ck_assert_int_eq(c.other_ran, 0);
}
END_TEST

/* ---- application descriptors ----------------------------------------------
 */

typedef struct wstate {
    int rfd, wfd;
    int reads, bytes, writes, last_events;
    int unwatched;
} wstate;

static void w_read(smtpx_loop *loop, int fd, int events, void *ud)
{
    wstate *w = ud;
    char buf[16];
    ssize_t n;

    w->last_events = events;
    w->reads++;
    n = read(fd, buf, sizeof(buf));
    if (n > 0)
        w->bytes += (int)n;
    if (w->bytes >= 10 && !w->unwatched) {
        /* From its own callback: it does not run again. */
        ck_assert_int_eq(smtpx_loop_unwatch(loop, fd), 0);
        w->unwatched = 1;
    }
}

static void w_write(smtpx_loop *loop, int fd, int events, void *ud)
{
    wstate *w = ud;

    (void)fd;
    w->writes++;
    w->last_events = events;
    /* Asking for nothing keeps the watch quiet. */
    ck_assert_int_eq(smtpx_loop_watch(loop, fd, 0, w_write, w), 0);
}

static void w_writer(smtpx_loop *loop, void *ud)
{
    wstate *w = ud;

    (void)loop;
    ck_assert_int_eq(write(w->wfd, "01234", 5), 5);
}

START_TEST(test_watch)
{
    smtpx_loop *loop;
    wstate w;
    int p[2], sv[2], i;

    memset(&w, 0, sizeof(w));
    ck_assert_int_eq(smtpx_loop_new(&loop, NULL), 0);
    ck_assert_int_eq(pipe(p), 0);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    w.rfd = p[0];
    w.wfd = p[1];
    ck_assert_int_eq(smtpx_loop_watch(loop, p[0], SMTPX_WAIT_READ, w_read, &w),
                     0);
    /* Nothing to read: no call. */
    ck_assert_int_eq(smtpx_loop_run_once(loop, 20), 1);
    ck_assert_int_eq(w.reads, 0);
    /* Two writes from timers, 20 ms apart. */
    smtpx_loop_timer_add(loop, smtpx_posix_now_ms() + 10, w_writer, &w, NULL);
    smtpx_loop_timer_add(loop, smtpx_posix_now_ms() + 30, w_writer, &w, NULL);
    for (i = 0; i < 50 && !w.unwatched; i++)
        smtpx_loop_run_once(loop, 100);
    ck_assert_int_eq(w.unwatched, 1);
    ck_assert_int_eq(w.bytes, 10);
    ck_assert_int_eq(w.last_events, SMTPX_WAIT_READ);
    /* Unwatched: more data calls nobody. */
    i = w.reads;
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    smtpx_loop_run_once(loop, 20);
    ck_assert_int_eq(w.reads, i);
    ck_assert_int_eq(smtpx_loop_unwatch(loop, p[0]),
                     SMTPX_ERR_INVALID_ARGUMENT);
    /* A writable socket: one call, then events 0 keeps it quiet. */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(
        smtpx_loop_watch(loop, sv[0], SMTPX_WAIT_WRITE, w_write, &w), 0);
    for (i = 0; i < 5; i++)
        smtpx_loop_run_once(loop, 10);
    ck_assert_int_eq(w.writes, 1);
    ck_assert_int_eq(w.last_events, SMTPX_WAIT_WRITE);
    /* Watching again changes the events: readable when the peer writes,
     * and a hang-up shows as the bits asked for. */
    ck_assert_int_eq(smtpx_loop_watch(loop, sv[0], SMTPX_WAIT_READ, w_read, &w),
                     0);
    w.unwatched = 1;
    close(sv[1]);
    smtpx_loop_run_once(loop, 100);
    ck_assert_int_eq(w.last_events, SMTPX_WAIT_READ);
    ck_assert_int_eq(smtpx_loop_unwatch(loop, sv[0]), 0);
    ck_assert_int_eq(smtpx_loop_watch(loop, -1, SMTPX_WAIT_READ, w_read, &w),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_loop_watch(loop, p[0], 8, w_read, &w),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_loop_watch(loop, p[0], SMTPX_WAIT_READ, NULL, &w),
                     SMTPX_ERR_INVALID_ARGUMENT);
    /* A watch still there when the loop goes is forgotten, fd left open. */
    ck_assert_int_eq(smtpx_loop_watch(loop, p[0], SMTPX_WAIT_READ, w_read, &w),
                     0);
    smtpx_loop_free(loop);
    ck_assert_int_ge(fcntl(p[0], F_GETFD), 0); /* still open */
    ck_assert_int_eq(write(p[1], "y", 1), 1);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
}
END_TEST

/* ---- posting and waking ---------------------------------------------------
 */

#define POSTERS 4
#define POSTS   2000

typedef struct pstate {
    smtpx_loop *loop;
    pthread_t loop_thread;
    int count;
    int wrong_thread;
    int last[POSTERS];
    int out_of_order;
} pstate;

typedef struct pjob {
    pstate *ps;
    int thread, seq;
} pjob;

static void post_fn(smtpx_loop *loop, void *ud)
{
    pjob *j = ud;
    pstate *ps = j->ps;

    ck_assert_ptr_eq(loop, ps->loop);
    if (!pthread_equal(pthread_self(), ps->loop_thread))
        ps->wrong_thread++;
    if (j->seq != ps->last[j->thread] + 1)
        ps->out_of_order++;
    ps->last[j->thread] = j->seq;
    ps->count++;
    free(j);
}

typedef struct poster {
    pstate *ps;
    int thread;
} poster;

static void *poster_main(void *arg)
{
    poster *p = arg;
    int i;

    for (i = 1; i <= POSTS; i++) {
        pjob *j = malloc(sizeof(*j));
        if (j == NULL)
            abort();
        j->ps = p->ps;
        j->thread = p->thread;
        j->seq = i;
        if (smtpx_loop_post(p->ps->loop, post_fn, j) != 0)
            abort();
        if (i % 500 == 0)
            usleep(1000);
    }
    return NULL;
}

START_TEST(test_post_threads)
{
    pstate ps;
    poster p[POSTERS];
    pthread_t th[POSTERS];
    uint64_t end;
    int i;

    memset(&ps, 0, sizeof(ps));
    ck_assert_int_eq(smtpx_loop_new(&ps.loop, NULL), 0);
    ps.loop_thread = pthread_self();
    for (i = 0; i < POSTERS; i++) {
        p[i].ps = &ps;
        p[i].thread = i;
        ck_assert_int_eq(pthread_create(&th[i], NULL, poster_main, &p[i]), 0);
    }
    /* The loop sleeps without a timeout: only the posts wake it. */
    end = smtpx_posix_now_ms() + 10000;
    while (ps.count < POSTERS * POSTS && smtpx_posix_now_ms() < end)
        ck_assert_int_eq(smtpx_loop_run_once(ps.loop, 2000), 1);
    for (i = 0; i < POSTERS; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(ps.count, POSTERS * POSTS);
    ck_assert_int_eq(ps.wrong_thread, 0);
    ck_assert_int_eq(ps.out_of_order, 0);
    ck_assert_int_eq(smtpx_loop_post(NULL, post_fn, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_loop_post(ps.loop, NULL, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    /* Still posted when the loop is freed: run by smtpx_loop_free. */
    for (i = 0; i < 3; i++) {
        pjob *j = malloc(sizeof(*j));
        j->ps = &ps;
        j->thread = 0;
        j->seq = POSTS + 1 + i;
        ck_assert_int_eq(smtpx_loop_post(ps.loop, post_fn, j), 0);
    }
    smtpx_loop_free(ps.loop);
    ck_assert_int_eq(ps.count, POSTERS * POSTS + 3);
}
END_TEST

static smtpx_loop *sig_loop;
static volatile sig_atomic_t sig_count;

static void on_alarm(int sig)
{
    (void)sig;
    sig_count++;
    smtpx_loop_wake(sig_loop);
}

START_TEST(test_wake_from_signal)
{
    struct sigaction sa;
    struct itimerval it;
    uint64_t t0;

    ck_assert_int_eq(smtpx_loop_new(&sig_loop, NULL), 0);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* the wake-up, not EINTR, must end the wait */
    ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
    memset(&it, 0, sizeof(it));
    it.it_value.tv_usec = 50000;
    t0 = smtpx_posix_now_ms(); /* before the timer runs: never after */
    ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
    /* Nothing registered and no timeout: only the wake-up returns. */
    ck_assert_int_eq(smtpx_loop_run_once(sig_loop, -1), 1);
    ck_assert_int_eq(sig_count, 1);
    ck_assert_uint_ge(smtpx_posix_now_ms() - t0, 40);
    ck_assert_uint_lt(smtpx_posix_now_ms() - t0, 2000);
    /* Woken in advance: the next round does not wait. */
    smtpx_loop_wake(sig_loop);
    t0 = smtpx_posix_now_ms();
    ck_assert_int_eq(smtpx_loop_run_once(sig_loop, 5000), 1);
    ck_assert_uint_lt(smtpx_posix_now_ms() - t0, 1000);
    signal(SIGALRM, SIG_DFL);
    smtpx_loop_free(sig_loop);
}
END_TEST

/* ---- paused sessions answered off the loop thread -------------------------
 */

/*
 * A server and a client in one loop.  The server pauses on_data_end (and,
 * for the second message, on_mail); a worker thread decides after a while
 * and posts the answer.  Without the post waking the loop and the loop
 * pumping the answered session, the client would wait for its 10-minute
 * deadline.
 */
typedef struct job job;

typedef struct app {
    smtpx_loop *loop;
    pthread_mutex_t mu;
    job *jobs;
    int worker_stop;
    pthread_t worker;
    int answered, cancelled;
    int done;
    int txn_done;
    int between_rounds; /* answer on the loop thread, then wake */
    smtpx_server *held; /* for between_rounds */
    int close_status;
} app;

struct job {
    app *a;
    smtpx_server *s; /* NULL once the session closed */
    int code;
    job *next;
};

static void job_answer(smtpx_loop *loop, void *ud)
{
    job *j = ud;
    smtpx_reply r = {0, {0, 0, 0}, NULL};

    (void)loop;
    if (j->s != NULL) {
        r.code = j->code;
        r.enh[0] = (uint16_t)(j->code / 100);
        r.text = "decided by a worker";
        ck_assert_int_eq(smtpx_server_reply(j->s, &r, smtpx_loop_now(loop)), 0);
        j->a->answered++;
    } else {
        j->a->cancelled++;
    }
    free(j);
}

static void *worker_main(void *arg)
{
    app *a = arg;

    for (;;) {
        job *j;
        pthread_mutex_lock(&a->mu);
        j = a->jobs;
        if (j != NULL)
            a->jobs = j->next;
        pthread_mutex_unlock(&a->mu);
        if (j == NULL) {
            if (a->worker_stop)
                return NULL;
            usleep(2000);
            continue;
        }
        usleep(30000); /* the slow decision */
        if (smtpx_loop_post(a->loop, job_answer, j) != 0)
            abort();
    }
}

static int pause_for_worker(smtpx_server *s, app *a, int code)
{
    job *j = calloc(1, sizeof(*j));

    j->a = a;
    j->s = s;
    j->code = code;
    if (a->between_rounds) {
        a->held = s;
        free(j);
        return SMTPX_ERR_PAUSE;
    }
    pthread_mutex_lock(&a->mu);
    j->next = a->jobs;
    a->jobs = j;
    pthread_mutex_unlock(&a->mu);
    return SMTPX_ERR_PAUSE;
}

static int p_mail(smtpx_server *s, const smtpx_mail_info *m, smtpx_reply *r,
                  void *ud)
{
    (void)r;
    if (strcmp(m->from, "slow@example.org") != 0)
        return 0;
    return pause_for_worker(s, ud, 250);
}

static int p_data_end(smtpx_server *s, smtpx_reply *r, void *ud)
{
    (void)r;
    return pause_for_worker(s, ud, 250);
}

static void c_txn_done(smtpx_client *c, smtpx_txn *t, void *ud)
{
    app *a = ud;
    const smtpx_rcpt_status *st = smtpx_txn_rcpt(t, 0);

    (void)c;
    ck_assert_int_eq(st->state, SMTPX_RCPT_ACCEPTED);
    ck_assert_str_eq(st->reply.text, "decided by a worker");
    a->txn_done++;
}

static void c_done(smtpx_loop *loop, smtpx_client *c, int status, void *ud)
{
    app *a = ud;

    (void)loop;
    a->close_status = status;
    smtpx_client_free(c);
    a->done = 1;
}

static smtpx_txn *make_txn(const smtpx_config *ccfg, const char *from)
{
    smtpx_txn *t;
    static const char body[] = "Subject: hi\r\n\r\nhello\r\n";

    ck_assert_int_eq(smtpx_txn_new(&t, ccfg, from), 0);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "rcpt@example.org", NULL), 0);
    ck_assert_int_eq(smtpx_txn_set_body(t, body, sizeof(body) - 1), 0);
    return t;
}

/* run_paused - the worker answers (posting), or the test answers between
 * rounds on the loop thread (waking) */
static void run_paused(int between_rounds)
{
    static const smtpx_server_callbacks cbs = {
        .on_mail = p_mail,
        .on_data_end = p_data_end,
    };
    smtpx_client_callbacks ccbs = {.on_txn_done = c_txn_done};
    smtpx_config *scfg = server_cfg(0), *ccfg = client_cfg();
    smtpx_client *c;
    smtpx_txn *t1, *t2;
    app a;
    char port[16];
    int lfd, fd, p;
    uint64_t t0;

    memset(&a, 0, sizeof(a));
    a.between_rounds = between_rounds;
    pthread_mutex_init(&a.mu, NULL);
    ck_assert_int_eq(smtpx_loop_new(&a.loop, NULL), 0);
    lfd = listen_on(&p);
    ck_assert_int_eq(
        smtpx_loop_listen(a.loop, lfd, scfg, &cbs, sizeof(cbs), &a, NULL, NULL),
        0);
    if (!between_rounds)
        ck_assert_int_eq(pthread_create(&a.worker, NULL, worker_main, &a), 0);
    snprintf(port, sizeof(port), "%d", p);
    ck_assert_int_eq(smtpx_posix_connect_start("127.0.0.1", port, NULL, &fd),
                     0);
    ck_assert_int_eq(smtpx_client_new(&c, ccfg, &ccbs, sizeof(ccbs), &a), 0);
    t1 = make_txn(ccfg, "fast@example.org");
    t2 = make_txn(ccfg, "slow@example.org");
    ck_assert_int_eq(smtpx_client_ehlo(c, "client.test", NULL), 0);
    ck_assert_int_eq(smtpx_client_send(c, t1), 0);
    ck_assert_int_eq(smtpx_client_send(c, t2), 0);
    ck_assert_int_eq(smtpx_client_quit(c, NULL), 0);
    ck_assert_int_eq(smtpx_loop_add_client(a.loop, fd, c, NULL, c_done, &a), 0);
    t0 = smtpx_posix_now_ms();
    while (!a.done && smtpx_posix_now_ms() < t0 + 10000) {
        ck_assert_int_ge(smtpx_loop_run_once(a.loop, 1000), 0);
        if (between_rounds && a.held != NULL) {
            /* Decided on the loop thread between rounds: wake the loop so
             * that it looks at the paused session. */
            smtpx_reply r = {250, {2, 0, 0}, "decided by a worker"};
            smtpx_server *s = a.held;
            a.held = NULL;
            usleep(20000);
            ck_assert_int_eq(smtpx_server_reply(s, &r, smtpx_posix_now_ms()),
                             0);
            a.answered++;
            smtpx_loop_wake(a.loop);
        }
    }
    ck_assert_int_eq(a.done, 1);
    ck_assert_int_eq(a.close_status, 0);
    ck_assert_int_eq(a.txn_done, 2);
    ck_assert_int_eq(a.answered, 3); /* data end, MAIL, data end */
    /* 3 answers of about 30 ms, far from any deadline. */
    ck_assert_uint_lt(smtpx_posix_now_ms() - t0, 5000);
    a.worker_stop = 1;
    if (!between_rounds)
        pthread_join(a.worker, NULL);
    smtpx_txn_free(t1);
    smtpx_txn_free(t2);
    smtpx_loop_free(a.loop);
    smtpx_config_free(scfg);
    smtpx_config_free(ccfg);
    pthread_mutex_destroy(&a.mu);
}

START_TEST(test_pause_answered_by_worker)
{
    run_paused(0);
}
END_TEST

START_TEST(test_pause_answered_between_rounds)
{
    run_paused(1);
}
END_TEST

/*
 * A session goes while it waits for the application.  Either the answer
 * comes first (the client has gone: the loop learns it when it pumps the
 * answered session), or the session's deadline passes first: on_close
 * cancels the job and the answer, posted later, finds no session (ASan
 * would catch a reply to a freed one).
 */
typedef struct gone {
    smtpx_loop *loop;
    job *j;
    int closed, status;
} gone;

static int g_data_end(smtpx_server *s, smtpx_reply *r, void *ud)
{
    gone *g = ud;

    (void)r;
    g->j = calloc(1, sizeof(*g->j));
    g->j->s = s;
    g->j->code = 250;
    return SMTPX_ERR_PAUSE;
}

static void g_close(smtpx_server *s, int status, void *ud)
{
    gone *g = ud;

    (void)s;
    if (g->j != NULL)
        g->j->s = NULL; /* cancel: the answer will find nobody */
    g->closed++;
    g->status = status;
}

static int g_answered;

static void g_answer(smtpx_loop *loop, void *ud)
{
    job *j = ud;
    smtpx_reply r = {250, {2, 0, 0}, "stored"};

    if (j->s != NULL) {
        ck_assert_int_eq(smtpx_server_reply(j->s, &r, smtpx_loop_now(loop)), 0);
        g_answered++;
    }
    free(j);
}

/* g_pause - a client that sends a message and is left paused at its end */
static int g_pause(gone *g, int port)
{
    char buf[1024];
    int fd = connect_to(port);
    uint64_t end = smtpx_posix_now_ms() + 5000;

    smtpx_loop_run_once(g->loop, 1000);
    read_reply(fd, buf, sizeof(buf));
    say(fd, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
            "DATA\r\n");
    do {
        smtpx_loop_run_once(g->loop, 50);
        read_reply(fd, buf, sizeof(buf));
    } while (strncmp(buf, "354", 3) != 0 && smtpx_posix_now_ms() < end);
    say(fd, "hello\r\n.\r\n");
    while (g->j == NULL && smtpx_posix_now_ms() < end)
        smtpx_loop_run_once(g->loop, 50);
    ck_assert_ptr_nonnull(g->j);
    return fd;
}

START_TEST(test_pause_client_gone)
{
    static const smtpx_server_callbacks cbs = {.on_data_end = g_data_end,
                                               .on_close = g_close};
    smtpx_config *scfg;
    gone g;
    int lfd, p, fd;
    uint64_t end;

    ck_assert_int_eq(smtpx_config_new(&scfg, SMTPX_ROLE_SERVER, NULL), 0);
    smtpx_config_set_timeout(scfg, SMTPX_TIMEOUT_COMMAND, 300);
    smtpx_config_set_timeout(scfg, SMTPX_TIMEOUT_DATA, 300);
    ck_assert_int_eq(smtpx_config_freeze(scfg), 0);
    memset(&g, 0, sizeof(g));
    g_answered = 0;
    ck_assert_int_eq(smtpx_loop_new(&g.loop, NULL), 0);
    lfd = listen_on(&p);
    ck_assert_int_eq(
        smtpx_loop_listen(g.loop, lfd, scfg, &cbs, sizeof(cbs), &g, NULL, NULL),
        0);
    /* The answer first: the client has gone, the loop finds out. */
    fd = g_pause(&g, p);
    close(fd);
    ck_assert_int_eq(smtpx_loop_post(g.loop, g_answer, g.j), 0);
    g.j = NULL;
    end = smtpx_posix_now_ms() + 2000;
    while (smtpx_loop_sessions(g.loop) > 0 && smtpx_posix_now_ms() < end)
        smtpx_loop_run_once(g.loop, 50);
    ck_assert_uint_eq(smtpx_loop_sessions(g.loop), 0);
    ck_assert_int_eq(g_answered, 1);
    ck_assert_int_eq(g.closed, 1);
    /* The deadline first: 421, on_close cancels, the answer finds nobody. */
    fd = g_pause(&g, p);
    end = smtpx_posix_now_ms() + 3000;
    while (smtpx_loop_sessions(g.loop) > 0 && smtpx_posix_now_ms() < end)
        smtpx_loop_run_once(g.loop, 50);
    ck_assert_uint_eq(smtpx_loop_sessions(g.loop), 0);
    ck_assert_int_eq(g.closed, 2);
    ck_assert_int_eq(g.status, SMTPX_ERR_TIMEOUT);
    ck_assert_ptr_null(g.j->s);
    ck_assert_int_eq(smtpx_loop_post(g.loop, g_answer, g.j), 0);
    smtpx_loop_run_once(g.loop, 50);
    ck_assert_int_eq(g_answered, 1);
    close(fd);
    smtpx_loop_free(g.loop);
    smtpx_config_free(scfg);
}
END_TEST

/* ---- deadlines, back-pressure, stopping -----------------------------------
 */

#define IDLE 300

START_TEST(test_deadlines_many)
{
    smtpx_config *scfg = server_cfg(300);
    smtpx_loop *loop;
    int lfd, p, i, fds[IDLE], got = 0;
    char buf[1024];
    uint64_t t0, elapsed;

    ck_assert_int_eq(smtpx_loop_new(&loop, NULL), 0);
    lfd = listen_on(&p);
    ck_assert_int_eq(
        smtpx_loop_listen(loop, lfd, scfg, NULL, 0, NULL, NULL, NULL), 0);
    t0 = smtpx_posix_now_ms();
    for (i = 0; i < IDLE; i++) {
        fds[i] = connect_to(p);
        if (i % 50 == 49)
            smtpx_loop_run_once(loop, 0);
    }
    while (smtpx_loop_sessions(loop) < IDLE && smtpx_posix_now_ms() < t0 + 3000)
        smtpx_loop_run_once(loop, 10);
    ck_assert_uint_eq(smtpx_loop_sessions(loop), IDLE);
    /* Silent clients: each is timed out by its own deadline. */
    while (smtpx_loop_sessions(loop) > 0 && smtpx_posix_now_ms() < t0 + 5000)
        smtpx_loop_run_once(loop, -1);
    elapsed = smtpx_posix_now_ms() - t0;
    ck_assert_uint_eq(smtpx_loop_sessions(loop), 0);
    ck_assert_uint_ge(elapsed, 300);
    ck_assert_uint_lt(elapsed, 3000);
    for (i = 0; i < IDLE; i++) {
        read_reply(fds[i], buf, sizeof(buf));
        ck_assert_str_eq(buf, "220 mx.test ESMTP\r\n");
        read_reply(fds[i], buf, sizeof(buf));
        if (strcmp(buf, "421 4.4.2 Timeout, closing connection\r\n") == 0)
            got++;
        close(fds[i]);
    }
    ck_assert_int_eq(got, IDLE);
    ck_assert_uint_eq(smtpx_loop_counter(loop, SMTPX_LOOP_COUNTER_TIMEOUTS),
                      IDLE);
    smtpx_loop_free(loop);
    smtpx_config_free(scfg);
}
END_TEST

static smtpx_loop *child_loop;

static void child_stop(int sig)
{
    (void)sig;
    smtpx_loop_stop(child_loop, SMTPX_SHUTDOWN_DRAIN);
}

/* serve_child - a loop serving lfd in a child process until SIGTERM */
static pid_t serve_child(int lfd)
{
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        smtpx_config *cfg = server_cfg(0);
        struct sigaction sa;
        int rc;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = child_stop;
        sigaction(SIGTERM, &sa, NULL);
        if (smtpx_loop_new(&child_loop, NULL) != 0 ||
            smtpx_loop_listen(child_loop, lfd, cfg, NULL, 0, NULL, NULL,
                              NULL) != 0)
            _exit(10);
        rc = smtpx_loop_run(child_loop);
        smtpx_loop_free(child_loop);
        smtpx_config_free(cfg);
        _exit(rc == 0 ? 0 : 11);
    }
    close(lfd);
    return pid;
}

START_TEST(test_backpressure)
{
    /* A client pipelines thousands of EHLO and reads nothing for a while:
     * the server stops reading (its output is full) instead of closing,
     * then catches up once the client reads. */
    const char ehlo[] = "EHLO client.test\r\n";
    char buf[65536], head[4];
    int lfd, p, fd, status, sent = 0, finals = 0, total = 6000, col = 0;
    size_t off = 0;
    pid_t pid;
    uint64_t end;

    int small = 16384;

    /* Small socket buffers on both ends (accepted sockets inherit the
     * listener's), or loopback would absorb megabytes first. */
    lfd = listen_on(&p);
    setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    setsockopt(lfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    pid = serve_child(lfd);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    {
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)p);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    /* Write until the server has stopped taking input. */
    for (;;) {
        ssize_t n = write(fd, ehlo + off, sizeof(ehlo) - 1 - off);
        if (n < 0) {
            ck_assert_int_eq(errno, EAGAIN);
            struct pollfd pw = {fd, POLLOUT, 0};
            if (poll(&pw, 1, 300) == 0)
                break; /* blocked: both sides' buffers are full */
            continue;
        }
        off += (size_t)n;
        if (off == sizeof(ehlo) - 1) {
            off = 0;
            if (++sent == total)
                break;
        }
    }
    ck_assert_int_lt(sent, total); /* it did block */
    /* Now read and write until every EHLO has its reply. */
    end = smtpx_posix_now_ms() + 20000;
    while ((finals < total) && smtpx_posix_now_ms() < end) {
        struct pollfd pr = {fd, POLLIN | (sent < total ? POLLOUT : 0), 0};
        ck_assert_int_ge(poll(&pr, 1, 1000), 0);
        if (pr.revents & POLLIN) {
            ssize_t n = read(fd, buf, sizeof(buf));
            ck_assert_int_gt(n, 0);
            for (ssize_t i = 0; i < n; i++) {
                /* "250 " starts the last line of each EHLO reply. */
                if (buf[i] == '\n') {
                    col = 0;
                    continue;
                }
                if (col < 4)
                    head[col] = buf[i];
                if (++col == 4 && memcmp(head, "250 ", 4) == 0)
                    finals++;
            }
        }
        if ((pr.revents & POLLOUT) && sent < total) {
            ssize_t n = write(fd, ehlo + off, sizeof(ehlo) - 1 - off);
            if (n > 0) {
                off += (size_t)n;
                if (off == sizeof(ehlo) - 1) {
                    off = 0;
                    sent++;
                }
            }
        }
    }
    ck_assert_int_eq(finals, total);
    close(fd);
    kill(pid, SIGTERM);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

#define STOPN 400

START_TEST(test_stop_many)
{
    char buf[1024];
    int lfd, p, i, fds[STOPN], status, got = 0;
    pid_t pid;

    lfd = listen_on(&p);
    pid = serve_child(lfd);
    for (i = 0; i < STOPN; i++)
        fds[i] = connect_to(p);
    for (i = 0; i < STOPN; i++) {
        read_reply(fds[i], buf, sizeof(buf));
        ck_assert_str_eq(buf, "220 mx.test ESMTP\r\n");
    }
    say(fds[0], "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
                "DATA\r\n");
    read_reply(fds[0], buf, sizeof(buf));
    read_reply(fds[0], buf, sizeof(buf));
    read_reply(fds[0], buf, sizeof(buf));
    ck_assert_str_eq(read_reply(fds[0], buf, sizeof(buf)),
                     "354 End data with <CR><LF>.<CR><LF>\r\n");
    kill(pid, SIGTERM);
    /* Idle sessions: 421 at once.  The one in DATA may finish. */
    for (i = 1; i < STOPN; i++) {
        read_reply(fds[i], buf, sizeof(buf));
        if (strcmp(buf, "421 4.3.2 Service shutting down\r\n") == 0)
            got++;
        ck_assert_int_eq(read(fds[i], buf, 1), 0); /* and closed */
        close(fds[i]);
    }
    ck_assert_int_eq(got, STOPN - 1);
    say(fds[0], "last\r\n.\r\n");
    ck_assert_str_eq(read_reply(fds[0], buf, sizeof(buf)), "250 2.0.0 Ok\r\n");
    ck_assert_str_eq(read_reply(fds[0], buf, sizeof(buf)),
                     "421 4.3.2 Service shutting down\r\n");
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* ---- client sessions ------------------------------------------------------
 */

#define NCLIENTS 2000

typedef struct many {
    smtpx_loop *loop;
    const smtpx_config *ccfg;
    int port;
    int started, done, ok, accepted, msgs, failed;
    int server_msgs, server_closed;
    smtpx_txn *txn[NCLIENTS];
} many;

static int m_data_end(smtpx_server *s, smtpx_reply *r, void *ud)
{
    many *m = ud;

    (void)s;
    (void)r;
    m->server_msgs++;
    return 0;
}

static void m_close(smtpx_server *s, int status, void *ud)
{
    many *m = ud;

    (void)s;
    if (status == 0)
        m->server_closed++;
}

static void m_done(smtpx_loop *loop, smtpx_client *c, int status, void *ud)
{
    many *m = ud;

    (void)loop;
    m->done++;
    if (status == 0)
        m->ok++;
    else
        m->failed++;
    smtpx_client_free(c);
}

static void m_txn_done(smtpx_client *c, smtpx_txn *t, void *ud)
{
    many *m = ud;
    size_t counts[SMTPX_RCPT_STATE_COUNT];

    (void)c;
    smtpx_txn_counts(t, counts);
    m->accepted += (int)counts[SMTPX_RCPT_ACCEPTED];
    m->msgs++;
}

/* m_start - one client: connect without waiting, queue everything */
static void m_start(many *m, int i)
{
    static const smtpx_client_callbacks ccbs = {.on_txn_done = m_txn_done};
    char port[16];
    smtpx_client *c;
    int fd;

    snprintf(port, sizeof(port), "%d", m->port);
    ck_assert_int_eq(smtpx_posix_connect_start("127.0.0.1", port, NULL, &fd),
                     0);
    ck_assert_int_eq(smtpx_client_new(&c, m->ccfg, &ccbs, sizeof(ccbs), m), 0);
    m->txn[i] = make_txn(m->ccfg, "many@example.org");
    ck_assert_int_eq(smtpx_txn_add_rcpt(m->txn[i], "two@example.org", NULL), 0);
    ck_assert_int_eq(smtpx_client_ehlo(c, "client.test", NULL), 0);
    ck_assert_int_eq(smtpx_client_send(c, m->txn[i]), 0);
    ck_assert_int_eq(smtpx_client_quit(c, NULL), 0);
    ck_assert_int_eq(smtpx_loop_add_client(m->loop, fd, c, NULL, m_done, m), 0);
    m->started++;
}

START_TEST(test_many_clients_one_loop)
{
    static const smtpx_server_callbacks cbs = {.on_data_end = m_data_end,
                                               .on_close = m_close};
    smtpx_config *scfg = server_cfg(0), *ccfg = client_cfg();
    struct rlimit rl;
    many *m = calloc(1, sizeof(*m));
    uint64_t t0;
    int lfd, i, peak = 0;

    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * NCLIENTS + 100) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    ck_assert_uint_ge(rl.rlim_cur, 2 * NCLIENTS + 100);
    m->ccfg = ccfg;
    ck_assert_int_eq(smtpx_loop_new(&m->loop, NULL), 0);
    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "0", 4096, &lfd), 0);
    m->port = local_port(lfd);
    ck_assert_int_eq(
        smtpx_loop_listen(m->loop, lfd, scfg, &cbs, sizeof(cbs), m, NULL, NULL),
        0);
    /* Every connection is started at once: the loop makes them all and
     * runs both ends of each. */
    for (i = 0; i < NCLIENTS; i++)
        m_start(m, i);
    ck_assert_uint_eq(smtpx_loop_clients(m->loop), NCLIENTS);
    t0 = smtpx_posix_now_ms();
    while (m->done < NCLIENTS && smtpx_posix_now_ms() < t0 + 60000) {
        ck_assert_int_eq(smtpx_loop_run_once(m->loop, 1000), 1);
        if ((int)smtpx_loop_sessions(m->loop) > peak)
            peak = (int)smtpx_loop_sessions(m->loop);
    }
    ck_assert_int_eq(m->done, NCLIENTS);
    ck_assert_int_eq(m->ok, NCLIENTS);
    ck_assert_int_eq(m->msgs, NCLIENTS);
    ck_assert_int_eq(m->accepted, 2 * NCLIENTS);
    ck_assert_int_gt(peak, 100); /* they really ran side by side */
    ck_assert_uint_eq(smtpx_loop_clients(m->loop), 0);
    /* The server side ends when it reads the EOF after QUIT. */
    t0 = smtpx_posix_now_ms();
    while (smtpx_loop_sessions(m->loop) > 0 && smtpx_posix_now_ms() < t0 + 5000)
        smtpx_loop_run_once(m->loop, 100);
    ck_assert_int_eq(m->server_msgs, NCLIENTS);
    ck_assert_int_eq(m->server_closed, NCLIENTS);
    for (i = 0; i < NCLIENTS; i++)
        smtpx_txn_free(m->txn[i]);
    smtpx_loop_free(m->loop);
    smtpx_config_free(scfg);
    smtpx_config_free(ccfg);
    free(m);
}
END_TEST

typedef struct fail {
    int done, status, err;
    int replies, local;
} fail;

static void f_reply(smtpx_client *c, int cmd, void *cookie,
                    const smtpx_reply *r, void *ud)
{
    fail *f = ud;

    (void)c;
    (void)cmd;
    (void)cookie;
    f->replies++;
    if (smtpx_reply_local(r))
        f->local++;
}

static void f_done(smtpx_loop *loop, smtpx_client *c, int status, void *ud)
{
    fail *f = ud;

    (void)loop;
    f->err = errno;
    f->status = status;
    f->done = 1;
    smtpx_client_free(c);
}

/* connect_client - an unstarted client with EHLO, a transaction and QUIT
 * queued, connecting to port */
static void connect_client(smtpx_loop *loop, const smtpx_config *ccfg, int port,
                           smtpx_txn *t, fail *f)
{
    smtpx_client_callbacks ccbs = {.on_reply = f_reply};
    smtpx_client *c;
    char ps[16];
    int fd;

    snprintf(ps, sizeof(ps), "%d", port);
    ck_assert_int_eq(smtpx_posix_connect_start("127.0.0.1", ps, NULL, &fd), 0);
    ck_assert_int_eq(smtpx_client_new(&c, ccfg, &ccbs, sizeof(ccbs), f), 0);
    ck_assert_int_eq(smtpx_client_ehlo(c, "client.test", NULL), 0);
    ck_assert_int_eq(smtpx_client_send(c, t), 0);
    ck_assert_int_eq(smtpx_client_quit(c, NULL), 0);
    ck_assert_int_eq(smtpx_loop_add_client(loop, fd, c, NULL, f_done, f), 0);
}

START_TEST(test_client_connect_refused)
{
    smtpx_config *ccfg = client_cfg();
    smtpx_loop *loop;
    smtpx_txn *t = make_txn(ccfg, "a@example.org");
    fail f;
    int lfd, p;

    memset(&f, 0, sizeof(f));
    lfd = listen_on(&p);
    close(lfd); /* nothing listens there now */
    ck_assert_int_eq(smtpx_loop_new(&loop, NULL), 0);
    connect_client(loop, ccfg, p, t, &f);
    ck_assert(run_until(loop, &f.done, 5000));
    ck_assert_int_eq(f.status, SMTPX_ERR_CONNECT);
    ck_assert_int_eq(f.err, ECONNREFUSED);
    /* Everything queued was answered locally; the recipient is deferred. */
    ck_assert_int_eq(f.replies, f.local);
    ck_assert_int_ge(f.replies, 2);
    ck_assert_int_eq(smtpx_txn_done(t), 1);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_DEFERRED);
    ck_assert_uint_eq(smtpx_loop_clients(loop), 0);
    smtpx_txn_free(t);
    smtpx_loop_free(loop);
    smtpx_config_free(ccfg);
}
END_TEST

START_TEST(test_client_connect_timeout)
{
    smtpx_config *ccfg = client_cfg();
    smtpx_loop *loop;
    smtpx_txn *t = make_txn(ccfg, "a@example.org");
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    fail f;
    int lfd, filler, p;
    uint64_t t0, took;

    memset(&f, 0, sizeof(f));
    /* A listener that never accepts, its queue full: a new connection
     * hangs in SYN-SENT. */
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(lfd, 0), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    p = ntohs(a.sin_port);
    filler = connect_to(p);
    usleep(50000);
    ck_assert_int_eq(smtpx_loop_new(&loop, NULL), 0);
    smtpx_loop_set_connect_timeout(loop, 300);
    t0 = smtpx_posix_now_ms();
    connect_client(loop, ccfg, p, t, &f);
    ck_assert(run_until(loop, &f.done, 5000));
    took = smtpx_posix_now_ms() - t0;
    ck_assert_int_eq(f.status, SMTPX_ERR_TIMEOUT);
    ck_assert_int_eq(f.err, ETIMEDOUT);
    ck_assert_uint_ge(took, 290);
    ck_assert_uint_lt(took, 2000);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_DEFERRED);
    smtpx_txn_free(t);
    smtpx_loop_free(loop);
    smtpx_config_free(ccfg);
    close(filler);
    close(lfd);
}
END_TEST

START_TEST(test_client_stop_and_free)
{
    /* Clients of a loop stopped with NOW end with SMTPX_ERR_CLOSED; one
     * still running when the loop is freed ends the same way. */
    smtpx_config *ccfg = client_cfg(), *scfg = server_cfg(0);
    smtpx_loop *loop;
    smtpx_txn *t1 = make_txn(ccfg, "a@example.org");
    smtpx_txn *t2 = make_txn(ccfg, "b@example.org");
    fail f1, f2;
    int lfd, p, sfd;
    pid_t pid;

    memset(&f1, 0, sizeof(f1));
    memset(&f2, 0, sizeof(f2));
    /* A server that greets and then says nothing more: a child's raw
     * socket. */
    lfd = listen_on(&p);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int a, b;
        fcntl(lfd, F_SETFL, 0); /* blocking accept */
        a = accept(lfd, NULL, NULL);
        b = accept(lfd, NULL, NULL);
        if (write(a, "220 hi\r\n", 8) != 8 || write(b, "220 hi\r\n", 8) != 8)
            _exit(1);
        sleep(5);
        _exit(0);
    }
    close(lfd);
    ck_assert_int_eq(smtpx_loop_new(&loop, NULL), 0);
    connect_client(loop, ccfg, p, t1, &f1);
    connect_client(loop, ccfg, p, t2, &f2);
    /* Both connect and get their greeting; EHLO stays unanswered. */
    smtpx_loop_run_once(loop, 200);
    smtpx_loop_run_once(loop, 200);
    ck_assert_uint_eq(smtpx_loop_clients(loop), 2);
    smtpx_loop_stop(loop, SMTPX_SHUTDOWN_NOW);
    ck_assert_int_eq(smtpx_loop_run(loop), 0);
    ck_assert_int_eq(f1.done + f2.done, 2);
    ck_assert_int_eq(f1.status, SMTPX_ERR_CLOSED);
    ck_assert_int_eq(f2.status, SMTPX_ERR_CLOSED);
    ck_assert_int_eq(smtpx_txn_rcpt(t1, 0)->state, SMTPX_RCPT_DEFERRED);
    /* No more clients after NOW. */
    sfd = socket(AF_INET, SOCK_STREAM, 0);
    {
        smtpx_client *c;
        ck_assert_int_eq(smtpx_client_new(&c, ccfg, NULL, 0, NULL), 0);
        ck_assert_int_eq(smtpx_loop_add_client(loop, sfd, c, NULL, NULL, NULL),
                         SMTPX_ERR_INVALID_STATE);
        ck_assert_int_eq(smtpx_loop_add_client(loop, -1, c, NULL, NULL, NULL),
                         SMTPX_ERR_INVALID_ARGUMENT);
        smtpx_client_free(c);
        /* An ended client is refused whatever the loop's state. */
        ck_assert_int_eq(smtpx_loop_add_client(NULL, sfd, c, NULL, NULL, NULL),
                         SMTPX_ERR_INVALID_ARGUMENT);
    }
    close(sfd);
    smtpx_loop_free(loop);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    smtpx_txn_free(t1);
    smtpx_txn_free(t2);
    smtpx_config_free(ccfg);
    smtpx_config_free(scfg);
}
END_TEST

/* Both ends in one loop over TLS: STARTTLS from a client transport with
 * the mbedTLS adapter, verified against the test CA. */
typedef struct tstate2 {
    int done, status, verified, accepted;
    smtpx_txn *txn;
} tstate2;

static void t2_txn(smtpx_client *c, smtpx_txn *t, void *ud)
{
    tstate2 *s = ud;

    s->accepted = smtpx_txn_rcpt(t, 0)->state == SMTPX_RCPT_ACCEPTED;
    s->verified = smtpx_client_tls(c) != NULL && smtpx_client_tls(c)->verified;
}

/* t2_reply - EHLO, STARTTLS, EHLO again, then the message and QUIT */
static void t2_reply(smtpx_client *c, int cmd, void *cookie,
                     const smtpx_reply *r, void *ud)
{
    tstate2 *s = ud;

    (void)cookie;
    if (cmd == SMTPX_CMD_STARTTLS)
        ck_assert_int_eq(r->code, 220);
    if (cmd != SMTPX_CMD_EHLO || r->code != 250)
        return;
    if (smtpx_client_tls(c) == NULL) {
        ck_assert_int_eq(smtpx_client_starttls(c, NULL), 0);
        ck_assert_int_eq(smtpx_client_ehlo(c, "client.test", NULL), 0);
    } else {
        ck_assert_int_eq(smtpx_client_send(c, s->txn), 0);
        ck_assert_int_eq(smtpx_client_quit(c, NULL), 0);
    }
}

static void t2_done(smtpx_loop *loop, smtpx_client *c, int status, void *ud)
{
    tstate2 *s = ud;

    (void)loop;
    s->status = status;
    s->done = 1;
    smtpx_client_free(c);
}

START_TEST(test_client_tls_in_loop)
{
    smtpx_config *scfg = server_cfg(0), *ccfg;
    smtpx_client_callbacks ccbs = {.on_txn_done = t2_txn, .on_reply = t2_reply};
    smtpx_mbedtls *stls, *ctls;
    smtpx_transport *t;
    smtpx_client *c;
    smtpx_txn *txn;
    smtpx_loop *loop;
    smtpx_io io;
    tstate2 s;
    char ps[16];
    int lfd, p, fd;

    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(smtpx_config_new(&ccfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_set_policy(ccfg, SMTPX_POLICY_REQUIRE_TLS, 1),
                     0);
    ck_assert_int_eq(smtpx_config_freeze(ccfg), 0);
    ck_assert_int_eq(smtpx_mbedtls_new(&stls, 1), 0);
    ck_assert_int_eq(smtpx_mbedtls_add_cert_file(stls, TLS_DIR "server.pem",
                                                 TLS_DIR "server.key", NULL),
                     0);
    ck_assert_int_eq(smtpx_mbedtls_new(&ctls, 0), 0);
    ck_assert_int_eq(smtpx_mbedtls_add_ca_file(ctls, TLS_DIR "ca.pem"), 0);
    ck_assert_int_eq(smtpx_loop_new(&loop, NULL), 0);
    lfd = listen_on(&p);
    ck_assert_int_eq(smtpx_loop_listen(loop, lfd, scfg, NULL, 0, NULL,
                                       smtpx_mbedtls_ops(), stls),
                     0);
    snprintf(ps, sizeof(ps), "%d", p);
    ck_assert_int_eq(smtpx_posix_connect_start("127.0.0.1", ps, NULL, &fd), 0);
    smtpx_posix_io(&io, fd);
    ck_assert_int_eq(smtpx_transport_new(&t, &io, NULL), 0);
    ck_assert_int_eq(smtpx_transport_set_tls(t, smtpx_mbedtls_ops(), ctls), 0);
    ck_assert_int_eq(smtpx_transport_set_peer_name(t, "localhost", 1), 0);
    ck_assert_int_eq(smtpx_client_new(&c, ccfg, &ccbs, sizeof(ccbs), &s), 0);
    txn = make_txn(ccfg, "tls@example.org");
    s.txn = txn;
    ck_assert_int_eq(smtpx_client_ehlo(c, "client.test", NULL), 0);
    ck_assert_int_eq(smtpx_loop_add_client(loop, fd, c, t, t2_done, &s), 0);
    ck_assert(run_until(loop, &s.done, 10000));
    ck_assert_int_eq(s.status, 0);
    ck_assert_int_eq(s.accepted, 1);
    ck_assert_int_eq(s.verified, 1);
    smtpx_txn_free(txn);
    smtpx_loop_free(loop);
    smtpx_mbedtls_free(stls);
    smtpx_mbedtls_free(ctls);
    smtpx_config_free(scfg);
    smtpx_config_free(ccfg);
}
END_TEST

/* ---- per-session state ----------------------------------------------------
 */

typedef struct sess {
    int id;
    uint16_t port;
    int mails;
} sess;

typedef struct lstate {
    int made, freed, refused, bad_pairs, mails;
    int live;
    sess *last;
} lstate;

static int ls_new(smtpx_loop *loop, const smtpx_peer *peer, void **sud,
                  void *ud)
{
    lstate *st = ud;
    sess *x;

    (void)loop;
    ck_assert_ptr_null(*sud);
    ck_assert_str_eq(peer->addr, "127.0.0.1");
    if ((st->made + st->refused) % 5 == 4) {
        st->refused++;
        return -1; /* refused: no session, no free */
    }
    x = calloc(1, sizeof(*x));
    x->id = ++st->made;
    x->port = peer->port;
    st->live++;
    *sud = x;
    return 0;
}

static void ls_free(smtpx_loop *loop, void *sud, void *ud)
{
    lstate *st = ud;
    sess *x = sud;

    (void)loop;
    if (x == NULL || x->id <= 0)
        st->bad_pairs++;
    x->id = -x->id; /* a second free would be seen as bad */
    st->freed++;
    st->live--;
    free(x);
}

static int ls_connect(smtpx_server *s, const smtpx_peer *peer, smtpx_reply *r,
                      void *ud)
{
    sess *x = ud;

    (void)s;
    /* Each session has its own state. */
    ck_assert_uint_eq(x->port, peer->port);
    if (x->id % 3 == 0)
        return SMTPX_ERR_CALLBACK_FAILURE;
    if (x->id % 3 == 1 && x->id > 1)
        *r = (smtpx_reply){554, {0, 0, 0}, "No service for you"};
    return 0;
}

static int ls_mail(smtpx_server *s, const smtpx_mail_info *m, smtpx_reply *r,
                   void *ud)
{
    sess *x = ud;

    (void)s;
    (void)m;
    (void)r;
    x->mails++;
    ck_assert_int_eq(x->mails, 1); /* not shared with another session */
    return 0;
}

START_TEST(test_session_new_free)
{
    static const smtpx_server_callbacks cbs = {.on_connect = ls_connect,
                                               .on_mail = ls_mail};
    smtpx_config *scfg = server_cfg(0);
    smtpx_listen_opts o;
    smtpx_posix_addr pa;
    smtpx_loop *loop;
    lstate st;
    char buf[1024];
    int lfd, p, i, fds[20], kept = -1;
    uint64_t end;

    memset(&st, 0, sizeof(st));
    ck_assert_int_eq(smtpx_loop_new(&loop, NULL), 0);
    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "0", 0, &lfd), 0);
    /* The real port of a listener bound to port 0. */
    ck_assert_int_eq(smtpx_posix_getaddr(lfd, &pa), 0);
    ck_assert_str_eq(pa.local_addr, "127.0.0.1");
    ck_assert_uint_ne(pa.local_port, 0);
    ck_assert_str_eq(pa.addr, "");
    p = pa.local_port;
    ck_assert_int_eq(smtpx_posix_getaddr(lfd, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_posix_getaddr(-1, &pa), SMTPX_ERR_IO);
    memset(&o, 0, sizeof(o));
    ck_assert_int_eq(smtpx_loop_add_listener(loop, lfd, &o),
                     SMTPX_ERR_INVALID_ARGUMENT); /* no size */
    o.size = sizeof(o);
    ck_assert_int_eq(smtpx_loop_add_listener(loop, lfd, &o),
                     SMTPX_ERR_INVALID_ARGUMENT); /* no config */
    o.cfg = scfg;
    o.cbs = &cbs;
    o.cbs_size = sizeof(cbs);
    o.user_data = &st;
    o.on_session_new = ls_new;
    o.on_session_free = ls_free;
    o.mode = 7;
    ck_assert_int_eq(smtpx_loop_add_listener(loop, lfd, &o),
                     SMTPX_ERR_INVALID_ARGUMENT);
    o.mode = SMTPX_LISTEN_STARTTLS;
    ck_assert_int_eq(smtpx_loop_add_listener(loop, lfd, &o), 0);
    for (i = 0; i < 20; i++) {
        fds[i] = connect_to(p);
        smtpx_loop_run_once(loop, 0);
    }
    for (i = 0; i < 20; i++) {
        smtpx_posix_addr ca;
        smtpx_loop_run_once(loop, 0);
        ck_assert_int_eq(smtpx_posix_getaddr(fds[i], &ca), 0);
        ck_assert_uint_eq(ca.port, p);
        read_reply(fds[i], buf, sizeof(buf));
        if (strncmp(buf, "220 ", 4) == 0) {
            say(fds[i], "EHLO c\r\nMAIL FROM:<a@b.example>\r\n");
            if (kept < 0) {
                kept = i; /* left open when the loop is freed */
                continue;
            }
            say(fds[i], "QUIT\r\n");
        } else if (strncmp(buf, "554 ", 4) == 0) {
            say(fds[i], "QUIT\r\n"); /* refused by on_connect */
        } else {
            ck_assert_msg(strncmp(buf, "421 ", 4) == 0, "got [%s]", buf);
        }
    }
    end = smtpx_posix_now_ms() + 5000;
    while (smtpx_loop_sessions(loop) > 1 && smtpx_posix_now_ms() < end)
        smtpx_loop_run_once(loop, 20);
    ck_assert_uint_eq(smtpx_loop_sessions(loop), 1);
    ck_assert_int_eq(st.refused, 4);
    ck_assert_int_eq(st.made, 16);
    ck_assert_int_eq(st.freed, 15);
    smtpx_loop_free(loop); /* the last session goes with the loop */
    ck_assert_int_eq(st.freed, 16);
    ck_assert_int_eq(st.live, 0);
    ck_assert_int_eq(st.bad_pairs, 0);
    for (i = 0; i < 20; i++) {
        if (i != kept)
            continue;
        read_reply(fds[i], buf, sizeof(buf));
    }
    for (i = 0; i < 20; i++)
        close(fds[i]);
    smtpx_config_free(scfg);
}
END_TEST

/* ---- limits and counters ---------------------------------------------------
 */

/* loop_reply - run the loop until a whole reply has come on fd */
static char *loop_reply(smtpx_loop *loop, int fd, char *buf, size_t size)
{
    uint64_t end = smtpx_posix_now_ms() + 5000;
    size_t len = 0;

    buf[0] = '\0';
    while (smtpx_posix_now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        char *line;
        smtpx_loop_run_once(loop, 10);
        if (poll(&p, 1, 0) != 1)
            continue;
        if (read(fd, buf + len, 1) != 1)
            return buf;
        buf[++len] = '\0';
        ck_assert_uint_lt(len, size - 1);
        if (buf[len - 1] != '\n')
            continue;
        line = buf + len - 1;
        while (line > buf && line[-1] != '\n')
            line--;
        if (strlen(line) >= 4 && line[3] == ' ')
            return buf;
    }
    return buf;
}

static int lim_logged;

static void lim_log(int level, const char *msg, void *ud)
{
    (void)level;
    (void)ud;
    ck_assert_ptr_nonnull(strstr(msg, "127.0.0.1"));
    lim_logged++;
}

static int app_mails;

static int count_mail(smtpx_server *s, const smtpx_mail_info *m, smtpx_reply *r,
                      void *ud)
{
    (void)s;
    (void)m;
    (void)r;
    ck_assert_ptr_eq(ud, &app_mails);
    app_mails++;
    return 0;
}

static int auth_calls;

static int check_pw(smtpx_server *s, const smtpx_auth_info *a, smtpx_reply *r,
                    void *ud)
{
    (void)s;
    (void)ud;
    auth_calls++;
    if (a->secret != NULL && a->secret_len == 2 &&
        memcmp(a->secret, "pw", 2) == 0) {
        r->code = 235;
        r->enh[0] = 2;
        r->enh[1] = 7;
        r->enh[2] = 0;
        r->text = "ok";
    }
    return 0;
}

/*
 * The limiter's AUTH rate holds across sessions of one address, and an
 * attempt over it is answered 454 before the application's on_auth (so
 * no password check is spent on it); AUTH is still offered only where the
 * application serves it.
 */
START_TEST(test_auth_rate)
{
    static const smtpx_server_callbacks cbs = {.on_auth = check_pw};
    /* "\0tim\0no" and "\0tim\0pw" */
    static const char bad[] = "AUTH PLAIN AHRpbQBubw==\r\n",
                      good[] = "AUTH PLAIN AHRpbQBwdw==\r\n";
    smtpx_config *scfg;
    smtpx_limiter_opts lo;
    smtpx_listen_opts o;
    smtpx_limiter *lim;
    smtpx_loop *loop;
    char buf[2048];
    int lfd, p, a, b;

    ck_assert_int_eq(smtpx_config_new(&scfg, SMTPX_ROLE_SERVER, NULL), 0);
    ck_assert_int_eq(smtpx_config_set_hostname(scfg, "mx.test"), 0);
    ck_assert_int_eq(
        smtpx_config_set_policy(scfg, SMTPX_POLICY_AUTH_CLEARTEXT, 1), 0);
    ck_assert_int_eq(smtpx_config_freeze(scfg), 0);
    memset(&lo, 0, sizeof(lo));
    lo.size = sizeof(lo);
    lo.auth_rate = 3;
    ck_assert_int_eq(smtpx_limiter_new(&lim, &lo, NULL), 0);
    ck_assert_int_eq(smtpx_loop_new(&loop, NULL), 0);
    lfd = listen_on(&p);
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.cfg = scfg;
    o.cbs = &cbs;
    o.cbs_size = sizeof(cbs);
    o.limiter = lim;
    ck_assert_int_eq(smtpx_loop_add_listener(loop, lfd, &o), 0);
    a = connect_to(p);
    loop_reply(loop, a, buf, sizeof(buf));
    say(a, "EHLO c\r\n");
    ck_assert_ptr_nonnull(
        strstr(loop_reply(loop, a, buf, sizeof(buf)), "250-AUTH "));
    say(a, bad);
    ck_assert_str_eq(loop_reply(loop, a, buf, sizeof(buf)),
                     "535 5.7.8 Authentication credentials invalid\r\n");
    say(a, bad);
    loop_reply(loop, a, buf, sizeof(buf));
    ck_assert_int_eq(auth_calls, 2);
    /* Another session from the same address shares the rate. */
    b = connect_to(p);
    loop_reply(loop, b, buf, sizeof(buf));
    say(b, "EHLO c\r\n");
    loop_reply(loop, b, buf, sizeof(buf));
    say(b, good);
    ck_assert_str_eq(loop_reply(loop, b, buf, sizeof(buf)), "235 2.7.0 ok\r\n");
    ck_assert_int_eq(auth_calls, 3);
    say(a, good);
    ck_assert_str_eq(loop_reply(loop, a, buf, sizeof(buf)),
                     "454 4.7.0 Error: too many AUTH attempts from 127.0.0.1, "
                     "try later\r\n");
    ck_assert_int_eq(auth_calls, 3);
    ck_assert_uint_eq(smtpx_loop_counter(loop, SMTPX_LOOP_COUNTER_AUTH_RATE),
                      1);
    close(a);
    close(b);
    smtpx_loop_free(loop);
    smtpx_limiter_free(lim);
    smtpx_config_free(scfg);
}
END_TEST

START_TEST(test_limits_and_counters)
{
    static const smtpx_server_callbacks cbs = {.on_mail = count_mail};
    smtpx_config *scfg = server_cfg(0);
    smtpx_limiter_opts lo;
    smtpx_listen_opts o;
    smtpx_limiter *lim;
    smtpx_loop *loop;
    char buf[2048];
    int lfd, p, a, b, c;

    memset(&lo, 0, sizeof(lo));
    lo.size = sizeof(lo);
    lo.addr_sessions = 2;
    lo.msg_rate = 2;
    lo.log = lim_log;
    ck_assert_int_eq(smtpx_limiter_new(&lim, &lo, NULL), 0);
    ck_assert_int_eq(smtpx_loop_new(&loop, NULL), 0);
    lfd = listen_on(&p);
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.cfg = scfg;
    o.cbs = &cbs;
    o.cbs_size = sizeof(cbs);
    o.user_data = &app_mails;
    o.limiter = lim;
    ck_assert_int_eq(smtpx_loop_add_listener(loop, lfd, &o), 0);
    a = connect_to(p);
    ck_assert_str_eq(loop_reply(loop, a, buf, sizeof(buf)),
                     "220 mx.test ESMTP\r\n");
    b = connect_to(p);
    ck_assert_str_eq(loop_reply(loop, b, buf, sizeof(buf)),
                     "220 mx.test ESMTP\r\n");
    c = connect_to(p);
    ck_assert_str_eq(loop_reply(loop, c, buf, sizeof(buf)),
                     "421 4.7.0 mx.test Error: too many connections from "
                     "127.0.0.1\r\n");
    close(c);
    ck_assert_uint_eq(smtpx_loop_counter(loop, SMTPX_LOOP_COUNTER_REFUSED_ADDR),
                      1);
    ck_assert_int_eq(lim_logged, 1);
    /* A message on a, one MAIL on b, then a's second MAIL is over the
     * address's rate: 450, and the application never sees it. */
    say(a, "EHLO c\r\n");
    loop_reply(loop, a, buf, sizeof(buf));
    say(a, "MAIL FROM:<x@y.example>\r\n");
    ck_assert_str_eq(loop_reply(loop, a, buf, sizeof(buf)), "250 2.1.0 Ok\r\n");
    say(a, "RCPT TO:<r@y.example>\r\n");
    loop_reply(loop, a, buf, sizeof(buf));
    say(a, "DATA\r\n");
    loop_reply(loop, a, buf, sizeof(buf));
    say(a, "hi\r\n.\r\n");
    ck_assert_str_eq(loop_reply(loop, a, buf, sizeof(buf)), "250 2.0.0 Ok\r\n");
    say(b, "EHLO c\r\nMAIL FROM:<x@y.example>\r\n");
    loop_reply(loop, b, buf, sizeof(buf));
    ck_assert_str_eq(loop_reply(loop, b, buf, sizeof(buf)), "250 2.1.0 Ok\r\n");
    say(a, "MAIL FROM:<x@y.example>\r\n");
    ck_assert_str_eq(loop_reply(loop, a, buf, sizeof(buf)),
                     "450 4.7.1 Error: too much mail from 127.0.0.1\r\n");
    ck_assert_int_eq(app_mails, 2);
    ck_assert_uint_eq(smtpx_loop_counter(loop, SMTPX_LOOP_COUNTER_MAIL_RATE),
                      1);
    ck_assert_uint_eq(smtpx_loop_counter(loop, SMTPX_LOOP_COUNTER_MESSAGES), 1);
    ck_assert_uint_eq(smtpx_loop_counter(loop, SMTPX_LOOP_COUNTER_SESSIONS), 2);
    ck_assert_uint_eq(
        smtpx_loop_counter(loop, SMTPX_LOOP_COUNTER_SESSIONS_OPEN), 2);
    ck_assert_uint_gt(smtpx_loop_counter(loop, SMTPX_LOOP_COUNTER_BYTES_IN),
                      60);
    ck_assert_uint_gt(smtpx_loop_counter(loop, SMTPX_LOOP_COUNTER_BYTES_OUT),
                      200);
    ck_assert_uint_eq(smtpx_limiter_sessions(lim), 2);
    say(a, "QUIT\r\n");
    loop_reply(loop, a, buf, sizeof(buf));
    close(a);
    close(b); /* b just goes */
    {
        uint64_t end = smtpx_posix_now_ms() + 5000;
        while (smtpx_loop_sessions(loop) > 0 && smtpx_posix_now_ms() < end)
            smtpx_loop_run_once(loop, 20);
    }
    ck_assert_uint_eq(
        smtpx_loop_counter(loop, SMTPX_LOOP_COUNTER_SESSIONS_OPEN), 0);
    ck_assert_uint_eq(smtpx_limiter_sessions(lim), 0);
    ck_assert_str_eq(smtpx_loop_counter_name(SMTPX_LOOP_COUNTER_SESSIONS),
                     "sessions");
    ck_assert_ptr_null(smtpx_loop_counter_name(SMTPX_LOOP_COUNTER_COUNT));
    ck_assert_uint_eq(smtpx_loop_counter(loop, -1), 0);
    ck_assert_uint_eq(smtpx_loop_counter(NULL, 0), 0);
    smtpx_loop_free(loop);
    smtpx_limiter_free(lim);
    smtpx_config_free(scfg);
}
END_TEST

/* ---- allocation failures ----------------------------------------------------
 */

static void noop_fn(smtpx_loop *loop, void *ud)
{
    (void)loop;
    (*(int *)ud)++;
}

static void noop_io(smtpx_loop *loop, int fd, int events, void *ud)
{
    (void)loop;
    (void)fd;
    (void)events;
    (void)ud;
}

START_TEST(test_nomem_sweep)
{
    /* Every allocation of the loop's own fails in turn: each call says
     * SMTPX_ERR_NOMEM or succeeds, and nothing leaks. */
    smtpx_config *scfg = server_cfg(0), *ccfg = client_cfg();
    long at;
    int completed = 0;

    for (at = 1; at < 200 && !completed; at++) {
        failmalloc fm = {.fail_at = at};
        smtpx_mem mem = failmalloc_mem(&fm);
        smtpx_loop *loop;
        smtpx_client *c;
        int rc, lfd, p, sv[2], ran = 0, i;

        rc = smtpx_loop_new(&loop, &mem);
        if (rc != 0) {
            ck_assert_int_eq(rc, SMTPX_ERR_NOMEM);
            ck_assert_int_eq(fm.live, 0);
            continue;
        }
        lfd = listen_on(&p);
        rc = smtpx_loop_listen(loop, lfd, scfg, NULL, 0, NULL, NULL, NULL);
        if (rc != 0) {
            ck_assert_int_eq(rc, SMTPX_ERR_NOMEM);
            close(lfd);
        }
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        rc = smtpx_loop_watch(loop, sv[0], SMTPX_WAIT_READ, noop_io, NULL);
        ck_assert(rc == 0 || rc == SMTPX_ERR_NOMEM);
        for (i = 0; i < 70; i++) {
            rc = smtpx_loop_timer_add(loop, 1, noop_fn, &ran, NULL);
            ck_assert(rc == 0 || rc == SMTPX_ERR_NOMEM);
            rc = smtpx_loop_post(loop, noop_fn, &ran);
            ck_assert(rc == 0 || rc == SMTPX_ERR_NOMEM);
        }
        ck_assert_int_eq(smtpx_client_new(&c, ccfg, NULL, 0, NULL), 0);
        rc = smtpx_loop_add_client(loop, sv[1], c, NULL, NULL, NULL);
        ck_assert(rc == 0 || rc == SMTPX_ERR_NOMEM);
        if (rc != 0)
            close(sv[1]);
        smtpx_loop_run_once(loop, 0);
        smtpx_loop_free(loop);
        smtpx_client_free(c);
        close(sv[0]);
        ck_assert_int_eq(fm.live, 0);
        if (fm.failures == 0)
            completed = 1;
    }
    ck_assert(completed);
    smtpx_config_free(scfg);
    smtpx_config_free(ccfg);
}
END_TEST

Suite *suite_loop(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("loop");
    TCase *big = tcase_create("many");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_backend);
    tcase_add_test(tc, test_timers_order_and_cancel);
    tcase_add_test(tc, test_timer_from_callback);
    tcase_add_test(tc, test_watch);
    tcase_add_test(tc, test_post_threads);
    tcase_add_test(tc, test_wake_from_signal);
    tcase_add_test(tc, test_pause_answered_by_worker);
    tcase_add_test(tc, test_pause_answered_between_rounds);
    tcase_add_test(tc, test_pause_client_gone);
    tcase_add_test(tc, test_deadlines_many);
    tcase_add_test(tc, test_backpressure);
    tcase_add_test(tc, test_stop_many);
    tcase_add_test(tc, test_client_connect_refused);
    tcase_add_test(tc, test_client_connect_timeout);
    tcase_add_test(tc, test_client_stop_and_free);
    tcase_add_test(tc, test_client_tls_in_loop);
    tcase_add_test(tc, test_session_new_free);
    tcase_add_test(tc, test_limits_and_counters);
    tcase_add_test(tc, test_auth_rate);
    tcase_add_test(tc, test_nomem_sweep);
    suite_add_tcase(s, tc);
    tcase_set_timeout(big, 120);
    tcase_add_test(big, test_many_clients_one_loop);
    suite_add_tcase(s, big);
    return s;
}
