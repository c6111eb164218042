/*
 * libsmtpx - the SMTP server session (sans-IO).
 *
 * An smtpx_server is one SMTP (or LMTP) server session.  It never touches a
 * socket, a clock, a file or TLS: the driver hands it received bytes with
 * smtpx_server_recv(), writes what smtpx_server_out_peek() shows and reports
 * it with smtpx_server_out_drop(), passes the time in as a monotonic now_ms
 * and asks for the next deadline with smtpx_server_expiry().  Decisions go
 * to the application through callbacks; an answer that takes time is given
 * later (pause, then smtpx_server_reply()).
 *
 * A session belongs to one thread at a time.  Callbacks run on that thread,
 * inside the call that fed the session.  From a callback the application
 * may call the accessors, smtpx_server_reply_rcpt() (from on_data_end),
 * smtpx_server_set_user_data(), smtpx_server_set_driver_data(),
 * smtpx_server_set_limit(), smtpx_server_set_tls_available() and
 * smtpx_server_shutdown(); nothing else.  After a fatal error (SMTPX_ERR_NOMEM,
 * SMTPX_ERR_CALLBACK_FAILURE) only out_peek, out_drop, the want_* calls, done,
 * expiry, expire and free are useful: they let the driver write the final 421
 * and close.
 *
 * Lifecycle: smtpx_server_new(), smtpx_server_start() (greeting), then
 * recv / out_peek / out_drop / expire as the driver sees fit, until
 * smtpx_server_done() says the session is over; then smtpx_server_free().
 */
#ifndef LIBSMTPX_SERVER_H
#define LIBSMTPX_SERVER_H

#include <libsmtpx/auth.h>
#include <libsmtpx/common.h>
#include <libsmtpx/conf.h>
#include <libsmtpx/tls.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smtpx_server smtpx_server;

/**
 * The two ends of the connection, as the driver knows them.  Every member
 * may be NULL or 0 when unknown; strings are copied by
 * smtpx_server_start().
 *
 * addr        The client's address as text ("192.0.2.1", "2001:db8::1").
 * port        The client's port.
 * local_addr  The address the client connected to.
 * local_port  The port the client connected to.
 * name        The client's host name if the driver verified it (forward-
 *             confirmed reverse DNS), else NULL.
 */
typedef struct smtpx_peer {
    const char *addr;
    uint16_t port;
    const char *local_addr;
    uint16_t local_port;
    const char *name;
} smtpx_peer;

/**
 * MAIL FROM, as parsed.  All pointers are valid only during the callback.
 *
 * from       The reverse-path without angle brackets and without a source
 *            route, NUL-terminated; "" for the null reverse-path <>.
 * domain     The part of from after the "@", or NULL for <>.
 * params     Every ESMTP parameter, as sent (already checked).
 * size       SIZE=, 0 if not given (RFC 1870).
 * body       SMTPX_BODY_*.
 * smtputf8   1 if SMTPUTF8 was given (RFC 6531).
 * ret        SMTPX_DSN_RET_*.
 * envid      ENVID= as sent (xtext), or NULL (RFC 3461 4.4).
 * auth       AUTH= as sent (xtext), or NULL (RFC 4954 5).
 * requiretls 1 if REQUIRETLS was given (RFC 8689): the message must travel
 *            on only over verified TLS to servers that offer REQUIRETLS;
 *            an application that relays it must honour that (the client's
 *            smtpx_txn_set_requiretls()).  Only possible under TLS, where
 *            SMTPX_EXT_REQUIRETLS is offered.
 * priority   MT-PRIORITY= (RFC 6710), -9 to 9; 0 if not given (the
 *            default priority).  has_priority tells whether it was given.
 */
typedef struct smtpx_mail_info {
    const char *from;
    const char *domain;
    const smtpx_param *params;
    size_t nparams;
    uint64_t size;
    int body;
    int smtputf8;
    int ret;
    const char *envid;
    const char *auth;
    int requiretls;
    int priority;
    int has_priority;
} smtpx_mail_info;

