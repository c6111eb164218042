/*
 * msg_words - the text of header fields: charsets, encoded words and
 * parameters.
 *
 * Exports smtpx__to_utf8(), smtpx__words_decode(), smtpx__words_encode(),
 * smtpx__params_parse(), smtpx__params_get() and smtpx__utf8_valid() of
 * "msg/words.h".
 *
 * RFC 2047 (encoded words), RFC 2231 (parameter continuations, charsets
 * and languages), RFC 2045 5.1 (parameters), RFC 6532 (UTF-8 in headers).
 * Decoding is lenient in the ways mail programs need (encoded words inside
 * quoted parameter values, adjacent words of one charset joined before
 * conversion so that a character split between two words survives) and
 * never fails: what cannot be read is kept or replaced and reported.
 * Charsets: UTF-8, US-ASCII, ISO-8859-1 and windows-1252 here; the rest
 * through iconv(3), which the C library has.
 */
#include <iconv.h>
#include <string.h>

#include "base/crypto.h"
#include "msg/words.h"

/* Parameters kept per header field, and the highest RFC 2231 section. */
#define WORDS_MAX_PARAMS   64
#define WORDS_MAX_SECTIONS 64

static char words_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int words_ieq(const char *a, size_t n, const char *b)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (b[i] == '\0' || words_lower(a[i]) != words_lower(b[i]))
            return 0;
    return b[n] == '\0';
}

/* ---- UTF-8 --------------------------------------------------------------- */

/* utf8_len - the length of the valid UTF-8 sequence at s, or 0 */
static size_t utf8_len(const uint8_t *s, size_t n)
{
    unsigned c = s[0];
    size_t k, i;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        k = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        k = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 4, cp = c & 0x07;
    else
        return 0;
    if (n < k)
        return 0;
    for (i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return k;
}

int smtpx__utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0, k;

    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        k = utf8_len(s + i, n - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

static void utf8_put(smtpx__mstr *out, uint32_t cp)
{
    char b[4];

    if (cp < 0x80) {
        b[0] = (char)cp;
        smtpx__mstr_add(out, b, 1);
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3f));
        smtpx__mstr_add(out, b, 2);
    } else {
        b[0] = (char)(0xe0 | cp >> 12);
        b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        smtpx__mstr_add(out, b, 3);
    }
}

/* utf8_checked - UTF-8 as it is, U+FFFD for each octet that is not */
static void utf8_checked(smtpx__mstr *out, const uint8_t *in, size_t n,
                         unsigned *bad)
{
    size_t i = 0, start = 0, k;

    if (n == 0)
        return; /* in may be NULL then */
    while (i < n) {
        if (in[i] < 0x80) {
            i++;
            continue;
        }
        k = utf8_len(in + i, n - i);
        if (k != 0) {
            i += k;
            continue;
        }
        smtpx__mstr_add(out, in + start, i - start);
        utf8_put(out, 0xfffd);
        *bad |= SMTPX__WORDS_BAD_8BIT;
        start = ++i;
    }
    smtpx__mstr_add(out, in + start, n - start);
}

/* windows-1252 0x80-0x9f; 0 where it has no character. */
static const uint16_t cp1252_c1[32] = {
    0x20ac, 0,      0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
    0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017d, 0,
    0,      0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
    0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0,      0x017e, 0x0178};

