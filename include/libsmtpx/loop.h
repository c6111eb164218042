/*
 * libsmtpx - the event loop (opt-in header; <libsmtpx/posix.h> includes
 * it).
 *
 * An smtpx_loop runs, in the one thread that calls smtpx_loop_run(), any
 * number of server sessions (accepted from listeners), client sessions
 * (handed over by the application), the application's own descriptors and
 * timers.  It uses epoll on Linux and poll() elsewhere, chosen when the
 * library is built (smtpx_loop_backend() says which).  The work per event
 * does not grow with the number of sessions: descriptors are registered
 * once and changed only when what a session waits for changes, and the
 * deadlines (sessions' expiry, application timers) are kept in a heap.
 * The loop holds no protocol knowledge and no buffer per session: it moves
 * bytes with smtpx_server_pump() and smtpx_client_pump().
 *
 * Threads.  A loop and every session it runs belong to the thread that
 * runs the loop.  Only three calls may be made from elsewhere:
 * smtpx_loop_post() (any thread), smtpx_loop_wake() and smtpx_loop_stop()
 * (any thread, and signal handlers).  In particular smtpx_server_reply()
 * and smtpx_server_resume() must run on the loop thread: a worker thread
 * that decided how to answer a paused session posts a function that does
 * it.
 *
 * Paused sessions.  A server callback that returns SMTPX_ERR_PAUSE leaves
 * its session waiting for the application.  Once the application has
 * answered it (smtpx_server_reply() or smtpx_server_resume()) in a posted
 * function, a timer or a watch callback of this loop, the loop notices it
 * at the end of that round and pumps the session again.  An answer given
 * anywhere else on the loop thread (between two smtpx_loop_run_once()
 * calls, say) needs smtpx_loop_wake() for the loop to notice it.  Looking
 * costs a few loads per paused session, and is done only in rounds that
 * ran such application code.
 */
#ifndef LIBSMTPX_LOOP_H
#define LIBSMTPX_LOOP_H

#include <libsmtpx/common.h>
#include <libsmtpx/conf.h>
#include <libsmtpx/server.h>
#include <libsmtpx/client.h>
#include <libsmtpx/limiter.h>
#include <libsmtpx/tls.h>
#include <libsmtpx/transport.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The PROXY protocol versions a listener takes (smtpx_listen_opts). */
#define SMTPX_PROXY_NONE 0
#define SMTPX_PROXY_V1   1 /* the text line */
#define SMTPX_PROXY_V2   2 /* the binary header, with its TLVs */
#define SMTPX_PROXY_ANY  3 /* either */

/** How a listener or a served connection uses its TLS implementation. */
#define SMTPX_LISTEN_STARTTLS     0 /* offer STARTTLS (RFC 3207) */
#define SMTPX_LISTEN_IMPLICIT_TLS 1 /* TLS from the first byte (RFC 8314) */

typedef struct smtpx_loop smtpx_loop;
typedef struct smtpx_loop_timer smtpx_loop_timer;

/** A function the loop runs on its thread: posted (smtpx_loop_post) or
 *  at a time (smtpx_loop_timer_add). */
typedef void smtpx_loop_fn(smtpx_loop *loop, void *user_data);

/** An application descriptor is ready: events holds SMTPX_WAIT_READ and
 *  SMTPX_WAIT_WRITE bits (an error or hang-up shows as the bits the watch
 *  asked for, so that the next read or write reports it). */
typedef void smtpx_loop_io_fn(smtpx_loop *loop, int fd, int events,
                              void *user_data);

/** A client session handed to the loop has ended: status is
 *  smtpx_client_status() (0 after QUIT). */
typedef void smtpx_loop_client_fn(smtpx_loop *loop, smtpx_client *c, int status,
                                  void *user_data);

/**
 * @brief  Make an event loop.
 * @param  mem  Allocator for the loop's own memory; NULL for libc's;
 *              copied.  smtpx_loop_post() allocates through it on the
 *              posting thread, so it must then be thread-safe (libc's
 *              is).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (out NULL or an incomplete mem),
 *         SMTPX_ERR_NOMEM, SMTPX_ERR_IO (epoll, or the wake-up descriptor;
 *         errno tells more).
 */
