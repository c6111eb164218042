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
 *         written and synced before this returns 0.  Puts from several
 *         threads at once share their syncs (group commit).  When the
 *         write fails nothing changes, in memory or on disk.  When the
 *         sync fails, whether the record reached the disk is not known:
 *         the store then refuses every put (the same error) until it is
 *         opened again and reads what is there.
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

/* ---- the inbox: the receiving side --------------------------------------- */

typedef struct smtpx_inbox smtpx_inbox;
typedef struct smtpx_inbox_msg smtpx_inbox_msg;

/** Each recipient is processed on its own (keys are Message-ID and
 *  recipient); without it a message is processed once for all of them. */
#define SMTPX_INBOX_PER_RCPT (1u << 0)
/** Acknowledge every message with a sender: an MDN to the envelope sender
 *  when the message has no Disposition-Notification-To. */
#define SMTPX_INBOX_ACK_ALWAYS (1u << 1)
/** Act as the final delivery agent of RFC 3461: a recipient with
 *  NOTIFY=SUCCESS gets a "delivered" DSN once processed. */
#define SMTPX_INBOX_DSN_SUCCESS (1u << 2)

/**
 * What to do with a message that has no Message-ID:
 * XX(NAME, value, "name").
 *
 * REFUSE  smtpx_inbox_check() fails with SMTPX_ERR_NO_MESSAGE_ID (answer
 *         550 5.6.0): without an id nothing tells a resend from a new
 *         message.
 * HASH    the key is "sha256:" and the SHA-256 (hex) of the message from
 *         its first header field that is not a trace field (so that the
 *         Received lines of each path do not change it): a message resent
 *         octet for octet is recognised.
 * ACCEPT  no duplicate suppression for it: always NEW, and no key.
 */
#define SMTPX_INBOX_NOID_MAP(XX)                                               \
    XX(REFUSE, 0, "refuse")                                                    \
    XX(HASH, 1, "hash")                                                        \
    XX(ACCEPT, 2, "accept")

enum {
#define SMTPX__INBOX_NOID_ENUM(name, value, text)                              \
    SMTPX_INBOX_NOID_##name = value,
    SMTPX_INBOX_NOID_MAP(SMTPX__INBOX_NOID_ENUM)
#undef SMTPX__INBOX_NOID_ENUM
        SMTPX_INBOX_NOID_COUNT
};

/**
 * What a message is to the application, once checked:
 * XX(NAME, value, "name").
 *
 * NEW         never handed over: process it.
 * REDELIVERY  handed over before, and not known to have been processed
 *             (the process died, or the application did not call
 *             smtpx_inbox_processed()): process it unless the
 *             application's own records, under the same key, say it was.
 * DUPLICATE   processed already: do not process it; answer 250 (the
 *             sender must stop).  Its acknowledgement has been sent again.
 */
#define SMTPX_INBOX_VERDICT_MAP(XX)                                            \
    XX(NEW, 1, "new")                                                          \
    XX(REDELIVERY, 2, "redelivery")                                            \
    XX(DUPLICATE, 3, "duplicate")

enum {
#define SMTPX__INBOX_VERDICT_ENUM(name, value, text) SMTPX_INBOX_##name = value,
    SMTPX_INBOX_VERDICT_MAP(SMTPX__INBOX_VERDICT_ENUM)
#undef SMTPX__INBOX_VERDICT_ENUM
};

/** @brief A verdict's name ("redelivery"), or "?". */
SMTPX_EXTERN const char *smtpx_inbox_verdict_name(int verdict);

/** "Every recipient" for smtpx_inbox_verdict() and
 *  smtpx_inbox_processed(). */
#define SMTPX_INBOX_ALL ((size_t)-1)

