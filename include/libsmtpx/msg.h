/*
 * libsmtpx - messages: an RFC 5322 + MIME builder and a streaming parser.
 *
 * This part of the library knows nothing of SMTP: a builder is useful
 * without a connection, and the SMTP core does not use it.  It plugs into
 * the client through smtpx_msg_read(), which has the shape of a body
 * reader (smtpx_txn_set_body_reader() in <libsmtpx/client.h>), and into a
 * server through smtpx_msg_parser_feed(), which takes content in pieces of
 * any size (straight from on_data_chunk).
 *
 * The parser (smtpx_msg_parser) is a push parser with constant memory: it
 * keeps one header field, the boundaries of the multiparts it is inside and
 * a few octets of a line that may be a boundary, however large a part is.
 * It calls back for each header field, at the beginning and end of each
 * part (with its path, type, parameters, disposition and file name) and
 * with each piece of decoded content (base64, quoted-printable, 7bit, 8bit
 * and binary).  Real mail is often broken: what can be decoded is, and each
 * flaw is reported as a defect instead of failing the parse.  Only the
 * limits (SMTPX_MSG_LIMIT_MAP) and the application stop a parse.
 *
 * Parts are numbered as IMAP numbers them (RFC 3501 6.4.5): the parts of a
 * multipart are 1, 2, ... (2.1, 2.2 inside part 2); a message that is not
 * multipart has one part, "1"; the message in a message/rfc822 part P has
 * its body at P.1, or, when it is a multipart, its parts at P.1, P.2.  A
 * multipart has the path of the message it is the body of ("" for the
 * whole message).
 *
 * The builder (smtpx_msg) collects headers and parts, then produces the
 * message as a pull stream in pieces of any size: content from a file
 * descriptor or a read callback is read and encoded as it is produced, so
 * a message of any size is sent or written in a few KiB.  It writes CRLF
 * line ends, folds header lines at 78 columns (never past 998), writes
 * non-ASCII text as RFC 2047 encoded words (raw UTF-8 with
 * SMTPX_MSG_SMTPUTF8, RFC 6532) and non-ASCII file names as RFC 2231
 * parameters, and picks each part's transfer encoding from its content.
 *
 * Objects belong to one thread at a time; there is no global state.
 */
#ifndef LIBSMTPX_MSG_H
#define LIBSMTPX_MSG_H

#include <libsmtpx/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- dates -------------------------------------------------------------- */

/**
 * @brief  Format an RFC 5322 date-time ("Sun, 22 Nov 2026 10:00:00 +0000").
 *         Needs no clock and no time zone data; the calendar is the
 *         (proleptic) Gregorian one.  May be called from anywhere.
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

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_MSG_H */
