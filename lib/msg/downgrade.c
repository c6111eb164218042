/*
 * downgrade - an 8-bit MIME message made 7-bit (RFC 6152 3, RFC 2045 6.7),
 * for a server without 8BITMIME.
 *
 * Exports the smtpx_msg_downgrade_* functions of <libsmtpx/msg.h>.
 *
 * A line machine that knows just enough of MIME to find the leaf parts:
 * the header fields of each entity (only Content-Type and
 * Content-Transfer-Encoding are read), multipart boundaries (a stack, one
 * frame per multipart) and message/rfc822 bodies (another entity).  It
 * runs twice over the same octets:
 *
 *   SCAN     finds which leaves need re-encoding (8-bit octets or a line
 *            over 998 octets), and how (two bits per leaf), and the size
 *            of the output (every way is counted for each leaf, one kept
 *            at its end);
 *   CONVERT  writes the message: leaves with their bits as
 *            quoted-printable or base64, the rest as they came.
 *
 * A leaf's Content-Transfer-Encoding field is held back to the end of its
 * header, where the bit (known in CONVERT) says which to write: the field
 * as it was, or the new one.  Each call of dg_step() handles at most one
 * line (or DG_LINE octets of a longer one), so that the output of a call
 * fits in DG_OUT, and the reader needs no more memory than that.
 *
 * Invariant: whatever CONVERT writes outside a re-encoded leaf is a line
 * SCAN checked to be 7-bit and at most 998 octets, or a field written
 * here.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <libsmtpx/msg.h>

#include "base/mem.h"
#include "msg/codec.h"
#include "msg/words.h"

#define DG_LINE     1000 /* 998 octets and the line end (RFC 5322 2.1.1) */
#define DG_CT_MAX   4096 /* a Content-Type field, unfolded */
#define DG_CTE_MAX  1000 /* the Content-Transfer-Encoding field(s) */
#define DG_IN       4096
#define DG_OUT      8192  /* >= SMTPX__QPENC_OUT(DG_LINE) + DG_CTE_MAX + 16 */
#define DG_BOUNDARY 200   /* SMTPX_MSG_LIMIT_BOUNDARY's default */
#define DG_DEPTH    32    /* SMTPX_MSG_LIMIT_DEPTH's */
#define DG_PARTS    10000 /* SMTPX_MSG_LIMIT_PARTS' */
/* A part of at least this much content goes as base64 when that is
 * shorter (text that is mostly 8-bit: quoted-printable would triple it);
 * a smaller one as quoted-printable, which stays readable. */
#define DG_B64_MIN 1024

static const char dg_qp_field[] =
    "Content-Transfer-Encoding: quoted-printable\r\n";
static const char dg_b64_field[] = "Content-Transfer-Encoding: base64\r\n";
static const char dg_7bit_field[] = "Content-Transfer-Encoding: 7bit\r\n";

enum { P_SCAN, P_SCANNED, P_CONVERT, P_DONE };
enum { ST_HDR, ST_LEAF, ST_TEXT }; /* header, leaf content, preamble... */
enum { F_OTHER, F_CT, F_CTE };     /* the field a header line belongs to */
enum { E_NONE, E_7BIT, E_8BIT, E_BINARY, E_QP, E_BASE64, E_OTHER };

typedef struct dg_frame {
    char b[DG_BOUNDARY];
    size_t blen;
    int digest; /* multipart/digest: parts are message/rfc822 by default */
} dg_frame;

struct smtpx_msg_downgrade {
    smtpx_mem mem;
    int pass;
    int err;
    char why[128];
    uint64_t lineno; /* of the line being handled, from 1 */

    uint8_t line[DG_LINE]; /* the line being gathered */
    size_t llen;
    int cont; /* the line goes on from a part handled already */

    int st;
    dg_frame stack[DG_DEPTH];
    size_t depth;
    size_t entities;

    /* the header being read */
    int field;
    int digest_part;
    smtpx__mstr ct;
    uint8_t cte[DG_CTE_MAX];
    size_t cte_len;

