/*
 * check_report - reading acknowledgements: the fields reader (folding, line
 * ends, lines that are no field, values too long), the end of a header
 * fed piece by piece, the trace fields on top, message ids and mailboxes;
 * the report parser on DSNs and MDNs as Postfix, RFC 8098 and our own
 * builder write them, fed whole, byte by byte and split at every point;
 * what is not a report; every limit; the outcome of every action and
 * disposition; an allocation-failure sweep; and the MDN builder read back
 * by the parser.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libsmtpx/ack.h>

#include "harness/failmalloc.h"
#include "mta/fields.h"
#include "mta/mdn.h"
#include "suites.h"

/* ---- fields -------------------------------------------------------------- */

START_TEST(test_fields)
{
    static const char block[] = "Subject: one\r\n"
                                "Folded: a\r\n b\r\n\tc\r\n"
                                "X-LF: lf only\n"
                                "Empty:\r\n"
                                " continuation without a field\r\n"
                                "No colon here\r\n"
                                "Bad Name: x\r\n"
                                "Name : obsolete space\r\n"
                                "Ctl: a\001b\r\n"
                                "\r\n"
                                "After: the end\r\n";
    smtpx__fields f = {block, block + sizeof(block) - 1};
    const char *name;
    size_t n;
    char v[64];

    ck_assert_int_eq(smtpx__fields_next(&f, &name, &n, v, sizeof(v)), 1);
    ck_assert(smtpx__fields_is(name, n, "subject"));
    ck_assert_str_eq(v, "one");
    ck_assert_int_eq(smtpx__fields_next(&f, &name, &n, v, sizeof(v)), 1);
    ck_assert(smtpx__fields_is(name, n, "Folded"));
    ck_assert_str_eq(v, "a b\tc");
    ck_assert_int_eq(smtpx__fields_next(&f, &name, &n, v, sizeof(v)), 1);
    ck_assert_str_eq(v, "lf only");
    /* A line that begins with white space continues the field before. */
    ck_assert_int_eq(smtpx__fields_next(&f, &name, &n, v, sizeof(v)), 1);
    ck_assert(smtpx__fields_is(name, n, "Empty"));
    ck_assert_str_eq(v, "continuation without a field");
    ck_assert_int_eq(smtpx__fields_next(&f, &name, &n, v, sizeof(v)),
                     SMTPX__FIELD_BAD);
    ck_assert_int_eq(smtpx__fields_next(&f, &name, &n, v, sizeof(v)),
                     SMTPX__FIELD_BAD);
    ck_assert_int_eq(smtpx__fields_next(&f, &name, &n, v, sizeof(v)), 1);
    ck_assert(smtpx__fields_is(name, n, "Name"));
    ck_assert_int_eq(smtpx__fields_next(&f, &name, &n, v, sizeof(v)), 1);
    ck_assert_str_eq(v, "a b");
    ck_assert_int_eq(smtpx__fields_next(&f, &name, &n, v, sizeof(v)), 0);
    ck_assert_int_eq(smtpx__fields_next(&f, &name, &n, v, sizeof(v)), 1);
    ck_assert(smtpx__fields_is(name, n, "After"));
    ck_assert_int_eq(smtpx__fields_next(&f, &name, &n, v, sizeof(v)), 0);

    /* A block that begins with a continuation line. */
    {
        static const char cont[] = " cont\r\nA: b\r\n";
        smtpx__fields g = {cont, cont + sizeof(cont) - 1};
        ck_assert_int_eq(smtpx__fields_next(&g, &name, &n, v, sizeof(v)),
                         SMTPX__FIELD_BAD);
        ck_assert_int_eq(smtpx__fields_next(&g, &name, &n, v, sizeof(v)), 1);
        ck_assert_str_eq(v, "b");
    }
    /* A value that does not fit, folded or not: refused whole. */
    {
        static const char lng[] = "A: 0123456789\r\n 0123456789\r\nB: ok\r\n";
        smtpx__fields g = {lng, lng + sizeof(lng) - 1};
        ck_assert_int_eq(smtpx__fields_next(&g, &name, &n, v, 16),
                         SMTPX__FIELD_LONG);
        ck_assert_str_eq(v, "");
        ck_assert_int_eq(smtpx__fields_next(&g, &name, &n, v, 16), 1);
        ck_assert_str_eq(v, "ok");
        g.p = lng;
        ck_assert_int_eq(smtpx__fields_next(&g, &name, &n, v, 0),
                         SMTPX__FIELD_LONG);
    }
}
END_TEST

START_TEST(test_header_end)
{
    static const char msg[] = "Received: x\r\n\tfolded\r\nSubject: s\r\n"
                              "\r\nbody\r\n\r\n";
    size_t scan = 0, i,
           want = strlen("Received: x\r\n\tfolded\r\n"
                         "Subject: s\r\n\r\n");

    /* Fed a byte at a time, found once, where it is. */
    for (i = 1; i <= sizeof(msg) - 1; i++) {
        size_t e = smtpx__header_end(msg, i, &scan);
        if (i < want)
            ck_assert_uint_eq(e, 0);
        else {
            ck_assert_uint_eq(e, want);
            break;
        }
    }
    scan = 0;
    ck_assert_uint_eq(smtpx__header_end("\r\nbody", 6, &scan), 2);
    scan = 0;
    ck_assert_uint_eq(smtpx__header_end("\nbody", 5, &scan), 1);
    scan = 0;
    ck_assert_uint_eq(smtpx__header_end("A: b\nC: d\n\nx", 12, &scan), 11);
    scan = 0;
    ck_assert_uint_eq(smtpx__header_end("A: b\r\nC: d", 10, &scan), 0);
    ck_assert_uint_eq(scan, 6);
}
END_TEST

