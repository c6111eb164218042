/*
 * check_proxy - the PROXY protocol: the header parser on valid and hostile
 * headers of both versions (every prefix of a valid header says "more",
 * no prefix of a bad one does; each input sits before an unreadable page),
 * and listeners that take it in the loop: the session sees the client the
 * proxy names, an untrusted client's header is not believed, bad, late and
 * truncated headers close the connection, octets after the header are the
 * client's.
 */
#define _DEFAULT_SOURCE /* usleep with -std=c99 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libsmtpx/smtpx.h>
#include <libsmtpx/posix.h>

#include "harness/guard.h"
#include "io/proxy.h"
#include "suites.h"

static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* parse - the parser on a guarded copy */
static smtpx_ssize parse(const void *p, size_t n, int versions,
                         smtpx__proxy *out)
{
    return smtpx__proxy_parse((const uint8_t *)guard_copy(p, n), n, versions,
                              out);
}

/* whole - a valid header: every proper prefix needs more, the whole is
 * taken, and what follows it is not */
static smtpx__proxy whole(const void *h, size_t n, int versions)
{
    uint8_t buf[4096];
    smtpx__proxy info;
    size_t i;

    for (i = 1; i < n; i++)
        ck_assert_msg(parse(h, i, versions, &info) == 0, "prefix %zu", i);
    ck_assert_int_eq(parse(h, n, versions, &info), (smtpx_ssize)n);
    memcpy(buf, h, n);
    memcpy(buf + n, "EHLO x\r\n", 8);
    ck_assert_int_eq(parse(buf, n + 8, versions, &info), (smtpx_ssize)n);
    return info;
}

/* bad - a bad header is refused as soon as it is, and whole */
static void bad(const void *h, size_t n, int versions)
{
    smtpx__proxy info;

    ck_assert_msg(parse(h, n, versions, &info) == -1, "accepted: %.*s", (int)n,
                  (const char *)h);
}

static const char *text(const smtpx__ip *ip, char *buf, size_t size)
{
    smtpx__ip_text(ip, buf, size);
    return buf;
}

START_TEST(test_v1)
{
    static const char t4[] = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 25\r\n";
    static const char t6[] =
        "PROXY TCP6 2001:db8::1 2001:db8::ffff:2 65535 587\r\n";
    static const char unk[] = "PROXY UNKNOWN\r\n";
    static const char unk2[] = "PROXY UNKNOWN ffff:f...f:ffff 0 0\r\n";
    char a[64];
    smtpx__proxy i;

    i = whole(t4, strlen(t4), SMTPX__PROXY_V1);
    ck_assert_int_eq(i.version, 1);
    ck_assert_int_eq(i.local, 0);
    ck_assert_str_eq(text(&i.src, a, sizeof(a)), "192.0.2.1");
    ck_assert_str_eq(text(&i.dst, a, sizeof(a)), "198.51.100.7");
    ck_assert_uint_eq(i.sport, 56324);
    ck_assert_uint_eq(i.dport, 25);
    i = whole(t6, strlen(t6), SMTPX__PROXY_V1 | SMTPX__PROXY_V2);
    ck_assert_str_eq(text(&i.src, a, sizeof(a)), "2001:db8::1");
    ck_assert_uint_eq(i.sport, 65535);
    i = whole(unk, strlen(unk), SMTPX__PROXY_V1);
    ck_assert_int_eq(i.local, 1);
    i = whole(unk2, strlen(unk2), SMTPX__PROXY_V1);
    ck_assert_int_eq(i.local, 1);
    /* The longest line, 107 octets, is taken; one more is not. */
    {
        char line[120];
        int n = snprintf(line, sizeof(line), "PROXY UNKNOWN %-91s\r\n", "x");
        ck_assert_int_eq(n, 107);
        whole(line, 107, SMTPX__PROXY_V1);
        n = snprintf(line, sizeof(line), "PROXY UNKNOWN %-92s\r\n", "x");
        bad(line, (size_t)n, SMTPX__PROXY_V1);
        /* 107 octets without a line end: no header. */
        memset(line, 'x', sizeof(line));
        memcpy(line, "PROXY UNKNOWN ", 14);
        bad(line, 107, SMTPX__PROXY_V1);
    }
    /* Not asked for: version 1 is refused when only 2 is taken. */
    bad(t4, strlen(t4), SMTPX__PROXY_V2);
}
END_TEST

