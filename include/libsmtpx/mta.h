/*
 * libsmtpx - the mini-MTA: a durable queue, routing and delivery, bounces,
 * local delivery (Maildir, mbox, a command) and trace headers.
 *
 * The Maildir writer stores one message the way the Maildir format asks
 * (write into tmp/, fsync, rename into new/, fsync new/), so that a message
 * is durable before the server answers 250.  By default it writes LF line
 * ends, as Postfix and Dovecot do; SMTPX_MAILDIR_CRLF keeps CRLF.  A
 * Maildir and its messages belong to one thread at a time, except that
 * messages may be synced and committed on other threads (group commit:
 * smtpx_maildir_sync(), smtpx_maildir_commit_group()); several
 * smtpx_maildir objects (in one process or many) may deliver into the same
 * directory.
 */
#ifndef LIBSMTPX_MTA_H
#define LIBSMTPX_MTA_H

#include <libsmtpx/auth.h>
#include <libsmtpx/client.h>
#include <libsmtpx/common.h>
#include <libsmtpx/conf.h>
#include <libsmtpx/msg.h>
#include <libsmtpx/server.h>
#include <libsmtpx/tls.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smtpx_maildir smtpx_maildir;
typedef struct smtpx_maildir_msg smtpx_maildir_msg;

/** Create the Maildir (and its tmp/, new/, cur/) when missing. */
#define SMTPX_MAILDIR_CREATE (1u << 0)
/** Store CRLF line ends as received instead of LF. */
#define SMTPX_MAILDIR_CRLF (1u << 1)

/**
 * @brief  Open a Maildir for delivery.  The host name for unique names is
 *         read once, here.
 * @param  out    Receives the Maildir; set to NULL on failure.
 * @param  path   The Maildir's directory; copied.  SMTPX_MAILDIR_CREATE
 *                creates it and tmp/, new/ and cur/ (mode 0700) where
 *                missing, but not its parent directories.
 * @param  flags  SMTPX_MAILDIR_* bits.
 * @param  mem    Allocator; NULL for the C library's.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL out or path, empty path,
 *         unknown flags, or an allocator missing a function),
 *         SMTPX_ERR_IO (missing or unusable directory; errno tells more),
 *         SMTPX_ERR_NOSPACE (creating a directory: disk full or quota),
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_maildir_open(smtpx_maildir **out, const char *path,
                                    unsigned flags, const smtpx_mem *mem);

/** @brief Close a Maildir (NULL-safe).  Messages begun on it must have
 *         been committed or aborted. */
SMTPX_EXTERN void smtpx_maildir_free(smtpx_maildir *md);

/**
 * @brief  Begin a message: a new file in tmp/ with a unique name
 *         (time.MmicrosecondsPpidQcounter.host, as the Maildir format asks;
 *         '/' and ':' in the host name are written \057 and \072).  A name
 *         that exists in tmp/ is never reused: the next counter is tried.
 *         The message holds a 64 KiB write buffer until it is committed or
 *         aborted.
 * @param  out  Receives the message; set to NULL on failure.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL md or out), SMTPX_ERR_IO,
 *         SMTPX_ERR_NOSPACE, SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_maildir_begin(smtpx_maildir *md,
                                     smtpx_maildir_msg **out);

/**
 * @brief  Append message bytes.  CRLF becomes LF unless the Maildir was
 *         opened with SMTPX_MAILDIR_CRLF (a CRLF split across two calls is
 *         still seen as one; a bare CR is kept).  Writes are buffered.
 *         At the first error the file is removed at once (so that a full
 *         disk is not kept full); the message must still be committed or
 *         aborted to free it.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL m, or NULL data with len >
 *         0), SMTPX_ERR_IO, SMTPX_ERR_NOSPACE (disk full or quota), or the
 *         error of an earlier write (errors are sticky; errno is set again
 *         to what the failing call left).
 */
SMTPX_EXTERN int smtpx_maildir_write(smtpx_maildir_msg *m, const void *data,
                                     size_t len);

/**
 * @brief  Make the message durable: flush, fsync the file, close it, rename
 *         it into new/, fsync new/.  The message object is freed whatever
 *         the outcome.  On failure no file is left: the file in tmp/ is
 *         removed, and if new/ cannot be fsync'ed after the rename, the
 *         file is removed from new/ as well (the message was not
 *         acknowledged, so the client will send it again: leaving it would
 *         deliver it twice).  errno is what the failing call left.
 * @param  name       Receives the file name in new/ (NUL-terminated); may
 *                    be NULL.  256 bytes suffice where file names are
 *                    limited to 255 bytes (Linux, the BSDs); "" on failure.
 * @param  name_size  Size of name.
 * @retval 0 (the message is on disk), SMTPX_ERR_IO, SMTPX_ERR_NOSPACE,
 *         SMTPX_ERR_INVALID_ARGUMENT (NULL m, or name_size too small for
 *         the name: the message is then discarded, not delivered).
 */
