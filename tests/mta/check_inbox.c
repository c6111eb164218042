/*
 * check_inbox - the receiving side of acknowledgements: a message handed
 * over once (NEW), again after a crash between check and processed
 * (REDELIVERY, across a reopened store), then suppressed (DUPLICATE) and
 * acknowledged again; each acknowledgement read back from the queue by the
 * report parser (an MDN to Disposition-Notification-To, or to the sender
 * under ACK_ALWAYS, a "delivered" DSN for NOTIFY=SUCCESS); messages
 * without a Message-ID refused, hashed (the same past different trace
 * fields) or accepted; keys per recipient; a key claimed by one session
 * while another has it; the header split at every point; the store
 * failing; the durable writes counted; an allocation-failure sweep.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libsmtpx/ack.h>

#include "harness/failmalloc.h"
#include "mta/dedupe.h"
#include "mta/queue.h"
#include "suites.h"

static char dir[128], store[160], qdir[160];

static void setup(void)
{
    char cmd[400];

    snprintf(dir, sizeof(dir), "/tmp/check-inbox-%ld", (long)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(store, sizeof(store), "%s/seen", dir);
    snprintf(qdir, sizeof(qdir), "%s/acks", dir);
}

static void teardown(void)
{
    char cmd[400];
    int rc;

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    rc = system(cmd);
    (void)rc;
}

/* ---- a counting seam ----------------------------------------------------- */

static struct {
    long syncs, writes;
    long fail_sync;  /* the Nth sync fails; 0: never */
    long fail_write; /* the Nth write fails; 0: never */
} sm;

static ssize_t s_write(int fd, const void *buf, size_t len)
{
    if (++sm.writes == sm.fail_write) {
        errno = ENOSPC;
        return -1;
    }
    return write(fd, buf, len);
}

static int s_fsync(int fd)
{
    if (++sm.syncs == sm.fail_sync) {
        errno = EIO;
        return -1;
    }
    return fsync(fd);
}