SMTPX_EXTERN int smtpx_loop_new(smtpx_loop **out, const smtpx_mem *mem);

/**
 * @brief  Free a loop (NULL-safe).  Functions still posted run first.
 *         Then listeners are closed, server sessions still open are freed
 *         (their on_close fires), client sessions are ended with
 *         SMTPX_ERR_CLOSED (on_done fires), watches are forgotten (their
 *         descriptors stay open) and timers dropped without a call.  Not
 *         from a callback of the loop.
 */
SMTPX_EXTERN void smtpx_loop_free(smtpx_loop *loop);

/** @brief The backend the library was built with: "epoll" or "poll". */
SMTPX_EXTERN const char *smtpx_loop_backend(const smtpx_loop *loop);

/**
 * @brief  The loop's time (smtpx_posix_now_ms() clock), read once per
 *         round after waiting: within callbacks, the now_ms to give the
 *         sessions and the base of timers.  Outside a round, the clock.
 */
SMTPX_EXTERN uint64_t smtpx_loop_now(const smtpx_loop *loop);

/* ---- servers ------------------------------------------------------------ */

/**
 * @brief  Serve SMTP on a listening socket: each accepted connection gets
 *         a server session made with cfg, cbs and user_data.
 * @param  fd        A listening socket (see smtpx_posix_listen); the loop
 *                   owns it from now on.
 * @param  tls, tls_cfg  TLS implementation offered through STARTTLS, or
 *                   NULL; the table is copied, tls_cfg must outlive the
 *                   loop.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL loop or cfg, fd < 0, a config
 *         not frozen or not of a server role, a TLS table without its
 *         size), SMTPX_ERR_INVALID_STATE (the loop was stopped),
 *         SMTPX_ERR_NOMEM, SMTPX_ERR_IO (the descriptor could not be
 *         registered).  On error the loop does not own fd.
 */
SMTPX_EXTERN int smtpx_loop_listen(smtpx_loop *loop, int fd,
                                   const smtpx_config *cfg,
                                   const smtpx_server_callbacks *cbs,
                                   size_t cbs_size, void *user_data,
                                   const smtpx_tls_ops *tls, void *tls_cfg);

/**
 * @brief  smtpx_loop_listen() with a choice of STARTTLS or implicit TLS.
 * @param  mode  SMTPX_LISTEN_*; SMTPX_LISTEN_IMPLICIT_TLS needs tls.
 * @retval As smtpx_loop_listen(), and SMTPX_ERR_INVALID_ARGUMENT for an
 *         unknown mode or implicit TLS without an implementation.
 */
SMTPX_EXTERN int smtpx_loop_listen_tls(smtpx_loop *loop, int fd,
                                       const smtpx_config *cfg,
                                       const smtpx_server_callbacks *cbs,
                                       size_t cbs_size, void *user_data,
                                       const smtpx_tls_ops *tls, void *tls_cfg,
                                       int mode);

/**
 * A listener's session constructor: runs for each accepted connection
 * before its server session is made.  Store the session's own state in
 * *session_user_data (it starts NULL): every callback of the session gets
 * it as its user_data.  Return 0, or a negative value to refuse the
 * connection (it is answered 421 4.3.0 and closed; no session is made and
 * on_session_free does not run).  user_data is the listener's.
 */
typedef int smtpx_loop_session_new_fn(smtpx_loop *loop, const smtpx_peer *peer,
                                      void **session_user_data,
                                      void *user_data);

/**
 * The matching destructor: runs exactly once for each session whose
 * on_session_new succeeded, after the session was freed (its on_close has
 * run), whatever happened - on_connect refused or failed, the session
 * could not be made or started, the loop was freed.  session_user_data is
 * the pointer on_session_new stored (not a later
 * smtpx_server_set_user_data()).
 */
