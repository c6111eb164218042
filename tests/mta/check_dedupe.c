/*
 * check_dedupe - the dedupe store: keys and states across reopening, a
 * record torn by a crash and one damaged in the middle dropped at open
 * with everything else kept, the bound on entries (oldest forgotten
 * first) and on the file (compaction), the window through a clock in the
 * file-system seam, a write failure that changes nothing and a sync
 * failure that stops the store until it is reopened, a compaction that
 * died, threads sharing syncs (group commit), a child killed with SIGKILL
 * in the middle of puts (every put that returned is there after), the
 * syncs counted per put, and an allocation-failure sweep over open, puts,
 * growth and reopen.
 */
#define _DEFAULT_SOURCE /* usleep */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libsmtpx/ack.h>

#include "harness/failmalloc.h"
#include "mta/dedupe.h"
#include "suites.h"

static char dir[128], path[160];

static void setup(void)
{
    char cmd[400];
    int rc;

    snprintf(dir, sizeof(dir), "/tmp/check-dedupe-%ld", (long)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    rc = system(cmd);
    ck_assert_int_eq(rc, 0);
    snprintf(path, sizeof(path), "%s/seen", dir);
}

static void teardown(void)
{
    char cmd[400];
    int rc;

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    rc = system(cmd);
    (void)rc;
}

static off_t file_size(const char *p)
{
    struct stat st;

    return stat(p, &st) == 0 ? st.st_size : -1;
}

static void key(char *out, size_t size, int i)
{
    snprintf(out, size, "<order-%d@shop.example>", i);
}

static int put_i(smtpx_dedupe *d, int i, int state)
{
    char k[64];

    key(k, sizeof(k), i);
    return smtpx_dedupe_put(d, k, strlen(k), state);
}

static int get_i(smtpx_dedupe *d, int i)
{
    char k[64];

    key(k, sizeof(k), i);
    return smtpx_dedupe_get(d, k, strlen(k), NULL);
}

static smtpx_dedupe_stats stats(smtpx_dedupe *d)
{
    smtpx_dedupe_stats st;

    memset(&st, 0, sizeof(st));
    st.size = sizeof(st);
    smtpx_dedupe_stats_get(d, &st);
    return st;
}

/* ---- a seam with a clock of its own and failures on purpose -------------- */

static struct {
    int64_t now; /* 0: the real clock */
    long writes, syncs;
    long fail_write; /* the Nth write fails (1-based); 0: never */
    long fail_sync;
    int err;
} sm;

static ssize_t s_write(int fd, const void *buf, size_t len)
{
    if (++sm.writes == sm.fail_write) {
        /* Half a record reaches the file, as a crash or a full disk may
         * leave it. */
        if (len > 20)
            (void)!write(fd, buf, 20);
        errno = sm.err;
        return -1;
    }
    return write(fd, buf, len);
}

static int s_fsync(int fd)
{
    if (++sm.syncs == sm.fail_sync) {
        errno = sm.err;
        return -1;
    }
    return fsync(fd);
}

static int s_fdatasync(int fd)
{
    if (++sm.syncs == sm.fail_sync) {
        errno = sm.err;
        return -1;
    }
    return fdatasync(fd);
}

static int s_clock(struct timespec *ts)
{
    if (sm.now == 0)
        return clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec = (time_t)sm.now;
    ts->tv_nsec = 0;
    return 0;
}

static smtpx__fs seam;

static const smtpx__fs *seam_reset(void)
{
    memset(&sm, 0, sizeof(sm));
    seam = *smtpx__maildir_fs_default();
    seam.write = s_write;
    seam.fsync = s_fsync;
    seam.fdatasync = s_fdatasync;
    seam.clock = s_clock;
    return &seam;
}

static smtpx_dedupe_opts opts(uint32_t window, uint32_t max)
{
    smtpx_dedupe_opts o;

    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.window_s = window;
    o.max_entries = max;
    return o;
}

/* ---- tests --------------------------------------------------------------- */

START_TEST(test_put_get_reopen)
{
    smtpx_dedupe *d;
    int64_t first = -1, first2;
    int i;

    ck_assert_int_eq(smtpx_dedupe_open(&d, path, NULL), 0);
    ck_assert_int_eq(smtpx_dedupe_get(d, "x", 1, &first), 0);
    ck_assert_int_eq(first, 0);
    for (i = 0; i < 50; i++)
        ck_assert_int_eq(put_i(d, i, 1), 0);
    for (i = 0; i < 50; i += 2)
        ck_assert_int_eq(put_i(d, i, 2), 0);
    ck_assert_int_eq(smtpx_dedupe_get(d, "<order-4@shop.example>", 22, &first),
                     2);
    ck_assert_int_gt(first, 0);
    ck_assert_uint_eq(stats(d).entries, 50);
    ck_assert_uint_eq(stats(d).records, 75);
    smtpx_dedupe_free(d);
    ck_assert_int_eq(file_size(path), 76 * 64);

    ck_assert_int_eq(smtpx_dedupe_open(&d, path, NULL), 0);
    for (i = 0; i < 50; i++)
        ck_assert_int_eq(get_i(d, i), i % 2 == 0 ? 2 : 1);
    ck_assert_int_eq(get_i(d, 50), 0);
    /* A new state keeps the first time. */
    ck_assert_int_eq(smtpx_dedupe_get(d, "<order-5@shop.example>", 22, &first),
                     1);
    ck_assert_int_eq(put_i(d, 5, 7), 0);
    ck_assert_int_eq(smtpx_dedupe_get(d, "<order-5@shop.example>", 22, &first2),
                     7);
    ck_assert_int_eq(first, first2);
    ck_assert_uint_eq(stats(d).dropped, 0);
    smtpx_dedupe_free(d);
}
END_TEST

START_TEST(test_args)
{
    smtpx_dedupe *d;
    smtpx_dedupe_opts o = opts(0, 0);
    int fd;

    ck_assert_int_eq(smtpx_dedupe_open(NULL, path, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_dedupe_open(&d, NULL, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(smtpx_dedupe_open(&d, "", NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    o.flags = 0x100;
    ck_assert_int_eq(smtpx_dedupe_open(&d, path, &o),
                     SMTPX_ERR_INVALID_ARGUMENT);
    o = opts(0, 0);
    o.size = 0;
    ck_assert_int_eq(smtpx_dedupe_open(&d, path, &o),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_dedupe_open(&d, "/nonexistent-dir/x", NULL),
                     SMTPX_ERR_IO);
    ck_assert_int_eq(smtpx_dedupe_open(&d, path, NULL), 0);
    ck_assert_int_eq(smtpx_dedupe_put(d, "k", 1, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_dedupe_put(d, "k", 1, 256),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_dedupe_put(d, "k", 0, 1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_dedupe_put(NULL, "k", 1, 1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_dedupe_get(d, NULL, 1, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_dedupe_put(d, "k", 1, 255), 0);
    ck_assert_int_eq(smtpx_dedupe_get(d, "k", 1, NULL), 255);
    /* One owner at a time. */
    {
        smtpx_dedupe *d2;
        ck_assert_int_eq(smtpx_dedupe_open(&d2, path, NULL), SMTPX_ERR_BUSY);
    }
    smtpx_dedupe_free(d);
    smtpx_dedupe_free(NULL);
    /* Not a store: refused, and left alone. */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd,
                           "Date: not a store, just some other file\n"
                           "with more than sixty-four octets of text\n",
                           81),
                     81);
    close(fd);
    ck_assert_int_eq(smtpx_dedupe_open(&d, path, NULL), SMTPX_ERR_CORRUPT);
    ck_assert_int_eq(file_size(path), 81);
    /* A short file too (a store's header is 64 octets). */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "hello\n", 6), 6);
    close(fd);
    ck_assert_int_eq(smtpx_dedupe_open(&d, path, NULL), SMTPX_ERR_CORRUPT);
    ck_assert_int_eq(file_size(path), 6);
    /* But a header cut short by a crash while it was made is made
     * again. */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "SMTPXD1\n\0\0", 10), 10);
    close(fd);
    ck_assert_int_eq(smtpx_dedupe_open(&d, path, NULL), 0);
    ck_assert_int_eq(smtpx_dedupe_put(d, "k", 1, 1), 0);
    smtpx_dedupe_free(d);
    ck_assert_int_eq(file_size(path), 128);
}
END_TEST

/* A record torn by a crash at the end, a damaged one in the middle: both
 * dropped, the rest kept, the file whole again. */
START_TEST(test_torn_and_damaged)
{
    smtpx_dedupe *d;
    unsigned char junk[64];
    int fd, i;

    ck_assert_int_eq(smtpx_dedupe_open(&d, path, NULL), 0);
    for (i = 0; i < 10; i++)
        ck_assert_int_eq(put_i(d, i, 1), 0);
    smtpx_dedupe_free(d);
    /* The write of record 11 died after 37 octets. */
    fd = open(path, O_WRONLY | O_APPEND);
    memset(junk, 'R', sizeof(junk));
    ck_assert_int_eq(write(fd, junk, 37), 37);
    close(fd);
    ck_assert_int_eq(smtpx_dedupe_open(&d, path, NULL), 0);
    ck_assert_uint_eq(stats(d).dropped, 1);
    for (i = 0; i < 10; i++)
        ck_assert_int_eq(get_i(d, i), 1);
    ck_assert_int_eq(file_size(path), 11 * 64);
    ck_assert_int_eq(put_i(d, 10, 1), 0);
    smtpx_dedupe_free(d);
    ck_assert_int_eq(file_size(path), 12 * 64);

    /* A whole record that fails its check (a bit flipped on the disk):
     * record 3's state changed from 1 to 9. */
    fd = open(path, O_WRONLY);
    ck_assert_int_eq(pwrite(fd, "\x09", 1, 4 * 64 + 1), 1);
    close(fd);
    ck_assert_int_eq(smtpx_dedupe_open(&d, path, NULL), 0);
    ck_assert_uint_eq(stats(d).dropped, 1);
    ck_assert_uint_eq(stats(d).compactions, 1);
    ck_assert_int_eq(get_i(d, 3), 0);
    for (i = 0; i <= 10; i++)
        if (i != 3)
            ck_assert_int_eq(get_i(d, i), 1);
    smtpx_dedupe_free(d);
    ck_assert_int_eq(file_size(path), 11 * 64);

    /* A file cut inside its header (a crash while creating it): a new
     * store. */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_eq(write(fd, "SMTPXD1\n\0\0", 10), 10);
    close(fd);
    ck_assert_int_eq(smtpx_dedupe_open(&d, path, NULL), 0);
    ck_assert_uint_eq(stats(d).entries, 0);
    ck_assert_int_eq(file_size(path), 64);
    smtpx_dedupe_free(d);
}
END_TEST

/* At most max_entries, the oldest forgotten first; the file never holds
 * more than twice as many records. */
START_TEST(test_bounded)
{
    smtpx_dedupe_opts o = opts(0, 100);
    smtpx_dedupe *d;
    smtpx_dedupe_stats st;
    int i;

    o.flags = SMTPX_DEDUPE_NOSYNC; /* the bounds do not need the disk */

    ck_assert_int_eq(smtpx_dedupe_open(&d, path, &o), 0);
    for (i = 0; i < 1000; i++) {
        ck_assert_int_eq(put_i(d, i, 1), 0);
        if (i % 3 == 0)
            ck_assert_int_eq(put_i(d, i, 2), 0);
        ck_assert_int_le(file_size(path), (2 * 100 + 1) * 64);
    }
    st = stats(d);
    ck_assert_uint_eq(st.entries, 100);
    ck_assert_uint_eq(st.evicted, 900);
    ck_assert_uint_gt(st.compactions, 5);
    for (i = 0; i < 900; i++)
        ck_assert_int_eq(get_i(d, i), 0);
    for (i = 900; i < 1000; i++)
        ck_assert_int_eq(get_i(d, i), i % 3 == 0 ? 2 : 1);
    smtpx_dedupe_free(d);
    ck_assert_int_eq(smtpx_dedupe_open(&d, path, &o), 0);
    ck_assert_uint_eq(stats(d).entries, 100);
    for (i = 900; i < 1000; i++)
        ck_assert_int_eq(get_i(d, i), i % 3 == 0 ? 2 : 1);
    smtpx_dedupe_free(d);
}
END_TEST

/* The window, on a clock of the test's. */
START_TEST(test_window)
{
    smtpx_dedupe_opts o = opts(3600, 0);
    const smtpx__fs *fs = seam_reset();
    smtpx_dedupe *d;
    int i;

    sm.now = 1700000000;
    ck_assert_int_eq(smtpx__dedupe_open_fs(&d, path, &o, fs), 0);
    for (i = 0; i < 10; i++) {
        sm.now = 1700000000 + i * 60; /* a minute apart */
        ck_assert_int_eq(put_i(d, i, 1), 0);
    }
    /* An hour after the first: the first is gone, the second not yet. */
    sm.now = 1700000000 + 3600;
    ck_assert_int_eq(get_i(d, 0), 0);
    ck_assert_int_eq(get_i(d, 1), 1);
    /* A later state does not extend the window. */
    ck_assert_int_eq(put_i(d, 1, 2), 0);
    sm.now = 1700000000 + 60 + 3600;
    ck_assert_int_eq(get_i(d, 1), 0);
    ck_assert_int_eq(get_i(d, 2), 1);
    ck_assert_uint_ge(stats(d).expired, 2);
    smtpx_dedupe_free(d);
    /* Reopened later: what the window has passed is not loaded. */
    sm.now = 1700000000 + 5 * 60 + 3600;
    ck_assert_int_eq(smtpx__dedupe_open_fs(&d, path, &o, fs), 0);
    ck_assert_uint_eq(stats(d).entries, 4);
    ck_assert_int_eq(get_i(d, 5), 0);
    ck_assert_int_eq(get_i(d, 6), 1);
    ck_assert_int_eq(get_i(d, 9), 1);
    /* The clock goes back, then forth: an entry expired out of order (not
     * the oldest in the ring) is forgotten all the same. */
    sm.now = 1700000000;
    ck_assert_int_eq(put_i(d, 100, 1), 0);
    sm.now = 1700000000 + 9 * 60 + 3599;
    ck_assert_int_eq(get_i(d, 9), 1);
    ck_assert_int_eq(get_i(d, 100), 0);
    ck_assert_uint_eq(stats(d).entries, 1);
    smtpx_dedupe_free(d);
}
END_TEST

/* A write or a sync that fails changes nothing, in memory or on disk; the
 * next put works. */
START_TEST(test_write_faults)
{
    const smtpx__fs *fs = seam_reset();
    smtpx_dedupe *d;
    long w, s;

    ck_assert_int_eq(smtpx__dedupe_open_fs(&d, path, NULL, fs), 0);
    ck_assert_int_eq(put_i(d, 1, 1), 0);
    ck_assert_int_eq(put_i(d, 2, 1), 0);
    /* One record, one sync per put. */
    w = sm.writes;
    s = sm.syncs;
    ck_assert_int_eq(put_i(d, 3, 1), 0);
    ck_assert_int_eq(sm.writes - w, 1);
    ck_assert_int_eq(sm.syncs - s, 1);
    ck_assert_uint_eq(stats(d).syncs, 3 + 2); /* and the creation's two */

    sm.fail_write = sm.writes + 1;
    sm.err = ENOSPC;
    ck_assert_int_eq(put_i(d, 4, 1), SMTPX_ERR_NOSPACE);
    ck_assert_int_eq(put_i(d, 2, 2), 0); /* overwrites the torn record */
    ck_assert_int_eq(get_i(d, 4), 0);
    /* A sync that fails: whether the record is on disk is not known, so
     * the store refuses every put until it is opened again. */
    sm.fail_sync = sm.syncs + 1;
    sm.err = EIO;
    ck_assert_int_eq(put_i(d, 1, 2), SMTPX_ERR_IO);
    ck_assert_int_eq(put_i(d, 5, 1), SMTPX_ERR_IO);
    ck_assert_int_eq(get_i(d, 5), 0);
    smtpx_dedupe_free(d);
    ck_assert_int_eq(smtpx_dedupe_open(&d, path, NULL), 0);
    ck_assert_uint_eq(stats(d).dropped, 0);
    ck_assert_int_eq(get_i(d, 1), 2); /* here it was written */
    ck_assert_int_eq(get_i(d, 2), 2);
    ck_assert_int_eq(get_i(d, 3), 1);
    ck_assert_int_eq(get_i(d, 4), 0);
    ck_assert_int_eq(put_i(d, 5, 1), 0);
    ck_assert_int_eq(get_i(d, 5), 1);
    ck_assert_int_eq(file_size(path), 7 * 64);
    smtpx_dedupe_free(d);
}
END_TEST

/* Threads that put at once share their syncs, and every put is there
 * after. */
typedef struct putter {
    smtpx_dedupe *d;
    int base;
} putter;

static void *put_many(void *arg)
{
    putter *p = arg;
    int i;

    for (i = 0; i < 100; i++)
        if (put_i(p->d, p->base + i, 1 + i % 2) != 0)
            return (void *)1;
    return NULL;
}

START_TEST(test_group_commit)
{
    smtpx_dedupe *d;
    pthread_t th[8];
    putter p[8];
    void *ret;
    int t, i;

    ck_assert_int_eq(smtpx_dedupe_open(&d, path, NULL), 0);
    for (t = 0; t < 8; t++) {
        p[t].d = d;
        p[t].base = t * 1000;
        ck_assert_int_eq(pthread_create(&th[t], NULL, put_many, &p[t]), 0);
    }
    for (t = 0; t < 8; t++) {
        ck_assert_int_eq(pthread_join(th[t], &ret), 0);
        ck_assert_ptr_null(ret);
    }
    ck_assert_uint_eq(stats(d).puts, 800);
    /* Fewer syncs than puts: they were shared (and the creation's two). */
    ck_assert_uint_lt(stats(d).syncs, 800 + 2);
    smtpx_dedupe_free(d);
    ck_assert_int_eq(smtpx_dedupe_open(&d, path, NULL), 0);
    for (t = 0; t < 8; t++)
        for (i = 0; i < 100; i++)
            ck_assert_int_eq(get_i(d, t * 1000 + i), 1 + i % 2);
    smtpx_dedupe_free(d);
}
END_TEST

/* A compaction that died leaves PATH.tmp: removed at open, the store
 * whole. */
START_TEST(test_compaction_died)
{
    smtpx_dedupe *d;
    char tmp[320];
    int fd, i;

    ck_assert_int_eq(smtpx_dedupe_open(&d, path, NULL), 0);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(put_i(d, i, 1), 0);
    smtpx_dedupe_free(d);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_eq(write(fd, "SMTPXD1\n", 8), 8);
    close(fd);
    ck_assert_int_eq(smtpx_dedupe_open(&d, path, NULL), 0);
    ck_assert_int_eq(access(tmp, F_OK), -1);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(get_i(d, i), 1);
    smtpx_dedupe_free(d);
}
END_TEST

/* A child puts keys and reports each put that returned; it is killed at a
 * random instant, many times.  Every put it reported is there after. */
START_TEST(test_sigkill)
{
    unsigned seed = (unsigned)time(NULL);
    int round, next = 0, total_dropped = 0;

    srand(seed);
    /* 25 rounds, and more while fewer than 101 puts were made (a slow
     * disk, a loaded machine or a sanitizer: each put is a sync). */
    for (round = 0; round < 25 || (next <= 100 && round < 500); round++) {
        int fds[2], status, got, start = next;
        pid_t pid;
        smtpx_dedupe *d;
        smtpx_dedupe_opts o = opts(0, 300); /* compactions happen */

        ck_assert_int_eq(pipe(fds), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            int i;
            close(fds[0]);
            if (smtpx_dedupe_open(&d, path, &o) != 0)
                _exit(2);
            for (i = start;; i++) {
                if (put_i(d, i, 1 + i % 2) != 0)
                    _exit(3);
                if (write(fds[1], &i, sizeof(i)) != sizeof(i))
                    _exit(4);
            }
        }
        close(fds[1]);
        usleep((useconds_t)(2000 + rand() % 20000));
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ck_assert(WIFSIGNALED(status));
        while (read(fds[0], &got, sizeof(got)) == sizeof(got))
            next = got + 1;
        close(fds[0]);
        ck_assert_int_eq(smtpx_dedupe_open(&d, path, &o), 0);
        total_dropped += (int)stats(d).dropped;
        {
            /* The last 299 reported puts are there: older ones may have
             * been pushed out by the bound of 300, as may one more by the
             * put that returned but was killed before it was reported. */
            int i, from = next - 299 > 0 ? next - 299 : 0;
            for (i = from; i < next; i++)
                ck_assert_msg(get_i(d, i) == 1 + i % 2,
                              "seed %u round %d: key %d of %d lost (%d)", seed,
                              round, i, next, get_i(d, i));
        }
        smtpx_dedupe_free(d);
    }
    ck_assert_int_gt(next, 100);
    (void)total_dropped;
}
END_TEST

/* Every allocation that fails is reported and leaks nothing. */
START_TEST(test_alloc_sweep)
{
    long n;
    int done = 0;

    for (n = 1; !done && n < 10000; n++) {
        failmalloc fm;
        smtpx_mem mem;
        smtpx_dedupe_opts o = opts(0, 2000);
        smtpx_dedupe *d;
        int rc, i;

        o.flags = SMTPX_DEDUPE_NOSYNC;

        memset(&fm, 0, sizeof(fm));
        fm.fail_at = n;
        mem = failmalloc_mem(&fm);
        o.mem = &mem;
        unlink(path);
        rc = smtpx_dedupe_open(&d, path, &o);
        if (rc != 0) {
            ck_assert_int_eq(rc, SMTPX_ERR_NOMEM);
            ck_assert_int_eq(fm.live, 0);
            continue;
        }
        /* Enough keys for the ring and the index to grow twice. */
        for (i = 0; i < 1500 && rc == 0; i++)
            rc = put_i(d, i, 1);
        if (rc != 0) {
            ck_assert_int_eq(rc, SMTPX_ERR_NOMEM);
            ck_assert_int_eq(get_i(d, i - 1), 0);
            if (i > 1)
                ck_assert_int_eq(get_i(d, i - 2), 1);
        }
        smtpx_dedupe_free(d);
        ck_assert_int_eq(fm.live, 0);
        if (rc != 0)
            continue;
        /* Reopen: the replay allocates as it grows. */
        fm.count = 0;
        rc = smtpx_dedupe_open(&d, path, &o);
        if (rc == 0) {
            ck_assert_uint_eq(stats(d).entries, 1500);
            done = 1;
        } else {
            ck_assert_int_eq(rc, SMTPX_ERR_NOMEM);
        }
        smtpx_dedupe_free(d);
        ck_assert_int_eq(fm.live, 0);
    }
    ck_assert(done);
}
END_TEST

Suite *suite_dedupe(void)
{
    Suite *s = suite_create("dedupe");
    TCase *tc = tcase_create("store");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_put_get_reopen);
    tcase_add_test(tc, test_args);
    tcase_add_test(tc, test_torn_and_damaged);
    tcase_add_test(tc, test_bounded);
    tcase_add_test(tc, test_window);
    tcase_add_test(tc, test_write_faults);
    tcase_add_test(tc, test_compaction_died);
    tcase_add_test(tc, test_group_commit);
    tcase_add_test(tc, test_sigkill);
    tcase_add_test(tc, test_alloc_sweep);
    suite_add_tcase(s, tc);
    return s;
}
