/*
 * libsmtpx - POSIX sockets and drivers (opt-in header).
 *
 * Sockets made here are non-blocking and close-on-exec, never raise
 * SIGPIPE (MSG_NOSIGNAL), and work for IPv4 and IPv6.  On top of them sit
 * two drivers that hold no protocol knowledge: smtpx_posix_serve() runs one
 * session to its end in the calling thread, and smtpx_loop
 * (<libsmtpx/loop.h>, included here) runs many server and client sessions
 * in one thread.
 */
#ifndef LIBSMTPX_POSIX_H
#define LIBSMTPX_POSIX_H

#include <libsmtpx/common.h>
#include <libsmtpx/conf.h>
#include <libsmtpx/io.h>
#include <libsmtpx/server.h>
#include <libsmtpx/client.h>
#include <libsmtpx/transport.h>
#include <libsmtpx/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Monotonic time in milliseconds, the clock the drivers use. */
SMTPX_EXTERN uint64_t smtpx_posix_now_ms(void);

/**
 * @brief  Make a listening TCP socket, or a local (Unix) one.
 * @param  host     Address or name to bind; NULL or "" or "*" for every
 *                  address (IPv6 and IPv4 where possible).  "[::1]" is
 *                  accepted.  A host that begins with "/" is the path of
 *                  a local socket (an LMTP server behind an MTA, as
 *                  smtpx_posix_connect() reaches one); port is then not
 *                  used.  A socket file left there by a listener that is
 *                  gone is replaced; anything else there (a live listener,
 *                  a file that is no socket) is left alone and fails.  Its
 *                  permissions come from the umask; the caller removes
 *                  the file when done.
 * @param  port     Port number, 0 to 65535 (0: the system picks one), or a
 *                  service name ("smtp").
 * @param  backlog  listen() backlog; 0 for SOMAXCONN.
 * @param  fd_out   Receives the socket (non-blocking, close-on-exec,
 *                  SO_REUSEADDR).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (no port, a number over 65535 or
 *         other text that is no port, an unknown service name, a path
 *         longer than a socket address holds), SMTPX_ERR_RESOLVE (the
 *         host), SMTPX_ERR_IO (errno tells more: EADDRINUSE for a live
 *         listener at the path, EEXIST for a file that is no socket).
 */
SMTPX_EXTERN int smtpx_posix_listen(const char *host, const char *port,
                                    int backlog, int *fd_out);

/**
 * @brief  Split "host:port", "[v6addr]:port" or ":port" into its parts.
 * @param  spec   The text.
 * @param  host   Receives the host (without brackets; "" for none).
 * @param  hsize  Size of host.
 * @param  port   Receives the port.
 * @param  psize  Size of port.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (no port, a port that is not a
 *         number up to 65535 or a service name, or too long).
 */
SMTPX_EXTERN int smtpx_posix_split_hostport(const char *spec, char *host,
                                            size_t hsize, char *port,
                                            size_t psize);

/** An accepted connection's ends as text, for smtpx_peer. */
typedef struct smtpx_posix_addr {
    char addr[64];
    uint16_t port;
    char local_addr[64];
    uint16_t local_port;
} smtpx_posix_addr;

/**
 * @brief  Accept one connection.
 * @param  lfd     A listening socket.
 * @param  fd_out  Receives the connection (non-blocking, close-on-exec,
 *                 TCP_NODELAY).
 * @param  addr    Receives both ends as text; may be NULL.  On a local
 *                 (Unix) socket both ends are "" and 0.
 * @retval 0, SMTPX_ERR_WANT_READ (nothing to accept), SMTPX_ERR_IO.
 */
SMTPX_EXTERN int smtpx_posix_accept(int lfd, int *fd_out,
                                    smtpx_posix_addr *addr);

/**
 * @brief  Both ends of a socket as text: the local address and port (the
 *         real port of a listener bound to port 0), and the peer's if it
 *         is connected (else addr is "" and port 0).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (addr NULL), SMTPX_ERR_IO (not a
 *         socket; errno tells more).
 */
SMTPX_EXTERN int smtpx_posix_getaddr(int fd, smtpx_posix_addr *addr);

/**
 * @brief  Fill an smtpx_io that reads and writes socket fd (non-blocking;
 *         MSG_NOSIGNAL).  close() closes fd.
 */
SMTPX_EXTERN void smtpx_posix_io(smtpx_io *io, int fd);

/**
 * @brief  Wait until fd is ready for what a pump asked (SMTPX_WAIT_READ,
 *         SMTPX_WAIT_WRITE; other bits are ignored) or until the absolute
 *         deadline on the smtpx_posix_now_ms() clock passes; EINTR is
 *         retried.  The building block of a blocking driver.
 * @param  deadline  0: no deadline.
 * @return poll()'s result: 1 ready, 0 the deadline passed, -1 an error
 *         (errno set).
 */
SMTPX_EXTERN int smtpx_posix_wait(int fd, int wait, uint64_t deadline);