typedef void smtpx_loop_session_free_fn(smtpx_loop *loop,
                                        void *session_user_data,
                                        void *user_data);

/**
 * A listener's options for smtpx_loop_add_listener().  Set size to
 * sizeof(smtpx_listen_opts) and leave what you do not need zero: members
 * may be added at the end.
 *
 * cfg              A frozen config of a server role (required); it must
 *                  outlive the loop.
 * cbs, cbs_size    The sessions' callbacks (copied), or NULL.
 * user_data        The listener's: the callbacks' user_data without
 *                  on_session_new, else passed to on_session_new and
 *                  on_session_free.
 * tls, tls_cfg     A TLS implementation (table copied; tls_cfg must
 *                  outlive the loop), or NULL.
 * mode             SMTPX_LISTEN_STARTTLS (default) or
 *                  SMTPX_LISTEN_IMPLICIT_TLS (needs tls).
 * on_session_new, on_session_free  Per-session state (see above); either
 *                  may be NULL.
 * limiter          Connection and rate limits per client (see
 *                  <libsmtpx/limiter.h>), or NULL; it must outlive the
 *                  loop and may be shared by the loop's listeners.  A
 *                  connection it refuses is answered 421 4.7.0 and closed
 *                  before any session is made; a MAIL over the message
 *                  rate is answered 450 4.7.1 (the application's on_mail
 *                  is not called).
 * proxy            SMTPX_PROXY_V1, _V2 or _ANY: connections from
 *                  proxy_trusted begin with a PROXY protocol header
 *                  (HAProxy), which gives the client's address and port
 *                  (and the address it connected to) for the session's
 *                  peer and the limiter; read before anything else, TLS
 *                  included.  A connection from a trusted proxy without a
 *                  valid header within proxy_timeout_ms is closed without
 *                  a word (REFUSED_PROXY counts it).  Connections from
 *                  other addresses are served as direct clients: a header
 *                  they send is never believed.  Default SMTPX_PROXY_NONE.
 * proxy_trusted    The proxies: numeric addresses and networks, separated
 *                  by commas or spaces ("127.0.0.1, 10.1.0.0/16");
 *                  required with proxy.  Copied.
 * proxy_timeout_ms How long a proxy may take to send its header; 0: 5000
 *                  (Postfix's smtpd_upstream_proxy_timeout).
 * log, log_level, log_user_data  The listener's own events (a PROXY
 *                  header refused, a connection refused by a limit), one
 *                  line each, or NULL.
 */
typedef struct smtpx_listen_opts {
    size_t size;
    const smtpx_config *cfg;
    const smtpx_server_callbacks *cbs;
    size_t cbs_size;
    void *user_data;
    const smtpx_tls_ops *tls;
    void *tls_cfg;
    int mode;
    smtpx_loop_session_new_fn *on_session_new;
    smtpx_loop_session_free_fn *on_session_free;
    smtpx_limiter *limiter;
    int proxy;
    const char *proxy_trusted;
    int proxy_timeout_ms;
    smtpx_log_fn *log;
    int log_level;
    void *log_user_data;
} smtpx_listen_opts;

/**
 * @brief  Serve SMTP on a listening socket with the options in opts (see
 *         smtpx_listen_opts); smtpx_loop_listen() and
 *         smtpx_loop_listen_tls() are shorthands for it.
 * @param  fd  A listening socket; the loop owns it from a successful call.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL loop or opts, opts->size 0,
 *         fd < 0, a config missing, not frozen or not of a server role, a
 *         TLS table without its size, an unknown mode, implicit TLS
 *         without tls, an unknown proxy value, proxy without a valid
 *         proxy_trusted list), SMTPX_ERR_INVALID_STATE (the loop was
 *         stopped), SMTPX_ERR_NOMEM, SMTPX_ERR_IO (fd could not be
 *         registered).  On error the loop does not own fd.
 */
SMTPX_EXTERN int smtpx_loop_add_listener(smtpx_loop *loop, int fd,
                                         const smtpx_listen_opts *opts);

