/*
 * check_mta_trace - the RFC 5322 date and the Return-Path / Received trace
 * headers: known dates (leap years, before 1970, offsets, the range ends),
 * every day from 1900 to 9999 against a calendar kept by the test, and the
 * headers of real server sessions, hostile input included.
 */
#include <stdio.h>
#include <string.h>

#include <libsmtpx/smtpx.h>

#include "suites.h"

/* ---- smtpx_format_date --------------------------------------------------- */

static const struct {
    int64_t t;
    int off;
    const char *want;
} dates[] = {
    /* Computed with Python's datetime, not with the code under test. */
    {0, 0, "Thu, 01 Jan 1970 00:00:00 +0000"},
    {951782400, 0, "Tue, 29 Feb 2000 00:00:00 +0000"},
    {-1, 0, "Wed, 31 Dec 1969 23:59:59 +0000"},
    {-2208988800LL, 0, "Mon, 01 Jan 1900 00:00:00 +0000"},
    {253402300799LL, 0, "Fri, 31 Dec 9999 23:59:59 +0000"},
    {1795341600, 0, "Sun, 22 Nov 2026 10:00:00 +0000"},
    {-1000000000, 0, "Sun, 24 Apr 1938 22:13:20 +0000"},
    {-14182940, 0, "Sun, 20 Jul 1969 20:17:40 +0000"},
    {0, -330, "Wed, 31 Dec 1969 18:30:00 -0530"},
    {0, 345, "Thu, 01 Jan 1970 05:45:00 +0545"},
    {0, 840, "Thu, 01 Jan 1970 14:00:00 +1400"},
    {0, -720, "Wed, 31 Dec 1969 12:00:00 -1200"},
    {0, 1439, "Thu, 01 Jan 1970 23:59:00 +2359"},
    {0, -1439, "Wed, 31 Dec 1969 00:01:00 -2359"},
    {1704067199, 0, "Sun, 31 Dec 2023 23:59:59 +0000"},
    {1704067199, 60, "Mon, 01 Jan 2024 00:59:59 +0100"},
    /* 1900 and 2100 are not leap years, 1904, 2000, 2024 and 2400 are. */
    {-2203934400LL, 0, "Wed, 28 Feb 1900 12:00:00 +0000"},
    {-2203848000LL, 0, "Thu, 01 Mar 1900 12:00:00 +0000"},
    {-2077743477LL, 0, "Mon, 29 Feb 1904 01:02:03 +0000"},
    {1709212455, 0, "Thu, 29 Feb 2024 13:14:15 +0000"},
    {4107542399LL, 0, "Sun, 28 Feb 2100 23:59:59 +0000"},
    {13574584800LL, 0, "Tue, 29 Feb 2400 06:00:00 +0000"},
    /* Past 32-bit time. */
    {2147483647LL, 0, "Tue, 19 Jan 2038 03:14:07 +0000"},
    {2147483648LL, 0, "Tue, 19 Jan 2038 03:14:08 +0000"},
    {4102444800LL, 0, "Fri, 01 Jan 2100 00:00:00 +0000"},
    /* The ends of the range in local time. */
    {-2208902460LL, -1439, "Mon, 01 Jan 1900 00:00:00 -2359"},
    {253402214459LL, 1439, "Fri, 31 Dec 9999 23:59:59 +2359"},
};

START_TEST(test_date_known)
{
    char buf[64];
    size_t i;

    for (i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
        memset(buf, 'x', sizeof(buf));
        ck_assert_int_eq(
            smtpx_format_date(dates[i].t, dates[i].off, buf, sizeof(buf)), 31);
        ck_assert_str_eq(buf, dates[i].want);
    }
}
END_TEST

