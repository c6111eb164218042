/*
 * dedupe - a durable store of keys with a window in time and in count:
 * what the inbox remembers of the messages it has handed over, and the
 * outbox of the messages it has finished.
 *
 * Exports smtpx_dedupe_open(), _free(), _get(), _put() and _stats_get()
 * of <libsmtpx/ack.h>, and smtpx__dedupe_open_fs() of dedupe.h.
 *
 * The file is a log of 64-octet records after a 64-octet header:
 *
 *   header  "SMTPXD1\n", zeros, check
 *   record  'R', state, 6 zeros, digest (16), first (8, LE), updated (8,
 *           LE), 16 zeros, check
 *
 * where check is the first 8 octets of the SHA-256 of the 56 before it.
 * A put appends one record at the end of what is known good (so a torn
 * record left by a failed write is overwritten by the next one) and syncs
 * the file (fdatasync) before it returns; the last record of a key wins.
 * At open the log is replayed; a record cut short or failing its check is
 * dropped (its put had not returned) and the file is rewritten.  The
 * rewrite (also done when the log holds twice max_entries records) writes
 * the live entries to PATH.tmp, syncs it, renames it over PATH and syncs
 * the directory: a crash leaves the old file or the new one, each whole.
 *
 * In memory: a ring of entries in the order they were first stored (so
 * the oldest is forgotten first, in O(1)) and a digest index (dmap.h).
 * The ring grows to max_entries as entries come.  An entry found expired
 * out of order (the clock went back) is marked dead and left for the ring
 * to drop.
 *
 * Threads: a mutex guards the memory and the writes; the sync has a lock
 * of its own, so that the puts of several threads share one fdatasync
 * (group commit): a put writes its record, then waits for a sync that
 * began after it.  A compaction takes both.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/crypto.h"
#include "base/error.h"
#include "base/mem.h"
#include "mta/dedupe.h"
#include "mta/dmap.h"

#define DD_REC      64
#define DD_MAGIC    "SMTPXD1\n"
#define DD_READ     (DD_REC * 1024)
#define DD_WINDOW   (7u * 86400u)
#define DD_MAX      100000u
#define DD_MAX_MAX  (1u << 28)
#define DD_RING_MIN 1024u

typedef struct dd_entry {
    uint8_t digest[SMTPX__DIGEST];
    int64_t first;
    int64_t updated;
    uint8_t state; /* 0: dead (expired out of order) */
} dd_entry;

struct smtpx_dedupe {
    smtpx_mem mem_store;
    const smtpx_mem *mem;
    const smtpx__fs *fs;
    smtpx_dedupe_opts o;
    char *path, *tmp, *dir;
    int fd;
    pthread_mutex_t mu;  /* everything below but the sync */
    pthread_mutex_t smu; /* the sync of the file; taken before mu */
    uint64_t wseq;       /* records written */
    uint64_t sseq;       /* records known synced */
    int broken;          /* a sync failed: the error, until reopened */
    dd_entry *ring;
    uint32_t cap, head, count, live;
    smtpx__dmap map;
    uint64_t fsize; /* octets known good: header and whole records */
    smtpx_dedupe_stats st;
};

/* ---- records ------------------------------------------------------------- */

