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

/* ---- tables ---------------------------------------------------------------
 */

/**
 * Content transfer encodings (RFC 2045 6, RFC 3030): XX(NAME, value,
 * "name as written").  SMTPX_CTE_AUTO (0) lets the builder choose.
 */
#define SMTPX_CTE_MAP(XX)                                                      \
    XX(7BIT, 1, "7bit")                                                        \
    XX(8BIT, 2, "8bit")                                                        \
    XX(BINARY, 3, "binary")                                                    \
    XX(QP, 4, "quoted-printable")                                              \
    XX(BASE64, 5, "base64")

enum smtpx_cte {
    SMTPX_CTE_AUTO = 0,
#define SMTPX__CTE_ENUM(name, value, text) SMTPX_CTE_##name = value,
    SMTPX_CTE_MAP(SMTPX__CTE_ENUM)
#undef SMTPX__CTE_ENUM
};

/** @brief The name of a transfer encoding ("base64"), or NULL. */
SMTPX_EXTERN const char *smtpx_cte_name(int cte);

/**
 * The parser's limits: XX(NAME, default, "what it bounds").  Each has a
 * setter (smtpx_msg_parser_set_limit()); going past one ends the parse with
 * SMTPX_ERR_LIMIT, and smtpx_msg_parser_limit_hit() tells which.
 *
 * HEADER_LINE   octets of one header line, line end included (RFC 5322
 *               2.1.1 allows 998 and a line end; real mail goes further)
 * HEADER_COUNT  header fields in one header block (of the message or a part)
 * HEADER_SIZE   octets of one header block, and so of one field unfolded
 * DEPTH         multiparts and messages nested in one another
 * PARTS         parts in the whole message, containers included
 * BOUNDARY      octets of a multipart boundary (RFC 2046 5.1.1 says 70)
 */
#define SMTPX_MSG_LIMIT_MAP(XX)                                                \
    XX(HEADER_LINE, 0, 8192, "header line length")                             \
    XX(HEADER_COUNT, 1, 1000, "header fields in a header block")               \
    XX(HEADER_SIZE, 2, 65536, "header block size")                             \
    XX(DEPTH, 3, 32, "nesting depth")                                          \
    XX(PARTS, 4, 10000, "parts in a message")                                  \
    XX(BOUNDARY, 5, 200, "boundary length")

enum smtpx_msg_limit {
#define SMTPX__MSG_LIMIT_ENUM(name, value, dflt, text)                         \
    SMTPX_MSG_LIMIT_##name = value,
    SMTPX_MSG_LIMIT_MAP(SMTPX__MSG_LIMIT_ENUM)
#undef SMTPX__MSG_LIMIT_ENUM
        SMTPX_MSG_LIMIT_COUNT
};

/** @brief The name of a limit ("HEADER_LINE"), or NULL. */
SMTPX_EXTERN const char *smtpx_msg_limit_name(int limit);

/** @brief What a limit bounds, in words ("header line length"), or NULL. */
SMTPX_EXTERN const char *smtpx_msg_limit_text(int limit);

/** @brief The default of a limit, or 0 for an unknown one. */
SMTPX_EXTERN size_t smtpx_msg_limit_default(int limit);

/**
 * Defects: flaws of real mail that the parser works around and reports
 * (on_defect).  XX(NAME, value, "what was wrong").
 */
#define SMTPX_MSG_DEFECT_MAP(XX)                                               \
    XX(BAD_BASE64, 1, "invalid base64 (characters skipped, or cut short)")     \
    XX(BAD_QP, 2, "invalid quoted-printable (kept as it was)")                 \
    XX(NO_END_BOUNDARY, 3, "multipart without its final boundary")             \
    XX(NO_BOUNDARY, 4, "multipart without a boundary parameter")               \
    XX(BAD_HEADER, 5, "header line without a colon (taken as body)")           \
    XX(NO_HEADER_END, 6, "message ended inside a header block")                \
    XX(BAD_CONTENT_TYPE, 7, "unreadable Content-Type (text/plain assumed)")    \
    XX(BAD_CTE, 8, "unknown Content-Transfer-Encoding (taken as 8bit)")        \
    XX(BAD_ENCODED_WORD, 9, "encoded word that could not be decoded")          \
    XX(BAD_PARAM, 10, "malformed or incomplete parameter")                     \
    XX(EIGHT_BIT_HEADER, 11, "8-bit octets in a header that are not UTF-8")

