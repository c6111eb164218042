/*
 * libsmtpx - configuration shared by sessions.
 *
 * An smtpx_config is created, set up, then frozen with
 * smtpx_config_freeze().  Once frozen it is read-only and may be shared by
 * any number of sessions on any number of threads; it must outlive every
 * session made with it.  A session copies the few settings that can be
 * overridden per session (smtpx_server_set_limit() and friends).
 *
 * Defaults follow RFC 5321 and the practice of Postfix; each is listed in
 * smtpx_config_new(3).
 */
#ifndef LIBSMTPX_CONF_H
#define LIBSMTPX_CONF_H

#include <libsmtpx/auth.h>
#include <libsmtpx/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smtpx_config smtpx_config;

/** What sessions made with a config speak. */
typedef enum smtpx_role {
    SMTPX_ROLE_SERVER = 0,      /* SMTP server (RFC 5321) */
    SMTPX_ROLE_CLIENT = 1,      /* SMTP client */
    SMTPX_ROLE_LMTP_SERVER = 2, /* LMTP server (RFC 2033): LHLO, one reply
                                   per recipient after the body */
    SMTPX_ROLE_LMTP_CLIENT = 3  /* LMTP client */
} smtpx_role;

/**
 * Limits.  0 means "no limit" only where the description says so.
 *
 * LINE          Length in octets, CRLF included, of a command line (server)
 *               or of a reply line (client).  Default
 *               2048: RFC 5321 4.5.3.1.4 gives 512 and lets extensions
 *               raise it (SIZE, DSN, AUTH= and SMTPUTF8 parameters);
 *               Postfix uses 2048.
 * AUTH_LINE     Length of a SASL response line (RFC 4954 4: 12288).
 * TEXT_LINE     Length of a line of DATA content, CRLF included (RFC 5321
 *               4.5.3.1.6: 1000).  A message with a longer line is read to
 *               its end, then refused with 550 5.5.2.  BDAT content is
 *               byte-exact and not checked.  0: none.
 * REPLY_LINE    Length of a reply line, CRLF included (RFC 5321
 *               4.5.3.1.5: 512).  Longer reply text is cut.
 * RCPTS         Recipients per message (RFC 5321 4.5.3.1.8 asks for at
 *               least 100; default 1000 as in Postfix).  Beyond it each RCPT
 *               is answered 452 4.5.3 (RFC 5321 4.5.3.1.10).
 * MSG_SIZE      Message size in octets after dot-unstuffing; advertised
 *               with SIZE (RFC 1870).  An over-size message is read to its
 *               end, then answered 552 5.3.4.  Default 10240000 (Postfix).
 *               0: none (SIZE is then advertised without a number).
 * ERRORS        Error replies (4xx/5xx) a client may get before it is
 *               disconnected with 421; 452 for too many recipients does not
 *               count, and the count restarts after a message is accepted.
 *               Default 20 (Postfix smtpd_hard_error_limit).  0: none.
 * JUNK          Commands that make no progress (NOOP, RSET, VRFY, EXPN,
 *               HELP) allowed before 421; the count restarts after a
 *               message is accepted.  Default 100 (Postfix
 *               smtpd_junk_command_limit).  0: none.
 * MSGS          Messages per session; MAIL beyond it gets 421.  Default
 *               1000.  0: none.
 * OUTBUF        Output queued and not yet written, in octets, at which the
 *               session stops taking input (back-pressure).  Default 65536.
 * HOLDBUF       Unprocessed input a session keeps while paused or held by
 *               back-pressure.  Input beyond it ends the session with 421.
 *               It must be at least the driver's read size.  Default
 *               262144.
 * ADDR          Length of a path between "<" and ">" (RFC 5321 4.5.3.1.3:
 *               256).
 * AUTH_FAILURES Failed AUTH attempts (535, and exchanges the client
 *               cancelled or garbled) before the session is ended with
 *               421 4.7.0.  Default 3.  0: none.
 * UNKNOWN       Unrecognized commands a client may send (each answered 500
 *               5.5.2); one more ends the session with 421 4.7.0, so that a
 *               stream of junk (another protocol's request, say) cannot
 *               reach a command.  Default 3, as Exim's
 *               smtp_max_unknown_commands.  0: none.
 *
 * SMTPX_LIMIT_MAP below is the one list of the limits: their numbers,
 * defaults and accepted ranges (min to max; max 0: no maximum), from which
 * the enumeration, smtpx_limit_name() and the library's checks are made.
 * TEXT_LINE takes 0 (none) or at least 64.
 */
