/*
 * check_limiter - the connection and rate limits: sessions per address
 * and per network (IPv4 /24, IPv6 /64, IPv4-mapped addresses counted as
 * IPv4), token-bucket rates over a fake clock, exemptions, forgetting idle
 * clients, the bound on what is remembered, and allocation failures.
 */
#include <stdio.h>
#include <string.h>

#include <libsmtpx/limiter.h>

#include "harness/failmalloc.h"
#include "suites.h"

static smtpx_limiter *make(smtpx_limiter_opts *o)
{
    smtpx_limiter *l;

    o->size = sizeof(*o);
    ck_assert_int_eq(smtpx_limiter_new(&l, o, NULL), 0);
    return l;
}

static int logged;

static void count_log(int level, const char *msg, void *ud)
{
    (void)ud;
    ck_assert_int_eq(level, SMTPX_LOG_NOTICE);
    ck_assert_ptr_nonnull(strstr(msg, "refused"));
    logged++;
}

START_TEST(test_args)
{
    smtpx_limiter_opts o;
    smtpx_limiter *l;

    memset(&o, 0, sizeof(o));
    ck_assert_int_eq(smtpx_limiter_new(NULL, &o, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_limiter_new(&l, &o, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT); /* no size */
    ck_assert_ptr_null(l);
    o.size = sizeof(o);
    o.net4 = 33;
    ck_assert_int_eq(smtpx_limiter_new(&l, &o, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    o.net4 = 0;
    o.exempt = "127.0.0.1, 10.0.0.0/33";
    ck_assert_int_eq(smtpx_limiter_new(&l, &o, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    o.exempt = "localhost";
    ck_assert_int_eq(smtpx_limiter_new(&l, &o, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    o.exempt = NULL;
    /* No limit at all: everything passes. */
    ck_assert_int_eq(smtpx_limiter_new(&l, &o, NULL), 0);
    ck_assert_int_eq(smtpx_limiter_open(l, "192.0.2.1", 0), SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "host.example", 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_limiter_open(l, NULL, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_limiter_message(l, "192.0.2.1", 0),
                     SMTPX_LIMITER_OK);
    ck_assert_uint_eq(smtpx_limiter_sessions(l), 1);
    ck_assert_uint_eq(smtpx_limiter_tracked(l), 0);
    smtpx_limiter_close(l, "192.0.2.1", 0);
    ck_assert_uint_eq(smtpx_limiter_sessions(l), 0);
    smtpx_limiter_free(l);
    smtpx_limiter_free(NULL);
    ck_assert_str_eq(smtpx_limiter_reason(SMTPX_LIMITER_ADDR_SESSIONS),
                     "too many sessions from the address");
    ck_assert_str_eq(smtpx_limiter_reason(SMTPX_LIMITER_COUNT), "?");
    ck_assert_str_eq(smtpx_limiter_reason(-1), "?");
}
END_TEST

START_TEST(test_sessions)
{
    smtpx_limiter_opts o;
    smtpx_limiter *l;

    memset(&o, 0, sizeof(o));
    o.sessions = 5;
    o.addr_sessions = 2;
    o.log = count_log;
    logged = 0;
    l = make(&o);
    ck_assert_int_eq(smtpx_limiter_open(l, "192.0.2.1", 0), SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "192.0.2.1", 0), SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "192.0.2.1", 0),
                     SMTPX_LIMITER_ADDR_SESSIONS);
    ck_assert_int_eq(logged, 1);
    /* The same client over IPv6 (mapped) is the same address. */
    ck_assert_int_eq(smtpx_limiter_open(l, "::ffff:192.0.2.1", 0),
                     SMTPX_LIMITER_ADDR_SESSIONS);
    ck_assert_int_eq(smtpx_limiter_open(l, "192.0.2.2", 0), SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "[2001:db8::1]", 0),
                     SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "2001:db8::1", 0), SMTPX_LIMITER_OK);
    ck_assert_uint_eq(smtpx_limiter_sessions(l), 5);
    ck_assert_int_eq(smtpx_limiter_open(l, "198.51.100.7", 0),
                     SMTPX_LIMITER_SESSIONS);
    smtpx_limiter_close(l, "192.0.2.1", 10);
    ck_assert_int_eq(smtpx_limiter_open(l, "192.0.2.1", 20), SMTPX_LIMITER_OK);
    /* Without rates an address is forgotten when its last session ends. */
    smtpx_limiter_close(l, "192.0.2.1", 30);
    smtpx_limiter_close(l, "192.0.2.1", 30);
    smtpx_limiter_close(l, "192.0.2.2", 30);
    smtpx_limiter_close(l, "2001:db8::1", 30);
    smtpx_limiter_close(l, "[2001:db8::1]", 30);
    ck_assert_uint_eq(smtpx_limiter_sessions(l), 0);
    ck_assert_uint_eq(smtpx_limiter_tracked(l), 0);
    smtpx_limiter_free(l);
}
END_TEST

START_TEST(test_networks)
{
    smtpx_limiter_opts o;
    smtpx_limiter *l;

    memset(&o, 0, sizeof(o));
    o.net_sessions = 2;
    l = make(&o);
    ck_assert_int_eq(smtpx_limiter_open(l, "10.1.2.3", 0), SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "10.1.2.200", 0), SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "10.1.2.4", 0),
                     SMTPX_LIMITER_NET_SESSIONS);
    ck_assert_int_eq(smtpx_limiter_open(l, "10.1.3.4", 0), SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "2001:db8:0:1::a", 0),
                     SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "2001:db8:0:1:ffff::b", 0),
                     SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "2001:db8:0:1::c", 0),
                     SMTPX_LIMITER_NET_SESSIONS);
    ck_assert_int_eq(smtpx_limiter_open(l, "2001:db8:0:2::c", 0),
                     SMTPX_LIMITER_OK);
    smtpx_limiter_free(l);
    /* Other prefixes: a /16 and a /48. */
    o.net4 = 16;
    o.net6 = 48;
    l = make(&o);
    ck_assert_int_eq(smtpx_limiter_open(l, "10.1.2.3", 0), SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "10.1.99.3", 0), SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "10.1.200.1", 0),
                     SMTPX_LIMITER_NET_SESSIONS);
    ck_assert_int_eq(smtpx_limiter_open(l, "2001:db8:0:1::a", 0),
                     SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "2001:db8:0:ffff::a", 0),
                     SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "2001:db8:0:7::a", 0),
                     SMTPX_LIMITER_NET_SESSIONS);
    smtpx_limiter_free(l);
}
END_TEST