START_TEST(test_trace_end)
{
    static const char h[] = "Return-Path: <a@b>\r\n"
                            "Received: from x\r\n\tby y; date\r\n"
                            "received: from z\r\n"
                            "Authentication-Results: mx; spf=pass\r\n"
                            "ARC-Seal: i=1\r\n"
                            "Subject: hello\r\n"
                            "Received: late one, kept\r\n\r\n";
    const char *s = strstr(h, "Subject:");

    ck_assert_uint_eq(smtpx__trace_end(h, sizeof(h) - 1), (size_t)(s - h));
    ck_assert_uint_eq(smtpx__trace_end(s, strlen(s)), 0);
    ck_assert_uint_eq(smtpx__trace_end("", 0), 0);
}
END_TEST

START_TEST(test_msgid_mailbox)
{
    char out[64];

    ck_assert_int_eq(smtpx__msgid("<a.b@c.example>", out, sizeof(out)), 13);
    ck_assert_str_eq(out, "a.b@c.example");
    ck_assert_int_eq(
        smtpx__msgid(" (comment (nested)) <x@y> <z@w>", out, sizeof(out)), 3);
    ck_assert_str_eq(out, "x@y");
    ck_assert_int_eq(smtpx__msgid("bare@id.example", out, sizeof(out)), 15);
    ck_assert_int_eq(smtpx__msgid("bare", out, sizeof(out)), -1);
    ck_assert_int_eq(smtpx__msgid("<>", out, sizeof(out)), -1);
    ck_assert_int_eq(smtpx__msgid("<a b@c>", out, sizeof(out)), -1);
    ck_assert_int_eq(smtpx__msgid("<a@b", out, sizeof(out)), -1);
    ck_assert_int_eq(smtpx__msgid("<a\001@b>", out, sizeof(out)), -1);
    ck_assert_int_eq(smtpx__msgid("<abcdefgh@ijk>", out, 8), -1);
    ck_assert_int_eq(smtpx__msgid("two@ids two@ids", out, sizeof(out)), -1);

    ck_assert_int_eq(
        smtpx__mailbox("Orders <orders@shop.example>", out, sizeof(out)), 19);
    ck_assert_str_eq(out, "orders@shop.example");
    ck_assert_int_eq(
        smtpx__mailbox("\"a <b>, c\" <d@e>, f@g", out, sizeof(out)), 3);
    ck_assert_str_eq(out, "d@e");
    ck_assert_int_eq(
        smtpx__mailbox(" plain@x.example (Plain)", out, sizeof(out)), 15);
    ck_assert_int_eq(smtpx__mailbox("first@a, second@b", out, sizeof(out)), 7);
    ck_assert_str_eq(out, "first@a");
    ck_assert_int_eq(smtpx__mailbox("no address", out, sizeof(out)), -1);
    ck_assert_int_eq(smtpx__mailbox("<unclosed@x", out, sizeof(out)), -1);
    ck_assert_int_eq(smtpx__mailbox("Group: ;", out, sizeof(out)), -1);
}
END_TEST

/* ---- reports ------------------------------------------------------------- */

/* A DSN as Postfix writes one (trimmed): a bounce of two recipients and a
 * success for a third, the original returned as message/rfc822. */
static const char POSTFIX_DSN[] =
    "Return-Path: <>\r\n"
    "From: MAILER-DAEMON@postfix.test (Mail Delivery System)\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "To: orders@shop.example\r\n"
    "Auto-Submitted: auto-replied\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
    "\tboundary=\"4F3B5C1E27.1700000000/postfix.test\"\r\n"
    "Content-Transfer-Encoding: 7bit\r\n"
    "Message-Id: <20231114221320.4F3B5C1E27@postfix.test>\r\n"
    "\r\n"
    "This is a MIME-encapsulated message.\r\n"
    "\r\n"
    "--4F3B5C1E27.1700000000/postfix.test\r\n"
    "Content-Description: Notification\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "This is the mail system at host postfix.test.\r\n"
    "\r\n"
    "--4F3B5C1E27.1700000000/postfix.test\r\n"
    "Content-Description: Delivery report\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; postfix.test\r\n"
    "X-Postfix-Queue-ID: 4F3B5C1E27\r\n"
    "X-Postfix-Sender: rfc822; orders@shop.example\r\n"
    "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000 (UTC)\r\n"
    "Original-Envelope-Id: k3x7@shop.example\r\n"
    "\r\n"
    "Final-Recipient: rfc822; nobody@warehouse.example\r\n"
    "Original-Recipient: rfc822;nobody@warehouse.example\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "Remote-MTA: dns; sink.test\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <nobody@warehouse.example>: Recipient\r\n"
    "    address rejected: User unknown\r\n"
    "\r\n"
    "Final-Recipient: rfc822; stock@warehouse.example\r\n"
    "Action: delivered (to mailbox)\r\n"
    "Status: 2.0.0\r\n"
    "\r\n"
    "Final-Recipient: rfc822; later@warehouse.example\r\n"
    "Action: Delayed\r\n"
    "Status: 4.4.1\r\n"
    "\r\n"
    "--4F3B5C1E27.1700000000/postfix.test\r\n"
    "Content-Description: Undelivered Message\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "Return-Path: <orders@shop.example>\r\n"
    "Message-ID: <k3x7@shop.example>\r\n"
    "Subject: order 7\r\n"
    "\r\n"
    "Content-Type: text/plain\r\n"
    "Message-ID: <not-this-one@body>\r\n"
    "\r\n"
    "--4F3B5C1E27.1700000000/postfix.test--\r\n";

