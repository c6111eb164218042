/*
 * check_server - the server session's API: argument and state checks, the
 * callbacks-size rule, allocation failures swept over whole sessions, and
 * the memory an idle session holds.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/smtpx.h>

#include "harness/failmalloc.h"
#include "suites.h"

static smtpx_config *make_cfg(const smtpx_mem *mem)
{
    smtpx_config *cfg;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, mem), 0);
    ck_assert_int_eq(smtpx_config_set_hostname(cfg, "mx.test"), 0);
    ck_assert_int_eq(smtpx_config_freeze(cfg), 0);
    return cfg;
}

static size_t drain(smtpx_server *s, char *buf, size_t size)
{
    const uint8_t *p;
    size_t n, total = 0;

    while ((n = smtpx_server_out_peek(s, &p)) > 0) {
        if (buf != NULL && total + n < size) {
            memcpy(buf + total, p, n);
            buf[total + n] = '\0';
        }
        total += n;
        smtpx_server_out_drop(s, n, 0);
    }
    return total;
}

START_TEST(test_new_checks)
{
    smtpx_config *cfg;
    smtpx_server *s = (smtpx_server *)1;

    ck_assert_int_eq(smtpx_server_new(NULL, NULL, NULL, 0, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_server_new(&s, NULL, NULL, 0, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(s);
    /* An unfrozen config is refused: it could still change. */
    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, NULL), 0);
    ck_assert_int_eq(smtpx_server_new(&s, cfg, NULL, 0, NULL),
                     SMTPX_ERR_INVALID_STATE);
    smtpx_config_free(cfg);
    /* A client config cannot make a server. */
    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL), 0);
    smtpx_config_freeze(cfg);
    ck_assert_int_eq(smtpx_server_new(&s, cfg, NULL, 0, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    smtpx_config_free(cfg);
    smtpx_server_free(NULL);
}
END_TEST

START_TEST(test_state_checks)
{
    smtpx_config *cfg = make_cfg(NULL);
    smtpx_server *s;
    smtpx_reply r = {250, {0, 0, 0}, NULL};

    ck_assert_int_eq(smtpx_server_new(&s, cfg, NULL, 0, NULL), 0);
    /* Nothing before start. */
    ck_assert_int_eq(smtpx_server_recv(s, (const uint8_t *)"x", 1, 0),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_server_want_read(s), 0);
    ck_assert_uint_eq(smtpx_server_expiry(s), 0);
    ck_assert_int_eq(smtpx_server_start(s, NULL, 5), 0);
    ck_assert_int_eq(smtpx_server_start(s, NULL, 5), SMTPX_ERR_INVALID_STATE);
    /* No pause to answer. */
    ck_assert_int_eq(smtpx_server_reply(s, &r, 5), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_server_resume(s, 5), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_server_reply(s, NULL, 5),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_server_reply_rcpt(s, 0, &r),
                     SMTPX_ERR_INVALID_STATE);
    /* Implicit TLS may complete before the client says anything... */
    ck_assert_int_eq(smtpx_server_tls_started(s, NULL, 5), 0);
    ck_assert_int_eq(smtpx_server_tls_started(s, NULL, 5),
                     SMTPX_ERR_INVALID_STATE);
    /* ...but not once it has: that would be TLS nobody asked for. */
    {
        smtpx_server *s2;
        ck_assert_int_eq(smtpx_server_new(&s2, cfg, NULL, 0, NULL), 0);
        ck_assert_int_eq(smtpx_server_start(s2, NULL, 5), 0);
        ck_assert_int_eq(
            smtpx_server_recv(s2, (const uint8_t *)"NOOP\r\n", 6, 5), 6);
        ck_assert_int_eq(smtpx_server_tls_started(s2, NULL, 5),
                         SMTPX_ERR_INVALID_STATE);
        smtpx_server_free(s2);
    }
    ck_assert_int_eq(smtpx_server_shutdown(s, 77), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_server_recv(s, NULL, 1, 5),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_server_set_limit(s, SMTPX_LIMIT_RCPTS, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_server_set_limit(s, SMTPX_LIMIT_RCPTS, 3), 0);
    ck_assert_uint_eq(smtpx_server_get_limit(s, SMTPX_LIMIT_RCPTS), 3);
    /* The greeting came with the config's name. */
    {
        char buf[256];
        drain(s, buf, sizeof(buf));
        ck_assert_str_eq(buf, "220 mx.test ESMTP\r\n");
    }
    ck_assert_uint_eq(smtpx_server_expiry(s), 5 + 300000);
    ck_assert_int_eq(smtpx_server_expire(s, 300004), 0);
    ck_assert_int_eq(smtpx_server_expire(s, 300005), 1);
    ck_assert_int_eq(smtpx_server_want_read(s), 0);
    ck_assert_int_eq(smtpx_server_done(s), 0); /* 421 waits */
    ck_assert_int_eq(smtpx_server_reply(s, &r, 5), SMTPX_ERR_CLOSED);
    drain(s, NULL, 0);
    ck_assert_int_eq(smtpx_server_done(s), 1);
    /* Input after the end is ignored. */
    ck_assert_int_eq(smtpx_server_recv(s, (const uint8_t *)"NOOP\r\n", 6, 9),
                     6);
    ck_assert_int_eq(smtpx_server_want_write(s), 0);
    smtpx_server_free(s);
    smtpx_config_free(cfg);
}
END_TEST

static int closes;

static void count_close(smtpx_server *s, int status, void *ud)
{
    (void)s;
    (void)status;
    (void)ud;
    closes++;
}

START_TEST(test_cbs_size)
{
    /* Callbacks beyond the given size are ignored (an older program). */
    smtpx_config *cfg = make_cfg(NULL);
    smtpx_server_callbacks cbs;
    smtpx_server *s;

    memset(&cbs, 0, sizeof(cbs));
    cbs.on_close = count_close;
    closes = 0;
    ck_assert_int_eq(
        smtpx_server_new(&s, cfg, &cbs,
                         offsetof(smtpx_server_callbacks, on_close), NULL),
        0);
    smtpx_server_start(s, NULL, 0);
    smtpx_server_free(s);
    ck_assert_int_eq(closes, 0);
    ck_assert_int_eq(smtpx_server_new(&s, cfg, &cbs, sizeof(cbs), NULL), 0);
    smtpx_server_start(s, NULL, 0);
    smtpx_server_free(s);
    ck_assert_int_eq(closes, 1);
    smtpx_config_free(cfg);
}
END_TEST

static const char session[] =
    "EHLO client.test\r\n"
    "MAIL FROM:<a@example.org> SIZE=100\r\n"
    "RCPT TO:<b@example.org>\r\n"
    "RCPT TO:<c@example.org>\r\n"
    "DATA\r\n"
    "Subject: x\r\n\r\n..dot\nbare\r\n.\r\n"
    "BDAT 5\r\nhelloBDAT 0 LAST\r\n"
    "MAIL FROM:<> \r\nRCPT TO:<Postmaster>\r\nBDAT 3 LAST\r\nabc"
    "VRFY x\r\nRSET\r\nNOOP\r\nHELP\r\nQUIT\r\n";

static void closed_status(smtpx_server *s, int status, void *ud)
{
    (void)s;
    *(int *)ud = status;
}

START_TEST(test_nomem_sweep)
{
    /* Fail each allocation of a whole session in turn: the session either
     * reports SMTPX_ERR_NOMEM or carries on, and never leaks. */
    failmalloc fm = {.fail_at = 0};
    smtpx_mem mem = failmalloc_mem(&fm);
    smtpx_server_callbacks cbs;
    long n, total;
    int status;

    memset(&cbs, 0, sizeof(cbs));
    cbs.on_close = closed_status;
    /* Count the allocations of a session that does not fail. */
    for (n = 0;; n++) {
        smtpx_config *cfg;
        smtpx_server *s;
        int rc;
        smtpx_peer peer = {"192.0.2.1", 1, "192.0.2.2", 25, "c.test"};
        size_t i;

        fm.fail_at = n;
        fm.count = 0;
        fm.failures = 0;
        status = 1;
        rc = smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, &mem);
        if (rc != 0) {
            ck_assert_int_eq(rc, SMTPX_ERR_NOMEM);
            continue;
        }
        smtpx_config_freeze(cfg);
        rc = smtpx_server_new(&s, cfg, &cbs, sizeof(cbs), &status);
        if (rc == 0) {
            rc = smtpx_server_start(s, &peer, 0);
            if (rc == SMTPX_ERR_NOMEM && status == 1) {
                /* Copying the peer failed: the session never started,
                 * so no on_close is owed; it is still freeable. */
                smtpx_server_free(s);
                smtpx_config_free(cfg);
                ck_assert_int_eq(status, 1);
                ck_assert_int_eq(fm.live, 0);
                continue;
            }
            /* Feed in small pieces so partial lines are buffered too. */
            for (i = 0; rc == 0 && i < sizeof(session) - 1; i += 7) {
                size_t k =
                    sizeof(session) - 1 - i < 7 ? sizeof(session) - 1 - i : 7;
                smtpx_ssize r =
                    smtpx_server_recv(s, (const uint8_t *)session + i, k, 0);
                if (r < 0)
                    rc = (int)r;
                else
                    ck_assert_int_eq(r, (smtpx_ssize)k);
                drain(s, NULL, 0);
            }
            ck_assert(rc == 0 || rc == SMTPX_ERR_NOMEM);
            if (rc == SMTPX_ERR_NOMEM)
                ck_assert_int_eq(status, SMTPX_ERR_NOMEM);
            else if (fm.failures == 0)
                ck_assert_int_eq(status, 0); /* QUIT reached */
            smtpx_server_free(s);
        } else {
            ck_assert_int_eq(rc, SMTPX_ERR_NOMEM);
        }
        smtpx_config_free(cfg);
        ck_assert_int_eq(fm.live, 0);
        if (n > 0 && fm.failures == 0)
            break;
        if (n == 0)
            total = fm.count;
        ck_assert_int_lt(n, 10000);
    }
    ck_assert_int_gt(total, 10);
}
END_TEST

/* A counting allocator for the idle-session figure. */
static long heap_now, heap_peak;

static void *cnt_malloc(size_t n, void *ud)
{
    size_t *p = malloc(n + sizeof(size_t) * 2);
    (void)ud;
    if (p == NULL)
        return NULL;
    p[0] = n;
    heap_now += (long)n;
    if (heap_now > heap_peak)
        heap_peak = heap_now;
    return p + 2;
}

static void cnt_free(void *ptr, void *ud)
{
    size_t *p = ptr;
    (void)ud;
    if (p == NULL)
        return;
    heap_now -= (long)p[-2];
    free(p - 2);
}

static void *cnt_calloc(size_t a, size_t b, void *ud)
{
    void *p = cnt_malloc(a * b, ud);
    if (p != NULL)
        memset(p, 0, a * b);
    return p;
}

static void *cnt_realloc(void *ptr, size_t n, void *ud)
{
    void *q = cnt_malloc(n, ud);
    if (q != NULL && ptr != NULL) {
        size_t old = ((size_t *)ptr)[-2];
        memcpy(q, ptr, old < n ? old : n);
        cnt_free(ptr, ud);
    }
    return q;
}

START_TEST(test_idle_memory)
{
    /* After EHLO and a finished message, an idle session holds only its
     * own object and its strings: no input or output buffer. */
    smtpx_mem mem = {NULL, cnt_malloc, cnt_free, cnt_calloc, cnt_realloc};
    smtpx_config *cfg = make_cfg(&mem);
    smtpx_server *s;
    smtpx_peer peer = {"192.0.2.1", 40000, "192.0.2.2", 25, NULL};
    static const char in[] =
        "EHLO client.example.org\r\nMAIL FROM:<a@example.org>\r\n"
        "RCPT TO:<b@example.org>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n";
    long base = heap_now, idle;

    ck_assert_int_eq(smtpx_server_new(&s, cfg, NULL, 0, NULL), 0);
    smtpx_server_start(s, &peer, 0);
    ck_assert_int_eq(
        smtpx_server_recv(s, (const uint8_t *)in, sizeof(in) - 1, 0),
        (smtpx_ssize)sizeof(in) - 1);
    drain(s, NULL, 0);
    idle = heap_now - base;
    /* The figure is printed for the benchmark notes. */
    printf("idle session heap: %ld bytes\n", idle);
    ck_assert_int_lt(idle, 1024);
    /* A partial command line is the only input kept, and only while it
     * is partial. */
    smtpx_server_recv(s, (const uint8_t *)"NOO", 3, 0);
    ck_assert_int_gt(heap_now - base, idle);
    smtpx_server_recv(s, (const uint8_t *)"P\r\n", 3, 0);
    drain(s, NULL, 0);
    ck_assert_int_eq(heap_now - base, idle);
    smtpx_server_free(s);
    smtpx_config_free(cfg);
    ck_assert_int_eq(heap_now, 0);
}
END_TEST

/* Counts what the application saw in a session. */
typedef struct seen {
    int mails, rcpts, data_begins, data_ends, pause_data;
    int closed, status;
} seen;

static int cb_mail(smtpx_server *s, const smtpx_mail_info *mi, smtpx_reply *r,
                   void *ud)
{
    (void)s, (void)mi, (void)r;
    ((seen *)ud)->mails++;
    return 0;
}

static int cb_rcpt(smtpx_server *s, const smtpx_rcpt_info *ri, void **rd,
                   smtpx_reply *r, void *ud)
{
    (void)s, (void)rd;
    ((seen *)ud)->rcpts++;
    if (strcmp(ri->to, "bad@x.test") == 0) {
        r->code = 550;
        r->text = "No such user";
    }
    return 0;
}

static int cb_data_begin(smtpx_server *s, const smtpx_data_info *di,
                         smtpx_reply *r, void *ud)
{
    seen *v = ud;

    (void)s, (void)di, (void)r;
    v->data_begins++;
    return v->pause_data ? SMTPX_ERR_PAUSE : 0;
}

static int cb_data_end(smtpx_server *s, smtpx_reply *r, void *ud)
{
    (void)s, (void)r;
    ((seen *)ud)->data_ends++;
    return 0;
}

static void cb_close(smtpx_server *s, int status, void *ud)
{
    (void)s;
    ((seen *)ud)->closed++;
    ((seen *)ud)->status = status;
}

static smtpx_server *smuggle_session(smtpx_config *cfg, seen *v)
{
    smtpx_server_callbacks cbs;
    smtpx_server *s;
    static const char ehlo[] = "EHLO c.test\r\n";

    memset(&cbs, 0, sizeof(cbs));
    cbs.on_mail = cb_mail;
    cbs.on_rcpt = cb_rcpt;
    cbs.on_data_begin = cb_data_begin;
    cbs.on_data_end = cb_data_end;
    cbs.on_close = cb_close;
    ck_assert_int_eq(smtpx_server_new(&s, cfg, &cbs, sizeof(cbs), v), 0);
    ck_assert_int_eq(smtpx_server_start(s, NULL, 0), 0);
    ck_assert_int_eq(
        smtpx_server_recv(s, (const uint8_t *)ehlo, sizeof(ehlo) - 1, 0),
        (smtpx_ssize)sizeof(ehlo) - 1);
    drain(s, NULL, 0);
    return s;
}

/* A refused DATA with content pipelined behind it, in one write: the
 * content holds a second, smuggled transaction. */
static const char smuggle[] = "MAIL FROM:<a@x.test>\r\n"
                              "RCPT TO:<bad@x.test>\r\n"
                              "DATA\r\n"
                              "RSET\r\n"
                              "MAIL FROM:<evil@x.test>\r\n"
                              "RCPT TO:<victim@x.test>\r\n"
                              "DATA\r\n"
                              "smuggled\r\n"
                              ".\r\n";

START_TEST(test_refused_data_pipelined_content)
{
    smtpx_config *cfg = make_cfg(NULL);
    seen v;
    smtpx_server *s;
    char out[1024];

    memset(&v, 0, sizeof(v));
    s = smuggle_session(cfg, &v);
    ck_assert_int_eq(
        smtpx_server_recv(s, (const uint8_t *)smuggle, sizeof(smuggle) - 1, 0),
        (smtpx_ssize)sizeof(smuggle) - 1);
    drain(s, out, sizeof(out));
    /* RFC 2920 3.1: nothing after the refused DATA is run. */
    ck_assert_str_eq(out, "250 2.1.0 Ok\r\n"
                          "550 5.0.0 No such user\r\n"
                          "554 5.5.1 No valid recipients\r\n"
                          "421 4.5.0 Message content sent before the reply "
                          "to DATA, closing connection\r\n");
    ck_assert_int_eq(v.mails, 1);
    ck_assert_int_eq(v.rcpts, 1);
    ck_assert_int_eq(v.data_begins, 0);
    ck_assert_int_eq(v.closed, 1);
    ck_assert_int_eq(v.status, SMTPX_ERR_PROTO);
    ck_assert(smtpx_server_done(s));
    smtpx_server_free(s);
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_refused_data_after_pause)
{
    /* The application decides on DATA later; content that arrived in the
     * meantime is not run either when it then refuses. */
    static const char start[] = "MAIL FROM:<a@x.test>\r\n"
                                "RCPT TO:<b@x.test>\r\n"
                                "DATA\r\n";
    static const char more[] = "RSET\r\nMAIL FROM:<evil@x.test>\r\n";
    smtpx_config *cfg = make_cfg(NULL);
    smtpx_reply no = {451, {4, 3, 0}, "Try later"};
    seen v;
    smtpx_server *s;
    char out[1024];

    memset(&v, 0, sizeof(v));
    v.pause_data = 1;
    s = smuggle_session(cfg, &v);
    ck_assert_int_eq(
        smtpx_server_recv(s, (const uint8_t *)start, sizeof(start) - 1, 0),
        (smtpx_ssize)sizeof(start) - 1);
    ck_assert_int_eq(v.data_begins, 1);
    ck_assert_int_eq(
        smtpx_server_recv(s, (const uint8_t *)more, sizeof(more) - 1, 0),
        (smtpx_ssize)sizeof(more) - 1);
    ck_assert_int_eq(smtpx_server_reply(s, &no, 0), 0);
    drain(s, out, sizeof(out));
    ck_assert_ptr_nonnull(strstr(out, "451 4.3.0 Try later\r\n421 4.5.0 "));
    ck_assert_int_eq(v.mails, 1);
    ck_assert_int_eq(v.status, SMTPX_ERR_PROTO);
    smtpx_server_free(s);
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_refused_data_client_waits)
{
    /* A client that waits for the refusal goes on as usual. */
    static const char first[] = "MAIL FROM:<a@x.test>\r\n"
                                "RCPT TO:<bad@x.test>\r\n"
                                "DATA\r\n";
    static const char next[] = "RSET\r\nMAIL FROM:<a@x.test>\r\n";
    smtpx_config *cfg = make_cfg(NULL);
    seen v;
    smtpx_server *s;
    char out[1024];

    memset(&v, 0, sizeof(v));
    s = smuggle_session(cfg, &v);
    ck_assert_int_eq(
        smtpx_server_recv(s, (const uint8_t *)first, sizeof(first) - 1, 0),
        (smtpx_ssize)sizeof(first) - 1);
    drain(s, out, sizeof(out));
    ck_assert_ptr_nonnull(strstr(out, "554 5.5.1 No valid recipients\r\n"));
    ck_assert_int_eq(
        smtpx_server_recv(s, (const uint8_t *)next, sizeof(next) - 1, 0),
        (smtpx_ssize)sizeof(next) - 1);
    drain(s, out, sizeof(out));
    ck_assert_str_eq(out, "250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n");
    ck_assert_int_eq(v.mails, 2);
    ck_assert_int_eq(v.closed, 0);
    smtpx_server_free(s);
    smtpx_config_free(cfg);
}
END_TEST

Suite *suite_server(void)
{
    Suite *s = suite_create("server");
    TCase *tc = tcase_create("api");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_new_checks);
    tcase_add_test(tc, test_state_checks);
    tcase_add_test(tc, test_cbs_size);
    tcase_add_test(tc, test_nomem_sweep);
    tcase_add_test(tc, test_idle_memory);
    tcase_add_test(tc, test_refused_data_pipelined_content);
    tcase_add_test(tc, test_refused_data_after_pause);
    tcase_add_test(tc, test_refused_data_client_waits);
    suite_add_tcase(s, tc);
    return s;
}
