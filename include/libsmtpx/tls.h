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
 * verified  1 if the peer presented a certificate that was verified.
 * peer      The verified peer's name (subject CN or SAN), or NULL.
 */
typedef struct smtpx_tls_info {
    const char *version;
    const char *cipher;
    int bits;
    int verified;
    const char *peer;
} smtpx_tls_info;

/**
 * A TLS implementation.  Every function follows the smtpx_io contract:
 * a byte count, 0 for EOF, SMTPX_ERR_WANT_READ / SMTPX_ERR_WANT_WRITE when
 * the underlying transport would block, another negative code on failure.
 * The table travels with its size so that it can grow.
 *
 * open       Make a connection object over lower for tls_cfg (the
 *            implementation's own configuration); server is 1 for the
 *            server side; sni is the host name a client asks for and
 *            verifies (NULL on the server side).
 * handshake  Advance the handshake: 0 when done.
 * recv/send  Move application data.
 * pending    Bytes already decrypted and buffered inside the TLS layer, which
 *            a driver must read before it waits for the socket (optional:
 *            smtpx_server_pump() reads until the layer says WANT_READ).
 * info       Fill *out with facts about the session.
 * close      Send close_notify (may return WANT_*).
 * free       Free the connection object (NULL-safe).
 */
typedef struct smtpx_tls_ops {
    size_t size; /* sizeof(smtpx_tls_ops) as the caller compiled it */
    int (*open)(void *tls_cfg, int server, const char *sni,
                const smtpx_io *lower, void **conn);
    int (*handshake)(void *conn);
    smtpx_ssize (*recv)(void *conn, uint8_t *buf, size_t len);
    smtpx_ssize (*send)(void *conn, const uint8_t *buf, size_t len);
    size_t (*pending)(void *conn);
    int (*info)(void *conn, smtpx_tls_info *out);
    int (*close)(void *conn);
    void (*free)(void *conn);
} smtpx_tls_ops;

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_TLS_H */