START_TEST(test_rates)
{
    smtpx_limiter_opts o;
    smtpx_limiter *l;
    int i;

    memset(&o, 0, sizeof(o));
    o.conn_rate = 3;
    o.msg_rate = 2;
    l = make(&o);
    /* A burst of 3, then one every 20 s. */
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(smtpx_limiter_open(l, "192.0.2.9", 1000),
                         SMTPX_LIMITER_OK);
        smtpx_limiter_close(l, "192.0.2.9", 1000);
    }
    ck_assert_int_eq(smtpx_limiter_open(l, "192.0.2.9", 1000),
                     SMTPX_LIMITER_CONN_RATE);
    /* Refusals do not spend the rate. */
    ck_assert_int_eq(smtpx_limiter_open(l, "192.0.2.9", 20999),
                     SMTPX_LIMITER_CONN_RATE);
    ck_assert_int_eq(smtpx_limiter_open(l, "192.0.2.9", 21000),
                     SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "192.0.2.9", 21000),
                     SMTPX_LIMITER_CONN_RATE);
    /* Messages: 2 at once, then one every 30 s. */
    ck_assert_int_eq(smtpx_limiter_message(l, "192.0.2.9", 21000),
                     SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_message(l, "192.0.2.9", 21000),
                     SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_message(l, "192.0.2.9", 21000),
                     SMTPX_LIMITER_MSG_RATE);
    ck_assert_int_eq(smtpx_limiter_message(l, "192.0.2.9", 51000),
                     SMTPX_LIMITER_OK);
    /* AUTH attempts: off (no auth_rate) lets every one through. */
    ck_assert_int_eq(smtpx_limiter_auth(l, "192.0.2.9", 51000),
                     SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_auth(l, "not an address", 51000),
                     SMTPX_ERR_INVALID_ARGUMENT);
    /* Another address has its own buckets. */
    ck_assert_int_eq(smtpx_limiter_open(l, "192.0.2.10", 21000),
                     SMTPX_LIMITER_OK);
    smtpx_limiter_close(l, "192.0.2.10", 21000);
    smtpx_limiter_close(l, "192.0.2.9", 60000);
    ck_assert_uint_eq(smtpx_limiter_tracked(l), 2);
    /* A minute after its last event an address is forgotten: a call
     * trims the idle ones. */
    ck_assert_int_eq(smtpx_limiter_open(l, "198.51.100.1", 120000),
                     SMTPX_LIMITER_OK);
    ck_assert_uint_eq(smtpx_limiter_tracked(l), 1);
    /* The full rate again after a long pause. */
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(smtpx_limiter_open(l, "192.0.2.9", 500000),
                         SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "192.0.2.9", 500000),
                     SMTPX_LIMITER_CONN_RATE);
    smtpx_limiter_free(l);
}
END_TEST

