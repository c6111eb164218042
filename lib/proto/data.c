/*
 * data - the DATA content scanner.
 *
 * Exports smtpx__dot_init() and smtpx__dot_scan().  Line ends are found
 * in one pass for CR or LF (16 octets at a time with SSE2, two memchr()
 * calls otherwise), and content is handed on as spans of the caller's
 * buffer; only line ends that need fixing and stuffed dots break a span.
 * An ordinary CRLF followed by a line that does not start with "." is
 * taken without leaving the text state, so a plain message costs about
 * one search per line.
 *
 * Invariants (SMTP smuggling, RFC 5321 4.1.1.4 and 2.3.8):
 *  - Only <CRLF>.<CRLF> ends the content, with both line ends real: a line
 *    start that follows a bare LF or bare CR never begins the end marker,
 *    and a "." line ended by a bare LF or bare CR is not the end.  So
 *    <LF>.<LF>, <LF>.<CRLF>, <CRLF>.<LF>, <CR>.<CR> and the like stay
 *    inside the one message.
 *  - A bare LF or bare CR is reported (d->bare) and handed on as CRLF, so
 *    the application always sees consistent line ends; the server decides
 *    by policy whether to keep or refuse the message.  The content before
 *    it is handed on before d->bare is set, whatever the input's pieces.
 *  - A leading "." is removed when other characters follow on the line
 *    (RFC 5321 4.5.2); a line of just "." that is not the end is kept.
 */
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DATA_AVX2 1
#endif

#include "proto/data.h"

enum {
    DOT_BOL,   /* at the start of a line */
    DOT_TEXT,  /* inside a line */
    DOT_CR,    /* a CR was read and not yet handed on */
    DOT_DOT,   /* a "." at the start of a line, not yet handed on */
    DOT_DOT_CR /* ".<CR>" at the start of a line, not yet handed on */
};

static const uint8_t data_crlf[] = "\r\n";
static const uint8_t data_dot_crlf[] = ".\r\n";

void smtpx__dot_init(smtpx__dot *d, size_t text_line, int after_crlf)
{
    memset(d, 0, sizeof(*d));
    d->state = DOT_BOL;
    d->bol_real = after_crlf ? 1 : 0;
    d->max_text = text_line >= 2 ? text_line - 2 : 0;
}

/*
 * data_find_plain - offset of the first CR or LF in p[0..n), or n; never
 * reads past p + n.  The same answer as a memchr() for LF followed by one
 * for CR before it, in one pass with SSE2, else with the two memchr()
 * calls.
 */
static size_t data_find_plain(const uint8_t *p, size_t n)
{
#if defined(__SSE2__)
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    size_t i = 0;

    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        int m = _mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
        if (m != 0)
            return i + (size_t)__builtin_ctz((unsigned)m);
    }
    for (; i < n; i++)
        if (p[i] == '\r' || p[i] == '\n')
            return i;
    return n;
#else
    const uint8_t *lf = memchr(p, '\n', n);
    size_t lim = lf != NULL ? (size_t)(lf - p) : n;
    const uint8_t *cr = memchr(p, '\r', lim);

    return cr != NULL ? (size_t)(cr - p) : lim;
#endif
}

/* data_grow - count octets of the current line against the limit */
static void data_grow(smtpx__dot *d, size_t n)
{
    d->line_len += n;
    if (d->max_text != 0 && d->line_len > d->max_text)
        d->long_line = 1;
}

/* data_ordinary - whether the CR or LF at in[e] ends the line in the one
 * way that needs nothing done: CRLF, and a next line, already here, that
 * does not start with "." (what DOT_BOL would find) */
static int data_ordinary(const uint8_t *in, size_t e, size_t len)
{
    return e + 2 < len && in[e] == '\r' && in[e + 1] == '\n' &&
           in[e + 2] != '.';
}

/*
 * data_run - take the ordinary lines from *ip on (the text state, at the
 * current line's first octet not yet counted): their octets count against
 * the limit, and *ip moves to the start of the line in hand.  Returns the
 * offset of the first CR or LF that is not an ordinary line end, or len.
 * The AVX2 version reads each 32 octets once and walks their CR and LF
 * bits; the other finds one line end at a time.
 */
