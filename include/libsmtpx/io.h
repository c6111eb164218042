/*
 * libsmtpx - the I/O plug-in interface.
 *
 * An smtpx_io moves bytes for a transport.  Its contract is mbedTLS's BIO
 * contract, so the same table can sit under a TLS layer unchanged: send and
 * recv return the number of bytes moved (short counts are allowed), 0 from
 * recv for an orderly EOF, SMTPX_ERR_WANT_READ or SMTPX_ERR_WANT_WRITE when
 * the call would block, or SMTPX_ERR_IO (another negative code) on failure.
 *
 * POSIX sockets are built in (<libsmtpx/posix.h>); anything else - a pipe, a
 * serial line, an in-memory pair for tests - is a table of three functions.
 */
#ifndef LIBSMTPX_IO_H
#define LIBSMTPX_IO_H

#include <libsmtpx/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef smtpx_ssize smtpx_io_send_fn(void *ctx, const uint8_t *buf, size_t len);
typedef smtpx_ssize smtpx_io_recv_fn(void *ctx, uint8_t *buf, size_t len);
typedef void smtpx_io_close_fn(void *ctx);

/**
 * ctx    Passed back to every function.
 * send   Write up to len bytes (never called with len 0).
 * recv   Read up to len bytes.
 * close  Release the underlying channel; may be NULL.  Called once, when
 *        the transport that owns the io is freed.
 */
typedef struct smtpx_io {
    void *ctx;
    smtpx_io_send_fn *send;
    smtpx_io_recv_fn *recv;
    smtpx_io_close_fn *close;
} smtpx_io;

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_IO_H */
