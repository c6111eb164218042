/*
 * check_esmtp - the client core and the server core talking in memory,
 * with each ESMTP extension offered and not: CHUNKING/BINARYMIME (RFC
 * 3030), 8BITMIME (RFC 6152), DSN (RFC 3461), SMTPUTF8 (RFC 6531),
 * REQUIRETLS (RFC 8689), MT-PRIORITY (RFC 6710).  What the server's
 * application sees (parameters, framing, the content byte for byte) and
 * what the client's transaction reports are both checked.
 */
#include <stdio.h>
#include <string.h>

#include <libsmtpx/smtpx.h>

#include "harness/failmalloc.h"
#include "suites.h"

typedef struct pair {
    smtpx_config *scfg, *ccfg;
    smtpx_server *s;
    smtpx_client *c;
    /* what the server's application saw */
    int mails, framing, body, smtputf8, ret, requiretls, priority, has_prio;
    char envid[128], notify_orcpt[256];
    unsigned notify;
    char content[65536];
    size_t content_len;
    int count_only; /* s_chunk only counts, into total */
    uint64_t total;
    int tls; /* both sides run "TLS" (a verified one, faked) */
} pair;

static int s_mail(smtpx_server *s, const smtpx_mail_info *mi, smtpx_reply *r,
                  void *ud)
{
    pair *p = ud;

    (void)s;
    (void)r;
    p->mails++;
    p->body = mi->body;
    p->smtputf8 = mi->smtputf8;
    p->ret = mi->ret;
    p->requiretls = mi->requiretls;
    p->priority = mi->priority;
    p->has_prio = mi->has_priority;
    snprintf(p->envid, sizeof(p->envid), "%s", mi->envid ? mi->envid : "");
    return 0;
}

static int s_rcpt(smtpx_server *s, const smtpx_rcpt_info *ri, void **rd,
                  smtpx_reply *r, void *ud)
{
    pair *p = ud;

    (void)s;
    (void)rd;
    if (strncmp(ri->to, "no", 2) == 0) {
        r->code = 550;
        r->enh[0] = 5;
        r->enh[1] = 1;
        r->enh[2] = 1;
        r->text = "No such user";
        return 0;
    }
    if (ri->index == 0) {
        p->notify = ri->notify;
        snprintf(p->notify_orcpt, sizeof(p->notify_orcpt), "%s",
                 ri->orcpt ? ri->orcpt : "");
    }
    return 0;
}

static int s_begin(smtpx_server *s, const smtpx_data_info *di, smtpx_reply *r,
                   void *ud)
{
    (void)s;
    (void)r;
    ((pair *)ud)->framing = di->framing;
    return 0;
}

static int s_chunk(smtpx_server *s, const uint8_t *d, size_t n, void *ud)
{
    pair *p = ud;

    (void)s;
    p->total += n;
    if (p->count_only)
        return 0;
    ck_assert_uint_le(p->content_len + n, sizeof(p->content));
    memcpy(p->content + p->content_len, d, n);
    p->content_len += n;
    return 0;
}

static const smtpx_server_callbacks scbs = {.on_mail = s_mail,
                                            .on_rcpt = s_rcpt,
                                            .on_data_begin = s_begin,
                                            .on_data_chunk = s_chunk};

static void setup_mem(pair *p, unsigned server_ext, const smtpx_mem *cmem)
{
    memset(p, 0, sizeof(*p));
    ck_assert_int_eq(smtpx_config_new(&p->scfg, SMTPX_ROLE_SERVER, NULL), 0);
    ck_assert_int_eq(smtpx_config_set_extensions(p->scfg, server_ext), 0);
    /* Refused recipients count as errors: test_many_mixed has many. */
    ck_assert_int_eq(smtpx_config_set_limit(p->scfg, SMTPX_LIMIT_ERRORS, 0), 0);
    ck_assert_int_eq(smtpx_config_freeze(p->scfg), 0);
    ck_assert_int_eq(smtpx_config_new(&p->ccfg, SMTPX_ROLE_CLIENT, cmem), 0);
    ck_assert_int_eq(smtpx_config_freeze(p->ccfg), 0);
    ck_assert_int_eq(smtpx_server_new(&p->s, p->scfg, &scbs, sizeof(scbs), p),
                     0);
    ck_assert_int_eq(smtpx_client_new(&p->c, p->ccfg, NULL, 0, p), 0);
}

