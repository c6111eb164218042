/*
 * fields - header fields read from a block held in memory: the header of a
 * message (RFC 5322 2.2), and the fields of a report's status part, which
 * have the same syntax in blocks separated by empty lines (RFC 3464 2,
 * RFC 8098 3.1).  Used by the inbox, the outbox and the report parser.
 *
 * Every function reads nothing past the length it is given, allocates
 * nothing and takes hostile input: values are unfolded into a buffer of
 * the caller's with a hard bound.
 */
#ifndef SMTPX_LIB_FIELDS_H
#define SMTPX_LIB_FIELDS_H

#include <stddef.h>

/* A reader over [p, end). */
typedef struct smtpx__fields {
    const char *p, *end;
} smtpx__fields;

/* The results of smtpx__fields_next(). */
#define SMTPX__FIELD_END  0  /* an empty line (consumed) or the end */
#define SMTPX__FIELD_OK   1  /* a field */
#define SMTPX__FIELD_BAD  -1 /* a line that is not a field (consumed) */
#define SMTPX__FIELD_LONG -2 /* a field whose value does not fit (consumed) */

/*
 * smtpx__fields_next - the next field: its name (not NUL-terminated:
 * *name, *name_len, never empty) and its value unfolded (the line breaks
 * of folding removed, RFC 5322 2.2.3) and trimmed into value (size octets,
 * NUL-terminated; a NUL or other control but TAB in it becomes a space).
 * Line ends may be CRLF or LF.
 */
int smtpx__fields_next(smtpx__fields *f, const char **name, size_t *name_len,
                       char *value, size_t size);

/* smtpx__fields_is - 1 if the name [name, name + len) is want, in any
 * case */
int smtpx__fields_is(const char *name, size_t len, const char *want);

/*
 * smtpx__header_end - where the header of a message ends in buf[0..len):
 * the offset just past the empty line that ends it, or 0 while it has not
 * ended.  A message that begins with an empty line has an empty header
 * (the result is the length of that line end).  *scan (0 at first) is
 * where the search resumes: the start of the first line not yet seen
 * whole, so that a header that grows piece by piece is scanned once.
 */
size_t smtpx__header_end(const char *buf, size_t len, size_t *scan);

/*
 * smtpx__trace_end - the offset in a header block of the first field that
 * is not one a server or a delivery agent puts on top of a message as it
 * passes (Return-Path, Received, Delivered-To, X-Original-To,
 * Authentication-Results, Received-SPF, ARC-*), so that what follows is
 * the same each time the message is sent.
 */
size_t smtpx__trace_end(const char *hdr, size_t len);

/*
 * smtpx__msgid - the first message id ("<id>", RFC 5322 3.6.4) of a field
 * value, without its angle brackets, into out (NUL-terminated).  Returns
 * the length, or -1 when there is none, it is empty, it holds a control
 * character, white space, or '<', or it does not fit.  Comments and
 * white space around it are skipped.
 */
long smtpx__msgid(const char *value, char *out, size_t size);

/*
 * smtpx__mailbox - the address of the first mailbox of a field value
 * ("Name <a@b>", "a@b", "a@b (comment)") into out: its addr-spec without
 * angle brackets.  Returns the length, or -1 when there is none, it has no
 * '@', holds a control character or white space, or does not fit.
 */
long smtpx__mailbox(const char *value, char *out, size_t size);

#endif
