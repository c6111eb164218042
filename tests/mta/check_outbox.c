/*
 * check_outbox - the sending side: a message given a Message-ID, a
 * Disposition-Notification-To, an ENVID and ORCPTs, kept and queued; the
 * whole loop in one process (outbox -> queue -> inbox -> acknowledgement
 * queue -> report parser -> outbox) with MDNs and DSNs; the state machine
 * on a clock of the test's (waiting, resent with back-off to the waiting
 * recipients only, acknowledged, failed, given up with a callback and a
 * report); "relayed" and "delayed" DSNs that acknowledge nothing;
 * repeated and stray acknowledgements; reopening (what was saved
 * and what was not); a commit whose second half fails; the durable writes
 * counted, acknowledgements durable and their syncs shared by threads;
 * the list; the delivery engine running the deadlines and handing its own
 * results to the outbox (a local delivery acknowledges, a 5xx fails,
 * "relayed" says nothing, no report of its own where the outbox asked
 * for it); copies still queued cancelled when a message is finished, also
 * after a restart; an allocation sweep.
 */
#define _DEFAULT_SOURCE /* usleep */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libsmtpx/ack.h>
#include <libsmtpx/posix.h>

#include "harness/failmalloc.h"
#include "mta/outbox.h"
#include "mta/queue.h"
#include "suites.h"

static char dir[128], qdir[160], obdir[160], acks[160], store[160];

