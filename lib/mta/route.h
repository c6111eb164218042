/*
 * route - where mail for a domain goes: the MX answer turned into the
 * ordered list of hosts to try (RFC 5321 5.1, RFC 7505), or the reason
 * there is none.
 */
#ifndef SMTPX_LIB_ROUTE_H
#define SMTPX_LIB_ROUTE_H

#include <libsmtpx/mta.h>

#define SMTPX__ROUTE_MAX 32

typedef struct smtpx__route_host {
    char name[256];
    uint16_t pref;
} smtpx__route_host;

typedef struct smtpx__route {
    smtpx__route_host hosts[SMTPX__ROUTE_MAX];
    size_t nhosts;
    smtpx_reply fail; /* code 0: hosts holds the route */
    char fail_text[512];
} smtpx__route;

/* A source of random numbers for the order of equal preferences. */
typedef unsigned smtpx__route_rand_fn(void *ud);

/*
 * smtpx__route_mx - the route of domain from the answer to its MX query
 * (status, rr, n as smtpx_resolve_fn gives them):
 *  - MX records: by preference, in random order among equal ones; a host
 *    named self (this host) and every host not better than it are
 *    dropped, and nothing left is 554 5.4.6 (a loop);
 *  - a null MX (one record, ".") is 556 5.1.10;
 *  - no MX (NODATA): the domain itself, the implicit MX;
 *  - NXDOMAIN: 550 5.1.2; another failure: 451 4.4.3 (try later).
 * self may be NULL; rnd NULL uses rand().
 */
void smtpx__route_mx(smtpx__route *rt, const char *domain, const char *self,
                     int status, const smtpx_rr *rr, size_t n,
                     smtpx__route_rand_fn *rnd, void *rnd_ud);

#endif
