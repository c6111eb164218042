/*
 * resolver - internal entry points of the resolver, for the tests: the
 * thread back end even where c-ares is built in, and which back end a
 * resolver uses.
 */
#ifndef SMTPX_LIB_RESOLVER_H
#define SMTPX_LIB_RESOLVER_H

#include <libsmtpx/mta.h>

/* The system resolver on a worker thread (the C library's resolver). */
int smtpx__resolver_new_thread(smtpx_resolver **out, const smtpx_mem *mem);

/* 1 if r runs on c-ares. */
int smtpx__resolver_uses_cares(const smtpx_resolver *r);

#endif
