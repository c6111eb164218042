/*
 * check_maildir - the Maildir writer: round trips in both line-end modes, a
 * CRLF split at every point, what tmp/ and new/ hold at each step, the
 * order of the durable steps, unique names, missing directories, and
 * faults injected through the file-system seam (ENOSPC, EDQUOT, EIO at
 * write, fsync, close, rename and the fsync of new/; short writes and
 * EINTR), allocation failures swept over a whole delivery.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libsmtpx/mta.h>

#include "mta/maildir.h"
#include "harness/failmalloc.h"
#include "suites.h"

/* ---- a file-system seam that fails on purpose ---------------------------- */

enum {
    OP_OPEN,
    OP_WRITE,
    OP_FSYNC,
    OP_CLOSE,
    OP_RENAME,
    OP_UNLINK,
    OP_MKDIR,
    OP_CLOCK,
    OP_COUNT
};

/* The file-system calls the Maildirs of a test use (NULL: the real ones). */
static const smtpx__fs *use_fs;

static int md_open(smtpx_maildir **out, const char *path, unsigned flags,
                   const smtpx_mem *mem)
{
    if (use_fs == NULL)
        return smtpx_maildir_open(out, path, flags, mem);
    return smtpx__maildir_open_fs(out, path, flags, mem, use_fs);
}

static const char *const op_names[OP_COUNT] = {
    "open", "write", "fsync", "close", "rename", "unlink", "mkdir", "clock"};

static struct {
    long calls[OP_COUNT];
    long fail_at[OP_COUNT]; /* call number that fails (1-based); 0: none */
    long fail_n[OP_COUNT];  /* calls failing from there on */
    int err[OP_COUNT];
    size_t write_max; /* >0: every write is cut to this size */
    int eintr;        /* every other write is interrupted */
    int fixed_clock;  /* 1700000000.123456789 */
    const char *host; /* the host name, or NULL for the real one */
    int open_flags;   /* of the last open */
    mode_t open_mode;
    char log[512]; /* the operations, in order */
} fs;

static const smtpx__fs *real(void)
{
    return smtpx__maildir_fs_default();
}

static int fault(int op)
{
    long n = ++fs.calls[op];
    size_t len = strlen(fs.log);

    snprintf(fs.log + len, sizeof(fs.log) - len, "%s%s", len ? " " : "",
             op_names[op]);
    if (fs.fail_at[op] > 0 && n >= fs.fail_at[op] &&
        n < fs.fail_at[op] + fs.fail_n[op]) {
        errno = fs.err[op];
        return 1;
    }
    return 0;
}

/* inject - make op's call number at (counted from the last reset) and the
 * n - 1 after it fail with err */
static void inject(int op, long at, long n, int err)
{
    fs.fail_at[op] = at;
    fs.fail_n[op] = n;
    fs.err[op] = err;
}

static void reset_calls(void)
{
    memset(fs.calls, 0, sizeof(fs.calls));
    fs.log[0] = '\0';
}

static int t_open(const char *path, int flags, mode_t mode)
{
    if (fault(OP_OPEN))
        return -1;
    fs.open_flags = flags;
    fs.open_mode = mode;
    return real()->open(path, flags, mode);
}

static ssize_t t_write(int fd, const void *buf, size_t len)
{
    if (fault(OP_WRITE))
        return -1;
    if (fs.eintr && fs.calls[OP_WRITE] % 2 == 1) {
        errno = EINTR;
        return -1;
    }
    if (fs.write_max > 0 && len > fs.write_max)
        len = fs.write_max;
    return real()->write(fd, buf, len);
}

static int t_fsync(int fd)
{
    return fault(OP_FSYNC) ? -1 : real()->fsync(fd);
}

static int t_close(int fd)
{
    /* A failing close still closes, as on Linux. */
    int failed = fault(OP_CLOSE), e = errno;

    real()->close(fd);
    errno = e;
    return failed ? -1 : 0;
}

static int t_rename(const char *from, const char *to)
{
    return fault(OP_RENAME) ? -1 : real()->rename(from, to);
}

static int t_unlink(const char *path)
{
    return fault(OP_UNLINK) ? -1 : real()->unlink(path);
}

static int t_mkdir(const char *path, mode_t mode)
{
    return fault(OP_MKDIR) ? -1 : real()->mkdir(path, mode);
}

static int t_clock(struct timespec *ts)
{
    if (fault(OP_CLOCK))
        return -1;
    if (!fs.fixed_clock)
        return real()->clock(ts);
    ts->tv_sec = 1700000000;
    ts->tv_nsec = 123456789;
    return 0;
}

static int t_gethostname(char *name, size_t size)
{
    if (fs.host == NULL)
        return real()->gethostname(name, size);
    snprintf(name, size, "%s", fs.host);
    return 0;
}

/* No fdatasync: file syncs go through t_fsync too, faults and all. */
static const smtpx__fs test_fs = {t_open,        t_write,  t_fsync, t_close,
                                  t_rename,      t_unlink, t_mkdir, t_clock,
                                  t_gethostname, NULL};

/* ---- a scratch directory ------------------------------------------------- */

static char base[64];     /* the test's own directory */
static char md_path[128]; /* base/Maildir */