    /* the leaf being copied */
    int enc;  /* its declared encoding, E_* */
    int need; /* SCAN: it has 8-bit octets or long lines */
    uint64_t need_line;
    int convert; /* CONVERT: it is re-encoded */
    int b64;     /* ... as base64 (else quoted-printable) */
    smtpx__qpenc qp;
    uint64_t raw_n, qp_n;
    size_t last_eol; /* SCAN: the line end of its last line */
    uint8_t held[2]; /* CONVERT, base64: the last line end, content */
    size_t nheld;    /* only if more content follows */
    smtpx__b64enc b64e;
    size_t leaf; /* leaves so far */
    uint8_t *bits;
    size_t bits_cap; /* octets */
    size_t nconvert;

    uint64_t size;    /* SCAN: the output's size */
    uint64_t written; /* CONVERT */
    size_t leaves;    /* SCAN: leaves in all */

    smtpx_msg_read_fn *src;
    void *src_ctx;
    size_t in_off, in_len;
    int in_eof;
    size_t out_off, out_len;
    uint8_t in[DG_IN];
    uint8_t out[DG_OUT];
    uint8_t scratch[SMTPX__QPENC_OUT(DG_LINE)];
};

/* ---- errors and output --------------------------------------------------
 */

static int dg_fail(smtpx_msg_downgrade *d, int err, const char *what)
{
    /* What the scan let through cannot fail the second pass: the message
     * is another one. */
    if (d->pass == P_CONVERT &&
        (err == SMTPX_ERR_NOT_SUPPORTED || err == SMTPX_ERR_LIMIT))
        err = SMTPX_ERR_CORRUPT;
    if (d->err == 0) {
        d->err = err;
        snprintf(d->why, sizeof(d->why), "%s, line %llu", what,
                 (unsigned long long)d->lineno);
    }
    return d->err;
}

/* dg_emit - n octets of output: counted in SCAN, staged in CONVERT */
static void dg_emit(smtpx_msg_downgrade *d, const void *p, size_t n)
{
    if (d->pass == P_SCAN) {
        d->size += n;
        return;
    }
    if (n > sizeof(d->out) - d->out_len) {
        dg_fail(d, SMTPX_ERR_INTERNAL, "output step too large");
        return;
    }
    memcpy(d->out + d->out_len, p, n);
    d->out_len += n;
    d->written += n;
}

static int dg_has8(const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (p[i] & 0x80)
            return 1;
    return 0;
}

/* dg_long - the line (n octets, eoln of them its end) is over 998 octets:
 * it goes on from a piece handled already, or is too long as it is */
static int dg_long(const smtpx_msg_downgrade *d, size_t n, size_t eoln)
{
    return d->cont || n - eoln > 998;
}

/* ---- the structure --------------------------------------------------------
 */

static void dg_header_begin(smtpx_msg_downgrade *d, int digest_part)
{
    d->st = ST_HDR;
    d->field = F_OTHER;
    d->digest_part = digest_part;
    smtpx__mstr_clear(&d->ct);
    d->cte_len = 0;
    if (++d->entities > DG_PARTS)
        dg_fail(d, SMTPX_ERR_LIMIT, "more than 10000 parts");
}

/* Two bits per leaf: 1, it is re-encoded; 2, as base64. */
static int dg_bits(const smtpx_msg_downgrade *d, size_t i)
{
    return i / 4 < d->bits_cap ? d->bits[i / 4] >> (i % 4 * 2) & 3 : 0;
}

static void dg_set_bits(smtpx_msg_downgrade *d, size_t i, unsigned v)
{
    if (i / 4 >= d->bits_cap) {
        size_t cap = d->bits_cap ? d->bits_cap * 2 : 16;
        uint8_t *b;

        while (cap <= i / 4)
            cap *= 2;
        b = smtpx__realloc(&d->mem, d->bits, cap);
        if (b == NULL) {
            dg_fail(d, SMTPX_ERR_NOMEM, "out of memory");
            return;
        }
        memset(b + d->bits_cap, 0, cap - d->bits_cap);
        d->bits = b;
        d->bits_cap = cap;
    }
    d->bits[i / 4] |= (uint8_t)(v << (i % 4 * 2));
}