START_TEST(test_auth_rate)
{
    smtpx_limiter_opts o;
    smtpx_limiter *l;
    int i;

    memset(&o, 0, sizeof(o));
    o.auth_rate = 4;
    o.exempt = "10.0.0.0/8";
    l = make(&o);
    /* A burst of 4, then one every 15 s; its own bucket, not the
     * message one. */
    for (i = 0; i < 4; i++)
        ck_assert_int_eq(smtpx_limiter_auth(l, "2001:db8::7", 1000),
                         SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_auth(l, "[2001:db8::7]", 1000),
                     SMTPX_LIMITER_AUTH_RATE);
    ck_assert_int_eq(smtpx_limiter_message(l, "2001:db8::7", 1000),
                     SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_auth(l, "2001:db8::7", 15999),
                     SMTPX_LIMITER_AUTH_RATE);
    ck_assert_int_eq(smtpx_limiter_auth(l, "2001:db8::7", 16000),
                     SMTPX_LIMITER_OK);
    /* Another address, and an exempt one. */
    ck_assert_int_eq(smtpx_limiter_auth(l, "2001:db8::8", 16000),
                     SMTPX_LIMITER_OK);
    for (i = 0; i < 10; i++)
        ck_assert_int_eq(smtpx_limiter_auth(l, "10.1.2.3", 16000),
                         SMTPX_LIMITER_OK);
    ck_assert_str_eq(smtpx_limiter_reason(SMTPX_LIMITER_AUTH_RATE),
                     "too many AUTH attempts from the address per minute");
    /* An address whose AUTH bucket is not full again is remembered while
     * idle; a minute later it is forgotten. */
    ck_assert_uint_eq(smtpx_limiter_tracked(l), 2);
    ck_assert_int_eq(smtpx_limiter_auth(l, "198.51.100.1", 200000),
                     SMTPX_LIMITER_OK);
    ck_assert_uint_eq(smtpx_limiter_tracked(l), 1);
    smtpx_limiter_free(l);
}
END_TEST

START_TEST(test_exempt)
{
    smtpx_limiter_opts o;
    smtpx_limiter *l;
    int i;

    memset(&o, 0, sizeof(o));
    o.addr_sessions = 1;
    o.conn_rate = 1;
    o.msg_rate = 1;
    o.exempt = "127.0.0.0/8 ::1,[2001:db8::]/32";
    l = make(&o);
    for (i = 0; i < 10; i++) {
        ck_assert_int_eq(smtpx_limiter_open(l, "127.0.0.2", 0),
                         SMTPX_LIMITER_OK);
        ck_assert_int_eq(smtpx_limiter_open(l, "::1", 0), SMTPX_LIMITER_OK);
        ck_assert_int_eq(smtpx_limiter_open(l, "2001:db8:5::1", 0),
                         SMTPX_LIMITER_OK);
        ck_assert_int_eq(smtpx_limiter_message(l, "127.0.0.2", 0),
                         SMTPX_LIMITER_OK);
    }
    ck_assert_uint_eq(smtpx_limiter_sessions(l), 0); /* not counted */
    ck_assert_int_eq(smtpx_limiter_open(l, "128.0.0.1", 0), SMTPX_LIMITER_OK);
    ck_assert_int_eq(smtpx_limiter_open(l, "128.0.0.1", 0),
                     SMTPX_LIMITER_ADDR_SESSIONS);
    smtpx_limiter_close(l, "127.0.0.2", 0); /* harmless */
    ck_assert_uint_eq(smtpx_limiter_sessions(l), 1);
    smtpx_limiter_free(l);
}
END_TEST

