/*
 * msg_codec - MIME transfer encodings as streams (RFC 2045 6.7, 6.8).
 *
 * Exports the smtpx__mstr string, the base64 and quoted-printable
 * decoders and the quoted-printable encoder of "msg/codec.h".  Base64 is
 * encoded by mbedTLS (base/crypto.h); its decoder is strict and constant
 * time, made for keys, while mail needs a lenient one that never fails, so
 * the decoder is here: a table, four characters at a time on the fast
 * path.  The leniency follows Python's email package (decode_b() and
 * binascii.a2b_qp()), so that both read broken mail the same way.
 *
 * Invariants: every decoder takes input split anywhere and gives the same
 * octets as for the whole; none writes more than its *_OUT() bound.
 */
#include <string.h>

#include "base/mem.h"
#include "msg/codec.h"

/* ---- smtpx__mstr ----------------------------------------------------------
 */

void smtpx__mstr_init(smtpx__mstr *s, const smtpx_mem *mem)
{
    memset(s, 0, sizeof(*s));
    s->mem = mem;
}

static int mstr_grow(smtpx__mstr *s, size_t n)
{
    size_t cap;
    char *p;

    if (s->err != 0)
        return -1;
    if (s->len + n + 1 <= s->cap)
        return 0;
    if (n > SIZE_MAX / 4 - s->len) {
        s->err = SMTPX_ERR_NOMEM;
        return -1;
    }
    cap = s->cap ? s->cap : 64;
    while (cap < s->len + n + 1)
        cap *= 2;
    p = smtpx__realloc(s->mem, s->p, cap);
    if (p == NULL) {
        s->err = SMTPX_ERR_NOMEM;
        return -1;
    }
    s->p = p;
    s->cap = cap;
    return 0;
}

