/*
 * check_queue - the queue: the file format round trip and its parser on
 * broken input, intake and recovery after what a crash leaves (files in
 * tmp/, a state without its message, a damaged file), faults injected
 * through the file-system seam (fsync, rename, ENOSPC and the directory
 * sync: nothing acknowledged is lost, nothing partial is visible), commits
 * on several threads sharing the directory sync (group commit), the
 * management calls, the back-off, the report builder read back by the
 * report parser, xtext, and the static resolver.
 */
#define _DEFAULT_SOURCE /* usleep */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libsmtpx/mta.h>
#include <libsmtpx/posix.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include "base/mem.h"
#include "mta/attempt.h"
#include "mta/dsn.h"
#include "mta/engine.h"
#include "mta/queue.h"
#include "mta/resolver.h"
#include "mta/route.h"
#include "proto/cmd.h"
#include "suites.h"

/* ---- helpers ------------------------------------------------------------- */

#define MEM smtpx__mem_default()

static char dir[256];

static void rm_rf(const char *path)
{
    char cmd[600];
    int rc;

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    rc = system(cmd);
    (void)rc;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/check-queue-%ld", (long)getpid());
    rm_rf(dir);
}

static void teardown(void)
{
    rm_rf(dir);
}

/* count - files in dir/sub */
static int count(const char *sub)
{
    char path[512];
    struct dirent *de;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void put_file(const char *sub, const char *name, const char *text)
{
    char path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs(text, fp);
    fclose(fp);
}

/* ---- a seam that fails on purpose ---------------------------------------- */

enum { F_WRITE, F_FSYNC, F_RENAME, F_COUNT };
static struct {
    long calls[F_COUNT];
    long fail_at[F_COUNT];
    int err[F_COUNT];
} flt;

static int fault(int op)
{
    long n = ++flt.calls[op];

    if (flt.fail_at[op] > 0 && n == flt.fail_at[op]) {
        errno = flt.err[op];
        return 1;
    }
    return 0;
}

static ssize_t t_write(int fd, const void *buf, size_t len)
{
    if (fault(F_WRITE))
        return -1;
    return write(fd, buf, len);
}

static int t_fsync(int fd)
{
    if (fault(F_FSYNC))
        return -1;
    return fsync(fd);
}

static int t_rename(const char *from, const char *to)
{
    if (fault(F_RENAME))
        return -1;
    return rename(from, to);
}

static smtpx__fs faulty;

static void fault_reset(void)
{
    memset(&flt, 0, sizeof(flt));
    faulty = *smtpx__maildir_fs_default();
    faulty.write = t_write;
    faulty.fsync = t_fsync;
    faulty.rename = t_rename;
}

/* queue one message; returns the commit's result */
static int enqueue(smtpx_queue *q, const char *from, const char *body, char *id)
{
    smtpx_queue_env env;
    smtpx_queue_msg *m;
    int rc;

    memset(&env, 0, sizeof(env));
    env.size = sizeof(env);
    env.from = from;
    env.ret = SMTPX_DSN_RET_HDRS;
    env.envid = "env+2Bid";
    rc = smtpx_queue_begin(q, &env, &m);
    if (rc != 0)
        return rc;
    ck_assert_int_eq(smtpx_queue_add_rcpt(m, "bob@example.net", 0, NULL), 0);
    ck_assert_int_eq(smtpx_queue_add_rcpt(m, "carol@example.net",
                                          SMTPX_DSN_NOTIFY_SUCCESS |
                                              SMTPX_DSN_NOTIFY_FAILURE,
                                          "rfc822;carol+2B1@example.net"),
                     0);
    rc = smtpx_queue_write(m, body, strlen(body));
    if (rc != 0) {
        smtpx_queue_abort(m);
        return rc;
    }
    return smtpx_queue_commit(m, id, 32);
}

static const char *const BODY = "Subject: test\r\nFrom: alice@example.org\r\n"
                                "\r\nhello\r\n.dot line\r\n";

/* ---- the format ---------------------------------------------------------- */

START_TEST(test_format_round_trip)
{
    smtpx__qmsg m, back;
    smtpx__qrcpt r[2];
    smtpx__buf b = SMTPX__BUF_INIT;
    smtpx_reply reply = {451, {4, 4, 1}, "try later"};

    memset(&m, 0, sizeof(m));
    memset(r, 0, sizeof(r));
    m.from = (char *)"alice@example.org";
    m.envid = (char *)"abc";
    m.ret = 1;
    m.body = 2;
    m.smtputf8 = 1;
    m.arrival = 1700000000;
    m.nrcpts = 2;
    m.rcpts = r;
    r[0].addr = (char *)"\"a b\"@example.net";
    r[0].notify = 6;
    r[0].orcpt = (char *)"rfc822;x";
    r[1].addr = (char *)"c@example.net";
    ck_assert_int_eq(smtpx__qfile_format_env(&m, &b, MEM), 0);
    memset(&back, 0, sizeof(back));
    ck_assert_int_eq(smtpx__qfile_parse_env((const char *)smtpx__buf_head(&b),
                                            smtpx__buf_used(&b), &back, MEM),
                     0);
    ck_assert_str_eq(back.from, m.from);
    ck_assert_str_eq(back.envid, "abc");
    ck_assert_int_eq(back.ret, 1);
    ck_assert_int_eq(back.body, 2);
    ck_assert_int_eq(back.smtputf8, 1);
    ck_assert_int_eq(back.arrival, 1700000000);
    ck_assert_uint_eq(back.nrcpts, 2);
    ck_assert_str_eq(back.rcpts[0].addr, "\"a b\"@example.net");
    ck_assert_str_eq(back.rcpts[0].orcpt, "rfc822;x");
    ck_assert_uint_eq(back.rcpts[0].notify, 6);
    ck_assert_ptr_null(back.rcpts[1].orcpt);
    ck_assert_uint_eq(back.content_off, smtpx__buf_used(&b));
    smtpx__buf_free(&b, MEM);

    /* state */
    back.next_attempt = 1700000300;
    back.held = 1;
    back.rcpts[0].state = SMTPX_QRCPT_DEFERRED;
    back.rcpts[0].attempts = 3;
    ck_assert_int_eq(
        smtpx__qrcpt_set_reply(&back.rcpts[0], &reply, "mx.example.net", MEM),
        0);
    back.rcpts[1].state = SMTPX_QRCPT_DELIVERED;
    back.rcpts[1].reported = SMTPX__QR_REPORTED;
    ck_assert_int_eq(smtpx__qfile_format_state(&back, &b, MEM), 0);
    {
        smtpx__qmsg st = back;
        smtpx__qrcpt r2[2];
        memset(r2, 0, sizeof(r2));
        r2[0].addr = back.rcpts[0].addr;
        r2[1].addr = back.rcpts[1].addr;
        st.rcpts = r2;
        st.next_attempt = 0;
        st.held = 0;
        ck_assert_int_eq(
            smtpx__qfile_parse_state((const char *)smtpx__buf_head(&b),
                                     smtpx__buf_used(&b), &st, MEM),
            0);
        ck_assert_int_eq(st.next_attempt, 1700000300);
        ck_assert_int_eq(st.held, 1);
        ck_assert_int_eq(r2[0].state, SMTPX_QRCPT_DEFERRED);
        ck_assert_uint_eq(r2[0].attempts, 3);
        ck_assert_int_eq(r2[0].code, 451);
        ck_assert_uint_eq(r2[0].enh[2], 1);
        ck_assert_str_eq(r2[0].text, "try later");
        ck_assert_str_eq(r2[0].remote, "mx.example.net");
        ck_assert_int_eq(r2[1].state, SMTPX_QRCPT_DELIVERED);
        ck_assert_uint_eq(r2[1].reported, SMTPX__QR_REPORTED);
        ck_assert_ptr_null(r2[1].text);
        free(r2[0].text);
        free(r2[0].remote);
    }
    smtpx__buf_free(&b, MEM);
    smtpx__qmsg_clear(&back, MEM);
}
END_TEST

/* Envelopes and states that must not parse. */
static const char *const bad_env[] = {
    "",
    "SMTPXQ1\n",
    "SMTPXQ2\nT 1\nF a\nP 0 0 0\nR 0 - b@c\n.\n",
    "SMTPXQ1\nT 1\nF a\nP 0 0 0\nR 0 - b@c\n",     /* no end */
    "SMTPXQ1\nT 1\nF a\nP 0 0 0\n.\n",             /* no recipient */
    "SMTPXQ1\nF a\nP 0 0 0\nR 0 - b@c\n.\n",       /* no T */
    "SMTPXQ1\nT 1\nP 0 0 0\nR 0 - b@c\n.\n",       /* no F */
    "SMTPXQ1\nT 1\nF a\nR 0 - b@c\n.\n",           /* no P */
    "SMTPXQ1\nT -1\nF a\nP 0 0 0\nR 0 - b@c\n.\n", /* sign */
    "SMTPXQ1\nT 99999999999999999999\nF a\nP 0 0 0\nR 0 - b@c\n.\n",
    "SMTPXQ1\nT 1\nF a\nP 3 0 0\nR 0 - b@c\n.\n",  /* ret out of range */
    "SMTPXQ1\nT 1\nF a\nP 0 0 0\nR 16 - b@c\n.\n", /* notify */
    "SMTPXQ1\nT 1\nF a\nP 0 0 0\nR 0 - \n.\n",     /* empty address */
    "SMTPXQ1\nT 1\nF a\nP 0 0 0\nR 0 -\n.\n",
    "SMTPXQ1\nT 1\nF a\x01\nP 0 0 0\nR 0 - b@c\n.\n",  /* control */
    "SMTPXQ1\nT 1\nT 2\nF a\nP 0 0 0\nR 0 - b@c\n.\n", /* twice */
    "SMTPXQ1\nT 1\nF a\nP 0 0 0\nZ x\nR 0 - b@c\n.\n", /* unknown */
    "SMTPXQ1\nT 1\nF a\nP 0 0 0\nR0 - b@c\n.\n",
    "SMTPXQ1\r\nT 1\nF a\nP 0 0 0\nR 0 - b@c\n.\n",
};

START_TEST(test_format_bad_env)
{
    size_t i;

    for (i = 0; i < sizeof(bad_env) / sizeof(bad_env[0]); i++) {
        smtpx__qmsg m;
        memset(&m, 0, sizeof(m));
        ck_assert_msg(smtpx__qfile_parse_env(bad_env[i], strlen(bad_env[i]), &m,
                                             MEM) == SMTPX_ERR_CORRUPT,
                      "parsed: %zu", i);
        smtpx__qmsg_clear(&m, MEM);
    }
}
END_TEST

START_TEST(test_format_bad_state)
{
    static const char *const env = "SMTPXQ1\nT 1\nF a\nP 0 0 0\nR 0 - b@c\n"
                                   "R 0 - d@e\n.\n";
    static const char *const bad[] = {
        "",
        "SMTPXS1\nN 0 0\n.\n", /* recipients missing */
        "SMTPXS1\nN 0 0\nS 0 1 1 0 451 4.4.1 - x\n.\n",
        "SMTPXS1\nS 0 1 1 0 451 4.4.1 - x\nS 1 0 0 0 0 0.0.0 - \n.\n",
        "SMTPXS1\nN 0 0\nS 1 1 1 0 451 4.4.1 - x\nS 0 0 0 0 0 0.0.0 - \n.\n",
        "SMTPXS1\nN 0 0\nS 0 4 1 0 451 4.4.1 - x\nS 1 0 0 0 0 0.0.0 - \n.\n",
        "SMTPXS1\nN 0 0\nS 0 1 1 0 600 4.4.1 - x\nS 1 0 0 0 0 0.0.0 - \n.\n",
        "SMTPXS1\nN 0 0\nS 0 1 1 0 451 4.4 - x\nS 1 0 0 0 0 0.0.0 - \n.\n",
        "SMTPXS1\nN 0 0\nS 0 1 1 0 451 4.4.1000 - x\nS 1 0 0 0 0 0.0.0 - \n.\n",
        "SMTPXS1\nN 0 0\nS 0 1 1 0 451 4.4.1 -\nS 1 0 0 0 0 0.0.0 - \n.\n",
        "SMTPXS1\nN 0 0\nS 0 1 1 0 451 4.4.1 - x\nS 1 0 0 0 0 0.0.0 - \n.\nX",
        "SMTPXS1\nN 0 2\nS 0 1 1 0 451 4.4.1 - x\nS 1 0 0 0 0 0.0.0 - \n.\n",
        "SMTPXS1\nN 0 0\nS 0 1 1 0 451 4.4.1 - x\nS 1 0 0 0 0 0.0.0 - \n",
        "SMTPXS1\nN 0 0\nS 0 1 1 4 451 4.4.1 - x\nS 1 0 0 0 0 0.0.0 - \n.\n",
        "SMTPXS1\nN 0 0\nS 2 1 1 0 451 4.4.1 - x\nS 1 0 0 0 0 0.0.0 - \n.\n",
    };
    static const char *const good = "SMTPXS1\nN 5 0\nS 0 1 1 0 451 4.4.1 - "
                                    "x y\nS 1 0 0 0 0 0.0.0 - \n.\n";
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        smtpx__qmsg m;
        memset(&m, 0, sizeof(m));
        ck_assert_int_eq(smtpx__qfile_parse_env(env, strlen(env), &m, MEM), 0);
        ck_assert_msg(smtpx__qfile_parse_state(bad[i], strlen(bad[i]), &m,
                                               MEM) == SMTPX_ERR_CORRUPT,
                      "parsed: %zu", i);
        smtpx__qmsg_clear(&m, MEM);
    }
    {
        smtpx__qmsg m;
        memset(&m, 0, sizeof(m));
        ck_assert_int_eq(smtpx__qfile_parse_env(env, strlen(env), &m, MEM), 0);
        ck_assert_int_eq(smtpx__qfile_parse_state(good, strlen(good), &m, MEM),
                         0);
        ck_assert_str_eq(m.rcpts[0].text, "x y");
        ck_assert_int_eq(m.next_attempt, 5);
        smtpx__qmsg_clear(&m, MEM);
    }
}
END_TEST

