/*
 * proxy - the PROXY protocol header (HAProxy, versions 1 and 2): what a
 * trusted proxy in front of a listener says about the client it relays.
 */
#ifndef SMTPX_LIB_PROXY_H
#define SMTPX_LIB_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include <libsmtpx/common.h>

#include "io/netaddr.h"

/* The longest header taken: a version 1 line is at most 107 octets; a
 * version 2 header is 16 octets and its addresses, plus TLVs, which a
 * real proxy keeps to a few hundred octets. */
#define SMTPX__PROXY_MAX 2048

/* Versions to accept (bits). */
#define SMTPX__PROXY_V1 1
#define SMTPX__PROXY_V2 2

typedef struct smtpx__proxy {
    int version; /* 1 or 2 */
    int local;   /* use the connection's own addresses: a v2 LOCAL
                    command (the proxy's health check), v1 UNKNOWN, or a
                    family that is not IP */
    smtpx__ip src, dst;
    uint16_t sport, dport;
} smtpx__proxy;

/*
 * smtpx__proxy_parse - the header at the start of in[0..len), in one of
 * the versions asked for.  Returns its length when it is whole and valid
 * (the octets after it belong to the client), 0 when what is there so far
 * may still become a valid header, -1 when it cannot.  Nothing is read
 * past len, and nothing is allocated.
 */
smtpx_ssize smtpx__proxy_parse(const uint8_t *in, size_t len, int versions,
                               smtpx__proxy *out);

#endif
