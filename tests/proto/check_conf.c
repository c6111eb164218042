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

START_TEST(test_every_range)
{
    /* Each limit's range (both edges), timeouts, policies, the log level,
     * SASL and extension masks, and the NULL and frozen cases of every
     * setter and getter. */
    static const struct {
        smtpx_limit which;
        uint64_t low_bad, low_ok, high_ok, high_bad;
    } r[] = {
        {SMTPX_LIMIT_LINE, 63, 64, 1u << 24, (1u << 24) + 1},
        {SMTPX_LIMIT_AUTH_LINE, 63, 64, 1u << 24, (1u << 24) + 1},
        {SMTPX_LIMIT_TEXT_LINE, 63, 64, UINT64_MAX, 0},
        {SMTPX_LIMIT_REPLY_LINE, 63, 64, 65536, 65537},
        {SMTPX_LIMIT_OUTBUF, 1023, 1024, (uint64_t)1 << 32,
         ((uint64_t)1 << 32) + 1},
        {SMTPX_LIMIT_HOLDBUF, 1023, 1024, (uint64_t)1 << 32,
         ((uint64_t)1 << 32) + 1},
        {SMTPX_LIMIT_ADDR, 15, 16, 65536, 65537},
        {SMTPX_LIMIT_RCPTS, 0, 1, 1u << 20, (1u << 20) + 1},
    };
    smtpx_config *cfg;
    size_t i;
    int k;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, NULL), 0);
    for (i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        ck_assert_int_eq(smtpx_config_set_limit(cfg, r[i].which, r[i].low_bad),
                         SMTPX_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(smtpx_config_set_limit(cfg, r[i].which, r[i].low_ok),
                         0);
        ck_assert_uint_eq(smtpx_config_get_limit(cfg, r[i].which), r[i].low_ok);
        ck_assert_int_eq(smtpx_config_set_limit(cfg, r[i].which, r[i].high_ok),
                         0);
        if (r[i].high_bad != 0)
            ck_assert_int_eq(
                smtpx_config_set_limit(cfg, r[i].which, r[i].high_bad),
                SMTPX_ERR_INVALID_ARGUMENT);
    }
    /* TEXT_LINE 0 means no limit; the counters take any value. */
    ck_assert_int_eq(smtpx_config_set_limit(cfg, SMTPX_LIMIT_TEXT_LINE, 0), 0);
    ck_assert_int_eq(smtpx_config_set_limit(cfg, SMTPX_LIMIT_MSG_SIZE, 0), 0);
    ck_assert_int_eq(smtpx_config_set_limit(cfg, SMTPX_LIMIT_ERRORS, 0), 0);
    ck_assert_int_eq(smtpx_config_set_limit(cfg, SMTPX_LIMIT_JUNK, 7), 0);
    ck_assert_int_eq(smtpx_config_set_limit(cfg, SMTPX_LIMIT_MSGS, 0), 0);
    ck_assert_int_eq(smtpx_config_set_limit(cfg, SMTPX_LIMIT_AUTH_FAILURES, 1),
                     0);
    ck_assert_int_eq(
        smtpx_config_set_limit(cfg, (smtpx_limit)SMTPX_LIMIT_COUNT, 1),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(
        smtpx_config_get_limit(cfg, (smtpx_limit)SMTPX_LIMIT_COUNT), 0);
    ck_assert_uint_eq(smtpx_config_get_limit(NULL, SMTPX_LIMIT_LINE), 0);
    ck_assert_int_eq(smtpx_config_set_limit(NULL, SMTPX_LIMIT_LINE, 1000),
                     SMTPX_ERR_INVALID_ARGUMENT);

    for (k = 0; k < SMTPX_TIMEOUT_COUNT; k++) {
        ck_assert_int_eq(
            smtpx_config_set_timeout(cfg, (smtpx_timeout)k, 0),
            k == SMTPX_TIMEOUT_SESSION ? 0 : SMTPX_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(smtpx_config_set_timeout(cfg, (smtpx_timeout)k, 1234),
                         0);
        ck_assert_uint_eq(smtpx_config_get_timeout(cfg, (smtpx_timeout)k),
                          1234);
    }
    ck_assert_int_eq(
        smtpx_config_set_timeout(cfg, (smtpx_timeout)SMTPX_TIMEOUT_COUNT, 1),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(
        smtpx_config_get_timeout(cfg, (smtpx_timeout)SMTPX_TIMEOUT_COUNT), 0);
    ck_assert_uint_eq(smtpx_config_get_timeout(NULL, SMTPX_TIMEOUT_DATA), 0);

    ck_assert_int_eq(smtpx_config_set_policy(cfg, SMTPX_POLICY_VRFY, 252), 0);
    ck_assert_int_eq(smtpx_config_set_policy(cfg, SMTPX_POLICY_EXPN, 502), 0);
    ck_assert_int_eq(smtpx_config_set_policy(cfg, SMTPX_POLICY_EXPN, 250),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_policy(cfg, SMTPX_POLICY_REQUIRE_HELO, 2),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_policy(cfg, SMTPX_POLICY_BARE_LF, 9),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(
        smtpx_config_set_policy(cfg, (smtpx_policy)SMTPX_POLICY_COUNT, 0),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_policy(NULL, SMTPX_POLICY_VRFY, 252),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_get_policy(cfg, SMTPX_POLICY_EXPN), 502);
    ck_assert_int_eq(
        smtpx_config_get_policy(cfg, (smtpx_policy)SMTPX_POLICY_COUNT), -1);
    ck_assert_int_eq(smtpx_config_get_policy(NULL, SMTPX_POLICY_VRFY), -1);

    ck_assert_int_eq(smtpx_config_set_log(cfg, NULL, SMTPX_LOG_ERROR - 1, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_log(cfg, NULL, SMTPX_LOG_DEBUG + 1, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_log(NULL, NULL, SMTPX_LOG_INFO, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_sasl(cfg, SMTPX_SASL_ALL + 1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_sasl(NULL, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(smtpx_config_get_sasl(NULL), 0);
    ck_assert_int_eq(smtpx_config_set_extensions(cfg, SMTPX_EXT_BINARYMIME),
                     SMTPX_ERR_INVALID_ARGUMENT); /* without CHUNKING */
    ck_assert_int_eq(smtpx_config_set_extensions(NULL, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_random(NULL, NULL, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_freeze(NULL), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_is_frozen(NULL), 0);

    /* Frozen: every setter says INVALID_STATE for a valid value. */
    ck_assert_int_eq(smtpx_config_freeze(cfg), 0);
    ck_assert_int_eq(smtpx_config_freeze(cfg), 0); /* twice is fine */
    ck_assert_int_eq(smtpx_config_set_timeout(cfg, SMTPX_TIMEOUT_DATA, 5),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_config_set_extensions(cfg, SMTPX_EXT_DEFAULT),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_config_set_policy(cfg, SMTPX_POLICY_VRFY, 502),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_config_set_log(cfg, NULL, SMTPX_LOG_INFO, NULL),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_config_set_random(cfg, NULL, NULL),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_config_set_sasl(cfg, SMTPX_SASL_PLAIN),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_config_set_limit(cfg, SMTPX_LIMIT_MSGS, 3),
                     SMTPX_ERR_INVALID_STATE);
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_nomem)
{
    failmalloc fm = {.fail_at = 0};
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

/* The maps of <libsmtpx/conf.h> are the one source of every name, default
 * and range: walk them through the public functions. */
START_TEST(test_limit_map)
{
    static const struct {
        const char *name;
        int id;
        uint64_t dflt, min, max;
    } map[] = {
#define T_LIMIT(name, id, dflt, min, max) {#name, id, dflt, min, max},
        SMTPX_LIMIT_MAP(T_LIMIT)
#undef T_LIMIT
    };
    smtpx_config *cfg;
    size_t i;

    ck_assert_int_eq(sizeof(map) / sizeof(map[0]), SMTPX_LIMIT_COUNT);
    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, NULL), 0);
    for (i = 0; i < SMTPX_LIMIT_COUNT; i++) {
        smtpx_limit w = (smtpx_limit)map[i].id;
        ck_assert_int_eq(map[i].id, (int)i);
        ck_assert_str_eq(smtpx_limit_name(w), map[i].name);
        ck_assert_uint_eq(smtpx_config_get_limit(cfg, w), map[i].dflt);
        /* The edges of each range: in, and one past. */
        if (w != SMTPX_LIMIT_TEXT_LINE) {
            ck_assert_int_eq(smtpx_config_set_limit(cfg, w, map[i].min), 0);
            if (map[i].min > 0)
                ck_assert_int_eq(smtpx_config_set_limit(cfg, w, map[i].min - 1),
                                 SMTPX_ERR_INVALID_ARGUMENT);
        }
        if (map[i].max != 0) {
            ck_assert_int_eq(smtpx_config_set_limit(cfg, w, map[i].max), 0);
            ck_assert_int_eq(smtpx_config_set_limit(cfg, w, map[i].max + 1),
                             SMTPX_ERR_INVALID_ARGUMENT);
        } else {
            ck_assert_int_eq(smtpx_config_set_limit(cfg, w, UINT64_MAX), 0);
        }
    }
    /* TEXT_LINE: 0 (none) or at least 64. */
    ck_assert_int_eq(smtpx_config_set_limit(cfg, SMTPX_LIMIT_TEXT_LINE, 0), 0);
    ck_assert_int_eq(smtpx_config_set_limit(cfg, SMTPX_LIMIT_TEXT_LINE, 63),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_config_set_limit(cfg, SMTPX_LIMIT_TEXT_LINE, 64), 0);
    ck_assert_ptr_null(smtpx_limit_name((smtpx_limit)SMTPX_LIMIT_COUNT));
    ck_assert_ptr_null(smtpx_limit_name((smtpx_limit)-1));
    ck_assert_int_eq(
        smtpx_config_set_limit(cfg, (smtpx_limit)SMTPX_LIMIT_COUNT, 1),
        SMTPX_ERR_INVALID_ARGUMENT);
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_timeout_and_policy_maps)
{
    static const struct {
        const char *name;
        int id;
        uint32_t dflt;
    } tmap[] = {
#define T_TIMEOUT(name, id, dflt) {#name, id, dflt},
        SMTPX_TIMEOUT_MAP(T_TIMEOUT)
#undef T_TIMEOUT
    };
    static const struct {
        const char *name;
        int id, dflt, a, b;
    } pmap[] = {
#define T_POLICY(name, id, dflt, a, b) {#name, id, dflt, a, b},
        SMTPX_POLICY_MAP(T_POLICY)
#undef T_POLICY
    };
    smtpx_config *cfg;
    size_t i;

    ck_assert_int_eq(sizeof(tmap) / sizeof(tmap[0]), SMTPX_TIMEOUT_COUNT);
    ck_assert_int_eq(sizeof(pmap) / sizeof(pmap[0]), SMTPX_POLICY_COUNT);
    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL), 0);
    for (i = 0; i < SMTPX_TIMEOUT_COUNT; i++) {
        ck_assert_int_eq(tmap[i].id, (int)i);
        ck_assert_str_eq(smtpx_timeout_name((smtpx_timeout)i), tmap[i].name);
        ck_assert_uint_eq(smtpx_config_get_timeout(cfg, (smtpx_timeout)i),
                          tmap[i].dflt);
    }
    ck_assert_ptr_null(smtpx_timeout_name((smtpx_timeout)SMTPX_TIMEOUT_COUNT));
    for (i = 0; i < SMTPX_POLICY_COUNT; i++) {
        smtpx_policy w = (smtpx_policy)i;
        ck_assert_int_eq(pmap[i].id, (int)i);
        ck_assert_str_eq(smtpx_policy_name(w), pmap[i].name);
        ck_assert_int_eq(smtpx_config_get_policy(cfg, w), pmap[i].dflt);
        ck_assert_int_eq(smtpx_config_set_policy(cfg, w, pmap[i].a), 0);
        ck_assert_int_eq(smtpx_config_set_policy(cfg, w, pmap[i].b), 0);
        ck_assert_int_eq(smtpx_config_set_policy(cfg, w, pmap[i].b + 1),
                         SMTPX_ERR_INVALID_ARGUMENT);
    }
    ck_assert_ptr_null(smtpx_policy_name((smtpx_policy)SMTPX_POLICY_COUNT));
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_ext_map)
{
    unsigned bit, all = 0;

    /* Every bit has a keyword that maps back to it, in any case. */
    for (bit = 1; bit != 0 && bit <= SMTPX_EXT_ALL; bit <<= 1) {
        const char *kw = smtpx_ext_name(bit);
        char lower[32];
        size_t i;

        ck_assert_ptr_nonnull(kw);
        ck_assert_uint_eq(smtpx_ext_from_name(kw), bit);
        for (i = 0; kw[i] != '\0' && i + 1 < sizeof(lower); i++)
            lower[i] =
                (char)(kw[i] >= 'A' && kw[i] <= 'Z' ? kw[i] + 32 : kw[i]);
        lower[i] = '\0';
        ck_assert_uint_eq(smtpx_ext_from_name(lower), bit);
        all |= bit;
    }
    ck_assert_uint_eq(all, SMTPX_EXT_ALL);
    ck_assert_str_eq(smtpx_ext_name(SMTPX_EXT_8BITMIME), "8BITMIME");
    ck_assert_ptr_null(smtpx_ext_name(SMTPX_EXT_ALL + 1));
    ck_assert_ptr_null(smtpx_ext_name(SMTPX_EXT_SIZE | SMTPX_EXT_DSN));
    ck_assert_uint_eq(smtpx_ext_from_name("XCLIENT"), 0);
    ck_assert_uint_eq(smtpx_ext_from_name(""), 0);
    ck_assert_uint_eq(smtpx_ext_from_name(NULL), 0);
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
    tcase_add_test(tc, test_every_range);
    tcase_add_test(tc, test_nomem);
    tcase_add_test(tc, test_limit_map);
    tcase_add_test(tc, test_timeout_and_policy_maps);
    tcase_add_test(tc, test_ext_map);
    suite_add_tcase(s, tc);
    return s;
}