/**
 * Options of smtpx_inbox_new().  Set size to sizeof(smtpx_inbox_opts);
 * leave what you do not need zero.
 *
 * flags     SMTPX_INBOX_* bits.
 * no_id     SMTPX_INBOX_NOID_*.
 * dedupe    The store of keys (required; not owned).  Its window must
 *           outlast the senders' resends.
 * acks      The queue acknowledgements are committed to, delivered by its
 *           engine; NULL: none are sent (duplicates are still
 *           suppressed).  Not owned.
 * ack_from  The From of MDNs ("warehouse@example.net"); required with
 *           acks.
 * hostname  Reporting-UA and Reporting-MTA, the domain of the reports'
 *           Message-IDs; required with acks.
 * mem       Allocator; NULL: the C library's.
 */
typedef struct smtpx_inbox_opts {
    size_t size;
    unsigned flags;
    int no_id;
    smtpx_dedupe *dedupe;
    smtpx_queue *acks;
    const char *ack_from;
    const char *hostname;
    const smtpx_mem *mem;
} smtpx_inbox_opts;

/**
 * @brief  Create an inbox.  Its calls may come from several threads (the
 *         sessions of several loops); a message belongs to one.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (a missing or bad option),
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_inbox_new(smtpx_inbox **out,
                                 const smtpx_inbox_opts *opts);

/** @brief Free an inbox (NULL-safe); its messages must be freed first. */
SMTPX_EXTERN void smtpx_inbox_free(smtpx_inbox *ib);

/**
 * @brief  Begin a message (on_data_begin, or once its envelope is known).
 * @param  from   The reverse-path without brackets, "" for <>.
 * @param  envid  ENVID as received (xtext), or NULL.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL, a control character, over
 *         998 octets), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_inbox_begin(smtpx_inbox *ib, const char *from,
                                   const char *envid, smtpx_inbox_msg **out);

/**
 * @brief  Add a recipient (before the first write).
 * @param  notify  SMTPX_DSN_NOTIFY_* bits as received; 0: not given.
 * @param  orcpt   ORCPT as received ("rfc822;a@b", xtext), or NULL.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE (content
 *         written already), SMTPX_ERR_LIMIT (1000 recipients),
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_inbox_add_rcpt(smtpx_inbox_msg *m, const char *addr,
                                      unsigned notify, const char *orcpt);

/**
 * @brief  The next octets of the message, as the server gives them
 *         (on_data_chunk).  The inbox keeps the header (up to 64 KiB) and,
 *         for SMTPX_INBOX_NOID_HASH, hashes the content; it stores nothing
 *         else: storing and processing the message is the application's.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE (no
 *         recipient, or checked already), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_inbox_write(smtpx_inbox_msg *m, const void *data,
                                   size_t len);

/**
 * @brief  The message is complete (on_data_end): find its key and decide
 *         its verdict (one per recipient with SMTPX_INBOX_PER_RCPT).  For
 *         a NEW or REDELIVERY key the store records, durably, that it is
 *         being handed over before this returns; for a DUPLICATE the
 *         acknowledgements are committed to the queue again.
 * @retval 0                       smtpx_inbox_verdict() tells.
 * @retval SMTPX_ERR_NO_MESSAGE_ID No Message-ID and SMTPX_INBOX_NOID_REFUSE:
 *                                 answer 550 5.6.0.
 * @retval SMTPX_ERR_IN_PROGRESS   Another session is processing the same
 *                                 key right now: answer 451 4.5.0, the
 *                                 sender tries again later.
 * @retval SMTPX_ERR_IO, SMTPX_ERR_NOSPACE  The store could not record it:
 *                                 answer 451 (nothing was handed over).
 * @retval SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE (twice, or no
 *         recipient), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_inbox_check(smtpx_inbox_msg *m);

/**
 * @brief  The verdict for recipient i, or for the message
 *         (SMTPX_INBOX_ALL: without SMTPX_INBOX_PER_RCPT every recipient
 *         has the message's; with it, the message's is the "least done"
 *         of its recipients': NEW before REDELIVERY before DUPLICATE).
 * @return SMTPX_INBOX_NEW, _REDELIVERY or _DUPLICATE, or
 *         SMTPX_ERR_INVALID_STATE (not checked), SMTPX_ERR_INVALID_ARGUMENT.
 */
