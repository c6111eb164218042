/*
 * check_codec - the transfer encodings and header words of the msg layer:
 * base64 and quoted-printable decoding as Python's email package does it
 * (expected values computed with Python, not with the code under test),
 * input split at every position, quoted-printable encoding round trips and
 * line lengths, RFC 2047 and RFC 2231 decoding, and encoded words that
 * decode back to what was encoded.
 */
#include <stdlib.h>
#include <string.h>

#include "base/crypto.h"
#include "base/mem.h"
#include "msg/codec.h"
#include "msg/words.h"
#include "harness/guard.h"
#include "suites.h"

/* b64 - decode in, cut at cut (0: whole), into out; returns the length */
static size_t b64(const char *in, size_t cut, uint8_t *out, int *bad)
{
    smtpx__b64dec d;
    size_t n = strlen(in), k = 0;

    smtpx__b64dec_init(&d);
    if (cut > 0 && cut < n) {
        k += smtpx__b64dec_run(&d, (const uint8_t *)guard_copy(in, cut), cut,
                               out);
        k += smtpx__b64dec_run(&d,
                               (const uint8_t *)guard_copy(in + cut, n - cut),
                               n - cut, out + k);
    } else {
        k += smtpx__b64dec_run(&d, (const uint8_t *)guard_copy(in, n), n, out);
    }
    k += smtpx__b64dec_end(&d, out + k);
    *bad = d.bad;
    return k;
}

START_TEST(test_b64_decode)
{
    /* email.message get_payload(decode=True) results. */
    static const struct {
        const char *in, *out;
        int bad;
    } cases[] = {
        {"SGVsbG8sIHdvcmxk", "Hello, world", 0},
        {"SGVs\r\nbG8=\r\n", "Hello", 0},
        {"SGVsbG8", "Hello", 1},     /* padding missing */
        {"SGVsbA", "Hell", 1},       /* two characters short */
        {"SG Vs*bG8=", "Hello", 1},  /* junk skipped */
        {"SGk=QUJD", "Hi", 1},       /* the pad ends the data */
        {"SGk=\r\n  \r\n", "Hi", 0}, /* white space after the pad */
        {"S=Gk=", "Hi", 1},          /* a pad too early is skipped */
        {"", "", 0},
        {"====", "", 1}, /* pads alone */
    };
    size_t i, cut;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].in);
        for (cut = 0; cut <= n; cut++) {
            uint8_t out[64];
            int bad;
            size_t k = b64(cases[i].in, cut, out, &bad);
            ck_assert_msg(k == strlen(cases[i].out) &&
                              memcmp(out, cases[i].out, k) == 0,
                          "case %zu cut %zu", i, cut);
            ck_assert_int_eq(bad, cases[i].bad);
        }
    }
}
END_TEST

static size_t qp(const char *in, size_t cut, uint8_t *out, int *bad)
{
    smtpx__qpdec d;
    size_t n = strlen(in), k = 0;

    smtpx__qpdec_init(&d);
    if (cut > 0 && cut < n) {
        k += smtpx__qpdec_run(&d, (const uint8_t *)guard_copy(in, cut), cut,
                              out);
        k +=
            smtpx__qpdec_run(&d, (const uint8_t *)guard_copy(in + cut, n - cut),
                             n - cut, out + k);
    } else {
        k += smtpx__qpdec_run(&d, (const uint8_t *)guard_copy(in, n), n, out);
    }
    k += smtpx__qpdec_end(&d, out + k);
    *bad = d.bad;
    return k;
}

START_TEST(test_qp_decode)
{
    /* binascii.a2b_qp results. */
    static const struct {
        const char *in, *out;
        int bad;
    } cases[] = {
        {"caf=C3=A9", "caf\xc3\xa9", 0},
        {"caf=c3=a9", "caf\xc3\xa9", 0},
        {"soft=\r\nbreak", "softbreak", 0},
        {"soft=\nbreak", "softbreak", 0},
        {"junk=\r after\nkept", "junkkept", 0},
        {"=ZZ", "=ZZ", 1},
        {"a==b", "a=b", 1},
        {"end=", "end", 0},
        {"=4", "=4", 1},
        {"=4x", "=4x", 1},
        {"trailing  \r\n", "trailing  \r\n", 0},
    };
    size_t i, cut;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].in);
        for (cut = 0; cut <= n; cut++) {
            uint8_t out[64];
            int bad;
            size_t k = qp(cases[i].in, cut, out, &bad);
            ck_assert_msg(k == strlen(cases[i].out) &&
                              memcmp(out, cases[i].out, k) == 0,
                          "case %zu cut %zu", i, cut);
            ck_assert_int_eq(bad, cases[i].bad);
        }
    }
}
END_TEST

