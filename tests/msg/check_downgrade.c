/*
 * check_downgrade - 8-bit messages made 7-bit (smtpx_msg_downgrade_*):
 * exact output for each kind of entity, every message the converter takes
 * parsed before and after (the parser must find the same parts with the
 * same decoded content, and the output must be 7-bit with lines of at
 * most 998 octets), what it refuses and why, its limits, input split at
 * every octet behind a guard page on both passes, a source that changed
 * or failed between the passes, and allocation failures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libsmtpx/msg.h>

#include "harness/failmalloc.h"
#include "harness/guard.h"
#include "suites.h"

/* ---- running the converter ------------------------------------------------
 */

typedef struct src {
    const char *p;
    size_t n, pos, step; /* step: octets per call (0: as asked) */
    int fail;            /* return this once pos reaches n / 2 */
} src;

static smtpx_ssize src_read(void *ctx, uint8_t *buf, size_t len)
{
    src *s = ctx;
    size_t k = s->n - s->pos;

    if (s->fail != 0 && s->pos >= s->n / 2)
        return s->fail;
    if (k > len)
        k = len;
    if (s->step != 0 && k > s->step)
        k = s->step;
    memcpy(buf, guard_copy(s->p + s->pos, k), k);
    s->pos += k;
    return (smtpx_ssize)k;
}

typedef struct result {
    int rc;    /* of the scan, else of the reads */
    char *out; /* the 7-bit message (malloc), NUL-terminated */
    size_t len;
    uint64_t size; /* what the scan said */
    size_t parts;
    char why[160];
} result;

/* convert - scan in cut every cut octets (0: whole), then read the output
 * cut rstep octets at a time from a source giving sstep at a time */
static result convert(const char *in, size_t n, size_t cut, size_t sstep,
                      size_t rstep, const smtpx_mem *mem)
{
    smtpx_msg_downgrade *d;
    result r;
    src s = {in, n, 0, sstep, 0};
    size_t pos = 0, cap = 64;
    uint8_t buf[16384];

    memset(&r, 0, sizeof(r));
    r.rc = smtpx_msg_downgrade_new(&d, mem);
    if (r.rc != 0)
        return r;
    while (r.rc == 0 && pos < n) {
        size_t k = cut == 0 || cut > n - pos ? n - pos : cut;

        r.rc = smtpx_msg_downgrade_scan(d, guard_copy(in + pos, k), k);
        pos += k;
    }
    if (r.rc == 0)
        r.rc = smtpx_msg_downgrade_scan_end(d, &r.size, &r.parts);
    snprintf(r.why, sizeof(r.why), "%s", smtpx_msg_downgrade_why(d));
    if (r.rc == 0) {
        ck_assert_str_eq(r.why, "");
        r.rc = smtpx_msg_downgrade_source(d, src_read, &s);
    }
    r.out = malloc(cap);
    ck_assert_ptr_nonnull(r.out);
    while (r.rc == 0) {
        smtpx_ssize got = smtpx_msg_downgrade_read(
            d, buf, rstep == 0 || rstep > sizeof(buf) ? sizeof(buf) : rstep);

        if (got <= 0) {
            r.rc = (int)got;
            break;
        }
        if (r.len + (size_t)got + 1 > cap) {
            while (r.len + (size_t)got + 1 > cap)
                cap *= 2;
            r.out = realloc(r.out, cap);
            ck_assert_ptr_nonnull(r.out);
        }
        memcpy(r.out + r.len, buf, (size_t)got);
        r.len += (size_t)got;
    }
    r.out[r.len] = '\0';
    if (r.rc == 0)
        ck_assert_uint_eq(smtpx_msg_downgrade_read(d, buf, 1), 0);
    smtpx_msg_downgrade_free(d);
    return r;
}

/* check_7bit - every octet 7-bit, every line at most 998 octets */
static void check_7bit(const char *p, size_t n)
{
    size_t i, col = 0;

    for (i = 0; i < n; i++) {
        ck_assert_msg(!((unsigned char)p[i] & 0x80), "8-bit octet at %zu", i);
        col = p[i] == '\n' ? 0 : col + 1;
        ck_assert_msg(col <= 999, "line over 998 octets at %zu", i);
    }
}

/* ---- parsing before and after -----------------------------------------
 */

typedef struct plog {
    char *p;
    size_t len, cap;
} plog;

