/*
 * libsmtpx - the SMTP client session (sans-IO).
 *
 * An smtpx_client is one SMTP (or LMTP) client session, the mirror of
 * smtpx_server: bytes from the server go in with smtpx_client_recv(), what
 * to send comes out through smtpx_client_out_peek() / smtpx_client_out_drop(),
 * time goes in as now_ms and the next deadline comes out of
 * smtpx_client_expiry().  It never touches a socket, a clock or TLS.
 *
 * Commands are queued and sent as soon as the protocol allows: pipelined
 * in RFC 2920 groups when the server offered PIPELINING (MAIL, every RCPT
 * and DATA in one write; the next transaction's MAIL right after the end of
 * the message), one at a time otherwise.  Every queued command gets exactly
 * one on_reply, in order, with the cookie it was queued with; when the
 * connection ends early (421, EOF, timeout, fatal error) the commands still
 * waiting get a reply made up by the client (smtpx_reply_local()), so
 * nothing is left unanswered.
 *
 * A message goes out as a transaction (smtpx_txn): MAIL, every RCPT and the
 * body, queued at once by smtpx_client_send().  The transaction is also its
 * result: per recipient the stage, code, enhanced code, text and state -
 * accepted, deferred (4xx), failed (5xx) or unknown (the connection was
 * lost after the whole body was sent, so the server may have taken it:
 * RFC 5321 6.1).  A refused recipient does not stop delivery to the others;
 * if none is accepted no body is sent and the transaction is reset.
 *
 * A client belongs to one thread at a time; callbacks run inside the call
 * that fed it and may queue commands and transactions, read accessors and
 * call smtpx_client_set_user_data(); nothing else.
 */
#ifndef LIBSMTPX_CLIENT_H
#define LIBSMTPX_CLIENT_H

#include <libsmtpx/auth.h>
#include <libsmtpx/common.h>
#include <libsmtpx/conf.h>
#include <libsmtpx/tls.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smtpx_client smtpx_client;
typedef struct smtpx_txn smtpx_txn;

/**
 * The commands, as on_reply names them: one list (SMTPX_CMD_MAP) makes the
 * SMTPX_CMD_* numbers and smtpx_cmd_name().
 *
 * GREETING  the 220 greeting (queued by start)
 * EHLO      EHLO, or the HELO it fell back to
 * BODY      the content and its final ".": one reply, or in LMTP one per
 *           accepted recipient
 * AUTH      the whole exchange: one reply, the last
 */
#define SMTPX_CMD_MAP(XX)                                                      \
    XX(GREETING, 1, "greeting")                                                \
    XX(EHLO, 2, "EHLO")                                                        \
    XX(HELO, 3, "HELO")                                                        \
    XX(LHLO, 4, "LHLO")                                                        \
    XX(STARTTLS, 5, "STARTTLS")                                                \
    XX(MAIL, 6, "MAIL")                                                        \
    XX(RCPT, 7, "RCPT")                                                        \
    XX(DATA, 8, "DATA")                                                        \
    XX(BODY, 9, "BODY")                                                        \
    XX(RSET, 10, "RSET")                                                       \
    XX(NOOP, 11, "NOOP")                                                       \
    XX(QUIT, 12, "QUIT")                                                       \
    XX(AUTH, 13, "AUTH")

enum {
#define SMTPX__CMD_ENUM(name, id, text) SMTPX_CMD_##name = id,
    SMTPX_CMD_MAP(SMTPX__CMD_ENUM)
#undef SMTPX__CMD_ENUM
        SMTPX_CMD_COUNT /* one more than the highest number */
};

/** The name of a command ("MAIL"), or "?" */
SMTPX_EXTERN const char *smtpx_cmd_name(int cmd);

/**
 * Callbacks; NULL means "not interested".  The structure travels with its
 * size, so members can be added at the end.
 */
