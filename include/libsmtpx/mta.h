/*
 * libsmtpx - mini-MTA pieces: local delivery and trace headers.
 *
 * The Maildir writer stores one message the way the Maildir format asks
 * (write into tmp/, fsync, rename into new/, fsync new/), so that a message
 * is durable before the server answers 250.  By default it writes LF line
 * ends, as Postfix and Dovecot do; SMTPX_MAILDIR_CRLF keeps CRLF.  A
 * Maildir and its messages belong to one thread at a time; several
 * smtpx_maildir objects (in one process or many) may deliver into the same
 * directory.
 */
#ifndef LIBSMTPX_MTA_H
#define LIBSMTPX_MTA_H

#include <libsmtpx/common.h>
#include <libsmtpx/msg.h>
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

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_MTA_H */