/* Every prefix of a valid envelope is refused, and nothing is read past the
 * length given (the sanitizers watch). */
START_TEST(test_format_prefixes)
{
    static const char *const env = "SMTPXQ1\nT 17\nF alice@example.org\n"
                                   "P 1 2 0\nE x+2B\nR 6 rfc822;a b@c\n.\n";
    size_t n, len = strlen(env);

    for (n = 0; n < len; n++) {
        smtpx__qmsg m;
        char *copy = malloc(n ? n : 1);
        memcpy(copy, env, n);
        memset(&m, 0, sizeof(m));
        ck_assert_int_eq(smtpx__qfile_parse_env(copy, n, &m, MEM),
                         SMTPX_ERR_CORRUPT);
        smtpx__qmsg_clear(&m, MEM);
        free(copy);
    }
}
END_TEST

/* ---- intake and recovery ------------------------------------------------- */

static int list_count(const smtpx_queue_info *info, void *ud)
{
    int *n = ud;

    ck_assert_uint_eq(info->nrcpts, 2);
    ck_assert_str_eq(info->from, "alice@example.org");
    ck_assert_uint_eq(info->size, strlen(BODY));
    ck_assert_int_eq(info->rcpts[0].state, SMTPX_QRCPT_PENDING);
    (*n)++;
    return 0;
}

START_TEST(test_intake_and_reopen)
{
    smtpx_queue *q, *q2, *ro;
    smtpx_queue_opts o;
    char id[32];
    int i, n = 0;

    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(enqueue(q, "alice@example.org", BODY, id), 0);
        ck_assert_uint_gt(strlen(id), 10);
    }
    ck_assert_uint_eq(smtpx_queue_count(q), 3);
    ck_assert_int_eq(count("msg"), 3);
    ck_assert_int_eq(count("tmp"), 0);
    /* One owner at a time. */
    ck_assert_int_eq(smtpx_queue_open(&q2, dir, NULL), SMTPX_ERR_BUSY);
    ck_assert_ptr_null(q2);
    /* A reader may list while the owner runs. */
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.flags = SMTPX_QUEUE_READONLY;
    ck_assert_int_eq(smtpx_queue_open(&ro, dir, &o), 0);
    ck_assert_int_eq(smtpx_queue_list(ro, list_count, &n), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(smtpx_queue_begin(ro, NULL, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    smtpx_queue_free(ro);
    smtpx_queue_free(q);
    /* A restart resumes every message. */
    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    ck_assert_uint_eq(smtpx_queue_count(q), 3);
    ck_assert_int_eq(smtpx_queue_delete(q, id), 0);
    ck_assert_int_eq(smtpx_queue_delete(q, id), SMTPX_ERR_NOT_FOUND);
    ck_assert_uint_eq(smtpx_queue_count(q), 2);
    ck_assert_int_eq(count("msg"), 2);
    smtpx_queue_free(q);
}
END_TEST

START_TEST(test_recovery)
{
    smtpx_queue *q;
    char id[32];

    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    ck_assert_int_eq(enqueue(q, "alice@example.org", BODY, id), 0);
    smtpx_queue_free(q);
    /* What a crash leaves: a half-written file in tmp/, a state without
     * its message, a damaged message and a damaged state. */
    put_file("tmp", "123.4", "SMTPXQ1\nT 1\nF a\n");
    put_file("state", "ORPHAN", "SMTPXS1\nN 0 0\n.\n");
    put_file("msg", "DAMAGED", "SMTPXQ1\nT 1\nF a\nP 0 0 0\nR 0 - b@c\n");
    put_file("msg", "BADSTATE", "SMTPXQ1\nT 1\nF a\nP 0 0 0\nR 0 - b@c\n.\n");
    put_file("state", "BADSTATE", "SMTPXS1\nN 0 0\n");
    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    ck_assert_uint_eq(smtpx_queue_count(q), 1);
    ck_assert_int_eq(count("tmp"), 0);
    ck_assert_int_eq(count("state"), 0);
    ck_assert_int_eq(count("msg"), 1);
    ck_assert_int_eq(count("corrupt"), 3);
    smtpx_queue_free(q);
}
END_TEST

START_TEST(test_hold_flush)
{
    smtpx_queue *q;
    smtpx__qmsg *due[4];
    int64_t next;
    char id[32];

    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    ck_assert_int_eq(enqueue(q, "alice@example.org", BODY, id), 0);
    ck_assert_int_eq(smtpx_queue_hold(q, id, 1), 0);
    ck_assert_int_eq(count("state"), 1);
    ck_assert_uint_eq(
        smtpx__queue_take_due(q, smtpx__queue_now(q), due, 4, &next), 0);
    smtpx_queue_free(q);
    /* The hold is durable. */
    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    ck_assert_uint_eq(
        smtpx__queue_take_due(q, smtpx__queue_now(q), due, 4, &next), 0);
    ck_assert_int_eq(smtpx_queue_hold(q, id, 0), 0);
    ck_assert_int_eq(smtpx_queue_hold(q, "nope", 0), SMTPX_ERR_NOT_FOUND);
    ck_assert_uint_eq(
        smtpx__queue_take_due(q, smtpx__queue_now(q), due, 4, &next), 1);
    /* A deferral saved durably comes back with its next attempt. */
    due[0]->rcpts[0].state = SMTPX_QRCPT_DEFERRED;
    due[0]->rcpts[0].attempts = 1;
    due[0]->next_attempt = smtpx__queue_now(q) + 1000;
    ck_assert_int_eq(smtpx__queue_save(q, due[0]), 0);
    smtpx__queue_release(q, due[0], 1);
    ck_assert_uint_eq(
        smtpx__queue_take_due(q, smtpx__queue_now(q), due, 4, &next), 0);
    ck_assert_int_gt(next, smtpx__queue_now(q) + 900);
    smtpx_queue_free(q);
    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    ck_assert_uint_eq(
        smtpx__queue_take_due(q, smtpx__queue_now(q), due, 4, &next), 0);
    ck_assert_int_eq(smtpx_queue_flush(q, NULL), 0);
    ck_assert_uint_eq(
        smtpx__queue_take_due(q, smtpx__queue_now(q), due, 4, &next), 1);
    ck_assert_int_eq(due[0]->rcpts[0].state, SMTPX_QRCPT_DEFERRED);
    ck_assert_uint_eq(due[0]->rcpts[0].attempts, 1);
    /* Held while in flight: durable once the attempt gives it back. */
    ck_assert_int_eq(smtpx_queue_hold(q, id, 1), 0);
    smtpx__queue_release(q, due[0], 1);
    smtpx_queue_free(q);
    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    ck_assert_uint_eq(smtpx__queue_take_due(q, 0x7fffffff, due, 4, &next), 0);
    ck_assert_int_eq(smtpx_queue_hold(q, id, 0), 0);
    ck_assert_uint_eq(smtpx__queue_take_due(q, 0x7fffffff, due, 4, &next), 1);
    /* All final: released without keeping, the files go. */
    due[0]->rcpts[0].state = SMTPX_QRCPT_DELIVERED;
    due[0]->rcpts[1].state = SMTPX_QRCPT_DELIVERED;
    smtpx__queue_release(q, due[0], 0);
    ck_assert_uint_eq(smtpx_queue_count(q), 0);
    ck_assert_int_eq(count("msg"), 0);
    ck_assert_int_eq(count("state"), 1); /* until the sync */
    ck_assert_int_eq(smtpx__queue_sync(q), 0);
    ck_assert_int_eq(count("state"), 0);
    smtpx_queue_free(q);
}
END_TEST

/* ---- faults -------------------------------------------------------------- */

/* Each fault: the commit fails with the right code, nothing of the message
 * is left anywhere, and a message committed before is untouched. */
static void fault_case(int op, long at, int err, int want)
{
    smtpx_queue *q;
    char id[32];

    teardown();
    fault_reset();
    ck_assert_int_eq(smtpx__queue_open_fs(&q, dir, NULL, &faulty), 0);
    ck_assert_int_eq(enqueue(q, "alice@example.org", BODY, id), 0);
    memset(flt.calls, 0, sizeof(flt.calls));
    flt.fail_at[op] = at;
    flt.err[op] = err;
    ck_assert_int_eq(enqueue(q, "alice@example.org", BODY, id), want);
    ck_assert_str_eq(id, "");
    ck_assert_int_eq(count("tmp"), 0);
    ck_assert_int_eq(count("msg"), 1);
    ck_assert_uint_eq(smtpx_queue_count(q), 1);
    smtpx_queue_free(q);
    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    ck_assert_uint_eq(smtpx_queue_count(q), 1);
    smtpx_queue_free(q);
}

START_TEST(test_faults)
{
    fault_case(F_WRITE, 1, ENOSPC, SMTPX_ERR_NOSPACE);
    fault_case(F_WRITE, 1, EIO, SMTPX_ERR_IO);
    fault_case(F_FSYNC, 1, EIO, SMTPX_ERR_IO); /* the file */
    fault_case(F_FSYNC, 2, EIO, SMTPX_ERR_IO); /* the directory */
    fault_case(F_FSYNC, 1, ENOSPC, SMTPX_ERR_NOSPACE);
    fault_case(F_RENAME, 1, EIO, SMTPX_ERR_IO);
    fault_case(F_RENAME, 1, ENOSPC, SMTPX_ERR_NOSPACE);
}
END_TEST

/* ---- group commit -------------------------------------------------------- */

/* A seam that counts the syncs of msg/ (the only directory synced while
 * messages are committed), holds the first until every thread has renamed
 * its message into msg/, and fails the one numbered fail_at. */
#define GC_THREADS 8
static struct {
    pthread_mutex_t mu;
    int renames, dsyncs, fail_at;
} gc = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};

static int gc_rename(const char *from, const char *to)
{
    int rc = rename(from, to);

    if (rc == 0 && strstr(to, "/msg/") != NULL) {
        pthread_mutex_lock(&gc.mu);
        gc.renames++;
        pthread_mutex_unlock(&gc.mu);
    }
    return rc;
}

static int gc_fsync(int fd)
{
    struct stat st;
    int n, i, all = 0;

    if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode))
        return fsync(fd);
    pthread_mutex_lock(&gc.mu);
    n = ++gc.dsyncs;
    pthread_mutex_unlock(&gc.mu);
    for (i = 0; n == 1 && !all && i < 2000; i++) {
        pthread_mutex_lock(&gc.mu);
        all = gc.renames == GC_THREADS;
        pthread_mutex_unlock(&gc.mu);
        if (!all)
            usleep(5000);
    }
    if (n == gc.fail_at) {
        errno = EIO;
        return -1;
    }
    return fsync(fd);
}

typedef struct gc_job {
    smtpx_queue *q;
    int rc;
} gc_job;

/* gc_commit - one message, committed on a thread of its own (no ck_assert
 * off the test's thread) */
static void *gc_commit(void *arg)
{
    gc_job *j = arg;
    smtpx_queue_env env;
    smtpx_queue_msg *m;

    memset(&env, 0, sizeof(env));
    env.size = sizeof(env);
    env.from = "alice@example.org";
    j->rc = smtpx_queue_begin(j->q, &env, &m);
    if (j->rc == 0)
        j->rc = smtpx_queue_add_rcpt(m, "bob@example.net", 0, NULL);
    if (j->rc == 0)
        j->rc = smtpx_queue_write(m, BODY, strlen(BODY));
    if (j->rc == 0)
        j->rc = smtpx_queue_commit(m, NULL, 0);
    else
        smtpx_queue_abort(m);
    return NULL;
}

/* gc_run - GC_THREADS commits at once; the number that failed */
static int gc_run(int fail_at)
{
    pthread_t t[GC_THREADS];
    gc_job jobs[GC_THREADS];
    smtpx__fs fs = *smtpx__maildir_fs_default();
    smtpx_queue *q;
    int i, failed = 0;

    fs.rename = gc_rename;
    fs.fsync = gc_fsync;
    ck_assert_int_eq(smtpx__queue_open_fs(&q, dir, NULL, &fs), 0);
    gc.renames = gc.dsyncs = 0;
    gc.fail_at = fail_at;
    for (i = 0; i < GC_THREADS; i++) {
        jobs[i].q = q;
        jobs[i].rc = -1;
        ck_assert_int_eq(pthread_create(&t[i], NULL, gc_commit, &jobs[i]), 0);
    }
    for (i = 0; i < GC_THREADS; i++) {
        pthread_join(t[i], NULL);
        if (jobs[i].rc != 0) {
            ck_assert_int_eq(jobs[i].rc, SMTPX_ERR_IO);
            failed++;
        }
    }
    ck_assert_uint_eq(smtpx_queue_count(q), GC_THREADS - failed);
    smtpx_queue_free(q);
    return failed;
}

/* Commits on several threads share the sync of msg/: the first is held
 * until all have renamed, so one or two more syncs cover the rest (a
 * third when a thread's count of its rename came just after a sync began);
 * without sharing there would be one per commit.  Nothing committed is
 * lost: the queue opened again holds every message. */
START_TEST(test_group_commit)
{
    smtpx_queue *q;

    ck_assert_int_eq(gc_run(0), 0);
    ck_assert_int_ge(gc.dsyncs, 1);
    ck_assert_int_le(gc.dsyncs, 3);
    ck_assert_int_eq(count("msg"), GC_THREADS);
    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    ck_assert_uint_eq(smtpx_queue_count(q), GC_THREADS);
    smtpx_queue_free(q);
}
END_TEST