/**
 * RCPT TO, as parsed.  All pointers are valid only during the callback.
 *
 * to       The forward-path without angle brackets and source route,
 *          NUL-terminated ("Postmaster" for the special <Postmaster>).
 * domain   The part of to after the "@", or NULL for <Postmaster>.
 * params   Every ESMTP parameter, as sent (already checked).
 * notify   SMTPX_DSN_NOTIFY_* bits.
 * orcpt    ORCPT= as sent ("rfc822;user@example.org" in xtext), or NULL.
 * index    The index this recipient gets if the reply accepts it: 0 for
 *          the first accepted recipient of the transaction, and so on.
 */
typedef struct smtpx_rcpt_info {
    const char *to;
    const char *domain;
    const smtpx_param *params;
    size_t nparams;
    unsigned notify;
    const char *orcpt;
    size_t index;
} smtpx_rcpt_info;

/**
 * @brief  Decode xtext (RFC 3461 4), as ENVID=, ORCPT= and AUTH= arrive:
 *         "+HH" is the octet with hex value HH (upper case), every other
 *         octet is printable ASCII other than "=".
 * @param  in, len    The xtext (need not be NUL-terminated).
 * @param  out, size  The decoded text, NUL-terminated.  A decoded NUL is
 *                    kept and counted: compare the length with strlen().
 * @return Its length, or SMTPX_ERR_INVALID_ARGUMENT (NULL, malformed
 *         xtext, or no room; out is then "").
 */
SMTPX_EXTERN smtpx_ssize smtpx_xtext_decode(const char *in, size_t len,
                                            char *out, size_t size);

/**
 * @brief  Encode text as xtext: "+", "=" and every octet outside "!" to
 *         "~" as "+HH".  (The client's DSN setters do this themselves.)
 * @return The length of out (NUL-terminated), or
 *         SMTPX_ERR_INVALID_ARGUMENT (NULL, or no room; out is then "").
 */
SMTPX_EXTERN smtpx_ssize smtpx_xtext_encode(const char *in, char *out,
                                            size_t size);

/**
 * The start of message content.
 *
 * framing  SMTPX_FRAMING_DATA or SMTPX_FRAMING_BDAT.
 * body     SMTPX_BODY_* from MAIL.
 * nrcpts   Accepted recipients.
 */
typedef struct smtpx_data_info {
    int framing;
    int body;
    size_t nrcpts;
} smtpx_data_info;

/** How a transaction ended (on_txn_end). */
#define SMTPX_TXN_DONE  0 /* on_data_end answered (whatever its code) */
#define SMTPX_TXN_RESET 1 /* RSET, HELO, EHLO, LHLO or STARTTLS */
#define SMTPX_TXN_REFUSED                                                      \
    2                       /* the core refused the content once read:         \
                               too big, over-long line, bare LF rejected */
#define SMTPX_TXN_ABORTED 3 /* the session ended in the middle */

/** VRFY and EXPN, for on_vrfy. */
#define SMTPX_VRFY 1
#define SMTPX_EXPN 2

/** How the client greeted, for on_helo. */
#define SMTPX_HELO 1
#define SMTPX_EHLO 2
#define SMTPX_LHLO 3

/**
 * Callbacks.  Every int-returning callback returns:
 *
 *   0                           Use *reply: it comes prefilled with the
 *                               default, and the callback may change it.
 *   SMTPX_ERR_PAUSE             Decide later.  The session stops taking
 *                               input (want_read 0) until the application
 *                               calls smtpx_server_reply() (or, where no
 *                               reply is owed, smtpx_server_resume()) from
 *                               outside any callback.  The session's
 *                               deadline keeps running.
 *   SMTPX_ERR_CALLBACK_FAILURE  Reply 421 4.3.0 and end the session.
 *
 * Any other return value is treated as SMTPX_ERR_CALLBACK_FAILURE.  A
 * reply code that the command cannot take (outside 200-599, or a class the
 * command does not allow) is replaced by 451 4.3.0 and logged.  A reply of
 * 421 ends the session once it is written.  An enhanced code whose class
 * does not match the reply code is replaced by class.0.0.
 *
 * A NULL callback means the default.  The structure is passed with its size
 * (smtpx_server_new) so that members can be added at the end in later
 * versions without breaking programs built against this one.
 */