SMTPX_EXTERN int smtpx_maildir_commit(smtpx_maildir_msg *m, char *name,
                                      size_t name_size);

/**
 * @brief  The first half of commit, for group commit: write what is
 *         buffered, fdatasync the file and close it (its buffer is freed).
 *         The message is durable in tmp/ but not delivered: commit it
 *         with smtpx_maildir_commit_group() (or smtpx_maildir_commit()),
 *         or abort it.  Calling it again does nothing.  May run on another
 *         thread than the Maildir's other messages (it reads only what
 *         the Maildir fixed at open), one thread per message at a time.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (m NULL), SMTPX_ERR_IO,
 *         SMTPX_ERR_NOSPACE (the file was removed; errors are sticky and
 *         errno is what the failing call left).
 */
SMTPX_EXTERN int smtpx_maildir_sync(smtpx_maildir_msg *m);

/**
 * @brief  Commit several messages at once, sharing the directory syncs:
 *         each file is synced (if smtpx_maildir_sync() has not done it),
 *         all are renamed into new/, then each new/ directory among them
 *         is fsync'ed once.  The 250 for each message may be sent once
 *         this has returned with its result 0.  A failure is per message:
 *         its files are removed; if a directory's sync fails, every
 *         message renamed into it is removed from new/ again (none was
 *         acknowledged).  Every message is freed.  The messages may belong
 *         to several Maildirs; as for smtpx_maildir_sync(), this may run
 *         on another thread than the one beginning messages.
 * @param  msgs     n messages (each at most once); a NULL entry gets
 *                  SMTPX_ERR_INVALID_ARGUMENT.
 * @param  results  Receives n results: 0 (durable in new/), SMTPX_ERR_IO,
 *                  SMTPX_ERR_NOSPACE, SMTPX_ERR_INVALID_ARGUMENT (a name
 *                  longer than name_size: discarded, not delivered).
 * @param  names    NULL, or n buffers of name_size bytes, one after the
 *                  other: message i's name in new/ at names + i *
 *                  name_size ("" if it failed).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (msgs or results NULL with n > 0;
 *         nothing was done).
 */
SMTPX_EXTERN int smtpx_maildir_commit_group(smtpx_maildir_msg *const *msgs,
                                            size_t n, int *results, char *names,
                                            size_t name_size);

/** @brief Give up a message: remove its file from tmp/ and free it
 *         (NULL-safe). */
SMTPX_EXTERN void smtpx_maildir_abort(smtpx_maildir_msg *m);

/** @brief Bytes written to the message so far (after line-end
 *         conversion; a CR that ends the data given so far is counted once
 *         the next byte, or commit, shows whether it starts a CRLF).  0 for
 *         NULL. */
SMTPX_EXTERN uint64_t smtpx_maildir_msg_size(const smtpx_maildir_msg *m);

/** The age after which a file in tmp/ is a leftover, as the Maildir
 *  convention has it: 36 hours, in seconds. */
#define SMTPX_MAILDIR_TMP_MAX_AGE 129600u

/**
 * @brief  Remove the leftovers of deliveries that died (a crash, a kill,
 *         a power cut) from tmp/: the regular files there that have been
 *         neither modified nor read for more than max_age seconds.  Files
 *         younger than that are left alone, since another program (or
 *         another process of this one) may be delivering into the same
 *         Maildir; SMTPX_MAILDIR_TMP_MAX_AGE (36 hours) is the Maildir
 *         convention's age and the one to use.  Files in new/ and cur/ are
 *         never touched; symbolic links and other non-regular entries are
 *         skipped.  Call it when a program that delivers starts, and now and
 *         then (the convention: at most once a day is plenty).
 * @param  md       The Maildir.
 * @param  max_age  Seconds; see SMTPX_MAILDIR_TMP_MAX_AGE.
 * @param  removed  Receives the number of files removed; may be NULL.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL md), SMTPX_ERR_IO (tmp/
 *         cannot be read, or a file could not be removed; the others are
 *         still removed; errno tells more), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_maildir_clean_tmp(smtpx_maildir *md, uint64_t max_age,
                                         size_t *removed);

/**
 * @brief  Format the Return-Path and Received trace headers for the
 *         message of the current transaction (RFC 5321 4.4, RFC 3848),
 *         CRLF line ends, folded:
 *
 *         Return-Path: <from>
 *         Received: from HELO (NAME [ADDR])
 *                 by HOST (libsmtpx) with ESMTPS id ID
 *                 (version=TLSv1.2 cipher=...)
 *                 for <RCPT>; DATE
 *
 *         HOST is smtpx_server_hostname(); NAME is the peer's verified
 *         name and ADDR its address (written [IPv6:...] for IPv6, RFC 5321
 *         4.1.3); either is left out when the driver did not give it, and
 *         HELO is "unknown" when the client sent none.  The TLS comment
 *         appears only when TLS is active.  Clauses move to a continuation
 *         line (TAB) when a line would pass 78 characters.  What the
 *         client or driver chose (HELO name, NAME, ADDR, the TLS names) and
 *         id are sanitised: a byte that could end the header, open or close
 *         a comment, or start a quoted string or a bracketed address where
 *         none belongs (CR, LF, other controls, space, 8-bit bytes,
 *         ()<>;\" and, inside the comments, []) becomes '?'.  The paths
 *         keep any printable text (quoted local parts, UTF-8); controls
 *         become '?'.
 *
 * @param  s           A server session inside a transaction (after an
 *                     accepted MAIL, until the transaction ends).  May be
 *                     called from a callback.
 * @param  id          Queue or file id for "id"; may be NULL (or "").
 * @param  unix_time   The time to record; utc_offset as for
 *                     smtpx_format_date().
 * @param  buf, size   Output.  On failure buf holds "" (if size > 0).
 * @return The length written (without the NUL), SMTPX_ERR_INVALID_STATE
 *         (no transaction), or SMTPX_ERR_INVALID_ARGUMENT (NULL s or buf,
 *         a time or offset smtpx_format_date() refuses, or does not fit).
 *         "for" is given only when the message has one recipient, so that
 *         a copy does not reveal its other recipients.
 */
