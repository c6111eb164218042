/*
 * resolver - internal entry points of the resolver, for the tests: the
 * thread back end even where c-ares is built in, c-ares with servers and
 * time-outs of the test's, and which back end a resolver uses.
 */
#ifndef SMTPX_LIB_RESOLVER_H
#define SMTPX_LIB_RESOLVER_H

#include <libsmtpx/mta.h>

/* The system resolver on a worker thread (the C library's resolver). */
int smtpx__resolver_new_thread(smtpx_resolver **out, const smtpx_mem *mem);

/* c-ares asking servers ("host:port,...") with time-outs of timeout_ms
 * and tries attempts; SMTPX_ERR_NOT_SUPPORTED without c-ares. */
int smtpx__resolver_new_cares(smtpx_resolver **out, const smtpx_mem *mem,
                              const char *servers, int timeout_ms, int tries);

/* 1 if r runs on c-ares. */
int smtpx__resolver_uses_cares(const smtpx_resolver *r);

#endif
