/*
 * transcript - replay a transcript file against a server or a client
 * session, with the harness playing the peer, the application and the
 * driver.
 *
 * A transcript is a readable file of lines, the same for both sides but
 * for who speaks.  Letters name the speaker: C the client, S the server.
 * In a server transcript the peer's lines are C: and the session's S:; in
 * a client transcript the other way round.
 *
 * Both sides:
 *
 *   # comment
 *   @limit NAME VALUE        config limit (SMTPX_LIMIT_NAME)
 *   @timeout NAME MS         config timeout
 *   @ext +NAME / -NAME       offer (server) or use (client) an extension,
 *                            or not
 *   @policy NAME VALUE       a policy (SMTPX_POLICY_NAME): a number, or
 *                            for BARE_LF normalize|reject
 *   @role lmtp               LMTP instead of SMTP (first: it starts the
 *                            config again)
 *   @hostname NAME
 *   @sasl NAME...            exactly these SASL mechanisms
 *   @log                     expect the log lines too (L:)
 *   @trace                   expect the traced input lines too (server
 *                            T:, client R:)
 *   PEER: text               a line from the peer; CRLF is added
 *   PEER+ text               the peer's bytes as they are (escapes: \r \n
 *                            \t \s \\ \xHH); nothing is added
 *   PEER* text               the same bytes as one write of the peer's:
 *                            fed in one piece in every mode (for what
 *                            depends on input arriving together)
 *   SELF: text               an expected line from the session (without
 *                            CRLF, escaped): in the log, as traced, and in
 *                            the output stream
 *   B: text                  expected output bytes (escapes) that are not
 *                            traced as a line: message content, or a line
 *                            the trace shows redacted
 *   E: text                  an expected event
 *   L: text                  an expected log line ("level message", as the
 *                            library wrote it)
 *   A: action                something the application or driver does;
 *                            both sides know:
 *        time +MS            advance the clock and call expire
 *        eof | abort         the peer closes / the driver gives up
 *        drain off|on        stop / restart writing output
 *        wait                the peer waits for the replies before it
 *                            sends more (peer lines are otherwise fed
 *                            together, as a pipelining peer sends them)
 *   X: NAME VALUE            check a value now; both sides know want_read,
 *                            want_write, want_tls, done, expiry (+MS from
 *                            now, or 0), out (bytes waiting)
 *
 * In SELF:, E:, T: and R: lines, CR, LF, tab, backslash and octets outside
 * printable ASCII are written as escapes (\r \n \t \\ \xHH), as the log
 * shows them.
 *
 * Events both sides log:
 *   E: close NAME            on_close (SMTPX_OK or an SMTPX_ERR_* name)
 *   E: fatal NAME            recv returned a fatal error (once per error)
 *   E: WHAT returned NAME    an action's call was refused (the server
 *                            names the call, the client the action)
 *
 * A server transcript (PEER is C, SELF is S; the session starts at the
 * first line that needs it):
 *
 *   @tls                     TLS is available (STARTTLS offered)
 *   @auth                    on_auth and on_auth_lookup are set (passwords
 *                            from @user lines), so AUTH is offered
 *   @user NAME PASSWORD      a user the AUTH callbacks know
 *   T: text                  an expected traced client line (with @trace;
 *                            credentials show redacted)
 *   E: connect, helo, mail, rcpt, data_begin, data (the content, merged),
 *      data_end, txn_end, vrfy, auth, lookup   callback events
 *   A: set CALLBACK pause | fail | CODE [X.Y.Z] [TEXT]
 *                            how the next call of CALLBACK (connect, helo,
 *                            mail, rcpt, data_begin, chunk, data_end, vrfy,
 *                            auth, lookup) answers
 *      secret                answer a paused lookup with the user's SCRAM
 *                            keys (then resume)
 *      rcptdata N            the next on_rcpt stores pointer value N
 *      reply CODE [X.Y.Z] [TEXT]   answer a pause
 *      lmtp I CODE [X.Y.Z] [TEXT]  smtpx_server_reply_rcpt in the next
 *                            on_data_end (or now, during its pause)
 *      resume                end a pause in on_data_chunk
 *      tls                   the driver finishes the TLS handshake
 *      shutdown now|drain
 *   X: rcpts, size, msgs, state, helo, protocol, from, held (bytes held),
 *      rcptdata I, auth (the identity, user and mechanism)
 *
 * A client transcript (PEER is S, SELF is C; "A: start" starts it):
 *
 *   C: .                     the end of a message
 *   T: text                  an expected trace line that is not the output
 *                            as it is (a redacted AUTH line; pair it with
 *                            a B: line)
 *   R: text                  an expected traced reply line (with @trace)
 *   E: reply CMD CODE [X.Y.Z] TEXT [local]
 *      txn ADDR=STATE/STAGE/CODE ... [long=N]
 *   A: start | ehlo NAME | helo NAME | starttls | rset | noop | quit | tls |
 *      txn FROM RCPT[;PARAMS][,RCPT...] BODY [OPTION...] |
 *      auth MECHS|- USER pw:PASSWORD|tok:TOKEN [AUTHZID] | requiretls |
 *      preferdata
 *                            (BODY with escapes; options: "reader" sends it
 *                            through a pull callback in 7-octet pieces;
 *                            8bit, 7bit, binary, smtputf8 declare the body;
 *                            ret=full|hdrs, envid=X, notify=N|SFD[:ORCPT]
 *                            for the first recipient; requiretls;
 *                            priority=N; preferdata)
 *   X: esmtp, ext KEYWORD, authmech
 *
 * The peer's input between two A: or X: lines is fed whole, one octet at
 * a time, split in two at an offset of the whole input stream, or in
 * random pieces; the log (SELF:, E:, and L: and traced input when asked)
 * must come out the same whichever way, and the output stream must be the
 * SELF: and B: lines in order (a prefix of them when the session dropped
 * output: output waiting before a call and gone after it unwritten).
 *
 * The session always logs (on_log) and traces (on_trace); log lines and
 * traced input the transcript did not ask for are read but not compared.
 * With TR_GUARD each piece is handed to the session from a buffer that
 * ends right before an unreadable page and is made unreadable once the
 * call returns, and the library logs at SMTPX_LOG_DEBUG through the
 * config's log function instead of on_log: a session that reads past its
 * input, or keeps a pointer into it, crashes.
 */