typedef struct smtpx_client_callbacks {
    /**
     * The reply to a command queued by the application or by a
     * transaction (cookie is then the smtpx_txn), in queue order.  r->text
     * holds the reply lines without codes, separated by '\n'; it and
     * r itself are valid during the call.  A reply the client made up
     * (connection lost...) is marked by smtpx_reply_local(r).  In LMTP
     * the BODY of a transaction gets one call per accepted recipient.
     */
    void (*on_reply)(smtpx_client *c, int cmd, void *cookie,
                     const smtpx_reply *r, void *user_data);

    /** A transaction sent with smtpx_client_send() has its final result. */
    void (*on_txn_done)(smtpx_client *c, smtpx_txn *t, void *user_data);

    /** A log message at the config's level or more severe. */
    void (*on_log)(smtpx_client *c, int level, const char *msg,
                   void *user_data);

    /**
     * Every line sent (dir SMTPX_TRACE_OUT, without CRLF; message content
     * is not traced) and every reply line received (SMTPX_TRACE_IN), the
     * latter octet for octet as the server sent it: show it with
     * smtpx_escape().  Credentials are replaced by "[redacted]".
     */
    void (*on_trace)(smtpx_client *c, int dir, const char *line, size_t len,
                     void *user_data);

    /**
     * The session has ended: status 0 after QUIT was answered, otherwise
     * a negative SMTPX_ERR_* code: EOF (the server closed; EHLO_CLOSED when
     * it closed right after EHLO), TIMEOUT, PROTO (a malformed or
     * unexpected reply, or bytes after the 220 to STARTTLS), CLOSED (a 421
     * from the server, a greeting other than 220, or freed while active),
     * IO (also when a body reader failed: the content cannot be taken back,
     * so the connection goes), TLS, NOMEM.  Called exactly once, after the
     * local replies.
     */
    void (*on_close)(smtpx_client *c, int status, void *user_data);
} smtpx_client_callbacks;

/**
 * @brief  Create a client session.
 * @param  cfg  A frozen config of role SMTPX_ROLE_CLIENT or
 *              SMTPX_ROLE_LMTP_CLIENT; it must outlive the client.  Its
 *              extension mask says which offered extensions to use.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE (config not
 *         frozen), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_client_new(smtpx_client **out, const smtpx_config *cfg,
                                  const smtpx_client_callbacks *cbs,
                                  size_t cbs_size, void *user_data);

/**
 * @brief  Free a client (NULL-safe).  If it has not ended - started or not -
 *         every command still waiting gets its one on_reply, a local reply,
 *         in queue order; transactions it holds are finished (on_txn_done)
 *         but not freed; then on_close(SMTPX_ERR_CLOSED) fires, once.
 *         Must not be called from a callback.
 */
SMTPX_EXTERN void smtpx_client_free(smtpx_client *c);

/**
 * @brief  Start: the client now waits for the greeting (RFC 5321 4.5.3.2.1
 *         deadline), which it reports as on_reply(SMTPX_CMD_GREETING).
 *         Every other command's deadline starts when its bytes have been
 *         written (out_drop), so a connection left idle can be used again.
 *         After a greeting other than 220 the queued commands get local
 *         replies and the client says QUIT (RFC 5321 3.1).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE (started),
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_client_start(smtpx_client *c, uint64_t now_ms);

/**
 * @brief  Hand the client bytes received from the server.  Every byte is
 *         consumed.  A reply nobody waits for, a malformed reply, a reply
 *         line longer than SMTPX_LIMIT_LINE (CRLF included), or bytes after
 *         the 220 to STARTTLS end the session with SMTPX_ERR_PROTO; a 421
 *         nobody waits for ends it with SMTPX_ERR_CLOSED (RFC 5321 3.8).
 * @return len, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE (not
 *         started, TLS must start first, or from a callback),
 *         SMTPX_ERR_NOMEM (fatal).
 */
SMTPX_EXTERN smtpx_ssize smtpx_client_recv(smtpx_client *c, const uint8_t *in,
                                           size_t len, uint64_t now_ms);

/** @brief Show what is waiting to be sent; *data is valid until the next
 *         call on the client.  @return the number of bytes. */
SMTPX_EXTERN size_t smtpx_client_out_peek(smtpx_client *c,
                                          const uint8_t **data);

/** @brief n bytes of what out_peek showed were written.  More message
 *         content may be produced within this call. */
SMTPX_EXTERN void smtpx_client_out_drop(smtpx_client *c, size_t n,
                                        uint64_t now_ms);

/** @brief 1 while the session runs and does not wait for TLS: read the
 *         connection (a server may send 421 at any time). */
SMTPX_EXTERN int smtpx_client_want_read(const smtpx_client *c);