static void plog_add(plog *l, const void *p, size_t n)
{
    if (l->len + n + 1 > l->cap) {
        l->cap = (l->len + n + 1) * 2;
        l->p = realloc(l->p, l->cap);
        ck_assert_ptr_nonnull(l->p);
    }
    memcpy(l->p + l->len, p, n);
    l->len += n;
    l->p[l->len] = '\0';
}

static int pl_begin(smtpx_msg_parser *p, const smtpx_part *part, void *ud)
{
    plog *l = ud;
    const char *cs = smtpx_part_charset(part);

    (void)p;
    plog_add(l, "[", 1);
    plog_add(l, smtpx_part_path(part), strlen(smtpx_part_path(part)));
    plog_add(l, " ", 1);
    plog_add(l, smtpx_part_type(part), strlen(smtpx_part_type(part)));
    if (cs != NULL) {
        plog_add(l, " ", 1);
        plog_add(l, cs, strlen(cs));
    }
    plog_add(l, "]", 1);
    return 0;
}

static int pl_data(smtpx_msg_parser *p, const smtpx_part *part,
                   const uint8_t *data, size_t len, void *ud)
{
    (void)p;
    (void)part;
    plog_add(ud, data, len);
    return 0;
}

static int pl_header(smtpx_msg_parser *p, const smtpx_part *part,
                     const char *name, size_t name_len, const char *value,
                     size_t value_len, void *ud)
{
    (void)p;
    (void)part;
    if (name_len == 25 &&
        strncasecmp(name, "Content-Transfer-Encoding", 25) == 0)
        return 0; /* the one field that changes */
    plog_add(ud, "{", 1);
    plog_add(ud, name, name_len);
    plog_add(ud, ":", 1);
    plog_add(ud, value, value_len);
    plog_add(ud, "}", 1);
    return 0;
}

/* parsed - what the parser finds in a message: headers, parts and decoded
 * content, line ends made CRLF (a converted part has CRLF) */
static char *parsed(const char *in, size_t n)
{
    static const smtpx_msg_callbacks cbs = {.on_header = pl_header,
                                            .on_part_begin = pl_begin,
                                            .on_part_data = pl_data};
    smtpx_msg_parser *p;
    plog l = {NULL, 0, 0}, crlf = {NULL, 0, 0};
    size_t i;

    plog_add(&l, "", 0);
    ck_assert_int_eq(smtpx_msg_parser_new(&p, NULL, 0, &cbs, sizeof(cbs), &l),
                     0);
    ck_assert_int_eq(smtpx_msg_parser_feed(p, in, n), 0);
    ck_assert_int_eq(smtpx_msg_parser_end(p), 0);
    smtpx_msg_parser_free(p);
    plog_add(&crlf, "", 0);
    for (i = 0; i < l.len; i++) {
        if (l.p[i] == '\n' && (i == 0 || l.p[i - 1] != '\r'))
            plog_add(&crlf, "\r", 1);
        plog_add(&crlf, l.p + i, 1);
    }
    free(l.p);
    return crlf.p;
}

/* same_content - in and its conversion parse alike */
static void same_content(const char *in, size_t n, const result *r)
{
    char *a = parsed(in, n), *b = parsed(r->out, r->len);

    ck_assert_str_eq(b, a);
    free(a);
    free(b);
}

#define S(lit) lit, sizeof(lit) - 1

/* ---- exact output ---------------------------------------------------------
 */

static void expect(const char *in, size_t n, const char *want, size_t parts)
{
    result r = convert(in, n, 0, 0, 0, NULL);

    ck_assert_msg(r.rc == 0, "rc %d: %s", r.rc, r.why);
    ck_assert_str_eq(r.out, want);
    ck_assert_uint_eq(r.size, strlen(want));
    ck_assert_uint_eq(r.parts, parts);
    check_7bit(r.out, r.len);
    same_content(in, n, &r);
    free(r.out);
}

