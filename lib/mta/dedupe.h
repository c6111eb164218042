/*
 * dedupe - internal declarations of the dedupe store: the file-system seam
 * for tests, and lookups by digest for the inbox and the outbox, which
 * digest their keys themselves (dmap.h).
 */
#ifndef SMTPX_LIB_DEDUPE_H
#define SMTPX_LIB_DEDUPE_H

#include <stdint.h>

#include <libsmtpx/ack.h>

#include "mta/maildir.h"

/* smtpx_dedupe_open() with the file-system calls of fs (NULL: the real
 * ones); fs must outlive the store. */
int smtpx__dedupe_open_fs(smtpx_dedupe **out, const char *path,
                          const smtpx_dedupe_opts *opts, const smtpx__fs *fs);

/* smtpx_dedupe_get() and _put() of a key already digested
 * (smtpx__digest()). */
int smtpx__dedupe_get_digest(smtpx_dedupe *d, const uint8_t *digest,
                             int64_t *first);
int smtpx__dedupe_put_digest(smtpx_dedupe *d, const uint8_t *digest, int state);

#endif