static int s_fdatasync(int fd)
{
    if (++sm.syncs == sm.fail_sync) {
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static smtpx__fs seam;

static const smtpx__fs *seam_reset(void)
{
    memset(&sm, 0, sizeof(sm));
    seam = *smtpx__maildir_fs_default();
    seam.fsync = s_fsync;
    seam.fdatasync = s_fdatasync;
    seam.write = s_write;
    return &seam;
}

/* ---- the set-up ---------------------------------------------------------- */

typedef struct rig {
    smtpx_dedupe *d;
    smtpx_queue *q;
    smtpx_inbox *ib;
} rig;

static void rig_open(rig *g, unsigned flags, int no_id, const smtpx__fs *fs,
                     const smtpx_mem *mem)
{
    smtpx_inbox_opts o;

    ck_assert_int_eq(smtpx__dedupe_open_fs(&g->d, store, NULL, fs), 0);
    ck_assert_int_eq(smtpx__queue_open_fs(&g->q, qdir, NULL, fs), 0);
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.flags = flags;
    o.no_id = no_id;
    o.dedupe = g->d;
    o.acks = g->q;
    o.ack_from = "warehouse@depot.example";
    o.hostname = "depot.example";
    o.mem = mem;
    ck_assert_int_eq(smtpx_inbox_new(&g->ib, &o), 0);
}

static void rig_close(rig *g)
{
    smtpx_inbox_free(g->ib);
    smtpx_queue_free(g->q);
    smtpx_dedupe_free(g->d);
}

static const char ORDER[] =
    "Received: from shop.example by depot.example; Thu, 3 Dec 2026\r\n"
    "From: Orders <orders@shop.example>\r\n"
    "To: stock@depot.example\r\n"
    "Subject: order 7\r\n"
    "Message-ID: <order-7@shop.example>\r\n"
    "Disposition-Notification-To: Acks <acks@shop.example>\r\n"
    "\r\n"
    "10 crates of apples\r\n";

/* deliver - one transaction of msg to rcpts; returns check's result and
 * leaves the message in *out (to process and free) */
static int deliver(rig *g, const char *from, const char *const *rcpts,
                   const unsigned *notify, const char *msg, size_t split,
                   smtpx_inbox_msg **out)
{
    size_t i, len = strlen(msg);

    ck_assert_int_eq(smtpx_inbox_begin(g->ib, from, "order+2D7", out), 0);
    for (i = 0; rcpts[i] != NULL; i++)
        ck_assert_int_eq(smtpx_inbox_add_rcpt(*out, rcpts[i],
                                              notify ? notify[i] : 0,
                                              "rfc822;Stock+2BA@depot.example"),
                         0);
    if (split > len)
        split = len;
    ck_assert_int_eq(smtpx_inbox_write(*out, msg, split), 0);
    ck_assert_int_eq(smtpx_inbox_write(*out, msg + split, len - split), 0);
    return smtpx_inbox_check(*out);
}

static const char OTHER[] = "Message-ID: <other@x>\r\n"
                            "Disposition-Notification-To: a@b\r\n\r\n";

static const char ORDER_B[] = "Message-ID: <b@x>\r\n\r\n";
static const char ORDER_C[] = "Message-ID: <c@x>\r\n\r\n";

static const char *const ONE[] = {"stock@depot.example", NULL};
static const char *const TWO[] = {"stock@depot.example", "audit@depot.example",
                                  NULL};

/* acks - parse every message in the ack queue (and empty it) */
typedef struct ack {
    int kind;
    char to[128];
    char id[128];
    char envid[128];
    char rcpt[128];
    char action[32];
} ack;

static int read_acks(ack *out, int max)
{
    char path[600], mdir[300];
    struct dirent *de;
    DIR *dp;
    int n = 0;

    snprintf(mdir, sizeof(mdir), "%s/msg", qdir);
    dp = opendir(mdir);
    ck_assert_ptr_nonnull(dp);
    while ((de = readdir(dp)) != NULL && n < max) {
        static char buf[1 << 16];
        smtpx_report *r;
        smtpx_report_rcpt rc;
        FILE *fp;
        size_t len;
        char *body, *to;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", mdir, de->d_name);
        fp = fopen(path, "rb");
        len = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        unlink(path);
        buf[len] = '\0';
        to = strstr(buf, "\nR ");
        ck_assert_ptr_nonnull(to);
        to = strchr(to + 3, ' ');
        to = strchr(to + 1, ' ') + 1;
        snprintf(out[n].to, sizeof(out[n].to), "%.*s", (int)strcspn(to, "\n"),
                 to);
        body = strstr(buf, "\n.\n") + 3;
        ck_assert_int_eq(smtpx_report_new(&r, NULL), 0);
        ck_assert_int_eq(smtpx_report_feed(r, body, len - (size_t)(body - buf)),
                         0);
        ck_assert_int_eq(smtpx_report_end(r), 0);
        out[n].kind = smtpx_report_kind(r);
        snprintf(out[n].id, sizeof(out[n].id), "%s",
                 smtpx_report_message_id(r) ? smtpx_report_message_id(r) : "");
        snprintf(out[n].envid, sizeof(out[n].envid), "%s",
                 smtpx_report_envid(r) ? smtpx_report_envid(r) : "");
        ck_assert_int_eq(smtpx_report_get_rcpt(r, 0, &rc), 0);
        ck_assert_int_eq(rc.outcome, SMTPX_REPORT_ACK);
        snprintf(out[n].rcpt, sizeof(out[n].rcpt), "%s", rc.rcpt);
        snprintf(out[n].action, sizeof(out[n].action), "%s", rc.action);
        smtpx_report_free(r);
        n++;
    }
    closedir(dp);
    return n;
}

/* ---- tests --------------------------------------------------------------- */

START_TEST(test_once_then_duplicate)
{
    rig g;
    smtpx_inbox_msg *m;
    smtpx_inbox_stats st;
    ack a[8];

    rig_open(&g, 0, SMTPX_INBOX_NOID_REFUSE, NULL, NULL);
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", ONE, NULL, ORDER, 9999, &m), 0);
    ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL), SMTPX_INBOX_NEW);
    ck_assert_int_eq(smtpx_inbox_verdict(m, 0), SMTPX_INBOX_NEW);
    ck_assert_str_eq(smtpx_inbox_key(m), "order-7@shop.example");
    ck_assert_int_eq(read_acks(a, 8), 0); /* nothing before processed */
    ck_assert_int_eq(smtpx_inbox_processed(m, SMTPX_INBOX_ALL), 0);
    ck_assert_int_eq(smtpx_inbox_processed(m, SMTPX_INBOX_ALL), 0); /* once */
    smtpx_inbox_msg_free(m);
    ck_assert_int_eq(read_acks(a, 8), 1);
    ck_assert_int_eq(a[0].kind, SMTPX_REPORT_MDN);
    ck_assert_str_eq(a[0].to, "acks@shop.example");
    ck_assert_str_eq(a[0].id, "order-7@shop.example");
    ck_assert_str_eq(a[0].rcpt, "stock@depot.example");
    ck_assert_str_eq(a[0].action, "processed");

    /* The same message again: suppressed, and acknowledged again. */
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", ONE, NULL, ORDER, 30, &m), 0);
    ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL),
                     SMTPX_INBOX_DUPLICATE);
    ck_assert_int_eq(read_acks(a, 8), 1);
    ck_assert_str_eq(a[0].id, "order-7@shop.example");
    ck_assert_int_eq(smtpx_inbox_processed(m, SMTPX_INBOX_ALL), 0);
    smtpx_inbox_msg_free(m);
    ck_assert_int_eq(read_acks(a, 8), 0);

    memset(&st, 0, sizeof(st));
    st.size = sizeof(st);
    smtpx_inbox_stats_get(g.ib, &st);
    ck_assert_uint_eq(st.messages, 2);
    ck_assert_uint_eq(st.new_keys, 1);
    ck_assert_uint_eq(st.duplicates, 1);
    ck_assert_uint_eq(st.acks, 2);
    ck_assert_uint_eq(st.ack_errors, 0);
    rig_close(&g);
}
END_TEST

