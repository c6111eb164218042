/*
 * check_parser - the streaming MIME parser: the corpus in tests/msg/data
 * against its golden lists (which agree with Python's email package), fed
 * whole, byte by byte, split at every position (small messages) and in
 * seeded random pieces, always from guard-page buffers with every option
 * on; each limit; skip, stop and misuse; constant memory on a large part;
 * allocation failures at every step.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/msg.h>
#include <libsmtpx/server.h>

#include "base/crypto.h"
#include "harness/failmalloc.h"
#include "harness/guard.h"
#include "harness/tutil.h"
#include "suites.h"

static const char *data_dir(void)
{
    const char *d = getenv("MSG_DATA_DIR");
    return d ? d : "tests/msg/data";
}

/* ---- an event log ----------------------------------------------------------
 */

typedef struct plog {
    tu_buf log;     /* every event */
    tu_buf list;    /* smtpx-mime list lines */
    tu_buf content; /* the current leaf's content */
    int skip_path;  /* skip parts whose path is skip_what */
    const char *skip_what;
    const char *stop_at; /* stop at the begin of this path */
    size_t data_calls;
    int skip_data_after; /* SKIP from on_part_data after this many calls */
} plog;

static void hex(tu_buf *b, const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        tu_printf(b, "%02x", p[i]);
}

static const char *dash(const char *s)
{
    return s != NULL ? s : "-";
}

static int on_header(smtpx_msg_parser *p, const smtpx_part *part,
                     const char *name, size_t nl, const char *value, size_t vl,
                     void *ud)
{
    plog *l = ud;

    ck_assert_ptr_eq(smtpx_msg_parser_get_user_data(p), ud);
    ck_assert_uint_eq(strlen(name), nl);
    ck_assert_uint_eq(strlen(value), vl);
    ck_assert_ptr_null(smtpx_part_type(part));
    tu_printf(&l->log, "H %s %s: %s\n", smtpx_part_path(part), name, value);
    return 0;
}

static int on_begin(smtpx_msg_parser *p, const smtpx_part *part, void *ud)
{
    plog *l = ud;

    (void)p;
    tu_printf(&l->log, "B %s %u %s %s %s %s %d %d\n", smtpx_part_path(part),
              smtpx_part_depth(part), smtpx_part_type(part),
              dash(smtpx_part_disposition(part)),
              dash(smtpx_part_filename(part)), dash(smtpx_part_charset(part)),
              smtpx_part_cte(part), smtpx_part_is_container(part));
    l->content.len = 0;
    l->data_calls = 0;
    if (l->stop_at != NULL && strcmp(l->stop_at, smtpx_part_path(part)) == 0)
        return SMTPX_MSG_STOP;
    if (l->skip_what != NULL &&
        strcmp(l->skip_what, smtpx_part_path(part)) == 0)
        return SMTPX_MSG_SKIP;
    return 0;
}

static int on_data(smtpx_msg_parser *p, const smtpx_part *part,
                   const uint8_t *d, size_t n, void *ud)
{
    plog *l = ud;

    (void)p;
    ck_assert_uint_gt(n, 0);
    ck_assert(!smtpx_part_is_container(part));
    tu_add(&l->content, d, n);
    if (l->skip_data_after > 0 && ++l->data_calls >= (size_t)l->skip_data_after)
        return SMTPX_MSG_SKIP;
    return 0;
}

static int on_end(smtpx_msg_parser *p, const smtpx_part *part, void *ud)
{
    plog *l = ud;
    uint8_t sum[32];
    const char *fn = smtpx_part_filename(part);
    tu_buf name = {0};
    size_t i;

    (void)p;
    if (smtpx_part_is_container(part)) {
        tu_printf(&l->log, "E %s\n", smtpx_part_path(part));
        return 0;
    }
    ck_assert_uint_eq(smtpx_part_size(part), l->content.len);
    smtpx__sha256((const uint8_t *)(l->content.p ? l->content.p : ""),
                  l->content.len, sum);
    for (i = 0; fn != NULL && fn[i] != '\0'; i++)
        tu_printf(&name, "%c",
                  (unsigned char)fn[i] < 0x20 || fn[i] == 0x7f ? '?' : fn[i]);
    tu_printf(&l->list, "%s\t%s\t%s\t%s\t%zu\t", smtpx_part_path(part),
              smtpx_part_type(part), dash(smtpx_part_disposition(part)),
              fn != NULL ? (name.p ? name.p : "") : "-", l->content.len);
    hex(&l->list, sum, 32);
    tu_printf(&l->list, "\n");
    tu_printf(&l->log, "E %s %zu ", smtpx_part_path(part), l->content.len);
    hex(&l->log, sum, 32);
    tu_printf(&l->log, "\n");
    free(name.p);
    l->content.len = 0;
    return 0;
}

static int on_defect(smtpx_msg_parser *p, const smtpx_part *part, int defect,
                     void *ud)
{
    plog *l = ud;

    (void)p;
    ck_assert_ptr_nonnull(smtpx_msg_defect_name(defect));
    tu_printf(&l->log, "D %s %s\n", part ? smtpx_part_path(part) : "-",
              smtpx_msg_defect_name(defect));
    return 0;
}

static const smtpx_msg_callbacks all_cbs = {on_header, on_begin, on_data,
                                            on_end, on_defect};

static void plog_free(plog *l)
{
    free(l->log.p);
    free(l->list.p);
    free(l->content.p);
    memset(l, 0, sizeof(*l));
}

