/*
 * dsn - delivery status notifications: the report builder (RFC 3464
 * multipart/report, RFC 3462) that queues a bounce, a delay warning or a
 * success report about a queued message, and a report parser.
 *
 * Exports smtpx__dsn_queue() and smtpx__dsn_parse() of dsn.h.
 *
 * A report is a message of its own, from the null reverse-path (RFC 5321
 * 4.5.5: nobody answers a bounce with a bounce), to the sender of the
 * message it is about; a report about a message that itself had the null
 * sender goes to the postmaster, or nowhere.  Its parts: a text for people,
 * message/delivery-status with one block per recipient (Final-Recipient,
 * Original-Recipient from ORCPT, Action, Status, Remote-MTA,
 * Diagnostic-Code), then the original headers (text/rfc822-headers) - or
 * the whole message (message/rfc822) when the sender asked for RET=FULL
 * and it is no larger than full_max.
 *
 * The parser takes hostile input: every field is bounded, folding is
 * undone within the bound, and it reads nothing past len.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/mem.h"
#include "proto/cmd.h"
#include "mta/dsn.h"

/* Header bytes of the original copied at most when only headers go. */
#define DSN_HEADERS_MAX 65536

/* ---- the builder --------------------------------------------------------- */

void smtpx__qw_put(smtpx__qw *w, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    int n;

    if (w->err != 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(line))
        n = (int)sizeof(line) - 1;
    w->err = smtpx_queue_write(w->qm, line, (size_t)n);
}

void smtpx__qw_write(smtpx__qw *w, const void *data, size_t len)
{
    if (w->err == 0)
        w->err = smtpx_queue_write(w->qm, data, len);
}

const char *smtpx__qw_text(char *out, size_t size, const char *in)
{
    size_t i, n = 0;

    for (i = 0; in != NULL && in[i] != '\0' && n + 1 < size; i++) {
        unsigned char c = (unsigned char)in[i];
        out[n++] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
    }
    out[n] = '\0';
    return out;
}

void smtpx__qw_orcpt(smtpx__qw *w, const char *orcpt)
{
    char addr[600], text[600];
    const char *semi = orcpt != NULL ? strchr(orcpt, ';') : NULL;

    if (semi != NULL && smtpx__cmd_xtext_decode(semi + 1, strlen(semi + 1),
                                                addr, sizeof(addr)) >= 0)
        smtpx__qw_put(w, "Original-Recipient: %.*s; %s\r\n",
                      (int)(semi - orcpt), orcpt,
                      smtpx__qw_text(text, sizeof(text), addr));
}

static int dsn_has8(const char *p, size_t n)
{
    size_t i;

    for (i = 0; p != NULL && i < n; i++)
        if (p[i] & 0x80)
            return 1;
    return 0;
}

/* dsn_copy - copy the original: the headers only (up to and with the
 * empty line, at most DSN_HEADERS_MAX) or all of it.  With w->qm NULL
 * nothing is written and fd does not move (pread from where it is): a
 * look at what would be copied.  Returns 1 if that has 8-bit octets. */
static int dsn_copy(smtpx__qw *w, int fd, uint64_t size, int headers_only)
{
    char buf[8192];
    uint64_t done = 0;
    int last_nl = 1, stop = 0, eight = 0;
    off_t base = w->qm == NULL ? lseek(fd, 0, SEEK_CUR) : 0;

    if (base < 0)
        w->err = SMTPX_ERR_IO;
    while (w->err == 0 && done < size && !stop) {
        size_t want = sizeof(buf), i, keep;
        ssize_t r;

        if (want > size - done)
            want = (size_t)(size - done);
        r = w->qm == NULL ? pread(fd, buf, want, base + (off_t)done)
                          : read(fd, buf, want);
        if (r < 0) {
            w->err = SMTPX_ERR_IO;
            return eight;
        }
        if (r == 0)
            break;
        keep = (size_t)r;
        if (headers_only) {
            for (i = 0; i < (size_t)r; i++) {
                if (buf[i] == '\n') {
                    if (last_nl) {
                        keep = i + 1;
                        stop = 1;
                        break;
                    }
                    last_nl = 1;
                } else if (buf[i] != '\r') {
                    last_nl = 0;
                }
            }
            if (done + keep >= DSN_HEADERS_MAX) {
                keep = (size_t)(DSN_HEADERS_MAX - done);
                stop = 1;
                last_nl = 0;
            }
        }
        for (i = 0; i < keep && !eight; i++)
            eight = (buf[i] & 0x80) != 0;
        if (w->qm != NULL)
            smtpx__qw_write(w, buf, keep);
        done += keep;
    }
    if (!last_nl && w->qm != NULL)
        smtpx__qw_put(w, "\r\n");
    return eight;
}

