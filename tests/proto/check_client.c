/*
 * check_client - the client: its parsers (replies, EHLO capabilities), the
 * dot-stuffer, the transaction API and allocation failures over whole
 * sessions.  The transcripts in tests/transcripts/client are replayed by
 * check_transcripts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/smtpx.h>

#include "base/mem.h"
#include "proto/data.h"
#include "proto/ext.h"
#include "proto/reply.h"
#include "harness/failmalloc.h"
#include "harness/guard.h"
#include "suites.h"

/* ---- the reply parser ---- */

static int parse_all(const char *const *lines, smtpx_reply *r, char *text,
                     size_t size)
{
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__rparse p;
    int rc = 0;

    memset(&p, 0, sizeof(p));
    for (; *lines != NULL; lines++) {
        size_t n = strlen(*lines);
        rc = smtpx__rparse_line(&p, mem, guard_copy(*lines, n), n, r);
        if (rc != 0)
            break;
    }
    if (rc == 1)
        snprintf(text, size, "%s", r->text);
    smtpx__rparse_free(&p, mem);
    return rc;
}

START_TEST(test_rparse)
{
    smtpx_reply r;
    char text[256];

    ck_assert_int_eq(parse_all((const char *[]){"250 2.1.0 Ok", NULL}, &r, text,
                               sizeof(text)),
                     1);
    ck_assert_int_eq(r.code, 250);
    ck_assert_uint_eq(r.enh[0], 2);
    ck_assert_uint_eq(r.enh[1], 1);
    ck_assert_str_eq(text, "Ok");
    ck_assert_int_eq(parse_all((const char *[]){"250-mx.example",
                                                "250-PIPELINING", "250 ", NULL},
                               &r, text, sizeof(text)),
                     1);
    ck_assert_str_eq(text, "mx.example\nPIPELINING\n");
    /* A bare code is a whole reply. */
    ck_assert_int_eq(
        parse_all((const char *[]){"354", NULL}, &r, text, sizeof(text)), 1);
    ck_assert_str_eq(text, "");
    /* An enhanced code of another class is text. */
    ck_assert_int_eq(parse_all((const char *[]){"550 2.1.0 odd", NULL}, &r,
                               text, sizeof(text)),
                     1);
    ck_assert_uint_eq(r.enh[0], 0);
    ck_assert_str_eq(text, "2.1.0 odd");
    ck_assert_int_eq(
        parse_all((const char *[]){"452 4.5.3", NULL}, &r, text, sizeof(text)),
        1);
    ck_assert_uint_eq(r.enh[2], 3);
    /* Garbage, and a code that changes in a multi-line reply. */
    ck_assert_int_eq(
        parse_all((const char *[]){"hello", NULL}, &r, text, sizeof(text)),
        SMTPX_ERR_PROTO);
    ck_assert_int_eq(
        parse_all((const char *[]){"25", NULL}, &r, text, sizeof(text)),
        SMTPX_ERR_PROTO);
    ck_assert_int_eq(
        parse_all((const char *[]){"250x", NULL}, &r, text, sizeof(text)),
        SMTPX_ERR_PROTO);
    ck_assert_int_eq(
        parse_all((const char *[]){"600 no", NULL}, &r, text, sizeof(text)),
        SMTPX_ERR_PROTO);
    ck_assert_int_eq(parse_all((const char *[]){"250-a", "251 b", NULL}, &r,
                               text, sizeof(text)),
                     SMTPX_ERR_PROTO);
}
END_TEST

START_TEST(test_rparse_too_big)
{
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__rparse p;
    smtpx_reply r;
    char line[1024];
    int i, rc = 0;

    memset(&p, 0, sizeof(p));
    memset(line, 'x', sizeof(line));
    memcpy(line, "250-", 4);
    for (i = 0; i < 200 && rc == 0; i++)
        rc = smtpx__rparse_line(&p, mem, line, sizeof(line), &r);
    ck_assert_int_eq(rc, SMTPX_ERR_PROTO);
    smtpx__rparse_free(&p, mem);
}
END_TEST

