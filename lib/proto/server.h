/*
 * server - internal interface of the server session, for tests.
 */
#ifndef SMTPX_LIB_SERVER_H
#define SMTPX_LIB_SERVER_H

#include <libsmtpx/server.h>

/* The session's state name, for traces and tests. */
const char *smtpx__server_state_name(const smtpx_server *s);

/* Input octets the session holds (paused or held by back-pressure). */
size_t smtpx__server_held(const smtpx_server *s);

#endif
