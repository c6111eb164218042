/*
 * msg_parser - the streaming MIME parser (push, constant memory).
 *
 * Exports smtpx_msg_parser_* and smtpx_part_* of <libsmtpx/msg.h>.
 *
 * RFC 5322 (header fields, unfolding 2.2.3), RFC 2045 (Content-Type,
 * Content-Transfer-Encoding), RFC 2046 5.1 (multipart: boundaries,
 * preamble, epilogue; digest 5.1.5), RFC 2183 (Content-Disposition),
 * RFC 2231, RFC 2047, RFC 6532 (UTF-8 header text), RFC 3501 6.4.5 (part
 * numbers).  Where the RFCs leave a choice or real mail breaks them, the
 * parser does what Python's email package does (a boundary line is "--",
 * the boundary, an optional "--", blanks, a line end; any enclosing
 * multipart's boundary ends the inner parts; the first of a repeated
 * Content-* field counts), so that both read a message alike.
 *
 * Invariants:
 *  - Memory does not grow with the input: one header line and field (both
 *    bounded by limits), the boundaries of the open multiparts (bounded by
 *    the depth and boundary limits), a stash of at most one boundary line
 *    and an 8 KiB decoding buffer.
 *  - Content is scanned with memchr() for line ends; only a line that
 *    starts with "-" is compared with the boundaries, and spans of content
 *    between those go to the decoder (or, for 7bit/8bit/binary, to the
 *    application) in one piece, straight from the caller's buffer.
 *  - The line end before a boundary belongs to the boundary (RFC 2046
 *    5.1.1): it is held back until the next line shows whether it starts
 *    with a boundary.
 *  - Input split anywhere gives the same callbacks (pieces of content may
 *    be cut differently) as the whole.
 *  - Every begun part gets exactly one on_part_end, unless the parse
 *    fails or is stopped, or the parser is reset.
 */
#include <string.h>

#include <libsmtpx/msg.h>

#include "base/mem.h"
#include "msg/codec.h"
#include "msg/tables.h"
#include "msg/words.h"

/* Blanks allowed after a boundary (Python allows any number; a line that
 * long is content here). */
#define PARSER_WS_MAX 64
/* The decoding buffer. */
#define PARSER_OBUF 8192

/* A part: each string is an smtpx__mstr, so that a part is moved onto the
 * frame stack by copying the structure. */
struct smtpx_part {
    smtpx__mstr path;
    unsigned depth;
    smtpx__mstr type;    /* "type/subtype", lower case */
    smtpx__mstr params;  /* "name\0value\0" pairs */
    smtpx__mstr disp;    /* disposition type, lower case */
    smtpx__mstr dparams; /* its parameters */
    smtpx__mstr cid;
    int has_type, has_disp, has_cid;
    int cte;
    int container;
    int skip;         /* the application passes over it */
    unsigned defects; /* kinds reported, as bits */
    uint64_t size;
};

enum { FRAME_MULTIPART, FRAME_MESSAGE };

typedef struct parser_frame {
    smtpx_part part; /* the container */
    int kind;
    int closed; /* the close delimiter was seen: in the epilogue */
    int digest;
    unsigned nchild;
    size_t bound, blen; /* the boundary: a parameter in part.params */
} parser_frame;

enum {
    ST_HEADER, /* reading the header of cur */
    ST_LEAF,   /* the content of cur (or a skipped part) */
    ST_CONT    /* the preamble or epilogue of the top frame */
};

/* What bcheck() decides about a line start. */
enum { BC_NO, BC_MAYBE, BC_MATCH };

struct smtpx_msg_parser {
    smtpx_mem mem;
    unsigned flags;
    smtpx_msg_callbacks cbs;
    void *user_data;
    size_t lim[SMTPX_MSG_LIMIT_COUNT];

    int err; /* sticky */
    int limit_hit;
    int in_cb;
    int started, ended;
    size_t nparts, ndefects;

    int state;
    smtpx_part cur;
    int cur_is_msg;      /* cur is a message: root, or inside message/ */
    smtpx__mstr msgpath; /* its message's path while its header is read */
    parser_frame *frames;
    size_t nframes, frames_cap;
    size_t ncand; /* multiparts whose boundaries may come */

    /* Line state. */
    int bol;         /* at the start of a line */
    uint8_t held[2]; /* the line end before it, not yet given out */
    size_t nheld;
    int held_cr;    /* inside a line: a CR ended the last input */
    uint8_t *stash; /* the start of a line that may be a boundary */
    size_t nstash, stash_cap;

    /* Header reading. */
    smtpx__mstr hline; /* the physical line so far */
    smtpx__mstr field; /* the field so far, unfolded */
    smtpx__mstr dec;   /* a decoded value */
    smtpx__mstr hsave; /* the first Content-* values */
    size_t save_off[4], save_len[4];
    int save_has[4];
    size_t hcount, hsize;
    int first_line;
    smtpx__mstr replay, replay2; /* a line that turned out to be body */

    /* Decoding. */
    smtpx__b64dec b64;
    smtpx__qpdec qp;
    uint8_t obuf[PARSER_OBUF];

    /* The message's own fields the application asked to keep
     * (smtpx_msg_parser_keep): names in keep_names, NUL after each; the
     * first value of each in keep_vals. */
    smtpx__mstr keep_names, keep_vals;
    size_t keep_name_off[SMTPX_MSG_KEEP_MAX], keep_off[SMTPX_MSG_KEEP_MAX];
    int keep_has[SMTPX_MSG_KEEP_MAX];
    size_t nkeep;
};

/* The Content-* fields kept, in hsave. */
enum { SAVE_TYPE, SAVE_CTE, SAVE_DISP, SAVE_CID };
static const char *const save_names[4] = {"content-type",
                                          "content-transfer-encoding",
                                          "content-disposition", "content-id"};

/* ---- parts ------------------------------------------------------------------
 */

static void part_init(smtpx_part *part, const smtpx_mem *mem)
{
    memset(part, 0, sizeof(*part));
    smtpx__mstr_init(&part->path, mem);
    smtpx__mstr_init(&part->type, mem);
    smtpx__mstr_init(&part->params, mem);
    smtpx__mstr_init(&part->disp, mem);
    smtpx__mstr_init(&part->dparams, mem);
    smtpx__mstr_init(&part->cid, mem);
}

