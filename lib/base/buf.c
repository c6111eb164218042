/*
 * buf - a byte buffer with a read offset.
 *
 * smtpx__buf_reserve() grows the buffer (moving the waiting bytes to the
 * front first when that makes enough room) and smtpx__buf_drop() takes
 * bytes from the front, releasing the memory once the buffer is empty.
 */
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"

#define BUF_MIN 256

uint8_t *smtpx__buf_reserve(smtpx__buf *b, const smtpx_mem *mem, size_t n)
{
    size_t used = b->len - b->off;
    size_t need, cap;
    uint8_t *p;

    if (b->cap - b->len >= n)
        return b->data + b->len;
    if (n > SIZE_MAX / 2 - used)
        return NULL;
    need = used + n;
    /* Moving the waiting bytes down is cheaper than growing when at least
     * half of the buffer is already taken. */
    if (b->off > 0 && need <= b->cap && b->off >= b->cap / 2) {
        memmove(b->data, b->data + b->off, used);
        b->off = 0;
        b->len = used;
        return b->data + b->len;
    }
    cap = b->cap ? b->cap : BUF_MIN;
    while (cap < need)
        cap *= 2;
    if (b->off > 0) {
        p = smtpx__malloc(mem, cap);
        if (p == NULL)
            return NULL;
        memcpy(p, b->data + b->off, used);
        smtpx__free(mem, b->data);
    } else {
        p = smtpx__realloc(mem, b->data, cap);
        if (p == NULL)
            return NULL;
    }
    b->data = p;
    b->cap = cap;
    b->off = 0;
    b->len = used;
    return b->data + b->len;
}

int smtpx__buf_append(smtpx__buf *b, const smtpx_mem *mem, const void *p,
                      size_t n)
{
    uint8_t *dst;

    if (n == 0)
        return 0;
    dst = smtpx__buf_reserve(b, mem, n);
    if (dst == NULL)
        return SMTPX_ERR_NOMEM;
    memcpy(dst, p, n);
    b->len += n;
    return 0;
}

void smtpx__buf_drop(smtpx__buf *b, const smtpx_mem *mem, size_t n)
{
    size_t used = b->len - b->off;

    if (n >= used)
        smtpx__buf_free(b, mem);
    else
        b->off += n;
}

void smtpx__buf_free(smtpx__buf *b, const smtpx_mem *mem)
{
    smtpx__free(mem, b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}
