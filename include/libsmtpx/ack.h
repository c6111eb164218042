/*
 * libsmtpx - closing the loop: acknowledgements, duplicate suppression and
 * an outbox that resends what is not acknowledged.
 *
 * SMTP says when a message was taken, never when it was processed, and a
 * bounce (a DSN) is not guaranteed to come.  These objects add positive
 * acknowledgement on top of the queue, in standard formats only, so that
 * the other side may be any mail system:
 *
 *  - smtpx_dedupe: a durable, bounded store of keys (a window in time and
 *    in count) with O(1) lookups that survives a crash at any instant.
 *  - smtpx_report: a streaming parser of the two standard reports that
 *    can acknowledge a message: the RFC 8098 message disposition
 *    notification (MDN) and the RFC 3464 delivery status notification
 *    (DSN).
 *  - smtpx_inbox (the receiving side): suppresses duplicates by
 *    Message-ID (and recipient), hands each message to the application
 *    once (a redelivery after a crash is flagged as one), and, once the
 *    application says it has processed a message, sends an MDN
 *    ("automatic-action/MDN-sent-automatically; processed") to the address
 *    in Disposition-Notification-To - and a "delivered" DSN where NOTIFY=
 *    SUCCESS asks for one - through a queue, so the acknowledgement is
 *    itself retried and never lost.  A duplicate is acknowledged again:
 *    the first acknowledgement may be what was lost.
 *  - smtpx_outbox (the sending side): gives every message a Message-ID,
 *    keeps it (durably) until every recipient has acknowledged it, resends
 *    it unchanged - the same Message-ID, so the receiver suppresses the
 *    duplicate - with back-off, and gives up after a limit, with a
 *    callback and a report.
 *
 * See smtpx_inbox_new(3) for the order of durable writes and what an
 * application must do for exactly-once effects.
 */
#ifndef LIBSMTPX_ACK_H
#define LIBSMTPX_ACK_H

#include <libsmtpx/common.h>
#include <libsmtpx/mta.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the dedupe store ---------------------------------------------------- */

/*
 * A file of records (key digest, state, times), appended to and synced
 * before each call that changes it returns, and an index in memory.
 * Keys are any octets (a Message-ID, a Message-ID and a recipient); only
 * the first 128 bits of their SHA-256 are kept.  An entry is forgotten
 * window_s seconds after it was first stored, or when max_entries newer
 * ones push it out (oldest first), whichever comes first: size the count
 * for the mail of a whole window.  The file is rewritten (compacted) when
 * it holds twice as many records as max_entries, so it never grows past
 * about 128 octets per entry.  A torn record at the end of the file (a
 * crash during a write) and any record that fails its checksum are
 * dropped at open: the call that wrote it had not returned.  One process
 * owns a store at a time; its calls may come from any thread.
 */
typedef struct smtpx_dedupe smtpx_dedupe;

/** Do not sync (benchmarks and tests only: a crash may forget keys). */
#define SMTPX_DEDUPE_NOSYNC (1u << 0)

/**
 * Options of smtpx_dedupe_open().  Set size to sizeof(smtpx_dedupe_opts);
 * leave what you do not need zero: members may be added at the end.
 *
 * flags        SMTPX_DEDUPE_* bits.
 * window_s     How long an entry is remembered; 0: 7 days.
 * max_entries  How many entries at most; 0: 100000.  Memory is about 48
 *              octets per entry, allocated as entries come.
 * mem          Allocator; NULL: the C library's.
 */
typedef struct smtpx_dedupe_opts {
    size_t size;
    unsigned flags;
    uint32_t window_s;
    uint32_t max_entries;
    const smtpx_mem *mem;
} smtpx_dedupe_opts;

/**
 * @brief  Open (creating it, mode 0600, when missing) and load a store.
 * @param  path  The store's file; its directory must exist.  A file
 *               PATH.tmp is used while compacting.
 * @param  opts  NULL for the defaults.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL out or path, opts->size 0,
 *         unknown flags, an incomplete allocator), SMTPX_ERR_CORRUPT (the
 *         file is not a store: a wrong magic line), SMTPX_ERR_BUSY
 *         (another process has it open), SMTPX_ERR_IO (errno tells more),
 *         SMTPX_ERR_NOSPACE, SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_dedupe_open(smtpx_dedupe **out, const char *path,
                                   const smtpx_dedupe_opts *opts);

/** @brief Close a store (NULL-safe). */
SMTPX_EXTERN void smtpx_dedupe_free(smtpx_dedupe *d);

/**
 * @brief  The state stored for a key.
 * @param  first  Receives the Unix time the key was first stored (0 when
 *                it is not there); may be NULL.
 * @return The state (1 to 255), 0 when the key is not there (never
 *         stored, or forgotten), or SMTPX_ERR_INVALID_ARGUMENT (NULL d or
 *         key, len 0).
 */
SMTPX_EXTERN int smtpx_dedupe_get(smtpx_dedupe *d, const void *key, size_t len,
                                  int64_t *first);

/**
 * @brief  Store a state for a key (a new entry, or a new state for one
 *         already there: its first time is kept), durably: the record is
 *         written and synced before this returns 0.  On failure nothing
 *         changes, in memory or on disk.
 * @param  state  1 to 255; what it means is the caller's.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL d or key, len 0, state out
 *         of range), SMTPX_ERR_IO, SMTPX_ERR_NOSPACE, SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_dedupe_put(smtpx_dedupe *d, const void *key, size_t len,
                                  int state);

/**
 * What a store has done since it was opened (smtpx_dedupe_stats()).  Set
 * size to sizeof(smtpx_dedupe_stats).
 *
 * entries      Entries now.
 * records      Records in the file now (header not counted).
 * puts         smtpx_dedupe_put() calls that succeeded.
 * syncs        Syncs of the file (and of its directory at creation and
 *              compaction): the durable writes.
 * expired      Entries forgotten because the window passed.
 * evicted      Entries forgotten within the window to stay under
 *              max_entries: each is a duplicate the store can no longer
 *              see.
 * compactions  Rewrites of the file.
 * dropped      Records dropped at open: torn or failing their checksum.
 */
typedef struct smtpx_dedupe_stats {
    size_t size;
    uint64_t entries;
    uint64_t records;
    uint64_t puts;
    uint64_t syncs;
    uint64_t expired;
    uint64_t evicted;
    uint64_t compactions;
    uint64_t dropped;
} smtpx_dedupe_stats;

/** @brief Fill st (st->size set by the caller). */
SMTPX_EXTERN void smtpx_dedupe_stats_get(smtpx_dedupe *d,
                                         smtpx_dedupe_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_ACK_H */