static void setup(pair *p, unsigned server_ext)
{
    setup_mem(p, server_ext, NULL);
}

static void teardown(pair *p)
{
    smtpx_client_free(p->c);
    smtpx_server_free(p->s);
    smtpx_config_free(p->ccfg);
    smtpx_config_free(p->scfg);
}

/* shuttle - move bytes both ways until nothing moves; a pending TLS start
 * is completed on both sides as verified */
static void shuttle(pair *p)
{
    smtpx_tls_info info;
    int moved;

    memset(&info, 0, sizeof(info));
    info.version = "TLSv1.3";
    info.cipher = "TEST";
    info.verified = 1;
    do {
        const uint8_t *d;
        size_t n;

        moved = 0;
        while ((n = smtpx_client_out_peek(p->c, &d)) > 0) {
            if (smtpx_server_want_read(p->s))
                ck_assert_int_eq(smtpx_server_recv(p->s, d, n, 0),
                                 (smtpx_ssize)n);
            smtpx_client_out_drop(p->c, n, 0);
            moved = 1;
        }
        while ((n = smtpx_server_out_peek(p->s, &d)) > 0) {
            if (smtpx_client_want_read(p->c))
                ck_assert_int_eq(smtpx_client_recv(p->c, d, n, 0),
                                 (smtpx_ssize)n);
            smtpx_server_out_drop(p->s, n, 0);
            moved = 1;
        }
        if (smtpx_server_want_tls(p->s) && smtpx_client_want_tls(p->c)) {
            ck_assert_int_eq(smtpx_server_tls_started(p->s, &info, 0), 0);
            ck_assert_int_eq(smtpx_client_tls_started(p->c, &info, 0), 0);
            moved = 1;
        }
    } while (moved);
}

/* send - a session: (STARTTLS,) EHLO, the transaction, QUIT */
static void send(pair *p, smtpx_txn *t)
{
    ck_assert_int_eq(smtpx_server_start(p->s, NULL, 0), 0);
    ck_assert_int_eq(smtpx_client_start(p->c, 0), 0);
    ck_assert_int_eq(smtpx_client_ehlo(p->c, "c.test", NULL), 0);
    if (p->tls) {
        smtpx_server_set_tls_available(p->s, 1);
        shuttle(p);
        ck_assert_int_eq(smtpx_client_starttls(p->c, NULL), 0);
        shuttle(p);
        ck_assert_int_eq(smtpx_client_ehlo(p->c, "c.test", NULL), 0);
    }
    ck_assert_int_eq(smtpx_client_send(p->c, t), 0);
    ck_assert_int_eq(smtpx_client_quit(p->c, NULL), 0);
    shuttle(p);
    ck_assert(smtpx_txn_done(t));
}

static smtpx_txn *txn(const smtpx_config *cfg, const char *to, const void *body,
                      size_t len)
{
    smtpx_txn *t;

    ck_assert_int_eq(smtpx_txn_new(&t, cfg, "a@b.example"), 0);
    ck_assert_int_eq(smtpx_txn_add_rcpt(t, to, NULL), 0);
    ck_assert_int_eq(smtpx_txn_set_body(t, body, len), 0);
    return t;
}

#define TEXT "Subject: x\r\n\r\n.lead\r\nline\r\n"

