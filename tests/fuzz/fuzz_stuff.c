/*
 * fuzz_stuff - differential: what the client's dot-stuffer sends, the
 * server's DATA scanner must read back as the same content.
 *
 * The first octet chooses the piece size for the stuffer and the line
 * limit (none, or a few short ones so that lines are broken); the rest is
 * the body.  Checked:
 *  - stuffing in pieces gives the octets stuffing at once gives;
 *  - the output has only CRLF line ends, no line over the limit (the dot
 *    doubled for transparency not counted: RFC 5321 4.5.3.1.6), and ends
 *    with the one <CRLF>.<CRLF> that the scanner finds exactly at its end;
 *  - the scanner gives back the body with its line ends made CRLF and a
 *    last CRLF added when the body did not end a line, reports no bare
 *    line end, and, with a line limit, the same text once the inserted
 *    "<CRLF><SP>" breaks are taken out of both.
 */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "proto/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct out {
    uint8_t *buf;
    size_t len, cap;
} out;

static void put(out *o, const uint8_t *p, size_t n)
{
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2 + 16;
        o->buf = realloc(o->buf, o->cap);
        if (o->buf == NULL)
            abort();
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static int emit(void *ctx, const uint8_t *p, size_t n)
{
    if (n == 0)
        abort();
    put(ctx, p, n);
    return 0;
}

/* stuff - the whole body through the stuffer in pieces (0: at once) */
static void stuff(const uint8_t *in, size_t len, size_t piece, size_t limit,
                  smtpx__buf *b)
{
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__stuff st;
    size_t pos = 0;

    smtpx__stuff_init(&st, limit);
    do {
        size_t n = piece == 0 || piece > len - pos ? len - pos : piece;
        if (smtpx__stuff_add(&st, b, mem, in + pos, n) < 0)
            abort();
        pos += n;
    } while (pos < len);
    if (smtpx__stuff_end(&st, b, mem) < 0)
        abort();
}

/* unbreak - take every "\r\n " out, left to right */
static void unbreak(out *o)
{
    size_t r = 0, w = 0;

    while (r < o->len) {
        if (r + 2 < o->len && o->buf[r] == '\r' && o->buf[r + 1] == '\n' &&
            o->buf[r + 2] == ' ') {
            r += 3;
            continue;
        }
        o->buf[w++] = o->buf[r++];
    }
    o->len = w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t limits[8] = {0, 0, 0, 0, 6, 9, 80, 1000};
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__buf a = SMTPX__BUF_INIT, b = SMTPX__BUF_INIT;
    out want = {0}, got = {0};
    const uint8_t *body, *s;
    size_t len, limit, piece, i, used, line, slen;
    smtpx__dot d;
    int end;

    if (size < 1)
        return 0;
    limit = limits[data[0] & 7];
    piece = (size_t)(data[0] >> 3) + 1;
    body = data + 1;
    len = size - 1;

    stuff(body, len, 0, limit, &a);
    stuff(body, len, piece, limit, &b);
    if (smtpx__buf_used(&a) != smtpx__buf_used(&b) ||
        memcmp(smtpx__buf_head(&a), smtpx__buf_head(&b), smtpx__buf_used(&a)))
        abort();
    s = smtpx__buf_head(&a);
    slen = smtpx__buf_used(&a);

    /* Only CRLF, lines within the limit, and the end marker last. */
    if (slen < 3 || memcmp(s + slen - 3, ".\r\n", 3) != 0 ||
        (slen > 3 && s[slen - 4] != '\n'))
        abort();
    line = 0;
    for (i = 0; i < slen; i++) {
        if (s[i] == '\r') {
            if (i + 1 == slen || s[i + 1] != '\n')
                abort();
            if (limit != 0 &&
                line > limit - 2 + (line > 0 && s[i - line] == '.'))
                abort();
            line = 0;
            i++;
        } else if (s[i] == '\n') {
            abort();
        } else {
            line++;
        }
    }

    /* The scanner reads back the body. */
    smtpx__dot_init(&d, 0, 1);
    used = smtpx__dot_scan(&d, s, slen, emit, &got, &end);
    if (!end || used != slen || d.bare || d.long_line)
        abort();
    for (i = 0; i < len; i++) {
        if (body[i] == '\r') {
            put(&want, (const uint8_t *)"\r\n", 2);
            if (i + 1 < len && body[i + 1] == '\n')
                i++;
        } else if (body[i] == '\n') {
            put(&want, (const uint8_t *)"\r\n", 2);
        } else {
            put(&want, body + i, 1);
        }
    }
    if (len > 0 && body[len - 1] != '\n' && body[len - 1] != '\r')
        put(&want, (const uint8_t *)"\r\n", 2);
    if (limit != 0) {
        unbreak(&want);
        unbreak(&got);
    }
    if (want.len != got.len ||
        (want.len > 0 && memcmp(want.buf, got.buf, want.len) != 0))
        abort();
    smtpx__buf_free(&a, mem);
    smtpx__buf_free(&b, mem);
    free(want.buf);
    free(got.buf);
    return 0;
}
