/*
 * limiter - connection and rate limits per client address and network.
 *
 * Exports the smtpx_limiter_* functions of <libsmtpx/limiter.h>.
 *
 * State lives in one hash table of entries: one per client address (open
 * sessions, a connection, a message and an AUTH token bucket) and one per
 * network (open sessions), keyed by a kind octet and the 16-octet address
 * (io/netaddr.h).  The hash is keyed with random bits drawn at creation,
 * so that a client cannot choose addresses that all land in one chain.
 *
 * Token buckets count in 1/60000 of an event: a limit of R per minute
 * refills R units per millisecond up to R * 60000, an event costs 60000.
 * A bucket is full again a minute after its last event, so an address
 * entry whose sessions have all ended is kept (on the idle list, oldest
 * first) for a minute and then forgotten; a network entry, which has no
 * bucket, goes as soon as its last session ends.  The idle list is
 * trimmed a little on each call, so the work per call stays constant.
 *
 * Invariants: an entry is on the idle list exactly when it is an address
 * entry with no session open; count is the number of entries; sessions
 * is the number of open sessions counted (exempt clients are not).
 */
#include <stdio.h>
#include <string.h>

#include <libsmtpx/limiter.h>

#include "base/crypto.h"
#include "base/mem.h"
#include "io/netaddr.h"

#define LIM_MINUTE      60000
#define LIM_MAX_TRACKED 100000
/* Idle entries looked at per call. */
#define LIM_TRIM 4

enum { LIM_ADDR = 'a', LIM_NET = 'n' };

typedef struct lim_entry {
    uint8_t key[17];
    uint32_t open;
    uint64_t conn_tokens, msg_tokens, auth_tokens;
    uint64_t conn_at, msg_at, auth_at;
    uint64_t idle_since;
    int idle;
    struct lim_entry *hnext;
    struct lim_entry *iprev, *inext;
} lim_entry;

struct smtpx_limiter {
    smtpx_mem mem;
    smtpx_limiter_opts o;
    smtpx__net *exempt;
    size_t nexempt;
    lim_entry **tab;
    size_t nbuckets, count;
    lim_entry *idle_head, *idle_tail;
    uint64_t k0, k1;
    size_t sessions;
};

const char *smtpx_limiter_reason(int why)
{
    static const char *const texts[] = {
#define LIM_TEXT(name, id, text) [id] = text,
        SMTPX_LIMITER_MAP(LIM_TEXT)
#undef LIM_TEXT
    };

    return why >= 0 && why < SMTPX_LIMITER_COUNT ? texts[why] : "?";
}