enum smtpx_msg_defect {
#define SMTPX__MSG_DEFECT_ENUM(name, value, text)                              \
    SMTPX_MSG_DEFECT_##name = value,
    SMTPX_MSG_DEFECT_MAP(SMTPX__MSG_DEFECT_ENUM)
#undef SMTPX__MSG_DEFECT_ENUM
};

/** @brief The name of a defect ("BAD_BASE64"), or NULL. */
SMTPX_EXTERN const char *smtpx_msg_defect_name(int defect);

/** @brief A defect described in words, or NULL. */
SMTPX_EXTERN const char *smtpx_msg_defect_text(int defect);

/**
 * @brief  The content type for a file name, from its extension (any case)
 *         and a small built-in table ("photo.JPG" gives "image/jpeg").
 * @return A static string; "application/octet-stream" when the extension
 *         is unknown or missing, or name is NULL.
 */
SMTPX_EXTERN const char *smtpx_msg_type_for_name(const char *name);

/* ---- parser ---------------------------------------------------------------
 */

typedef struct smtpx_msg_parser smtpx_msg_parser;
typedef struct smtpx_part smtpx_part;

/** Flags for smtpx_msg_parser_new(). */
/** Decode RFC 2047 encoded words in the values on_header gets (to UTF-8);
 *  without it the values are unfolded but otherwise as received. */
#define SMTPX_MSG_DECODE_WORDS (1u << 0)
/** Report content as received (transfer encoding not removed). */
#define SMTPX_MSG_RAW_CONTENT (1u << 1)

/** Callback results (besides 0, "go on"). */
#define SMTPX_MSG_SKIP                                                         \
    1                    /* from on_part_begin or on_part_data: no more        \
                            content or sub-parts of this part */
#define SMTPX_MSG_STOP 2 /* from any callback: end the parse */

/**
 * Callbacks; NULL means "not interested".  The table travels with its
 * size, so members can be added at the end.  Every pointer a callback gets
 * is valid only during the call.  A callback returns 0 to go on,
 * SMTPX_MSG_STOP to end the parse (feed and end then return
 * SMTPX_ERR_STOPPED), SMTPX_MSG_SKIP where said, or anything else to fail
 * it (SMTPX_ERR_CALLBACK_FAILURE).  A callback may call the smtpx_part_*
 * accessors and smtpx_msg_parser_get_user_data(); nothing else of the
 * parser (in particular not feed, end, reset or free).
 */
typedef struct smtpx_msg_callbacks {
    /**
     * One header field of the message or of a part, unfolded (the line
     * breaks of folding removed, RFC 5322 2.2.3), without the white space
     * around the value.  name and value are NUL-terminated as well as
     * counted; value is raw (UTF-8 and 8-bit octets as received, RFC
     * 6532; a hostile message may put NUL in it: use value_len) or with
     * RFC 2047 encoded words decoded to UTF-8 under
     * SMTPX_MSG_DECODE_WORDS.  It comes before on_part_begin of its part:
     * only smtpx_part_path() and smtpx_part_depth() are known yet, and for
     * the header of a message the path is that of the message ("" for the
     * whole message, "2" for the message in part 2).
     */
    int (*on_header)(smtpx_msg_parser *p, const smtpx_part *part,
                     const char *name, size_t name_len, const char *value,
                     size_t value_len, void *user_data);

    /**
     * A part begins; its header has been read, so its type, parameters,
     * disposition and file name are known.  Containers (multipart types, and
     * message/rfc822, message/global and other message/ types but the
     * status parts of reports: delivery-status, disposition-notification
     * and their global- forms) begin and end around their parts.  Return
     * SMTPX_MSG_SKIP to pass over the part: its content is not decoded and
     * no callback fires for anything inside it, but on_part_end still does.
     */
    int (*on_part_begin)(smtpx_msg_parser *p, const smtpx_part *part,
                         void *user_data);

    /**
     * A piece of a leaf part's content, transfer encoding removed (no
     * charset conversion).  Pieces come in order, of any size; a part may
     * have none.  SMTPX_MSG_SKIP passes over the rest of the part.
     */
    int (*on_part_data)(smtpx_msg_parser *p, const smtpx_part *part,
                        const uint8_t *data, size_t len, void *user_data);

    /** The part has ended (smtpx_part_size() is final). */
    int (*on_part_end)(smtpx_msg_parser *p, const smtpx_part *part,
                       void *user_data);

    /**
     * A defect (SMTPX_MSG_DEFECT_*) in part (NULL when no part is open).
     * Reported once per kind and part.  Its result is ignored unless it is
     * SMTPX_MSG_STOP or an error (a strict application may stop).
     */
    int (*on_defect)(smtpx_msg_parser *p, const smtpx_part *part, int defect,
                     void *user_data);
} smtpx_msg_callbacks;

