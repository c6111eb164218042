/*
 * check_posix_args - what the POSIX helpers and smtpx_posix_sendmail()
 * say about wrong arguments and failed connections: ports checked before
 * getaddrinfo can wrap them, what happened in words, usage errors found
 * before any connection and leaving the transaction to be sent again.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libsmtpx/posix.h>
#include <libsmtpx/smtpx.h>

#include "suites.h"

/* a_free_port - a loopback port nothing listens on */
static int a_free_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    port = ntohs(sin.sin_port);
    close(fd);
    return port;
}

START_TEST(test_ports_checked)
{
    char host[64], port[16], why[256];
    int fd = -1;

    /* getaddrinfo would take 99999 as 34463. */
    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "99999", 0, &fd),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "65536", 0, &fd),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "25x", 0, &fd),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "", 0, &fd),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "no-such-service", 0, &fd),
                     SMTPX_ERR_INVALID_ARGUMENT);
    /* 0: the system picks one. */
    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "0", 0, &fd), 0);
    close(fd);
    ck_assert_int_eq(smtpx_posix_split_hostport("h:99999", host, sizeof(host),
                                                port, sizeof(port)),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_posix_split_hostport("h:65535", host, sizeof(host),
                                                port, sizeof(port)),
                     0);
    ck_assert_int_eq(
        smtpx_posix_connect_why("127.0.0.1", "0", 1000, &fd, why, sizeof(why)),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_posix_connect_why("127.0.0.1", "70000", 1000, &fd,
                                             why, sizeof(why)),
                     SMTPX_ERR_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_connect_says_what_happened)
{
    char port[16], why[256], want[128];
    int fd = -1;

    snprintf(port, sizeof(port), "%d", a_free_port());
    ck_assert_int_eq(
        smtpx_posix_connect_why("127.0.0.1", port, 2000, &fd, why, sizeof(why)),
        SMTPX_ERR_CONNECT);
    ck_assert_int_eq(errno, ECONNREFUSED);
    snprintf(want, sizeof(want), "Connection refused by 127.0.0.1:%s", port);
    ck_assert_str_eq(why, want);
    ck_assert_int_eq(fd, -1);
    ck_assert_int_eq(smtpx_posix_connect_why("no-such-host.invalid", "25", 2000,
                                             &fd, why, sizeof(why)),
                     SMTPX_ERR_RESOLVE);
    ck_assert_ptr_nonnull(strstr(why, "Host no-such-host.invalid not found"));
    /* why is optional. */
    ck_assert_int_eq(
        smtpx_posix_connect_why("127.0.0.1", port, 2000, &fd, NULL, 0),
        SMTPX_ERR_CONNECT);
}
END_TEST

START_TEST(test_hostname_and_literal)
{
    char name[256], lit[64];
    int rc, lfd, fd, port;
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    char pbuf[16];

    rc = smtpx_posix_hostname(name, sizeof(name));
    /* Fully qualified, or honestly none. */
    if (rc == 0)
        ck_assert_ptr_nonnull(strchr(name, '.'));
    else
        ck_assert_int_eq(rc, SMTPX_ERR_NOT_SUPPORTED);
    ck_assert_int_eq(smtpx_posix_hostname(name, 0), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "0", 0, &lfd), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    port = ntohs(sin.sin_port);
    snprintf(pbuf, sizeof(pbuf), "%d", port);
    ck_assert_int_eq(smtpx_posix_connect("127.0.0.1", pbuf, 2000, &fd), 0);
    ck_assert_int_eq(smtpx_posix_local_literal(fd, lit, sizeof(lit)), 0);
    ck_assert_str_eq(lit, "[127.0.0.1]");
    ck_assert_int_eq(smtpx_posix_local_literal(fd, lit, 5),
                     SMTPX_ERR_INVALID_ARGUMENT);
    close(fd);
    close(lfd);
}
END_TEST

static char logged[512];

static void keep_log(int level, const char *msg, void *ud)
{
    (void)level;
    (void)ud;
    snprintf(logged, sizeof(logged), "%s", msg);
}

static smtpx_config *client_cfg(int freeze)
{
    smtpx_config *cfg;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_set_log(cfg, keep_log, SMTPX_LOG_ERROR, NULL),
                     0);
    if (freeze)
        ck_assert_int_eq(smtpx_config_freeze(cfg), 0);
    return cfg;
}

