/*
 * mta_trace - trace headers for a received message.
 *
 * Exports smtpx_server_trace_headers() of <libsmtpx/mta.h>.  The date is
 * smtpx_format_date() of the msg layer (lib/msg/date.c).
 *
 * The trace headers are Return-Path and a Received line as RFC 5321 4.4
 * describes them (Time-stamp-line), with the protocol names of RFC 3848.
 * Everything the client chose (its HELO name, addresses) is sanitised: a
 * byte that could end the header, open or close a comment, or start a
 * quoted string or an address literal where none belongs becomes '?', so
 * no client can forge a clause or an extra header.  Lines are folded
 * between clauses to stay within 78 characters (RFC 5322 2.1.1) where the
 * clauses allow it; "for" appears only with exactly one recipient, so
 * that one recipient's copy does not reveal the others.
 */
#include <string.h>

#include <libsmtpx/mta.h>

/* RFC 5322 2.1.1: lines SHOULD be no more than 78 characters. */
#define TRACE_LINE_MAX 78
/* Length of a formatted date (smtpx_format_date()). */
#define TRACE_DATE_LEN 31

/* ---- output with folding ------------------------------------------------- */

typedef struct trace_out {
    char *buf;
    size_t size;
    size_t len;
    size_t col; /* characters on the current line */
    int full;   /* something did not fit */
} trace_out;

/* What a sanitised string may keep. */
enum {
    TRACE_RAW,    /* our own text: kept as it is */
    TRACE_ADDR,   /* a path: any printable text, UTF-8 included */
    TRACE_WORD,   /* a domain, address literal or atom */
    TRACE_COMMENT /* text inside a comment: no brackets either */
};

static int trace_keep(int cls, unsigned char c)
{
    if (cls == TRACE_RAW)
        return 1;
    if (cls == TRACE_ADDR)
        return c >= 0x20 && c != 0x7f;
    if (c <= 0x20 || c >= 0x7f)
        return 0;
    if (strchr("()<>;\\\"", c) != NULL)
        return 0;
    return cls != TRACE_COMMENT || (c != '[' && c != ']');
}

/* trace_put - append s (n bytes), each byte not kept by cls as '?' */
static void trace_put(trace_out *o, const char *s, size_t n, int cls)
{
    size_t i;

    if (o->full || n >= o->size - o->len) {
        o->full = 1;
        return;
    }
    for (i = 0; i < n; i++)
        o->buf[o->len + i] = trace_keep(cls, (unsigned char)s[i]) ? s[i] : '?';
    o->len += n;
    o->col += n;
}

/* trace_lit - append text of our own */
static void trace_lit(trace_out *o, const char *s)
{
    trace_put(o, s, strlen(s), TRACE_RAW);
}

static void trace_line(trace_out *o)
{
    trace_lit(o, "\r\n");
    o->col = 0;
}

/* trace_sep - the space before a clause of len characters, or a fold if
 * the clause would pass the line limit */
static void trace_sep(trace_out *o, size_t len)
{
    if (o->col + 1 + len > TRACE_LINE_MAX) {
        trace_line(o);
        trace_lit(o, "\t");
    } else {
        trace_lit(o, " ");
    }
}