/**
 * @brief  Create a parser for one message.
 * @param  out        Receives the parser; NULL on failure.
 * @param  mem        Allocator; NULL for the C library's.  Copied.
 * @param  flags      SMTPX_MSG_DECODE_WORDS, SMTPX_MSG_RAW_CONTENT.
 * @param  cbs        Callbacks (copied), or NULL for none.
 * @param  cbs_size   sizeof(*cbs); a smaller (older) table is accepted.
 * @param  user_data  Passed to every callback.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (out NULL, unknown flags, an
 *         allocator missing a function, cbs_size larger than this
 *         library knows), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_msg_parser_new(smtpx_msg_parser **out,
                                      const smtpx_mem *mem, unsigned flags,
                                      const smtpx_msg_callbacks *cbs,
                                      size_t cbs_size, void *user_data);

/** @brief Free a parser (NULL-safe).  Not from its callbacks. */
SMTPX_EXTERN void smtpx_msg_parser_free(smtpx_msg_parser *p);

/**
 * @brief  Set a limit (SMTPX_MSG_LIMIT_*), before the first octet is fed.
 * @param  value  At least 1 (HEADER_LINE at least 80, BOUNDARY at most
 *                65536 and HEADER_SIZE at least HEADER_LINE are not
 *                enforced: the tighter limit applies).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (p NULL, unknown limit, value 0),
 *         SMTPX_ERR_INVALID_STATE (content was fed already, or from a
 *         callback).
 */
SMTPX_EXTERN int smtpx_msg_parser_set_limit(smtpx_msg_parser *p, int limit,
                                            size_t value);

/**
 * @brief  Feed the next len octets of the message, split anywhere.  Line
 *         ends may be CRLF or LF, even mixed.  Callbacks run inside this
 *         call.  Every octet is taken unless an error is returned.
 * @retval 0                          All taken.
 * @retval SMTPX_ERR_INVALID_ARGUMENT p NULL, or data NULL with len > 0.
 * @retval SMTPX_ERR_INVALID_STATE    After end, or from a callback.
 * @retval SMTPX_ERR_LIMIT            A limit was passed
 *                                    (smtpx_msg_parser_limit_hit()).
 * @retval SMTPX_ERR_STOPPED          A callback returned SMTPX_MSG_STOP.
 * @retval SMTPX_ERR_CALLBACK_FAILURE A callback returned another value.
 * @retval SMTPX_ERR_NOMEM            Out of memory.
 * Errors are sticky: each later feed or end returns the same code.
 */
SMTPX_EXTERN int smtpx_msg_parser_feed(smtpx_msg_parser *p, const void *data,
                                       size_t len);

/**
 * @brief  The message is complete: finish the open parts (reporting a
 *         missing final boundary or header end as a defect) and fire their
 *         on_part_end.  Same returns as feed; ending twice returns 0.
 */
SMTPX_EXTERN int smtpx_msg_parser_end(smtpx_msg_parser *p);

/**
 * @brief  Forget the message so far and begin another, keeping the
 *         callbacks, flags, limits and kept names.  No callback fires
 *         for the parts left open.  Not from a callback.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (p NULL), SMTPX_ERR_INVALID_STATE
 *         (from a callback).
 */
SMTPX_EXTERN int smtpx_msg_parser_reset(smtpx_msg_parser *p);

/** @brief The SMTPX_MSG_LIMIT_* passed (after SMTPX_ERR_LIMIT), or -1. */
SMTPX_EXTERN int smtpx_msg_parser_limit_hit(const smtpx_msg_parser *p);

/** @brief Defects found so far in the message (each kind counted once per
 *         part). */
SMTPX_EXTERN size_t smtpx_msg_parser_defects(const smtpx_msg_parser *p);

/** @brief Parts begun so far (containers included). */
SMTPX_EXTERN size_t smtpx_msg_parser_parts(const smtpx_msg_parser *p);