START_TEST(test_7bit_copied)
{
    static const char msg[] = "From: a@example.org\r\n"
                              "Subject: plain\r\n"
                              "\r\n"
                              "Hello =  \r\n"
                              "there\r\n";

    expect(S(msg), msg, 0);
    /* Its encoding field moves to the end of the header; 7bit stays. */
    expect(S("Content-Transfer-Encoding: 7bit\r\nSubject: s\r\n\r\nx\r\n"),
           "Subject: s\r\nContent-Transfer-Encoding: 7bit\r\n\r\nx\r\n", 0);
    /* A 7-bit part labelled 8bit or binary is labelled 7bit: over a
     * 7-bit transport those labels are wrong (RFC 2045 6.2). */
    expect(S("Content-Transfer-Encoding: 8bit\r\n\r\nplain\r\n"),
           "Content-Transfer-Encoding: 7bit\r\n\r\nplain\r\n", 0);
    expect(S("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
             "Content-Transfer-Encoding: BINARY\r\n\r\nx\r\n--b--\r\n"),
           "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
           "Content-Transfer-Encoding: 7bit\r\n\r\nx\r\n--b--\r\n",
           0);
    /* No body, and no line end at the very end. */
    expect(S("Subject: s\r\n"), "Subject: s\r\n", 0);
    expect(S("Subject: s\r\n\r\nno end"), "Subject: s\r\n\r\nno end", 0);
    expect(S(""), "", 0);
}
END_TEST

START_TEST(test_8bit_text)
{
    static const char msg[] = "From: a@example.org\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "Content-Transfer-Encoding: 8bit\r\n"
                              "Subject: x\r\n"
                              "\r\n"
                              "Caf\xc3\xa9 = ok \r\n"
                              "\tline2\t\r\n"
                              ".\r\n";
    static const char want[] = "From: a@example.org\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Subject: x\r\n"
                               "Content-Transfer-Encoding: quoted-printable\r\n"
                               "\r\n"
                               "Caf=C3=A9 =3D ok=20\r\n"
                               "\tline2=09\r\n"
                               ".\r\n";

    expect(S(msg), want, 1);
    /* No encoding field: one is added.  LF line ends: the header keeps
     * them, the converted content gets CRLF. */
    expect(S("Subject: s\n\n\xff\xfe\n"),
           "Subject: s\nContent-Transfer-Encoding: quoted-printable\r\n\n"
           "=FF=FE\r\n",
           1);
    /* A folded encoding field, labelled binary. */
    expect(S("Content-Transfer-Encoding:\r\n binary\r\n\r\n\x80\r\n"),
           "Content-Transfer-Encoding: quoted-printable\r\n\r\n=80\r\n", 1);
}
END_TEST

START_TEST(test_long_line)
{
    char msg[3200], *want;
    size_t n, i;
    result r;

    /* A 7-bit part with a line of 3000 octets: converted, soft breaks. */
    n = (size_t)snprintf(msg, sizeof(msg), "Subject: long\r\n\r\n");
    for (i = 0; i < 3000; i++)
        msg[n++] = (char)('a' + i % 26);
    memcpy(msg + n, "\r\nend\r\n", 7);
    n += 7;
    r = convert(msg, n, 0, 0, 0, NULL);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_uint_eq(r.parts, 1);
    ck_assert_uint_eq(r.size, r.len);
    ck_assert_ptr_nonnull(strstr(r.out, "quoted-printable\r\n\r\nabc"));
    want = strstr(r.out, "=\r\n");
    ck_assert_ptr_nonnull(want);
    ck_assert_uint_eq((size_t)(want - strstr(r.out, "\r\n\r\n")) - 4, 75);
    check_7bit(r.out, r.len);
    same_content(msg, n, &r);
    free(r.out);
    /* 998 octets is not long. */
    n = (size_t)snprintf(msg, sizeof(msg), "Subject: s\r\n\r\n");
    memset(msg + n, 'x', 998);
    memcpy(msg + n + 998, "\r\n", 2);
    n += 1000;
    msg[n] = '\0';
    r = convert(msg, n, 0, 0, 0, NULL);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_uint_eq(r.parts, 0);
    ck_assert_str_eq(r.out, msg);
    free(r.out);
    /* 999 is, with LF alone too, in a header as well. */
    n = (size_t)snprintf(msg, sizeof(msg), "Subject: s\n\n");
    memset(msg + n, 'x', 999);
    msg[n + 999] = '\n';
    n += 1000;
    r = convert(msg, n, 0, 0, 0, NULL);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_uint_eq(r.parts, 1);
    free(r.out);
    memset(msg, 'x', 999);
    msg[3] = ':';
    memcpy(msg + 999, "\n\nx\n", 4);
    r = convert(msg, 1003, 0, 0, 0, NULL);
    ck_assert_int_eq(r.rc, SMTPX_ERR_NOT_SUPPORTED);
    free(r.out);
    memcpy(msg + 998, "\n\nx\n", 4);
    r = convert(msg, 1002, 0, 0, 0, NULL);
    ck_assert_int_eq(r.rc, 0);
    free(r.out);
    /* 999 is. */
    n = (size_t)snprintf(msg, sizeof(msg), "Subject: s\r\n\r\n");
    memset(msg + n, 'x', 999);
    memcpy(msg + n + 999, "\r\n", 2);
    n += 1001;
    r = convert(msg, n, 0, 0, 0, NULL);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_uint_eq(r.parts, 1);
    free(r.out);
}
END_TEST