static void words_iconv(smtpx__mstr *out, const char *cs, size_t cslen,
                        const uint8_t *in, size_t n, unsigned *bad)
{
    char name[64];
    iconv_t cd;
    char *ip = (char *)(uintptr_t)in;
    size_t il = n;

    if (cslen >= sizeof(name)) {
        utf8_checked(out, in, n, bad);
        return;
    }
    memcpy(name, cs, cslen);
    name[cslen] = '\0';
    cd = iconv_open("UTF-8", name);
    if (cd == (iconv_t)-1) {
        /* Unknown charset: as UTF-8 where it is, U+FFFD elsewhere. */
        *bad |= SMTPX__WORDS_BAD_WORD;
        utf8_checked(out, in, n, bad);
        return;
    }
    while (il > 0 && out->err == 0) {
        char buf[256], *op = buf;
        size_t ol = sizeof(buf);
        size_t r = iconv(cd, &ip, &il, &op, &ol);

        /* iconv writes whole characters, but not always valid ones
         * (glibc's UTF-8 takes sequences past U+10FFFF): check them. */
        utf8_checked(out, (const uint8_t *)buf, (size_t)(op - buf), bad);
        if (r == (size_t)-1 && op == buf && ol == sizeof(buf)) {
            /* EILSEQ or EINVAL (E2BIG always moved something). */
            utf8_put(out, 0xfffd);
            *bad |= SMTPX__WORDS_BAD_8BIT;
            ip++;
            il--;
            iconv(cd, NULL, NULL, NULL, NULL);
        }
    }
    iconv_close(cd);
}

void smtpx__to_utf8(smtpx__mstr *out, const char *cs, size_t cslen,
                    const uint8_t *in, size_t n, unsigned *bad)
{
    size_t i;

    if (cslen == 0 || words_ieq(cs, cslen, "utf-8") ||
        words_ieq(cs, cslen, "utf8") || words_ieq(cs, cslen, "us-ascii") ||
        words_ieq(cs, cslen, "ascii")) {
        utf8_checked(out, in, n, bad);
    } else if (words_ieq(cs, cslen, "iso-8859-1") ||
               words_ieq(cs, cslen, "latin1") ||
               words_ieq(cs, cslen, "latin-1") ||
               words_ieq(cs, cslen, "iso8859-1") ||
               words_ieq(cs, cslen, "windows-1252") ||
               words_ieq(cs, cslen, "cp1252")) {
        /* Mail that says Latin-1 is usually windows-1252, which agrees
         * with it but for 0x80-0x9f (the WHATWG encoding standard reads
         * both labels the same way). */
        for (i = 0; i < n; i++) {
            uint32_t cp = in[i];
            if (cp >= 0x80 && cp < 0xa0 && cp1252_c1[cp - 0x80] != 0)
                cp = cp1252_c1[cp - 0x80];
            utf8_put(out, cp);
        }
    } else {
        words_iconv(out, cs, cslen, in, n, bad);
    }
}

/* ---- RFC 2047 decoding ----------------------------------------------------
 */

/* A decoded encoded word waiting for its neighbours of the same charset. */
typedef struct words_pend {
    const char *cs;
    size_t cslen;
    smtpx__mstr bytes;
} words_pend;

static void pend_flush(words_pend *w, smtpx__mstr *out, unsigned *bad)
{
    if (w->cs != NULL) {
        smtpx__to_utf8(out, w->cs, w->cslen, (const uint8_t *)w->bytes.p,
                       w->bytes.len, bad);
        smtpx__mstr_clear(&w->bytes);
        w->cs = NULL;
    }
}

/* An encoded word's pieces: "=?" charset ["*" lang] "?" e "?" text "?=". */
typedef struct words_ew {
    size_t cs, cslen; /* charset (without the language) */
    char enc;         /* 'q' or 'b' */
    size_t text, end; /* text is s[text..end) */
    size_t len;       /* the whole word */
} words_ew;

/* words_scan - 1 if s[0..n) starts with an encoded word */
static int words_scan(const char *s, size_t n, words_ew *ew)
{
    size_t i, lang, end;

    if (n < 8 || s[0] != '=' || s[1] != '?')
        return 0;
    for (i = 2; i < n && s[i] != '?'; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 127)
            return 0;
    if (i == 2 || i + 3 >= n || s[i + 2] != '?')
        return 0;
    ew->enc = words_lower(s[i + 1]);
    if (ew->enc != 'q' && ew->enc != 'b')
        return 0;
    ew->text = i + 3;
    for (end = ew->text; end + 1 < n; end++) {
        if ((unsigned char)s[end] <= ' ')
            return 0;
        if (s[end] == '?' && s[end + 1] == '=')
            break;
    }
    if (end + 1 >= n)
        return 0;
    ew->end = end;
    ew->len = end + 2;
    /* RFC 2231 5: charset*language. */
    for (lang = 2; lang < i && s[lang] != '*'; lang++)
        ;
    ew->cs = 2;
    ew->cslen = lang - 2;
    return ew->cslen > 0;
}