typedef struct smtpx_server_callbacks {
    /**
     * The session starts.  *reply is the greeting, "220 <hostname> ESMTP".
     * 554 (any 5xx) refuses service: every command but QUIT then gets 503
     * (RFC 5321 3.1).  421 (any 4xx, or a code the greeting cannot take)
     * refuses and closes.  The greeting carries no enhanced code.  Pausing
     * delays the greeting (DNS block lists, PROXY protocol); input that
     * arrives meanwhile is held.
     */
    int (*on_connect)(smtpx_server *s, const smtpx_peer *peer,
                      smtpx_reply *reply, void *user_data);

    /**
     * HELO, EHLO or LHLO (kind: SMTPX_HELO / SMTPX_EHLO / SMTPX_LHLO) with
     * the client's name.  *reply is 250; the EHLO capability lines are added
     * by the core to a 250 reply.  Any transaction in progress has already
     * ended (on_txn_end SMTPX_TXN_RESET).
     */
    int (*on_helo)(smtpx_server *s, int kind, const char *name,
                   smtpx_reply *reply, void *user_data);

    /** MAIL FROM.  *reply is 250 2.1.0.  Only a 2xx reply starts a
     *  transaction; each started transaction ends with one on_txn_end. */
    int (*on_mail)(smtpx_server *s, const smtpx_mail_info *mail,
                   smtpx_reply *reply, void *user_data);

    /**
     * RCPT TO.  *reply is 250 2.1.5.  The application may store its own
     * pointer in *rcpt_data; if the reply accepts the recipient, the
     * pointer is kept with it (smtpx_server_rcpt_data()).  If the reply
     * refuses it, the library forgets the pointer.  After a pause,
     * *rcpt_data may be set until smtpx_server_reply() is called.
     */
    int (*on_rcpt)(smtpx_server *s, const smtpx_rcpt_info *rcpt,
                   void **rcpt_data, smtpx_reply *reply, void *user_data);

    /**
     * Message content is about to start.  For DATA *reply is 354: another
     * 4xx/5xx reply refuses the message instead.  For BDAT *reply is 250:
     * another 4xx/5xx reply refuses the message, and is sent once the
     * first chunk has been read and discarded.
     */
    int (*on_data_begin)(smtpx_server *s, const smtpx_data_info *info,
                         smtpx_reply *reply, void *user_data);

    /**
     * A piece of content: for DATA dot-unstuffed, with CRLF line ends
     * (the bare-LF policy applied); for BDAT byte for byte.  data points
     * into the input where possible and is valid only during the call.
     * Content is provisional until on_data_end: if the core refuses the
     * message, on_txn_end(SMTPX_TXN_REFUSED) comes instead.  Return 0, or
     * SMTPX_ERR_PAUSE to stop input until smtpx_server_resume() (this
     * piece counts as taken), or SMTPX_ERR_CALLBACK_FAILURE.
     */
    int (*on_data_chunk)(smtpx_server *s, const uint8_t *data, size_t len,
                         void *user_data);

    /**
     * The whole message has arrived and the core found nothing wrong with
     * it.  *reply is 250 2.0.0.  Answer 250 only once the message is safe
     * (on disk, handed on).  LMTP: the reply is the default for every
     * accepted recipient; smtpx_server_reply_rcpt() gives one recipient
     * its own, from this callback or during a pause before
     * smtpx_server_reply().
     */
    int (*on_data_end)(smtpx_server *s, smtpx_reply *reply, void *user_data);

    /** A transaction started by an accepted MAIL ended; reason is
     *  SMTPX_TXN_*.  Recipient data can still be read during this call. */
    void (*on_txn_end)(smtpx_server *s, int reason, void *user_data);

    /**
     * VRFY or EXPN (cmd: SMTPX_VRFY / SMTPX_EXPN) with its argument.
     * *reply is the configured policy (by default 252 2.5.0 for VRFY and
     * 502 5.5.1 for EXPN: nothing is revealed).  Every attempt is logged
     * at SMTPX_LOG_NOTICE whether or not this callback is set.
     */
    int (*on_vrfy)(smtpx_server *s, int cmd, const char *arg,
                   smtpx_reply *reply, void *user_data);

    /** A log message (see smtpx_config_set_log); overrides the config's
     *  log function for this session.  Credentials never appear. */
    void (*on_log)(smtpx_server *s, int level, const char *msg,
                   void *user_data);

    /**
     * Every command line received (dir SMTPX_TRACE_IN, without its line
     * end) and every reply line queued (SMTPX_TRACE_OUT).  Message content
     * is not traced.  line is not NUL-terminated, and holds what the client
     * sent octet for octet (NUL, escape sequences, 8-bit): show it with
     * smtpx_escape().
     */
    void (*on_trace)(smtpx_server *s, int dir, const char *line, size_t len,
                     void *user_data);

    /**
     * The session has ended: status is 0 after QUIT, otherwise a negative
     * SMTPX_ERR_* code: EOF (client went away), TIMEOUT, LIMIT (too many
     * errors, junk commands, messages or held input), CLOSED (shutdown or
     * freed while active), PROTO, IO, TLS (reported by the driver), NOMEM,
     * CALLBACK_FAILURE.  Called exactly once, also for a paused session,
     * so that pending asynchronous work can be cancelled.  Output queued
     * before it (a final 421) can still be written.
     */
    void (*on_close)(smtpx_server *s, int status, void *user_data);

    /**
     * AUTH: decide.  Without this callback AUTH is not offered.  For
     * PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER, check a->secret for
     * a->authcid and set *reply to 235 2.7.0 to let the client in; *reply
     * comes prefilled with 535 5.7.8, so a callback that does not look
     * lets nobody in.  For CRAM-MD5 and SCRAM-SHA-256 the core has checked
     * the credentials already (a->secret is NULL) and *reply is 235 2.7.0:
     * the callback may still refuse (a disabled account, an authzid the
     * user may not act as).  A 4xx reply (454 4.7.0) says "try later".
     * Only 235 authenticates; 535 counts towards AUTH_FAILURES.
     */
    int (*on_auth)(smtpx_server *s, const smtpx_auth_info *a,
                   smtpx_reply *reply, void *user_data);

    /**
     * AUTH with CRAM-MD5 or SCRAM-SHA-256: look up what is stored for
     * a->authcid and fill *secret (see smtpx_auth_secret), then return 0.
     * Or pause, and later call smtpx_server_auth_secret() and
     * smtpx_server_resume(), or smtpx_server_reply() with 454 4.7.0 if the
     * lookup failed.  Without this callback those mechanisms are not
     * offered.
     */
    int (*on_auth_lookup)(smtpx_server *s, const smtpx_auth_info *a,
                          smtpx_auth_secret *secret, void *user_data);
} smtpx_server_callbacks;