START_TEST(test_ext)
{
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__ext e;

    memset(&e, 0, sizeof(e));
    ck_assert_int_eq(
        smtpx__ext_parse(&e, mem,
                         "mx.example Hello\nPIPELINING\nsize 10240000\n"
                         "AUTH PLAIN LOGIN\n8BITMIME\n\nbad keyword!\nX-Y"),
        0);
    ck_assert_str_eq(smtpx__ext_get(&e, "SIZE"), "10240000");
    ck_assert_str_eq(smtpx__ext_get(&e, "auth"), "PLAIN LOGIN");
    ck_assert_str_eq(smtpx__ext_get(&e, "PIPELINING"), "");
    ck_assert_str_eq(smtpx__ext_get(&e, "X-Y"), "");
    ck_assert_ptr_null(smtpx__ext_get(&e, "STARTTLS"));
    ck_assert_ptr_null(smtpx__ext_get(&e, "mx.example"));
    ck_assert_uint_eq(e.mask, SMTPX_EXT_PIPELINING | SMTPX_EXT_SIZE |
                                  SMTPX_EXT_AUTH | SMTPX_EXT_8BITMIME);
    /* A short greeting and many keywords without parameters: the parsed
     * form is longer than the text (found by ASan with smtpx-recv). */
    ck_assert_int_eq(smtpx__ext_parse(&e, mem,
                                      "vm\nPIPELINING\nSIZE\n8BITMIME\n"
                                      "SMTPUTF8\nCHUNKING\nA\nB\nC\nD"),
                     0);
    ck_assert_str_eq(smtpx__ext_get(&e, "D"), "");
    ck_assert_str_eq(smtpx__ext_get(&e, "CHUNKING"), "");
    smtpx__ext_free(&e, mem);
}
END_TEST

/* ---- the stuffer ---- */

static const struct stuff_case {
    const char *in, *out;
    size_t max; /* line limit incl. CRLF; 0 none */
    size_t breaks;
} stuff_cases[] = {
    {"a\r\nb\r\n", "a\r\nb\r\n.\r\n", 0, 0},
    {"a\nb", "a\r\nb\r\n.\r\n", 0, 0},
    {".a\n..b\n.\n", "..a\r\n...b\r\n..\r\n.\r\n", 0, 0},
    {"x\r.y", "x\r\n..y\r\n.\r\n", 0, 0},
    {"x\r", "x\r\n.\r\n", 0, 0},
    {"", ".\r\n", 0, 0},
    {"\r\n.\r\n", "\r\n..\r\n.\r\n", 0, 0},
    {"abcdefgh\r\n", "abcdef\r\n gh\r\n.\r\n", 8, 1},
    {"abcdefghijklmno", "abcdef\r\n ghijk\r\n lmno\r\n.\r\n", 8, 2},
    /* The stuffed dot counts: it is on the wire. */
    /* The stuffed dot does not count (RFC 5321 4.5.3.1.6). */
    {"abcdef\r\n.bcdefgh", "abcdef\r\n..bcdef\r\n gh\r\n.\r\n", 8, 1},
};

START_TEST(test_stuff)
{
    const struct stuff_case *c = &stuff_cases[_i];
    const smtpx_mem *mem = smtpx__mem_default();
    size_t len = strlen(c->in), cut;

    /* Whole, and cut at every position: the same output. */
    for (cut = 0; cut <= len; cut++) {
        smtpx__stuff st;
        smtpx__buf b = SMTPX__BUF_INIT;
        smtpx__stuff_init(&st, c->max);
        ck_assert_int_ge(
            smtpx__stuff_add(&st, &b, mem, (const uint8_t *)c->in, cut), 0);
        ck_assert_int_ge(smtpx__stuff_add(&st, &b, mem,
                                          (const uint8_t *)c->in + cut,
                                          len - cut),
                         0);
        ck_assert_int_ge(smtpx__stuff_end(&st, &b, mem), 0);
        ck_assert_uint_eq(smtpx__buf_used(&b), strlen(c->out));
        ck_assert_msg(memcmp(smtpx__buf_head(&b), c->out, strlen(c->out)) == 0,
                      "case %d cut %zu: %.*s", _i, cut,
                      (int)smtpx__buf_used(&b), smtpx__buf_head(&b));
        ck_assert_uint_eq(st.long_lines, c->breaks);
        smtpx__buf_free(&b, mem);
    }
}
END_TEST

static int collect(void *ctx, const uint8_t *p, size_t n)
{
    smtpx__buf *b = ctx;
    ck_assert_int_eq(smtpx__buf_append(b, smtpx__mem_default(), p, n), 0);
    return 0;
}

