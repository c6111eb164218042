/*
 * queue - internal declarations of the queue: the in-memory record of a
 * queued message, the queue file format (qfile.c) and what the delivery
 * engine uses of the queue (queue.c).
 */
#ifndef SMTPX_LIB_QUEUE_H
#define SMTPX_LIB_QUEUE_H

#include <stdint.h>

#include <libsmtpx/mta.h>

#include "base/buf.h"
#include "mta/maildir.h"

/* Hard limits of the queue file parser. */
#define SMTPX__QFILE_LINE_MAX  2048       /* one envelope or state line */
#define SMTPX__QFILE_HEAD_MAX  (8u << 20) /* the envelope of a message */
#define SMTPX__QFILE_RCPTS_MAX 100000u
#define SMTPX__QFILE_ADDR_MAX  998 /* RFC 5322 line, more than 5321 */
#define SMTPX__QFILE_TEXT_MAX  512

/* What has been reported to the sender about a recipient (bits). */
#define SMTPX__QR_REPORTED (1u << 0) /* failure or success report done */
#define SMTPX__QR_DELAYED  (1u << 1) /* delay warning sent */

typedef struct smtpx__qrcpt {
    char *addr;
    char *orcpt; /* as received (xtext), or NULL */
    unsigned notify;
    int state; /* SMTPX_QRCPT_* */
    unsigned attempts;
    unsigned reported; /* SMTPX__QR_* */
    int code;
    uint16_t enh[3];
    char *text;   /* the last reply's text, one line, or NULL */
    char *remote; /* the host that gave it, or NULL */
} smtpx__qrcpt;

typedef struct smtpx__qmsg {
    char id[32];
    char *from;
    char *envid; /* xtext, or NULL */
    int ret;
    int body;
    int smtputf8;
    int64_t arrival;
    uint64_t content_off; /* where the content starts in the file */
    uint64_t size;        /* content octets */
    size_t nrcpts;
    smtpx__qrcpt *rcpts;
    /* State (the state file). */
    int64_t next_attempt;
    int held;
    /* The queue's bookkeeping. */
    unsigned in_flight : 1;  /* taken by the engine */
    unsigned deleted : 1;    /* deleted while in flight */
    unsigned hold_dirty : 1; /* held or released while in flight */
    struct smtpx__qmsg *prev, *next;
} smtpx__qmsg;

/* ---- qfile.c: the format ---- */

/*
 * The message file, DIR/msg/ID:
 *
 *   SMTPXQ1                      magic and version
 *   T <arrival>                  Unix time, decimal
 *   F <from>                     reverse-path ("" for <>): the rest of the
 *                                line
 *   P <ret> <body> <smtputf8>    decimal
 *   E <envid>                    optional
 *   R <notify> <orcpt|-> <addr>  one per recipient, in order
 *   .                            end of the envelope
 *   <content>                    as received, to the end of the file
 *
 * The state file, DIR/state/ID (absent: every recipient pending):
 *
 *   SMTPXS1
 *   N <next_attempt> <held>
 *   S <i> <state> <attempts> <reported> <code> <c.s.d> <remote|-> <text>
 *   .
 *
 * Lines end with LF; every field is printable (no control character).
 * Parsing is strict, with hard limits (SMTPX__QFILE_*): a file that does
 * not parse is damaged and is set aside, never half delivered.
 */

/* Format the envelope of m into b; 0 or SMTPX_ERR_NOMEM. */
int smtpx__qfile_format_env(const smtpx__qmsg *m, smtpx__buf *b,
                            const smtpx_mem *mem);

/* Format the state of m into b; 0 or SMTPX_ERR_NOMEM. */
int smtpx__qfile_format_state(const smtpx__qmsg *m, smtpx__buf *b,
                              const smtpx_mem *mem);

/* Parse an envelope from the first len bytes of a message file into m
 * (zeroed by the caller); sets m->content_off.  0, SMTPX_ERR_CORRUPT (not
 * a whole envelope, or one outside the limits), SMTPX_ERR_NOMEM.  On
 * failure m holds what smtpx__qmsg_clear() frees. */
int smtpx__qfile_parse_env(const char *buf, size_t len, smtpx__qmsg *m,
                           const smtpx_mem *mem);

/* Parse a state file onto m (whose envelope is loaded).  0,
 * SMTPX_ERR_CORRUPT, SMTPX_ERR_NOMEM. */
int smtpx__qfile_parse_state(const char *buf, size_t len, smtpx__qmsg *m,
                             const smtpx_mem *mem);

/* Free what m's members own (not m). */
void smtpx__qmsg_clear(smtpx__qmsg *m, const smtpx_mem *mem);

/* 1 if s may be written as a field: no control character, at most max
 * octets. */
int smtpx__qfile_field_ok(const char *s, size_t max);

/* Set a recipient's last reply (text made one line and cut). */
int smtpx__qrcpt_set_reply(smtpx__qrcpt *r, const smtpx_reply *reply,
                           const char *remote, const smtpx_mem *mem);