/**
 * @brief  Limit the number of server sessions; a connection beyond the
 *         limit is answered 421 4.7.0 and closed.  0: no limit (default).
 */
SMTPX_EXTERN void smtpx_loop_set_max_sessions(smtpx_loop *loop, size_t max);

/** @brief Server sessions currently open. */
SMTPX_EXTERN size_t smtpx_loop_sessions(const smtpx_loop *loop);

/* ---- counters ----------------------------------------------------------- */

/**
 * What the loop counts, one list: the SMTPX_LOOP_COUNTER_* numbers and
 * smtpx_loop_counter_name().  Everything counts since the loop was made
 * but SESSIONS_OPEN and CLIENTS_OPEN, which are current.
 *
 * SESSIONS_OPEN     server sessions open now
 * SESSIONS          server sessions started
 * CLIENTS_OPEN      client sessions run now (connecting or not)
 * CLIENTS           client sessions handed to the loop
 * MESSAGES          messages server sessions accepted (2xx to their end)
 * BYTES_IN          octets read from connections (TLS records included)
 * BYTES_OUT         octets written to connections
 * TLS               TLS handshakes completed by server sessions
 * TLS_FAILED        server sessions ended by a failed TLS handshake
 * AUTH_FAILURES     failed AUTH attempts
 * REFUSED_SESSIONS  connections refused: too many sessions (the loop's
 *                   limit or the limiter's)
 * REFUSED_ADDR      refused: too many sessions from the address
 * REFUSED_NET       refused: too many sessions from the network
 * REFUSED_RATE      refused: too many connections from the address per
 *                   minute
 * REFUSED_NEW       refused by on_session_new
 * REFUSED_PROXY     closed: no valid PROXY header in time
 * MAIL_RATE         MAIL commands refused: message rate of the address
 * TIMEOUTS          server sessions ended by a deadline
 * PROTO_ERRORS      server sessions ended for breaking the protocol
 *                   (synchronization, another protocol's requests)
 * LIMIT_ENDS        server sessions ended by one of their limits (errors,
 *                   junk or unknown commands, held input, AUTH failures)
 * TLS_RESUMED       of the TLS handshakes, those that resumed a session
 * AUTH_RATE         AUTH attempts refused: AUTH rate of the address
 */
#define SMTPX_LOOP_COUNTER_MAP(XX)                                             \
    XX(SESSIONS_OPEN, 0, "sessions-open")                                      \
    XX(SESSIONS, 1, "sessions")                                                \
    XX(CLIENTS_OPEN, 2, "clients-open")                                        \
    XX(CLIENTS, 3, "clients")                                                  \
    XX(MESSAGES, 4, "messages")                                                \
    XX(BYTES_IN, 5, "bytes-in")                                                \
    XX(BYTES_OUT, 6, "bytes-out")                                              \
    XX(TLS, 7, "tls")                                                          \
    XX(TLS_FAILED, 8, "tls-failed")                                            \
    XX(AUTH_FAILURES, 9, "auth-failures")                                      \
    XX(REFUSED_SESSIONS, 10, "refused-sessions")                               \
    XX(REFUSED_ADDR, 11, "refused-addr")                                       \
    XX(REFUSED_NET, 12, "refused-net")                                         \
    XX(REFUSED_RATE, 13, "refused-rate")                                       \
    XX(REFUSED_NEW, 14, "refused-new")                                         \
    XX(REFUSED_PROXY, 15, "refused-proxy")                                     \
    XX(MAIL_RATE, 16, "mail-rate")                                             \
    XX(TIMEOUTS, 17, "timeouts")                                               \
    XX(PROTO_ERRORS, 18, "proto-errors")                                       \
    XX(LIMIT_ENDS, 19, "limit-ends")                                           \
    XX(TLS_RESUMED, 20, "tls-resumed")                                         \
    XX(AUTH_RATE, 21, "auth-rate")

enum {
#define SMTPX__LOOP_COUNTER_ENUM(name, id, text) SMTPX_LOOP_COUNTER_##name = id,
    SMTPX_LOOP_COUNTER_MAP(SMTPX__LOOP_COUNTER_ENUM)
#undef SMTPX__LOOP_COUNTER_ENUM
        SMTPX_LOOP_COUNTER_COUNT
};