/* words_one - decode an encoded word into w, flushing w first when its
 * charset differs */
static void words_one(const char *s, const words_ew *ew, words_pend *w,
                      smtpx__mstr *out, unsigned *bad)
{
    size_t i, k;

    if (w->cs != NULL &&
        (w->cslen != ew->cslen || memcmp(w->cs, s + ew->cs, ew->cslen) != 0))
        pend_flush(w, out, bad);
    w->cs = s + ew->cs;
    w->cslen = ew->cslen;
    if (ew->enc == 'q') {
        for (i = ew->text; i < ew->end; i++) {
            int h1, h2;
            if (s[i] == '_') {
                smtpx__mstr_addc(&w->bytes, ' ');
            } else if (s[i] == '=' && i + 2 < ew->end &&
                       (h1 = smtpx__hexval((unsigned char)s[i + 1])) >= 0 &&
                       (h2 = smtpx__hexval((unsigned char)s[i + 2])) >= 0) {
                smtpx__mstr_addc(&w->bytes, (char)(h1 << 4 | h2));
                i += 2;
            } else {
                smtpx__mstr_addc(&w->bytes, s[i]);
            }
        }
    } else {
        smtpx__b64dec d;
        uint8_t buf[SMTPX__B64DEC_OUT(64)];

        smtpx__b64dec_init(&d);
        for (i = ew->text; i < ew->end; i += k) {
            k = ew->end - i < 64 ? ew->end - i : 64;
            smtpx__mstr_add(
                &w->bytes, buf,
                smtpx__b64dec_run(&d, (const uint8_t *)s + i, k, buf));
        }
        smtpx__mstr_add(&w->bytes, buf, smtpx__b64dec_end(&d, buf));
        if (d.bad)
            *bad |= SMTPX__WORDS_BAD_WORD;
    }
}

static int words_wsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void smtpx__words_decode(smtpx__mstr *out, const char *s, size_t n,
                         unsigned *bad)
{
    words_pend w;
    words_ew ew;
    size_t i = 0, start = 0, ws;

    memset(&w, 0, sizeof(w));
    smtpx__mstr_init(&w.bytes, out->mem);
    while (i < n) {
        const char *q = memchr(s + i, '=', n - i);

        if (q == NULL)
            break;
        i = (size_t)(q - s);
        if (!words_scan(s + i, n - i, &ew)) {
            i++;
            continue;
        }
        if (i > start) {
            pend_flush(&w, out, bad);
            utf8_checked(out, (const uint8_t *)s + start, i - start, bad);
        }
        words_one(s + i, &ew, &w, out, bad);
        i += ew.len;
        start = i;
        /* White space between two encoded words goes (RFC 2047 6.2). */
        for (ws = i; ws < n && words_wsp(s[ws]); ws++)
            ;
        if (ws > i && words_scan(s + ws, n - ws, &ew))
            i = start = ws;
    }
    pend_flush(&w, out, bad);
    utf8_checked(out, (const uint8_t *)s + start, n - start, bad);
    smtpx__mstr_free(&w.bytes);
}

/* ---- parameters (RFC 2045 5.1, RFC 2231) ----------------------------------
 */

typedef struct words_raw {
    size_t name, name_len; /* in the scratch string */
    size_t val, val_len;
    int section; /* -1: none */
    int ext;     /* the value is charset'lang'%XX */
    int quoted;
    int used;
} words_raw;

static size_t words_trim_end(const char *s, size_t a, size_t b)
{
    while (b > a && words_wsp(s[b - 1]))
        b--;
    return b;
}