static void part_free(smtpx_part *part)
{
    smtpx__mstr_free(&part->path);
    smtpx__mstr_free(&part->type);
    smtpx__mstr_free(&part->params);
    smtpx__mstr_free(&part->disp);
    smtpx__mstr_free(&part->dparams);
    smtpx__mstr_free(&part->cid);
}

/* part_reset - empty the part for reuse, keeping its memory */
static void part_reset(smtpx_part *part)
{
    smtpx__mstr_clear(&part->path);
    smtpx__mstr_clear(&part->type);
    smtpx__mstr_clear(&part->params);
    smtpx__mstr_clear(&part->disp);
    smtpx__mstr_clear(&part->dparams);
    smtpx__mstr_clear(&part->cid);
    part->depth = 0;
    part->has_type = part->has_disp = part->has_cid = 0;
    part->cte = SMTPX_CTE_7BIT;
    part->container = part->skip = 0;
    part->defects = 0;
    part->size = 0;
}

static int part_nomem(const smtpx_part *part)
{
    return part->path.err || part->type.err || part->params.err ||
           part->disp.err || part->dparams.err || part->cid.err;
}

/* ---- callbacks
 * ---------------------------------------------------------------- */

/* parser_result - act on what a callback returned; 1 if it said skip */
static int parser_result(smtpx_msg_parser *p, int r)
{
    if (r == 0)
        return 0;
    if (r == SMTPX_MSG_SKIP)
        return 1;
    if (p->err == 0)
        p->err = r == SMTPX_MSG_STOP ? SMTPX_ERR_STOPPED
                                     : SMTPX_ERR_CALLBACK_FAILURE;
    return 0;
}

static void parser_fail(smtpx_msg_parser *p, int err)
{
    if (p->err == 0)
        p->err = err;
}

static void parser_limit(smtpx_msg_parser *p, int limit)
{
    if (p->err == 0) {
        p->err = SMTPX_ERR_LIMIT;
        p->limit_hit = limit;
    }
}

static void parser_defect(smtpx_msg_parser *p, smtpx_part *part, int defect)
{
    int r;

    if (part != NULL) {
        if (part->defects & (1u << defect))
            return;
        part->defects |= 1u << defect;
    }
    p->ndefects++;
    if (p->cbs.on_defect == NULL || p->err != 0)
        return;
    p->in_cb = 1;
    r = p->cbs.on_defect(p, part, defect, p->user_data);
    p->in_cb = 0;
    if (r != SMTPX_MSG_SKIP)
        parser_result(p, r);
}

/* parser_begin - on_part_begin; 1 if the application skips the part */
static int parser_begin(smtpx_msg_parser *p, smtpx_part *part)
{
    int r;

    if (p->cbs.on_part_begin == NULL)
        return 0;
    p->in_cb = 1;
    r = p->cbs.on_part_begin(p, part, p->user_data);
    p->in_cb = 0;
    return parser_result(p, r);
}

static void parser_end_cb(smtpx_msg_parser *p, smtpx_part *part)
{
    int r;

    if (p->cbs.on_part_end == NULL || p->err != 0)
        return;
    p->in_cb = 1;
    r = p->cbs.on_part_end(p, part, p->user_data);
    p->in_cb = 0;
    if (r != SMTPX_MSG_SKIP)
        parser_result(p, r);
}

/* parser_deliver - decoded content of cur to the application */
static void parser_deliver(smtpx_msg_parser *p, const uint8_t *d, size_t n)
{
    int r;

    if (n == 0 || p->cur.skip || p->err != 0)
        return;
    p->cur.size += n;
    if (p->cbs.on_part_data == NULL)
        return;
    p->in_cb = 1;
    r = p->cbs.on_part_data(p, &p->cur, d, n, p->user_data);
    p->in_cb = 0;
    if (parser_result(p, r))
        p->cur.skip = 1;
}

/* ---- content ----------------------------------------------------------------
 */

/* parser_content - n octets of content in the current state: decoded for a
 * leaf, dropped for a preamble, epilogue or skipped part */
static void parser_content(smtpx_msg_parser *p, const uint8_t *d, size_t n)
{
    size_t k, blk;

    if (n == 0 || p->state != ST_LEAF || p->cur.skip || p->err != 0)
        return;
    if (p->flags & SMTPX_MSG_RAW_CONTENT) {
        parser_deliver(p, d, n);
        return;
    }
    switch (p->cur.cte) {
    case SMTPX_CTE_BASE64:
        blk = (PARSER_OBUF - 3) / 3 * 4;
        while (n > 0 && !p->cur.skip && p->err == 0) {
            k = n < blk ? n : blk;
            parser_deliver(p, p->obuf,
                           smtpx__b64dec_run(&p->b64, d, k, p->obuf));
            d += k;
            n -= k;
        }
        break;
    case SMTPX_CTE_QP:
        blk = PARSER_OBUF - 2;
        while (n > 0 && !p->cur.skip && p->err == 0) {
            k = n < blk ? n : blk;
            parser_deliver(p, p->obuf, smtpx__qpdec_run(&p->qp, d, k, p->obuf));
            d += k;
            n -= k;
        }
        break;
    default:
        parser_deliver(p, d, n);
        break;
    }
}

/* parser_end_leaf - the end of cur's content: the decoder's last octets,
 * its defects, on_part_end */
static void parser_end_leaf(smtpx_msg_parser *p)
{
    smtpx_part *c = &p->cur;

    if (!c->skip && !(p->flags & SMTPX_MSG_RAW_CONTENT) && !c->container) {
        if (c->cte == SMTPX_CTE_BASE64) {
            parser_deliver(p, p->obuf, smtpx__b64dec_end(&p->b64, p->obuf));
            if (p->b64.bad)
                parser_defect(p, c, SMTPX_MSG_DEFECT_BAD_BASE64);
        } else if (c->cte == SMTPX_CTE_QP) {
            parser_deliver(p, p->obuf, smtpx__qpdec_end(&p->qp, p->obuf));
            if (p->qp.bad)
                parser_defect(p, c, SMTPX_MSG_DEFECT_BAD_QP);
        }
    }
    parser_end_cb(p, c);
    part_reset(c);
    p->state = ST_CONT;
}

/* ---- structure
 * ---------------------------------------------------------------- */

static void parser_count_cand(smtpx_msg_parser *p)
{
    size_t i;

    p->ncand = 0;
    for (i = 0; i < p->nframes; i++)
        if (p->frames[i].kind == FRAME_MULTIPART && !p->frames[i].closed)
            p->ncand++;
}

/* parser_begin_entity - a new entity's header starts: a part of a
 * multipart (path given), or a message (its path is msgpath's) */
