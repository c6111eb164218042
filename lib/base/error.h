/*
 * error - the library's error code for a failed system call.
 */
#ifndef SMTPX_LIB_ERROR_H
#define SMTPX_LIB_ERROR_H

/* smtpx__errno_code - SMTPX_ERR_NOSPACE for a full disk or quota (ENOSPC,
 * EDQUOT), SMTPX_ERR_IO for any other errno value */
int smtpx__errno_code(int e);

#endif
