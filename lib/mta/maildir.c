/*
 * maildir - local delivery into a Maildir.
 *
 * Exports smtpx_maildir_open(), _free(), _begin(), _write(), _commit(),
 * _sync(), _commit_group(), _abort(), _msg_size() and _clean_tmp() of
 * <libsmtpx/mta.h>, and the test seam smtpx__maildir_open_fs() of
 * maildir.h.
 *
 * A message is stored as the Maildir format asks
 * (https://cr.yp.to/proto/maildir.html): a file with the unique name
 * SECONDS.MmicrosecondsPpidQcounter.HOST is created in tmp/ (O_EXCL, so an
 * existing name is never reused: the next counter is tried), written,
 * fsync'ed and closed, renamed into new/, and new/ is fsync'ed so that the
 * rename itself survives a crash.  Only then does commit return 0: a
 * server that answers 250 after it has taken responsibility for the
 * message (RFC 5321 6.1) must not lose it if the host crashes.
 *
 * Invariants:
 *  - On any failure no file of the message is left behind, and errno is
 *    what the failing system call left.
 *  - Write errors are sticky.  The file is removed at the first one, so
 *    that a message that will not be delivered does not keep a disk full
 *    while the rest of it is read from the client.
 *  - Line ends: CRLF becomes LF unless SMTPX_MAILDIR_CRLF; a CR at the end
 *    of one write waits (pending_cr) until the next byte shows whether it
 *    starts a CRLF; a bare CR is kept.  The data is scanned with memchr.
 *  - A Maildir holds no buffer; a message holds one write buffer, which
 *    large pieces of data bypass.
 *  - A Maildir and its messages belong to one thread at a time.  Syncing
 *    and committing read only what the Maildir fixed at open (the file
 *    calls, the path of new/), so they may run on another thread than the
 *    one that begins messages on it.
 *  - Group commit (smtpx_maildir_commit_group): each file's data is made
 *    durable (fdatasync), all are renamed, then each new/ directory is
 *    fsync'ed once for all of them: the same order as commit, with the
 *    directory's sync shared.  Files synced by several threads at once
 *    also share the journal's commits.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/mem.h"
#include "mta/maildir.h"

/* Size of the write buffer of a message. */
#define MAILDIR_BUF_SIZE 65536
/* Largest single write(2): regular files take it whole on Linux. */
#define MAILDIR_WRITE_MAX ((size_t)1 << 30)
/* Names tried in tmp/ before begin gives up (EEXIST every time). */
#define MAILDIR_NAME_TRIES 100
/* Room for "/tmp/" and the name without its host part: three numbers of
 * up to 20 digits and a sign, the microseconds, and the separators. */
#define MAILDIR_NAME_FIXED 96
/* The host name's size before escaping (POSIX HOST_NAME_MAX is 255 at
 * least; Linux uses 64). */
#define MAILDIR_HOST_SIZE 256

struct smtpx_maildir {
    smtpx_mem mem_store; /* the caller's allocator, copied */
    const smtpx_mem *mem;
    const smtpx__fs *fs;
    unsigned flags;
    char *path; /* the Maildir, without trailing slashes */
    size_t path_len;
    char *new_dir; /* path/new, fsync'ed at commit */
    char *host;    /* the host name, escaped for a file name */
    size_t host_len;
    uint64_t counter; /* the Q part of unique names */
};

struct smtpx_maildir_msg {
    smtpx_maildir *md;
    int fd;        /* -1 once closed */
    int err;       /* sticky SMTPX_ERR_*, 0 if none */
    int err_errno; /* errno of the sticky error */
    unsigned in_tmp : 1;
    unsigned in_new : 1;
    unsigned pending_cr : 1;
    unsigned dir_done : 1; /* commit_group: its new/ was synced */
    uint64_t size;
    unsigned char *buf; /* MAILDIR_BUF_SIZE bytes; NULL after a failure */
    size_t used;
    char *tmp_path;   /* path/tmp/NAME */
    char *new_path;   /* path/new/NAME, in the same allocation */
    const char *name; /* NAME, inside new_path */
};

/* ---- the file-system seam ------------------------------------------------ */

static int maildir_real_open(const char *path, int flags, mode_t mode)
{
    return open(path, flags, mode);
}

static int maildir_real_clock(struct timespec *ts)
{
    return clock_gettime(CLOCK_REALTIME, ts);
}