/* How to cut the input. */
enum { CUT_WHOLE, CUT_BYTES, CUT_AT, CUT_RANDOM };

/*
 * run - parse in[0..n) cut as asked, each piece from a guard-page buffer;
 * returns the result of the last call; the logs are in l.
 */
static int run(const char *in, size_t n, int how, size_t arg, unsigned flags,
               plog *l, const size_t *limits, const smtpx_mem *mem)
{
    smtpx_msg_parser *p;
    size_t pos = 0;
    uint32_t rng = (uint32_t)arg * 2654435761u + 1;
    int rc, i;

    rc = smtpx_msg_parser_new(&p, mem, flags, &all_cbs, sizeof(all_cbs), l);
    if (rc != 0)
        return rc;
    for (i = 0; limits != NULL && i < SMTPX_MSG_LIMIT_COUNT; i++)
        if (limits[i] != 0)
            ck_assert_int_eq(smtpx_msg_parser_set_limit(p, i, limits[i]), 0);
    while (pos < n && rc == 0) {
        size_t k = n - pos;
        if (how == CUT_BYTES) {
            k = 1;
        } else if (how == CUT_AT) {
            if (pos < arg && arg < n)
                k = arg - pos;
        } else if (how == CUT_RANDOM) {
            rng = rng * 1103515245u + 12345u;
            k = 1 + (rng >> 16) % 97;
            if (k > n - pos)
                k = n - pos;
        }
        rc = smtpx_msg_parser_feed(p, guard_copy(in + pos, k), k);
        pos += k;
    }
    if (rc == 0)
        rc = smtpx_msg_parser_end(p);
    smtpx_msg_parser_free(p);
    return rc;
}

static char *load(const char *name, size_t *n)
{
    char path[512];
    FILE *fp;
    char *buf;
    long len;

    snprintf(path, sizeof(path), "%s/%s", data_dir(), name);
    fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)len, fp), (size_t)len);
    buf[len] = '\0';
    fclose(fp);
    *n = (size_t)len;
    return buf;
}

/* ---- the corpus
 * ---------------------------------------------------------------- */

START_TEST(test_corpus)
{
    DIR *d = opendir(data_dir());
    struct dirent *e;
    int files = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        size_t nl = strlen(e->d_name), n, gl, cut;
        char listname[300], *in, *golden;
        plog whole = {0}, other = {0};
        int rc;

        if (nl < 5 || strcmp(e->d_name + nl - 4, ".eml") != 0)
            continue;
        files++;
        in = load(e->d_name, &n);
        snprintf(listname, sizeof(listname), "%.*s.list", (int)(nl - 4),
                 e->d_name);
        golden = load(listname, &gl);
        rc = run(in, n, CUT_WHOLE, 0, SMTPX_MSG_DECODE_WORDS, &whole, NULL,
                 NULL);
        ck_assert_msg(rc == 0, "%s: %s", e->d_name, smtpx_strerror(rc));
        ck_assert_msg(whole.list.p != NULL && strcmp(whole.list.p, golden) == 0,
                      "%s: got\n%s\nwant\n%s", e->d_name,
                      whole.list.p ? whole.list.p : "", golden);
        /* The same events, however the input is cut. */
        ck_assert_int_eq(run(in, n, CUT_BYTES, 0, SMTPX_MSG_DECODE_WORDS,
                             &other, NULL, NULL),
                         0);
        ck_assert_msg(strcmp(whole.log.p, other.log.p) == 0,
                      "%s byte by byte:\n%s\nwhole:\n%s", e->d_name,
                      other.log.p, whole.log.p);
        plog_free(&other);
        for (cut = 1; n <= 4096 && cut < n; cut++) {
            ck_assert_int_eq(run(in, n, CUT_AT, cut, SMTPX_MSG_DECODE_WORDS,
                                 &other, NULL, NULL),
                             0);
            ck_assert_msg(strcmp(whole.log.p, other.log.p) == 0,
                          "%s cut at %zu:\n%s", e->d_name, cut, other.log.p);
            plog_free(&other);
        }
        /* Content as received: the same whichever way it is cut. */
        {
            plog raw = {0};
            unsigned all = SMTPX_MSG_DECODE_WORDS | SMTPX_MSG_RAW_CONTENT;
            ck_assert_int_eq(run(in, n, CUT_WHOLE, 0, all, &raw, NULL, NULL),
                             0);
            ck_assert_int_eq(run(in, n, CUT_BYTES, 0, all, &other, NULL, NULL),
                             0);
            ck_assert_msg(strcmp(raw.log.p, other.log.p) == 0,
                          "%s raw byte by byte", e->d_name);
            plog_free(&raw);
            plog_free(&other);
        }
        for (cut = 0; cut < 16; cut++) {
            ck_assert_int_eq(run(in, n, CUT_RANDOM, cut, SMTPX_MSG_DECODE_WORDS,
                                 &other, NULL, NULL),
                             0);
            ck_assert_msg(strcmp(whole.log.p, other.log.p) == 0, "%s seed %zu",
                          e->d_name, cut);
            plog_free(&other);
        }
        plog_free(&whole);
        free(in);
        free(golden);
    }
    closedir(d);
    ck_assert_int_ge(files, 15);
}
END_TEST

/* ---- single behaviours
 * ------------------------------------------------------------ */