/* The content encoder agrees with mbedTLS's (the reference) on every
 * length from 0 to 200 octets, on random octets. */
START_TEST(test_b64_encode_block)
{
    uint8_t in[200], out[300];
    char ref[300];
    uint32_t rng = 5;
    size_t n, i, k;
    long r;

    for (n = 0; n <= sizeof(in); n++) {
        for (i = 0; i < n; i++) {
            rng = rng * 1103515245u + 12345u;
            in[i] = (uint8_t)(rng >> 16);
        }
        k = smtpx__b64enc_block(in, n, out);
        r = smtpx__b64_encode(in, n, ref, sizeof(ref));
        ck_assert_int_eq((long)k, r);
        ck_assert(memcmp(out, ref, k) == 0);
    }
}
END_TEST

/* The body encoder, fed in random pieces, writes mbedTLS's base64 of the
 * whole in lines of 76 characters, CRLF between them and none after. */
START_TEST(test_b64_encode_lines)
{
    static uint8_t in[2000], out[SMTPX__B64ENC_OUT(2000) * 2];
    static char ref[3000], want[3200];
    uint32_t rng = 9;
    size_t n, i, k, pos, r, w;
    long len;

    for (n = 0; n <= sizeof(in); n += 1 + n / 7) {
        smtpx__b64enc e;

        for (i = 0; i < n; i++) {
            rng = rng * 1103515245u + 12345u;
            in[i] = (uint8_t)(rng >> 16);
        }
        smtpx__b64enc_init(&e);
        for (k = 0, pos = 0; pos < n; pos += r) {
            rng = rng * 1103515245u + 12345u;
            r = 1 + (rng >> 16) % 130;
            if (r > n - pos)
                r = n - pos;
            k += smtpx__b64enc_run(&e, in + pos, r, out + k);
        }
        k += smtpx__b64enc_end(&e, out + k);
        len = smtpx__b64_encode(in, n, ref, sizeof(ref));
        ck_assert_int_ge(len, 0);
        for (i = 0, w = 0; i < (size_t)len; i++) {
            if (i > 0 && i % 76 == 0) {
                want[w++] = '\r';
                want[w++] = '\n';
            }
            want[w++] = ref[i];
        }
        ck_assert_msg(k == w && memcmp(out, want, w) == 0, "%zu octets", n);
    }
}
END_TEST

/* ref_qp - quoted-printable as RFC 2045 6.7 spells it, an octet at a
 * time (what the encoder's fast path for runs of plain octets must agree
 * with): a space or tab before a line break encoded, lines of at most 76
 * with "=" soft breaks, CRLF (and LF in text) a hard break, nodash: a "-"
 * that begins an output line encoded. */
static size_t ref_qp(const uint8_t *in, size_t n, int text, int nodash,
                     uint8_t *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i, o = 0, col = 0;

    for (i = 0; i < n; i++) {
        unsigned char c = in[i];
        int brk_next =
            i + 1 < n && (in[i + 1] == '\r' || (in[i + 1] == '\n' && text));
        int lit;

        if (c == '\r' && i + 1 < n && in[i + 1] == '\n') {
            memcpy(out + o, "\r\n", 2);
            o += 2;
            col = 0;
            i++;
            continue;
        }
        if (c == '\n' && text) {
            memcpy(out + o, "\r\n", 2);
            o += 2;
            col = 0;
            continue;
        }
        lit = (c > 32 && c < 127 && c != '=') ||
              ((c == ' ' || c == '\t') && i + 1 < n && !brk_next);
        if (col + (lit ? 1u : 3u) > 75) {
            memcpy(out + o, "=\r\n", 3);
            o += 3;
            col = 0;
        }
        if (lit && c == '-' && col == 0 && nodash)
            lit = 0;
        if (lit) {
            out[o++] = c;
            col++;
        } else {
            out[o++] = '=';
            out[o++] = (uint8_t)hex[c >> 4];
            out[o++] = (uint8_t)hex[c & 15];
            col += 3;
        }
    }
    return o;
}