static const char multi[] =
    "From: a@example.org\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "Content-Type: multipart/mixed;\r\n"
    " boundary=\"outer b\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--outer b\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "Content-Transfer-Encoding: 7bit\r\n"
    "\r\n"
    "seven\r\n"
    "--outer b  \r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "\r\n"
    "\xe9t\xe9\r\n"
    "\r\n"
    "--outer b\r\n"
    "Content-Type: message/rfc822\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Subject: inner\r\n"
    "Content-Type: multipart/alternative; boundary=in\r\n"
    "\r\n"
    "--in\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "gr\xc3\xbc\xc3\x9f\r\n"
    "--in\r\n"
    "Content-Type: text/html\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "PGI+aGk8L2I+\r\n"
    "--in--\r\n"
    "--outer b\r\n"
    "Content-Type: multipart/digest; boundary=dg\r\n"
    "\r\n"
    "--dg\r\n"
    "\r\n"
    "Subject: in a digest\r\n"
    "\r\n"
    "d\xc3\xa9j\xc3\xa0\r\n"
    "--dg--\r\n"
    "--outer b--\r\n"
    "epilogue\r\n";

static const char multi_want[] =
    "From: a@example.org\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed;\r\n"
    " boundary=\"outer b\"\r\n"
    "Content-Transfer-Encoding: 7bit\r\n"
    "\r\n"
    "preamble\r\n"
    "--outer b\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "Content-Transfer-Encoding: 7bit\r\n"
    "\r\n"
    "seven\r\n"
    "--outer b  \r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "=E9t=E9\r\n"
    "\r\n"
    "--outer b\r\n"
    "Content-Type: message/rfc822\r\n"
    "Content-Transfer-Encoding: 7bit\r\n"
    "\r\n"
    "Subject: inner\r\n"
    "Content-Type: multipart/alternative; boundary=in\r\n"
    "\r\n"
    "--in\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "gr=C3=BC=C3=9F\r\n"
    "--in\r\n"
    "Content-Type: text/html\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "PGI+aGk8L2I+\r\n"
    "--in--\r\n"
    "--outer b\r\n"
    "Content-Type: multipart/digest; boundary=dg\r\n"
    "\r\n"
    "--dg\r\n"
    "\r\n"
    "Subject: in a digest\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "d=C3=A9j=C3=A0\r\n"
    "--dg--\r\n"
    "--outer b--\r\n"
    "epilogue\r\n";

START_TEST(test_multipart)
{
    expect(S(multi), multi_want, 3);
}
END_TEST

START_TEST(test_binary_container)
{
    /* A container labelled binary is labelled 7bit; one labelled base64
     * is not a container (RFC 2045 6.4) but a leaf, kept if 7-bit. */
    expect(S("Content-Type: multipart/mixed; boundary=b\r\n"
             "Content-Transfer-Encoding: binary\r\n\r\n"
             "--b\r\n\r\n\xe9\r\n--b--\r\n"),
           "Content-Type: multipart/mixed; boundary=b\r\n"
           "Content-Transfer-Encoding: 7bit\r\n\r\n"
           "--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
           "=E9\r\n--b--\r\n",
           1);
    expect(S("Content-Type: multipart/mixed; boundary=b\r\n"
             "Content-Transfer-Encoding: base64\r\n\r\n"
             "--b\r\n\r\nQUJD\r\n--b--\r\n"),
           "Content-Type: multipart/mixed; boundary=b\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n"
           "--b\r\n\r\nQUJD\r\n--b--\r\n",
           0);
}
END_TEST