START_TEST(test_chunking_on_off)
{
    static const unsigned exts[] = {SMTPX_EXT_DEFAULT,
                                    SMTPX_EXT_DEFAULT & ~SMTPX_EXT_CHUNKING,
                                    SMTPX_EXT_DEFAULT & ~SMTPX_EXT_PIPELINING};
    static const int framing[] = {SMTPX_FRAMING_BDAT, SMTPX_FRAMING_DATA,
                                  SMTPX_FRAMING_DATA};
    size_t i;

    for (i = 0; i < 3; i++) {
        pair p;
        smtpx_txn *t;

        setup(&p, exts[i]);
        t = txn(p.ccfg, "c@d.example", TEXT, sizeof(TEXT) - 1);
        send(&p, t);
        ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_ACCEPTED);
        ck_assert_int_eq(smtpx_txn_framing(t), framing[i]);
        ck_assert_int_eq(p.framing, framing[i]);
        /* The same content arrives either way, the dot unstuffed. */
        ck_assert_uint_eq(p.content_len, sizeof(TEXT) - 1);
        ck_assert(memcmp(p.content, TEXT, p.content_len) == 0);
        smtpx_txn_free(t);
        teardown(&p);
    }
}
END_TEST

START_TEST(test_prefer_data)
{
    pair p;
    smtpx_txn *t;

    setup(&p, SMTPX_EXT_DEFAULT);
    t = txn(p.ccfg, "c@d.example", TEXT, sizeof(TEXT) - 1);
    ck_assert_int_eq(smtpx_txn_set_prefer_data(t, 1), 0);
    send(&p, t);
    ck_assert_int_eq(p.framing, SMTPX_FRAMING_DATA);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_ACCEPTED);
    smtpx_txn_free(t);
    teardown(&p);
}
END_TEST

START_TEST(test_binarymime)
{
    static const uint8_t bin[] = {0,   1,    2,    '\r', 0xff, '\n',
                                  '.', '\r', '\n', '.',  0x80, '\n'};
    pair p;
    smtpx_txn *t;

    /* Offered: byte for byte, BODY=BINARYMIME. */
    setup(&p, SMTPX_EXT_DEFAULT | SMTPX_EXT_BINARYMIME);
    t = txn(p.ccfg, "c@d.example", bin, sizeof(bin));
    ck_assert_int_eq(smtpx_txn_set_body_type(t, SMTPX_BODY_BINARYMIME, 0), 0);
    send(&p, t);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_ACCEPTED);
    ck_assert_int_eq(p.body, SMTPX_BODY_BINARYMIME);
    ck_assert_int_eq(p.framing, SMTPX_FRAMING_BDAT);
    ck_assert_uint_eq(p.content_len, sizeof(bin));
    ck_assert(memcmp(p.content, bin, sizeof(bin)) == 0);
    smtpx_txn_free(t);
    teardown(&p);
    /* Not offered: not sent. */
    setup(&p, SMTPX_EXT_DEFAULT);
    t = txn(p.ccfg, "c@d.example", bin, sizeof(bin));
    ck_assert_int_eq(smtpx_txn_set_body_type(t, SMTPX_BODY_BINARYMIME, 0), 0);
    send(&p, t);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_FAILED);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->reply.code, 554);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->reply.enh[2], 3);
    ck_assert_int_eq(p.mails, 0);
    smtpx_txn_free(t);
    teardown(&p);
}
END_TEST

START_TEST(test_8bitmime)
{
    static const char eight[] = "Subject: x\r\n\r\nGr\xc3\xbc\xc3\x9f"
                                "e\r\n";
    pair p;
    smtpx_txn *t;

    setup(&p, SMTPX_EXT_DEFAULT);
    t = txn(p.ccfg, "c@d.example", eight, sizeof(eight) - 1);
    send(&p, t);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_ACCEPTED);
    ck_assert_int_eq(p.body, SMTPX_BODY_8BITMIME);
    smtpx_txn_free(t);
    teardown(&p);
    setup(&p, SMTPX_EXT_DEFAULT & ~SMTPX_EXT_8BITMIME);
    t = txn(p.ccfg, "c@d.example", eight, sizeof(eight) - 1);
    send(&p, t);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_FAILED);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->reply.code, 554);
    ck_assert_int_eq(p.mails, 0);
    smtpx_txn_free(t);
    teardown(&p);
}
END_TEST

