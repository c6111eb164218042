/*
 * transcript - replay a server transcript file against a session.
 *
 * A transcript is a readable file of lines:
 *
 *   # comment
 *   @limit NAME VALUE        config limit (SMTPX_LIMIT_NAME)
 *   @timeout NAME MS         config timeout
 *   @ext +NAME / -NAME       offer or withdraw an extension
 *   @policy NAME VALUE       BARE_LF normalize|reject, REQUIRE_HELO 0|1,
 *                            VRFY / EXPN 252|502
 *   @role lmtp               LMTP server
 *   @hostname NAME
 *   @tls                     TLS is available (STARTTLS offered)
 *   @log                     expect log lines too (L:)
 *   @trace                   expect the traced client lines too (T:)
 *   @auth                    on_auth and on_auth_lookup are set (passwords
 *                            from @user lines; a deterministic random
 *                            source), so AUTH is offered
 *   @user NAME PASSWORD      a user the AUTH callbacks know
 *   @sasl NAME...            exactly these SASL mechanisms
 *   @policy REQUIRE_TLS 0|1, AUTH_CLEARTEXT 0|1
 *   C: text                  client line; CRLF is added
 *   C+ text                  client bytes as they are (escapes: \r \n \t
 *                            \\ \xHH); nothing is added
 *   S: text                  an expected reply line (without CRLF)
 *   E: text                  an expected callback event
 *   L: text                  an expected log line ("level message")
 *   T: text                  an expected traced client line
 *   A: action                something the application or driver does:
 *        set CALLBACK pause | fail | CODE [X.Y.Z] [TEXT]
 *                            how the next call of CALLBACK (connect, helo,
 *                            mail, rcpt, data_begin, chunk, data_end, vrfy,
 *                            auth, lookup) answers
 *        secret              answer a paused lookup with the user's
 *                            SCRAM keys (then resume)
 *        rcptdata N          the next on_rcpt stores pointer value N
 *        reply CODE [X.Y.Z] [TEXT]   answer a pause
 *        lmtp I CODE [X.Y.Z] [TEXT]  smtpx_server_reply_rcpt in the next
 *                            on_data_end (or now, during its pause)
 *        resume              end a pause in on_data_chunk
 *        time +MS            advance the clock and call expire
 *        eof | abort         the client closes / the driver gives up
 *        tls                 the driver finishes the TLS handshake
 *        shutdown now|drain
 *        drain off|on        stop / restart writing output
 *   X: NAME VALUE            check a value now: want_read, want_write,
 *                            want_tls, done, expiry, rcpts, size, msgs,
 *                            state, helo, protocol, out (bytes waiting),
 *                            held (bytes held), rcptdata I, auth (the
 *                            identity, user and mechanism)
 *
 * Client input between two actions is fed in one of several ways (whole,
 * one byte at a time, or split in two at a given offset of the whole
 * client stream); the ordered log of replies (S:), events (E:) and logs
 * (L:) must come out the same whichever way it is fed.
 */
#ifndef TESTS_TRANSCRIPT_H
#define TESTS_TRANSCRIPT_H

#include <stddef.h>

/* How client input is fed. */
#define TR_WHOLE  0
#define TR_BYTES  1
#define TR_SPLIT  2 /* split at the offset given */
#define TR_RANDOM 3 /* random pieces; the offset is the seed */

/* Replay path in a mode; returns 0 on success, or -1 with a description
 * of the first difference in err. */
int transcript_run(const char *path, int mode, size_t arg, char *err,
                   size_t errsize);

/* Total client octets in a transcript (for split loops), or -1. */
long transcript_input_size(const char *path);

#endif