START_TEST(test_no_new_delimiter)
{
    /* "---=" is not a delimiter of "-=3D", but its encoding would be: a
     * "-" that begins a line of quoted-printable is encoded too.  Soft
     * breaks included. */
    char msg[400], want[600];
    size_t n, w;

    expect(S("Content-Type: multipart/mixed; boundary=\"-=3D\"\r\n\r\n"
             "---=3D\r\n\r\n\xe9\r\n---=\r\n--x\r\n---=3D--\r\n"),
           "Content-Type: multipart/mixed; boundary=\"-=3D\"\r\n\r\n"
           "---=3D\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
           "=E9\r\n=2D--=3D\r\n=2D-x\r\n---=3D--\r\n",
           1);
    n = (size_t)snprintf(msg, sizeof(msg), "Subject: s\r\n\r\n\xe9");
    w = (size_t)snprintf(want, sizeof(want),
                         "Subject: s\r\nContent-Transfer-Encoding: "
                         "quoted-printable\r\n\r\n=E9");
    memset(msg + n, 'a', 72);
    memset(want + w, 'a', 72);
    n += 72;
    w += 72;
    memcpy(msg + n, "--b\r\n", 5);
    memcpy(want + w, "=\r\n=2D-b\r\n", 10);
    msg[n + 5] = '\0';
    want[w + 10] = '\0';
    expect(msg, n + 5, want, 1);
}
END_TEST

/* mostly8 - a message with a 2 KiB part of Cyrillic UTF-8 text (multi:
 * in a multipart, else the whole body) into buf; returns its length */
static size_t mostly8(char *buf, size_t size, int in_multi)
{
    size_t n = (size_t)snprintf(
        buf, size, "%s",
        in_multi ? "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n"
                   "Content-Transfer-Encoding: 8bit\r\n\r\n"
                 : "Content-Type: text/plain; charset=utf-8\r\n\r\n");
    int i;

    for (i = 0; i < 60; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s\r\n",
                              i % 7 == 6 ? ""
                                         : "\xd0\xbf\xd1\x80\xd0\xb8"
                                           "\xd0\xb2\xd0\xb5\xd1\x82, "
                                           "\xd0\xbc\xd0\xb8\xd1\x80 ");
    if (in_multi)
        n += (size_t)snprintf(buf + n, size - n, "--b--\r\n");
    return n;
}

/* Text that is mostly 8-bit goes as base64 (quoted-printable would be
 * three times its size): lines of 76, the line end before a delimiter
 * not part of the content, exact size, every split. */
START_TEST(test_base64)
{
    static char msg[4096];
    int m;

    for (m = 0; m < 2; m++) {
        size_t n = mostly8(msg, sizeof(msg), m), cut, i, col = 0;
        result r = convert(msg, n, 0, 0, 0, NULL), c;
        const char *b;

        ck_assert_int_eq(r.rc, 0);
        ck_assert_uint_eq(r.parts, 1);
        ck_assert_uint_eq(r.size, r.len);
        b = strstr(r.out, "Content-Transfer-Encoding: base64\r\n\r\n");
        ck_assert_ptr_nonnull(b);
        for (i = (size_t)(b - r.out) + 37; i < r.len && r.out[i] != '-'; i++) {
            if (r.out[i] == '\n') {
                ck_assert(col == 77 || i + 1 == r.len || r.out[i + 1] == '-');
                col = 0;
            } else {
                col++;
            }
        }
        ck_assert_uint_lt(r.len, n * 3 / 2);
        check_7bit(r.out, r.len);
        same_content(msg, n, &r);
        if (m)
            ck_assert_ptr_nonnull(strstr(r.out, "\r\n--b--\r\n"));
        for (cut = 1; cut < n; cut += 37) {
            c = convert(msg, n, cut, cut, cut % 5 + 1, NULL);
            ck_assert_int_eq(c.rc, 0);
            ck_assert_uint_eq(c.len, r.len);
            ck_assert(memcmp(c.out, r.out, r.len) == 0);
            free(c.out);
        }
        free(r.out);
    }
}
END_TEST

START_TEST(test_message_global)
{
    /* message/global is a leaf here: encoded whole (RFC 6532 3.5). */
    result r = convert(S("Content-Type: message/global\r\n\r\n"
                         "Subject: \xc3\xa9\r\n\r\nx\r\n"),
                       0, 0, 0, NULL);

    ck_assert_int_eq(r.rc, 0);
    ck_assert_str_eq(r.out, "Content-Type: message/global\r\n"
                            "Content-Transfer-Encoding: quoted-printable\r\n"
                            "\r\nSubject: =C3=A9\r\n\r\nx\r\n");
    ck_assert_uint_eq(r.parts, 1);
    free(r.out);
}
END_TEST