START_TEST(test_v1_hostile)
{
    static const char *const lines[] = {
        "proxy TCP4 192.0.2.1 198.51.100.7 1 25\r\n",
        "PROXY  TCP4 192.0.2.1 198.51.100.7 1 25\r\n",
        "PROXY TCP4 192.0.2.1  198.51.100.7 1 25\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 1 25 \r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 1\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 1 25 7\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 65536 25\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 01 25\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 -1 25\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 1 25\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 1 25\r\r\n",
        "PROXY TCP4 2001:db8::1 198.51.100.7 1 25\r\n",
        "PROXY TCP6 192.0.2.1 2001:db8::1 1 25\r\n",
        "PROXY TCP4 192.0.2.256 198.51.100.7 1 25\r\n",
        "PROXY TCP4 192.0.2 198.51.100.7 1 25\r\n",
        "PROXY TCP4 mx.example 198.51.100.7 1 25\r\n",
        "PROXY TCP4 [192.0.2.1] 198.51.100.7 1 25\r\n",
        "PROXY UDP4 192.0.2.1 198.51.100.7 1 25\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 1 2\xc3\xa5\r\n",
        "PROXY UNKNOWNX\r\n",
        "PROXY \r\n",
        "EHLO client.example\r\n",
    };
    size_t k;

    for (k = 0; k < sizeof(lines) / sizeof(lines[0]); k++)
        bad(lines[k], strlen(lines[k]), SMTPX__PROXY_V1 | SMTPX__PROXY_V2);
    /* A NUL in the line. */
    bad("PROXY TCP4 192.0.2.1 198.51.100.7 1 25\x00\r\n", 41, SMTPX__PROXY_V1);
    /* Garbage is refused at once, not waited for. */
    bad("GET / HTTP/1.1", 14, SMTPX__PROXY_V1 | SMTPX__PROXY_V2);
    bad("P", 1, SMTPX__PROXY_V2);
    bad("X", 1, SMTPX__PROXY_V1);
    /* An empty line may begin version 2's signature, not version 1. */
    bad("\r\n", 2, SMTPX__PROXY_V1);
    ck_assert_int_eq(parse("\r\n", 2, SMTPX__PROXY_V2, &(smtpx__proxy){0}), 0);
}
END_TEST

/* v2 - a version 2 header: command, family/transport, address block, and
 * len more octets from extra */
static size_t v2(uint8_t *out, int cmd, int fam, const uint8_t *block,
                 size_t blen, const uint8_t *extra, size_t elen)
{
    size_t len = blen + elen;

    memcpy(out, sig, 12);
    out[12] = (uint8_t)(0x20 | cmd);
    out[13] = (uint8_t)fam;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    if (blen > 0)
        memcpy(out + 16, block, blen);
    if (elen > 0)
        memcpy(out + 16 + blen, extra, elen);
    return 16 + len;
}

