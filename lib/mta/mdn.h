/*
 * mdn - the acknowledgement the inbox sends: an RFC 8098 message
 * disposition notification, committed to a queue; and the Message-IDs
 * the outbox and the acknowledgements are given.
 */
#ifndef SMTPX_LIB_MDN_H
#define SMTPX_LIB_MDN_H

#include <stdint.h>

#include <libsmtpx/mta.h>

/* What an MDN says, and to whom.  Strings are the caller's. */
typedef struct smtpx__mdn {
    const char *to;         /* envelope recipient and To: (required) */
    const char *from;       /* From: (required) */
    const char *hostname;   /* Reporting-UA, the domain of its id */
    const char *orig_msgid; /* Original-Message-ID, no brackets; or NULL */
    const char *rcpt;       /* Final-Recipient (required) */
    const char *orcpt;      /* ORCPT as received ("rfc822;a+2Bb@c"), NULL */
    const char *subject;    /* the original's Subject, or NULL */
    const char *headers;    /* the original's header, returned; or NULL */
    size_t headers_len;
    int64_t now; /* Unix time of the notification */
} smtpx__mdn;

/*
 * smtpx__mdn_queue - commit (durably) an MDN with the disposition
 * "automatic-action/MDN-sent-automatically; processed" to q, from the
 * null reverse-path (RFC 8098 2.1: nobody answers an MDN).  Its queue id
 * goes to id (32 octets) when not NULL.  0, or the queue's error.
 */
int smtpx__mdn_queue(smtpx_queue *q, const smtpx__mdn *m, char *id,
                     size_t id_size);

/*
 * smtpx__make_msgid - a new message id without brackets: 26 characters of
 * base32 from 128 random bits (the system's), '@', and domain (NULL:
 * the random part alone, for a boundary).  Returns
 * its length, or a negative SMTPX_ERR_* code (the random source failed,
 * or it does not fit in size).
 */
long smtpx__make_msgid(char *out, size_t size, const char *domain);

#endif