SMTPX_EXTERN smtpx_ssize smtpx_server_trace_headers(const smtpx_server *s,
                                                    const char *id,
                                                    int64_t unix_time,
                                                    int utc_offset, char *buf,
                                                    size_t size);

/**
 * @brief  The Received header of smtpx_server_trace_headers() alone, for
 *         a relay: RFC 5321 4.4 has the Return-Path added at final
 *         delivery, not by each hop.
 * @return As smtpx_server_trace_headers().
 */
SMTPX_EXTERN smtpx_ssize smtpx_server_received_header(const smtpx_server *s,
                                                      const char *id,
                                                      int64_t unix_time,
                                                      int utc_offset, char *buf,
                                                      size_t size);

/* ---- the queue ----------------------------------------------------------- */

/*
 * A spool directory of messages waiting for delivery.  Durability order
 * (what is fsync'ed when, and what a crash at each instant leaves):
 *
 *  1. A message arrives into DIR/tmp/ID: the envelope (sender, DSN
 *     parameters, recipients) then the content, in one file.  A crash now
 *     leaves a file in tmp/, removed at the next open: the client was not
 *     told 250, so it sends the message again.
 *  2. commit: fsync the file, rename it to DIR/msg/ID, fsync DIR/msg.
 *     Only then does commit return 0 and the server may say 250.  A crash
 *     before the directory fsync leaves either no message (never
 *     acknowledged) or the whole one (it is delivered; the client, not
 *     having seen 250, may send it again: a duplicate, never a loss).
 *  3. After each delivery attempt the recipients' states are written to
 *     DIR/tmp, fsync'ed, renamed over DIR/state/ID and DIR/state is
 *     fsync'ed, before the next attempt of that message begins.  A crash
 *     before the rename leaves the previous state: recipients delivered in
 *     that attempt are delivered again (the only duplicates: RFC 5321 6.1
 *     prefers them to loss); after it, nothing is repeated.
 *  4. A bounce or delay report is committed as a message of its own (step
 *     2) before the state that records it is written (step 3): a crash
 *     between may send it twice, never not at all.
 *  5. When every recipient is final, DIR/msg/ID is unlinked; DIR/msg is
 *     fsync'ed once for all the removals of an engine round, then the
 *     DIR/state/ID files are unlinked.  A crash before that sync may
 *     bring the message back with its last saved state: its recipients
 *     delivered since are delivered again (the duplicates of step 3); a
 *     state file left without its message is removed at the next open.
 *
 * Files are line-based and versioned (see smtpx_queue_open(3)); a damaged
 * file is set aside in DIR/corrupt/, never delivered half.  One process
 * owns a queue at a time (a lock on DIR/lock, which holds its process id).
 */
typedef struct smtpx_queue smtpx_queue;
typedef struct smtpx_queue_msg smtpx_queue_msg;

/** Open the queue read-only: no lock, no recovery (smtpx-relay --list
 *  while the relay runs).  Only smtpx_queue_list() may be used. */
#define SMTPX_QUEUE_READONLY (1u << 0)
/** Do not fsync (benchmarks and tests only: a crash may lose mail). */
#define SMTPX_QUEUE_NOSYNC (1u << 1)

/**
 * Options of smtpx_queue_open().  Set size to sizeof(smtpx_queue_opts) and
 * leave what you do not need zero: members may be added at the end.
 *
 * flags          SMTPX_QUEUE_* bits.
 * retry_min_s    Delay before the first retry; 0: 300 s (Postfix's
 *                minimal_backoff_time).  It doubles with every attempt ...
 * retry_max_s    ... up to this; 0: 3600 s (about once an hour).  Times
 *                are whole seconds: a retry comes no sooner than its
 *                delay after the attempt ended, at most a second later.
 * expire_s       A recipient still deferred this long after arrival
 *                fails (a bounce); 0: 5 days.
 * delay_warn_s   Send a "delayed" report (NOTIFY=DELAY, or no NOTIFY)
 *                once a recipient has been deferred this long; 0: never.
 * max_rcpts      Recipients per message; 0: 1000.
 * mem            Allocator; NULL: the C library's.
 */