/* A crash between check and processed: the message comes again as a
 * REDELIVERY, across a reopened store; a crash after processed: a
 * DUPLICATE. */
START_TEST(test_redelivery_across_restart)
{
    rig g;
    smtpx_inbox_msg *m;
    ack a[4];

    rig_open(&g, 0, SMTPX_INBOX_NOID_REFUSE, NULL, NULL);
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", ONE, NULL, ORDER, 0, &m), 0);
    ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL), SMTPX_INBOX_NEW);
    smtpx_inbox_msg_free(m); /* "crashed" before processed */
    rig_close(&g);

    rig_open(&g, 0, SMTPX_INBOX_NOID_REFUSE, NULL, NULL);
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", ONE, NULL, ORDER, 0, &m), 0);
    ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL),
                     SMTPX_INBOX_REDELIVERY);
    ck_assert_int_eq(smtpx_inbox_processed(m, SMTPX_INBOX_ALL), 0);
    smtpx_inbox_msg_free(m);
    ck_assert_int_eq(read_acks(a, 4), 1);
    rig_close(&g);

    rig_open(&g, 0, SMTPX_INBOX_NOID_REFUSE, NULL, NULL);
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", ONE, NULL, ORDER, 0, &m), 0);
    ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL),
                     SMTPX_INBOX_DUPLICATE);
    smtpx_inbox_msg_free(m);
    ck_assert_int_eq(read_acks(a, 4), 1);
    rig_close(&g);
}
END_TEST

