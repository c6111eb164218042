/*
 * libsmtpx - connection and rate limits per client (opt-in header; the
 * event loop uses it through <libsmtpx/loop.h>).
 *
 * An smtpx_limiter is owned and fed by a driver: it is told of each
 * connection (smtpx_limiter_open), each end of a session
 * (smtpx_limiter_close), each message (smtpx_limiter_message) and each
 * AUTH attempt (smtpx_limiter_auth), with the client's address and the
 * time, and says whether the limits allow it.
 * It keeps what it needs per address and per network (/24 for IPv4, /64
 * for IPv6 by default: one site, one ISP customer), and forgets an
 * address a minute after its last session ended.  It holds no socket and
 * reads no clock.  The core only answers as told: the loop refuses a
 * connection with 421 4.7.0, a MAIL with 450 4.7.1 and an AUTH with
 * 454 4.7.0.
 *
 * The limits follow Postfix's anvil: smtpd_client_connection_count_limit
 * (sessions per address), smtpd_client_connection_rate_limit and
 * smtpd_client_message_rate_limit, smtpd_client_auth_rate_limit (per
 * address per minute), with
 * exemptions (smtpd_client_event_limit_exceptions).  Rates are token
 * buckets: up to the limit at once, then one more every 60000/limit ms.
 *
 * A limiter belongs to one thread at a time (a loop's: several listeners
 * of one loop may share it).
 */
#ifndef LIBSMTPX_LIMITER_H
#define LIBSMTPX_LIMITER_H

#include <libsmtpx/common.h>
#include <libsmtpx/conf.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smtpx_limiter smtpx_limiter;

/**
 * Why a limiter refuses: one list, the SMTPX_LIMITER_* numbers and
 * smtpx_limiter_reason().  OK (0) is not a refusal.
 */
#define SMTPX_LIMITER_MAP(XX)                                                  \
    XX(OK, 0, "allowed")                                                       \
    XX(SESSIONS, 1, "too many sessions")                                       \
    XX(ADDR_SESSIONS, 2, "too many sessions from the address")                 \
    XX(NET_SESSIONS, 3, "too many sessions from the network")                  \
    XX(CONN_RATE, 4, "too many connections from the address per minute")       \
    XX(MSG_RATE, 5, "too many messages from the address per minute")           \
    XX(AUTH_RATE, 6, "too many AUTH attempts from the address per minute")

enum {
#define SMTPX__LIMITER_ENUM(name, id, text) SMTPX_LIMITER_##name = id,
    SMTPX_LIMITER_MAP(SMTPX__LIMITER_ENUM)
#undef SMTPX__LIMITER_ENUM
        SMTPX_LIMITER_COUNT
};

/** @brief A reason in words ("too many sessions from the address"), or
 *         "?" for an unknown one. */
SMTPX_EXTERN const char *smtpx_limiter_reason(int why);

/**
 * The limits.  Set size to sizeof(smtpx_limiter_opts); 0 means "no limit"
 * (or the default, for the prefixes and max_tracked): members may be
 * added at the end.
 *
 * sessions       Sessions open at once, from all clients.
 * addr_sessions  Sessions open at once from one address.
 * net_sessions   Sessions open at once from one network.
 * conn_rate      Connections from one address per minute.
 * msg_rate       Messages (MAIL commands) from one address per minute.
 * net4, net6     The network of an address: its first net4 bits (IPv4,
 *                default 24) or net6 bits (IPv6, default 64).
 * exempt         Addresses and networks no limit applies to, such as
 *                "127.0.0.1, ::1, 192.0.2.0/24" (numeric, comma or space
 *                separated), or NULL.  Copied.
 * max_tracked    Addresses and networks remembered at most (default
 *                100000).  When it is reached, the one idle the longest
 *                is forgotten (its rates start again); if none is idle,
 *                new clients are refused with SMTPX_LIMITER_SESSIONS.
 * log, log_level, log_user_data  Where each refusal is logged (one line
 *                with the address, at SMTPX_LOG_NOTICE), or NULL.
 * auth_rate      AUTH attempts from one address per minute (Postfix's
 *                smtpd_client_auth_rate_limit): password guessing spread
 *                over many sessions, and the CPU each check costs.
 */
typedef struct smtpx_limiter_opts {
    size_t size;
    uint32_t sessions;
    uint32_t addr_sessions;
    uint32_t net_sessions;
    uint32_t conn_rate;
    uint32_t msg_rate;
    unsigned net4;
    unsigned net6;
    const char *exempt;
    uint32_t max_tracked;
    smtpx_log_fn *log;
    int log_level;
    void *log_user_data;
    uint32_t auth_rate;
} smtpx_limiter_opts;

/**
 * @brief  Make a limiter.
 * @param  opts  The limits; copied.
 * @param  mem   Allocator; NULL for libc's; copied.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (out or opts NULL, size 0, a prefix
 *         over 32 or 128, a bad exempt list, an incomplete mem),
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_limiter_new(smtpx_limiter **out,
                                   const smtpx_limiter_opts *opts,
                                   const smtpx_mem *mem);

/** @brief Free a limiter (NULL-safe). */
SMTPX_EXTERN void smtpx_limiter_free(smtpx_limiter *l);

/**
 * @brief  A client connects: may it have a session?
 * @param  addr    The client's numeric address (IPv6 with or without
 *                 brackets).
 * @param  now_ms  The time (smtpx_posix_now_ms() clock).
 * @return SMTPX_LIMITER_OK: the session is allowed and counted open (end
 *         it with smtpx_limiter_close()); a reason above 0: refused,
 *         nothing counted (refusals do not spend the rate, so a client
 *         that keeps trying is not locked out for longer);
 *         SMTPX_ERR_INVALID_ARGUMENT (l or addr NULL, addr not numeric:
 *         the driver decides, the loop refuses); SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_limiter_open(smtpx_limiter *l, const char *addr,
                                    uint64_t now_ms);

/** @brief A session that smtpx_limiter_open() allowed has ended. */
SMTPX_EXTERN void smtpx_limiter_close(smtpx_limiter *l, const char *addr,
                                      uint64_t now_ms);

/**
 * @brief  A client with an open session starts a message (MAIL): within
 *         its rate?
 * @return SMTPX_LIMITER_OK (counted) or SMTPX_LIMITER_MSG_RATE (refused,
 *         not counted); SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_limiter_message(smtpx_limiter *l, const char *addr,
                                       uint64_t now_ms);

/**
 * @brief  A client with an open session tries AUTH: within the address's
 *         auth_rate?  Counted if so.  The loop asks before the
 *         application checks the credentials, so a refused attempt costs
 *         no password hashing.
 * @return SMTPX_LIMITER_OK, SMTPX_LIMITER_AUTH_RATE, or as
 *         smtpx_limiter_message().
 */
SMTPX_EXTERN int smtpx_limiter_auth(smtpx_limiter *l, const char *addr,
                                    uint64_t now_ms);

/** @brief Sessions counted open now. */
SMTPX_EXTERN size_t smtpx_limiter_sessions(const smtpx_limiter *l);

/** @brief Addresses and networks remembered now. */
SMTPX_EXTERN size_t smtpx_limiter_tracked(const smtpx_limiter *l);

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_LIMITER_H */
