/*
 * line - line framing for both cores.
 *
 * Exports smtpx__line_next(), smtpx__line_head(), smtpx__line_release()
 * and smtpx__line_reset().  The server frames command lines with it and
 * the client reply lines, so both apply the same rules: a line ends at LF
 * (CR handling is the caller's), the limit counts the line end (RFC 5321
 * 4.5.3.1.4 and 4.5.3.1.5), a line over the limit is never buffered whole
 * (memory stays bounded by the limit), and the end of a line is found with
 * memchr, never a byte at a time.
 *
 * Invariants: the buffer holds at most max octets; it is empty (and
 * its memory freed) whenever no line is in progress and the caller has
 * released the last line.
 */
#include <string.h>

#include "proto/line.h"

int smtpx__line_next(smtpx__line *l, const smtpx_mem *mem, const uint8_t *in,
                     size_t len, size_t max, size_t *used, const uint8_t **line,
                     size_t *n)
{
    const uint8_t *lf = memchr(in, '\n', len);
    size_t take = lf != NULL ? (size_t)(lf - in) + 1 : len;
    size_t have = smtpx__buf_used(&l->part);

    *used = take;
    *line = NULL;
    *n = 0;
    if (l->overflow) {
        if (lf == NULL)
            return SMTPX__LINE_MORE;
        l->overflow = 0;
        return SMTPX__LINE_LONG;
    }
    if (have + take > max) {
        smtpx__buf_free(&l->part, mem);
        if (lf == NULL) {
            l->overflow = 1;
            return SMTPX__LINE_OVER;
        }
        return SMTPX__LINE_LONG;
    }
    if (lf == NULL) {
        if (take > 0 && smtpx__buf_append(&l->part, mem, in, take) < 0)
            return SMTPX_ERR_NOMEM;
        return SMTPX__LINE_MORE;
    }
    if (have == 0) {
        *line = in;
        *n = take - 1;
        return SMTPX__LINE_OK;
    }
    if (smtpx__buf_append(&l->part, mem, in, take - 1) < 0)
        return SMTPX_ERR_NOMEM;
    *line = smtpx__buf_head(&l->part);
    *n = smtpx__buf_used(&l->part);
    return SMTPX__LINE_OK;
}

size_t smtpx__line_head(const smtpx__line *l, const uint8_t *in, size_t len,
                        uint8_t *head, size_t size)
{
    size_t have = smtpx__buf_used(&l->part);
    size_t hn = have < size ? have : size;

    if (hn > 0)
        memcpy(head, smtpx__buf_head(&l->part), hn);
    if (hn < size) {
        size_t more = size - hn < len ? size - hn : len;
        memcpy(head + hn, in, more);
        hn += more;
    }
    return hn;
}

void smtpx__line_release(smtpx__line *l, const smtpx_mem *mem)
{
    smtpx__buf_free(&l->part, mem);
}

void smtpx__line_reset(smtpx__line *l, const smtpx_mem *mem)
{
    smtpx__buf_free(&l->part, mem);
    l->overflow = 0;
}