START_TEST(test_no_message_id)
{
    static const char a1[] =
        "Received: from a\r\nSubject: no id\r\n\r\nbody\r\n";
    static const char a2[] =
        "Received: from b\r\n\tby c\r\nReturn-Path: <x>\r\n"
        "Subject: no id\r\n\r\nbody\r\n";
    static const char b[] = "Subject: no id\r\n\r\nbody!\r\n";
    rig g;
    smtpx_inbox_msg *m;
    char key[80];

    rig_open(&g, 0, SMTPX_INBOX_NOID_REFUSE, NULL, NULL);
    ck_assert_int_eq(deliver(&g, "x@y", ONE, NULL, a1, 5, &m),
                     SMTPX_ERR_NO_MESSAGE_ID);
    ck_assert_ptr_null(smtpx_inbox_key(m));
    ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_inbox_processed(m, SMTPX_INBOX_ALL),
                     SMTPX_ERR_INVALID_STATE);
    smtpx_inbox_msg_free(m);
    rig_close(&g);

    /* Hashed: the trace fields on top do not count, the rest does. */
    rig_open(&g, 0, SMTPX_INBOX_NOID_HASH, NULL, NULL);
    ck_assert_int_eq(deliver(&g, "x@y", ONE, NULL, a1, 7, &m), 0);
    ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL), SMTPX_INBOX_NEW);
    ck_assert_int_eq(strncmp(smtpx_inbox_key(m), "sha256:", 7), 0);
    ck_assert_uint_eq(strlen(smtpx_inbox_key(m)), 7 + 64);
    snprintf(key, sizeof(key), "%s", smtpx_inbox_key(m));
    ck_assert_int_eq(smtpx_inbox_processed(m, SMTPX_INBOX_ALL), 0);
    smtpx_inbox_msg_free(m);
    ck_assert_int_eq(deliver(&g, "x@y", ONE, NULL, a2, 3, &m), 0);
    ck_assert_str_eq(smtpx_inbox_key(m), key);
    ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL),
                     SMTPX_INBOX_DUPLICATE);
    smtpx_inbox_msg_free(m);
    ck_assert_int_eq(deliver(&g, "x@y", ONE, NULL, b, 100, &m), 0);
    ck_assert_str_ne(smtpx_inbox_key(m), key);
    ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL), SMTPX_INBOX_NEW);
    smtpx_inbox_msg_free(m);
    /* A message that ends inside its header is hashed whole too. */
    ck_assert_int_eq(deliver(&g, "x@y", ONE, NULL, "Subject: cut", 4, &m), 0);
    ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL), SMTPX_INBOX_NEW);
    smtpx_inbox_msg_free(m);
    rig_close(&g);

    /* Accepted without suppression. */
    rig_open(&g, SMTPX_INBOX_ACK_ALWAYS, SMTPX_INBOX_NOID_ACCEPT, NULL, NULL);
    {
        int k;
        ack acks[4];
        for (k = 0; k < 2; k++) {
            ck_assert_int_eq(deliver(&g, "x@y", ONE, NULL, a1, 7, &m), 0);
            ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL),
                             SMTPX_INBOX_NEW);
            ck_assert_str_eq(smtpx_inbox_key(m), "");
            ck_assert_int_eq(smtpx_inbox_processed(m, SMTPX_INBOX_ALL), 0);
            smtpx_inbox_msg_free(m);
        }
        ck_assert_int_eq(read_acks(acks, 4), 2);
        ck_assert_str_eq(acks[0].to, "x@y");
        ck_assert_str_eq(acks[0].id, "");
    }
    rig_close(&g);
}
END_TEST

/* Keys per recipient: one processed, the other not (a crash between): the
 * resend is a duplicate for one, a redelivery for the other. */
