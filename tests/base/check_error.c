/* check_error - the error table. */
#include <string.h>

#include <libsmtpx/smtpx.h>

#include "suites.h"

START_TEST(test_names_and_texts)
{
    ck_assert_str_eq(smtpx_err_name(SMTPX_ERR_NOMEM), "SMTPX_ERR_NOMEM");
    ck_assert_str_eq(smtpx_strerror(SMTPX_ERR_NOMEM), "out of memory");
    ck_assert_str_eq(smtpx_err_name(0), "SMTPX_OK");
    ck_assert_str_eq(smtpx_strerror(0), "success");
    ck_assert_str_eq(smtpx_err_name(-12345), "SMTPX_ERR_UNKNOWN");
    ck_assert_str_eq(smtpx_strerror(12), "unknown error");
}
END_TEST

START_TEST(test_every_code_named)
{
    /* Every code in the table has its own name and text. */
#define CHECK_CODE(name, value, text)                                          \
    ck_assert_str_eq(smtpx_err_name(value), "SMTPX_ERR_" #name);               \
    ck_assert_str_eq(smtpx_strerror(value), text);
    SMTPX_ERRNO_MAP(CHECK_CODE)
#undef CHECK_CODE
}
END_TEST

START_TEST(test_fatal)
{
    ck_assert_int_eq(smtpx_is_fatal(SMTPX_ERR_NOMEM), 1);
    ck_assert_int_eq(smtpx_is_fatal(SMTPX_ERR_CALLBACK_FAILURE), 1);
    ck_assert_int_eq(smtpx_is_fatal(SMTPX_ERR_PAUSE), 0);
    ck_assert_int_eq(smtpx_is_fatal(SMTPX_ERR_EOF), 0);
    ck_assert_int_eq(smtpx_is_fatal(0), 0);
}
END_TEST

START_TEST(test_version)
{
    ck_assert_uint_eq(smtpx_version_num(), SMTPX_VERSION_NUM);
    ck_assert_str_eq(smtpx_version_string(), SMTPX_VERSION);
}
END_TEST

Suite *suite_error(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("table");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_names_and_texts);
    tcase_add_test(tc, test_every_code_named);
    tcase_add_test(tc, test_fatal);
    tcase_add_test(tc, test_version);
    suite_add_tcase(s, tc);
    return s;
}