/**
 * @brief  Create a server session.
 * @param  out        Receives the session.
 * @param  cfg        A frozen config of role SMTPX_ROLE_SERVER or
 *                    SMTPX_ROLE_LMTP_SERVER; it must outlive the session.
 * @param  cbs        Callbacks; copied.  NULL: all defaults.
 * @param  cbs_size   sizeof(smtpx_server_callbacks) as the caller compiled
 *                    it; members beyond it are taken as NULL.
 * @param  user_data  Passed to every callback.
 * @retval 0                          Success.
 * @retval SMTPX_ERR_INVALID_ARGUMENT out or cfg is NULL, or the role is not
 *                                    a server role.
 * @retval SMTPX_ERR_INVALID_STATE    cfg is not frozen.
 * @retval SMTPX_ERR_NOMEM            Out of memory.
 */
SMTPX_EXTERN int smtpx_server_new(smtpx_server **out, const smtpx_config *cfg,
                                  const smtpx_server_callbacks *cbs,
                                  size_t cbs_size, void *user_data);

/**
 * @brief  Free a session (NULL-safe).  If the session has not ended,
 *         on_txn_end(SMTPX_TXN_ABORTED) and on_close(SMTPX_ERR_CLOSED)
 *         fire first.  Must not be called from a callback.
 */
SMTPX_EXTERN void smtpx_server_free(smtpx_server *s);

/**
 * @brief  Start the session: on_connect, then the greeting is queued.
 * @param  peer    The connection's ends; may be NULL.  Copied.
 * @param  now_ms  Monotonic time in milliseconds.
 * @retval 0                        Greeting queued, or on_connect paused.
 * @retval SMTPX_ERR_INVALID_STATE  Already started.
 * @retval SMTPX_ERR_NOMEM, SMTPX_ERR_CALLBACK_FAILURE  (fatal)
 */
SMTPX_EXTERN int smtpx_server_start(smtpx_server *s, const smtpx_peer *peer,
                                    uint64_t now_ms);

