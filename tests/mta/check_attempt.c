/*
 * check_attempt - the delivery attempt's session set-up and retry policy,
 * driven against a client core fed scripted server replies; and the
 * public calls a driver needs (smtpx_client_status, smtpx_server_status,
 * smtpx_txn_fail, smtpx_posix_wait).
 */
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libsmtpx/posix.h>
#include <libsmtpx/smtpx.h>

#include "mta/attempt.h"
#include "suites.h"

typedef struct script {
    smtpx_config *cfg;
    smtpx_client *c;
    smtpx__attempt a;
    char out[2048]; /* what the client wrote, concatenated */
    size_t outlen;
} script;

static void script_start(script *s, int tls_level, const smtpx_auth_creds *auth)
{
    memset(s, 0, sizeof(*s));
    ck_assert_int_eq(smtpx_config_new(&s->cfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(s->cfg), 0);
    s->a.helo = "c.test";
    s->a.tls_level = tls_level;
    s->a.auth = auth;
    ck_assert_int_eq(smtpx_client_new(&s->c, s->cfg, &smtpx__attempt_cbs,
                                      sizeof(smtpx__attempt_cbs), &s->a),
                     0);
    ck_assert_int_eq(smtpx_client_start(s->c, 0), 0);
    ck_assert_int_eq(smtpx__attempt_start(&s->a, s->c), 0);
}

/* script_server - the server says `in`; returns what the step says, with
 * what the client wrote appended to s->out */
static int script_server(script *s, const char *in)
{
    const uint8_t *p;
    size_t n;
    int step;

    ck_assert_int_eq(
        smtpx_client_recv(s->c, (const uint8_t *)in, strlen(in), 0),
        (smtpx_ssize)strlen(in));
    step = smtpx__attempt_step(&s->a, s->c);
    while ((n = smtpx_client_out_peek(s->c, &p)) > 0) {
        ck_assert_uint_lt(s->outlen + n, sizeof(s->out));
        memcpy(s->out + s->outlen, p, n);
        s->outlen += n;
        smtpx_client_out_drop(s->c, n, 0);
    }
    s->out[s->outlen] = '\0';
    return step;
}

static void script_end(script *s)
{
    smtpx_client_free(s->c);
    smtpx_config_free(s->cfg);
}

START_TEST(test_plain_ready)
{
    script s;

    script_start(&s, SMTPX_TLS_NONE, NULL);
    ck_assert_int_eq(script_server(&s, "220 mx ESMTP\r\n"),
                     SMTPX__ATTEMPT_WAIT);
    ck_assert_str_eq(s.out, "EHLO c.test\r\n");
    ck_assert_int_eq(script_server(&s, "250-mx\r\n250 PIPELINING\r\n"),
                     SMTPX__ATTEMPT_READY);
    /* Said once. */
    ck_assert_int_eq(smtpx__attempt_step(&s.a, s.c), SMTPX__ATTEMPT_WAIT);
    ck_assert_ptr_null(smtpx__attempt_refusal(&s.a));
    script_end(&s);
}
END_TEST

START_TEST(test_ehlo_refused_gives_up_with_server_words)
{
    script s;
    const smtpx_reply *r;

    script_start(&s, SMTPX_TLS_NONE, NULL);
    script_server(&s, "220 mx ESMTP\r\n");
    /* 550 to EHLO is no fallback case (500/502 are): the set-up stops. */
    ck_assert_int_eq(script_server(&s, "550 5.7.1 go away\r\n"),
                     SMTPX__ATTEMPT_GIVE_UP);
    r = smtpx__attempt_refusal(&s.a);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->code, 550);
    ck_assert_str_eq(r->text, "go away");
    script_end(&s);
}
END_TEST

