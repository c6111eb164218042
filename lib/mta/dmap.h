/*
 * dmap - an index from 128-bit digests to small integers, for tables that
 * keep their digests themselves (the dedupe store's ring of entries, the
 * outbox's messages): open addressing with linear probing, deletion by
 * backward shift, O(1) expected per operation.  The digest is SHA-256
 * output, so its first octets are already uniform: they are the hash.
 *
 * The map stores value + 1 (0 marks a free slot) and asks the owner for
 * the digest of a value when it must compare.  It holds at most half as
 * many values as it has slots.
 */
#ifndef SMTPX_LIB_DMAP_H
#define SMTPX_LIB_DMAP_H

#include <stdint.h>

#include <libsmtpx/common.h>

#define SMTPX__DIGEST 16 /* octets of a key digest */

/* The digest of value v, from the owner's table. */
typedef const uint8_t *smtpx__dmap_key_fn(uint32_t v, void *ud);

typedef struct smtpx__dmap {
    uint32_t *slot;
    uint32_t mask; /* slots - 1; slots is a power of two */
    uint32_t used;
    smtpx__dmap_key_fn *key;
    void *ud;
} smtpx__dmap;

/* smtpx__dmap_init - room for at least n values; 0 or SMTPX_ERR_NOMEM */
int smtpx__dmap_init(smtpx__dmap *m, uint32_t n, smtpx__dmap_key_fn *key,
                     void *ud, const smtpx_mem *mem);
void smtpx__dmap_free(smtpx__dmap *m, const smtpx_mem *mem);

/* smtpx__dmap_get - the value whose digest is d, or -1 */
int64_t smtpx__dmap_get(const smtpx__dmap *m, const uint8_t *d);

/* smtpx__dmap_put - add value v (its digest, from key(), must not be in
 * the map); grows the map when it is half full: 0 or SMTPX_ERR_NOMEM */
int smtpx__dmap_put(smtpx__dmap *m, uint32_t v, const smtpx_mem *mem);

/* smtpx__dmap_del - remove the value whose digest is d (if there) */
void smtpx__dmap_del(smtpx__dmap *m, const uint8_t *d);

/* smtpx__dmap_clear - remove every value, keep the slots */
void smtpx__dmap_clear(smtpx__dmap *m);

/* smtpx__digest - the first SMTPX__DIGEST octets of the SHA-256 of key;
 * 0 or -1 */
int smtpx__digest(const void *key, size_t len, uint8_t d[SMTPX__DIGEST]);

#endif