/**
 * @brief  Hand the session bytes received from the client.
 *
 * Complete commands are processed in order and their replies queued in
 * order, so a pipelined burst leaves one region for out_peek.  If a
 * callback pauses, or queued output reaches SMTPX_LIMIT_OUTBUF, the rest of
 * the input is kept by the session and processed when it can go on.  After
 * STARTTLS every byte that followed the STARTTLS line is dropped (RFC 3207
 * 4.2: plaintext injected before the handshake must not be obeyed).  Bytes
 * received after the session has ended are ignored.
 *
 * Call only when smtpx_server_want_read() is 1: input given while it is 0
 * is held too, but input beyond SMTPX_LIMIT_HOLDBUF ends the session with
 * 421 4.7.0.
 *
 * @return len (every byte is consumed), or a negative error.
 * @retval SMTPX_ERR_INVALID_ARGUMENT in is NULL with len > 0.
 * @retval SMTPX_ERR_INVALID_STATE  Not started, TLS must start first
 *                                  (want_tls), or called from a callback;
 *                                  nothing was consumed.
 * @retval SMTPX_ERR_NOMEM, SMTPX_ERR_CALLBACK_FAILURE  (fatal; a 421 may
 *         have been queued)
 */
SMTPX_EXTERN smtpx_ssize smtpx_server_recv(smtpx_server *s, const uint8_t *in,
                                           size_t len, uint64_t now_ms);

/**
 * @brief  Show the output waiting to be written.
 * @param  data  Receives a pointer to the bytes; valid until the next call
 *               on the session other than the accessors.
 * @return The number of bytes; 0 when nothing is waiting.
 */
SMTPX_EXTERN size_t smtpx_server_out_peek(smtpx_server *s,
                                          const uint8_t **data);

/**
 * @brief  Report that n bytes of the output shown by out_peek were written.
 *         Draining output below SMTPX_LIMIT_OUTBUF lets held input be
 *         processed (within this call).  n larger than the output is cut.
 */
SMTPX_EXTERN void smtpx_server_out_drop(smtpx_server *s, size_t n,
                                        uint64_t now_ms);

/** @brief 1 if the driver should read from the client now; 0 while paused,
 *         held by back-pressure, waiting for TLS, or ended. */
SMTPX_EXTERN int smtpx_server_want_read(const smtpx_server *s);

/** @brief 1 if output is waiting to be written. */
SMTPX_EXTERN int smtpx_server_want_write(const smtpx_server *s);

/**
 * @brief  1 after the 220 reply to STARTTLS: the driver writes the output
 *         that is waiting, then runs the TLS handshake as the server, then
 *         calls smtpx_server_tls_started().  recv is refused until then.
 */
SMTPX_EXTERN int smtpx_server_want_tls(const smtpx_server *s);

/**
 * @brief  1 when the session has ended and all its output has been taken:
 *         the driver closes the connection and frees the session.
 */
SMTPX_EXTERN int smtpx_server_done(const smtpx_server *s);

/**
 * @brief  Why the session ended: the status on_close was given.
 * @retval 0                    The client said QUIT.
 * @retval SMTPX_ERR_*          The session ended otherwise (a limit, a
 *                              deadline, an EOF, an I/O or TLS failure
 *                              the driver reported, a fatal error,
 *                              SMTPX_ERR_CLOSED for a 421 or a shutdown).
 * @retval SMTPX_ERR_INVALID_STATE The session has not ended yet.
 *
 * For drivers that report a session's outcome (smtpx_posix_serve() does);
 * it may be called from any callback and after a fatal error.
 */
SMTPX_EXTERN int smtpx_server_status(const smtpx_server *s);

/**
 * @brief  Tell the session that TLS is established: after want_tls, or for
 *         implicit TLS (RFC 8314) before the client has sent anything (the
 *         greeting then waits in the output for the handshake).  The
 *         session forgets the client's EHLO (RFC 3207 4.2) and no longer
 *         offers STARTTLS.
 * @param  info  Facts about the TLS session; copied.  May be NULL.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (s NULL), SMTPX_ERR_INVALID_STATE
 *         (TLS was not requested, is already active, the session ended,
 *         or called from a callback), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_server_tls_started(smtpx_server *s,
                                          const smtpx_tls_info *info,
                                          uint64_t now_ms);

/**
 * @brief  The absolute time (same clock as now_ms) at which the session
 *         must be expired, or 0 if it has no deadline.  It changes after
 *         every call that advances the session.
 */