static void parser_begin_entity(smtpx_msg_parser *p, const char *path,
                                unsigned depth, int is_msg)
{
    part_reset(&p->cur);
    if (depth > p->lim[SMTPX_MSG_LIMIT_DEPTH]) {
        parser_limit(p, SMTPX_MSG_LIMIT_DEPTH);
        return;
    }
    p->cur.depth = depth;
    smtpx__mstr_adds(&p->cur.path, path);
    smtpx__mstr_clear(&p->msgpath);
    smtpx__mstr_adds(&p->msgpath, path);
    p->cur_is_msg = is_msg;
    p->state = ST_HEADER;
    p->hcount = p->hsize = 0;
    p->first_line = 1;
    smtpx__mstr_clear(&p->hsave);
    memset(p->save_has, 0, sizeof(p->save_has));
    if (p->cur.path.err || p->msgpath.err)
        parser_fail(p, SMTPX_ERR_NOMEM);
}

static void parser_child(smtpx_msg_parser *p, parser_frame *f)
{
    char num[24];
    smtpx__mstr path;
    unsigned n = ++f->nchild;
    size_t k = 0;
    char tmp[16];

    /* The child's number, without printf. */
    do {
        tmp[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0 && k < sizeof(tmp));
    n = 0;
    while (k > 0)
        num[n++] = tmp[--k];
    num[n] = '\0';
    smtpx__mstr_init(&path, &p->mem);
    if (f->part.path.len > 0) {
        smtpx__mstr_add(&path, f->part.path.p, f->part.path.len);
        smtpx__mstr_addc(&path, '.');
    }
    smtpx__mstr_adds(&path, num);
    if (path.err) {
        parser_fail(p, SMTPX_ERR_NOMEM);
    } else {
        parser_begin_entity(p, path.p, f->part.depth + 1, 0);
        if (p->err == 0 && f->digest)
            p->cur.container = -1; /* marks "default message/rfc822" */
    }
    smtpx__mstr_free(&path);
}

/* parser_pop - close the top frame */
static void parser_pop(smtpx_msg_parser *p)
{
    parser_frame *f = &p->frames[p->nframes - 1];

    if (f->kind == FRAME_MULTIPART && !f->closed)
        parser_defect(p, &f->part, SMTPX_MSG_DEFECT_NO_END_BOUNDARY);
    parser_end_cb(p, &f->part);
    part_free(&f->part);
    p->nframes--;
    parser_count_cand(p);
}

static int parser_push(smtpx_msg_parser *p, int kind)
{
    parser_frame *f;

    if (p->nframes == p->frames_cap) {
        size_t cap = p->frames_cap ? p->frames_cap * 2 : 4;
        f = smtpx__realloc(&p->mem, p->frames, cap * sizeof(*f));
        if (f == NULL) {
            parser_fail(p, SMTPX_ERR_NOMEM);
            return -1;
        }
        p->frames = f;
        p->frames_cap = cap;
    }
    f = &p->frames[p->nframes++];
    memset(f, 0, sizeof(*f));
    f->part = p->cur; /* the frame owns the strings now */
    f->kind = kind;
    part_init(&p->cur, &p->mem);
    part_reset(&p->cur);
    return 0;
}

/* parser_fill_part - cur's type, parameters, disposition, transfer
 * encoding and Content-ID from its saved fields */
static void parser_fill_part(smtpx_msg_parser *p)
{
    smtpx_part *c = &p->cur;
    unsigned bad = 0;
    int digest_child = c->container == -1;
    const char *t;
    size_t i;

    c->container = 0;
    if (p->save_has[SAVE_TYPE]) {
        smtpx__params_parse(p->hsave.p + p->save_off[SAVE_TYPE],
                            p->save_len[SAVE_TYPE], &c->type, &c->params, &bad);
        t = c->type.p != NULL ? c->type.p : "";
        /* "type/subtype", each a non-empty token (Python: one "/"). */
        {
            const char *slash = strchr(t, '/');
            int ok = slash != NULL && slash != t && slash[1] != '\0' &&
                     strchr(slash + 1, '/') == NULL;
            for (i = 0; ok && t[i] != '\0'; i++)
                if ((unsigned char)t[i] <= ' ' || (unsigned char)t[i] >= 127 ||
                    strchr("()<>@,;:\\\"[]?=", t[i]) != NULL)
                    ok = 0;
            if (!ok) {
                parser_defect(p, c, SMTPX_MSG_DEFECT_BAD_CONTENT_TYPE);
                smtpx__mstr_clear(&c->type);
            }
        }
    }
    if (c->type.len == 0) {
        smtpx__mstr_clear(&c->type);
        smtpx__mstr_adds(&c->type,
                         digest_child ? "message/rfc822" : "text/plain");
    }
    if (bad & SMTPX__WORDS_BAD_PARAM)
        parser_defect(p, c, SMTPX_MSG_DEFECT_BAD_PARAM);
    if (bad & SMTPX__WORDS_BAD_WORD)
        parser_defect(p, c, SMTPX_MSG_DEFECT_BAD_ENCODED_WORD);
    bad = 0;
    if (p->save_has[SAVE_DISP]) {
        smtpx__params_parse(p->hsave.p + p->save_off[SAVE_DISP],
                            p->save_len[SAVE_DISP], &c->disp, &c->dparams,
                            &bad);
        c->has_disp = c->disp.len > 0;
        if (bad & SMTPX__WORDS_BAD_PARAM)
            parser_defect(p, c, SMTPX_MSG_DEFECT_BAD_PARAM);
    }
    c->cte = SMTPX_CTE_7BIT;
    if (p->save_has[SAVE_CTE]) {
        int cte = smtpx__cte_from_name(p->hsave.p + p->save_off[SAVE_CTE],
                                       p->save_len[SAVE_CTE]);
        if (cte == 0) {
            parser_defect(p, c, SMTPX_MSG_DEFECT_BAD_CTE);
            cte = SMTPX_CTE_8BIT;
        }
        c->cte = cte;
    }
    if (p->save_has[SAVE_CID]) {
        const char *s = p->hsave.p + p->save_off[SAVE_CID];
        size_t n = p->save_len[SAVE_CID];
        while (n > 0 && (*s == '<' || *s == ' ' || *s == '\t'))
            s++, n--;
        while (n > 0 &&
               (s[n - 1] == '>' || s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        smtpx__mstr_add(&c->cid, s, n);
        c->has_cid = 1;
    }
    c->has_type = 1;
    if (part_nomem(c))
        parser_fail(p, SMTPX_ERR_NOMEM);
}

/* parser_end_headers - cur's header is complete: begin the part */
static void parser_end_headers(smtpx_msg_parser *p)
{
    smtpx_part *c = &p->cur;
    const char *type, *boundary = NULL;
    int kind = -1, skip;

    parser_fill_part(p);
    if (p->err != 0)
        return;
    type = c->type.p;
    if (strncmp(type, "multipart/", 10) == 0) {
        boundary = smtpx__params_get(c->params.p, c->params.len, "boundary");
        if (boundary == NULL || boundary[0] == '\0') {
            parser_defect(p, c, SMTPX_MSG_DEFECT_NO_BOUNDARY);
        } else if (strlen(boundary) > p->lim[SMTPX_MSG_LIMIT_BOUNDARY]) {
            parser_limit(p, SMTPX_MSG_LIMIT_BOUNDARY);
            return;
        } else {
            kind = FRAME_MULTIPART;
        }
    } else if (strncmp(type, "message/", 8) == 0 &&
               strcmp(type, "message/delivery-status") != 0) {
        kind = FRAME_MESSAGE;
    }
    /* A message's body is numbered after it (RFC 3501 6.4.5). */
    if (p->cur_is_msg && kind != FRAME_MULTIPART) {
        if (c->path.len > 0)
            smtpx__mstr_addc(&c->path, '.');
        smtpx__mstr_addc(&c->path, '1');
        if (c->path.err) {
            parser_fail(p, SMTPX_ERR_NOMEM);
            return;
        }
    }
    if (++p->nparts > p->lim[SMTPX_MSG_LIMIT_PARTS]) {
        parser_limit(p, SMTPX_MSG_LIMIT_PARTS);
        return;
    }
    c->container = kind >= 0;
    skip = parser_begin(p, c);
    if (p->err != 0)
        return;
    p->bol = 1;
    p->nheld = 0;
    if (kind < 0 || skip) {
        c->skip = skip;
        p->state = ST_LEAF;
        smtpx__b64dec_init(&p->b64);
        smtpx__qpdec_init(&p->qp);
        return;
    }
    if (parser_push(p, kind) != 0)
        return;
    if (kind == FRAME_MULTIPART) {
        parser_frame *f = &p->frames[p->nframes - 1];
        /* (c is the new, empty cur now; the frame has the strings.) */
        f->bound = (size_t)(smtpx__params_get(f->part.params.p,
                                              f->part.params.len, "boundary") -
                            f->part.params.p);
        f->blen = strlen(f->part.params.p + f->bound);
        f->digest = strcmp(f->part.type.p, "multipart/digest") == 0;
        p->state = ST_CONT;
        parser_count_cand(p);
    } else {
        parser_frame *f = &p->frames[p->nframes - 1];
        parser_begin_entity(p, f->part.path.p, f->part.depth + 1, 1);
    }
}

/* parser_close_to - end what is open above frame level (-1: everything) */
static void parser_close_to(smtpx_msg_parser *p, long level)
{
    while (p->err == 0) {
        if (p->state == ST_HEADER) {
            parser_end_headers(p);
            continue;
        }
        if (p->state == ST_LEAF) {
            parser_end_leaf(p);
            continue;
        }
        if ((long)p->nframes - 1 <= level)
            break;
        parser_pop(p);
        p->state = ST_CONT;
    }
}

/* parser_boundary - a boundary line of frame level */
static void parser_boundary(smtpx_msg_parser *p, size_t level, int close)
{
    parser_frame *f;

    /* Boundary lines one after another make no empty parts (Python's
     * reading of the RFC 2046 grammar). */
    if (!close && p->state == ST_HEADER && p->nframes == level + 1 &&
        p->frames[level].nchild > 0 && p->hsize == 0 && p->hline.len == 0 &&
        p->field.len == 0) {
        p->bol = 1;
        p->nheld = 0;
        return;
    }
    parser_close_to(p, (long)level);
    if (p->err != 0)
        return;
    f = &p->frames[level];
    p->bol = 1;
    p->nheld = 0;
    if (close) {
        f->closed = 1;
        p->state = ST_CONT;
        parser_count_cand(p);
    } else {
        parser_child(p, f);
    }
}

/* ---- boundaries
 * ------------------------------------------------------------------ */

/* bcheck - is the line starting at s (n octets so far) a boundary line?
 * BC_MATCH sets *len (the line with its end), *level and *close; BC_NO
 * means it is not, BC_MAYBE that more octets are needed. */
static int bcheck(const smtpx_msg_parser *p, const uint8_t *s, size_t n,
                  int at_eof, size_t *len, size_t *level, int *close)
{
    size_t fi, j, ws;
    int maybe = 0;

    if (n == 0)
        return at_eof ? BC_NO : BC_MAYBE;
    if (s[0] != '-')
        return BC_NO;
    if (n < 2)
        return at_eof ? BC_NO : BC_MAYBE;
    if (s[1] != '-')
        return BC_NO;
    for (fi = p->nframes; fi-- > 0;) {
        const parser_frame *f = &p->frames[fi];
        const char *b;
        size_t m;
        int cl = 0;

        if (f->kind != FRAME_MULTIPART || f->closed)
            continue;
        b = f->part.params.p + f->bound;
        m = n - 2 < f->blen ? n - 2 : f->blen;
        if (memcmp(s + 2, b, m) != 0)
            continue;
        if (n - 2 < f->blen) {
            maybe = 1;
            continue;
        }
        j = 2 + f->blen;
        if (j < n && s[j] == '-') {
            if (j + 1 >= n) {
                maybe = 1;
                continue;
            }
            if (s[j + 1] != '-')
                continue;
            cl = 1;
            j += 2;
        }
        for (ws = j; j < n && (s[j] == ' ' || s[j] == '\t'); j++)
            ;
        if (j - ws > PARSER_WS_MAX)
            continue;
        if (j == n) {
            if (at_eof) {
                *len = n;
                *level = fi;
                *close = cl;
                return BC_MATCH;
            }
            maybe = 1;
            continue;
        }
        if (s[j] == '\n' || (s[j] == '\r' && j + 1 < n && s[j + 1] == '\n')) {
            *len = j + (s[j] == '\r' ? 2 : 1);
            *level = fi;
            *close = cl;
            return BC_MATCH;
        }
        if (s[j] == '\r' && j + 1 == n) {
            if (at_eof) {
                *len = n;
                *level = fi;
                *close = cl;
                return BC_MATCH;
            }
            maybe = 1;
        }
    }
    return maybe && !at_eof ? BC_MAYBE : BC_NO;
}

/* ---- headers
 * ------------------------------------------------------------------ */

static int parser_ieq(const char *a, size_t n, const char *b)
{
    size_t i;

    for (i = 0; i < n; i++) {
        char c = a[i] >= 'A' && a[i] <= 'Z' ? (char)(a[i] - 'A' + 'a') : a[i];
        if (b[i] == '\0' || c != b[i])
            return 0;
    }
    return b[n] == '\0';
}

/* parser_kept - the index of a kept name, or -1 */
static int parser_kept(const smtpx_msg_parser *p, const char *name, size_t n)
{
    size_t k, i;

    for (k = 0; k < p->nkeep; k++) {
        const char *kn = p->keep_names.p + p->keep_name_off[k];
        for (i = 0; i < n && kn[i] != '\0'; i++) {
            char c = name[i] >= 'A' && name[i] <= 'Z'
                         ? (char)(name[i] - 'A' + 'a')
                         : name[i];
            if (c != kn[i])
                break;
        }
        if (i == n && kn[i] == '\0')
            return (int)k;
    }
    return -1;
}

/* parser_keep_value - the first value of a kept field of the message's
 * own header (not a part's, not an enclosed message's) */
static void parser_keep_value(smtpx_msg_parser *p, int k, const char *v,
                              size_t vlen)
{
    if (k < 0 || p->keep_has[k] || smtpx_part_path(&p->cur)[0] != '\0')
        return;
    p->keep_off[k] = p->keep_vals.len;
    p->keep_has[k] = 1;
    smtpx__mstr_add(&p->keep_vals, v, vlen);
    smtpx__mstr_add(&p->keep_vals, "", 1);
    if (p->keep_vals.err)
        parser_fail(p, SMTPX_ERR_NOMEM);
}

/* parser_field_done - the field in p->field is complete */
static void parser_field_done(smtpx_msg_parser *p)
{
    smtpx__mstr *f = &p->field;
    const char *colon, *v;
    size_t nlen, vlen, k;
    int r, keep;

    if (f->len == 0)
        return;
    colon = memchr(f->p, ':', f->len);
    nlen = (size_t)(colon - f->p);
    v = colon + 1;
    vlen = f->len - nlen - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen > 0 &&
           (v[vlen - 1] == ' ' || v[vlen - 1] == '\t' || v[vlen - 1] == '\r'))
        vlen--;
    if (++p->hcount > p->lim[SMTPX_MSG_LIMIT_HEADER_COUNT]) {
        parser_limit(p, SMTPX_MSG_LIMIT_HEADER_COUNT);
        return;
    }
    for (k = 0; k < 4; k++) {
        if (!p->save_has[k] && parser_ieq(f->p, nlen, save_names[k])) {
            p->save_off[k] = p->hsave.len;
            p->save_len[k] = vlen;
            p->save_has[k] = 1;
            smtpx__mstr_add(&p->hsave, v, vlen);
            if (p->hsave.err) {
                parser_fail(p, SMTPX_ERR_NOMEM);
                return;
            }
        }
    }
    if (!smtpx__utf8_valid((const uint8_t *)v, vlen))
        parser_defect(p, &p->cur, SMTPX_MSG_DEFECT_EIGHT_BIT_HEADER);
    keep =
        smtpx_part_path(&p->cur)[0] == '\0' ? parser_kept(p, f->p, nlen) : -1;
    if ((p->cbs.on_header != NULL || (keep >= 0 && !p->keep_has[keep])) &&
        p->err == 0) {
        f->p[nlen] = '\0';
        if (p->flags & SMTPX_MSG_DECODE_WORDS) {
            unsigned bad = 0;
            smtpx__mstr_clear(&p->dec);
            smtpx__words_decode(&p->dec, v, vlen, &bad);
            smtpx__mstr_add(&p->dec, "", 0);
            if (p->dec.err) {
                parser_fail(p, SMTPX_ERR_NOMEM);
                return;
            }
            if (bad & SMTPX__WORDS_BAD_WORD)
                parser_defect(p, &p->cur, SMTPX_MSG_DEFECT_BAD_ENCODED_WORD);
            v = p->dec.p;
            vlen = p->dec.len;
        } else {
            ((char *)v)[vlen] = '\0';
        }
        parser_keep_value(p, keep, v, vlen);
        if (p->err == 0 && p->cbs.on_header != NULL) {
            /* During on_header the path is the message's for a message
             * header (set in parser_begin_entity). */
            p->in_cb = 1;
            r = p->cbs.on_header(p, &p->cur, f->p, nlen, v, vlen, p->user_data);
            p->in_cb = 0;
            parser_result(p, r);
        }
    }
    smtpx__mstr_clear(f);
}

/* parser_is_field - does the line start a field (Python's headerRE: any
 * run of printable ASCII but ":" and then ":")? */
static int parser_is_field(const char *l, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)l[i];
        if (c == ':')
            return 1;
        if (c < 0x21 || c > 0x7e)
            return 0;
    }
    return 0;
}

