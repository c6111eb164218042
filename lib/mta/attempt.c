/*
 * attempt - one delivery attempt: the session set-up before a transaction,
 * and what to try on a new connection when an attempt fails.
 *
 * Exports smtpx__attempt_cbs and the smtpx__attempt_* functions of
 * attempt.h.  It uses the client only through <libsmtpx/client.h>, as a
 * driver written outside the library would.
 *
 * The set-up runs in phases, each waiting for one reply:
 *
 *   GREET   EHLO (or HELO) after the 220 greeting
 *   TLS     STARTTLS, when TLS is wanted and offered (RFC 3207)
 *   EHLO2   EHLO again under TLS (RFC 3207 4.2: capabilities are
 *           forgotten)
 *   AUTH    AUTH, when credentials are given (RFC 4954)
 *   READY   the transactions may go
 *   DONE    READY or GIVE_UP has been said
 *
 * Invariants: READY and GIVE_UP are each said at most once per attempt;
 * nothing is queued from inside a callback (the step runs between pumps);
 * a server's refusal of the greeting, EHLO or AUTH is kept so that the
 * recipients of a transaction that never went out get the server's own
 * words.  Without TLS where the level requires it, the client core itself
 * refuses to send MAIL or credentials (SMTPX_ERR_TLS_REQUIRED).
 */
#include <stdio.h>
#include <string.h>

#include "mta/attempt.h"

enum {
    PHASE_GREET,
    PHASE_TLS,
    PHASE_EHLO2,
    PHASE_AUTH,
    PHASE_READY,
    PHASE_DONE
};

static void attempt_refusal(smtpx__attempt *a, const smtpx_reply *r)
{
    if (a->refusal.code != 0 || smtpx_reply_local(r))
        return;
    a->refusal = *r;
    snprintf(a->refusal_text, sizeof(a->refusal_text), "%s",
             r->text ? r->text : "");
    a->refusal.text = a->refusal_text;
}

static void attempt_reply(smtpx_client *c, int cmd, void *cookie,
                          const smtpx_reply *r, void *ud)
{
    smtpx__attempt *a = ud;

    if (cmd == SMTPX_CMD_EHLO || cmd == SMTPX_CMD_HELO ||
        cmd == SMTPX_CMD_LHLO) {
        a->greetings++;
        a->greet_ok = r->code >= 200 && r->code < 300;
        if (!a->greet_ok)
            attempt_refusal(a, r);
    } else if (cmd == SMTPX_CMD_GREETING && r->code != 220) {
        attempt_refusal(a, r);
    } else if (cmd == SMTPX_CMD_STARTTLS) {
        a->starttls = r->code == 220 ? 1 : -1;
    } else if (cmd == SMTPX_CMD_AUTH) {
        a->auth_result = r->code == 235 ? 1 : -1;
        if (a->auth_result < 0 && !smtpx_reply_local(r)) {
            /* A refused login is the sender's problem to fix, not the
             * message's: defer (as Postfix's smtp_sasl_auth_soft_bounce),
             * keeping the server's words. */
            a->refusal.code = 454;
            a->refusal.enh[0] = 4;
            a->refusal.enh[1] = 7;
            a->refusal.enh[2] = 0;
            snprintf(a->refusal_text, sizeof(a->refusal_text),
                     "Authentication refused: %d %s", r->code,
                     r->text ? r->text : "");
            a->refusal.text = a->refusal_text;
        }
    }
    if (a->user.on_reply != NULL)
        a->user.on_reply(c, cmd, cookie, r, a->user_data);
}

static void attempt_txn_done(smtpx_client *c, smtpx_txn *t, void *ud)
{
    smtpx__attempt *a = ud;

    if (a->user.on_txn_done != NULL)
        a->user.on_txn_done(c, t, a->user_data);
}

static void attempt_log(smtpx_client *c, int level, const char *msg, void *ud)
{
    smtpx__attempt *a = ud;

    if (a->user.on_log != NULL)
        a->user.on_log(c, level, msg, a->user_data);
}

static void attempt_trace(smtpx_client *c, int dir, const char *line,
                          size_t len, void *ud)
{
    smtpx__attempt *a = ud;

    if (a->user.on_trace != NULL)
        a->user.on_trace(c, dir, line, len, a->user_data);
}

static void attempt_close(smtpx_client *c, int status, void *ud)
{
    smtpx__attempt *a = ud;

    if (a->user.on_close != NULL)
        a->user.on_close(c, status, a->user_data);
}

const smtpx_client_callbacks smtpx__attempt_cbs = {
    .on_reply = attempt_reply,
    .on_txn_done = attempt_txn_done,
    .on_log = attempt_log,
    .on_trace = attempt_trace,
    .on_close = attempt_close,
};