START_TEST(test_stuff_roundtrip)
{
    /* What the client stuffs, the server's scanner unstuffs to the same
     * content with CRLF line ends, ending exactly at the client's end. */
    static const struct {
        const char *in, *content;
    } bodies[] = {
        {"Subject: x\n\n.\n..\n...a\nb\rc\r\n\r\nend",
         "Subject: x\r\n\r\n.\r\n..\r\n...a\r\nb\r\nc\r\n\r\nend\r\n"},
        {".\r\n.\r\n", ".\r\n.\r\n"},
        {"\n\n\n", "\r\n\r\n\r\n"},
        {"no newline at all", "no newline at all\r\n"},
        {"", ""}};
    const smtpx_mem *mem = smtpx__mem_default();
    size_t k;

    for (k = 0; k < sizeof(bodies) / sizeof(bodies[0]); k++) {
        smtpx__stuff st;
        smtpx__dot d;
        smtpx__buf b = SMTPX__BUF_INIT, u = SMTPX__BUF_INIT;
        int end = 0;
        size_t used;

        smtpx__stuff_init(&st, 1000);
        smtpx__stuff_add(&st, &b, mem, (const uint8_t *)bodies[k].in,
                         strlen(bodies[k].in));
        smtpx__stuff_end(&st, &b, mem);
        smtpx__dot_init(&d, 1000, 1);
        used = smtpx__dot_scan(&d, smtpx__buf_head(&b), smtpx__buf_used(&b),
                               collect, &u, &end);
        ck_assert_int_eq(end, 1);
        ck_assert_uint_eq(used, smtpx__buf_used(&b));
        ck_assert_int_eq(d.bare, 0);
        ck_assert_uint_eq(smtpx__buf_used(&u), strlen(bodies[k].content));
        ck_assert(smtpx__buf_used(&u) == 0 ||
                  memcmp(smtpx__buf_head(&u), bodies[k].content,
                         smtpx__buf_used(&u)) == 0);
        smtpx__buf_free(&b, mem);
        smtpx__buf_free(&u, mem);
    }
}
END_TEST

/* ---- transactions ---- */

START_TEST(test_txn_api)
{
    smtpx_config *cfg;
    smtpx_txn *t;
    size_t counts[SMTPX_RCPT_STATE_COUNT];

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL), 0);
    smtpx_config_freeze(cfg);
    ck_assert_int_eq(smtpx_txn_new(&t, cfg, "not an address"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_txn_new(&t, cfg, "a@b.example>\r\nRCPT TO:<x"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_txn_new(&t, cfg, ""), 0);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "", NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "b@c.example", "X=1\r\nQUIT"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "b@c.example", "NOTIFY=NEVER"), 0);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "Postmaster", NULL), 0);
    ck_assert_uint_eq(smtpx_txn_rcpt_count(t), 2);
    ck_assert_str_eq(smtpx_txn_rcpt(t, 1)->addr, "Postmaster");
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_PENDING);
    ck_assert_ptr_null(smtpx_txn_rcpt(t, 2));
    smtpx_txn_counts(t, counts);
    ck_assert_uint_eq(counts[SMTPX_RCPT_PENDING], 2);
    ck_assert_int_eq(smtpx_txn_set_mail_params(t, "RET=HDRS"), 0);
    /* SIZE counts CRLF line ends (RFC 1870 4), not stuffed dots. */
    ck_assert_int_eq(smtpx_txn_set_body(t, "hi\n", 3), 0);
    ck_assert_uint_eq(smtpx_txn_body_size(t), 4);
    ck_assert_int_eq(smtpx_txn_set_body(t, "a\r\n.b\rc", 8), 0);
    ck_assert_uint_eq(smtpx_txn_body_size(t), 11);
    ck_assert_int_eq(smtpx_txn_set_body(t, "x\r", 2), 0);
    ck_assert_uint_eq(smtpx_txn_body_size(t), 3);
    ck_assert_int_eq(smtpx_txn_set_body(t, "", 0), 0);
    ck_assert_uint_eq(smtpx_txn_body_size(t), 0);
    ck_assert_int_eq(smtpx_txn_done(t), 0);
    smtpx_txn_free(t);
    smtpx_txn_free(NULL);
    smtpx_config_free(cfg);
}
END_TEST

/* ---- sessions driven directly ---- */

static int closed_status;