/** At most this many fields kept by smtpx_msg_parser_keep(), each name
 *  at most SMTPX_MSG_KEEP_NAME_MAX octets. */
#define SMTPX_MSG_KEEP_MAX      16
#define SMTPX_MSG_KEEP_NAME_MAX 76

/**
 * @brief  Keep the first value of one of the message's own header fields
 *         (Subject, Message-ID, From...), so that the application can ask
 *         for it with smtpx_msg_parser_header() without an on_header of its
 *         own: what a server wants to know of a message as it streams
 *         past.  Fields of parts and of enclosed messages are not kept.
 *         Names are matched in any case.  Before the first feed (or after
 *         a reset, which keeps the names and forgets the values).
 * @retval 0 (also for a name kept already), SMTPX_ERR_INVALID_ARGUMENT
 *         (NULL, empty, longer than SMTPX_MSG_KEEP_NAME_MAX, or not a
 *         field name), SMTPX_ERR_INVALID_STATE (the parse has begun, or
 *         from a callback), SMTPX_ERR_LIMIT (SMTPX_MSG_KEEP_MAX names
 *         kept already), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_msg_parser_keep(smtpx_msg_parser *p, const char *name);

/**
 * @brief  The value kept for a field of the message's own header: as
 *         on_header would give it (unfolded; encoded words decoded under
 *         SMTPX_MSG_DECODE_WORDS), up to a NUL a hostile message may hold.
 *         Known once the field has been read - for certain once the
 *         message's header has ended (on_part_begin of the message, or the
 *         end of the parse).  May be called from a callback.
 * @return The value (owned by the parser, valid until reset or free), or
 *         NULL: the name is not kept, or the message has no such field
 *         (yet).
 */
SMTPX_EXTERN const char *smtpx_msg_parser_header(const smtpx_msg_parser *p,
                                                 const char *name);

/** @brief The user_data given at creation or set later. */
SMTPX_EXTERN void *smtpx_msg_parser_get_user_data(const smtpx_msg_parser *p);
SMTPX_EXTERN void smtpx_msg_parser_set_user_data(smtpx_msg_parser *p,
                                                 void *user_data);

/*
 * A part, as the callbacks see it.  Every string is NUL-terminated, owned by
 * the parser and valid until the callback returns; copy what is needed
 * later.  Names of types, subtypes, dispositions and parameters are in
 * lower case.  The accessors take NULL and then return NULL, 0 or "".
 */

/** @brief The part's path ("1", "2.1"; "" for the whole message when it is
 *         a multipart). */
SMTPX_EXTERN const char *smtpx_part_path(const smtpx_part *part);

/** @brief 0 for the message's own header and body, 1 for its parts... */
SMTPX_EXTERN unsigned smtpx_part_depth(const smtpx_part *part);

/**
 * @brief  The content type, "type/subtype" in lower case.  Without a
 *         Content-Type (or with one that cannot be read) it is "text/plain"
 *         (RFC 2045 5.2), "message/rfc822" in a multipart/digest (RFC 2046
 *         5.1.5).  NULL during on_header.
 */
SMTPX_EXTERN const char *smtpx_part_type(const smtpx_part *part);

/**
 * @brief  A parameter of the Content-Type (name in any case: "charset",
 *         "boundary", "name"), with RFC 2231 continuations joined and
 *         their charset converted to UTF-8, and RFC 2047 encoded words in a
 *         quoted value decoded (as mail programs write file names).
 * @return The value, or NULL when absent.
 */
SMTPX_EXTERN const char *smtpx_part_param(const smtpx_part *part,
                                          const char *name);

/** @brief The charset parameter of the Content-Type as the sender wrote
 *         it (any case; never guessed), or NULL. */
SMTPX_EXTERN const char *smtpx_part_charset(const smtpx_part *part);

/** @brief The disposition type ("attachment", "inline"), or NULL without a
 *         Content-Disposition. */
SMTPX_EXTERN const char *smtpx_part_disposition(const smtpx_part *part);

/** @brief A parameter of the Content-Disposition, decoded as
 *         smtpx_part_param() does, or NULL. */
SMTPX_EXTERN const char *smtpx_part_disposition_param(const smtpx_part *part,
                                                      const char *name);

/** @brief The file name in UTF-8: the disposition's filename, else the
 *         type's name parameter; NULL if neither.  As sent: it may hold
 *         "/", "..", control characters; sanitise before using it as a
 *         path. */
