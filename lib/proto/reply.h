/*
 * reply - SMTP reply formatting (RFC 5321 4.2, RFC 3463, RFC 2034).
 */
#ifndef SMTPX_LIB_REPLY_H
#define SMTPX_LIB_REPLY_H

#include <libsmtpx/common.h>

#include "base/buf.h"

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

/* ---- parsing replies (client side) ---- */

/* A reply being read, line by line. */
typedef struct smtpx__rparse {
    smtpx__buf text; /* the lines so far, '\n'-separated, NUL-terminated */
    int code;        /* 0 until the first line */
    uint16_t enh[3];
    size_t lines;
} smtpx__rparse;

/* The most a reply may hold, over all its lines. */
#define SMTPX__REPLY_MAX 65536

/*
 * Take one reply line (without its line end).  Control characters other
 * than HT in the text (a bare CR, NUL, ESC...) become spaces, so the
 * text is a C string the application can log.  Returns 1 when the reply is
 * complete (out is filled; out->text is valid until the next call), 0 when
 * more lines follow, SMTPX_ERR_PROTO for a malformed line, a code that
 * changes within the reply, or a reply over SMTPX__REPLY_MAX, and
 * SMTPX_ERR_NOMEM.  An enhanced code (RFC 3463) whose class matches the
 * reply code is taken out of the text.
 */
int smtpx__rparse_line(smtpx__rparse *p, const smtpx_mem *mem, const char *line,
                       size_t len, smtpx_reply *out);

/* Forget the reply in progress and free its memory. */
void smtpx__rparse_free(smtpx__rparse *p, const smtpx_mem *mem);

#endif