/* words_pct - append an RFC 2231 extended value, %XX decoded */
static void words_pct(smtpx__mstr *out, const char *v, size_t n, unsigned *bad)
{
    size_t i;
    int h1, h2;

    for (i = 0; i < n; i++) {
        if (v[i] == '%' && i + 2 < n &&
            (h1 = smtpx__hexval((unsigned char)v[i + 1])) >= 0 &&
            (h2 = smtpx__hexval((unsigned char)v[i + 2])) >= 0) {
            smtpx__mstr_addc(out, (char)(h1 << 4 | h2));
            i += 2;
        } else {
            if (v[i] == '%')
                *bad |= SMTPX__WORDS_BAD_PARAM;
            smtpx__mstr_addc(out, v[i]);
        }
    }
}

/* words_join - the value of the parameters named like raw[first], RFC 2231
 * sections in order, into out (UTF-8) */
static void words_join_value(words_raw *raw, size_t nraw, size_t first,
                             const char *scratch, smtpx__mstr *out,
                             unsigned *bad);

/* words_join - words_join_value() without NUL octets (they would end the
 * value early; a hostile sender may encode one) */
static void words_join(words_raw *raw, size_t nraw, size_t first,
                       const char *scratch, smtpx__mstr *out, unsigned *bad)
{
    size_t start = out->len, i, k;

    words_join_value(raw, nraw, first, scratch, out, bad);
    if (out->err)
        return;
    for (i = k = start; i < out->len; i++)
        if (out->p[i] != '\0')
            out->p[k++] = out->p[i];
    if (k != out->len) {
        *bad |= SMTPX__WORDS_BAD_PARAM;
        out->len = k;
        out->p[k] = '\0';
    }
}

static void words_join_value(words_raw *raw, size_t nraw, size_t first,
                             const char *scratch, smtpx__mstr *out,
                             unsigned *bad)
{
    const char *name = scratch + raw[first].name;
    size_t nlen = raw[first].name_len, i;
    int star = 0, sec;
    smtpx__mstr bytes;
    const char *cs = NULL;
    size_t cslen = 0;

    /* RFC 2231 forms win over a plain one of the same name. */
    for (i = first; i < nraw; i++)
        if (raw[i].name_len == nlen &&
            memcmp(scratch + raw[i].name, name, nlen) == 0 &&
            (raw[i].ext || raw[i].section >= 0))
            star = 1;
    if (!star) {
        for (i = first; i < nraw; i++)
            if (raw[i].name_len == nlen &&
                memcmp(scratch + raw[i].name, name, nlen) == 0)
                raw[i].used = 1;
        smtpx__words_decode(out, scratch + raw[first].val, raw[first].val_len,
                            bad);
        return;
    }
    smtpx__mstr_init(&bytes, out->mem);
    for (sec = -1; sec < WORDS_MAX_SECTIONS; sec++) {
        for (i = first; i < nraw; i++) {
            const char *v = scratch + raw[i].val;
            size_t vlen = raw[i].val_len;

            if (raw[i].name_len != nlen ||
                memcmp(scratch + raw[i].name, name, nlen) != 0)
                continue;
            raw[i].used = 1;
            if (raw[i].section != sec || (sec == -1 && !raw[i].ext))
                continue;
            if (raw[i].ext && sec <= 0) {
                /* charset'language'value */
                const char *q1 = memchr(v, '\'', vlen), *q2;
                if (q1 != NULL &&
                    (q2 = memchr(q1 + 1, '\'', vlen - (size_t)(q1 + 1 - v))) !=
                        NULL) {
                    cs = v;
                    cslen = (size_t)(q1 - v);
                    vlen -= (size_t)(q2 + 1 - v);
                    v = q2 + 1;
                } else {
                    *bad |= SMTPX__WORDS_BAD_PARAM;
                }
            }
            if (raw[i].ext)
                words_pct(&bytes, v, vlen, bad);
            else
                smtpx__mstr_add(&bytes, v, vlen);
            break;
        }
    }
    if (cs != NULL)
        smtpx__to_utf8(out, cs, cslen, (const uint8_t *)bytes.p, bytes.len,
                       bad);
    else
        smtpx__words_decode(out, bytes.p != NULL ? bytes.p : "", bytes.len,
                            bad);
    if (bytes.err != 0)
        out->err = bytes.err;
    smtpx__mstr_free(&bytes);
}

