/*
 * libsmtpx - the mbedTLS adapter (opt-in header).
 *
 * An smtpx_tls_ops implementation over mbedTLS (2.28 as in Debian 12: TLS
 * 1.2; TLS 1.3 where the mbedTLS build has it).  An smtpx_mbedtls object is
 * one TLS configuration: certificates, trusted CAs, a random generator.
 * Set it up, then share it, read-only, between any number of connections
 * and threads (mbedTLS is built with MBEDTLS_THREADING_C in Debian).  The
 * first open completes and freezes it: set-up calls then fail with
 * SMTPX_ERR_INVALID_STATE.  With MBEDTLS_THREADING_C a mutex in the object
 * guards that moment, so first opens may race in several threads; without
 * it, open once before sharing.  Make configurations after fork(): the
 * random generator is not reseeded in a child.  Pass smtpx_mbedtls_ops()
 * and the object to smtpx_transport_set_tls(), smtpx_loop_listen() or
 * smtpx_posix_sendmail().
 *
 * Memory that mbedTLS allocates for a connection (about 40 KiB with the
 * default record buffers) does not go through smtpx_mem: Debian's mbedTLS
 * is built without MBEDTLS_PLATFORM_MEMORY.
 */
#ifndef LIBSMTPX_TLS_MBEDTLS_H
#define LIBSMTPX_TLS_MBEDTLS_H

#include <libsmtpx/common.h>
#include <libsmtpx/tls.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smtpx_mbedtls smtpx_mbedtls;

/**
 * @brief  Make a TLS configuration.
 * @param  server  1 for the server side (it needs a certificate), 0 for the
 *                 client side.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (out NULL, or server neither 0
 *         nor 1), SMTPX_ERR_NOMEM, SMTPX_ERR_TLS (the random generator
 *         could not be seeded).
 */
SMTPX_EXTERN int smtpx_mbedtls_new(smtpx_mbedtls **out, int server);

/** @brief Free a configuration (NULL-safe); no connection may use it. */
SMTPX_EXTERN void smtpx_mbedtls_free(smtpx_mbedtls *m);

/**
 * @brief  The operations table for smtpx_transport_set_tls() and the
 *         drivers (static; never NULL).  open wants SMTPX_TLS_OPEN_SERVER
 *         exactly for a server configuration; SMTPX_TLS_OPEN_VERIFY (client
 *         only) makes a failed chain or name check fail the handshake with
 *         SMTPX_ERR_TLS_VERIFY, and without it the result only shows in
 *         smtpx_tls_info.verified.  Unknown flags and names longer than 253
 *         octets are SMTPX_ERR_INVALID_ARGUMENT; a server configuration
 *         without a certificate is SMTPX_ERR_INVALID_STATE.  After send
 *         returned WANT_*, call it again with at least the same octets (as
 *         an output queue does): mbedTLS has sealed them in a record.
 *         last_error gives mbedTLS's code (negative) or, after
 *         SMTPX_ERR_TLS_VERIFY, the X.509 flags (positive).
 */
SMTPX_EXTERN const smtpx_tls_ops *smtpx_mbedtls_ops(void);

/**
 * @brief  Add a certificate chain and its private key from PEM or DER
 *         files.  A server presents it (several may be added: see
 *         smtpx_mbedtls_set_sni()); a client presents the first one when
 *         the server asks for a client certificate.
 * @param  key_password  Password of an encrypted key (traditional PEM
 *                       encryption or PKCS#8 as mbedTLS reads them), or
 *                       NULL.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (m or a file name NULL), SMTPX_ERR_TLS
 *         (a file could not be read or parsed, or the key does not match
 *         the certificate: smtpx_mbedtls_last_error() has mbedTLS's
 *         code), SMTPX_ERR_LIMIT (more than 16 certificates),
 *         SMTPX_ERR_INVALID_STATE (the configuration is in use),
 *         SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_mbedtls_add_cert_file(smtpx_mbedtls *m,
                                             const char *cert_file,
                                             const char *key_file,
                                             const char *key_password);

/** @brief The same from memory: PEM (the NUL mbedTLS wants counted in the
 *         length may be left out: it is added to a copy) or DER.  Parsed
 *         into the configuration: the buffers may be freed at once.
 *         SMTPX_ERR_INVALID_ARGUMENT also for a NULL buffer or a length
 *         of 0. */
SMTPX_EXTERN int smtpx_mbedtls_add_cert_mem(smtpx_mbedtls *m,
                                            const uint8_t *cert,
                                            size_t cert_len, const uint8_t *key,
                                            size_t key_len,
                                            const char *key_password);

/**
 * A server's SNI callback: name is the host name the client asked for
 * (RFC 6066), NUL-terminated; return the index (0-based, in the order
 * added) of the certificate to present, or -1 to refuse the handshake (an
 * index past the last certificate refuses it too).  Called during the
 * handshake, in whichever thread runs it.  Names longer than 253 octets or
 * with a NUL are refused before it is called.
 */