SMTPX_EXTERN uint64_t smtpx_server_expiry(const smtpx_server *s);

/**
 * @brief  Let the session act on its deadline.  If now_ms has reached the
 *         expiry, the session queues 421 4.4.2, ends with
 *         on_close(SMTPX_ERR_TIMEOUT) and leaves a short time to write it;
 *         a second expiry after that drops the output.
 * @return 1 if the session expired, 0 if the deadline has not come.
 */
SMTPX_EXTERN int smtpx_server_expire(smtpx_server *s, uint64_t now_ms);

/**
 * @brief  The client closed its side (orderly EOF).  The session ends
 *         (on_close(SMTPX_ERR_EOF), or 0 after QUIT); output already queued
 *         may still be written.
 */
SMTPX_EXTERN void smtpx_server_eof(smtpx_server *s);

/**
 * @brief  The driver gives up on the connection (I/O error, TLS handshake
 *         failure): the session ends at once with on_close(err) and drops
 *         its output.
 * @param  err  A negative SMTPX_ERR_* code (SMTPX_ERR_IO, SMTPX_ERR_TLS...).
 */
SMTPX_EXTERN void smtpx_server_abort(smtpx_server *s, int err);

/**
 * @brief  Answer the command whose callback paused, then go on with held
 *         input.  Must not be called from a callback.
 * @param  r  The reply; its text is copied.
 * @retval 0                        Reply queued.
 * @retval SMTPX_ERR_INVALID_STATE  Nothing owes a reply (not paused, or
 *                                  paused in on_data_chunk: use resume).
 * @retval SMTPX_ERR_CLOSED         The session has ended meanwhile.
 * @retval SMTPX_ERR_INVALID_ARGUMENT r is NULL.
 * @retval SMTPX_ERR_NOMEM, SMTPX_ERR_CALLBACK_FAILURE  (fatal)
 */
SMTPX_EXTERN int smtpx_server_reply(smtpx_server *s, const smtpx_reply *r,
                                    uint64_t now_ms);

/**
 * @brief  LMTP: give accepted recipient i (0-based) its own reply to the
 *         end of the message, from on_data_end or during its pause.
 * @retval 0, SMTPX_ERR_INVALID_STATE (not LMTP, or not in on_data_end),
 *         SMTPX_ERR_INVALID_ARGUMENT (i out of range, r NULL, or a code
 *         that is not 2xx, 4xx or 5xx), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_server_reply_rcpt(smtpx_server *s, size_t i,
                                         const smtpx_reply *r);

/**
 * @brief  End a pause that owes no reply (on_data_chunk, or
 *         on_auth_lookup after smtpx_server_auth_secret()) and go on with
 *         held input.  Must not be called from a callback.
 * @retval 0, SMTPX_ERR_INVALID_STATE (not paused in on_data_chunk or
 *         on_auth_lookup),
 *         SMTPX_ERR_CLOSED, SMTPX_ERR_NOMEM, SMTPX_ERR_CALLBACK_FAILURE.
 */
SMTPX_EXTERN int smtpx_server_resume(smtpx_server *s, uint64_t now_ms);

#define SMTPX_SHUTDOWN_NOW 1 /* 421 at once; a transaction is aborted */
#define SMTPX_SHUTDOWN_DRAIN                                                   \
    2 /* let the transaction in progress finish,                               \
         then 421 */

/**
 * @brief  Shut the session down with 421 4.3.2 (server shutting down).
 *         May be called from a callback: it then takes effect when the
 *         callback returns.  A session already ending is left alone.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (unknown how), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_server_shutdown(smtpx_server *s, int how);

/** @brief The user_data given to smtpx_server_new() or set later. */
SMTPX_EXTERN void *smtpx_server_get_user_data(const smtpx_server *s);

/** @brief Replace the user_data passed to callbacks (allowed in one). */
SMTPX_EXTERN void smtpx_server_set_user_data(smtpx_server *s, void *user_data);

/**
 * @brief  A second pointer, for the driver that runs the session (the
 *         event loop keeps its own record of the session here), so that a
 *         driver can find its state from a session without taking the
 *         application's user_data.  Never passed to callbacks; NULL until
 *         set.  May be called from a callback.
 */
