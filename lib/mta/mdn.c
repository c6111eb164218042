/*
 * mdn - message disposition notifications (RFC 8098) as the inbox sends
 * them once the application has processed a message, and the message ids
 * the acknowledgements and the outbox use.
 *
 * Exports smtpx__mdn_queue() and smtpx__make_msgid() of mdn.h.
 *
 * An MDN is a multipart/report (RFC 6522) with report-type
 * disposition-notification and three parts: a text for people, the
 * message/disposition-notification fields (Reporting-UA, Original-
 * Recipient, Final-Recipient, Original-Message-ID, Disposition), and the
 * header of the original as text/rfc822-headers (left out when it holds
 * 8-bit octets, which a 7bit part may not).  It goes from the null
 * reverse-path (RFC 8098 2.1) and is marked Auto-Submitted: auto-replied
 * (RFC 3834 5).  Every value taken from the original is made printable
 * ASCII, so no field or line can be forged through it.
 */
#include <stdio.h>
#include <string.h>

#include <libsmtpx/msg.h>

#include "base/crypto.h"
#include "mta/dsn.h"
#include "proto/cmd.h"
#include "mta/mdn.h"

long smtpx__make_msgid(char *out, size_t size, const char *domain)
{
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    uint8_t r[16];
    uint32_t acc = 0;
    size_t i, k = 0;
    int bits = 0, n;

    if (smtpx__random_system(r, sizeof(r), NULL) != 0)
        return SMTPX_ERR_INTERNAL;
    if (size < 28)
        return SMTPX_ERR_INVALID_ARGUMENT;
    for (i = 0; i < sizeof(r); i++) {
        acc = acc << 8 | r[i];
        bits += 8;
        while (bits >= 5) {
            out[k++] = b32[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[k++] = b32[(acc << (5 - bits)) & 31];
    n = snprintf(out + k, size - k, "%s%s", domain ? "@" : "",
                 domain ? domain : "");
    if (n < 0 || (size_t)n >= size - k)
        return SMTPX_ERR_INVALID_ARGUMENT;
    return (long)(k + (size_t)n);
}

/* mdn_ascii - 1 if [p, p + n) has no 8-bit octet */
static int mdn_ascii(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80)
            return 0;
    return 1;
}

/* mdn_head - the message header */
static void mdn_head(smtpx__qw *w, const smtpx__mdn *m, const char *boundary)
{
    char date[40], t1[600], t2[300], id[300];

    if (smtpx_format_date(m->now, 0, date, sizeof(date)) < 0)
        snprintf(date, sizeof(date), "Thu, 01 Jan 1970 00:00:00 +0000");
    smtpx__qw_put(w, "From: <%s>\r\n", smtpx__qw_text(t1, sizeof(t1), m->from));
    smtpx__qw_put(w, "To: <%s>\r\n", smtpx__qw_text(t1, sizeof(t1), m->to));
    if (m->subject != NULL && strlen(m->subject) < 200)
        smtpx__qw_put(w, "Subject: Processed: %s\r\n",
                      smtpx__qw_text(t1, sizeof(t1), m->subject));
    else
        smtpx__qw_put(w, "Subject: Message disposition notification\r\n");
    smtpx__qw_put(w, "Date: %s\r\n", date);
    if (smtpx__make_msgid(id, sizeof(id), m->hostname) > 0)
        smtpx__qw_put(w, "Message-ID: <%s>\r\n", id);
    if (m->orig_msgid != NULL) {
        smtpx__qw_text(t2, sizeof(t2), m->orig_msgid);
        smtpx__qw_put(w, "In-Reply-To: <%s>\r\nReferences: <%s>\r\n", t2, t2);
    }
    smtpx__qw_put(w, "Auto-Submitted: auto-replied\r\n"
                     "MIME-Version: 1.0\r\n");
    smtpx__qw_put(w,
                  "Content-Type: multipart/report;\r\n"
                  "\treport-type=disposition-notification;\r\n"
                  "\tboundary=\"%s\"\r\n\r\n"
                  "This is a MIME-encapsulated message.\r\n\r\n",
                  boundary);
}

/* mdn_fields - the message/disposition-notification part (RFC 8098 3.1) */
static void mdn_fields(smtpx__qw *w, const smtpx__mdn *m)
{
    char t1[600];

    smtpx__qw_put(w, "Reporting-UA: %s; libsmtpx\r\n",
                  smtpx__qw_text(t1, sizeof(t1), m->hostname));
    smtpx__qw_orcpt(w, m->orcpt);
    smtpx__qw_put(w, "Final-Recipient: rfc822; %s\r\n",
                  smtpx__qw_text(t1, sizeof(t1), m->rcpt));
    if (m->orig_msgid != NULL)
        smtpx__qw_put(w, "Original-Message-ID: <%s>\r\n",
                      smtpx__qw_text(t1, sizeof(t1), m->orig_msgid));
    smtpx__qw_put(w, "Disposition: automatic-action/MDN-sent-automatically;"
                     " processed\r\n");
}

int smtpx__mdn_queue(smtpx_queue *q, const smtpx__mdn *m, char *id,
                     size_t id_size)
{
    smtpx_queue_env env;
    smtpx__qw w = {NULL, 0};
    char boundary[80], t1[600], t2[600], t3[300];
    int rc;

    memset(&env, 0, sizeof(env));
    env.size = sizeof(env);
    env.from = "";
    rc = smtpx_queue_begin(q, &env, &w.qm);
    if (rc != 0)
        return rc;
    rc = smtpx_queue_add_rcpt(w.qm, m->to, 0, NULL);
    if (rc != 0) {
        smtpx_queue_abort(w.qm);
        return rc;
    }
    /* "=_" cannot appear in quoted-printable or base64 (RFC 2045 6.7). */
    memcpy(boundary, "=_", 3);
    if (smtpx__make_msgid(boundary + 2, sizeof(boundary) - 2, NULL) < 0)
        snprintf(boundary, sizeof(boundary), "=_mdn_%lld", (long long)m->now);
    mdn_head(&w, m, boundary);
    smtpx__qw_put(&w,
                  "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
                  "The message <%s>\r\nto <%s> was processed at %s.\r\n"
                  "This acknowledgement was sent automatically.\r\n\r\n",
                  boundary,
                  m->orig_msgid ? smtpx__qw_text(t1, sizeof(t1), m->orig_msgid)
                                : "",
                  smtpx__qw_text(t2, sizeof(t2), m->rcpt),
                  smtpx__qw_text(t3, sizeof(t3), m->hostname));
    smtpx__qw_put(&w,
                  "--%s\r\nContent-Type: message/disposition-notification"
                  "\r\n\r\n",
                  boundary);
    mdn_fields(&w, m);
    if (m->headers != NULL && mdn_ascii(m->headers, m->headers_len)) {
        smtpx__qw_put(&w,
                      "\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n",
                      boundary);
        smtpx__qw_write(&w, m->headers, m->headers_len);
    }
    smtpx__qw_put(&w, "\r\n--%s--\r\n", boundary);
    if (w.err != 0) {
        smtpx_queue_abort(w.qm);
        return w.err;
    }
    return smtpx_queue_commit(w.qm, id, id_size);
}