static void parse_str(const char *in, unsigned flags, plog *l)
{
    memset(l, 0, sizeof(*l));
    ck_assert_int_eq(run(in, strlen(in), CUT_WHOLE, 0, flags, l, NULL, NULL),
                     0);
}

static int has(const plog *l, const char *s)
{
    return l->log.p != NULL && strstr(l->log.p, s) != NULL;
}

START_TEST(test_headers)
{
    plog l;

    parse_str("Subject: =?utf-8?q?caf=C3=A9?=\r\n  folded\r\n"
              "X-Empty:\r\n"
              "X-8bit: Grüße\r\n"
              "\r\nbody\r\n",
              SMTPX_MSG_DECODE_WORDS, &l);
    ck_assert(has(&l, "H  Subject: café  folded\n"));
    ck_assert(has(&l, "H  X-Empty: \n"));
    ck_assert(has(&l, "H  X-8bit: Grüße\n"));
    ck_assert(has(&l, "B 1 0 text/plain - - - 1 0\n"));
    plog_free(&l);
    /* Raw values without the flag. */
    parse_str("Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n", 0, &l);
    ck_assert(has(&l, "H  Subject: =?utf-8?q?caf=C3=A9?=\n"));
    plog_free(&l);
    /* 8-bit octets that are not UTF-8 are reported. */
    parse_str("Subject: caf\xe9\r\n\r\n", 0, &l);
    ck_assert(has(&l, "D 1 EIGHT_BIT_HEADER") ||
              has(&l, "D  EIGHT_BIT_HEADER"));
    plog_free(&l);
}
END_TEST

START_TEST(test_parts_and_params)
{
    plog l;

    parse_str("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
              "--b\r\n"
              "Content-Type: Text/HTML; Charset=\"ISO-8859-1\"\r\n"
              "Content-ID: <cid@x>\r\n\r\n<p>\r\n"
              "--b\r\n"
              "Content-Type: image/png; name*=utf-8''%E2%82%AC.png\r\n"
              "Content-Disposition: ATTACHMENT\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\niVBORw==\r\n"
              "--b--\r\n",
              0, &l);
    ck_assert(has(&l, "B 1 1 text/html - - ISO-8859-1 1 0\n"));
    ck_assert(has(&l, "B 2 1 image/png attachment €.png - 5 0\n"));
    ck_assert(has(&l, "E 2 4 "));
    plog_free(&l);
}
END_TEST

START_TEST(test_skip_and_stop)
{
    const char *msg = "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                      "--b\r\nContent-Type: multipart/alternative; "
                      "boundary=c\r\n\r\n--c\r\n\r\nin c\r\n--c--\r\n"
                      "--b\r\n\r\nsecond\r\n--b--\r\n";
    plog l = {0};

    l.skip_what = "1";
    ck_assert_int_eq(run(msg, strlen(msg), CUT_WHOLE, 0, 0, &l, NULL, NULL), 0);
    /* The skipped multipart ends; nothing inside it is reported. */
    ck_assert(has(&l, "E 1\n"));
    ck_assert(!has(&l, "1.1"));
    ck_assert(has(&l, "E 2 6 "));
    plog_free(&l);

    l.stop_at = "2";
    ck_assert_int_eq(run(msg, strlen(msg), CUT_BYTES, 0, 0, &l, NULL, NULL),
                     SMTPX_ERR_STOPPED);
    ck_assert(!has(&l, "E 2"));
    plog_free(&l);

    /* SKIP from on_part_data: the rest of the part is not given. */
    l.skip_data_after = 1;
    ck_assert_int_eq(run(msg, strlen(msg), CUT_BYTES, 0, 0, &l, NULL, NULL), 0);
    ck_assert(has(&l, "E 2 1 "));
    plog_free(&l);
}
END_TEST

static int cb_fail(smtpx_msg_parser *p, const smtpx_part *part, void *ud)
{
    (void)part;
    (void)ud;
    /* Nothing of the parser but the accessors from a callback. */
    ck_assert_int_eq(smtpx_msg_parser_feed(p, "x", 1), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_msg_parser_end(p), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_msg_parser_reset(p), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_msg_parser_set_limit(p, SMTPX_MSG_LIMIT_DEPTH, 3),
                     SMTPX_ERR_INVALID_STATE);
    return -1;
}