#if defined(DATA_AVX2)
__attribute__((target("avx2"))) static size_t
data_run_avx2(smtpx__dot *d, const uint8_t *in, size_t *ip, size_t len)
{
    const __m256i cr = _mm256_set1_epi8('\r'), lf = _mm256_set1_epi8('\n');
    size_t i = *ip, pos = i, e;

    for (; pos + 32 <= len; pos += 32) {
        __m256i v =
            _mm256_loadu_si256((const __m256i *)(const void *)(in + pos));
        unsigned m = (unsigned)_mm256_movemask_epi8(_mm256_or_si256(
            _mm256_cmpeq_epi8(v, cr), _mm256_cmpeq_epi8(v, lf)));
        for (; m != 0; m &= m - 1) {
            e = pos + (size_t)__builtin_ctz(m);
            if (e < i)
                continue; /* the LF of a CRLF taken already */
            data_grow(d, e - i);
            if (!data_ordinary(in, e, len)) {
                *ip = e;
                return e;
            }
            i = e + 2;
            d->line_len = 0;
            d->bol_real = 1;
        }
    }
    /* Fewer than 32 octets left (or a line end found only there). */
    for (e = pos > i ? pos : i; e < len; e++) {
        if (in[e] != '\r' && in[e] != '\n')
            continue;
        data_grow(d, e - i);
        if (!data_ordinary(in, e, len)) {
            *ip = e;
            return e;
        }
        i = e + 2;
        e++;
        d->line_len = 0;
        d->bol_real = 1;
    }
    data_grow(d, len - i);
    *ip = len;
    return len;
}
#endif

static size_t data_run_plain(smtpx__dot *d, const uint8_t *in, size_t *ip,
                             size_t len)
{
    size_t i = *ip, e;

    for (;;) {
        e = i + data_find_plain(in + i, len - i);
        data_grow(d, e - i);
        if (e == len || !data_ordinary(in, e, len))
            break;
        i = e + 2;
        d->line_len = 0;
        d->bol_real = 1;
    }
    *ip = e;
    return e;
}

static size_t data_run(smtpx__dot *d, const uint8_t *in, size_t *ip, size_t len)
{
#if defined(DATA_AVX2)
    if (__builtin_cpu_supports("avx2"))
        return data_run_avx2(d, in, ip, len);
#endif
    return data_run_plain(d, in, ip, len);
}

size_t smtpx__dot_scan(smtpx__dot *d, const uint8_t *in, size_t len,
                       smtpx__emit_fn *emit, void *ctx, int *end)
{
    size_t i = 0, ps = 0; /* ps: start of the span not yet handed on */
    int stop = 0;

#define DATA_FLUSH(upto)                                                       \
    do {                                                                       \
        if ((upto) > ps && emit(ctx, in + ps, (upto)-ps))                      \
            stop = 1;                                                          \
        ps = (upto);                                                           \
    } while (0)
#define DATA_EMIT(p, n)                                                        \
    do {                                                                       \
        if (emit(ctx, (p), (n)))                                               \
            stop = 1;                                                          \
    } while (0)

    *end = 0;
    while (i < len && !stop) {
        switch (d->state) {
        case DOT_BOL:
            d->line_len = 0;
            if (in[i] == '.') {
                DATA_FLUSH(i);
                i++;
                ps = i;
                d->state = DOT_DOT;
                break;
            }
            d->state = DOT_TEXT;
            break;

        case DOT_TEXT: {
            /* Ordinary lines in one run; then the line end in hand, if
             * any, by the rules below. */
            i = data_run(d, in, &i, len);
            if (i == len)
                break;
            if (in[i] == '\r') {
                if (i + 1 == len) {
                    /* Whether this CR ends the line is known only from
                     * the next octet: keep it back. */
                    DATA_FLUSH(i);
                    i++;
                    ps = i;
                    d->state = DOT_CR;
                } else if (in[i + 1] == '\n') {
                    i += 2;
                    d->state = DOT_BOL;
                    d->bol_real = 1;
                } else {
                    DATA_FLUSH(i);
                    d->bare = 1;
                    DATA_EMIT(data_crlf, 2);
                    i++;
                    ps = i;
                    d->state = DOT_BOL;
                    d->bol_real = 0;
                }
            } else {
                DATA_FLUSH(i);
                d->bare = 1;
                DATA_EMIT(data_crlf, 2);
                i++;
                ps = i;
                d->state = DOT_BOL;
                d->bol_real = 0;
            }
            break;
        }

        case DOT_CR:
            if (in[i] == '\n') {
                DATA_EMIT(data_crlf, 2);
                i++;
                d->bol_real = 1;
            } else {
                d->bare = 1;
                DATA_EMIT(data_crlf, 2);
                d->bol_real = 0;
            }
            ps = i;
            d->state = DOT_BOL;
            break;

        case DOT_DOT:
            if (in[i] == '\r') {
                i++;
                ps = i;
                d->state = DOT_DOT_CR;
            } else if (in[i] == '\n') {
                /* "." ended by a bare LF: not the end; the dot stays. */
                d->bare = 1;
                DATA_EMIT(data_dot_crlf, 3);
                i++;
                ps = i;
                d->state = DOT_BOL;
                d->bol_real = 0;
            } else {
                /* A stuffed dot: drop it, the rest of the line follows.
                 * RFC 5321 4.5.3.1.6: the limit does not count the dot
                 * duplicated for transparency. */
                d->state = DOT_TEXT;
            }
            break;

        case DOT_DOT_CR:
            if (in[i] == '\n') {
                i++;
                if (d->bol_real) {
                    *end = 1;
                    return i;
                }
                /* A "." line after a bare line end is content. */
                DATA_EMIT(data_dot_crlf, 3);
                d->bol_real = 1;
            } else {
                /* "." ended by a bare CR: content, line end fixed. */
                d->bare = 1;
                DATA_EMIT(data_dot_crlf, 3);
                d->bol_real = 0;
            }
            ps = i;
            d->state = DOT_BOL;
            break;
        }
    }
    if (d->state == DOT_TEXT || d->state == DOT_BOL)
        DATA_FLUSH(i);
    return i;
#undef DATA_FLUSH
#undef DATA_EMIT
}