/**
 * @brief  One counter's value.  May be called from any thread without a
 *         lock (each counter is written by the loop thread alone and read
 *         atomically; two counters read one after the other may be one
 *         event apart).  Not async-signal-safe on platforms without
 *         lock-free 64-bit atomics.
 * @return The value, or 0 for an unknown counter or a NULL loop.
 */
SMTPX_EXTERN uint64_t smtpx_loop_counter(const smtpx_loop *loop, int which);

/** @brief A counter's name ("sessions-open"), or NULL for an unknown one. */
SMTPX_EXTERN const char *smtpx_loop_counter_name(int which);

/* ---- running ------------------------------------------------------------ */

/**
 * @brief  Run one round: wait up to timeout_ms (-1: until something
 *         happens) and serve what is ready: descriptors, posted
 *         functions, sessions with work left, deadlines and timers.
 * @return 1 while the loop has work, 0 once it was stopped and every
 *         session (server and client) has ended, SMTPX_ERR_IO (the wait
 *         failed; errno tells more), SMTPX_ERR_INVALID_STATE (called from
 *         a callback of the loop) or SMTPX_ERR_INVALID_ARGUMENT (NULL).
 */
SMTPX_EXTERN int smtpx_loop_run_once(smtpx_loop *loop, int timeout_ms);

/** @brief Run rounds until the loop is stopped and drained.
 *  @return 0, or an error of smtpx_loop_run_once(). */
SMTPX_EXTERN int smtpx_loop_run(smtpx_loop *loop);

/**
 * @brief  Stop the loop: close the listeners and shut every server session
 *         down (SMTPX_SHUTDOWN_NOW or SMTPX_SHUTDOWN_DRAIN; any other value
 *         counts as DRAIN): idle sessions get 421 at once, a transaction
 *         in progress may finish with DRAIN.  Client sessions run to their
 *         end with DRAIN and are ended with SMTPX_ERR_CLOSED with NOW.
 *         smtpx_loop_run() returns once every session has ended; watches
 *         and timers do not keep it running.  A second call may turn DRAIN
 *         into NOW, never the reverse.  Thread-safe and
 *         async-signal-safe: it only sets a flag and wakes the loop.
 */
SMTPX_EXTERN void smtpx_loop_stop(smtpx_loop *loop, int how);

/* ---- other threads and event sources ------------------------------------ */

/**
 * @brief  Wake the loop: its current or next wait returns at once, and
 *         the loop looks at its paused sessions again (see the top of this
 *         header).  Thread-safe and async-signal-safe.
 */
SMTPX_EXTERN void smtpx_loop_wake(smtpx_loop *loop);

/**
 * @brief  Run fn(loop, user_data) on the loop thread, in the loop's next
 *         round (functions run in the order they were posted).  The way
 *         for a worker thread to answer a paused session: the function
 *         calls smtpx_server_reply(), and the loop then pumps the session.
 *         Thread-safe; not async-signal-safe (it takes a mutex and
 *         allocates).  Functions still posted when the loop is freed run
 *         in smtpx_loop_free().
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (loop or fn NULL), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_loop_post(smtpx_loop *loop, smtpx_loop_fn *fn,
                                 void *user_data);

/**
 * @brief  Watch an application descriptor: cb(loop, fd, events, user_data)
 *         runs on the loop thread while fd is ready for what events asks
 *         (SMTPX_WAIT_READ, SMTPX_WAIT_WRITE; level-triggered: again each
 *         round until the condition is gone).  Watching a descriptor that
 *         is already watched changes its events, callback and user_data;
 *         events 0 keeps the watch but asks for nothing.  The loop never
 *         reads, writes or closes fd: call smtpx_loop_unwatch() before
 *         closing it.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (loop or cb NULL, fd < 0, unknown
 *         bits), SMTPX_ERR_NOMEM, SMTPX_ERR_IO (the backend refused fd:
 *         errno tells why, EEXIST for a descriptor the loop already uses).
 */