static void rm_rf(const char *path)
{
    struct stat st;
    struct dirent *e;
    char sub[512];
    DIR *d;

    if (lstat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    d = opendir(path);
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

static void setup(void)
{
    memset(&fs, 0, sizeof(fs));
    use_fs = &test_fs;
    snprintf(base, sizeof(base), "/tmp/check_maildir.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(base));
    snprintf(md_path, sizeof(md_path), "%s/Maildir", base);
}

static void teardown(void)
{
    use_fs = NULL;
    rm_rf(base);
}

/* entries - files in md_path/sub; the last one's name goes to name */
static int entries(const char *sub, char *name, size_t size)
{
    char path[256];
    struct dirent *e;
    int n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "%s/%s", md_path, sub);
    d = opendir(path);
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (name != NULL)
            snprintf(name, size, "%s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static int count(const char *sub)
{
    return entries(sub, NULL, 0);
}

/* slurp - the contents of md_path/sub/name */
static size_t slurp(const char *sub, const char *name, char *buf, size_t size)
{
    char path[512];
    size_t len = 0;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/%s/%s", md_path, sub, name);
    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    while ((n = read(fd, buf + len, size - len)) > 0)
        len += (size_t)n;
    close(fd);
    ck_assert_uint_lt(len, size);
    return len;
}

/* lf - CRLF to LF, a bare CR kept: what the writer should store */
static size_t lf(const char *in, size_t n, char *out)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++)
        if (!(in[i] == '\r' && i + 1 < n && in[i + 1] == '\n'))
            out[o++] = in[i];
    return o;
}

static smtpx_maildir *open_md(unsigned flags)
{
    smtpx_maildir *md;

    ck_assert_int_eq(md_open(&md, md_path, flags | SMTPX_MAILDIR_CREATE, NULL),
                     0);
    return md;
}

/* deliver - one message, written in one piece; its name goes to name */
static int deliver(smtpx_maildir *md, const char *text, char *name, size_t size)
{
    smtpx_maildir_msg *m;

    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    ck_assert_int_eq(smtpx_maildir_write(m, text, strlen(text)), 0);
    return smtpx_maildir_commit(m, name, size);
}

/* ---- round trips --------------------------------------------------------- */

START_TEST(test_roundtrip_lf)
{
    static const char in[] = "Subject: x\r\n\r\nhello\r\nworld\r\n";
    static const char out[] = "Subject: x\n\nhello\nworld\n";
    smtpx_maildir *md = open_md(0);
    smtpx_maildir_msg *m;
    char name[256], tmpname[256], buf[256], path[256], host[256];
    long long secs;
    long usec, pid;
    unsigned long long q;
    int used = 0;
    struct stat st;

    /* CREATE made the three directories, private. */
    snprintf(path, sizeof(path), "%s/cur", md_path);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(st.st_mode & 0777, 0700);

    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    /* Created in tmp/ only, exclusively, close-on-exec, private. */
    ck_assert_int_eq(fs.open_flags & (O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC),
                     O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC);
    ck_assert_int_eq(fs.open_mode, 0600);
    ck_assert_int_eq(entries("tmp", tmpname, sizeof(tmpname)), 1);
    ck_assert_int_eq(count("new"), 0);
    ck_assert_int_eq(smtpx_maildir_write(m, in, strlen(in)), 0);
    ck_assert_uint_eq(smtpx_maildir_msg_size(m), strlen(out));
    /* Nothing in new/ before commit. */
    ck_assert_int_eq(count("tmp"), 1);
    ck_assert_int_eq(count("new"), 0);
    ck_assert_int_eq(smtpx_maildir_commit(m, name, sizeof(name)), 0);
    ck_assert_int_eq(count("tmp"), 0);
    ck_assert_int_eq(entries("new", buf, sizeof(buf)), 1);
    ck_assert_str_eq(buf, name);
    ck_assert_str_eq(name, tmpname);
    ck_assert_uint_eq(slurp("new", name, buf, sizeof(buf)), strlen(out));
    ck_assert(memcmp(buf, out, strlen(out)) == 0);
    /* SECONDS.MmicrosecondsPpidQcounter.HOST */
    ck_assert_int_eq(
        sscanf(name, "%lld.M%ldP%ldQ%llu.%n", &secs, &usec, &pid, &q, &used),
        4);
    ck_assert_int_gt(used, 0);
    ck_assert_int_gt(secs, 1600000000);
    ck_assert(usec >= 0 && usec < 1000000);
    ck_assert_int_eq(pid, (long)getpid());
    ck_assert_uint_eq(q, 1);
    ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
    host[sizeof(host) - 1] = '\0';
    if (strchr(host, '/') == NULL && strchr(host, ':') == NULL)
        ck_assert_str_eq(name + used, host);
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_roundtrip_crlf)
{
    /* SMTPX_MAILDIR_CRLF stores the bytes as they come. */
    static const char in[] = "A: b\r\n\r\nx\r\ny\nz\rw\r\n\r";
    smtpx_maildir *md = open_md(SMTPX_MAILDIR_CRLF);
    smtpx_maildir_msg *m;
    char name[256], buf[256];

    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    ck_assert_int_eq(smtpx_maildir_write(m, in, 10), 0);
    ck_assert_int_eq(smtpx_maildir_write(m, in + 10, strlen(in) - 10), 0);
    ck_assert_uint_eq(smtpx_maildir_msg_size(m), strlen(in));
    ck_assert_int_eq(smtpx_maildir_commit(m, name, sizeof(name)), 0);
    ck_assert_uint_eq(slurp("new", name, buf, sizeof(buf)), strlen(in));
    ck_assert(memcmp(buf, in, strlen(in)) == 0);
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_crlf_split)
{
    /* A CRLF split across two writes is still one LF; a CR followed by
     * anything else, or by the end, is kept. */
    static const char *const pieces[] = {"a\r", "\nb\r", "c\r", "\r\n", "x\r"};
    static const uint64_t sizes[] = {1, 3, 5, 7, 8};
    static const char want[] = "a\nb\rc\r\nx\r";
    smtpx_maildir *md = open_md(0);
    smtpx_maildir_msg *m;
    char name[256], buf[256];
    size_t i;

    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    for (i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        ck_assert_int_eq(smtpx_maildir_write(m, pieces[i], strlen(pieces[i])),
                         0);
        /* A CR at the end of a piece is counted once the next byte shows
         * what it is. */
        ck_assert_uint_eq(smtpx_maildir_msg_size(m), sizes[i]);
    }
    ck_assert_int_eq(smtpx_maildir_write(m, "", 0), 0);
    ck_assert_int_eq(smtpx_maildir_commit(m, name, sizeof(name)), 0);
    ck_assert_uint_eq(slurp("new", name, buf, sizeof(buf)), strlen(want));
    ck_assert(memcmp(buf, want, strlen(want)) == 0);
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_split_everywhere)
{
    /* The same text cut at every point, and one byte at a time. */
    static const char in[] = "Subject: x\r\n\r\nline\r\nbare\rcr\r\r\nlf\n"
                             "\r\n.\r\n\r\r\r\n\r";
    size_t n = strlen(in), cut, i, wlen;
    char want[64], name[256], buf[256];
    smtpx_maildir *md = open_md(0);
    smtpx_maildir_msg *m;

    wlen = lf(in, n, want);
    for (cut = 0; cut <= n + 1; cut++) {
        ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
        if (cut <= n) {
            ck_assert_int_eq(smtpx_maildir_write(m, in, cut), 0);
            ck_assert_int_eq(smtpx_maildir_write(m, in + cut, n - cut), 0);
        } else {
            for (i = 0; i < n; i++)
                ck_assert_int_eq(smtpx_maildir_write(m, in + i, 1), 0);
        }
        /* The text ends with a CR: it waits for commit. */
        ck_assert_uint_eq(smtpx_maildir_msg_size(m), wlen - 1);
        ck_assert_int_eq(smtpx_maildir_commit(m, name, sizeof(name)), 0);
        ck_assert_uint_eq(slurp("new", name, buf, sizeof(buf)), wlen);
        if (memcmp(buf, want, wlen) != 0)
            ck_abort_msg("wrong text with the cut at %zu", cut);
    }
    ck_assert_int_eq(count("new"), (int)n + 2);
    ck_assert_int_eq(count("tmp"), 0);
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_large)
{
    /* 300 KB in pieces of random size: through the buffer, around it, and
     * with CRLFs cut at piece boundaries. */
    size_t n = 300000, wlen, off = 0, k, got;
    char *in = malloc(n), *want = malloc(n), *buf = malloc(n + 1);
    unsigned long seed = 12345;
    smtpx_maildir *md = open_md(0);
    smtpx_maildir_msg *m;
    char name[256];
    size_t i;

    ck_assert(in != NULL && want != NULL && buf != NULL);
    for (i = 0; i < n; i++)
        in[i] = i % 37 == 35   ? '\r'
                : i % 37 == 36 ? '\n'
                               : (char)('a' + i % 26);
    wlen = lf(in, n, want);
    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    while (off < n) {
        seed = seed * 1103515245 + 12345;
        k = (seed >> 8) % 3 == 0 ? (seed >> 4) % 100000 : (seed >> 4) % 40;
        if (k > n - off)
            k = n - off;
        ck_assert_int_eq(smtpx_maildir_write(m, in + off, k), 0);
        off += k;
    }
    ck_assert_uint_eq(smtpx_maildir_msg_size(m), wlen);
    ck_assert_int_eq(smtpx_maildir_commit(m, name, sizeof(name)), 0);
    got = slurp("new", name, buf, n + 1);
    ck_assert_uint_eq(got, wlen);
    ck_assert(memcmp(buf, want, wlen) == 0);
    smtpx_maildir_free(md);
    free(in);
    free(want);
    free(buf);
}
END_TEST

START_TEST(test_buffered)
{
    /* Small writes reach the file in one write(2), at commit, and commit
     * makes the message durable in the order the Maildir format asks. */
    smtpx_maildir *md = open_md(0);
    smtpx_maildir_msg *m;
    int i;

    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    reset_calls();
    for (i = 0; i < 100; i++)
        ck_assert_int_eq(smtpx_maildir_write(m, "line\r\n", 6), 0);
    ck_assert_int_eq(fs.calls[OP_WRITE], 0);
    ck_assert_int_eq(smtpx_maildir_commit(m, NULL, 0), 0);
    ck_assert_str_eq(fs.log, "write fsync close rename open fsync close");
    ck_assert_int_eq(count("new"), 1);
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_abort)
{
    smtpx_maildir *md = open_md(0);
    smtpx_maildir_msg *m;
    char big[100000];

    memset(big, 'x', sizeof(big));
    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    ck_assert_int_eq(smtpx_maildir_write(m, big, sizeof(big)), 0);
    ck_assert_int_eq(count("tmp"), 1);
    smtpx_maildir_abort(m);
    ck_assert_int_eq(count("tmp"), 0);
    ck_assert_int_eq(count("new"), 0);
    smtpx_maildir_abort(NULL);
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_unique)
{
    /* Many messages in the same second, and in the same microsecond. */
    smtpx_maildir *md = open_md(0);
    char name[256], prev[256] = "";
    int i;

    for (i = 0; i < 200; i++)
        ck_assert_int_eq(deliver(md, "x\r\n", NULL, 0), 0);
    ck_assert_int_eq(count("new"), 200);
    smtpx_maildir_free(md);
    fs.fixed_clock = 1;
    md = open_md(0);
    for (i = 0; i < 50; i++) {
        ck_assert_int_eq(deliver(md, "x\r\n", name, sizeof(name)), 0);
        ck_assert_str_ne(name, prev);
        snprintf(prev, sizeof(prev), "%s", name);
    }
    ck_assert_int_eq(count("new"), 250);
    ck_assert_int_eq(count("tmp"), 0);
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_name_clash)
{
    /* A name that exists in tmp/ is not reused: the next counter is. */
    smtpx_maildir *md;
    smtpx_maildir_msg *m;
    char name[256], want[256], path[512];
    int fd;

    fs.fixed_clock = 1;
    fs.host = "mx.test";
    md = open_md(0);
    ck_assert_int_eq(deliver(md, "x", name, sizeof(name)), 0);
    snprintf(want, sizeof(want), "1700000000.M123456P%ldQ1.mx.test",
             (long)getpid());
    ck_assert_str_eq(name, want);
    snprintf(path, sizeof(path), "%s/tmp/1700000000.M123456P%ldQ2.mx.test",
             md_path, (long)getpid());
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(deliver(md, "x", name, sizeof(name)), 0);
    snprintf(want, sizeof(want), "1700000000.M123456P%ldQ3.mx.test",
             (long)getpid());
    ck_assert_str_eq(name, want);
    /* EEXIST every time: begin gives up rather than loop for ever. */
    reset_calls();
    inject(OP_OPEN, 1, 1000, EEXIST);
    errno = 0;
    ck_assert_int_eq(smtpx_maildir_begin(md, &m), SMTPX_ERR_IO);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(count("tmp"), 1); /* the file this test made */
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_host_escape)
{
    /* '/' and ':' cannot appear in the name (Maildir: \057 and \072). */
    smtpx_maildir *md;
    char name[256];
    const char *dot;

    fs.host = "a/b:c.d";
    md = open_md(0);
    ck_assert_int_eq(deliver(md, "x", name, sizeof(name)), 0);
    dot = strchr(name, '.');
    ck_assert_ptr_nonnull(dot);
    dot = strchr(dot + 1, '.');
    ck_assert_ptr_nonnull(dot);
    ck_assert_str_eq(dot + 1, "a\\057b\\072c.d");
    smtpx_maildir_free(md);
    /* No name at all: localhost. */
    fs.host = "";
    md = open_md(0);
    ck_assert_int_eq(deliver(md, "x", name, sizeof(name)), 0);
    ck_assert_ptr_nonnull(strstr(name, ".localhost"));
    smtpx_maildir_free(md);
}
END_TEST

/* ---- directories and arguments ------------------------------------------- */

START_TEST(test_missing_dir)
{
    smtpx_maildir *md = (smtpx_maildir *)1;
    char path[256];
    int fd;

    /* Without CREATE a missing Maildir is an error. */
    errno = 0;
    ck_assert_int_eq(md_open(&md, md_path, 0, NULL), SMTPX_ERR_IO);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_ptr_null(md);
    /* So is one without cur/. */
    ck_assert_int_eq(mkdir(md_path, 0700), 0);
    snprintf(path, sizeof(path), "%s/tmp", md_path);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/new", md_path);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(md_open(&md, md_path, 0, NULL), SMTPX_ERR_IO);
    ck_assert_int_eq(errno, ENOENT);
    /* Or with a file where cur/ should be, CREATE or not. */
    snprintf(path, sizeof(path), "%s/cur", md_path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(md_open(&md, md_path, SMTPX_MAILDIR_CREATE, NULL),
                     SMTPX_ERR_IO);
    ck_assert_int_eq(errno, ENOTDIR);
    unlink(path);
    /* CREATE completes a Maildir; a whole one opens without it; trailing
     * slashes do not matter. */
    ck_assert_int_eq(md_open(&md, md_path, SMTPX_MAILDIR_CREATE, NULL), 0);
    smtpx_maildir_free(md);
    snprintf(path, sizeof(path), "%s//", md_path);
    ck_assert_int_eq(md_open(&md, path, 0, NULL), 0);
    ck_assert_int_eq(deliver(md, "x", NULL, 0), 0);
    ck_assert_int_eq(count("new"), 1);
    smtpx_maildir_free(md);
    /* CREATE makes the Maildir, not its parents. */
    snprintf(path, sizeof(path), "%s/no/Maildir", base);
    ck_assert_int_eq(md_open(&md, path, SMTPX_MAILDIR_CREATE, NULL),
                     SMTPX_ERR_IO);
    ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_args)
{
    smtpx_mem bad = {NULL, NULL, NULL, NULL, NULL};
    smtpx_maildir *md = (smtpx_maildir *)1;
    smtpx_maildir_msg *m = (smtpx_maildir_msg *)1;

    ck_assert_int_eq(md_open(NULL, md_path, 0, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(md_open(&md, NULL, 0, NULL), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(md);
    ck_assert_int_eq(md_open(&md, "", 0, NULL), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(md_open(&md, md_path, 1u << 5, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(md_open(&md, md_path, 0, &bad),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_maildir_begin(NULL, &m), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    md = open_md(0);
    ck_assert_int_eq(smtpx_maildir_begin(md, NULL), SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    ck_assert_int_eq(smtpx_maildir_write(NULL, "x", 1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_maildir_write(m, NULL, 1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_maildir_write(m, NULL, 0), 0);
    ck_assert_int_eq(smtpx_maildir_commit(NULL, NULL, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(smtpx_maildir_msg_size(NULL), 0);
    ck_assert_uint_eq(smtpx_maildir_msg_size(m), 0);
    /* An empty message is a message. */
    ck_assert_int_eq(smtpx_maildir_commit(m, NULL, 0), 0);
    ck_assert_int_eq(count("new"), 1);
    smtpx_maildir_free(md);
    smtpx_maildir_free(NULL);
}
END_TEST

START_TEST(test_name_too_small)
{
    /* The name does not fit: nothing is delivered, nothing is left. */
    smtpx_maildir *md = open_md(0);
    smtpx_maildir_msg *m;
    char name[10];

    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    ck_assert_int_eq(smtpx_maildir_write(m, "x", 1), 0);
    name[0] = 'x';
    ck_assert_int_eq(smtpx_maildir_commit(m, name, sizeof(name)),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(name[0], '\0');
    ck_assert_int_eq(count("tmp"), 0);
    ck_assert_int_eq(count("new"), 0);
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_default_fs)
{
    /* The real calls, without the test seam. */
    smtpx_maildir *md;
    char name[256], buf[64];

    use_fs = NULL;
    ck_assert_ptr_nonnull(smtpx__maildir_fs_default());
    ck_assert_int_eq(md_open(&md, md_path, SMTPX_MAILDIR_CREATE, NULL), 0);
    ck_assert_int_eq(deliver(md, "a\r\nb\r\n", name, sizeof(name)), 0);
    ck_assert_int_eq(fs.calls[OP_OPEN] + fs.calls[OP_WRITE], 0);
    ck_assert_uint_eq(slurp("new", name, buf, sizeof(buf)), 4);
    ck_assert(memcmp(buf, "a\nb\n", 4) == 0);
    smtpx_maildir_free(md);
}
END_TEST

/* ---- faults -------------------------------------------------------------- */

/* nothing_left - neither tmp/ nor new/ holds a file */
static void nothing_left(void)
{
    ck_assert_int_eq(count("tmp"), 0);
    ck_assert_int_eq(count("new"), 0);
}

START_TEST(test_write_enospc)
{
    /* Disk full while writing: the file goes at once, the error sticks. */
    smtpx_maildir *md = open_md(0);
    smtpx_maildir_msg *m;
    char big[100000];

    memset(big, 'x', sizeof(big));
    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    reset_calls();
    inject(OP_WRITE, 1, 1, ENOSPC);
    ck_assert_int_eq(smtpx_maildir_write(m, big, sizeof(big)),
                     SMTPX_ERR_NOSPACE);
    ck_assert_int_eq(errno, ENOSPC);
    nothing_left();
    errno = 0;
    ck_assert_int_eq(smtpx_maildir_write(m, "y", 1), SMTPX_ERR_NOSPACE);
    ck_assert_int_eq(errno, ENOSPC);
    errno = 0;
    ck_assert_int_eq(smtpx_maildir_commit(m, NULL, 0), SMTPX_ERR_NOSPACE);
    ck_assert_int_eq(errno, ENOSPC);
    nothing_left();
    ck_assert_int_eq(fs.calls[OP_RENAME], 0);
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_flush_edquot)
{
    /* Over quota when commit flushes the buffer. */
    smtpx_maildir *md = open_md(0);
    smtpx_maildir_msg *m;

    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    ck_assert_int_eq(smtpx_maildir_write(m, "hi\r\n", 4), 0);
    reset_calls();
    inject(OP_WRITE, 1, 1, EDQUOT);
    ck_assert_int_eq(smtpx_maildir_commit(m, NULL, 0), SMTPX_ERR_NOSPACE);
    ck_assert_int_eq(errno, EDQUOT);
    nothing_left();
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_write_eio)
{
    smtpx_maildir *md = open_md(0);
    smtpx_maildir_msg *m;

    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    ck_assert_int_eq(smtpx_maildir_write(m, "hi", 2), 0);
    reset_calls();
    inject(OP_WRITE, 1, 1, EIO);
    ck_assert_int_eq(smtpx_maildir_commit(m, NULL, 0), SMTPX_ERR_IO);
    ck_assert_int_eq(errno, EIO);
    nothing_left();
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_short_writes)
{
    /* write(2) may take part of the data, or be interrupted. */
    size_t n = 150000, wlen, got;
    char *in = malloc(n), *want = malloc(n), *buf = malloc(n + 1);
    smtpx_maildir *md;
    smtpx_maildir_msg *m;
    char name[256];
    size_t i;
    unsigned flags;

    ck_assert(in != NULL && want != NULL && buf != NULL);
    for (i = 0; i < n; i++)
        in[i] = i % 50 == 48   ? '\r'
                : i % 50 == 49 ? '\n'
                               : (char)('0' + i % 10);
    fs.write_max = 4093;
    fs.eintr = 1;
    for (flags = 0; flags <= SMTPX_MAILDIR_CRLF; flags += SMTPX_MAILDIR_CRLF) {
        md = open_md(flags);
        ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
        ck_assert_int_eq(smtpx_maildir_write(m, in, 70000), 0);
        ck_assert_int_eq(smtpx_maildir_write(m, in + 70000, n - 70000), 0);
        ck_assert_int_eq(smtpx_maildir_commit(m, name, sizeof(name)), 0);
        if (flags == 0) {
            wlen = lf(in, n, want);
        } else {
            memcpy(want, in, n);
            wlen = n;
        }
        got = slurp("new", name, buf, n + 1);
        ck_assert_uint_eq(got, wlen);
        ck_assert(memcmp(buf, want, wlen) == 0);
        smtpx_maildir_free(md);
    }
    ck_assert_int_gt(fs.calls[OP_WRITE], 2 * 150000 / 4093);
    free(in);
    free(want);
    free(buf);
}
END_TEST

START_TEST(test_fsync_fail)
{
    /* The file cannot be made durable: not delivered. */
    smtpx_maildir *md = open_md(0);
    smtpx_maildir_msg *m;

    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    ck_assert_int_eq(smtpx_maildir_write(m, "hi", 2), 0);
    reset_calls();
    inject(OP_FSYNC, 1, 1, EIO);
    ck_assert_int_eq(smtpx_maildir_commit(m, NULL, 0), SMTPX_ERR_IO);
    ck_assert_int_eq(errno, EIO);
    nothing_left();
    ck_assert_int_eq(fs.calls[OP_RENAME], 0);
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_close_fail)
{
    smtpx_maildir *md = open_md(0);
    smtpx_maildir_msg *m;

    /* A close that reports an error (NFS writes back at close). */
    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    reset_calls();
    inject(OP_CLOSE, 1, 1, EIO);
    ck_assert_int_eq(smtpx_maildir_commit(m, NULL, 0), SMTPX_ERR_IO);
    ck_assert_int_eq(errno, EIO);
    ck_assert_int_eq(fs.calls[OP_CLOSE], 1); /* never closed twice */
    nothing_left();
    /* An interrupted close after fsync lost nothing. */
    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    reset_calls();
    inject(OP_CLOSE, 1, 1, EINTR);
    ck_assert_int_eq(smtpx_maildir_commit(m, NULL, 0), 0);
    ck_assert_int_eq(count("new"), 1);
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_rename_fail)
{
    smtpx_maildir *md = open_md(0);
    smtpx_maildir_msg *m;

    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    ck_assert_int_eq(smtpx_maildir_write(m, "hi", 2), 0);
    reset_calls();
    inject(OP_RENAME, 1, 1, EXDEV);
    ck_assert_int_eq(smtpx_maildir_commit(m, NULL, 0), SMTPX_ERR_IO);
    ck_assert_int_eq(errno, EXDEV);
    nothing_left();
    /* A rename that needs a directory block on a full disk. */
    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    reset_calls();
    inject(OP_RENAME, 1, 1, ENOSPC);
    ck_assert_int_eq(smtpx_maildir_commit(m, NULL, 0), SMTPX_ERR_NOSPACE);
    nothing_left();
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_dirsync_fail)
{
    /* new/ cannot be made durable: the message is not acknowledged, and is
     * taken out of new/ so that the client's retry is no duplicate. */
    smtpx_maildir *md = open_md(0);
    smtpx_maildir_msg *m;
    char name[256];

    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    ck_assert_int_eq(smtpx_maildir_write(m, "hi", 2), 0);
    reset_calls();
    inject(OP_FSYNC, 2, 1, EIO);
    name[0] = 'x';
    ck_assert_int_eq(smtpx_maildir_commit(m, name, sizeof(name)), SMTPX_ERR_IO);
    ck_assert_int_eq(errno, EIO);
    ck_assert_int_eq(name[0], '\0');
    ck_assert_int_eq(fs.calls[OP_RENAME], 1);
    nothing_left();
    /* new/ cannot even be opened. */
    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    reset_calls();
    inject(OP_OPEN, 1, 1, EMFILE);
    ck_assert_int_eq(smtpx_maildir_commit(m, NULL, 0), SMTPX_ERR_IO);
    ck_assert_int_eq(errno, EMFILE);
    nothing_left();
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_other_faults)
{
    smtpx_maildir *md = (smtpx_maildir *)1;
    smtpx_maildir_msg *m = (smtpx_maildir_msg *)1;

    /* mkdir on a full disk. */
    inject(OP_MKDIR, 2, 1, ENOSPC);
    ck_assert_int_eq(md_open(&md, md_path, SMTPX_MAILDIR_CREATE, NULL),
                     SMTPX_ERR_NOSPACE);
    ck_assert_int_eq(errno, ENOSPC);
    ck_assert_ptr_null(md);
    inject(OP_MKDIR, 0, 0, 0);
    md = open_md(0);
    /* No inode left for the file. */
    reset_calls();
    inject(OP_OPEN, 1, 1, ENOSPC);
    ck_assert_int_eq(smtpx_maildir_begin(md, &m), SMTPX_ERR_NOSPACE);
    ck_assert_ptr_null(m);
    /* Interrupted open is retried. */
    reset_calls();
    inject(OP_OPEN, 1, 2, EINTR);
    ck_assert_int_eq(deliver(md, "x", NULL, 0), 0);
    ck_assert_int_eq(count("new"), 1);
    /* No clock. */
    reset_calls();
    inject(OP_OPEN, 0, 0, 0);
    inject(OP_CLOCK, 1, 1, EINVAL);
    ck_assert_int_eq(smtpx_maildir_begin(md, &m), SMTPX_ERR_IO);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(count("tmp"), 0);
    /* An unlink that fails while aborting changes nothing for the caller. */
    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    reset_calls();
    inject(OP_UNLINK, 1, 1, EIO);
    smtpx_maildir_abort(m);
    ck_assert_int_eq(fs.calls[OP_UNLINK], 1);
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_nomem)
{
    /* Fail each allocation of a whole delivery in turn: NOMEM, no leak, no
     * file left. */
    long n;

    for (n = 1;; n++) {
        failmalloc fm = {.fail_at = 0};
        smtpx_mem mem = failmalloc_mem(&fm);
        smtpx_maildir *md;
        smtpx_maildir_msg *m;
        int rc;

        fm.fail_at = n;
        rc = md_open(&md, md_path, SMTPX_MAILDIR_CREATE, &mem);
        if (rc != 0) {
            ck_assert_int_eq(rc, SMTPX_ERR_NOMEM);
            ck_assert_ptr_null(md);
            ck_assert_int_eq(fm.live, 0);
            continue;
        }
        rc = smtpx_maildir_begin(md, &m);
        if (rc != 0) {
            ck_assert_int_eq(rc, SMTPX_ERR_NOMEM);
            ck_assert_ptr_null(m);
            ck_assert_int_eq(count("tmp"), 0);
            smtpx_maildir_free(md);
            ck_assert_int_eq(fm.live, 0);
            continue;
        }
        ck_assert_int_eq(smtpx_maildir_write(m, "a\r\nb\r\n", 6), 0);
        ck_assert_int_eq(smtpx_maildir_commit(m, NULL, 0), 0);
        smtpx_maildir_free(md);
        ck_assert_int_eq(fm.live, 0);
        if (fm.failures == 0)
            break;
    }
    ck_assert_int_gt(n, 3);
    ck_assert_int_eq(count("tmp"), 0);
    ck_assert_int_eq(count("new"), 1);
}
END_TEST

/* ---- tmp/ leftovers ------------------------------------------------------ */

/* put_aged - a file md_path/sub/name last modified and read `age` seconds ago
 */
static void put_aged(const char *sub, const char *name, long age)
{
    char path[512];
    struct timespec t[2];
    int fd;

    snprintf(path, sizeof(path), "%s/%s/%s", md_path, sub, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "partial", 7), 7);
    ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &t[0]), 0);
    t[0].tv_sec -= age;
    t[1] = t[0];
    ck_assert_int_eq(futimens(fd, t), 0);
    close(fd);
}

static int exists(const char *sub, const char *name)
{
    char path[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s/%s", md_path, sub, name);
    return lstat(path, &st) == 0;
}

START_TEST(test_clean_tmp)
{
    /* Only regular files in tmp/ untouched for more than 36 hours go; a
     * delivery in progress, new/, a directory and a link stay. */
    const long hour = 3600;
    smtpx_maildir *md;
    char path[512], target[512];
    struct timespec t[2];
    size_t removed = 99;

    use_fs = NULL;
    md = open_md(0);
    put_aged("tmp", "1.M1P1Q1.dead", 37 * hour);
    put_aged("tmp", "2.M2P2Q2.old", 100 * 24 * hour);
    put_aged("tmp", "3.M3P3Q3.young", 35 * hour);
    put_aged("tmp", "4.M4P4Q4.now", 0);
    put_aged("new", "5.M5P5Q5.delivered", 100 * hour);
    /* Modified long ago but read an hour ago: someone uses it. */
    put_aged("tmp", "6.M6P6Q6.read", 40 * hour);
    snprintf(path, sizeof(path), "%s/tmp/6.M6P6Q6.read", md_path);
    ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &t[0]), 0);
    t[0].tv_sec -= hour;
    t[1].tv_sec = t[0].tv_sec - 39 * hour;
    t[1].tv_nsec = 0;
    ck_assert_int_eq(utimensat(AT_FDCWD, path, t, 0), 0);
    /* A directory and a link, both old: not delivery leftovers. */
    snprintf(path, sizeof(path), "%s/tmp/7.dir", md_path);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    t[0].tv_sec -= 100 * hour;
    t[1] = t[0];
    ck_assert_int_eq(utimensat(AT_FDCWD, path, t, 0), 0);
    snprintf(path, sizeof(path), "%s/tmp/8.link", md_path);
    snprintf(target, sizeof(target), "%s/new/5.M5P5Q5.delivered", md_path);
    ck_assert_int_eq(symlink(target, path), 0);
    ck_assert_int_eq(utimensat(AT_FDCWD, path, t, AT_SYMLINK_NOFOLLOW), 0);

    ck_assert_int_eq(
        smtpx_maildir_clean_tmp(md, SMTPX_MAILDIR_TMP_MAX_AGE, &removed), 0);
    ck_assert_uint_eq(removed, 2);
    ck_assert_int_eq(exists("tmp", "1.M1P1Q1.dead"), 0);
    ck_assert_int_eq(exists("tmp", "2.M2P2Q2.old"), 0);
    ck_assert_int_eq(exists("tmp", "3.M3P3Q3.young"), 1);
    ck_assert_int_eq(exists("tmp", "4.M4P4Q4.now"), 1);
    ck_assert_int_eq(exists("tmp", "6.M6P6Q6.read"), 1);
    ck_assert_int_eq(exists("tmp", "7.dir"), 1);
    ck_assert_int_eq(exists("tmp", "8.link"), 1);
    ck_assert_int_eq(exists("new", "5.M5P5Q5.delivered"), 1);

    /* Nothing more to do; a shorter age takes the young ones. */
    ck_assert_int_eq(
        smtpx_maildir_clean_tmp(md, SMTPX_MAILDIR_TMP_MAX_AGE, &removed), 0);
    ck_assert_uint_eq(removed, 0);
    ck_assert_int_eq(smtpx_maildir_clean_tmp(md, 2 * hour, NULL), 0);
    ck_assert_int_eq(exists("tmp", "3.M3P3Q3.young"), 0);
    ck_assert_int_eq(exists("tmp", "4.M4P4Q4.now"), 1);
    ck_assert_int_eq(exists("tmp", "6.M6P6Q6.read"), 1);

    /* A message being delivered is never taken. */
    {
        smtpx_maildir_msg *m;
        char name[256];
        ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
        ck_assert_int_eq(smtpx_maildir_write(m, "x\r\n", 3), 0);
        /* Only the file read an hour ago is older than a minute. */
        ck_assert_int_eq(smtpx_maildir_clean_tmp(md, 60, &removed), 0);
        ck_assert_uint_eq(removed, 1);
        ck_assert_int_eq(exists("tmp", "6.M6P6Q6.read"), 0);
        ck_assert_int_eq(smtpx_maildir_commit(m, name, sizeof(name)), 0);
        ck_assert_int_eq(exists("new", name), 1);
    }

    ck_assert_int_eq(smtpx_maildir_clean_tmp(NULL, 0, &removed),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(removed, 0);
    /* tmp/ gone: an error, not a crash. */
    snprintf(path, sizeof(path), "%s/tmp", md_path);
    rm_rf(path);
    ck_assert_int_eq(smtpx_maildir_clean_tmp(md, 0, &removed), SMTPX_ERR_IO);
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_clean_tmp_unlink_fails)
{
    /* A file that cannot be removed is an error with its errno; the
     * others are still removed.  ENOENT (another cleaner was first) is
     * not an error. */
    smtpx_maildir *md = open_md(0);
    size_t removed = 9;

    put_aged("tmp", "1.M1P1Q1.a", 40 * 3600);
    put_aged("tmp", "2.M2P2Q2.b", 40 * 3600);
    reset_calls();
    inject(OP_UNLINK, 1, 1, EACCES);
    errno = 0;
    ck_assert_int_eq(
        smtpx_maildir_clean_tmp(md, SMTPX_MAILDIR_TMP_MAX_AGE, &removed),
        SMTPX_ERR_IO);
    ck_assert_int_eq(errno, EACCES);
    ck_assert_uint_eq(removed, 1);
    ck_assert_int_eq(count("tmp"), 1);
    reset_calls();
    inject(OP_UNLINK, 1, 1, ENOENT);
    ck_assert_int_eq(
        smtpx_maildir_clean_tmp(md, SMTPX_MAILDIR_TMP_MAX_AGE, &removed), 0);
    ck_assert_uint_eq(removed, 0);
    /* tmp/ cannot be opened. */
    reset_calls();
    inject(OP_OPEN, 1, 1, EMFILE);
    ck_assert_int_eq(
        smtpx_maildir_clean_tmp(md, SMTPX_MAILDIR_TMP_MAX_AGE, &removed),
        SMTPX_ERR_IO);
    ck_assert_int_eq(errno, EMFILE);
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_clean_tmp_nomem)
{
    failmalloc fm = {.fail_at = 1};
    smtpx_mem mem;
    smtpx_maildir *md;
    size_t removed = 9;

    use_fs = NULL;
    md = open_md(0);
    smtpx_maildir_free(md);
    mem = failmalloc_mem(&fm);
    fm.fail_at = 0;
    ck_assert_int_eq(smtpx_maildir_open(&md, md_path, 0, &mem), 0);
    put_aged("tmp", "1.M1P1Q1.dead", 40 * 3600);
    fm.fail_at = fm.count + 1;
    ck_assert_int_eq(
        smtpx_maildir_clean_tmp(md, SMTPX_MAILDIR_TMP_MAX_AGE, &removed),
        SMTPX_ERR_NOMEM);
    ck_assert_uint_eq(removed, 0);
    ck_assert_int_eq(exists("tmp", "1.M1P1Q1.dead"), 1);
    smtpx_maildir_free(md);
    ck_assert_int_eq(fm.live, 0);
}
END_TEST

/* ---- group commit -----------------------------------------------------------
 */

/* begin_text - a message begun and written, not committed */
static smtpx_maildir_msg *begin_text(smtpx_maildir *md, const char *text)
{
    smtpx_maildir_msg *m;

    ck_assert_int_eq(smtpx_maildir_begin(md, &m), 0);
    ck_assert_int_eq(smtpx_maildir_write(m, text, strlen(text)), 0);
    return m;
}

/* ops - how many times op appears in the log */
static int ops(const char *op)
{
    const char *p = fs.log;
    size_t n = strlen(op);
    int k = 0;

    while ((p = strstr(p, op)) != NULL) {
        if ((p == fs.log || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            k++;
        p += n;
    }
    return k;
}

START_TEST(test_group_commit)
{
    smtpx_maildir *md = open_md(0);
    smtpx_maildir_msg *m[4];
    char names[4][256], buf[256];
    int results[4], i;

    m[0] = begin_text(md, "Subject: 0\r\n\r\nzero\r\n");
    m[1] = begin_text(md, "Subject: 1\r\n\r\none\r");
    m[2] = begin_text(md, "Subject: 2\r\n\r\ntwo\r\n");
    m[3] = begin_text(md, "Subject: 3\r\n\r\nthree\r\n");
    /* Two are synced first (as workers would), then all commit. */
    reset_calls();
    ck_assert_int_eq(smtpx_maildir_sync(m[1]), 0);
    ck_assert_int_eq(smtpx_maildir_sync(m[1]), 0); /* again: nothing */
    ck_assert_int_eq(smtpx_maildir_sync(m[3]), 0);
    ck_assert_str_eq(fs.log, "write fsync close write fsync close");
    ck_assert_int_eq(count("new"), 0);
    ck_assert_int_eq(count("tmp"), 4);
    reset_calls();
    ck_assert_int_eq(
        smtpx_maildir_commit_group(m, 4, results, names[0], sizeof(names[0])),
        0);
    /* The other two synced, four renames, new/ synced once. */
    ck_assert_int_eq(ops("rename"), 4);
    ck_assert_int_eq(ops("fsync"), 3);
    ck_assert_str_eq(fs.log, "write fsync close write fsync close rename "
                             "rename rename rename open fsync close");
    ck_assert_int_eq(count("new"), 4);
    ck_assert_int_eq(count("tmp"), 0);
    for (i = 0; i < 4; i++) {
        static const char *const want[4] = {
            "Subject: 0\n\nzero\n", "Subject: 1\n\none\r",
            "Subject: 2\n\ntwo\n", "Subject: 3\n\nthree\n"};
        size_t n;
        ck_assert_int_eq(results[i], 0);
        n = slurp("new", names[i], buf, sizeof(buf));
        ck_assert_uint_eq(n, strlen(want[i]));
        ck_assert(memcmp(buf, want[i], n) == 0);
    }
    /* Nothing to do is no error. */
    ck_assert_int_eq(smtpx_maildir_commit_group(NULL, 0, NULL, NULL, 0), 0);
    ck_assert_int_eq(smtpx_maildir_commit_group(NULL, 1, results, NULL, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_maildir_sync(NULL), SMTPX_ERR_INVALID_ARGUMENT);
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_group_faults)
{
    smtpx_maildir *md = open_md(0);
    smtpx_maildir_msg *m[5];
    char names[5][256];
    int results[5], i;

    for (i = 0; i < 5; i++)
        m[i] = begin_text(md, "x\r\n");
    /* A file sync (ENOSPC) and a rename (EIO) fail: those two only; a NULL
     * entry and a name that does not fit are refused on their own. */
    reset_calls();
    inject(OP_FSYNC, 1, 1, ENOSPC);
    inject(OP_RENAME, 1, 1, EIO); /* m[0] never gets there */
    smtpx_maildir_abort(m[3]);
    m[3] = NULL;
    {
        smtpx_maildir_msg *lost = begin_text(md, "y\r\n");
        smtpx_maildir_msg *two[2] = {lost, m[4]};
        int r2[2];
        char tiny[2][4];
        /* Names of 4 bytes fit no Maildir name: both discarded. */
        reset_calls();
        ck_assert_int_eq(
            smtpx_maildir_commit_group(two, 2, r2, tiny[0], sizeof(tiny[0])),
            0);
        ck_assert_int_eq(r2[0], SMTPX_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(r2[1], SMTPX_ERR_INVALID_ARGUMENT);
        ck_assert_str_eq(tiny[0], "");
        m[4] = NULL;
        ck_assert_int_eq(count("tmp"), 3);
    }
    reset_calls();
    ck_assert_int_eq(
        smtpx_maildir_commit_group(m, 5, results, names[0], sizeof(names[0])),
        0);
    ck_assert_int_eq(results[0], SMTPX_ERR_NOSPACE);
    ck_assert_int_eq(results[1], SMTPX_ERR_IO);
    ck_assert_int_eq(results[2], 0);
    ck_assert_int_eq(results[3], SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(results[4], SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_str_eq(names[0], "");
    ck_assert_str_eq(names[1], "");
    ck_assert_str_ne(names[2], "");
    ck_assert_int_eq(count("new"), 1);
    ck_assert_int_eq(count("tmp"), 0);
    /* new/ cannot be synced: nothing of the group may stay. */
    memset(&fs.fail_at, 0, sizeof(fs.fail_at));
    for (i = 0; i < 3; i++)
        m[i] = begin_text(md, "z\r\n");
    ck_assert_int_eq(smtpx_maildir_sync(m[0]), 0);
    reset_calls();
    /* syncs: m[1], m[2], then new/ (the third) */
    inject(OP_FSYNC, 3, 1, EIO);
    ck_assert_int_eq(smtpx_maildir_commit_group(m, 3, results, NULL, 0), 0);
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(results[i], SMTPX_ERR_IO);
    ck_assert_int_eq(count("new"), 1); /* the earlier one only */
    ck_assert_int_eq(count("tmp"), 0);
    /* A write error is sticky through sync and commit. */
    memset(&fs.fail_at, 0, sizeof(fs.fail_at));
    ck_assert_int_eq(smtpx_maildir_begin(md, &m[0]), 0);
    reset_calls();
    inject(OP_WRITE, 1, 1, EDQUOT);
    ck_assert_int_eq(smtpx_maildir_write(m[0], "w", 1), 0); /* buffered */
    ck_assert_int_eq(smtpx_maildir_sync(m[0]), SMTPX_ERR_NOSPACE);
    ck_assert_int_eq(smtpx_maildir_sync(m[0]), SMTPX_ERR_NOSPACE);
    ck_assert_int_eq(errno, EDQUOT);
    ck_assert_int_eq(smtpx_maildir_commit_group(m, 1, results, NULL, 0), 0);
    ck_assert_int_eq(results[0], SMTPX_ERR_NOSPACE);
    ck_assert_int_eq(count("tmp"), 0);
    smtpx_maildir_free(md);
}
END_TEST

START_TEST(test_group_two_maildirs)
{
    /* One sync per new/ directory: two Maildirs, two syncs. */
    smtpx_maildir *a = open_md(0), *b;
    smtpx_maildir_msg *m[4];
    char other[160];
    int results[4], i;

    snprintf(other, sizeof(other), "%s/Other", base);
    ck_assert_int_eq(
        md_open(&b, other, SMTPX_MAILDIR_CREATE | SMTPX_MAILDIR_CRLF, NULL), 0);
    m[0] = begin_text(a, "a1\r\n");
    m[1] = begin_text(b, "b1\r\n");
    m[2] = begin_text(a, "a2\r\n");
    m[3] = begin_text(b, "b2\r\n");
    reset_calls();
    ck_assert_int_eq(smtpx_maildir_commit_group(m, 4, results, NULL, 0), 0);
    for (i = 0; i < 4; i++)
        ck_assert_int_eq(results[i], 0);
    ck_assert_int_eq(ops("fsync"), 4 + 2);
    ck_assert_int_eq(count("new"), 2);
    smtpx_maildir_free(a);
    smtpx_maildir_free(b);
}
END_TEST

Suite *suite_maildir(void)
{
    Suite *s = suite_create("maildir");
    TCase *tc = tcase_create("deliver");

    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_roundtrip_lf);
    tcase_add_test(tc, test_roundtrip_crlf);
    tcase_add_test(tc, test_crlf_split);
    tcase_add_test(tc, test_split_everywhere);
    tcase_add_test(tc, test_large);
    tcase_add_test(tc, test_buffered);
    tcase_add_test(tc, test_abort);
    tcase_add_test(tc, test_unique);
    tcase_add_test(tc, test_name_clash);
    tcase_add_test(tc, test_host_escape);
    tcase_add_test(tc, test_missing_dir);
    tcase_add_test(tc, test_args);
    tcase_add_test(tc, test_name_too_small);
    tcase_add_test(tc, test_default_fs);
    tcase_add_test(tc, test_clean_tmp);
    tcase_add_test(tc, test_clean_tmp_unlink_fails);
    tcase_add_test(tc, test_clean_tmp_nomem);
    tcase_add_test(tc, test_group_commit);
    tcase_add_test(tc, test_group_two_maildirs);
    suite_add_tcase(s, tc);
    tc = tcase_create("faults");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_write_enospc);
    tcase_add_test(tc, test_flush_edquot);
    tcase_add_test(tc, test_write_eio);
    tcase_add_test(tc, test_short_writes);
    tcase_add_test(tc, test_fsync_fail);
    tcase_add_test(tc, test_close_fail);
    tcase_add_test(tc, test_rename_fail);
    tcase_add_test(tc, test_dirsync_fail);
    tcase_add_test(tc, test_other_faults);
    tcase_add_test(tc, test_nomem);
    tcase_add_test(tc, test_group_faults);
    suite_add_tcase(s, tc);
    return s;
}
