/*
 * client - internal interface of the client session and transactions.
 */
#ifndef SMTPX_LIB_CLIENT_H
#define SMTPX_LIB_CLIENT_H

#include <libsmtpx/client.h>

/* The status on_close reported (SMTPX_ERR_CLOSED if not ended). */
int smtpx__client_status(const smtpx_client *c);

/* Finish a transaction that never reached a server: every recipient
 * without a final state gets why (a server's refusal of the greeting or
 * EHLO: deferred for 4xx, failed for 5xx), or when why is NULL a local
 * "session closed" reply (deferred).  No-op once done. */
void smtpx__txn_fail(smtpx_txn *t, const smtpx_reply *why);

#endif