void smtpx__params_parse(const char *v, size_t n, smtpx__mstr *type,
                         smtpx__mstr *params, unsigned *bad)
{
    words_raw raw[WORDS_MAX_PARAMS];
    size_t nraw = 0, i = 0, a, b;
    smtpx__mstr scratch;

    smtpx__mstr_clear(type);
    smtpx__mstr_clear(params);
    /* The type: up to the first ";" (as Python's _splitparam()). */
    for (a = 0; a < n && words_wsp(v[a]); a++)
        ;
    for (b = a; b < n && v[b] != ';'; b++)
        ;
    i = b;
    b = words_trim_end(v, a, b);
    for (; a < b; a++)
        smtpx__mstr_addc(type, words_lower(v[a]));
    if (type->p == NULL)
        smtpx__mstr_add(type, "", 0);

    smtpx__mstr_init(&scratch, params->mem);
    while (i < n) {
        size_t ns, ne;
        words_raw *r;
        char *star;

        while (i < n && (v[i] == ';' || words_wsp(v[i])))
            i++;
        if (i >= n)
            break;
        ns = i;
        while (i < n && v[i] != '=' && v[i] != ';')
            i++;
        ne = words_trim_end(v, ns, i);
        if (i >= n || v[i] == ';' || ne == ns) {
            /* No name or no "=": up to the next ";" (which the loop
             * skips), so that the scan always moves on. */
            *bad |= SMTPX__WORDS_BAD_PARAM;
            while (i < n && v[i] != ';')
                i++;
            continue;
        }
        i++; /* "=" */
        if (nraw == WORDS_MAX_PARAMS) {
            *bad |= SMTPX__WORDS_BAD_PARAM;
            while (i < n && v[i] != ';')
                i++;
            continue;
        }
        r = &raw[nraw];
        memset(r, 0, sizeof(*r));
        r->name = scratch.len;
        for (a = ns; a < ne; a++)
            if (v[a] != '\0')
                smtpx__mstr_addc(&scratch, words_lower(v[a]));
        r->name_len = scratch.len - r->name;
        smtpx__mstr_addc(&scratch, '\0');
        while (i < n && words_wsp(v[i]))
            i++;
        r->val = scratch.len;
        if (i < n && v[i] == '"') {
            r->quoted = 1;
            for (i++; i < n && v[i] != '"'; i++) {
                if (v[i] == '\\' && i + 1 < n)
                    i++;
                /* Folding inside a quoted string is not part of it. */
                if (v[i] == '\r' || v[i] == '\n')
                    continue;
                smtpx__mstr_addc(&scratch, v[i]);
            }
            if (i >= n)
                *bad |= SMTPX__WORDS_BAD_PARAM;
            while (i < n && v[i] != ';')
                i++;
        } else {
            /* A token ends at white space (as Python's header parser
             * reads it); anything after it up to ";" is dropped. */
            a = i;
            while (i < n && v[i] != ';' && !words_wsp(v[i]))
                i++;
            smtpx__mstr_add(&scratch, v + a, i - a);
            b = i;
            while (i < n && v[i] != ';')
                i++;
            if (words_trim_end(v, b, i) > b)
                *bad |= SMTPX__WORDS_BAD_PARAM;
        }
        r->val_len = scratch.len - r->val;
        smtpx__mstr_addc(&scratch, '\0');
        if (scratch.err != 0)
            break;
        /* name*, name*N, name*N* (RFC 2231 3, 4). */
        r->section = -1;
        star = memchr(scratch.p + r->name, '*', r->name_len);
        if (star != NULL) {
            const char *e = scratch.p + r->name + r->name_len;
            const char *d = star + 1;
            int sec = -1;

            if (d < e && *d >= '0' && *d <= '9') {
                sec = 0;
                while (d < e && *d >= '0' && *d <= '9' && sec < 1000)
                    sec = sec * 10 + (*d++ - '0');
                if (d < e && *d == '*' && d + 1 == e) {
                    r->ext = 1;
                    d++;
                }
            } else if (d == e) {
                r->ext = 1; /* name* */
            }
            if (d == e && (sec >= 0 || r->ext) && sec < WORDS_MAX_SECTIONS) {
                r->section = sec;
                r->name_len = (size_t)(star - (scratch.p + r->name));
            } else if (d == e) {
                *bad |= SMTPX__WORDS_BAD_PARAM;
                continue;
            }
        }
        nraw++;
    }
    for (i = 0; i < nraw && scratch.err == 0; i++) {
        if (raw[i].used)
            continue;
        smtpx__mstr_add(params, scratch.p + raw[i].name, raw[i].name_len);
        smtpx__mstr_addc(params, '\0');
        words_join(raw, nraw, i, scratch.p, params, bad);
        smtpx__mstr_addc(params, '\0');
    }
    if (scratch.err != 0)
        params->err = scratch.err;
    smtpx__mstr_free(&scratch);
}

