/*
 * fuzz_maildir - the Maildir writer's content path over an in-memory file
 * system (the smtpx__fs seam of mta/maildir.h), with faults.
 *
 * Input: octet 0 chooses the options (CRLF kept or made LF, the host name,
 * short writes, a large message, abort instead of commit), octets 1 and 2
 * which file-system call fails and with which errno; the rest is cut into
 * pieces (one length octet, then that many octets) written one after the
 * other, for two messages in a row.  Checked:
 *  - a committed message is in new/ under the name commit gave, and holds
 *    exactly the data with CRLF made LF (a bare CR kept, a CRLF split
 *    across two writes still seen as one), or the data as is with CRLF;
 *    smtpx_maildir_msg_size() counted it so;
 *  - after any failure or an abort no file is left in tmp/ or new/, and
 *    the error says NOSPACE exactly for ENOSPC and EDQUOT;
 *  - EINTR and short writes are retried and change nothing;
 *  - every descriptor opened is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/maildir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NFILES 8

typedef struct file {
    int used;
    char path[512];
    uint8_t *data;
    size_t len, cap;
} file;

static struct {
    file files[NFILES];
    int fd_file[64]; /* fd - 3 -> file index, -2 a directory, -1 free */
    long calls, fail_at;
    int fail_errno;
    int short_writes;
    const char *host;
} fs;

/* fs_fault - the failure asked for at this call, if any */
static int fs_fault(void)
{
    if (++fs.calls == fs.fail_at) {
        errno = fs.fail_errno;
        return 1;
    }
    return 0;
}

static int fs_newfd(int what)
{
    int i;

    for (i = 0; i < 64; i++)
        if (fs.fd_file[i] == -1) {
            fs.fd_file[i] = what;
            return i + 3;
        }
    abort(); /* descriptors leak */
}

static file *fs_find(const char *path)
{
    int i;

    for (i = 0; i < NFILES; i++)
        if (fs.files[i].used && strcmp(fs.files[i].path, path) == 0)
            return &fs.files[i];
    return NULL;
}

static int fs_open(const char *path, int flags, mode_t mode)
{
    int i;

    (void)mode;
    if (fs_fault())
        return -1;
    if (flags & O_DIRECTORY)
        return fs_newfd(-2);
    if (!(flags & O_CREAT) || !(flags & O_EXCL) || strlen(path) >= 512)
        abort(); /* the writer only ever makes new files */
    if (fs_find(path) != NULL) {
        errno = EEXIST;
        return -1;
    }
    for (i = 0; i < NFILES; i++)
        if (!fs.files[i].used) {
            fs.files[i].used = 1;
            strcpy(fs.files[i].path, path);
            fs.files[i].len = 0;
            return fs_newfd(i);
        }
    errno = ENOSPC;
    return -1;
}

static file *fs_fd(int fd)
{
    if (fd < 3 || fd >= 67 || fs.fd_file[fd - 3] < 0)
        abort(); /* a descriptor that is not open */
    return &fs.files[fs.fd_file[fd - 3]];
}

static ssize_t fs_write(int fd, const void *buf, size_t len)
{
    file *f = fs_fd(fd);

    if (len == 0)
        abort();
    if (fs_fault())
        return -1;
    if (fs.short_writes && len > 1)
        len = len / 2;
    if (f->len + len > f->cap) {
        f->cap = (f->len + len) * 2;
        f->data = realloc(f->data, f->cap);
        if (f->data == NULL)
            abort();
    }
    memcpy(f->data + f->len, buf, len);
    f->len += len;
    return (ssize_t)len;
}

static int fs_fsync(int fd)
{
    if (fd < 3 || fd >= 67 || fs.fd_file[fd - 3] == -1)
        abort();
    return fs_fault() ? -1 : 0;
}

static int fs_close(int fd)
{
    if (fd < 3 || fd >= 67 || fs.fd_file[fd - 3] == -1)
        abort(); /* closed twice */
    fs.fd_file[fd - 3] = -1;
    return fs_fault() ? -1 : 0;
}

static int fs_rename(const char *from, const char *to)
{
    file *f = fs_find(from);

    if (fs_fault())
        return -1;
    if (f == NULL || strlen(to) >= 512 || fs_find(to) != NULL)
        abort();
    strcpy(f->path, to);
    return 0;
}

static int fs_unlink(const char *path)
{
    file *f = fs_find(path);

    if (f == NULL) {
        errno = ENOENT;
        return -1;
    }
    f->used = 0;
    return 0;
}

static int fs_mkdir(const char *path, mode_t mode)
{
    (void)path;
    (void)mode;
    if (fs_fault())
        return -1;
    errno = EEXIST;
    return -1;
}

static int fs_clock(struct timespec *ts)
{
    ts->tv_sec = 1700000000;
    ts->tv_nsec = 123456789;
    return 0;
}