/* The encoder, fed in random pieces, agrees octet for octet with ref_qp
 * on random text of every kind, in both modes, with and without nodash. */
START_TEST(test_qp_encode_reference)
{
    static uint8_t in[3000], enc[SMTPX__QPENC_OUT(3000) + 16],
        ref[SMTPX__QPENC_OUT(3000) + 16];
    uint32_t rng = 11;
    int round;

    for (round = 0; round < 4000; round++) {
        smtpx__qpenc e;
        int text = round & 1, nodash = round >> 1 & 1;
        size_t n = (size_t)(round * 7919 % 3000), i, k = 0, pos = 0, r;

        for (i = 0; i < n; i++) {
            rng = rng * 1103515245u + 12345u;
            in[i] = (rng >> 16) % 7 == 0
                        ? (uint8_t)(rng >> 8)
                        : (uint8_t) "abcdefghij  \t\r\n.=-"[(rng >> 20) % 19];
        }
        smtpx__qpenc_init(&e, text);
        e.nodash = nodash;
        while (pos < n) {
            rng = rng * 1103515245u + 12345u;
            r = 1 + (rng >> 16) % 200;
            if (r > n - pos)
                r = n - pos;
            k += smtpx__qpenc_run(&e, in + pos, r, enc + k);
            pos += r;
        }
        k += smtpx__qpenc_end(&e, enc + k);
        r = ref_qp(in, n, text, nodash, ref);
        ck_assert_msg(k == r && memcmp(enc, ref, k) == 0,
                      "round %d: %zu octets, reference %zu", round, k, r);
    }
}
END_TEST

START_TEST(test_qp_encode_round_trip)
{
    static uint8_t in[4096], enc[SMTPX__QPENC_OUT(4096) + 16], dec[8192];
    uint32_t rng = 7;
    int round, text;

    for (round = 0; round < 200; round++) {
        for (text = 0; text < 2; text++) {
            smtpx__qpenc e;
            smtpx__qpdec d;
            size_t n = (size_t)(round * 37 % 4096), i, k = 0, m, line = 0;

            for (i = 0; i < n; i++) {
                rng = rng * 1103515245u + 12345u;
                /* Mostly text, some of everything. */
                in[i] = (rng >> 16) % 5 == 0
                            ? (uint8_t)(rng >> 8)
                            : (uint8_t) " ab\t\r\n.=-"[(rng >> 20) % 10];
            }
            smtpx__qpenc_init(&e, text);
            /* In two pieces. */
            k = smtpx__qpenc_run(&e, in, n / 2, enc);
            k += smtpx__qpenc_run(&e, in + n / 2, n - n / 2, enc + k);
            k += smtpx__qpenc_end(&e, enc + k);
            for (i = 0; i < k; i++) {
                ck_assert(enc[i] == '\r' || enc[i] == '\n' || enc[i] == '\t' ||
                          (enc[i] >= 32 && enc[i] < 127));
                if (enc[i] == '\n') {
                    ck_assert_uint_le(line, 77); /* 76 and the CR */
                    ck_assert(i > 0 && enc[i - 1] == '\r');
                    /* No white space at a line's end. */
                    ck_assert(i < 2 ||
                              (enc[i - 2] != ' ' && enc[i - 2] != '\t'));
                    line = 0;
                } else {
                    line++;
                }
            }
            ck_assert_uint_le(line, 76);
            smtpx__qpdec_init(&d);
            m = smtpx__qpdec_run(&d, enc, k, dec);
            m += smtpx__qpdec_end(&d, dec + m);
            ck_assert(!d.bad);
            if (!text) {
                ck_assert_uint_eq(m, n);
                ck_assert(memcmp(dec, in, n) == 0);
            } else {
                /* LF alone comes back as CRLF. */
                size_t j = 0;
                for (i = 0; i < n; i++) {
                    if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
                        ck_assert_uint_eq(dec[j++], '\r');
                    ck_assert_uint_eq(dec[j++], in[i]);
                }
                ck_assert_uint_eq(j, m);
            }
        }
    }
}
END_TEST

