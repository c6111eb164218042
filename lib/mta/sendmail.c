/*
 * sendmail - smtpx_posix_sendmail(): one transaction, blocking, over POSIX
 * sockets.
 *
 * Exports smtpx_posix_sendmail() and smtpx_posix_sendmail_batch() of
 * <libsmtpx/posix.h>.  It is a small
 * driver made only of public calls: a socket from smtpx_posix_connect(), a
 * transport, a client session pumped until it is done, smtpx_posix_wait()
 * between pumps.  The delivery policy - the session set-up, the HELO retry
 * for a server that hangs up on EHLO, the clear-text retry after failed
 * opportunistic TLS - is the attempt module's, which the queue's delivery
 * engine shares.
 *
 * Invariant: whatever happens, the transaction is finished when it
 * returns - every recipient has its state (RFC 5321 6.1: a message whose
 * outcome is not known is UNKNOWN, never assumed lost or delivered).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libsmtpx/posix.h>
#include <libsmtpx/transport.h>

#include "base/mem.h"
#include "mta/attempt.h"
#include "proto/conf.h"

/* sendmail_deadline - the nearer of the session's expiry and the whole
 * delivery's end (0: none) */
static uint64_t sendmail_deadline(const smtpx_client *c, uint64_t end)
{
    uint64_t e = smtpx_client_expiry(c);

    if (end != 0 && (e == 0 || end < e))
        return end;
    return e;
}

/* sendmail_pump - pump until the session is done, stepping the set-up:
 * the transaction goes once it is ready, QUIT when it is refused; at end
 * (0: never) the session is dropped */
static void sendmail_pump(int fd, smtpx_client *c, smtpx_transport *t,
                          smtpx__attempt *a, smtpx_txn *const *txns, size_t n,
                          int *send_rc, uint64_t end)
{
    for (;;) {
        uint64_t now = smtpx_posix_now_ms();
        const uint8_t *p;
        size_t queued;
        int wait, step;

        if (end != 0 && now >= end && !smtpx_client_done(c))
            smtpx_client_abort(c, SMTPX_ERR_TIMEOUT);
        smtpx_client_expire(c, now);
        wait = smtpx_client_pump(c, t, now);
        if (wait <= 0)
            return;
        queued = smtpx_client_out_peek(c, &p);
        step = smtpx__attempt_step(a, c);
        if (step == SMTPX__ATTEMPT_READY) {
            /* The transaction is queued only now, so that a server that
             * hangs up on EHLO can be asked again with HELO before
             * anything of the message is spent. */
            size_t i;
            for (i = 0; i < n; i++) {
                int rc =
                    smtpx_txn_done(txns[i]) ? 0 : smtpx_client_send(c, txns[i]);
                if (rc < 0 && *send_rc == 0)
                    *send_rc = rc;
            }
            smtpx_client_quit(c, NULL);
            continue;
        }
        if (step == SMTPX__ATTEMPT_GIVE_UP || step < 0) {
            if (step < 0)
                *send_rc = step;
            smtpx_client_quit(c, NULL);
            continue;
        }
        /* What the step queued is written before waiting. */
        if ((wait & SMTPX_WAIT_AGAIN) || smtpx_client_out_peek(c, &p) > queued)
            continue;
        if (smtpx_posix_wait(fd, wait & (SMTPX_WAIT_READ | SMTPX_WAIT_WRITE),
                             sendmail_deadline(c, end)) < 0)
            smtpx_client_abort(c, SMTPX_ERR_IO);
    }
}

/* The state of a whole delivery, across its attempts. */
typedef struct sendmail_run {
    const smtpx_config *cfg;
    const smtpx_sendmail_opts *o;
    uint64_t end;        /* the whole delivery's end; 0: none */
    int helo_given;      /* the caller chose the name */
    char helo[256];      /* this host's name, or the address literal */
    smtpx_reply refusal; /* what the recipients are told if nothing went */
    char refusal_text[512];
} sendmail_run;