const char *smtpx__params_get(const char *pairs, size_t len, const char *name)
{
    size_t i = 0;

    while (i < len) {
        const char *k = pairs + i;
        size_t kl = strlen(k);
        const char *val = k + kl + 1;

        if (words_ieq(k, kl, name))
            return val;
        i += kl + 1 + strlen(val) + 1;
    }
    return NULL;
}

/* ---- RFC 2047 encoding ----------------------------------------------------
 */

/* Longest encoded word (RFC 2047 2), and the text one may hold after
 * "=?utf-8?q?" and "?=". */
#define WORDS_EW_MAX  75
#define WORDS_EW_TEXT (WORDS_EW_MAX - 12)

static int words_qlit(unsigned char c)
{
    /* RFC 2047 5 (3): safe in a phrase, and so anywhere. */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '!' || c == '*' || c == '+' ||
           c == '-' || c == '/';
}

/* words_char - length of the character at s (a lone invalid octet is one) */
static size_t words_char(const uint8_t *s, size_t n)
{
    size_t k = utf8_len(s, n);
    return k == 0 ? 1 : k;
}

void smtpx__words_encode(smtpx__mstr *out, const char *s, size_t n, int phrase,
                         size_t first)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t i, qlen = 0, blen, start, k;
    int useq;
    static const char hex[] = "0123456789ABCDEF";

    (void)phrase;
    for (i = 0; i < n; i++)
        qlen += words_qlit(u[i]) || u[i] == ' ' ? 1 : 3;
    blen = (n + 2) / 3 * 4;
    useq = qlen <= blen;
    i = 0;
    while (i < n) {
        size_t used = 0;
        /* Room for the text of this word: the first one may have less. */
        size_t room = useq ? WORDS_EW_TEXT : 45;

        if (i == 0 && first < WORDS_EW_MAX) {
            size_t t = first > 12 + 8 ? first - 12 : 8;
            room = useq ? t : (t / 4 * 3 > 3 ? t / 4 * 3 : 3);
        }
        if (i > 0)
            smtpx__mstr_addc(out, ' ');
        smtpx__mstr_adds(out, useq ? "=?utf-8?q?" : "=?utf-8?b?");
        start = i;
        while (i < n) {
            size_t c = words_char(u + i, n - i), cost = 0, j;
            if (useq) {
                for (j = 0; j < c; j++)
                    cost += words_qlit(u[i + j]) || u[i + j] == ' ' ? 1 : 3;
            } else {
                cost = c;
            }
            /* base64: at most 45 octets (60 characters) per word. */
            if (used + cost > room && i > start)
                break;
            if (useq) {
                for (j = 0; j < c; j++) {
                    unsigned char ch = u[i + j];
                    if (ch == ' ') {
                        smtpx__mstr_addc(out, '_');
                    } else if (words_qlit(ch)) {
                        smtpx__mstr_addc(out, (char)ch);
                    } else {
                        char e[3] = {'=', hex[ch >> 4], hex[ch & 15]};
                        smtpx__mstr_add(out, e, 3);
                    }
                }
            }
            used += cost;
            i += c;
        }
        if (!useq) {
            char b64[64];
            k = (size_t)smtpx__b64_encode(u + start, i - start, b64,
                                          sizeof(b64));
            smtpx__mstr_add(out, b64, k);
        }
        smtpx__mstr_adds(out, "?=");
    }
}