/* clang-format off */
#define SMTPX_LIMIT_MAP(XX)                                                    \
    /* name          id default   min   max (0 for none: no maximum) */        \
    XX(LINE,          0, 2048,     64,   16777216)                             \
    XX(AUTH_LINE,     1, 12288,    64,   16777216)                             \
    XX(TEXT_LINE,     2, 1000,     0,    0)                                    \
    XX(REPLY_LINE,    3, 512,      64,   65536)                                \
    XX(RCPTS,         4, 1000,     1,    1048576)                              \
    XX(MSG_SIZE,      5, 10240000, 0,    0)                                    \
    XX(ERRORS,        6, 20,       0,    0)                                    \
    XX(JUNK,          7, 100,      0,    0)                                    \
    XX(MSGS,          8, 1000,     0,    0)                                    \
    XX(OUTBUF,        9, 65536,    1024, 4294967296)                           \
    XX(HOLDBUF,      10, 262144,   1024, 4294967296)                           \
    XX(ADDR,         11, 256,      16,   65536)                                \
    XX(AUTH_FAILURES,12, 3,        0,    0)                                    \
    XX(UNKNOWN,      13, 3,        0,    0)
/* clang-format on */

/** The limits, as an enumeration (see SMTPX_LIMIT_MAP). */
typedef enum smtpx_limit {
#define SMTPX__LIMIT_ENUM(name, id, dflt, min, max) SMTPX_LIMIT_##name = id,
    SMTPX_LIMIT_MAP(SMTPX__LIMIT_ENUM)
#undef SMTPX__LIMIT_ENUM
} smtpx_limit;
#define SMTPX_LIMIT_COUNT 14

/** @brief A limit's name ("LINE", "MSG_SIZE"), or NULL for an unknown one. */
SMTPX_EXTERN const char *smtpx_limit_name(smtpx_limit which);

/**
 * Timeouts in milliseconds (RFC 5321 4.5.3.2).  The core never reads a
 * clock: drivers pass now_ms in and ask for the absolute expiry.
 *
 * COMMAND   Server: waiting for the next command, counted from the moment
 *           the previous reply was queued, so a line that trickles in a
 *           byte at a time does not extend it (4.5.3.2.7: 5 minutes).
 *           Client: the reply to EHLO, HELO, STARTTLS, RSET, NOOP, QUIT.
 * DATA      Server: between two reads of message content (Postfix uses
 *           smtpd_timeout, 5 minutes, for both).
 * SESSION   Server and client: the whole session, however busy.  Default
 *           1 hour.  0: none.
 * GREETING  Client: waiting for the 220 greeting (4.5.3.2.1: 5 minutes).
 * MAIL      Client: reply to MAIL (4.5.3.2.2: 5 minutes).
 * RCPT      Client: reply to RCPT (4.5.3.2.3: 5 minutes).
 * DATA_INIT Client: reply 354 to DATA (4.5.3.2.4: 2 minutes).
 * DATA_BLOCK Client: each write of message content (4.5.3.2.5: 3 minutes).
 * DATA_END  Client: reply to the end of the message (4.5.3.2.6: 10
 *           minutes).
 */
/* clang-format off */
#define SMTPX_TIMEOUT_MAP(XX)                                                  \
    /* name        id default (ms) */                                          \
    XX(COMMAND,     0, 300000)                                                 \
    XX(DATA,        1, 300000)                                                 \
    XX(SESSION,     2, 3600000)                                                \
    XX(GREETING,    3, 300000)                                                 \
    XX(MAIL,        4, 300000)                                                 \
    XX(RCPT,        5, 300000)                                                 \
    XX(DATA_INIT,   6, 120000)                                                 \
    XX(DATA_BLOCK,  7, 180000)                                                 \
    XX(DATA_END,    8, 600000)
/* clang-format on */

/** The timeouts, as an enumeration (see SMTPX_TIMEOUT_MAP). */
typedef enum smtpx_timeout {
#define SMTPX__TIMEOUT_ENUM(name, id, dflt) SMTPX_TIMEOUT_##name = id,
    SMTPX_TIMEOUT_MAP(SMTPX__TIMEOUT_ENUM)
#undef SMTPX__TIMEOUT_ENUM
} smtpx_timeout;
#define SMTPX_TIMEOUT_COUNT 9