/** @brief 1 if output is waiting. */
SMTPX_EXTERN int smtpx_client_want_write(const smtpx_client *c);

/** @brief 1 after the 220 to STARTTLS: write what waits, run the TLS
 *         handshake as the client, then call smtpx_client_tls_started(). */
SMTPX_EXTERN int smtpx_client_want_tls(const smtpx_client *c);

/** @brief 1 when the session has ended and its output was taken (or
 *         dropped): close the connection. */
SMTPX_EXTERN int smtpx_client_done(const smtpx_client *c);

/**
 * @brief  Why the session ended: the status on_close was given.
 * @retval 0                    After the reply to QUIT.
 * @retval SMTPX_ERR_*          The session ended otherwise (SMTPX_ERR_CLOSED
 *                              for a 421 or a refused greeting, a deadline,
 *                              an EOF, a protocol error, a TLS or
 *                              authentication failure, a fatal error).
 * @retval SMTPX_ERR_INVALID_STATE The session has not ended yet.
 */
SMTPX_EXTERN int smtpx_client_status(const smtpx_client *c);

/**
 * @brief  TLS is up: after want_tls, or for implicit TLS (RFC 8314) before
 *         the server has sent anything.
 *         The client forgets the server's EHLO capabilities (RFC 3207
 *         4.2); queue EHLO again.
 * @param  info  Facts about the TLS session; copied.  May be NULL.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (c NULL), SMTPX_ERR_INVALID_STATE
 *         (TLS not asked for, already active, ended, or from a callback).
 */
SMTPX_EXTERN int smtpx_client_tls_started(smtpx_client *c,
                                          const smtpx_tls_info *info,
                                          uint64_t now_ms);

/** @brief The absolute deadline of the oldest command waiting for its
 *         reply, or of the session; 0 when there is none. */
SMTPX_EXTERN uint64_t smtpx_client_expiry(const smtpx_client *c);

/** @brief Act on the deadline: every waiting command gets a local reply,
 *         the session ends with SMTPX_ERR_TIMEOUT.  @return 1 if it
 *         expired, else 0. */
SMTPX_EXTERN int smtpx_client_expire(smtpx_client *c, uint64_t now_ms);

/** @brief The server closed the connection (EOF). */
SMTPX_EXTERN void smtpx_client_eof(smtpx_client *c);

/** @brief The driver gives up (err: SMTPX_ERR_IO, SMTPX_ERR_TLS...). */
SMTPX_EXTERN void smtpx_client_abort(smtpx_client *c, int err);

/* ---- commands ----------------------------------------------------------- */

/**
 * @brief  Queue EHLO (LHLO in LMTP).  If the server answers 500 or 502
 *         the client sends HELO instead (not in LMTP) and on_reply reports
 *         the HELO's reply for this command.  Other ESMTP features are
 *         used only after a successful EHLO.
 * @param  name  The client's host name or address literal; copied.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (name empty, too long, or with a
 *         space or control character), SMTPX_ERR_INVALID_STATE (ended),
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_client_ehlo(smtpx_client *c, const char *name,
                                   void *cookie);

/** @brief Queue HELO (plain SMTP: the extensions of an earlier EHLO are
 *         forgotten).  Same returns as ehlo, and SMTPX_ERR_NOT_SUPPORTED in
 *         LMTP (RFC 2033 4.1). */
SMTPX_EXTERN int smtpx_client_helo(smtpx_client *c, const char *name,
                                   void *cookie);

