/*
 * data - DATA content: end detection, dot-unstuffing, line-end
 * normalisation (RFC 5321 4.1.1.4, 4.5.2).
 */
#ifndef SMTPX_LIB_DATA_H
#define SMTPX_LIB_DATA_H

#include <stddef.h>
#include <stdint.h>

#include <libsmtpx/common.h>

#include "base/buf.h"

/* Receives content; returns nonzero to ask the scanner to stop after the
 * step in hand (at most three more octets of line end follow). */
typedef int smtpx__emit_fn(void *ctx, const uint8_t *p, size_t n);

typedef struct smtpx__dot {
    uint8_t state;
    uint8_t bol_real;  /* this line start followed a real CRLF */
    uint8_t bare;      /* a bare CR or bare LF was seen */
    uint8_t long_line; /* a line was longer than the limit */
    size_t line_len;   /* octets of the current line so far */
    size_t max_text;   /* octets a line may have before its CRLF; 0: any */
} smtpx__dot;

/* Start scanning content.  text_line is the limit including CRLF (0: none);
 * after_crlf tells whether the DATA command line ended in a real CRLF. */
void smtpx__dot_init(smtpx__dot *d, size_t text_line, int after_crlf);

/*
 * Scan in[0..len): content goes to emit, dot-unstuffed, with every line
 * end as CRLF.  Returns the octets consumed.  *end is set to 1 when the
 * terminating <CRLF>.<CRLF> was consumed (it is not emitted); the return
 * value is then the offset just past it.  If emit asks to stop, the scan
 * returns early with *end 0.
 */
size_t smtpx__dot_scan(smtpx__dot *d, const uint8_t *in, size_t len,
                       smtpx__emit_fn *emit, void *ctx, int *end);

/* ---- the client side: dot-stuffing ---- */

/* Content on its way out (RFC 5321 4.5.2). */
typedef struct smtpx__stuff {
    uint8_t nodots;    /* BDAT: no dot-stuffing, no final "." */
    uint8_t bol;       /* at the start of a line */
    uint8_t cr;        /* a CR was read and not yet written */
    size_t line_len;   /* octets of the current line */
    size_t max_text;   /* octets before a line is broken; 0: never */
    size_t long_lines; /* lines broken */
} smtpx__stuff;

void smtpx__stuff_init(smtpx__stuff *st, size_t text_line);

/* The same for BDAT content (RFC 3030): line ends made CRLF and long lines
 * broken as for DATA, but no dot-stuffing, and the end adds only the
 * missing CRLF. */
void smtpx__stuff_init_bdat(smtpx__stuff *st, size_t text_line);

/*
 * Append in[0..len) to out: a "." starting a line is doubled, bare LF and
 * bare CR become CRLF, and a line reaching max_text octets is broken by
 * inserting CRLF and a space (as Postfix's smtp_line_length_limit does).
 * Returns the octets appended, or SMTPX_ERR_NOMEM.
 */
smtpx_ssize smtpx__stuff_add(smtpx__stuff *st, smtpx__buf *out,
                             const smtpx_mem *mem, const uint8_t *in,
                             size_t len);

/* Append the end of the content: CRLF if the last line was not ended, then
 * ".\r\n" (not for BDAT).  Returns the octets appended, or
 * SMTPX_ERR_NOMEM. */
smtpx_ssize smtpx__stuff_end(smtpx__stuff *st, smtpx__buf *out,
                             const smtpx_mem *mem);

#endif