static const smtpx__fs maildir_fs_real = {.open = maildir_real_open,
                                          .write = write,
                                          .fsync = fsync,
                                          .close = close,
                                          .rename = rename,
                                          .unlink = unlink,
                                          .mkdir = mkdir,
                                          .clock = maildir_real_clock,
                                          .gethostname = gethostname,
                                          .fdatasync = fdatasync};

/* The real calls: what smtpx_maildir_open() uses. */

const smtpx__fs *smtpx__maildir_fs_default(void)
{
    return &maildir_fs_real;
}

/* ---- helpers ------------------------------------------------------------ */

static int maildir_open_retry(const smtpx__fs *fs, const char *path, int flags,
                              mode_t mode)
{
    int fd;

    do {
        fd = fs->open(path, flags, mode);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

static int maildir_fsync_retry(const smtpx__fs *fs, int fd)
{
    int rc;

    do {
        rc = fs->fsync(fd);
    } while (rc != 0 && errno == EINTR);
    return rc;
}

/* maildir_datasync_retry - the file's data and what is needed to read it
 * back (fdatasync; fsync where the seam has none) */
static int maildir_datasync_retry(const smtpx__fs *fs, int fd)
{
    int rc;

    if (fs->fdatasync == NULL)
        return maildir_fsync_retry(fs, fd);
    do {
        rc = fs->fdatasync(fd);
    } while (rc != 0 && errno == EINTR);
    return rc;
}

/* maildir_is_dir - 0 if path opens as a directory, else -1 with errno */
static int maildir_is_dir(const smtpx__fs *fs, const char *path)
{
    int fd =
        maildir_open_retry(fs, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    (void)fs->close(fd);
    return 0;
}

/* maildir_host - the host name with '/' as \057 and ':' as \072, as the
 * Maildir format asks: neither may appear in the name */
static int maildir_host(smtpx_maildir *md)
{
    char raw[MAILDIR_HOST_SIZE];
    size_t i, n = 0;
    char *p;

    if (md->fs->gethostname(raw, sizeof(raw)) != 0)
        raw[0] = '\0';
    raw[sizeof(raw) - 1] = '\0'; /* truncation need not terminate it */
    if (raw[0] == '\0')
        strcpy(raw, "localhost");
    for (i = 0; raw[i] != '\0'; i++)
        n += raw[i] == '/' || raw[i] == ':' ? 4 : 1;
    p = md->host = smtpx__malloc(md->mem, n + 1);
    if (p == NULL)
        return SMTPX_ERR_NOMEM;
    for (i = 0; raw[i] != '\0'; i++) {
        if (raw[i] == '/' || raw[i] == ':') {
            memcpy(p, raw[i] == '/' ? "\\057" : "\\072", 4);
            p += 4;
        } else {
            *p++ = raw[i];
        }
    }
    *p = '\0';
    md->host_len = n;
    return 0;
}

/* maildir_dirs - create (with SMTPX_MAILDIR_CREATE) and check the Maildir
 * and its three subdirectories */
static int maildir_dirs(smtpx_maildir *md)
{
    static const char *const subs[] = {"tmp", "new", "cur"};
    const smtpx__fs *fs = md->fs;
    char *sub;
    size_t i;
    int rc = 0, e;

    sub = smtpx__malloc(md->mem, md->path_len + sizeof("/tmp"));
    if (sub == NULL)
        return SMTPX_ERR_NOMEM;
    if ((md->flags & SMTPX_MAILDIR_CREATE) && fs->mkdir(md->path, 0700) != 0 &&
        errno != EEXIST)
        rc = smtpx__errno_code(errno);
    for (i = 0; rc == 0 && i < sizeof(subs) / sizeof(subs[0]); i++) {
        memcpy(sub, md->path, md->path_len);
        sub[md->path_len] = '/';
        memcpy(sub + md->path_len + 1, subs[i], sizeof("tmp"));
        if ((md->flags & SMTPX_MAILDIR_CREATE) && fs->mkdir(sub, 0700) != 0 &&
            errno != EEXIST)
            rc = smtpx__errno_code(errno);
        else if (maildir_is_dir(fs, sub) != 0)
            rc = SMTPX_ERR_IO;
    }
    e = errno;
    smtpx__free(md->mem, sub);
    errno = e;
    return rc;
}

/* ---- the Maildir --------------------------------------------------------- */

int smtpx_maildir_open(smtpx_maildir **out, const char *path, unsigned flags,
                       const smtpx_mem *mem)
{
    return smtpx__maildir_open_fs(out, path, flags, mem, NULL);
}

int smtpx__maildir_open_fs(smtpx_maildir **out, const char *path,
                           unsigned flags, const smtpx_mem *mem,
                           const smtpx__fs *fs)
{
    smtpx_maildir *md;
    size_t len;
    int rc, e;

    if (out != NULL)
        *out = NULL;
    if (out == NULL || path == NULL || path[0] == '\0' ||
        (flags & ~(SMTPX_MAILDIR_CREATE | SMTPX_MAILDIR_CRLF)) != 0 ||
        !smtpx__mem_valid(mem))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (mem == NULL)
        mem = smtpx__mem_default();
    md = smtpx__calloc(mem, 1, sizeof(*md));
    if (md == NULL)
        return SMTPX_ERR_NOMEM;
    md->mem_store = *mem;
    md->mem = &md->mem_store;
    md->fs = fs != NULL ? fs : &maildir_fs_real;
    md->flags = flags;
    len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    md->path_len = len;
    md->path = smtpx__strndup(mem, path, len);
    md->new_dir = smtpx__malloc(mem, len + sizeof("/new"));
    if (md->path == NULL || md->new_dir == NULL) {
        smtpx_maildir_free(md);
        return SMTPX_ERR_NOMEM;
    }
    memcpy(md->new_dir, path, len);
    memcpy(md->new_dir + len, "/new", sizeof("/new"));
    rc = maildir_host(md);
    if (rc == 0)
        rc = maildir_dirs(md);
    if (rc != 0) {
        e = errno;
        smtpx_maildir_free(md);
        errno = e;
        return rc;
    }
    *out = md;
    return 0;
}

void smtpx_maildir_free(smtpx_maildir *md)
{
    smtpx_mem mem;

    if (md == NULL)
        return;
    mem = md->mem_store;
    smtpx__free(&mem, md->path);
    smtpx__free(&mem, md->new_dir);
    smtpx__free(&mem, md->host);
    smtpx__free(&mem, md);
}

/* ---- a message ----------------------------------------------------------- */

static void maildir_msg_free(smtpx_maildir_msg *m)
{
    const smtpx_mem *mem = m->md->mem;

    smtpx__free(mem, m->buf);
    smtpx__free(mem, m->tmp_path);
    smtpx__free(mem, m);
}

/* maildir_discard - close and remove whatever the message has on disk,
 * leaving errno alone */
static void maildir_discard(smtpx_maildir_msg *m)
{
    const smtpx__fs *fs = m->md->fs;
    int e = errno;

    if (m->fd >= 0)
        (void)fs->close(m->fd);
    m->fd = -1;
    if (m->in_tmp)
        (void)fs->unlink(m->tmp_path);
    if (m->in_new)
        (void)fs->unlink(m->new_path);
    m->in_tmp = m->in_new = 0;
    errno = e;
}

/* maildir_fail - record a sticky error for errno value e and remove the
 * file at once */
static int maildir_fail(smtpx_maildir_msg *m, int e)
{
    maildir_discard(m);
    smtpx__free(m->md->mem, m->buf);
    m->buf = NULL;
    m->used = 0;
    m->pending_cr = 0;
    m->err = smtpx__errno_code(e);
    m->err_errno = e;
    errno = e;
    return m->err;
}

/* maildir_create - make the file in tmp/ under a name no file has */
static int maildir_create(smtpx_maildir_msg *m, size_t cap)
{
    smtpx_maildir *md = m->md;
    struct timespec ts;
    int tries, n;

    if (md->fs->clock(&ts) != 0)
        return smtpx__errno_code(errno);
    for (tries = 0; tries < MAILDIR_NAME_TRIES; tries++) {
        md->counter++;
        n = snprintf(m->tmp_path, cap, "%s/tmp/%lld.M%ldP%ldQ%llu.%s", md->path,
                     (long long)ts.tv_sec, (long)(ts.tv_nsec / 1000),
                     (long)getpid(), (unsigned long long)md->counter, md->host);
        if (n < 0 || (size_t)n >= cap) {
            errno = ENAMETOOLONG;
            return SMTPX_ERR_IO;
        }
        m->fd = maildir_open_retry(
            md->fs, m->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (m->fd >= 0) {
            m->in_tmp = 1;
            m->name = m->tmp_path + md->path_len + sizeof("/tmp/") - 1;
            memcpy(m->new_path, md->new_dir, md->path_len + 4);
            m->new_path[md->path_len + 4] = '/';
            strcpy(m->new_path + md->path_len + 5, m->name);
            m->name = m->new_path + md->path_len + 5;
            return 0;
        }
        if (errno != EEXIST)
            return smtpx__errno_code(errno);
    }
    return SMTPX_ERR_IO; /* errno is EEXIST */
}

int smtpx_maildir_begin(smtpx_maildir *md, smtpx_maildir_msg **out)
{
    smtpx_maildir_msg *m;
    size_t cap;
    int rc, e;

    if (out != NULL)
        *out = NULL;
    if (md == NULL || out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    m = smtpx__calloc(md->mem, 1, sizeof(*m));
    if (m == NULL)
        return SMTPX_ERR_NOMEM;
    m->md = md;
    m->fd = -1;
    cap = md->path_len + MAILDIR_NAME_FIXED + md->host_len + 1;
    m->buf = smtpx__malloc(md->mem, MAILDIR_BUF_SIZE);
    m->tmp_path = smtpx__malloc(md->mem, 2 * cap);
    if (m->buf == NULL || m->tmp_path == NULL) {
        maildir_msg_free(m);
        return SMTPX_ERR_NOMEM;
    }
    m->new_path = m->tmp_path + cap;
    rc = maildir_create(m, cap);
    if (rc != 0) {
        e = errno;
        maildir_msg_free(m);
        errno = e;
        return rc;
    }
    *out = m;
    return 0;
}

/* maildir_write_all - write(2) until done, through EINTR and short writes */
static int maildir_write_all(smtpx_maildir_msg *m, const unsigned char *p,
                             size_t n)
{
    const smtpx__fs *fs = m->md->fs;
    ssize_t w;

    while (n > 0) {
        w = fs->write(m->fd, p, n < MAILDIR_WRITE_MAX ? n : MAILDIR_WRITE_MAX);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return maildir_fail(m, errno);
        }
        if (w == 0) /* not for a regular file; do not spin */
            return maildir_fail(m, EIO);
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int maildir_flush(smtpx_maildir_msg *m)
{
    size_t n = m->used;

    m->used = 0;
    return maildir_write_all(m, m->buf, n);
}

/* maildir_emit - append converted bytes: through the buffer, or straight
 * to the file when the buffer is empty and the piece would fill it */
static int maildir_emit(smtpx_maildir_msg *m, const unsigned char *p, size_t n)
{
    size_t k;
    int rc;

    m->size += n;
    while (n > 0) {
        if (m->used == 0 && n >= MAILDIR_BUF_SIZE)
            return maildir_write_all(m, p, n);
        k = MAILDIR_BUF_SIZE - m->used;
        if (k > n)
            k = n;
        memcpy(m->buf + m->used, p, k);
        m->used += k;
        p += k;
        n -= k;
        if (m->used == MAILDIR_BUF_SIZE && (rc = maildir_flush(m)) != 0)
            return rc;
    }
    return 0;
}

int smtpx_maildir_write(smtpx_maildir_msg *m, const void *data, size_t len)
{
    const unsigned char *p = data, *end, *cr;
    int rc;

    if (m == NULL || (data == NULL && len > 0))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (m->err != 0) {
        errno = m->err_errno;
        return m->err;
    }
    if (len == 0)
        return 0;
    if (m->md->flags & SMTPX_MAILDIR_CRLF)
        return maildir_emit(m, p, len);
    end = p + len;
    if (m->pending_cr) {
        /* Followed by LF: the CR is dropped and the LF goes out with the
         * text below.  Otherwise it was a bare CR. */
        m->pending_cr = 0;
        if (*p != '\n' &&
            (rc = maildir_emit(m, (const unsigned char *)"\r", 1)) != 0)
            return rc;
    }
    while ((cr = memchr(p, '\r', (size_t)(end - p))) != NULL) {
        if (cr + 1 == end) {
            m->pending_cr = 1;
            return maildir_emit(m, p, (size_t)(cr - p));
        }
        /* CRLF: write up to the CR and let the LF start the next piece;
         * a bare CR is written with its piece. */
        rc = maildir_emit(m, p, (size_t)(cr - p) + (cr[1] != '\n'));
        if (rc != 0)
            return rc;
        p = cr + 1;
    }
    return maildir_emit(m, p, (size_t)(end - p));
}

uint64_t smtpx_maildir_msg_size(const smtpx_maildir_msg *m)
{
    return m != NULL ? m->size : 0;
}

void smtpx_maildir_abort(smtpx_maildir_msg *m)
{
    if (m == NULL)
        return;
    maildir_discard(m);
    maildir_msg_free(m);
}

/* maildir_sync_new - fsync new/ so that the rename is durable */
static int maildir_sync_new(smtpx_maildir_msg *m)
{
    const smtpx__fs *fs = m->md->fs;
    int fd, rc, e;

    fd = maildir_open_retry(fs, m->md->new_dir,
                            O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    rc = maildir_fsync_retry(fs, fd);
    e = errno;
    (void)fs->close(fd);
    errno = e;
    return rc;
}

/* maildir_sync_file - the file's part of commit: the rest of its data
 * written, synced (fdatasync if datasync, else fsync) and closed, its
 * buffer freed; on failure the file is removed and the sticky error
 * returned */
static int maildir_sync_file(smtpx_maildir_msg *m, int datasync)
{
    const smtpx__fs *fs = m->md->fs;
    int fd, rc;

    if (m->pending_cr) { /* the message ends in a bare CR */
        m->pending_cr = 0;
        rc = maildir_emit(m, (const unsigned char *)"\r", 1);
        if (rc != 0)
            return rc;
    }
    rc = maildir_flush(m);
    if (rc != 0)
        return rc;
    if ((datasync ? maildir_datasync_retry(fs, m->fd)
                  : maildir_fsync_retry(fs, m->fd)) != 0)
        return maildir_fail(m, errno);
    /* A close that fails after a successful fsync still reports an error
     * (NFS writes back at close).  The descriptor is gone either way: it
     * must not be closed again.  EINTR lost no data (POSIX 2008 leaves the
     * descriptor's state open; Linux has closed it). */
    fd = m->fd;
    m->fd = -1;
    if (fs->close(fd) != 0 && errno != EINTR)
        return maildir_fail(m, errno);
    smtpx__free(m->md->mem, m->buf);
    m->buf = NULL;
    return 0;
}

/* maildir_finish - the durable steps of commit; on failure the message's
 * files are removed and the sticky error is returned */
static int maildir_finish(smtpx_maildir_msg *m)
{
    const smtpx__fs *fs = m->md->fs;
    int rc;

    rc = maildir_sync_file(m, 0);
    if (rc != 0)
        return rc;
    if (fs->rename(m->tmp_path, m->new_path) != 0)
        return maildir_fail(m, errno);
    m->in_tmp = 0;
    m->in_new = 1;
    /* If new/ cannot be made durable the message is not acknowledged, so
     * the client will send it again: removing it from new/ keeps that
     * from becoming a duplicate. */
    if (maildir_sync_new(m) != 0)
        return maildir_fail(m, errno);
    m->in_new = 0;
    return 0;
}

int smtpx_maildir_commit(smtpx_maildir_msg *m, char *name, size_t name_size)
{
    size_t len;
    int rc, e;

    if (m == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (name != NULL && name_size > 0)
        name[0] = '\0';
    if (m->err != 0) {
        rc = m->err;
        e = m->err_errno;
        maildir_msg_free(m);
        errno = e;
        return rc;
    }
    len = strlen(m->name);
    if (name != NULL && len >= name_size) {
        smtpx_maildir_abort(m);
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    rc = maildir_finish(m);
    if (rc == 0 && name != NULL)
        memcpy(name, m->name, len + 1);
    e = errno;
    maildir_msg_free(m);
    errno = e;
    return rc;
}

int smtpx_maildir_sync(smtpx_maildir_msg *m)
{
    if (m == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (m->err != 0) {
        errno = m->err_errno;
        return m->err;
    }
    if (m->fd < 0)
        return 0; /* synced already */
    return maildir_sync_file(m, 1);
}

int smtpx_maildir_commit_group(smtpx_maildir_msg *const *msgs, size_t n,
                               int *results, char *names, size_t name_size)
{
    size_t i, j;

    if (n > 0 && (msgs == NULL || results == NULL))
        return SMTPX_ERR_INVALID_ARGUMENT;
    /* Every file durable in tmp/: those not synced yet are synced here. */
    for (i = 0; i < n; i++) {
        smtpx_maildir_msg *m = msgs[i];

        results[i] = 0;
        if (names != NULL && name_size > 0)
            names[i * name_size] = '\0';
        if (m == NULL) {
            results[i] = SMTPX_ERR_INVALID_ARGUMENT;
            continue;
        }
        if (m->err == 0 && names != NULL && strlen(m->name) >= name_size) {
            maildir_fail(m, EINVAL);
            m->err = SMTPX_ERR_INVALID_ARGUMENT; /* not delivered */
            continue;
        }
        if (m->err == 0 && m->fd >= 0)
            (void)maildir_sync_file(m, 1);
    }
    /* Into new/, every one. */
    for (i = 0; i < n; i++) {
        smtpx_maildir_msg *m = msgs[i];

        if (m == NULL || m->err != 0)
            continue;
        if (m->md->fs->rename(m->tmp_path, m->new_path) != 0) {
            maildir_fail(m, errno);
            continue;
        }
        m->in_tmp = 0;
        m->in_new = 1;
    }
    /* One sync per new/ directory, for all its renames.  If it fails,
     * none of them is acknowledged, so none may stay (see commit). */
    for (i = 0; i < n; i++) {
        smtpx_maildir_msg *m = msgs[i];
        int rc, e;

        if (m == NULL || !m->in_new || m->dir_done)
            continue;
        rc = maildir_sync_new(m);
        e = errno;
        for (j = i; j < n; j++) {
            smtpx_maildir_msg *o = msgs[j];
            if (o == NULL || o->md != m->md || !o->in_new)
                continue;
            o->dir_done = 1;
            if (rc != 0)
                maildir_fail(o, e);
        }
    }
    for (i = 0; i < n; i++) {
        smtpx_maildir_msg *m = msgs[i];

        if (m == NULL)
            continue;
        results[i] = m->err;
        if (m->err == 0 && names != NULL)
            memcpy(names + i * name_size, m->name, strlen(m->name) + 1);
        m->in_new = 0;
        maildir_msg_free(m);
    }
    return 0;
}

/* ---- tmp/ leftovers ----------------------------------------------------- */

int smtpx_maildir_clean_tmp(smtpx_maildir *md, uint64_t max_age,
                            size_t *removed)
{
    struct timespec now;
    struct dirent *e;
    struct stat st;
    size_t count = 0, cap;
    char *path;
    DIR *d;
    int rc = 0, fd, e2, fail_errno;

    if (removed != NULL)
        *removed = 0;
    if (md == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (md->fs->clock(&now) != 0)
        return SMTPX_ERR_IO;
    cap = md->path_len + sizeof("/tmp/") + 256;
    path = smtpx__malloc(md->mem, cap);
    if (path == NULL)
        return SMTPX_ERR_NOMEM;
    memcpy(path, md->path, md->path_len);
    memcpy(path + md->path_len, "/tmp", sizeof("/tmp"));
    fd =
        maildir_open_retry(md->fs, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        e2 = errno;
        if (fd >= 0)
            (void)md->fs->close(fd);
        smtpx__free(md->mem, path);
        errno = e2;
        return SMTPX_ERR_IO;
    }
    path[md->path_len + 4] = '/';
    fail_errno = 0;
    for (;;) {
        size_t n;
        int64_t newest;

        /* NULL with errno still 0 is the end of the directory. */
        errno = 0;
        e = readdir(d);
        if (e == NULL) {
            if (errno != 0 && rc == 0) {
                rc = SMTPX_ERR_IO;
                fail_errno = errno;
            }
            break;
        }
        n = strlen(e->d_name);

        /* Maildir file names never start with a dot; "." and ".." do. */
        if (e->d_name[0] == '.' || n > 255)
            continue;
        memcpy(path + md->path_len + 5, e->d_name, n + 1);
        /* lstat: a symbolic link is not followed, and only regular files
         * are delivery leftovers. */
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        /* The convention speaks of files not accessed for 36 hours: a
         * file written or read since then may belong to a delivery that
         * is still running (in this process or another one). */
        newest =
            (int64_t)(st.st_mtime > st.st_atime ? st.st_mtime : st.st_atime);
        if ((int64_t)now.tv_sec < newest ||
            (uint64_t)((int64_t)now.tv_sec - newest) <= max_age)
            continue;
        if (md->fs->unlink(path) == 0) {
            count++;
        } else if (errno != ENOENT) { /* ENOENT: another cleaner was first */
            rc = SMTPX_ERR_IO;
            fail_errno = errno;
        }
    }
    closedir(d); /* closes fd */
    smtpx__free(md->mem, path);
    if (removed != NULL)
        *removed = count;
    errno = fail_errno;
    return rc;
}