/* crc32c - the reference, bit by bit (RFC 3720 B.4) */
static uint32_t crc32c(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    size_t i;
    int k;

    for (i = 0; i < n; i++) {
        c ^= p[i];
        for (k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    }
    return ~c;
}

START_TEST(test_v2)
{
    static const uint8_t in4[12] = {192, 0, 2,    1,    198, 51,
                                    100, 7, 0xdc, 0x04, 0,   25};
    uint8_t in6[36], h[600], tlv[300];
    char a[64];
    smtpx__proxy i;
    size_t n;
    uint32_t c;

    n = v2(h, 1, 0x11, in4, sizeof(in4), NULL, 0);
    i = whole(h, n, SMTPX__PROXY_V2);
    ck_assert_int_eq(i.version, 2);
    ck_assert_int_eq(i.local, 0);
    ck_assert_str_eq(text(&i.src, a, sizeof(a)), "192.0.2.1");
    ck_assert_str_eq(text(&i.dst, a, sizeof(a)), "198.51.100.7");
    ck_assert_uint_eq(i.sport, 0xdc04);
    ck_assert_uint_eq(i.dport, 25);
    /* IPv6 */
    memset(in6, 0, sizeof(in6));
    in6[0] = 0x20;
    in6[1] = 0x01;
    in6[2] = 0x0d;
    in6[3] = 0xb8;
    in6[15] = 9;
    in6[16] = 0x20;
    in6[17] = 0x01;
    in6[31] = 1;
    in6[33] = 1;
    in6[35] = 25;
    n = v2(h, 1, 0x21, in6, sizeof(in6), NULL, 0);
    i = whole(h, n, SMTPX__PROXY_V1 | SMTPX__PROXY_V2);
    ck_assert_str_eq(text(&i.src, a, sizeof(a)), "2001:db8::9");
    ck_assert_str_eq(text(&i.dst, a, sizeof(a)), "2001::1");
    ck_assert_uint_eq(i.sport, 1);
    /* TLVs (ALPN, authority, unique id, an SSL block, NOOP padding) and a
     * CRC32C that matches. */
    n = 0;
    memcpy(tlv + n, "\x01\x00\x04smtp", 7);
    n += 7;
    memcpy(tlv + n, "\x02\x00\x0bmx.test.org", 14);
    n += 14;
    memcpy(tlv + n,
           "\x05\x00\x03"
           "abc",
           6);
    n += 6;
    memcpy(tlv + n, "\x20\x00\x05\x07\x00\x00\x00\x00", 8);
    n += 8;
    memcpy(tlv + n, "\x04\x00\x00", 3);
    n += 3;
    memcpy(tlv + n, "\x03\x00\x04\x00\x00\x00\x00", 7);
    n += 7;
    {
        size_t total = v2(h, 1, 0x11, in4, sizeof(in4), tlv, n);
        c = crc32c(h, total);
        h[total - 4] = (uint8_t)(c >> 24);
        h[total - 3] = (uint8_t)(c >> 16);
        h[total - 2] = (uint8_t)(c >> 8);
        h[total - 1] = (uint8_t)c;
        i = whole(h, total, SMTPX__PROXY_V2);
        ck_assert_str_eq(text(&i.src, a, sizeof(a)), "192.0.2.1");
        /* One bit off: the checksum no longer matches. */
        h[20] ^= 1;
        bad(h, total, SMTPX__PROXY_V2);
    }
    /* LOCAL (a health check), UNSPEC, UNIX: the connection's own
     * addresses. */
    n = v2(h, 0, 0x00, NULL, 0, NULL, 0);
    ck_assert_int_eq(whole(h, n, SMTPX__PROXY_V2).local, 1);
    n = v2(h, 0, 0x11, in4, 3, NULL, 0); /* LOCAL: block ignored */
    ck_assert_int_eq(whole(h, n, SMTPX__PROXY_V2).local, 1);
    n = v2(h, 1, 0x00, NULL, 0, NULL, 0);
    ck_assert_int_eq(whole(h, n, SMTPX__PROXY_V2).local, 1);
    memset(tlv, 0, 216);
    n = v2(h, 1, 0x31, tlv, 216, NULL, 0);
    ck_assert_int_eq(whole(h, n, SMTPX__PROXY_V2).local, 1);
}
END_TEST

START_TEST(test_v2_hostile)
{
    static const uint8_t in4[12] = {192, 0, 2, 1, 198, 51, 100, 7, 0, 1, 0, 25};
    uint8_t h[SMTPX__PROXY_MAX + 64], x[8];
    size_t n;

    /* Version 1 in the version nibble, commands 2-15, family 4, transport
     * 3, a datagram transport. */
    n = v2(h, 1, 0x11, in4, sizeof(in4), NULL, 0);
    h[12] = 0x11;
    bad(h, n, SMTPX__PROXY_V2);
    bad(h, 13, SMTPX__PROXY_V2); /* refused from its 13th octet on */
    h[12] = 0x22;
    bad(h, n, SMTPX__PROXY_V2);
    h[12] = 0x21;
    h[13] = 0x41;
    bad(h, n, SMTPX__PROXY_V2);
    h[13] = 0x13;
    bad(h, n, SMTPX__PROXY_V2);
    h[13] = 0x12;
    bad(h, n, SMTPX__PROXY_V2);
    /* An address block too short for its family. */
    n = v2(h, 1, 0x11, in4, 11, NULL, 0);
    bad(h, n, SMTPX__PROXY_V2);
    n = v2(h, 1, 0x21, in4, 12, NULL, 0);
    bad(h, n, SMTPX__PROXY_V2);
    /* TLVs that do not fill the length exactly. */
    n = v2(h, 1, 0x11, in4, sizeof(in4), (const uint8_t *)"\x04\x00", 2);
    bad(h, n, SMTPX__PROXY_V2);
    n = v2(h, 1, 0x11, in4, sizeof(in4), (const uint8_t *)"\x04\x00\x05xx", 5);
    bad(h, n, SMTPX__PROXY_V2);
    /* A CRC32C TLV of the wrong size. */
    n = v2(h, 1, 0x11, in4, sizeof(in4), (const uint8_t *)"\x03\x00\x02xx", 5);
    bad(h, n, SMTPX__PROXY_V2);
    /* Oversized: a length beyond what is taken is refused from the
     * header, without waiting for the octets. */
    memset(x, 0, sizeof(x));
    n = v2(h, 1, 0x11, in4, sizeof(in4), NULL, 0);
    h[14] = 0xff;
    h[15] = 0xff;
    bad(h, 16, SMTPX__PROXY_V2);
    h[14] = (uint8_t)((SMTPX__PROXY_MAX - 16 + 1) >> 8);
    h[15] = (uint8_t)(SMTPX__PROXY_MAX - 16 + 1);
    bad(h, 16, SMTPX__PROXY_V2);
    /* The largest taken: all TLV padding. */
    {
        size_t body = SMTPX__PROXY_MAX - 16 - sizeof(in4);
        uint8_t *t = calloc(1, body);
        t[0] = 0x04;
        t[1] = (uint8_t)((body - 3) >> 8);
        t[2] = (uint8_t)(body - 3);
        n = v2(h, 1, 0x11, in4, sizeof(in4), t, body);
        ck_assert_uint_eq(n, SMTPX__PROXY_MAX);
        ck_assert_int_eq(parse(h, n, SMTPX__PROXY_V2, &(smtpx__proxy){0}),
                         (smtpx_ssize)n);
        free(t);
    }
    /* A wrong signature. */
    n = v2(h, 1, 0x11, in4, sizeof(in4), NULL, 0);
    h[11] = 0x0b;
    bad(h, n, SMTPX__PROXY_V2);
    bad(h, 12, SMTPX__PROXY_V2);
}
END_TEST

/* ---- listeners that take PROXY ------------------------------------------ */

static smtpx_config *pcfg(void)
{
    smtpx_config *cfg;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, NULL), 0);
    ck_assert_int_eq(smtpx_config_set_hostname(cfg, "mx.test"), 0);
    ck_assert_int_eq(smtpx_config_freeze(cfg), 0);
    return cfg;
}

