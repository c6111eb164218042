/*
 * libsmtpx - transports and the pump step.
 *
 * A transport is an smtpx_io with an optional TLS layer on top.  The pump
 * moves bytes between a transport and a session in one non-blocking step
 * and says what it waits for, so any event loop (poll, epoll, libuv, an
 * RTOS loop) can drive sessions: call the pump when the connection is
 * readable or writable or the session's expiry has come, and wait for what
 * it returns.  When the session's expiry has come, call
 * smtpx_server_expire() first, then the pump.  The pump holds no protocol
 * knowledge; a driver that wants full control uses smtpx_server_recv /
 * out_peek / out_drop itself.
 */
#ifndef LIBSMTPX_TRANSPORT_H
#define LIBSMTPX_TRANSPORT_H

#include <libsmtpx/common.h>
#include <libsmtpx/io.h>
#include <libsmtpx/tls.h>
#include <libsmtpx/server.h>
#include <libsmtpx/client.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smtpx_transport smtpx_transport;

/**
 * What a pump waits for (bits of its positive return value):
 * READ   the connection to be readable;
 * WRITE  the connection to be writable;
 * APP    the application (a paused callback) or the session's expiry: no
 *        I/O is wanted now;
 * AGAIN  the pump stopped to let other sessions run while work was left
 *        (perhaps data the TLS layer holds): call it again without waiting.
 */
#define SMTPX_WAIT_READ  1
#define SMTPX_WAIT_WRITE 2
#define SMTPX_WAIT_APP   4
#define SMTPX_WAIT_AGAIN 8

/**
 * @brief  Make a transport over an io.
 * @param  io   Copied; io->send and io->recv are required; io->close, if
 *              not NULL, is called by smtpx_transport_free().
 * @param  mem  Allocator; NULL for the C library's.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (io, io->send or io->recv NULL, or
 *         an incomplete mem), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_transport_new(smtpx_transport **out, const smtpx_io *io,
                                     const smtpx_mem *mem);

/** @brief Free a transport (NULL-safe): TLS state, then io->close. */
SMTPX_EXTERN void smtpx_transport_free(smtpx_transport *t);

/**
 * @brief  Give the transport a TLS implementation to use when a session
 *         asks for TLS (STARTTLS) or when smtpx_transport_start_tls() is
 *         called (implicit TLS).
 * @param  ops      Copied up to ops->size.  open, handshake, recv, send and
 *                  free are required; pending, info and close may be NULL.
 * @param  tls_cfg  The implementation's configuration; must outlive t.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (a required function missing),
 *         SMTPX_ERR_INVALID_STATE (TLS already started).
 */
SMTPX_EXTERN int smtpx_transport_set_tls(smtpx_transport *t,
                                         const smtpx_tls_ops *ops,
                                         void *tls_cfg);

/** @brief 1 if a TLS implementation was set, so STARTTLS can be offered. */
SMTPX_EXTERN int smtpx_transport_has_tls(const smtpx_transport *t);

/**
 * @brief  Client side: the server's name, which the TLS handshake asks
 *         for (SNI) and, with verify 1, checks together with the
 *         certificate chain (SMTPX_TLS_OPEN_VERIFY).  A failed
 *         verification ends the session with SMTPX_ERR_TLS_VERIFY.  Applies
 *         to the next handshake, STARTTLS or implicit.
 * @param  name    Copied; NULL for none.
 * @param  verify  1 to verify (SMTPX_TLS_VERIFY), 0 not to.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (verify without a name: mbedTLS and
 *         others check no name unless given one), SMTPX_ERR_INVALID_STATE
 *         (TLS already started), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_transport_set_peer_name(smtpx_transport *t,
                                               const char *name, int verify);

/**
 * @brief  Start TLS now (implicit TLS, RFC 8314); the pump runs the
 *         handshake before any SMTP byte.
 * @param  server  1 for the server side.
 * @param  sni     Client side: the name to ask for, or NULL for the one
 *                 given to smtpx_transport_set_peer_name().
 * @retval 0, SMTPX_ERR_INVALID_STATE (no TLS set, or already started),
 *         or an error from the implementation's open.
 */
SMTPX_EXTERN int smtpx_transport_start_tls(smtpx_transport *t, int server,
                                           const char *sni);

/** @brief 1 once the TLS handshake has completed. */
SMTPX_EXTERN int smtpx_transport_tls_active(const smtpx_transport *t);

/**
 * @brief  The detail behind the transport's last failure: an errno value
 *         for SMTPX_ERR_IO, the TLS implementation's code for
 *         SMTPX_ERR_TLS and SMTPX_ERR_TLS_VERIFY (for the mbedTLS adapter,
 *         see smtpx_mbedtls_strerror()); 0 if none.
 */
SMTPX_EXTERN int smtpx_transport_last_error(const smtpx_transport *t);

/**
 * @brief  One non-blocking step of a server session over a transport:
 *         write waiting output, run a TLS handshake the session asked for,
 *         read and feed input (draining what the TLS layer buffered), and
 *         report EOF and errors to the session.  Reading uses a buffer on
 *         the stack, so an idle session holds none.
 *
 *         I/O errors, EOF and a failed TLS handshake end the session (its
 *         on_close tells why); the pump then reports it done.  After the
 *         application answers a pause, call the pump again.
 * @return 0 when the session is done (free it and the transport); else a
 *         positive mix of SMTPX_WAIT_READ, SMTPX_WAIT_WRITE,
 *         SMTPX_WAIT_APP and SMTPX_WAIT_AGAIN to act on, together with the
 * session's expiry (see smtpx_server_expiry()); SMTPX_ERR_INVALID_ARGUMENT for
 * NULL arguments.
 */
SMTPX_EXTERN int smtpx_server_pump(smtpx_server *s, smtpx_transport *t,
                                   uint64_t now_ms);

/**
 * @brief  The same step for a client session: write its commands and
 *         message content, run the TLS handshake after the 220 to STARTTLS
 *         (as the client, with the name given to
 *         smtpx_transport_set_peer_name()), read and feed replies.
 * @return As smtpx_server_pump(): 0 when the session is done, else
 *         SMTPX_WAIT_* bits (with smtpx_client_expiry() for the deadline);
 *         SMTPX_ERR_INVALID_ARGUMENT for NULL arguments.
 */
SMTPX_EXTERN int smtpx_client_pump(smtpx_client *c, smtpx_transport *t,
                                   uint64_t now_ms);

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_TRANSPORT_H */