static const char *trace_nonempty(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

/* trace_from - "from HELO (NAME [ADDR])", RFC 5321 4.4 From-domain with
 * TCP-info; the address literal of an IPv6 address has the "IPv6:" tag
 * (RFC 5321 4.1.3) */
static void trace_from(trace_out *o, const smtpx_server *s)
{
    const smtpx_peer *peer = smtpx_server_peer(s);
    const char *helo = trace_nonempty(smtpx_server_helo(s));
    const char *name = trace_nonempty(peer->name);
    const char *addr = trace_nonempty(peer->addr);
    const char *tag = addr != NULL && strchr(addr, ':') != NULL ? "IPv6:" : "";
    size_t len;

    trace_lit(o, "Received: from ");
    if (helo != NULL)
        trace_put(o, helo, strlen(helo), TRACE_WORD);
    else
        trace_lit(o, "unknown");
    if (name == NULL && addr == NULL)
        return;
    len = 2 + (name != NULL ? strlen(name) : 0) +
          (name != NULL && addr != NULL ? 1 : 0) +
          (addr != NULL ? 2 + strlen(tag) + strlen(addr) : 0);
    trace_sep(o, len);
    trace_lit(o, "(");
    if (name != NULL)
        trace_put(o, name, strlen(name), TRACE_COMMENT);
    if (name != NULL && addr != NULL)
        trace_lit(o, " ");
    if (addr != NULL) {
        trace_lit(o, "[");
        trace_lit(o, tag);
        trace_put(o, addr, strlen(addr), TRACE_COMMENT);
        trace_lit(o, "]");
    }
    trace_lit(o, ")");
}

/* trace_by - "by HOST (libsmtpx) with PROTOCOL id ID" */
static void trace_by(trace_out *o, const smtpx_server *s, const char *id)
{
    const char *host = trace_nonempty(smtpx_server_hostname(s));
    const char *proto = smtpx_server_protocol(s);

    if (host == NULL)
        host = "localhost";
    trace_line(o);
    trace_lit(o, "\tby ");
    trace_put(o, host, strlen(host), TRACE_WORD);
    trace_lit(o, " (libsmtpx)");
    trace_sep(o, 5 + strlen(proto));
    trace_lit(o, "with ");
    trace_lit(o, proto);
    if (id != NULL) {
        trace_sep(o, 3 + strlen(id));
        trace_lit(o, "id ");
        trace_put(o, id, strlen(id), TRACE_WORD);
    }
}

/* trace_tls - "(version=V cipher=C)", a comment on a line of its own */
static void trace_tls(trace_out *o, const smtpx_tls_info *tls)
{
    const char *version = trace_nonempty(tls->version);
    const char *cipher = trace_nonempty(tls->cipher);

    if (version == NULL && cipher == NULL)
        return;
    trace_line(o);
    trace_lit(o, "\t(");
    if (version != NULL) {
        trace_lit(o, "version=");
        trace_put(o, version, strlen(version), TRACE_COMMENT);
    }
    if (cipher != NULL) {
        if (version != NULL)
            trace_sep(o, 8 + strlen(cipher));
        trace_lit(o, "cipher=");
        trace_put(o, cipher, strlen(cipher), TRACE_COMMENT);
    }
    trace_lit(o, ")");
}

/* trace_build - Return-Path (if return_path) and Received into buf */
static smtpx_ssize trace_build(const smtpx_server *s, const char *id,
                               int64_t unix_time, int utc_offset, char *buf,
                               size_t size, int return_path)
{
    const char *from, *rcpt;
    const smtpx_tls_info *tls;
    char date[TRACE_DATE_LEN + 1];
    trace_out o;

    if (s == NULL || buf == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (size > 0)
        buf[0] = '\0';
    from = smtpx_server_mail_from(s);
    if (from == NULL)
        return SMTPX_ERR_INVALID_STATE;
    if (smtpx_format_date(unix_time, utc_offset, date, sizeof(date)) < 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    o.buf = buf;
    o.size = size;
    o.len = o.col = 0;
    o.full = size == 0;

    if (return_path) {
        trace_lit(&o, "Return-Path: <");
        trace_put(&o, from, strlen(from), TRACE_ADDR);
        trace_lit(&o, ">");
        trace_line(&o);
    }
    trace_from(&o, s);
    trace_by(&o, s, trace_nonempty(id));
    tls = smtpx_server_tls(s);
    if (tls != NULL)
        trace_tls(&o, tls);
    if (smtpx_server_rcpt_count(s) == 1) {
        rcpt = smtpx_server_rcpt_addr(s, 0);
        trace_line(&o);
        trace_lit(&o, "\tfor <");
        trace_put(&o, rcpt, strlen(rcpt), TRACE_ADDR);
        trace_lit(&o, ">");
    }
    trace_lit(&o, ";");
    trace_sep(&o, TRACE_DATE_LEN);
    trace_lit(&o, date);
    trace_line(&o);

    if (o.full) {
        if (size > 0)
            buf[0] = '\0';
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    buf[o.len] = '\0';
    return (smtpx_ssize)o.len;
}

smtpx_ssize smtpx_server_trace_headers(const smtpx_server *s, const char *id,
                                       int64_t unix_time, int utc_offset,
                                       char *buf, size_t size)
{
    return trace_build(s, id, unix_time, utc_offset, buf, size, 1);
}

smtpx_ssize smtpx_server_received_header(const smtpx_server *s, const char *id,
                                         int64_t unix_time, int utc_offset,
                                         char *buf, size_t size)
{
    return trace_build(s, id, unix_time, utc_offset, buf, size, 0);
}