static void on_close_st(smtpx_client *c, int status, void *ud)
{
    (void)c;
    (void)ud;
    closed_status = status;
}

static void drain_c(smtpx_client *c)
{
    const uint8_t *p;
    size_t n;

    while ((n = smtpx_client_out_peek(c, &p)) > 0)
        smtpx_client_out_drop(c, n, 0);
}

static smtpx_client *client_for(smtpx_config *cfg)
{
    smtpx_client_callbacks cbs = {.on_close = on_close_st};
    smtpx_client *c;

    ck_assert_int_eq(smtpx_client_new(&c, cfg, &cbs, sizeof(cbs), NULL), 0);
    return c;
}

static void feed_c(smtpx_client *c, const char *s)
{
    ck_assert_int_eq(smtpx_client_recv(c, (const uint8_t *)s, strlen(s), 0),
                     (smtpx_ssize)strlen(s));
    drain_c(c);
}

static void log_keep(smtpx_client *c, int level, const char *msg, void *ud)
{
    char *last = ud;

    (void)c;
    (void)level;
    snprintf(last, 256, "%s", msg);
}

START_TEST(test_malformed_reply_logged_in_bounds)
{
    /* A malformed reply line is logged without reading past it: the
     * input ends right before an unreadable page, is not NUL-terminated,
     * and is logged escaped (a peer must not forge log lines). */
    static const struct {
        const char *in;
        size_t len;
        const char *logged;
    } cases[] = {
        {"XYZ\n", 4, "malformed reply line: XYZ"},
        {"XYZ\r\n", 5, "malformed reply line: XYZ"},
        {"2\x1b[31m\n", 8, "malformed reply line: 2\\x1b[31m"},
        {"22\r0 x\n", 7, "malformed reply line: 22\\x0d0 x"},
    };
    smtpx_config *cfg;
    size_t i;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(cfg), 0);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char last[256] = "";
        smtpx_client_callbacks cbs = {.on_log = log_keep};
        smtpx_client *c;
        const char *in = guard_copy(cases[i].in, cases[i].len);

        ck_assert_int_eq(smtpx_client_new(&c, cfg, &cbs, sizeof(cbs), last), 0);
        ck_assert_int_eq(smtpx_client_start(c, 0), 0);
        ck_assert_int_eq(
            smtpx_client_recv(c, (const uint8_t *)in, cases[i].len, 0),
            (smtpx_ssize)cases[i].len);
        ck_assert_str_eq(last, cases[i].logged);
        ck_assert(smtpx_client_done(c));
        smtpx_client_free(c);
    }
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_starttls_injection)
{
    /* RFC 3207 4.2: a forged reply sent with the 220, before TLS, must
     * not be taken (STARTTLS response injection). */
    smtpx_config *cfg;
    smtpx_client *c;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL), 0);
    smtpx_config_freeze(cfg);
    c = client_for(cfg);
    smtpx_client_start(c, 0);
    smtpx_client_ehlo(c, "c.test", NULL);
    smtpx_client_starttls(c, NULL);
    feed_c(c, "220 mx ESMTP\r\n250-mx\r\n250 STARTTLS\r\n");
    closed_status = 1;
    {
        static const char inj[] = "220 go ahead\r\n250-mx\r\n"
                                  "250 AUTH PLAIN\r\n";
        ck_assert_int_eq(
            smtpx_client_recv(c, (const uint8_t *)inj, sizeof(inj) - 1, 0),
            (smtpx_ssize)sizeof(inj) - 1);
    }
    ck_assert_int_eq(closed_status, SMTPX_ERR_PROTO);
    ck_assert_int_eq(smtpx_client_want_tls(c), 0);
    ck_assert_int_eq(smtpx_client_done(c), 1);
    smtpx_client_free(c);
    /* The same 220 alone is fine: TLS is wanted, clear text is refused. */
    c = client_for(cfg);
    smtpx_client_start(c, 0);
    smtpx_client_ehlo(c, "c.test", NULL);
    smtpx_client_starttls(c, NULL);
    feed_c(c, "220 mx ESMTP\r\n250-mx\r\n250 STARTTLS\r\n");
    feed_c(c, "220 go ahead\r\n");
    ck_assert_int_eq(smtpx_client_want_tls(c), 1);
    ck_assert_int_eq(smtpx_client_recv(c, (const uint8_t *)"250 x\r\n", 7, 0),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_client_tls_started(c, NULL, 0), 0);
    ck_assert_int_eq(smtpx_client_esmtp(c), 0);
    smtpx_client_free(c);
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_client_api)
{
    smtpx_config *cfg, *scfg;
    smtpx_client *c = (smtpx_client *)1;
    smtpx_txn *t;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_client_new(&c, cfg, NULL, 0, NULL),
                     SMTPX_ERR_INVALID_STATE);
    smtpx_config_freeze(cfg);
    ck_assert_int_eq(smtpx_config_new(&scfg, SMTPX_ROLE_SERVER, NULL), 0);
    smtpx_config_freeze(scfg);
    ck_assert_int_eq(smtpx_client_new(&c, scfg, NULL, 0, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    c = client_for(cfg);
    ck_assert_int_eq(smtpx_client_ehlo(c, "bad name", NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_client_ehlo(c, "", NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_client_recv(c, (const uint8_t *)"x", 1, 0),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_txn_new(&t, cfg, "a@b.example"), 0);
    /* No recipient, no body. */
    ck_assert_int_eq(smtpx_client_send(c, t), SMTPX_ERR_INVALID_ARGUMENT);
    smtpx_txn_add_rcpt(t, "c@d.example", NULL);
    ck_assert_int_eq(smtpx_client_send(c, t), SMTPX_ERR_INVALID_ARGUMENT);
    smtpx_txn_set_body(t, "x", 1);
    ck_assert_int_eq(smtpx_client_send(c, t), 0);
    ck_assert_int_eq(smtpx_client_send(c, t), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "e@d.example", NULL),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_client_start(c, 0), 0);
    ck_assert_int_eq(smtpx_client_start(c, 0), SMTPX_ERR_INVALID_STATE);
    ck_assert_uint_eq(smtpx_client_expiry(c), 300000);
    smtpx_client_free(c);
    /* Freeing the client finished the transaction. */
    ck_assert_int_eq(smtpx_txn_done(t), 1);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_DEFERRED);
    ck_assert_int_eq(smtpx_reply_local(&smtpx_txn_rcpt(t, 0)->reply), 1);
    smtpx_txn_free(t);
    ck_assert_str_eq(smtpx_cmd_name(SMTPX_CMD_RCPT), "RCPT");
    ck_assert_str_eq(smtpx_cmd_name(99), "?");
    ck_assert_str_eq(smtpx_cmd_name(0), "?");
    ck_assert_str_eq(smtpx_cmd_name(SMTPX_CMD_COUNT), "?");
    ck_assert_str_eq(smtpx_cmd_name(SMTPX_CMD_GREETING), "greeting");
    ck_assert_str_eq(smtpx_cmd_name(SMTPX_CMD_AUTH), "AUTH");
    ck_assert_str_eq(smtpx_rcpt_state_name(SMTPX_RCPT_UNKNOWN), "unknown");
    ck_assert_str_eq(smtpx_rcpt_state_name(SMTPX_RCPT_PENDING), "pending");
    ck_assert_str_eq(smtpx_rcpt_state_name(SMTPX_RCPT_STATE_COUNT), "?");
    ck_assert_str_eq(smtpx_rcpt_state_name(-1), "?");
    ck_assert_str_eq(smtpx_stage_name(SMTPX_STAGE_BODY), "BODY");
    ck_assert_str_eq(smtpx_stage_name(SMTPX_STAGE_NONE), "none");
    ck_assert_str_eq(smtpx_stage_name(SMTPX_STAGE_COUNT), "?");
    smtpx_config_free(cfg);
    smtpx_config_free(scfg);
}
END_TEST

START_TEST(test_client_nomem_sweep)
{
    /* Fail each allocation of a whole session in turn: nothing leaks,
     * the transaction always ends with a final state per recipient. */
    static const char *const server[] = {
        "220 mx ESMTP\r\n",
        "250-mx\r\n250-PIPELINING\r\n250 SIZE 100\r\n",
        "250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n",
        "250 queued\r\n",
        "221 bye\r\n",
        NULL};
    failmalloc fm = {.fail_at = 0};
    smtpx_mem mem = failmalloc_mem(&fm);
    long n;

    for (n = 0;; n++) {
        smtpx_config *cfg;
        smtpx_client *c;
        smtpx_txn *t;
        int i, rc = 0;

        fm.fail_at = n;
        fm.count = 0;
        fm.failures = 0;
        if (smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, &mem) != 0)
            continue;
        smtpx_config_freeze(cfg);
        if (smtpx_client_new(&c, cfg, NULL, 0, NULL) != 0) {
            smtpx_config_free(cfg);
            continue;
        }
        if (smtpx_txn_new(&t, cfg, "a@b.example") != 0) {
            smtpx_client_free(c);
            smtpx_config_free(cfg);
            continue;
        }
        smtpx_txn_add_rcpt(t, "c@d.example", NULL);
        smtpx_txn_add_rcpt(t, "e@d.example", NULL);
        smtpx_txn_set_body(t, "Subject: x\n\nhello\n", 19);
        if (smtpx_client_start(c, 0) == 0) {
            smtpx_client_ehlo(c, "c.test", NULL);
            if (smtpx_client_send(c, t) != 0)
                rc = -1;
            smtpx_client_quit(c, NULL);
            for (i = 0; server[i] != NULL && rc >= 0; i++) {
                smtpx_ssize r = smtpx_client_recv(c, (const uint8_t *)server[i],
                                                  strlen(server[i]), 0);
                if (r < 0)
                    rc = (int)r;
                drain_c(c);
            }
        }
        smtpx_client_free(c);
        if (smtpx_txn_rcpt_count(t) > 0 && rc == 0)
            ck_assert(smtpx_txn_done(t) || fm.failures > 0);
        smtpx_txn_free(t);
        smtpx_config_free(cfg);
        ck_assert_int_eq(fm.live, 0);
        if (n > 0 && fm.failures == 0)
            break;
        ck_assert_int_lt(n, 10000);
    }
    ck_assert_int_gt(n, 15);
}
END_TEST

