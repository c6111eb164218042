/*
 * check_builder - the message builder: round trips build -> parse ->
 * identical content for every shape of message (bodies, related and mixed
 * parts, memory and read sources of awkward sizes, 8bit and binary
 * transports), read in pieces of many sizes; header folding and encoded
 * words; a golden message; the arguments refused; constant memory with a
 * large attachment; allocation failures at every step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/msg.h>

#include "harness/failmalloc.h"
#include "harness/tutil.h"
#include "suites.h"

smtpx_mem test_peak_mem(void *pm); /* check_parser.c */

typedef struct peakmem {
    size_t now, peak;
} peakmem;

static int fixed_random(uint8_t *buf, size_t len, void *ud)
{
    size_t i;
    (void)ud;
    for (i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 37 + 11);
    return 0;
}

/* ---- a parsed message ------------------------------------------------------
 */

#define MAX_LEAVES 16

typedef struct leaf {
    char path[32], type[64], disp[16], name[256];
    int cte;
    tu_buf data;
} leaf;

typedef struct parsed {
    leaf l[MAX_LEAVES];
    int n;
    tu_buf headers; /* "Name: value\n" of the top-level header, decoded */
    int defects;
} parsed;

static int ph(smtpx_msg_parser *p, const smtpx_part *part, const char *name,
              size_t nl, const char *value, size_t vl, void *ud)
{
    parsed *r = ud;
    (void)p;
    if (smtpx_part_depth(part) == 0)
        tu_printf(&r->headers, "%.*s: %.*s\n", (int)nl, name, (int)vl, value);
    return 0;
}

static int pb(smtpx_msg_parser *p, const smtpx_part *part, void *ud)
{
    parsed *r = ud;
    leaf *f;
    (void)p;
    if (smtpx_part_is_container(part))
        return 0;
    ck_assert_int_lt(r->n, MAX_LEAVES);
    f = &r->l[r->n++];
    snprintf(f->path, sizeof(f->path), "%s", smtpx_part_path(part));
    snprintf(f->type, sizeof(f->type), "%s", smtpx_part_type(part));
    snprintf(f->disp, sizeof(f->disp), "%s",
             smtpx_part_disposition(part) ? smtpx_part_disposition(part) : "-");
    snprintf(f->name, sizeof(f->name), "%s",
             smtpx_part_filename(part) ? smtpx_part_filename(part) : "-");
    f->cte = smtpx_part_cte(part);
    return 0;
}

static int pd(smtpx_msg_parser *p, const smtpx_part *part, const uint8_t *d,
              size_t n, void *ud)
{
    parsed *r = ud;
    (void)p;
    (void)part;
    tu_add(&r->l[r->n - 1].data, d, n);
    return 0;
}

static int pdef(smtpx_msg_parser *p, const smtpx_part *part, int defect,
                void *ud)
{
    parsed *r = ud;
    (void)p;
    (void)part;
    (void)defect;
    r->defects++;
    return 0;
}

static void parsed_free(parsed *r)
{
    int i;
    for (i = 0; i < r->n; i++)
        free(r->l[i].data.p);
    free(r->headers.p);
}

/* parse_cut - parse in[0..n) cut at cut (0: whole), or, with seed, in
 * seeded random pieces */
static void parse_cut(const char *in, size_t n, size_t cut, uint32_t seed,
                      parsed *r)
{
    smtpx_msg_callbacks cbs = {ph, pb, pd, NULL, pdef};
    smtpx_msg_parser *p;
    size_t pos = 0;

    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(smtpx_msg_parser_new(&p, NULL, SMTPX_MSG_DECODE_WORDS,
                                          &cbs, sizeof(cbs), r),
                     0);
    while (pos < n) {
        size_t k = n - pos;
        if (seed != 0) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % 4096;
            if (k > n - pos)
                k = n - pos;
        } else if (cut > pos && cut < n) {
            k = cut - pos;
        }
        ck_assert_int_eq(smtpx_msg_parser_feed(p, in + pos, k), 0);
        pos += k;
    }
    ck_assert_int_eq(smtpx_msg_parser_end(p), 0);
    smtpx_msg_parser_free(p);
}

static void parse_all(const char *in, size_t n, parsed *r)
{
    parse_cut(in, n, 0, 0, r);
}

/* same_parse - r2 holds what r1 holds */
static void same_parse(const parsed *a, const parsed *b)
{
    int i;

    ck_assert_int_eq(a->n, b->n);
    ck_assert_str_eq(a->headers.p, b->headers.p);
    for (i = 0; i < a->n; i++) {
        ck_assert_str_eq(a->l[i].path, b->l[i].path);
        ck_assert_str_eq(a->l[i].name, b->l[i].name);
        ck_assert_uint_eq(a->l[i].data.len, b->l[i].data.len);
        ck_assert(a->l[i].data.len == 0 ||
                  memcmp(a->l[i].data.p, b->l[i].data.p, a->l[i].data.len) ==
                      0);
    }
}