static int fs_gethostname(char *name, size_t size)
{
    strncpy(name, fs.host, size);
    return 0;
}

/* No fdatasync: file syncs go through fs_fsync too. */
static const smtpx__fs fake = {fs_open,        fs_write,  fs_fsync, fs_close,
                               fs_rename,      fs_unlink, fs_mkdir, fs_clock,
                               fs_gethostname, NULL};

/* convert - the reference: CRLF to LF over the whole data */
static size_t convert(const uint8_t *in, size_t len, uint8_t *out, int crlf)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        if (!crlf && in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
            continue;
        out[n++] = in[i];
    }
    return n;
}

static int files_in(const char *dir)
{
    int i, n = 0;
    size_t k = strlen(dir);

    for (i = 0; i < NFILES; i++)
        if (fs.files[i].used && strncmp(fs.files[i].path, dir, k) == 0)
            n++;
    return n;
}

static void one_message(smtpx_maildir *md, const uint8_t *data, size_t size,
                        unsigned opts)
{
    smtpx_maildir_msg *m;
    uint8_t *whole, *want;
    size_t pos = 0, total = 0, wlen;
    char name[256], path[512];
    int rc, failed = 0, crlf = (opts & 1) != 0;
    file *f;

    /* The data: the pieces, or one piece repeated past the 64 KiB
     * buffer so that the buffer is bypassed and flushed when full. */
    whole = malloc(size + ((opts & 8) ? 70000 + 256 : 0) + 1);
    if (whole == NULL)
        abort();
    rc = smtpx_maildir_begin(md, &m);
    if (rc != 0) {
        if (rc != SMTPX_ERR_IO && rc != SMTPX_ERR_NOSPACE && m != NULL)
            abort();
        free(whole);
        return;
    }
    while (pos < size) {
        size_t len = data[pos++], reps = 1, r;
        if (len > size - pos)
            len = size - pos;
        if ((opts & 8) && len > 0)
            reps = 70000 / len + 1;
        for (r = 0; r < reps; r++) {
            memcpy(whole + total, data + pos, len);
            if (smtpx_maildir_write(m, data + pos, len) != 0)
                failed = 1;
            total += len;
        }
        pos += len;
        if (opts & 8)
            opts &= ~8u; /* one large piece is enough */
    }
    want = malloc(total ? total : 1);
    if (want == NULL)
        abort();
    wlen = convert(whole, total, want, crlf);
    if (!failed &&
        smtpx_maildir_msg_size(m) !=
            wlen - (size_t)(!crlf && total > 0 && whole[total - 1] == '\r'))
        abort();
    if (opts & 16) {
        smtpx_maildir_abort(m);
        rc = -1;
    } else {
        rc = smtpx_maildir_commit(m, name, sizeof(name));
    }
    if (rc == 0) {
        if (failed)
            abort(); /* a failed write must fail the commit */
        snprintf(path, sizeof(path), "MD/new/%s", name);
        f = fs_find(path);
        if (f == NULL || f->len != wlen ||
            (wlen > 0 && memcmp(f->data, want, wlen) != 0))
            abort();
        f->used = 0; /* delivered: the next message starts clean */
    } else {
        if (rc != -1 &&
            (rc == SMTPX_ERR_NOSPACE) != (errno == ENOSPC || errno == EDQUOT))
            abort();
    }
    if (files_in("MD/tmp/") != 0 || files_in("MD/new/") != 0)
        abort();
    free(whole);
    free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *hosts[4] = {"mx.test", "a/b:c", "", "h"};
    static const int errnos[4] = {ENOSPC, EIO, EINTR, EDQUOT};
    smtpx_maildir *md;
    unsigned opts;
    int i, rc;

    if (size < 3)
        return 0;
    memset(&fs, 0, sizeof(fs));
    memset(fs.fd_file, -1, sizeof(fs.fd_file));
    opts = data[0];
    fs.host = hosts[(opts >> 5) & 3];
    fs.short_writes = (opts & 2) != 0;
    fs.fail_at = data[1];
    fs.fail_errno = errnos[data[2] & 3];
    rc = smtpx__maildir_open_fs(&md, "MD/", (opts & 1) ? SMTPX_MAILDIR_CRLF : 0,
                                NULL, &fake);
    if (rc == 0) {
        size_t half = (size - 3) / 2;
        one_message(md, data + 3, half, opts);
        one_message(md, data + 3 + half, size - 3 - half, opts & ~8u);
        smtpx_maildir_free(md);
    } else if (md != NULL) {
        abort();
    }
    for (i = 0; i < 64; i++)
        if (fs.fd_file[i] != -1)
            abort(); /* a descriptor left open */
    for (i = 0; i < NFILES; i++)
        free(fs.files[i].data);
    return 0;
}