void smtpx__attempt_reset(smtpx__attempt *a)
{
    a->phase = PHASE_GREET;
    a->greetings = 0;
    a->greet_ok = 0;
    a->starttls = 0;
    a->auth_result = 0;
    memset(&a->refusal, 0, sizeof(a->refusal));
    a->refusal_text[0] = '\0';
}

int smtpx__attempt_start(smtpx__attempt *a, smtpx_client *c)
{
    smtpx__attempt_reset(a);
    return a->use_helo ? smtpx_client_helo(c, a->helo, NULL)
                       : smtpx_client_ehlo(c, a->helo, NULL);
}

/* attempt_after_greeting - the next phase once EHLO went well: AUTH if
 * there are credentials, else READY */
static int attempt_after_greeting(smtpx__attempt *a, smtpx_client *c)
{
    int rc;

    if (a->auth == NULL) {
        a->phase = PHASE_READY;
        return 0;
    }
    rc = smtpx_client_auth(c, a->auth, NULL);
    if (rc < 0)
        return rc;
    a->phase = PHASE_AUTH;
    return 0;
}

int smtpx__attempt_step(smtpx__attempt *a, smtpx_client *c)
{
    int rc = 0;

    /* Each pass moves at most one phase on; the loop goes on while a
     * reply that already came lets the next phase start. */
    for (;;) {
        switch (a->phase) {
        case PHASE_GREET:
            if (a->greetings < 1)
                return SMTPX__ATTEMPT_WAIT;
            if (!a->greet_ok)
                goto give_up;
            if (a->tls_level > SMTPX_TLS_NONE && !a->implicit_tls &&
                smtpx_client_ext(c, "STARTTLS") != NULL) {
                rc = smtpx_client_starttls(c, NULL);
                a->phase = PHASE_TLS;
            } else {
                rc = attempt_after_greeting(a, c);
            }
            break;
        case PHASE_TLS:
            if (a->starttls == 0 ||
                (a->starttls > 0 && smtpx_client_tls(c) == NULL))
                return SMTPX__ATTEMPT_WAIT;
            if (a->starttls > 0) {
                rc = smtpx_client_ehlo(c, a->helo, NULL);
                a->phase = PHASE_EHLO2;
            } else {
                /* Refused: the client core keeps what must not go in
                 * clear text from going. */
                rc = attempt_after_greeting(a, c);
            }
            break;
        case PHASE_EHLO2:
            if (a->greetings < 2)
                return SMTPX__ATTEMPT_WAIT;
            if (!a->greet_ok)
                goto give_up;
            rc = attempt_after_greeting(a, c);
            break;
        case PHASE_AUTH:
            if (a->auth_result == 0)
                return SMTPX__ATTEMPT_WAIT;
            if (a->auth_result < 0)
                goto give_up;
            a->phase = PHASE_READY;
            break;
        case PHASE_READY:
            a->phase = PHASE_DONE;
            return SMTPX__ATTEMPT_READY;
        default:
            return SMTPX__ATTEMPT_WAIT;
        }
        if (rc < 0)
            return rc;
    }
give_up:
    a->phase = PHASE_DONE;
    return SMTPX__ATTEMPT_GIVE_UP;
}

int smtpx__attempt_status(const smtpx__attempt *a, int status)
{
    if (a->auth_result < 0 && (status == 0 || status == SMTPX_ERR_CLOSED))
        return SMTPX_ERR_AUTH;
    return status;
}

const smtpx_reply *smtpx__attempt_refusal(const smtpx__attempt *a)
{
    return a->refusal.code != 0 ? &a->refusal : NULL;
}

int smtpx__attempt_retry(smtpx__attempt *a, int status, const smtpx_txn *t)
{
    if (smtpx_txn_done(t))
        return 0;
    return smtpx__attempt_retry_setup(a, status);
}

int smtpx__attempt_retry_setup(smtpx__attempt *a, int status)
{
    if (status == SMTPX_ERR_EHLO_CLOSED && !a->use_helo) {
        a->use_helo = 1;
        return 1;
    }
    if (status == SMTPX_ERR_TLS && a->tls_level == SMTPX_TLS_MAY &&
        !a->implicit_tls) {
        a->tls_level = SMTPX_TLS_NONE;
        return 1;
    }
    return 0;
}

uint32_t smtpx__attempt_backoff(uint32_t retry_min, uint32_t retry_max,
                                unsigned attempts)
{
    uint64_t d = retry_min;

    while (attempts > 1 && d < retry_max) {
        d *= 2;
        attempts--;
    }
    return d > retry_max ? retry_max : (uint32_t)d;
}
