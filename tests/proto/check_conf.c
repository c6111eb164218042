/* check_conf - the configuration object. */
#include <libsmtpx/smtpx.h>

#include "harness/failmalloc.h"
#include "suites.h"

START_TEST(test_defaults)
{
    smtpx_config *cfg;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, NULL), 0);
    ck_assert_str_eq(smtpx_config_get_hostname(cfg), "localhost");
    ck_assert_uint_eq(smtpx_config_get_limit(cfg, SMTPX_LIMIT_LINE), 2048);
    ck_assert_uint_eq(smtpx_config_get_limit(cfg, SMTPX_LIMIT_TEXT_LINE), 1000);
    ck_assert_uint_eq(smtpx_config_get_limit(cfg, SMTPX_LIMIT_REPLY_LINE), 512);
    ck_assert_uint_eq(smtpx_config_get_limit(cfg, SMTPX_LIMIT_RCPTS), 1000);
    ck_assert_uint_eq(smtpx_config_get_limit(cfg, SMTPX_LIMIT_MSG_SIZE),
                      10240000);
    ck_assert_uint_eq(smtpx_config_get_limit(cfg, SMTPX_LIMIT_ERRORS), 20);
    ck_assert_uint_eq(smtpx_config_get_timeout(cfg, SMTPX_TIMEOUT_COMMAND),
                      300000);
    ck_assert_uint_eq(smtpx_config_get_extensions(cfg), SMTPX_EXT_DEFAULT);
    ck_assert_int_eq(smtpx_config_get_policy(cfg, SMTPX_POLICY_BARE_LF),
                     SMTPX_BARE_LF_NORMALIZE);
    ck_assert_int_eq(smtpx_config_get_policy(cfg, SMTPX_POLICY_VRFY), 252);
    ck_assert_int_eq(smtpx_config_get_policy(cfg, SMTPX_POLICY_EXPN), 502);
    ck_assert_int_eq(smtpx_config_get_role(cfg), SMTPX_ROLE_SERVER);
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_setters_and_freeze)
{
    smtpx_config *cfg;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, NULL), 0);
    ck_assert_int_eq(smtpx_config_set_hostname(cfg, "mx.example.org"), 0);
    ck_assert_str_eq(smtpx_config_get_hostname(cfg), "mx.example.org");
    ck_assert_int_eq(smtpx_config_set_hostname(cfg, "bad name"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_hostname(cfg, ""),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_hostname(cfg, "x\r\n250 hi"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_limit(cfg, SMTPX_LIMIT_LINE, 10),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_limit(cfg, SMTPX_LIMIT_RCPTS, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_limit(cfg, (smtpx_limit)99, 1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_limit(cfg, SMTPX_LIMIT_RCPTS, 50), 0);
    ck_assert_uint_eq(smtpx_config_get_limit(cfg, SMTPX_LIMIT_RCPTS), 50);
    ck_assert_int_eq(smtpx_config_set_extensions(cfg, SMTPX_EXT_BINARYMIME),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_extensions(cfg, 1u << 30),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_policy(cfg, SMTPX_POLICY_VRFY, 250),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_timeout(cfg, SMTPX_TIMEOUT_COMMAND, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_timeout(cfg, SMTPX_TIMEOUT_SESSION, 0),
                     0);
    ck_assert_int_eq(smtpx_config_is_frozen(cfg), 0);
    ck_assert_int_eq(smtpx_config_freeze(cfg), 0);
    ck_assert_int_eq(smtpx_config_freeze(cfg), 0);
    ck_assert_int_eq(smtpx_config_is_frozen(cfg), 1);
    /* A frozen config is read-only. */
    ck_assert_int_eq(smtpx_config_set_hostname(cfg, "other"),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_config_set_limit(cfg, SMTPX_LIMIT_RCPTS, 5),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_config_set_extensions(cfg, 0),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_config_set_policy(cfg, SMTPX_POLICY_VRFY, 502),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_config_set_log(cfg, NULL, SMTPX_LOG_INFO, NULL),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_uint_eq(smtpx_config_get_limit(cfg, SMTPX_LIMIT_RCPTS), 50);
    smtpx_config_free(cfg);
    smtpx_config_free(NULL);
}
END_TEST

START_TEST(test_bad_arguments)
{
    smtpx_config *cfg = (smtpx_config *)1;
    smtpx_mem half = {NULL, NULL, NULL, NULL, NULL};

    ck_assert_int_eq(smtpx_config_new(NULL, SMTPX_ROLE_SERVER, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_new(&cfg, (smtpx_role)7, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(cfg);
    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, &half),
                     SMTPX_ERR_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_nomem)
{
    failmalloc fm = {0, 0, 0, 0};
    smtpx_mem mem = failmalloc_mem(&fm);
    smtpx_config *cfg;
    long n;

    /* Every allocation of config_new and set_hostname may fail. */
    for (n = 1; n < 10; n++) {
        fm.fail_at = n;
        fm.count = 0;
        int rc = smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, &mem);
        if (rc == 0) {
            rc = smtpx_config_set_hostname(cfg, "mx.example");
            ck_assert(rc == 0 || rc == SMTPX_ERR_NOMEM);
            smtpx_config_free(cfg);
        } else {
            ck_assert_int_eq(rc, SMTPX_ERR_NOMEM);
        }
        ck_assert_int_eq(fm.live, 0);
    }
}
END_TEST

Suite *suite_conf(void)
{
    Suite *s = suite_create("conf");
    TCase *tc = tcase_create("config");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_setters_and_freeze);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_nomem);
    suite_add_tcase(s, tc);
    return s;
}