START_TEST(test_dsn)
{
    pair p;
    smtpx_txn *t;

    setup(&p, SMTPX_EXT_DEFAULT | SMTPX_EXT_DSN);
    t = txn(p.ccfg, "c@d.example", TEXT, sizeof(TEXT) - 1);
    ck_assert_int_eq(smtpx_txn_set_dsn(t, SMTPX_DSN_RET_HDRS, "order 17+x"), 0);
    ck_assert_int_eq(smtpx_txn_set_rcpt_dsn(t, 0,
                                            SMTPX_DSN_NOTIFY_SUCCESS |
                                                SMTPX_DSN_NOTIFY_FAILURE,
                                            "Bob=Original@d.example"),
                     0);
    send(&p, t);
    ck_assert_int_eq(p.ret, SMTPX_DSN_RET_HDRS);
    ck_assert_str_eq(p.envid, "order+2017+2Bx");
    ck_assert_uint_eq(p.notify,
                      SMTPX_DSN_NOTIFY_SUCCESS | SMTPX_DSN_NOTIFY_FAILURE);
    ck_assert_str_eq(p.notify_orcpt, "rfc822;Bob+3DOriginal@d.example");
    ck_assert(!smtpx_txn_dsn_dropped(t));
    smtpx_txn_free(t);
    teardown(&p);
    /* Not offered: left out, and said. */
    setup(&p, SMTPX_EXT_DEFAULT);
    t = txn(p.ccfg, "c@d.example", TEXT, sizeof(TEXT) - 1);
    ck_assert_int_eq(smtpx_txn_set_dsn(t, SMTPX_DSN_RET_FULL, NULL), 0);
    send(&p, t);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_ACCEPTED);
    ck_assert_int_eq(p.ret, SMTPX_DSN_RET_NONE);
    ck_assert(smtpx_txn_dsn_dropped(t));
    smtpx_txn_free(t);
    teardown(&p);
    /* Bad arguments. */
    setup(&p, SMTPX_EXT_DEFAULT);
    t = txn(p.ccfg, "c@d.example", TEXT, sizeof(TEXT) - 1);
    ck_assert_int_eq(smtpx_txn_set_rcpt_dsn(t, 1, 0, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(
        smtpx_txn_set_rcpt_dsn(
            t, 0, SMTPX_DSN_NOTIFY_NEVER | SMTPX_DSN_NOTIFY_DELAY, NULL),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_txn_set_dsn(t, 7, NULL), SMTPX_ERR_INVALID_ARGUMENT);
    smtpx_txn_free(t);
    teardown(&p);
}
END_TEST

START_TEST(test_smtputf8)
{
    pair p;
    smtpx_txn *t;

    setup(&p, SMTPX_EXT_DEFAULT);
    t = txn(p.ccfg, "j\xc3\xb6rg@d.example", TEXT, sizeof(TEXT) - 1);
    send(&p, t);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_ACCEPTED);
    ck_assert_int_eq(p.smtputf8, 1);
    smtpx_txn_free(t);
    teardown(&p);
    setup(&p, SMTPX_EXT_DEFAULT & ~SMTPX_EXT_SMTPUTF8);
    t = txn(p.ccfg, "j\xc3\xb6rg@d.example", TEXT, sizeof(TEXT) - 1);
    send(&p, t);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_FAILED);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->reply.code, 553);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->reply.enh[2], 7);
    ck_assert_int_eq(p.mails, 0);
    smtpx_txn_free(t);
    teardown(&p);
}
END_TEST