START_TEST(test_per_rcpt)
{
    rig g;
    smtpx_inbox_msg *m;
    ack a[4];

    rig_open(&g, SMTPX_INBOX_PER_RCPT, SMTPX_INBOX_NOID_REFUSE, NULL, NULL);
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", TWO, NULL, ORDER, 50, &m), 0);
    ck_assert_int_eq(smtpx_inbox_verdict(m, 0), SMTPX_INBOX_NEW);
    ck_assert_int_eq(smtpx_inbox_verdict(m, 1), SMTPX_INBOX_NEW);
    ck_assert_int_eq(smtpx_inbox_processed(m, 0), 0);
    ck_assert_int_eq(smtpx_inbox_processed(m, 2), SMTPX_ERR_INVALID_ARGUMENT);
    smtpx_inbox_msg_free(m);
    ck_assert_int_eq(read_acks(a, 4), 1);
    ck_assert_str_eq(a[0].rcpt, "stock@depot.example");

    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", TWO, NULL, ORDER, 50, &m), 0);
    ck_assert_int_eq(smtpx_inbox_verdict(m, 0), SMTPX_INBOX_DUPLICATE);
    ck_assert_int_eq(smtpx_inbox_verdict(m, 1), SMTPX_INBOX_REDELIVERY);
    ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL),
                     SMTPX_INBOX_REDELIVERY);
    ck_assert_int_eq(read_acks(a, 4), 1); /* stock's again */
    ck_assert_str_eq(a[0].rcpt, "stock@depot.example");
    ck_assert_int_eq(smtpx_inbox_processed(m, SMTPX_INBOX_ALL), 0);
    smtpx_inbox_msg_free(m);
    ck_assert_int_eq(read_acks(a, 4), 1); /* audit's */
    ck_assert_str_eq(a[0].rcpt, "audit@depot.example");

    /* The domain's case does not make another key. */
    {
        static const char *const upper[] = {"stock@DEPOT.example", NULL};
        ck_assert_int_eq(
            deliver(&g, "orders@shop.example", upper, NULL, ORDER, 50, &m), 0);
        ck_assert_int_eq(smtpx_inbox_verdict(m, 0), SMTPX_INBOX_DUPLICATE);
        smtpx_inbox_msg_free(m);
    }
    rig_close(&g);
}
END_TEST

/* One session has the key: another with the same key meanwhile is told to
 * come back later, never handed the message at the same time. */
START_TEST(test_in_progress)
{
    rig g;
    smtpx_inbox_msg *m1, *m2;

    rig_open(&g, 0, SMTPX_INBOX_NOID_REFUSE, NULL, NULL);
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", ONE, NULL, ORDER, 10, &m1), 0);
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", ONE, NULL, ORDER, 10, &m2),
        SMTPX_ERR_IN_PROGRESS);
    smtpx_inbox_msg_free(m2);
    ck_assert_int_eq(smtpx_inbox_processed(m1, SMTPX_INBOX_ALL), 0);
    smtpx_inbox_msg_free(m1);
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", ONE, NULL, ORDER, 10, &m2), 0);
    ck_assert_int_eq(smtpx_inbox_verdict(m2, SMTPX_INBOX_ALL),
                     SMTPX_INBOX_DUPLICATE);
    smtpx_inbox_msg_free(m2);
    rig_close(&g);
}
END_TEST

/* Whom acknowledgements go to: the Disposition-Notification-To; the sender
 * under ACK_ALWAYS; nobody for the null sender without one; a DSN for
 * NOTIFY=SUCCESS under DSN_SUCCESS. */
