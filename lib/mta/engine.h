/*
 * engine - internal entry points of the delivery engine (mta.c), for the
 * tests.
 */
#ifndef SMTPX_LIB_ENGINE_H
#define SMTPX_LIB_ENGINE_H

#include <libsmtpx/mta.h>

/* The most messages the engine holds in flight at once (by default
 * 4096): a test makes it small to reach it. */
void smtpx__mta_set_in_flight_max(smtpx_mta *m, size_t n);

#endif