START_TEST(test_starttls_refused_goes_on_in_clear)
{
    script s;

    script_start(&s, SMTPX_TLS_MAY, NULL);
    script_server(&s, "220 mx ESMTP\r\n");
    ck_assert_int_eq(script_server(&s, "250-mx\r\n250 STARTTLS\r\n"),
                     SMTPX__ATTEMPT_WAIT);
    ck_assert_str_eq(s.out, "EHLO c.test\r\nSTARTTLS\r\n");
    ck_assert_int_eq(script_server(&s, "454 4.7.0 TLS not available\r\n"),
                     SMTPX__ATTEMPT_READY);
    script_end(&s);
}
END_TEST

START_TEST(test_no_starttls_offered)
{
    script s;

    /* Not offered: no STARTTLS is sent; with ENCRYPT the client core
     * itself would refuse MAIL (its own test covers that). */
    script_start(&s, SMTPX_TLS_ENCRYPT, NULL);
    script_server(&s, "220 mx ESMTP\r\n");
    ck_assert_int_eq(script_server(&s, "250 mx\r\n"), SMTPX__ATTEMPT_READY);
    ck_assert_str_eq(s.out, "EHLO c.test\r\n");
    script_end(&s);
}
END_TEST

START_TEST(test_auth_refused)
{
    smtpx_auth_creds cr;
    const smtpx_reply *r;
    script s;

    memset(&cr, 0, sizeof(cr));
    cr.size = sizeof(cr);
    cr.user = "tim";
    cr.password = "pw";
    cr.mechs = SMTPX_SASL_PLAIN;
    script_start(&s, SMTPX_TLS_NONE, &cr);
    script_server(&s, "220 mx ESMTP\r\n");
    ck_assert_int_eq(script_server(&s, "250-mx\r\n250 AUTH PLAIN\r\n"),
                     SMTPX__ATTEMPT_WAIT);
    ck_assert_ptr_nonnull(strstr(s.out, "AUTH PLAIN "));
    ck_assert_int_eq(script_server(&s, "535 5.7.8 no\r\n"),
                     SMTPX__ATTEMPT_GIVE_UP);
    r = smtpx__attempt_refusal(&s.a);
    ck_assert_int_eq(r->code, 454);
    ck_assert_str_eq(r->text, "Authentication refused: 535 no");
    /* The session may end with QUIT: still an authentication failure. */
    ck_assert_int_eq(smtpx__attempt_status(&s.a, 0), SMTPX_ERR_AUTH);
    ck_assert_int_eq(smtpx__attempt_status(&s.a, SMTPX_ERR_EOF), SMTPX_ERR_EOF);
    script_end(&s);
}
END_TEST

START_TEST(test_auth_accepted)
{
    smtpx_auth_creds cr;
    script s;

    memset(&cr, 0, sizeof(cr));
    cr.size = sizeof(cr);
    cr.user = "tim";
    cr.password = "pw";
    cr.mechs = SMTPX_SASL_PLAIN;
    script_start(&s, SMTPX_TLS_NONE, &cr);
    script_server(&s, "220 mx ESMTP\r\n");
    script_server(&s, "250-mx\r\n250 AUTH PLAIN\r\n");
    ck_assert_int_eq(script_server(&s, "235 2.7.0 ok\r\n"),
                     SMTPX__ATTEMPT_READY);
    ck_assert_int_eq(smtpx__attempt_status(&s.a, 0), 0);
    script_end(&s);
}
END_TEST

