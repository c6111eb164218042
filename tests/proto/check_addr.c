/* check_addr - RFC 5321 path syntax, on guard-page input. */
#include <stdint.h>
#include <string.h>

#include "proto/addr.h"
#include "harness/guard.h"
#include "suites.h"

#define NUL SMTPX__ADDR_NULL_OK
#define PM  SMTPX__ADDR_POSTMASTER
#define U8  SMTPX__ADDR_UTF8

static const struct path_case {
    const char *in;
    unsigned flags;
    int result;
    const char *mbox;   /* expected mailbox when result is 0 */
    const char *domain; /* expected domain, or NULL */
} path_cases[] = {
    {"<user@example.org>", 0, 0, "user@example.org", "example.org"},
    {"<user@example.org> SIZE=10", 0, 0, "user@example.org", "example.org"},
    {"<a.b.c@d-e.f>", 0, 0, "a.b.c@d-e.f", "d-e.f"},
    {"<!#$%&'*+-/=?^_`{|}~@x.y>", 0, 0, "!#$%&'*+-/=?^_`{|}~@x.y", "x.y"},
    {"<\"john doe\"@example.org>", 0, 0, "\"john doe\"@example.org",
     "example.org"},
    {"<\"a@b>c\"@example.org>", 0, 0, "\"a@b>c\"@example.org", "example.org"},
    {"<\"a\\\"b\"@x.y>", 0, 0, "\"a\\\"b\"@x.y", "x.y"},
    {"<\"\"@x.y>", 0, 0, "\"\"@x.y", "x.y"},
    {"<u@[192.0.2.1]>", 0, 0, "u@[192.0.2.1]", "[192.0.2.1]"},
    {"<u@[IPv6:2001:db8::1]>", 0, 0, "u@[IPv6:2001:db8::1]",
     "[IPv6:2001:db8::1]"},
    {"<u@[IPv6:::1]>", 0, 0, "u@[IPv6:::1]", "[IPv6:::1]"},
    {"<u@[IPv6:::]>", 0, 0, "u@[IPv6:::]", "[IPv6:::]"},
    {"<u@[IPv6:1:2:3:4:5:6:7:8]>", 0, 0, "u@[IPv6:1:2:3:4:5:6:7:8]", NULL},
    {"<u@[IPv6::ffff:192.0.2.1]>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<u@[IPv6:::ffff:192.0.2.1]>", 0, 0, "u@[IPv6:::ffff:192.0.2.1]", NULL},
    {"<u@[IPv6:1:2:3:4:5:6:192.0.2.1]>", 0, 0, "u@[IPv6:1:2:3:4:5:6:192.0.2.1]",
     NULL},
    {"<u@[x-tag:abc]>", 0, 0, "u@[x-tag:abc]", NULL},
    {"<@relay.example,@r2.example:user@example.org>", 0, 0, "user@example.org",
     "example.org"},
    {"<>", NUL, 0, "", NULL},
    {"<>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<Postmaster>", PM, 0, "Postmaster", NULL},
    {"<postMASTER>", PM, 0, "postMASTER", NULL},
    {"<Postmaster>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<Postmaster@example.org>", 0, 0, "Postmaster@example.org", "example.org"},
    /* RFC 6531: UTF-8 only when allowed. */
    {"<\xc3\xa9l\xc3\xa8ve@\xc3\xa9"
     "cole.example>",
     U8, 0,
     "\xc3\xa9l\xc3\xa8ve@\xc3\xa9"
     "cole.example",
     "\xc3\xa9"
     "cole.example"},
    {"<\xc3\xa9l\xc3\xa8ve@example.org>", 0, SMTPX__ADDR_NEEDS_UTF8, NULL,
     NULL},
    {"<u@\xc3\xa9"
     "cole.example>",
     0, SMTPX__ADDR_NEEDS_UTF8, NULL, NULL},
    {"<\xc3(@example.org>", U8, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<\xed\xa0\x80@example.org>", U8, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<\xc0\xaf@example.org>", U8, SMTPX__ADDR_SYNTAX, NULL, NULL},
    /* Syntax errors. */
    {"user@example.org", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<user@example.org", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<user>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<user@>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<@example.org>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<.user@x.y>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<user.@x.y>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<us..er@x.y>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<us er@x.y>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<user@x..y>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<user@x.y.>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<user@-x.y>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<user@x-.y>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<user@x_y.z>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<a@b@c.d>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<\"unterminated@x.y>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<\"a\x01\"@x.y>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<u@[192.0.2.256]>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<u@[192.0.2]>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<u@[1.2.3.4.5]>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<u@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<u@[IPv6:1::2::3]>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<u@[IPv6:12345::1]>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<u@[IPv6:1:2:3:4:5:6:7]>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<u@[IPv6:1:]>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<u@[]>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<u@[tag:]>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<@relay.example:>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<@relay.example,user@x.y>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
    {"<@bad..relay:user@x.y>", 0, SMTPX__ADDR_SYNTAX, NULL, NULL},
};

START_TEST(test_paths)
{
    const struct path_case *c = &path_cases[_i];
    size_t len = strlen(c->in);
    const char *in = guard_copy(c->in, len);
    smtpx__path p;
    int rc = smtpx__addr_parse_path(in, len, c->flags, 256, &p);

    ck_assert_msg(rc == c->result, "%s: got %d, expected %d", c->in, rc,
                  c->result);
    if (rc == 0) {
        ck_assert_uint_eq(p.mbox_len, strlen(c->mbox));
        ck_assert_msg(memcmp(in + p.mbox_off, c->mbox, p.mbox_len) == 0,
                      "%s: mailbox %.*s", c->in, (int)p.mbox_len,
                      in + p.mbox_off);
        ck_assert_int_eq(in[p.consumed - 1], '>');
        if (c->domain != NULL) {
            ck_assert_uint_ne(p.domain_off, SIZE_MAX);
            ck_assert(
                strncmp(in + p.domain_off, c->domain, strlen(c->domain)) == 0);
        }
    }
}
END_TEST

START_TEST(test_lengths)
{
    char buf[700];
    smtpx__path p;
    size_t i;

    /* The limit on the octets between the brackets (RFC 5321 4.5.3.1.3). */
    buf[0] = '<';
    for (i = 1; i < 251; i++)
        buf[i] = 'a';
    memcpy(buf + 251, "@x.yz>", 6); /* 255 octets inside */
    ck_assert_int_eq(smtpx__addr_parse_path(buf, 257, 0, 256, &p), 0);
    ck_assert_int_eq(smtpx__addr_parse_path(buf, 257, 0, 254, &p),
                     SMTPX__ADDR_TOO_LONG);
    /* A label longer than 63 octets, a domain longer than 255. */
    memset(buf, 'a', 64);
    ck_assert_int_eq(smtpx__addr_domain_ok(buf, 63, 0), 1);
    ck_assert_int_eq(smtpx__addr_domain_ok(buf, 64, 0), 0);
    for (i = 0; i < 300; i++)
        buf[i] = (i % 10 == 9) ? '.' : 'a';
    ck_assert_int_eq(smtpx__addr_domain_ok(buf, 255, 0), 1);
    ck_assert_int_eq(smtpx__addr_domain_ok(buf, 259, 0), 0);
}
END_TEST

START_TEST(test_utf8)
{
    static const struct {
        const char *s;
        size_t n;
    } good[] = {{"a", 1},
                {"\xc2\x80", 2},
                {"\xdf\xbf", 2},
                {"\xe0\xa0\x80", 3},
                {"\xef\xbf\xbf", 3},
                {"\xf0\x90\x80\x80", 4},
                {"\xf4\x8f\xbf\xbf", 4}};
    static const char *const bad[] = {
        "\x80",         "\xc1\xbf",         "\xe0\x9f\xbf",
        "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
        "\xc2",         "\xe2\x82"};
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        const char *g = guard_copy(good[i].s, good[i].n);
        ck_assert_uint_eq(smtpx__utf8_seq((const unsigned char *)g, good[i].n),
                          good[i].n);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = strlen(bad[i]);
        const char *b = guard_copy(bad[i], n);
        ck_assert_uint_eq(smtpx__utf8_seq((const unsigned char *)b, n), 0);
    }
    /* Nothing to read: not even the first octet is looked at (found by
     * fuzz_addr: it used to read s[0] before checking len). */
    ck_assert_uint_eq(
        smtpx__utf8_seq((const unsigned char *)guard_copy("", 0), 0), 0);
}
END_TEST

START_TEST(test_every_prefix)
{
    /* No prefix of a valid path reads past its end or is accepted wrongly. */
    static const char *const paths[] = {
        "<\"john doe\"@example.org>", "<u@[IPv6:2001:db8::1]>",
        "<@a.example,@b.example:user@c.example>",
        "<\xc3\xa9l\xc3\xa8ve@\xc3\xa9"
        "cole.example>"};
    size_t k, n;
    smtpx__path p;

    for (k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
        size_t len = strlen(paths[k]);
        for (n = 0; n < len; n++) {
            const char *in = guard_copy(paths[k], n);
            int rc = smtpx__addr_parse_path(in, n, U8, 256, &p);
            ck_assert_msg(rc != 0, "prefix %zu of %s accepted", n, paths[k]);
        }
    }
}
END_TEST

Suite *suite_addr(void)
{
    Suite *s = suite_create("addr");
    TCase *tc = tcase_create("paths");

    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_paths, 0,
                        (int)(sizeof(path_cases) / sizeof(path_cases[0])));
    tcase_add_test(tc, test_lengths);
    tcase_add_test(tc, test_utf8);
    tcase_add_test(tc, test_every_prefix);
    suite_add_tcase(s, tc);
    return s;
}