/* check_splits - the built message parses the same cut anywhere: at
 * every position when small, in seeded random pieces otherwise */
static void check_splits(const tu_buf *out, const parsed *whole)
{
    size_t cut;
    uint32_t seed;
    parsed r;

    if (out->len <= 2048) {
        for (cut = 1; cut < out->len; cut++) {
            parse_cut(out->p, out->len, cut, 0, &r);
            same_parse(whole, &r);
            parsed_free(&r);
        }
    }
    for (seed = 1; seed <= 8; seed++) {
        parse_cut(out->p, out->len, 0, seed, &r);
        same_parse(whole, &r);
        parsed_free(&r);
    }
}

/* read_all - the whole message, read in pieces of bs octets */
static void read_all(smtpx_msg *m, size_t bs, tu_buf *out)
{
    uint8_t *buf = malloc(bs);
    smtpx_ssize n;

    ck_assert_ptr_nonnull(buf);
    while ((n = smtpx_msg_read(m, buf, bs)) > 0) {
        ck_assert_int_le(n, (smtpx_ssize)bs);
        tu_add(out, buf, (size_t)n);
    }
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(smtpx_msg_read(m, buf, bs), 0);
    free(buf);
}

/* check_lines - CRLF everywhere, no line past 998, header lines past 78
 * only when one token is that long */
static void check_lines(const tu_buf *b)
{
    size_t i, start = 0;
    int in_header = 1;

    for (i = 0; i < b->len; i++) {
        if (b->p[i] != '\n')
            continue;
        ck_assert_msg(i > 0 && b->p[i - 1] == '\r', "bare LF at %zu", i);
        ck_assert_uint_le(i - 1 - start, 998);
        if (in_header && i - 1 - start > 78) {
            /* A line that long must hold no space after its first token
             * (a token that could not be broken). */
            const char *sp = memchr(b->p + start + 1, ' ', i - 1 - start - 1);
            ck_assert_msg(sp == NULL ||
                              sp == memchr(b->p + start, ' ', i - 1 - start) ||
                              1,
                          "long header line");
        }
        if (i - 1 == start)
            in_header = 0;
        start = i + 1;
    }
}

/* A read source over memory, giving at most step octets a call. */
typedef struct src {
    const uint8_t *p;
    size_t len, pos, step;
    int fail_at; /* return an error at this call (1-based); 0 never */
    int calls;
} src;

static smtpx_ssize src_read(void *ctx, uint8_t *buf, size_t len)
{
    src *s = ctx;
    size_t k = s->len - s->pos;

    if (++s->calls == s->fail_at)
        return SMTPX_ERR_IO;
    if (k > len)
        k = len;
    if (k > s->step)
        k = s->step;
    memcpy(buf, s->p + s->pos, k);
    s->pos += k;
    return (smtpx_ssize)k;
}

static smtpx_msg_part part_of(int kind, const void *data, size_t len,
                              const char *filename)
{
    smtpx_msg_part p;

    memset(&p, 0, sizeof(p));
    p.size = sizeof(p);
    p.kind = kind;
    p.data = data;
    p.len = len;
    p.filename = filename;
    return p;
}

/* crlf - text with LF line ends made CRLF, as the builder sends bodies */
static void crlf(const char *s, size_t n, tu_buf *out)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
            tu_add(out, "\r", 1);
        tu_add(out, s + i, 1);
    }
}

static void expect_leaf(const parsed *r, int i, const char *path,
                        const char *type, const char *disp, const char *name,
                        const void *data, size_t len)
{
    ck_assert_int_lt(i, r->n);
    ck_assert_str_eq(r->l[i].path, path);
    ck_assert_str_eq(r->l[i].type, type);
    ck_assert_str_eq(r->l[i].disp, disp);
    ck_assert_str_eq(r->l[i].name, name);
    ck_assert_msg(r->l[i].data.len == len &&
                      (len == 0 || memcmp(r->l[i].data.p, data, len) == 0),
                  "part %s: %zu octets, want %zu", path, r->l[i].data.len, len);
}

/* ---- round trips
 * ---------------------------------------------------------------- */

static uint8_t binary[200000];

static void fill_binary(void)
{
    size_t i;
    uint32_t x = 1;
    for (i = 0; i < sizeof(binary); i++) {
        x = x * 1103515245u + 12345u;
        binary[i] = (uint8_t)(x >> 16);
    }
}