typedef struct smtpx_queue_opts {
    size_t size;
    unsigned flags;
    uint32_t retry_min_s;
    uint32_t retry_max_s;
    uint32_t expire_s;
    uint32_t delay_warn_s;
    uint32_t max_rcpts;
    const smtpx_mem *mem;
} smtpx_queue_opts;

/**
 * @brief  Open (creating where missing: DIR and its tmp/, msg/, state/ and
 *         corrupt/, mode 0700) and lock a queue, then recover it: files
 *         left in tmp/ by a crash are removed, state files without a
 *         message are removed, damaged files are moved to corrupt/, and
 *         every other message is loaded to resume.
 * @param  opts  NULL for the defaults.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL out or dir, opts->size 0,
 *         unknown flags, an incomplete allocator), SMTPX_ERR_BUSY (another
 *         process holds the lock), SMTPX_ERR_IO (errno tells more),
 *         SMTPX_ERR_NOSPACE, SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_queue_open(smtpx_queue **out, const char *dir,
                                  const smtpx_queue_opts *opts);

/** @brief Close a queue (NULL-safe).  Messages begun must have been
 *         committed or aborted; no engine may still use it. */
SMTPX_EXTERN void smtpx_queue_free(smtpx_queue *q);

/**
 * The envelope of a new message, as MAIL FROM gave it.  Set size to
 * sizeof(smtpx_queue_env); members may be added at the end.
 *
 * from      Reverse-path without brackets, "" for <>.
 * ret       SMTPX_DSN_RET_* (RFC 3461 4.3).
 * envid     ENVID as received (xtext), or NULL.
 * body      SMTPX_BODY_*.
 * smtputf8  1 if the message needs SMTPUTF8.
 */
typedef struct smtpx_queue_env {
    size_t size;
    const char *from;
    int ret;
    const char *envid;
    int body;
    int smtputf8;
} smtpx_queue_env;

/**
 * @brief  Begin a message: a new file in tmp/ with a unique queue id.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL, a READONLY queue, a from
 *         or envid with a control character or over 998 octets),
 *         SMTPX_ERR_IO, SMTPX_ERR_NOSPACE, SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_queue_begin(smtpx_queue *q, const smtpx_queue_env *env,
                                   smtpx_queue_msg **out);

/**
 * @brief  Add a recipient, before the first smtpx_queue_write().
 * @param  addr    Forward-path without brackets; copied.
 * @param  notify  SMTPX_DSN_NOTIFY_* bits; 0 when not given.
 * @param  orcpt   ORCPT as received ("rfc822;user@example.org", xtext),
 *                 or NULL.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (an empty address, a control
 *         character, over 998 octets), SMTPX_ERR_INVALID_STATE (content
 *         written already), SMTPX_ERR_LIMIT (max_rcpts), and the errors of
 *         smtpx_queue_write().
 */
SMTPX_EXTERN int smtpx_queue_add_rcpt(smtpx_queue_msg *m, const char *addr,
                                      unsigned notify, const char *orcpt);

/**
 * @brief  Append message content (CRLF line ends, as the server core gives
 *         it; it is stored as it is).  Errors are sticky; at the first the
 *         file is removed.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE (no
 *         recipient), SMTPX_ERR_IO, SMTPX_ERR_NOSPACE, SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_queue_write(smtpx_queue_msg *m, const void *data,
                                   size_t len);

/**
 * @brief  Make the message durable (fsync, rename into msg/, fsync msg/)
 *         and hand it to the queue's engine.  The message object is freed
 *         whatever the outcome; on failure no file is left and the message
 *         must not be acknowledged.  May be called from several threads at
 *         once (they share the syncs of msg/) while an engine runs on
 *         another.
 * @param  id, id_size  Receive the queue id; 32 bytes suffice.  May be
 *                      NULL.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL m, id_size too small),
 *         SMTPX_ERR_INVALID_STATE (no recipient), SMTPX_ERR_IO,
 *         SMTPX_ERR_NOSPACE, SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_queue_commit(smtpx_queue_msg *m, char *id,
                                    size_t id_size);

/** @brief Give up a message begun (NULL-safe): its file is removed. */
SMTPX_EXTERN void smtpx_queue_abort(smtpx_queue_msg *m);

/**
 * A queued recipient's state (SMTPX_QRCPT_*, smtpx_qrcpt_state_name()).
 *
 * PENDING    not tried yet
 * DEFERRED   tried, temporary failure: tried again later
 * DELIVERED  delivered, or relayed to a server that took it
 * FAILED     permanent failure, or expired: reported to the sender
 */
