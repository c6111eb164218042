/*
 * libsmtpx - mini-MTA pieces: local delivery and trace headers.
 *
 * The Maildir writer stores one message the way the Maildir format asks
 * (write into tmp/, fsync, rename into new/, fsync new/), so that a message
 * is durable before the server answers 250.  By default it writes LF line
 * ends, as Postfix and Dovecot do; SMTPX_MAILDIR_CRLF keeps CRLF.
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
 * @brief  Open a Maildir for delivery.
 * @param  path   The Maildir's directory; copied.
 * @param  flags  SMTPX_MAILDIR_* bits.
 * @param  mem    Allocator; NULL for the C library's.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL path or unknown flags),
 *         SMTPX_ERR_IO (missing or unusable directory; errno tells more),
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_maildir_open(smtpx_maildir **out, const char *path,
                                    unsigned flags, const smtpx_mem *mem);

/** @brief Close a Maildir (NULL-safe).  Messages begun on it must have
 *         been committed or aborted. */
SMTPX_EXTERN void smtpx_maildir_free(smtpx_maildir *md);

/**
 * @brief  Begin a message: a new file in tmp/ with a unique name
 *         (time.MmicrosecondsPpidQcounter.host, as the Maildir format asks).
 * @retval 0, SMTPX_ERR_IO, SMTPX_ERR_NOSPACE, SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_maildir_begin(smtpx_maildir *md,
                                     smtpx_maildir_msg **out);

/**
 * @brief  Append message bytes.  CRLF becomes LF unless the Maildir was
 *         opened with SMTPX_MAILDIR_CRLF (a CRLF split across two calls is
 *         still seen as one; a bare CR is kept).  Writes are buffered.
 * @retval 0, SMTPX_ERR_IO, SMTPX_ERR_NOSPACE (disk full or quota), or the
 *         error of an earlier write (errors are sticky).
 */
SMTPX_EXTERN int smtpx_maildir_write(smtpx_maildir_msg *m, const void *data,
                                     size_t len);

/**
 * @brief  Make the message durable: flush, fsync the file, rename it into
 *         new/, fsync new/.  The message object is freed whatever the
 *         outcome; on failure the file in tmp/ is removed.
 * @param  name       Receives the file name in new/ (NUL-terminated); may
 *                    be NULL.
 * @param  name_size  Size of name.
 * @retval 0 (the message is on disk), SMTPX_ERR_IO, SMTPX_ERR_NOSPACE.
 */
SMTPX_EXTERN int smtpx_maildir_commit(smtpx_maildir_msg *m, char *name,
                                      size_t name_size);

/** @brief Give up a message: remove its file from tmp/ and free it
 *         (NULL-safe). */
SMTPX_EXTERN void smtpx_maildir_abort(smtpx_maildir_msg *m);

/** @brief Bytes written to the message so far (after line-end
 *         conversion). */
SMTPX_EXTERN uint64_t smtpx_maildir_msg_size(const smtpx_maildir_msg *m);

/**
 * @brief  Format an RFC 5322 date-time ("Sun, 22 Nov 2026 10:00:00 +0000").
 * @param  unix_time   Seconds since the epoch (UTC).
 * @param  utc_offset  Minutes east of UTC for the zone to show.
 * @param  buf, size   Output; 32 bytes always suffice.
 * @return The length written (without the NUL), or SMTPX_ERR_INVALID_ARGUMENT
 *         if it does not fit.
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
 * @param  s           A server session inside a transaction.
 * @param  id          Queue or file id for "id"; may be NULL.
 * @param  unix_time   The time to record; utc_offset as for
 *                     smtpx_format_date().
 * @param  buf, size   Output.
 * @return The length written (without the NUL), SMTPX_ERR_INVALID_STATE
 *         (no transaction), or SMTPX_ERR_INVALID_ARGUMENT (does not fit).
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