static const char *dsn_action(int kind, int relayed)
{
    switch (kind) {
    case SMTPX__DSN_FAILED:
        return "failed";
    case SMTPX__DSN_DELAYED:
        return "delayed";
    default:
        return relayed ? "relayed" : "delivered";
    }
}

/* dsn_human - part 1, for people: what happened to each recipient */
static void dsn_human(smtpx__qw *w, const smtpx__qmsg *m, int kind,
                      const size_t *idx, const int *relayed, size_t n,
                      const char *hostname)
{
    char t1[600], t2[600], t3[300];
    size_t i;

    smtpx__qw_put(w, "This is the mail system at host %s.\r\n\r\n", hostname);
    if (kind == SMTPX__DSN_FAILED)
        smtpx__qw_put(w,
                      "I'm sorry to have to inform you that your message could "
                      "not\r\nbe delivered to one or more recipients. It's "
                      "attached below.\r\n\r\n");
    else if (kind == SMTPX__DSN_DELAYED)
        smtpx__qw_put(w,
                      "Your message could not be delivered yet to one or more "
                      "recipients.\r\nIt will be tried again; you need not "
                      "send it again.\r\n\r\n");
    else
        smtpx__qw_put(w, "Your message was successfully delivered to the "
                         "destination(s)\r\nlisted below.\r\n\r\n");
    for (i = 0; i < n; i++) {
        const smtpx__qrcpt *r = &m->rcpts[idx[i]];
        if (r->code != 0)
            smtpx__qw_put(w, "<%s>: %s%s%s%d %s\r\n",
                          smtpx__qw_text(t1, sizeof(t1), r->addr),
                          r->remote ? "host " : "",
                          r->remote ? smtpx__qw_text(t3, sizeof(t3), r->remote)
                                    : "",
                          r->remote ? " said: " : "", r->code,
                          smtpx__qw_text(t2, sizeof(t2), r->text));
        else
            smtpx__qw_put(w, "<%s>: %s\r\n",
                          smtpx__qw_text(t1, sizeof(t1), r->addr),
                          dsn_action(kind, relayed ? relayed[i] : 0));
    }
}

/* dsn_rcpt_fields - a recipient's fields of part 2 (RFC 3464 2.3) */
static void dsn_rcpt_fields(smtpx__qw *w, const smtpx__qrcpt *r, int kind,
                            int rel, int64_t retry_until)
{
    char t1[600], t2[600], t3[300];
    unsigned e0 = r->enh[0], e1 = r->enh[1], e2 = r->enh[2];

    if (e0 == 0) { /* a status is required (RFC 3464 2.3.4) */
        e0 = kind == SMTPX__DSN_FAILED ? 5 : kind == SMTPX__DSN_DELAYED ? 4 : 2;
        e1 = 0;
        e2 = 0;
    }
    if (kind == SMTPX__DSN_DELIVERED)
        e0 = 2;
    smtpx__qw_put(w, "\r\nFinal-Recipient: rfc822; %s\r\n",
                  smtpx__qw_text(t1, sizeof(t1), r->addr));
    smtpx__qw_orcpt(w, r->orcpt);
    smtpx__qw_put(w, "Action: %s\r\n", dsn_action(kind, rel));
    smtpx__qw_put(w, "Status: %u.%u.%u\r\n", e0, e1, e2);
    if (r->remote != NULL)
        smtpx__qw_put(w, "Remote-MTA: dns; %s\r\n",
                      smtpx__qw_text(t1, sizeof(t1), r->remote));
    if (r->code != 0)
        smtpx__qw_put(w, "Diagnostic-Code: smtp; %d %s\r\n", r->code,
                      smtpx__qw_text(t2, sizeof(t2), r->text));
    if (kind == SMTPX__DSN_DELAYED && retry_until > 0 &&
        smtpx_format_date(retry_until, 0, t3, sizeof(t3)) > 0)
        smtpx__qw_put(w, "Will-Retry-Until: %s\r\n", t3);
}

