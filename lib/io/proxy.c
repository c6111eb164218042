/*
 * proxy - the PROXY protocol header, versions 1 and 2
 * (https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt).
 *
 * Exports smtpx__proxy_parse() of proxy.h.
 *
 * A proxy that relays TCP connections (HAProxy, a load balancer) writes
 * this header first on each connection it makes to the server, telling the
 * client's address.  The loop reads it only from trusted proxies, before
 * any session exists; everything it says is hostile input until checked.
 *
 * Version 1 is one line: "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n", or
 * "PROXY UNKNOWN...\r\n", at most 107 octets; single spaces, numeric
 * addresses of the named family, decimal ports without leading zeros.
 * Version 2 is binary: a 12-octet signature, version and command, family
 * and transport, a length, the addresses, then TLVs (type, length,
 * value), which must fill the length exactly.  A CRC32C TLV, when present,
 * must match (spec 2.2.2: mismatch drops the connection).  A LOCAL command
 * (the proxy's own health check), an UNSPEC or UNIX family and v1 UNKNOWN
 * mean "use the connection's own addresses".
 *
 * Invariants: the parser reads only in[0..len) and never more than
 * SMTPX__PROXY_MAX octets; an incomplete header is answered 0 only while
 * every octet so far fits a valid header, so that a client cannot keep
 * the loop waiting with garbage.
 */
#include <arpa/inet.h>
#include <string.h>

#include "io/proxy.h"

#define PROXY_V1_MAX 107

static const uint8_t proxy_v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                         0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* ---- version 1 ----------------------------------------------------------- */

/* proxy_port - a decimal port, no leading zero; 0 or -1 */
static int proxy_port(const char *p, size_t n, uint16_t *out)
{
    unsigned long v = 0;
    size_t i;

    if (n == 0 || n > 5 || (n > 1 && p[0] == '0'))
        return -1;
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    if (v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* proxy_addr - an address of one family, exactly; 0 or -1 */
static int proxy_addr(const char *p, size_t n, int v6, smtpx__ip *out)
{
    char buf[INET6_ADDRSTRLEN];
    uint8_t a[16];

    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, a) != 1)
        return -1;
    if (v6)
        smtpx__ip_set6(out, a);
    else
        smtpx__ip_set4(out, a);
    return 0;
}

static smtpx_ssize proxy_v1(const uint8_t *in, size_t len, smtpx__proxy *out)
{
    const char *p = (const char *)in;
    const char *tok[5];
    size_t toklen[5], i, end, ntok = 0, start;
    size_t lim = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;

    if (memcmp(in, "PROXY ", lim < 6 ? lim : 6) != 0)
        return -1;
    /* The line ends at the first CR, which must be followed by LF; only
     * printable ASCII before it. */
    for (end = 0; end < lim; end++) {
        if (in[end] == '\r')
            break;
        if (in[end] < 0x20 || in[end] > 0x7e)
            return -1;
    }
    if (end == lim)
        return len >= PROXY_V1_MAX ? -1 : 0;
    if (end + 2 > PROXY_V1_MAX)
        return -1; /* CRLF included, 107 at most */
    if (end + 1 >= len)
        return end + 1 >= PROXY_V1_MAX ? -1 : 0;
    if (in[end + 1] != '\n' || end < 6)
        return -1;
    memset(out, 0, sizeof(*out));
    out->version = 1;
    /* "UNKNOWN" and anything after it. */
    if (end - 6 >= 7 && memcmp(p + 6, "UNKNOWN", 7) == 0 &&
        (end == 13 || p[13] == ' ')) {
        out->local = 1;
        return (smtpx_ssize)(end + 2);
    }
    for (i = 6, start = 6; i <= end; i++) {
        if (i < end && p[i] != ' ')
            continue;
        if (i == start || ntok == 5)
            return -1; /* an empty field (two spaces), or too many */
        tok[ntok] = p + start;
        toklen[ntok++] = i - start;
        start = i + 1;
    }
    if (ntok != 5)
        return -1;
    if (toklen[0] == 4 && memcmp(tok[0], "TCP4", 4) == 0) {
        if (proxy_addr(tok[1], toklen[1], 0, &out->src) < 0 ||
            proxy_addr(tok[2], toklen[2], 0, &out->dst) < 0)
            return -1;
    } else if (toklen[0] == 4 && memcmp(tok[0], "TCP6", 4) == 0) {
        if (proxy_addr(tok[1], toklen[1], 1, &out->src) < 0 ||
            proxy_addr(tok[2], toklen[2], 1, &out->dst) < 0)
            return -1;
    } else {
        return -1;
    }
    if (proxy_port(tok[3], toklen[3], &out->sport) < 0 ||
        proxy_port(tok[4], toklen[4], &out->dport) < 0)
        return -1;
    return (smtpx_ssize)(end + 2);
}

