/*
 * posix - internal helpers shared by the POSIX drivers.
 */
#ifndef SMTPX_LIB_POSIX_H
#define SMTPX_LIB_POSIX_H

#include <libsmtpx/posix.h>

/* Wait with poll() until fd is ready for the pump's wait bits or the
 * absolute deadline (0: none) passes; returns poll()'s result. */
int smtpx__posix_wait(int fd, int wait, uint64_t deadline);

#endif