START_TEST(test_rcpt_with_display_name_explained)
{
    smtpx_config *cfg = client_cfg(1);
    smtpx_txn *t;

    ck_assert_int_eq(smtpx_txn_new(&t, cfg, "a@b.example"), 0);
    logged[0] = '\0';
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "Bob <c@d.example>", NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_str_eq(logged,
                     "smtpx_txn_add_rcpt: the recipient \"Bob <c@d.example>\" "
                     "is not an address: give the address alone "
                     "(c@d.example), without a display name or angle "
                     "brackets");
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "no at sign", NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(logged, "\"no at sign\" is not an address"));
    /* The transaction is still usable. */
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "c@d.example", NULL), 0);
    smtpx_txn_free(t);
    logged[0] = '\0';
    ck_assert_int_eq(smtpx_txn_new(&t, cfg, "Alice <a@b.example>"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(logged, "smtpx_txn_new: the sender"));
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_sendmail_usage_errors_before_io)
{
    smtpx_config *frozen = client_cfg(1), *open = client_cfg(0);
    smtpx_sendmail_opts o;
    smtpx_txn *t;
    uint64_t t0;

    ck_assert_int_eq(smtpx_txn_new(&t, frozen, "a@b.example"), 0);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "c@d.example", NULL), 0);
    ck_assert_int_eq(smtpx_txn_set_body(t, "x\r\n", 3), 0);
    memset(&o, 0, sizeof(o));
    /* A host that would take seconds to time out: nothing may be tried. */
    o.host = "192.0.2.1";
    t0 = smtpx_posix_now_ms();
    logged[0] = '\0';
    ck_assert_int_eq(smtpx_posix_sendmail(frozen, &o, t),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(logged, "opts->size is 0"));
    ck_assert(!smtpx_txn_done(t));
    o.size = sizeof(o);
    ck_assert_int_eq(smtpx_posix_sendmail(open, &o, t),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_ptr_nonnull(strstr(logged, "not frozen"));
    ck_assert(!smtpx_txn_done(t));
    o.host = NULL;
    ck_assert_int_eq(smtpx_posix_sendmail(frozen, &o, t),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(logged, "opts->host"));
    o.host = "192.0.2.1";
    o.tls_level = SMTPX_TLS_VERIFY;
    ck_assert_int_eq(smtpx_posix_sendmail(frozen, &o, t),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(logged, "needs opts->tls"));
    ck_assert(!smtpx_txn_done(t));
    ck_assert_uint_lt(smtpx_posix_now_ms() - t0, 1000);
    smtpx_txn_free(t);
    smtpx_config_free(frozen);
    smtpx_config_free(open);
}
END_TEST

START_TEST(test_sendmail_refused_says_why)
{
    smtpx_config *cfg = client_cfg(1);
    smtpx_sendmail_opts o;
    smtpx_txn *t;
    char port[16], want[128];
    const smtpx_rcpt_status *st;

    snprintf(port, sizeof(port), "%d", a_free_port());
    ck_assert_int_eq(smtpx_txn_new(&t, cfg, "a@b.example"), 0);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "c@d.example", NULL), 0);
    ck_assert_int_eq(smtpx_txn_set_body(t, "x\r\n", 3), 0);
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.host = "127.0.0.1";
    o.port = port;
    o.helo = "c.test";
    ck_assert_int_eq(smtpx_posix_sendmail(cfg, &o, t), SMTPX_ERR_CONNECT);
    st = smtpx_txn_rcpt(t, 0);
    ck_assert_int_eq(st->state, SMTPX_RCPT_DEFERRED);
    ck_assert_int_eq(st->reply.code, 451);
    ck_assert_int_eq(st->reply.enh[1], 4);
    ck_assert_int_eq(st->reply.enh[2], 1);
    snprintf(want, sizeof(want), "Connection refused by 127.0.0.1:%s", port);
    ck_assert_str_eq(st->reply.text, want);
    smtpx_txn_free(t);
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_sendmail_overall_deadline)
{
    /* A server that accepts and never speaks: the whole delivery ends at
     * its time limit, not after the 5-minute greeting timeout. */
    smtpx_config *cfg = client_cfg(1);
    smtpx_sendmail_opts o;
    smtpx_txn *t;
    char port[16];
    int lfd;
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    uint64_t t0, took;
    const smtpx_rcpt_status *st;

    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "0", 0, &lfd), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    snprintf(port, sizeof(port), "%d", ntohs(sin.sin_port));
    ck_assert_int_eq(smtpx_txn_new(&t, cfg, "a@b.example"), 0);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "c@d.example", NULL), 0);
    ck_assert_int_eq(smtpx_txn_set_body(t, "x\r\n", 3), 0);
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.host = "127.0.0.1";
    o.port = port;
    o.helo = "c.test";
    o.timeout_ms = 300;
    t0 = smtpx_posix_now_ms();
    ck_assert_int_eq(smtpx_posix_sendmail(cfg, &o, t), SMTPX_ERR_TIMEOUT);
    took = smtpx_posix_now_ms() - t0;
    ck_assert_uint_ge(took, 290);
    ck_assert_uint_lt(took, 2000);
    st = smtpx_txn_rcpt(t, 0);
    ck_assert_int_eq(st->state, SMTPX_RCPT_DEFERRED);
    ck_assert_ptr_nonnull(strstr(st->reply.text, "Timed out waiting for"));
    close(lfd);
    smtpx_txn_free(t);
    smtpx_config_free(cfg);
}
END_TEST

Suite *suite_posix_args(void)
{
    Suite *s = suite_create("posix_args");
    TCase *tc = tcase_create("posix_args");

    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_ports_checked);
    tcase_add_test(tc, test_connect_says_what_happened);
    tcase_add_test(tc, test_hostname_and_literal);
    tcase_add_test(tc, test_rcpt_with_display_name_explained);
    tcase_add_test(tc, test_sendmail_usage_errors_before_io);
    tcase_add_test(tc, test_sendmail_refused_says_why);
    tcase_add_test(tc, test_sendmail_overall_deadline);
    suite_add_tcase(s, tc);
    return s;
}