static void dd_le64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    int i;

    for (i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

static int64_t dd_get64(const uint8_t *p)
{
    uint64_t u = 0;
    int i;

    for (i = 7; i >= 0; i--)
        u = u << 8 | p[i];
    return (int64_t)u;
}

static void dd_seal(uint8_t r[DD_REC])
{
    uint8_t h[32];

    smtpx__sha256(r, DD_REC - 8, h);
    memcpy(r + DD_REC - 8, h, 8);
}

static int dd_sealed(const uint8_t r[DD_REC])
{
    uint8_t h[32];

    return smtpx__sha256(r, DD_REC - 8, h) == 0 &&
           memcmp(r + DD_REC - 8, h, 8) == 0;
}

static void dd_header(uint8_t r[DD_REC])
{
    memset(r, 0, DD_REC);
    memcpy(r, DD_MAGIC, 8);
    dd_seal(r);
}

static void dd_encode(uint8_t r[DD_REC], const dd_entry *e)
{
    memset(r, 0, DD_REC);
    r[0] = 'R';
    r[1] = e->state;
    memcpy(r + 8, e->digest, SMTPX__DIGEST);
    dd_le64(r + 24, e->first);
    dd_le64(r + 32, e->updated);
    dd_seal(r);
}

/* dd_decode - 0, or -1 for a record that is not whole and sealed */
static int dd_decode(const uint8_t r[DD_REC], dd_entry *e)
{
    static const uint8_t zero[16];

    if (r[0] != 'R' || r[1] == 0 || memcmp(r + 2, zero, 6) != 0 ||
        memcmp(r + 40, zero, 16) != 0 || !dd_sealed(r))
        return -1;
    e->state = r[1];
    memcpy(e->digest, r + 8, SMTPX__DIGEST);
    e->first = dd_get64(r + 24);
    e->updated = dd_get64(r + 32);
    return 0;
}

/* ---- file-system helpers ------------------------------------------------- */

static int64_t dd_now(const smtpx_dedupe *d)
{
    struct timespec ts;

    if (d->fs->clock(&ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec;
}

static int dd_write_all(const smtpx_dedupe *d, int fd, const uint8_t *p,
                        size_t n)
{
    while (n > 0) {
        ssize_t w = d->fs->write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* dd_sync - fdatasync (fsync where the seam has none), counted */
static int dd_sync(smtpx_dedupe *d, int fd, int data)
{
    int rc;

    if (d->o.flags & SMTPX_DEDUPE_NOSYNC)
        return 0;
    do {
        rc = data && d->fs->fdatasync != NULL ? d->fs->fdatasync(fd)
                                              : d->fs->fsync(fd);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0)
        d->st.syncs++;
    return rc;
}

static int dd_sync_dir(smtpx_dedupe *d)
{
    int fd, rc, e;

    if (d->o.flags & SMTPX_DEDUPE_NOSYNC)
        return 0;
    fd = d->fs->open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    rc = dd_sync(d, fd, 0);
    e = errno;
    (void)d->fs->close(fd);
    errno = e;
    return rc;
}

/* ---- the ring and the index ---------------------------------------------- */

static const uint8_t *dd_key(uint32_t v, void *ud)
{
    const smtpx_dedupe *d = ud;

    return d->ring[v].digest;
}

static dd_entry *dd_at(const smtpx_dedupe *d, uint32_t k)
{
    return &d->ring[(d->head + k) % d->cap];
}

/* dd_pop - forget the oldest entry */
static void dd_pop(smtpx_dedupe *d)
{
    dd_entry *e = &d->ring[d->head];

    if (e->state != 0) {
        smtpx__dmap_del(&d->map, e->digest);
        d->live--;
    }
    d->head = (d->head + 1) % d->cap;
    d->count--;
}

/* dd_expire - forget what the window has passed, oldest first */
static void dd_expire(smtpx_dedupe *d, int64_t now)
{
    int64_t edge = now - (int64_t)d->o.window_s;

    while (d->count > 0) {
        dd_entry *e = &d->ring[d->head];
        if (e->state != 0 && e->first > edge)
            break;
        if (e->state != 0)
            d->st.expired++;
        dd_pop(d);
    }
}

/* dd_grow - a larger ring, in order from 0 */
static int dd_grow(smtpx_dedupe *d)
{
    uint32_t nc = d->cap ? d->cap * 2 : DD_RING_MIN, k;
    dd_entry *nr;

    if (nc > d->o.max_entries)
        nc = d->o.max_entries;
    nr = smtpx__calloc(d->mem, nc, sizeof(*nr));
    if (nr == NULL)
        return SMTPX_ERR_NOMEM;
    for (k = 0; k < d->count; k++)
        nr[k] = *dd_at(d, k);
    smtpx__free(d->mem, d->ring);
    d->ring = nr;
    d->cap = nc;
    d->head = 0;
    smtpx__dmap_clear(&d->map);
    for (k = 0; k < d->count; k++)
        if (nr[k].state != 0 && smtpx__dmap_put(&d->map, k, d->mem) != 0)
            return SMTPX_ERR_NOMEM;
    return 0;
}

/* dd_find - the live entry for a digest, or NULL; one the window has
 * passed (out of order) is marked dead */
static dd_entry *dd_find(smtpx_dedupe *d, const uint8_t *digest, int64_t now)
{
    int64_t v = smtpx__dmap_get(&d->map, digest);
    dd_entry *e;

    if (v < 0)
        return NULL;
    e = &d->ring[v];
    if (e->first <= now - (int64_t)d->o.window_s) {
        smtpx__dmap_del(&d->map, digest);
        e->state = 0;
        d->live--;
        d->st.expired++;
        return NULL;
    }
    return e;
}

/* dd_insert - a new entry at the tail (the oldest goes when full) */
static int dd_insert(smtpx_dedupe *d, const dd_entry *e)
{
    uint32_t slot;
    int rc;

    if (d->count == d->cap && d->cap < d->o.max_entries) {
        rc = dd_grow(d);
        if (rc != 0)
            return rc;
    }
    if (d->count == d->cap) {
        if (d->ring[d->head].state != 0)
            d->st.evicted++;
        dd_pop(d);
    }
    slot = (d->head + d->count) % d->cap;
    d->ring[slot] = *e;
    rc = smtpx__dmap_put(&d->map, slot, d->mem);
    if (rc != 0)
        return rc;
    d->count++;
    d->live++;
    return 0;
}

/* dd_unlink_tail - undo dd_insert() of the newest entry */
static void dd_unlink_tail(smtpx_dedupe *d)
{
    dd_entry *e = dd_at(d, d->count - 1);

    smtpx__dmap_del(&d->map, e->digest);
    d->count--;
    d->live--;
}

/* dd_apply - a record read back at open (one the window has passed is
 * not loaded) */
static int dd_apply(smtpx_dedupe *d, const dd_entry *r, int64_t now)
{
    dd_entry *e = dd_find(d, r->digest, now);

    if (e != NULL) {
        e->state = r->state;
        e->updated = r->updated;
        return 0;
    }
    if (r->first <= now - (int64_t)d->o.window_s)
        return 0;
    return dd_insert(d, r);
}

/* ---- compaction ---------------------------------------------------------- */

/* dd_compact - write the live entries to PATH.tmp, sync, rename over PATH,
 * sync the directory; the new file becomes the store's (its lock taken
 * before the rename).  On failure the old file stays in use. */
static int dd_compact(smtpx_dedupe *d)
{
    uint8_t *buf;
    size_t used = 0;
    uint32_t k;
    uint64_t n = 0;
    int fd, rc = 0, e;

    buf = smtpx__malloc(d->mem, DD_READ);
    if (buf == NULL)
        return SMTPX_ERR_NOMEM;
    fd = d->fs->open(d->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        rc = smtpx__errno_code(errno);
        goto out;
    }
    dd_header(buf);
    used = DD_REC;
    for (k = 0; k < d->count && rc == 0; k++) {
        if (dd_at(d, k)->state == 0)
            continue;
        if (used == DD_READ) {
            if (dd_write_all(d, fd, buf, used) != 0)
                rc = smtpx__errno_code(errno);
            used = 0;
        }
        dd_encode(buf + used, dd_at(d, k));
        used += DD_REC;
        n++;
    }
    if (rc == 0 && dd_write_all(d, fd, buf, used) != 0)
        rc = smtpx__errno_code(errno);
    if (rc == 0 && dd_sync(d, fd, 0) != 0)
        rc = smtpx__errno_code(errno);
    if (rc == 0 && d->fs->rename(d->tmp, d->path) != 0)
        rc = smtpx__errno_code(errno);
    if (rc == 0) {
        (void)dd_sync_dir(d); /* either file is whole */
        (void)d->fs->close(d->fd);
        d->fd = fd;
        fd = -1;
        d->fsize = (n + 1) * DD_REC;
        d->st.records = n;
        d->st.compactions++;
    }
out:
    e = errno;
    if (fd >= 0) {
        (void)d->fs->close(fd);
        (void)d->fs->unlink(d->tmp);
    }
    smtpx__free(d->mem, buf);
    errno = e;
    return rc;
}

/* ---- open ---------------------------------------------------------------- */

/* dd_create - a new (or torn at creation) file: the header, synced */
static int dd_create(smtpx_dedupe *d)
{
    uint8_t h[DD_REC];

    dd_header(h);
    if (ftruncate(d->fd, 0) != 0 || lseek(d->fd, 0, SEEK_SET) != 0 ||
        dd_write_all(d, d->fd, h, DD_REC) != 0 || dd_sync(d, d->fd, 0) != 0 ||
        dd_sync_dir(d) != 0)
        return smtpx__errno_code(errno);
    d->fsize = DD_REC;
    return 0;
}

/* dd_load - replay the log; *dirty when a record was dropped */
static int dd_load(smtpx_dedupe *d, uint64_t size, int *dirty)
{
    uint8_t *buf;
    uint64_t off = DD_REC;
    int64_t now = dd_now(d);
    int rc = 0;

    buf = smtpx__malloc(d->mem, DD_READ);
    if (buf == NULL)
        return SMTPX_ERR_NOMEM;
    while (rc == 0 && off + DD_REC <= size) {
        size_t want = DD_READ, i;
        ssize_t r;
        if (want > size - off)
            want = (size_t)((size - off) / DD_REC * DD_REC);
        r = pread(d->fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < DD_REC) {
            rc = r < 0 ? smtpx__errno_code(errno) : SMTPX_ERR_IO;
            break;
        }
        for (i = 0; rc == 0 && i + DD_REC <= (size_t)r; i += DD_REC) {
            dd_entry e;
            if (dd_decode(buf + i, &e) != 0) {
                d->st.dropped++;
                *dirty = 1;
                continue;
            }
            rc = dd_apply(d, &e, now);
            d->st.records++;
        }
        off += (uint64_t)r / DD_REC * DD_REC;
    }
    if (off < size) {
        d->st.dropped++; /* a record cut short */
        *dirty = 1;
    }
    smtpx__free(d->mem, buf);
    d->fsize = off;
    dd_expire(d, now);
    return rc;
}

static int dd_open_file(smtpx_dedupe *d)
{
    uint8_t h[DD_REC], want[DD_REC];
    struct stat st;
    int dirty = 0, rc;

    d->fd = d->fs->open(d->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (d->fd < 0)
        return smtpx__errno_code(errno);
    if (flock(d->fd, LOCK_EX | LOCK_NB) != 0)
        return errno == EWOULDBLOCK ? SMTPX_ERR_BUSY : SMTPX_ERR_IO;
    (void)d->fs->unlink(d->tmp); /* a compaction that died */
    if (fstat(d->fd, &st) != 0)
        return smtpx__errno_code(errno);
    dd_header(want);
    if (st.st_size < DD_REC) {
        /* Empty, or a header cut short by a crash while it was being
         * made: make it again.  Any other short file is not a store and
         * is left alone, as a long one is. */
        size_t n = (size_t)st.st_size;
        if (n > 0 &&
            (pread(d->fd, h, n, 0) != (ssize_t)n || memcmp(h, want, n) != 0))
            return SMTPX_ERR_CORRUPT;
        return dd_create(d);
    }
    if (pread(d->fd, h, DD_REC, 0) != DD_REC)
        return SMTPX_ERR_IO;
    if (memcmp(h, want, DD_REC) != 0)
        return SMTPX_ERR_CORRUPT;
    rc = dd_load(d, (uint64_t)st.st_size, &dirty);
    if (rc != 0)
        return rc;
    if (dirty || d->st.records >= 2 * (uint64_t)d->o.max_entries)
        return dd_compact(d);
    return 0;
}

static int dd_paths(smtpx_dedupe *d, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = strlen(path);

    d->path = smtpx__strdup(d->mem, path);
    d->tmp = smtpx__malloc(d->mem, n + 5);
    if (slash == NULL)
        d->dir = smtpx__strdup(d->mem, ".");
    else
        d->dir = smtpx__strndup(d->mem, path,
                                slash == path ? 1 : (size_t)(slash - path));
    if (d->path == NULL || d->tmp == NULL || d->dir == NULL)
        return SMTPX_ERR_NOMEM;
    memcpy(d->tmp, path, n);
    memcpy(d->tmp + n, ".tmp", 5);
    return 0;
}

int smtpx__dedupe_open_fs(smtpx_dedupe **out, const char *path,
                          const smtpx_dedupe_opts *opts, const smtpx__fs *fs)
{
    smtpx_dedupe_opts o;
    const smtpx_mem *mem;
    smtpx_dedupe *d;
    int rc, e;

    if (out != NULL)
        *out = NULL;
    if (smtpx__copy_sized(&o, sizeof(o), opts) != 0 || out == NULL ||
        path == NULL || path[0] == '\0' ||
        (o.flags & ~SMTPX_DEDUPE_NOSYNC) != 0 || !smtpx__mem_valid(o.mem) ||
        o.max_entries > DD_MAX_MAX || strlen(path) > 4000)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (o.window_s == 0)
        o.window_s = DD_WINDOW;
    if (o.max_entries == 0)
        o.max_entries = DD_MAX;
    mem = o.mem != NULL ? o.mem : smtpx__mem_default();
    d = smtpx__calloc(mem, 1, sizeof(*d));
    if (d == NULL)
        return SMTPX_ERR_NOMEM;
    d->mem_store = *mem;
    d->mem = &d->mem_store;
    d->o = o;
    d->o.mem = d->mem;
    d->fs = fs != NULL ? fs : smtpx__maildir_fs_default();
    d->fd = -1;
    d->st.size = sizeof(d->st);
    if (pthread_mutex_init(&d->mu, NULL) != 0) {
        smtpx__free(mem, d);
        return SMTPX_ERR_NOMEM;
    }
    if (pthread_mutex_init(&d->smu, NULL) != 0) {
        pthread_mutex_destroy(&d->mu);
        smtpx__free(mem, d);
        return SMTPX_ERR_NOMEM;
    }
    rc = dd_paths(d, path);
    if (rc == 0)
        rc = smtpx__dmap_init(&d->map, 64, dd_key, d, d->mem);
    if (rc == 0)
        rc = dd_open_file(d);
    if (rc != 0) {
        e = errno;
        smtpx_dedupe_free(d);
        errno = e;
        return rc;
    }
    *out = d;
    return 0;
}

int smtpx_dedupe_open(smtpx_dedupe **out, const char *path,
                      const smtpx_dedupe_opts *opts)
{
    return smtpx__dedupe_open_fs(out, path, opts, NULL);
}

void smtpx_dedupe_free(smtpx_dedupe *d)
{
    smtpx_mem mem;

    if (d == NULL)
        return;
    if (d->fd >= 0)
        (void)d->fs->close(d->fd);
    smtpx__dmap_free(&d->map, d->mem);
    smtpx__free(d->mem, d->ring);
    smtpx__free(d->mem, d->path);
    smtpx__free(d->mem, d->tmp);
    smtpx__free(d->mem, d->dir);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->smu);
    mem = d->mem_store;
    smtpx__free(&mem, d);
}

/* ---- lookups and puts ---------------------------------------------------- */

int smtpx__dedupe_get_digest(smtpx_dedupe *d, const uint8_t *digest,
                             int64_t *first)
{
    dd_entry *e;
    int state = 0;

    int64_t now;

    pthread_mutex_lock(&d->mu);
    now = dd_now(d);
    dd_expire(d, now);
    e = dd_find(d, digest, now);
    if (e != NULL)
        state = e->state;
    if (first != NULL)
        *first = e != NULL ? e->first : 0;
    pthread_mutex_unlock(&d->mu);
    return state;
}

int smtpx_dedupe_get(smtpx_dedupe *d, const void *key, size_t len,
                     int64_t *first)
{
    uint8_t digest[SMTPX__DIGEST];

    if (first != NULL)
        *first = 0;
    if (d == NULL || key == NULL || len == 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (smtpx__digest(key, len, digest) != 0)
        return SMTPX_ERR_INTERNAL;
    return smtpx__dedupe_get_digest(d, digest, first);
}

/* dd_append - the record of e at the end of what is known good (lock
 * held; not synced: dd_commit() does that, for every put at once) */
static int dd_append(smtpx_dedupe *d, const dd_entry *e)
{
    uint8_t r[DD_REC];
    int rc = 0;

    dd_encode(r, e);
    if (lseek(d->fd, (off_t)d->fsize, SEEK_SET) < 0 ||
        dd_write_all(d, d->fd, r, DD_REC) != 0)
        rc = smtpx__errno_code(errno);
    if (rc != 0) {
        /* What was written may be torn: cut it off, or let the next
         * record overwrite it. */
        int e2 = errno;
        (void)ftruncate(d->fd, (off_t)d->fsize);
        errno = e2;
        return rc;
    }
    d->fsize += DD_REC;
    d->st.records++;
    d->wseq++;
    return 0;
}

/*
 * dd_commit - make the records up to number seq durable (group commit):
 * one thread syncs for every record written before its sync began, the
 * others that wait meanwhile find theirs done.  A failed sync leaves the
 * store broken: what it wrote may or may not be on disk, so every later
 * put fails until the store is opened again and reads what is.
 */
static int dd_commit(smtpx_dedupe *d, uint64_t seq)
{
    uint64_t target;
    int fd, rc = 0, e;

    if (d->o.flags & SMTPX_DEDUPE_NOSYNC)
        return 0;
    pthread_mutex_lock(&d->smu);
    if (d->sseq < seq) {
        pthread_mutex_lock(&d->mu);
        target = d->wseq;
        fd = d->fd;
        rc = d->broken;
        pthread_mutex_unlock(&d->mu);
        if (rc == 0) {
            do {
                rc = d->fs->fdatasync != NULL ? d->fs->fdatasync(fd)
                                              : d->fs->fsync(fd);
            } while (rc != 0 && errno == EINTR);
            e = errno;
            pthread_mutex_lock(&d->mu);
            if (rc == 0) {
                d->st.syncs++;
                d->sseq = target;
            } else {
                rc = d->broken = smtpx__errno_code(e);
            }
            pthread_mutex_unlock(&d->mu);
            errno = e;
        }
    }
    pthread_mutex_unlock(&d->smu);
    return rc;
}

/* dd_update - a new state for a digest in memory and in the file (lock
 * held); *seq receives the record's number */
static int dd_update(smtpx_dedupe *d, const uint8_t *digest, int state,
                     uint64_t *seq)
{
    dd_entry *e, saved, ne;
    int64_t now = dd_now(d);
    int rc;

    dd_expire(d, now);
    e = dd_find(d, digest, now);
    if (e != NULL) {
        saved = *e;
        e->state = (uint8_t)state;
        e->updated = now;
        rc = dd_append(d, e);
        if (rc != 0)
            *e = saved;
    } else {
        memset(&ne, 0, sizeof(ne));
        memcpy(ne.digest, digest, SMTPX__DIGEST);
        ne.first = now;
        ne.updated = now;
        ne.state = (uint8_t)state;
        rc = dd_insert(d, &ne);
        if (rc == 0) {
            rc = dd_append(d, &ne);
            if (rc != 0)
                dd_unlink_tail(d);
        }
    }
    *seq = d->wseq;
    return rc;
}

int smtpx__dedupe_put_digest(smtpx_dedupe *d, const uint8_t *digest, int state)
{
    uint64_t seq;
    int rc, full;

    pthread_mutex_lock(&d->mu);
    rc = d->broken != 0 ? d->broken : dd_update(d, digest, state, &seq);
    pthread_mutex_unlock(&d->mu);
    if (rc == 0)
        rc = dd_commit(d, seq);
    if (rc != 0)
        return rc;
    /* Bounded file: rewritten when it holds twice the maximum.  A failure
     * leaves the log as it is, tried again at the next put.  The sync lock
     * first: no sync may run on the descriptor it replaces. */
    pthread_mutex_lock(&d->smu);
    pthread_mutex_lock(&d->mu);
    d->st.puts++;
    full = d->st.records >= 2 * (uint64_t)d->o.max_entries;
    if (full && dd_compact(d) == 0)
        d->sseq = d->wseq;
    pthread_mutex_unlock(&d->mu);
    pthread_mutex_unlock(&d->smu);
    return 0;
}

int smtpx_dedupe_put(smtpx_dedupe *d, const void *key, size_t len, int state)
{
    uint8_t digest[SMTPX__DIGEST];

    if (d == NULL || key == NULL || len == 0 || state < 1 || state > 255)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (smtpx__digest(key, len, digest) != 0)
        return SMTPX_ERR_INTERNAL;
    return smtpx__dedupe_put_digest(d, digest, state);
}

void smtpx_dedupe_stats_get(smtpx_dedupe *d, smtpx_dedupe_stats *st)
{
    smtpx_dedupe_stats s;
    size_t n;

    if (d == NULL || st == NULL || st->size == 0)
        return;
    pthread_mutex_lock(&d->mu);
    dd_expire(d, dd_now(d));
    s = d->st;
    s.entries = d->live;
    pthread_mutex_unlock(&d->mu);
    n = st->size < sizeof(s) ? st->size : sizeof(s);
    s.size = st->size;
    memcpy(st, &s, n);
}
