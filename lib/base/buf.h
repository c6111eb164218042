/*
 * buf - a byte buffer with a read offset: append at the end, peek and drop
 * at the front.  Used for queued output and for held input.
 *
 * Invariant: a buffer that becomes empty releases its memory, so that an
 * idle session holds no buffer.
 */
#ifndef SMTPX_LIB_BUF_H
#define SMTPX_LIB_BUF_H

#include <libsmtpx/common.h>

typedef struct smtpx__buf {
    uint8_t *data;
    size_t off; /* first byte not yet taken */
    size_t len; /* end of the bytes */
    size_t cap;
} smtpx__buf;

#define SMTPX__BUF_INIT                                                        \
    {                                                                          \
        NULL, 0, 0, 0                                                          \
    }

/* Bytes waiting in b. */
static inline size_t smtpx__buf_used(const smtpx__buf *b)
{
    return b->len - b->off;
}

/* The bytes waiting in b. */
static inline const uint8_t *smtpx__buf_head(const smtpx__buf *b)
{
    return b->data + b->off;
}

/* Make room for n more bytes; returns where to write them, or NULL. */
uint8_t *smtpx__buf_reserve(smtpx__buf *b, const smtpx_mem *mem, size_t n);

/* Append n bytes; 0 or SMTPX_ERR_NOMEM. */
int smtpx__buf_append(smtpx__buf *b, const smtpx_mem *mem, const void *p,
                      size_t n);

/* Count n bytes written at the pointer smtpx__buf_reserve() returned. */
static inline void smtpx__buf_commit(smtpx__buf *b, size_t n)
{
    b->len += n;
}

/* Take n bytes from the front (n is cut to what is there); frees the
 * memory when nothing is left. */
void smtpx__buf_drop(smtpx__buf *b, const smtpx_mem *mem, size_t n);

/* Free the memory and empty b. */
void smtpx__buf_free(smtpx__buf *b, const smtpx_mem *mem);

#endif
