/*
 * libsmtpx - mini-MTA pieces: local delivery and trace headers.
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

#include <libsmtpx/common.h>
#include <libsmtpx/server.h>

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

/**
 * @brief  Format an RFC 5322 date-time ("Sun, 22 Nov 2026 10:00:00 +0000").
 *         Needs no clock and no time zone data; the calendar is the
 *         (proleptic) Gregorian one.
 * @param  unix_time   Seconds since the epoch (UTC).
 * @param  utc_offset  Minutes east of UTC for the zone to show, less than a
 *                     day either way (-1439 to 1439).
 * @param  buf, size   Output; 32 bytes always suffice.
 * @return The length written (without the NUL): always 31.
 * @retval SMTPX_ERR_INVALID_ARGUMENT  buf is NULL or size below 32, the
 *         offset is out of range, or the time shown falls outside the
 *         years 1900 to 9999 (RFC 5322 3.3 wants "1900 or later"; four
 *         digits keep the length fixed).
 */
SMTPX_EXTERN smtpx_ssize smtpx_format_date(int64_t unix_time, int utc_offset,
                                           char *buf, size_t size);

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

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_MTA_H */