/* An MDN as RFC 8098 shows one, with LF line ends and a base64 status. */
static const char RFC_MDN[] =
    "Date: Wed, 20 Sep 1995 00:19:00 (EDT) -0400\n"
    "From: Joe Recipient <Joe_Recipient@example.com>\n"
    "Message-Id: <199509200019.12345@example.com>\n"
    "Subject: Disposition notification\n"
    "To: Jane Sender <Jane_Sender@example.org>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/report; report-type=disposition-notification;\n"
    "    boundary=\"RAA14128.773615765/example.com\"\n"
    "\n"
    "--RAA14128.773615765/example.com\n"
    "\n"
    "The message sent on 1995 Sep 19 was displayed.\n"
    "\n"
    "--RAA14128.773615765/example.com\n"
    "content-type: message/disposition-notification\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    /* Reporting-UA: joes-pc.cs.example.com; Foomail 97.1
     * Original-Recipient: rfc822;Joe_Recipient@example.com
     * Final-Recipient: rfc822;Joe_Recipient@example.com
     * Original-Message-ID: <199509192301.23456@example.org>
     * Disposition: manual-action/MDN-sent-manually; displayed */
    "UmVwb3J0aW5nLVVBOiBqb2VzLXBjLmNzLmV4YW1wbGUuY29tOyBGb29tYWlsIDk3LjEK\n"
    "T3JpZ2luYWwtUmVjaXBpZW50OiByZmM4MjI7Sm9lX1JlY2lwaWVudEBleGFtcGxlLmNv\n"
    "bQpGaW5hbC1SZWNpcGllbnQ6IHJmYzgyMjtKb2VfUmVjaXBpZW50QGV4YW1wbGUuY29t\n"
    "Ck9yaWdpbmFsLU1lc3NhZ2UtSUQ6IDwxOTk1MDkxOTIzMDEuMjM0NTZAZXhhbXBsZS5v\n"
    "cmc+CkRpc3Bvc2l0aW9uOiBtYW51YWwtYWN0aW9uL01ETi1zZW50LW1hbnVhbGx5OyBk\n"
    "aXNwbGF5ZWQK\n"
    "\n"
    "--RAA14128.773615765/example.com--\n";

static smtpx_report *parse(const char *msg, size_t len, int *rc)
{
    smtpx_report *r;

    ck_assert_int_eq(smtpx_report_new(&r, NULL), 0);
    *rc = smtpx_report_feed(r, msg, len);
    if (*rc == 0)
        *rc = smtpx_report_end(r);
    return r;
}

static void check_postfix(const smtpx_report *r)
{
    smtpx_report_rcpt rc;

    ck_assert_int_eq(smtpx_report_kind(r), SMTPX_REPORT_DSN);
    ck_assert_str_eq(smtpx_report_reporter(r), "postfix.test");
    ck_assert_str_eq(smtpx_report_envid(r), "k3x7@shop.example");
    ck_assert_str_eq(smtpx_report_message_id(r), "k3x7@shop.example");
    ck_assert_uint_eq(smtpx_report_rcpt_count(r), 3);
    ck_assert_int_eq(smtpx_report_get_rcpt(r, 0, &rc), 0);
    ck_assert_str_eq(rc.rcpt, "nobody@warehouse.example");
    ck_assert_str_eq(rc.orig_rcpt, "nobody@warehouse.example");
    ck_assert_str_eq(rc.action, "failed");
    ck_assert_str_eq(rc.status, "5.1.1");
    ck_assert_str_eq(rc.diagnostic, "smtp; 550 5.1.1 "
                                    "<nobody@warehouse.example>: Recipient"
                                    "    address rejected: User unknown");
    ck_assert_int_eq(rc.outcome, SMTPX_REPORT_FAILED);
    ck_assert_int_eq(smtpx_report_get_rcpt(r, 1, &rc), 0);
    ck_assert_str_eq(rc.action, "delivered");
    ck_assert_str_eq(rc.orig_rcpt, "");
    ck_assert_int_eq(rc.outcome, SMTPX_REPORT_ACK);
    ck_assert_int_eq(smtpx_report_get_rcpt(r, 2, &rc), 0);
    ck_assert_str_eq(rc.action, "delayed");
    ck_assert_int_eq(rc.outcome, SMTPX_REPORT_NONE);
    ck_assert_int_eq(smtpx_report_get_rcpt(r, 3, &rc),
                     SMTPX_ERR_INVALID_ARGUMENT);
}

