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

/* ---- acknowledgement reports --------------------------------------------- */

/*
 * A streaming parser of reports: a multipart/report (RFC 6522) whose
 * report-type is disposition-notification (an MDN, RFC 8098, or its
 * RFC 6533 global form) or delivery-status (a DSN, RFC 3464, or the
 * global form).  Feed it a message as it arrives; at the end it says
 * whether it was a report and what it says of which message and which
 * recipients.  It keeps the status part (bounded) and the Message-ID of
 * the returned message, never the rest.
 */
typedef struct smtpx_report smtpx_report;

/** Report kinds (smtpx_report_kind()). */
#define SMTPX_REPORT_MDN 1 /* message disposition notification */
#define SMTPX_REPORT_DSN 2 /* delivery status notification */

/**
 * What a report says of a recipient: XX(NAME, value, "name").
 *
 * NONE    neither: a delay, "relayed" (the report stops there, nothing is
 *         known of the rest of the way), an unknown action or disposition
 * ACK     positive: DSN "delivered" or "expanded"; MDN "processed",
 *         "displayed", "dispatched" or "deleted" (the recipient's system
 *         has it, whatever it chose to do) without the "error" modifier
 * FAILED  negative: DSN "failed"; an MDN with the "error" modifier or the
 *         RFC 3798 "failed" disposition
 */
#define SMTPX_REPORT_OUTCOME_MAP(XX)                                           \
    XX(NONE, 0, "none")                                                        \
    XX(ACK, 1, "acknowledged")                                                 \
    XX(FAILED, 2, "failed")

enum {
#define SMTPX__REPORT_OUTCOME_ENUM(name, value, text)                          \
    SMTPX_REPORT_##name = value,
    SMTPX_REPORT_OUTCOME_MAP(SMTPX__REPORT_OUTCOME_ENUM)
#undef SMTPX__REPORT_OUTCOME_ENUM
        SMTPX_REPORT_OUTCOME_COUNT
};

/** @brief An outcome's name ("acknowledged"), or "?". */
SMTPX_EXTERN const char *smtpx_report_outcome_name(int outcome);

/**
 * The parser's limits: XX(NAME, value, default, "what it bounds").  Going
 * past one ends the parse with SMTPX_ERR_LIMIT.
 *
 * STATUS_SIZE  octets of the status part (message/delivery-status or
 *              message/disposition-notification), decoded
 * RCPTS        recipient blocks of a DSN
 * FIELD        octets of one field of the status part, unfolded
 */
#define SMTPX_REPORT_LIMIT_MAP(XX)                                             \
    XX(STATUS_SIZE, 0, 65536, "status part size")                              \
    XX(RCPTS, 1, 1000, "recipients in a report")                               \
    XX(FIELD, 2, 998, "field length")

enum {
#define SMTPX__REPORT_LIMIT_ENUM(name, value, dflt, text)                      \
    SMTPX_REPORT_LIMIT_##name = value,
    SMTPX_REPORT_LIMIT_MAP(SMTPX__REPORT_LIMIT_ENUM)
#undef SMTPX__REPORT_LIMIT_ENUM
        SMTPX_REPORT_LIMIT_COUNT
};

/**
 * One recipient of a report.  The strings are NUL-terminated, printable
 * (controls become spaces) and valid until the report is reset or freed.
 *
 * rcpt        Final-Recipient's address, its type ("rfc822;") removed.
 * orig_rcpt   Original-Recipient's address, or "".
 * action      DSN: the Action ("delivered"); MDN: the disposition type
 *             ("processed").  Lower case.
 * status      DSN: the Status ("2.0.0"); MDN: the disposition modifiers
 *             ("error"), or "".
 * diagnostic  DSN: Diagnostic-Code; MDN: the Error field; or "".
 * outcome     SMTPX_REPORT_NONE, _ACK or _FAILED.
 */
typedef struct smtpx_report_rcpt {
    const char *rcpt;
    const char *orig_rcpt;
    const char *action;
    const char *status;
    const char *diagnostic;
    int outcome;
} smtpx_report_rcpt;

/**
 * @brief  Create a parser.
 * @param  mem  Allocator; NULL: the C library's.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_report_new(smtpx_report **out, const smtpx_mem *mem);

/** @brief Free a parser (NULL-safe). */
SMTPX_EXTERN void smtpx_report_free(smtpx_report *r);

/**
 * @brief  Set a limit (SMTPX_REPORT_LIMIT_*) before the first feed.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (unknown limit, value 0),
 *         SMTPX_ERR_INVALID_STATE (after a feed).
 */
SMTPX_EXTERN int smtpx_report_set_limit(smtpx_report *r, int limit,
                                        size_t value);

/**
 * @brief  Feed the next octets of a message (CRLF or LF line ends, split
 *         anywhere).  A message that is not a report is read to its end
 *         cheaply: nothing of it is kept.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_LIMIT
 *         (smtpx_report_limit_hit()), SMTPX_ERR_NOMEM.  Errors are sticky.
 */
SMTPX_EXTERN int smtpx_report_feed(smtpx_report *r, const void *data,
                                   size_t len);

/**
 * @brief  The message is complete: read what the status part says.
 * @retval 0                  A report (kind, ids and recipients are set).
 * @retval SMTPX_ERR_PROTO    Not a report: not a multipart/report of one
 *                            of the two types, no status part, an MDN
 *                            without Final-Recipient or Disposition, a
 *                            DSN without Reporting-MTA or a recipient
 *                            without Final-Recipient, Action or Status.
 * @retval SMTPX_ERR_LIMIT, SMTPX_ERR_NOMEM, SMTPX_ERR_INVALID_ARGUMENT.
 */
SMTPX_EXTERN int smtpx_report_end(smtpx_report *r);

/** @brief Forget the message and begin another (limits are kept).
 *  @retval 0, SMTPX_ERR_INVALID_ARGUMENT. */
SMTPX_EXTERN int smtpx_report_reset(smtpx_report *r);

/** @brief The limit passed (after SMTPX_ERR_LIMIT), or -1. */
SMTPX_EXTERN int smtpx_report_limit_hit(const smtpx_report *r);

/** @brief SMTPX_REPORT_MDN or SMTPX_REPORT_DSN after a successful end, else
 *         0. */
SMTPX_EXTERN int smtpx_report_kind(const smtpx_report *r);

/**
 * @brief  The Message-ID of the message the report is about, without its
 *         angle brackets: an MDN's Original-Message-ID, or the Message-ID
 *         of the message or headers a DSN returns.  NULL when there is
 *         none.
 */
SMTPX_EXTERN const char *smtpx_report_message_id(const smtpx_report *r);

/** @brief A DSN's Original-Envelope-Id (the ENVID the sender gave), or
 *         NULL. */
SMTPX_EXTERN const char *smtpx_report_envid(const smtpx_report *r);

/** @brief Who reports: the ua-name of Reporting-UA (MDN, RFC 8098
 *         3.2.1) or the host of Reporting-MTA (DSN, its type removed), or
 *         NULL. */
SMTPX_EXTERN const char *smtpx_report_reporter(const smtpx_report *r);

/** @brief Recipients the report is about (an MDN has one). */
SMTPX_EXTERN size_t smtpx_report_rcpt_count(const smtpx_report *r);

/**
 * @brief  Recipient i of the report into out.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL, i out of range).
 */
SMTPX_EXTERN int smtpx_report_get_rcpt(const smtpx_report *r, size_t i,
                                       smtpx_report_rcpt *out);

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_ACK_H */