START_TEST(test_client_free_unstarted)
{
    /* A client freed before it started still answers what was queued. */
    smtpx_config *cfg;
    smtpx_client *c;
    smtpx_txn *t;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL), 0);
    smtpx_config_freeze(cfg);
    c = client_for(cfg);
    ck_assert_int_eq(smtpx_txn_new(&t, cfg, "a@b.example"), 0);
    smtpx_txn_add_rcpt(t, "c@d.example", NULL);
    smtpx_txn_set_body(t, "x", 1);
    ck_assert_int_eq(smtpx_client_ehlo(c, "c.test", NULL), 0);
    ck_assert_int_eq(smtpx_client_send(c, t), 0);
    closed_status = 1;
    smtpx_client_free(c);
    ck_assert_int_eq(closed_status, SMTPX_ERR_CLOSED);
    ck_assert_int_eq(smtpx_txn_done(t), 1);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_DEFERRED);
    smtpx_txn_free(t);
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_txn_utf8_and_size)
{
    smtpx_config *cfg;
    smtpx_txn *t;
    char body[3000];

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_set_limit(cfg, SMTPX_LIMIT_TEXT_LINE, 64), 0);
    smtpx_config_freeze(cfg);
    ck_assert_int_eq(smtpx_txn_new(&t, cfg, "a@b.example"), 0);
    /* A refused UTF-8 recipient does not make the message need SMTPUTF8. */
    ck_assert_int_eq(
        smtpx_txn_add_rcpt(t, "j\xc3\xb8rgen@example.org", "BAD\r\nX"),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, "c@d.example", NULL), 0);
    /* SIZE counts the breaks of long lines too: a 200-octet line with a
     * limit of 62 octets is cut after 62, then every 61. */
    memset(body, 'x', 200);
    body[200] = '\n';
    ck_assert_int_eq(smtpx_txn_set_body(t, body, 201), 0);
    {
        /* Count what the stuffer writes for the same content. */
        smtpx__stuff st;
        smtpx__buf b = SMTPX__BUF_INIT;
        smtpx__stuff_init(&st, 64);
        smtpx__stuff_add(&st, &b, smtpx__mem_default(), (const uint8_t *)body,
                         201);
        ck_assert_uint_eq(smtpx_txn_body_size(t), smtpx__buf_used(&b));
        ck_assert_uint_eq(st.long_lines, 3);
        smtpx__buf_free(&b, smtpx__mem_default());
    }
    smtpx_txn_free(t);
    smtpx_config_free(cfg);
}
END_TEST