START_TEST(test_ack_addresses)
{
    static const char nodnt[] = "Message-ID: <n@x>\r\n\r\nhi\r\n";
    static const unsigned success[] = {SMTPX_DSN_NOTIFY_SUCCESS |
                                           SMTPX_DSN_NOTIFY_FAILURE,
                                       SMTPX_DSN_NOTIFY_NEVER};
    rig g;
    smtpx_inbox_msg *m;
    ack a[8];
    int n, i, mdn = 0, dsn = 0;

    rig_open(&g, 0, SMTPX_INBOX_NOID_REFUSE, NULL, NULL);
    ck_assert_int_eq(deliver(&g, "s@x", ONE, NULL, nodnt, 5, &m), 0);
    ck_assert_int_eq(smtpx_inbox_processed(m, SMTPX_INBOX_ALL), 0);
    smtpx_inbox_msg_free(m);
    ck_assert_int_eq(read_acks(a, 8), 0); /* not asked for */
    rig_close(&g);

    rig_open(&g, SMTPX_INBOX_ACK_ALWAYS | SMTPX_INBOX_DSN_SUCCESS,
             SMTPX_INBOX_NOID_REFUSE, NULL, NULL);
    ck_assert_int_eq(deliver(&g, "s@x", ONE, NULL, nodnt, 5, &m), 0);
    ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL),
                     SMTPX_INBOX_DUPLICATE);
    smtpx_inbox_msg_free(m);
    ck_assert_int_eq(read_acks(a, 8), 1);
    ck_assert_str_eq(a[0].to, "s@x");
    ck_assert_int_eq(
        deliver(&g, "", ONE, NULL, "Message-ID: <null@x>\r\n\r\nhi\r\n", 5, &m),
        0);
    ck_assert_int_eq(smtpx_inbox_processed(m, SMTPX_INBOX_ALL), 0);
    smtpx_inbox_msg_free(m);
    ck_assert_int_eq(read_acks(a, 8), 0);
    /* Two recipients, one asked for a DSN: an MDN to the DNT for each,
     * and one DSN to the sender. */
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", TWO, success, ORDER, 64, &m), 0);
    ck_assert_int_eq(smtpx_inbox_processed(m, SMTPX_INBOX_ALL), 0);
    smtpx_inbox_msg_free(m);
    n = read_acks(a, 8);
    ck_assert_int_eq(n, 3);
    for (i = 0; i < n; i++) {
        if (a[i].kind == SMTPX_REPORT_MDN) {
            mdn++;
            ck_assert_str_eq(a[i].to, "acks@shop.example");
        } else {
            dsn++;
            ck_assert_str_eq(a[i].to, "orders@shop.example");
            ck_assert_str_eq(a[i].envid, "order-7");
            ck_assert_str_eq(a[i].id, "order-7@shop.example");
            ck_assert_str_eq(a[i].rcpt, "stock@depot.example");
            ck_assert_str_eq(a[i].action, "delivered");
        }
    }
    ck_assert_int_eq(mdn, 2);
    ck_assert_int_eq(dsn, 1);
    rig_close(&g);
}
END_TEST

/* The header in two pieces split at every point: the same key. */
START_TEST(test_splits)
{
    rig g;
    size_t i;

    rig_open(&g, 0, SMTPX_INBOX_NOID_HASH, NULL, NULL);
    for (i = 0; i <= sizeof(ORDER) - 1; i++) {
        smtpx_inbox_msg *m;
        ck_assert_int_eq(
            deliver(&g, "orders@shop.example", ONE, NULL, ORDER, i, &m), 0);
        ck_assert_str_eq(smtpx_inbox_key(m), "order-7@shop.example");
        ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL),
                         i == 0 ? SMTPX_INBOX_NEW : SMTPX_INBOX_REDELIVERY);
        smtpx_inbox_msg_free(m);
    }
    rig_close(&g);
}
END_TEST

/* The durable writes of a message: BEGUN and DONE (one fdatasync each),
 * and the acknowledgement's commit (the file and the directory). */