SMTPX_EXTERN const char *smtpx_part_filename(const smtpx_part *part);

/** @brief The Content-ID without its angle brackets, or NULL. */
SMTPX_EXTERN const char *smtpx_part_content_id(const smtpx_part *part);

/** @brief The transfer encoding (SMTPX_CTE_*): 7bit when none is given,
 *         8bit for an unknown one (content passed on as it is, and
 *         SMTPX_MSG_DEFECT_BAD_CTE reported). */
SMTPX_EXTERN int smtpx_part_cte(const smtpx_part *part);

/** @brief 1 for a container (multipart, or a message it descends into),
 *         0 for a leaf that has content. */
SMTPX_EXTERN int smtpx_part_is_container(const smtpx_part *part);

/** @brief Octets of decoded content handed out so far (for a skipped part,
 *         those before the skip). */
SMTPX_EXTERN uint64_t smtpx_part_size(const smtpx_part *part);

/* ---- builder --------------------------------------------------------------
 */

typedef struct smtpx_msg smtpx_msg;

/**
 * A pull source: fill buf with up to len octets and return how many, 0 at
 * the end, or a negative SMTPX_ERR_* code.  The same shape as the client's
 * smtpx_body_read_fn, so that smtpx_msg_read() is one.
 */
typedef smtpx_ssize smtpx_msg_read_fn(void *ctx, uint8_t *buf, size_t len);

/** Flags for smtpx_msg_new(): what the transport (or file) allows. */
/** 8-bit text may go unencoded (the server offers 8BITMIME, RFC 6152). */
#define SMTPX_MSG_8BIT (1u << 0)
/** Binary parts may go unencoded (BINARYMIME and BDAT, RFC 3030). */
#define SMTPX_MSG_BINARY (1u << 1)
/** Headers in raw UTF-8 instead of encoded words (SMTPUTF8, RFC 6532). */
#define SMTPX_MSG_SMTPUTF8 (1u << 2)

/** The kinds of parts. */
#define SMTPX_PART_TEXT       1 /* the text/plain body */
#define SMTPX_PART_HTML       2 /* the text/html body (alternative to text) */
#define SMTPX_PART_ATTACHMENT 3 /* Content-Disposition: attachment */
#define SMTPX_PART_INLINE                                                      \
    4 /* Content-Disposition: inline, beside the HTML                          \
         (multipart/related), for "cid:" references */

/**
 * What smtpx_msg_add_part() adds.  Set size to sizeof(smtpx_msg_part);
 * members may be added at the end.  The strings are copied.  Content comes
 * from memory (data, len: not copied, it must stay valid and unchanged
 * until the message has been read to its end or freed) or, when read is
 * set, from read(read_ctx, ...) called while the message is read.
 *
 * kind      SMTPX_PART_*.
 * type      "image/png"; NULL: from the file name for attachments and
 *           inline parts (smtpx_msg_type_for_name()), text/plain or
 *           text/html for the bodies.
 * charset   For text types: default "utf-8".  Declared, not converted.
 * filename  UTF-8 (RFC 2231 when not ASCII); NULL for none.  Only its last
 *           path component is used.
 * content_id  For inline parts, without angle brackets; NULL for none.
 * cte       SMTPX_CTE_AUTO, or one to force: 8bit needs SMTPX_MSG_8BIT,
 *           binary SMTPX_MSG_BINARY, 7bit and 8bit content from memory
 *           that does not fit them (long lines, NUL, 8-bit octets for
 *           7bit) are refused.
 */
typedef struct smtpx_msg_part {
    size_t size;
    int kind;
    const char *type;
    const char *charset;
    const char *filename;
    const char *content_id;
    int cte;
    const void *data;
    size_t len;
    smtpx_msg_read_fn *read;
    void *read_ctx;
} smtpx_msg_part;

/**
 * @brief  Create an empty message.
 * @param  flags  SMTPX_MSG_8BIT, SMTPX_MSG_BINARY, SMTPX_MSG_SMTPUTF8.
 * @param  mem    Allocator; NULL for the C library's.  Copied.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (out NULL, unknown flags, an
 *         allocator missing a function), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_msg_new(smtpx_msg **out, unsigned flags,
                               const smtpx_mem *mem);

/** @brief Free a message (NULL-safe).  Read sources are not closed. */
SMTPX_EXTERN void smtpx_msg_free(smtpx_msg *m);