/* ---- base64 -----------------------------------------------------------------
 */

/* dg_b64_size - the octets of n octets as base64 lines of 76 characters,
 * CRLF between them (RFC 2045 6.8) */
static uint64_t dg_b64_size(uint64_t n)
{
    return n == 0 ? 0 : (n + 2) / 3 * 4 + ((n + 56) / 57 - 1) * 2;
}

/* dg_b64_feed - n octets of content as base64 */
static void dg_b64_feed(smtpx_msg_downgrade *d, const uint8_t *p, size_t n)
{
    dg_emit(d, d->scratch, smtpx__b64enc_run(&d->b64e, p, n, d->scratch));
}

static void dg_b64_end(smtpx_msg_downgrade *d)
{
    dg_emit(d, d->scratch, smtpx__b64enc_end(&d->b64e, d->scratch));
}

/* dg_cte_value - the encoding the held Content-Transfer-Encoding field
 * names (the first one, if there are several) */
static int dg_cte_value(const smtpx_msg_downgrade *d)
{
    static const struct {
        const char *name;
        int enc;
    } names[] = {{"7bit", E_7BIT},
                 {"8bit", E_8BIT},
                 {"binary", E_BINARY},
                 {"quoted-printable", E_QP},
                 {"base64", E_BASE64}};
    const uint8_t *p = memchr(d->cte, ':', d->cte_len);
    const uint8_t *end = d->cte + d->cte_len, *t;
    size_t i;

    if (p == NULL)
        return E_NONE;
    for (p++; p < end && strchr(" \t\r\n", *p) != NULL; p++)
        ;
    for (t = p; t < end && strchr(" \t\r\n;(", *t) == NULL; t++)
        ;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if ((size_t)(t - p) == strlen(names[i].name) &&
            strncasecmp((const char *)p, names[i].name, (size_t)(t - p)) == 0)
            return names[i].enc;
    return t == p ? E_NONE : E_OTHER;
}

/* dg_leaf_end - the end of a leaf's content, at a delimiter (delim) or
 * at the end of the message: in SCAN, which way it goes (quoted-printable,
 * or base64 for DG_B64_MIN octets or more when shorter) and so what it
 * adds to the size */
static void dg_leaf_end(smtpx_msg_downgrade *d, int delim)
{
    size_t n;

    if (d->pass == P_SCAN) {
        if (d->need && d->enc != E_NONE && d->enc != E_7BIT &&
            d->enc != E_8BIT && d->enc != E_BINARY) {
            d->lineno = d->need_line;
            dg_fail(d, SMTPX_ERR_NOT_SUPPORTED,
                    "8-bit octets or a long line in a part not labelled "
                    "7bit, 8bit or binary");
            return;
        }
        if (d->need) {
            /* At a delimiter, the last line end is the delimiter's: not
             * content for base64, written again after it. */
            uint64_t qp = sizeof(dg_qp_field) - 1 + d->qp_n +
                          smtpx__qpenc_end(&d->qp, d->scratch);
            uint64_t b64 = sizeof(dg_b64_field) - 1 +
                           (delim ? dg_b64_size(d->raw_n - d->last_eol) +
                                        (d->last_eol > 0 ? 2 : 0)
                                  : dg_b64_size(d->raw_n));
            int use64 = d->raw_n >= DG_B64_MIN && b64 < qp;

            d->size += use64 ? b64 : qp;
            dg_set_bits(d, d->leaf, use64 ? 3 : 1);
            d->nconvert++;
        } else {
            d->size += (d->enc == E_8BIT || d->enc == E_BINARY
                            ? sizeof(dg_7bit_field) - 1
                            : d->cte_len) +
                       d->raw_n;
        }
    } else if (d->convert && d->b64) {
        if (!delim)
            dg_b64_feed(d, d->held, d->nheld);
        dg_b64_end(d);
        if (delim && d->nheld > 0)
            dg_emit(d, "\r\n", 2);
        d->nheld = 0;
    } else if (d->convert) {
        n = smtpx__qpenc_end(&d->qp, d->scratch);
        dg_emit(d, d->scratch, n);
    }
    d->leaf++;
}

