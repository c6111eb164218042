/*
 * netaddr - IP addresses, prefixes and network lists for the drivers.
 *
 * Exports the smtpx__ip_* and smtpx__net_* functions of netaddr.h.
 *
 * Invariants: an address is 16 octets whatever its family, IPv4 mapped
 * into ::ffff:0:0/96 with v4 set, so that the same client is the same key
 * whether it came over an IPv4 or a dual-stack IPv6 socket; prefix lengths
 * count within the family (an IPv4 /24 masks the last octet); parsing
 * takes numeric addresses only (inet_pton), never a name.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "io/netaddr.h"

static const uint8_t netaddr_v4_prefix[12] = {0, 0, 0, 0, 0,    0,
                                              0, 0, 0, 0, 0xff, 0xff};

void smtpx__ip_set4(smtpx__ip *out, const uint8_t a[4])
{
    memcpy(out->b, netaddr_v4_prefix, 12);
    memcpy(out->b + 12, a, 4);
    out->v4 = 1;
}

void smtpx__ip_set6(smtpx__ip *out, const uint8_t a[16])
{
    memcpy(out->b, a, 16);
    out->v4 = memcmp(a, netaddr_v4_prefix, 12) == 0;
}

int smtpx__ip_parse(const char *text, smtpx__ip *out)
{
    char buf[INET6_ADDRSTRLEN + 1];
    uint8_t a[16];
    size_t n;

    if (text == NULL)
        return -1;
    n = strlen(text);
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        text++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, text, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, a) == 1) {
        smtpx__ip_set4(out, a);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, a) == 1) {
        smtpx__ip_set6(out, a);
        return 0;
    }
    return -1;
}

void smtpx__ip_text(const smtpx__ip *ip, char *buf, size_t size)
{
    if (size == 0)
        return;
    if (inet_ntop(ip->v4 ? AF_INET : AF_INET6, ip->v4 ? ip->b + 12 : ip->b, buf,
                  (socklen_t)size) == NULL)
        buf[0] = '\0';
}

void smtpx__ip_mask(smtpx__ip *ip, unsigned bits)
{
    unsigned i, total = ip->v4 ? 32 : 128, first = ip->v4 ? 96 : 0;

    if (bits >= total)
        return;
    bits += first;
    for (i = bits / 8; i < 16; i++) {
        unsigned keep = i == bits / 8 ? bits % 8 : 0;
        ip->b[i] &= (uint8_t)(0xff00u >> keep);
    }
}

int smtpx__net_match(const smtpx__net *net, const smtpx__ip *ip)
{
    smtpx__ip m = *ip;

    if (net->ip.v4 != ip->v4)
        return 0;
    smtpx__ip_mask(&m, net->bits);
    return memcmp(m.b, net->ip.b, 16) == 0;
}

int smtpx__net_list_match(const smtpx__net *list, size_t n, const smtpx__ip *ip)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (smtpx__net_match(&list[i], ip))
            return 1;
    return 0;
}

/* netaddr_item - one "ADDR[/BITS]" of len octets; 0 or -1 */
static int netaddr_item(const char *p, size_t len, smtpx__net *out)
{
    char buf[INET6_ADDRSTRLEN + 8];
    char *slash, *end;
    unsigned long bits;

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    slash = strchr(buf, '/');
    if (slash != NULL)
        *slash = '\0';
    if (smtpx__ip_parse(buf, &out->ip) < 0)
        return -1;
    out->bits = out->ip.v4 ? 32 : 128;
    if (slash != NULL) {
        if (!isdigit((unsigned char)slash[1]))
            return -1;
        bits = strtoul(slash + 1, &end, 10);
        if (*end != '\0' || bits > out->bits)
            return -1;
        out->bits = (unsigned)bits;
    }
    smtpx__ip_mask(&out->ip, out->bits);
    return 0;
}

static int netaddr_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int smtpx__net_list_parse(const char *text, const smtpx_mem *mem,
                          smtpx__net **out, size_t *n)
{
    const char *p;
    size_t count = 0, i = 0;
    smtpx__net *list, one;

    *out = NULL;
    *n = 0;
    if (text == NULL)
        return 0;
    for (p = text; *p != '\0';) {
        size_t len;
        while (netaddr_sep(*p))
            p++;
        for (len = 0; p[len] != '\0' && !netaddr_sep(p[len]); len++)
            ;
        if (len == 0)
            break;
        if (netaddr_item(p, len, &one) < 0)
            return SMTPX_ERR_INVALID_ARGUMENT;
        count++;
        p += len;
    }
    if (count == 0)
        return 0;
    list = smtpx__calloc(mem, count, sizeof(*list));
    if (list == NULL)
        return SMTPX_ERR_NOMEM;
    for (p = text; i < count;) {
        size_t len;
        while (netaddr_sep(*p))
            p++;
        for (len = 0; p[len] != '\0' && !netaddr_sep(p[len]); len++)
            ;
        netaddr_item(p, len, &list[i++]);
        p += len;
    }
    *out = list;
    *n = count;
    return 0;
}