/**
 * @brief  The random source for the Message-ID and the boundaries; the
 *         default is the system's (through mbedTLS's entropy collector).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (m or fn NULL),
 *         SMTPX_ERR_INVALID_STATE (reading has begun).
 */
SMTPX_EXTERN int smtpx_msg_set_random(smtpx_msg *m,
                                      int (*fn)(uint8_t *buf, size_t len,
                                                void *rand_user_data),
                                      void *rand_user_data);

/**
 * @brief  Add an address to an address header: "From", "To", "Cc",
 *         "Reply-To", "Sender" or "Bcc" (any case).  Several calls for one
 *         field make one list.  Bcc is never written: it is for the
 *         envelope (smtpx_msg_addr()).
 * @param  name  Display name in UTF-8, or NULL; quoted or written as
 *               encoded words as needed.
 * @param  addr  The addr-spec ("alice@example.org"); UTF-8 only with
 *               SMTPX_MSG_SMTPUTF8.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (unknown field, an address with
 *         no "@", white space, angle brackets, control characters, or
 *         over 254 octets; a name over 256 octets or with control
 *         characters; non-ASCII address without SMTPUTF8),
 *         SMTPX_ERR_INVALID_STATE (reading has begun), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_msg_add_addr(smtpx_msg *m, const char *field,
                                    const char *name, const char *addr);

/**
 * @brief  An address of a field as given, in order (for the envelope:
 *         "To", "Cc" and "Bcc" are the recipients, "From" the sender).
 * @return The addr-spec, or NULL past the last.
 */
SMTPX_EXTERN const char *smtpx_msg_addr(const smtpx_msg *m, const char *field,
                                        size_t i);

/**
 * @brief  The Subject, in UTF-8 (control characters but TAB refused).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE,
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_msg_set_subject(smtpx_msg *m, const char *subject);

/**
 * @brief  The Date (smtpx_format_date()).  Without it the Date is the
 *         time at which reading begins, in UTC.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (a time or offset
 *         smtpx_format_date() refuses), SMTPX_ERR_INVALID_STATE.
 */
SMTPX_EXTERN int smtpx_msg_set_date(smtpx_msg *m, int64_t unix_time,
                                    int utc_offset);

/**
 * @brief  The Message-ID, without angle brackets ("id@host").  Without it
 *         one is made when reading begins (or by smtpx_msg_message_id()):
 *         26 characters from 128 random bits, "@", and the domain of the
 *         first From address ("localhost" without one).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (no "@", white space, brackets,
 *         control or 8-bit characters, over 250 octets),
 *         SMTPX_ERR_INVALID_STATE, SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_msg_set_message_id(smtpx_msg *m, const char *id);

/**
 * @brief  The Message-ID (made now if it was not set), without angle
 *         brackets; valid until the message is freed.
 * @return The id, or NULL (m NULL, the random source failed, or out of
 *         memory).
 */
SMTPX_EXTERN const char *smtpx_msg_message_id(smtpx_msg *m);