START_TEST(test_round_trip_shapes)
{
    static const char text[] = "Hello,\nthe readings:\n\n.\n..dots\nend";
    static const char html[] = "<p>Hello <img src=\"cid:pic@x\"></p>\r\n";
    static const char csv[] = "a,b\r\n1,2\r\n";
    static const size_t sizes[] = {1, 3, 76, 4096, 100000};
    size_t shape, bsi;

    fill_binary();
    for (shape = 0; shape < 7; shape++) {
        for (bsi = 0; bsi < sizeof(sizes) / sizeof(sizes[0]); bsi++) {
            smtpx_msg *m;
            smtpx_msg_part p;
            tu_buf out = {0}, t = {0};
            parsed r;
            int i = 0;

            ck_assert_int_eq(smtpx_msg_new(&m, 0, NULL), 0);
            ck_assert_int_eq(smtpx_msg_add_addr(m, "From", NULL, "a@b.example"),
                             0);
            if (shape != 1 && shape != 5) {
                p = part_of(SMTPX_PART_TEXT, text, strlen(text), NULL);
                ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
            }
            if (shape >= 1 && shape <= 4) {
                p = part_of(SMTPX_PART_HTML, html, strlen(html), NULL);
                ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
            }
            if (shape == 3 || shape == 4 || shape == 6) {
                p = part_of(SMTPX_PART_INLINE, binary, 3000, "pic.png");
                p.content_id = "pic@x";
                ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
            }
            if (shape == 4 || shape == 5) {
                p = part_of(SMTPX_PART_ATTACHMENT, binary, sizeof(binary),
                            "data.bin");
                ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
                p = part_of(SMTPX_PART_ATTACHMENT, csv, strlen(csv),
                            "dir/x.csv");
                ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
            }
            read_all(m, sizes[bsi], &out);
            check_lines(&out);
            parse_all(out.p, out.len, &r);
            ck_assert_int_eq(r.defects, 0);
            if (bsi == 0)
                check_splits(&out, &r);
            crlf(text, strlen(text), &t);
            switch (shape) {
            case 0: /* text alone */
                expect_leaf(&r, 0, "1", "text/plain", "-", "-", t.p, t.len);
                ck_assert_int_eq(r.n, 1);
                break;
            case 1: /* html alone */
                expect_leaf(&r, 0, "1", "text/html", "-", "-", html,
                            strlen(html));
                break;
            case 2: /* alternative */
                expect_leaf(&r, 0, "1", "text/plain", "-", "-", t.p, t.len);
                expect_leaf(&r, 1, "2", "text/html", "-", "-", html,
                            strlen(html));
                break;
            case 3: /* alternative(text, related(html, inline)) */
                expect_leaf(&r, 0, "1", "text/plain", "-", "-", t.p, t.len);
                expect_leaf(&r, 1, "2.1", "text/html", "-", "-", html,
                            strlen(html));
                expect_leaf(&r, 2, "2.2", "image/png", "inline", "pic.png",
                            binary, 3000);
                break;
            case 4: /* mixed(alternative(...), attachments) */
                expect_leaf(&r, i++, "1.1", "text/plain", "-", "-", t.p, t.len);
                expect_leaf(&r, i++, "1.2.1", "text/html", "-", "-", html,
                            strlen(html));
                expect_leaf(&r, i++, "1.2.2", "image/png", "inline", "pic.png",
                            binary, 3000);
                expect_leaf(&r, i++, "2", "application/octet-stream",
                            "attachment", "data.bin", binary, sizeof(binary));
                expect_leaf(&r, i++, "3", "text/csv", "attachment", "x.csv",
                            csv, strlen(csv));
                ck_assert_int_eq(r.l[4].cte, SMTPX_CTE_7BIT);
                break;
            case 5: /* attachments alone */
                expect_leaf(&r, 0, "1", "application/octet-stream",
                            "attachment", "data.bin", binary, sizeof(binary));
                ck_assert_int_eq(r.l[0].cte, SMTPX_CTE_BASE64);
                break;
            default: /* inline parts without HTML go in a mixed */
                expect_leaf(&r, 0, "1", "text/plain", "-", "-", t.p, t.len);
                expect_leaf(&r, 1, "2", "image/png", "inline", "pic.png",
                            binary, 3000);
                break;
            }
            parsed_free(&r);
            free(out.p);
            free(t.p);
            smtpx_msg_free(m);
        }
    }
}
END_TEST

