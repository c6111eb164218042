/*
 * attempt - one delivery attempt over one connection: the session set-up
 * that comes before a transaction (greeting, EHLO or HELO, STARTTLS and
 * EHLO again, AUTH), and what to try on a new connection when an attempt
 * fails in a way another one can avoid.
 *
 * It is driver-neutral: it never does I/O.  A driver creates the client
 * with smtpx__attempt_cbs and the attempt as user_data, calls
 * smtpx__attempt_start() once the client is started, and
 * smtpx__attempt_step() after every pump; when the step says READY it
 * queues its transactions, when it says GIVE_UP it says QUIT.  The
 * blocking smtpx_posix_sendmail() is one such driver; the queue's delivery
 * engine is another.
 */
#ifndef SMTPX_LIB_ATTEMPT_H
#define SMTPX_LIB_ATTEMPT_H

#include <libsmtpx/client.h>
#include <libsmtpx/tls.h>

/* What smtpx__attempt_step() says. */
#define SMTPX__ATTEMPT_WAIT    0 /* the set-up goes on */
#define SMTPX__ATTEMPT_READY   1 /* queue the transactions (said once) */
#define SMTPX__ATTEMPT_GIVE_UP 2 /* refused: say QUIT (said once) */

typedef struct smtpx__attempt {
    /* Set by the caller before the first attempt. */
    const char *helo;             /* the name to greet with */
    int use_helo;                 /* HELO instead of EHLO */
    int tls_level;                /* SMTPX_TLS_* */
    int implicit_tls;             /* TLS from the first byte */
    const smtpx_auth_creds *auth; /* or NULL */
    smtpx_client_callbacks user;  /* the application's, passed on */
    void *user_data;

    /* Progress of the current attempt (smtpx__attempt_reset clears it). */
    int phase;
    int greetings;       /* EHLO or HELO replies so far */
    int greet_ok;        /* the last one was 2xx */
    int starttls;        /* STARTTLS replied: 220 (1) or not (-1) */
    int auth_result;     /* AUTH replied: 235 (1) or not (-1) */
    smtpx_reply refusal; /* the server's refusal of greeting, EHLO or AUTH */
    char refusal_text[512];
} smtpx__attempt;

/* The client callbacks that follow the set-up; user_data must be the
 * attempt.  Each passes the event on to a->user. */
extern const smtpx_client_callbacks smtpx__attempt_cbs;

/* smtpx__attempt_reset - forget the progress of the last attempt */
void smtpx__attempt_reset(smtpx__attempt *a);

/* smtpx__attempt_start - queue the greeting command (EHLO or HELO); 0 or
 * a negative SMTPX_ERR_* code */
int smtpx__attempt_start(smtpx__attempt *a, smtpx_client *c);

/* smtpx__attempt_step - move the set-up on after a pump: queue STARTTLS,
 * the second EHLO or AUTH when their turn comes.  Returns an
 * SMTPX__ATTEMPT_* value, or a negative SMTPX_ERR_* code. */
int smtpx__attempt_step(smtpx__attempt *a, smtpx_client *c);

/* smtpx__attempt_status - the outcome of a finished attempt from the
 * client's close status: a refused AUTH is SMTPX_ERR_AUTH even though the
 * session ended with QUIT. */
int smtpx__attempt_status(const smtpx__attempt *a, int status);

/* smtpx__attempt_refusal - the server's own refusal to give the
 * recipients of a transaction that never went out, or NULL */
const smtpx_reply *smtpx__attempt_refusal(const smtpx__attempt *a);

/*
 * smtpx__attempt_retry - after an attempt that ended with status and left
 * t unfinished, should another connection be tried?  1 (the attempt's
 * settings are changed for it) or 0.
 *  - The server hung up on EHLO (SMTPX_ERR_EHLO_CLOSED): an old server
 *    may take HELO (RFC 5321 3.2).
 *  - Opportunistic TLS (MAY) whose handshake failed: clear text, as
 *    Postfix does, so the message is not stuck behind a broken TLS stack.
 * Each change is made once, so the attempts are bounded.
 */
int smtpx__attempt_retry(smtpx__attempt *a, int status, const smtpx_txn *t);

/* smtpx__attempt_retry_setup - the same decision for a connection on which
 * no transaction went out (the queue's engine, which queues transactions
 * only once the set-up is ready) */
int smtpx__attempt_retry_setup(smtpx__attempt *a, int status);

/*
 * smtpx__attempt_backoff - seconds to wait before the next attempt after
 * attempts failed ones (1 for the first failure): retry_min doubled for
 * each further failure, capped at retry_max, as Postfix's
 * minimal_backoff_time / maximal_backoff_time.
 */
uint32_t smtpx__attempt_backoff(uint32_t retry_min, uint32_t retry_max,
                                unsigned attempts);

#endif
