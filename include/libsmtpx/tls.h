/*
 * libsmtpx - the TLS plug-in interface.
 *
 * The core never speaks TLS: it says when TLS must start (want_tls after
 * the 220 to STARTTLS) and is told when it has started (tls_started).  The
 * transport runs the handshake through an smtpx_tls_ops table, so any TLS
 * library can be plugged in; an mbedTLS adapter ships with the library.
 */
#ifndef LIBSMTPX_TLS_H
#define LIBSMTPX_TLS_H

#include <libsmtpx/common.h>
#include <libsmtpx/io.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Facts about an established TLS session, for the application, its logs and
 * the Received header.  Strings are owned by whoever fills the structure
 * and need only stay valid for the call they are passed to; the core copies
 * what it keeps.
 *
 * version   Protocol name, such as "TLSv1.2".
 * cipher    Cipher suite name.
 * bits      Symmetric key bits, 0 if unknown.
 * verified  1 if the peer presented a certificate that was verified (on
 *           the client side: the chain and the name asked for).
 * peer      Client side: the verified name; server side: the verified
 *           client certificate's common name; else NULL.
 * resumed   1 if the session was resumed (an abbreviated handshake, RFC
 *           5246 7.3, from a session ticket or a cached session), 0 if it
 *           was not or the implementation cannot tell.
 */
typedef struct smtpx_tls_info {
    const char *version;
    const char *cipher;
    int bits;
    int verified;
    const char *peer;
    int resumed;
} smtpx_tls_info;

/**
 * Client TLS policy, as Postfix's smtp_tls_security_level:
 *
 * NONE     Never start TLS.
 * MAY      Opportunistic (MX delivery): STARTTLS when the server offers it,
 *          the certificate is not checked; clear text when it is not
 *          offered.
 * ENCRYPT  TLS is required; the certificate is not checked.
 * VERIFY   TLS is required, and the certificate chain and the host name
 *          must verify: the level for submission and smarthosts.
 */
#define SMTPX_TLS_NONE    0
#define SMTPX_TLS_MAY     1
#define SMTPX_TLS_ENCRYPT 2
#define SMTPX_TLS_VERIFY  3

/** Flags for smtpx_tls_ops.open. */
#define SMTPX_TLS_OPEN_SERVER 1 /* the server side (else the client) */
#define SMTPX_TLS_OPEN_VERIFY                                                  \
    2 /* client: fail the handshake unless the                                 \
         certificate chain and the name verify */

/**
 * A TLS implementation.  Every function follows the smtpx_io contract:
 * a byte count, 0 for EOF, SMTPX_ERR_WANT_READ / SMTPX_ERR_WANT_WRITE when
 * the underlying transport would block, another negative code on failure.
 * The table travels with its size so that it can grow.
 *
 * open       Make a connection object over lower for tls_cfg (the
 *            implementation's own configuration).  flags: SMTPX_TLS_OPEN_*.
 *            name: on the client side the host name to ask for (SNI) and
 *            to verify; NULL on the server side.  With
 *            SMTPX_TLS_OPEN_VERIFY and no name, open must fail with
 *            SMTPX_ERR_INVALID_ARGUMENT: a chain without a name proves
 *            nothing about whom one talks to.
 * handshake  Advance the handshake: 0 when done; SMTPX_ERR_TLS_VERIFY when
 *            verification was asked for and failed, SMTPX_ERR_TLS for
 *            other failures.
 * recv/send  Move application data.  After WANT_READ / WANT_WRITE from
 *            send, the caller calls send again with at least the octets it
 *            offered before (as mbedTLS requires; the pumps do).
 * pending    Bytes already decrypted and buffered inside the TLS layer, which
 *            a driver must read before it waits for the socket (optional:
 *            the pumps read until the layer says WANT_READ).
 * info       Fill *out with facts about the session.  verified is 1 only
 *            when the peer's chain verified and, on the client side, the
 *            name given to open matched it.
 * close      Send close_notify (may return WANT_*).
 * free       Free the connection object (NULL-safe).
 * last_error The implementation's own code for the last failure (for
 *            smtpx_transport_last_error()), 0 if none; optional.
 */
typedef struct smtpx_tls_ops {
    size_t size; /* sizeof(smtpx_tls_ops) as the caller compiled it */
    int (*open)(void *tls_cfg, int flags, const char *name,
                const smtpx_io *lower, void **conn);
    int (*handshake)(void *conn);
    smtpx_ssize (*recv)(void *conn, uint8_t *buf, size_t len);
    smtpx_ssize (*send)(void *conn, const uint8_t *buf, size_t len);
    size_t (*pending)(void *conn);
    int (*info)(void *conn, smtpx_tls_info *out);
    int (*close)(void *conn);
    void (*free)(void *conn);
    int (*last_error)(void *conn);
} smtpx_tls_ops;

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_TLS_H */