START_TEST(test_durable_writes)
{
    const smtpx__fs *fs = seam_reset();
    rig g;
    smtpx_inbox_msg *m;
    long s0;

    rig_open(&g, 0, SMTPX_INBOX_NOID_REFUSE, fs, NULL);
    s0 = sm.syncs;
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", ONE, NULL, ORDER, 9, &m), 0);
    ck_assert_int_eq(sm.syncs - s0, 1); /* BEGUN */
    ck_assert_int_eq(smtpx_inbox_processed(m, SMTPX_INBOX_ALL), 0);
    ck_assert_int_eq(sm.syncs - s0, 4); /* DONE, the MDN's file and dir */
    smtpx_inbox_msg_free(m);
    /* A duplicate: only the acknowledgement again. */
    s0 = sm.syncs;
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", ONE, NULL, ORDER, 9, &m), 0);
    ck_assert_int_eq(sm.syncs - s0, 2);
    smtpx_inbox_msg_free(m);

    /* The store cannot record BEGUN: nothing is handed over. */
    sm.fail_write = sm.writes + 1;
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", ONE, NULL, OTHER, 9, &m),
        SMTPX_ERR_NOSPACE);
    ck_assert_ptr_null(smtpx_inbox_key(m));
    smtpx_inbox_msg_free(m);
    /* ... it can record BEGUN but not DONE: processed fails (answer 451),
     * and the next time is a redelivery. */
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", ONE, NULL, OTHER, 9, &m), 0);
    ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL), SMTPX_INBOX_NEW);
    sm.fail_write = sm.writes + 1;
    ck_assert_int_eq(smtpx_inbox_processed(m, SMTPX_INBOX_ALL),
                     SMTPX_ERR_NOSPACE);
    smtpx_inbox_msg_free(m);
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", ONE, NULL, OTHER, 9, &m), 0);
    ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL),
                     SMTPX_INBOX_REDELIVERY);
    /* The acknowledgement cannot be committed (its file's sync fails):
     * processed still succeeds (the resend brings it again), and the
     * failure is counted. */
    sm.fail_sync = sm.syncs + 2;
    ck_assert_int_eq(smtpx_inbox_processed(m, SMTPX_INBOX_ALL), 0);
    smtpx_inbox_msg_free(m);
    {
        smtpx_inbox_stats st;
        memset(&st, 0, sizeof(st));
        st.size = sizeof(st);
        smtpx_inbox_stats_get(g.ib, &st);
        ck_assert_uint_eq(st.ack_errors, 1);
    }
    /* The store's sync fails: nothing more is taken until it is opened
     * again (after which it knows what the disk holds). */
    sm.fail_sync = sm.syncs + 1;
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", ONE, NULL, ORDER_B, 9, &m),
        SMTPX_ERR_IO);
    smtpx_inbox_msg_free(m);
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", ONE, NULL, ORDER_C, 9, &m),
        SMTPX_ERR_IO);
    smtpx_inbox_msg_free(m);
    rig_close(&g);
    rig_open(&g, 0, SMTPX_INBOX_NOID_REFUSE, fs, NULL);
    ck_assert_int_eq(
        deliver(&g, "orders@shop.example", ONE, NULL, ORDER_C, 9, &m), 0);
    ck_assert_int_eq(smtpx_inbox_verdict(m, SMTPX_INBOX_ALL), SMTPX_INBOX_NEW);
    smtpx_inbox_msg_free(m);
    rig_close(&g);
}
END_TEST

