/*
 * route - the MX answer of a domain turned into the hosts to try.
 *
 * Exports smtpx__route_mx() of route.h.
 *
 * RFC 5321 5.1: hosts by preference, equal preferences in random order so
 * that load spreads; no MX means the domain is its own mail host; an MX
 * pointing at this host means that only better hosts may take the mail
 * (anything else would loop).  RFC 7505: a single MX of preference 0 and
 * exchange "." says the domain takes no mail: fail at once (5.1.10).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mta/route.h"

static void route_fail(smtpx__route *rt, int code, int e0, int e1, int e2,
                       const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

static void route_fail(smtpx__route *rt, int code, int e0, int e1, int e2,
                       const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(rt->fail_text, sizeof(rt->fail_text), fmt, ap);
    va_end(ap);
    rt->fail.code = code;
    rt->fail.enh[0] = (uint16_t)e0;
    rt->fail.enh[1] = (uint16_t)e1;
    rt->fail.enh[2] = (uint16_t)e2;
    rt->fail.text = rt->fail_text;
    rt->nhosts = 0;
}

static int route_cmp(const void *a, const void *b)
{
    const smtpx__route_host *x = a, *y = b;

    return (int)x->pref - (int)y->pref;
}

static unsigned route_rand(void *ud)
{
    (void)ud;
    return (unsigned)rand();
}

static int route_same(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    /* A trailing dot is the same name. */
    if (la > 0 && a[la - 1] == '.')
        la--;
    if (lb > 0 && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

void smtpx__route_mx(smtpx__route *rt, const char *domain, const char *self,
                     int status, const smtpx_rr *rr, size_t n,
                     smtpx__route_rand_fn *rnd, void *rnd_ud)
{
    size_t i, j, k;

    memset(rt, 0, sizeof(*rt));
    if (rnd == NULL)
        rnd = route_rand;
    if (status == SMTPX_ERR_DNS_NODATA) {
        snprintf(rt->hosts[0].name, sizeof(rt->hosts[0].name), "%s", domain);
        rt->nhosts = 1;
    } else if (status == SMTPX_ERR_DNS_NXDOMAIN) {
        route_fail(rt, 550, 5, 1, 2, "Host or domain name not found: %s",
                   domain);
        return;
    } else if (status != 0) {
        route_fail(rt, 451, 4, 4, 3, "DNS lookup of %s failed: %s", domain,
                   smtpx_strerror(status));
        return;
    } else if (n == 1 && rr[0].type == SMTPX_RR_MX &&
               strcmp(rr[0].value, ".") == 0) {
        route_fail(rt, 556, 5, 1, 10,
                   "Domain %s does not accept mail (null MX)", domain);
        return;
    } else {
        for (i = 0; i < n && rt->nhosts < SMTPX__ROUTE_MAX; i++) {
            if (rr[i].type != SMTPX_RR_MX || strcmp(rr[i].value, ".") == 0 ||
                strlen(rr[i].value) >= sizeof(rt->hosts[0].name))
                continue;
            strcpy(rt->hosts[rt->nhosts].name, rr[i].value);
            rt->hosts[rt->nhosts].pref = rr[i].pref;
            rt->nhosts++;
        }
        if (rt->nhosts == 0) {
            route_fail(rt, 451, 4, 4, 3, "No usable MX host for %s", domain);
            return;
        }
        qsort(rt->hosts, rt->nhosts, sizeof(rt->hosts[0]), route_cmp);
        /* Fisher-Yates within each run of equal preference. */
        for (i = 0; i < rt->nhosts; i = j) {
            for (j = i;
                 j < rt->nhosts && rt->hosts[j].pref == rt->hosts[i].pref; j++)
                ;
            for (k = j - 1; k > i; k--) {
                size_t x = i + rnd(rnd_ud) % (k - i + 1);
                smtpx__route_host t = rt->hosts[k];
                rt->hosts[k] = rt->hosts[x];
                rt->hosts[x] = t;
            }
        }
    }
    /* The loop guard. */
    if (self == NULL)
        return;
    for (i = 0; i < rt->nhosts; i++)
        if (route_same(rt->hosts[i].name, self))
            break;
    if (i == rt->nhosts)
        return;
    {
        uint16_t pref = rt->hosts[i].pref;
        int implicit = status == SMTPX_ERR_DNS_NODATA;
        for (i = k = 0; i < rt->nhosts; i++)
            if (!implicit && rt->hosts[i].pref < pref)
                rt->hosts[k++] = rt->hosts[i];
        rt->nhosts = k;
    }
    if (rt->nhosts == 0)
        route_fail(rt, 554, 5, 4, 6, "mail for %s loops back to myself",
                   domain);
}