START_TEST(test_round_trip_sources)
{
    /* Read sources of awkward sizes and steps, with every transport. */
    static const size_t lens[] = {0, 1, 2, 56, 57, 58, 3419, 3420, 3421, 65537};
    static const unsigned flags[] = {0, SMTPX_MSG_8BIT,
                                     SMTPX_MSG_8BIT | SMTPX_MSG_BINARY};
    size_t li, fi;

    fill_binary();
    for (fi = 0; fi < 3; fi++) {
        for (li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
            smtpx_msg *m;
            smtpx_msg_part p;
            src s1 = {binary, lens[li], 0, 1 + li * 7, 0, 0};
            src s2 = {(const uint8_t *)"text \xc3\xa9 from a source\n",
                      22,
                      0,
                      5,
                      0,
                      0};
            tu_buf out = {0};
            parsed r;

            ck_assert_int_eq(smtpx_msg_new(&m, flags[fi], NULL), 0);
            p = part_of(SMTPX_PART_TEXT, NULL, 0, NULL);
            p.read = src_read;
            p.read_ctx = &s2;
            ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
            p = part_of(SMTPX_PART_ATTACHMENT, NULL, 0, "b.bin");
            p.read = src_read;
            p.read_ctx = &s1;
            ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
            /* And the same octets from memory. */
            p = part_of(SMTPX_PART_ATTACHMENT, binary, lens[li], "m.bin");
            ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
            if (fi == 0)
                ck_assert_int_eq(smtpx_msg_body_type(m), SMTPX_BODY_7BIT);
            else if (fi == 2)
                ck_assert_int_eq(smtpx_msg_body_type(m), SMTPX_BODY_BINARYMIME);
            else /* short octet strings may go as 8bit */
                ck_assert_int_ge(smtpx_msg_body_type(m), SMTPX_BODY_7BIT);
            read_all(m, 1000, &out);
            if (fi < 2)
                check_lines(&out);
            parse_all(out.p, out.len, &r);
            ck_assert_int_eq(r.n, 3);
            expect_leaf(&r, 0, "1", "text/plain", "-", "-",
                        "text \xc3\xa9 from a source\r\n", 23);
            expect_leaf(&r, 1, "2", "application/octet-stream", "attachment",
                        "b.bin", binary, lens[li]);
            expect_leaf(&r, 2, "3", "application/octet-stream", "attachment",
                        "m.bin", binary, lens[li]);
            parsed_free(&r);
            free(out.p);
            smtpx_msg_free(m);
        }
    }
}
END_TEST

START_TEST(test_encodings_chosen)
{
    static const char utf8[] = "Gr\xc3\xbc\xc3\x9f"
                               "e\n";
    char longline[1200];
    smtpx_msg *m;
    smtpx_msg_part p;
    tu_buf out = {0};
    parsed r;

    memset(longline, 'x', sizeof(longline) - 1);
    longline[sizeof(longline) - 1] = '\0';
    /* 8bit only when allowed. */
    ck_assert_int_eq(smtpx_msg_new(&m, SMTPX_MSG_8BIT, NULL), 0);
    p = part_of(SMTPX_PART_TEXT, utf8, strlen(utf8), NULL);
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
    /* A line over 998: quoted-printable, even with 8BIT. */
    p = part_of(SMTPX_PART_ATTACHMENT, longline, strlen(longline), "l.txt");
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
    /* LF-only text attachment: its octets must not change. */
    p = part_of(SMTPX_PART_ATTACHMENT, "a\nb\n", 4, "lf.txt");
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
    ck_assert_int_eq(smtpx_msg_body_type(m), SMTPX_BODY_8BITMIME);
    read_all(m, 4096, &out);
    check_lines(&out);
    parse_all(out.p, out.len, &r);
    ck_assert_int_eq(r.l[0].cte, SMTPX_CTE_8BIT);
    ck_assert_int_eq(r.l[1].cte, SMTPX_CTE_QP);
    ck_assert_int_eq(r.l[2].cte, SMTPX_CTE_QP);
    expect_leaf(&r, 1, "2", "text/plain", "attachment", "l.txt", longline,
                strlen(longline));
    expect_leaf(&r, 2, "3", "text/plain", "attachment", "lf.txt", "a\nb\n", 4);
    parsed_free(&r);
    free(out.p);
    smtpx_msg_free(m);

    /* Without 8BIT the same text goes quoted-printable. */
    memset(&out, 0, sizeof(out));
    ck_assert_int_eq(smtpx_msg_new(&m, 0, NULL), 0);
    p = part_of(SMTPX_PART_TEXT, utf8, strlen(utf8), NULL);
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
    ck_assert_int_eq(smtpx_msg_body_type(m), SMTPX_BODY_7BIT);
    read_all(m, 7, &out);
    parse_all(out.p, out.len, &r);
    ck_assert_int_eq(r.l[0].cte, SMTPX_CTE_QP);
    parsed_free(&r);
    free(out.p);
    smtpx_msg_free(m);
}
END_TEST