static void words(const char *in, const char *want, unsigned want_bad)
{
    smtpx__mstr s;
    unsigned bad = 0;

    smtpx__mstr_init(&s, smtpx__mem_default());
    smtpx__words_decode(&s, in, strlen(in), &bad);
    smtpx__mstr_add(&s, "", 0);
    ck_assert_msg(strcmp(s.p, want) == 0, "%s: got [%s] want [%s]", in, s.p,
                  want);
    ck_assert_uint_eq(bad, want_bad);
    smtpx__mstr_free(&s);
}

START_TEST(test_words_decode)
{
    words("plain text", "plain text", 0);
    words("=?utf-8?q?caf=C3=A9?=", "caf\xc3\xa9", 0);
    words("=?UTF-8?B?Y2Fmw6k=?=", "caf\xc3\xa9", 0);
    words("a =?utf-8?q?x?= =?utf-8?q?y?= b", "a xy b", 0);
    /* A character split between two words. */
    words("=?utf-8?q?=C3?= =?utf-8?q?=A9?=", "\xc3\xa9", 0);
    words("=?iso-8859-1?q?=E9?=", "\xc3\xa9", 0);
    words("=?windows-1252?q?=93x=94?=", "\xe2\x80\x9cx\xe2\x80\x9d", 0);
    words("=?iso-8859-2?q?=B1?=", "\xc4\x85", 0); /* through iconv */
    words("=?utf-8*en?q?lang?=", "lang", 0);      /* RFC 2231 5 */
    words("=?utf-8?q?not closed", "=?utf-8?q?not closed", 0);
    words("=?utf-8?x?bad?=", "=?utf-8?x?bad?=", 0);
    words("=?no-such-charset?q?ok?=", "ok", SMTPX__WORDS_BAD_WORD);
    words("raw \xe9", "raw \xef\xbf\xbd", SMTPX__WORDS_BAD_8BIT);
    words("raw utf-8 \xc3\xa9", "raw utf-8 \xc3\xa9", 0);
    /* Found by fuzzing: glibc reads "u=tf-8" as UTF-8 and passes on
     * sequences past U+10FFFF. */
    words("=?u=tf-8?q?=F4=96=96=96?=",
          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
          "\xef\xbf\xbd",
          SMTPX__WORDS_BAD_8BIT);
}
END_TEST

static void params(const char *in, const char *type, const char *name,
                   const char *want)
{
    smtpx__mstr t, p;
    unsigned bad = 0;
    const char *v;

    smtpx__mstr_init(&t, smtpx__mem_default());
    smtpx__mstr_init(&p, smtpx__mem_default());
    smtpx__params_parse(in, strlen(in), &t, &p, &bad);
    ck_assert_str_eq(t.p, type);
    v = smtpx__params_get(p.p, p.len, name);
    if (want == NULL)
        ck_assert_ptr_null(v);
    else
        ck_assert_msg(v != NULL && strcmp(v, want) == 0, "%s: got %s", in,
                      v ? v : "(null)");
    smtpx__mstr_free(&t);
    smtpx__mstr_free(&p);
}

