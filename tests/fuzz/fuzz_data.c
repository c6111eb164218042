/*
 * fuzz_data - differential: the DATA scanner must hand on the same content
 * and find the same end whether its input comes whole, one octet at a
 * time, or cut at any place the first octet chooses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/data.h"

typedef struct out {
    uint8_t *buf;
    size_t len, cap;
} out;

static int emit(void *ctx, const uint8_t *p, size_t n)
{
    out *o = ctx;

    if (n == 0)
        abort();
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2;
        o->buf = realloc(o->buf, o->cap);
        if (o->buf == NULL)
            abort();
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    return 0;
}

/* run - scan in pieces of `piece` octets (0: whole); returns the end
 * offset or -1; fills o and the final flags */
static long run(const uint8_t *in, size_t len, size_t piece, out *o,
                smtpx__dot *d)
{
    size_t pos = 0;
    int end = 0;

    smtpx__dot_init(d, 100, 1);
    while (pos < len) {
        size_t n = piece == 0 || piece > len - pos ? len - pos : piece;
        size_t used = smtpx__dot_scan(d, in + pos, n, emit, o, &end);
        pos += used;
        if (end)
            return (long)pos;
        if (used != n)
            abort();
    }
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    out a = {0}, b = {0}, c = {0};
    smtpx__dot da, db, dc;
    long ea, eb, ec;

    if (size < 1)
        return 0;
    ea = run(data + 1, size - 1, 0, &a, &da);
    eb = run(data + 1, size - 1, 1, &b, &db);
    ec = run(data + 1, size - 1, 1 + data[0] % 17, &c, &dc);
    if (ea != eb || ea != ec || a.len != b.len || a.len != c.len ||
        (a.len &&
         (memcmp(a.buf, b.buf, a.len) || memcmp(a.buf, c.buf, a.len))) ||
        da.bare != db.bare || da.bare != dc.bare ||
        da.long_line != db.long_line || da.long_line != dc.long_line)
        abort();
    /* Content never holds a bare CR or LF: every line end is CRLF. */
    for (size_t i = 0; i < a.len; i++) {
        if (a.buf[i] == '\n' && (i == 0 || a.buf[i - 1] != '\r'))
            abort();
        if (a.buf[i] == '\r' && (i + 1 == a.len || a.buf[i + 1] != '\n'))
            abort();
    }
    free(a.buf);
    free(b.buf);
    free(c.buf);
    return 0;
}