static void check_rfc_mdn(const smtpx_report *r)
{
    smtpx_report_rcpt rc;

    ck_assert_int_eq(smtpx_report_kind(r), SMTPX_REPORT_MDN);
    ck_assert_str_eq(smtpx_report_reporter(r), "joes-pc.cs.example.com");
    ck_assert_ptr_null(smtpx_report_envid(r));
    ck_assert_str_eq(smtpx_report_message_id(r),
                     "199509192301.23456@example.org");
    ck_assert_uint_eq(smtpx_report_rcpt_count(r), 1);
    ck_assert_int_eq(smtpx_report_get_rcpt(r, 0, &rc), 0);
    ck_assert_str_eq(rc.rcpt, "Joe_Recipient@example.com");
    ck_assert_str_eq(rc.orig_rcpt, "Joe_Recipient@example.com");
    ck_assert_str_eq(rc.action, "displayed");
    ck_assert_str_eq(rc.status, "");
    ck_assert_int_eq(rc.outcome, SMTPX_REPORT_ACK);
}

START_TEST(test_report_postfix_dsn)
{
    int rc;
    smtpx_report *r = parse(POSTFIX_DSN, sizeof(POSTFIX_DSN) - 1, &rc);

    ck_assert_int_eq(rc, 0);
    check_postfix(r);
    smtpx_report_free(r);
}
END_TEST

START_TEST(test_report_rfc_mdn)
{
    int rc;
    smtpx_report *r = parse(RFC_MDN, sizeof(RFC_MDN) - 1, &rc);

    ck_assert_int_eq(rc, 0);
    check_rfc_mdn(r);
    smtpx_report_free(r);
}
END_TEST

/* Fed in two pieces split at every point, and a byte at a time: the same
 * result (one parser, reset between messages). */
START_TEST(test_report_splits)
{
    static const char *const msgs[] = {POSTFIX_DSN, RFC_MDN};
    smtpx_report *r;
    size_t m, i, len;

    ck_assert_int_eq(smtpx_report_new(&r, NULL), 0);
    for (m = 0; m < 2; m++) {
        len = strlen(msgs[m]);
        for (i = 0; i <= len; i++) {
            ck_assert_int_eq(smtpx_report_reset(r), 0);
            ck_assert_int_eq(smtpx_report_feed(r, msgs[m], i), 0);
            ck_assert_int_eq(smtpx_report_feed(r, msgs[m] + i, len - i), 0);
            ck_assert_int_eq(smtpx_report_end(r), 0);
            if (m == 0)
                check_postfix(r);
            else
                check_rfc_mdn(r);
        }
        ck_assert_int_eq(smtpx_report_reset(r), 0);
        for (i = 0; i < len; i++)
            ck_assert_int_eq(smtpx_report_feed(r, msgs[m] + i, 1), 0);
        ck_assert_int_eq(smtpx_report_end(r), 0);
        if (m == 0)
            check_postfix(r);
        else
            check_rfc_mdn(r);
    }
    smtpx_report_free(r);
}
END_TEST

/* replace - msg with the first "from" made "to", in a static buffer */
static const char *replace(const char *msg, const char *from, const char *to)
{
    static char out[8192];
    const char *at = strstr(msg, from);

    ck_assert_ptr_nonnull(at);
    ck_assert_uint_lt(strlen(msg) + strlen(to), sizeof(out));
    snprintf(out, sizeof(out), "%.*s%s%s", (int)(at - msg), msg, to,
             at + strlen(from));
    return out;
}

static int parse_rc(const char *msg)
{
    int rc;
    smtpx_report *r = parse(msg, strlen(msg), &rc);

    if (rc != 0) {
        ck_assert_int_eq(smtpx_report_kind(r), 0);
        ck_assert_uint_eq(smtpx_report_rcpt_count(r), 0);
        ck_assert_ptr_null(smtpx_report_message_id(r));
    }
    smtpx_report_free(r);
    return rc;
}