/* A shared sync that fails fails only the commit that ran it (its message
 * is removed: it was not acknowledged); every other commit it was to cover
 * syncs again, and succeeds. */
START_TEST(test_group_commit_fault)
{
    smtpx_queue *q;

    ck_assert_int_eq(gc_run(1), 1);
    ck_assert_int_ge(gc.dsyncs, 2);
    ck_assert_int_le(gc.dsyncs, 4);
    ck_assert_int_eq(count("msg"), GC_THREADS - 1);
    ck_assert_int_eq(count("tmp"), 0);
    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    ck_assert_uint_eq(smtpx_queue_count(q), GC_THREADS - 1);
    smtpx_queue_free(q);
}
END_TEST

START_TEST(test_state_faults)
{
    smtpx_queue *q;
    smtpx__qmsg *due[2];
    int64_t next;
    char id[32];

    fault_reset();
    ck_assert_int_eq(smtpx__queue_open_fs(&q, dir, NULL, &faulty), 0);
    ck_assert_int_eq(enqueue(q, "alice@example.org", BODY, id), 0);
    ck_assert_uint_eq(smtpx__queue_take_due(q, 0x7fffffff, due, 2, &next), 1);
    due[0]->rcpts[0].state = SMTPX_QRCPT_DELIVERED;
    memset(flt.calls, 0, sizeof(flt.calls));
    flt.fail_at[F_RENAME] = 1;
    flt.err[F_RENAME] = EIO;
    ck_assert_int_eq(smtpx__queue_save(q, due[0]), SMTPX_ERR_IO);
    ck_assert_int_eq(count("tmp"), 0);
    ck_assert_int_eq(count("state"), 0); /* the old state stays: none */
    memset(flt.calls, 0, sizeof(flt.calls));
    flt.fail_at[F_RENAME] = 0;
    flt.fail_at[F_WRITE] = 1;
    flt.err[F_WRITE] = ENOSPC;
    ck_assert_int_eq(smtpx__queue_save(q, due[0]), SMTPX_ERR_NOSPACE);
    ck_assert_int_eq(count("tmp"), 0);
    flt.fail_at[F_WRITE] = 0;
    ck_assert_int_eq(smtpx__queue_save(q, due[0]), 0);
    ck_assert_int_eq(count("state"), 1);
    smtpx__queue_release(q, due[0], 1);
    smtpx_queue_free(q);
}
END_TEST