#define SMTPX_QRCPT_STATE_MAP(XX)                                              \
    XX(PENDING, 0, "pending")                                                  \
    XX(DEFERRED, 1, "deferred")                                                \
    XX(DELIVERED, 2, "delivered")                                              \
    XX(FAILED, 3, "failed")

enum {
#define SMTPX__QRCPT_ENUM(name, id, text) SMTPX_QRCPT_##name = id,
    SMTPX_QRCPT_STATE_MAP(SMTPX__QRCPT_ENUM)
#undef SMTPX__QRCPT_ENUM
        SMTPX_QRCPT_STATE_COUNT
};

/** @brief A queued recipient state's name ("deferred"), or "?". */
SMTPX_EXTERN const char *smtpx_qrcpt_state_name(int state);

/**
 * One recipient of a queued message, as smtpx_queue_list() shows it.
 * addr      The address.
 * state     SMTPX_QRCPT_*.
 * attempts  Delivery attempts so far.
 * reply     The last reply (code 0 if none); text '\n'-free.
 * remote    The host that gave it, or "".
 */
typedef struct smtpx_queue_rcpt {
    const char *addr;
    int state;
    unsigned attempts;
    smtpx_reply reply;
    const char *remote;
} smtpx_queue_rcpt;

/**
 * A queued message, as smtpx_queue_list() shows it; every pointer is
 * valid during the call only.
 */
typedef struct smtpx_queue_info {
    const char *id;
    const char *from;
    int64_t arrival;      /* Unix time */
    int64_t next_attempt; /* Unix time; 0: as soon as possible */
    uint64_t size;        /* content octets */
    int held;
    size_t nrcpts;
    const smtpx_queue_rcpt *rcpts;
} smtpx_queue_info;

/** Called for each message by smtpx_queue_list(); a non-zero return stops
 *  the listing and is returned. */
typedef int smtpx_queue_list_fn(const smtpx_queue_info *info, void *user_data);

/**
 * @brief  Show every message in the queue, oldest first, as its files
 *         say (what is durable: a message being delivered shows the state
 *         of its last attempt).  Works on a READONLY queue while another
 *         process owns it.
 * @return 0, fn's non-zero value, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_IO,
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_queue_list(smtpx_queue *q, smtpx_queue_list_fn *fn,
                                  void *user_data);

/**
 * @brief  Make deferred messages due now (id NULL: every one), as
 *         postqueue -f does; the engine is woken.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL q, READONLY),
 *         SMTPX_ERR_NOT_FOUND, SMTPX_ERR_IO, SMTPX_ERR_NOSPACE.
 */
SMTPX_EXTERN int smtpx_queue_flush(smtpx_queue *q, const char *id);

/**
 * @brief  Remove a message without a report to its sender.  A message
 *         being delivered is removed when its attempt ends.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_NOT_FOUND, SMTPX_ERR_IO.
 */
SMTPX_EXTERN int smtpx_queue_delete(smtpx_queue *q, const char *id);

/**
 * @brief  Hold a message (on 1: neither delivered nor expired until
 *         released) or release it (on 0).  The hold is durable.  A message
 *         being delivered is held once its attempt ends.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_NOT_FOUND, SMTPX_ERR_IO,
 *         SMTPX_ERR_NOSPACE.
 */
SMTPX_EXTERN int smtpx_queue_hold(smtpx_queue *q, const char *id, int on);

/** @brief Messages in the queue. */
SMTPX_EXTERN size_t smtpx_queue_count(smtpx_queue *q);

/* ---- the resolver -------------------------------------------------------- */

/*
 * An asynchronous DNS resolver: a query returns at once and its answer
 * comes through a callback from smtpx_resolver_process(), which the owner
 * calls when smtpx_resolver_fd() is readable or smtpx_resolver_expiry()
 * has passed.  An event loop therefore never blocks on DNS.  The system
 * resolver uses c-ares when the library was built with it, otherwise one
 * thread that runs the C library's resolver (res_nquery for MX,
 * getaddrinfo for addresses).  The static resolver answers from a table
 * (tests, smarthost set-ups).  A resolver belongs to one thread at a time.
 */
typedef struct smtpx_resolver smtpx_resolver;

/** Record types. */
#define SMTPX_RR_A    1
#define SMTPX_RR_MX   15
#define SMTPX_RR_AAAA 28

/**
 * One answer record.  For MX, pref is the preference and value the
 * exchange ("." for a null MX, RFC 7505); for A and AAAA, value is the
 * address as text.
 */
typedef struct smtpx_rr {
    int type;
    uint16_t pref;
    const char *value;
} smtpx_rr;

/**
 * An answer: status 0 with n records (valid during the call only),
 * SMTPX_ERR_DNS_NXDOMAIN (no such domain), SMTPX_ERR_DNS_NODATA (no record
 * of the type), SMTPX_ERR_RESOLVE (temporary failure: time-out, server
 * failure) or SMTPX_ERR_NOMEM.  For SMTPX_RR_A the answer holds the A and
 * the AAAA records (an "address" query).
 */