/**
 * @brief  Queue STARTTLS (RFC 3207).  On its 220 want_tls turns 1; any
 *         reply bytes after that 220 are a protocol error (injection).
 * @retval 0, SMTPX_ERR_NOT_SUPPORTED (the server did not offer STARTTLS
 *         in its last EHLO reply), SMTPX_ERR_INVALID_STATE (TLS active or
 *         ended), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_client_starttls(smtpx_client *c, void *cookie);

/**
 * @brief  Queue AUTH (RFC 4954).  The mechanism is chosen when the
 *         command is sent, from the server's last EHLO reply; on_reply
 *         (SMTPX_CMD_AUTH) reports the final reply: 235 on success.  When
 *         no mechanism fits, nothing is sent and the reply is local (504
 *         5.5.4).  When TLS is required (SMTPX_POLICY_REQUIRE_TLS or
 *         smtpx_client_set_require_tls()) and not active, the client says
 *         QUIT instead, every waiting command gets a local 454 4.7.10 and
 *         the session ends with SMTPX_ERR_TLS_REQUIRED.  SCRAM-SHA-256
 *         also checks the server's proof: a server that cannot give it has
 *         not got the user's key, and the session ends with
 *         SMTPX_ERR_AUTH (a local 535 5.7.0); a server's "e=" error is an
 *         ordinary failure (the client cancels, the server's reply is
 *         reported).  Credentials are copied, wiped after use, and never
 *         traced or logged.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (no user, neither password nor
 *         token, a user name, authzid or token with a control character,
 *         names over 255 octets, or unknown mechanism bits),
 *         SMTPX_ERR_INVALID_STATE (ended, an AUTH already queued, or
 *         authenticated already), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_client_auth(smtpx_client *c,
                                   const smtpx_auth_creds *creds, void *cookie);

/** @brief The SMTPX_SASL_* mechanism of a successful AUTH, or 0. */
SMTPX_EXTERN unsigned smtpx_client_auth_mech(const smtpx_client *c);

/** @brief TLS facts once TLS is up (what the driver passed to
 *         smtpx_client_tls_started()), else NULL. */
SMTPX_EXTERN const smtpx_tls_info *smtpx_client_tls(const smtpx_client *c);

/**
 * @brief  Per-session override of SMTPX_POLICY_REQUIRE_TLS (an MTA
 *         delivering to destinations with different policies).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT.
 */
SMTPX_EXTERN int smtpx_client_set_require_tls(smtpx_client *c, int on);

/** @brief Queue RSET / NOOP / QUIT.  After QUIT's reply the session ends
 *         with status 0.  @retval 0, SMTPX_ERR_INVALID_ARGUMENT,
 *         SMTPX_ERR_INVALID_STATE (ended, or the greeting refused service),
 *         SMTPX_ERR_NOMEM */
SMTPX_EXTERN int smtpx_client_rset(smtpx_client *c, void *cookie);
SMTPX_EXTERN int smtpx_client_noop(smtpx_client *c, void *cookie);
SMTPX_EXTERN int smtpx_client_quit(smtpx_client *c, void *cookie);

/** @brief 1 if the last EHLO/LHLO succeeded (extensions may be used). */
SMTPX_EXTERN int smtpx_client_esmtp(const smtpx_client *c);

/**
 * @brief  What the server's last EHLO reply said of an extension.
 * @param  keyword  Case-insensitive ("SIZE", "AUTH", "PIPELINING").
 * @return NULL if not offered; otherwise its parameters ("" if none, such
 *         as "10240000" for SIZE or "PLAIN LOGIN" for AUTH), valid until
 *         the next EHLO or TLS start.
 */
SMTPX_EXTERN const char *smtpx_client_ext(const smtpx_client *c,
                                          const char *keyword);

/** @brief The SMTPX_EXT_* bits the server offered (whether or not the
 *         config lets the client use them). */
SMTPX_EXTERN unsigned smtpx_client_ext_mask(const smtpx_client *c);

/** @brief 1 if the reply was made up by the client (connection lost,
 *         timeout, local error, not sent), not received from the server. */
SMTPX_EXTERN int smtpx_reply_local(const smtpx_reply *r);

/**
 * @brief  Send every transaction of this session with DATA even when the
 *         server offers CHUNKING (default 0: BDAT where offered, RFC 3030,
 *         so that a whole transaction goes in one write).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT.
 */
SMTPX_EXTERN int smtpx_client_set_prefer_data(smtpx_client *c, int on);

/** @brief The user_data given at creation or set later. */
SMTPX_EXTERN void *smtpx_client_get_user_data(const smtpx_client *c);
SMTPX_EXTERN void smtpx_client_set_user_data(smtpx_client *c, void *user_data);

/* ---- transactions ------------------------------------------------------- */

/**
 * Where a recipient's result came from (SMTPX_STAGE_*, smtpx_stage_name()).
 *
 * NONE  not yet known
 * MAIL  MAIL was refused
 * RCPT  RCPT was refused (or accepted, so far)
 * DATA  DATA was refused
 * BODY  the reply to the end of the message
 */