/* parser_header_line - one physical header line (with its line end, if
 * any) */
static void parser_header_line(smtpx_msg_parser *p, char *l, size_t n)
{
    size_t len = n;

    if (len > 0 && l[len - 1] == '\n')
        len--;
    if (len > 0 && l[len - 1] == '\r')
        len--;
    p->hsize += n;
    if (p->hsize > p->lim[SMTPX_MSG_LIMIT_HEADER_SIZE]) {
        parser_limit(p, SMTPX_MSG_LIMIT_HEADER_SIZE);
        return;
    }
    if (len == 0) {
        parser_field_done(p);
        if (p->err == 0)
            parser_end_headers(p);
        return;
    }
    if (l[0] == ' ' || l[0] == '\t') {
        if (p->field.len > 0)
            smtpx__mstr_add(&p->field, l, len);
        else
            parser_defect(p, &p->cur, SMTPX_MSG_DEFECT_BAD_HEADER);
    } else if (parser_is_field(l, len)) {
        parser_field_done(p);
        smtpx__mstr_add(&p->field, l, len);
    } else if (len >= 5 && memcmp(l, "From ", 5) == 0) {
        /* An mbox "From " line: no field. */
        parser_field_done(p);
    } else {
        /* Not a header: the body starts here (RFC 5322 has no such
         * message; Python reads it the same way). */
        parser_defect(p, &p->cur, SMTPX_MSG_DEFECT_BAD_HEADER);
        parser_field_done(p);
        if (p->err == 0)
            parser_end_headers(p);
        smtpx__mstr_clear(&p->replay);
        smtpx__mstr_add(&p->replay, l, n);
        if (p->replay.err)
            parser_fail(p, SMTPX_ERR_NOMEM);
        return;
    }
    p->first_line = 0;
    if (p->field.err)
        parser_fail(p, SMTPX_ERR_NOMEM);
    else if (p->field.len > p->lim[SMTPX_MSG_LIMIT_HEADER_SIZE])
        parser_limit(p, SMTPX_MSG_LIMIT_HEADER_SIZE);
}