/** @brief A timeout's name ("GREETING"), or NULL for an unknown one. */
SMTPX_EXTERN const char *smtpx_timeout_name(smtpx_timeout which);

/**
 * ESMTP extensions, as a bit mask: which a server offers in its EHLO reply,
 * which a client uses when the server offers them.  STARTTLS is offered
 * only when the session is told TLS is available, AUTH only when the
 * application handles it.
 */
#define SMTPX_EXT_PIPELINING          (1u << 0)  /* RFC 2920 */
#define SMTPX_EXT_SIZE                (1u << 1)  /* RFC 1870 */
#define SMTPX_EXT_8BITMIME            (1u << 2)  /* RFC 6152 */
#define SMTPX_EXT_ENHANCEDSTATUSCODES (1u << 3)  /* RFC 2034 */
#define SMTPX_EXT_SMTPUTF8            (1u << 4)  /* RFC 6531 */
#define SMTPX_EXT_CHUNKING            (1u << 5)  /* RFC 3030 BDAT */
#define SMTPX_EXT_BINARYMIME          (1u << 6)  /* RFC 3030 */
#define SMTPX_EXT_DSN                 (1u << 7)  /* RFC 3461 */
#define SMTPX_EXT_STARTTLS            (1u << 8)  /* RFC 3207 */
#define SMTPX_EXT_AUTH                (1u << 9)  /* RFC 4954 */
#define SMTPX_EXT_REQUIRETLS          (1u << 10) /* RFC 8689 */
#define SMTPX_EXT_MT_PRIORITY         (1u << 11) /* RFC 6710 */
#define SMTPX_EXT_ALL                 0xfffu
/**
 * The one list of the extensions: their EHLO keywords, in the order a
 * server offers them.  smtpx_ext_name(), smtpx_ext_from_name(), the EHLO
 * reply and the EHLO parser are made from it.
 */
#define SMTPX_EXT_MAP(XX)                                                      \
    XX(PIPELINING, "PIPELINING")                                               \
    XX(SIZE, "SIZE")                                                           \
    XX(STARTTLS, "STARTTLS")                                                   \
    XX(AUTH, "AUTH")                                                           \
    XX(ENHANCEDSTATUSCODES, "ENHANCEDSTATUSCODES")                             \
    XX(8BITMIME, "8BITMIME")                                                   \
    XX(DSN, "DSN")                                                             \
    XX(SMTPUTF8, "SMTPUTF8")                                                   \
    XX(CHUNKING, "CHUNKING")                                                   \
    XX(BINARYMIME, "BINARYMIME")                                               \
    XX(REQUIRETLS, "REQUIRETLS")                                               \
    XX(MT_PRIORITY, "MT-PRIORITY")

/** @brief The EHLO keyword of one SMTPX_EXT_* bit ("CHUNKING"), or NULL. */
SMTPX_EXTERN const char *smtpx_ext_name(unsigned ext);

/** @brief The SMTPX_EXT_* bit of an EHLO keyword (any case), or 0. */
SMTPX_EXTERN unsigned smtpx_ext_from_name(const char *name);

/** Offered by default: the extensions that put no duty on the
 *  application.  BINARYMIME and DSN are opt-in. */
#define SMTPX_EXT_DEFAULT                                                      \
    (SMTPX_EXT_PIPELINING | SMTPX_EXT_SIZE | SMTPX_EXT_8BITMIME |              \
     SMTPX_EXT_ENHANCEDSTATUSCODES | SMTPX_EXT_SMTPUTF8 | SMTPX_EXT_CHUNKING | \
     SMTPX_EXT_STARTTLS | SMTPX_EXT_AUTH)

