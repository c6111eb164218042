/*
 * version - the library's version at run time.
 *
 * Exports smtpx_version_num() and smtpx_version_string(), from the
 * generated <libsmtpx/version.h> the library was built with.
 */
#include <libsmtpx/common.h>
#include <libsmtpx/version.h>

unsigned long smtpx_version_num(void)
{
    return (unsigned long)SMTPX_VERSION_NUM;
}

const char *smtpx_version_string(void)
{
    return SMTPX_VERSION;
}