/*
 * The size a body is announced with (SIZE=) and whether it may go without
 * a copy come from one scan when it is set (64 octets at a time when it
 * is clean): it must agree with what the stuffer writes for the same
 * body, for every mix of CR, LF, CRLF, 8-bit octets and line lengths
 * around the 64-octet blocks, with and without a line limit.  Each body
 * ends at an unreadable page (guard_copy), so no read past it goes
 * unnoticed.
 */
START_TEST(test_txn_size_scan)
{
    static const uint8_t alpha[] = {'a', '\r', '\n', 0x80};
    static const long limits[] = {0, 64, 66, 1000};
    static uint8_t body[700];
    const smtpx_mem *mem = smtpx__mem_default();
    unsigned seed = 12345;
    size_t li, round;

    for (li = 0; li < sizeof(limits) / sizeof(limits[0]); li++) {
        smtpx_config *cfg;

        ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL), 0);
        ck_assert_int_eq(
            smtpx_config_set_limit(cfg, SMTPX_LIMIT_TEXT_LINE, limits[li]), 0);
        smtpx_config_freeze(cfg);
        for (round = 0; round < 3000; round++) {
            size_t len, i, line;
            smtpx__stuff st;
            smtpx__buf b = SMTPX__BUF_INIT;
            smtpx_txn *t;
            const char *copy;

            seed = seed * 1103515245u + 12345u;
            len = (seed >> 8) % sizeof(body);
            if (round % 2 == 0) {
                /* Clean CRLF lines of random lengths, now and then one
                 * octet changed. */
                for (i = 0, line = (seed >> 4) % 130; i < len; i++) {
                    if (line == 0 && i + 1 < len) {
                        body[i++] = '\r';
                        body[i] = '\n';
                        seed = seed * 1103515245u + 12345u;
                        line = (seed >> 9) % 130;
                        continue;
                    }
                    body[i] = (seed >> (i % 16)) & 1 ? 'x' : 'y';
                    if (i % 97 == 5 && round % 8 == 0)
                        body[i] = 0xc3;
                    line--;
                }
                if (len >= 2) {
                    body[len - 2] = '\r';
                    body[len - 1] = '\n';
                }
                if (round % 6 == 0 && len > 0) {
                    seed = seed * 1103515245u + 12345u;
                    body[(seed >> 8) % len] = alpha[(seed >> 3) % 4];
                }
            } else {
                for (i = 0; i < len; i++) {
                    seed = seed * 1103515245u + 12345u;
                    body[i] = alpha[(seed >> 11) % 4];
                }
            }
            copy = guard_copy(body, len);
            ck_assert_int_eq(smtpx_txn_new(&t, cfg, "a@b.example"), 0);
            ck_assert_int_eq(smtpx_txn_set_body(t, copy, len), 0);
            smtpx__stuff_init(&st, (size_t)limits[li]);
            ck_assert_int_ge(
                smtpx__stuff_add(&st, &b, mem, (const uint8_t *)copy, len), 0);
            ck_assert_int_ge(smtpx__stuff_end(&st, &b, mem), 3);
            /* The stuffer's output less ".\r\n" (no line starts with a
             * dot here). */
            ck_assert_uint_eq(smtpx_txn_body_size(t), smtpx__buf_used(&b) - 3);
            smtpx__buf_free(&b, mem);
            smtpx_txn_free(t);
        }
        smtpx_config_free(cfg);
    }
}
END_TEST

Suite *suite_client(void)
{
    Suite *s = suite_create("client");
    TCase *tc = tcase_create("parsers");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_rparse);
    tcase_add_test(tc, test_rparse_too_big);
    tcase_add_test(tc, test_ext);
    tcase_add_loop_test(tc, test_stuff, 0,
                        (int)(sizeof(stuff_cases) / sizeof(stuff_cases[0])));
    tcase_add_test(tc, test_stuff_roundtrip);
    tcase_add_test(tc, test_txn_api);
    tcase_add_test(tc, test_starttls_injection);
    tcase_add_test(tc, test_malformed_reply_logged_in_bounds);
    tcase_add_test(tc, test_client_api);
    tcase_add_test(tc, test_client_nomem_sweep);
    tcase_add_test(tc, test_client_free_unstarted);
    tcase_add_test(tc, test_txn_utf8_and_size);
    tcase_add_test(tc, test_txn_size_scan);
    suite_add_tcase(s, tc);
    return s;
}
