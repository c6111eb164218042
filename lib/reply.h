/*
 * reply - SMTP reply formatting (RFC 5321 4.2, RFC 3463, RFC 2034).
 */
#ifndef SMTPX_LIB_REPLY_H
#define SMTPX_LIB_REPLY_H

#include <libsmtpx/common.h>

#include "buf.h"

/* The standard text for a reply code ("Ok", "Bye"...). */
const char *smtpx__reply_text(int code);

/* Make enh fit code: a class that differs from the code's class, or a
 * subject or detail above 999, becomes class.0.0 (RFC 3463 2). */
void smtpx__reply_fix_enh(int code, uint16_t enh[3]);

/*
 * Append a reply to out.  text lines are separated by '\n' (NULL or "" is
 * the standard text); control characters and non-ASCII octets are replaced
 * so that no text can inject protocol lines, and each line is cut to
 * max_line octets including CRLF.  The enhanced code is written when enh is
 * not NULL and not all zero.  Returns 0 or SMTPX_ERR_NOMEM.
 */
int smtpx__reply_append(smtpx__buf *out, const smtpx_mem *mem, int code,
                        const uint16_t *enh, const char *text, size_t max_line);

#endif