static void setup(void)
{
    char cmd[400];

    snprintf(dir, sizeof(dir), "/tmp/check-outbox-%ld", (long)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(qdir, sizeof(qdir), "%s/queue", dir);
    snprintf(obdir, sizeof(obdir), "%s/outbox", dir);
    snprintf(acks, sizeof(acks), "%s/acks", dir);
    snprintf(store, sizeof(store), "%s/seen", dir);
}

static void teardown(void)
{
    char cmd[400];
    int rc;

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    rc = system(cmd);
    (void)rc;
}

/* ---- a seam: the clock, sync counts, a rename that fails ----------------- */

static struct {
    int64_t now;
    long nsec; /* the clock's fraction of a second */
    long syncs;
    long fail_rename; /* the Nth rename fails; 0: never */
    long renames;
    long fail_fsync; /* the Nth fsync fails; 0: never */
    long fsyncs;
    volatile int gate;     /* the next fsync waits for gate_unlinks */
    volatile long unlinks; /* of files in the outbox's msg/ */
    long gate_unlinks;
} sm;

static int s_clock(struct timespec *ts)
{
    ts->tv_sec = (time_t)sm.now;
    ts->tv_nsec = sm.nsec;
    return 0;
}

static int s_fsync(int fd)
{
    int i;

    if (__atomic_exchange_n(&sm.gate, 0, __ATOMIC_SEQ_CST))
        /* Bounded: the other threads' removals come meanwhile. */
        for (i = 0; i < 2000 && __atomic_load_n(&sm.unlinks, __ATOMIC_SEQ_CST) <
                                    sm.gate_unlinks;
             i++)
            usleep(5000);
    __atomic_add_fetch(&sm.syncs, 1, __ATOMIC_SEQ_CST);
    if (++sm.fsyncs == sm.fail_fsync) {
        errno = EIO;
        return -1;
    }
    return fsync(fd);
}

static int s_unlink(const char *path)
{
    if (strstr(path, "/outbox/msg/") != NULL)
        __atomic_add_fetch(&sm.unlinks, 1, __ATOMIC_SEQ_CST);
    return unlink(path);
}

static int s_fdatasync(int fd)
{
    sm.syncs++;
    return fdatasync(fd);
}

static int s_rename(const char *a, const char *b)
{
    if (++sm.renames == sm.fail_rename) {
        errno = EIO;
        return -1;
    }
    return rename(a, b);
}

static smtpx__fs seam;

static const smtpx__fs *seam_reset(void)
{
    memset(&sm, 0, sizeof(sm));
    sm.now = 1800000000;
    seam = *smtpx__maildir_fs_default();
    seam.clock = s_clock;
    seam.fsync = s_fsync;
    seam.fdatasync = s_fdatasync;
    seam.rename = s_rename;
    seam.unlink = s_unlink;
    return &seam;
}

/* ---- events -------------------------------------------------------------- */

typedef struct events {
    int n;
    char log[64][160];
} events;

static void on_event(smtpx_outbox *ob, const smtpx_outbox_event *ev, void *ud)
{
    events *e = ud;

    (void)ob;
    if (e->n < 64)
        snprintf(e->log[e->n++], sizeof(e->log[0]), "%s %s %s %u",
                 ev->message_id, ev->rcpt, smtpx_outbox_state_name(ev->state),
                 ev->sends);
}

/* ---- the set-up ---------------------------------------------------------- */

typedef struct rig {
    smtpx_queue *q;
    smtpx_outbox *ob;
    events ev;
} rig;

static void rig_open(rig *g, unsigned flags, const smtpx_mem *mem)
{
    const smtpx__fs *fs = &seam;
    smtpx_outbox_opts o;

    ck_assert_int_eq(smtpx__queue_open_fs(&g->q, qdir, NULL, fs), 0);
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.flags = flags;
    o.queue = g->q;
    o.hostname = "shop.example";
    o.ack_address = "acks@shop.example";
    o.ack_timeout_s = 600;
    o.ack_timeout_max_s = 1800;
    o.max_resends = 3;
    o.report_to = "ops@shop.example";
    o.on_event = on_event;
    o.event_data = &g->ev;
    o.mem = mem;
    ck_assert_int_eq(smtpx__outbox_open_fs(&g->ob, obdir, &o, fs), 0);
}

static void rig_close(rig *g)
{
    smtpx_outbox_free(g->ob);
    smtpx_queue_free(g->q);
}

static const char ORDER[] = "From: Orders <orders@shop.example>\r\n"
                            "To: stock@depot.example\r\n"
                            "Subject: order 7\r\n"
                            "\r\n"
                            "10 crates of apples\r\n";

static const char *const ONE[] = {"stock@depot.example", NULL};
static const char *const TWO[] = {"stock@depot.example", "audit@depot.example",
                                  NULL};

static int send_msg(rig *g, const char *const *rcpts, const char *msg, char *id)
{
    smtpx_queue_env env;
    smtpx_outbox_msg *m;
    size_t i, len = strlen(msg);
    int rc;

    memset(&env, 0, sizeof(env));
    env.size = sizeof(env);
    env.from = "orders@shop.example";
    rc = smtpx_outbox_begin(g->ob, &env, &m);
    if (rc != 0)
        return rc;
    for (i = 0; rcpts[i] != NULL && rc == 0; i++)
        rc = smtpx_outbox_add_rcpt(m, rcpts[i], 0, NULL);
    /* In two pieces, the first inside the header. */
    if (rc == 0)
        rc = smtpx_outbox_write(m, msg, 20);
    if (rc == 0)
        rc = smtpx_outbox_write(m, msg + 20, len - 20);
    if (rc != 0) {
        smtpx_outbox_abort(m);
        return rc;
    }
    return smtpx_outbox_commit(m, id, 256);
}

/* ---- reading a queue ----------------------------------------------------- */

typedef struct qmsg {
    char from[128];
    char envid[300];
    char rcpt[4][300]; /* "notify orcpt addr" */
    int nrcpts;
    char *content;
    size_t len;
} qmsg;

/* take - read and remove every message of the queue in directory d */
static int take(const char *d, qmsg *out, int max)
{
    char mdir[300], path[600];
    struct dirent *de;
    DIR *dp;
    int n = 0;

    snprintf(mdir, sizeof(mdir), "%s/msg", d);
    dp = opendir(mdir);
    if (dp == NULL)
        return 0;
    while ((de = readdir(dp)) != NULL && n < max) {
        char *buf = malloc(1 << 20), *p, *end;
        FILE *fp;
        size_t len;
        if (de->d_name[0] == '.') {
            free(buf);
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", mdir, de->d_name);
        fp = fopen(path, "rb");
        len = fread(buf, 1, (1 << 20) - 1, fp);
        fclose(fp);
        unlink(path);
        snprintf(path, sizeof(path), "%s/state/%s", d, de->d_name);
        unlink(path);
        buf[len] = '\0';
        memset(&out[n], 0, sizeof(out[n]));
        end = strstr(buf, "\n.\n");
        ck_assert_ptr_nonnull(end);
        for (p = buf; p < end; p = strchr(p, '\n') + 1) {
            int l = (int)strcspn(p, "\n");
            if (p[0] == 'F')
                snprintf(out[n].from, sizeof(out[n].from), "%.*s", l - 2,
                         p + 2);
            else if (p[0] == 'E')
                snprintf(out[n].envid, sizeof(out[n].envid), "%.*s", l - 2,
                         p + 2);
            else if (p[0] == 'R' && out[n].nrcpts < 4)
                snprintf(out[n].rcpt[out[n].nrcpts++], 300, "%.*s", l - 2,
                         p + 2);
        }
        out[n].len = len - (size_t)(end + 3 - buf);
        memmove(buf, end + 3, out[n].len + 1);
        out[n].content = buf;
        n++;
    }
    closedir(dp);
    return n;
}

static void release_all(qmsg *m, int n)
{
    int i;

    for (i = 0; i < n; i++)
        free(m[i].content);
}

/* ack_with - parse a report and give it to the outbox */
static int ack_with(rig *g, const char *msg, size_t len, const char *to)
{
    smtpx_report *r;
    int rc;

    ck_assert_int_eq(smtpx_report_new(&r, NULL), 0);
    ck_assert_int_eq(smtpx_report_feed(r, msg, len), 0);
    ck_assert_int_eq(smtpx_report_end(r), 0);
    rc = smtpx_outbox_ack(g->ob, r, to);
    smtpx_report_free(r);
    return rc;
}

/* mdn - an MDN for message id and recipient, as a system that is not ours
 * may write one (LF line ends, comments) */
static const char *mdn(const char *id, const char *rcpt, const char *disp)
{
    static char buf[2048];

    snprintf(buf, sizeof(buf),
             "From: depot@depot.example\nContent-Type: multipart/report;"
             " report-type=disposition-notification; boundary=\"B\"\n\n--B\n"
             "Content-Type: text/plain\n\nok\n--B\nContent-Type: message/"
             "disposition-notification\n\nReporting-UA: depot.example\n"
             "Final-Recipient: rfc822; %s\nOriginal-Message-ID: <%s>"
             " (the order)\nDisposition: automatic-action/"
             "MDN-sent-automatically; %s\n--B--\n",
             rcpt, id, disp);
    return buf;
}

/* ---- tests --------------------------------------------------------------- */

/* What goes out: the header completed, the envelope asking for DSNs. */
START_TEST(test_commit_shapes)
{
    rig g;
    qmsg out[4];
    char id[256], want[400];
    const char *hdr_end;

    seam_reset();
    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    ck_assert_int_eq(send_msg(&g, ONE, ORDER, id), 0);
    ck_assert_ptr_nonnull(strstr(id, "@shop.example"));
    ck_assert_int_eq(take(qdir, out, 4), 1);
    ck_assert_str_eq(out[0].from, "orders@shop.example");
    /* ENVID: the Message-ID (xtext); NOTIFY=SUCCESS,FAILURE (6); ORCPT. */
    ck_assert_str_eq(out[0].envid, id);
    ck_assert_str_eq(out[0].rcpt[0],
                     "6 rfc822;stock@depot.example stock@depot.example");
    snprintf(want, sizeof(want),
             "Message-ID: <%s>\r\nDisposition-Notification-To: "
             "<acks@shop.example>\r\nFrom: Orders",
             id);
    ck_assert_int_eq(strncmp(out[0].content, want, strlen(want)), 0);
    hdr_end = strstr(out[0].content, "\r\n\r\n10 crates of apples\r\n");
    ck_assert_ptr_nonnull(hdr_end);
    ck_assert_uint_eq(smtpx_outbox_count(g.ob), 1);
    ck_assert_int_eq(smtpx_outbox_state(g.ob, id), SMTPX_OUTBOX_WAITING);
    ck_assert_int_eq(g.ev.n, 1);
    snprintf(want, sizeof(want), "%s stock@depot.example waiting 1", id);
    ck_assert_str_eq(g.ev.log[0], want);
    release_all(out, 1);

    /* A message with its own Message-ID, DNT, trace fields and ENVID keeps
     * them: nothing is added, the trace fields stay on top. */
    {
        static const char own[] =
            "Received: from a by b\r\n\tfolded\r\n"
            "Message-ID: <mine@shop.example>\r\n"
            "Disposition-Notification-To: back@shop.example\r\n\r\nx\r\n";
        smtpx_queue_env env;
        smtpx_outbox_msg *m;
        memset(&env, 0, sizeof(env));
        env.size = sizeof(env);
        env.from = "orders@shop.example";
        env.envid = "E+2B1";
        ck_assert_int_eq(smtpx_outbox_begin(g.ob, &env, &m), 0);
        ck_assert_int_eq(smtpx_outbox_add_rcpt(m, "a@depot.example",
                                               SMTPX_DSN_NOTIFY_NEVER,
                                               "rfc822;A@depot.example"),
                         0);
        ck_assert_int_eq(smtpx_outbox_write(m, own, sizeof(own) - 1), 0);
        ck_assert_int_eq(smtpx_outbox_commit(m, id, sizeof(id)), 0);
        ck_assert_str_eq(id, "mine@shop.example");
        ck_assert_int_eq(take(qdir, out, 4), 1);
        ck_assert_str_eq(out[0].envid, "E+2B1");
        ck_assert_str_eq(out[0].rcpt[0],
                         "6 rfc822;A@depot.example a@depot.example");
        ck_assert_str_eq(out[0].content, own);
        release_all(out, 1);
    }
    rig_close(&g);
}
END_TEST

/* The loop in one process: outbox -> inbox -> acknowledgements -> outbox,
 * by MDN and by DSN. */
START_TEST(test_full_loop)
{
    static const int flags[] = {SMTPX_INBOX_ACK_ALWAYS,
                                SMTPX_INBOX_DSN_SUCCESS};
    int k;

    for (k = 0; k < 2; k++) {
        rig g;
        smtpx_dedupe *d;
        smtpx_queue *aq;
        smtpx_inbox *ib;
        smtpx_inbox_opts io;
        smtpx_inbox_msg *im;
        qmsg out[4], ack[8];
        char id[256];
        int n, i;

        seam_reset();
        memset(&g, 0, sizeof(g));
        rig_open(&g, k == 0 ? SMTPX_OUTBOX_NO_DSN : SMTPX_OUTBOX_NO_MDN, NULL);
        ck_assert_int_eq(smtpx_dedupe_open(&d, store, NULL), 0);
        ck_assert_int_eq(smtpx_queue_open(&aq, acks, NULL), 0);
        memset(&io, 0, sizeof(io));
        io.size = sizeof(io);
        io.flags = (unsigned)flags[k];
        io.dedupe = d;
        io.acks = aq;
        io.ack_from = "depot@depot.example";
        io.hostname = "depot.example";
        ck_assert_int_eq(smtpx_inbox_new(&ib, &io), 0);

        ck_assert_int_eq(send_msg(&g, TWO, ORDER, id), 0);
        ck_assert_int_eq(take(qdir, out, 4), 1);
        /* The receiving side, as a server would feed it. */
        ck_assert_int_eq(
            smtpx_inbox_begin(ib, out[0].from,
                              out[0].envid[0] ? out[0].envid : NULL, &im),
            0);
        for (i = 0; i < out[0].nrcpts; i++) {
            unsigned notify = (unsigned)atoi(out[0].rcpt[i]);
            char *orcpt = strchr(out[0].rcpt[i], ' ') + 1;
            char *addr = strchr(orcpt, ' ');
            *addr++ = '\0';
            ck_assert_int_eq(
                smtpx_inbox_add_rcpt(im, addr, notify,
                                     strcmp(orcpt, "-") ? orcpt : NULL),
                0);
        }
        ck_assert_int_eq(smtpx_inbox_write(im, out[0].content, out[0].len), 0);
        ck_assert_int_eq(smtpx_inbox_check(im), 0);
        ck_assert_str_eq(smtpx_inbox_key(im), id);
        ck_assert_int_eq(smtpx_inbox_processed(im, SMTPX_INBOX_ALL), 0);
        smtpx_inbox_msg_free(im);
        release_all(out, 1);

        /* Two MDNs to the sender (ack-always) or one DSN for both. */
        n = take(acks, ack, 8);
        ck_assert_int_eq(n, k == 0 ? 2 : 1);
        for (i = 0; i < n; i++) {
            ck_assert_str_eq(ack[i].from, "");
            ck_assert_int_eq(ack_with(&g, ack[i].content, ack[i].len, NULL),
                             k == 0 ? 1 : 2);
        }
        ck_assert_uint_eq(smtpx_outbox_count(g.ob), 0);
        ck_assert_int_eq(smtpx_outbox_state(g.ob, id), SMTPX_OUTBOX_ACKED);
        /* The same acknowledgement again: known, nothing changes. */
        ck_assert_int_eq(ack_with(&g, ack[0].content, ack[0].len, NULL), 0);
        {
            smtpx_outbox_stats st;
            memset(&st, 0, sizeof(st));
            st.size = sizeof(st);
            smtpx_outbox_stats_get(g.ob, &st);
            ck_assert_uint_eq(st.sent, 1);
            ck_assert_uint_eq(st.acked, 2);
            ck_assert_uint_eq(st.repeats, 1);
            ck_assert_uint_eq(st.waiting, 0);
        }
        release_all(ack, n);
        smtpx_inbox_free(ib);
        smtpx_queue_free(aq);
        smtpx_dedupe_free(d);
        rig_close(&g);
        teardown();
        setup();
    }
}
END_TEST

/* Resent unchanged with back-off to the recipients still waiting, then
 * given up: events, a report, history. */
START_TEST(test_resend_and_give_up)
{
    rig g;
    qmsg out[4], first;
    char id[256], want[400];
    int i;

    seam_reset();
    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    ck_assert_int_eq(send_msg(&g, TWO, ORDER, id), 0);
    ck_assert_int_eq(take(qdir, &first, 1), 1);
    ck_assert_int_eq(smtpx_outbox_next(g.ob), sm.now + 600);
    ck_assert_int_eq(smtpx_outbox_run(g.ob), 0); /* not yet */
    /* audit acknowledges; stock does not. */
    ck_assert_int_eq(
        ack_with(&g, mdn(id, "audit@depot.example", "processed"),
                 strlen(mdn(id, "audit@depot.example", "processed")), NULL),
        1);
    ck_assert_int_eq(smtpx_outbox_state(g.ob, id), SMTPX_OUTBOX_WAITING);
    /* Deadlines: 600, then 1200, then 1800 (the cap), then 1800. */
    for (i = 0; i < 3; i++) {
        int64_t step = i == 0 ? 600 : i == 1 ? 1200 : 1800;
        sm.now = smtpx_outbox_next(g.ob) - 1;
        ck_assert_int_eq(smtpx_outbox_run(g.ob), 0);
        sm.now += 1;
        ck_assert_int_eq(smtpx_outbox_run(g.ob), 1);
        ck_assert_int_eq(smtpx_outbox_next(g.ob),
                         sm.now + (i == 0 ? 1200 : 1800));
        (void)step;
        ck_assert_int_eq(take(qdir, out, 4), 1);
        /* Unchanged, to the one that waits. */
        ck_assert_str_eq(out[0].content, first.content);
        ck_assert_int_eq(out[0].nrcpts, 1);
        ck_assert_ptr_nonnull(strstr(out[0].rcpt[0], " stock@depot.example"));
        release_all(out, 1);
    }
    /* Three resends done: the next deadline gives up. */
    sm.now = smtpx_outbox_next(g.ob);
    ck_assert_int_eq(smtpx_outbox_run(g.ob), 1);
    ck_assert_uint_eq(smtpx_outbox_count(g.ob), 0);
    ck_assert_int_eq(smtpx_outbox_state(g.ob, id), SMTPX_OUTBOX_GAVE_UP);
    ck_assert_int_eq(take(qdir, out, 4), 1); /* the report */
    ck_assert_str_eq(out[0].from, "");
    ck_assert_ptr_nonnull(strstr(out[0].rcpt[0], " ops@shop.example"));
    ck_assert_ptr_nonnull(strstr(out[0].content, "sent 4 times"));
    ck_assert_ptr_nonnull(strstr(out[0].content, "  <stock@depot.example>"));
    ck_assert_ptr_null(strstr(out[0].content, "  <audit@depot.example>"));
    release_all(out, 1);
    release_all(&first, 1);
    /* waiting x2, audit acknowledged, stock resent x3, stock given up. */
    ck_assert_int_eq(g.ev.n, 7);
    snprintf(want, sizeof(want), "%s audit@depot.example acknowledged 1", id);
    ck_assert_str_eq(g.ev.log[2], want);
    snprintf(want, sizeof(want), "%s stock@depot.example waiting 4", id);
    ck_assert_str_eq(g.ev.log[5], want);
    snprintf(want, sizeof(want), "%s stock@depot.example unacknowledged 4", id);
    ck_assert_str_eq(g.ev.log[6], want);
    /* A late acknowledgement of it is still known as ours. */
    ck_assert_int_eq(
        ack_with(&g, mdn(id, "stock@depot.example", "processed"),
                 strlen(mdn(id, "stock@depot.example", "processed")), NULL),
        0);
    rig_close(&g);
}
END_TEST

/* Deadlines are whole seconds and never come sooner than the wait: a
 * send at .9 of a second waits until the whole second after the wait. */
START_TEST(test_deadline_rounds_up)
{
    rig g;
    qmsg out[4];
    char id[256];
    int64_t t0;

    seam_reset();
    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    t0 = sm.now;
    sm.nsec = 900000000;
    ck_assert_int_eq(send_msg(&g, ONE, ORDER, id), 0);
    release_all(out, take(qdir, out, 4));
    ck_assert_int_eq(smtpx_outbox_next(g.ob), t0 + 1 + 600);
    /* 600 seconds after t0 is 0.9 s short of the wait. */
    sm.now = t0 + 600;
    ck_assert_int_eq(smtpx_outbox_run(g.ob), 0);
    sm.now = t0 + 601;
    sm.nsec = 0;
    ck_assert_int_eq(smtpx_outbox_run(g.ob), 1);
    ck_assert_int_eq(take(qdir, out, 4), 1);
    release_all(out, 1);
    /* On a whole second, no rounding: exactly the doubled wait. */
    ck_assert_int_eq(smtpx_outbox_next(g.ob), t0 + 601 + 1200);
    rig_close(&g);
}
END_TEST

/* A failure report ends a recipient: not resent. */
START_TEST(test_failure)
{
    rig g;
    qmsg out[4];
    char id[256];

    seam_reset();
    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    ck_assert_int_eq(send_msg(&g, ONE, ORDER, id), 0);
    release_all(out, take(qdir, out, 4));
    ck_assert_int_eq(ack_with(&g, mdn(id, "stock@depot.example", "deleted"),
                              strlen(mdn(id, "stock@depot.example", "deleted")),
                              NULL),
                     1);
    ck_assert_int_eq(smtpx_outbox_state(g.ob, id), SMTPX_OUTBOX_ACKED);
    ck_assert_int_eq(send_msg(&g, ONE, ORDER, id), 0);
    ck_assert_int_eq(
        ack_with(&g, mdn(id, "Stock@DEPOT.example", "processed/error"),
                 strlen(mdn(id, "Stock@DEPOT.example", "processed/error")),
                 NULL),
        1);
    ck_assert_int_eq(smtpx_outbox_state(g.ob, id), SMTPX_OUTBOX_FAILED);
    sm.now += 100000;
    ck_assert_int_eq(smtpx_outbox_run(g.ob), 0);
    ck_assert_int_eq(take(qdir, out, 4), 1); /* the second, sent once */
    release_all(out, 1);
    rig_close(&g);
}
END_TEST

/* dsn - a DSN about the message whose ENVID is envid, for rcpt, with an
 * action (Postfix's shape) */
static const char *dsn(const char *envid, const char *rcpt, const char *action,
                       const char *status)
{
    static char buf[2048];

    snprintf(buf, sizeof(buf),
             "From: MAILER-DAEMON@relay.example\r\nContent-Type: multipart/"
             "report; report-type=delivery-status;\r\n\tboundary=\"B\"\r\n"
             "\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
             "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
             "Reporting-MTA: dns; relay.example\r\nOriginal-Envelope-Id: "
             "%s\r\n\r\nFinal-Recipient: rfc822; %s\r\nOriginal-Recipient:"
             " rfc822;%s\r\nAction: %s\r\nStatus: %s\r\n\r\n--B--\r\n",
             envid, rcpt, rcpt, action, status);
    return buf;
}

/* "relayed" (RFC 3464 2.3.3: the report stops at a system that cannot
 * report) and "delayed" are about the outbox's message but acknowledge
 * nothing: the recipient still waits and is resent at its deadline; a
 * "delivered" one is the acknowledgement. */
START_TEST(test_relayed)
{
    static const char *const notyet[] = {"relayed", "delayed"};
    smtpx_outbox_stats st;
    rig g;
    qmsg out[4];
    char id[256], want[400];
    const char *d;
    size_t i;

    seam_reset();
    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    ck_assert_int_eq(send_msg(&g, ONE, ORDER, id), 0);
    release_all(out, take(qdir, out, 4));
    for (i = 0; i < 2; i++) {
        d = dsn(id, "stock@depot.example", notyet[i], "2.0.0");
        ck_assert_int_eq(ack_with(&g, d, strlen(d), NULL), 0);
        d = dsn(id, "stock@depot.example", notyet[i], "2.0.0");
        ck_assert_int_eq(ack_with(&g, d, strlen(d), "acks@shop.example"), 0);
    }
    ck_assert_int_eq(smtpx_outbox_state(g.ob, id), SMTPX_OUTBOX_WAITING);
    ck_assert_uint_eq(smtpx_outbox_count(g.ob), 1);
    ck_assert_int_eq(g.ev.n, 1); /* only its first send */
    memset(&st, 0, sizeof(st));
    st.size = sizeof(st);
    smtpx_outbox_stats_get(g.ob, &st);
    ck_assert_uint_eq(st.acked, 0);
    ck_assert_uint_eq(st.repeats, 0);
    ck_assert_uint_eq(st.strays, 0);
    /* Its deadline: resent. */
    sm.now = smtpx_outbox_next(g.ob);
    ck_assert_int_eq(smtpx_outbox_run(g.ob), 1);
    ck_assert_int_eq(take(qdir, out, 4), 1);
    release_all(out, 1);
    snprintf(want, sizeof(want), "%s stock@depot.example waiting 2", id);
    ck_assert_str_eq(g.ev.log[1], want);
    d = dsn(id, "stock@depot.example", "delivered", "2.0.0");
    ck_assert_int_eq(ack_with(&g, d, strlen(d), NULL), 1);
    ck_assert_int_eq(smtpx_outbox_state(g.ob, id), SMTPX_OUTBOX_ACKED);
    snprintf(want, sizeof(want), "%s stock@depot.example acknowledged 2", id);
    ck_assert_str_eq(g.ev.log[2], want);
    rig_close(&g);
}
END_TEST

/* Reports that are not about anything of the outbox's. */
START_TEST(test_strays)
{
    rig g;
    smtpx_outbox_stats st;
    const char *m = mdn("nobody@x", "a@b", "processed");

    seam_reset();
    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    ck_assert_int_eq(ack_with(&g, m, strlen(m), "someone@else.example"),
                     SMTPX_ERR_NOT_FOUND);
    ck_assert_int_eq(ack_with(&g, m, strlen(m), NULL), SMTPX_ERR_NOT_FOUND);
    ck_assert_int_eq(ack_with(&g, m, strlen(m), "ACKS@shop.example"), 0);
    memset(&st, 0, sizeof(st));
    st.size = sizeof(st);
    smtpx_outbox_stats_get(g.ob, &st);
    ck_assert_uint_eq(st.strays, 1);
    ck_assert_int_eq(smtpx_outbox_state(g.ob, "nobody@x"), SMTPX_ERR_NOT_FOUND);
    ck_assert_int_eq(smtpx_outbox_ack(g.ob, NULL, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    rig_close(&g);
}
END_TEST

/* Closed and opened again: a message never resent waits from its arrival
 * (rounded up, as a send's time is);
 * one resent keeps its sends and deadline; an acknowledgement of some
 * recipients only was saved when it was taken: the others alone are
 * resent. */
START_TEST(test_reopen)
{
    rig g;
    qmsg out[4];
    char a[256], b[256];
    int64_t t0;

    seam_reset();
    t0 = sm.now;
    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    ck_assert_int_eq(send_msg(&g, ONE, ORDER, a), 0);
    sm.now += 10;
    ck_assert_int_eq(send_msg(&g, TWO, ORDER, b), 0);
    sm.now = t0 + 605;
    ck_assert_int_eq(smtpx_outbox_run(g.ob), 1); /* a resent */
    ck_assert_int_eq(
        ack_with(&g, mdn(b, "audit@depot.example", "processed"),
                 strlen(mdn(b, "audit@depot.example", "processed")), NULL),
        1);
    release_all(out, take(qdir, out, 4));
    rig_close(&g);

    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    ck_assert_uint_eq(smtpx_outbox_count(g.ob), 2);
    ck_assert_int_eq(smtpx_outbox_state(g.ob, a), SMTPX_OUTBOX_WAITING);
    /* b's arrival is a whole second, and it was sent in that second at
     * some fraction of it: its wait ends the second after, never sooner. */
    ck_assert_int_eq(smtpx_outbox_next(g.ob), t0 + 10 + 1 + 600); /* b */
    sm.now = t0 + 610;
    ck_assert_int_eq(smtpx_outbox_run(g.ob), 0);
    sm.now = t0 + 611;
    ck_assert_int_eq(smtpx_outbox_run(g.ob), 1);
    ck_assert_int_eq(take(qdir, out, 4), 1);
    ck_assert_int_eq(out[0].nrcpts, 1); /* audit's was saved */
    ck_assert_ptr_nonnull(strstr(out[0].rcpt[0], " stock@depot.example"));
    release_all(out, 1);
    ck_assert_int_eq(smtpx_outbox_next(g.ob), t0 + 605 + 1200); /* a */
    rig_close(&g);
}
END_TEST

/* The outbox's copy is kept first: when it cannot be, nothing is queued,
 * nothing tracked, and the caller is told; when the queue's copy cannot
 * be committed after it, the message is the outbox's all the same and is
 * sent at its first deadline. */
START_TEST(test_commit_fails)
{
    rig g;
    qmsg out[4];
    char id[256];

    seam_reset();
    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    sm.fail_rename = sm.renames + 1; /* ours */
    ck_assert_int_eq(send_msg(&g, ONE, ORDER, id), SMTPX_ERR_IO);
    ck_assert_uint_eq(smtpx_outbox_count(g.ob), 0);
    ck_assert_uint_eq(smtpx_queue_count(g.q), 0);
    sm.fail_rename = sm.renames + 2; /* ours, then the queue's */
    ck_assert_int_eq(send_msg(&g, ONE, ORDER, id), 0);
    ck_assert_uint_eq(smtpx_outbox_count(g.ob), 1);
    ck_assert_uint_eq(smtpx_queue_count(g.q), 0);
    sm.now = smtpx_outbox_next(g.ob);
    ck_assert_int_eq(smtpx_outbox_run(g.ob), 1);
    ck_assert_int_eq(take(qdir, out, 4), 1);
    release_all(out, 1);
    rig_close(&g);
}
END_TEST

/* Durable writes of a message that goes out: the queue's copy and the
 * outbox's, each a file and a directory sync; a resend adds the queue's
 * two and the state's two; an acknowledgement is durable before
 * smtpx_outbox_ack() returns: the removal of a finished message is one
 * directory sync, the state of one still waiting two. */
START_TEST(test_durable_writes)
{
    rig g;
    qmsg out[4];
    char id[256];
    long s0;

    seam_reset();
    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    s0 = sm.syncs;
    ck_assert_int_eq(send_msg(&g, ONE, ORDER, id), 0);
    ck_assert_int_eq(sm.syncs - s0, 4);
    s0 = sm.syncs;
    sm.now += 600;
    ck_assert_int_eq(smtpx_outbox_run(g.ob), 1);
    ck_assert_int_eq(sm.syncs - s0, 4);
    release_all(out, take(qdir, out, 4));
    /* The acknowledgement: the removal's directory sync (the history is
     * not synced); the next run has nothing left to sync. */
    s0 = sm.syncs;
    ck_assert_int_eq(
        ack_with(&g, mdn(id, "stock@depot.example", "processed"),
                 strlen(mdn(id, "stock@depot.example", "processed")), NULL),
        1);
    ck_assert_int_eq(sm.syncs - s0, 1);
    ck_assert_int_eq(smtpx_outbox_run(g.ob), 0);
    ck_assert_int_eq(sm.syncs - s0, 1);
    /* A repeat of it syncs nothing more. */
    ck_assert_int_eq(
        ack_with(&g, mdn(id, "stock@depot.example", "processed"),
                 strlen(mdn(id, "stock@depot.example", "processed")), NULL),
        0);
    ck_assert_int_eq(sm.syncs - s0, 1);
    /* Some recipients only: their state, a file and its directory. */
    ck_assert_int_eq(send_msg(&g, TWO, ORDER, id), 0);
    s0 = sm.syncs;
    ck_assert_int_eq(
        ack_with(&g, mdn(id, "audit@depot.example", "processed"),
                 strlen(mdn(id, "audit@depot.example", "processed")), NULL),
        1);
    ck_assert_int_eq(sm.syncs - s0, 2);
    /* The directory sync fails: the caller is told (and answers the
     * report 4xx); the report again makes it durable then. */
    sm.fail_fsync = sm.fsyncs + 1;
    s0 = sm.syncs;
    ck_assert_int_eq(
        ack_with(&g, mdn(id, "stock@depot.example", "processed"),
                 strlen(mdn(id, "stock@depot.example", "processed")), NULL),
        SMTPX_ERR_IO);
    ck_assert_int_eq(sm.syncs - s0, 1);
    ck_assert_int_eq(smtpx_outbox_state(g.ob, id), SMTPX_OUTBOX_ACKED);
    ck_assert_int_eq(
        ack_with(&g, mdn(id, "stock@depot.example", "processed"),
                 strlen(mdn(id, "stock@depot.example", "processed")), NULL),
        0);
    ck_assert_int_eq(sm.syncs - s0, 2);
    release_all(out, take(qdir, out, 4));
    rig_close(&g);
}
END_TEST

static int list_fn(const smtpx_outbox_info *info, void *ud)
{
    char *buf = ud;
    size_t i;

    for (i = 0; i < info->nrcpts; i++)
        snprintf(buf + strlen(buf), 1024 - strlen(buf), "%s %s %u;",
                 info->rcpts[i], smtpx_outbox_state_name(info->states[i]),
                 info->sends);
    return 0;
}

START_TEST(test_list_and_args)
{
    rig g;
    char id[256], buf[1024] = "";
    smtpx_outbox_opts o;
    smtpx_outbox *ob;
    smtpx_outbox_msg *m;
    smtpx_queue_env env;

    seam_reset();
    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    ck_assert_int_eq(send_msg(&g, TWO, ORDER, id), 0);
    ck_assert_int_eq(
        ack_with(&g, mdn(id, "audit@depot.example", "processed"),
                 strlen(mdn(id, "audit@depot.example", "processed")), NULL),
        1);
    ck_assert_int_eq(smtpx_outbox_list(g.ob, list_fn, buf), 0);
    ck_assert_str_eq(buf, "stock@depot.example waiting 1;"
                          "audit@depot.example acknowledged 1;");
    ck_assert_str_eq(smtpx_outbox_state_name(SMTPX_OUTBOX_GAVE_UP),
                     "unacknowledged");
    ck_assert_str_eq(smtpx_outbox_state_name(0), "?");

    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.queue = g.q;
    o.hostname = "h.example";
    ck_assert_int_eq(smtpx_outbox_open(&ob, obdir, &o),
                     SMTPX_ERR_INVALID_ARGUMENT); /* MDN without address */
    o.flags = SMTPX_OUTBOX_NO_MDN;
    ck_assert_int_eq(smtpx_outbox_open(&ob, obdir, &o), SMTPX_ERR_BUSY);
    o.report_to = "nobody";
    ck_assert_int_eq(smtpx_outbox_open(&ob, obdir, &o),
                     SMTPX_ERR_INVALID_ARGUMENT);
    o.report_to = NULL;
    o.flags = 1u << 9;
    ck_assert_int_eq(smtpx_outbox_open(&ob, obdir, &o),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_outbox_open(&ob, NULL, &o),
                     SMTPX_ERR_INVALID_ARGUMENT);

    /* A report is never awaited: the null sender is refused. */
    memset(&env, 0, sizeof(env));
    env.size = sizeof(env);
    env.from = "";
    ck_assert_int_eq(smtpx_outbox_begin(g.ob, &env, &m),
                     SMTPX_ERR_INVALID_ARGUMENT);
    /* A header over 64 KiB. */
    env.from = "a@b";
    ck_assert_int_eq(smtpx_outbox_begin(g.ob, &env, &m), 0);
    ck_assert_int_eq(smtpx_outbox_add_rcpt(m, "c@d", 0, NULL), 0);
    {
        char line[1001];
        int i, rc = 0;
        memset(line, 'x', 998);
        memcpy(line, "X: ", 3);
        memcpy(line + 998, "\r\n", 3);
        for (i = 0; i < 70 && rc == 0; i++)
            rc = smtpx_outbox_write(m, line, 1000);
        ck_assert_int_eq(rc, SMTPX_ERR_LIMIT);
        ck_assert_int_eq(smtpx_outbox_write(m, "\r\n", 2), SMTPX_ERR_LIMIT);
    }
    ck_assert_int_eq(smtpx_outbox_commit(m, id, sizeof(id)), SMTPX_ERR_LIMIT);
    ck_assert_uint_eq(smtpx_outbox_count(g.ob), 1);
    smtpx_outbox_abort(NULL);
    smtpx_outbox_free(NULL);
    rig_close(&g);
}
END_TEST

static void engine_log(int level, const char *msg, void *ud)
{
    (void)ud;
    if (getenv("ENGINE_LOG") != NULL)
        fprintf(stderr, "%d %s\n", level, msg);
}

/* count_new - files in the Maildir of a local part */
static int count_new(const char *user)
{
    char path[400];
    struct dirent *de;
    DIR *dp;
    int n = 0;

    snprintf(path, sizeof(path), "%s/mail/%s/new", dir, user);
    dp = opendir(path);
    if (dp == NULL)
        return 0;
    while ((de = readdir(dp)) != NULL)
        n += de->d_name[0] != '.';
    closedir(dp);
    return n;
}

/* engine_new - a delivery engine for the rig's queue that runs its
 * outbox: local delivery to Maildirs for local domains, or a smarthost */
static smtpx_mta *engine_new(rig *g, smtpx_config **ccfg, const char *smart,
                             const char *const *local, size_t nlocal)
{
    static char path[300];
    smtpx_mta_opts mo;
    smtpx_mta *mta;

    ck_assert_int_eq(smtpx_config_new(ccfg, SMTPX_ROLE_CLIENT, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(*ccfg), 0);
    snprintf(path, sizeof(path), "%s/mail", dir);
    memset(&mo, 0, sizeof(mo));
    mo.size = sizeof(mo);
    mo.client_cfg = *ccfg;
    mo.hostname = "shop.example";
    mo.smarthost = smart;
    mo.local_domains = local;
    mo.nlocal = nlocal;
    mo.local_kind = SMTPX_LOCAL_MAILDIR;
    mo.local_path = path;
    mo.on_log = engine_log;
    mo.outbox = g->ob;
    ck_assert_int_eq(smtpx_mta_new(&mta, g->q, &mo), 0);
    return mta;
}

static void engine_free(smtpx_mta *mta, smtpx_config *ccfg)
{
    smtpx_mta_stop(mta);
    while (smtpx_mta_run_once(mta, 20) > 0)
        ;
    smtpx_mta_free(mta);
    smtpx_config_free(ccfg);
}

/* engine_rounds - n rounds of up to 20 ms */
static void engine_rounds(smtpx_mta *mta, int n)
{
    int i;

    for (i = 0; i < n; i++)
        ck_assert_int_eq(smtpx_mta_run_once(mta, 20), 1);
}

/* ENGINE_UNTIL - rounds until cond holds, for at most 30 s (deliveries
 * are real: sockets, fsyncs, local deliveries on the engine's threads) */
#define ENGINE_UNTIL(mta, cond)                                                \
    do {                                                                       \
        uint64_t end_ = smtpx_posix_now_ms() + 30000;                          \
        while (!(cond) && smtpx_posix_now_ms() < end_)                         \
            engine_rounds((mta), 1);                                           \
    } while (0)

/* has_event - the rig saw the event "ID RCPT STATE SENDS" */
static int has_event(const rig *g, const char *id, const char *rest)
{
    char want[400];
    int i;

    snprintf(want, sizeof(want), "%s %s", id, rest);
    for (i = 0; i < g->ev.n; i++)
        if (strcmp(g->ev.log[i], want) == 0)
            return 1;
    return 0;
}

/* The delivery engine runs the outbox's deadlines and tells the outbox
 * itself what it delivered locally: acknowledged at once, no success
 * report to the sender (the outbox asked for it, not the sender), nothing
 * resent at the deadline.  A message that is not the outbox's keeps its
 * success report. */
START_TEST(test_engine)
{
    static const char *const local[] = {"depot.example", "shop.example"};
    smtpx_config *ccfg;
    smtpx_mta *mta;
    rig g;
    char id[256], qid[32];

    seam_reset();
    sm.now = (int64_t)time(NULL);
    memset(&g, 0, sizeof(g));
    rig_open(&g, SMTPX_OUTBOX_NO_MDN, NULL);
    mta = engine_new(&g, &ccfg, NULL, local, 2);
    ck_assert_int_eq(send_msg(&g, ONE, ORDER, id), 0);
    {
        smtpx_queue_env env;
        smtpx_queue_msg *qm;
        memset(&env, 0, sizeof(env));
        env.size = sizeof(env);
        env.from = "clerk@shop.example";
        env.envid = "clerk-1";
        ck_assert_int_eq(smtpx_queue_begin(g.q, &env, &qm), 0);
        ck_assert_int_eq(smtpx_queue_add_rcpt(qm, "stock@depot.example",
                                              SMTPX_DSN_NOTIFY_SUCCESS, NULL),
                         0);
        ck_assert_int_eq(smtpx_queue_write(qm, ORDER, strlen(ORDER)), 0);
        ck_assert_int_eq(smtpx_queue_commit(qm, qid, sizeof(qid)), 0);
    }
    /* Delivered, and the results recorded (the engine's thread records
     * what its local delivery threads did). */
    ENGINE_UNTIL(mta, count_new("stock") >= 2 && count_new("clerk") >= 1 &&
                          smtpx_queue_count(g.q) == 0);
    ck_assert_int_eq(count_new("stock"), 2);
    ck_assert_int_eq(count_new("clerk"), 1); /* not the outbox's */
    ck_assert_uint_eq(smtpx_outbox_count(g.ob), 0);
    ck_assert_int_eq(smtpx_outbox_state(g.ob, id), SMTPX_OUTBOX_ACKED);
    ck_assert(has_event(&g, id, "stock@depot.example acknowledged 1"));
    /* Past the deadline: nothing more, and no report came to orders@. */
    sm.now += 3600;
    engine_rounds(mta, 5);
    ck_assert_int_eq(count_new("stock"), 2);
    ck_assert_int_eq(count_new("orders"), 0);
    ck_assert_uint_eq(smtpx_queue_count(g.q), 0);
    engine_free(mta, ccfg);
    rig_close(&g);
}
END_TEST

/* A message the outbox keeps but could not queue goes at its first
 * deadline: the engine, on an outside loop and idle until then, is told
 * (its descriptor readable) so that its expiry counts that deadline. */
START_TEST(test_engine_told_of_unqueued)
{
    static const char *const local[] = {"depot.example"};
    smtpx_config *ccfg;
    smtpx_mta *mta;
    struct pollfd p;
    rig g;
    char id[256];
    int efd;

    seam_reset();
    memset(&g, 0, sizeof(g));
    rig_open(&g, SMTPX_OUTBOX_NO_MDN, NULL);
    mta = engine_new(&g, &ccfg, NULL, local, 1);
    efd = smtpx_mta_fd(mta);
    ck_assert_int_ge(efd, 0);
    ck_assert_int_eq(smtpx_mta_run_once(mta, 0), 1);
    ck_assert_int_eq(smtpx_mta_expiry(mta), 0); /* idle: nothing due */
    p.fd = efd;
    p.events = POLLIN;
    ck_assert_int_eq(poll(&p, 1, 0), 0);
    sm.fail_rename = sm.renames + 2; /* the outbox's copy, then the queue's */
    ck_assert_int_eq(send_msg(&g, ONE, ORDER, id), 0);
    ck_assert_uint_eq(smtpx_outbox_count(g.ob), 1);
    ck_assert_uint_eq(smtpx_queue_count(g.q), 0);
    ck_assert_int_eq(poll(&p, 1, 0), 1);
    ck_assert_int_eq(smtpx_mta_run_once(mta, 0), 1);
    ck_assert_uint_ne(smtpx_mta_expiry(mta), 0); /* the first deadline */
    engine_free(mta, ccfg);
    rig_close(&g);
}
END_TEST

/* A server to relay to, without DSN: counts the recipients it is given
 * and refuses reject@. */
typedef struct sink {
    smtpx_loop *loop;
    int to_orders, to_stock, to_reject;
} sink;

static int sink_rcpt(smtpx_server *s, const smtpx_rcpt_info *rcpt,
                     void **rcpt_data, smtpx_reply *reply, void *ud)
{
    sink *k = ud;

    (void)s;
    (void)rcpt_data;
    if (strcmp(rcpt->to, "orders@shop.example") == 0)
        __atomic_add_fetch(&k->to_orders, 1, __ATOMIC_SEQ_CST);
    if (strcmp(rcpt->to, "stock@depot.example") == 0)
        __atomic_add_fetch(&k->to_stock, 1, __ATOMIC_SEQ_CST);
    if (strcmp(rcpt->to, "reject@depot.example") == 0) {
        __atomic_add_fetch(&k->to_reject, 1, __ATOMIC_SEQ_CST);
        reply->code = 550;
        reply->enh[0] = 5;
        reply->enh[1] = 1;
        reply->enh[2] = 1;
        reply->text = "No such user";
    }
    return 0;
}

static void *sink_run(void *arg)
{
    sink *k = arg;

    smtpx_loop_run(k->loop);
    return NULL;
}

static int sink_get(int *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

/* Relayed to a server that reports nothing: "relayed" acknowledges
 * nothing and goes to no one; the next hop's 550 makes the recipient
 * failed at once - one bounce to the sender, never resent - while the
 * other is resent at its deadline. */
/* A copy of a finished message (cancelled too late, or found again after
 * a crash) relayed, delivered or failed: nothing is reported to the
 * sender and the outbox does not change. */
START_TEST(test_engine_copy_of_finished)
{
    static const int kinds[] = {SMTPX__OUTBOX_RELAYED, SMTPX__OUTBOX_DELIVERED,
                                SMTPX__OUTBOX_FAILED};
    smtpx__qrcpt r;
    smtpx__qmsg c;
    qmsg out[4];
    rig g;
    char id[256], from[] = "orders@shop.example", envid[300];
    const char *m;
    unsigned char quiet;
    int what, k;

    seam_reset();
    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    ck_assert_int_eq(send_msg(&g, ONE, ORDER, id), 0);
    ck_assert_int_eq(take(qdir, out, 4), 1);
    m = mdn(id, "stock@depot.example", "processed");
    ck_assert_int_eq(ack_with(&g, m, strlen(m), NULL), 1);
    ck_assert_int_eq(smtpx_outbox_state(g.ob, id), SMTPX_OUTBOX_ACKED);
    /* The copy as the engine holds it. */
    memset(&c, 0, sizeof(c));
    memset(&r, 0, sizeof(r));
    snprintf(envid, sizeof(envid), "%s", out[0].envid);
    ck_assert_str_eq(out[0].from, from);
    c.from = from;
    c.envid = envid;
    r.addr = (char *)"stock@depot.example";
    c.rcpts = &r;
    c.nrcpts = 1;
    for (k = 0; k < 3; k++) {
        what = kinds[k];
        quiet = 0;
        ck_assert_int_ge(smtpx__outbox_engine(g.ob, &c, &what, &quiet), 0);
        ck_assert_int_eq(quiet, 1);
    }
    ck_assert_int_eq(smtpx_outbox_state(g.ob, id), SMTPX_OUTBOX_ACKED);
    /* A copy of nothing the outbox knows: reported as any message. */
    snprintf(envid, sizeof(envid), "other@shop.example");
    what = SMTPX__OUTBOX_RELAYED;
    quiet = 0;
    ck_assert_int_eq(smtpx__outbox_engine(g.ob, &c, &what, &quiet), 0);
    ck_assert_int_eq(quiet, 0);
    release_all(out, 1);
    rig_close(&g);
}
END_TEST

START_TEST(test_engine_relayed_and_failed)
{
    static const smtpx_server_callbacks cbs = {.on_rcpt = sink_rcpt};
    static const char *const both[] = {"stock@depot.example",
                                       "reject@depot.example", NULL};
    smtpx_config *scfg, *ccfg;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    smtpx_outbox_stats st;
    smtpx_mta *mta;
    pthread_t th;
    sink k;
    rig g;
    char smart[64], id[256];
    int lfd;

    memset(&k, 0, sizeof(k));
    ck_assert_int_eq(smtpx_config_new(&scfg, SMTPX_ROLE_SERVER, NULL), 0);
    ck_assert_int_eq(smtpx_config_freeze(scfg), 0);
    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "0", 0, &lfd), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(smart, sizeof(smart), "[127.0.0.1]:%u", ntohs(sa.sin_port));
    ck_assert_int_eq(smtpx_loop_new(&k.loop, NULL), 0);
    ck_assert_int_eq(
        smtpx_loop_listen(k.loop, lfd, scfg, &cbs, sizeof(cbs), &k, NULL, NULL),
        0);
    ck_assert_int_eq(pthread_create(&th, NULL, sink_run, &k), 0);

    seam_reset();
    sm.now = (int64_t)time(NULL);
    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    mta = engine_new(&g, &ccfg, smart, NULL, 0);
    ck_assert_int_eq(send_msg(&g, both, ORDER, id), 0);
    ENGINE_UNTIL(mta, smtpx_queue_count(g.q) == 0);
    ck_assert_uint_eq(smtpx_queue_count(g.q), 0);
    ck_assert_int_eq(sink_get(&k.to_stock), 1);
    ck_assert_int_eq(sink_get(&k.to_reject), 1);
    ck_assert_int_eq(sink_get(&k.to_orders), 1); /* the bounce alone */
    ck_assert(has_event(&g, id, "reject@depot.example failed 1"));
    ck_assert_int_eq(smtpx_outbox_state(g.ob, id), SMTPX_OUTBOX_WAITING);
    /* The deadline: resent to stock alone; its "relayed" again says
     * nothing to anyone. */
    sm.now = smtpx_outbox_next(g.ob);
    ENGINE_UNTIL(mta,
                 smtpx_queue_count(g.q) == 0 && sink_get(&k.to_stock) >= 2);
    ck_assert_int_eq(sink_get(&k.to_stock), 2);
    ck_assert_int_eq(sink_get(&k.to_reject), 1);
    ck_assert_int_eq(sink_get(&k.to_orders), 1);
    ck_assert(has_event(&g, id, "stock@depot.example waiting 2"));
    memset(&st, 0, sizeof(st));
    st.size = sizeof(st);
    smtpx_outbox_stats_get(g.ob, &st);
    ck_assert_uint_eq(st.failed, 1);
    ck_assert_uint_eq(st.acked, 0);
    engine_free(mta, ccfg);
    rig_close(&g);
    smtpx_loop_stop(k.loop, SMTPX_SHUTDOWN_NOW);
    pthread_join(th, NULL);
    smtpx_loop_free(k.loop);
    smtpx_config_free(scfg);
}
END_TEST

/* Copies still waiting in the delivery queue (deferred: the destination
 * cannot be looked up) are cancelled when the message is acknowledged:
 * the engine removes them without another attempt and without a report. */
START_TEST(test_engine_cancels_copies)
{
    smtpx_config *ccfg;
    smtpx_mta *mta;
    rig g;
    char id[256];

    seam_reset();
    sm.now = (int64_t)time(NULL);
    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    mta = engine_new(&g, &ccfg, NULL, NULL, 0); /* no resolver: deferred */
    ck_assert_int_eq(send_msg(&g, ONE, ORDER, id), 0);
    engine_rounds(mta, 3);
    sm.now = smtpx_outbox_next(g.ob); /* resent; the first tried again */
    engine_rounds(mta, 3);
    ck_assert(has_event(&g, id, "stock@depot.example waiting 2"));
    ck_assert_uint_eq(smtpx_queue_count(g.q), 2);
    ck_assert_int_eq(
        ack_with(&g, mdn(id, "stock@depot.example", "processed"),
                 strlen(mdn(id, "stock@depot.example", "processed")), NULL),
        1);
    ENGINE_UNTIL(mta, smtpx_queue_count(g.q) == 0);
    ck_assert_uint_eq(smtpx_queue_count(g.q), 0);
    engine_free(mta, ccfg);
    /* Reopened: nothing came back. */
    rig_close(&g);
    rig_open(&g, 0, NULL);
    ck_assert_uint_eq(smtpx_queue_count(g.q), 0);
    ck_assert_uint_eq(smtpx_outbox_count(g.ob), 0);
    rig_close(&g);
}
END_TEST

/* The copies of a message sent before a restart are found again in the
 * delivery queue (by ENVID) and cancelled all the same. */
START_TEST(test_copies_after_reopen)
{
    rig g;
    char id[256];

    seam_reset();
    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    ck_assert_int_eq(send_msg(&g, ONE, ORDER, id), 0);
    sm.now = smtpx_outbox_next(g.ob);
    ck_assert_int_eq(smtpx_outbox_run(g.ob), 1);
    ck_assert_uint_eq(smtpx_queue_count(g.q), 2);
    rig_close(&g);
    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    ck_assert_uint_eq(smtpx_queue_count(g.q), 2);
    ck_assert_int_eq(
        ack_with(&g, mdn(id, "stock@depot.example", "processed"),
                 strlen(mdn(id, "stock@depot.example", "processed")), NULL),
        1);
    {
        /* Both due now, marked for removal: released, they are gone. */
        smtpx__qmsg *due[4];
        int64_t next;
        size_t n = smtpx__queue_take_due(g.q, 0, due, 4, &next), i;
        ck_assert_uint_eq(n, 2);
        for (i = 0; i < n; i++) {
            ck_assert(due[i]->deleted);
            smtpx__queue_release(g.q, due[i], 1);
        }
    }
    ck_assert_uint_eq(smtpx_queue_count(g.q), 0);
    rig_close(&g);
}
END_TEST

/* Acknowledgements from several threads at once share the sync that
 * makes them durable: the first sync waits until all four messages are
 * removed, and one more covers the three that waited for it. */
typedef struct acker {
    rig *g;
    char id[256];
    char msg[2048];
    int rc;
} acker;

static void *ack_thread(void *arg)
{
    acker *a = arg;
    smtpx_report *r;

    a->rc = smtpx_report_new(&r, NULL);
    if (a->rc == 0 &&
        (a->rc = smtpx_report_feed(r, a->msg, strlen(a->msg))) == 0 &&
        (a->rc = smtpx_report_end(r)) == 0)
        a->rc = smtpx_outbox_ack(a->g->ob, r, NULL);
    smtpx_report_free(r);
    return NULL;
}

START_TEST(test_ack_group_commit)
{
    acker a[4];
    pthread_t th[4];
    qmsg out[8];
    rig g;
    long s0;
    int i;

    seam_reset();
    memset(&g, 0, sizeof(g));
    rig_open(&g, 0, NULL);
    for (i = 0; i < 4; i++) {
        a[i].g = &g;
        ck_assert_int_eq(send_msg(&g, ONE, ORDER, a[i].id), 0);
        snprintf(a[i].msg, sizeof(a[i].msg), "%s",
                 mdn(a[i].id, "stock@depot.example", "processed"));
    }
    release_all(out, take(qdir, out, 8));
    s0 = sm.syncs;
    sm.unlinks = 0;
    sm.gate_unlinks = 4;
    sm.gate = 1;
    for (i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, ack_thread, &a[i]), 0);
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(a[i].rc, 1);
    }
    ck_assert_uint_eq(smtpx_outbox_count(g.ob), 0);
    ck_assert_int_ge(sm.syncs - s0, 1);
    ck_assert_int_le(sm.syncs - s0, 2);
    rig_close(&g);
}
END_TEST

START_TEST(test_alloc_sweep)
{
    long n;
    int ok = 0;

    for (n = 1; n < 3000 && !ok; n++) {
        failmalloc fm;
        smtpx_mem mem;
        smtpx_outbox_opts o;
        smtpx_outbox *ob;
        smtpx_queue *q;
        char id[256];
        int rc;

        seam_reset();
        memset(&fm, 0, sizeof(fm));
        fm.fail_at = n;
        mem = failmalloc_mem(&fm);
        ck_assert_int_eq(smtpx__queue_open_fs(&q, qdir, NULL, &seam), 0);
        memset(&o, 0, sizeof(o));
        o.size = sizeof(o);
        o.queue = q;
        o.hostname = "shop.example";
        o.ack_address = "acks@shop.example";
        o.report_to = "ops@shop.example";
        o.max_resends = 1;
        o.mem = &mem;
        rc = smtpx__outbox_open_fs(&ob, obdir, &o, &seam);
        if (rc == 0) {
            rig g;
            memset(&g, 0, sizeof(g));
            g.q = q;
            g.ob = ob;
            rc = send_msg(&g, TWO, ORDER, id);
            if (rc == 0) {
                sm.now += 3600;
                rc = smtpx_outbox_run(ob); /* a resend */
                rc = rc < 0 ? rc : 0;
            }
            if (rc == 0) {
                const char *m = mdn(id, "audit@depot.example", "processed");
                smtpx_report *r;
                ck_assert_int_eq(smtpx_report_new(&r, NULL), 0);
                smtpx_report_feed(r, m, strlen(m));
                ck_assert_int_eq(smtpx_report_end(r), 0);
                rc = smtpx_outbox_ack(ob, r, NULL);
                rc = rc < 0 ? rc : 0;
                smtpx_report_free(r);
            }
            if (rc == 0) {
                sm.now += 100000;
                rc = smtpx_outbox_run(ob); /* gives up */
                rc = rc < 0 ? rc : 0;
            }
            ok = rc == 0 && smtpx_outbox_count(ob) == 0;
            smtpx_outbox_free(ob);
        }
        if (rc != 0)
            ck_assert_int_eq(rc, SMTPX_ERR_NOMEM);
        smtpx_queue_free(q);
        ck_assert_int_eq(fm.live, 0);
        teardown();
        setup();
    }
    ck_assert(ok);
}
END_TEST

Suite *suite_outbox(void)
{
    Suite *s = suite_create("outbox");
    TCase *tc = tcase_create("outbox");

    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_commit_shapes);
    tcase_add_test(tc, test_full_loop);
    tcase_add_test(tc, test_resend_and_give_up);
    tcase_add_test(tc, test_deadline_rounds_up);
    tcase_add_test(tc, test_failure);
    tcase_add_test(tc, test_relayed);
    tcase_add_test(tc, test_strays);
    tcase_add_test(tc, test_reopen);
    tcase_add_test(tc, test_commit_fails);
    tcase_add_test(tc, test_durable_writes);
    tcase_add_test(tc, test_list_and_args);
    tcase_add_test(tc, test_engine);
    tcase_add_test(tc, test_engine_told_of_unqueued);
    tcase_add_test(tc, test_engine_relayed_and_failed);
    tcase_add_test(tc, test_engine_copy_of_finished);
    tcase_add_test(tc, test_engine_cancels_copies);
    tcase_add_test(tc, test_copies_after_reopen);
    tcase_add_test(tc, test_ack_group_commit);
    tcase_add_test(tc, test_alloc_sweep);
    suite_add_tcase(s, tc);
    return s;
}
