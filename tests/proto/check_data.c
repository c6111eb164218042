/*
 * check_data - the DATA scanner: end detection, unstuffing, line ends, and
 * every SMTP smuggling variant, fed whole, byte by byte and split at every
 * position.
 */
#include <string.h>

#include "proto/data.h"
#include "harness/guard.h"
#include "suites.h"

typedef struct sink {
    char buf[8192];
    size_t len;
    size_t calls;
    int stop_after; /* ask to stop after this many calls; 0 never */
} sink;

static int sink_emit(void *ctx, const uint8_t *p, size_t n)
{
    sink *k = ctx;

    ck_assert_uint_gt(n, 0);
    ck_assert_uint_lt(k->len + n, sizeof(k->buf));
    memcpy(k->buf + k->len, p, n);
    k->len += n;
    k->calls++;
    return k->stop_after != 0 && k->calls % (size_t)k->stop_after == 0;
}

/*
 * scan - feed in[] in pieces (cut at positions cuts[], or byte by byte when
 * bytewise); return the offset just after the end marker or -1, and the
 * content in k.
 */
static long scan(const char *in, size_t len, int bytewise, size_t cut, sink *k,
                 smtpx__dot *d, int stop_after)
{
    size_t pos = 0;
    int end = 0;

    memset(k, 0, sizeof(*k));
    k->stop_after = stop_after;
    smtpx__dot_init(d, 1000, 1);
    while (pos < len) {
        size_t piece = len - pos;
        const char *g;
        size_t used;

        if (bytewise)
            piece = 1;
        else if (cut > pos && cut < len)
            piece = cut - pos;
        g = guard_copy(in + pos, piece);
        used =
            smtpx__dot_scan(d, (const uint8_t *)g, piece, sink_emit, k, &end);
        ck_assert_uint_le(used, piece);
        pos += used;
        if (end)
            return (long)pos;
        if (used < piece) {
            /* The scanner stopped for the sink: go on with the rest. */
            ck_assert_int_ne(stop_after, 0);
            continue;
        }
    }
    return -1;
}

static const struct data_case {
    const char *name;
    const char *in;
    long end;        /* offset after the end marker, -1 if none */
    const char *out; /* content handed on */
    int bare;        /* a bare CR or LF was reported */
} data_cases[] = {
    {"simple", "Subject: x\r\n\r\nbody\r\n.\r\n", 23,
     "Subject: x\r\n\r\nbody\r\n", 0},
    {"empty", ".\r\n", 3, "", 0},
    {"stuffed", "..dot\r\n.\r\n", 10, ".dot\r\n", 0},
    {"double stuffed", "...\r\n.\r\n", 8, "..\r\n", 0},
    {"dot inside", "a.b\r\n.x\r\n.\r\n", 12, "a.b\r\nx\r\n", 0},
    {"after end", "a\r\n.\r\nMAIL FROM:<x>\r\n", 6, "a\r\n", 0},
    /* SMTP smuggling: none of these ends the message. */
    {"LF.LF", "a\n.\nMAIL FROM:<x>\r\n.\r\n", 22, "a\r\n.\r\nMAIL FROM:<x>\r\n",
     1},
    {"LF.CRLF", "a\n.\r\nRCPT\r\n.\r\n", 14, "a\r\n.\r\nRCPT\r\n", 1},
    {"CRLF.LF", "a\r\n.\nRCPT\r\n.\r\n", 14, "a\r\n.\r\nRCPT\r\n", 1},
    {"CR.CR", "a\r.\rRCPT\r\n.\r\n", 13, "a\r\n.\r\nRCPT\r\n", 1},
    {"CRLF.CR", "a\r\n.\rRCPT\r\n.\r\n", 14, "a\r\n.\r\nRCPT\r\n", 1},
    {"CR.CRLF", "a\r.\r\nRCPT\r\n.\r\n", 14, "a\r\n.\r\nRCPT\r\n", 1},
    {"CRLF.CRCRLF", "a\r\n.\r\r\nX\r\n.\r\n", 13, "a\r\n.\r\n\r\nX\r\n", 1},
    {"CRLF.NUL", "a\r\n.\0\r\n.\r\n", 10, "a\r\n\0\r\n", 0},
    /* Bare line ends are handed on as CRLF. */
    {"bare LF", "one\ntwo\r\n.\r\n", 12, "one\r\ntwo\r\n", 1},
    {"bare CR", "one\rtwo\r\n.\r\n", 12, "one\r\ntwo\r\n", 1},
    {"CRCRLF", "one\r\r\n.\r\n", 9, "one\r\n\r\n", 1},
    {"stuffed after bare LF", "x\n..y\r\n.\r\n", 10, "x\r\n.y\r\n", 1},
    {"no end", "a\r\nb\r\n", -1, "a\r\nb\r\n", 0},
    {"eight bit", "caf\xc3\xa9\r\n.\r\n", 10, "caf\xc3\xa9\r\n", 0},
};

START_TEST(test_cases)
{
    const struct data_case *c = &data_cases[_i];
    size_t len = strlen(c->in);
    size_t outlen = strlen(c->out), cut;
    smtpx__dot d;
    sink k;
    long end;
    int mode;

    /* Literal NULs: count them by hand for the one case that has one. */
    if (strcmp(c->name, "CRLF.NUL") == 0) {
        len = 10;
        outlen = 6;
    }
    for (mode = 0; mode < 3; mode++) {
        for (cut = 0; cut <= (mode == 2 ? len : 0); cut++) {
            end = scan(c->in, len, mode == 1, mode == 2 ? cut : 0, &k, &d, 0);
            ck_assert_msg(end == c->end, "%s (mode %d cut %zu): end %ld",
                          c->name, mode, cut, end);
            ck_assert_msg(k.len == outlen && memcmp(k.buf, c->out, outlen) == 0,
                          "%s (mode %d cut %zu): content differs", c->name,
                          mode, cut);
            ck_assert_int_eq(d.bare, c->bare);
        }
    }
}
END_TEST