SMTPX_EXTERN int smtpx_inbox_verdict(const smtpx_inbox_msg *m, size_t i);

/**
 * @brief  The message's key: its Message-ID without angle brackets, or
 *         "sha256:HEX" (SMTPX_INBOX_NOID_HASH), or "" (no id, ACCEPT);
 *         NULL before smtpx_inbox_check().  The application's idempotency
 *         key (with the recipient, under SMTPX_INBOX_PER_RCPT).  Valid
 *         until the message is freed.
 */
SMTPX_EXTERN const char *smtpx_inbox_key(const smtpx_inbox_msg *m);

/**
 * @brief  The application has processed the message (SMTPX_INBOX_ALL) or
 *         recipient i, and committed what it did: record it, durably,
 *         then commit the acknowledgements to the queue.  Answer 250
 *         after this returns 0.  A DUPLICATE recipient is left as it is.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE (not
 *         checked), SMTPX_ERR_IO, SMTPX_ERR_NOSPACE (the record could not
 *         be written: answer 451; the message is a REDELIVERY next time),
 *         SMTPX_ERR_NOMEM.  A failure to queue an acknowledgement is not
 *         one: it is counted (smtpx_inbox_stats) and the sender's resend
 *         brings it again.
 */
SMTPX_EXTERN int smtpx_inbox_processed(smtpx_inbox_msg *m, size_t i);

/** @brief Free a message (NULL-safe; on_txn_end).  A message checked and
 *         not processed stays a REDELIVERY for the next time. */
SMTPX_EXTERN void smtpx_inbox_msg_free(smtpx_inbox_msg *m);

/**
 * What an inbox has done since it was created.  Set size to
 * sizeof(smtpx_inbox_stats).
 *
 * messages     Messages checked.
 * new_keys     Keys handed over for the first time.
 * redelivered  Keys handed over again (REDELIVERY).
 * duplicates   Keys suppressed (DUPLICATE).
 * refused      Messages refused for want of a Message-ID.
 * acks         Acknowledgements (MDNs and DSNs) committed to the queue.
 * ack_errors   Acknowledgements that could not be committed.
 */
typedef struct smtpx_inbox_stats {
    size_t size;
    uint64_t messages;
    uint64_t new_keys;
    uint64_t redelivered;
    uint64_t duplicates;
    uint64_t refused;
    uint64_t acks;
    uint64_t ack_errors;
} smtpx_inbox_stats;

/** @brief Fill st (st->size set by the caller). */
SMTPX_EXTERN void smtpx_inbox_stats_get(smtpx_inbox *ib, smtpx_inbox_stats *st);

/* ---- the outbox: the sending side ---------------------------------------- */

typedef struct smtpx_outbox smtpx_outbox;
typedef struct smtpx_outbox_msg smtpx_outbox_msg;

/**
 * The state of a recipient of an outbox message: XX(NAME, value, "name").
 *
 * WAITING   sent, no acknowledgement yet
 * ACKED     acknowledged (an MDN, or a "delivered" DSN)
 * FAILED    a failure report came: not resent
 * GAVE_UP   no acknowledgement after the last resend
 */
#define SMTPX_OUTBOX_STATE_MAP(XX)                                             \
    XX(WAITING, 1, "waiting")                                                  \
    XX(ACKED, 2, "acknowledged")                                               \
    XX(FAILED, 3, "failed")                                                    \
    XX(GAVE_UP, 4, "unacknowledged")

enum {
#define SMTPX__OUTBOX_STATE_ENUM(name, value, text) SMTPX_OUTBOX_##name = value,
    SMTPX_OUTBOX_STATE_MAP(SMTPX__OUTBOX_STATE_ENUM)
#undef SMTPX__OUTBOX_STATE_ENUM
};

