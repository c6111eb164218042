/*
 * dsn - delivery status notifications (RFC 3464)
 * parameters (RFC 3461 4): a builder that queues a report about a queued
 * message, and a parser of reports (for tests and for the outbox that
 * waits for "delivered" reports).
 *
 * The builder is small and self-contained; the message layer's MIME
 * builder could write the same message once it is in the tree.
 */
#ifndef SMTPX_LIB_DSN_H
#define SMTPX_LIB_DSN_H

#include <libsmtpx/mta.h>

#include "mta/queue.h"

/* A message being written into the queue with a sticky error: the
 * reports (and MDNs, mdn.c) are written through it. */
typedef struct smtpx__qw {
    smtpx_queue_msg *qm;
    int err;
} smtpx__qw;

/* smtpx__qw_put - a formatted line (at most 2047 octets) */
void smtpx__qw_put(smtpx__qw *w, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* smtpx__qw_write - octets as they are */
void smtpx__qw_write(smtpx__qw *w, const void *data, size_t len);

/* smtpx__qw_text - in as a value safe in a header field: printable ASCII
 * only ('?' for the rest), cut to size */
const char *smtpx__qw_text(char *out, size_t size, const char *in);

/* smtpx__qw_orcpt - "Original-Recipient: TYPE; ADDR" from an ORCPT
 * parameter ("TYPE;XTEXT", RFC 3461 4.2), the address decoded; nothing
 * for NULL or one that does not decode (RFC 3464 2.3.1, RFC 8098 3.2.3) */
void smtpx__qw_orcpt(smtpx__qw *w, const char *orcpt);

/* Report kinds. */
#define SMTPX__DSN_FAILED    1 /* Action: failed (a bounce) */
#define SMTPX__DSN_DELAYED   2 /* Action: delayed (a warning) */
#define SMTPX__DSN_DELIVERED 3 /* Action: delivered / relayed (success) */

typedef struct smtpx__dsn_opts {
    const char *hostname;   /* Reporting-MTA, MAILER-DAEMON@hostname */
    const char *postmaster; /* where a report about a bounce goes, or NULL */
    uint64_t full_max;      /* RET=FULL returns the message up to this */
    int64_t now;            /* Unix time of the report */
    int64_t retry_until;    /* Will-Retry-Until for DELAYED; 0: none */
    const char *headers;    /* without content: the original's header */
    size_t headers_len;
} smtpx__dsn_opts;

/*
 * smtpx__dsn_queue - queue a report of kind about recipients idx[0..n) of
 * m to its sender (m->from; the postmaster for a message with the null
 * sender, or nothing when there is none: *id is then "").  For DELIVERED,
 * relayed[i] (may be NULL) says the recipient was relayed to a server
 * without DSN rather than delivered.  content is a descriptor of m's file,
 * positioned at the content (it is read), or -1: the header returned is
 * then o->headers (or none).  The report is committed
 * (durable) before this returns 0.
 */
int smtpx__dsn_queue(smtpx_queue *q, const smtpx__qmsg *m, int kind,
                     const size_t *idx, const int *relayed, size_t n,
                     int content, const smtpx__dsn_opts *o, char *id,
                     size_t id_size);

/* A parsed report. */
#define SMTPX__DSN_PARSE_RCPTS 64
#define SMTPX__DSN_FIELD       256

typedef struct smtpx__dsn_rcpt {
    char final_rcpt[SMTPX__DSN_FIELD];
    char orig_rcpt[SMTPX__DSN_FIELD];
    char action[32];
    char status[16];
    char remote_mta[SMTPX__DSN_FIELD];
    char diagnostic[SMTPX__DSN_FIELD];
} smtpx__dsn_rcpt;

typedef struct smtpx__dsn_report {
    char reporting_mta[SMTPX__DSN_FIELD];
    char envid[SMTPX__DSN_FIELD];
    size_t nrcpts;
    smtpx__dsn_rcpt rcpts[SMTPX__DSN_PARSE_RCPTS];
} smtpx__dsn_report;

/*
 * smtpx__dsn_parse - find the message/delivery-status part of a
 * multipart/report message (CRLF or LF line ends) and read its fields:
 * per-message (Reporting-MTA, Original-Envelope-Id) and per-recipient
 * (Final-Recipient, Original-Recipient, Action, Status, Remote-MTA,
 * Diagnostic-Code).  Folded fields are unfolded; values longer than a
 * field are cut; recipients beyond SMTPX__DSN_PARSE_RCPTS are counted but
 * not kept.  0, or SMTPX_ERR_PROTO (not a report, no delivery-status part,
 * a recipient without Final-Recipient, Action or Status).
 */
int smtpx__dsn_parse(const char *msg, size_t len, smtpx__dsn_report *out);

#endif