START_TEST(test_args)
{
    rig g;
    smtpx_inbox_opts o;
    smtpx_inbox *ib;
    smtpx_inbox_msg *m;

    rig_open(&g, 0, SMTPX_INBOX_NOID_REFUSE, NULL, NULL);
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    ck_assert_int_eq(smtpx_inbox_new(&ib, &o), SMTPX_ERR_INVALID_ARGUMENT);
    o.dedupe = g.d;
    ck_assert_int_eq(smtpx_inbox_new(&ib, &o), 0);
    smtpx_inbox_free(ib);
    o.acks = g.q; /* acks need a From and a host name */
    ck_assert_int_eq(smtpx_inbox_new(&ib, &o), SMTPX_ERR_INVALID_ARGUMENT);
    o.ack_from = "no-at-sign";
    o.hostname = "h";
    ck_assert_int_eq(smtpx_inbox_new(&ib, &o), SMTPX_ERR_INVALID_ARGUMENT);
    o.ack_from = "a@b";
    o.no_id = SMTPX_INBOX_NOID_COUNT;
    ck_assert_int_eq(smtpx_inbox_new(&ib, &o), SMTPX_ERR_INVALID_ARGUMENT);
    o.no_id = 0;
    o.flags = 1u << 9;
    ck_assert_int_eq(smtpx_inbox_new(&ib, &o), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_inbox_new(&ib, NULL), SMTPX_ERR_INVALID_ARGUMENT);

    ck_assert_int_eq(smtpx_inbox_begin(g.ib, "a\nb", NULL, &m),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_inbox_begin(g.ib, "a@b", NULL, &m), 0);
    ck_assert_int_eq(smtpx_inbox_write(m, "x", 1), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_inbox_check(m), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_inbox_add_rcpt(m, "", 0, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_inbox_add_rcpt(m, "c@d", 16, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_inbox_add_rcpt(m, "c@d", 0, NULL), 0);
    ck_assert_int_eq(smtpx_inbox_write(m, "Message-ID: <q@r>\r\n\r\n", 21), 0);
    ck_assert_int_eq(smtpx_inbox_add_rcpt(m, "e@f", 0, NULL),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_inbox_verdict(m, 0), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_inbox_check(m), 0);
    ck_assert_int_eq(smtpx_inbox_check(m), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_inbox_write(m, "x", 1), SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_inbox_verdict(m, 1), SMTPX_ERR_INVALID_ARGUMENT);
    smtpx_inbox_msg_free(m);
    smtpx_inbox_msg_free(NULL);
    smtpx_inbox_free(NULL);
    ck_assert_str_eq(smtpx_inbox_verdict_name(SMTPX_INBOX_REDELIVERY),
                     "redelivery");
    ck_assert_str_eq(smtpx_inbox_verdict_name(0), "?");
    rig_close(&g);
}
END_TEST

START_TEST(test_alloc_sweep)
{
    long n;
    int ok = 0;

    for (n = 1; n < 2000 && !ok; n++) {
        failmalloc fm;
        smtpx_mem mem;
        rig g;
        smtpx_inbox_msg *m = NULL;
        int rc, k;

        memset(&fm, 0, sizeof(fm));
        mem = failmalloc_mem(&fm);
        rig_open(&g, SMTPX_INBOX_PER_RCPT | SMTPX_INBOX_DSN_SUCCESS,
                 SMTPX_INBOX_NOID_HASH, NULL, &mem);
        fm.fail_at = n;
        ok = 1;
        for (k = 0; k < 2 && ok; k++) {
            static const unsigned notify[] = {SMTPX_DSN_NOTIFY_SUCCESS, 0};
            size_t i;
            rc = smtpx_inbox_begin(g.ib, "orders@shop.example", "e", &m);
            for (i = 0; rc == 0 && TWO[i] != NULL; i++)
                rc = smtpx_inbox_add_rcpt(m, TWO[i], notify[i], NULL);
            if (rc == 0)
                rc = smtpx_inbox_write(m, ORDER, 49);
            if (rc == 0)
                rc = smtpx_inbox_write(m, ORDER + 49, strlen(ORDER + 49));
            if (rc == 0)
                rc = smtpx_inbox_check(m);
            if (rc == 0)
                rc = smtpx_inbox_processed(m, SMTPX_INBOX_ALL);
            if (rc != 0) {
                ck_assert_int_eq(rc, SMTPX_ERR_NOMEM);
                ok = 0;
            }
            smtpx_inbox_msg_free(m);
            m = NULL;
        }
        rig_close(&g);
        ck_assert_int_eq(fm.live, 0);
        unlink(store);
    }
    ck_assert(ok);
}
END_TEST

Suite *suite_inbox(void)
{
    Suite *s = suite_create("inbox");
    TCase *tc = tcase_create("inbox");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_once_then_duplicate);
    tcase_add_test(tc, test_redelivery_across_restart);
    tcase_add_test(tc, test_no_message_id);
    tcase_add_test(tc, test_per_rcpt);
    tcase_add_test(tc, test_in_progress);
    tcase_add_test(tc, test_ack_addresses);
    tcase_add_test(tc, test_splits);
    tcase_add_test(tc, test_durable_writes);
    tcase_add_test(tc, test_args);
    tcase_add_test(tc, test_alloc_sweep);
    suite_add_tcase(s, tc);
    return s;
}