/* parser_header_bytes - inside a header line: up to its end */
static size_t parser_header_bytes(smtpx_msg_parser *p, const uint8_t *in,
                                  size_t len)
{
    const uint8_t *lf = memchr(in, '\n', len);
    size_t k = lf != NULL ? (size_t)(lf - in) + 1 : len;

    if (p->hline.len + k > p->lim[SMTPX_MSG_LIMIT_HEADER_LINE]) {
        parser_limit(p, SMTPX_MSG_LIMIT_HEADER_LINE);
        return len;
    }
    smtpx__mstr_add(&p->hline, in, k);
    if (p->hline.err) {
        parser_fail(p, SMTPX_ERR_NOMEM);
        return len;
    }
    if (lf != NULL) {
        p->bol = 1;
        parser_header_line(p, p->hline.p, p->hline.len);
        smtpx__mstr_clear(&p->hline);
    }
    return k;
}

/* ---- the scanner
 * ---------------------------------------------------------------- */

static void parser_emit_held(smtpx_msg_parser *p)
{
    if (p->nheld > 0) {
        size_t n = p->nheld;
        p->nheld = 0;
        parser_content(p, p->held, n);
    }
}

/* parser_body_bytes - inside a line of content: give out content up to the
 * next line start that may be a boundary (one that begins with "-"),
 * holding back the line end before it */
