/* check_buf - the byte buffer. */
#include <string.h>

#include "base/buf.h"
#include "base/escape.h"
#include "base/mem.h"
#include "harness/failmalloc.h"
#include "harness/guard.h"
#include "suites.h"

START_TEST(test_append_drop)
{
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__buf b = SMTPX__BUF_INIT;
    char big[5000];
    int i;

    ck_assert_int_eq(smtpx__buf_append(&b, mem, "hello", 5), 0);
    ck_assert_uint_eq(smtpx__buf_used(&b), 5);
    smtpx__buf_drop(&b, mem, 2);
    ck_assert_uint_eq(smtpx__buf_used(&b), 3);
    ck_assert(memcmp(smtpx__buf_head(&b), "llo", 3) == 0);
    /* Growth keeps the waiting bytes in order. */
    for (i = 0; i < (int)sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    ck_assert_int_eq(smtpx__buf_append(&b, mem, big, sizeof(big)), 0);
    ck_assert_uint_eq(smtpx__buf_used(&b), 3 + sizeof(big));
    ck_assert(memcmp(smtpx__buf_head(&b), "llo", 3) == 0);
    ck_assert(memcmp(smtpx__buf_head(&b) + 3, big, sizeof(big)) == 0);
    /* Emptying releases the memory: an idle session holds none. */
    smtpx__buf_drop(&b, mem, 100000);
    ck_assert_uint_eq(smtpx__buf_used(&b), 0);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.cap, 0);
}
END_TEST

START_TEST(test_compaction)
{
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__buf b = SMTPX__BUF_INIT;
    char x[200];
    size_t cap;
    int i;

    memset(x, 'x', sizeof(x));
    ck_assert_int_eq(smtpx__buf_append(&b, mem, x, 200), 0);
    cap = b.cap;
    /* A queue that is taken from as fast as it is filled reuses room. */
    for (i = 0; i < 100; i++) {
        smtpx__buf_drop(&b, mem, 150);
        ck_assert_int_eq(smtpx__buf_append(&b, mem, x, 150), 0);
        ck_assert_uint_eq(smtpx__buf_used(&b), 200);
    }
    ck_assert_uint_eq(b.cap, cap);
    smtpx__buf_free(&b, mem);
}
END_TEST

START_TEST(test_nomem)
{
    failmalloc fm = {.fail_at = 1};
    smtpx_mem mem = failmalloc_mem(&fm);
    smtpx__buf b = SMTPX__BUF_INIT;

    ck_assert_int_eq(smtpx__buf_append(&b, &mem, "abc", 3), SMTPX_ERR_NOMEM);
    ck_assert_uint_eq(smtpx__buf_used(&b), 0);
    fm.fail_at = 0;
    ck_assert_int_eq(smtpx__buf_append(&b, &mem, "abc", 3), 0);
    fm.fail_at = fm.count + 1;
    {
        char big[1000] = {0};
        ck_assert_int_eq(smtpx__buf_append(&b, &mem, big, sizeof(big)),
                         SMTPX_ERR_NOMEM);
    }
    /* A failed growth leaves the contents alone. */
    ck_assert_uint_eq(smtpx__buf_used(&b), 3);
    ck_assert(memcmp(smtpx__buf_head(&b), "abc", 3) == 0);
    smtpx__buf_free(&b, &mem);
    ck_assert_int_eq(fm.live, 0);
}
END_TEST

START_TEST(test_escape)
{
    char out[SMTPX__ESCAPE_SIZE(8)], tiny[6];
    const char *in;

    in = guard_copy("a\\b\r\n\x00\xff", 7);
    ck_assert_str_eq(smtpx__escape(out, sizeof(out), in, 7),
                     "a\\\\b\\x0d\\x0a\\x00\\xff");
    in = guard_copy("plain text", 10);
    ck_assert_str_eq(smtpx__escape(out, sizeof(out), in, 10), "plain text");
    /* Cut with "...", never past size - 1, and not in the middle of an
     * escape. */
    ck_assert_str_eq(smtpx__escape(tiny, sizeof(tiny), "abcdefgh", 8), "ab...");
    ck_assert_str_eq(smtpx__escape(tiny, sizeof(tiny), "abcde", 5), "abcde");
    ck_assert_str_eq(smtpx__escape(tiny, sizeof(tiny),
                                   "a\x01"
                                   "bcd",
                                   5),
                     "a...");
    ck_assert_str_eq(smtpx__escape(tiny, sizeof(tiny), "", 0), "");
    ck_assert_str_eq(smtpx__escape(tiny, 4, "\x01", 1), "...");
    ck_assert_str_eq(smtpx__escape(tiny, 4, "ab", 2), "ab");
    /* The public one is the same, and takes NULL without a fault. */
    in = guard_copy("\x1b[2J\x7f", 5);
    ck_assert_str_eq(smtpx_escape(out, sizeof(out), in, 5), "\\x1b[2J\\x7f");
    ck_assert_ptr_null(smtpx_escape(NULL, 10, "a", 1));
    tiny[0] = 'z';
    ck_assert_str_eq(smtpx_escape(tiny, sizeof(tiny), NULL, 3), "");
}
END_TEST

Suite *suite_buf(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("buf");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_append_drop);
    tcase_add_test(tc, test_compaction);
    tcase_add_test(tc, test_nomem);
    tcase_add_test(tc, test_escape);
    suite_add_tcase(s, tc);
    return s;
}