#define SMTPX_STAGE_MAP(XX)                                                    \
    XX(NONE, 0, "none")                                                        \
    XX(MAIL, 1, "MAIL")                                                        \
    XX(RCPT, 2, "RCPT")                                                        \
    XX(DATA, 3, "DATA")                                                        \
    XX(BODY, 4, "BODY")

enum {
#define SMTPX__STAGE_ENUM(name, id, text) SMTPX_STAGE_##name = id,
    SMTPX_STAGE_MAP(SMTPX__STAGE_ENUM)
#undef SMTPX__STAGE_ENUM
        SMTPX_STAGE_COUNT
};

/** @brief A stage's name ("RCPT"), or "?". */
SMTPX_EXTERN const char *smtpx_stage_name(int stage);

/**
 * A recipient's state (SMTPX_RCPT_*, smtpx_rcpt_state_name()).
 *
 * PENDING   not finished
 * ACCEPTED  the server took the message for it
 * DEFERRED  4xx, or not attempted: try again later
 * FAILED    5xx: do not try again
 * UNKNOWN   the connection was lost after the whole message was sent (RFC
 *           5321 6.1): it may have been delivered
 */
#define SMTPX_RCPT_STATE_MAP(XX)                                               \
    XX(PENDING, 0, "pending")                                                  \
    XX(ACCEPTED, 1, "accepted")                                                \
    XX(DEFERRED, 2, "deferred")                                                \
    XX(FAILED, 3, "failed")                                                    \
    XX(UNKNOWN, 4, "unknown")

enum {
#define SMTPX__RCPT_ENUM(name, id, text) SMTPX_RCPT_##name = id,
    SMTPX_RCPT_STATE_MAP(SMTPX__RCPT_ENUM)
#undef SMTPX__RCPT_ENUM
        SMTPX_RCPT_STATE_COUNT
};

/** @brief A recipient state's name ("deferred"), or "?". */
SMTPX_EXTERN const char *smtpx_rcpt_state_name(int state);

/**
 * One recipient's result.  Owned by the transaction, valid until
 * smtpx_txn_free(); members may be added at the end in later versions.
 *
 * addr   The address as given to smtpx_txn_add_rcpt().
 * state  SMTPX_RCPT_*.
 * stage  SMTPX_STAGE_* of the reply below.
 * reply  The reply that decided the state (text '\n'-separated, copied);
 *        smtpx_reply_local() tells a reply the client made up.
 */
typedef struct smtpx_rcpt_status {
    const char *addr;
    int state;
    int stage;
    smtpx_reply reply;
} smtpx_rcpt_status;

/**
 * A pull source for message content: fill buf with up to len bytes and
 * return how many, 0 at the end, or a negative SMTPX_ERR_* code (the
 * transaction then fails locally; the connection must be dropped, since
 * DATA cannot be taken back).
 */
typedef smtpx_ssize smtpx_body_read_fn(void *ctx, uint8_t *buf, size_t len);

/**
 * @brief  A new transaction from a reverse-path.
 * @param  cfg   The allocator, and the text line limit that SIZE= counts
 *               with (the client's config); it must outlive t.
 * @param  from  The reverse-path without brackets ("" for <>); copied.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL, or not a valid path),
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_txn_new(smtpx_txn **out, const smtpx_config *cfg,
                               const char *from);

/** @brief Free a transaction (NULL-safe); not while a client is sending it
 *         (smtpx_txn_done() 0 after smtpx_client_send()). */
SMTPX_EXTERN void smtpx_txn_free(smtpx_txn *t);

/**
 * @brief  Add a recipient.
 * @param  to      Forward-path without brackets; copied.
 * @param  params  ESMTP parameters for its RCPT ("NOTIFY=NEVER"), or NULL.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (bad address or parameters),
 *         SMTPX_ERR_INVALID_STATE (already sent), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_txn_add_rcpt(smtpx_txn *t, const char *to,
                                    const char *params);

/**
 * @brief  Extra MAIL parameters ("RET=HDRS ENVID=x"); SIZE, BODY and
 *         SMTPUTF8 are added by the client from what it knows.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE, NOMEM.
 */
SMTPX_EXTERN int smtpx_txn_set_mail_params(smtpx_txn *t, const char *params);