/** @brief A state's name ("acknowledged"), or "?". */
SMTPX_EXTERN const char *smtpx_outbox_state_name(int state);

/**
 * A change of state, for on_event.  The strings are valid during the call.
 *
 * message_id  The message's Message-ID, without angle brackets.
 * rcpt        The recipient.
 * state       Its new state (SMTPX_OUTBOX_*); WAITING means it was
 *             resent.
 * sends       Times the message has been sent (1: never resent).
 * detail      What the report said ("processed", "5.1.1 ..."), or "".
 */
typedef struct smtpx_outbox_event {
    const char *message_id;
    const char *rcpt;
    int state;
    unsigned sends;
    const char *detail;
} smtpx_outbox_event;

typedef void smtpx_outbox_event_fn(smtpx_outbox *ob,
                                   const smtpx_outbox_event *ev,
                                   void *user_data);

/** Do not sync the outbox's own files (tests and benchmarks only). */
#define SMTPX_OUTBOX_NOSYNC (1u << 0)
/** Do not ask for MDNs (no Disposition-Notification-To is added). */
#define SMTPX_OUTBOX_NO_MDN (1u << 1)
/** Do not ask for DSNs (NOTIFY is left as given; no ENVID is set). */
#define SMTPX_OUTBOX_NO_DSN (1u << 2)
/** Never resend: wait for the acknowledgement, then give up. */
#define SMTPX_OUTBOX_NO_RESEND (1u << 3)

/**
 * Options of smtpx_outbox_open().  Set size to sizeof(smtpx_outbox_opts);
 * leave what you do not need zero.
 *
 * flags           SMTPX_OUTBOX_* bits.
 * queue           Where messages go out (and are resent), delivered by
 *                 its engine (smtpx_mta_opts.outbox drives the outbox's
 *                 deadlines and hands it its own results: a local
 *                 delivery acknowledges, a failure fails - and is still
 *                 reported to the sender, once -, "relayed" changes
 *                 nothing, and no success report the outbox asked for is
 *                 sent).  The copies it still holds of a finished message
 *                 are cancelled.  Required; not owned.
 * hostname        The domain of the Message-IDs the outbox makes.
 *                 Required.
 * ack_address     Disposition-Notification-To of the messages that have
 *                 none; acknowledgements to it are always the outbox's.
 *                 Required unless SMTPX_OUTBOX_NO_MDN.
 * ack_timeout_s   Wait this long after a send before resending; 0: one
 *                 hour.  Deadlines are whole seconds, rounded up: the
 *                 wait is never shorter.  It doubles with every resend ...
 * ack_timeout_max_s  ... up to this; 0: one day.
 * max_resends     Resends before giving up; 0: 5.
 * report_to       Where the report of a message given up goes (a
 *                 message from MAILER-DAEMON); NULL: none.
 * history_s       How long a finished message is remembered (so that a
 *                 late acknowledgement is still known as the outbox's, and
 *                 smtpx_outbox_state() can tell); 0: 7 days.
 * on_event, event_data  Called for every change of a recipient's state,
 *                 from the thread that caused it, with the outbox's lock
 *                 held (do not call the outbox from it); may be NULL.
 * mem             Allocator; NULL: the C library's.
 */
typedef struct smtpx_outbox_opts {
    size_t size;
    unsigned flags;
    smtpx_queue *queue;
    const char *hostname;
    const char *ack_address;
    uint32_t ack_timeout_s;
    uint32_t ack_timeout_max_s;
    uint32_t max_resends;
    const char *report_to;
    uint32_t history_s;
    smtpx_outbox_event_fn *on_event;
    void *event_data;
    const smtpx_mem *mem;
} smtpx_outbox_opts;