/* ---- the client side ----------------------------------------------------- */

void smtpx__stuff_init(smtpx__stuff *st, size_t text_line)
{
    memset(st, 0, sizeof(*st));
    st->bol = 1;
    st->max_text = text_line >= 2 ? text_line - 2 : 0;
}

void smtpx__stuff_init_bdat(smtpx__stuff *st, size_t text_line)
{
    smtpx__stuff_init(st, text_line);
    st->nodots = 1;
}

smtpx_ssize smtpx__stuff_add(smtpx__stuff *st, smtpx__buf *out,
                             const smtpx_mem *mem, const uint8_t *in,
                             size_t len)
{
    size_t i = 0, worst;
    uint8_t *p, *start;

    /* Each octet may become two (".." or CRLF), plus a break per line. */
    worst = 2 * len + 4 + (st->max_text ? 3 * (len / st->max_text + 1) : 0);
    start = p = smtpx__buf_reserve(out, mem, worst);
    if (p == NULL)
        return SMTPX_ERR_NOMEM;
    while (i < len) {
        uint8_t c = in[i];

        if (st->cr) {
            /* The CR before this octet: CRLF if this is its LF. */
            st->cr = 0;
            *p++ = '\r';
            *p++ = '\n';
            st->bol = 1;
            st->line_len = 0;
            if (c == '\n') {
                i++;
                continue;
            }
        }
        if (c == '\r') {
            st->cr = 1;
            i++;
            continue;
        }
        if (c == '\n') {
            *p++ = '\r';
            *p++ = '\n';
            st->bol = 1;
            st->line_len = 0;
            i++;
            continue;
        }
        if (st->max_text != 0 && st->line_len >= st->max_text) {
            /* RFC 5322 2.1.1 and RFC 5321 4.5.3.1.6: never a line over
             * the limit; the space keeps header lines folded. */
            *p++ = '\r';
            *p++ = '\n';
            *p++ = ' ';
            st->line_len = 1;
            st->long_lines++;
            st->bol = 0;
        }
        if (st->bol && c == '.' && !st->nodots)
            *p++ = '.'; /* not counted: RFC 5321 4.5.3.1.6 */
        st->bol = 0;
        {
            /* Copy the run of ordinary octets up to the next line end
             * or the line limit in one go. */
            const uint8_t *q = in + i;
            size_t n = len - i;
            const uint8_t *lf = memchr(q, '\n', n);
            const uint8_t *cr;

            if (lf != NULL)
                n = (size_t)(lf - q);
            cr = memchr(q, '\r', n);
            if (cr != NULL)
                n = (size_t)(cr - q);
            if (st->max_text != 0 && n > st->max_text - st->line_len)
                n = st->max_text - st->line_len;
            if (n == 0)
                n = 1;
            memcpy(p, q, n);
            p += n;
            i += n;
            st->line_len += n;
        }
    }
    smtpx__buf_commit(out, (size_t)(p - start));
    return (smtpx_ssize)(p - start);
}

smtpx_ssize smtpx__stuff_end(smtpx__stuff *st, smtpx__buf *out,
                             const smtpx_mem *mem)
{
    uint8_t *p = smtpx__buf_reserve(out, mem, 5);
    size_t n = 0;

    if (p == NULL)
        return SMTPX_ERR_NOMEM;
    if (st->cr || !st->bol) {
        p[n++] = '\r';
        p[n++] = '\n';
    }
    if (!st->nodots) {
        memcpy(p + n, ".\r\n", 3);
        n += 3;
    }
    st->cr = 0;
    st->bol = 1;
    smtpx__buf_commit(out, n);
    return (smtpx_ssize)n;
}