START_TEST(test_spans_are_zero_copy)
{
    /* Ordinary content arrives as one span of the caller's buffer. */
    static const char in[] = "line one\r\nline two\r\nline three\r\n.\r\n";
    smtpx__dot d;
    sink k;
    int end = 0;

    memset(&k, 0, sizeof(k));
    smtpx__dot_init(&d, 1000, 1);
    smtpx__dot_scan(&d, (const uint8_t *)in, sizeof(in) - 1, sink_emit, &k,
                    &end);
    ck_assert_int_eq(end, 1);
    ck_assert_uint_eq(k.calls, 1);
}
END_TEST

START_TEST(test_stop)
{
    /* Stopping after every piece loses and repeats nothing. */
    static const char in[] = "a\nb\r..c\r\nd\r\n.\r\n";
    smtpx__dot d;
    sink k;
    long end;

    end = scan(in, sizeof(in) - 1, 0, 0, &k, &d, 1);
    ck_assert_int_eq(end, (long)sizeof(in) - 1);
    ck_assert_uint_eq(k.len, 13);
    ck_assert(memcmp(k.buf, "a\r\nb\r\n.c\r\nd\r\n", 13) == 0);
}
END_TEST

START_TEST(test_long_line)
{
    char in[2100];
    smtpx__dot d;
    sink k;

    /* 998 octets + CRLF is the most RFC 5321 4.5.3.1.6 allows. */
    memset(in, 'x', 998);
    memcpy(in + 998, "\r\n.\r\n", 5);
    ck_assert_int_eq(scan(in, 1003, 0, 0, &k, &d, 0), 1003);
    ck_assert_int_eq(d.long_line, 0);
    memset(in, 'x', 999);
    memcpy(in + 999, "\r\n.\r\n", 5);
    ck_assert_int_eq(scan(in, 1004, 1, 0, &k, &d, 0), 1004);
    ck_assert_int_eq(d.long_line, 1);
    /* RFC 5321 4.5.3.1.6: the dot duplicated for transparency does not
     * count.  A 998-octet line that begins with "." is 999 octets on the
     * wire, and allowed; 999 octets of content are not. */
    in[0] = '.';
    in[1] = '.';
    memset(in + 2, 'x', 997);
    memcpy(in + 999, "\r\n.\r\n", 5);
    ck_assert_int_eq(scan(in, 1004, 0, 500, &k, &d, 0), 1004);
    ck_assert_int_eq(d.long_line, 0);
    in[0] = '.';
    memset(in + 1, 'x', 998);
    memcpy(in + 999, "\r\n.\r\n", 5);
    ck_assert_int_eq(scan(in, 1004, 0, 500, &k, &d, 0), 1004);
    ck_assert_int_eq(d.long_line, 0);
    in[0] = '.';
    memset(in + 1, 'x', 999);
    memcpy(in + 1000, "\r\n.\r\n", 5);
    ck_assert_int_eq(scan(in, 1005, 0, 500, &k, &d, 0), 1005);
    ck_assert_int_eq(d.long_line, 1);
}
END_TEST

START_TEST(test_every_offset)
{
    /* The scanner takes ordinary lines in runs, 32 octets at a time where
     * the processor allows: every kind of line end, at every offset from
     * such a block's start and on its edges, must give what feeding one
     * octet at a time (which never runs) gives. */
    static const char *const tails[] = {
        "\r\n",       "\n",       "\r",          "\r\n.x\r\n",
        "\r\n..\r\n", "\r\n\r\n", "\r\r\n",      "\n.\n",
        "\r\n.\n",    "\n.\r\n",  "\r\n.\r\r\n", "\r\n.\r\nX",
        "\r\n\n",     "\r\n.",    "\r\n\r",      "\r\nz\r\n.\r"};
    char in[600];
    size_t t, o, len;

    for (t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
        for (o = 0; o < 100; o++) {
            smtpx__dot d1, d2;
            sink k1, k2;
            long e1, e2;

            memset(in, 'a', o);
            len = o;
            memcpy(in + len, tails[t], strlen(tails[t]));
            len += strlen(tails[t]);
            memcpy(in + len, "more text\r\nand more\r\n.\r\n", 24);
            len += 24;
            e1 = scan(in, len, 0, 0, &k1, &d1, 0);
            e2 = scan(in, len, 1, 0, &k2, &d2, 0);
            ck_assert_msg(e1 == e2, "tail %zu offset %zu: end %ld vs %ld", t, o,
                          e1, e2);
            ck_assert_uint_eq(k1.len, k2.len);
            ck_assert(memcmp(k1.buf, k2.buf, k1.len) == 0);
            ck_assert_int_eq(d1.bare, d2.bare);
            ck_assert_int_eq(d1.long_line, d2.long_line);
        }
    }
}
END_TEST

Suite *suite_data(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("scanner");

    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_cases, 0,
                        (int)(sizeof(data_cases) / sizeof(data_cases[0])));
    tcase_add_test(tc, test_spans_are_zero_copy);
    tcase_add_test(tc, test_stop);
    tcase_add_test(tc, test_long_line);
    tcase_add_test(tc, test_every_offset);
    suite_add_tcase(s, tc);
    return s;
}
