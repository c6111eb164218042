/* The test suites, one per module; check_main.c runs them all. */
#ifndef TESTS_SUITES_H
#define TESTS_SUITES_H

#include <check.h>

Suite *suite_error(void);
Suite *suite_conf(void);
Suite *suite_buf(void);
Suite *suite_addr(void);
Suite *suite_reply(void);
Suite *suite_data(void);
Suite *suite_server(void);
Suite *suite_transcripts(void);
Suite *suite_maildir(void);
Suite *suite_mta_trace(void);
Suite *suite_transport(void);
Suite *suite_posix(void);
Suite *suite_client(void);
Suite *suite_sasl(void);
Suite *suite_tls(void);
Suite *suite_auth(void);
Suite *suite_attempt(void);
Suite *suite_queue(void);
Suite *suite_dedupe(void);
Suite *suite_report(void);
Suite *suite_inbox(void);
Suite *suite_outbox(void);
Suite *suite_line(void);
Suite *suite_loop(void);
Suite *suite_limiter(void);
Suite *suite_proxy(void);
Suite *suite_posix_args(void);
Suite *suite_esmtp(void);
Suite *suite_msg_codec(void);
Suite *suite_msg_parser(void);
Suite *suite_msg_builder(void);
Suite *suite_msg_downgrade(void);

#endif