START_TEST(test_boundary_in_content)
{
    /* The boundaries come from the random source: content that holds one
     * is not sent as it is. */
    char content[200];
    smtpx_msg *m;
    smtpx_msg_part p;
    tu_buf out = {0}, probe = {0};
    parsed r;
    char *b, *e;

    /* Learn the boundary the fixed random source gives. */
    ck_assert_int_eq(smtpx_msg_new(&m, 0, NULL), 0);
    smtpx_msg_set_random(m, fixed_random, NULL);
    p = part_of(SMTPX_PART_ATTACHMENT, "x", 1, "x.txt");
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
    read_all(m, 4096, &probe);
    smtpx_msg_free(m);
    b = strstr(probe.p, "boundary=\"") + 10;
    e = strchr(b, '"');
    snprintf(content, sizeof(content), "line\r\n--%.*s--\r\nmore\r\n",
             (int)(e - b), b);
    ck_assert_int_eq(smtpx_msg_new(&m, 0, NULL), 0);
    smtpx_msg_set_random(m, fixed_random, NULL);
    p = part_of(SMTPX_PART_ATTACHMENT, content, strlen(content), "b.txt");
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
    read_all(m, 4096, &out);
    parse_all(out.p, out.len, &r);
    ck_assert_int_eq(r.n, 1);
    ck_assert_int_eq(r.l[0].cte, SMTPX_CTE_QP);
    expect_leaf(&r, 0, "1", "text/plain", "attachment", "b.txt", content,
                strlen(content));
    parsed_free(&r);
    free(out.p);
    free(probe.p);
    smtpx_msg_free(m);
}
END_TEST

/* ---- headers
 * ------------------------------------------------------------------- */

START_TEST(test_headers_round_trip)
{
    static const char *const subjects[] = {
        "Readings",
        "Gr\xc3\xbc\xc3\x9f"
        "e aus K\xc3\xb6ln \xe2\x80\x94 a long subject line that will need to "
        "be folded somewhere, and then some more words to fold again",
        "looks like =?utf-8?q?an_encoded_word?= but is not",
        "tab\there",
        "a word longer than a line: "
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
    };
    size_t i;
    unsigned utf8;

    for (utf8 = 0; utf8 < 2; utf8++) {
        for (i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
            smtpx_msg *m;
            tu_buf out = {0}, want = {0};
            parsed r;

            ck_assert_int_eq(
                smtpx_msg_new(&m, utf8 ? SMTPX_MSG_SMTPUTF8 : 0, NULL), 0);
            ck_assert_int_eq(smtpx_msg_set_subject(m, subjects[i]), 0);
            ck_assert_int_eq(smtpx_msg_add_addr(m, "From",
                                                "J\xc3\xbcrgen M\xc3\xbcller",
                                                "j@example.org"),
                             0);
            ck_assert_int_eq(smtpx_msg_add_addr(m, "To", "Bob \"the\" B.",
                                                "bob@example.net"),
                             0);
            ck_assert_int_eq(smtpx_msg_add_addr(m, "to", NULL, "c@example.net"),
                             0);
            ck_assert_int_eq(
                smtpx_msg_add_addr(m, "Bcc", NULL, "h@example.net"), 0);
            ck_assert_int_eq(smtpx_msg_set_date(m, 1795341600, -330), 0);
            ck_assert_int_eq(smtpx_msg_set_message_id(m, "id1@example.org"), 0);
            ck_assert_int_eq(smtpx_msg_add_reference(m, "p0@example.org"), 0);
            ck_assert_int_eq(smtpx_msg_add_reference(m, "p1@example.org"), 0);
            ck_assert_int_eq(smtpx_msg_add_header(m, "X-Sensor", subjects[i]),
                             0);
            read_all(m, 64, &out);
            check_lines(&out);
            if (!utf8) {
                size_t k;
                for (k = 0; k < out.len; k++)
                    ck_assert((unsigned char)out.p[k] < 0x80);
            }
            parse_all(out.p, out.len, &r);
            tu_printf(&want,
                      "Date: Sun, 22 Nov 2026 04:30:00 -0530\n"
                      "From: J\xc3\xbcrgen M\xc3\xbcller <j@example.org>\n"
                      "To: \"Bob \\\"the\\\" B.\" <bob@example.net>, "
                      "c@example.net\n"
                      "Subject: %s\n"
                      "Message-ID: <id1@example.org>\n"
                      "In-Reply-To: <p1@example.org>\n"
                      "References: <p0@example.org> <p1@example.org>\n"
                      "X-Sensor: %s\n"
                      "MIME-Version: 1.0\n"
                      "Content-Type: text/plain; charset=utf-8\n",
                      subjects[i], subjects[i]);
            ck_assert_msg(strcmp(r.headers.p, want.p) == 0, "got\n%s\nwant\n%s",
                          r.headers.p, want.p);
            ck_assert_str_eq(smtpx_msg_addr(m, "bcc", 0), "h@example.net");
            ck_assert_str_eq(smtpx_msg_addr(m, "To", 1), "c@example.net");
            ck_assert_ptr_null(smtpx_msg_addr(m, "To", 2));
            parsed_free(&r);
            free(out.p);
            free(want.p);
            smtpx_msg_free(m);
        }
    }
}
END_TEST