/**
 * @brief  Run one server session on a connected socket until it ends,
 *         blocking the calling thread (poll() with the session's deadline).
 * @param  fd   The connection; closed before this returns.
 * @param  tls, tls_cfg  A TLS implementation for STARTTLS, or NULL.
 * @return The session's close status (0 after QUIT, else SMTPX_ERR_*), or
 *         a setup error (SMTPX_ERR_INVALID_ARGUMENT, SMTPX_ERR_NOMEM).
 */
SMTPX_EXTERN int smtpx_posix_serve(int fd, const smtpx_config *cfg,
                                   const smtpx_server_callbacks *cbs,
                                   size_t cbs_size, void *user_data,
                                   const smtpx_tls_ops *tls, void *tls_cfg);

/**
 * @brief  smtpx_posix_serve() with a choice of STARTTLS or implicit TLS.
 * @param  mode  SMTPX_LISTEN_*; SMTPX_LISTEN_IMPLICIT_TLS needs tls.
 */
SMTPX_EXTERN int smtpx_posix_serve_tls(int fd, const smtpx_config *cfg,
                                       const smtpx_server_callbacks *cbs,
                                       size_t cbs_size, void *user_data,
                                       const smtpx_tls_ops *tls, void *tls_cfg,
                                       int mode);

/**
 * @brief  Connect to a server: every address of host is tried in turn
 *         (IPv6 and IPv4, RFC 6724 order from getaddrinfo), each for at
 *         most timeout_ms.  A host that begins with "/" is the path of a
 *         local (Unix) socket, as LMTP is often spoken to a delivery
 *         agent; port is then not used.
 * @param  timeout_ms  Per address; 0 for 30 s.
 * @param  fd_out      Receives the socket (non-blocking, close-on-exec,
 *                     TCP_NODELAY: commands are written one group at a
 *                     time, so Nagle's algorithm could only add a round
 *                     trip).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (no host, a port that is not 1 to
 *         65535 or a known service name), SMTPX_ERR_RESOLVE (no address),
 *         SMTPX_ERR_CONNECT (every address refused or unreachable; errno
 *         tells the last reason), SMTPX_ERR_TIMEOUT.
 */
SMTPX_EXTERN int smtpx_posix_connect(const char *host, const char *port,
                                     int timeout_ms, int *fd_out);

/**
 * @brief  smtpx_posix_connect(), and on failure a line saying what
 *         happened in why, for a log or a reply to the application:
 *         "Connection refused by 127.0.0.1:2525", "No route to host by
 *         [2001:db8::1]:25", "Connection timed out connecting to
 *         192.0.2.1:25", "Host mx.example not found (Name or service not
 *         known)".  why may be NULL; "" on success.
 */
SMTPX_EXTERN int smtpx_posix_connect_why(const char *host, const char *port,
                                         int timeout_ms, int *fd_out, char *why,
                                         size_t why_size);

/**
 * @brief  The fully qualified name of this host, for EHLO and default
 *         addresses, as Postfix's myhostname: the system's host name if it
 *         has a dot, else the canonical name the resolver gives for it.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (buf NULL or size 0),
 *         SMTPX_ERR_NOT_SUPPORTED (no fully qualified name found, or it does
 *         not fit: use smtpx_posix_local_literal()), SMTPX_ERR_IO.
 */
SMTPX_EXTERN int smtpx_posix_hostname(char *buf, size_t size);

/**
 * @brief  The local address of a connected socket as an address literal
 *         ("[192.0.2.1]", "[IPv6:2001:db8::1]"), what RFC 5321 4.1.4 asks
 *         a client to greet with when it has no meaningful name.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (buf NULL, size 0 or too small),
 *         SMTPX_ERR_NOT_SUPPORTED (not an IP socket), SMTPX_ERR_IO.
 */
SMTPX_EXTERN int smtpx_posix_local_literal(int fd, char *buf, size_t size);

/**
 * @brief  Start connecting to one address without waiting: the socket is
 *         returned at once with the connection in progress (or made), for
 *         smtpx_loop_add_client() with an unstarted client, or for any
 *         event loop (writable means done; SO_ERROR tells how it went).
 *         No name is resolved, so nothing blocks.
 * @param  addr    A numeric IPv4 or IPv6 address ("192.0.2.1", "2001:db8::1"
 *                 or "[2001:db8::1]").
 * @param  port    A numeric port.
 * @param  source  A numeric local address to connect from (several source
 *                 addresses give more connections to one server), or
 *                 NULL for the system's choice.
 * @param  fd_out  Receives the socket (non-blocking, close-on-exec,
 *                 TCP_NODELAY).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL, or not a numeric address or
 *         port), SMTPX_ERR_CONNECT (refused at once: no route, no free
 *         local port, no descriptor...; errno tells why).
 */
SMTPX_EXTERN int smtpx_posix_connect_start(const char *addr, const char *port,
                                           const char *source, int *fd_out);