/**
 * Policies.
 *
 * BARE_LF       What to do with a bare LF or bare CR in DATA, and a bare
 *               LF ending a command line.  Whatever the policy, only
 *               <CRLF>.<CRLF> ends DATA.  SMTPX_BARE_LF_NORMALIZE (default,
 *               as Postfix 3.9): in DATA treat it as a line end and hand
 *               the application CRLF; a command line may end in a bare LF.
 *               SMTPX_BARE_LF_REJECT: refuse the message, once read to its
 *               end, with 550 5.5.2, and a command line ended by a bare LF
 *               with 500 5.5.2.  A bare CR or a NUL inside a command line
 *               is always refused with 500 5.5.2.
 * REQUIRE_HELO  1 (default): MAIL before HELO/EHLO gets 503 5.5.1.
 * VRFY          Answer to VRFY when no on_vrfy callback is set: the reply
 *               code, 252 (default: "cannot verify, will attempt
 *               delivery", RFC 5321 3.5.3) or 502.
 * EXPN          Same for EXPN: 502 (default) or 252.
 * REQUIRE_TLS   Server: 1 refuses MAIL and AUTH with 530 5.7.0 until TLS
 *               is active (RFC 3207 4).  Client: 1 never sends MAIL or
 *               credentials in clear text: the session ends with
 *               SMTPX_ERR_TLS_REQUIRED instead.  Default 0.
 * AUTH_CLEARTEXT Server: 1 offers AUTH before TLS too (only for
 *               connections that are already private, such as loopback or
 *               a socket pair).  Default 0: AUTH is offered, and taken,
 *               only under TLS; before it AUTH gets 538 5.7.11.
 * ENFORCE_SYNC  Server: 1 disconnects a client that breaks command
 *               synchronization: one that sends before the greeting has
 *               been written, or sends more behind a command without
 *               waiting for its reply when it may not - before an EHLO
 *               reply offered PIPELINING, or behind a command that must
 *               end a group (RFC 2920 3.1: HELO, EHLO, DATA, NOOP, QUIT,
 *               VRFY, EXPN, STARTTLS, AUTH, TURN).  It gets 554 5.5.0
 *               "Error: SMTP protocol synchronization" and the session
 *               ends with SMTPX_ERR_PROTO (Postfix's
 *               smtpd_forbid_unauth_pipelining and postscreen pregreet
 *               test, Exim's smtp_enforce_sync): bulk mail software often
 *               talks without listening.  Default 0.
 */
/* clang-format off */
#define SMTPX_POLICY_MAP(XX)                                                   \
    /* name          id default  the two accepted values */                    \
    XX(BARE_LF,       0, 0,       0,   1)                                      \
    XX(REQUIRE_HELO,  1, 1,       0,   1)                                      \
    XX(VRFY,          2, 252,     252, 502)                                    \
    XX(EXPN,          3, 502,     252, 502)                                    \
    XX(REQUIRE_TLS,   4, 0,       0,   1)                                      \
    XX(AUTH_CLEARTEXT,5, 0,       0,   1)                                      \
    XX(ENFORCE_SYNC,  6, 0,       0,   1)
/* clang-format on */

/** The policies, as an enumeration (see SMTPX_POLICY_MAP). */
typedef enum smtpx_policy {
#define SMTPX__POLICY_ENUM(name, id, dflt, a, b) SMTPX_POLICY_##name = id,
    SMTPX_POLICY_MAP(SMTPX__POLICY_ENUM)
#undef SMTPX__POLICY_ENUM
} smtpx_policy;
#define SMTPX_POLICY_COUNT 7

/** @brief A policy's name ("BARE_LF"), or NULL for an unknown one. */
SMTPX_EXTERN const char *smtpx_policy_name(smtpx_policy which);

#define SMTPX_BARE_LF_NORMALIZE 0
#define SMTPX_BARE_LF_REJECT    1

/**
 * A log function: level is one of SMTPX_LOG_*, msg one line without a line
 * end.  Credentials never appear in it.
 */
typedef void smtpx_log_fn(int level, const char *msg, void *log_user_data);

/**
 * @brief  Create a configuration with the defaults for a role.
 * @param  out   Receives the new config.
 * @param  role  SMTPX_ROLE_*.
 * @param  mem   Allocator for the config and every session made with it;
 *               copied.  NULL: the C library's malloc family.
 * @retval 0                         Success.
 * @retval SMTPX_ERR_INVALID_ARGUMENT out is NULL, role unknown, or mem
 *                                   lacks a function.
 * @retval SMTPX_ERR_NOMEM           Out of memory.
 */
SMTPX_EXTERN int smtpx_config_new(smtpx_config **out, smtpx_role role,
                                  const smtpx_mem *mem);

/** @brief Free a config (NULL-safe).  No session may still use it. */
SMTPX_EXTERN void smtpx_config_free(smtpx_config *cfg);

/**
 * @brief  Set the host name announced in the greeting and EHLO reply.
 * @param  name  A domain name or address literal; copied.  Default
 *               "localhost".
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL, empty, longer than 255
 *         octets, or containing a space or control character),
 *         SMTPX_ERR_INVALID_STATE (frozen), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_config_set_hostname(smtpx_config *cfg, const char *name);

/** @brief The configured host name. */
SMTPX_EXTERN const char *smtpx_config_get_hostname(const smtpx_config *cfg);