typedef void smtpx_resolve_fn(smtpx_resolver *r, int status, const smtpx_rr *rr,
                              size_t n, void *user_data);

/**
 * @brief  The system resolver (c-ares if built with it, else a thread
 *         over the C library's resolver; /etc/resolv.conf either way).
 * @param  mem  Allocator; NULL: the C library's.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_NOMEM, SMTPX_ERR_IO
 *         (the thread or its pipe could not be made), SMTPX_ERR_RESOLVE
 *         (c-ares could not read the configuration).
 */
SMTPX_EXTERN int smtpx_resolver_new(smtpx_resolver **out, const smtpx_mem *mem);

/**
 * @brief  A resolver that answers from a table filled with
 *         smtpx_resolver_static_add(); names not in it are NXDOMAIN.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_NOMEM, SMTPX_ERR_IO.
 */
SMTPX_EXTERN int smtpx_resolver_new_static(smtpx_resolver **out,
                                           const smtpx_mem *mem);

/**
 * @brief  Add a record to a static resolver.  A name with records of other
 *         types only answers NODATA for this one.
 * @param  name   Owner name, case-insensitive, without a trailing dot.
 * @param  type   SMTPX_RR_*; or 0 to make every query for name fail
 *                temporarily (SMTPX_ERR_RESOLVE).
 * @param  pref   MX preference.
 * @param  value  MX exchange ("." for null MX), or address text.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (not a static resolver, a bad
 *         type, an address that does not parse, names over 255 octets),
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_resolver_static_add(smtpx_resolver *r, const char *name,
                                           int type, uint16_t pref,
                                           const char *value);

/** @brief Free a resolver (NULL-safe); queries in flight are cancelled
 *         without their callbacks. */
SMTPX_EXTERN void smtpx_resolver_free(smtpx_resolver *r);

/**
 * @brief  Start a query.  The callback runs later, from
 *         smtpx_resolver_process(), never from this call.
 * @param  type  SMTPX_RR_MX, or SMTPX_RR_A for the host's addresses (A and
 *               AAAA).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL, a name over 255 octets or
 *         with a control character, another type), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_resolver_query(smtpx_resolver *r, const char *name,
                                      int type, smtpx_resolve_fn *fn,
                                      void *user_data);

/** @brief Cancel every query started with user_data: their callbacks
 *         will not run. */
SMTPX_EXTERN void smtpx_resolver_cancel(smtpx_resolver *r, void *user_data);

/** @brief A descriptor that turns readable when answers wait; poll it for
 *         reading.  Never -1 for a resolver made by this library. */
SMTPX_EXTERN int smtpx_resolver_fd(const smtpx_resolver *r);

/** @brief The monotonic time (smtpx_posix_now_ms() clock) at which
 *         smtpx_resolver_process() must run even if the descriptor stays
 *         quiet (retransmissions), or 0. */
SMTPX_EXTERN uint64_t smtpx_resolver_expiry(const smtpx_resolver *r);

/**
 * @brief  Read what is ready and run the callbacks of finished queries.
 *         Callbacks may start and cancel queries.
 * @return The number of callbacks run, or SMTPX_ERR_INVALID_ARGUMENT.
 */
SMTPX_EXTERN int smtpx_resolver_process(smtpx_resolver *r);

/** @brief Queries waiting for their answer. */
SMTPX_EXTERN size_t smtpx_resolver_pending(const smtpx_resolver *r);

/* ---- local delivery ------------------------------------------------------ */

/** Create the mbox file (mode 0600) when missing. */
#define SMTPX_MBOX_CREATE (1u << 0)

/**
 * @brief  Append a message to an mbox file as mutt and Dovecot expect: a
 *         "From sender date" line, the message with LF line ends and every
 *         line that begins with ">*From " quoted with one more ">"
 *         (mboxrd), and an empty line.  The file is locked with a dot-lock
 *         (path.lock, made with O_EXCL, stale after 5 minutes) and an
 *         fcntl() lock, written, fsync'ed, unlocked.  On failure the file
 *         is cut back to its old size, so no partial message stays.
 * @param  from       Envelope sender ("" gives MAILER-DAEMON).
 * @param  unix_time  For the From_ line.
 * @param  read, ctx  The message (CRLF or LF line ends).
 * @param  flags      SMTPX_MBOX_* bits.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_TIMEOUT (the locks could
 *         not be had within 10 s), SMTPX_ERR_IO, SMTPX_ERR_NOSPACE,
 *         SMTPX_ERR_NOMEM, or the reader's error.
 */
SMTPX_EXTERN int smtpx_mbox_deliver(const char *path, const char *from,
                                    int64_t unix_time, smtpx_body_read_fn *read,
                                    void *ctx, unsigned flags);