SMTPX_EXTERN void *smtpx_server_get_driver_data(const smtpx_server *s);
SMTPX_EXTERN void smtpx_server_set_driver_data(smtpx_server *s,
                                               void *driver_data);

/** @brief Failed AUTH attempts in this session so far (what
 *         SMTPX_LIMIT_AUTH_FAILURES counts). */
SMTPX_EXTERN uint64_t smtpx_server_auth_failures(const smtpx_server *s);

/**
 * @brief  Per-session override: TLS can be offered (STARTTLS) on this
 *         session.  Default 0: a driver with a TLS plug-in turns it on.
 * @retval 0, SMTPX_ERR_INVALID_STATE (TLS already active).
 */
SMTPX_EXTERN int smtpx_server_set_tls_available(smtpx_server *s, int on);

/**
 * @brief  Per-session override of a config limit (a trusted client may get
 *         more recipients, say).  Same rules as smtpx_config_set_limit().
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT.
 */
SMTPX_EXTERN int smtpx_server_set_limit(smtpx_server *s, smtpx_limit which,
                                        uint64_t value);

/** @brief The session's value of a limit. */
SMTPX_EXTERN uint64_t smtpx_server_get_limit(const smtpx_server *s,
                                             smtpx_limit which);

/** @brief The peer given to smtpx_server_start() (never NULL; members may
 *         be NULL). */
SMTPX_EXTERN const smtpx_peer *smtpx_server_peer(const smtpx_server *s);

/** @brief The host name the session announces (the config's). */
SMTPX_EXTERN const char *smtpx_server_hostname(const smtpx_server *s);

/** @brief The name from the last HELO/EHLO/LHLO, or NULL. */
SMTPX_EXTERN const char *smtpx_server_helo(const smtpx_server *s);

/**
 * @brief  The protocol name for a Received header (RFC 5321 4.4, RFC
 *         3848): "SMTP", "ESMTP", "ESMTPS" (TLS), "ESMTPA" (AUTH),
 *         "ESMTPSA" (both), "LMTP", "LMTPS", "LMTPA", "LMTPSA".
 */
SMTPX_EXTERN const char *smtpx_server_protocol(const smtpx_server *s);

/** @brief TLS facts if TLS is active, else NULL. */
SMTPX_EXTERN const smtpx_tls_info *smtpx_server_tls(const smtpx_server *s);

/** @brief The user name (authcid) of a successful AUTH, or NULL. */
SMTPX_EXTERN const char *smtpx_server_auth_user(const smtpx_server *s);

/** @brief The identity a successful AUTH acts as: the authzid if one was
 *         given, else the user name; NULL when not authenticated. */
SMTPX_EXTERN const char *smtpx_server_auth_id(const smtpx_server *s);

/** @brief The SMTPX_SASL_* mechanism of a successful AUTH, or 0. */
SMTPX_EXTERN unsigned smtpx_server_auth_mech(const smtpx_server *s);

/**
 * @brief  Answer a paused on_auth_lookup: what is stored for the user
 *         (copied), then call smtpx_server_resume().  Not calling it
 *         before resume means "no such user".
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL), SMTPX_ERR_INVALID_STATE (not
 *         paused in on_auth_lookup), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_server_auth_secret(smtpx_server *s,
                                          const smtpx_auth_secret *secret);

/** @brief The reverse-path of the current transaction ("" for <>), or NULL
 *         outside a transaction. */
SMTPX_EXTERN const char *smtpx_server_mail_from(const smtpx_server *s);

/** @brief Accepted recipients in the current transaction. */
SMTPX_EXTERN size_t smtpx_server_rcpt_count(const smtpx_server *s);

/** @brief Accepted recipient i's address, or NULL if out of range. */
SMTPX_EXTERN const char *smtpx_server_rcpt_addr(const smtpx_server *s,
                                                size_t i);

/** @brief Accepted recipient i's application pointer, or NULL. */
SMTPX_EXTERN void *smtpx_server_rcpt_data(const smtpx_server *s, size_t i);

/** @brief Octets of content received so far in this transaction (after
 *         dot-unstuffing). */
SMTPX_EXTERN uint64_t smtpx_server_data_size(const smtpx_server *s);

/** @brief Messages accepted (on_data_end answered 2xx) in this session. */
SMTPX_EXTERN uint64_t smtpx_server_msg_count(const smtpx_server *s);

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_SERVER_H */
