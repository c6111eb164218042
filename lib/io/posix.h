/*
 * posix - internal helpers shared by the POSIX drivers.
 */
#ifndef SMTPX_LIB_POSIX_H
#define SMTPX_LIB_POSIX_H

#include <libsmtpx/posix.h>

/* smtpx__posix_fd_setup - make fd non-blocking and close-on-exec; 0, or
 * -1 with errno set */
int smtpx__posix_fd_setup(int fd);

#endif