/* dial - a connection to port from the loopback address from */
static int dial(const char *from, int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    inet_pton(AF_INET, from, &a.sin_addr);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* got - run the loop until fd has something to read or is closed, 3 s at
 * most; what was read ("" for EOF) */
static char *got(smtpx_loop *loop, int fd, char *buf, size_t size)
{
    uint64_t end = smtpx_posix_now_ms() + 3000;
    ssize_t n;

    buf[0] = '\0';
    while (smtpx_posix_now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        smtpx_loop_run_once(loop, 10);
        if (poll(&p, 1, 0) != 1)
            continue;
        usleep(20000);
        smtpx_loop_run_once(loop, 0);
        n = read(fd, buf, size - 1);
        buf[n > 0 ? n : 0] = '\0';
        return buf;
    }
    return NULL;
}

static char seen_addr[64], seen_local[64];
static unsigned seen_port;
static char seen_helo[64];

static int p_connect(smtpx_server *s, const smtpx_peer *peer, smtpx_reply *r,
                     void *ud)
{
    (void)s;
    (void)r;
    (void)ud;
    snprintf(seen_addr, sizeof(seen_addr), "%s", peer->addr);
    snprintf(seen_local, sizeof(seen_local), "%s", peer->local_addr);
    seen_port = peer->port;
    return 0;
}

static int p_helo(smtpx_server *s, int kind, const char *name, smtpx_reply *r,
                  void *ud)
{
    (void)s;
    (void)kind;
    (void)r;
    (void)ud;
    snprintf(seen_helo, sizeof(seen_helo), "%s", name);
    return 0;
}

START_TEST(test_loop_proxy)
{
    static const smtpx_server_callbacks cbs = {.on_connect = p_connect,
                                               .on_helo = p_helo};
    static const uint8_t in4[12] = {203, 0, 113,  5,    198, 51,
                                    100, 7, 0x30, 0x39, 0,   25};
    smtpx_config *cfg = pcfg();
    smtpx_listen_opts o;
    smtpx_posix_addr pa;
    smtpx_loop *loop;
    uint8_t h[64];
    char buf[512];
    int lfd, port, fd;
    size_t n;

    ck_assert_int_eq(smtpx_loop_new(&loop, NULL), 0);
    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "0", 0, &lfd), 0);
    ck_assert_int_eq(smtpx_posix_getaddr(lfd, &pa), 0);
    port = pa.local_port;
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.cfg = cfg;
    o.cbs = &cbs;
    o.cbs_size = sizeof(cbs);
    o.proxy = SMTPX_PROXY_ANY;
    ck_assert_int_eq(smtpx_loop_add_listener(loop, lfd, &o),
                     SMTPX_ERR_INVALID_ARGUMENT); /* trusts nobody */
    o.proxy_trusted = "127.0.0.2, bad";
    ck_assert_int_eq(smtpx_loop_add_listener(loop, lfd, &o),
                     SMTPX_ERR_INVALID_ARGUMENT);
    o.proxy = 4;
    o.proxy_trusted = "127.0.0.2";
    ck_assert_int_eq(smtpx_loop_add_listener(loop, lfd, &o),
                     SMTPX_ERR_INVALID_ARGUMENT);
    o.proxy = SMTPX_PROXY_ANY;
    o.proxy_timeout_ms = 300;
    ck_assert_int_eq(smtpx_loop_add_listener(loop, lfd, &o), 0);

    /* Version 1 from the trusted proxy, sent in two pieces, with the
     * client's EHLO right behind it: the session sees the client. */
    fd = dial("127.0.0.2", port);
    ck_assert_int_eq(write(fd, "PROXY TCP4 192.0.2.1 ", 21), 21);
    smtpx_loop_run_once(loop, 50);
    ck_assert_int_eq(write(fd, "198.51.100.7 40000 25\r\nEHLO early\r\n", 35),
                     35);
    ck_assert_int_eq(
        strncmp(got(loop, fd, buf, sizeof(buf)), "220 mx.test ESMTP\r\n", 19),
        0);
    ck_assert_str_eq(seen_addr, "192.0.2.1");
    ck_assert_str_eq(seen_local, "198.51.100.7");
    ck_assert_uint_eq(seen_port, 40000);
    if (strstr(buf, "250 ") == NULL)
        got(loop, fd, buf, sizeof(buf));
    ck_assert_ptr_nonnull(strstr(buf, "250 CHUNKING"));
    ck_assert_str_eq(seen_helo, "early");
    close(fd);

    /* Version 2, binary. */
    fd = dial("127.0.0.2", port);
    n = v2(h, 1, 0x11, in4, sizeof(in4), NULL, 0);
    ck_assert_int_eq(write(fd, h, n), (ssize_t)n);
    ck_assert_str_eq(got(loop, fd, buf, sizeof(buf)), "220 mx.test ESMTP\r\n");
    ck_assert_str_eq(seen_addr, "203.0.113.5");
    ck_assert_uint_eq(seen_port, 12345);
    close(fd);

    /* LOCAL (the proxy's health check): the proxy itself. */
    fd = dial("127.0.0.2", port);
    n = v2(h, 0, 0x00, NULL, 0, NULL, 0);
    ck_assert_int_eq(write(fd, h, n), (ssize_t)n);
    ck_assert_str_eq(got(loop, fd, buf, sizeof(buf)), "220 mx.test ESMTP\r\n");
    ck_assert_str_eq(seen_addr, "127.0.0.2");
    close(fd);

    /* A client that is not a trusted proxy: its header is a command like
     * any other, its own address is what the session sees. */
    fd = dial("127.0.0.3", port);
    ck_assert_str_eq(got(loop, fd, buf, sizeof(buf)), "220 mx.test ESMTP\r\n");
    ck_assert_str_eq(seen_addr, "127.0.0.3");
    ck_assert_int_eq(
        write(fd, "PROXY TCP4 192.0.2.66 198.51.100.7 1 25\r\n", 41), 41);
    ck_assert_str_eq(got(loop, fd, buf, sizeof(buf)),
                     "500 5.5.2 Command unrecognized\r\n");
    close(fd);

    /* A bad header, a truncated one that never ends, an oversized one,
     * plain SMTP from the proxy: closed without a word. */
    fd = dial("127.0.0.2", port);
    ck_assert_int_eq(write(fd, "PROXY TCP4 192.0.2.1 x 1 25\r\n", 29), 29);
    ck_assert_str_eq(got(loop, fd, buf, sizeof(buf)), "");
    close(fd);
    fd = dial("127.0.0.2", port);
    ck_assert_int_eq(write(fd, h, 10), 10);
    ck_assert_str_eq(got(loop, fd, buf, sizeof(buf)), ""); /* 300 ms */
    close(fd);
    fd = dial("127.0.0.2", port);
    n = v2(h, 1, 0x11, in4, sizeof(in4), NULL, 0);
    h[14] = 0x7f;
    ck_assert_int_eq(write(fd, h, 16), 16);
    ck_assert_str_eq(got(loop, fd, buf, sizeof(buf)), "");
    close(fd);
    fd = dial("127.0.0.2", port);
    ck_assert_int_eq(write(fd, "EHLO x\r\n", 8), 8);
    ck_assert_str_eq(got(loop, fd, buf, sizeof(buf)), "");
    close(fd);
    fd = dial("127.0.0.2", port);
    close(fd); /* gone before any header */
    smtpx_loop_run_once(loop, 50);
    smtpx_loop_run_once(loop, 50);
    ck_assert_uint_eq(
        smtpx_loop_counter(loop, SMTPX_LOOP_COUNTER_REFUSED_PROXY), 5);
    /* A header on its way when the loop stops: closed with it. */
    fd = dial("127.0.0.2", port);
    ck_assert_int_eq(write(fd, "PROXY ", 6), 6);
    smtpx_loop_run_once(loop, 50);
    smtpx_loop_stop(loop, SMTPX_SHUTDOWN_DRAIN);
    {
        uint64_t end = smtpx_posix_now_ms() + 3000;
        int rc;
        while ((rc = smtpx_loop_run_once(loop, 50)) > 0 &&
               smtpx_posix_now_ms() < end)
            ;
        ck_assert_int_eq(rc, 0);
    }
    ck_assert_int_le(read(fd, buf, sizeof(buf)), 0); /* EOF or reset */
    close(fd);
    smtpx_loop_free(loop);
    smtpx_config_free(cfg);
}
END_TEST

Suite *suite_proxy(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("proxy");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_v1);
    tcase_add_test(tc, test_v1_hostile);
    tcase_add_test(tc, test_v2);
    tcase_add_test(tc, test_v2_hostile);
    tcase_add_test(tc, test_loop_proxy);
    suite_add_tcase(s, tc);
    return s;
}
