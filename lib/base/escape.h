/*
 * escape - untrusted octets made safe to show in a log line or a trace.
 */
#ifndef SMTPX_LIB_ESCAPE_H
#define SMTPX_LIB_ESCAPE_H

#include <stddef.h>

#include <libsmtpx/common.h>

/* Room for a shown value of up to n input octets (SMTPX_ESCAPE_SIZE). */
#define SMTPX__ESCAPE_SIZE(n) SMTPX_ESCAPE_SIZE(n)

/*
 * smtpx__escape - copy in[0..len) into out as one printable line: printable
 * ASCII as it is, a backslash doubled, every other octet (CR, LF, NUL,
 * escape sequences, 8-bit) as \xHH.  What does not fit is cut and marked
 * with "...".  out is always NUL-terminated (size >= 4).  in need not be
 * NUL-terminated and is never read past len.  Returns out.
 */
const char *smtpx__escape(char *out, size_t size, const void *in, size_t len);

#endif