/**
 * @brief  Feed a message to a command (/bin/sh -c command) on its standard
 *         input, with the envelope in its environment, and judge by its
 *         exit status as Postfix's pipe does: 0 delivered (250 2.0.0), 75
 *         EX_TEMPFAIL deferred (451 4.3.0), anything else, a signal or the
 *         time-out failed (550 5.3.0); the reply text carries the first
 *         line of the command's output.  The command runs in its own
 *         process group, with standard output and error captured (the
 *         first 1 KiB kept), descriptors above 2 closed, and is killed at
 *         the time-out.  It blocks the calling thread.
 * @param  env        "NAME=value" strings, NULL-terminated (SENDER,
 *                    RECIPIENT...); the only environment the command gets,
 *                    with PATH=/usr/bin:/bin added.  May be NULL.
 * @param  timeout_ms 0: 10 minutes.
 * @param  result     Receives the verdict; its text points into text.
 * @param  text, text_size  Room for the reply text.
 * @retval 0 (result says what happened), SMTPX_ERR_INVALID_ARGUMENT,
 *         SMTPX_ERR_IO (fork or pipe failed: result is 451 then).
 */
SMTPX_EXTERN int smtpx_pipe_deliver(const char *command, const char *const *env,
                                    smtpx_body_read_fn *read, void *ctx,
                                    int timeout_ms, smtpx_reply *result,
                                    char *text, size_t text_size);

/* ---- the delivery engine ------------------------------------------------- */

/*
 * An smtpx_mta delivers the messages of a queue: it routes each recipient
 * (a local domain, a smarthost, or the domain's MX hosts by RFC 5321 5.1),
 * opens connections - several destinations in parallel, within a total
 * and a per-destination limit, in one thread, with poll() - sends several
 * messages per connection, records each recipient's result in the queue
 * (4xx, time-outs and connection failures defer; 5xx fails), retries with
 * back-off, and sends bounces, delay warnings and success reports (RFC
 * 3461, RFC 3464).  It runs in the thread that calls smtpx_mta_run();
 * smtpx_queue_commit() may run on another (a receiving loop), and wakes
 * it.  Local deliveries (a Maildir, an mbox, a command) block - a command
 * may run for minutes - so they run on threads of the engine's own
 * (max_local), made at the first one: remote deliveries never wait for
 * them.  Their results are recorded, and logged, on the engine's thread;
 * the queue's allocator (smtpx_mem) must then be thread-safe.
 */
typedef struct smtpx_mta smtpx_mta;

/** Local delivery kinds (smtpx_mta_opts.local_kind). */
#define SMTPX_LOCAL_NONE    0
#define SMTPX_LOCAL_MAILDIR 1 /* local_path/LOCALPART/ (a Maildir) */
#define SMTPX_LOCAL_MBOX    2 /* local_path/LOCALPART (an mbox file) */
#define SMTPX_LOCAL_PIPE    3 /* local_path is a command line */

/**
 * Options of smtpx_mta_new().  Set size to sizeof(smtpx_mta_opts); leave
 * what you do not need zero.
 *
 * client_cfg     A frozen client config (timeouts, extensions).  Required.
 * hostname       This host's name: HELO, Reporting-MTA, the bounce's
 *                From (MAILER-DAEMON@hostname) and the MX loop guard.
 *                Required.
 * resolver       For MX and address lookups; the engine does not own it.
 *                Required unless every destination is local or the
 *                smarthost is an address.
 * smarthost      "host:port" ("[192.0.2.1]:587"): relay everything that
 *                is not local there, without MX lookup; NULL: MX.
 * mx_port        Port for MX delivery; 0: 25.
 * tls, tls_cfg   A client TLS implementation, or NULL for none.
 * tls_set        1: use mx_tls_level and smarthost_tls_level as given.
 *                0: MAY for MX hosts (STARTTLS when offered) and VERIFY
 *                for the smarthost, as Postfix's smtp_tls_security_level
 *                with smarthosts.  Without tls both are NONE.
 * smarthost_auth Credentials for the smarthost, or NULL.
 * local_domains  Domains delivered locally (case-insensitive), nlocal of
 *                them; local_kind and local_path say how.
 * postmaster     Where a failure report about a bounce goes (a message
 *                with the null sender); NULL: logged and dropped.
 * max_conns      Connections in all; 0: 20.
 * max_conns_per_dest  Per destination; 0: 5.
 * max_msgs_per_conn   Messages per connection; 0: 100.
 * connect_timeout_ms  Per address; 0: 30 s.
 * bounce_full_max     RET=FULL returns the whole message up to this size,
 *                     else only the headers; 0: 50000 (as Postfix).
 * on_log, log_data    One line per delivery result and per trouble.
 * tls_policies, ntls_policies  Per-destination TLS levels that override
 *                     mx_tls_level, as Postfix's smtp_tls_policy_maps: a
 *                     domain matches itself, ".example.org" every
 *                     subdomain; the first match wins.  Ignored without
 *                     tls.
 * outbox              An outbox (<libsmtpx/ack.h>) whose queue is this
 *                     engine's: the engine runs its deadlines (resends,
 *                     giving up) with its own, and gives the outbox its
 *                     results about the outbox's copies (a local delivery
 *                     acknowledges, a failure fails and is still
 *                     reported to the sender once, "relayed" changes
 *                     nothing; no success report is sent for them);
 *                     NULL: none.  Not owned.
 * max_local           Local deliveries at once, each on a thread of its
 *                     own; 0: 2.
 * no_downgrade        1: an 8-bit message (BODY=8BITMIME) for a server
 *                     that does not offer 8BITMIME fails with the
 *                     client's 554 5.6.3.  0 (the default): it is made
 *                     7-bit (smtpx_msg_downgrade_new(3)) and sent, as
 *                     Postfix does unless disable_mime_output_conversion
 *                     is set; one that cannot be converted (8-bit header
 *                     fields) fails with 554 5.6.3 and the reason.
 */