/* dsn_status - part 2, for programs (RFC 3464 2) */
static void dsn_status(smtpx__qw *w, const smtpx__qmsg *m, int kind,
                       const size_t *idx, const int *relayed, size_t n,
                       const smtpx__dsn_opts *o, const char *arrival)
{
    char t1[600], t2[600];
    size_t i;

    smtpx__qw_put(w, "Reporting-MTA: dns; %s\r\n", o->hostname);
    if (m->envid != NULL && smtpx__cmd_xtext_decode(m->envid, strlen(m->envid),
                                                    t1, sizeof(t1)) >= 0)
        smtpx__qw_put(w, "Original-Envelope-Id: %s\r\n",
                      smtpx__qw_text(t2, sizeof(t2), t1));
    smtpx__qw_put(w, "Arrival-Date: %s\r\n", arrival);
    for (i = 0; i < n; i++)
        dsn_rcpt_fields(w, &m->rcpts[idx[i]], kind, relayed ? relayed[i] : 0,
                        o->retry_until);
}

/* dsn_begin - a message from <> to the sender (or the postmaster, for a
 * report about a report; NULL: none is made, *w->qm stays NULL) */
static int dsn_begin(smtpx_queue *q, const smtpx__qmsg *m,
                     const smtpx__dsn_opts *o, int body, smtpx__qw *w,
                     const char **to)
{
    smtpx_queue_env env;
    int rc;

    *to = m->from;
    if ((*to)[0] == '\0') {
        /* A report about a report: never to the null sender. */
        if (o->postmaster == NULL)
            return 0;
        *to = o->postmaster;
    }
    memset(&env, 0, sizeof(env));
    env.size = sizeof(env);
    env.from = "";
    env.body = body;
    rc = smtpx_queue_begin(q, &env, &w->qm);
    if (rc == 0 && (rc = smtpx_queue_add_rcpt(w->qm, *to, 0, NULL)) != 0) {
        smtpx_queue_abort(w->qm);
        w->qm = NULL;
    }
    return rc;
}