static size_t parser_body_bytes(smtpx_msg_parser *p, const uint8_t *in,
                                size_t len)
{
    size_t i = 0, span = 0;

    if (p->held_cr) {
        p->held_cr = 0;
        if (in[0] == '\n') {
            p->held[0] = '\r';
            p->held[1] = '\n';
            p->nheld = 2;
            p->bol = 1;
            return 1;
        }
        parser_content(p, (const uint8_t *)"\r", 1);
    }
    if (p->ncand == 0) {
        /* No boundary can come: everything is content. */
        parser_content(p, in, len);
        return len;
    }
    for (;;) {
        const uint8_t *lf = memchr(in + i, '\n', len - i);
        size_t k, eol;

        if (lf == NULL) {
            size_t end = len;
            if (in[len - 1] == '\r' && len > span) {
                end = len - 1;
                p->held_cr = 1;
            }
            parser_content(p, in + span, end - span);
            return len;
        }
        k = (size_t)(lf - in);
        eol = k > i && in[k - 1] == '\r' ? k - 1 : k;
        i = k + 1;
        if (i < len && in[i] != '-')
            continue;
        /* A line that may be a boundary, or the end of the input. */
        parser_content(p, in + span, eol - span);
        memcpy(p->held, in + eol, i - eol);
        p->nheld = i - eol;
        p->bol = 1;
        return i;
    }
}

/* parser_stash_add - keep octets of a line start that may be a boundary */
static int parser_stash_add(smtpx_msg_parser *p, const uint8_t *in, size_t n)
{
    if (p->stash == NULL) {
        p->stash_cap =
            2 + p->lim[SMTPX_MSG_LIMIT_BOUNDARY] + 2 + PARSER_WS_MAX + 4;
        p->stash = smtpx__malloc(&p->mem, p->stash_cap);
        if (p->stash == NULL) {
            parser_fail(p, SMTPX_ERR_NOMEM);
            return -1;
        }
    }
    if (n > p->stash_cap - p->nstash)
        n = p->stash_cap - p->nstash;
    memcpy(p->stash + p->nstash, in, n);
    p->nstash += n;
    return (int)n;
}

/* parser_not_boundary - the line start (stash) is ordinary text */
static void parser_not_boundary(smtpx_msg_parser *p)
{
    size_t n = p->nstash;

    p->nstash = 0;
    p->bol = 0;
    if (p->state == ST_HEADER) {
        if (p->hline.len + n > p->lim[SMTPX_MSG_LIMIT_HEADER_LINE]) {
            parser_limit(p, SMTPX_MSG_LIMIT_HEADER_LINE);
            return;
        }
        smtpx__mstr_add(&p->hline, p->stash, n);
        if (p->hline.err)
            parser_fail(p, SMTPX_ERR_NOMEM);
    } else {
        parser_emit_held(p);
        parser_content(p, p->stash, n);
    }
}

/* parser_line_start - at the start of a line: decide whether it is a
 * boundary; returns the octets of in taken */
static size_t parser_line_start(smtpx_msg_parser *p, const uint8_t *in,
                                size_t len)
{
    size_t blen = 0, level = 0, old = p->nstash, add = 0;
    int close = 0, r;

    if (p->ncand == 0) {
        p->bol = 0;
        if (p->state != ST_HEADER)
            parser_emit_held(p);
        return 0;
    }
    if (old == 0) {
        r = bcheck(p, in, len, 0, &blen, &level, &close);
        if (r == BC_MAYBE) {
            if (parser_stash_add(p, in, len) < 0)
                return len;
            return len;
        }
        if (r == BC_NO) {
            p->bol = 0;
            if (p->state != ST_HEADER)
                parser_emit_held(p);
            return 0;
        }
        parser_boundary(p, level, close);
        return blen;
    }
    /* Add up to the line end, then decide. */
    {
        const uint8_t *lf = memchr(in, '\n', len);
        size_t want = lf != NULL ? (size_t)(lf - in) + 1 : len;
        int got = parser_stash_add(p, in, want);
        if (got < 0)
            return len;
        add = (size_t)got;
    }
    r = bcheck(p, p->stash, p->nstash, 0, &blen, &level, &close);
    if (r == BC_MAYBE && p->nstash < p->stash_cap)
        return add;
    if (r == BC_MATCH) {
        p->nstash = 0;
        parser_boundary(p, level, close);
        return blen - old;
    }
    /* Not a boundary: the old stash is text; the new octets are read
     * again as the rest of the line. */
    p->nstash = old;
    parser_not_boundary(p);
    return 0;
}

