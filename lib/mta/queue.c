/*
 * queue - the durable spool directory of the mini-MTA.
 *
 * Exports smtpx_queue_open(), _free(), _begin(), _add_rcpt(), _write(),
 * _commit(), _abort(), _list(), _flush(), _delete(), _hold(), _count(),
 * smtpx_qrcpt_state_name() of <libsmtpx/mta.h>, and the smtpx__queue_*
 * functions of queue.h that the delivery engine uses.
 *
 * Layout: DIR/lock (flock'ed by the owner; holds its pid), DIR/tmp/ (files
 * being written), DIR/msg/ID (envelope and content, never changed once
 * there), DIR/state/ID (per-recipient state, replaced whole), DIR/corrupt/
 * (files that did not parse).
 *
 * Durability order (also in <libsmtpx/mta.h> and smtpx_queue_open(3)):
 *   intake    write tmp/N, fsync it, rename to msg/ID, fsync msg/; then and
 *             only then 250.  A crash before the rename leaves tmp/N
 *             (removed at open); after it, the whole message.
 *   attempt   write tmp/N, fsync, rename over state/ID, fsync state/,
 *             before the message is tried again.
 *   reports   a bounce is committed (intake order) before the state that
 *             records it.
 *   removal   unlink msg/ID; fsync msg/ once for the round's removals
 *             (smtpx__queue_sync); unlink state/ID.  A state without its
 *             message is an orphan, removed at open; a crash before the
 *             sync may bring a message back (delivered again, not lost).
 * Every file-system call goes through an smtpx__fs table (the tests
 * inject fsync, rename and ENOSPC failures there); a failure leaves no
 * file of a message that was not acknowledged.
 *
 * Threads: intake threads may commit while the engine runs on another.
 * A mutex guards the list of messages and their scheduling fields; a
 * message taken by the engine (in_flight) is the engine's alone until it
 * is released.  Commits on several threads at once share the sync of msg/
 * (group commit, queue_sync_renamed): one sync covers every rename done
 * before it began.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/mem.h"
#include "mta/queue.h"

/* Flush the write buffer of a message at this size. */
#define QUEUE_BUF_FLUSH 65536
/* Bytes read at a time while looking for the end of an envelope. */
#define QUEUE_READ_CHUNK 65536

struct smtpx_queue {
    smtpx_mem mem_store;
    const smtpx_mem *mem;
    const smtpx__fs *fs;
    smtpx_queue_opts opts;
    char *dir;
    size_t dir_len;
    int lock_fd;
    pthread_mutex_t mu;  /* the list and the scheduling fields */
    pthread_mutex_t cmu; /* the counter of temporary names */
    pthread_mutex_t smu; /* one sync of msg/ for intake at a time */
    /* Renames into msg/ at intake, and how many of them a sync of msg/
     * has made durable (under mu): a commit whose rename another
     * thread's sync covered does not sync again (group commit). */
    uint64_t renamed, dsynced;
    smtpx__qmsg *head, *tail;
    size_t count;
    uint64_t counter;
    smtpx__queue_notify_fn *notify;
    void *notify_ud;
    /* Messages unlinked from msg/ whose directory sync is still due (the
     * engine's thread only): their state files go after it. */
    char (*gone)[32];
    size_t ngone, capgone;
};

struct smtpx_queue_msg {
    smtpx_queue *q;
    smtpx__qmsg *m;
    int fd;
    int err;
    int err_errno;
    int env_written;
    size_t rcpt_cap;
    smtpx__buf buf;
    char tmp[64];
};

static const char *const qrcpt_names[] = {
#define QR_NAME(name, id, text) [id] = text,
    SMTPX_QRCPT_STATE_MAP(QR_NAME)
#undef QR_NAME
};

const char *smtpx_qrcpt_state_name(int state)
{
    if (state < 0 || state >= SMTPX_QRCPT_STATE_COUNT)
        return "?";
    return qrcpt_names[state];
}

/* ---- helpers ------------------------------------------------------------- */