/* sendmail_refuse - keep a reason for the recipients */
static void sendmail_refuse(sendmail_run *r, int code, int e2, int e3,
                            const char *text)
{
    r->refusal.code = code;
    r->refusal.enh[0] = (uint16_t)(code / 100);
    r->refusal.enh[1] = (uint16_t)e2;
    r->refusal.enh[2] = (uint16_t)e3;
    snprintf(r->refusal_text, sizeof(r->refusal_text), "%s", text);
    r->refusal.text = r->refusal_text;
}

/* sendmail_connect - a connection within what is left of the time; on
 * failure the reason becomes the recipients' (RFC 3463: 4.4.1 no answer
 * from the host, 4.4.3 the name could not be resolved) */
static int sendmail_connect(sendmail_run *r, int *fd)
{
    const smtpx_sendmail_opts *o = r->o;
    int per = o->connect_timeout_ms, rc;
    char why[300];

    if (r->end != 0) {
        uint64_t now = smtpx_posix_now_ms();
        uint64_t left = r->end > now ? r->end - now : 0;
        if (left == 0) {
            sendmail_refuse(r, 451, 4, 1, "Timed out before connecting");
            return SMTPX_ERR_TIMEOUT;
        }
        if (per <= 0 || (uint64_t)per > left)
            per = left > INT32_MAX ? INT32_MAX : (int)left;
    }
    rc = smtpx_posix_connect_why(o->host, o->port, per, fd, why, sizeof(why));
    if (rc == SMTPX_ERR_RESOLVE)
        sendmail_refuse(r, 451, 4, 3, why);
    else if (rc < 0)
        sendmail_refuse(r, 451, 4, 1, why);
    return rc;
}

/* sendmail_lost - why a session that was made ended before the message
 * went: what the recipients are told unless the server refused in its
 * own words (RFC 3463 codes) */
static void sendmail_lost(sendmail_run *r, int status, int detail)
{
    char text[400];
    const char *h = r->o->host, *p = r->o->port;

    switch (status) {
    case SMTPX_ERR_TIMEOUT:
        snprintf(text, sizeof(text), "Timed out waiting for %s:%s", h, p);
        sendmail_refuse(r, 451, 4, 1, text);
        break;
    case SMTPX_ERR_EOF:
    case SMTPX_ERR_EHLO_CLOSED:
        snprintf(text, sizeof(text), "Connection closed by %s:%s", h, p);
        sendmail_refuse(r, 451, 4, 2, text);
        break;
    case SMTPX_ERR_IO:
        snprintf(text, sizeof(text), "Connection to %s:%s failed: %s", h, p,
                 detail > 0 ? strerror(detail) : "I/O error");
        sendmail_refuse(r, 451, 4, 2, text);
        break;
    case SMTPX_ERR_TLS:
    case SMTPX_ERR_TLS_VERIFY:
        snprintf(text, sizeof(text), "TLS with %s:%s failed: %s", h, p,
                 smtpx_strerror(status));
        sendmail_refuse(r, 451, 7, 5, text);
        break;
    case SMTPX_ERR_PROTO:
        snprintf(text, sizeof(text), "Protocol error from %s:%s", h, p);
        sendmail_refuse(r, 451, 5, 0, text);
        break;
    default:
        break;
    }
}

/* sendmail_first_open - the first transaction not done, or NULL */
static smtpx_txn *sendmail_first_open(smtpx_txn *const *txns, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (!smtpx_txn_done(txns[i]))
            return txns[i];
    return NULL;
}