START_TEST(test_misuse)
{
    smtpx_msg_parser *p;
    smtpx_msg_callbacks cbs = {0};
    smtpx_mem bad = {0};

    ck_assert_int_eq(smtpx_msg_parser_new(NULL, NULL, 0, NULL, 0, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_parser_new(&p, NULL, 1u << 9, NULL, 0, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_parser_new(&p, &bad, 0, NULL, 0, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(
        smtpx_msg_parser_new(&p, NULL, 0, &cbs, sizeof(cbs) + 8, NULL),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(smtpx_msg_parser_feed(NULL, "x", 1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_parser_end(NULL), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_parser_limit_hit(NULL), -1);
    smtpx_msg_parser_free(NULL);
    ck_assert_ptr_null(smtpx_part_path(NULL)[0] ? NULL : NULL);
    ck_assert_ptr_null(smtpx_part_type(NULL));
    ck_assert_ptr_null(smtpx_part_filename(NULL));

    /* An older, smaller callback table. */
    cbs.on_part_begin = cb_fail;
    ck_assert_int_eq(
        smtpx_msg_parser_new(&p, NULL, 0, &cbs,
                             offsetof(smtpx_msg_callbacks, on_part_data), NULL),
        0);
    ck_assert_int_eq(smtpx_msg_parser_feed(p, NULL, 1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_parser_feed(p, "\r\nbody", 6),
                     SMTPX_ERR_CALLBACK_FAILURE);
    /* Sticky. */
    ck_assert_int_eq(smtpx_msg_parser_feed(p, "x", 1),
                     SMTPX_ERR_CALLBACK_FAILURE);
    ck_assert_int_eq(smtpx_msg_parser_end(p), SMTPX_ERR_CALLBACK_FAILURE);
    ck_assert_int_eq(smtpx_msg_parser_set_limit(p, SMTPX_MSG_LIMIT_DEPTH, 3),
                     SMTPX_ERR_INVALID_STATE);
    /* Reset starts again. */
    cbs.on_part_begin = NULL;
    ck_assert_int_eq(smtpx_msg_parser_reset(p), 0);
    ck_assert_int_eq(smtpx_msg_parser_set_limit(p, 99, 3),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_parser_set_limit(p, SMTPX_MSG_LIMIT_DEPTH, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    smtpx_msg_parser_free(p);

    ck_assert_int_eq(smtpx_msg_parser_new(&p, NULL, 0, NULL, 0, NULL), 0);
    ck_assert_int_eq(smtpx_msg_parser_feed(p, "a: b\r\n\r\nc", 9), 0);
    ck_assert_int_eq(smtpx_msg_parser_end(p), 0);
    ck_assert_int_eq(smtpx_msg_parser_end(p), 0);
    ck_assert_int_eq(smtpx_msg_parser_feed(p, "x", 1), SMTPX_ERR_INVALID_STATE);
    ck_assert_uint_eq(smtpx_msg_parser_parts(p), 1);
    smtpx_msg_parser_free(p);
}
END_TEST

START_TEST(test_tables)
{
    int i;

    for (i = 0; i < SMTPX_MSG_LIMIT_COUNT; i++) {
        ck_assert_ptr_nonnull(smtpx_msg_limit_name(i));
        ck_assert_ptr_nonnull(smtpx_msg_limit_text(i));
        ck_assert_uint_gt(smtpx_msg_limit_default(i), 0);
    }
    ck_assert_ptr_null(smtpx_msg_limit_name(SMTPX_MSG_LIMIT_COUNT));
    ck_assert_uint_eq(smtpx_msg_limit_default(-1), 0);
    ck_assert_str_eq(smtpx_msg_limit_name(SMTPX_MSG_LIMIT_BOUNDARY),
                     "BOUNDARY");
    ck_assert_str_eq(smtpx_cte_name(SMTPX_CTE_QP), "quoted-printable");
    ck_assert_ptr_null(smtpx_cte_name(0));
    ck_assert_str_eq(smtpx_msg_defect_name(SMTPX_MSG_DEFECT_BAD_QP), "BAD_QP");
    ck_assert_ptr_null(smtpx_msg_defect_text(0));
    ck_assert_str_eq(smtpx_strerror(SMTPX_ERR_STOPPED),
                     "stopped by the application");
    ck_assert_str_eq(smtpx_msg_type_for_name("a/b/PHOTO.JPG"), "image/jpeg");
    ck_assert_str_eq(smtpx_msg_type_for_name("x.csv"), "text/csv");
    ck_assert_str_eq(smtpx_msg_type_for_name(".png"),
                     "application/octet-stream");
    ck_assert_str_eq(smtpx_msg_type_for_name("noext"),
                     "application/octet-stream");
    ck_assert_str_eq(smtpx_msg_type_for_name(NULL), "application/octet-stream");
}
END_TEST

/* ---- limits
 * ---------------------------------------------------------------------- */

/* limit_case - parse in with one limit set; expect SMTPX_ERR_LIMIT and the
 * limit named, and success with the limit one higher (or the default) */
static void limit_case(const char *in, size_t n, int limit, size_t value,
                       size_t ok_value)
{
    size_t lims[SMTPX_MSG_LIMIT_COUNT] = {0};
    smtpx_msg_parser *p;
    plog l = {0};

    lims[limit] = value;
    ck_assert_int_eq(run(in, n, CUT_WHOLE, 0, 0, &l, lims, NULL),
                     SMTPX_ERR_LIMIT);
    plog_free(&l);
    ck_assert_int_eq(run(in, n, CUT_BYTES, 0, 0, &l, lims, NULL),
                     SMTPX_ERR_LIMIT);
    plog_free(&l);
    lims[limit] = ok_value;
    ck_assert_int_eq(run(in, n, CUT_RANDOM, 3, 0, &l, lims, NULL), 0);
    plog_free(&l);
    /* And the limit is named. */
    lims[limit] = value;
    ck_assert_int_eq(smtpx_msg_parser_new(&p, NULL, 0, NULL, 0, NULL), 0);
    ck_assert_int_eq(smtpx_msg_parser_set_limit(p, limit, value), 0);
    ck_assert_int_eq(smtpx_msg_parser_limit_hit(p), -1);
    if (smtpx_msg_parser_feed(p, in, n) == 0)
        ck_assert_int_eq(smtpx_msg_parser_end(p), SMTPX_ERR_LIMIT);
    ck_assert_int_eq(smtpx_msg_parser_limit_hit(p), limit);
    smtpx_msg_parser_free(p);
}

START_TEST(test_limit_header_line)
{
    tu_buf b = {0};
    int i;

    tu_printf(&b, "Subject: ");
    for (i = 0; i < 200; i++)
        tu_printf(&b, "x");
    tu_printf(&b, "\r\n\r\nbody\r\n");
    limit_case(b.p, b.len, SMTPX_MSG_LIMIT_HEADER_LINE, 200, 211);
    free(b.p);
}
END_TEST

START_TEST(test_limit_header_count)
{
    tu_buf b = {0};
    int i;

    for (i = 0; i < 50; i++)
        tu_printf(&b, "X-N: %d\r\n", i);
    tu_printf(&b, "\r\nbody\r\n");
    limit_case(b.p, b.len, SMTPX_MSG_LIMIT_HEADER_COUNT, 49, 50);
    free(b.p);
}
END_TEST

START_TEST(test_limit_header_size)
{
    tu_buf b = {0};
    int i;

    /* Folded lines: short each, long together. */
    tu_printf(&b, "X-Long: a\r\n");
    for (i = 0; i < 100; i++)
        tu_printf(&b, " continued line %03d\r\n", i);
    tu_printf(&b, "\r\nbody\r\n");
    limit_case(b.p, b.len, SMTPX_MSG_LIMIT_HEADER_SIZE, 1000, b.len);
    free(b.p);
}
END_TEST

START_TEST(test_limit_depth)
{
    tu_buf b = {0};
    int i;

    for (i = 0; i < 10; i++)
        tu_printf(&b,
                  "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n"
                  "--b%d\r\n",
                  i, i);
    tu_printf(&b, "\r\nleaf\r\n");
    for (i = 9; i >= 0; i--)
        tu_printf(&b, "--b%d--\r\n", i);
    /* The leaf is at depth 10. */
    limit_case(b.p, b.len, SMTPX_MSG_LIMIT_DEPTH, 9, 10);
    free(b.p);
    /* message/rfc822 nests as well. */
    memset(&b, 0, sizeof(b));
    for (i = 0; i < 10; i++)
        tu_printf(&b, "Content-Type: message/rfc822\r\n\r\n");
    tu_printf(&b, "\r\nleaf\r\n");
    limit_case(b.p, b.len, SMTPX_MSG_LIMIT_DEPTH, 9, 10);
    free(b.p);
}
END_TEST

START_TEST(test_limit_parts)
{
    tu_buf b = {0};
    int i;

    tu_printf(&b, "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
    for (i = 0; i < 30; i++)
        tu_printf(&b, "--b\r\n\r\npart %d\r\n", i);
    tu_printf(&b, "--b--\r\n");
    /* 30 parts and the multipart. */
    limit_case(b.p, b.len, SMTPX_MSG_LIMIT_PARTS, 30, 31);
    free(b.p);
}
END_TEST

START_TEST(test_limit_boundary)
{
    tu_buf b = {0};
    char bd[101];

    memset(bd, 'q', 100);
    bd[100] = '\0';
    tu_printf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", bd);
    tu_printf(&b, "--%s\r\n\r\nhello\r\n--%s--\r\n", bd, bd);
    limit_case(b.p, b.len, SMTPX_MSG_LIMIT_BOUNDARY, 99, 100);
    free(b.p);
}
END_TEST

/* ---- memory
 * ------------------------------------------------------------------------- */

/* An allocator that keeps the peak of what is allocated. */
typedef struct peakmem {
    size_t now, peak;
} peakmem;

static void *pk_malloc(size_t n, void *ud)
{
    peakmem *pm = ud;
    size_t *p = malloc(n + sizeof(size_t) * 2);
    if (p == NULL)
        return NULL;
    p[0] = n;
    pm->now += n;
    if (pm->now > pm->peak)
        pm->peak = pm->now;
    return p + 2;
}

static void pk_free(void *ptr, void *ud)
{
    peakmem *pm = ud;
    size_t *p = ptr;
    if (p == NULL)
        return;
    pm->now -= p[-2];
    free(p - 2);
}

static void *pk_calloc(size_t a, size_t b, void *ud)
{
    void *p = pk_malloc(a * b, ud);
    if (p != NULL)
        memset(p, 0, a * b);
    return p;
}

static void *pk_realloc(void *ptr, size_t n, void *ud)
{
    size_t *old = ptr;
    void *p;
    if (ptr == NULL)
        return pk_malloc(n, ud);
    p = pk_malloc(n, ud);
    if (p == NULL)
        return NULL;
    memcpy(p, ptr, old[-2] < n ? old[-2] : n);
    pk_free(ptr, ud);
    return p;
}

smtpx_mem test_peak_mem(void *pm);
smtpx_mem test_peak_mem(void *pm)
{
    smtpx_mem m = {pm, pk_malloc, pk_free, pk_calloc, pk_realloc};
    return m;
}

static int count_data(smtpx_msg_parser *p, const smtpx_part *part,
                      const uint8_t *d, size_t n, void *ud)
{
    uint64_t *total = ud;
    (void)p;
    (void)part;
    (void)d;
    *total += n;
    return 0;
}

START_TEST(test_constant_memory)
{
    /* 64 MiB of base64 in a multipart, fed in 64 KiB pieces: the parser's
     * own memory stays a few KiB. */
    static const char head[] =
        "Content-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\n--=_b\r\n"
        "Content-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n";
    static const char tail[] = "\r\n--=_b--\r\n";
    static char line[78];
    static char chunk[78 * 840];
    peakmem pm = {0, 0};
    smtpx_mem mem = test_peak_mem(&pm);
    smtpx_msg_callbacks cbs = {0};
    smtpx_msg_parser *p;
    uint64_t total = 0;
    size_t i, lines = 0, want_lines = 64u * 1024 * 1024 / 57;

    for (i = 0; i < 76; i++)
        line[i] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                [i % 64];
    line[76] = '\r';
    line[77] = '\n';
    for (i = 0; i < 840; i++)
        memcpy(chunk + i * 78, line, 78);
    cbs.on_part_data = count_data;
    ck_assert_int_eq(
        smtpx_msg_parser_new(&p, &mem, 0, &cbs, sizeof(cbs), &total), 0);
    ck_assert_int_eq(smtpx_msg_parser_feed(p, head, sizeof(head) - 1), 0);
    while (lines < want_lines) {
        ck_assert_int_eq(smtpx_msg_parser_feed(p, chunk, sizeof(chunk)), 0);
        lines += 840;
    }
    ck_assert_int_eq(smtpx_msg_parser_feed(p, tail, sizeof(tail) - 1), 0);
    ck_assert_int_eq(smtpx_msg_parser_end(p), 0);
    ck_assert_uint_eq(total, (uint64_t)lines * 57);
    smtpx_msg_parser_free(p);
    ck_assert_uint_eq(pm.now, 0);
    /* The parser object (with its 8 KiB decoding buffer) and a few
     * strings. */
    ck_assert_msg(pm.peak < 16 * 1024, "peak %zu", pm.peak);
}
END_TEST

START_TEST(test_alloc_failures)
{
    size_t n1, n2;
    char *a = load("nested-crlf.eml", &n1);
    char *b = load("rfc2231.eml", &n2);
    const char *msgs[2] = {a, b};
    size_t lens[2] = {n1, n2};
    int k;

    for (k = 0; k < 2; k++) {
        long at;
        int ok = 0;
        for (at = 1; at < 500 && !ok; at++) {
            failmalloc fm = {.fail_at = at};
            smtpx_mem mem = failmalloc_mem(&fm);
            plog l = {0};
            int rc = run(msgs[k], lens[k], CUT_RANDOM, (size_t)at,
                         SMTPX_MSG_DECODE_WORDS, &l, NULL, &mem);
            ck_assert_msg(rc == 0 || rc == SMTPX_ERR_NOMEM, "at %ld: %s", at,
                          smtpx_strerror(rc));
            ck_assert_int_eq(fm.live, 0);
            ok = rc == 0 && fm.failures == 0;
            plog_free(&l);
        }
        ck_assert(ok);
    }
    free(a);
    free(b);
}
END_TEST

START_TEST(test_bare_cr_and_eol)
{
    plog l;

    /* A CR split from its LF before a boundary, CR alone in content. */
    parse_str("Content-Type: multipart/mixed; boundary=b\n\n--b\n\n"
              "a\rb\r\n--b\r\n\r\nc\r\r\n--b--",
              0, &l);
    ck_assert(has(&l, "E 1 3 "));
    ck_assert(has(&l, "E 2 2 "));
    ck_assert(!has(&l, "NO_END_BOUNDARY"));
    plog_free(&l);
}
END_TEST

/* ---- kept header fields --------------------------------------------------
 */

/* What the kept fields are seen as while a message streams in, one octet
 * at a time from an unreadable-page copy. */
static const char KEEP_MSG[] = "Received: x\r\n"
                               "SUBJECT: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus\r\n"
                               "  K=?utf-8?q?=C3=B6?=ln\r\n"
                               "Subject: second, not kept\r\n"
                               "Message-ID: <1@a.example>\r\n"
                               "From: Ann <ann@a.example>\r\n"
                               "Content-Type: multipart/mixed; boundary=b\r\n"
                               "\r\n"
                               "--b\r\n"
                               "Subject: a part's, not kept\r\n"
                               "X-Part: 1\r\n"
                               "\r\n"
                               "text\r\n"
                               "--b\r\n"
                               "Content-Type: message/rfc822\r\n"
                               "\r\n"
                               "Subject: an enclosed message's, not kept\r\n"
                               "X-Missing: nor this\r\n"
                               "\r\n"
                               "inner\r\n"
                               "--b--\r\n";

static int keep_begin(smtpx_msg_parser *p, const smtpx_part *part, void *ud)
{
    /* At the message's own begin its header is known whole. */
    if (smtpx_part_path(part)[0] == '\0')
        *(int *)ud = smtpx_msg_parser_header(p, "Message-ID") != NULL;
    return 0;
}

START_TEST(test_keep)
{
    static const smtpx_msg_callbacks cbs = {.on_part_begin = keep_begin};
    smtpx_msg_parser *p;
    int seen = 0, flags;
    size_t i;

    for (flags = 0; flags < 2; flags++) {
        ck_assert_int_eq(
            smtpx_msg_parser_new(&p, NULL, flags ? SMTPX_MSG_DECODE_WORDS : 0,
                                 &cbs, sizeof(cbs), &seen),
            0);
        ck_assert_int_eq(smtpx_msg_parser_keep(p, "subject"), 0);
        ck_assert_int_eq(smtpx_msg_parser_keep(p, "Message-ID"), 0);
        ck_assert_int_eq(smtpx_msg_parser_keep(p, "FROM"), 0);
        ck_assert_int_eq(smtpx_msg_parser_keep(p, "From"), 0); /* again */
        ck_assert_int_eq(smtpx_msg_parser_keep(p, "X-Missing"), 0);
        ck_assert_int_eq(smtpx_msg_parser_keep(p, "X-Part"), 0);
        ck_assert_ptr_null(smtpx_msg_parser_header(p, "Subject"));
        for (i = 0; i < sizeof(KEEP_MSG) - 1; i++) {
            const char *c = guard_copy(KEEP_MSG + i, 1);
            ck_assert_int_eq(smtpx_msg_parser_feed(p, c, 1), 0);
            if (i == 10) /* nothing read yet */
                ck_assert_ptr_null(smtpx_msg_parser_header(p, "From"));
        }
        ck_assert_int_eq(smtpx_msg_parser_end(p), 0);
        ck_assert_int_eq(seen, 1);
        ck_assert_str_eq(smtpx_msg_parser_header(p, "sUbJeCt"),
                         flags ? "Gr\xc3\xbc\xc3\x9f"
                                 "e aus  K\xc3\xb6ln"
                               : "=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus  "
                                 "K=?utf-8?q?=C3=B6?=ln");
        ck_assert_str_eq(smtpx_msg_parser_header(p, "message-id"),
                         "<1@a.example>");
        ck_assert_str_eq(smtpx_msg_parser_header(p, "From"),
                         "Ann <ann@a.example>");
        /* Not the parts' nor the enclosed message's; not kept at all. */
        ck_assert_ptr_null(smtpx_msg_parser_header(p, "X-Missing"));
        ck_assert_ptr_null(smtpx_msg_parser_header(p, "X-Part"));
        ck_assert_ptr_null(smtpx_msg_parser_header(p, "Received"));
        /* Once begun, no more names; a reset keeps them, not the values. */
        ck_assert_int_eq(smtpx_msg_parser_keep(p, "To"),
                         SMTPX_ERR_INVALID_STATE);
        ck_assert_int_eq(smtpx_msg_parser_reset(p), 0);
        ck_assert_ptr_null(smtpx_msg_parser_header(p, "Subject"));
        ck_assert_int_eq(smtpx_msg_parser_feed(p, "Subject: again\r\n\r\n", 18),
                         0);
        ck_assert_str_eq(smtpx_msg_parser_header(p, "Subject"), "again");
        smtpx_msg_parser_free(p);
    }
}
END_TEST

START_TEST(test_keep_limits)
{
    smtpx_msg_parser *p;
    char name[SMTPX_MSG_KEEP_NAME_MAX + 2];
    int i;

    ck_assert_int_eq(smtpx_msg_parser_new(&p, NULL, 0, NULL, 0, NULL), 0);
    ck_assert_int_eq(smtpx_msg_parser_keep(NULL, "a"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_parser_keep(p, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_parser_keep(p, ""), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_parser_keep(p, "Sub ject"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_parser_keep(p, "Subject:"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_parser_keep(p, "Sub\xc3\xa9"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    memset(name, 'x', sizeof(name) - 1);
    name[SMTPX_MSG_KEEP_NAME_MAX] = '\0';
    ck_assert_int_eq(smtpx_msg_parser_keep(p, name), 0);
    name[SMTPX_MSG_KEEP_NAME_MAX] = 'x';
    name[SMTPX_MSG_KEEP_NAME_MAX + 1] = '\0';
    ck_assert_int_eq(smtpx_msg_parser_keep(p, name),
                     SMTPX_ERR_INVALID_ARGUMENT);
    for (i = 1; i < SMTPX_MSG_KEEP_MAX; i++) {
        snprintf(name, sizeof(name), "X-%d", i);
        ck_assert_int_eq(smtpx_msg_parser_keep(p, name), 0);
    }
    ck_assert_int_eq(smtpx_msg_parser_keep(p, "One-Too-Many"), SMTPX_ERR_LIMIT);
    ck_assert_int_eq(smtpx_msg_parser_keep(p, "X-1"), 0); /* kept already */
    ck_assert_ptr_null(smtpx_msg_parser_header(NULL, "X-1"));
    ck_assert_ptr_null(smtpx_msg_parser_header(p, NULL));
    smtpx_msg_parser_free(p);
}
END_TEST

START_TEST(test_keep_alloc_failures)
{
    long at;
    int ok = 0;

    for (at = 1; at < 200 && !ok; at++) {
        failmalloc fm = {.fail_at = at};
        smtpx_mem mem = failmalloc_mem(&fm);
        smtpx_msg_parser *p;
        int rc = smtpx_msg_parser_new(&p, &mem, SMTPX_MSG_DECODE_WORDS, NULL, 0,
                                      NULL);
        if (rc == 0) {
            rc = smtpx_msg_parser_keep(p, "Subject");
            if (rc == 0)
                rc = smtpx_msg_parser_keep(p, "From");
            if (rc == 0)
                rc = smtpx_msg_parser_feed(p, KEEP_MSG, sizeof(KEEP_MSG) - 1);
            if (rc == 0)
                rc = smtpx_msg_parser_end(p);
            if (rc == 0)
                ck_assert_str_eq(smtpx_msg_parser_header(p, "From"),
                                 "Ann <ann@a.example>");
            smtpx_msg_parser_free(p);
        }
        ck_assert_msg(rc == 0 || rc == SMTPX_ERR_NOMEM, "at %ld: %s", at,
                      smtpx_strerror(rc));
        ck_assert_int_eq(fm.live, 0);
        ok = rc == 0 && fm.failures == 0;
    }
    ck_assert(ok);
}
END_TEST

/*
 * A server that knows each message's Subject, Message-ID and From as it
 * streams in: on_data_chunk feeds the parser, on_data_end reads the kept
 * fields and may answer on them (here: the Message-ID in the 250).
 */
typedef struct srv_app {
    smtpx_msg_parser *p;
    char said[256];
    char subject[2][64];
    int n;
} srv_app;

static int srv_begin(smtpx_server *s, const smtpx_data_info *di, smtpx_reply *r,
                     void *ud)
{
    (void)s;
    (void)di;
    (void)r;
    return smtpx_msg_parser_reset(((srv_app *)ud)->p);
}

static int srv_chunk(smtpx_server *s, const uint8_t *d, size_t n, void *ud)
{
    (void)s;
    return smtpx_msg_parser_feed(((srv_app *)ud)->p, d, n) == 0
               ? 0
               : SMTPX_ERR_CALLBACK_FAILURE;
}

static int srv_end(smtpx_server *s, smtpx_reply *r, void *ud)
{
    srv_app *a = ud;
    const char *id, *subject;

    (void)s;
    smtpx_msg_parser_end(a->p);
    id = smtpx_msg_parser_header(a->p, "Message-ID");
    subject = smtpx_msg_parser_header(a->p, "Subject");
    if (a->n < 2)
        snprintf(a->subject[a->n++], sizeof(a->subject[0]), "%s",
                 subject ? subject : "");
    snprintf(a->said, sizeof(a->said), "%s|%s|%s", id ? id : "-",
             subject ? subject : "-",
             smtpx_msg_parser_header(a->p, "From") ? "from" : "-");
    r->text = a->said;
    return 0;
}

START_TEST(test_keep_from_a_server)
{
    smtpx_server_callbacks cbs = {.on_data_begin = srv_begin,
                                  .on_data_chunk = srv_chunk,
                                  .on_data_end = srv_end};
    static const char in[] =
        "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\n"
        "RCPT TO:<c@d.example>\r\nDATA\r\n"
        "Subject: =?utf-8?b?w5xiZXI=?= mail\r\nMessage-ID: <42@b.example>\r\n"
        "From: a@b.example\r\n\r\n.dotted\r\n.\r\n"
        "MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"
        "Subject: no id\r\n\r\nbody\r\n.\r\nQUIT\r\n";
    smtpx_config *cfg;
    smtpx_server *s;
    srv_app app = {0};
    tu_buf out = {0};
    const uint8_t *o;
    size_t i, n;

    ck_assert_int_eq(smtpx_msg_parser_new(&app.p, NULL, SMTPX_MSG_DECODE_WORDS,
                                          NULL, 0, NULL),
                     0);
    ck_assert_int_eq(smtpx_msg_parser_keep(app.p, "Subject"), 0);
    ck_assert_int_eq(smtpx_msg_parser_keep(app.p, "Message-ID"), 0);
    ck_assert_int_eq(smtpx_msg_parser_keep(app.p, "From"), 0);
    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(cfg), 0);
    ck_assert_int_eq(smtpx_server_new(&s, cfg, &cbs, sizeof(cbs), &app), 0);
    ck_assert_int_eq(smtpx_server_start(s, NULL, 0), 0);
    for (i = 0; i < sizeof(in) - 1; i++) {
        ck_assert_int_eq(smtpx_server_recv(s, (const uint8_t *)in + i, 1, 0),
                         1);
        while ((n = smtpx_server_out_peek(s, &o)) > 0) {
            tu_add(&out, o, n);
            smtpx_server_out_drop(s, n, 0);
        }
    }
    tu_add(&out, "", 1);
    /* (A reply is ASCII: the server shows the 8-bit octets as '?'.) */
    ck_assert_ptr_nonnull(
        strstr(out.p, "250 2.0.0 <42@b.example>|??ber mail|from\r\n"));
    ck_assert_str_eq(app.subject[0], "\xc3\x9c"
                                     "ber mail");
    ck_assert_str_eq(app.subject[1], "no id");
    ck_assert_ptr_nonnull(strstr(out.p, "250 2.0.0 -|no id|-\r\n"));
    smtpx_server_free(s);
    smtpx_config_free(cfg);
    smtpx_msg_parser_free(app.p);
    free(out.p);
}
END_TEST

Suite *suite_msg_parser(void)
{
    Suite *s = suite_create("msg_parser");
    TCase *tc = tcase_create("corpus");

    tcase_add_test(tc, test_corpus);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("behaviour");
    tcase_add_test(tc, test_headers);
    tcase_add_test(tc, test_parts_and_params);
    tcase_add_test(tc, test_skip_and_stop);
    tcase_add_test(tc, test_misuse);
    tcase_add_test(tc, test_tables);
    tcase_add_test(tc, test_bare_cr_and_eol);
    tcase_add_test(tc, test_keep);
    tcase_add_test(tc, test_keep_limits);
    tcase_add_test(tc, test_keep_alloc_failures);
    tcase_add_test(tc, test_keep_from_a_server);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);
    tc = tcase_create("limits");
    tcase_add_test(tc, test_limit_header_line);
    tcase_add_test(tc, test_limit_header_count);
    tcase_add_test(tc, test_limit_header_size);
    tcase_add_test(tc, test_limit_depth);
    tcase_add_test(tc, test_limit_parts);
    tcase_add_test(tc, test_limit_boundary);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    tc = tcase_create("memory");
    tcase_add_test(tc, test_constant_memory);
    tcase_add_test(tc, test_alloc_failures);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}