START_TEST(test_args)
{
    smtpx_queue *q;
    smtpx_queue_msg *m;
    smtpx_queue_env env;
    smtpx_queue_opts o;

    memset(&o, 0, sizeof(o));
    ck_assert_int_eq(smtpx_queue_open(&q, dir, &o), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_queue_open(&q, NULL, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    memset(&env, 0, sizeof(env));
    env.size = sizeof(env);
    env.from = "a\r\nb";
    ck_assert_int_eq(smtpx_queue_begin(q, &env, &m),
                     SMTPX_ERR_INVALID_ARGUMENT);
    env.from = "";
    ck_assert_int_eq(smtpx_queue_begin(q, &env, &m), 0);
    ck_assert_int_eq(smtpx_queue_add_rcpt(m, "", 0, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_queue_add_rcpt(m, "a\nb", 0, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_queue_add_rcpt(m, "a@b", 0, "x y"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_queue_add_rcpt(m, "a@b", 0, "-"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    /* No recipient: nothing to commit. */
    ck_assert_int_eq(smtpx_queue_write(m, "x", 1), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_queue_add_rcpt(m, "a@b", 0, NULL), 0);
    ck_assert_int_eq(smtpx_queue_write(m, "x", 1), 0);
    ck_assert_int_eq(smtpx_queue_add_rcpt(m, "c@d", 0, NULL),
                     SMTPX_ERR_INVALID_STATE);
    smtpx_queue_abort(m);
    ck_assert_int_eq(count("tmp"), 0);
    ck_assert_str_eq(smtpx_qrcpt_state_name(SMTPX_QRCPT_DEFERRED), "deferred");
    ck_assert_str_eq(smtpx_qrcpt_state_name(99), "?");
    smtpx_queue_free(q);
}
END_TEST

START_TEST(test_backoff)
{
    ck_assert_uint_eq(smtpx__attempt_backoff(300, 3600, 1), 300);
    ck_assert_uint_eq(smtpx__attempt_backoff(300, 3600, 2), 600);
    ck_assert_uint_eq(smtpx__attempt_backoff(300, 3600, 4), 2400);
    ck_assert_uint_eq(smtpx__attempt_backoff(300, 3600, 5), 3600);
    ck_assert_uint_eq(smtpx__attempt_backoff(300, 3600, 1000), 3600);
    ck_assert_uint_eq(smtpx__attempt_backoff(2, 10, 3), 8);
}
END_TEST

/* ---- reports ------------------------------------------------------------- */

static int read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;

    ck_assert_int_ge(fd, 0);
    n = read(fd, buf, size - 1);
    close(fd);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    return (int)n;
}

/* failure_report - queue the failure report (full_max 50000, relay.test)
 * of m for its first n recipients, from its content, and read the report's
 * queue file into buf; returns its length */
static int failure_report(smtpx_queue *q, smtpx__qmsg *m, size_t n, char *buf,
                          size_t size)
{
    static const size_t idx[2] = {0, 1};
    smtpx__dsn_opts o;
    char bid[32], path[512];
    int fd;

    memset(&o, 0, sizeof(o));
    o.hostname = "relay.test";
    o.full_max = 50000;
    o.now = 1700000000;
    fd = smtpx__queue_open_content(q, m);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(smtpx__dsn_queue(q, m, SMTPX__DSN_FAILED, idx, NULL, n, fd,
                                      &o, bid, sizeof(bid)),
                     0);
    close(fd);
    snprintf(path, sizeof(path), "%s/msg/%s", dir, bid);
    return read_file(path, buf, size);
}

START_TEST(test_dsn_build_parse)
{
    smtpx_queue *q;
    smtpx__qmsg *due[4];
    smtpx__dsn_report rep;
    smtpx_reply r = {550, {5, 1, 1}, "No such user\nhere"};
    char id[32];
    static char buf[65536];
    const char *content;
    int64_t next;
    int n, ret;

    for (ret = 0; ret < 2; ret++) {
        teardown();
        ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
        ck_assert_int_eq(enqueue(q, "alice@example.org", BODY, id), 0);
        ck_assert_uint_eq(smtpx__queue_take_due(q, 0x7fffffff, due, 4, &next),
                          1);
        due[0]->ret = ret ? SMTPX_DSN_RET_FULL : SMTPX_DSN_RET_HDRS;
        due[0]->rcpts[0].state = SMTPX_QRCPT_FAILED;
        ck_assert_int_eq(smtpx__qrcpt_set_reply(&due[0]->rcpts[0], &r,
                                                "mx.example.net", MEM),
                         0);
        due[0]->rcpts[1].state = SMTPX_QRCPT_FAILED;
        ck_assert_int_eq(
            smtpx__qrcpt_set_reply(&due[0]->rcpts[1], &r, NULL, MEM), 0);
        n = failure_report(q, due[0], 2, buf, sizeof(buf));
        content = strstr(buf, "\n.\n");
        ck_assert_ptr_nonnull(content);
        ck_assert_ptr_nonnull(strstr(buf, "\nF \n")); /* from <> */
        ck_assert_ptr_nonnull(strstr(buf, "R 0 - alice@example.org\n"));
        content += 3;
        ck_assert_int_eq(
            smtpx__dsn_parse(content, (size_t)(buf + n - content), &rep), 0);
        ck_assert_str_eq(rep.reporting_mta, "dns; relay.test");
        ck_assert_str_eq(rep.envid, "env+id");
        ck_assert_uint_eq(rep.nrcpts, 2);
        ck_assert_str_eq(rep.rcpts[0].final_rcpt, "rfc822; bob@example.net");
        ck_assert_str_eq(rep.rcpts[0].action, "failed");
        ck_assert_str_eq(rep.rcpts[0].status, "5.1.1");
        ck_assert_str_eq(rep.rcpts[0].remote_mta, "dns; mx.example.net");
        ck_assert_str_eq(rep.rcpts[0].diagnostic,
                         "smtp; 550 No such user here");
        ck_assert_str_eq(rep.rcpts[1].orig_rcpt, "rfc822; carol+1@example.net");
        ck_assert_str_eq(rep.rcpts[1].remote_mta, "");
        /* The original: headers only, or all of it with RET=FULL. */
        ck_assert_ptr_nonnull(strstr(content, "Subject: test\r\n"));
        if (ret) {
            ck_assert_ptr_nonnull(strstr(content, "message/rfc822"));
            ck_assert_ptr_nonnull(strstr(content, ".dot line"));
        } else {
            ck_assert_ptr_nonnull(strstr(content, "text/rfc822-headers"));
            ck_assert_ptr_null(strstr(content, ".dot line"));
        }
        smtpx__queue_release(q, due[0], 1);
        smtpx_queue_free(q);
    }
}
END_TEST

/* A report's body type is what it quotes of the original: the headers of
 * an 8-bit message whose header is 7-bit make a 7-bit report (no BODY=),
 * the whole message (RET=FULL) an 8BITMIME one, and so do 8-bit octets
 * in the header; a whole binary message a BINARYMIME one. */
START_TEST(test_dsn_body_type)
{
    static const struct {
        int body, ret;
        const char *msg;
        int want;
    } cases[] = {
        {SMTPX_BODY_8BITMIME, SMTPX_DSN_RET_HDRS, "Subject: a\r\n\r\n\xe9\r\n",
         SMTPX_BODY_NONE},
        {SMTPX_BODY_8BITMIME, SMTPX_DSN_RET_FULL, "Subject: a\r\n\r\n\xe9\r\n",
         SMTPX_BODY_8BITMIME},
        {SMTPX_BODY_8BITMIME, SMTPX_DSN_RET_HDRS, "Subject: \xe9\r\n\r\nx\r\n",
         SMTPX_BODY_8BITMIME},
        {SMTPX_BODY_BINARYMIME, SMTPX_DSN_RET_FULL,
         "Subject: a\r\n\r\n\x01\r\n", SMTPX_BODY_BINARYMIME},
        {SMTPX_BODY_BINARYMIME, SMTPX_DSN_RET_HDRS,
         "Subject: a\r\n\r\n\x01\r\n", SMTPX_BODY_NONE},
    };
    static char buf[65536];
    smtpx_queue *q;
    smtpx_queue_env env;
    smtpx_queue_msg *qm;
    smtpx__qmsg *due[1];
    size_t c;
    char id[32], want[32];
    int64_t next;

    for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        teardown();
        ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
        memset(&env, 0, sizeof(env));
        env.size = sizeof(env);
        env.from = "alice@example.org";
        env.body = cases[c].body;
        env.ret = cases[c].ret;
        ck_assert_int_eq(smtpx_queue_begin(q, &env, &qm), 0);
        ck_assert_int_eq(smtpx_queue_add_rcpt(qm, "bob@example.net", 0, NULL),
                         0);
        ck_assert_int_eq(
            smtpx_queue_write(qm, cases[c].msg, strlen(cases[c].msg)), 0);
        ck_assert_int_eq(smtpx_queue_commit(qm, id, 32), 0);
        ck_assert_uint_eq(smtpx__queue_take_due(q, 0x7fffffff, due, 1, &next),
                          1);
        due[0]->rcpts[0].state = SMTPX_QRCPT_FAILED;
        failure_report(q, due[0], 1, buf, sizeof(buf));
        snprintf(want, sizeof(want), "\nP 0 %d 0\n", cases[c].want);
        ck_assert_msg(strstr(buf, want) != NULL, "case %zu: %s", c, buf);
        /* The look did not move the descriptor: the original's header
         * is there. */
        snprintf(want, sizeof(want), "%.*s", (int)strcspn(cases[c].msg, "\r"),
                 cases[c].msg);
        ck_assert_msg(strstr(buf, want) != NULL, "case %zu: %s", c, buf);
        smtpx__queue_release(q, due[0], 1);
        smtpx_queue_free(q);
    }
}
END_TEST

START_TEST(test_dsn_null_sender)
{
    smtpx_queue *q;
    smtpx__qmsg *due[4];
    smtpx__dsn_opts o;
    size_t idx[1] = {0};
    char id[32], bid[32];
    int64_t next;

    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    ck_assert_int_eq(enqueue(q, "", BODY, id), 0);
    ck_assert_uint_eq(smtpx__queue_take_due(q, 0x7fffffff, due, 4, &next), 1);
    due[0]->rcpts[0].state = SMTPX_QRCPT_FAILED;
    memset(&o, 0, sizeof(o));
    o.hostname = "relay.test";
    o.now = 1700000000;
    /* Never a bounce for a bounce: without a postmaster, nothing. */
    ck_assert_int_eq(smtpx__dsn_queue(q, due[0], SMTPX__DSN_FAILED, idx, NULL,
                                      1, -1, &o, bid, sizeof(bid)),
                     0);
    ck_assert_str_eq(bid, "");
    ck_assert_uint_eq(smtpx_queue_count(q), 1);
    o.postmaster = "postmaster@relay.test";
    ck_assert_int_eq(smtpx__dsn_queue(q, due[0], SMTPX__DSN_FAILED, idx, NULL,
                                      1, -1, &o, bid, sizeof(bid)),
                     0);
    ck_assert_str_ne(bid, "");
    ck_assert_uint_eq(smtpx_queue_count(q), 2);
    smtpx__queue_release(q, due[0], 1);
    smtpx_queue_free(q);
}
END_TEST

START_TEST(test_dsn_parse_hostile)
{
    static const char *const bad[] = {
        "",
        "Content-Type: text/plain\r\n\r\nx",
        "Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\n\r\nx\r\n"
        "--b--\r\n",
        "Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\n"
        "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; "
        "x\r\n\r\nAction: failed\r\n",
        "Content-Type: multipart/report; boundary=\"\"\r\n\r\n",
        " folded: at start\r\n",
    };
    static const char good[] =
        "Content-Type: multipart/report;\r\n\tboundary=\"b b\"\r\n\r\n"
        "--b b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns;\r\n x.test\r\n\r\nFinal-Recipient: rfc822; a@b\r\n"
        "Action: delayed\r\nStatus: 4.4.1\r\n\r\n--b b--\r\n";
    smtpx__dsn_report rep;
    size_t i, n;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_int_eq(smtpx__dsn_parse(bad[i], strlen(bad[i]), &rep),
                         SMTPX_ERR_PROTO);
    ck_assert_int_eq(smtpx__dsn_parse(good, strlen(good), &rep), 0);
    ck_assert_str_eq(rep.reporting_mta, "dns; x.test");
    ck_assert_str_eq(rep.rcpts[0].action, "delayed");
    /* Every prefix: no over-read, whatever the verdict. */
    for (n = 0; n < sizeof(good) - 1; n++) {
        char *copy = malloc(n ? n : 1);
        memcpy(copy, good, n);
        (void)smtpx__dsn_parse(copy, n, &rep);
        free(copy);
    }
}
END_TEST

START_TEST(test_xtext)
{
    char out[16];

    ck_assert_int_eq(smtpx__cmd_xtext_decode("a+2Bb", 5, out, sizeof(out)), 3);
    ck_assert_str_eq(out, "a+b");
    ck_assert_int_eq(smtpx__cmd_xtext_decode("a+2", 3, out, sizeof(out)), -1);
    ck_assert_int_eq(smtpx__cmd_xtext_decode("a+2b", 4, out, sizeof(out)), -1);
    ck_assert_int_eq(smtpx__cmd_xtext_decode("a=b", 3, out, sizeof(out)), -1);
    ck_assert_int_eq(smtpx__cmd_xtext_decode("a b", 3, out, sizeof(out)), -1);
    ck_assert_int_eq(smtpx__cmd_xtext_decode("abcd", 4, out, 4), -1);
    ck_assert_int_eq(smtpx__cmd_xtext_decode("", 0, out, sizeof(out)), 0);
    /* The public pair: what one encodes the other decodes, NUL included. */
    {
        static const char text[] = "a+b=c d\x01\xc3\xa9~";
        char enc[64], dec[64];
        smtpx_ssize n = smtpx_xtext_encode(text, enc, sizeof(enc));
        ck_assert_int_eq(n, (smtpx_ssize)strlen(enc));
        ck_assert_str_eq(enc, "a+2Bb+3Dc+20d+01+C3+A9~");
        ck_assert_int_eq(smtpx_xtext_decode(enc, (size_t)n, dec, sizeof(dec)),
                         (smtpx_ssize)strlen(text));
        ck_assert_str_eq(dec, text);
        ck_assert_int_eq(smtpx_xtext_decode("x+00y", 5, dec, sizeof(dec)), 3);
        ck_assert_uint_eq(strlen(dec), 1);
        ck_assert_int_eq(smtpx_xtext_decode("+4", 2, dec, sizeof(dec)),
                         SMTPX_ERR_INVALID_ARGUMENT);
        ck_assert_str_eq(dec, "");
        ck_assert_int_eq(smtpx_xtext_encode(text, enc, 5),
                         SMTPX_ERR_INVALID_ARGUMENT);
        ck_assert_str_eq(enc, "");
        ck_assert_int_eq(smtpx_xtext_encode(NULL, enc, sizeof(enc)),
                         SMTPX_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(smtpx_xtext_decode(NULL, 0, dec, sizeof(dec)),
                         SMTPX_ERR_INVALID_ARGUMENT);
    }
}
END_TEST

/* ---- the static resolver ------------------------------------------------- */

typedef struct answer {
    int calls;
    int status;
    size_t n;
    char first[64];
    uint16_t pref;
} answer;

static void on_answer(smtpx_resolver *r, int status, const smtpx_rr *rr,
                      size_t n, void *ud)
{
    answer *a = ud;

    (void)r;
    a->calls++;
    a->status = status;
    a->n = n;
    if (n > 0) {
        snprintf(a->first, sizeof(a->first), "%s", rr[0].value);
        a->pref = rr[0].pref;
    }
}

START_TEST(test_resolver_static)
{
    smtpx_resolver *r;
    answer a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0};

    ck_assert_int_eq(smtpx_resolver_new_static(&r, NULL), 0);
    ck_assert_int_eq(
        smtpx_resolver_static_add(r, "example.net", SMTPX_RR_MX, 10, "mx1"), 0);
    ck_assert_int_eq(
        smtpx_resolver_static_add(r, "mx1", SMTPX_RR_A, 0, "192.0.2.1"), 0);
    ck_assert_int_eq(
        smtpx_resolver_static_add(r, "mx1", SMTPX_RR_AAAA, 0, "2001:db8::1"),
        0);
    ck_assert_int_eq(smtpx_resolver_static_add(r, "mx1", SMTPX_RR_A, 0, "x"),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_resolver_static_add(r, "down.test", 0, 0, NULL), 0);
    ck_assert_int_eq(
        smtpx_resolver_query(r, "example.net.", SMTPX_RR_MX, on_answer, &a1),
        0);
    ck_assert_int_eq(smtpx_resolver_query(r, "mx1", SMTPX_RR_A, on_answer, &a2),
                     0);
    ck_assert_int_eq(
        smtpx_resolver_query(r, "nowhere.test", SMTPX_RR_MX, on_answer, &a3),
        0);
    ck_assert_int_eq(
        smtpx_resolver_query(r, "mx1", SMTPX_RR_MX, on_answer, &a4), 0);
    ck_assert_int_eq(
        smtpx_resolver_query(r, "down.test", SMTPX_RR_MX, on_answer, &a5), 0);
    ck_assert_int_eq(
        smtpx_resolver_query(r, "a b", SMTPX_RR_MX, on_answer, &a5),
        SMTPX_ERR_INVALID_ARGUMENT);
    /* Nothing runs inside query. */
    ck_assert_int_eq(a1.calls, 0);
    ck_assert_uint_eq(smtpx_resolver_pending(r), 5);
    smtpx_resolver_cancel(r, &a4);
    ck_assert_int_eq(smtpx_resolver_process(r), 4);
    ck_assert_int_eq(a1.status, 0);
    ck_assert_str_eq(a1.first, "mx1");
    ck_assert_uint_eq(a1.pref, 10);
    ck_assert_int_eq(a2.status, 0);
    ck_assert_uint_eq(a2.n, 2);
    ck_assert_int_eq(a3.status, SMTPX_ERR_DNS_NXDOMAIN);
    ck_assert_int_eq(a4.calls, 0);
    ck_assert_int_eq(a5.status, SMTPX_ERR_RESOLVE);
    ck_assert_uint_eq(smtpx_resolver_pending(r), 0);
    smtpx_resolver_free(r);
}
END_TEST

/* The system resolver answers through its descriptor (localhost comes
 * from /etc/hosts, so no network is needed). */
START_TEST(test_resolver_system)
{
    smtpx_resolver *r;
    answer a = {0}, b = {0};
    int i;

    /* _i 0: the default back end (c-ares where built in), 1: the thread. */
    if (_i == 0)
        ck_assert_int_eq(smtpx_resolver_new(&r, NULL), 0);
    else
        ck_assert_int_eq(smtpx__resolver_new_thread(&r, NULL), 0);
    if (_i == 1)
        ck_assert_int_eq(smtpx__resolver_uses_cares(r), 0);
    ck_assert_int_ge(smtpx_resolver_fd(r), 0);
    ck_assert_int_eq(
        smtpx_resolver_query(r, "localhost", SMTPX_RR_A, on_answer, &a), 0);
    for (i = 0; i < 500 && a.calls == 0; i++) {
        usleep(10000);
        smtpx_resolver_process(r);
    }
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.status, 0);
    ck_assert_uint_ge(a.n, 1);
    /* A query cancelled while in flight never calls back; freeing with
     * one in flight is clean. */
    ck_assert_int_eq(
        smtpx_resolver_query(r, "localhost", SMTPX_RR_A, on_answer, &b), 0);
    smtpx_resolver_cancel(r, &b);
    for (i = 0; i < 50; i++) {
        usleep(2000);
        smtpx_resolver_process(r);
    }
    ck_assert_int_eq(b.calls, 0);
    ck_assert_int_eq(
        smtpx_resolver_query(r, "localhost", SMTPX_RR_A, on_answer, &b), 0);
    smtpx_resolver_free(r);
    ck_assert_int_eq(b.calls, 0);
}
END_TEST

/* ---- routes from the static table -----------------------------------------
 */

typedef struct route_case {
    const char *domain;
    smtpx__route rt;
    int done;
} route_case;

static void on_route(smtpx_resolver *r, int status, const smtpx_rr *rr,
                     size_t n, void *ud)
{
    route_case *rc = ud;

    (void)r;
    smtpx__route_mx(&rc->rt, rc->domain, "me.test", status, rr, n, NULL, NULL);
    rc->done = 1;
}

static void route_of(smtpx_resolver *r, route_case *rc, const char *domain)
{
    memset(rc, 0, sizeof(*rc));
    rc->domain = domain;
    ck_assert_int_eq(smtpx_resolver_query(r, domain, SMTPX_RR_MX, on_route, rc),
                     0);
    smtpx_resolver_process(r);
    ck_assert_int_eq(rc->done, 1);
}

START_TEST(test_route_static)
{
    smtpx_resolver *r;
    route_case rc;
    int first_a = 0, first_b = 0, i;

    ck_assert_int_eq(smtpx_resolver_new_static(&r, NULL), 0);
    smtpx_resolver_static_add(r, "pref.test", SMTPX_RR_MX, 20, "mx2.test");
    smtpx_resolver_static_add(r, "pref.test", SMTPX_RR_MX, 10, "mxa.test");
    smtpx_resolver_static_add(r, "pref.test", SMTPX_RR_MX, 10, "mxb.test");
    smtpx_resolver_static_add(r, "pref.test", SMTPX_RR_MX, 30, "me.test.");
    smtpx_resolver_static_add(r, "pref.test", SMTPX_RR_MX, 40, "mx4.test");
    smtpx_resolver_static_add(r, "null.test", SMTPX_RR_MX, 0, ".");
    smtpx_resolver_static_add(r, "noemx.test", SMTPX_RR_A, 0, "192.0.2.7");
    smtpx_resolver_static_add(r, "loop.test", SMTPX_RR_MX, 10, "ME.test");
    smtpx_resolver_static_add(r, "down.test", 0, 0, NULL);
    smtpx_resolver_static_add(r, "me.test", SMTPX_RR_A, 0, "192.0.2.1");

    /* Preferences, and the loop guard: this host (30) and every host not
     * better than it (40) are dropped. */
    for (i = 0; i < 200; i++) {
        route_of(r, &rc, "pref.test");
        ck_assert_int_eq(rc.rt.fail.code, 0);
        ck_assert_uint_eq(rc.rt.nhosts, 3);
        ck_assert_uint_eq(rc.rt.hosts[0].pref, 10);
        ck_assert_uint_eq(rc.rt.hosts[1].pref, 10);
        ck_assert_str_eq(rc.rt.hosts[2].name, "mx2.test");
        if (strcmp(rc.rt.hosts[0].name, "mxa.test") == 0)
            first_a++;
        else
            first_b++;
    }
    /* Equal preferences in random order: both come first, often. */
    ck_assert_int_gt(first_a, 40);
    ck_assert_int_gt(first_b, 40);

    route_of(r, &rc, "null.test");
    ck_assert_int_eq(rc.rt.fail.code, 556);
    ck_assert_uint_eq(rc.rt.fail.enh[2], 10);
    ck_assert_uint_eq(rc.rt.nhosts, 0);
    route_of(r, &rc, "noemx.test"); /* no MX: the domain itself */
    ck_assert_int_eq(rc.rt.fail.code, 0);
    ck_assert_uint_eq(rc.rt.nhosts, 1);
    ck_assert_str_eq(rc.rt.hosts[0].name, "noemx.test");
    route_of(r, &rc, "nowhere.test");
    ck_assert_int_eq(rc.rt.fail.code, 550);
    ck_assert_uint_eq(rc.rt.fail.enh[2], 2);
    route_of(r, &rc, "down.test");
    ck_assert_int_eq(rc.rt.fail.code, 451);
    route_of(r, &rc, "loop.test");
    ck_assert_int_eq(rc.rt.fail.code, 554);
    ck_assert_uint_eq(rc.rt.fail.enh[1], 4);
    ck_assert_uint_eq(rc.rt.fail.enh[2], 6);
    route_of(r, &rc, "me.test"); /* our own name, no MX: a loop too */
    ck_assert_int_eq(rc.rt.fail.code, 554);
    smtpx_resolver_free(r);
}
END_TEST

/* ---- local delivery ------------------------------------------------------ */

typedef struct mem_reader {
    const char *p;
    size_t left;
    size_t chunk;
} mem_reader;

static smtpx_ssize mem_read(void *ctx, uint8_t *buf, size_t len)
{
    mem_reader *r = ctx;
    size_t n = r->left < len ? r->left : len;

    if (r->chunk && n > r->chunk)
        n = r->chunk;
    memcpy(buf, r->p, n);
    r->p += n;
    r->left -= n;
    return (smtpx_ssize)n;
}

static smtpx_ssize fail_read(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
    return SMTPX_ERR_IO;
}

/* late_fail_read - lines of text, *ctx octets of them, then a failure */
static smtpx_ssize late_fail_read(void *ctx, uint8_t *buf, size_t len)
{
    size_t *left = ctx, n = *left < len ? *left : len, i;

    if (n == 0)
        return SMTPX_ERR_IO;
    for (i = 0; i < n; i++)
        buf[i] = i % 64 == 63 ? '\n' : 'x';
    *left -= n;
    return (smtpx_ssize)n;
}

START_TEST(test_mbox)
{
    static const char msg[] = "Subject: x\r\n\r\nFrom here\r\n>From there\r\n"
                              ">>From x\r\nFrom: not at start? no\r\nend";
    char path[512], lock[520];
    static char buf[4096];
    mem_reader r;
    size_t chunk;
    struct stat st;

    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/mbox", dir);
    for (chunk = 1; chunk <= 7; chunk += 6) {
        r.p = msg;
        r.left = sizeof(msg) - 1;
        r.chunk = chunk;
        ck_assert_int_eq(smtpx_mbox_deliver(path, "alice@example.org",
                                            1700000000, mem_read, &r,
                                            SMTPX_MBOX_CREATE),
                         0);
    }
    read_file(path, buf, sizeof(buf));
    ck_assert_str_eq(buf, "From alice@example.org Tue Nov 14 22:13:20 2023\n"
                          "Subject: x\n\n>From here\n>>From there\n>>>From x\n"
                          "From: not at start? no\nend\n\n"
                          "From alice@example.org Tue Nov 14 22:13:20 2023\n"
                          "Subject: x\n\n>From here\n>>From there\n>>>From x\n"
                          "From: not at start? no\nend\n\n");
    /* A failed delivery leaves the file as it was, and no lock. */
    stat(path, &st);
    ck_assert_int_eq(smtpx_mbox_deliver(path, "", 0, fail_read, NULL, 0),
                     SMTPX_ERR_IO);
    {
        struct stat st2;
        stat(path, &st2);
        ck_assert_int_eq(st.st_size, st2.st_size);
    }
    /* Also after more than the writer's buffer went to the file. */
    {
        size_t left = 300000;
        struct stat st2;
        ck_assert_int_eq(
            smtpx_mbox_deliver(path, "", 0, late_fail_read, &left, 0),
            SMTPX_ERR_IO);
        ck_assert_uint_eq(left, 0);
        stat(path, &st2);
        ck_assert_int_eq(st.st_size, st2.st_size);
    }
    snprintf(lock, sizeof(lock), "%s.lock", path);
    ck_assert_int_ne(access(lock, F_OK), 0);
    ck_assert_int_eq(smtpx_mbox_deliver(path, "a b", 0, mem_read, &r, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_pipe)
{
    static const char msg[] = "Subject: x\r\n\r\nbody\r\n";
    const char *env[] = {"SENDER=alice@example.org", NULL};
    char text[256], path[300], cmd[800];
    static char buf[4096];
    smtpx_reply res;
    mem_reader r;

    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/out", dir);
    snprintf(cmd, sizeof(cmd), "cat > %s; echo \"$SENDER\" >> %s", path, path);
    r.p = msg;
    r.left = sizeof(msg) - 1;
    r.chunk = 0;
    ck_assert_int_eq(smtpx_pipe_deliver(cmd, env, mem_read, &r, 5000, &res,
                                        text, sizeof(text)),
                     0);
    ck_assert_int_eq(res.code, 250);
    read_file(path, buf, sizeof(buf));
    ck_assert_str_eq(buf, "Subject: x\r\n\r\nbody\r\nalice@example.org\n");
    r.p = msg;
    r.left = sizeof(msg) - 1;
    ck_assert_int_eq(smtpx_pipe_deliver("cat >/dev/null; echo busy; exit 75",
                                        NULL, mem_read, &r, 5000, &res, text,
                                        sizeof(text)),
                     0);
    ck_assert_int_eq(res.code, 451);
    ck_assert_ptr_nonnull(strstr(res.text, "busy"));
    r.p = msg;
    r.left = sizeof(msg) - 1;
    ck_assert_int_eq(smtpx_pipe_deliver("echo no such user >&2; exit 67", NULL,
                                        mem_read, &r, 5000, &res, text,
                                        sizeof(text)),
                     0);
    ck_assert_int_eq(res.code, 550);
    ck_assert_ptr_nonnull(strstr(res.text, "exit 67"));
    ck_assert_ptr_nonnull(strstr(res.text, "no such user"));
    r.p = msg;
    r.left = sizeof(msg) - 1;
    ck_assert_int_eq(smtpx_pipe_deliver("sleep 30", NULL, mem_read, &r, 300,
                                        &res, text, sizeof(text)),
                     0);
    ck_assert_int_eq(res.code, 550);
    ck_assert_ptr_nonnull(strstr(res.text, "timed out"));
    {
        /* Called from a thread that blocks every signal (as the delivery
         * engine's threads do): the command blocks none, so its traps
         * and a kill reach it.  (It must exec at once: the shell clears
         * its mask once it has run a child.  The short message fits in
         * the pipe unread.) */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r.p = msg;
        r.left = sizeof(msg) - 1;
        ck_assert_int_eq(
            smtpx_pipe_deliver("exec grep "
                               "'^SigBlk:[[:space:]]*0*$' /proc/self/status",
                               NULL, mem_read, &r, 5000, &res, text,
                               sizeof(text)),
            0);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        ck_assert_msg(res.code == 250, "%d %s", res.code, res.text);
    }
}
END_TEST

/* A message cancelled while in flight is removed when its attempt ends
 * (kept or not); one cancelled while it waits - even held, even due later
 * - is due at once, and removed at its release. */
START_TEST(test_cancel)
{
    smtpx_queue *q;
    smtpx__qmsg *due[4];
    char a[32], b[32];
    int64_t next;

    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    ck_assert_int_eq(enqueue(q, "alice@example.org", BODY, a), 0);
    ck_assert_int_eq(enqueue(q, "alice@example.org", BODY, b), 0);
    ck_assert_int_eq(smtpx__queue_take_due(q, 0x7fffffff, due, 1, &next), 1);
    ck_assert_str_eq(due[0]->id, a);
    ck_assert_int_eq(smtpx__queue_cancel(q, a), 0);
    smtpx__queue_release(q, due[0], 1); /* the engine would keep it */
    ck_assert_uint_eq(smtpx_queue_count(q), 1);
    ck_assert_int_eq(smtpx__queue_take_due(q, 0x7fffffff, due, 1, &next), 1);
    due[0]->next_attempt = 0x7fffffff; /* tried: due much later */
    smtpx__queue_release(q, due[0], 1);
    ck_assert_int_eq(smtpx_queue_hold(q, b, 1), 0);
    ck_assert_int_eq(smtpx__queue_take_due(q, 1000, due, 1, &next), 0);
    ck_assert_int_eq(smtpx__queue_cancel(q, b), 0);
    ck_assert_int_eq(smtpx__queue_take_due(q, 1000, due, 1, &next), 1);
    ck_assert(due[0]->deleted);
    smtpx__queue_release(q, due[0], 1);
    ck_assert_uint_eq(smtpx_queue_count(q), 0);
    ck_assert_int_eq(smtpx__queue_cancel(q, b), SMTPX_ERR_NOT_FOUND);
    smtpx_queue_free(q);
    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    ck_assert_uint_eq(smtpx_queue_count(q), 0);
    smtpx_queue_free(q);
}
END_TEST

/* ---- the engine on someone else's loop ------------------------------------
 */

typedef struct sink {
    smtpx_loop *loop;
    int accepted;
    int to_alice;  /* reports to alice@example.org */
    int to_reject; /* the bounce to reject-me@example.org */
    int deferred;  /* recipients answered 451 ("defer...") */
} sink;

static int sink_rcpt(smtpx_server *s, const smtpx_rcpt_info *rcpt,
                     void **rcpt_data, smtpx_reply *reply, void *ud)
{
    sink *k = ud;

    (void)s;
    (void)rcpt_data;
    if (strcmp(rcpt->to, "alice@example.org") == 0)
        __atomic_add_fetch(&k->to_alice, 1, __ATOMIC_SEQ_CST);
    if (strcmp(rcpt->to, "reject-me@example.org") == 0)
        __atomic_add_fetch(&k->to_reject, 1, __ATOMIC_SEQ_CST);
    if (strncmp(rcpt->to, "defer", 5) == 0) {
        __atomic_add_fetch(&k->deferred, 1, __ATOMIC_SEQ_CST);
        reply->code = 451;
        reply->enh[0] = 4;
        reply->enh[1] = 3;
        reply->enh[2] = 0;
        reply->text = "Try again later";
    }
    if (strncmp(rcpt->to, "reject", 6) == 0) {
        reply->code = 550;
        reply->enh[0] = 5;
        reply->enh[1] = 1;
        reply->enh[2] = 1;
        reply->text = "No such user";
    }
    return 0;
}

static int sink_end(smtpx_server *s, smtpx_reply *reply, void *ud)
{
    sink *k = ud;

    (void)s;
    (void)reply;
    __atomic_add_fetch(&k->accepted, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void *sink_run(void *arg)
{
    sink *k = arg;

    smtpx_loop_run(k->loop);
    return NULL;
}

/* sink_start - the sink's loop on a thread, listening on a port of the
 * system's choice, written into smart as a smarthost */
static void sink_start(sink *k, smtpx_config **scfg, pthread_t *th, char *smart,
                       size_t size)
{
    static const smtpx_server_callbacks cbs = {.on_rcpt = sink_rcpt,
                                               .on_data_end = sink_end};
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int lfd;

    memset(k, 0, sizeof(*k));
    ck_assert_int_eq(smtpx_config_new(scfg, SMTPX_ROLE_SERVER, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(*scfg), 0);
    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "0", 0, &lfd), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(smart, size, "[127.0.0.1]:%u", ntohs(sa.sin_port));
    ck_assert_int_eq(smtpx_loop_new(&k->loop, NULL), 0);
    ck_assert_int_eq(smtpx_loop_listen(k->loop, lfd, *scfg, &cbs, sizeof(cbs),
                                       k, NULL, NULL),
                     0);
    ck_assert_int_eq(pthread_create(th, NULL, sink_run, k), 0);
}

static void sink_stop(sink *k, smtpx_config *scfg, pthread_t th)
{
    smtpx_loop_stop(k->loop, SMTPX_SHUTDOWN_NOW);
    pthread_join(th, NULL);
    smtpx_loop_free(k->loop);
    smtpx_config_free(scfg);
}

/* enqueue_to - a message from one sender to one recipient */
static void enqueue_to(smtpx_queue *q, const char *from, const char *to,
                       char *id)
{
    smtpx_queue_env env;
    smtpx_queue_msg *qm;

    memset(&env, 0, sizeof(env));
    env.size = sizeof(env);
    env.from = from;
    ck_assert_int_eq(smtpx_queue_begin(q, &env, &qm), 0);
    ck_assert_int_eq(smtpx_queue_add_rcpt(qm, to, 0, NULL), 0);
    ck_assert_int_eq(smtpx_queue_write(qm, BODY, strlen(BODY)), 0);
    ck_assert_int_eq(smtpx_queue_commit(qm, id, 32), 0);
}

static void engine_log(int level, const char *msg, void *ud)
{
    (void)ud;
    fprintf(stderr, "%d %s\n", level, msg);
}

/* The engine driven through smtpx_mta_fd() and smtpx_mta_expiry() alone,
 * as another event loop would: it delivers to a real server session (the
 * library's own loop on a thread), a 550 becomes a bounce in the queue,
 * and the queue drains. */
START_TEST(test_engine_external_loop)
{
    smtpx_config *scfg, *ccfg;
    smtpx_queue *q;
    smtpx_mta *m;
    smtpx_mta_opts o;
    pthread_t th;
    sink k;
    char smart[64], id[32];
    int fd, i, rounds = 0;

    sink_start(&k, &scfg, &th, smart, sizeof(smart));
    ck_assert_int_eq(smtpx_config_new(&ccfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(ccfg), 0);

    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(enqueue(q, "alice@example.org", BODY, id), 0);
    /* One for a refused recipient: it becomes a bounce to a sender that
     * is refused too, which is then dropped (null sender). */
    enqueue_to(q, "reject-me@example.org", "reject@example.net", id);
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.client_cfg = ccfg;
    o.hostname = "engine.test";
    o.smarthost = smart;
    if (getenv("ENGINE_LOG") != NULL)
        o.on_log = engine_log;
    ck_assert_int_eq(smtpx_mta_new(&m, q, &o), 0);
    fd = smtpx_mta_fd(m);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(smtpx_mta_fd(m), fd);
    ck_assert_int_eq(smtpx_mta_run_once(m, 0), 1);
    while (smtpx_queue_count(q) > 0 && rounds < 2000) {
        struct pollfd p = {fd, POLLIN, 0};
        uint64_t e = smtpx_mta_expiry(m), now = smtpx_posix_now_ms();
        int t = e == 0 ? 1000 : e <= now ? 0 : (int)(e - now);
        if (t > 1000)
            t = 1000;
        poll(&p, 1, t);
        ck_assert_int_eq(smtpx_mta_run_once(m, 0), 1);
        rounds++;
    }
    ck_assert_uint_eq(smtpx_queue_count(q), 0);
    /* 5 messages, and for each its "relayed" report to alice (carol asked
     * for NOTIFY=SUCCESS; the sink offers no DSN); the bounce of the
     * sixth to reject-me was refused too, and a bounce of a bounce is
     * dropped. */
    ck_assert_int_eq(__atomic_load_n(&k.accepted, __ATOMIC_SEQ_CST), 10);
    ck_assert_int_eq(__atomic_load_n(&k.to_alice, __ATOMIC_SEQ_CST), 5);
    ck_assert_int_eq(__atomic_load_n(&k.to_reject, __ATOMIC_SEQ_CST), 1);
    smtpx_mta_stop(m);
    while (smtpx_mta_run_once(m, 100) > 0)
        ;
    smtpx_mta_free(m);
    smtpx_queue_free(q);
    sink_stop(&k, scfg, th);
    smtpx_config_free(ccfg);
}
END_TEST

/* ---- a server the test speaks for, the engine on an outside loop ---------
 */

/* drive - one turn of an outside loop, as smtpx-warehouse's: wait (at most
 * ms) for the engine's descriptor or its expiry, and run it only then */
static void drive(smtpx_mta *m, int efd, int ms)
{
    struct pollfd p = {efd, POLLIN, 0};
    uint64_t e = smtpx_mta_expiry(m), now = smtpx_posix_now_ms();
    int t = ms;

    if (e != 0 && e <= now)
        t = 0;
    else if (e != 0 && e - now < (uint64_t)ms)
        t = (int)(e - now);
    poll(&p, 1, t);
    e = smtpx_mta_expiry(m);
    if (p.revents != 0 || (e != 0 && e <= smtpx_posix_now_ms()))
        ck_assert_int_eq(smtpx_mta_run_once(m, 0), 1);
}

/* drive_rc - drive, and what smtpx_mta_run_once() returned; 2 if the
 * loop had no reason to run it */
static int drive_rc(smtpx_mta *m, int efd, int ms)
{
    struct pollfd p = {efd, POLLIN, 0};
    uint64_t e = smtpx_mta_expiry(m), now = smtpx_posix_now_ms();
    int t = ms;

    if (e != 0 && e <= now)
        t = 0;
    else if (e != 0 && e - now < (uint64_t)ms)
        t = (int)(e - now);
    poll(&p, 1, t);
    e = smtpx_mta_expiry(m);
    if (p.revents != 0 || (e != 0 && e <= smtpx_posix_now_ms()))
        return smtpx_mta_run_once(m, 0);
    return 2;
}

/* accept_within - a connection to lfd while the engine is driven; -1 if
 * none came within ms */
static int accept_within(smtpx_mta *m, int efd, int lfd, int ms)
{
    uint64_t end = smtpx_posix_now_ms() + (uint64_t)ms;

    do {
        struct pollfd p = {lfd, POLLIN, 0};
        if (poll(&p, 1, 0) == 1)
            return accept(lfd, NULL, NULL);
        drive(m, efd, 10);
    } while (smtpx_posix_now_ms() < end);
    return -1;
}

typedef struct scripted {
    int sock;
    char buf[8192];
    size_t len;
} scripted;

/* next_line - the next line the engine sends (driven meanwhile), without
 * its CRLF, into line */
static void next_line(smtpx_mta *m, int efd, scripted *sc, char *line,
                      size_t size)
{
    uint64_t end = smtpx_posix_now_ms() + 10000;
    char *eol;
    size_t n;

    while ((eol = memchr(sc->buf, '\n', sc->len)) == NULL) {
        ssize_t r;
        ck_assert_msg(smtpx_posix_now_ms() < end, "no line came");
        ck_assert_uint_lt(sc->len, sizeof(sc->buf));
        drive(m, efd, 10);
        r = recv(sc->sock, sc->buf + sc->len, sizeof(sc->buf) - sc->len,
                 MSG_DONTWAIT);
        ck_assert_msg(r != 0, "the engine closed the connection");
        if (r > 0)
            sc->len += (size_t)r;
    }
    n = (size_t)(eol - sc->buf);
    ck_assert_uint_lt(n, size);
    memcpy(line, sc->buf, n);
    line[n > 0 && line[n - 1] == '\r' ? n - 1 : n] = '\0';
    sc->len -= n + 1;
    memmove(sc->buf, eol + 1, sc->len);
}

/* expect_line - the next line, which must begin with want */
static void expect_line(smtpx_mta *m, int efd, scripted *sc, const char *want)
{
    char line[1024];

    next_line(m, efd, sc, line, sizeof(line));
    ck_assert_msg(strncasecmp(line, want, strlen(want)) == 0,
                  "\"%s\" where \"%s\" was awaited", line, want);
}

static void say(scripted *sc, const char *line)
{
    ck_assert_int_eq(send(sc->sock, line, strlen(line), MSG_NOSIGNAL),
                     (ssize_t)strlen(line));
}

/* serve_greet - the greeting and the EHLO */
static void serve_greet(smtpx_mta *m, int efd, scripted *sc)
{
    say(sc, "220 script.test ESMTP\r\n");
    expect_line(m, efd, sc, "EHLO ");
    say(sc, "250 script.test\r\n"); /* no PIPELINING: one at a time */
}

/* serve_txn - one transaction, taken */
static void serve_txn(smtpx_mta *m, int efd, scripted *sc)
{
    char line[1024];

    expect_line(m, efd, sc, "MAIL FROM:<alice@example.org>");
    say(sc, "250 2.1.0 Ok\r\n");
    expect_line(m, efd, sc, "RCPT TO:<bob@example.net>");
    say(sc, "250 2.1.5 Ok\r\n");
    expect_line(m, efd, sc, "DATA");
    say(sc, "354 Go on\r\n");
    do
        next_line(m, efd, sc, line, sizeof(line));
    while (strcmp(line, ".") != 0);
    say(sc, "250 2.0.0 Ok\r\n");
}

/* serve - n transactions on the connection, then the QUIT, which is left
 * unanswered */
static void serve(smtpx_mta *m, int efd, scripted *sc, int n)
{
    serve_greet(m, efd, sc);
    while (n-- > 0)
        serve_txn(m, efd, sc);
    expect_line(m, efd, sc, "QUIT");
}

static void serve_until_quit(smtpx_mta *m, int efd, scripted *sc)
{
    serve(m, efd, sc, 1);
}

/* listen_smart - a listening socket on a port of the system's choice,
 * written into smart as a smarthost */
static int listen_smart(char *smart, size_t size)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int lfd;

    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "0", 0, &lfd), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(smart, size, "[127.0.0.1]:%u", ntohs(sa.sin_port));
    return lfd;
}

/* An engine, its queue and the socket of its smarthost: what the engine
 * tests below share. */
typedef struct erig {
    smtpx_config *ccfg;
    smtpx_queue *q;
    smtpx_mta *m;
    smtpx_mta_opts o;     /* set by erig_open; the test may change them */
    size_t in_flight_max; /* 0: the engine's own */
    int lfd, efd;         /* -1: none */
    char smart[64];
} erig;

/* erig_open - a queue holding n messages to bob@example.net, a listening
 * socket as the smarthost (smart 0: none, the route fails), and the
 * engine's options */
static void erig_open(erig *g, int n, int smart)
{
    char id[32];

    memset(g, 0, sizeof(*g));
    g->lfd = g->efd = -1;
    if (smart)
        g->lfd = listen_smart(g->smart, sizeof(g->smart));
    ck_assert_int_eq(smtpx_config_new(&g->ccfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(g->ccfg), 0);
    ck_assert_int_eq(smtpx_queue_open(&g->q, dir, NULL), 0);
    while (n-- > 0)
        enqueue_to(g->q, "alice@example.org", "bob@example.net", id);
    g->o.size = sizeof(g->o);
    g->o.client_cfg = g->ccfg;
    g->o.hostname = "engine.test";
    g->o.smarthost = smart ? g->smart : NULL;
    if (getenv("ENGINE_LOG") != NULL)
        g->o.on_log = engine_log;
}

/* erig_start - the engine, on an outside loop (fd) or on its own, and its
 * first round */
static void erig_start(erig *g, int fd)
{
    ck_assert_int_eq(smtpx_mta_new(&g->m, g->q, &g->o), 0);
    if (g->in_flight_max != 0)
        smtpx__mta_set_in_flight_max(g->m, g->in_flight_max);
    if (fd) {
        g->efd = smtpx_mta_fd(g->m);
        ck_assert_int_ge(g->efd, 0);
    }
    ck_assert_int_eq(smtpx_mta_run_once(g->m, 0), 1);
}

/* erig_stop - stop the engine and run it (as its loop would) until it is
 * stopped, for at most 10 s; the last round's result, 0 if it stopped */
static int erig_stop(erig *g)
{
    uint64_t end = smtpx_posix_now_ms() + 10000;
    int rc = 1;

    smtpx_mta_stop(g->m);
    while (rc != 0 && smtpx_posix_now_ms() < end)
        rc = g->efd >= 0 ? drive_rc(g->m, g->efd, 100)
                         : smtpx_mta_run_once(g->m, 100);
    return rc;
}

static void erig_free_engine(erig *g)
{
    smtpx_mta_free(g->m);
    g->m = NULL;
    g->efd = -1;
}

static void erig_close(erig *g)
{
    if (g->m != NULL) {
        ck_assert_int_eq(erig_stop(g), 0);
        erig_free_engine(g);
    }
    smtpx_queue_free(g->q);
    smtpx_config_free(g->ccfg);
    if (g->lfd >= 0)
        close(g->lfd);
}

/* drive_for - the engine on its loop for ms */
static void drive_for(erig *g, int ms)
{
    uint64_t end = smtpx_posix_now_ms() + (uint64_t)ms;

    while (smtpx_posix_now_ms() < end)
        drive(g->m, g->efd, 10);
}

/* drive_until_empty - the engine on its loop until its queue is empty,
 * which it must be within 10 s */
static void drive_until_empty(erig *g)
{
    uint64_t end = smtpx_posix_now_ms() + 10000;

    while (smtpx_queue_count(g->q) > 0 && smtpx_posix_now_ms() < end)
        drive(g->m, g->efd, 10);
    ck_assert_uint_eq(smtpx_queue_count(g->q), 0);
}

/* take_one - the next connection to the smarthost, within 10 s */
static int take_one(erig *g)
{
    int s = accept_within(g->m, g->efd, g->lfd, 10000);

    ck_assert_int_ge(s, 0);
    return s;
}

/* refuse - "421 too many connections" on a connection, and close it */
static void refuse(int sock)
{
    static const char r[] = "421 4.7.0 Too many connections\r\n";

    ck_assert_int_eq(send(sock, r, sizeof(r) - 1, MSG_NOSIGNAL),
                     (ssize_t)(sizeof(r) - 1));
    close(sock);
}

/* expect_kept - the queue holds one message, whose recipient is in state
 * after attempts attempts */
static void expect_kept(smtpx_queue *q, int state, unsigned attempts)
{
    smtpx__qmsg *due[1];
    int64_t next;

    ck_assert_uint_eq(smtpx_queue_count(q), 1);
    ck_assert_int_eq(smtpx__queue_take_due(q, INT64_MAX / 2, due, 1, &next), 1);
    ck_assert_int_eq(due[0]->rcpts[0].state, state);
    ck_assert_uint_eq(due[0]->rcpts[0].attempts, attempts);
    smtpx__queue_release(q, due[0], 1);
}

/* A message committed while the only connection to its destination is
 * saying QUIT: the engine on an outside loop (run only when its descriptor
 * or its expiry says so) opens another connection for it at once, or,
 * with one connection allowed per destination, as soon as the first one
 * is over.  It was left waiting for a wake-up that never came. */
START_TEST(test_engine_job_while_quitting)
{
    erig g;
    char id[32];
    int per;

    erig_open(&g, 0, 1);
    for (per = 0; per <= 1; per++) {
        scripted *one = calloc(1, sizeof(*one)), *two = calloc(1, sizeof(*two));

        ck_assert(one != NULL && two != NULL);
        g.o.max_conns_per_dest = (size_t)per; /* 0: the default, 5 */
        erig_start(&g, 1);
        enqueue_to(g.q, "alice@example.org", "bob@example.net", id);
        one->sock = take_one(&g);
        serve_until_quit(g.m, g.efd, one);

        enqueue_to(g.q, "alice@example.org", "bob@example.net", id);
        if (per == 1) {
            /* The limit holds while the first is not over. */
            ck_assert_int_eq(accept_within(g.m, g.efd, g.lfd, 300), -1);
            say(one, "221 2.0.0 Bye\r\n");
        }
        two->sock = accept_within(g.m, g.efd, g.lfd, 10000);
        ck_assert_msg(two->sock >= 0,
                      "no connection for the second message "
                      "(%d per destination)",
                      per);
        serve_until_quit(g.m, g.efd, two);
        if (per == 0)
            say(one, "221 2.0.0 Bye\r\n");
        say(two, "221 2.0.0 Bye\r\n");
        drive_until_empty(&g);
        close(one->sock);
        close(two->sock);
        free(one);
        free(two);
        ck_assert_int_eq(erig_stop(&g), 0);
        erig_free_engine(&g);
    }
    erig_close(&g);
}
END_TEST

/* run_until - engine rounds until *counter reaches want (counter NULL:
 * until the file path exists), for at most 20 s; 1 if it came */
static int run_until(smtpx_mta *m, const int *counter, int want,
                     const char *path)
{
    uint64_t end = smtpx_posix_now_ms() + 20000;
    struct stat st;

    while (smtpx_posix_now_ms() < end) {
        if (counter != NULL &&
            __atomic_load_n(counter, __ATOMIC_SEQ_CST) >= want)
            return 1;
        if (counter == NULL && stat(path, &st) == 0)
            return 1;
        ck_assert_int_eq(smtpx_mta_run_once(m, 50), 1);
    }
    return 0;
}

/* open_gate - let the command that waits at the FIFO gate go on */
static void open_gate(const char *gate)
{
    int g = open(gate, O_WRONLY);

    ck_assert_int_ge(g, 0);
    ck_assert_int_eq(write(g, "go\n", 3), 3);
    close(g);
}

/* open_gate_later - open_gate after a moment, on a thread of its own */
static void *open_gate_later(void *gate)
{
    usleep(200000);
    open_gate(gate);
    return NULL;
}

/* A local delivery that takes its time (a command that waits for the
 * test) holds up no remote one: it runs on a thread of its own.  Its
 * result is recorded when it ends, also once the engine is told to stop
 * (which waits for it), and smtpx_mta_free() waits for one under way and
 * keeps its result. */
START_TEST(test_engine_local_does_not_block)
{
    static const char *const local[] = {"local.test"};
    smtpx_config *scfg, *ccfg;
    smtpx_queue *q;
    smtpx_mta *m;
    smtpx_mta_opts o;
    pthread_t th;
    sink k;
    char smart[64], id[32], pd[300], gate[320], cmd[1400], out[320];
    char path[340];
    int i, rc;

    sink_start(&k, &scfg, &th, smart, sizeof(smart));
    ck_assert_int_eq(smtpx_config_new(&ccfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(ccfg), 0);
    /* The command's files, beside the queue's directory. */
    snprintf(pd, sizeof(pd), "%s-pipe", dir);
    ck_assert_int_eq(mkdir(pd, 0700), 0);
    snprintf(gate, sizeof(gate), "%s/gate", pd);
    snprintf(out, sizeof(out), "%s/out", pd);
    ck_assert_int_eq(mkfifo(gate, 0600), 0);
    /* It takes the message, then waits until the test opens the gate. */
    snprintf(cmd, sizeof(cmd),
             "cat > %s.$USER.tmp && mv %s.$USER.tmp %s.$USER"
             " && read x < %s",
             out, out, out, gate);
    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.client_cfg = ccfg;
    o.hostname = "engine.test";
    o.smarthost = smart;
    o.local_domains = local;
    o.nlocal = 1;
    o.local_kind = SMTPX_LOCAL_PIPE;
    o.local_path = cmd;
    if (getenv("ENGINE_LOG") != NULL)
        o.on_log = engine_log;
    ck_assert_int_eq(smtpx_mta_new(&m, q, &o), 0);

    enqueue_to(q, "alice@example.org", "dave@local.test", id);
    snprintf(path, sizeof(path), "%s.dave", out);
    ck_assert(run_until(m, NULL, 0, path)); /* the command waits */
    enqueue_to(q, "alice@example.org", "bob@example.net", id);
    /* The remote message goes while the command still waits. */
    ck_assert(run_until(m, &k.accepted, 1, NULL));
    /* Its removal follows the server's 250; the command still waits. */
    {
        uint64_t end = smtpx_posix_now_ms() + 20000;
        while (smtpx_queue_count(q) > 1 && smtpx_posix_now_ms() < end)
            ck_assert_int_eq(smtpx_mta_run_once(m, 20), 1);
    }
    ck_assert_uint_eq(smtpx_queue_count(q), 1);
    open_gate(gate);
    for (i = 0; i < 400 && smtpx_queue_count(q) > 0; i++)
        ck_assert_int_eq(smtpx_mta_run_once(m, 50), 1);
    ck_assert_uint_eq(smtpx_queue_count(q), 0);

    /* Told to stop while a local delivery is under way: the engine runs
     * until it is over, and records it. */
    enqueue_to(q, "alice@example.org", "erin@local.test", id);
    snprintf(path, sizeof(path), "%s.erin", out);
    ck_assert(run_until(m, NULL, 0, path));
    smtpx_mta_stop(m);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(smtpx_mta_run_once(m, 20), 1);
    open_gate(gate);
    for (i = 0; i < 400 && (rc = smtpx_mta_run_once(m, 50)) > 0; i++)
        ;
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(smtpx_queue_count(q), 0);
    smtpx_mta_free(m);

    /* Freed while one is under way: smtpx_mta_free() waits for it and
     * keeps its result; one no worker began (a single worker, busy) goes
     * back to the queue untried. */
    o.max_local = 1;
    ck_assert_int_eq(smtpx_mta_new(&m, q, &o), 0);
    enqueue_to(q, "alice@example.org", "frank@local.test", id);
    snprintf(path, sizeof(path), "%s.frank", out);
    ck_assert(run_until(m, NULL, 0, path));
    enqueue_to(q, "alice@example.org", "gina@local.test", id);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(smtpx_mta_run_once(m, 20), 1);
    {
        pthread_t opener;
        ck_assert_int_eq(pthread_create(&opener, NULL, open_gate_later, gate),
                         0);
        smtpx_mta_free(m);
        pthread_join(opener, NULL);
    }
    snprintf(path, sizeof(path), "%s.gina", out);
    ck_assert_int_eq(access(path, F_OK), -1);
    ck_assert_uint_eq(smtpx_queue_count(q), 1);
    smtpx_queue_free(q);
    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);
    ck_assert_uint_eq(smtpx_queue_count(q), 1); /* gina's, untried */
    smtpx_queue_free(q);
    sink_stop(&k, scfg, th);
    smtpx_config_free(ccfg);
    rm_rf(pd);
}
END_TEST

/* A clock of the test's: a fixed time, .9 of the way into its second. */
static int late_clock(struct timespec *ts)
{
    ts->tv_sec = 1800000000;
    ts->tv_nsec = 900000000;
    return 0;
}

/* A deferred recipient is tried again no sooner than retry_min_s after the
 * attempt: the next attempt is reckoned from the attempt's time rounded up
 * to the whole second, not down (which made the wait up to 1 s short). */
START_TEST(test_engine_backoff_rounds_up)
{
    smtpx_config *scfg, *ccfg;
    smtpx_queue_opts qo;
    smtpx__qmsg *due[1];
    smtpx__fs fs = *smtpx__maildir_fs_default();
    smtpx_queue *q;
    smtpx_mta *m;
    smtpx_mta_opts o;
    pthread_t th;
    sink k;
    char smart[64], id[32];
    int64_t next = 0;

    sink_start(&k, &scfg, &th, smart, sizeof(smart));
    ck_assert_int_eq(smtpx_config_new(&ccfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(ccfg), 0);
    fs.clock = late_clock;
    memset(&qo, 0, sizeof(qo));
    qo.size = sizeof(qo);
    qo.retry_min_s = 60;
    qo.retry_max_s = 600;
    ck_assert_int_eq(smtpx__queue_open_fs(&q, dir, &qo, &fs), 0);
    enqueue_to(q, "alice@example.org", "defer@example.net", id);
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.client_cfg = ccfg;
    o.hostname = "engine.test";
    o.smarthost = smart;
    if (getenv("ENGINE_LOG") != NULL)
        o.on_log = engine_log;
    ck_assert_int_eq(smtpx_mta_new(&m, q, &o), 0);
    ck_assert(run_until(m, &k.deferred, 1, NULL));
    smtpx_mta_stop(m); /* the attempt under way ends first */
    while (smtpx_mta_run_once(m, 100) > 0)
        ;
    smtpx_mta_free(m);
    /* Tried at 1800000000.9: not due at .9 + 59.1 s, due at + 60.1 s. */
    ck_assert_int_eq(smtpx__queue_take_due(q, 1800000000 + 60, due, 1, &next),
                     0);
    ck_assert_int_eq(next, 1800000001 + 60);
    ck_assert_int_eq(smtpx__queue_take_due(q, 1800000001 + 60, due, 1, &next),
                     1);
    ck_assert_uint_eq(due[0]->rcpts[0].attempts, 1);
    ck_assert_int_eq(due[0]->rcpts[0].state, SMTPX_QRCPT_DEFERRED);
    smtpx__queue_release(q, due[0], 1);
    smtpx_queue_free(q);
    sink_stop(&k, scfg, th);
    smtpx_config_free(ccfg);
}
END_TEST

/* Stopped on an outside loop while a connection says QUIT: once it is
 * over, the loop is told to run the round that returns 0 (it waited for
 * a wake-up that never came). */
START_TEST(test_engine_stop_on_outside_loop)
{
    scripted *one = calloc(1, sizeof(*one));
    erig g;
    int i;

    ck_assert_ptr_nonnull(one);
    erig_open(&g, 1, 1);
    erig_start(&g, 1);
    one->sock = take_one(&g);
    serve_until_quit(g.m, g.efd, one);
    smtpx_mta_stop(g.m);
    for (i = 0; i < 5; i++) /* the connection holds the stop up */
        ck_assert_int_ne(drive_rc(g.m, g.efd, 10), 0);
    say(one, "221 2.0.0 Bye\r\n");
    close(one->sock);
    ck_assert_msg(erig_stop(&g) == 0, "the stop was never carried out");
    ck_assert_uint_eq(smtpx_queue_count(g.q), 0);
    erig_close(&g);
    free(one);
}
END_TEST

/* Stopped while a connection has transactions under way and one more
 * message waits for it: the transactions under way finish, the waiting
 * one is not begun (it stays in the queue, untried), and the connection
 * says QUIT.  It was begun, as if nothing had been asked. */
START_TEST(test_engine_stop_starts_nothing_new)
{
    scripted *a = calloc(1, sizeof(*a));
    erig g;
    int i;

    ck_assert_ptr_nonnull(a);
    erig_open(&g, 5, 1);
    g.o.max_conns_per_dest = 1;
    erig_start(&g, 1);
    a->sock = take_one(&g);
    serve_greet(g.m, g.efd, a);
    serve_txn(g.m, g.efd, a); /* four were given to the connection at once */
    smtpx_mta_stop(g.m);
    for (i = 0; i < 3; i++)
        serve_txn(g.m, g.efd, a);
    expect_line(g.m, g.efd, a, "QUIT"); /* not a fifth MAIL */
    say(a, "221 2.0.0 Bye\r\n");
    ck_assert_int_eq(erig_stop(&g), 0);
    erig_free_engine(&g);
    expect_kept(g.q, SMTPX_QRCPT_PENDING, 0);
    erig_close(&g);
    close(a->sock);
    free(a);
}
END_TEST

/* on_log that stops the engine (*log_data) at its first deferral */
static void stop_at_deferral(int level, const char *msg, void *ud)
{
    smtpx_mta *const *m = ud;

    (void)level;
    if (strstr(msg, "status=deferred") != NULL)
        smtpx_mta_stop(*m);
}

/* A stop asked for during a round (from a callback of the engine's, or
 * another thread) is not lost: the outside loop finds the descriptor
 * readable and the next round carries it out.  It was drained unseen,
 * and the engine waited for its next retry (300 s). */
START_TEST(test_engine_stop_during_round)
{
    struct pollfd p;
    erig g;

    /* No smarthost and no resolver: the route fails in the first round,
     * whose log line asks for the stop. */
    erig_open(&g, 1, 0);
    g.o.on_log = stop_at_deferral;
    g.o.log_data = &g.m;
    erig_start(&g, 1);
    p.fd = g.efd;
    p.events = POLLIN;
    p.revents = 0;
    ck_assert_msg(poll(&p, 1, 0) == 1 ||
                      smtpx_mta_expiry(g.m) <= smtpx_posix_now_ms(),
                  "the stop asked for in the round was lost");
    ck_assert_int_eq(erig_stop(&g), 0);
    erig_free_engine(&g);
    expect_kept(g.q, SMTPX_QRCPT_DEFERRED, 1);
    erig_close(&g);
}
END_TEST

/* Five messages; of the two connections the engine opens, one is refused
 * ("421 too many connections") while the other is in its session: the
 * destination is not dead, and the other takes all five in turn, with
 * no more connections meanwhile.  The five were deferred. */
START_TEST(test_engine_refused_while_served)
{
    scripted *a = calloc(1, sizeof(*a));
    erig g;

    ck_assert_ptr_nonnull(a);
    erig_open(&g, 5, 1);
    erig_start(&g, 1);
    a->sock = take_one(&g);
    refuse(take_one(&g));
    drive_for(&g, 500); /* the refusal is taken in before a says anything */
    serve(g.m, g.efd, a, 5);
    say(a, "221 2.0.0 Bye\r\n");
    drive_until_empty(&g);
    ck_assert_int_eq(accept_within(g.m, g.efd, g.lfd, 0), -1);
    erig_close(&g);
    close(a->sock);
    free(a);
}
END_TEST

/* After a refusal caps a destination's connections, a connection that
 * gets through lets one more try again: ten messages, three connections,
 * two refused; once the third is in its session another comes.  The cap
 * stayed for as long as the destination had work. */
START_TEST(test_engine_refusal_cap_recovers)
{
    scripted *a = calloc(1, sizeof(*a));
    erig g;
    int b[2], i;

    ck_assert_ptr_nonnull(a);
    erig_open(&g, 10, 1);
    erig_start(&g, 1);
    a->sock = take_one(&g);
    for (i = 0; i < 2; i++)
        b[i] = take_one(&g);
    ck_assert_int_eq(accept_within(g.m, g.efd, g.lfd, 100), -1); /* 10 < 12 */
    for (i = 0; i < 2; i++)
        refuse(b[i]);
    /* Capped at the one left: no other comes while it is not through. */
    ck_assert_int_eq(accept_within(g.m, g.efd, g.lfd, 500), -1);
    serve_greet(g.m, g.efd, a);
    i = accept_within(g.m, g.efd, g.lfd, 10000);
    ck_assert_msg(i >= 0, "no connection after one got through");
    close(i);
    close(a->sock);
    ck_assert_int_eq(erig_stop(&g), 0);
    ck_assert_uint_eq(smtpx_mta_expiry(g.m), 0); /* stopped: nothing to run */
    ck_assert_uint_eq(smtpx_queue_count(g.q), 10);
    erig_close(&g);
    free(a);
}
END_TEST

/* The last connection of a destination is refused after the other one
 * delivered everything: no job waits, so the dead mark it leaves is for
 * nobody, and a message that comes later gets a connection.  It was
 * failed at once with the old refusal, no connection tried. */
START_TEST(test_engine_dead_mark_forgotten)
{
    scripted *a = calloc(1, sizeof(*a)), *c = calloc(1, sizeof(*c));
    char id[32];
    erig g;
    int b;

    ck_assert(a != NULL && c != NULL);
    erig_open(&g, 5, 1);
    erig_start(&g, 1);
    a->sock = take_one(&g);
    b = take_one(&g); /* greeted later */
    serve(g.m, g.efd, a, 5);
    say(a, "221 2.0.0 Bye\r\n");
    drive_until_empty(&g);
    refuse(b);
    drive_for(&g, 500);
    enqueue_to(g.q, "alice@example.org", "bob@example.net", id);
    c->sock = accept_within(g.m, g.efd, g.lfd, 10000);
    ck_assert_msg(c->sock >= 0, "no connection for a message after the "
                                "refusal");
    serve_until_quit(g.m, g.efd, c);
    say(c, "221 2.0.0 Bye\r\n");
    drive_until_empty(&g);
    erig_close(&g);
    close(a->sock);
    close(c->sock);
    free(a);
    free(c);
}
END_TEST

/* As many messages in flight as the engine holds, and more due: the
 * engine waits for one to finish rather than run round after round with
 * no wait (it did, for as long as they were in flight). */
START_TEST(test_engine_in_flight_full_waits)
{
    uint64_t end;
    erig g;
    int s, rounds = 0;

    erig_open(&g, 2, 1);
    g.in_flight_max = 1;
    erig_start(&g, 0);
    /* The server takes the connection and says nothing. */
    end = smtpx_posix_now_ms() + 10000;
    do {
        ck_assert_int_eq(smtpx_mta_run_once(g.m, 10), 1);
        s = accept(g.lfd, NULL, NULL);
    } while (s < 0 && smtpx_posix_now_ms() < end);
    ck_assert_int_ge(s, 0);
    end = smtpx_posix_now_ms() + 500;
    while (smtpx_posix_now_ms() < end) {
        ck_assert_int_eq(smtpx_mta_run_once(g.m, 100), 1);
        rounds++;
    }
    /* About five rounds of 100 ms; thousands when it spun. */
    ck_assert_int_lt(rounds, 50);
    close(s);
    ck_assert_int_eq(erig_stop(&g), 0);
    ck_assert_uint_eq(smtpx_queue_count(g.q), 2); /* both deferred, kept */
    erig_close(&g);
}
END_TEST

/* A DNS server that never answers (a socket that reads nothing): the
 * resolver's time-out comes with no descriptor readable, and the engine
 * acts on it (the message deferred), without spinning meanwhile.  It
 * never did: the query stayed pending, the message in flight. */
START_TEST(test_engine_dns_timeout)
{
    smtpx_resolver *res;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    char servers[64];
    uint64_t end;
    erig g;
    int u, rc, rounds = 0;

    u = socket(AF_INET, SOCK_DGRAM, 0);
    ck_assert_int_ge(u, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(u, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(u, (struct sockaddr *)&sa, &sl), 0);
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", ntohs(sa.sin_port));
    rc = smtpx__resolver_new_cares(&res, NULL, servers, 300, 1);
    if (rc == SMTPX_ERR_NOT_SUPPORTED) { /* the worker keeps its own time */
        close(u);
        return;
    }
    ck_assert_int_eq(rc, 0);
    erig_open(&g, 1, 0);
    g.o.resolver = res;
    erig_start(&g, 0);
    end = smtpx_posix_now_ms() + 10000;
    while (smtpx_resolver_pending(res) == 0 && smtpx_posix_now_ms() < end) {
        ck_assert_int_eq(smtpx_mta_run_once(g.m, 100), 1);
        rounds++;
    }
    ck_assert_uint_eq(smtpx_resolver_pending(res), 1); /* asked */
    while (smtpx_resolver_pending(res) > 0 && smtpx_posix_now_ms() < end) {
        ck_assert_int_eq(smtpx_mta_run_once(g.m, 100), 1);
        rounds++;
    }
    ck_assert_msg(smtpx_resolver_pending(res) == 0,
                  "the DNS time-out was never acted on");
    /* 300 ms of time-out: a few rounds, not thousands. */
    ck_assert_int_lt(rounds, 100);
    ck_assert_int_eq(erig_stop(&g), 0);
    erig_free_engine(&g);
    expect_kept(g.q, SMTPX_QRCPT_DEFERRED, 1);
    erig_close(&g);
    smtpx_resolver_free(res);
    close(u);
}
END_TEST

/* ---- 8-bit mail for a server without 8BITMIME ---------------------------
 */

/* A server that does not offer 8BITMIME and keeps what it is sent. */
typedef struct sink7 {
    smtpx_loop *loop;
    pthread_mutex_t mu;
    char got[16384];
    size_t len;
    char log[8192];
    size_t loglen;
} sink7;

static int s7_chunk(smtpx_server *s, const uint8_t *data, size_t len, void *ud)
{
    sink7 *k = ud;

    (void)s;
    pthread_mutex_lock(&k->mu);
    if (len < sizeof(k->got) - k->len) {
        memcpy(k->got + k->len, data, len);
        k->len += len;
    }
    pthread_mutex_unlock(&k->mu);
    return 0;
}

static void s7_log(int level, const char *msg, void *ud)
{
    sink7 *k = ud;
    size_t n = strlen(msg);

    (void)level;
    if (n + 1 < sizeof(k->log) - k->loglen) {
        memcpy(k->log + k->loglen, msg, n);
        k->loglen += n;
        k->log[k->loglen++] = '\n';
        k->log[k->loglen] = '\0';
    }
}

static void *s7_run(void *arg)
{
    smtpx_loop_run(((sink7 *)arg)->loop);
    return NULL;
}

static void enqueue_typed(smtpx_queue *q, int type, const char *body)
{
    smtpx_queue_env env;
    smtpx_queue_msg *qm;
    char id[32];

    memset(&env, 0, sizeof(env));
    env.size = sizeof(env);
    env.from = "alice@example.org";
    env.body = type;
    ck_assert_int_eq(smtpx_queue_begin(q, &env, &qm), 0);
    ck_assert_int_eq(smtpx_queue_add_rcpt(qm, "bob@example.net", 0, NULL), 0);
    ck_assert_int_eq(smtpx_queue_write(qm, body, strlen(body)), 0);
    ck_assert_int_eq(smtpx_queue_commit(qm, id, 32), 0);
}

/* s7_deliver - an engine (downgrading or not) on its own loop until the
 * queue is empty */
static void s7_deliver(sink7 *k, smtpx_queue *q, const char *smart,
                       int no_downgrade)
{
    smtpx_config *ccfg;
    smtpx_mta *m;
    smtpx_mta_opts o;
    uint64_t end = smtpx_posix_now_ms() + 10000;

    ck_assert_int_eq(smtpx_config_new(&ccfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(ccfg), 0);
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.client_cfg = ccfg;
    o.hostname = "engine.test";
    o.smarthost = smart;
    o.on_log = s7_log;
    o.log_data = k;
    o.no_downgrade = no_downgrade;
    ck_assert_int_eq(smtpx_mta_new(&m, q, &o), 0);
    while (smtpx_queue_count(q) > 0 && smtpx_posix_now_ms() < end)
        ck_assert_int_eq(smtpx_mta_run_once(m, 50), 1);
    ck_assert_msg(smtpx_queue_count(q) == 0, "%s", k->log);
    smtpx_mta_stop(m);
    while (smtpx_mta_run_once(m, 100) > 0)
        ;
    smtpx_mta_free(m);
    smtpx_config_free(ccfg);
}

/* The engine sends an 8-bit message to a server without 8BITMIME made
 * 7-bit (quoted-printable, RFC 6152 3), bounces one it cannot convert
 * with the reason, and with no_downgrade bounces both. */
START_TEST(test_engine_downgrade)
{
    static const char eight[] = "Subject: menu\r\n"
                                "Content-Type: text/plain; charset=utf-8\r\n"
                                "Content-Transfer-Encoding: 8bit\r\n"
                                "\r\n"
                                "caf\xc3\xa9 cr\xc3\xa8me\r\n";
    static const char seven[] =
        "Subject: menu\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "caf=C3=A9 cr=C3=A8me\r\n";
    static const smtpx_server_callbacks cbs = {.on_data_chunk = s7_chunk};
    smtpx_config *scfg;
    smtpx_queue *q;
    sink7 *k = calloc(1, sizeof(*k));
    pthread_t th;
    char smart[64];
    size_t i;
    int lfd;

    ck_assert_ptr_nonnull(k);
    pthread_mutex_init(&k->mu, NULL);
    ck_assert_int_eq(smtpx_config_new(&scfg, SMTPX_ROLE_SERVER, NULL), 0);
    ck_assert_int_eq(smtpx_config_set_extensions(scfg, SMTPX_EXT_DEFAULT &
                                                           ~SMTPX_EXT_8BITMIME),
                     0);
    ck_assert_int_eq(smtpx_config_freeze(scfg), 0);
    lfd = listen_smart(smart, sizeof(smart));
    ck_assert_int_eq(smtpx_loop_new(&k->loop, NULL), 0);
    ck_assert_int_eq(
        smtpx_loop_listen(k->loop, lfd, scfg, &cbs, sizeof(cbs), k, NULL, NULL),
        0);
    ck_assert_int_eq(pthread_create(&th, NULL, s7_run, k), 0);
    ck_assert_int_eq(smtpx_queue_open(&q, dir, NULL), 0);

    enqueue_typed(q, SMTPX_BODY_8BITMIME, eight);
    enqueue_typed(q, SMTPX_BODY_8BITMIME, "Subject: caf\xc3\xa9\r\n\r\nx\r\n");
    enqueue_typed(q, SMTPX_BODY_BINARYMIME, "Subject: bin\r\n\r\n\x01\r\n");
    s7_deliver(k, q, smart, 0);
    pthread_mutex_lock(&k->mu);
    k->got[k->len] = '\0';
    ck_assert_msg(strstr(k->got, seven) != NULL, "%s", k->got);
    /* Nothing 8-bit reached the 7-bit server: not the message, nor the
     * report about the one that could not be converted (its 8-bit
     * Subject, quoted in the report, made the report 8BITMIME, and it was
     * converted in turn). */
    for (i = 0; i < k->len; i++)
        ck_assert_msg(!((unsigned char)k->got[i] & 0x80), "%s", k->got);
    pthread_mutex_unlock(&k->mu);
    ck_assert_msg(strstr(k->log,
                         "status=bounced (554 The message is binary "
                         "and the server does not offer BINARYMIME") != NULL,
                  "%s", k->log);
    ck_assert_msg(strstr(k->log, "converted to 7 bits (1 parts re-encoded") !=
                      NULL,
                  "%s", k->log);
    ck_assert_msg(strstr(k->log,
                         "status=bounced (554 The server does not offer "
                         "8BITMIME and the message cannot be made 7-bit: "
                         "8-bit octets in a header field, line 1)") != NULL,
                  "%s", k->log);

    /* no_downgrade: the client's own refusal, nothing converted. */
    k->loglen = 0;
    k->log[0] = '\0';
    enqueue_typed(q, SMTPX_BODY_8BITMIME, eight);
    s7_deliver(k, q, smart, 1);
    ck_assert_ptr_null(strstr(k->log, "converted to 7 bits"));
    ck_assert_msg(strstr(k->log, "status=bounced (554 The message has 8-bit "
                                 "content and the server does not offer "
                                 "8BITMIME)") != NULL,
                  "%s", k->log);

    smtpx_queue_free(q);
    smtpx_loop_stop(k->loop, SMTPX_SHUTDOWN_NOW);
    pthread_join(th, NULL);
    smtpx_loop_free(k->loop);
    smtpx_config_free(scfg);
    pthread_mutex_destroy(&k->mu);
    free(k);
}
END_TEST

Suite *suite_queue(void)
{
    Suite *s = suite_create("queue");
    TCase *tc = tcase_create("format");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_format_round_trip);
    tcase_add_test(tc, test_format_bad_env);
    tcase_add_test(tc, test_format_bad_state);
    tcase_add_test(tc, test_format_prefixes);
    tcase_add_test(tc, test_backoff);
    tcase_add_test(tc, test_xtext);
    tcase_add_test(tc, test_dsn_parse_hostile);
    suite_add_tcase(s, tc);
    tc = tcase_create("spool");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_intake_and_reopen);
    tcase_add_test(tc, test_recovery);
    tcase_add_test(tc, test_hold_flush);
    tcase_add_test(tc, test_faults);
    tcase_add_test(tc, test_state_faults);
    tcase_add_test(tc, test_group_commit);
    tcase_add_test(tc, test_group_commit_fault);
    tcase_add_test(tc, test_args);
    tcase_add_test(tc, test_dsn_build_parse);
    tcase_add_test(tc, test_dsn_body_type);
    tcase_add_test(tc, test_dsn_null_sender);
    tcase_add_test(tc, test_cancel);
    suite_add_tcase(s, tc);
    tc = tcase_create("resolver");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_resolver_static);
    tcase_add_loop_test(tc, test_resolver_system, 0, 2);
    tcase_add_test(tc, test_route_static);
    suite_add_tcase(s, tc);
    tc = tcase_create("local");
    tcase_set_timeout(tc, 20);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_mbox);
    tcase_add_test(tc, test_pipe);
    suite_add_tcase(s, tc);
    tc = tcase_create("engine");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_engine_external_loop);
    tcase_add_test(tc, test_engine_downgrade);
    tcase_add_test(tc, test_engine_job_while_quitting);
    tcase_add_test(tc, test_engine_backoff_rounds_up);
    tcase_add_test(tc, test_engine_stop_on_outside_loop);
    tcase_add_test(tc, test_engine_stop_starts_nothing_new);
    tcase_add_test(tc, test_engine_stop_during_round);
    tcase_add_test(tc, test_engine_refused_while_served);
    tcase_add_test(tc, test_engine_dead_mark_forgotten);
    tcase_add_test(tc, test_engine_refusal_cap_recovers);
    tcase_add_test(tc, test_engine_in_flight_full_waits);
    tcase_add_test(tc, test_engine_dns_timeout);
    tcase_add_test(tc, test_engine_local_does_not_block);
    suite_add_tcase(s, tc);
    return s;
}