/**
 * @brief  Open (creating where missing, mode 0700) and lock an outbox
 *         directory: DIR/msg, DIR/state... as a queue (smtpx_queue_open(3))
 *         and DIR/history (an smtpx_dedupe of finished messages).  Every
 *         message in it is waiting again; one whose first send was not
 *         recorded (a crash) waits from its arrival (a whole second, so
 *         from the second after: never shorter).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_BUSY, SMTPX_ERR_IO,
 *         SMTPX_ERR_NOSPACE, SMTPX_ERR_CORRUPT, SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_outbox_open(smtpx_outbox **out, const char *dir,
                                   const smtpx_outbox_opts *opts);

/** @brief Close an outbox (NULL-safe); no engine may still use it. */
SMTPX_EXTERN void smtpx_outbox_free(smtpx_outbox *ob);

/**
 * @brief  Begin a message, as smtpx_queue_begin().  Unless
 *         SMTPX_OUTBOX_NO_DSN, the envelope gets an ENVID (the Message-ID
 *         when it fits, RFC 3461 4.4) when it has none, and RET=HDRS when
 *         it asks for no RET.
 * @retval As smtpx_queue_begin(); SMTPX_ERR_INVALID_ARGUMENT also for the
 *         null sender (a report is never awaited).
 */
SMTPX_EXTERN int smtpx_outbox_begin(smtpx_outbox *ob,
                                    const smtpx_queue_env *env,
                                    smtpx_outbox_msg **out);

/**
 * @brief  Add a recipient, as smtpx_queue_add_rcpt(); unless
 *         SMTPX_OUTBOX_NO_DSN, NOTIFY=SUCCESS,FAILURE is asked for
 *         (NEVER is dropped).
 */
SMTPX_EXTERN int smtpx_outbox_add_rcpt(smtpx_outbox_msg *m, const char *addr,
                                       unsigned notify, const char *orcpt);

/**
 * @brief  Append content (CRLF line ends), as smtpx_queue_write().  The
 *         header is held (up to 64 KiB) until it ends: a Message-ID (and,
 *         unless SMTPX_OUTBOX_NO_MDN, a Disposition-Notification-To) is
 *         added after its trace fields when it has none.
 * @retval As smtpx_queue_write(); SMTPX_ERR_LIMIT for a header over 64 KiB.
 */
SMTPX_EXTERN int smtpx_outbox_write(smtpx_outbox_msg *m, const void *data,
                                    size_t len);

/**
 * @brief  Keep the message (durably, in the outbox) and send it (commit
 *         it to the queue).  The message object is freed whatever the
 *         outcome.  Only when this returns 0 is the message the outbox's:
 *         it is resent until acknowledged.
 * @param  message_id, size  Receive its Message-ID (without brackets);
 *                           256 octets suffice.  May be NULL.
 * @retval As smtpx_queue_commit().  The outbox's copy is kept first: when
 *         that succeeded and the first send did not, 0 is returned: the
 *         outbox sends it at its first deadline.
 */
SMTPX_EXTERN int smtpx_outbox_commit(smtpx_outbox_msg *m, char *message_id,
                                     size_t size);

/** @brief Give up a message begun (NULL-safe). */
SMTPX_EXTERN void smtpx_outbox_abort(smtpx_outbox_msg *m);

/**
 * @brief  Take what a report says: find the message it is about (an MDN's
 *         Original-Message-ID, a DSN's Original-Envelope-Id or the
 *         Message-ID of what it returns) and record the outcome of each
 *         recipient it names.  A message all of whose recipients are
 *         final leaves the outbox (remembered for history_s), and the
 *         copies the delivery queue still holds of it are cancelled.
 *         What it records is durable when it returns 0 or more (so the
 *         report may be answered 250): the removal of a finished message
 *         (one directory sync, shared by the threads that acknowledge at
 *         the same time), the state of one that still waits (a file and
 *         a directory sync).  A repeated report makes durable what an
 *         earlier one could not.
 * @param  to  The envelope recipient the report came to, or NULL: a
 *             report to ack_address is the outbox's even when it matches
 *             nothing (a stray or very late one).
 * @return The number of recipients whose state changed (0 for a repeated
 *         or merely informative report about a message of the outbox), or
 *         SMTPX_ERR_NOT_FOUND (nothing of the outbox's: deliver the
 *         report as mail), SMTPX_ERR_INVALID_ARGUMENT (NULL, or r not a
 *         parsed report), SMTPX_ERR_IO, SMTPX_ERR_NOSPACE, SMTPX_ERR_NOMEM
 *         (recorded in memory but not durable: answer the report 4xx).
 */