/**
 * @brief  In-Reply-To and References of a reply (RFC 5322 3.6.4): call
 *         once per message id of References, oldest first; the last one is
 *         the message replied to and also becomes In-Reply-To.  Ids as for
 *         smtpx_msg_set_message_id().
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE,
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_msg_add_reference(smtpx_msg *m, const char *id);

/**
 * @brief  Add a header field of the application's own ("X-Sensor: 12"),
 *         written after the standard ones in the order added.  The value
 *         is UTF-8 unstructured text, folded and encoded as the Subject is.
 * @param  name  A field name: printable ASCII but ':' (RFC 5322 3.6.8);
 *               the fields the builder writes itself (From, To, Cc,
 *               Reply-To, Sender, Bcc, Subject, Date, Message-ID,
 *               MIME-Version, In-Reply-To, References, Content-*) are
 *               refused.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE,
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_msg_add_header(smtpx_msg *m, const char *name,
                                      const char *value);

/**
 * @brief  Add a body or an attachment.  There is at most one part of kind
 *         SMTPX_PART_TEXT and one of SMTPX_PART_HTML.  The structure is
 *         chosen from what was added: text and HTML become
 *         multipart/alternative, HTML and inline parts multipart/related,
 *         attachments multipart/mixed around the rest.
 *
 *         The transfer encoding (SMTPX_CTE_AUTO) is chosen per part: from
 *         memory, 7bit when the content fits it (bodies: lines of 998 octets
 *         at most, no NUL or bare CR; attachments: the same with CRLF line
 *         ends only, so no octet changes), 8bit for UTF-8 bodies under
 *         SMTPX_MSG_8BIT, binary for attachments under SMTPX_MSG_BINARY,
 *         quoted-printable when mostly text, otherwise base64.  Content
 *         read from a source is not seen in advance: bodies are
 *         quoted-printable, attachments base64 (binary under
 *         SMTPX_MSG_BINARY).  Line ends of the bodies become CRLF; the
 *         octets of attachments never change.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (spec NULL or its size too small or
 *         too large, unknown kind or cte, a second text or HTML part, data
 *         NULL with len > 0, both data and read, a forced cte the content
 *         or the flags do not allow, a type that is not "type/subtype" or
 *         is a multipart type, strings with control characters),
 *         SMTPX_ERR_INVALID_STATE (reading has begun), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_msg_add_part(smtpx_msg *m, const smtpx_msg_part *spec);

/**
 * @brief  smtpx_msg_add_part() with content read from a file descriptor
 *         (read(2), retried on EINTR) while the message is read.  The
 *         descriptor is not closed; it must stay open until the message is
 *         read to its end or freed.  spec's data, len, read and read_ctx are
 *         ignored.
 * @retval As smtpx_msg_add_part(), and SMTPX_ERR_INVALID_ARGUMENT for a
 *         negative fd.  A read error later makes smtpx_msg_read() return
 *         SMTPX_ERR_IO (errno tells more).
 */
SMTPX_EXTERN int smtpx_msg_add_fd(smtpx_msg *m, const smtpx_msg_part *spec,
                                  int fd);

/**
 * @brief  What the message needs of the transport: SMTPX_BODY_7BIT,
 *         SMTPX_BODY_8BITMIME or SMTPX_BODY_BINARYMIME (for
 *         smtpx_txn_set_body_type()).  Decides the structure and encodings
 *         if reading has not begun (no more headers or parts may be added
 *         after).
 * @return The body type, or a negative SMTPX_ERR_* code (as for
 *         smtpx_msg_read()).
 */
SMTPX_EXTERN int smtpx_msg_body_type(smtpx_msg *m);

/**
 * @brief  Read the next piece of the message: an smtpx_msg_read_fn, so
 *         smtpx_txn_set_body_reader(t, smtpx_msg_read, m, 0) sends it.
 *         The first call fixes the message: no header or part can be added
 *         after.  Sources are read as the output needs them.
 * @param  msg  The smtpx_msg (void * to fit the reader shape).
 * @return Octets written to buf (1 to len), 0 at the end (and on every
 *         later call), or SMTPX_ERR_INVALID_ARGUMENT (msg or buf NULL, len
 *         0), SMTPX_ERR_NOMEM, SMTPX_ERR_IO (a source failed with a
 *         positive or unknown result), or the negative code a source
 *         returned.
 *         Errors are sticky.
 */
SMTPX_EXTERN smtpx_ssize smtpx_msg_read(void *msg, uint8_t *buf, size_t len);

/* ---- 8-bit to 7-bit ------------------------------------------------------
 */

/**
 * A converter that makes an 8-bit MIME message 7-bit, for a server that
 * does not offer 8BITMIME (RFC 6152 3: the client converts or returns the
 * message; RFC 2045 6.7).  It does what Postfix's MIME output conversion
 * does:
 *
 * - each leaf part whose content has 8-bit octets or lines longer than 998
 *   octets is re-encoded, and its Content-Transfer-Encoding says so (the
 *   field is added if it was not there): as quoted-printable (text line
 *   breaks are kept, other octets come back exactly when it is decoded),
 *   or, for a part of 1 KiB or more when that is shorter (text that is
 *   mostly 8-bit, where quoted-printable would triple it), as base64; a
 *   part already 7-bit is left as it is, octet for octet (labelled 7bit if
 *   it said 8bit or binary);
 * - a multipart or message/rfc822 labelled 8bit or binary is labelled
 *   7bit, and the parts inside are converted in turn; message/global (RFC
 *   6532 3.5) is a leaf, encoded whole;
 * - everything else (header fields, boundaries, 7-bit parts) is copied.
 *   The Content-Transfer-Encoding field of an entity is written last in
 *   its header, just before the empty line.
 *
 * It cannot convert, and says so, when a header field (of the message or
 * of a part) has 8-bit octets or a line longer than 998 octets, when a
 * preamble or epilogue does, when a part labelled quoted-printable or
 * base64 has raw 8-bit octets or long lines, or past its limits (the
 * message layer's default DEPTH, PARTS and BOUNDARY, a Content-Type field
 * of at most 4096 octets unfolded).  Signatures over converted parts
 * (DKIM, S/MIME, PGP/MIME) no longer verify, as with any converting MTA.
 *
 * Two passes go over the message: smtpx_msg_downgrade_scan() looks at it
 * whole (nothing is kept but two bits per part), then the same octets are
 * given again through a read callback and the 7-bit message is read out
 * of smtpx_msg_downgrade_read(), in a few KiB of memory whatever the
 * message's size.  Line ends may be CRLF or LF; converted parts get CRLF.
 * A converter belongs to one thread at a time.
 */
