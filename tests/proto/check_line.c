/*
 * check_line - the line framer both cores use: lines at every split, the
 * limit counted with the line end, over-long lines skipped without being
 * buffered, input never read past its end, memory released.
 */
#include <string.h>

#include "base/mem.h"
#include "harness/failmalloc.h"
#include "harness/guard.h"
#include "proto/line.h"
#include "suites.h"

/* frame - run the framer over in[0..len) cut at split (0: whole), each
 * piece from a guard page; the lines found are written to out as
 * "line|", over-long ones as "LONG|", "OVER|" when announced */
static void frame(const char *in, size_t len, size_t split, size_t max,
                  char *out, size_t outsize)
{
    smtpx__line l;
    const smtpx_mem *mem = smtpx__mem_default();
    size_t cuts[3] = {0, split ? split : len, len}, k;

    memset(&l, 0, sizeof(l));
    out[0] = '\0';
    for (k = 0; k < 2; k++) {
        size_t off = cuts[k], end = cuts[k + 1];

        while (off < end) {
            const char *piece = guard_copy(in + off, end - off);
            const uint8_t *line;
            size_t used, n;
            int rc = smtpx__line_next(&l, mem, (const uint8_t *)piece,
                                      end - off, max, &used, &line, &n);

            ck_assert_int_ge(rc, 0);
            ck_assert_uint_gt(used, 0);
            ck_assert_uint_le(used, end - off);
            if (rc == SMTPX__LINE_OK) {
                ck_assert_uint_lt(strlen(out) + n + 2, outsize);
                strncat(out, (const char *)line, n);
                strcat(out, "|");
                smtpx__line_release(&l, mem);
                ck_assert_uint_eq(smtpx__line_pending(&l), 0);
            } else if (rc == SMTPX__LINE_LONG) {
                strcat(out, "LONG|");
            } else if (rc == SMTPX__LINE_OVER) {
                strcat(out, "OVER|");
            }
            /* Never more than max octets buffered. */
            ck_assert_uint_le(smtpx__line_pending(&l), max);
            off += used;
        }
    }
    smtpx__line_reset(&l, mem);
}

START_TEST(test_lines_every_split)
{
    static const char in[] = "EHLO a\r\nMAIL FROM:<x>\nQUIT\r\npartial";
    size_t len = sizeof(in) - 1, split;
    char out[256];

    for (split = 0; split < len; split++) {
        frame(in, len, split, 64, out, sizeof(out));
        /* The CR stays: what a bare LF means is the caller's rule. */
        ck_assert_str_eq(out, "EHLO a\r|MAIL FROM:<x>|QUIT\r|");
    }
}
END_TEST

START_TEST(test_limit_counts_the_line_end)
{
    char in[40], out[256];
    size_t split;

    /* max 10: nine octets and LF fit, ten and LF do not. */
    memcpy(in, "123456789\nabcdefghij\nok\n", 24);
    for (split = 0; split < 24; split++) {
        frame(in, 24, split, 10, out, sizeof(out));
        /* "abcdefghij\n" is eleven octets: its ten may be buffered
         * (the limit holds them), and the LF makes it too long. */
        ck_assert_str_eq(out, "123456789|LONG|ok|");
    }
    /* A line that goes over before its end is announced at once, and
     * its rest is skipped however it comes. */
    memcpy(in, "0123456789012345678901234\nx\n", 28);
    for (split = 0; split < 28; split++) {
        frame(in, 28, split, 10, out, sizeof(out));
        /* OVER when a piece without the LF already passes the limit:
         * the first piece, cut after more than ten octets. */
        ck_assert_str_eq(out, split > 10 && split <= 25 ? "OVER|LONG|x|"
                                                        : "LONG|x|");
    }
}
END_TEST

START_TEST(test_head)
{
    smtpx__line l;
    const smtpx_mem *mem = smtpx__mem_default();
    uint8_t head[5];
    const uint8_t *line;
    size_t used, n;

    memset(&l, 0, sizeof(l));
    ck_assert_uint_eq(smtpx__line_head(&l, (const uint8_t *)"AU", 2, head, 5),
                      2);
    ck_assert_int_eq(smtpx__line_next(&l, mem, (const uint8_t *)"AU", 2, 100,
                                      &used, &line, &n),
                     SMTPX__LINE_MORE);
    ck_assert_uint_eq(
        smtpx__line_head(&l, (const uint8_t *)"TH PLAIN", 8, head, 5), 5);
    ck_assert(memcmp(head, "AUTH ", 5) == 0);
    ck_assert_uint_eq(smtpx__line_head(&l, NULL, 0, head, 1), 1);
    ck_assert_int_eq(head[0], 'A');
    smtpx__line_reset(&l, mem);
    ck_assert_uint_eq(smtpx__line_pending(&l), 0);
}
END_TEST

START_TEST(test_nomem)
{
    failmalloc fm = {.fail_at = 0};
    smtpx_mem mem = failmalloc_mem(&fm);
    smtpx__line l;
    const uint8_t *line;
    size_t used, n;

    memset(&l, 0, sizeof(l));
    fm.fail_at = 1;
    ck_assert_int_eq(smtpx__line_next(&l, &mem, (const uint8_t *)"ab", 2, 100,
                                      &used, &line, &n),
                     SMTPX_ERR_NOMEM);
    fm.fail_at = 0;
    ck_assert_int_eq(smtpx__line_next(&l, &mem, (const uint8_t *)"ab", 2, 100,
                                      &used, &line, &n),
                     SMTPX__LINE_MORE);
    {
        /* Growing the buffer fails. */
        static uint8_t more[5000];
        memset(more, 'x', sizeof(more));
        fm.fail_at = fm.count + 1;
        ck_assert_int_eq(smtpx__line_next(&l, &mem, more, sizeof(more), 10000,
                                          &used, &line, &n),
                         SMTPX_ERR_NOMEM);
    }
    smtpx__line_reset(&l, &mem);
    ck_assert_int_eq(fm.live, 0);
}
END_TEST

Suite *suite_line(void)
{
    Suite *s = suite_create("line");
    TCase *tc = tcase_create("line");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_lines_every_split);
    tcase_add_test(tc, test_limit_counts_the_line_end);
    tcase_add_test(tc, test_head);
    tcase_add_test(tc, test_nomem);
    suite_add_tcase(s, tc);
    return s;
}