START_TEST(test_requiretls)
{
    pair p;
    smtpx_txn *t;

    /* Over verified TLS to a server that offers it: REQUIRETLS goes. */
    setup(&p, SMTPX_EXT_DEFAULT | SMTPX_EXT_REQUIRETLS);
    p.tls = 1;
    t = txn(p.ccfg, "c@d.example", TEXT, sizeof(TEXT) - 1);
    ck_assert_int_eq(smtpx_txn_set_requiretls(t, 1), 0);
    send(&p, t);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_ACCEPTED);
    ck_assert_int_eq(p.requiretls, 1);
    smtpx_txn_free(t);
    teardown(&p);
    /* The server offers REQUIRETLS only under TLS: without it, the
     * message does not go. */
    setup(&p, SMTPX_EXT_DEFAULT | SMTPX_EXT_REQUIRETLS);
    t = txn(p.ccfg, "c@d.example", TEXT, sizeof(TEXT) - 1);
    ck_assert_int_eq(smtpx_txn_set_requiretls(t, 1), 0);
    send(&p, t);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_FAILED);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->reply.code, 550);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->reply.enh[2], 30);
    ck_assert_int_eq(p.mails, 0);
    smtpx_txn_free(t);
    teardown(&p);
}
END_TEST

START_TEST(test_priority)
{
    pair p;
    smtpx_txn *t;

    setup(&p, SMTPX_EXT_DEFAULT | SMTPX_EXT_MT_PRIORITY);
    t = txn(p.ccfg, "c@d.example", TEXT, sizeof(TEXT) - 1);
    ck_assert_int_eq(smtpx_txn_set_priority(t, -4), 0);
    send(&p, t);
    ck_assert_int_eq(p.has_prio, 1);
    ck_assert_int_eq(p.priority, -4);
    smtpx_txn_free(t);
    teardown(&p);
    setup(&p, SMTPX_EXT_DEFAULT);
    t = txn(p.ccfg, "c@d.example", TEXT, sizeof(TEXT) - 1);
    ck_assert_int_eq(smtpx_txn_set_priority(t, 3), 0);
    ck_assert_int_eq(smtpx_txn_set_priority(t, 10), SMTPX_ERR_INVALID_ARGUMENT);
    send(&p, t);
    ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_ACCEPTED);
    ck_assert_int_eq(p.has_prio, 0);
    smtpx_txn_free(t);
    teardown(&p);
}
END_TEST

START_TEST(test_large_bodies_both_framings)
{
    /* A body that needs changing (LF line ends, one long line) in many
     * chunks, and a clean one sent without a copy: the server gets what
     * DATA would have given it. */
    static char body[40000], want[45000];
    size_t i, n = 0, w = 0;
    int pass;

    for (i = 0; i < 300; i++) {
        n += (size_t)snprintf(body + n, sizeof(body) - n,
                              "%s%zu line of text\n", i % 7 ? "" : ".", i);
        w += (size_t)snprintf(want + w, sizeof(want) - w,
                              "%s%zu line of text\r\n", i % 7 ? "" : ".", i);
    }
    for (pass = 0; pass < 4; pass++) {
        static pair p;
        smtpx_txn *t;

        setup(&p, SMTPX_EXT_DEFAULT);
        t = txn(p.ccfg, "c@d.example", pass & 1 ? want : body,
                pass & 1 ? w : n);
        if (pass >= 2)
            ck_assert_int_eq(smtpx_txn_set_prefer_data(t, 1), 0);
        send(&p, t);
        ck_assert_int_eq(smtpx_txn_rcpt(t, 0)->state, SMTPX_RCPT_ACCEPTED);
        ck_assert_int_eq(p.framing,
                         pass >= 2 ? SMTPX_FRAMING_DATA : SMTPX_FRAMING_BDAT);
        ck_assert_uint_eq(p.content_len, w);
        ck_assert(memcmp(p.content, want, w) == 0);
        smtpx_txn_free(t);
        teardown(&p);
    }
}
END_TEST