START_TEST(test_date_refused)
{
    char buf[64];

    /* Outside 1900-9999 in the zone shown (RFC 5322 3.3: 1900 or later). */
    ck_assert_int_eq(smtpx_format_date(-2208988801LL, 0, buf, sizeof(buf)),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_format_date(-2208988800LL, -1, buf, sizeof(buf)),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_format_date(253402300800LL, 0, buf, sizeof(buf)),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_format_date(253402300799LL, 1, buf, sizeof(buf)),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_format_date(INT64_MAX, 0, buf, sizeof(buf)),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_format_date(INT64_MIN, 0, buf, sizeof(buf)),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_format_date(INT64_MAX, -1439, buf, sizeof(buf)),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_format_date(INT64_MIN, 1439, buf, sizeof(buf)),
                     SMTPX_ERR_INVALID_ARGUMENT);
    /* Offsets of a day or more. */
    ck_assert_int_eq(smtpx_format_date(0, 1440, buf, sizeof(buf)),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_format_date(0, -1440, buf, sizeof(buf)),
                     SMTPX_ERR_INVALID_ARGUMENT);
    /* Too small: 31 characters and the NUL. */
    ck_assert_int_eq(smtpx_format_date(0, 0, buf, 31),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_format_date(0, 0, buf, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_format_date(0, 0, NULL, 32),
                     SMTPX_ERR_INVALID_ARGUMENT);
    memset(buf, 'x', sizeof(buf));
    ck_assert_int_eq(smtpx_format_date(0, 0, buf, 32), 31);
    ck_assert_str_eq(buf, "Thu, 01 Jan 1970 00:00:00 +0000");
}
END_TEST

static int leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

START_TEST(test_date_every_day)
{
    /* Walk every day of the range with a calendar of the test's own and
     * compare the first and last day of every month and every 17th day
     * (all of them is slow under the sanitizers); the time of day and the
     * weekday move along too. */
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed",
                                     "Thu", "Fri", "Sat"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t day = -25567; /* 1900-01-01 */
    long y = 1900;
    int m = 0, d = 1, w = 1; /* a Monday */
    char got[32], want[64];

    while (y <= 9999) {
        int64_t sec = (day * 7919) % 86400;
        int64_t t;

        if (sec < 0)
            sec += 86400;
        t = day * 86400 + sec;
        if (d == 1 || d >= 28 || day % 17 == 0) {
            snprintf(want, sizeof(want),
                     "%s, %02d %s %04ld %02d:%02d:%02d +0000", wd[w], d, mon[m],
                     y, (int)(sec / 3600), (int)(sec / 60 % 60),
                     (int)(sec % 60));
            /* Plain tests: a Check assertion costs a write to a pipe. */
            if (smtpx_format_date(t, 0, got, sizeof(got)) != 31 ||
                strcmp(got, want) != 0)
                ck_abort_msg("day %lld: got \"%s\", want \"%s\"",
                             (long long)day, got, want);
        }
        day++;
        w = (w + 1) % 7;
        if (++d > mdays[m] + (m == 1 && leap(y))) {
            d = 1;
            if (++m == 12) {
                m = 0;
                y++;
            }
        }
    }
    ck_assert_int_eq(day, 2932897); /* 10000-01-01 */
}
END_TEST

/* ---- smtpx_server_trace_headers ----------------------------------------- */

#define T_NOV22 1795341600 /* Sun, 22 Nov 2026 10:00:00 +0000 */
#define DATE    "Sun, 22 Nov 2026 10:00:00 +0000"

static smtpx_config *make_cfg(smtpx_role role, int require_helo)
{
    smtpx_config *cfg;

    ck_assert_int_eq(smtpx_config_new(&cfg, role, NULL), 0);
    ck_assert_int_eq(smtpx_config_set_hostname(cfg, "mx.test"), 0);
    ck_assert_int_eq(
        smtpx_config_set_policy(cfg, SMTPX_POLICY_REQUIRE_HELO, require_helo),
        0);
    ck_assert_int_eq(smtpx_config_freeze(cfg), 0);
    return cfg;
}

static void drain(smtpx_server *s)
{
    const uint8_t *p;
    size_t n;

    while ((n = smtpx_server_out_peek(s, &p)) > 0)
        smtpx_server_out_drop(s, n, 0);
}

/* session - a started server session that has taken input (a string: it
 * may hold control bytes, but no NUL) */
static smtpx_server *session(const smtpx_config *cfg, const smtpx_peer *peer,
                             const smtpx_tls_info *tls, const char *input)
{
    smtpx_server *s;
    size_t len = strlen(input);

    ck_assert_int_eq(smtpx_server_new(&s, cfg, NULL, 0, NULL), 0);
    if (tls != NULL) /* implicit TLS (RFC 8314) */
        ck_assert_int_eq(smtpx_server_tls_started(s, tls, 0), 0);
    ck_assert_int_eq(smtpx_server_start(s, peer, 0), 0);
    ck_assert_int_eq(smtpx_server_recv(s, (const uint8_t *)input, len, 0),
                     (smtpx_ssize)len);
    drain(s);
    return s;
}

/* check_trace - the headers of a session, compared whole */
static void check_trace(const smtpx_config *cfg, const smtpx_peer *peer,
                        const smtpx_tls_info *tls, const char *input,
                        const char *id, const char *want)
{
    smtpx_server *s = session(cfg, peer, tls, input);
    char buf[2048];

    const char *received = strstr(want, "\r\n") + 2;

    ck_assert_int_eq(
        smtpx_server_trace_headers(s, id, T_NOV22, 0, buf, sizeof(buf)),
        (smtpx_ssize)strlen(want));
    ck_assert_str_eq(buf, want);
    /* The Received header alone: the same less the Return-Path line. */
    ck_assert_int_eq(
        smtpx_server_received_header(s, id, T_NOV22, 0, buf, sizeof(buf)),
        (smtpx_ssize)strlen(received));
    ck_assert_str_eq(buf, received);
    smtpx_server_free(s);
}

static const smtpx_peer peer4 = {"192.0.2.1", 40000, "192.0.2.25", 25,
                                 "client.example"};

START_TEST(test_trace_basic)
{
    smtpx_config *cfg = make_cfg(SMTPX_ROLE_SERVER, 1);

    check_trace(cfg, &peer4, NULL,
                "EHLO client.test\r\n"
                "MAIL FROM:<a@example.org>\r\n"
                "RCPT TO:<b@example.org>\r\n",
                "ABC123",
                "Return-Path: <a@example.org>\r\n"
                "Received: from client.test (client.example [192.0.2.1])\r\n"
                "\tby mx.test (libsmtpx) with ESMTP id ABC123\r\n"
                "\tfor <b@example.org>; " DATE "\r\n");
    /* The offset reaches the date of the Received line. */
    {
        smtpx_server *s = session(cfg, &peer4, NULL,
                                  "EHLO c\r\nMAIL FROM:<a@x>\r\n"
                                  "RCPT TO:<b@y>\r\n");
        char buf[512];

        ck_assert_int_gt(
            smtpx_server_trace_headers(s, NULL, 0, -330, buf, sizeof(buf)), 0);
        ck_assert_ptr_nonnull(
            strstr(buf, "\tfor <b@y>; Wed, 31 Dec 1969 18:30:00 -0530\r\n"));
        smtpx_server_free(s);
    }
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_trace_for_rule)
{
    /* "for" names the recipient only when there is exactly one, so that a
     * copy does not reveal the other recipients. */
    smtpx_config *cfg = make_cfg(SMTPX_ROLE_SERVER, 1);

    check_trace(cfg, &peer4, NULL,
                "EHLO client.test\r\n"
                "MAIL FROM:<a@example.org>\r\n"
                "RCPT TO:<b@example.org>\r\n"
                "RCPT TO:<c@example.org>\r\n",
                "ABC123",
                "Return-Path: <a@example.org>\r\n"
                "Received: from client.test (client.example [192.0.2.1])\r\n"
                "\tby mx.test (libsmtpx) with ESMTP id ABC123; " DATE "\r\n");
    /* No recipient yet: no "for" either. */
    check_trace(cfg, &peer4, NULL,
                "EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n", "ABC123",
                "Return-Path: <a@example.org>\r\n"
                "Received: from client.test (client.example [192.0.2.1])\r\n"
                "\tby mx.test (libsmtpx) with ESMTP id ABC123; " DATE "\r\n");
    /* A refused recipient does not count; <Postmaster> is a recipient. */
    check_trace(cfg, &peer4, NULL,
                "EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n"
                "RCPT TO:<bad address>\r\nRCPT TO:<Postmaster>\r\n",
                "ABC123",
                "Return-Path: <a@example.org>\r\n"
                "Received: from client.test (client.example [192.0.2.1])\r\n"
                "\tby mx.test (libsmtpx) with ESMTP id ABC123\r\n"
                "\tfor <Postmaster>; " DATE "\r\n");
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_trace_variants)
{
    smtpx_config *cfg = make_cfg(SMTPX_ROLE_SERVER, 0);
    smtpx_config *lmtp = make_cfg(SMTPX_ROLE_LMTP_SERVER, 1);
    smtpx_peer v6 = {"2001:db8::1", 40000, "2001:db8::25", 25, NULL};
    smtpx_peer none = {NULL, 0, NULL, 0, NULL};
    smtpx_tls_info tls = {
        "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", 256, 0, NULL, 0};

    /* HELO: plain SMTP; the null sender; no verified name; no id. */
    check_trace(
        cfg, &v6, NULL,
        "HELO client.test\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.org>\r\n", NULL,
        "Return-Path: <>\r\n"
        "Received: from client.test ([IPv6:2001:db8::1])\r\n"
        "\tby mx.test (libsmtpx) with SMTP\r\n"
        "\tfor <b@example.org>; " DATE "\r\n");
    /* No HELO at all (the policy allows it), nothing known of the peer, an
     * empty id counts as none. */
    check_trace(cfg, &none, NULL,
                "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n", "",
                "Return-Path: <a@example.org>\r\n"
                "Received: from unknown\r\n"
                "\tby mx.test (libsmtpx) with SMTP\r\n"
                "\tfor <b@example.org>; " DATE "\r\n");
    check_trace(cfg, NULL, NULL, "EHLO c.test\r\nMAIL FROM:<a@example.org>\r\n",
                NULL,
                "Return-Path: <a@example.org>\r\n"
                "Received: from c.test\r\n"
                "\tby mx.test (libsmtpx) with ESMTP; " DATE "\r\n");
    /* TLS: ESMTPS and the TLS comment (RFC 3848). */
    check_trace(cfg, &peer4, &tls,
                "EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n"
                "RCPT TO:<b@example.org>\r\n",
                "Q1",
                "Return-Path: <a@example.org>\r\n"
                "Received: from client.test (client.example [192.0.2.1])\r\n"
                "\tby mx.test (libsmtpx) with ESMTPS id Q1\r\n"
                "\t(version=TLSv1.2 cipher=ECDHE-RSA-AES256-GCM-SHA384)\r\n"
                "\tfor <b@example.org>; " DATE "\r\n");
    /* TLS with only a version, and no "for": the date follows the
     * comment. */
    tls.cipher = NULL;
    check_trace(cfg, &peer4, &tls,
                "EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n", "Q1",
                "Return-Path: <a@example.org>\r\n"
                "Received: from client.test (client.example [192.0.2.1])\r\n"
                "\tby mx.test (libsmtpx) with ESMTPS id Q1\r\n"
                "\t(version=TLSv1.2); " DATE "\r\n");
    /* TLS with nothing to tell: no comment. */
    tls.version = NULL;
    check_trace(cfg, &peer4, &tls,
                "EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n", "Q1",
                "Return-Path: <a@example.org>\r\n"
                "Received: from client.test (client.example [192.0.2.1])\r\n"
                "\tby mx.test (libsmtpx) with ESMTPS id Q1; " DATE "\r\n");
    /* LMTP. */
    check_trace(lmtp, &peer4, NULL,
                "LHLO client.test\r\nMAIL FROM:<a@example.org>\r\n"
                "RCPT TO:<b@example.org>\r\n",
                "Q1",
                "Return-Path: <a@example.org>\r\n"
                "Received: from client.test (client.example [192.0.2.1])\r\n"
                "\tby mx.test (libsmtpx) with LMTP id Q1\r\n"
                "\tfor <b@example.org>; " DATE "\r\n");
    smtpx_config_free(cfg);
    smtpx_config_free(lmtp);
}
END_TEST

START_TEST(test_trace_hostile)
{
    /* What the client chose cannot end the header, close the comment,
     * open a new one, or fake an address literal inside it. */
    smtpx_config *cfg = make_cfg(SMTPX_ROLE_SERVER, 1);
    smtpx_peer evil = {"192.0.2.1", 1, NULL, 0, "evil (x) [6.6.6.6]"};
    smtpx_tls_info tls = {"TLSv1.2)\r\nX: y", "A(B", 0, 0, NULL, 0};

    /* (The server refuses control characters in the name itself.) */
    check_trace(cfg, &peer4, NULL,
                "EHLO x)(y\r\n"
                "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n",
                "ABC",
                "Return-Path: <a@example.org>\r\n"
                "Received: from x??y (client.example [192.0.2.1])\r\n"
                "\tby mx.test (libsmtpx) with ESMTP id ABC\r\n"
                "\tfor <b@example.org>; " DATE "\r\n");
    /* Spaces, quotes, angle brackets, backslash, ';' and 8-bit bytes; an
     * address literal stays as it is. */
    check_trace(cfg, &peer4, NULL,
                "EHLO a b;c\"d<e>f\\g [192.0.2.1] \xc3\xa9\r\n"
                "MAIL FROM:<a@example.org>\r\n",
                NULL,
                "Return-Path: <a@example.org>\r\n"
                "Received: from a?b?c?d?e?f?g?[192.0.2.1]??? "
                "(client.example [192.0.2.1])\r\n"
                "\tby mx.test (libsmtpx) with ESMTP; " DATE "\r\n");
    /* The driver's name and the TLS facts are sanitised too, and so is
     * the caller's id. */
    check_trace(
        cfg, &evil, &tls, "EHLO [192.0.2.1]\r\nMAIL FROM:<a@example.org>\r\n",
        "a b(c)\r\n",
        "Return-Path: <a@example.org>\r\n"
        "Received: from [192.0.2.1] (evil??x???6.6.6.6? [192.0.2.1])\r\n"
        "\tby mx.test (libsmtpx) with ESMTPS id a?b?c???\r\n"
        "\t(version=TLSv1.2???X:?y cipher=A?B); " DATE "\r\n");
    /* A quoted local part is a valid address: it is kept whole. */
    check_trace(cfg, &peer4, NULL,
                "EHLO c.test\r\nMAIL FROM:<\"a (b) c\"@example.org>\r\n"
                "RCPT TO:<\"x;y\"@example.org>\r\n",
                NULL,
                "Return-Path: <\"a (b) c\"@example.org>\r\n"
                "Received: from c.test (client.example [192.0.2.1])\r\n"
                "\tby mx.test (libsmtpx) with ESMTP\r\n"
                "\tfor <\"x;y\"@example.org>; " DATE "\r\n");
    smtpx_config_free(cfg);
}
END_TEST

/* max_line - the longest line of a header block, CRLF not counted */
static size_t max_line(const char *p)
{
    size_t max = 0;
    const char *e;

    while ((e = strstr(p, "\r\n")) != NULL) {
        if ((size_t)(e - p) > max)
            max = (size_t)(e - p);
        p = e + 2;
    }
    return max;
}

START_TEST(test_trace_folding)
{
    /* Long names move the next clause to a continuation line. */
    smtpx_config *cfg = make_cfg(SMTPX_ROLE_SERVER, 1);
    char helo[62], id[61], input[256], want[1024];
    smtpx_server *s;
    char buf[1024];

    memset(helo, 'h', sizeof(helo) - 1);
    helo[sizeof(helo) - 1] = '\0';
    memset(id, 'i', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    snprintf(input, sizeof(input),
             "EHLO %s\r\nMAIL FROM:<a@example.org>\r\n"
             "RCPT TO:<b@example.org>\r\n",
             helo);
    snprintf(want, sizeof(want),
             "Return-Path: <a@example.org>\r\n"
             "Received: from %s\r\n"
             "\t(client.example [192.0.2.1])\r\n"
             "\tby mx.test (libsmtpx) with ESMTP\r\n"
             "\tid %s\r\n"
             "\tfor <b@example.org>; " DATE "\r\n",
             helo, id);
    check_trace(cfg, &peer4, NULL, input, id, want);
    /* Without "for", the date takes a line of its own when it must. */
    snprintf(input, sizeof(input), "EHLO %s\r\nMAIL FROM:<a@example.org>\r\n",
             helo);
    snprintf(want, sizeof(want),
             "Return-Path: <a@example.org>\r\n"
             "Received: from %s\r\n"
             "\t(client.example [192.0.2.1])\r\n"
             "\tby mx.test (libsmtpx) with ESMTP\r\n"
             "\tid %s;\r\n"
             "\t" DATE "\r\n",
             helo, id);
    check_trace(cfg, &peer4, NULL, input, id, want);
    s = session(cfg, &peer4, NULL, input);
    ck_assert_int_gt(
        smtpx_server_trace_headers(s, id, T_NOV22, 0, buf, sizeof(buf)), 0);
    ck_assert_uint_le(max_line(buf), 78);
    smtpx_server_free(s);
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_trace_state)
{
    smtpx_config *cfg = make_cfg(SMTPX_ROLE_SERVER, 1);
    smtpx_server *s;
    char buf[512];

    /* No transaction: after EHLO, after RSET, after a refused MAIL. */
    s = session(cfg, &peer4, NULL, "EHLO c.test\r\n");
    buf[0] = 'x';
    ck_assert_int_eq(
        smtpx_server_trace_headers(s, "id", T_NOV22, 0, buf, sizeof(buf)),
        SMTPX_ERR_INVALID_STATE);
    ck_assert_str_eq(buf, "");
    smtpx_server_free(s);
    s = session(cfg, &peer4, NULL,
                "EHLO c.test\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRSET\r\n"
                "MAIL FROM:<bad\r\n");
    ck_assert_int_eq(
        smtpx_server_trace_headers(s, "id", T_NOV22, 0, buf, sizeof(buf)),
        SMTPX_ERR_INVALID_STATE);
    smtpx_server_free(s);
    /* Arguments. */
    s = session(cfg, &peer4, NULL, "EHLO c.test\r\nMAIL FROM:<a@b>\r\n");
    ck_assert_int_eq(
        smtpx_server_trace_headers(NULL, "id", T_NOV22, 0, buf, sizeof(buf)),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(
        smtpx_server_trace_headers(s, "id", T_NOV22, 0, NULL, sizeof(buf)),
        SMTPX_ERR_INVALID_ARGUMENT);
    /* A time or offset smtpx_format_date() refuses. */
    ck_assert_int_eq(
        smtpx_server_trace_headers(s, "id", INT64_MAX, 0, buf, sizeof(buf)),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(
        smtpx_server_trace_headers(s, "id", T_NOV22, 1440, buf, sizeof(buf)),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_gt(
        smtpx_server_trace_headers(s, "id", T_NOV22, 0, buf, sizeof(buf)), 0);
    smtpx_server_free(s);
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_trace_too_small)
{
    /* Every size short of the whole: an error, an empty string, and no
     * byte written past size. */
    smtpx_config *cfg = make_cfg(SMTPX_ROLE_SERVER, 1);
    smtpx_tls_info tls = {"TLSv1.2", "AES", 128, 0, NULL, 0};
    smtpx_server *s =
        session(cfg, &peer4, &tls,
                "EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n"
                "RCPT TO:<b@example.org>\r\n");
    char full[1024], buf[1024];
    smtpx_ssize len;
    size_t size, i;

    len = smtpx_server_trace_headers(s, "ID", T_NOV22, 0, full, sizeof(full));
    ck_assert_int_gt(len, 100);
    for (size = 0; size <= (size_t)len; size++) {
        memset(buf, 'Z', sizeof(buf));
        ck_assert_int_eq(
            smtpx_server_trace_headers(s, "ID", T_NOV22, 0, buf, size),
            SMTPX_ERR_INVALID_ARGUMENT);
        if (size > 0)
            ck_assert_int_eq(buf[0], '\0');
        for (i = size; i < sizeof(buf); i++)
            ck_assert_int_eq(buf[i], 'Z');
    }
    memset(buf, 'Z', sizeof(buf));
    ck_assert_int_eq(
        smtpx_server_trace_headers(s, "ID", T_NOV22, 0, buf, (size_t)len + 1),
        len);
    ck_assert_str_eq(buf, full);
    smtpx_server_free(s);
    smtpx_config_free(cfg);
}
END_TEST

Suite *suite_mta_trace(void)
{
    Suite *s = suite_create("mta_trace");
    TCase *tc = tcase_create("date");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_date_known);
    tcase_add_test(tc, test_date_refused);
    tcase_add_test(tc, test_date_every_day);
    suite_add_tcase(s, tc);
    tc = tcase_create("trace");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_trace_basic);
    tcase_add_test(tc, test_trace_for_rule);
    tcase_add_test(tc, test_trace_variants);
    tcase_add_test(tc, test_trace_hostile);
    tcase_add_test(tc, test_trace_folding);
    tcase_add_test(tc, test_trace_state);
    tcase_add_test(tc, test_trace_too_small);
    suite_add_tcase(s, tc);
    return s;
}