void smtpx__mstr_add(smtpx__mstr *s, const void *p, size_t n)
{
    if (mstr_grow(s, n) != 0)
        return;
    if (n > 0)
        memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

void smtpx__mstr_addc(smtpx__mstr *s, char c)
{
    smtpx__mstr_add(s, &c, 1);
}

void smtpx__mstr_adds(smtpx__mstr *s, const char *z)
{
    smtpx__mstr_add(s, z, strlen(z));
}

void smtpx__mstr_clear(smtpx__mstr *s)
{
    s->len = 0;
    if (s->p != NULL)
        s->p[0] = '\0';
}

void smtpx__mstr_free(smtpx__mstr *s)
{
    smtpx__free(s->mem, s->p);
    s->p = NULL;
    s->len = s->cap = 0;
    s->err = 0;
}

int smtpx__hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* ---- base64 ---------------------------------------------------------------
 */

/* Values: 0-63 the alphabet, B64_PAD "=", B64_EOL CR and LF, B64_BAD the
 * rest. */
enum { B64_PAD = 64, B64_EOL = 65, B64_BAD = 66 };

#define B64_ROW_BAD                                                            \
    B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD,    \
        B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD
static const uint8_t b64_table[256] = {
    B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD,
    B64_BAD, B64_BAD, B64_EOL, B64_BAD, B64_BAD, B64_EOL, B64_BAD, B64_BAD,
    B64_ROW_BAD,
    /* 0x20: ' ' to '/' */
    B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD,
    B64_BAD, B64_BAD, B64_BAD, 62, B64_BAD, B64_BAD, B64_BAD, 63,
    /* 0x30: '0' to '?' */
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, B64_BAD, B64_BAD, B64_BAD, B64_PAD,
    B64_BAD, B64_BAD,
    /* 0x40 */
    B64_BAD, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    /* 0x50 */
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, B64_BAD, B64_BAD, B64_BAD,
    B64_BAD, B64_BAD,
    /* 0x60 */
    B64_BAD, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    /* 0x70 */
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, B64_BAD, B64_BAD, B64_BAD,
    B64_BAD, B64_BAD,
    /* 0x80 - 0xff */
    B64_ROW_BAD, B64_ROW_BAD, B64_ROW_BAD, B64_ROW_BAD, B64_ROW_BAD,
    B64_ROW_BAD, B64_ROW_BAD, B64_ROW_BAD};

void smtpx__b64dec_init(smtpx__b64dec *d)
{
    memset(d, 0, sizeof(*d));
}

size_t smtpx__b64dec_run(smtpx__b64dec *d, const uint8_t *in, size_t n,
                         uint8_t *out)
{
    uint8_t *o = out;
    size_t i = 0;

    if (d->done) {
        /* After the pad only white space is expected. */
        for (; i < n; i++)
            if (b64_table[in[i]] != B64_EOL && in[i] != ' ' && in[i] != '\t')
                d->bad = 1;
        return 0;
    }
    while (i < n) {
        unsigned v;

        /* The fast path: whole quanta of alphabet characters. */
        if (d->n == 0) {
            while (n - i >= 4) {
                unsigned a = b64_table[in[i]], b = b64_table[in[i + 1]],
                         c = b64_table[in[i + 2]], e = b64_table[in[i + 3]];
                uint32_t q;

                if ((a | b | c | e) >= 64)
                    break;
                q = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 |
                    (uint32_t)e;
                o[0] = (uint8_t)(q >> 16);
                o[1] = (uint8_t)(q >> 8);
                o[2] = (uint8_t)q;
                o += 3;
                i += 4;
            }
            if (i >= n)
                break;
        }
        v = b64_table[in[i++]];
        if (v < 64) {
            d->acc = d->acc << 6 | v;
            d->pads = 0;
            if (++d->n == 4) {
                o[0] = (uint8_t)(d->acc >> 16);
                o[1] = (uint8_t)(d->acc >> 8);
                o[2] = (uint8_t)d->acc;
                o += 3;
                d->n = 0;
                d->acc = 0;
            }
        } else if (v == B64_PAD) {
            /* binascii: a pad counts only after two characters of a
             * quantum, and a complete pad ends the data. */
            if (d->n < 2)
                d->bad = 1;
            if (d->n >= 2 && d->n + ++d->pads >= 4) {
                if (d->n == 2) {
                    *o++ = (uint8_t)(d->acc >> 4);
                } else {
                    *o++ = (uint8_t)(d->acc >> 10);
                    *o++ = (uint8_t)(d->acc >> 2);
                }
                d->n = 0;
                d->acc = 0;
                d->done = 1;
                for (; i < n; i++)
                    if (b64_table[in[i]] != B64_EOL && in[i] != ' ' &&
                        in[i] != '\t')
                        d->bad = 1;
                break;
            }
        } else if (v == B64_BAD) {
            d->bad = 1;
        }
    }
    return (size_t)(o - out);
}

size_t smtpx__b64dec_end(smtpx__b64dec *d, uint8_t *out)
{
    size_t k = 0;

    if (d->n == 0)
        return 0;
    /* Padding missing: Python's decode_b() adds it. */
    d->bad = 1;
    if (d->n == 2) {
        out[k++] = (uint8_t)(d->acc >> 4);
    } else if (d->n == 3) {
        out[k++] = (uint8_t)(d->acc >> 10);
        out[k++] = (uint8_t)(d->acc >> 2);
    }
    d->n = 0;
    d->acc = 0;
    return k;
}

/* ---- quoted-printable decoding --------------------------------------------
 */

enum {
    QPD_TEXT, /* ordinary text */
    QPD_EQ,   /* after "=" */
    QPD_HEX,  /* after "=" and one hex digit */
    QPD_SKIP  /* after "=" CR: dropping up to the LF */
};

void smtpx__qpdec_init(smtpx__qpdec *d)
{
    memset(d, 0, sizeof(*d));
}

size_t smtpx__qpdec_run(smtpx__qpdec *d, const uint8_t *in, size_t n,
                        uint8_t *out)
{
    uint8_t *o = out;
    size_t i = 0;

    while (i < n) {
        unsigned char c = in[i];
        int h;

        switch (d->state) {
        case QPD_TEXT: {
            /* Copy up to the next "=" at once. */
            const uint8_t *eq = memchr(in + i, '=', n - i);
            size_t k = eq != NULL ? (size_t)(eq - (in + i)) : n - i;

            memcpy(o, in + i, k);
            o += k;
            i += k;
            if (eq != NULL) {
                d->state = QPD_EQ;
                i++;
            }
            break;
        }
        case QPD_EQ:
            if (c == '\n') {
                d->state = QPD_TEXT;
                i++;
            } else if (c == '\r') {
                d->state = QPD_SKIP;
                i++;
            } else if (c == '=') {
                *o++ = '=';
                d->state = QPD_TEXT;
                d->bad = 1;
                i++;
            } else if ((h = smtpx__hexval(c)) >= 0) {
                d->hex = (uint8_t)h;
                d->state = QPD_HEX;
                i++;
            } else {
                /* Kept; c is read again as text. */
                *o++ = '=';
                d->state = QPD_TEXT;
                d->bad = 1;
            }
            break;
        case QPD_HEX:
            if ((h = smtpx__hexval(c)) >= 0) {
                *o++ = (uint8_t)(d->hex << 4 | h);
                i++;
            } else {
                /* "=X" and a non-digit: binascii keeps "=" and reads both
                 * again as text. */
                static const char digits[] = "0123456789ABCDEF";
                *o++ = '=';
                *o++ = (uint8_t)digits[d->hex];
                d->bad = 1;
            }
            d->state = QPD_TEXT;
            break;
        default: /* QPD_SKIP */ {
            const uint8_t *lf = memchr(in + i, '\n', n - i);
            if (lf == NULL) {
                i = n;
            } else {
                i = (size_t)(lf - in) + 1;
                d->state = QPD_TEXT;
            }
            break;
        }
        }
    }
    return (size_t)(o - out);
}

size_t smtpx__qpdec_end(smtpx__qpdec *d, uint8_t *out)
{
    size_t k = 0;

    if (d->state == QPD_HEX) {
        /* binascii reads "=X" at the end as "=" and then X. */
        static const char digits[] = "0123456789ABCDEF";
        out[k++] = '=';
        out[k++] = (uint8_t)digits[d->hex];
        d->bad = 1;
    }
    d->state = QPD_TEXT;
    return k;
}

/* ---- base64 encoding -------------------------------------------------------
 */

size_t smtpx__b64enc_block(const uint8_t *in, size_t n, uint8_t *out)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t *o = out;
    size_t i;

    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

        o[0] = (uint8_t)a[v >> 18];
        o[1] = (uint8_t)a[v >> 12 & 63];
        o[2] = (uint8_t)a[v >> 6 & 63];
        o[3] = (uint8_t)a[v & 63];
        o += 4;
    }
    if (i < n) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);

        o[0] = (uint8_t)a[v >> 18];
        o[1] = (uint8_t)a[v >> 12 & 63];
        o[2] = i + 1 < n ? (uint8_t)a[v >> 6 & 63] : '=';
        o[3] = '=';
        o += 4;
    }
    return (size_t)(o - out);
}