/* ---- version 2 ----------------------------------------------------------- */

/* proxy_crc32c - CRC-32C (Castagnoli, RFC 3720 B.4), with the octets
 * [skip, skip + 4) taken as zero: the TLV's own value */
static uint32_t proxy_crc32c(const uint8_t *p, size_t n, size_t skip)
{
    uint32_t crc = 0xffffffffu;
    size_t i;
    int k;

    for (i = 0; i < n; i++) {
        crc ^= i >= skip && i < skip + 4 ? 0 : p[i];
        for (k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static smtpx_ssize proxy_v2(const uint8_t *in, size_t len, smtpx__proxy *out)
{
    size_t total, off, need;
    int cmd, fam, tp;

    if (memcmp(in, proxy_v2_sig, len < 12 ? len : 12) != 0)
        return -1;
    if (len >= 13 && ((in[12] >> 4) != 2 || (in[12] & 0x0f) > 1))
        return -1; /* version 2; LOCAL or PROXY */
    if (len >= 14 && ((in[13] >> 4) > 3 || (in[13] & 0x0f) > 2))
        return -1;
    if (len < 16)
        return 0;
    cmd = in[12] & 0x0f;
    fam = in[13] >> 4;
    tp = in[13] & 0x0f;
    total = 16 + ((size_t)in[14] << 8 | in[15]);
    if (total > SMTPX__PROXY_MAX)
        return -1;
    if (len < total)
        return 0;
    memset(out, 0, sizeof(*out));
    out->version = 2;
    if (cmd == 0) {
        /* LOCAL: the proxy speaking for itself; its block is ignored. */
        out->local = 1;
        return (smtpx_ssize)total;
    }
    need = fam == 1 ? 12 : fam == 2 ? 36 : fam == 3 ? 216 : 0;
    if (fam == 0 || fam == 3) {
        out->local = 1; /* the connection's own addresses */
    } else if (tp != 1) {
        return -1; /* not a stream: not for an SMTP server */
    }
    if (total - 16 < need)
        return -1;
    if (!out->local && fam == 1) {
        smtpx__ip_set4(&out->src, in + 16);
        smtpx__ip_set4(&out->dst, in + 20);
        out->sport = (uint16_t)(in[24] << 8 | in[25]);
        out->dport = (uint16_t)(in[26] << 8 | in[27]);
    } else if (!out->local && fam == 2) {
        smtpx__ip_set6(&out->src, in + 16);
        smtpx__ip_set6(&out->dst, in + 32);
        out->sport = (uint16_t)(in[48] << 8 | in[49]);
        out->dport = (uint16_t)(in[50] << 8 | in[51]);
    }
    /* The TLVs fill the rest exactly. */
    for (off = 16 + need; off < total;) {
        size_t l;
        if (total - off < 3)
            return -1;
        l = (size_t)in[off + 1] << 8 | in[off + 2];
        if (total - off - 3 < l)
            return -1;
        if (in[off] == 0x03) { /* PP2_TYPE_CRC32C */
            uint32_t want;
            if (l != 4)
                return -1;
            want = (uint32_t)in[off + 3] << 24 | (uint32_t)in[off + 4] << 16 |
                   (uint32_t)in[off + 5] << 8 | in[off + 6];
            if (proxy_crc32c(in, total, off + 3) != want)
                return -1;
        }
        off += 3 + l;
    }
    return (smtpx_ssize)total;
}

smtpx_ssize smtpx__proxy_parse(const uint8_t *in, size_t len, int versions,
                               smtpx__proxy *out)
{
    smtpx_ssize r1 = -1, r2 = -1;

    if (len == 0)
        return 0;
    if (versions & SMTPX__PROXY_V1)
        r1 = proxy_v1(in, len, out);
    if (r1 < 0 && (versions & SMTPX__PROXY_V2))
        r2 = proxy_v2(in, len, out);
    return r1 >= 0 ? r1 : r2;
}
