/*
 * error - names and descriptions of the SMTPX_ERR_* codes.
 *
 * Exports smtpx_strerror(), smtpx_err_name() and smtpx_is_fatal(), all
 * generated from the one table SMTPX_ERRNO_MAP in <libsmtpx/common.h>, and
 * smtpx__errno_code() of error.h.
 */
#include <errno.h>

#include <libsmtpx/common.h>

#include "base/error.h"

int smtpx__errno_code(int e)
{
    if (e == ENOSPC)
        return SMTPX_ERR_NOSPACE;
#ifdef EDQUOT
    if (e == EDQUOT)
        return SMTPX_ERR_NOSPACE;
#endif
    return SMTPX_ERR_IO;
}

const char *smtpx_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define ERROR_TEXT(name, value, text)                                          \
    case value:                                                                \
        return text;
        SMTPX_ERRNO_MAP(ERROR_TEXT)
#undef ERROR_TEXT
    default:
        return "unknown error";
    }
}

const char *smtpx_err_name(int err)
{
    switch (err) {
    case 0:
        return "SMTPX_OK";
#define ERROR_NAME(name, value, text)                                          \
    case value:                                                                \
        return "SMTPX_ERR_" #name;
        SMTPX_ERRNO_MAP(ERROR_NAME)
#undef ERROR_NAME
    default:
        return "SMTPX_ERR_UNKNOWN";
    }
}

int smtpx_is_fatal(int err)
{
    return err <= SMTPX_ERR_FATAL;
}