void smtpx__b64enc_init(smtpx__b64enc *e)
{
    e->ncarry = 0;
    e->lines = 0;
}

/* b64e_line - one line of up to 57 octets, after a CRLF if not the first */
static uint8_t *b64e_line(smtpx__b64enc *e, const uint8_t *in, size_t n,
                          uint8_t *o)
{
    if (e->lines++ > 0) {
        memcpy(o, "\r\n", 2);
        o += 2;
    }
    return o + smtpx__b64enc_block(in, n, o);
}

size_t smtpx__b64enc_run(smtpx__b64enc *e, const uint8_t *in, size_t n,
                         uint8_t *out)
{
    uint8_t *o = out;
    size_t k;

    if (e->ncarry > 0) {
        k = sizeof(e->carry) - e->ncarry;
        if (k > n)
            k = n;
        memcpy(e->carry + e->ncarry, in, k);
        e->ncarry += k;
        in += k;
        n -= k;
        if (e->ncarry < sizeof(e->carry))
            return 0;
        o = b64e_line(e, e->carry, sizeof(e->carry), o);
        e->ncarry = 0;
    }
    for (; n >= sizeof(e->carry); in += sizeof(e->carry), n -= sizeof(e->carry))
        o = b64e_line(e, in, sizeof(e->carry), o);
    memcpy(e->carry, in, n);
    e->ncarry = n;
    return (size_t)(o - out);
}

