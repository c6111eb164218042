/*
 * line - line framing for both cores: command lines on the server, reply
 * lines on the client.
 */
#ifndef SMTPX_LIB_LINE_H
#define SMTPX_LIB_LINE_H

#include "base/buf.h"

typedef struct smtpx__line {
    smtpx__buf part;       /* the start of a line still without its LF */
    unsigned overflow : 1; /* the line is over the limit: skip to its LF */
} smtpx__line;

/* What smtpx__line_next() found. */
#define SMTPX__LINE_MORE 0 /* all input taken, no line complete yet */
#define SMTPX__LINE_OK   1 /* a complete line */
#define SMTPX__LINE_OVER                                                       \
    2                      /* the line has just gone over the limit; the       \
                              rest of it, up to its LF, will be skipped */
#define SMTPX__LINE_LONG 3 /* an over-long line has ended (its LF taken) */

/*
 * smtpx__line_next - take input from in[0..len) up to the end of at most
 * one line; *used says how much.  max is the longest line allowed, its LF
 * included (RFC 5321 4.5.3.1.4: the limit counts CRLF).
 *
 * With SMTPX__LINE_OK, *line and *n are the line without its LF (a CR
 * before it is kept: the caller decides what a bare LF means).  They point
 * into in when the whole line came in this piece (zero copy), else into
 * the framer's buffer; either way they are valid until
 * smtpx__line_release() or the next call.  A caller that is told OVER may
 * act at once (the client ends the session) or wait for LONG (the server
 * answers the line when it has ended).
 *
 * Returns an SMTPX__LINE_* value, or SMTPX_ERR_NOMEM.  Never reads in
 * past len.
 */
int smtpx__line_next(smtpx__line *l, const smtpx_mem *mem, const uint8_t *in,
                     size_t len, size_t max, size_t *used, const uint8_t **line,
                     size_t *n);

/* smtpx__line_head - copy up to size octets of the start of the line in
 * progress (buffered, then in[0..len)) into head, so a caller can choose
 * the limit by what the line begins with; returns how many */
size_t smtpx__line_head(const smtpx__line *l, const uint8_t *in, size_t len,
                        uint8_t *head, size_t size);

/* smtpx__line_release - the caller is done with the line it was given:
 * free the buffer, so that an idle session holds none */
void smtpx__line_release(smtpx__line *l, const smtpx_mem *mem);

/* smtpx__line_pending - octets of a partial line held */
static inline size_t smtpx__line_pending(const smtpx__line *l)
{
    return smtpx__buf_used(&l->part);
}

/* smtpx__line_reset - forget any partial line (STARTTLS purge, end) */
void smtpx__line_reset(smtpx__line *l, const smtpx_mem *mem);

#endif