/**
 * @brief  The message, in memory (not copied: it must stay valid until the
 *         transaction is done).  Line ends may be LF or CRLF; the client
 *         dot-stuffs and sends CRLF.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE.
 */
SMTPX_EXTERN int smtpx_txn_set_body(smtpx_txn *t, const void *data, size_t len);

/**
 * @brief  The message from a pull source, for large messages.
 * @param  size  Its size if known (for SIZE=), else 0.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE.
 */
SMTPX_EXTERN int smtpx_txn_set_body_reader(smtpx_txn *t, smtpx_body_read_fn *fn,
                                           void *ctx, uint64_t size);

/**
 * @brief  Declare the body type and whether the message needs SMTPUTF8.
 * @param  body  SMTPX_BODY_7BIT, SMTPX_BODY_8BITMIME (8-bit text, RFC
 *               6152) or SMTPX_BODY_BINARYMIME (any octets, lines of any
 *               length: RFC 3030; sent byte for byte with BDAT).  BODY= is
 *               sent when the server offers 8BITMIME (BINARYMIME).
 *               8-bit content to a server without 8BITMIME, and binary
 *               content to one without BINARYMIME and CHUNKING, is not sent:
 *               every recipient fails with a local "554 5.6.3" (RFC 6152
 *               3: convert or refuse; converting to 7 bits is the MIME
 *               layer's to offer).  A body given with smtpx_txn_set_body()
 *               is looked at: 8-bit octets in it make it 8BITMIME unless it
 *               was declared otherwise.
 * @param  smtputf8  1 if the message itself needs SMTPUTF8 (UTF-8 in its
 *               header fields, RFC 6532); addresses with UTF-8 are found
 *               without it.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE (sent).
 */
SMTPX_EXTERN int smtpx_txn_set_body_type(smtpx_txn *t, int body, int smtputf8);

/**
 * @brief  DSN requests for the message (RFC 3461 4.3, 4.4), sent when the
 *         server offers DSN.
 * @param  ret    SMTPX_DSN_RET_FULL, SMTPX_DSN_RET_HDRS or SMTPX_DSN_RET_NONE.
 * @param  envid  An identifier the reports will quote (printable ASCII,
 *                at most 100 octets once xtext-encoded; the client encodes
 *                it), or NULL.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE (sent),
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_txn_set_dsn(smtpx_txn *t, int ret, const char *envid);

/**
 * @brief  DSN requests for recipient i (the order they were added; RFC
 *         3461 4.1, 4.2), sent when the server offers DSN.
 * @param  notify  SMTPX_DSN_NOTIFY_NEVER alone, or SUCCESS, FAILURE and
 *                 DELAY bits; 0: none.
 * @param  orcpt   The original recipient's address ("rfc822;" and xtext
 *                 are added), or NULL.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (i out of range, a bad notify, an
 *         orcpt with control characters or over 400 octets),
 *         SMTPX_ERR_INVALID_STATE (sent), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_txn_set_rcpt_dsn(smtpx_txn *t, size_t i, unsigned notify,
                                        const char *orcpt);

/**
 * @brief  1 once DSN requests were left out because the server does not
 *         offer DSN.  That is what a relay does (RFC 3461 5.2: it stands in
 *         for the reports itself); an application that needs the reports
 *         from the next hop learns it here.
 */
SMTPX_EXTERN int smtpx_txn_dsn_dropped(const smtpx_txn *t);

/**
 * @brief  REQUIRETLS (RFC 8689): the message goes only over TLS whose
 *         certificate and name were verified, to a server that offers
 *         REQUIRETLS; otherwise every recipient fails with a local "550
 *         5.7.30 REQUIRETLS support required".
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE (sent).
 */
SMTPX_EXTERN int smtpx_txn_set_requiretls(smtpx_txn *t, int on);

/**
 * @brief  MT-PRIORITY (RFC 6710), -9 (lowest) to 9 (highest), sent when
 *         the server offers it (advisory: left out otherwise).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE (sent).
 */
SMTPX_EXTERN int smtpx_txn_set_priority(smtpx_txn *t, int priority);

/**
 * @brief  Send this transaction with DATA even when the server offers
 *         CHUNKING (some servers are known to mishandle BDAT).
 *         smtpx_client_set_prefer_data() does the same for a whole session.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE (sent).
 */
SMTPX_EXTERN int smtpx_txn_set_prefer_data(smtpx_txn *t, int on);

