/*
 * netaddr - IP addresses as the drivers compare them: one 16-octet form for
 * both families (IPv4 as ::ffff:a.b.c.d, so an IPv4 client of an IPv6
 * socket is the same address), prefixes, and lists of networks
 * ("127.0.0.1, 10.0.0.0/8, [2001:db8::]/32") for trusted proxies and
 * exemptions.
 */
#ifndef SMTPX_LIB_NETADDR_H
#define SMTPX_LIB_NETADDR_H

#include <stddef.h>
#include <stdint.h>

#include <libsmtpx/common.h>

typedef struct smtpx__ip {
    uint8_t b[16];
    int v4; /* 1: b is ::ffff:a.b.c.d */
} smtpx__ip;

typedef struct smtpx__net {
    smtpx__ip ip;  /* the network, host bits zero */
    unsigned bits; /* prefix length within the family (0-32, 0-128) */
} smtpx__net;

/* smtpx__ip_parse - a numeric address, IPv6 in brackets or not; an
 * IPv4-mapped IPv6 address is IPv4.  0, or -1 */
int smtpx__ip_parse(const char *text, smtpx__ip *out);

/* smtpx__ip_set4 / _set6 - from 4 or 16 octets in network order */
void smtpx__ip_set4(smtpx__ip *out, const uint8_t a[4]);
void smtpx__ip_set6(smtpx__ip *out, const uint8_t a[16]);

/* smtpx__ip_text - the address as text (IPv4 dotted, IPv6 compressed) */
void smtpx__ip_text(const smtpx__ip *ip, char *buf, size_t size);

/* smtpx__ip_mask - keep the first bits of the address (within its
 * family), zero the rest */
void smtpx__ip_mask(smtpx__ip *ip, unsigned bits);

/* smtpx__net_match - 1 if ip is inside net */
int smtpx__net_match(const smtpx__net *net, const smtpx__ip *ip);

/*
 * smtpx__net_list_parse - "ADDR[/BITS]" items separated by commas or
 * white space into a new array (*out, *n; *out NULL when the text holds
 * none).  An address without /BITS is the one host.  Returns 0,
 * SMTPX_ERR_INVALID_ARGUMENT (a bad item: nothing is allocated) or
 * SMTPX_ERR_NOMEM.
 */
int smtpx__net_list_parse(const char *text, const smtpx_mem *mem,
                          smtpx__net **out, size_t *n);

/* smtpx__net_list_match - 1 if ip is inside one of the n networks */
int smtpx__net_list_match(const smtpx__net *list, size_t n,
                          const smtpx__ip *ip);

#endif