/* parser_run - take input (or a replayed line) */
static void parser_run(smtpx_msg_parser *p, const uint8_t *in, size_t len)
{
    size_t i = 0;

    while (i < len && p->err == 0) {
        if (p->bol)
            i += parser_line_start(p, in + i, len - i);
        else if (p->state == ST_HEADER)
            i += parser_header_bytes(p, in + i, len - i);
        else
            i += parser_body_bytes(p, in + i, len - i);
        /* A line taken for a header that starts the body is read again. */
        while (p->replay.len > 0 && p->err == 0) {
            smtpx__mstr t = p->replay2;
            size_t j = 0;

            p->replay2 = p->replay;
            p->replay = t;
            smtpx__mstr_clear(&p->replay);
            while (j < p->replay2.len && p->err == 0) {
                if (p->bol)
                    j += parser_line_start(p, (uint8_t *)p->replay2.p + j,
                                           p->replay2.len - j);
                else if (p->state == ST_HEADER)
                    j += parser_header_bytes(p, (uint8_t *)p->replay2.p + j,
                                             p->replay2.len - j);
                else
                    j += parser_body_bytes(p, (uint8_t *)p->replay2.p + j,
                                           p->replay2.len - j);
                if (p->replay.len > 0)
                    break;
            }
        }
    }
}

/* ---- public
 * ------------------------------------------------------------------ */

static void parser_init_state(smtpx_msg_parser *p)
{
    p->err = 0;
    p->limit_hit = -1;
    p->started = p->ended = 0;
    p->nparts = p->ndefects = 0;
    p->bol = 1;
    p->nheld = 0;
    p->held_cr = 0;
    p->nstash = 0;
    p->ncand = 0;
    smtpx__mstr_clear(&p->hline);
    smtpx__mstr_clear(&p->field);
    smtpx__mstr_clear(&p->replay);
    smtpx__mstr_clear(&p->replay2);
    smtpx__mstr_clear(&p->keep_vals);
    memset(p->keep_has, 0, sizeof(p->keep_has));
    parser_begin_entity(p, "", 0, 1);
}

int smtpx_msg_parser_new(smtpx_msg_parser **out, const smtpx_mem *mem,
                         unsigned flags, const smtpx_msg_callbacks *cbs,
                         size_t cbs_size, void *user_data)
{
    smtpx_msg_parser *p;
    int i;

    if (out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!smtpx__mem_valid(mem) ||
        (flags & ~(SMTPX_MSG_DECODE_WORDS | SMTPX_MSG_RAW_CONTENT)) != 0 ||
        cbs_size > sizeof(smtpx_msg_callbacks) ||
        (cbs != NULL && cbs_size == 0))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (mem == NULL)
        mem = smtpx__mem_default();
    p = smtpx__calloc(mem, 1, sizeof(*p));
    if (p == NULL)
        return SMTPX_ERR_NOMEM;
    p->mem = *mem;
    p->flags = flags;
    if (cbs != NULL)
        memcpy(&p->cbs, cbs, cbs_size);
    p->user_data = user_data;
    for (i = 0; i < SMTPX_MSG_LIMIT_COUNT; i++)
        p->lim[i] = smtpx_msg_limit_default(i);
    part_init(&p->cur, &p->mem);
    smtpx__mstr_init(&p->msgpath, &p->mem);
    smtpx__mstr_init(&p->hline, &p->mem);
    smtpx__mstr_init(&p->field, &p->mem);
    smtpx__mstr_init(&p->dec, &p->mem);
    smtpx__mstr_init(&p->hsave, &p->mem);
    smtpx__mstr_init(&p->replay, &p->mem);
    smtpx__mstr_init(&p->replay2, &p->mem);
    smtpx__mstr_init(&p->keep_names, &p->mem);
    smtpx__mstr_init(&p->keep_vals, &p->mem);
    parser_init_state(p);
    if (p->err != 0) {
        smtpx_msg_parser_free(p);
        return SMTPX_ERR_NOMEM;
    }
    *out = p;
    return 0;
}

static void parser_clear(smtpx_msg_parser *p)
{
    while (p->nframes > 0)
        part_free(&p->frames[--p->nframes].part);
}

void smtpx_msg_parser_free(smtpx_msg_parser *p)
{
    if (p == NULL)
        return;
    parser_clear(p);
    smtpx__free(&p->mem, p->frames);
    smtpx__free(&p->mem, p->stash);
    part_free(&p->cur);
    smtpx__mstr_free(&p->msgpath);
    smtpx__mstr_free(&p->hline);
    smtpx__mstr_free(&p->field);
    smtpx__mstr_free(&p->dec);
    smtpx__mstr_free(&p->hsave);
    smtpx__mstr_free(&p->replay);
    smtpx__mstr_free(&p->replay2);
    smtpx__mstr_free(&p->keep_names);
    smtpx__mstr_free(&p->keep_vals);
    smtpx__free(&p->mem, p);
}

