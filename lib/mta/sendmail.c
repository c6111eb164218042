/*
 * sendmail - smtpx_posix_sendmail(): one transaction, blocking, over POSIX
 * sockets.
 *
 * Exports smtpx_posix_sendmail() of <libsmtpx/posix.h>.  It is a small
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

#include "mta/attempt.h"

/* sendmail_pump - pump until the session is done, stepping the set-up:
 * the transaction goes once it is ready, QUIT when it is refused */
static void sendmail_pump(int fd, smtpx_client *c, smtpx_transport *t,
                          smtpx__attempt *a, smtpx_txn *txn, int *send_rc)
{
    for (;;) {
        uint64_t now = smtpx_posix_now_ms();
        const uint8_t *p;
        size_t queued;
        int wait, step;

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
            *send_rc = smtpx_client_send(c, txn);
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
                             smtpx_client_expiry(c)) < 0)
            smtpx_client_abort(c, SMTPX_ERR_IO);
    }
}

/* sendmail_once - one connection; returns the attempt's outcome */
static int sendmail_once(const smtpx_config *cfg, const smtpx_sendmail_opts *o,
                         smtpx__attempt *a, smtpx_txn *txn)
{
    smtpx_client *c = NULL;
    smtpx_transport *t = NULL;
    smtpx_io io;
    int fd, rc, status, send_rc = 0;

    smtpx__attempt_reset(a);
    rc = smtpx_posix_connect(o->host, o->port, o->connect_timeout_ms, &fd);
    if (rc < 0)
        return rc;
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
    sendmail_pump(fd, c, t, a, txn, &send_rc);
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
    smtpx_client_free(c);
    smtpx_transport_free(t);
    return status;
}

int smtpx_posix_sendmail(const smtpx_config *cfg,
                         const smtpx_sendmail_opts *opts, smtpx_txn *txn)
{
    smtpx_sendmail_opts o;
    smtpx__attempt a;
    smtpx_reply refusal;
    char host[256], text[512];
    int status, level;

    if (txn == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (cfg == NULL || opts == NULL || opts->size == 0 || opts->host == NULL) {
        smtpx_txn_fail(txn, NULL);
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    memset(&o, 0, sizeof(o));
    memcpy(&o, opts, opts->size < sizeof(o) ? opts->size : sizeof(o));
    level = o.tls != NULL ? o.tls_level : SMTPX_TLS_NONE;
    if (level < SMTPX_TLS_NONE || level > SMTPX_TLS_VERIFY ||
        (o.tls_level > SMTPX_TLS_NONE && o.tls == NULL) ||
        (o.implicit_tls && level == SMTPX_TLS_NONE)) {
        smtpx_txn_fail(txn, NULL);
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    if (o.port == NULL)
        o.port = o.implicit_tls ? "465" : "25";
    memset(&a, 0, sizeof(a));
    a.helo = o.helo;
    if (a.helo == NULL) {
        if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        a.helo = host;
    }
    a.tls_level = level;
    a.implicit_tls = o.implicit_tls;
    a.auth = o.auth;
    if (o.cbs != NULL)
        memcpy(&a.user, o.cbs,
               o.cbs_size < sizeof(a.user) ? o.cbs_size : sizeof(a.user));
    a.user_data = o.user_data;
    memset(&refusal, 0, sizeof(refusal));
    do {
        status = sendmail_once(cfg, &o, &a, txn);
        if (smtpx__attempt_refusal(&a) != NULL) {
            /* The latest refusal is what the recipients are told. */
            refusal = a.refusal;
            snprintf(text, sizeof(text), "%s", a.refusal_text);
            refusal.text = text;
        }
    } while (smtpx__attempt_retry(&a, status, txn));
    smtpx_txn_fail(txn, refusal.code != 0 ? &refusal : NULL);
    return status;
}
