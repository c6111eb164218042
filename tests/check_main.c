/*
 * check_main - run every suite.  CK_RUN_SUITE / CK_RUN_CASE pick a subset,
 * CK_FORK=no runs in one process (for gdb and valgrind).
 */
#include <stdlib.h>

#include "suites.h"

int main(void)
{
    SRunner *sr = srunner_create(suite_error());
    int failed;

    srunner_add_suite(sr, suite_conf());
    srunner_add_suite(sr, suite_buf());
    srunner_add_suite(sr, suite_addr());
    srunner_add_suite(sr, suite_reply());
    srunner_add_suite(sr, suite_data());
    srunner_add_suite(sr, suite_server());
    srunner_add_suite(sr, suite_transcripts());
    srunner_add_suite(sr, suite_maildir());
    srunner_add_suite(sr, suite_mta_trace());
    srunner_add_suite(sr, suite_transport());
    srunner_add_suite(sr, suite_posix());
    srunner_add_suite(sr, suite_client());
    srunner_add_suite(sr, suite_sasl());
    srunner_add_suite(sr, suite_tls());
    srunner_add_suite(sr, suite_auth());
    srunner_add_suite(sr, suite_attempt());
    srunner_add_suite(sr, suite_queue());
    srunner_add_suite(sr, suite_dedupe());
    srunner_add_suite(sr, suite_report());
    srunner_add_suite(sr, suite_inbox());
    srunner_add_suite(sr, suite_outbox());
    srunner_add_suite(sr, suite_line());
    srunner_add_suite(sr, suite_loop());
    srunner_add_suite(sr, suite_limiter());
    srunner_add_suite(sr, suite_proxy());
    srunner_add_suite(sr, suite_posix_args());
    srunner_add_suite(sr, suite_esmtp());
    srunner_add_suite(sr, suite_msg_codec());
    srunner_add_suite(sr, suite_msg_parser());
    srunner_add_suite(sr, suite_msg_builder());
    srunner_add_suite(sr, suite_msg_downgrade());
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