int smtpx_limiter_new(smtpx_limiter **out, const smtpx_limiter_opts *opts,
                      const smtpx_mem *mem)
{
    smtpx_limiter *l;
    uint8_t seed[16];
    int rc;

    if (out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (opts == NULL || opts->size == 0 || !smtpx__mem_valid(mem))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (mem == NULL)
        mem = smtpx__mem_default();
    l = smtpx__calloc(mem, 1, sizeof(*l));
    if (l == NULL)
        return SMTPX_ERR_NOMEM;
    l->mem = *mem;
    (void)smtpx__copy_sized(&l->o, sizeof(l->o), opts); /* size checked */
    if (l->o.net4 == 0)
        l->o.net4 = 24;
    if (l->o.net6 == 0)
        l->o.net6 = 64;
    if (l->o.max_tracked == 0)
        l->o.max_tracked = LIM_MAX_TRACKED;
    if (l->o.log_level == 0)
        l->o.log_level = SMTPX_LOG_NOTICE;
    if (l->o.net4 > 32 || l->o.net6 > 128) {
        smtpx__free(mem, l);
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    rc = smtpx__net_list_parse(opts->exempt, &l->mem, &l->exempt, &l->nexempt);
    l->o.exempt = NULL; /* not kept: parsed */
    if (rc < 0) {
        smtpx__free(mem, l);
        return rc;
    }
    /* If the system has no entropy the table still works, keyed by the
     * structure's address: only the hash flooding defence is weaker. */
    if (smtpx__random_system(seed, sizeof(seed), NULL) == 0) {
        memcpy(&l->k0, seed, 8);
        memcpy(&l->k1, seed + 8, 8);
    } else {
        l->k0 = (uint64_t)(uintptr_t)l;
    }
    l->k1 |= 1;
    l->nbuckets = 64;
    l->tab = smtpx__calloc(mem, l->nbuckets, sizeof(*l->tab));
    if (l->tab == NULL) {
        smtpx__free(mem, l->exempt);
        smtpx__free(mem, l);
        return SMTPX_ERR_NOMEM;
    }
    *out = l;
    return 0;
}

void smtpx_limiter_free(smtpx_limiter *l)
{
    size_t i;

    if (l == NULL)
        return;
    for (i = 0; i < l->nbuckets; i++) {
        lim_entry *e = l->tab[i], *next;
        for (; e != NULL; e = next) {
            next = e->hnext;
            smtpx__free(&l->mem, e);
        }
    }
    smtpx__free(&l->mem, l->tab);
    smtpx__free(&l->mem, l->exempt);
    smtpx__free(&l->mem, l);
}

size_t smtpx_limiter_sessions(const smtpx_limiter *l)
{
    return l != NULL ? l->sessions : 0;
}

size_t smtpx_limiter_tracked(const smtpx_limiter *l)
{
    return l != NULL ? l->count : 0;
}

/* ---- the table ----------------------------------------------------------- */

static uint64_t lim_hash(const smtpx_limiter *l, const uint8_t key[17])
{
    uint64_t w[3] = {0, 0, 0}, h = l->k0;
    int i;

    memcpy(w, key, 16);
    w[2] = key[16];
    for (i = 0; i < 3; i++) {
        h ^= w[i];
        h *= l->k1;
        h ^= h >> 29;
    }
    /* splitmix64's finaliser */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

static lim_entry **lim_slot(smtpx_limiter *l, const uint8_t key[17])
{
    lim_entry **p = &l->tab[lim_hash(l, key) & (l->nbuckets - 1)];

    while (*p != NULL && memcmp((*p)->key, key, sizeof((*p)->key)) != 0)
        p = &(*p)->hnext;
    return p;
}

static void lim_grow(smtpx_limiter *l)
{
    size_t n = l->nbuckets * 2, i;
    lim_entry **t = smtpx__calloc(&l->mem, n, sizeof(*t));

    if (t == NULL)
        return; /* longer chains, still correct */
    for (i = 0; i < l->nbuckets; i++) {
        lim_entry *e = l->tab[i], *next;
        for (; e != NULL; e = next) {
            size_t b = lim_hash(l, e->key) & (n - 1);
            next = e->hnext;
            e->hnext = t[b];
            t[b] = e;
        }
    }
    smtpx__free(&l->mem, l->tab);
    l->tab = t;
    l->nbuckets = n;
}

static void lim_idle_remove(smtpx_limiter *l, lim_entry *e)
{
    if (!e->idle)
        return;
    if (e->iprev != NULL)
        e->iprev->inext = e->inext;
    else
        l->idle_head = e->inext;
    if (e->inext != NULL)
        e->inext->iprev = e->iprev;
    else
        l->idle_tail = e->iprev;
    e->iprev = e->inext = NULL;
    e->idle = 0;
}

static void lim_idle_add(smtpx_limiter *l, lim_entry *e, uint64_t now)
{
    e->idle = 1;
    e->idle_since = now;
    e->inext = NULL;
    e->iprev = l->idle_tail;
    if (l->idle_tail != NULL)
        l->idle_tail->inext = e;
    else
        l->idle_head = e;
    l->idle_tail = e;
}

static void lim_drop(smtpx_limiter *l, lim_entry *e)
{
    lim_entry **p = lim_slot(l, e->key);

    lim_idle_remove(l, e);
    *p = e->hnext;
    l->count--;
    smtpx__free(&l->mem, e);
}

/* lim_trim - forget idle entries whose buckets are full again; with
 * force, the oldest idle one whatever its age */
static void lim_trim(smtpx_limiter *l, uint64_t now, int force)
{
    int i;

    for (i = 0; i < LIM_TRIM && l->idle_head != NULL; i++) {
        lim_entry *e = l->idle_head;
        if (!force && now - e->idle_since < LIM_MINUTE)
            break;
        lim_drop(l, e);
        force = 0;
    }
}

/* lim_get - the entry of kind for ip (masked for a network), made if
 * missing; NULL when out of memory or room */
static lim_entry *lim_get(smtpx_limiter *l, int kind, const smtpx__ip *ip,
                          uint64_t now)
{
    uint8_t key[17];
    smtpx__ip m = *ip;
    lim_entry **p, *e;

    if (kind == LIM_NET)
        smtpx__ip_mask(&m, m.v4 ? l->o.net4 : l->o.net6);
    memcpy(key, m.b, 16);
    key[16] = (uint8_t)kind;
    p = lim_slot(l, key);
    if (*p != NULL)
        return *p;
    if (l->count >= l->o.max_tracked) {
        lim_trim(l, now, 1);
        if (l->count >= l->o.max_tracked)
            return NULL;
        p = lim_slot(l, key);
    }
    e = smtpx__calloc(&l->mem, 1, sizeof(*e));
    if (e == NULL)
        return NULL;
    memcpy(e->key, key, sizeof(key));
    /* Buckets start full: a new client may use its whole rate. */
    e->conn_tokens = (uint64_t)l->o.conn_rate * LIM_MINUTE;
    e->msg_tokens = (uint64_t)l->o.msg_rate * LIM_MINUTE;
    e->auth_tokens = (uint64_t)l->o.auth_rate * LIM_MINUTE;
    e->conn_at = e->msg_at = e->auth_at = now;
    *p = e;
    l->count++;
    if (l->count > l->nbuckets)
        lim_grow(l);
    return e;
}

/* lim_settle - an entry with no session open: kept while a bucket is
 * not full (on the idle list), else forgotten */
static void lim_settle(smtpx_limiter *l, lim_entry *e, uint64_t now)
{
    if (e->open != 0 || e->idle)
        return;
    if (e->key[16] == LIM_ADDR &&
        (e->conn_tokens < (uint64_t)l->o.conn_rate * LIM_MINUTE ||
         e->msg_tokens < (uint64_t)l->o.msg_rate * LIM_MINUTE ||
         e->auth_tokens < (uint64_t)l->o.auth_rate * LIM_MINUTE))
        lim_idle_add(l, e, now);
    else
        lim_drop(l, e);
}

/* lim_spend - refill a bucket for the time passed, then take one event
 * if there is one; 1 if taken */
static int lim_spend(uint64_t *tokens, uint64_t *at, uint32_t rate,
                     uint64_t now)
{
    uint64_t cap = (uint64_t)rate * LIM_MINUTE;
    uint64_t dt = now > *at ? now - *at : 0;

    if (dt > LIM_MINUTE)
        dt = LIM_MINUTE;
    *tokens += dt * rate;
    if (*tokens > cap)
        *tokens = cap;
    *at = now;
    if (*tokens < LIM_MINUTE)
        return 0;
    *tokens -= LIM_MINUTE;
    return 1;
}

static int lim_refuse(smtpx_limiter *l, const char *addr, int why,
                      uint32_t limit)
{
    char msg[160];

    if (l->o.log != NULL && SMTPX_LOG_NOTICE <= l->o.log_level) {
        snprintf(msg, sizeof(msg), "limit: %.64s refused: %s (limit %u)", addr,
                 smtpx_limiter_reason(why), (unsigned)limit);
        l->o.log(SMTPX_LOG_NOTICE, msg, l->o.log_user_data);
    }
    return why;
}

/* ---- the calls ----------------------------------------------------------- */

int smtpx_limiter_open(smtpx_limiter *l, const char *addr, uint64_t now_ms)
{
    lim_entry *a = NULL, *n = NULL;
    smtpx__ip ip;
    int why = SMTPX_LIMITER_OK;
    uint32_t limit = 0;

    if (l == NULL || smtpx__ip_parse(addr, &ip) < 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (smtpx__net_list_match(l->exempt, l->nexempt, &ip))
        return SMTPX_LIMITER_OK;
    lim_trim(l, now_ms, 0);
    if (l->o.sessions != 0 && l->sessions >= l->o.sessions)
        return lim_refuse(l, addr, SMTPX_LIMITER_SESSIONS, l->o.sessions);
    if (l->o.addr_sessions || l->o.conn_rate || l->o.msg_rate) {
        a = lim_get(l, LIM_ADDR, &ip, now_ms);
        if (a == NULL)
            return l->count >= l->o.max_tracked
                       ? lim_refuse(l, addr, SMTPX_LIMITER_SESSIONS,
                                    l->o.max_tracked)
                       : SMTPX_ERR_NOMEM;
        /* Off the idle list while in use, so that making the network's
         * entry cannot forget it; lim_settle puts it back. */
        lim_idle_remove(l, a);
    }
    if (l->o.net_sessions) {
        n = lim_get(l, LIM_NET, &ip, now_ms);
        if (n == NULL) {
            if (a != NULL)
                lim_settle(l, a, now_ms);
            return l->count >= l->o.max_tracked
                       ? lim_refuse(l, addr, SMTPX_LIMITER_SESSIONS,
                                    l->o.max_tracked)
                       : SMTPX_ERR_NOMEM;
        }
    }
    if (a != NULL && l->o.addr_sessions && a->open >= l->o.addr_sessions) {
        why = SMTPX_LIMITER_ADDR_SESSIONS;
        limit = l->o.addr_sessions;
    } else if (n != NULL && n->open >= l->o.net_sessions) {
        why = SMTPX_LIMITER_NET_SESSIONS;
        limit = l->o.net_sessions;
    } else if (a != NULL && l->o.conn_rate &&
               !lim_spend(&a->conn_tokens, &a->conn_at, l->o.conn_rate,
                          now_ms)) {
        why = SMTPX_LIMITER_CONN_RATE;
        limit = l->o.conn_rate;
    }
    if (why != SMTPX_LIMITER_OK) {
        if (a != NULL)
            lim_settle(l, a, now_ms);
        if (n != NULL)
            lim_settle(l, n, now_ms);
        return lim_refuse(l, addr, why, limit);
    }
    if (a != NULL) {
        lim_idle_remove(l, a);
        a->open++;
    }
    if (n != NULL)
        n->open++;
    l->sessions++;
    return SMTPX_LIMITER_OK;
}

void smtpx_limiter_close(smtpx_limiter *l, const char *addr, uint64_t now_ms)
{
    uint8_t key[17];
    smtpx__ip ip, m;
    lim_entry *e;

    if (l == NULL || smtpx__ip_parse(addr, &ip) < 0 ||
        smtpx__net_list_match(l->exempt, l->nexempt, &ip))
        return;
    if (l->sessions > 0)
        l->sessions--;
    memcpy(key, ip.b, 16);
    key[16] = LIM_ADDR;
    if ((e = *lim_slot(l, key)) != NULL && e->open > 0) {
        e->open--;
        lim_settle(l, e, now_ms);
    }
    m = ip;
    smtpx__ip_mask(&m, m.v4 ? l->o.net4 : l->o.net6);
    memcpy(key, m.b, 16);
    key[16] = LIM_NET;
    if ((e = *lim_slot(l, key)) != NULL && e->open > 0) {
        e->open--;
        lim_settle(l, e, now_ms);
    }
}

/* lim_event - a message (why SMTPX_LIMITER_MSG_RATE) or an AUTH attempt
 * (SMTPX_LIMITER_AUTH_RATE) from an address: OK and counted, or why not */
static int lim_event(smtpx_limiter *l, const char *addr, uint64_t now_ms,
                     int why)
{
    uint32_t rate;
    smtpx__ip ip;
    lim_entry *a;
    int ok;

    if (l == NULL || smtpx__ip_parse(addr, &ip) < 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    rate = why == SMTPX_LIMITER_AUTH_RATE ? l->o.auth_rate : l->o.msg_rate;
    if (rate == 0 || smtpx__net_list_match(l->exempt, l->nexempt, &ip))
        return SMTPX_LIMITER_OK;
    lim_trim(l, now_ms, 0);
    a = lim_get(l, LIM_ADDR, &ip, now_ms);
    if (a == NULL)
        return SMTPX_ERR_NOMEM;
    ok = why == SMTPX_LIMITER_AUTH_RATE
             ? lim_spend(&a->auth_tokens, &a->auth_at, rate, now_ms)
             : lim_spend(&a->msg_tokens, &a->msg_at, rate, now_ms);
    lim_settle(l, a, now_ms);
    return ok ? SMTPX_LIMITER_OK : lim_refuse(l, addr, why, rate);
}

int smtpx_limiter_message(smtpx_limiter *l, const char *addr, uint64_t now_ms)
{
    return lim_event(l, addr, now_ms, SMTPX_LIMITER_MSG_RATE);
}

int smtpx_limiter_auth(smtpx_limiter *l, const char *addr, uint64_t now_ms)
{
    return lim_event(l, addr, now_ms, SMTPX_LIMITER_AUTH_RATE);
}