/*
 * Hundreds of transactions queued at once on one session, every kind of
 * outcome mixed: the queue lets commands in and out at the edge between
 * written and unsent (local failures, DATA left out for BDAT, RSET after a
 * transaction whose recipients were all refused), and no reply may land
 * on the wrong command.
 */
START_TEST(test_many_mixed)
{
    enum { N = 600 };
    static const uint8_t bin[] = {0, 1, '\r', 0xff, '\n'};
    static smtpx_txn *t[N];
    static pair p;
    size_t i;

    setup(&p, SMTPX_EXT_DEFAULT & ~SMTPX_EXT_SMTPUTF8);
    ck_assert_int_eq(smtpx_server_start(p.s, NULL, 0), 0);
    ck_assert_int_eq(smtpx_client_start(p.c, 0), 0);
    ck_assert_int_eq(smtpx_client_ehlo(p.c, "c.test", NULL), 0);
    for (i = 0; i < N; i++) {
        switch (i % 6) {
        case 0: /* accepted, BDAT */
            t[i] = txn(p.ccfg, "c@d.example", TEXT, sizeof(TEXT) - 1);
            break;
        case 1: /* binary without BINARYMIME: local 554 5.6.3 */
            t[i] = txn(p.ccfg, "c@d.example", bin, sizeof(bin));
            ck_assert_int_eq(
                smtpx_txn_set_body_type(t[i], SMTPX_BODY_BINARYMIME, 0), 0);
            break;
        case 2: /* DATA preferred */
            t[i] = txn(p.ccfg, "c@d.example", TEXT, sizeof(TEXT) - 1);
            ck_assert_int_eq(smtpx_txn_set_prefer_data(t[i], 1), 0);
            break;
        case 3: /* one of two refused */
            t[i] = txn(p.ccfg, "no@d.example", TEXT, sizeof(TEXT) - 1);
            ck_assert_int_eq(smtpx_txn_add_rcpt(t[i], "e@d.example", NULL), 0);
            break;
        case 4: /* every one refused: no content, the server reset */
            t[i] = txn(p.ccfg, "no@d.example", TEXT, sizeof(TEXT) - 1);
            ck_assert_int_eq(smtpx_txn_add_rcpt(t[i], "no2@d.example", NULL),
                             0);
            break;
        default: /* a UTF-8 address without SMTPUTF8: that one fails */
            t[i] = txn(p.ccfg, "\xc3\xbc@d.example", TEXT, sizeof(TEXT) - 1);
            ck_assert_int_eq(smtpx_txn_add_rcpt(t[i], "e@d.example", NULL), 0);
            break;
        }
        ck_assert_int_eq(smtpx_client_send(p.c, t[i]), 0);
    }
    ck_assert_int_eq(smtpx_client_quit(p.c, NULL), 0);
    shuttle(&p);
    ck_assert(smtpx_client_done(p.c));
    ck_assert_int_eq(smtpx_client_status(p.c), 0);
    for (i = 0; i < N; i++) {
        const smtpx_rcpt_status *a = smtpx_txn_rcpt(t[i], 0);
        const smtpx_rcpt_status *b =
            smtpx_txn_rcpt_count(t[i]) > 1 ? smtpx_txn_rcpt(t[i], 1) : NULL;

        ck_assert(smtpx_txn_done(t[i]));
        switch (i % 6) {
        case 0:
        case 2:
            ck_assert_int_eq(a->state, SMTPX_RCPT_ACCEPTED);
            ck_assert_int_eq(smtpx_txn_framing(t[i]), i % 6 == 0
                                                          ? SMTPX_FRAMING_BDAT
                                                          : SMTPX_FRAMING_DATA);
            break;
        case 1:
            ck_assert_int_eq(a->state, SMTPX_RCPT_FAILED);
            ck_assert_int_eq(a->reply.code, 554);
            ck_assert(smtpx_reply_local(&a->reply));
            break;
        case 3:
            ck_assert_int_eq(a->state, SMTPX_RCPT_FAILED);
            ck_assert_int_eq(a->reply.code, 550);
            ck_assert_int_eq(b->state, SMTPX_RCPT_ACCEPTED);
            break;
        case 4:
            ck_assert_int_eq(a->state, SMTPX_RCPT_FAILED);
            ck_assert_int_eq(a->reply.code, 550);
            ck_assert_int_eq(b->state, SMTPX_RCPT_FAILED);
            ck_assert_int_eq(b->reply.code, 550);
            break;
        default:
            ck_assert_int_eq(a->state, SMTPX_RCPT_FAILED);
            ck_assert_int_eq(a->reply.code, 553);
            ck_assert_int_eq(b->state, SMTPX_RCPT_ACCEPTED);
            break;
        }
        smtpx_txn_free(t[i]);
    }
    /* Accepted content: kinds 0, 2, 3 and 5, one message each. */
    ck_assert_int_eq(p.mails, N / 6 * 5);
    teardown(&p);
}
END_TEST

