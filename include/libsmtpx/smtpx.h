/*
 * libsmtpx - umbrella header.
 *
 * Includes every public header except the opt-in ones that pull in system
 * or third-party headers: <libsmtpx/posix.h> (sockets and drivers) and
 * <libsmtpx/tls_mbedtls.h> (the mbedTLS adapter).
 */
#ifndef LIBSMTPX_SMTPX_H
#define LIBSMTPX_SMTPX_H

#include <libsmtpx/version.h>
#include <libsmtpx/common.h>
#include <libsmtpx/auth.h>
#include <libsmtpx/conf.h>
#include <libsmtpx/io.h>
#include <libsmtpx/tls.h>
#include <libsmtpx/server.h>
#include <libsmtpx/client.h>
#include <libsmtpx/transport.h>
#include <libsmtpx/msg.h>
#include <libsmtpx/mta.h>

#endif /* LIBSMTPX_SMTPX_H */