typedef struct smtpx_msg_downgrade smtpx_msg_downgrade;

/**
 * @brief  Create a converter.
 * @param  mem  Allocator; NULL for the C library's.  Copied.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (out NULL, an allocator missing a
 *         function), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_msg_downgrade_new(smtpx_msg_downgrade **out,
                                         const smtpx_mem *mem);

/** @brief Free a converter (NULL-safe).  The source is not closed. */
SMTPX_EXTERN void smtpx_msg_downgrade_free(smtpx_msg_downgrade *d);

/**
 * @brief  The first pass: the next piece of the message, of any size
 *         (0 octets too).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (d NULL, data NULL with len above
 *         0), SMTPX_ERR_INVALID_STATE (the scan has ended),
 *         SMTPX_ERR_NOT_SUPPORTED (the message cannot be made 7-bit:
 *         smtpx_msg_downgrade_why() says why), SMTPX_ERR_LIMIT (a limit
 *         was passed), SMTPX_ERR_NOMEM.  Errors are sticky.
 */
SMTPX_EXTERN int smtpx_msg_downgrade_scan(smtpx_msg_downgrade *d,
                                          const void *data, size_t len);

/**
 * @brief  End of the first pass.
 * @param  size  Set to the size of the 7-bit message in octets, line ends
 *               included (for SIZE=, RFC 1870); may be NULL.
 * @param  parts Set to the number of parts that will be re-encoded (0: the
 *               message is 7-bit as it is and will be copied, with only
 *               8bit labels of containers changed); may be NULL.
 * @retval 0, or as smtpx_msg_downgrade_scan().
 */
SMTPX_EXTERN int smtpx_msg_downgrade_scan_end(smtpx_msg_downgrade *d,
                                              uint64_t *size, size_t *parts);

/**
 * @brief  Why the message cannot be made 7-bit ("8-bit octets in a header
 *         field, line 3"), or "" when it can; never NULL.  Valid until
 *         the converter is freed.
 */
SMTPX_EXTERN const char *smtpx_msg_downgrade_why(const smtpx_msg_downgrade *d);

/**
 * @brief  The second pass: where the same message is read from again,
 *         from its first octet.  Only after a scan that ended with 0.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (d or fn NULL),
 *         SMTPX_ERR_INVALID_STATE (no successful scan, or a source was
 *         given already).
 */
SMTPX_EXTERN int smtpx_msg_downgrade_source(smtpx_msg_downgrade *d,
                                            smtpx_msg_read_fn *fn, void *ctx);

/**
 * @brief  Read the next piece of the 7-bit message: an smtpx_msg_read_fn,
 *         so smtpx_txn_set_body_reader(t, smtpx_msg_downgrade_read, d,
 *         size) sends it.  The source is read as the output needs it.
 * @param  d  The smtpx_msg_downgrade (void * to fit the reader shape).
 * @return Octets written to buf (1 to len), 0 at the end (and on every
 *         later call), or SMTPX_ERR_INVALID_ARGUMENT (d or buf NULL, len
 *         0), SMTPX_ERR_INVALID_STATE (no source), SMTPX_ERR_CORRUPT (the
 *         source gave a message other than the one scanned: its structure
 *         or size differs), SMTPX_ERR_IO (the source returned more than it
 *         was asked for), or the negative code the source returned.
 *         Errors are sticky.
 */
SMTPX_EXTERN smtpx_ssize smtpx_msg_downgrade_read(void *d, uint8_t *buf,
                                                  size_t len);

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_MSG_H */
