/* check_reply - reply formatting. */
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "proto/reply.h"
#include "suites.h"

static char out[4096];

static const char *fmt(int code, const uint16_t *enh, const char *text,
                       size_t max)
{
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__buf b = SMTPX__BUF_INIT;
    size_t n;

    ck_assert_int_eq(smtpx__reply_append(&b, mem, code, enh, text, max), 0);
    n = smtpx__buf_used(&b);
    ck_assert_uint_lt(n, sizeof(out));
    memcpy(out, smtpx__buf_head(&b), n);
    out[n] = '\0';
    smtpx__buf_free(&b, mem);
    return out;
}

START_TEST(test_single_and_multi)
{
    uint16_t e[3] = {2, 1, 0};

    ck_assert_str_eq(fmt(250, NULL, "Ok", 512), "250 Ok\r\n");
    ck_assert_str_eq(fmt(250, e, "Ok", 512), "250 2.1.0 Ok\r\n");
    ck_assert_str_eq(fmt(250, NULL, "a\nb\nc", 512),
                     "250-a\r\n250-b\r\n250 c\r\n");
    ck_assert_str_eq(fmt(550, (uint16_t[3]){5, 1, 1}, "x\ny", 512),
                     "550-5.1.1 x\r\n550 5.1.1 y\r\n");
    /* A trailing newline does not add an empty line. */
    ck_assert_str_eq(fmt(250, NULL, "a\n", 512), "250 a\r\n");
    ck_assert_str_eq(fmt(221, NULL, NULL, 512), "221 Bye\r\n");
    ck_assert_str_eq(fmt(354, NULL, "", 512),
                     "354 End data with <CR><LF>.<CR><LF>\r\n");
}
END_TEST

START_TEST(test_sanitise)
{
    /* Application text cannot inject protocol lines. */
    ck_assert_str_eq(fmt(550, NULL, "no\rway\x01\x7f", 512),
                     "550 no way  \r\n");
    ck_assert_str_eq(fmt(550, NULL, "caf\xc3\xa9", 512), "550 caf??\r\n");
}
END_TEST

START_TEST(test_cut)
{
    char text[600];
    const char *r;

    memset(text, 'x', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    r = fmt(250, NULL, text, 512);
    ck_assert_uint_eq(strlen(r), 512);
    ck_assert(memcmp(r + 510, "\r\n", 2) == 0);
    r = fmt(250, (uint16_t[3]){2, 0, 0}, text, 64);
    ck_assert_uint_eq(strlen(r), 64);
}
END_TEST

START_TEST(test_fix_enh)
{
    uint16_t e[3] = {2, 1, 5};

    smtpx__reply_fix_enh(550, e);
    ck_assert_uint_eq(e[0], 5);
    ck_assert_uint_eq(e[1], 0);
    ck_assert_uint_eq(e[2], 0);
    e[0] = 4;
    e[1] = 1000;
    e[2] = 1;
    smtpx__reply_fix_enh(451, e);
    ck_assert_uint_eq(e[1], 0);
    e[0] = 4;
    e[1] = 7;
    e[2] = 1;
    smtpx__reply_fix_enh(451, e);
    ck_assert_uint_eq(e[1], 7);
    ck_assert_uint_eq(e[2], 1);
    e[0] = 2;
    smtpx__reply_fix_enh(354, e);
    ck_assert_uint_eq(e[0] | e[1] | e[2], 0);
    ck_assert_str_eq(smtpx__reply_text(421),
                     "Service not available, closing transmission channel");
    ck_assert_str_eq(smtpx__reply_text(299), "Ok");
}
END_TEST

START_TEST(test_standard_texts)
{
    /* Every code has a standard text, the documented ones their own. */
    static const struct {
        int code;
        const char *text;
    } t[] = {{211, "System status"},
             {214, "Help"},
             {220, "Service ready"},
             {221, "Bye"},
             {250, "Ok"},
             {251, "User not local; will forward"},
             {252, "Cannot VRFY user, but will accept message and attempt "
                   "delivery"},
             {354, "End data with <CR><LF>.<CR><LF>"},
             {450, "Requested mail action not taken: mailbox unavailable"},
             {451, "Requested action aborted: local error in processing"},
             {452, "Requested action not taken: insufficient system storage"},
             {455, "Server unable to accommodate parameters"},
             {500, "Syntax error, command unrecognized"},
             {501, "Syntax error in parameters or arguments"},
             {502, "Command not implemented"},
             {503, "Bad sequence of commands"},
             {504, "Command parameter not implemented"},
             {550, "Requested action not taken: mailbox unavailable"},
             {551, "User not local"},
             {552, "Requested mail action aborted: exceeded storage "
                   "allocation"},
             {553, "Requested action not taken: mailbox name not allowed"},
             {554, "Transaction failed"},
             {555, "MAIL FROM/RCPT TO parameters not recognized or not "
                   "implemented"},
             {334, "Go ahead"},
             {459, "Temporary failure"},
             {599, "Failure"}};
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        ck_assert_str_eq(smtpx__reply_text(t[i].code), t[i].text);
    /* NULL or "" text: the standard text goes out. */
    ck_assert_str_eq(fmt(554, NULL, NULL, 512), "554 Transaction failed\r\n");
}
END_TEST

START_TEST(test_parse_controls)
{
    /* A hostile server's control characters never reach the application:
     * a bare CR, a NUL (which would cut the text) and an escape sequence
     * become spaces; HT and 8-bit octets are kept (found by fuzz_reply). */
    static const char l1[] = "250-a\rb\tc";
    static const char l2[] = "250 2.0.0 d\0e\x1b[31m\x7f\xc3\xa9";
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__rparse p;
    smtpx_reply r;

    memset(&p, 0, sizeof(p));
    ck_assert_int_eq(smtpx__rparse_line(&p, mem, l1, sizeof(l1) - 1, &r), 0);
    ck_assert_int_eq(smtpx__rparse_line(&p, mem, l2, sizeof(l2) - 1, &r), 1);
    ck_assert_int_eq(r.code, 250);
    ck_assert_str_eq(r.text, "a b\tc\nd e [31m \xc3\xa9");
    /* RFC 3463 has no class 3: a 354's text is all text (found by
     * fuzz_reply: "3.0.0 " was taken as an enhanced code). */
    ck_assert_int_eq(smtpx__rparse_line(&p, mem, "354 3.0.0 go", 12, &r), 1);
    ck_assert_int_eq(r.enh[0] | r.enh[1] | r.enh[2], 0);
    ck_assert_str_eq(r.text, "3.0.0 go");
    smtpx__rparse_free(&p, mem);
}
END_TEST

Suite *suite_reply(void)
{
    Suite *s = suite_create("reply");
    TCase *tc = tcase_create("format");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_single_and_multi);
    tcase_add_test(tc, test_sanitise);
    tcase_add_test(tc, test_cut);
    tcase_add_test(tc, test_fix_enh);
    tcase_add_test(tc, test_parse_controls);
    tcase_add_test(tc, test_standard_texts);
    suite_add_tcase(s, tc);
    return s;
}