typedef struct smtpx_mta_tls_policy {
    const char *domain;
    int level; /* SMTPX_TLS_* */
} smtpx_mta_tls_policy;

typedef struct smtpx_mta_opts {
    size_t size;
    const smtpx_config *client_cfg;
    const char *hostname;
    smtpx_resolver *resolver;
    const char *smarthost;
    uint16_t mx_port;
    const smtpx_tls_ops *tls;
    void *tls_cfg;
    int tls_set;
    int mx_tls_level;
    int smarthost_tls_level;
    const smtpx_auth_creds *smarthost_auth;
    const char *const *local_domains;
    size_t nlocal;
    int local_kind;
    const char *local_path;
    const char *postmaster;
    size_t max_conns;
    size_t max_conns_per_dest;
    size_t max_msgs_per_conn;
    int connect_timeout_ms;
    uint64_t bounce_full_max;
    smtpx_log_fn *on_log;
    void *log_data;
    const smtpx_mta_tls_policy *tls_policies;
    size_t ntls_policies;
    struct smtpx_outbox *outbox;
    size_t max_local;
    int no_downgrade;
} smtpx_mta_opts;

/**
 * @brief  Make a delivery engine for a (writable) queue.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (a missing or bad option, a
 *         READONLY queue, a queue that has an engine already),
 *         SMTPX_ERR_NOMEM, SMTPX_ERR_IO (its wake-up pipe).
 */
SMTPX_EXTERN int smtpx_mta_new(smtpx_mta **out, smtpx_queue *q,
                               const smtpx_mta_opts *opts);

/** @brief Free an engine (NULL-safe): connections still open are cut,
 *         their messages' recipients left as the queue last recorded
 *         them (they are tried again). */
SMTPX_EXTERN void smtpx_mta_free(smtpx_mta *m);

/**
 * @brief  One round: wait up to timeout_ms (-1: until something happens)
 *         for connections, the resolver, the next retry or a wake-up, and
 *         move every delivery on.
 * @return 1 while it runs, 0 once stopped with nothing in flight,
 *         SMTPX_ERR_IO (poll failed), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_mta_run_once(smtpx_mta *m, int timeout_ms);

/** @brief Run rounds until stopped and drained.  @return 0 or an error
 *         of smtpx_mta_run_once(). */
SMTPX_EXTERN int smtpx_mta_run(smtpx_mta *m);

/**
 * @brief  One descriptor for another event loop to watch, so that the
 *         engine can share a thread with receiving sessions (or anything
 *         else): when it is readable, or when smtpx_mta_expiry() has come,
 *         call smtpx_mta_run_once(m, 0), which never blocks then.  Its
 *         first call sets it up; call smtpx_mta_run_once(m, 0) once after.
 *         The descriptor belongs to the engine.
 * @return The descriptor (an epoll descriptor: Linux), or
 *         SMTPX_ERR_NOT_SUPPORTED elsewhere (then call
 *         smtpx_mta_run_once() with a short timeout), SMTPX_ERR_IO,
 *         SMTPX_ERR_NOMEM, SMTPX_ERR_INVALID_ARGUMENT.
 */
SMTPX_EXTERN int smtpx_mta_fd(smtpx_mta *m);

/** @brief When smtpx_mta_run_once() must run even if the descriptor stays
 *         quiet: a monotonic time (smtpx_posix_now_ms() clock), or 0 for
 *         none.  Valid after smtpx_mta_fd() and each
 *         smtpx_mta_run_once(). */
SMTPX_EXTERN uint64_t smtpx_mta_expiry(const smtpx_mta *m);

/** @brief Look at the queue again soon.  Async-signal-safe and callable
 *         from any thread. */
SMTPX_EXTERN void smtpx_mta_wake(smtpx_mta *m);

/** @brief Retry every deferred message now (as smtpx_queue_flush(q,
 *         NULL), from the engine's thread).  Async-signal-safe. */
SMTPX_EXTERN void smtpx_mta_flush(smtpx_mta *m);

/** @brief Stop: start nothing new, let attempts in flight finish (their
 *         results recorded), then smtpx_mta_run() returns.
 *         Async-signal-safe. */
SMTPX_EXTERN void smtpx_mta_stop(smtpx_mta *m);

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_MTA_H */