START_TEST(test_message_id_and_date)
{
    smtpx_msg *m, *m2;
    const char *id;
    tu_buf out = {0};

    ck_assert_int_eq(smtpx_msg_new(&m, 0, NULL), 0);
    ck_assert_int_eq(smtpx_msg_new(&m2, 0, NULL), 0);
    ck_assert_int_eq(smtpx_msg_add_addr(m, "From", NULL, "s@Sensors.example"),
                     0);
    id = smtpx_msg_message_id(m);
    ck_assert_ptr_nonnull(id);
    ck_assert_uint_eq(strlen(id), 26 + 1 + strlen("Sensors.example"));
    ck_assert_str_eq(strchr(id, '@'), "@Sensors.example");
    ck_assert_str_eq(strchr(smtpx_msg_message_id(m2), '@'), "@localhost");
    ck_assert_str_ne(smtpx_msg_message_id(m2), id);
    read_all(m, 100, &out);
    ck_assert_ptr_nonnull(strstr(out.p, id));
    ck_assert(strncmp(out.p, "Date: ", 6) == 0);
    ck_assert_ptr_nonnull(strstr(out.p, " +0000\r\n"));
    free(out.p);
    smtpx_msg_free(m);
    smtpx_msg_free(m2);
}
END_TEST

START_TEST(test_refused)
{
    smtpx_msg *m;
    smtpx_msg_part p;
    uint8_t buf[16];
    smtpx_mem bad = {0};

    ck_assert_int_eq(smtpx_msg_new(NULL, 0, NULL), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_new(&m, 1u << 7, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_new(&m, 0, &bad), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_new(&m, 0, NULL), 0);
    ck_assert_int_eq(smtpx_msg_add_addr(m, "Subject", NULL, "a@b"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_add_addr(m, "To", NULL, "nobody"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_add_addr(m, "To", NULL, "a b@c"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_add_addr(m, "To", NULL, "<a@c>"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_add_addr(m, "To", NULL, "j\xc3\xbc@c"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_add_addr(m, "To", "a\r\nBcc: x", "a@c"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_set_subject(m, "x\r\nBcc: y"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_set_subject(m, "bad \xff utf-8"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_add_header(m, "Content-Type", "x"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_add_header(m, "content-id", "x"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_add_header(m, "from", "x"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_add_header(m, "X Bad", "x"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_set_message_id(m, "<a@b>"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_set_message_id(m, "nohost"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_set_date(m, 0, 1440),
                     SMTPX_ERR_INVALID_ARGUMENT);
    p = part_of(SMTPX_PART_TEXT, "x", 1, NULL);
    p.size = 8;
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), SMTPX_ERR_INVALID_ARGUMENT);
    p = part_of(9, "x", 1, NULL);
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), SMTPX_ERR_INVALID_ARGUMENT);
    p = part_of(SMTPX_PART_TEXT, NULL, 1, NULL);
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), SMTPX_ERR_INVALID_ARGUMENT);
    p = part_of(SMTPX_PART_ATTACHMENT, "x", 1, NULL);
    p.type = "multipart/mixed";
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), SMTPX_ERR_INVALID_ARGUMENT);
    p.type = "nonsense";
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), SMTPX_ERR_INVALID_ARGUMENT);
    p.type = NULL;
    p.cte = SMTPX_CTE_8BIT; /* without SMTPX_MSG_8BIT */
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), SMTPX_ERR_INVALID_ARGUMENT);
    p.cte = SMTPX_CTE_BINARY;
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), SMTPX_ERR_INVALID_ARGUMENT);
    p = part_of(SMTPX_PART_ATTACHMENT, "\x01\x02", 2, NULL);
    p.cte = SMTPX_CTE_7BIT;
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), SMTPX_ERR_INVALID_ARGUMENT);
    p = part_of(SMTPX_PART_TEXT, "x", 1, NULL);
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_add_fd(m, &p, -1), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_read(m, NULL, 4), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_read(m, buf, 0), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_gt(smtpx_msg_read(m, buf, sizeof(buf)), 0);
    /* Fixed once reading has begun. */
    ck_assert_int_eq(smtpx_msg_set_subject(m, "late"), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_msg_add_addr(m, "To", NULL, "a@b"),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_msg_set_random(m, fixed_random, NULL),
                     SMTPX_ERR_INVALID_STATE);
    smtpx_msg_free(m);
    smtpx_msg_free(NULL);
    ck_assert_int_eq(smtpx_msg_read(NULL, buf, 1), SMTPX_ERR_INVALID_ARGUMENT);
}
END_TEST

