/*
 * libsmtpx - common definitions shared by every part of the library.
 *
 * This header defines the export macro, the length types, the allocator
 * interface, the SMTP reply structure (an SMTP outcome is data, not an
 * error) and the one table of library error codes.
 */
#ifndef LIBSMTPX_COMMON_H
#define LIBSMTPX_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SMTPX_BUILDING) && defined(__GNUC__)
#define SMTPX_EXTERN __attribute__((visibility("default")))
#else
#define SMTPX_EXTERN
#endif

/**
 * Signed size used for results that are a byte count or a negative
 * SMTPX_ERR_* code.  It is ptrdiff_t everywhere, never ssize_t or int.
 */
typedef ptrdiff_t smtpx_ssize;

/**
 * Error codes.  Every library failure is a negative number from this one
 * table; smtpx_strerror() and smtpx_err_name() are generated from it too.
 * Codes at or below SMTPX_ERR_FATAL are fatal: after one, only out_peek,
 * out_drop, the want_* calls, done, expiry, expire and free are useful on
 * that object (to write a final reply and close).
 *
 * An SMTP reply such as "550 5.1.1 No such user" is never an error code:
 * it is an outcome, reported as an smtpx_reply.
 */
#define SMTPX_ERRNO_MAP(XX)                                                    \
    XX(INVALID_ARGUMENT, -501, "invalid argument")                             \
    XX(INVALID_STATE, -502, "call not allowed in the current state")           \
    XX(WANT_READ, -503, "transport must wait until it can read")               \
    XX(WANT_WRITE, -504, "transport must wait until it can write")             \
    XX(PAUSE, -505, "callback paused the session")                             \
    XX(PROTO, -506, "peer violated the protocol")                              \
    XX(LIMIT, -507, "configured limit exceeded")                               \
    XX(EOF, -508, "peer closed the connection")                                \
    XX(TIMEOUT, -509, "timed out")                                             \
    XX(IO, -510, "transport or system error")                                  \
    XX(TLS, -511, "TLS error")                                                 \
    XX(TLS_REQUIRED, -512, "TLS required but not available")                   \
    XX(NOT_SUPPORTED, -513, "not supported")                                   \
    XX(RESOLVE, -514, "host name could not be resolved")                       \
    XX(CONNECT, -515, "connection could not be established")                   \
    XX(NOSPACE, -516, "no space left on device")                               \
    XX(CLOSED, -517, "session has ended")                                      \
    XX(EHLO_CLOSED, -518,                                                      \
       "server closed the connection after EHLO (it may need HELO)")           \
    XX(AUTH, -519, "authentication failed")                                    \
    XX(TLS_VERIFY, -520, "peer certificate or name could not be verified")     \
    XX(STOPPED, -530, "stopped by the application")                            \
    XX(DNS_NXDOMAIN, -550, "domain does not exist")                            \
    XX(DNS_NODATA, -551, "domain has no record of that type")                  \
    XX(NOT_FOUND, -552, "no such message in the queue")                        \
    XX(CORRUPT, -553, "queue file is damaged")                                 \
    XX(BUSY, -554, "queue is in use by another process")                       \
    XX(LOOP, -555, "mail for the destination loops back to this host")         \
    XX(FATAL, -900, "fatal error")                                             \
    XX(NOMEM, -901, "out of memory")                                           \
    XX(CALLBACK_FAILURE, -902, "application callback failed")                  \
    XX(INTERNAL, -903, "internal error")

/** The error codes, as an enumeration (see SMTPX_ERRNO_MAP). */
typedef enum smtpx_error {
    SMTPX_OK = 0,
#define SMTPX__ERR_ENUM(name, value, text) SMTPX_ERR_##name = value,
    SMTPX_ERRNO_MAP(SMTPX__ERR_ENUM)
#undef SMTPX__ERR_ENUM
} smtpx_error;

/**
 * @brief  Describe an error code in words ("out of memory").
 * @return A static string; "unknown error" for a code not in the table.
 *         0 gives "success".
 */
SMTPX_EXTERN const char *smtpx_strerror(int err);

/**
 * @brief  Name an error code ("SMTPX_ERR_NOMEM").
 * @return A static string; "SMTPX_ERR_UNKNOWN" for a code not in the table.
 */
SMTPX_EXTERN const char *smtpx_err_name(int err);

/**
 * @brief  Tell whether an error code is fatal (at or below SMTPX_ERR_FATAL).
 * @return 1 if fatal, 0 otherwise (including 0 and positive numbers).
 */
SMTPX_EXTERN int smtpx_is_fatal(int err);

/** Room smtpx_escape() needs to show n octets whole: each may take four
 *  ("\xHH"), and "..." and the NUL. */
#define SMTPX_ESCAPE_SIZE(n) (4 * (n) + 4)