int smtpx__dsn_queue(smtpx_queue *q, const smtpx__qmsg *m, int kind,
                     const size_t *idx, const int *relayed, size_t n,
                     int content, const smtpx__dsn_opts *o, char *id,
                     size_t id_size)
{
    smtpx__qw w = {NULL, 0};
    char date[40], arrival[40], boundary[96], t1[600];
    smtpx__qw look = {NULL, 0};
    const char *to;
    int full, rc, body = SMTPX_BODY_NONE;

    if (id != NULL && id_size > 0)
        id[0] = '\0';
    full = kind == SMTPX__DSN_FAILED && m->ret == SMTPX_DSN_RET_FULL &&
           m->size <= o->full_max;
    /* What is copied of the original decides the report's body type
     * (RFC 6152, RFC 3030): 8-bit octets in it make it 8BITMIME, a whole
     * binary message BINARYMIME. */
    if (full && m->body == SMTPX_BODY_BINARYMIME)
        body = SMTPX_BODY_BINARYMIME;
    else if (content >= 0 ? dsn_copy(&look, content, m->size, !full)
                          : dsn_has8(o->headers, o->headers_len))
        body = SMTPX_BODY_8BITMIME;
    if ((rc = dsn_begin(q, m, o, body, &w, &to)) != 0 || w.qm == NULL)
        return rc;
    if (smtpx_format_date(o->now, 0, date, sizeof(date)) < 0)
        snprintf(date, sizeof(date), "Thu, 01 Jan 1970 00:00:00 +0000");
    if (smtpx_format_date(m->arrival, 0, arrival, sizeof(arrival)) < 0)
        snprintf(arrival, sizeof(arrival), "%s", date);
    snprintf(boundary, sizeof(boundary), "%s.%lld/%s", m->id, (long long)o->now,
             o->hostname);

    smtpx__qw_put(&w, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
                  o->hostname);
    smtpx__qw_put(&w, "To: <%s>\r\n", smtpx__qw_text(t1, sizeof(t1), to));
    smtpx__qw_put(
        &w, "Subject: %s\r\n",
        kind == SMTPX__DSN_FAILED    ? "Undelivered Mail Returned to Sender"
        : kind == SMTPX__DSN_DELAYED ? "Delayed Mail (still being retried)"
                                     : "Successful Mail Delivery Report");
    smtpx__qw_put(&w, "Date: %s\r\n", date);
    smtpx__qw_put(&w, "Message-ID: <%s.%lld.%d@%s>\r\n", m->id,
                  (long long)o->now, kind, o->hostname);
    smtpx__qw_put(&w, "Auto-Submitted: auto-replied\r\n");
    smtpx__qw_put(&w, "MIME-Version: 1.0\r\n");
    smtpx__qw_put(
        &w,
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        "\tboundary=\"%s\"\r\n",
        boundary);
    smtpx__qw_put(&w, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

    smtpx__qw_put(&w,
                  "--%s\r\nContent-Description: Notification\r\n"
                  "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
                  boundary);
    dsn_human(&w, m, kind, idx, relayed, n, o->hostname);
    smtpx__qw_put(&w,
                  "\r\n--%s\r\nContent-Description: Delivery report\r\n"
                  "Content-Type: message/delivery-status\r\n\r\n",
                  boundary);
    dsn_status(&w, m, kind, idx, relayed, n, o, arrival);

    /* 3. The message, or its headers. */
    smtpx__qw_put(&w,
                  "\r\n--%s\r\nContent-Description: %s\r\n"
                  "Content-Type: %s\r\n\r\n",
                  boundary, full ? "Undelivered Message" : "Message Headers",
                  full ? "message/rfc822" : "text/rfc822-headers");
    if (w.err == 0 && content >= 0)
        dsn_copy(&w, content, m->size, !full);
    else if (o->headers != NULL)
        smtpx__qw_write(&w, o->headers, o->headers_len);
    smtpx__qw_put(&w, "\r\n--%s--\r\n", boundary);
    if (w.err != 0) {
        smtpx_queue_abort(w.qm);
        return w.err;
    }
    return smtpx_queue_commit(w.qm, id, id_size);
}

/* ---- the parser ---------------------------------------------------------- */

typedef struct dsn_reader {
    const char *p, *end;
} dsn_reader;

/* dsn_getline - the next line without its CRLF or LF; 0 or -1 at the end */
static int dsn_getline(dsn_reader *r, const char **line, size_t *len)
{
    const char *nl;

    if (r->p >= r->end)
        return -1;
    nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
    *line = r->p;
    if (nl == NULL) {
        *len = (size_t)(r->end - r->p);
        r->p = r->end;
    } else {
        *len = (size_t)(nl - r->p);
        r->p = nl + 1;
    }
    if (*len > 0 && (*line)[*len - 1] == '\r')
        (*len)--;
    return 0;
}

/* dsn_field - read one (unfolded) header field into name/value; 1 for a
 * field, 0 at the empty line (or the end), -1 for a malformed line */
static int dsn_field(dsn_reader *r, char *name, size_t nsize, char *value,
                     size_t vsize)
{
    const char *line, *colon;
    size_t len, n, vn;

    if (dsn_getline(r, &line, &len) < 0 || len == 0)
        return 0;
    colon = memchr(line, ':', len);
    if (colon == NULL || colon == line || line[0] == ' ' || line[0] == '\t')
        return -1;
    n = (size_t)(colon - line);
    if (n >= nsize)
        n = nsize - 1;
    memcpy(name, line, n);
    name[n] = '\0';
    vn = 0;
    line = colon + 1;
    len = (size_t)(r->p - line);
    /* value: the rest of this line and any continuation lines */
    for (;;) {
        size_t i, l = 0;
        const char *e = memchr(line, '\n', len);
        l = e ? (size_t)(e - line) : len;
        if (l > 0 && line[l - 1] == '\r')
            l--;
        for (i = 0; i < l && vn + 1 < vsize; i++)
            value[vn++] = line[i];
        if (r->p >= r->end || (*r->p != ' ' && *r->p != '\t'))
            break;
        /* Unfolding removes the line break only (RFC 5322 2.2.3). */
        if (dsn_getline(r, &line, &len) < 0)
            break;
        len = (size_t)(r->p - line);
    }
    value[vn] = '\0';
    /* trim */
    {
        char *s = value, *t;
        while (*s == ' ' || *s == '\t')
            s++;
        memmove(value, s, strlen(s) + 1);
        t = value + strlen(value);
        while (t > value && (t[-1] == ' ' || t[-1] == '\t'))
            *--t = '\0';
    }
    return 1;
}

/* dsn_boundary - the boundary parameter of a Content-Type value */
static int dsn_boundary(const char *ct, char *out, size_t size)
{
    const char *b = ct;
    size_t n = 0;

    for (; *b != '\0'; b++)
        if (strncasecmp(b, "boundary=", 9) == 0 &&
            (b == ct || b[-1] == ';' || b[-1] == ' ' || b[-1] == '\t'))
            break;
    if (*b == '\0')
        return -1;
    b += 9;
    if (*b == '"') {
        b++;
        while (*b != '\0' && *b != '"' && n + 1 < size)
            out[n++] = *b++;
    } else {
        while (*b != '\0' && *b != ';' && *b != ' ' && n + 1 < size)
            out[n++] = *b++;
    }
    out[n] = '\0';
    return n > 0 ? 0 : -1;
}

static void dsn_set(char *dst, size_t size, const char *v)
{
    size_t n = strlen(v);

    if (n >= size)
        n = size - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

int smtpx__dsn_parse(const char *msg, size_t len, smtpx__dsn_report *out)
{
    dsn_reader r = {msg, msg + len};
    char name[64], value[1024], boundary[256], ct[1024];
    const char *line;
    size_t llen, blen;
    int f, in_status = 0;

    memset(out, 0, sizeof(*out));
    ct[0] = '\0';
    /* The message header: its Content-Type. */
    while ((f = dsn_field(&r, name, sizeof(name), value, sizeof(value))) > 0)
        if (strcasecmp(name, "Content-Type") == 0)
            dsn_set(ct, sizeof(ct), value);
    if (f < 0 || strncasecmp(ct, "multipart/report", 16) != 0 ||
        dsn_boundary(ct, boundary, sizeof(boundary)) < 0)
        return SMTPX_ERR_PROTO;
    blen = strlen(boundary);
    /* Each part: find "--boundary", read its header. */
    while (!in_status) {
        if (dsn_getline(&r, &line, &llen) < 0)
            return SMTPX_ERR_PROTO;
        if (llen < blen + 2 || line[0] != '-' || line[1] != '-' ||
            memcmp(line + 2, boundary, blen) != 0)
            continue;
        if (llen >= blen + 4 && line[blen + 2] == '-' && line[blen + 3] == '-')
            return SMTPX_ERR_PROTO; /* the end, and no status part */
        ct[0] = '\0';
        while ((f = dsn_field(&r, name, sizeof(name), value, sizeof(value))) >
               0)
            if (strcasecmp(name, "Content-Type") == 0)
                dsn_set(ct, sizeof(ct), value);
        if (f < 0)
            return SMTPX_ERR_PROTO;
        if (strncasecmp(ct, "message/delivery-status", 23) == 0 ||
            strncasecmp(ct, "message/global-delivery-status", 30) == 0)
            in_status = 1;
    }
    /* Per-message fields, then blocks of per-recipient fields. */
    while ((f = dsn_field(&r, name, sizeof(name), value, sizeof(value))) > 0) {
        if (strcasecmp(name, "Reporting-MTA") == 0)
            dsn_set(out->reporting_mta, sizeof(out->reporting_mta), value);
        else if (strcasecmp(name, "Original-Envelope-Id") == 0)
            dsn_set(out->envid, sizeof(out->envid), value);
    }
    if (f < 0 || out->reporting_mta[0] == '\0')
        return SMTPX_ERR_PROTO;
    for (;;) {
        smtpx__dsn_rcpt tmp, *rc;
        int any = 0;

        /* skip blank lines between blocks */
        while (r.p < r.end && (*r.p == '\n' || *r.p == '\r'))
            dsn_getline(&r, &line, &llen);
        if (r.p >= r.end ||
            (r.p + 2 <= r.end && r.p[0] == '-' && r.p[1] == '-'))
            break;
        rc = out->nrcpts < SMTPX__DSN_PARSE_RCPTS ? &out->rcpts[out->nrcpts]
                                                  : &tmp;
        memset(rc, 0, sizeof(*rc));
        while ((f = dsn_field(&r, name, sizeof(name), value, sizeof(value))) >
               0) {
            any = 1;
            if (strcasecmp(name, "Final-Recipient") == 0)
                dsn_set(rc->final_rcpt, sizeof(rc->final_rcpt), value);
            else if (strcasecmp(name, "Original-Recipient") == 0)
                dsn_set(rc->orig_rcpt, sizeof(rc->orig_rcpt), value);
            else if (strcasecmp(name, "Action") == 0)
                dsn_set(rc->action, sizeof(rc->action), value);
            else if (strcasecmp(name, "Status") == 0)
                dsn_set(rc->status, sizeof(rc->status), value);
            else if (strcasecmp(name, "Remote-MTA") == 0)
                dsn_set(rc->remote_mta, sizeof(rc->remote_mta), value);
            else if (strcasecmp(name, "Diagnostic-Code") == 0)
                dsn_set(rc->diagnostic, sizeof(rc->diagnostic), value);
        }
        if (f < 0)
            return SMTPX_ERR_PROTO;
        if (!any)
            break;
        if (rc->final_rcpt[0] == '\0' || rc->action[0] == '\0' ||
            rc->status[0] == '\0')
            return SMTPX_ERR_PROTO;
        out->nrcpts++;
    }
    return out->nrcpts > 0 ? 0 : SMTPX_ERR_PROTO;
}