SMTPX_EXTERN int smtpx_outbox_ack(smtpx_outbox *ob, const smtpx_report *r,
                                  const char *to);

/**
 * @brief  Resend what is due, give up what has run out of resends.  The
 *         delivery engine calls it when the outbox is in its options; call
 *         it yourself otherwise (at smtpx_outbox_next()).
 * @return The number of messages resent or given up, or an error of the
 *         queue (the message is tried again at the next call).
 */
SMTPX_EXTERN int smtpx_outbox_run(smtpx_outbox *ob);

/** @brief The Unix time at which smtpx_outbox_run() has work, or 0 for
 *         none. */
SMTPX_EXTERN int64_t smtpx_outbox_next(smtpx_outbox *ob);

/**
 * @brief  The state of a message: SMTPX_OUTBOX_WAITING while any of its
 *         recipients waits; else FAILED if any failed, GAVE_UP if any was
 *         given up, ACKED when all acknowledged.  Finished messages are
 *         known for history_s.
 * @return The state, SMTPX_ERR_NOT_FOUND, SMTPX_ERR_INVALID_ARGUMENT.
 */
SMTPX_EXTERN int smtpx_outbox_state(smtpx_outbox *ob, const char *message_id);

/**
 * A waiting message, as smtpx_outbox_list() shows it; pointers are valid
 * during the call.
 */
typedef struct smtpx_outbox_info {
    const char *message_id;
    const char *from;
    int64_t arrival; /* Unix time */
    int64_t next;    /* the next resend (or giving up), Unix time */
    unsigned sends;  /* times sent */
    size_t nrcpts;
    const char *const *rcpts;
    const int *states; /* SMTPX_OUTBOX_* of each recipient */
} smtpx_outbox_info;

typedef int smtpx_outbox_list_fn(const smtpx_outbox_info *info,
                                 void *user_data);

/**
 * @brief  Show every message still waiting for an acknowledgement, oldest
 *         first.  fn may not call the outbox.
 * @return 0, fn's non-zero value, SMTPX_ERR_INVALID_ARGUMENT,
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_outbox_list(smtpx_outbox *ob, smtpx_outbox_list_fn *fn,
                                   void *user_data);

/** @brief Messages waiting for an acknowledgement. */
SMTPX_EXTERN size_t smtpx_outbox_count(smtpx_outbox *ob);

/**
 * What an outbox has done since it was opened.  Set size to
 * sizeof(smtpx_outbox_stats).
 *
 * waiting      Messages waiting now.
 * sent         Messages taken (committed).
 * resent       Resends.
 * acked        Recipients acknowledged.
 * failed       Recipients with a failure report.
 * gave_up      Recipients given up.
 * repeats      Reports about a recipient already final, or a finished
 *              message (acknowledgements sent again by the receiver).
 * strays       Reports to ack_address about no message the outbox knows.
 */
typedef struct smtpx_outbox_stats {
    size_t size;
    uint64_t waiting;
    uint64_t sent;
    uint64_t resent;
    uint64_t acked;
    uint64_t failed;
    uint64_t gave_up;
    uint64_t repeats;
    uint64_t strays;
} smtpx_outbox_stats;

/** @brief Fill st (st->size set by the caller). */
SMTPX_EXTERN void smtpx_outbox_stats_get(smtpx_outbox *ob,
                                         smtpx_outbox_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_ACK_H */