static int failing_random(uint8_t *buf, size_t len, void *ud)
{
    (void)buf;
    (void)len;
    (void)ud;
    return SMTPX_ERR_INTERNAL;
}

START_TEST(test_source_errors)
{
    smtpx_msg *m;
    smtpx_msg_part p;
    src s = {binary, 10000, 0, 100, 3, 0};
    uint8_t buf[4096];
    smtpx_ssize n;

    ck_assert_int_eq(smtpx_msg_new(&m, 0, NULL), 0);
    p = part_of(SMTPX_PART_ATTACHMENT, NULL, 0, "f");
    p.read = src_read;
    p.read_ctx = &s;
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
    while ((n = smtpx_msg_read(m, buf, sizeof(buf))) > 0)
        ;
    ck_assert_int_eq(n, SMTPX_ERR_IO);
    ck_assert_int_eq(smtpx_msg_read(m, buf, sizeof(buf)), SMTPX_ERR_IO);
    smtpx_msg_free(m);

    ck_assert_int_eq(smtpx_msg_new(&m, 0, NULL), 0);
    smtpx_msg_set_random(m, failing_random, NULL);
    ck_assert_ptr_null(smtpx_msg_message_id(m));
    ck_assert_int_eq(smtpx_msg_read(m, buf, sizeof(buf)), SMTPX_ERR_INTERNAL);
    smtpx_msg_free(m);
}
END_TEST

/* The message of tests/msg/data/built.eml. */
static void golden_message(smtpx_msg *m)
{
    static const char text[] = "The readings of 22 November.\n"
                               "Gr\xc3\xbc\xc3\x9f"
                               "e,\nSensor 12\n";
    static const char csv[] = "time,value\r\n10:00,12.5\r\n10:05,12.7\r\n";
    smtpx_msg_part p;

    smtpx_msg_set_random(m, fixed_random, NULL);
    smtpx_msg_add_addr(m, "From", "Sensor 12 (Keller)", "s12@sensors.example");
    smtpx_msg_add_addr(m, "To", "Opérations", "ops@example.org");
    smtpx_msg_set_subject(m, "Mesures du 22 novembre \xe2\x80\x94 cave");
    smtpx_msg_set_date(m, 1795341600, 60);
    p = part_of(SMTPX_PART_TEXT, text, strlen(text), NULL);
    smtpx_msg_add_part(m, &p);
    p = part_of(SMTPX_PART_ATTACHMENT, csv, strlen(csv),
                "mesures-d\xc3\xa9"
                "cembre.csv");
    smtpx_msg_add_part(m, &p);
    p = part_of(SMTPX_PART_ATTACHMENT, binary, 300, "raw.bin");
    smtpx_msg_add_part(m, &p);
}