typedef int smtpx_mbedtls_sni_fn(const char *name, void *sni_user_data);

/**
 * @brief  Choose the certificate by the name the client asks for.  Without
 *         a callback (fn NULL, the default) the certificates whose DNS
 *         subject alternative names (or common name, when they have none)
 *         match the name are offered in the order added, and mbedTLS
 *         presents the first whose key suits the cipher suite; when none
 *         matches, or the client asks for no name, the first one added.
 *         Case does not matter; "*.example.org" matches one whole label.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (not a server configuration),
 *         SMTPX_ERR_INVALID_STATE (in use).
 */
SMTPX_EXTERN int smtpx_mbedtls_set_sni(smtpx_mbedtls *m,
                                       smtpx_mbedtls_sni_fn *fn,
                                       void *sni_user_data);

/**
 * @brief  Trust the CA certificates in a PEM or DER file (or every file of
 *         a directory), or the system's store when path is NULL
 *         (/etc/ssl/certs/ca-certificates.crt).  A client configuration
 *         given no CA loads the system's store at its first open, whether
 *         that one verifies or not (so verified means something for
 *         opportunistic TLS too); a server never does.  May be called
 *         more than once: the sets add up.  A file some of whose
 *         certificates cannot be parsed is accepted if one was added.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (m NULL), SMTPX_ERR_TLS (nothing
 *         could be added: smtpx_mbedtls_last_error() has mbedTLS's code),
 *         SMTPX_ERR_INVALID_STATE (in use), SMTPX_ERR_NOMEM.
 */
SMTPX_EXTERN int smtpx_mbedtls_add_ca_file(smtpx_mbedtls *m, const char *path);

/** @brief Trust CA certificates from memory (PEM, its NUL counted or not,
 *         or DER); returns as smtpx_mbedtls_add_ca_file(), and
 *         SMTPX_ERR_INVALID_ARGUMENT for a NULL or empty buffer. */
SMTPX_EXTERN int smtpx_mbedtls_add_ca_mem(smtpx_mbedtls *m, const uint8_t *pem,
                                          size_t len);

/**
 * @brief  Server: ask clients for a certificate and verify it against the
 *         trusted CAs (mode 1: optional, the result shows in
 *         smtpx_tls_info.verified; mode 2: required).  Default 0: not
 *         asked.  The trusted CAs are those added, never the system's.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (not a server configuration, or
 *         mode not 0, 1 or 2), SMTPX_ERR_INVALID_STATE.
 */
SMTPX_EXTERN int smtpx_mbedtls_set_client_cert(smtpx_mbedtls *m, int mode);

/**
 * @brief  Session resumption (RFC 5246 7.3): a resumed handshake skips the
 *         key exchange and the certificate, most of a handshake's CPU on
 *         both sides.  On by default, for 3600 s (Postfix's
 *         smtpd_tls_session_cache_timeout) and 256 destinations.
 *
 *         Server: sessions are sealed into session tickets (RFC 5077) with
 *         keys that stay in the process and are replaced every lifetime_s
 *         seconds; a ticket is honoured until its session is lifetime_s
 *         old.  max_sessions is ignored.
 *
 *         Client: the last session with each destination (the name given
 *         to open; none for a connection without one) is kept for
 *         lifetime_s and offered to the next connection there, for up to
 *         max_sessions destinations (the least recently used goes).  A
 *         session made by a verifying connection is offered only to
 *         verifying ones with the same name, and one made without
 *         verification only to those without: a resumed handshake does not
 *         check the certificate again.  Only verified sessions are kept
 *         for verifying connections.  A session that fails to resume is
 *         forgotten.
 *
 *         smtpx_tls_info.resumed tells whether a handshake resumed.
 * @param  lifetime_s    0 turns resumption off.
 * @param  max_sessions  Client: 0 turns resumption off.
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (m NULL), SMTPX_ERR_INVALID_STATE
 *         (in use).
 */
SMTPX_EXTERN int smtpx_mbedtls_set_resumption(smtpx_mbedtls *m,
                                              uint32_t lifetime_s,
                                              size_t max_sessions);

/**
 * @brief  mbedTLS's code for the last failure of a set-up call (a negative
 *         MBEDTLS_ERR_* value), 0 if none.  Connections report theirs
 *         through smtpx_transport_last_error(): the mbedTLS code, or for a
 *         verification failure the X.509 flags (MBEDTLS_X509_BADCERT_*).
 */
SMTPX_EXTERN int smtpx_mbedtls_last_error(const smtpx_mbedtls *m);

/**
 * @brief  Describe an mbedTLS code or, for verification failures, X.509
 *         flags (the reasons joined by "; "), in words; an SMTPX_ERR_*
 *         code as smtpx_strerror() does.  Cut to fit size, NUL-terminated.
 * @param  code  As smtpx_transport_last_error() returns it.
 * @return buf.
 */
SMTPX_EXTERN const char *smtpx_mbedtls_strerror(int code, char *buf,
                                                size_t size);

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_TLS_MBEDTLS_H */