/**
 * @brief  Make untrusted octets (a trace line, an address, a HELO name)
 *         safe to show on one line of a log or a terminal.
 *
 * Printable ASCII is copied, a backslash is doubled, and every other
 * octet - CR, LF, NUL, ESC and other controls, DEL, 8-bit - becomes
 * "\xHH", so a peer can neither forge a log line nor drive the terminal
 * of whoever reads it.  What does not fit in size is cut and marked with
 * "...".  in is never read past len and need not be NUL-terminated.
 * @param  out   Where the text goes; always NUL-terminated when size >= 4
 *               (SMTPX_ESCAPE_SIZE(len) is enough for all of it).  An in
 *               of NULL shows as "".
 * @return out (NULL if out is NULL).
 */
SMTPX_EXTERN const char *smtpx_escape(char *out, size_t size, const void *in,
                                      size_t len);

/**
 * Allocator.  Every allocation of an object goes through the smtpx_mem of
 * the config it was made with; NULL means the C library's.  Each function
 * gets mem_user_data as its last argument.  An allocator must be usable
 * from whichever thread owns the object at the time.
 *
 * Memory that mbedTLS allocates for a TLS session does not go through this
 * allocator: Debian's mbedTLS is built without MBEDTLS_PLATFORM_MEMORY.
 */
typedef struct smtpx_mem {
    void *mem_user_data;
    void *(*malloc)(size_t size, void *mem_user_data);
    void (*free)(void *ptr, void *mem_user_data);
    void *(*calloc)(size_t nmemb, size_t size, void *mem_user_data);
    void *(*realloc)(void *ptr, size_t size, void *mem_user_data);
} smtpx_mem;

/**
 * A source of random bytes (SASL nonces and challenges; the key of SCRAM's
 * stand-in salts, drawn at freeze): fill buf with len
 * bytes and return 0, or return a negative SMTPX_ERR_* code.
 */
typedef int smtpx_random_fn(uint8_t *buf, size_t len, void *rand_user_data);

/**
 * An SMTP reply: the outcome of a command, as data.
 *
 * code  Three-digit reply code, 200 to 599 (RFC 5321 4.2).
 * enh   Enhanced status code class.subject.detail (RFC 3463); all zero
 *       means none.  It is sent only when ENHANCEDSTATUSCODES is enabled.
 * text  Human-readable text.  Lines are separated by '\n'; each becomes
 *       one line of a multi-line reply.  CR, LF and other control
 *       characters inside a line are replaced by spaces, and lines are cut
 *       to the reply line limit, so an application cannot inject protocol
 *       text.  NULL or "" means the default text for the code.  The library
 *       copies the text before the call that takes the reply returns.
 */
typedef struct smtpx_reply {
    int code;
    uint16_t enh[3];
    const char *text;
} smtpx_reply;

/**
 * One ESMTP parameter of MAIL or RCPT ("SIZE=1024", "SMTPUTF8"), as the
 * client sent it.  keyword is NUL-terminated; value is NULL when the
 * parameter had no "=".  Both point into the session and are valid only
 * during the callback that receives them.
 */
typedef struct smtpx_param {
    const char *keyword;
    const char *value;
} smtpx_param;

/** DSN RET values (RFC 3461 4.3). */
#define SMTPX_DSN_RET_NONE 0
#define SMTPX_DSN_RET_FULL 1
#define SMTPX_DSN_RET_HDRS 2

/** DSN NOTIFY bits (RFC 3461 4.1); 0 means "not given". */
#define SMTPX_DSN_NOTIFY_NEVER   (1u << 0)
#define SMTPX_DSN_NOTIFY_SUCCESS (1u << 1)
#define SMTPX_DSN_NOTIFY_FAILURE (1u << 2)
#define SMTPX_DSN_NOTIFY_DELAY   (1u << 3)

/** How the message content is framed. */
#define SMTPX_FRAMING_DATA 1 /* DATA: dot-stuffed, ends with <CRLF>.<CRLF> */
#define SMTPX_FRAMING_BDAT 2 /* BDAT chunks (RFC 3030): byte-exact */

/** Body types (RFC 6152, RFC 3030). */
#define SMTPX_BODY_NONE       0 /* no BODY= parameter */
#define SMTPX_BODY_7BIT       1 /* BODY=7BIT */
#define SMTPX_BODY_8BITMIME   2 /* BODY=8BITMIME */
#define SMTPX_BODY_BINARYMIME 3 /* BODY=BINARYMIME (BDAT only) */

/** Direction of a traced protocol line (on_trace). */
#define SMTPX_TRACE_IN  0
#define SMTPX_TRACE_OUT 1

/** Log levels, most to least severe (syslog order). */
enum smtpx_log_level {
    SMTPX_LOG_ERROR = 3,
    SMTPX_LOG_WARNING = 4,
    SMTPX_LOG_NOTICE = 5,
    SMTPX_LOG_INFO = 6,
    SMTPX_LOG_DEBUG = 7
};

/**
 * @brief  The library's version.
 * @return The version number as 0xMMmmpp (major, minor, patch); compare
 *         with SMTPX_VERSION_NUM from <libsmtpx/version.h> to detect a
 *         library older than the headers a program was built with.
 */
SMTPX_EXTERN unsigned long smtpx_version_num(void);

/** @brief The library's version as a string, such as "0.1.0". */
SMTPX_EXTERN const char *smtpx_version_string(void);

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_COMMON_H */