START_TEST(test_report_not_reports)
{
    ck_assert_int_eq(parse_rc("Subject: hi\r\n\r\nhello\r\n"), SMTPX_ERR_PROTO);
    ck_assert_int_eq(parse_rc(""), SMTPX_ERR_PROTO);
    ck_assert_int_eq(
        parse_rc(replace(POSTFIX_DSN, "multipart/report", "multipart/mixed")),
        SMTPX_ERR_PROTO);
    ck_assert_int_eq(
        parse_rc(replace(POSTFIX_DSN, "report-type=delivery-status",
                         "report-type=feedback-report")),
        SMTPX_ERR_PROTO);
    /* A DSN whose status part is an MDN's. */
    ck_assert_int_eq(
        parse_rc(replace(POSTFIX_DSN, "Content-Type: message/delivery-status",
                         "Content-Type: "
                         "message/disposition-notification")),
        SMTPX_ERR_PROTO);
    ck_assert_int_eq(
        parse_rc(replace(POSTFIX_DSN, "Reporting-MTA", "Reporting-XYZ")),
        SMTPX_ERR_PROTO);
    ck_assert_int_eq(
        parse_rc(replace(POSTFIX_DSN, "Action: failed", "Result: failed")),
        SMTPX_ERR_PROTO);
    ck_assert_int_eq(parse_rc(replace(POSTFIX_DSN, "Status: 2.0.0", "Status:")),
                     SMTPX_ERR_PROTO);
    ck_assert_int_eq(parse_rc(replace(POSTFIX_DSN,
                                      "Final-Recipient: rfc822; "
                                      "stock",
                                      "Xinal-Recipient: rfc822; stock")),
                     SMTPX_ERR_PROTO);
    ck_assert_int_eq(
        parse_rc(replace(POSTFIX_DSN, "X-Postfix-Queue-ID:", "Not-a-field")),
        SMTPX_ERR_PROTO);
    /* A DSN with no recipient block. */
    ck_assert_int_eq(
        parse_rc("Content-Type: multipart/report; report-type=delivery-status;"
                 " boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-"
                 "status\r\n\r\nReporting-MTA: dns; x\r\n\r\n--b--\r\n"),
        SMTPX_ERR_PROTO);
    /* An MDN without Disposition, or without Final-Recipient, or with a
     * Disposition that has no type. */
    {
        char mdn[2048];
        const char *head =
            "Content-Type: multipart/report; report-type="
            "disposition-notification; boundary=b\r\n\r\n--b\r\n"
            "Content-Type: message/disposition-notification\r\n\r\n";
        snprintf(mdn, sizeof(mdn), "%sFinal-Recipient: rfc822; a@b\r\n--b--",
                 head);
        ck_assert_int_eq(parse_rc(mdn), SMTPX_ERR_PROTO);
        snprintf(mdn, sizeof(mdn),
                 "%sDisposition: automatic-action/MDN-sent-automatically; "
                 "processed\r\n--b--",
                 head);
        ck_assert_int_eq(parse_rc(mdn), SMTPX_ERR_PROTO);
        snprintf(mdn, sizeof(mdn),
                 "%sFinal-Recipient: rfc822; a@b\r\nDisposition: "
                 "automatic-action\r\n--b--",
                 head);
        ck_assert_int_eq(parse_rc(mdn), SMTPX_ERR_PROTO);
        snprintf(mdn, sizeof(mdn),
                 "%sFinal-Recipient: rfc822; a@b\r\nDisposition: "
                 "automatic-action/MDN-sent-automatically; processed\r\n"
                 "--b--",
                 head);
        ck_assert_int_eq(parse_rc(mdn), 0);
    }
}
END_TEST

/* Each disposition and action, and what it counts as. */
START_TEST(test_report_outcomes)
{
    static const struct {
        const char *disposition;
        const char *type, *mods;
        int outcome;
    } mdn[] = {
        {"processed", "processed", "", SMTPX_REPORT_ACK},
        {"Displayed", "displayed", "", SMTPX_REPORT_ACK},
        {"dispatched", "dispatched", "", SMTPX_REPORT_ACK},
        {"deleted", "deleted", "", SMTPX_REPORT_ACK},
        {"processed/error", "processed", "error", SMTPX_REPORT_FAILED},
        {"failed", "failed", "", SMTPX_REPORT_FAILED},
        {"denied", "denied", "", SMTPX_REPORT_NONE},
        {"whatever (new)", "whatever", "", SMTPX_REPORT_NONE},
    };
    static const struct {
        const char *action;
        int outcome;
    } dsn[] = {
        {"delivered", SMTPX_REPORT_ACK}, {"expanded", SMTPX_REPORT_ACK},
        {"failed", SMTPX_REPORT_FAILED}, {"relayed", SMTPX_REPORT_NONE},
        {"delayed", SMTPX_REPORT_NONE},  {"FAILED", SMTPX_REPORT_FAILED},
    };
    char msg[2048];
    size_t i;

    for (i = 0; i < sizeof(mdn) / sizeof(mdn[0]); i++) {
        smtpx_report_rcpt rc;
        smtpx_report *r;
        int st;
        snprintf(msg, sizeof(msg),
                 "Content-Type: multipart/report; report-type="
                 "disposition-notification; boundary=b\r\n\r\n--b\r\n"
                 "Content-Type: message/disposition-notification\r\n\r\n"
                 "Final-Recipient: rfc822; a@b\r\nDisposition: "
                 "automatic-action/MDN-sent-automatically; %s\r\n--b--",
                 mdn[i].disposition);
        r = parse(msg, strlen(msg), &st);
        ck_assert_int_eq(st, 0);
        ck_assert_int_eq(smtpx_report_get_rcpt(r, 0, &rc), 0);
        ck_assert_str_eq(rc.action, mdn[i].type);
        ck_assert_str_eq(rc.status, mdn[i].mods);
        ck_assert_int_eq(rc.outcome, mdn[i].outcome);
        ck_assert_ptr_null(smtpx_report_message_id(r));
        smtpx_report_free(r);
    }
    for (i = 0; i < sizeof(dsn) / sizeof(dsn[0]); i++) {
        smtpx_report_rcpt rc;
        smtpx_report *r;
        int st;
        {
            char act[64];
            snprintf(act, sizeof(act), "Action: %s\r\n", dsn[i].action);
            snprintf(msg, sizeof(msg), "%s",
                     replace(POSTFIX_DSN, "Action: failed\r\n", act));
        }
        r = parse(msg, strlen(msg), &st);
        ck_assert_int_eq(st, 0);
        ck_assert_int_eq(smtpx_report_get_rcpt(r, 0, &rc), 0);
        ck_assert_int_eq(rc.outcome, dsn[i].outcome);
        smtpx_report_free(r);
    }
    ck_assert_str_eq(smtpx_report_outcome_name(SMTPX_REPORT_ACK),
                     "acknowledged");
    ck_assert_str_eq(smtpx_report_outcome_name(SMTPX_REPORT_FAILED), "failed");
    ck_assert_str_eq(smtpx_report_outcome_name(SMTPX_REPORT_NONE), "none");
    ck_assert_str_eq(smtpx_report_outcome_name(7), "?");
    ck_assert_str_eq(smtpx_report_outcome_name(-1), "?");
}
END_TEST