/**
 * @brief  Set a limit (see smtpx_limit).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (unknown limit, or a value outside
 *         the accepted ranges above; checked before the frozen state),
 *         SMTPX_ERR_INVALID_STATE (frozen).
 */
SMTPX_EXTERN int smtpx_config_set_limit(smtpx_config *cfg, smtpx_limit which,
                                        uint64_t value);

/** @brief A limit's value, or 0 for an unknown limit. */
SMTPX_EXTERN uint64_t smtpx_config_get_limit(const smtpx_config *cfg,
                                             smtpx_limit which);

/**
 * @brief  Set a timeout in milliseconds (see smtpx_timeout); 0 disables
 *         SESSION only.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE (frozen).
 */
SMTPX_EXTERN int smtpx_config_set_timeout(smtpx_config *cfg,
                                          smtpx_timeout which, uint32_t ms);

/** @brief A timeout in milliseconds, or 0 for an unknown one. */
SMTPX_EXTERN uint32_t smtpx_config_get_timeout(const smtpx_config *cfg,
                                               smtpx_timeout which);

/**
 * @brief  Choose the extensions to offer (server) or use (client).
 * @param  mask  SMTPX_EXT_* bits; default SMTPX_EXT_DEFAULT.  BINARYMIME
 *               needs CHUNKING.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (unknown bits, or BINARYMIME
 *         without CHUNKING), SMTPX_ERR_INVALID_STATE (frozen).
 */
SMTPX_EXTERN int smtpx_config_set_extensions(smtpx_config *cfg, unsigned mask);

/** @brief The extension mask. */
SMTPX_EXTERN unsigned smtpx_config_get_extensions(const smtpx_config *cfg);

/**
 * @brief  Set a policy (see smtpx_policy).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (unknown policy or value),
 *         SMTPX_ERR_INVALID_STATE (frozen).
 */
SMTPX_EXTERN int smtpx_config_set_policy(smtpx_config *cfg, smtpx_policy which,
                                         int value);

/** @brief A policy's value, or -1 for an unknown policy. */
SMTPX_EXTERN int smtpx_config_get_policy(const smtpx_config *cfg,
                                         smtpx_policy which);

/**
 * @brief  Send library log messages at level or more severe to fn.
 *         Sessions with their own on_log callback use that instead.
 * @param  fn     NULL: no logging (default).
 * @param  level  SMTPX_LOG_* threshold.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_INVALID_STATE (frozen).
 */
SMTPX_EXTERN int smtpx_config_set_log(smtpx_config *cfg, smtpx_log_fn *fn,
                                      int level, void *log_user_data);

/**
 * @brief  Choose the SASL mechanisms (SMTPX_SASL_*) to offer (server) or
 *         to use (client).  Default SMTPX_SASL_DEFAULT for a server,
 *         SMTPX_SASL_ALL for a client.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (unknown bits),
 *         SMTPX_ERR_INVALID_STATE (frozen).
 */
SMTPX_EXTERN int smtpx_config_set_sasl(smtpx_config *cfg, unsigned mechs);

/** @brief The SASL mechanism mask. */
SMTPX_EXTERN unsigned smtpx_config_get_sasl(const smtpx_config *cfg);

/**
 * @brief  Set the random-byte source (SASL nonces and challenges).
 *         Default: the system's entropy source through mbedTLS.
 * @param  fn  NULL restores the default.
 * @retval 0, SMTPX_ERR_INVALID_STATE (frozen).
 */
SMTPX_EXTERN int smtpx_config_set_random(smtpx_config *cfg, smtpx_random_fn *fn,
                                         void *rand_user_data);

/**
 * @brief  Freeze the config: from now on it is read-only and may be shared
 *         across threads.  Sessions can be made only with a frozen config.
 *         Freezing twice is harmless.  Freezing draws a key from the random
 *         source (SCRAM's stand-in salts for unknown users); if the source
 *         fails, CRAM-MD5 and SCRAM-SHA-256 are not offered.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL).
 */
SMTPX_EXTERN int smtpx_config_freeze(smtpx_config *cfg);

/** @brief 1 if the config is frozen, else 0. */
SMTPX_EXTERN int smtpx_config_is_frozen(const smtpx_config *cfg);

/** @brief The config's role. */
SMTPX_EXTERN smtpx_role smtpx_config_get_role(const smtpx_config *cfg);

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_CONF_H */
