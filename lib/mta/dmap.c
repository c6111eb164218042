/*
 * dmap - an index from key digests to values (see dmap.h).
 *
 * Exports the smtpx__dmap_* functions and smtpx__digest() of dmap.h.
 *
 * Invariants: the table is never more than half full, so a probe always
 * ends at a free slot; a deletion shifts back the values after it that
 * probed past it (Knuth 6.4, algorithm R), so no tombstones pile up.
 */
#include <string.h>

#include "base/crypto.h"
#include "base/mem.h"
#include "mta/dmap.h"

static uint32_t dmap_hash(const uint8_t *d)
{
    return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 |
           (uint32_t)d[3] << 24;
}

static int dmap_alloc(smtpx__dmap *m, uint32_t slots, const smtpx_mem *mem)
{
    m->slot = smtpx__calloc(mem, slots, sizeof(*m->slot));
    if (m->slot == NULL)
        return SMTPX_ERR_NOMEM;
    m->mask = slots - 1;
    m->used = 0;
    return 0;
}

int smtpx__dmap_init(smtpx__dmap *m, uint32_t n, smtpx__dmap_key_fn *key,
                     void *ud, const smtpx_mem *mem)
{
    uint32_t slots = 16;

    while (slots / 2 < n && slots < (1u << 31))
        slots *= 2;
    memset(m, 0, sizeof(*m));
    m->key = key;
    m->ud = ud;
    return dmap_alloc(m, slots, mem);
}

void smtpx__dmap_free(smtpx__dmap *m, const smtpx_mem *mem)
{
    smtpx__free(mem, m->slot);
    m->slot = NULL;
    m->used = 0;
}

int64_t smtpx__dmap_get(const smtpx__dmap *m, const uint8_t *d)
{
    uint32_t i = dmap_hash(d) & m->mask;

    while (m->slot[i] != 0) {
        uint32_t v = m->slot[i] - 1;
        if (memcmp(m->key(v, m->ud), d, SMTPX__DIGEST) == 0)
            return v;
        i = (i + 1) & m->mask;
    }
    return -1;
}

static void dmap_insert(smtpx__dmap *m, uint32_t v)
{
    uint32_t i = dmap_hash(m->key(v, m->ud)) & m->mask;

    while (m->slot[i] != 0)
        i = (i + 1) & m->mask;
    m->slot[i] = v + 1;
    m->used++;
}

int smtpx__dmap_put(smtpx__dmap *m, uint32_t v, const smtpx_mem *mem)
{
    if ((m->used + 1) * 2 > m->mask + 1) {
        uint32_t *old = m->slot, n = m->mask + 1, i;
        if (n >= (1u << 31) || dmap_alloc(m, n * 2, mem) != 0) {
            m->slot = old;
            return SMTPX_ERR_NOMEM;
        }
        for (i = 0; i < n; i++)
            if (old[i] != 0)
                dmap_insert(m, old[i] - 1);
        smtpx__free(mem, old);
    }
    dmap_insert(m, v);
    return 0;
}

void smtpx__dmap_del(smtpx__dmap *m, const uint8_t *d)
{
    uint32_t i = dmap_hash(d) & m->mask, j, k;

    for (;;) {
        if (m->slot[i] == 0)
            return;
        if (memcmp(m->key(m->slot[i] - 1, m->ud), d, SMTPX__DIGEST) == 0)
            break;
        i = (i + 1) & m->mask;
    }
    /* Shift back what probed past slot i. */
    j = i;
    for (;;) {
        m->slot[i] = 0;
        for (;;) {
            j = (j + 1) & m->mask;
            if (m->slot[j] == 0) {
                m->used--;
                return;
            }
            k = dmap_hash(m->key(m->slot[j] - 1, m->ud)) & m->mask;
            /* Stay if k lies cyclically in (i, j]. */
            if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                continue;
            break;
        }
        m->slot[i] = m->slot[j];
        i = j;
    }
}

void smtpx__dmap_clear(smtpx__dmap *m)
{
    memset(m->slot, 0, ((size_t)m->mask + 1) * sizeof(*m->slot));
    m->used = 0;
}

int smtpx__digest(const void *key, size_t len, uint8_t d[SMTPX__DIGEST])
{
    uint8_t full[32];

    if (smtpx__sha256(key, len, full) != 0)
        return -1;
    memcpy(d, full, SMTPX__DIGEST);
    return 0;
}