/*
 * Large clean bodies go without a copy, one borrowed at a time: the next
 * transaction's MAIL and RCPT are pipelined behind the body being written,
 * but its own body waits for that one rather than being copied into the
 * output.  The client's heap stays within the output limit however large
 * the bodies and however many are queued.
 */
START_TEST(test_borrowed_bodies_memory)
{
    enum { N = 4, SIZE = 1 << 20 };
    static char body[SIZE];
    static pair p;
    smtpx_txn *t[N];
    failmalloc fm = {0};
    smtpx_mem mem = failmalloc_mem(&fm);
    size_t i, base;

    for (i = 0; i < SIZE; i += 64) {
        memset(body + i, 'a' + (int)(i / 64 % 26), 62);
        memcpy(body + i + 62, "\r\n", 2);
    }
    setup_mem(&p, SMTPX_EXT_DEFAULT, &mem);
    p.count_only = 1;
    base = fm.bytes;
    fm.peak = fm.bytes;
    ck_assert_int_eq(smtpx_server_start(p.s, NULL, 0), 0);
    ck_assert_int_eq(smtpx_client_start(p.c, 0), 0);
    ck_assert_int_eq(smtpx_client_ehlo(p.c, "c.test", NULL), 0);
    for (i = 0; i < N; i++) {
        t[i] = txn(p.ccfg, "c@d.example", body, SIZE);
        ck_assert_int_eq(smtpx_client_send(p.c, t[i]), 0);
    }
    ck_assert_int_eq(smtpx_client_quit(p.c, NULL), 0);
    shuttle(&p);
    for (i = 0; i < N; i++) {
        ck_assert_int_eq(smtpx_txn_rcpt(t[i], 0)->state, SMTPX_RCPT_ACCEPTED);
        ck_assert_int_eq(smtpx_txn_framing(t[i]), SMTPX_FRAMING_BDAT);
        smtpx_txn_free(t[i]);
    }
    ck_assert_uint_eq(p.total, (uint64_t)N * SIZE);
    /* The transactions' own memory and the queue are small; a copied body
     * alone would be a megabyte. */
    ck_assert_uint_lt(fm.peak - base, 128 * 1024);
    teardown(&p);
}
END_TEST

Suite *suite_esmtp(void)
{
    Suite *s = suite_create("esmtp");
    TCase *tc = tcase_create("esmtp");

    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_chunking_on_off);
    tcase_add_test(tc, test_prefer_data);
    tcase_add_test(tc, test_binarymime);
    tcase_add_test(tc, test_8bitmime);
    tcase_add_test(tc, test_dsn);
    tcase_add_test(tc, test_smtputf8);
    tcase_add_test(tc, test_requiretls);
    tcase_add_test(tc, test_priority);
    tcase_add_test(tc, test_large_bodies_both_framings);
    tcase_add_test(tc, test_many_mixed);
    tcase_add_test(tc, test_borrowed_bodies_memory);
    suite_add_tcase(s, tc);
    return s;
}