/* every split of the scan and of the source, and reads of one octet */
START_TEST(test_splits)
{
    size_t n = sizeof(multi) - 1, cut;
    result whole = convert(multi, n, 0, 0, 0, NULL);

    ck_assert_int_eq(whole.rc, 0);
    for (cut = 1; cut <= n; cut++) {
        result r = convert(multi, n, cut, cut, cut % 7 + 1, NULL);

        ck_assert_msg(r.rc == 0, "cut %zu: %d", cut, r.rc);
        ck_assert_uint_eq(r.len, whole.len);
        ck_assert_msg(memcmp(r.out, whole.out, r.len) == 0, "cut %zu", cut);
        free(r.out);
    }
    free(whole.out);
}
END_TEST

/* ---- refusals and limits --------------------------------------------------
 */

static void refused(const char *in, size_t n, int rc, const char *why)
{
    result r = convert(in, n, 0, 0, 0, NULL);

    ck_assert_int_eq(r.rc, rc);
    ck_assert_str_eq(r.why, why);
    free(r.out);
    /* The same, a octet at a time. */
    r = convert(in, n, 1, 0, 0, NULL);
    ck_assert_int_eq(r.rc, rc);
    ck_assert_str_eq(r.why, why);
    free(r.out);
}

START_TEST(test_refused)
{
    char big[12000];
    size_t n;

    refused(S("From: a\r\nSubject: \xc3\xa9\r\n\r\nx\r\n"),
            SMTPX_ERR_NOT_SUPPORTED, "8-bit octets in a header field, line 2");
    refused(S("Content-Type: multipart/mixed; boundary=b\r\n\r\n"
              "pr\xe9\r\n--b\r\n\r\nx\r\n--b--\r\n"),
            SMTPX_ERR_NOT_SUPPORTED,
            "8-bit octets in a preamble or epilogue, line 3");
    refused(S("Content-Type: multipart/mixed; boundary=b\r\n\r\n"
              "--b\r\n\r\nx\r\n--b--\r\nep\xe9\r\n"),
            SMTPX_ERR_NOT_SUPPORTED,
            "8-bit octets in a preamble or epilogue, line 7");
    refused(S("Content-Type: multipart/mixed; boundary=b\r\n\r\n"
              "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"
              "--b\r\nContent-Transfer-Encoding: base64\r\n\r\n"
              "QUJD\r\n\xff\r\n--b--\r\n"),
            SMTPX_ERR_NOT_SUPPORTED,
            "8-bit octets or a long line in a part not labelled 7bit, "
            "8bit or binary, line 11");
    refused(S("Content-Transfer-Encoding: x-uuencode\r\n\r\n\xff\r\n"),
            SMTPX_ERR_NOT_SUPPORTED,
            "8-bit octets or a long line in a part not labelled 7bit, "
            "8bit or binary, line 3");
    /* A header line of 999 octets. */
    n = (size_t)snprintf(big, sizeof(big), "X-Long: ");
    memset(big + n, 'y', 999 - n);
    memcpy(big + 999, "\r\n\r\nx\r\n", 7);
    refused(big, 1006, SMTPX_ERR_NOT_SUPPORTED,
            "a header line longer than 998 octets, line 1");
}
END_TEST