/* ---- queue.c: for the engine ---- */

/* The queue's allocator and options. */
const smtpx_mem *smtpx__queue_mem(const smtpx_queue *q);
const smtpx_queue_opts *smtpx__queue_opts(const smtpx_queue *q);

/* Open with the file-system calls of fs (NULL: the real ones). */
int smtpx__queue_open_fs(smtpx_queue **out, const char *dir,
                         const smtpx_queue_opts *opts, const smtpx__fs *fs);

/* smtpx_queue_commit(), and the record handed to the caller in flight,
 * as smtpx__queue_take_due() would: the caller's until released.  The
 * outbox keeps its messages so.  *out is NULL on failure. */
int smtpx__queue_commit_take(smtpx_queue_msg *qm, char *id, size_t id_size,
                             smtpx__qmsg **out);

/* Set the ENVID (xtext) of a message begun, before its first write.  0,
 * SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE, SMTPX_ERR_NOMEM. */
int smtpx__queue_set_envid(smtpx_queue_msg *qm, const char *envid);

/* The engine's wake-up, called after a commit or a flush (any thread). */
typedef void smtpx__queue_notify_fn(void *ud);
int smtpx__queue_set_notify(smtpx_queue *q, smtpx__queue_notify_fn *fn,
                            void *ud);
/* Tell whoever set the notify function (the engine) to look again: its
 * next deadline may have changed without a commit (the outbox tracking a
 * message it could not queue). */
void smtpx__queue_poke(smtpx_queue *q);

/* Take the messages due at now (not held, not in flight) into out (up to
 * max); each is marked in flight and belongs to the engine until
 * smtpx__queue_release().  *next receives the earliest later attempt time
 * (0: none).  Returns how many were taken. */
size_t smtpx__queue_take_due(smtpx_queue *q, int64_t now, smtpx__qmsg **out,
                             size_t max, int64_t *next);

/* The earliest next attempt of a waiting message (not held, not in
 * flight); 0: none. */
int64_t smtpx__queue_next(smtpx_queue *q);

/* Make every waiting message due now. */
void smtpx__queue_flush_all(smtpx_queue *q);

/* Write m's state durably (the state file).  0, SMTPX_ERR_IO,
 * SMTPX_ERR_NOSPACE, SMTPX_ERR_NOMEM. */
int smtpx__queue_save(smtpx_queue *q, smtpx__qmsg *m);

/* Give m back after its attempt: removed from the queue unless keep, or
 * kept for its next_attempt.  A message deleted while in flight is
 * removed either way.  A removal unlinks msg/ID at once; the sync of
 * msg/ that makes it durable and the unlink of state/ID wait for
 * smtpx__queue_sync(), so that a round's removals share one sync. */
void smtpx__queue_release(smtpx_queue *q, smtpx__qmsg *m, int keep);

/* Make the removals since the last call durable (one sync of msg/), then
 * unlink their state files.  Until then a crash may bring those messages
 * back, and they are delivered again: a duplicate, never a loss.  0,
 * SMTPX_ERR_IO. */
int smtpx__queue_sync(smtpx_queue *q);

/* The same in three steps, for a caller whose threads share the sync
 * (the outbox's group commit): how many removals wait for it; a sync of
 * msg/ (any thread; 0 or SMTPX_ERR_IO); then the first n of them are
 * durable: their state files are unlinked and they are forgotten.  Calls
 * other than the sync of msg/ are the caller's thread's, or under its
 * lock. */
size_t smtpx__queue_unsynced(const smtpx_queue *q);
int smtpx__queue_sync_msgs(smtpx_queue *q);
void smtpx__queue_synced(smtpx_queue *q, size_t n);

/* Cancel message id (any thread): it is removed without being tried
 * again, by the engine in its thread - after its attempt when it is in
 * flight (no report is made of it), at once when it waits (due now, and
 * no longer held).  Not durable: a crash before the removal brings it
 * back.  0 or SMTPX_ERR_NOT_FOUND. */
int smtpx__queue_cancel(smtpx_queue *q, const char *id);

/* Call fn for every message of the queue, with the queue's lock held: fn
 * may read what never changes after the commit (id, from, envid, the
 * recipients' addresses) and must not call the queue. */
typedef void smtpx__queue_each_fn(const smtpx__qmsg *m, void *ud);
void smtpx__queue_each(smtpx_queue *q, smtpx__queue_each_fn *fn, void *ud);

/* Open m's file for reading its content; the descriptor is positioned
 * at the content.  -1 with errno on failure. */
int smtpx__queue_open_content(smtpx_queue *q, const smtpx__qmsg *m);

/* The current Unix time through the queue's clock. */
int64_t smtpx__queue_now(smtpx_queue *q);
/* The same, rounded up to a whole second: a deadline of it plus a wait
 * lies at least the wait ahead (deadlines are whole seconds). */
int64_t smtpx__queue_now_up(smtpx_queue *q);

#endif