size_t smtpx__b64enc_end(smtpx__b64enc *e, uint8_t *out)
{
    uint8_t *o = out;

    if (e->ncarry > 0)
        o = b64e_line(e, e->carry, e->ncarry, o);
    e->ncarry = 0;
    return (size_t)(o - out);
}

/* ---- quoted-printable encoding --------------------------------------------
 */

/* RFC 2045 6.7 (5): at most 76 characters on a line, "=" included. */
#define QPE_MAX 76

static const char qpe_hex[] = "0123456789ABCDEF";

void smtpx__qpenc_init(smtpx__qpenc *e, int text)
{
    e->text = text;
    e->col = 0;
    e->pending = -1;
    e->nodash = 0;
}

/* qpe_put - one output unit of k characters (a literal or "=XX") */
static uint8_t *qpe_put(smtpx__qpenc *e, uint8_t *o, unsigned char c, int lit)
{
    unsigned k;

    if (lit && c == '-' && e->col == 0 && e->nodash)
        lit = 0;
    k = lit ? 1 : 3;
    if (e->col + k > QPE_MAX - 1) {
        memcpy(o, "=\r\n", 3);
        o += 3;
        e->col = 0;
        if (lit && c == '-' && e->nodash) {
            lit = 0;
            k = 3;
        }
    }
    if (lit) {
        *o++ = c;
    } else {
        *o++ = '=';
        *o++ = (uint8_t)qpe_hex[c >> 4];
        *o++ = (uint8_t)qpe_hex[c & 15];
    }
    e->col += k;
    return o;
}

static uint8_t *qpe_break(smtpx__qpenc *e, uint8_t *o)
{
    memcpy(o, "\r\n", 2);
    e->col = 0;
    return o + 2;
}

size_t smtpx__qpenc_run(smtpx__qpenc *e, const uint8_t *in, size_t n,
                        uint8_t *out)
{
    uint8_t *o = out;
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = in[i];

        if (e->pending < 0 && e->col < QPE_MAX - 3) {
            /* The common cases, with room on the line: an octet that goes
             * as it is, or one encoded (RFC 2045 6.7 (1), (2)). */
            if (c > 32 && c < 127 && c != '=' &&
                (c != '-' || e->col != 0 || !e->nodash)) {
                *o++ = c;
                e->col++;
                continue;
            }
            if (c >= 127 || c == '=' ||
                (c < 32 && c != '\t' && c != '\r' && c != '\n')) {
                o[0] = '=';
                o[1] = (uint8_t)qpe_hex[c >> 4];
                o[2] = (uint8_t)qpe_hex[c & 15];
                o += 3;
                e->col += 3;
                continue;
            }
        }
        if (e->pending >= 0) {
            int p = e->pending;

            e->pending = -1;
            if (p == '\r') {
                if (c == '\n') {
                    o = qpe_break(e, o);
                    continue;
                }
                o = qpe_put(e, o, '\r', 0);
            } else {
                /* A space or tab: encoded before a line break (RFC 2045
                 * 6.7 (3)), literal otherwise. */
                int brk = c == '\r' || (c == '\n' && e->text);
                o = qpe_put(e, o, (unsigned char)p, !brk);
            }
        }
        if (c == ' ' || c == '\t' || c == '\r') {
            e->pending = c;
        } else if (c == '\n' && e->text) {
            o = qpe_break(e, o);
        } else {
            /* "." and "F" are literal too: the client dot-stuffs. */
            o = qpe_put(e, o, c, c > 32 && c < 127 && c != '=');
        }
    }
    return (size_t)(o - out);
}

size_t smtpx__qpenc_end(smtpx__qpenc *e, uint8_t *out)
{
    uint8_t *o = out;

    if (e->pending >= 0) {
        o = qpe_put(e, o, (unsigned char)e->pending, 0);
        e->pending = -1;
    }
    return (size_t)(o - out);
}