START_TEST(test_retry_policy)
{
    smtpx_config *cfg;
    smtpx__attempt a;
    smtpx_txn *t;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(cfg), 0);
    ck_assert_int_eq(smtpx_txn_new(&t, cfg, "a@b.test"), 0);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "c@d.test", NULL), 0);
    memset(&a, 0, sizeof(a));
    a.tls_level = SMTPX_TLS_MAY;
    /* EHLO dropped: once with HELO, not again. */
    ck_assert_int_eq(smtpx__attempt_retry(&a, SMTPX_ERR_EHLO_CLOSED, t), 1);
    ck_assert_int_eq(a.use_helo, 1);
    ck_assert_int_eq(smtpx__attempt_retry(&a, SMTPX_ERR_EHLO_CLOSED, t), 0);
    /* Opportunistic TLS that failed: once in clear text. */
    ck_assert_int_eq(smtpx__attempt_retry(&a, SMTPX_ERR_TLS, t), 1);
    ck_assert_int_eq(a.tls_level, SMTPX_TLS_NONE);
    ck_assert_int_eq(smtpx__attempt_retry(&a, SMTPX_ERR_TLS, t), 0);
    /* Verified TLS never falls back; nor does anything else. */
    a.tls_level = SMTPX_TLS_VERIFY;
    ck_assert_int_eq(smtpx__attempt_retry(&a, SMTPX_ERR_TLS, t), 0);
    ck_assert_int_eq(smtpx__attempt_retry(&a, SMTPX_ERR_CONNECT, t), 0);
    /* A finished transaction is not tried again. */
    a.use_helo = 0;
    ck_assert_int_eq(smtpx_txn_fail(t, NULL), 0);
    ck_assert_int_eq(smtpx__attempt_retry(&a, SMTPX_ERR_EHLO_CLOSED, t), 0);
    smtpx_txn_free(t);
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_txn_fail)
{
    smtpx_config *cfg;
    smtpx_txn *t;
    smtpx_reply r = {451, {4, 4, 1}, "Connection refused by 127.0.0.1:25"};
    smtpx_reply bad = {250, {2, 0, 0}, "fine"};
    size_t counts[SMTPX_RCPT_STATE_COUNT];

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(cfg), 0);
    ck_assert_int_eq(smtpx_txn_new(&t, cfg, "a@b.test"), 0);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "c@d.test", NULL), 0);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "e@f.test", NULL), 0);
    ck_assert_int_eq(smtpx_txn_fail(NULL, NULL), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_txn_fail(t, &bad), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert(!smtpx_txn_done(t));
    ck_assert_int_eq(smtpx_txn_fail(t, &r), 0);
    ck_assert(smtpx_txn_done(t));
    smtpx_txn_counts(t, counts);
    ck_assert_uint_eq(counts[SMTPX_RCPT_DEFERRED], 2);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 1)->reply.code, 451);
    ck_assert_str_eq(smtpx_txn_rcpt(t, 1)->reply.text,
                     "Connection refused by 127.0.0.1:25");
    ck_assert_int_eq(smtpx_txn_rcpt(t, 1)->stage, SMTPX_STAGE_MAIL);
    /* Done stays done. */
    r.code = 550;
    ck_assert_int_eq(smtpx_txn_fail(t, &r), 0);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_DEFERRED);
    smtpx_txn_free(t);

    /* 5xx fails; NULL gives the local reply. */
    ck_assert_int_eq(smtpx_txn_new(&t, cfg, "a@b.test"), 0);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "c@d.test", NULL), 0);
    ck_assert_int_eq(smtpx_txn_fail(t, &r), 0);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_FAILED);
    smtpx_txn_free(t);
    ck_assert_int_eq(smtpx_txn_new(&t, cfg, "a@b.test"), 0);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "c@d.test", NULL), 0);
    ck_assert_int_eq(smtpx_txn_fail(t, NULL), 0);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_DEFERRED);
    ck_assert(smtpx_reply_local(&smtpx_txn_rcpt(t, 0)->reply));
    smtpx_txn_free(t);
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_txn_fail_queued)
{
    smtpx_config *cfg;
    smtpx_client *c;
    smtpx_txn *t;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(cfg), 0);
    ck_assert_int_eq(smtpx_client_new(&c, cfg, NULL, 0, NULL), 0);
    ck_assert_int_eq(smtpx_txn_new(&t, cfg, "a@b.test"), 0);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "c@d.test", NULL), 0);
    ck_assert_int_eq(smtpx_txn_set_body(t, "x\r\n", 3), 0);
    ck_assert_int_eq(smtpx_client_send(c, t), 0);
    /* Only the session may finish what it holds. */
    ck_assert_int_eq(smtpx_txn_fail(t, NULL), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_client_status(c), SMTPX_ERR_INVALID_STATE);
    smtpx_client_free(c);
    ck_assert(smtpx_txn_done(t));
    ck_assert_int_eq(smtpx_txn_fail(t, NULL), 0);
    smtpx_txn_free(t);
    ck_assert_int_eq(smtpx_client_status(NULL), SMTPX_ERR_INVALID_ARGUMENT);
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_status)
{
    smtpx_config *scfg, *ccfg;
    smtpx_server *s;
    smtpx_client *c;
    const uint8_t *p;
    size_t n;

    ck_assert_int_eq(smtpx_config_new(&scfg, SMTPX_ROLE_SERVER, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(scfg), 0);
    ck_assert_int_eq(smtpx_server_new(&s, scfg, NULL, 0, NULL), 0);
    ck_assert_int_eq(smtpx_server_status(s), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_server_start(s, NULL, 0), 0);
    ck_assert_int_eq(smtpx_server_status(s), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_server_recv(s, (const uint8_t *)"QUIT\r\n", 6, 0),
                     6);
    ck_assert_int_eq(smtpx_server_status(s), 0);
    smtpx_server_free(s);
    ck_assert_int_eq(smtpx_server_new(&s, scfg, NULL, 0, NULL), 0);
    ck_assert_int_eq(smtpx_server_start(s, NULL, 0), 0);
    smtpx_server_eof(s);
    ck_assert_int_eq(smtpx_server_status(s), SMTPX_ERR_EOF);
    smtpx_server_free(s);
    ck_assert_int_eq(smtpx_server_status(NULL), SMTPX_ERR_INVALID_ARGUMENT);

    ck_assert_int_eq(smtpx_config_new(&ccfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(ccfg), 0);
    ck_assert_int_eq(smtpx_client_new(&c, ccfg, NULL, 0, NULL), 0);
    ck_assert_int_eq(smtpx_client_start(c, 0), 0);
    ck_assert_int_eq(smtpx_client_quit(c, NULL), 0);
    ck_assert_int_eq(smtpx_client_recv(c, (const uint8_t *)"220 x\r\n", 7, 0),
                     7);
    while ((n = smtpx_client_out_peek(c, &p)) > 0)
        smtpx_client_out_drop(c, n, 0);
    ck_assert_int_eq(smtpx_client_status(c), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_client_recv(c, (const uint8_t *)"221 bye\r\n", 9, 0),
                     9);
    ck_assert_int_eq(smtpx_client_status(c), 0);
    smtpx_client_free(c);
    smtpx_config_free(ccfg);
    smtpx_config_free(scfg);
}
END_TEST

START_TEST(test_posix_wait)
{
    int sv[2];
    uint64_t t0;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    /* Writable at once; not readable until something is written. */
    ck_assert_int_eq(smtpx_posix_wait(sv[0], SMTPX_WAIT_WRITE, 0), 1);
    t0 = smtpx_posix_now_ms();
    ck_assert_int_eq(smtpx_posix_wait(sv[0], SMTPX_WAIT_READ, t0 + 30), 0);
    ck_assert_uint_ge(smtpx_posix_now_ms(), t0 + 25);
    /* A deadline already past does not block. */
    ck_assert_int_eq(smtpx_posix_wait(sv[0], SMTPX_WAIT_READ, 1), 0);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    ck_assert_int_eq(smtpx_posix_wait(sv[0], SMTPX_WAIT_READ, 0), 1);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

Suite *suite_attempt(void)
{
    Suite *s = suite_create("attempt");
    TCase *tc = tcase_create("attempt");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_plain_ready);
    tcase_add_test(tc, test_ehlo_refused_gives_up_with_server_words);
    tcase_add_test(tc, test_starttls_refused_goes_on_in_clear);
    tcase_add_test(tc, test_no_starttls_offered);
    tcase_add_test(tc, test_auth_refused);
    tcase_add_test(tc, test_auth_accepted);
    tcase_add_test(tc, test_retry_policy);
    tcase_add_test(tc, test_txn_fail);
    tcase_add_test(tc, test_txn_fail_queued);
    tcase_add_test(tc, test_status);
    tcase_add_test(tc, test_posix_wait);
    suite_add_tcase(s, tc);
    return s;
}