#ifndef TESTS_TRANSCRIPT_H
#define TESTS_TRANSCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include <libsmtpx/smtpx.h>

#include "harness/tutil.h"

/* How the peer's input is fed. */
#define TR_WHOLE  0
#define TR_BYTES  1
#define TR_SPLIT  2 /* split at the offset given */
#define TR_RANDOM 3 /* random pieces; the offset is the seed */
/* Or'ed with a mode: guard pages, logging at the debug level. */
#define TR_GUARD 0x10

typedef struct tr_side tr_side;
extern const tr_side tr_server; /* transcript_server.c */
extern const tr_side tr_client; /* transcript_client.c */

/* A transcript file, read and parsed once for many replays. */
typedef struct transcript transcript;

/* transcript_load - read path as a transcript for side; 0, or -1 with the
 * reason in err */
int transcript_load(transcript **out, const tr_side *side, const char *path,
                    char *err, size_t errsize);
void transcript_free(transcript *tx);

/* transcript_input_size - the peer's octets in all (for split loops) */
size_t transcript_input_size(const transcript *tx);

/* transcript_run - replay in a mode (TR_*, maybe | TR_GUARD); 0, or -1
 * with a description of the first difference in err */
int transcript_run(const transcript *tx, int mode, size_t arg, char *err,
                   size_t errsize);

/* ---- for the side files --------------------------------------------------
 *
 * The calls the harness makes on a session, alike for server and client
 * (as the transport's pump has them).
 */
typedef struct tr_session_ops {
    smtpx_ssize (*recv)(void *s, const uint8_t *in, size_t len, uint64_t now);
    size_t (*out_peek)(void *s, const uint8_t **data);
    void (*out_drop)(void *s, size_t n, uint64_t now);
    int (*want_read)(const void *s);
    int (*want_write)(const void *s);
    int (*want_tls)(const void *s);
    int (*done)(const void *s);
    uint64_t (*expiry)(const void *s);
    int (*expire)(void *s, uint64_t now);
    void (*eof)(void *s);
    void (*abort)(void *s, int err);
    void (*free)(void *s);
} tr_session_ops;

/*
 * TR_SESSION(server) - for smtpx_server: the table tr_server_ops, and the
 * callbacks tr_server_on_log, tr_server_on_trace and tr_server_on_close,
 * which hand what they get to tr_log, tr_trace and a "close" event; the
 * same for client.
 */