START_TEST(test_params)
{
    params("Text/Plain; Charset=UTF-8", "text/plain", "charset", "UTF-8");
    params("a/b; name=\"q\\\"uoted;x\"; z=1", "a/b", "name", "q\"uoted;x");
    params("a/b; name=\"q\\\"uoted;x\"; z=1", "a/b", "z", "1");
    params("a/b; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A",
           "a/b", "title", "This is ***fun***");
    params("a/b; f*0*=utf-8''%E6%97%A5; f*1=\".txt\"", "a/b", "f",
           "\xe6\x97\xa5.txt");
    params("a/b; f*1=\"b\"; f*0=\"a\"", "a/b", "f", "ab");
    params("a/b; f=\"plain\"; f*=utf-8''star", "a/b", "f", "star");
    params("a/b; f=\"=?utf-8?q?caf=C3=A9?=.txt\"", "a/b", "f",
           "caf\xc3\xa9.txt");
    params("a/b; f=token rest", "a/b", "f", "token");
    params("a/b; novalue; x=1", "a/b", "x", "1");
    params("a/b; f*=iso-8859-1''r%E9sum%E9", "a/b", "f",
           "r\xc3\xa9sum\xc3\xa9");
    params("a/b", "a/b", "f", NULL);
    params("", "", "f", NULL);
    /* Found by fuzzing: a parameter without a name stopped the scan from
     * moving on; an empty RFC 2231 value. */
    params("a/b; =x; y=1", "a/b", "y", "1");
    params("a/b; f*0*=utf-8''; g=2", "a/b", "f", "");
}
END_TEST

START_TEST(test_params_nul)
{
    /* NUL octets cannot end a name or a value early. */
    static const char in[] = "a/b; na\0me=\"v\0al\"; f*=utf-8''x%00y; z=1";
    smtpx__mstr t, p;
    unsigned bad = 0;

    smtpx__mstr_init(&t, smtpx__mem_default());
    smtpx__mstr_init(&p, smtpx__mem_default());
    smtpx__params_parse(in, sizeof(in) - 1, &t, &p, &bad);
    ck_assert_str_eq(smtpx__params_get(p.p, p.len, "name"), "val");
    ck_assert_str_eq(smtpx__params_get(p.p, p.len, "f"), "xy");
    ck_assert_str_eq(smtpx__params_get(p.p, p.len, "z"), "1");
    ck_assert(bad & SMTPX__WORDS_BAD_PARAM);
    smtpx__mstr_free(&t);
    smtpx__mstr_free(&p);
}
END_TEST

START_TEST(test_words_encode)
{
    static const char *const texts[] = {
        "caf\xc3\xa9",
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe4\xbb\xb6\xe5"
        "\x90\x8d\xe3\x81\xa7\xe3\x81\x99\xe3\x80\x82\xe9\x95\xb7\xe3\x81"
        "\x84\xe9\x95\xb7\xe3\x81\x84\xe6\x96\x87\xe5\xad\x97\xe5\x88\x97",
        "A long mostly ASCII text with one \xc3\xa9 and ?= and _ and = in "
        "it, long enough to be split into more than one encoded word",
        "  spaces  at the ends  ",
    };
    size_t i, first;

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        for (first = 20; first <= 80; first += 30) {
            smtpx__mstr e, d;
            unsigned bad = 0;
            size_t j, word = 0;

            smtpx__mstr_init(&e, smtpx__mem_default());
            smtpx__mstr_init(&d, smtpx__mem_default());
            smtpx__words_encode(&e, texts[i], strlen(texts[i]), 1, first);
            for (j = 0; j <= e.len; j++) {
                if (j == e.len || e.p[j] == ' ') {
                    ck_assert_uint_le(word, 75);
                    word = 0;
                } else {
                    word++;
                    ck_assert((unsigned char)e.p[j] < 127);
                }
            }
            smtpx__words_decode(&d, e.p, e.len, &bad);
            smtpx__mstr_add(&d, "", 0);
            ck_assert_str_eq(d.p, texts[i]);
            ck_assert_uint_eq(bad, 0);
            smtpx__mstr_free(&e);
            smtpx__mstr_free(&d);
        }
    }
}
END_TEST

Suite *suite_msg_codec(void)
{
    Suite *s = suite_create("msg_codec");
    TCase *tc = tcase_create("codec");

    tcase_add_test(tc, test_b64_decode);
    tcase_add_test(tc, test_qp_decode);
    tcase_add_test(tc, test_qp_encode_round_trip);
    tcase_add_test(tc, test_qp_encode_reference);
    tcase_add_test(tc, test_b64_encode_block);
    tcase_add_test(tc, test_b64_encode_lines);
    tcase_add_test(tc, test_words_decode);
    tcase_add_test(tc, test_params);
    tcase_add_test(tc, test_params_nul);
    tcase_add_test(tc, test_words_encode);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}