/**
 * Options of smtpx_posix_sendmail().  Set size to sizeof(smtpx_sendmail_opts)
 * and leave what you do not need zero: members may be added at the end.
 *
 * host, port          The server ("mail.example.org", "25" or "587").
 * helo                The name to greet with; NULL: this host's fully
 *                     qualified name (smtpx_posix_hostname()), else the
 *                     connection's local address as a literal (RFC 5321
 *                     4.1.4).
 * connect_timeout_ms  Per address; 0 for 30 s.
 * cbs, cbs_size, user_data  Client callbacks for the session (on_trace for
 *                     a transcript, on_log...), or NULL.
 * tls, tls_cfg        A TLS implementation (smtpx_mbedtls_ops() and a
 *                     client smtpx_mbedtls), or NULL for none.
 * tls_level           SMTPX_TLS_NONE (default), MAY, ENCRYPT or VERIFY;
 *                     above NONE it needs tls.  With ENCRYPT and VERIFY
 *                     nothing of the message or the credentials is sent
 *                     unless TLS is up: the recipients are deferred and
 *                     SMTPX_ERR_TLS_REQUIRED is returned.  With MAY a failed
 *                     handshake is retried in clear text on a new
 *                     connection.  A failed handshake is reported through
 *                     cbs->on_log with the implementation's code.
 * implicit_tls        1: TLS from the first byte (RFC 8314, port 465 by
 *                     default) instead of STARTTLS; needs a level above
 *                     NONE.
 * tls_name            The name to verify; NULL: host.
 * auth                Credentials for AUTH after EHLO (and TLS), or NULL.
 *                     If the server refuses them, nothing is sent, the
 *                     recipients are deferred with 454 4.7.0
 *                     "Authentication refused: <the server's reply>" (a
 *                     wrong password is the sender's to fix, as Postfix's
 *                     smtp_sasl_auth_soft_bounce) and SMTPX_ERR_AUTH is
 *                     returned.
 * timeout_ms          The whole delivery, every connection and retry
 *                     included, as curl's --max-time; 0: none (only the
 *                     RFC 5321 per-command timeouts of the config, which
 *                     may add up to many minutes).  When it passes, the
 *                     session is dropped (SMTPX_ERR_TIMEOUT) and the
 *                     recipients not yet answered are deferred, or UNKNOWN
 *                     if the whole message had been sent.
 */
typedef struct smtpx_sendmail_opts {
    size_t size;
    const char *host;
    const char *port;
    const char *helo;
    int connect_timeout_ms;
    const smtpx_client_callbacks *cbs;
    size_t cbs_size;
    void *user_data;
    const smtpx_tls_ops *tls;
    void *tls_cfg;
    int tls_level;
    int implicit_tls;
    const char *tls_name;
    const smtpx_auth_creds *auth;
    int timeout_ms;
} smtpx_sendmail_opts;

/**
 * @brief  Send one transaction, blocking: connect, read the greeting, EHLO
 *         (HELO if the server refuses it, and once more on a new
 *         connection with HELO if it hangs up on EHLO), the transaction,
 *         QUIT.  Whatever happens, the transaction is finished: each
 *         recipient has its state (accepted, deferred, failed, unknown).
 * @param  cfg  A frozen client config (timeouts, extensions, limits).
 * @return 0 when the session ended with QUIT; otherwise why it did not.
 *         The arguments are checked before any connection is made: a
 *         wrong one returns SMTPX_ERR_INVALID_ARGUMENT (NULL, opts->size 0,
 *         no host, a bad port or TLS level) or SMTPX_ERR_INVALID_STATE (a
 *         config not frozen or not a client's, a transaction already
 *         sent), says which in a line to the config's log function, and
 *         leaves the transaction as it was, to be sent again.  When no
 *         connection could be made the recipients are deferred with what
 *         happened ("451 4.4.1 Connection refused by 127.0.0.1:2525",
 *         "451 4.4.3 Host mx.example not found (...)").  Codes:
 *         SMTPX_ERR_RESOLVE, SMTPX_ERR_CONNECT, SMTPX_ERR_TIMEOUT,
 *         SMTPX_ERR_EOF, SMTPX_ERR_CLOSED (421 or a refused greeting),
 *         SMTPX_ERR_PROTO, SMTPX_ERR_IO, SMTPX_ERR_TLS, SMTPX_ERR_TLS_VERIFY,
 *         SMTPX_ERR_TLS_REQUIRED, SMTPX_ERR_AUTH, SMTPX_ERR_NOMEM, or
 *         SMTPX_ERR_INVALID_ARGUMENT.  The recipients' states say what
 *         became of the message either way.
 */
SMTPX_EXTERN int smtpx_posix_sendmail(const smtpx_config *cfg,
                                      const smtpx_sendmail_opts *opts,
                                      smtpx_txn *t);

/**
 * @brief  smtpx_posix_sendmail() for several transactions over one
 *         connection: they are pipelined (with CHUNKING the whole batch
 *         goes out without waiting for a reply, RFC 2920 and 3030), and
 *         each gets its own per-recipient result.
 * @param  txns  n transactions, none sent before.
 * @return As smtpx_posix_sendmail(); SMTPX_ERR_INVALID_ARGUMENT also for
 *         n 0 or a NULL transaction.
 */
SMTPX_EXTERN int smtpx_posix_sendmail_batch(const smtpx_config *cfg,
                                            const smtpx_sendmail_opts *opts,
                                            smtpx_txn *const *txns, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_POSIX_H */