/* Every limit, each just met and just passed. */
START_TEST(test_report_limits)
{
    smtpx_report *r;
    const char *status = strstr(POSTFIX_DSN, "Reporting-MTA");
    size_t status_len =
        (size_t)(strstr(status, "\r\n--4F3B") - status); /* decoded */
    size_t field = strlen("smtp; 550 5.1.1 <nobody@warehouse.example>: "
                          "Recipient    address rejected: User unknown");
    int rc;

    ck_assert_int_eq(smtpx_report_new(&r, NULL), 0);
    /* STATUS_SIZE */
    ck_assert_int_eq(
        smtpx_report_set_limit(r, SMTPX_REPORT_LIMIT_STATUS_SIZE, status_len),
        0);
    ck_assert_int_eq(smtpx_report_feed(r, POSTFIX_DSN, strlen(POSTFIX_DSN)), 0);
    ck_assert_int_eq(smtpx_report_end(r), 0);
    ck_assert_int_eq(smtpx_report_set_limit(r, SMTPX_REPORT_LIMIT_STATUS_SIZE,
                                            status_len - 1),
                     SMTPX_ERR_INVALID_STATE);
    smtpx_report_free(r);
    ck_assert_int_eq(smtpx_report_new(&r, NULL), 0);
    ck_assert_int_eq(smtpx_report_set_limit(r, SMTPX_REPORT_LIMIT_STATUS_SIZE,
                                            status_len - 1),
                     0);
    rc = smtpx_report_feed(r, POSTFIX_DSN, strlen(POSTFIX_DSN));
    if (rc == 0)
        rc = smtpx_report_end(r);
    ck_assert_int_eq(rc, SMTPX_ERR_LIMIT);
    ck_assert_int_eq(smtpx_report_limit_hit(r), SMTPX_REPORT_LIMIT_STATUS_SIZE);
    ck_assert_int_eq(smtpx_report_kind(r), 0);
    /* Sticky, and a reset forgets it but keeps the limits. */
    ck_assert_int_eq(smtpx_report_feed(r, "x", 1), SMTPX_ERR_LIMIT);
    ck_assert_int_eq(smtpx_report_end(r), SMTPX_ERR_LIMIT);
    ck_assert_int_eq(smtpx_report_reset(r), 0);
    ck_assert_int_eq(smtpx_report_limit_hit(r), -1);
    ck_assert_int_eq(smtpx_report_feed(r, POSTFIX_DSN, strlen(POSTFIX_DSN)),
                     SMTPX_ERR_LIMIT);
    smtpx_report_free(r);

    /* RCPTS: three recipient blocks. */
    ck_assert_int_eq(smtpx_report_new(&r, NULL), 0);
    ck_assert_int_eq(smtpx_report_set_limit(r, SMTPX_REPORT_LIMIT_RCPTS, 3), 0);
    ck_assert_int_eq(smtpx_report_feed(r, POSTFIX_DSN, strlen(POSTFIX_DSN)), 0);
    ck_assert_int_eq(smtpx_report_end(r), 0);
    smtpx_report_free(r);
    ck_assert_int_eq(smtpx_report_new(&r, NULL), 0);
    ck_assert_int_eq(smtpx_report_set_limit(r, SMTPX_REPORT_LIMIT_RCPTS, 2), 0);
    ck_assert_int_eq(smtpx_report_feed(r, POSTFIX_DSN, strlen(POSTFIX_DSN)), 0);
    ck_assert_int_eq(smtpx_report_end(r), SMTPX_ERR_LIMIT);
    ck_assert_int_eq(smtpx_report_limit_hit(r), SMTPX_REPORT_LIMIT_RCPTS);
    ck_assert_uint_eq(smtpx_report_rcpt_count(r), 0);
    smtpx_report_free(r);

    /* FIELD: the longest field is the folded Diagnostic-Code. */
    ck_assert_int_eq(smtpx_report_new(&r, NULL), 0);
    ck_assert_int_eq(
        smtpx_report_set_limit(r, SMTPX_REPORT_LIMIT_FIELD, field + 1), 0);
    ck_assert_int_eq(smtpx_report_feed(r, POSTFIX_DSN, strlen(POSTFIX_DSN)), 0);
    ck_assert_int_eq(smtpx_report_end(r), 0);
    smtpx_report_free(r);
    ck_assert_int_eq(smtpx_report_new(&r, NULL), 0);
    ck_assert_int_eq(
        smtpx_report_set_limit(r, SMTPX_REPORT_LIMIT_FIELD, field - 1), 0);
    ck_assert_int_eq(smtpx_report_feed(r, POSTFIX_DSN, strlen(POSTFIX_DSN)), 0);
    ck_assert_int_eq(smtpx_report_end(r), SMTPX_ERR_LIMIT);
    ck_assert_int_eq(smtpx_report_limit_hit(r), SMTPX_REPORT_LIMIT_FIELD);
    smtpx_report_free(r);

    /* Arguments. */
    ck_assert_int_eq(smtpx_report_new(&r, NULL), 0);
    ck_assert_int_eq(smtpx_report_set_limit(r, SMTPX_REPORT_LIMIT_COUNT, 5),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_report_set_limit(r, -1, 5),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_report_set_limit(r, SMTPX_REPORT_LIMIT_RCPTS, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_report_feed(r, NULL, 1), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_report_feed(NULL, "x", 1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_report_end(NULL), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_report_new(NULL, NULL), SMTPX_ERR_INVALID_ARGUMENT);
    smtpx_report_free(r);
    smtpx_report_free(NULL);
}
END_TEST

/* The returned header is looked at up to 64 KiB: a Message-ID within is
 * found, one after is not (and it is no error). */
START_TEST(test_report_returned_header_bound)
{
    static const char head[] =
        "Content-Type: multipart/report; report-type=delivery-status; "
        "boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b\r\n"
        "Action: failed\r\nStatus: 5.0.0\r\n\r\n--b\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n";
    char *msg = malloc(200000);
    size_t n, pad;
    int k;

    for (k = 0; k < 2; k++) {
        smtpx_report *r;
        int rc;
        pad = k == 0 ? 65536 - 200 : 70000;
        n = (size_t)sprintf(msg, "%s", head);
        while (pad >= 80) {
            n += (size_t)sprintf(msg + n, "X-Pad: %070d\r\n", 0);
            pad -= 80;
        }
        n += (size_t)sprintf(msg + n, "Message-ID: <late@x>\r\n\r\n--b--\r\n");
        r = parse(msg, n, &rc);
        ck_assert_int_eq(rc, 0);
        if (k == 0)
            ck_assert_str_eq(smtpx_report_message_id(r), "late@x");
        else
            ck_assert_ptr_null(smtpx_report_message_id(r));
        smtpx_report_free(r);
    }
    free(msg);
}
END_TEST

START_TEST(test_report_alloc_sweep)
{
    long n;
    int ok = 0;

    for (n = 1; n < 5000 && !ok; n++) {
        failmalloc fm;
        smtpx_mem mem;
        smtpx_report *r;
        int rc, m;

        memset(&fm, 0, sizeof(fm));
        fm.fail_at = n;
        mem = failmalloc_mem(&fm);
        rc = smtpx_report_new(&r, &mem);
        if (rc != 0) {
            ck_assert_int_eq(rc, SMTPX_ERR_NOMEM);
            ck_assert_int_eq(fm.live, 0);
            continue;
        }
        ok = 1;
        for (m = 0; m < 2; m++) {
            const char *msg = m == 0 ? POSTFIX_DSN : RFC_MDN;
            smtpx_report_reset(r);
            rc = smtpx_report_feed(r, msg, strlen(msg));
            if (rc == 0)
                rc = smtpx_report_end(r);
            if (rc != 0) {
                ck_assert_int_eq(rc, SMTPX_ERR_NOMEM);
                ok = 0;
                break;
            }
            if (m == 0)
                check_postfix(r);
            else
                check_rfc_mdn(r);
        }
        smtpx_report_free(r);
        ck_assert_int_eq(fm.live, 0);
    }
    ck_assert(ok);
}
END_TEST

/* ---- the MDN builder, read back ------------------------------------------ */

static char qdir[128];

static void qsetup(void)
{
    char cmd[300];

    snprintf(qdir, sizeof(qdir), "/tmp/check-report-%ld", (long)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", qdir);
    ck_assert_int_eq(system(cmd), 0);
}

static void qteardown(void)
{
    char cmd[300];
    int rc;

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", qdir);
    rc = system(cmd);
    (void)rc;
}

/* read_queued - the content of queue message id (after its envelope) */
static char *read_queued(const char *id, size_t *len)
{
    char path[300], *buf, *end;
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "%s/msg/%s", qdir, id);
    fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    buf = malloc(1 << 20);
    n = fread(buf, 1, (1 << 20) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    end = strstr(buf, "\n.\n");
    ck_assert_ptr_nonnull(end);
    *len = n - (size_t)(end + 3 - buf);
    memmove(buf, end + 3, *len + 1);
    return buf;
}

START_TEST(test_mdn_build_parse)
{
    static const char hdr[] = "Message-ID: <order-7@shop.example>\r\n"
                              "Subject: order 7\r\n\r\n";
    smtpx_queue *q;
    smtpx__mdn m;
    smtpx_report *r;
    smtpx_report_rcpt rc;
    char id[32], *msg;
    size_t len;
    int st;

    ck_assert_int_eq(smtpx_queue_open(&q, qdir, NULL), 0);
    memset(&m, 0, sizeof(m));
    m.to = "acks@shop.example";
    m.from = "warehouse@depot.example";
    m.hostname = "depot.example";
    m.orig_msgid = "order-7@shop.example";
    m.rcpt = "stock@depot.example";
    m.orcpt = "rfc822;Stock+2BA@depot.example";
    m.subject = "order 7\r\nBcc: injected";
    m.headers = hdr;
    m.headers_len = sizeof(hdr) - 1;
    m.now = 1700000000;
    ck_assert_int_eq(smtpx__mdn_queue(q, &m, id, sizeof(id)), 0);
    msg = read_queued(id, &len);
    /* Nothing from the original can make a line of its own. */
    ck_assert_ptr_null(strstr(msg, "\nBcc:"));
    ck_assert_ptr_nonnull(strstr(msg, "Subject: Processed: order 7??Bcc"));
    ck_assert_ptr_nonnull(strstr(msg, "\r\nAuto-Submitted: auto-replied\r\n"));
    ck_assert_ptr_nonnull(
        strstr(msg, "\r\nIn-Reply-To: <order-7@shop.example>\r\n"));
    r = parse(msg, len, &st);
    ck_assert_int_eq(st, 0);
    ck_assert_int_eq(smtpx_report_kind(r), SMTPX_REPORT_MDN);
    ck_assert_str_eq(smtpx_report_message_id(r), "order-7@shop.example");
    ck_assert_str_eq(smtpx_report_reporter(r), "depot.example");
    ck_assert_int_eq(smtpx_report_get_rcpt(r, 0, &rc), 0);
    ck_assert_str_eq(rc.rcpt, "stock@depot.example");
    ck_assert_str_eq(rc.orig_rcpt, "Stock+A@depot.example");
    ck_assert_str_eq(rc.action, "processed");
    ck_assert_int_eq(rc.outcome, SMTPX_REPORT_ACK);
    smtpx_report_free(r);
    free(msg);

    /* Without an id, a subject or a header to return, and with 8-bit
     * octets in the header (left out: the part would not be 7bit). */
    m.orig_msgid = NULL;
    m.subject = NULL;
    m.orcpt = NULL;
    m.headers = "Subject: caf\xc3\xa9\r\n\r\n";
    m.headers_len = strlen(m.headers);
    ck_assert_int_eq(smtpx__mdn_queue(q, &m, id, sizeof(id)), 0);
    msg = read_queued(id, &len);
    ck_assert_ptr_null(strstr(msg, "text/rfc822-headers"));
    ck_assert_ptr_nonnull(
        strstr(msg, "Subject: Message disposition notification"));
    r = parse(msg, len, &st);
    ck_assert_int_eq(st, 0);
    ck_assert_ptr_null(smtpx_report_message_id(r));
    ck_assert_int_eq(smtpx_report_get_rcpt(r, 0, &rc), 0);
    ck_assert_str_eq(rc.orig_rcpt, "");
    smtpx_report_free(r);
    free(msg);
    smtpx_queue_free(q);
}
END_TEST

START_TEST(test_make_msgid)
{
    char a[64], b[64];

    ck_assert_int_eq(smtpx__make_msgid(a, sizeof(a), "shop.example"), 39);
    ck_assert_int_eq(smtpx__make_msgid(b, sizeof(b), "shop.example"), 39);
    ck_assert_str_ne(a, b);
    ck_assert_ptr_nonnull(strstr(a, "@shop.example"));
    ck_assert_int_eq(smtpx__make_msgid(a, sizeof(a), NULL), 26);
    ck_assert_ptr_null(strchr(a, '@'));
    ck_assert_int_lt(smtpx__make_msgid(a, 20, NULL), 0);
    ck_assert_int_lt(smtpx__make_msgid(a, 30, "too.long.example"), 0);
}
END_TEST

Suite *suite_report(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("fields");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_fields);
    tcase_add_test(tc, test_header_end);
    tcase_add_test(tc, test_trace_end);
    tcase_add_test(tc, test_msgid_mailbox);
    suite_add_tcase(s, tc);
    tc = tcase_create("parser");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_report_postfix_dsn);
    tcase_add_test(tc, test_report_rfc_mdn);
    tcase_add_test(tc, test_report_splits);
    tcase_add_test(tc, test_report_not_reports);
    tcase_add_test(tc, test_report_outcomes);
    tcase_add_test(tc, test_report_limits);
    tcase_add_test(tc, test_report_returned_header_bound);
    tcase_add_test(tc, test_report_alloc_sweep);
    suite_add_tcase(s, tc);
    tc = tcase_create("mdn");
    tcase_set_timeout(tc, 20);
    tcase_add_checked_fixture(tc, qsetup, qteardown);
    tcase_add_test(tc, test_mdn_build_parse);
    tcase_add_test(tc, test_make_msgid);
    suite_add_tcase(s, tc);
    return s;
}