/* queue_path - DIR/sub/name into out */
static int queue_path(const smtpx_queue *q, char *out, size_t size,
                      const char *sub, const char *name)
{
    int n = snprintf(out, size, "%s/%s%s%s", q->dir, sub, name ? "/" : "",
                     name ? name : "");

    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static int queue_fsync(const smtpx_queue *q, int fd)
{
    int rc;

    if (q->opts.flags & SMTPX_QUEUE_NOSYNC)
        return 0;
    do {
        rc = q->fs->fsync(fd);
    } while (rc != 0 && errno == EINTR);
    return rc;
}

/* queue_sync_dir - fsync DIR/sub; 0 or -1 with errno */
static int queue_sync_dir(const smtpx_queue *q, const char *sub)
{
    char path[4096];
    int fd, rc, e;

    if (q->opts.flags & SMTPX_QUEUE_NOSYNC)
        return 0;
    if (queue_path(q, path, sizeof(path), sub, NULL) < 0)
        return -1;
    fd = q->fs->open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    rc = queue_fsync(q, fd);
    e = errno;
    (void)q->fs->close(fd);
    errno = e;
    return rc;
}

static int queue_write_all(const smtpx_queue *q, int fd, const uint8_t *p,
                           size_t n)
{
    ssize_t w;

    while (n > 0) {
        w = q->fs->write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int64_t smtpx__queue_now(smtpx_queue *q)
{
    struct timespec ts;

    if (q->fs->clock(&ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec;
}

int64_t smtpx__queue_now_up(smtpx_queue *q)
{
    struct timespec ts;

    if (q->fs->clock(&ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec + (ts.tv_nsec > 0);
}

/* queue_tmp_create - a new file in tmp/ under a name no file has */
static int queue_tmp_create(smtpx_queue *q, char *name, size_t size)
{
    char path[4096];
    int tries, fd;

    for (tries = 0; tries < 100; tries++) {
        unsigned long long c;
        pthread_mutex_lock(&q->cmu);
        c = ++q->counter;
        pthread_mutex_unlock(&q->cmu);
        snprintf(name, size, "%ld.%llu", (long)getpid(), c);
        if (queue_path(q, path, sizeof(path), "tmp", name) < 0)
            return -1;
        do {
            fd = q->fs->open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                             0600);
        } while (fd < 0 && errno == EINTR);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* ---- the list ------------------------------------------------------------ */

static void queue_link(smtpx_queue *q, smtpx__qmsg *m)
{
    /* Keep the list in id order (ids begin with the arrival time): a
     * recovered queue is loaded in that order and new messages come last. */
    smtpx__qmsg *at = q->tail;

    while (at != NULL && strcmp(at->id, m->id) > 0)
        at = at->prev;
    m->prev = at;
    m->next = at ? at->next : q->head;
    if (m->next)
        m->next->prev = m;
    else
        q->tail = m;
    if (at)
        at->next = m;
    else
        q->head = m;
    q->count++;
}

static void queue_unlink(smtpx_queue *q, smtpx__qmsg *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        q->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        q->tail = m->prev;
    m->prev = m->next = NULL;
    q->count--;
}

static void queue_msg_free(smtpx_queue *q, smtpx__qmsg *m)
{
    if (m == NULL)
        return;
    smtpx__qmsg_clear(m, q->mem);
    smtpx__free(q->mem, m);
}

static smtpx__qmsg *queue_find(smtpx_queue *q, const char *id)
{
    smtpx__qmsg *m;

    for (m = q->head; m != NULL; m = m->next)
        if (strcmp(m->id, id) == 0)
            return m;
    return NULL;
}

/* ---- reading files ------------------------------------------------------- */

/* queue_find_end - the end of an envelope ("\n.\n") in buf */
static const char *queue_find_end(const char *buf, size_t len)
{
    size_t i;

    for (i = 0; i + 3 <= len; i++) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (nl == NULL || (size_t)(nl - buf) + 3 > len)
            return NULL;
        if (nl[1] == '.' && nl[2] == '\n')
            return nl + 3;
        i = (size_t)(nl - buf);
    }
    return NULL;
}

/* queue_read_head - read a message file's envelope and parse it into m;
 * *size receives the file size */
static int queue_load_env(smtpx_queue *q, int fd, smtpx__qmsg *m)
{
    char *buf = NULL, *nb;
    size_t len = 0, cap = 0;
    struct stat st;
    ssize_t r;
    int rc = SMTPX_ERR_CORRUPT;

    if (fstat(fd, &st) != 0)
        return smtpx__errno_code(errno);
    for (;;) {
        if (len + QUEUE_READ_CHUNK > cap) {
            cap = len + QUEUE_READ_CHUNK;
            nb = smtpx__realloc(q->mem, buf, cap);
            if (nb == NULL) {
                rc = SMTPX_ERR_NOMEM;
                break;
            }
            buf = nb;
        }
        r = read(fd, buf + len, QUEUE_READ_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = smtpx__errno_code(errno);
            break;
        }
        len += (size_t)r;
        if (queue_find_end(buf, len) != NULL) {
            rc = smtpx__qfile_parse_env(buf, len, m, q->mem);
            break;
        }
        if (r == 0 || len >= SMTPX__QFILE_HEAD_MAX)
            break;
    }
    smtpx__free(q->mem, buf);
    if (rc == 0) {
        if ((uint64_t)st.st_size < m->content_off)
            return SMTPX_ERR_CORRUPT;
        m->size = (uint64_t)st.st_size - m->content_off;
    }
    return rc;
}

/* queue_load_state - the state file of m, if there is one */
static int queue_load_state(smtpx_queue *q, int dirfd, smtpx__qmsg *m)
{
    char buf[SMTPX__QFILE_LINE_MAX * 4];
    char *big = NULL;
    size_t len = 0, cap = sizeof(buf);
    char *p = buf;
    ssize_t r;
    int fd, rc;

    fd = openat(dirfd, m->id, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : smtpx__errno_code(errno);
    for (;;) {
        if (len == cap) {
            size_t nc = cap * 2;
            char *nb;
            if (nc > (size_t)(SMTPX__QFILE_LINE_MAX + 16) *
                         (SMTPX__QFILE_RCPTS_MAX + 2)) {
                rc = SMTPX_ERR_CORRUPT;
                goto out;
            }
            nb = smtpx__realloc(q->mem, big, nc);
            if (nb == NULL) {
                rc = SMTPX_ERR_NOMEM;
                goto out;
            }
            if (big == NULL)
                memcpy(nb, buf, len);
            big = p = nb;
            cap = nc;
        }
        r = read(fd, p + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = smtpx__errno_code(errno);
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    rc = smtpx__qfile_parse_state(p, len, m, q->mem);
out:
    close(fd);
    smtpx__free(q->mem, big);
    return rc;
}

/* queue_load - read message id (envelope and state) into a new record */
static int queue_load(smtpx_queue *q, int msgfd, int statefd, const char *id,
                      smtpx__qmsg **out)
{
    smtpx__qmsg *m;
    int fd, rc;

    *out = NULL;
    if (strlen(id) >= sizeof(m->id))
        return SMTPX_ERR_CORRUPT;
    m = smtpx__calloc(q->mem, 1, sizeof(*m));
    if (m == NULL)
        return SMTPX_ERR_NOMEM;
    strcpy(m->id, id);
    fd = openat(msgfd, id, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? SMTPX_ERR_NOT_FOUND : smtpx__errno_code(errno);
        queue_msg_free(q, m);
        return rc;
    }
    rc = queue_load_env(q, fd, m);
    close(fd);
    if (rc == 0)
        rc = queue_load_state(q, statefd, m);
    if (rc != 0) {
        queue_msg_free(q, m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ---- names of a directory ------------------------------------------------ */

typedef struct queue_names {
    char **v;
    size_t n, cap;
} queue_names;

static void queue_names_free(smtpx_queue *q, queue_names *ns)
{
    size_t i;

    for (i = 0; i < ns->n; i++)
        smtpx__free(q->mem, ns->v[i]);
    smtpx__free(q->mem, ns->v);
    ns->v = NULL;
    ns->n = ns->cap = 0;
}

static int queue_names_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* queue_names_read - the names in DIR/sub (not . or ..), sorted */
static int queue_names_read(smtpx_queue *q, const char *sub, queue_names *ns)
{
    char path[4096];
    struct dirent *de;
    DIR *d;
    int rc = 0;

    memset(ns, 0, sizeof(*ns));
    if (queue_path(q, path, sizeof(path), sub, NULL) < 0)
        return SMTPX_ERR_IO;
    d = opendir(path);
    if (d == NULL)
        return smtpx__errno_code(errno);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (ns->n == ns->cap) {
            size_t nc = ns->cap ? ns->cap * 2 : 64;
            char **nv = smtpx__realloc(q->mem, ns->v, nc * sizeof(*nv));
            if (nv == NULL) {
                rc = SMTPX_ERR_NOMEM;
                break;
            }
            ns->v = nv;
            ns->cap = nc;
        }
        ns->v[ns->n] = smtpx__strdup(q->mem, de->d_name);
        if (ns->v[ns->n] == NULL) {
            rc = SMTPX_ERR_NOMEM;
            break;
        }
        ns->n++;
    }
    closedir(d);
    if (rc != 0)
        queue_names_free(q, ns);
    else if (ns->n > 1)
        qsort(ns->v, ns->n, sizeof(*ns->v), queue_names_cmp);
    return rc;
}

static int queue_opendir(smtpx_queue *q, const char *sub)
{
    char path[4096];

    if (queue_path(q, path, sizeof(path), sub, NULL) < 0)
        return -1;
    return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* ---- open and recovery --------------------------------------------------- */

/* queue_set_aside - move a damaged message (and its state) to corrupt/ */
static void queue_set_aside(smtpx_queue *q, const char *id)
{
    char from[4096], to[4096];

    if (queue_path(q, from, sizeof(from), "msg", id) == 0 &&
        queue_path(q, to, sizeof(to), "corrupt", id) == 0)
        (void)q->fs->rename(from, to);
    if (queue_path(q, from, sizeof(from), "state", id) == 0 &&
        queue_path(q, to, sizeof(to), "corrupt", id) == 0 &&
        strlen(to) + 6 < sizeof(to)) {
        strcat(to, ".state");
        (void)q->fs->rename(from, to);
    }
}

static int queue_recover(smtpx_queue *q)
{
    queue_names ns;
    char path[4096];
    int msgfd = -1, statefd = -1, rc;
    size_t i;

    /* 1. What a crash left in tmp/ was never acknowledged. */
    rc = queue_names_read(q, "tmp", &ns);
    if (rc != 0)
        return rc;
    for (i = 0; i < ns.n; i++)
        if (queue_path(q, path, sizeof(path), "tmp", ns.v[i]) == 0)
            (void)q->fs->unlink(path);
    queue_names_free(q, &ns);
    /* 2. Every message resumes. */
    msgfd = queue_opendir(q, "msg");
    statefd = queue_opendir(q, "state");
    if (msgfd < 0 || statefd < 0) {
        rc = smtpx__errno_code(errno);
        goto out;
    }
    rc = queue_names_read(q, "msg", &ns);
    if (rc != 0)
        goto out;
    for (i = 0; i < ns.n; i++) {
        smtpx__qmsg *m;
        rc = queue_load(q, msgfd, statefd, ns.v[i], &m);
        if (rc == SMTPX_ERR_CORRUPT) {
            queue_set_aside(q, ns.v[i]);
            continue;
        }
        if (rc == SMTPX_ERR_NOT_FOUND)
            continue;
        if (rc != 0)
            break;
        queue_link(q, m);
    }
    queue_names_free(q, &ns);
    if (rc != 0 && rc != SMTPX_ERR_CORRUPT && rc != SMTPX_ERR_NOT_FOUND)
        goto out;
    /* 3. A state without its message: the removal was cut short. */
    rc = queue_names_read(q, "state", &ns);
    if (rc != 0)
        goto out;
    for (i = 0; i < ns.n; i++)
        if (queue_find(q, ns.v[i]) == NULL &&
            queue_path(q, path, sizeof(path), "state", ns.v[i]) == 0)
            (void)q->fs->unlink(path);
    queue_names_free(q, &ns);
    rc = 0;
out:
    if (msgfd >= 0)
        close(msgfd);
    if (statefd >= 0)
        close(statefd);
    return rc;
}

static int queue_lock(smtpx_queue *q)
{
    char path[4096], pid[32];
    int n;

    if (queue_path(q, path, sizeof(path), "lock", NULL) < 0)
        return SMTPX_ERR_IO;
    q->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (q->lock_fd < 0)
        return smtpx__errno_code(errno);
    if (flock(q->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return errno == EWOULDBLOCK ? SMTPX_ERR_BUSY : SMTPX_ERR_IO;
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(q->lock_fd, 0) != 0 ||
        pwrite(q->lock_fd, pid, (size_t)n, 0) != n)
        return smtpx__errno_code(errno);
    return 0;
}

int smtpx_queue_open(smtpx_queue **out, const char *dir,
                     const smtpx_queue_opts *opts)
{
    return smtpx__queue_open_fs(out, dir, opts, NULL);
}

int smtpx__queue_open_fs(smtpx_queue **out, const char *dir,
                         const smtpx_queue_opts *opts, const smtpx__fs *fs)
{
    static const char *const subs[] = {"tmp", "msg", "state", "corrupt"};
    smtpx_queue_opts o;
    const smtpx_mem *mem;
    smtpx_queue *q;
    char path[4096];
    size_t i, len;
    int rc, e;

    if (out != NULL)
        *out = NULL;
    if (smtpx__copy_sized(&o, sizeof(o), opts) != 0 || out == NULL ||
        dir == NULL || dir[0] == '\0' ||
        (o.flags & ~(SMTPX_QUEUE_READONLY | SMTPX_QUEUE_NOSYNC)) != 0 ||
        !smtpx__mem_valid(o.mem) || strlen(dir) > 3000)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (o.retry_min_s == 0)
        o.retry_min_s = 300;
    if (o.retry_max_s == 0)
        o.retry_max_s = 3600;
    if (o.retry_max_s < o.retry_min_s)
        o.retry_max_s = o.retry_min_s;
    if (o.expire_s == 0)
        o.expire_s = 5 * 86400;
    if (o.max_rcpts == 0)
        o.max_rcpts = 1000;
    if (o.max_rcpts > SMTPX__QFILE_RCPTS_MAX)
        o.max_rcpts = SMTPX__QFILE_RCPTS_MAX;
    mem = o.mem != NULL ? o.mem : smtpx__mem_default();
    q = smtpx__calloc(mem, 1, sizeof(*q));
    if (q == NULL)
        return SMTPX_ERR_NOMEM;
    q->mem_store = *mem;
    q->mem = &q->mem_store;
    q->opts = o;
    q->opts.mem = q->mem;
    q->fs = fs != NULL ? fs : smtpx__maildir_fs_default();
    q->lock_fd = -1;
    len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    q->dir = smtpx__strndup(mem, dir, len);
    q->dir_len = len;
    if (q->dir == NULL || pthread_mutex_init(&q->mu, NULL) != 0) {
        smtpx__free(mem, q->dir);
        smtpx__free(mem, q);
        return SMTPX_ERR_NOMEM;
    }
    if (pthread_mutex_init(&q->cmu, NULL) != 0) {
        pthread_mutex_destroy(&q->mu);
        smtpx__free(mem, q->dir);
        smtpx__free(mem, q);
        return SMTPX_ERR_NOMEM;
    }
    if (pthread_mutex_init(&q->smu, NULL) != 0) {
        pthread_mutex_destroy(&q->mu);
        pthread_mutex_destroy(&q->cmu);
        smtpx__free(mem, q->dir);
        smtpx__free(mem, q);
        return SMTPX_ERR_NOMEM;
    }
    if (o.flags & SMTPX_QUEUE_READONLY) {
        *out = q;
        return 0;
    }
    rc = 0;
    if (q->fs->mkdir(q->dir, 0700) != 0 && errno != EEXIST)
        rc = smtpx__errno_code(errno);
    for (i = 0; rc == 0 && i < sizeof(subs) / sizeof(subs[0]); i++)
        if (queue_path(q, path, sizeof(path), subs[i], NULL) < 0 ||
            (q->fs->mkdir(path, 0700) != 0 && errno != EEXIST))
            rc = smtpx__errno_code(errno);
    if (rc == 0)
        rc = queue_lock(q);
    if (rc == 0)
        rc = queue_recover(q);
    if (rc != 0) {
        e = errno;
        smtpx_queue_free(q);
        errno = e;
        return rc;
    }
    *out = q;
    return 0;
}

void smtpx_queue_free(smtpx_queue *q)
{
    smtpx__qmsg *m, *next;
    smtpx_mem mem;

    if (q == NULL)
        return;
    (void)smtpx__queue_sync(q);
    smtpx__free(q->mem, q->gone);
    for (m = q->head; m != NULL; m = next) {
        next = m->next;
        queue_msg_free(q, m);
    }
    if (q->lock_fd >= 0)
        close(q->lock_fd); /* releases the lock */
    pthread_mutex_destroy(&q->mu);
    pthread_mutex_destroy(&q->cmu);
    pthread_mutex_destroy(&q->smu);
    mem = q->mem_store;
    smtpx__free(&mem, q->dir);
    smtpx__free(&mem, q);
}

/* ---- intake -------------------------------------------------------------- */

int smtpx_queue_begin(smtpx_queue *q, const smtpx_queue_env *env,
                      smtpx_queue_msg **out)
{
    smtpx_queue_env e;
    smtpx_queue_msg *qm;
    int rc, err;

    if (out != NULL)
        *out = NULL;
    if (q == NULL || env == NULL || out == NULL || env->size == 0 ||
        (q->opts.flags & SMTPX_QUEUE_READONLY))
        return SMTPX_ERR_INVALID_ARGUMENT;
    memset(&e, 0, sizeof(e));
    memcpy(&e, env, env->size < sizeof(e) ? env->size : sizeof(e));
    if (e.from == NULL ||
        !smtpx__qfile_field_ok(e.from, SMTPX__QFILE_ADDR_MAX) ||
        (e.envid != NULL &&
         (e.envid[0] == '\0' ||
          !smtpx__qfile_field_ok(e.envid, SMTPX__QFILE_ADDR_MAX))) ||
        e.ret < 0 || e.ret > 2 || e.body < 0 || e.body > 3)
        return SMTPX_ERR_INVALID_ARGUMENT;
    qm = smtpx__calloc(q->mem, 1, sizeof(*qm));
    if (qm == NULL)
        return SMTPX_ERR_NOMEM;
    qm->q = q;
    qm->fd = -1;
    qm->m = smtpx__calloc(q->mem, 1, sizeof(*qm->m));
    if (qm->m == NULL) {
        smtpx__free(q->mem, qm);
        return SMTPX_ERR_NOMEM;
    }
    qm->m->from = smtpx__strdup(q->mem, e.from);
    qm->m->envid = e.envid ? smtpx__strdup(q->mem, e.envid) : NULL;
    qm->m->ret = e.ret;
    qm->m->body = e.body;
    qm->m->smtputf8 = e.smtputf8 ? 1 : 0;
    qm->m->arrival = smtpx__queue_now(q);
    if (qm->m->from == NULL || (e.envid != NULL && qm->m->envid == NULL)) {
        smtpx_queue_abort(qm);
        return SMTPX_ERR_NOMEM;
    }
    qm->fd = queue_tmp_create(q, qm->tmp, sizeof(qm->tmp));
    if (qm->fd < 0) {
        err = errno;
        rc = smtpx__errno_code(err);
        smtpx_queue_abort(qm);
        errno = err;
        return rc;
    }
    *out = qm;
    return 0;
}

int smtpx_queue_add_rcpt(smtpx_queue_msg *qm, const char *addr, unsigned notify,
                         const char *orcpt)
{
    smtpx__qmsg *m;
    smtpx__qrcpt *r;
    size_t i;

    if (qm == NULL || addr == NULL || addr[0] == '\0' ||
        !smtpx__qfile_field_ok(addr, SMTPX__QFILE_ADDR_MAX) || notify > 15 ||
        (orcpt != NULL &&
         (orcpt[0] == '\0' || strcmp(orcpt, "-") == 0 ||
          !smtpx__qfile_field_ok(orcpt, SMTPX__QFILE_ADDR_MAX))))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (orcpt != NULL)
        for (i = 0; orcpt[i] != '\0'; i++)
            if (orcpt[i] == ' ')
                return SMTPX_ERR_INVALID_ARGUMENT;
    if (qm->err != 0)
        return qm->err;
    if (qm->env_written)
        return SMTPX_ERR_INVALID_STATE;
    m = qm->m;
    if (m->nrcpts >= qm->q->opts.max_rcpts)
        return SMTPX_ERR_LIMIT;
    if (m->nrcpts == qm->rcpt_cap) {
        size_t nc = qm->rcpt_cap ? qm->rcpt_cap * 2 : 4;
        r = smtpx__realloc(qm->q->mem, m->rcpts, nc * sizeof(*r));
        if (r == NULL)
            return SMTPX_ERR_NOMEM;
        m->rcpts = r;
        qm->rcpt_cap = nc;
    }
    r = &m->rcpts[m->nrcpts];
    memset(r, 0, sizeof(*r));
    r->addr = smtpx__strdup(qm->q->mem, addr);
    r->orcpt = orcpt ? smtpx__strdup(qm->q->mem, orcpt) : NULL;
    r->notify = notify;
    if (r->addr == NULL || (orcpt != NULL && r->orcpt == NULL)) {
        smtpx__free(qm->q->mem, r->addr);
        smtpx__free(qm->q->mem, r->orcpt);
        return SMTPX_ERR_NOMEM;
    }
    m->nrcpts++;
    return 0;
}

/* qm_fail - a sticky error: the file goes at once */
static int qm_fail(smtpx_queue_msg *qm, int err, int e)
{
    char path[4096];

    if (qm->fd >= 0)
        (void)qm->q->fs->close(qm->fd);
    qm->fd = -1;
    if (qm->tmp[0] != '\0' &&
        queue_path(qm->q, path, sizeof(path), "tmp", qm->tmp) == 0)
        (void)qm->q->fs->unlink(path);
    qm->tmp[0] = '\0';
    smtpx__buf_free(&qm->buf, qm->q->mem);
    qm->err = err;
    qm->err_errno = e;
    errno = e;
    return err;
}

static int qm_flush(smtpx_queue_msg *qm)
{
    size_t n = smtpx__buf_used(&qm->buf);

    if (n == 0)
        return 0;
    if (queue_write_all(qm->q, qm->fd, smtpx__buf_head(&qm->buf), n) != 0)
        return qm_fail(qm, smtpx__errno_code(errno), errno);
    smtpx__buf_drop(&qm->buf, qm->q->mem, n);
    return 0;
}

static int qm_env(smtpx_queue_msg *qm)
{
    int rc;

    if (qm->env_written)
        return 0;
    if (qm->m->nrcpts == 0)
        return SMTPX_ERR_INVALID_STATE;
    rc = smtpx__qfile_format_env(qm->m, &qm->buf, qm->q->mem);
    if (rc != 0)
        return qm_fail(qm, rc, ENOMEM);
    qm->env_written = 1;
    return 0;
}

int smtpx_queue_write(smtpx_queue_msg *qm, const void *data, size_t len)
{
    int rc;

    if (qm == NULL || (data == NULL && len > 0))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (qm->err != 0) {
        errno = qm->err_errno;
        return qm->err;
    }
    rc = qm_env(qm);
    if (rc != 0)
        return rc;
    qm->m->size += len;
    if (smtpx__buf_used(&qm->buf) == 0 && len >= QUEUE_BUF_FLUSH) {
        if (queue_write_all(qm->q, qm->fd, data, len) != 0)
            return qm_fail(qm, smtpx__errno_code(errno), errno);
        return 0;
    }
    if (smtpx__buf_append(&qm->buf, qm->q->mem, data, len) != 0)
        return qm_fail(qm, SMTPX_ERR_NOMEM, ENOMEM);
    if (smtpx__buf_used(&qm->buf) >= QUEUE_BUF_FLUSH)
        return qm_flush(qm);
    return 0;
}

void smtpx_queue_abort(smtpx_queue_msg *qm)
{
    smtpx_queue *q;

    if (qm == NULL)
        return;
    q = qm->q;
    if (qm->err == 0)
        qm_fail(qm, SMTPX_ERR_CLOSED, 0);
    if (qm->m != NULL)
        queue_msg_free(q, qm->m);
    smtpx__buf_free(&qm->buf, q->mem);
    smtpx__free(q->mem, qm);
}

/* queue_sync_renamed - make the rename just done at intake durable: sync
 * msg/, unless a sync that began after the rename succeeded meanwhile
 * (several threads committing share one sync).  A failed sync advances
 * nothing: each commit it was to cover tries its own.  0, or -1 with
 * errno. */
static int queue_sync_renamed(smtpx_queue *q)
{
    uint64_t mine, upto;
    int rc = 0, e = 0, done;

    if (q->opts.flags & SMTPX_QUEUE_NOSYNC)
        return 0; /* nothing to share: commits need not wait in turn */
    pthread_mutex_lock(&q->mu);
    mine = ++q->renamed;
    pthread_mutex_unlock(&q->mu);
    pthread_mutex_lock(&q->smu);
    pthread_mutex_lock(&q->mu);
    done = q->dsynced >= mine;
    upto = q->renamed; /* every one of these renames is done */
    pthread_mutex_unlock(&q->mu);
    if (!done) {
        rc = queue_sync_dir(q, "msg");
        e = errno;
        if (rc == 0) {
            pthread_mutex_lock(&q->mu);
            if (upto > q->dsynced)
                q->dsynced = upto;
            pthread_mutex_unlock(&q->mu);
        }
    }
    pthread_mutex_unlock(&q->smu);
    errno = e;
    return rc;
}

/* queue_commit - smtpx_queue_commit(), the record handed to *take (in
 * flight) when take is not NULL */
static int queue_commit(smtpx_queue_msg *qm, char *id, size_t id_size,
                        smtpx__qmsg **take)
{
    smtpx_queue *q;
    char from[4096], to[4096];
    struct timespec ts;
    struct stat st;
    smtpx__qmsg *m;
    int rc, e, fd;

    if (qm == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    q = qm->q;
    if (id != NULL && id_size > 0)
        id[0] = '\0';
    if (id != NULL && id_size < 32) {
        smtpx_queue_abort(qm);
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    rc = qm->err;
    if (rc == 0)
        rc = qm_env(qm);
    if (rc == 0)
        rc = qm_flush(qm);
    if (rc != 0)
        goto fail;
    if (queue_fsync(q, qm->fd) != 0 || fstat(qm->fd, &st) != 0) {
        rc = qm_fail(qm, smtpx__errno_code(errno), errno);
        goto fail;
    }
    fd = qm->fd;
    qm->fd = -1;
    if (q->fs->close(fd) != 0 && errno != EINTR) {
        rc = qm_fail(qm, smtpx__errno_code(errno), errno);
        goto fail;
    }
    /* The id: arrival time, microseconds and the file's inode, which no
     * other file has while this one exists (as Postfix names its queue
     * files). */
    m = qm->m;
    if (q->fs->clock(&ts) != 0)
        memset(&ts, 0, sizeof(ts));
    snprintf(m->id, sizeof(m->id), "%08llX%05lX%llX",
             (unsigned long long)ts.tv_sec, (unsigned long)(ts.tv_nsec / 1000),
             (unsigned long long)st.st_ino);
    m->content_off = 0; /* not needed: it is parsed again when read */
    if (queue_path(q, from, sizeof(from), "tmp", qm->tmp) < 0 ||
        queue_path(q, to, sizeof(to), "msg", m->id) < 0 ||
        q->fs->rename(from, to) != 0) {
        rc = qm_fail(qm, smtpx__errno_code(errno), errno);
        goto fail;
    }
    qm->tmp[0] = '\0';
    if (queue_sync_renamed(q) != 0) {
        /* Not acknowledged, so the client sends it again: leaving it
         * would deliver it twice. */
        e = errno;
        (void)q->fs->unlink(to);
        rc = qm_fail(qm, smtpx__errno_code(e), e);
        goto fail;
    }
    {
        /* content_off is what the envelope takes in the file */
        smtpx__buf b = SMTPX__BUF_INIT;
        if (smtpx__qfile_format_env(m, &b, q->mem) == 0)
            m->content_off = smtpx__buf_used(&b);
        smtpx__buf_free(&b, q->mem);
    }
    m->next_attempt = 0;
    qm->m = NULL;
    if (id != NULL)
        snprintf(id, id_size, "%s", m->id);
    pthread_mutex_lock(&q->mu);
    if (take != NULL) {
        m->in_flight = 1;
        *take = m;
    }
    queue_link(q, m);
    pthread_mutex_unlock(&q->mu);
    if (q->notify != NULL)
        q->notify(q->notify_ud);
    smtpx_queue_abort(qm);
    return 0;
fail:
    e = errno;
    smtpx_queue_abort(qm);
    errno = e;
    return rc;
}

int smtpx_queue_commit(smtpx_queue_msg *qm, char *id, size_t id_size)
{
    return queue_commit(qm, id, id_size, NULL);
}

int smtpx__queue_commit_take(smtpx_queue_msg *qm, char *id, size_t id_size,
                             smtpx__qmsg **out)
{
    *out = NULL;
    return queue_commit(qm, id, id_size, out);
}

int smtpx__queue_set_envid(smtpx_queue_msg *qm, const char *envid)
{
    char *e;

    if (qm == NULL || envid == NULL || envid[0] == '\0' ||
        !smtpx__qfile_field_ok(envid, SMTPX__QFILE_ADDR_MAX))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (qm->env_written || qm->err != 0)
        return SMTPX_ERR_INVALID_STATE;
    e = smtpx__strdup(qm->q->mem, envid);
    if (e == NULL)
        return SMTPX_ERR_NOMEM;
    smtpx__free(qm->q->mem, qm->m->envid);
    qm->m->envid = e;
    return 0;
}

/* ---- state --------------------------------------------------------------- */

/* queue_write_state - state/ID, durably (tmp, fsync, rename, fsync dir) */
static int queue_write_state(smtpx_queue *q, const smtpx__qmsg *m)
{
    smtpx__buf b = SMTPX__BUF_INIT;
    char name[64], from[4096], to[4096];
    int fd, rc, e;

    rc = smtpx__qfile_format_state(m, &b, q->mem);
    if (rc != 0) {
        smtpx__buf_free(&b, q->mem);
        return rc;
    }
    fd = queue_tmp_create(q, name, sizeof(name));
    if (fd < 0) {
        e = errno;
        smtpx__buf_free(&b, q->mem);
        errno = e;
        return smtpx__errno_code(e);
    }
    rc = 0;
    if (queue_write_all(q, fd, smtpx__buf_head(&b), smtpx__buf_used(&b)) != 0 ||
        queue_fsync(q, fd) != 0)
        rc = smtpx__errno_code(errno);
    e = errno;
    if (q->fs->close(fd) != 0 && rc == 0 && errno != EINTR) {
        rc = smtpx__errno_code(errno);
        e = errno;
    }
    smtpx__buf_free(&b, q->mem);
    queue_path(q, from, sizeof(from), "tmp", name);
    if (rc == 0 && (queue_path(q, to, sizeof(to), "state", m->id) < 0 ||
                    q->fs->rename(from, to) != 0)) {
        rc = smtpx__errno_code(errno);
        e = errno;
    }
    if (rc != 0) {
        (void)q->fs->unlink(from);
        errno = e;
        return rc;
    }
    if (queue_sync_dir(q, "state") != 0)
        return smtpx__errno_code(errno);
    return 0;
}

int smtpx__queue_save(smtpx_queue *q, smtpx__qmsg *m)
{
    return queue_write_state(q, m);
}

/* queue_remove - the message's files, in the removal order */
static void queue_remove_files(smtpx_queue *q, const smtpx__qmsg *m)
{
    char path[4096];

    if (queue_path(q, path, sizeof(path), "msg", m->id) == 0)
        (void)q->fs->unlink(path);
    (void)queue_sync_dir(q, "msg");
    if (queue_path(q, path, sizeof(path), "state", m->id) == 0)
        (void)q->fs->unlink(path);
}

size_t smtpx__queue_unsynced(const smtpx_queue *q)
{
    return q->ngone;
}

int smtpx__queue_sync_msgs(smtpx_queue *q)
{
    return queue_sync_dir(q, "msg") != 0 ? smtpx__errno_code(errno) : 0;
}

void smtpx__queue_synced(smtpx_queue *q, size_t n)
{
    char path[4096];
    size_t i;

    if (n > q->ngone)
        n = q->ngone;
    for (i = 0; i < n; i++)
        if (queue_path(q, path, sizeof(path), "state", q->gone[i]) == 0)
            (void)q->fs->unlink(path);
    if (n == 0)
        return;
    if (n < q->ngone)
        memmove(q->gone, q->gone + n, (q->ngone - n) * sizeof(*q->gone));
    q->ngone -= n;
}

int smtpx__queue_sync(smtpx_queue *q)
{
    size_t n = q->ngone;
    int rc;

    if (n == 0)
        return 0;
    /* One sync of msg/ makes every unlink before it durable. */
    rc = smtpx__queue_sync_msgs(q);
    smtpx__queue_synced(q, n);
    return rc;
}

void smtpx__queue_release(smtpx_queue *q, smtpx__qmsg *m, int keep)
{
    int gone;
    int save;

    pthread_mutex_lock(&q->mu);
    m->in_flight = 0;
    gone = m->deleted || !keep;
    save = !gone && m->hold_dirty;
    m->hold_dirty = 0;
    if (gone)
        queue_unlink(q, m);
    pthread_mutex_unlock(&q->mu);
    /* A hold set during the attempt is made durable now. */
    if (save)
        (void)queue_write_state(q, m);
    if (!gone)
        return;
    if (q->ngone == q->capgone) {
        size_t nc = q->capgone ? q->capgone * 2 : 64;
        char(*ng)[32] = smtpx__realloc(q->mem, q->gone, nc * sizeof(*ng));
        if (ng != NULL) {
            q->gone = ng;
            q->capgone = nc;
        }
    }
    if (q->ngone < q->capgone) {
        /* The directory sync is shared with the round's other removals
         * (smtpx__queue_sync). */
        char path[4096];
        if (queue_path(q, path, sizeof(path), "msg", m->id) == 0)
            (void)q->fs->unlink(path);
        memcpy(q->gone[q->ngone++], m->id, sizeof(m->id));
    } else {
        queue_remove_files(q, m);
    }
    queue_msg_free(q, m);
}

size_t smtpx__queue_take_due(smtpx_queue *q, int64_t now, smtpx__qmsg **out,
                             size_t max, int64_t *next)
{
    smtpx__qmsg *m;
    size_t n = 0;

    *next = 0;
    pthread_mutex_lock(&q->mu);
    for (m = q->head; m != NULL; m = m->next) {
        if (m->in_flight || m->held)
            continue;
        if (m->next_attempt <= now && n < max) {
            m->in_flight = 1;
            out[n++] = m;
        } else if (*next == 0 || m->next_attempt < *next) {
            *next = m->next_attempt <= now ? now : m->next_attempt;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return n;
}

int64_t smtpx__queue_next(smtpx_queue *q)
{
    smtpx__qmsg *m;
    int64_t next = 0;

    pthread_mutex_lock(&q->mu);
    for (m = q->head; m != NULL; m = m->next)
        if (!m->in_flight && !m->held && (next == 0 || m->next_attempt < next))
            next = m->next_attempt > 0 ? m->next_attempt : 1;
    pthread_mutex_unlock(&q->mu);
    return next;
}

void smtpx__queue_flush_all(smtpx_queue *q)
{
    smtpx__qmsg *m;

    pthread_mutex_lock(&q->mu);
    for (m = q->head; m != NULL; m = m->next)
        if (!m->in_flight)
            m->next_attempt = 0;
    pthread_mutex_unlock(&q->mu);
}

int smtpx__queue_cancel(smtpx_queue *q, const char *id)
{
    smtpx__qmsg *m;

    pthread_mutex_lock(&q->mu);
    m = queue_find(q, id);
    if (m == NULL) {
        pthread_mutex_unlock(&q->mu);
        return SMTPX_ERR_NOT_FOUND;
    }
    /* In flight: removed when its attempt ends, as smtpx_queue_delete()
     * does.  Waiting: due now, so that the engine removes it with its
     * round's other removals, in its own thread. */
    m->deleted = 1;
    if (!m->in_flight) {
        m->next_attempt = 0;
        m->held = 0;
    }
    pthread_mutex_unlock(&q->mu);
    if (q->notify != NULL)
        q->notify(q->notify_ud);
    return 0;
}

void smtpx__queue_each(smtpx_queue *q, smtpx__queue_each_fn *fn, void *ud)
{
    smtpx__qmsg *m;

    pthread_mutex_lock(&q->mu);
    for (m = q->head; m != NULL; m = m->next)
        fn(m, ud);
    pthread_mutex_unlock(&q->mu);
}

int smtpx__queue_open_content(smtpx_queue *q, const smtpx__qmsg *m)
{
    char path[4096];
    int fd;

    if (queue_path(q, path, sizeof(path), "msg", m->id) < 0)
        return -1;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (lseek(fd, (off_t)m->content_off, SEEK_SET) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

const smtpx_mem *smtpx__queue_mem(const smtpx_queue *q)
{
    return q->mem;
}

const smtpx_queue_opts *smtpx__queue_opts(const smtpx_queue *q)
{
    return &q->opts;
}

int smtpx__queue_set_notify(smtpx_queue *q, smtpx__queue_notify_fn *fn,
                            void *ud)
{
    pthread_mutex_lock(&q->mu);
    if (fn != NULL && q->notify != NULL) {
        pthread_mutex_unlock(&q->mu);
        return SMTPX_ERR_INVALID_STATE;
    }
    q->notify = fn;
    q->notify_ud = ud;
    pthread_mutex_unlock(&q->mu);
    return 0;
}

void smtpx__queue_poke(smtpx_queue *q)
{
    if (q->notify != NULL)
        q->notify(q->notify_ud);
}

/* ---- management ---------------------------------------------------------- */

int smtpx_queue_list(smtpx_queue *q, smtpx_queue_list_fn *fn, void *user_data)
{
    smtpx_queue_rcpt *rs = NULL;
    smtpx_queue_info info;
    queue_names ns;
    int msgfd, statefd, rc;
    size_t i, j;

    if (q == NULL || fn == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    msgfd = queue_opendir(q, "msg");
    statefd = queue_opendir(q, "state");
    if (msgfd < 0 || statefd < 0) {
        rc = smtpx__errno_code(errno);
        if (msgfd >= 0)
            close(msgfd);
        if (statefd >= 0)
            close(statefd);
        return rc;
    }
    rc = queue_names_read(q, "msg", &ns);
    for (i = 0; rc == 0 && i < ns.n; i++) {
        smtpx__qmsg *m;
        int lr = queue_load(q, msgfd, statefd, ns.v[i], &m);
        if (lr == SMTPX_ERR_NOT_FOUND || lr == SMTPX_ERR_CORRUPT)
            continue; /* gone meanwhile, or set aside at the next open */
        if (lr != 0) {
            rc = lr;
            break;
        }
        rs = smtpx__calloc(q->mem, m->nrcpts, sizeof(*rs));
        if (rs == NULL) {
            queue_msg_free(q, m);
            rc = SMTPX_ERR_NOMEM;
            break;
        }
        for (j = 0; j < m->nrcpts; j++) {
            rs[j].addr = m->rcpts[j].addr;
            rs[j].state = m->rcpts[j].state;
            rs[j].attempts = m->rcpts[j].attempts;
            rs[j].reply.code = m->rcpts[j].code;
            memcpy(rs[j].reply.enh, m->rcpts[j].enh, sizeof(rs[j].reply.enh));
            rs[j].reply.text = m->rcpts[j].text ? m->rcpts[j].text : "";
            rs[j].remote = m->rcpts[j].remote ? m->rcpts[j].remote : "";
        }
        memset(&info, 0, sizeof(info));
        info.id = m->id;
        info.from = m->from;
        info.arrival = m->arrival;
        info.next_attempt = m->next_attempt;
        info.size = m->size;
        info.held = m->held;
        info.nrcpts = m->nrcpts;
        info.rcpts = rs;
        rc = fn(&info, user_data);
        smtpx__free(q->mem, rs);
        queue_msg_free(q, m);
    }
    queue_names_free(q, &ns);
    close(msgfd);
    close(statefd);
    return rc;
}

size_t smtpx_queue_count(smtpx_queue *q)
{
    size_t n;

    if (q == NULL)
        return 0;
    pthread_mutex_lock(&q->mu);
    n = q->count;
    pthread_mutex_unlock(&q->mu);
    return n;
}

int smtpx_queue_flush(smtpx_queue *q, const char *id)
{
    smtpx__qmsg *m;
    int found = 0;

    if (q == NULL || (q->opts.flags & SMTPX_QUEUE_READONLY))
        return SMTPX_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&q->mu);
    for (m = q->head; m != NULL; m = m->next)
        if (id == NULL || strcmp(m->id, id) == 0) {
            found = 1;
            if (!m->in_flight)
                m->next_attempt = 0;
        }
    pthread_mutex_unlock(&q->mu);
    if (id != NULL && !found)
        return SMTPX_ERR_NOT_FOUND;
    if (q->notify != NULL)
        q->notify(q->notify_ud);
    return 0;
}

int smtpx_queue_delete(smtpx_queue *q, const char *id)
{
    smtpx__qmsg *m;

    if (q == NULL || id == NULL || (q->opts.flags & SMTPX_QUEUE_READONLY))
        return SMTPX_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&q->mu);
    m = queue_find(q, id);
    if (m == NULL) {
        pthread_mutex_unlock(&q->mu);
        return SMTPX_ERR_NOT_FOUND;
    }
    if (m->in_flight) {
        m->deleted = 1;
        pthread_mutex_unlock(&q->mu);
        return 0;
    }
    queue_unlink(q, m);
    pthread_mutex_unlock(&q->mu);
    queue_remove_files(q, m);
    queue_msg_free(q, m);
    return 0;
}

int smtpx_queue_hold(smtpx_queue *q, const char *id, int on)
{
    smtpx__qmsg *m;
    int rc = 0;

    if (q == NULL || id == NULL || (q->opts.flags & SMTPX_QUEUE_READONLY))
        return SMTPX_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&q->mu);
    m = queue_find(q, id);
    if (m == NULL) {
        pthread_mutex_unlock(&q->mu);
        return SMTPX_ERR_NOT_FOUND;
    }
    m->held = on ? 1 : 0;
    /* A message in flight is saved with its hold after its attempt
     * (smtpx__queue_release); the engine owns its state until then. */
    if (m->in_flight)
        m->hold_dirty = 1;
    else
        rc = queue_write_state(q, m);
    pthread_mutex_unlock(&q->mu);
    if (rc == 0 && !on && q->notify != NULL)
        q->notify(q->notify_ud);
    return rc;
}