/* dg_header_end - the empty line after a header (eol: its octets), or
 * the header cut short (eol NULL): what its body is */
static void dg_header_end(smtpx_msg_downgrade *d, const uint8_t *eol,
                          size_t eoln)
{
    smtpx__mstr type, params;
    const char *boundary = NULL;
    unsigned bad = 0;
    int multi = 0, message = 0;

    d->enc = dg_cte_value(d);
    smtpx__mstr_init(&type, &d->mem);
    smtpx__mstr_init(&params, &d->mem);
    if (d->ct.len > 0) {
        smtpx__params_parse(d->ct.p, d->ct.len, &type, &params, &bad);
        if (type.err != 0 || params.err != 0) {
            dg_fail(d, SMTPX_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    if (type.len == 0 && d->digest_part)
        message = 1;
    else if (type.len > 0 && strcmp(type.p, "message/rfc822") == 0)
        message = 1;
    else if (type.len > 10 && strncmp(type.p, "multipart/", 10) == 0)
        boundary = smtpx__params_get(params.p, params.len, "boundary");
    if (boundary != NULL && *boundary != '\0')
        multi = 1;
    /* An encoded container is not one (RFC 2045 6.4): a leaf. */
    if ((multi || message) && d->enc != E_NONE && d->enc != E_7BIT &&
        d->enc != E_8BIT && d->enc != E_BINARY)
        multi = message = 0;
    if (eol == NULL)
        multi = message = 0; /* no body */
    if (multi || message) {
        if (d->enc == E_8BIT || d->enc == E_BINARY)
            dg_emit(d, dg_7bit_field, sizeof(dg_7bit_field) - 1);
        else
            dg_emit(d, d->cte, d->cte_len);
        dg_emit(d, eol, eoln);
    }
    if (multi) {
        dg_frame *f;

        if (strlen(boundary) > DG_BOUNDARY) {
            dg_fail(d, SMTPX_ERR_LIMIT, "a boundary over 200 octets");
            goto out;
        }
        if (d->depth == DG_DEPTH) {
            dg_fail(d, SMTPX_ERR_LIMIT, "multiparts nested over 32 deep");
            goto out;
        }
        f = &d->stack[d->depth++];
        f->blen = strlen(boundary);
        memcpy(f->b, boundary, f->blen);
        f->digest = strcmp(type.p, "multipart/digest") == 0;
        d->st = ST_TEXT;
    } else if (message) {
        dg_header_begin(d, 0);
    } else {
        /* A leaf: its encoding field waits for its bit (CONVERT); SCAN
         * counts it at the leaf's end, one way or the other. */
        if (d->pass == P_CONVERT) {
            if (d->leaf >= d->leaves) {
                dg_fail(d, SMTPX_ERR_CORRUPT, "more parts than scanned");
                goto out;
            }
            d->convert = dg_bits(d, d->leaf) & 1;
            d->b64 = dg_bits(d, d->leaf) >> 1 & 1;
            if (d->b64)
                dg_emit(d, dg_b64_field, sizeof(dg_b64_field) - 1);
            else if (d->convert)
                dg_emit(d, dg_qp_field, sizeof(dg_qp_field) - 1);
            else if (d->enc == E_8BIT || d->enc == E_BINARY)
                dg_emit(d, dg_7bit_field, sizeof(dg_7bit_field) - 1);
            else
                dg_emit(d, d->cte, d->cte_len);
        }
        if (eol != NULL)
            dg_emit(d, eol, eoln);
        smtpx__qpenc_init(&d->qp, 1);
        d->qp.nodash = 1; /* no line of it can become a delimiter */
        d->need = 0;
        d->raw_n = d->qp_n = 0;
        d->last_eol = 0;
        d->nheld = 0;
        smtpx__b64enc_init(&d->b64e);
        d->st = ST_LEAF;
    }
out:
    smtpx__mstr_free(&type);
    smtpx__mstr_free(&params);
}

/* dg_delimiter - if the line is a delimiter of a multipart we are in,
 * move to what follows it and return 1 */
static int dg_delimiter(smtpx_msg_downgrade *d, const uint8_t *p, size_t n)
{
    size_t i, k;
    int close;

    if (d->cont || n < 2 || p[0] != '-' || p[1] != '-')
        return 0;
    for (i = d->depth; i-- > 0;) {
        const dg_frame *f = &d->stack[i];

        if (n < 2 + f->blen || memcmp(p + 2, f->b, f->blen) != 0)
            continue;
        k = 2 + f->blen;
        close = n >= k + 2 && p[k] == '-' && p[k + 1] == '-';
        if (close)
            k += 2;
        while (k < n && strchr(" \t\r\n", p[k]) != NULL)
            k++;
        if (k < n)
            continue; /* "--b" and more: not a delimiter */
        if (d->st == ST_LEAF) {
            dg_leaf_end(d, 1);
        } else if (d->st == ST_HDR) {
            /* The header cut short: no body, an empty leaf. */
            dg_header_end(d, NULL, 0);
            dg_leaf_end(d, 1);
        }
        d->depth = close ? i : i + 1;
        if (close)
            d->st = ST_TEXT;
        else
            dg_header_begin(d, d->stack[i].digest);
        dg_emit(d, p, n);
        return 1;
    }
    return 0;
}

static void dg_header_line(smtpx_msg_downgrade *d, const uint8_t *p, size_t n,
                           size_t eoln)
{
    const uint8_t *v = p, *colon;
    size_t vlen = n - eoln;

    if (dg_has8(p, n)) {
        dg_fail(d, SMTPX_ERR_NOT_SUPPORTED, "8-bit octets in a header field");
        return;
    }
    if (dg_long(d, n, eoln)) {
        dg_fail(d, SMTPX_ERR_NOT_SUPPORTED,
                "a header line longer than 998 octets");
        return;
    }
    if (vlen == 0 && eoln > 0) {
        dg_header_end(d, p, n);
        return;
    }
    if (p[0] != ' ' && p[0] != '\t') {
        d->field = F_OTHER;
        colon = memchr(p, ':', vlen);
        if (colon != NULL) {
            size_t k = (size_t)(colon - p);

            while (k > 0 && (p[k - 1] == ' ' || p[k - 1] == '\t'))
                k--;
            if (k == 12 &&
                strncasecmp((const char *)p, "Content-Type", 12) == 0) {
                d->field = F_CT;
                v = colon + 1;
                vlen -= (size_t)(v - p);
            } else if (k == 25 &&
                       strncasecmp((const char *)p, "Content-Transfer-Encoding",
                                   25) == 0) {
                d->field = F_CTE;
            }
        }
    }
    if (d->field == F_CTE) {
        /* Held, and written at the header's end. */
        if (n > sizeof(d->cte) - d->cte_len) {
            dg_fail(d, SMTPX_ERR_LIMIT,
                    "a Content-Transfer-Encoding field over 1000 octets");
            return;
        }
        memcpy(d->cte + d->cte_len, p, n);
        d->cte_len += n;
        return;
    }
    if (d->field == F_CT) {
        if (d->ct.len + vlen > DG_CT_MAX) {
            dg_fail(d, SMTPX_ERR_LIMIT,
                    "a Content-Type field over 4096 octets");
            return;
        }
        smtpx__mstr_add(&d->ct, v, vlen);
        if (d->ct.err != 0) {
            dg_fail(d, SMTPX_ERR_NOMEM, "out of memory");
            return;
        }
    }
    dg_emit(d, p, n);
}

/* dg_leaf_line - n octets of a leaf's content (a whole line, or a piece of
 * a long one: eoln 0) */
static void dg_leaf_line(smtpx_msg_downgrade *d, const uint8_t *p, size_t n,
                         size_t eoln)
{
    size_t k;

    if (d->pass == P_SCAN) {
        if (!d->need && (dg_long(d, n, eoln) || dg_has8(p, n))) {
            d->need = 1;
            d->need_line = d->lineno;
        }
        d->raw_n += n;
        d->last_eol = eoln;
        d->qp_n += smtpx__qpenc_run(&d->qp, p, n, d->scratch);
    } else if (d->convert && d->b64) {
        /* The line end waits: it is the delimiter's if one follows. */
        dg_b64_feed(d, d->held, d->nheld);
        dg_b64_feed(d, p, n - eoln);
        memcpy(d->held, p + n - eoln, eoln);
        d->nheld = eoln;
    } else if (d->convert) {
        k = smtpx__qpenc_run(&d->qp, p, n, d->scratch);
        dg_emit(d, d->scratch, k);
    } else {
        if (dg_long(d, n, eoln) || dg_has8(p, n)) {
            dg_fail(d, SMTPX_ERR_CORRUPT, "not the message scanned");
            return;
        }
        dg_emit(d, p, n);
    }
}

/* dg_text_line - a line of a preamble or epilogue: copied, if it can be */
static void dg_text_line(smtpx_msg_downgrade *d, const uint8_t *p, size_t n,
                         size_t eoln)
{
    if (dg_long(d, n, eoln)) {
        dg_fail(d, SMTPX_ERR_NOT_SUPPORTED,
                "a preamble or epilogue line longer than 998 octets");
        return;
    }
    if (dg_has8(p, n)) {
        dg_fail(d, SMTPX_ERR_NOT_SUPPORTED,
                "8-bit octets in a preamble or epilogue");
        return;
    }
    dg_emit(d, p, n);
}

/* dg_line - the line gathered (or DG_LINE octets of it, or its last octets
 * at the end of the message) */
static void dg_line(smtpx_msg_downgrade *d)
{
    const uint8_t *p = d->line;
    size_t n = d->llen, eoln = 0;

    if (!d->cont)
        d->lineno++;
    if (n > 0 && p[n - 1] == '\n')
        eoln = n > 1 && p[n - 2] == '\r' ? 2 : 1;
    if (!dg_delimiter(d, p, n)) {
        switch (d->st) {
        case ST_HDR:
            dg_header_line(d, p, n, eoln);
            break;
        case ST_LEAF:
            dg_leaf_line(d, p, n, eoln);
            break;
        default:
            dg_text_line(d, p, n, eoln);
            break;
        }
    }
    d->cont = eoln == 0;
    d->llen = 0;
}

/* dg_step - take octets into the line until it is complete or full, and
 * handle it then; returns the octets taken */
static size_t dg_step(smtpx_msg_downgrade *d, const uint8_t *p, size_t n)
{
    size_t room = sizeof(d->line) - d->llen, k = n < room ? n : room;
    const uint8_t *lf = memchr(p, '\n', k);

    if (lf != NULL)
        k = (size_t)(lf - p) + 1;
    memcpy(d->line + d->llen, p, k);
    d->llen += k;
    if (lf != NULL || d->llen == sizeof(d->line))
        dg_line(d);
    return k;
}

/* dg_finish - the end of the message */
static void dg_finish(smtpx_msg_downgrade *d)
{
    if (d->llen > 0)
        dg_line(d);
    if (d->err != 0)
        return;
    if (d->st == ST_HDR) {
        /* A header to the end: no body, an empty leaf. */
        dg_header_end(d, NULL, 0);
        if (d->err != 0)
            return;
    }
    if (d->st == ST_LEAF)
        dg_leaf_end(d, 0);
}

static void dg_begin(smtpx_msg_downgrade *d, int pass)
{
    d->pass = pass;
    d->lineno = 0;
    d->llen = 0;
    d->cont = 0;
    d->depth = 0;
    d->entities = 0;
    d->leaf = 0;
    d->written = 0;
    dg_header_begin(d, 0);
}

/* ---- the API --------------------------------------------------------------
 */

int smtpx_msg_downgrade_new(smtpx_msg_downgrade **out, const smtpx_mem *mem)
{
    smtpx_msg_downgrade *d;

    if (out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!smtpx__mem_valid(mem))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (mem == NULL)
        mem = smtpx__mem_default();
    d = smtpx__calloc(mem, 1, sizeof(*d));
    if (d == NULL)
        return SMTPX_ERR_NOMEM;
    d->mem = *mem;
    smtpx__mstr_init(&d->ct, &d->mem);
    dg_begin(d, P_SCAN);
    *out = d;
    return 0;
}

void smtpx_msg_downgrade_free(smtpx_msg_downgrade *d)
{
    if (d == NULL)
        return;
    smtpx__mstr_free(&d->ct);
    smtpx__free(&d->mem, d->bits);
    smtpx__free(&d->mem, d);
}

int smtpx_msg_downgrade_scan(smtpx_msg_downgrade *d, const void *data,
                             size_t len)
{
    const uint8_t *p = data;

    if (d == NULL || (data == NULL && len > 0))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (d->err != 0)
        return d->err;
    if (d->pass != P_SCAN)
        return SMTPX_ERR_INVALID_STATE;
    while (len > 0 && d->err == 0) {
        size_t k = dg_step(d, p, len);

        p += k;
        len -= k;
    }
    return d->err;
}

int smtpx_msg_downgrade_scan_end(smtpx_msg_downgrade *d, uint64_t *size,
                                 size_t *parts)
{
    if (d == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (d->err != 0)
        return d->err;
    if (d->pass != P_SCAN)
        return SMTPX_ERR_INVALID_STATE;
    dg_finish(d);
    if (d->err != 0)
        return d->err;
    d->leaves = d->leaf;
    d->pass = P_SCANNED;
    if (size != NULL)
        *size = d->size;
    if (parts != NULL)
        *parts = d->nconvert;
    return 0;
}

const char *smtpx_msg_downgrade_why(const smtpx_msg_downgrade *d)
{
    return d == NULL || d->err == 0 ? "" : d->why;
}

int smtpx_msg_downgrade_source(smtpx_msg_downgrade *d, smtpx_msg_read_fn *fn,
                               void *ctx)
{
    if (d == NULL || fn == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (d->pass != P_SCANNED || d->err != 0)
        return SMTPX_ERR_INVALID_STATE;
    d->src = fn;
    d->src_ctx = ctx;
    d->in_off = d->in_len = 0;
    d->in_eof = 0;
    d->out_off = d->out_len = 0;
    dg_begin(d, P_CONVERT);
    return d->err;
}

/* dg_fill - the next input from the source; 0, or an error (set) */
static int dg_fill(smtpx_msg_downgrade *d)
{
    smtpx_ssize n = d->src(d->src_ctx, d->in, sizeof(d->in));

    if (n < 0)
        return dg_fail(d, (int)n, "the source failed");
    if ((size_t)n > sizeof(d->in))
        return dg_fail(d, SMTPX_ERR_IO, "the source failed");
    d->in_off = 0;
    d->in_len = (size_t)n;
    d->in_eof = n == 0;
    return 0;
}

smtpx_ssize smtpx_msg_downgrade_read(void *vd, uint8_t *buf, size_t len)
{
    smtpx_msg_downgrade *d = vd;

    if (d == NULL || buf == NULL || len == 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (d->pass != P_CONVERT && d->pass != P_DONE)
        return d->err != 0 ? d->err : SMTPX_ERR_INVALID_STATE;
    for (;;) {
        if (d->out_off < d->out_len) {
            size_t n = d->out_len - d->out_off;

            if (n > len)
                n = len;
            memcpy(buf, d->out + d->out_off, n);
            d->out_off += n;
            return (smtpx_ssize)n;
        }
        d->out_off = d->out_len = 0;
        if (d->err != 0)
            return d->err;
        if (d->pass == P_DONE)
            return 0;
        if (d->in_off < d->in_len) {
            d->in_off += dg_step(d, d->in + d->in_off, d->in_len - d->in_off);
        } else if (d->in_eof) {
            dg_finish(d);
            if (d->err == 0 && (d->leaf != d->leaves || d->written != d->size))
                dg_fail(d, SMTPX_ERR_CORRUPT, "not the message scanned");
            d->pass = P_DONE;
        } else if (dg_fill(d) != 0) {
            return d->err;
        }
    }
}
