/*
 * outbox - internal declarations of the outbox: its file-system seam, for
 * tests that fix its clock and count its syncs.
 */
#ifndef SMTPX_LIB_OUTBOX_H
#define SMTPX_LIB_OUTBOX_H

#include <libsmtpx/ack.h>

#include "mta/maildir.h"
#include "mta/queue.h"

/* smtpx_outbox_open() with the file-system calls of fs (NULL: the real
 * ones) for its store and its history; fs must outlive the outbox. */
int smtpx__outbox_open_fs(smtpx_outbox **out, const char *dir,
                          const smtpx_outbox_opts *opts, const smtpx__fs *fs);

/* What the delivery engine did with a recipient of a copy. */
#define SMTPX__OUTBOX_FAILED    1 /* failed (a 5xx, expired) */
#define SMTPX__OUTBOX_DELIVERED 2 /* delivered here (local delivery) */
#define SMTPX__OUTBOX_RELAYED   3 /* relayed to a server without DSN */

/* The delivery engine's results about message c of its queue (in flight,
 * its recipients final in this attempt and not reported yet): what[i]
 * for recipient i of c (0: nothing to say).  When c is a copy of a
 * message of the outbox (its ENVID and sender), each recipient that is
 * the outbox's is recorded - failed, or acknowledged by a local delivery;
 * "relayed" changes nothing (RFC 3464 2.3.3) - durably, as
 * smtpx_outbox_ack() does; quiet[i] (zeroed by the caller) is set for a
 * recipient whose report the engine must not send: a success report the
 * outbox asked for, and a failure of a recipient that had failed already
 * (its sender has had its bounce).  A failure the outbox had not heard of
 * is still reported to the sender.  Returns 1 (c is the outbox's), 0 (it
 * is not), or an error of the sync (quiet[] is valid all the same). */
int smtpx__outbox_engine(smtpx_outbox *ob, const smtpx__qmsg *c,
                         const int *what, unsigned char *quiet);

#endif