START_TEST(test_limits)
{
    char *m = malloc(200000);
    size_t n = 0, i;

    ck_assert_ptr_nonnull(m);
    /* 32 multiparts deep: taken; 33: not. */
    for (i = 0; i < 33; i++)
        n += (size_t)sprintf(m + n,
                             "Content-Type: multipart/mixed; boundary=b%zu\r\n"
                             "\r\n--b%zu\r\n",
                             i, i);
    n += (size_t)sprintf(m + n, "\r\n\xe9\r\n");
    refused(m, n, SMTPX_ERR_LIMIT, "multiparts nested over 32 deep, line 98");
    n = 0;
    for (i = 0; i < 32; i++)
        n += (size_t)sprintf(m + n,
                             "Content-Type: multipart/mixed; boundary=b%zu\r\n"
                             "\r\n--b%zu\r\n",
                             i, i);
    n += (size_t)sprintf(m + n, "\r\n\xe9\r\n");
    {
        result r = convert(m, n, 0, 0, 0, NULL);

        ck_assert_int_eq(r.rc, 0);
        ck_assert_uint_eq(r.parts, 1);
        free(r.out);
    }
    /* 10000 entities: taken; 10001: not. */
    n = (size_t)sprintf(m, "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
    for (i = 0; i < 9999; i++)
        n += (size_t)sprintf(m + n, "--b\r\n\r\n%s\r\n",
                             i == 9998 ? "\xe9" : "x");
    {
        result r = convert(m, n, 0, 0, 0, NULL);

        ck_assert_int_eq(r.rc, 0);
        ck_assert_uint_eq(r.parts, 1);
        free(r.out);
    }
    n += (size_t)sprintf(m + n, "--b\r\n\r\nx\r\n");
    refused(m, n, SMTPX_ERR_LIMIT, "more than 10000 parts, line 30000");
    /* A boundary of 200 octets: taken; 201: not. */
    for (i = 200; i <= 201; i++) {
        n = (size_t)sprintf(m, "Content-Type: multipart/mixed; boundary=");
        memset(m + n, 'q', i);
        n += i;
        n += (size_t)sprintf(m + n, "\r\n\r\n--");
        memset(m + n, 'q', i);
        n += i;
        n += (size_t)sprintf(m + n, "\r\n\r\n\xe9\r\n");
        if (i == 200) {
            result r = convert(m, n, 0, 0, 0, NULL);

            ck_assert_int_eq(r.rc, 0);
            ck_assert_uint_eq(r.parts, 1);
            free(r.out);
        } else {
            refused(m, n, SMTPX_ERR_LIMIT,
                    "a boundary over 200 octets, line 2");
        }
    }
    /* A Content-Type over 4096 octets, folded. */
    n = (size_t)sprintf(m, "Content-Type: text/plain;\r\n");
    for (i = 0; i < 50; i++)
        n += (size_t)sprintf(m + n, " x%02zu=%0*d;\r\n", i, 80, 0);
    n += (size_t)sprintf(m + n, "\r\nx\r\n");
    refused(m, n, SMTPX_ERR_LIMIT,
            "a Content-Type field over 4096 octets, line 49");
    /* A Content-Transfer-Encoding field over 1000 octets. */
    n = (size_t)sprintf(m, "Content-Transfer-Encoding: 8bit\r\n");
    for (i = 0; i < 20; i++)
        n += (size_t)sprintf(m + n, " %0*d\r\n", 60, 0);
    n += (size_t)sprintf(m + n, "\r\nx\r\n");
    refused(m, n, SMTPX_ERR_LIMIT,
            "a Content-Transfer-Encoding field over 1000 octets, line 17");
    free(m);
}
END_TEST

/* ---- the second pass: a different message, a failing source ------------
 */

START_TEST(test_source)
{
    static const char a[] = "Subject: s\r\n\r\n\xe9t\xe9\r\n";
    static const char longer[] = "Subject: s\r\n\r\n\xe9t\xe9\r\nmore\r\n";
    static const char hdr8[] = "Subject: \xe9\r\n\r\n\xe9t\xe9\r\n";
    static const char two[] =
        "Content-Type: multipart/mixed; boundary=b\r\n"
        "\r\n--b\r\n\r\n\xe9\r\n--b\r\n\r\nx\r\n--b--\r\n";
    const char *other[] = {longer, hdr8, two};
    smtpx_msg_downgrade *d;
    uint8_t buf[4096];
    smtpx_ssize got;
    size_t i;

    for (i = 0; i < 3; i++) {
        src s = {other[i], strlen(other[i]), 0, 0, 0};

        ck_assert_int_eq(smtpx_msg_downgrade_new(&d, NULL), 0);
        ck_assert_int_eq(smtpx_msg_downgrade_scan(d, S(a)), 0);
        ck_assert_int_eq(smtpx_msg_downgrade_scan_end(d, NULL, NULL), 0);
        ck_assert_int_eq(smtpx_msg_downgrade_source(d, src_read, &s), 0);
        do
            got = smtpx_msg_downgrade_read(d, buf, sizeof(buf));
        while (got > 0);
        ck_assert_int_eq(got, SMTPX_ERR_CORRUPT);
        /* Sticky. */
        ck_assert_int_eq(smtpx_msg_downgrade_read(d, buf, sizeof(buf)),
                         SMTPX_ERR_CORRUPT);
        smtpx_msg_downgrade_free(d);
    }
    /* The source fails half-way: its error; it gives too much: IO. */
    {
        src s = {a, sizeof(a) - 1, 0, 4, SMTPX_ERR_NOSPACE};

        ck_assert_int_eq(smtpx_msg_downgrade_new(&d, NULL), 0);
        ck_assert_int_eq(smtpx_msg_downgrade_scan(d, S(a)), 0);
        ck_assert_int_eq(smtpx_msg_downgrade_scan_end(d, NULL, NULL), 0);
        ck_assert_int_eq(smtpx_msg_downgrade_source(d, src_read, &s), 0);
        do
            got = smtpx_msg_downgrade_read(d, buf, sizeof(buf));
        while (got > 0);
        ck_assert_int_eq(got, SMTPX_ERR_NOSPACE);
        smtpx_msg_downgrade_free(d);
    }
}
END_TEST

static smtpx_ssize too_much(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    return (smtpx_ssize)len + 1;
}

START_TEST(test_api)
{
    smtpx_msg_downgrade *d;
    smtpx_mem bad = {0};
    uint8_t buf[16];
    src s = {"x", 1, 0, 0, 0};

    ck_assert_int_eq(smtpx_msg_downgrade_new(NULL, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_downgrade_new(&d, &bad),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(d);
    smtpx_msg_downgrade_free(NULL);
    ck_assert_str_eq(smtpx_msg_downgrade_why(NULL), "");
    ck_assert_int_eq(smtpx_msg_downgrade_scan(NULL, "x", 1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_downgrade_new(&d, NULL), 0);
    ck_assert_int_eq(smtpx_msg_downgrade_scan(d, NULL, 1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_downgrade_scan(d, NULL, 0), 0);
    /* Nothing to read before a source, no source before the scan ends. */
    ck_assert_int_eq(smtpx_msg_downgrade_read(d, buf, sizeof(buf)),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_msg_downgrade_source(d, src_read, &s),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_msg_downgrade_scan(d, "x", 1), 0);
    ck_assert_int_eq(smtpx_msg_downgrade_scan_end(d, NULL, NULL), 0);
    ck_assert_int_eq(smtpx_msg_downgrade_scan(d, "x", 1),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_msg_downgrade_scan_end(d, NULL, NULL),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_msg_downgrade_source(d, NULL, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_downgrade_source(d, too_much, NULL), 0);
    ck_assert_int_eq(smtpx_msg_downgrade_source(d, src_read, &s),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_msg_downgrade_read(NULL, buf, 1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_downgrade_read(d, NULL, 1),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_downgrade_read(d, buf, 0),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_msg_downgrade_read(d, buf, sizeof(buf)),
                     SMTPX_ERR_IO);
    smtpx_msg_downgrade_free(d);
    /* A failed scan: no source. */
    ck_assert_int_eq(smtpx_msg_downgrade_new(&d, NULL), 0);
    ck_assert_int_eq(smtpx_msg_downgrade_scan(d, S("S: \xe9\r\n")),
                     SMTPX_ERR_NOT_SUPPORTED);
    ck_assert_int_eq(smtpx_msg_downgrade_scan(d, S("x")),
                     SMTPX_ERR_NOT_SUPPORTED);
    ck_assert_int_eq(smtpx_msg_downgrade_scan_end(d, NULL, NULL),
                     SMTPX_ERR_NOT_SUPPORTED);
    ck_assert_int_eq(smtpx_msg_downgrade_source(d, src_read, &s),
                     SMTPX_ERR_INVALID_STATE);
    smtpx_msg_downgrade_free(d);
}
END_TEST

START_TEST(test_nomem)
{
    long at;
    int ok = 0;

    for (at = 1; at < 200 && !ok; at++) {
        failmalloc fm = {.fail_at = at};
        smtpx_mem mem = failmalloc_mem(&fm);
        result r = convert(S(multi), 0, 0, 0, &mem);

        ck_assert_msg(r.rc == 0 || r.rc == SMTPX_ERR_NOMEM, "at %ld: %d", at,
                      r.rc);
        if (r.rc == 0) {
            ck_assert_str_eq(r.out, multi_want);
            ok = fm.failures == 0;
        }
        ck_assert_int_eq(fm.live, 0);
        free(r.out);
    }
    ck_assert(ok);
}
END_TEST

Suite *suite_msg_downgrade(void)
{
    Suite *s = suite_create("msg_downgrade");
    TCase *tc = tcase_create("downgrade");

    tcase_add_test(tc, test_7bit_copied);
    tcase_add_test(tc, test_8bit_text);
    tcase_add_test(tc, test_long_line);
    tcase_add_test(tc, test_multipart);
    tcase_add_test(tc, test_binary_container);
    tcase_add_test(tc, test_no_new_delimiter);
    tcase_add_test(tc, test_base64);
    tcase_add_test(tc, test_message_global);
    tcase_add_test(tc, test_splits);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_source);
    tcase_add_test(tc, test_api);
    tcase_add_test(tc, test_nomem);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