/* sendmail_once - one connection; returns the attempt's outcome */
static int sendmail_once(sendmail_run *r, smtpx__attempt *a,
                         smtpx_txn *const *txns, size_t n)
{
    const smtpx_config *cfg = r->cfg;
    const smtpx_sendmail_opts *o = r->o;
    smtpx_client *c = NULL;
    smtpx_transport *t = NULL;
    smtpx_io io;
    int fd, rc, status, send_rc = 0;

    smtpx__attempt_reset(a);
    rc = sendmail_connect(r, &fd);
    if (rc < 0)
        return rc;
    if (!r->helo_given && r->helo[0] == '\0')
        /* RFC 5321 4.1.4: no name of its own, the address literal. */
        smtpx_posix_local_literal(fd, r->helo, sizeof(r->helo));
    if (!r->helo_given)
        a->helo = r->helo[0] != '\0' ? r->helo : "localhost";
    smtpx_posix_io(&io, fd);
    rc = smtpx_transport_new(&t, &io, NULL);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    if (a->tls_level > SMTPX_TLS_NONE) {
        rc = smtpx_transport_set_tls(t, o->tls, o->tls_cfg);
        if (rc == 0)
            rc = smtpx_transport_set_peer_name(
                t, o->tls_name ? o->tls_name : o->host,
                a->tls_level == SMTPX_TLS_VERIFY);
        if (rc == 0 && a->implicit_tls)
            rc = smtpx_transport_start_tls(t, 0, NULL);
    }
    if (rc == 0)
        rc = smtpx_client_new(&c, cfg, &smtpx__attempt_cbs,
                              sizeof(smtpx__attempt_cbs), a);
    if (rc == 0 && a->tls_level >= SMTPX_TLS_ENCRYPT)
        rc = smtpx_client_set_require_tls(c, 1);
    if (rc == 0)
        rc = smtpx_client_start(c, smtpx_posix_now_ms());
    if (rc == 0)
        rc = smtpx__attempt_start(a, c);
    if (rc < 0) {
        smtpx_client_free(c);
        smtpx_transport_free(t);
        return rc;
    }
    sendmail_pump(fd, c, t, a, txns, n, &send_rc, r->end);
    status = smtpx_client_status(c);
    if ((status == SMTPX_ERR_TLS || status == SMTPX_ERR_TLS_VERIFY) &&
        a->user.on_log != NULL) {
        /* The detail only the transport knows: the TLS implementation's
         * code, or the X.509 verification flags. */
        char msg[160];
        snprintf(msg, sizeof(msg), "%s with %s: TLS implementation code %d",
                 smtpx_strerror(status), o->host,
                 smtpx_transport_last_error(t));
        a->user.on_log(c, SMTPX_LOG_ERROR, msg, a->user_data);
    }
    if (send_rc < 0 && status == 0)
        status = send_rc;
    status = smtpx__attempt_status(a, status);
    if (sendmail_first_open(txns, n) != NULL)
        sendmail_lost(r, status, smtpx_transport_last_error(t));
    smtpx_client_free(c);
    smtpx_transport_free(t);
    return status;
}

/* sendmail_check - the arguments, before anything is connected: a usage
 * error leaves the transaction as it was, to be sent again */
