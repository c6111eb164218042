/*
 * outbox - internal declarations of the outbox: its file-system seam, for
 * tests that fix its clock and count its syncs.
 */
#ifndef SMTPX_LIB_OUTBOX_H
#define SMTPX_LIB_OUTBOX_H

#include <libsmtpx/ack.h>

#include "mta/maildir.h"

/* smtpx_outbox_open() with the file-system calls of fs (NULL: the real
 * ones) for its store and its history; fs must outlive the outbox. */
int smtpx__outbox_open_fs(smtpx_outbox **out, const char *dir,
                          const smtpx_outbox_opts *opts, const smtpx__fs *fs);

#endif