#define TR_SESSION(side)                                                       \
    TR_CALL_(side, smtpx_ssize, recv,                                          \
             (void *s, const uint8_t *in, size_t n, uint64_t now),             \
             (s, in, n, now))                                                  \
    TR_CALL_(side, size_t, out_peek, (void *s, const uint8_t **p), (s, p))     \
    TR_VOID_(side, out_drop, (void *s, size_t n, uint64_t now), (s, n, now))   \
    TR_CALL_(side, int, want_read, (const void *s), (s))                       \
    TR_CALL_(side, int, want_write, (const void *s), (s))                      \
    TR_CALL_(side, int, want_tls, (const void *s), (s))                        \
    TR_CALL_(side, int, done, (const void *s), (s))                            \
    TR_CALL_(side, uint64_t, expiry, (const void *s), (s))                     \
    TR_CALL_(side, int, expire, (void *s, uint64_t now), (s, now))             \
    TR_VOID_(side, eof, (void *s), (s))                                        \
    TR_VOID_(side, abort, (void *s, int err), (s, err))                        \
    TR_VOID_(side, free, (void *s), (s))                                       \
    static const tr_session_ops tr_##side##_ops = {                            \
        tr_##side##_recv,      tr_##side##_out_peek,   tr_##side##_out_drop,   \
        tr_##side##_want_read, tr_##side##_want_write, tr_##side##_want_tls,   \
        tr_##side##_done,      tr_##side##_expiry,     tr_##side##_expire,     \
        tr_##side##_eof,       tr_##side##_abort,      tr_##side##_free};      \
    static void tr_##side##_on_log(smtpx_##side *s, int level,                 \
                                   const char *msg, void *ud)                  \
    {                                                                          \
        (void)s;                                                               \
        tr_log(ud, level, msg);                                                \
    }                                                                          \
    static void tr_##side##_on_trace(smtpx_##side *s, int dir,                 \
                                     const char *line, size_t len, void *ud)   \
    {                                                                          \
        (void)s;                                                               \
        tr_trace(ud, dir, line, len);                                          \
    }                                                                          \
    static void tr_##side##_on_close(smtpx_##side *s, int status, void *ud)    \
    {                                                                          \
        (void)s;                                                               \
        tr_event(ud, "close %s", smtpx_err_name(status));                      \
    }

/* tr_SIDE_NAME PARAMS calling smtpx_SIDE_NAME ARGS */
#define TR_CALL_(side, type, name, params, args)                               \
    static type tr_##side##_##name params                                      \
    {                                                                          \
        return smtpx_##side##_##name args;                                     \
    }
#define TR_VOID_(side, name, params, args)                                     \
    static void tr_##side##_##name params                                      \
    {                                                                          \
        smtpx_##side##_##name args;                                            \
    }

/*
 * The state of one replay.  A side keeps its own state in a struct that
 * begins with this one (tr_side.size); the session's user_data is it.
 */
typedef struct tr {
    const transcript *tx;
    const tr_side *side;
    smtpx_config *cfg;
    void *sess; /* the smtpx_server or smtpx_client, once made */
    int started;
    uint64_t now;
    int drain;    /* take output as soon as it is queued */
    int dropped;  /* the session dropped output it had queued */
    int log_on;   /* compare log lines (@log) */
    int trace_on; /* compare traced input lines (@trace) */
    int guard;    /* TR_GUARD */
    int last_fatal;
    int mode;
    size_t arg;
    size_t fed; /* octets fed so far */
    uint32_t rng;
    uint32_t rnd; /* the deterministic random source */
    tu_buf log;   /* the actual log */
    tu_buf out;   /* the output taken */
    tu_buf data;  /* content not yet logged (merged into one event) */
    tu_buf taken; /* log and trace lines taken but not compared */
    int failed;
    char *err;
    size_t errsize;
} tr;

struct tr_side {
    const char *name; /* "server", "client" */
    size_t size;      /* of the side's state, which begins with a tr */
    char peer;        /* the letter of input lines */
    char self;        /* the letter of the session's lines */
    char traced_in;   /* the letter of traced input lines (with @trace) */
    char traced_out;  /* the letter of output trace lines that differ from
                         the bytes (0: none) */
    smtpx_role role, lmtp_role;
    const char *hostname; /* set in every config, or NULL */
    const tr_session_ops *ops;
    /* a side's own directive (or NULL): 0, or -1 if bad or unknown */
    int (*directive)(tr *t, const char *line);
    /* make the session into t->sess, the config frozen: 0 or an error */
    int (*make)(tr *t);
    /* start it: 0 or an error */
    int (*start)(tr *t);
    int start_at_once; /* start as soon as made (a server: the connection
                          is what makes it) */
    /* a side's own action: 0 done, 1 not one of the side's */
    int (*action)(tr *t, const char *line);
    /* a side's own check: 0 with the value in got, or -1 if unknown */
    int (*check)(tr *t, const char *name, const char *want, char *got,
                 size_t size);
    /* free what the side holds once the session is freed (or NULL) */
    void (*end)(tr *t);
};

/* For the side files: report the first failure; log an event (escaped);
 * content to merge into one event; a log or trace line from the session. */
void tr_fail(tr *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tr_event(tr *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void tr_data(tr *t, const uint8_t *p, size_t n);
void tr_log(tr *t, int level, const char *msg);
void tr_trace(tr *t, int dir, const char *line, size_t len);

/* tr_open - make the session if there is none, and start it if start is
 * set or the side starts at once; output is taken at once */
void tr_open(tr *t, int start);

/* tr_wants_on_log - whether the session gets on_log (not in guard mode,
 * where the config's log function takes the log) */
int tr_wants_on_log(const tr *t);

#endif