SMTPX_EXTERN int smtpx_loop_watch(smtpx_loop *loop, int fd, int events,
                                  smtpx_loop_io_fn *cb, void *user_data);

/**
 * @brief  Stop watching fd (also from its own callback: it will not run
 *         again).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (loop NULL, or fd not watched).
 */
SMTPX_EXTERN int smtpx_loop_unwatch(smtpx_loop *loop, int fd);

/**
 * @brief  Run cb(loop, user_data) once, on the loop thread, when the
 *         clock reaches at_ms (absolute, smtpx_posix_now_ms() clock; a time
 *         already past runs in the next round).  Timers due at the same
 *         time run in the order they were added; a timer added by a timer
 *         callback runs in a later round at the earliest.
 * @param  out  Receives the timer for smtpx_loop_timer_cancel(), or NULL.
 *              It is valid until its callback has returned or it was
 *              cancelled.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (loop or cb NULL), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_loop_timer_add(smtpx_loop *loop, uint64_t at_ms,
                                      smtpx_loop_fn *cb, void *user_data,
                                      smtpx_loop_timer **out);

/**
 * @brief  Cancel a timer that has not fired: its callback will not run
 *         and the timer is freed.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL), SMTPX_ERR_INVALID_STATE
 *         (called from the timer's own callback: it has fired; nothing is
 *         done).
 */
SMTPX_EXTERN int smtpx_loop_timer_cancel(smtpx_loop *loop,
                                         smtpx_loop_timer *timer);

/* ---- clients ------------------------------------------------------------ */

/**
 * @brief  Run a client session in the loop until it ends, then call
 *         on_done(loop, c, status, user_data).
 *
 * If c has been started (smtpx_client_start()), fd must be connected.  If
 * it has not, fd may be a socket whose non-blocking connect() is in
 * progress (smtpx_posix_connect_start()): the loop waits until it is
 * writable, then starts c (the greeting deadline counts from then) and
 * runs it.  A connection that fails, or is not made within the connect
 * timeout (smtpx_loop_set_connect_timeout()), ends c with
 * smtpx_client_abort(): SMTPX_ERR_CONNECT (errno holds the reason during
 * on_done) or SMTPX_ERR_TIMEOUT.  Commands queued on c (EHLO, a
 * transaction, QUIT) are then answered locally, so each transaction has
 * its recipients deferred.
 *
 * Ownership: the loop owns fd and t from a successful call: it frees t
 * after on_done has returned, and closes fd (through t's io if t was
 * given, itself otherwise).  c stays the application's: the loop does not
 * touch it after on_done, which may free it.
 *
 * @param  fd   A socket; made non-blocking.
 * @param  t    A transport over fd (with TLS set up, for STARTTLS or
 *              implicit TLS), or NULL for plain TCP over fd.
 * @param  on_done  May be NULL.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (loop or c NULL, fd < 0, c ended
 *         already), SMTPX_ERR_INVALID_STATE (the loop was stopped with
 *         SMTPX_SHUTDOWN_NOW), SMTPX_ERR_NOMEM, SMTPX_ERR_IO (fd could not
 *         be registered).  On error the loop owns nothing: fd, c and t are
 *         the caller's.
 */
SMTPX_EXTERN int smtpx_loop_add_client(smtpx_loop *loop, int fd,
                                       smtpx_client *c, smtpx_transport *t,
                                       smtpx_loop_client_fn *on_done,
                                       void *user_data);

/** @brief How long a connection handed to smtpx_loop_add_client() with an
 *         unstarted client may take to be made; ms <= 0 restores the
 *         default, 30000 (Postfix's smtp_connect_timeout). */
SMTPX_EXTERN void smtpx_loop_set_connect_timeout(smtpx_loop *loop, int ms);

/** @brief Client sessions currently run by the loop (connecting or not). */
SMTPX_EXTERN size_t smtpx_loop_clients(const smtpx_loop *loop);

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_LOOP_H */