int smtpx_msg_parser_keep(smtpx_msg_parser *p, const char *name)
{
    size_t n, i;

    if (p == NULL || name == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    n = strlen(name);
    if (n == 0 || n > SMTPX_MSG_KEEP_NAME_MAX)
        return SMTPX_ERR_INVALID_ARGUMENT;
    for (i = 0; i < n; i++) /* RFC 5322 3.6.8 ftext */
        if ((unsigned char)name[i] < 33 || (unsigned char)name[i] > 126 ||
            name[i] == ':')
            return SMTPX_ERR_INVALID_ARGUMENT;
    if (p->started || p->in_cb)
        return SMTPX_ERR_INVALID_STATE;
    if (parser_kept(p, name, n) >= 0)
        return 0;
    if (p->nkeep == SMTPX_MSG_KEEP_MAX)
        return SMTPX_ERR_LIMIT;
    p->keep_name_off[p->nkeep] = p->keep_names.len;
    for (i = 0; i < n; i++)
        smtpx__mstr_addc(&p->keep_names, name[i] >= 'A' && name[i] <= 'Z'
                                             ? (char)(name[i] - 'A' + 'a')
                                             : name[i]);
    smtpx__mstr_add(&p->keep_names, "", 1);
    if (p->keep_names.err) {
        /* Nothing half-added stays: the name is not kept. */
        p->keep_names.err = 0;
        p->keep_names.len = p->keep_name_off[p->nkeep];
        return SMTPX_ERR_NOMEM;
    }
    p->keep_has[p->nkeep++] = 0;
    return 0;
}

const char *smtpx_msg_parser_header(const smtpx_msg_parser *p, const char *name)
{
    int k;

    if (p == NULL || name == NULL)
        return NULL;
    k = parser_kept(p, name, strlen(name));
    return k >= 0 && p->keep_has[k] ? p->keep_vals.p + p->keep_off[k] : NULL;
}

int smtpx_msg_parser_set_limit(smtpx_msg_parser *p, int limit, size_t value)
{
    if (p == NULL || limit < 0 || limit >= SMTPX_MSG_LIMIT_COUNT || value == 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (p->started || p->in_cb)
        return SMTPX_ERR_INVALID_STATE;
    if (limit == SMTPX_MSG_LIMIT_BOUNDARY && value > 65536)
        value = 65536;
    p->lim[limit] = value;
    return 0;
}

int smtpx_msg_parser_feed(smtpx_msg_parser *p, const void *data, size_t len)
{
    if (p == NULL || (data == NULL && len > 0))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (p->in_cb)
        return SMTPX_ERR_INVALID_STATE;
    if (p->err != 0)
        return p->err;
    if (p->ended)
        return SMTPX_ERR_INVALID_STATE;
    p->started = 1;
    if (len > 0)
        parser_run(p, data, len);
    return p->err;
}

int smtpx_msg_parser_end(smtpx_msg_parser *p)
{
    size_t blen = 0, level = 0;
    int close = 0;

    if (p == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (p->in_cb)
        return SMTPX_ERR_INVALID_STATE;
    if (p->err != 0 || p->ended)
        return p->err;
    p->started = 1;
    p->ended = 1;
    /* A line start kept: a boundary without a line end, or text. */
    if (p->nstash > 0) {
        if (bcheck(p, p->stash, p->nstash, 1, &blen, &level, &close) ==
            BC_MATCH) {
            p->nstash = 0;
            parser_boundary(p, level, close);
        } else {
            parser_not_boundary(p);
        }
    }
    if (p->held_cr) {
        p->held_cr = 0;
        parser_content(p, (const uint8_t *)"\r", 1);
    }
    /* No boundary follows: a held line end is content, but for the last
     * part of a multipart that was not closed (Python drops it). */
    if (p->ncand > 0)
        p->nheld = 0;
    if (p->state != ST_HEADER)
        parser_emit_held(p);
    if (p->state == ST_HEADER && p->err == 0) {
        if (p->hline.len > 0) {
            smtpx__mstr line = p->hline;
            /* The last line, without its line end. */
            smtpx__mstr_init(&p->hline, &p->mem);
            parser_header_line(p, line.p, line.len);
            smtpx__mstr_free(&line);
            if (p->replay.len > 0 && p->err == 0) {
                smtpx__mstr t = p->replay;
                smtpx__mstr_init(&p->replay, &p->mem);
                /* The line is text now; the end has no boundary. */
                p->bol = 0;
                parser_content(p, (const uint8_t *)t.p, t.len);
                smtpx__mstr_free(&t);
            }
        }
        if (p->state == ST_HEADER && p->err == 0 && p->hsize > 0)
            parser_defect(p, &p->cur, SMTPX_MSG_DEFECT_NO_HEADER_END);
    }
    parser_close_to(p, -1);
    return p->err;
}

int smtpx_msg_parser_reset(smtpx_msg_parser *p)
{
    if (p == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (p->in_cb)
        return SMTPX_ERR_INVALID_STATE;
    parser_clear(p);
    part_reset(&p->cur);
    parser_init_state(p);
    return p->err;
}

int smtpx_msg_parser_limit_hit(const smtpx_msg_parser *p)
{
    return p != NULL && p->err == SMTPX_ERR_LIMIT ? p->limit_hit : -1;
}

size_t smtpx_msg_parser_defects(const smtpx_msg_parser *p)
{
    return p != NULL ? p->ndefects : 0;
}

size_t smtpx_msg_parser_parts(const smtpx_msg_parser *p)
{
    return p != NULL ? p->nparts : 0;
}

void *smtpx_msg_parser_get_user_data(const smtpx_msg_parser *p)
{
    return p != NULL ? p->user_data : NULL;
}

void smtpx_msg_parser_set_user_data(smtpx_msg_parser *p, void *user_data)
{
    if (p != NULL)
        p->user_data = user_data;
}

/* ---- parts ------------------------------------------------------------------
 */

const char *smtpx_part_path(const smtpx_part *part)
{
    return part != NULL && part->path.p != NULL ? part->path.p : "";
}

unsigned smtpx_part_depth(const smtpx_part *part)
{
    return part != NULL ? part->depth : 0;
}

const char *smtpx_part_type(const smtpx_part *part)
{
    return part != NULL && part->has_type ? part->type.p : NULL;
}

const char *smtpx_part_param(const smtpx_part *part, const char *name)
{
    if (part == NULL || name == NULL || !part->has_type ||
        part->params.p == NULL)
        return NULL;
    return smtpx__params_get(part->params.p, part->params.len, name);
}

const char *smtpx_part_charset(const smtpx_part *part)
{
    return smtpx_part_param(part, "charset");
}

const char *smtpx_part_disposition(const smtpx_part *part)
{
    return part != NULL && part->has_disp ? part->disp.p : NULL;
}

const char *smtpx_part_disposition_param(const smtpx_part *part,
                                         const char *name)
{
    if (part == NULL || name == NULL || !part->has_disp ||
        part->dparams.p == NULL)
        return NULL;
    return smtpx__params_get(part->dparams.p, part->dparams.len, name);
}

const char *smtpx_part_filename(const smtpx_part *part)
{
    const char *f = smtpx_part_disposition_param(part, "filename");
    return f != NULL ? f : smtpx_part_param(part, "name");
}

const char *smtpx_part_content_id(const smtpx_part *part)
{
    return part != NULL && part->has_cid ? part->cid.p : NULL;
}

int smtpx_part_cte(const smtpx_part *part)
{
    return part != NULL && part->has_type ? part->cte : SMTPX_CTE_7BIT;
}

int smtpx_part_is_container(const smtpx_part *part)
{
    return part != NULL && part->container > 0;
}

uint64_t smtpx_part_size(const smtpx_part *part)
{
    return part != NULL ? part->size : 0;
}
