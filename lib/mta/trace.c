/*
 * mta_trace - trace headers for a received message.
 *
 * Exports smtpx_format_date() and smtpx_server_trace_headers() of
 * <libsmtpx/mta.h>.
 *
 * The date-time is RFC 5322 3.3, computed from a count of seconds and an
 * offset the caller gives: no <time.h>, no time zone database, no clock.
 * The calendar arithmetic is the proleptic Gregorian days-to-civil
 * conversion of Howard Hinnant ("chrono-Compatible Low-Level Date
 * Algorithms"), exact for every day, before 1970 too.  Years are 1900 to
 * 9999: RFC 5322 3.3 wants "1900 or later" and four digits keep the result
 * within 32 bytes.
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

/* 1900-01-01T00:00:00Z and 10000-01-01T00:00:00Z. */
#define TRACE_TIME_MIN (-2208988800LL)
#define TRACE_TIME_END 253402300800LL
#define TRACE_DAY      86400
/* Offsets of less than a day either side. */
#define TRACE_OFFSET_MAX 1439
/* Length of a formatted date. */
#define TRACE_DATE_LEN 31
/* RFC 5322 2.1.1: lines SHOULD be no more than 78 characters. */
#define TRACE_LINE_MAX 78

/* ---- date ---------------------------------------------------------------- */

/* trace_civil - the Gregorian date of a day counted from 1970-01-01 */
static void trace_civil(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    /* Counted from 0000-03-01, in 400-year eras of 146097 days, so that
     * the leap day is the last day of a year. */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097; /* day of era */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* from March 1 */
    int64_t mp = (5 * doy + 2) / 153;                      /* March is 0 */

    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2 ? 1 : 0);
}

static char *trace_digits(char *p, unsigned v, int n)
{
    int i;

    for (i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

smtpx_ssize smtpx_format_date(int64_t unix_time, int utc_offset, char *buf,
                              size_t size)
{
    static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                     "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};
    int64_t local, days, secs, year;
    unsigned month, day, off;
    char *p;

    if (buf == NULL || size <= TRACE_DATE_LEN ||
        utc_offset < -TRACE_OFFSET_MAX || utc_offset > TRACE_OFFSET_MAX)
        return SMTPX_ERR_INVALID_ARGUMENT;
    /* Range first, so that adding the offset cannot overflow. */
    if (unix_time < TRACE_TIME_MIN - TRACE_DAY ||
        unix_time >= TRACE_TIME_END + TRACE_DAY)
        return SMTPX_ERR_INVALID_ARGUMENT;
    local = unix_time + (int64_t)utc_offset * 60;
    if (local < TRACE_TIME_MIN || local >= TRACE_TIME_END)
        return SMTPX_ERR_INVALID_ARGUMENT;
    days = local / TRACE_DAY;
    secs = local % TRACE_DAY;
    if (secs < 0) { /* round towards the past, not towards 1970 */
        secs += TRACE_DAY;
        days--;
    }
    trace_civil(days, &year, &month, &day);
    p = buf;
    /* 1970-01-01 was a Thursday; days is at least -25567 here. */
    memcpy(p, wdays[(days % 7 + 11) % 7], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    p = trace_digits(p, day, 2);
    *p++ = ' ';
    memcpy(p, months[month - 1], 3);
    p += 3;
    *p++ = ' ';
    p = trace_digits(p, (unsigned)year, 4);
    *p++ = ' ';
    p = trace_digits(p, (unsigned)(secs / 3600), 2);
    *p++ = ':';
    p = trace_digits(p, (unsigned)(secs / 60 % 60), 2);
    *p++ = ':';
    p = trace_digits(p, (unsigned)(secs % 60), 2);
    *p++ = ' ';
    *p++ = utc_offset < 0 ? '-' : '+';
    off = (unsigned)(utc_offset < 0 ? -utc_offset : utc_offset);
    p = trace_digits(p, off / 60 * 100 + off % 60, 4);
    *p = '\0';
    return TRACE_DATE_LEN;
}

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

smtpx_ssize smtpx_server_trace_headers(const smtpx_server *s, const char *id,
                                       int64_t unix_time, int utc_offset,
                                       char *buf, size_t size)
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

    trace_lit(&o, "Return-Path: <");
    trace_put(&o, from, strlen(from), TRACE_ADDR);
    trace_lit(&o, ">");
    trace_line(&o);
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