/**
 * @brief  How the content went: SMTPX_FRAMING_BDAT, SMTPX_FRAMING_DATA, or 0
 *         before MAIL was written.
 */
SMTPX_EXTERN int smtpx_txn_framing(const smtpx_txn *t);

/**
 * @brief  Queue the transaction on a client: MAIL, every RCPT, DATA and
 *         the body.  It may be queued before EHLO has been answered.
 *
 *         When the server offers CHUNKING and PIPELINING (RFC 3030, 2920)
 *         the content goes in BDAT chunks instead of DATA: MAIL, every RCPT
 *         and the chunks are written at once, nothing waits for a 354, and
 *         the next transaction's MAIL follows the last chunk.  Content is
 *         then byte-exact (no dot-stuffing; text still gets CRLF line ends
 *         and over-long lines broken, as with DATA; BINARYMIME content is
 *         sent as it is); a body given in memory that needs no change goes
 *         in one chunk without being copied.  Such a transaction has no
 *         DATA reply: on_reply reports MAIL, each RCPT, then BODY, whose
 *         reply is the first refused chunk's, or the last chunk's (in LMTP
 *         one per accepted recipient).  A refused chunk fails the
 *         transaction; no more chunks are sent and the client says RSET.
 *         The log says which framing each transaction used.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (no recipient, no body),
 *         SMTPX_ERR_INVALID_STATE (already sent, or the client ended),
 *         SMTPX_ERR_NOT_SUPPORTED (SMTPUTF8 needed but not offered: known
 *         only after EHLO; then the result says so instead),
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_client_send(smtpx_client *c, smtpx_txn *t);

/**
 * @brief  Finish a transaction that never reached a server, so that each
 *         recipient without a final state gets one: the connection could
 *         not be made, the greeting or EHLO was refused, the driver gave up.
 * @param  why  The reason: a server's refusal (4xx: DEFERRED, 5xx:
 *              FAILED; the text is copied), or a driver's own reply such
 *              as "451 4.4.1 Connection refused" (DEFERRED unless 5xx).
 *              NULL: a local "421 4.4.2 The session was closed" (DEFERRED).
 * @retval 0                         Success; the transaction is done.
 * @retval SMTPX_ERR_INVALID_ARGUMENT t is NULL, or why has a code outside
 *                                   400 to 599.
 * @retval SMTPX_ERR_INVALID_STATE   t is queued on a session that has not
 *                                   finished it (only that session may).
 * @retval SMTPX_ERR_NOMEM           The text could not be copied; the
 *                                   recipients were given the local reply.
 *
 * A transaction that is already done is left as it is (0).  No callback
 * runs: the transaction belongs to no session.
 */
SMTPX_EXTERN int smtpx_txn_fail(smtpx_txn *t, const smtpx_reply *why);

/** @brief 1 once every recipient has its final state. */
SMTPX_EXTERN int smtpx_txn_done(const smtpx_txn *t);

/** @brief Recipients, in the order they were added. */
SMTPX_EXTERN size_t smtpx_txn_rcpt_count(const smtpx_txn *t);

/** @brief Recipient i's result, or NULL if out of range. */
SMTPX_EXTERN const smtpx_rcpt_status *smtpx_txn_rcpt(const smtpx_txn *t,
                                                     size_t i);

/** @brief How many recipients are in each state: counts[SMTPX_RCPT_*]
 *         (an array of SMTPX_RCPT_STATE_COUNT). */
SMTPX_EXTERN void smtpx_txn_counts(const smtpx_txn *t,
                                   size_t counts[SMTPX_RCPT_STATE_COUNT]);

/** @brief Message octets handed to the output so far, after dot-stuffing
 *         (for progress), and in all (0 if not known). */
SMTPX_EXTERN uint64_t smtpx_txn_body_sent(const smtpx_txn *t);
SMTPX_EXTERN uint64_t smtpx_txn_body_size(const smtpx_txn *t);

/**
 * @brief  Lines longer than the text line limit that the client broke
 *         (by inserting CRLF and a space, as Postfix does, RFC 5322 2.1.1);
 *         each one is also logged.
 */
SMTPX_EXTERN size_t smtpx_txn_long_lines(const smtpx_txn *t);

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_CLIENT_H */