START_TEST(test_max_tracked)
{
    smtpx_limiter_opts o;
    smtpx_limiter *l;
    char addr[32];
    int i;

    memset(&o, 0, sizeof(o));
    o.conn_rate = 10;
    o.max_tracked = 8;
    l = make(&o);
    /* Many clients that come and go: the oldest idle ones are forgotten
     * to make room. */
    for (i = 0; i < 1000; i++) {
        snprintf(addr, sizeof(addr), "10.0.%d.%d", i / 250, i % 250);
        ck_assert_int_eq(smtpx_limiter_open(l, addr, (uint64_t)i),
                         SMTPX_LIMITER_OK);
        smtpx_limiter_close(l, addr, (uint64_t)i);
        ck_assert_uint_le(smtpx_limiter_tracked(l), 8);
    }
    /* Every remembered client has a session open: no room, refused. */
    for (i = 0; i < 8; i++) {
        snprintf(addr, sizeof(addr), "192.0.2.%d", i);
        ck_assert_int_eq(smtpx_limiter_open(l, addr, 2000), SMTPX_LIMITER_OK);
    }
    ck_assert_int_eq(smtpx_limiter_open(l, "198.51.100.1", 2000),
                     SMTPX_LIMITER_SESSIONS);
    smtpx_limiter_close(l, "192.0.2.3", 2000);
    ck_assert_int_eq(smtpx_limiter_open(l, "198.51.100.1", 2000),
                     SMTPX_LIMITER_OK);
    smtpx_limiter_free(l);
}
END_TEST

START_TEST(test_many_addresses)
{
    /* The table grows; everything is found again and let go. */
    smtpx_limiter_opts o;
    smtpx_limiter *l;
    char addr[64];
    int i;

    memset(&o, 0, sizeof(o));
    o.addr_sessions = 1;
    o.net_sessions = 5000; /* about 2900 in each of the 7 networks */
    l = make(&o);
    for (i = 0; i < 20000; i++) {
        snprintf(addr, sizeof(addr), "2001:db8:%x::%x", i % 7, i);
        ck_assert_int_eq(smtpx_limiter_open(l, addr, 0), SMTPX_LIMITER_OK);
    }
    ck_assert_uint_eq(smtpx_limiter_tracked(l), 20000 + 7);
    for (i = 0; i < 20000; i++) {
        snprintf(addr, sizeof(addr), "2001:db8:%x::%x", i % 7, i);
        ck_assert_int_eq(smtpx_limiter_open(l, addr, 0),
                         SMTPX_LIMITER_ADDR_SESSIONS);
        smtpx_limiter_close(l, addr, 0);
    }
    ck_assert_uint_eq(smtpx_limiter_tracked(l), 0);
    ck_assert_uint_eq(smtpx_limiter_sessions(l), 0);
    smtpx_limiter_free(l);
}
END_TEST

START_TEST(test_nomem)
{
    long at;
    int done = 0;

    for (at = 1; at < 200 && !done; at++) {
        failmalloc fm = {.fail_at = at};
        smtpx_mem mem = failmalloc_mem(&fm);
        smtpx_limiter_opts o;
        smtpx_limiter *l;
        char addr[32];
        int i, rc;

        memset(&o, 0, sizeof(o));
        o.size = sizeof(o);
        o.addr_sessions = 3;
        o.net_sessions = 5;
        o.msg_rate = 5;
        o.exempt = "::1";
        rc = smtpx_limiter_new(&l, &o, &mem);
        if (rc != 0) {
            ck_assert_int_eq(rc, SMTPX_ERR_NOMEM);
            ck_assert_int_eq(fm.live, 0);
            continue;
        }
        for (i = 0; i < 40; i++) {
            snprintf(addr, sizeof(addr), "10.0.%d.1", i);
            rc = smtpx_limiter_open(l, addr, 0);
            ck_assert(rc == SMTPX_LIMITER_OK || rc == SMTPX_ERR_NOMEM);
            rc = smtpx_limiter_message(l, addr, 0);
            ck_assert(rc == SMTPX_LIMITER_OK || rc == SMTPX_ERR_NOMEM);
        }
        for (i = 0; i < 40; i++) {
            snprintf(addr, sizeof(addr), "10.0.%d.1", i);
            smtpx_limiter_close(l, addr, 0);
        }
        smtpx_limiter_free(l);
        ck_assert_int_eq(fm.live, 0);
        done = fm.failures == 0;
    }
    ck_assert(done);
}
END_TEST

Suite *suite_limiter(void)
{
    Suite *s = suite_create("limiter");
    TCase *tc = tcase_create("limits");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_args);
    tcase_add_test(tc, test_sessions);
    tcase_add_test(tc, test_networks);
    tcase_add_test(tc, test_rates);
    tcase_add_test(tc, test_auth_rate);
    tcase_add_test(tc, test_exempt);
    tcase_add_test(tc, test_max_tracked);
    tcase_add_test(tc, test_many_addresses);
    tcase_add_test(tc, test_nomem);
    suite_add_tcase(s, tc);
    return s;
}