static int sendmail_check(const smtpx_config *cfg,
                          const smtpx_sendmail_opts *opts,
                          smtpx_txn *const *txns, size_t n,
                          smtpx_sendmail_opts *o)
{
    const char *bad = NULL;
    int level, rc = SMTPX_ERR_INVALID_ARGUMENT;
    smtpx_role role;
    size_t i;

    for (i = 0; i < n; i++)
        if (txns[i] == NULL)
            return SMTPX_ERR_INVALID_ARGUMENT;
    if (cfg == NULL || n == 0) {
        return SMTPX_ERR_INVALID_ARGUMENT;
    } else if (opts == NULL || opts->size == 0) {
        bad = "opts is NULL or opts->size is 0 (set it to "
              "sizeof(smtpx_sendmail_opts))";
    } else if (!smtpx_config_is_frozen(cfg)) {
        bad = "the config is not frozen (smtpx_config_freeze)";
        rc = SMTPX_ERR_INVALID_STATE;
    } else if ((role = smtpx_config_get_role(cfg)) != SMTPX_ROLE_CLIENT &&
               role != SMTPX_ROLE_LMTP_CLIENT) {
        bad = "the config is not a client's";
        rc = SMTPX_ERR_INVALID_STATE;
    }
    for (i = 0; bad == NULL && i < n; i++)
        if (smtpx_txn_done(txns[i])) {
            bad = "a transaction was already sent";
            rc = SMTPX_ERR_INVALID_STATE;
        }
    if (bad == NULL) {
        (void)smtpx__copy_sized(o, sizeof(*o), opts); /* size checked */
        level = o->tls != NULL ? o->tls_level : SMTPX_TLS_NONE;
        if (o->host == NULL || o->host[0] == '\0')
            bad = "opts->host is NULL or empty";
        else if (o->tls_level < SMTPX_TLS_NONE ||
                 o->tls_level > SMTPX_TLS_VERIFY)
            bad = "opts->tls_level is not an SMTPX_TLS_* level";
        else if (o->tls_level > SMTPX_TLS_NONE && o->tls == NULL)
            bad = "opts->tls_level needs opts->tls";
        else if (o->implicit_tls && level == SMTPX_TLS_NONE)
            bad = "opts->implicit_tls needs opts->tls and a TLS level";
        else if (o->timeout_ms < 0 || o->connect_timeout_ms < 0)
            bad = "a timeout is negative";
    }
    if (bad == NULL)
        return 0;
    smtpx__conf_log(cfg, SMTPX_LOG_ERROR, "smtpx_posix_sendmail: %s", bad);
    return rc;
}

int smtpx_posix_sendmail(const smtpx_config *cfg,
                         const smtpx_sendmail_opts *opts, smtpx_txn *txn)
{
    if (txn == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    return smtpx_posix_sendmail_batch(cfg, opts, &txn, 1);
}

int smtpx_posix_sendmail_batch(const smtpx_config *cfg,
                               const smtpx_sendmail_opts *opts,
                               smtpx_txn *const *txns, size_t n)
{
    smtpx_sendmail_opts o;
    smtpx__attempt a;
    sendmail_run r;
    smtpx_txn *open;
    size_t i;
    int status, rc;

    if (txns == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    rc = sendmail_check(cfg, opts, txns, n, &o);
    if (rc < 0)
        return rc;
    if (o.port == NULL)
        o.port = o.implicit_tls ? "465" : "25";
    memset(&r, 0, sizeof(r));
    r.cfg = cfg;
    r.o = &o;
    if (o.timeout_ms > 0)
        r.end = smtpx_posix_now_ms() + (uint64_t)o.timeout_ms;
    memset(&a, 0, sizeof(a));
    r.helo_given = o.helo != NULL;
    a.helo = o.helo;
    if (!r.helo_given && smtpx_posix_hostname(r.helo, sizeof(r.helo)) < 0)
        r.helo[0] = '\0';
    a.tls_level = o.tls != NULL ? o.tls_level : SMTPX_TLS_NONE;
    a.implicit_tls = o.implicit_tls;
    a.auth = o.auth;
    if (o.cbs != NULL)
        memcpy(&a.user, o.cbs,
               o.cbs_size < sizeof(a.user) ? o.cbs_size : sizeof(a.user));
    a.user_data = o.user_data;
    do {
        status = sendmail_once(&r, &a, txns, n);
        if (smtpx__attempt_refusal(&a) != NULL) {
            /* The latest refusal is what the recipients are told. */
            r.refusal = a.refusal;
            snprintf(r.refusal_text, sizeof(r.refusal_text), "%s",
                     a.refusal_text);
            r.refusal.text = r.refusal_text;
        }
    } while ((open = sendmail_first_open(txns, n)) != NULL &&
             smtpx__attempt_retry(&a, status, open) &&
             (r.end == 0 || smtpx_posix_now_ms() < r.end));
    for (i = 0; i < n; i++)
        smtpx_txn_fail(txns[i], r.refusal.code != 0 ? &r.refusal : NULL);
    return status;
}