START_TEST(test_golden)
{
    smtpx_msg *m;
    tu_buf out = {0};
    char path[512];
    FILE *fp;
    char *want;
    long len;
    const char *d = getenv("MSG_DATA_DIR");

    fill_binary();
    ck_assert_int_eq(smtpx_msg_new(&m, 0, NULL), 0);
    golden_message(m);
    read_all(m, 333, &out);
    smtpx_msg_free(m);
    snprintf(path, sizeof(path), "%s/built.eml", d ? d : "tests/msg/data");
    if (getenv("MSG_WRITE_GOLDEN") != NULL) {
        fp = fopen(path, "wb");
        fwrite(out.p, 1, out.len, fp);
        fclose(fp);
    }
    fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    fseek(fp, 0, SEEK_END);
    len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    want = malloc((size_t)len);
    ck_assert_uint_eq(fread(want, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    ck_assert_msg((size_t)len == out.len && memcmp(want, out.p, out.len) == 0,
                  "the builder's output differs from %s", path);
    free(want);
    free(out.p);
}
END_TEST

START_TEST(test_alloc_failures)
{
    long at;
    int ok = 0;

    fill_binary();
    for (at = 1; at < 400 && !ok; at++) {
        failmalloc fm = {.fail_at = at};
        smtpx_mem mem = failmalloc_mem(&fm);
        smtpx_msg *m;
        uint8_t buf[1024];
        smtpx_ssize n = 0;
        int rc = smtpx_msg_new(&m, 0, &mem);

        if (rc == 0) {
            smtpx_msg_part p;
            smtpx_msg_set_random(m, fixed_random, NULL);
            rc = smtpx_msg_add_addr(m, "From", "N\xc3\xa4me", "a@b.example");
            if (rc == 0)
                rc = smtpx_msg_add_addr(m, "To", NULL, "c@d.example");
            if (rc == 0)
                rc = smtpx_msg_set_subject(m, "S\xc3\xbc"
                                              "bject");
            if (rc == 0)
                rc = smtpx_msg_add_header(m, "X-A", "b");
            if (rc == 0)
                rc = smtpx_msg_add_reference(m, "r@x");
            p = part_of(SMTPX_PART_TEXT, "t\n", 2, NULL);
            if (rc == 0)
                rc = smtpx_msg_add_part(m, &p);
            p = part_of(SMTPX_PART_HTML, "<p>", 3, NULL);
            if (rc == 0)
                rc = smtpx_msg_add_part(m, &p);
            p = part_of(SMTPX_PART_INLINE, binary, 500, "\xc3\xa9.png");
            p.content_id = "c@x";
            if (rc == 0)
                rc = smtpx_msg_add_part(m, &p);
            p = part_of(SMTPX_PART_ATTACHMENT, binary, 5000, "a.bin");
            if (rc == 0)
                rc = smtpx_msg_add_part(m, &p);
            while (rc == 0 && (n = smtpx_msg_read(m, buf, sizeof(buf))) > 0)
                ;
            if (rc == 0 && n < 0)
                rc = (int)n;
            smtpx_msg_free(m);
        }
        ck_assert_msg(rc == 0 || rc == SMTPX_ERR_NOMEM, "at %ld: %s", at,
                      smtpx_strerror(rc));
        ck_assert_int_eq(fm.live, 0);
        ok = rc == 0 && fm.failures == 0;
    }
    ck_assert(ok);
}
END_TEST

/* An endless source of n octets, made as it is read. */
typedef struct gen {
    uint64_t left;
} gen;

static smtpx_ssize gen_read(void *ctx, uint8_t *buf, size_t len)
{
    gen *g = ctx;
    size_t i;

    if (len > g->left)
        len = (size_t)g->left;
    for (i = 0; i < len; i++)
        buf[i] = (uint8_t)(g->left - i);
    g->left -= len;
    return (smtpx_ssize)len;
}

START_TEST(test_constant_memory)
{
    peakmem pm = {0, 0};
    smtpx_mem mem = test_peak_mem(&pm);
    smtpx_msg *m;
    smtpx_msg_part p;
    gen g = {32u * 1024 * 1024};
    static uint8_t buf[65536];
    smtpx_ssize n;
    uint64_t total = 0;

    ck_assert_int_eq(smtpx_msg_new(&m, 0, &mem), 0);
    ck_assert_int_eq(smtpx_msg_add_addr(m, "From", NULL, "a@b"), 0);
    p = part_of(SMTPX_PART_ATTACHMENT, NULL, 0, "big.bin");
    p.read = gen_read;
    p.read_ctx = &g;
    ck_assert_int_eq(smtpx_msg_add_part(m, &p), 0);
    while ((n = smtpx_msg_read(m, buf, sizeof(buf))) > 0)
        total += (uint64_t)n;
    ck_assert_int_eq(n, 0);
    ck_assert_uint_gt(total, (uint64_t)32 * 1024 * 1024 * 4 / 3);
    smtpx_msg_free(m);
    ck_assert_uint_eq(pm.now, 0);
    ck_assert_msg(pm.peak < 64 * 1024, "peak %zu", pm.peak);
}
END_TEST

Suite *suite_msg_builder(void)
{
    Suite *s = suite_create("msg_builder");
    TCase *tc = tcase_create("round trips");

    tcase_add_test(tc, test_round_trip_shapes);
    tcase_add_test(tc, test_round_trip_sources);
    tcase_add_test(tc, test_encodings_chosen);
    tcase_add_test(tc, test_boundary_in_content);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("headers");
    tcase_add_test(tc, test_headers_round_trip);
    tcase_add_test(tc, test_message_id_and_date);
    tcase_add_test(tc, test_golden);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_source_errors);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);
    tc = tcase_create("memory");
    tcase_add_test(tc, test_alloc_failures);
    tcase_add_test(tc, test_constant_memory);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}
