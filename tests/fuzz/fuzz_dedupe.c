/*
 * fuzz_dedupe - the dedupe store's file on hostile content.  The input
 * becomes a store file: the first octet chooses max_entries (1 to 64) and
 * whether the header is the right one or the input's next 64 octets; then
 * each 57 octets are a record: an op octet and the 56 octets it says,
 * sealed with their check unless the op says not (so that the fuzzer
 * reaches what a sealed record may say: any state, any times, a digest
 * repeated), the last one maybe cut short.  Opening it must succeed, or
 * say SMTPX_ERR_CORRUPT for a header that is not a store's; the store
 * must hold at most max_entries; after a put of a key of its own
 * ("fuzz", whose digest the input may also name) it is closed, opened
 * again, and must say the same for every other digest of the input (the
 * open having rewritten what it dropped).
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/crypto.h"
#include "mta/dedupe.h"
#include "mta/dmap.h"

#define REC    64
#define BODY   56
#define MAXREC 256

static char dir[64], path[96], tmp[100];

static int setup(void)
{
    if (dir[0] != '\0')
        return 0;
    snprintf(dir, sizeof(dir), "/tmp/fuzz_dedupe.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/store", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    return 0;
}

static void seal(uint8_t r[REC])
{
    uint8_t h[32];

    if (smtpx__sha256(r, BODY, h) != 0)
        abort();
    memcpy(r + BODY, h, 8);
}

static void stats(smtpx_dedupe *d, smtpx_dedupe_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->size = sizeof(*st);
    smtpx_dedupe_stats_get(d, st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t file[REC * (MAXREC + 1)];
    uint8_t digests[MAXREC][16], mine[SMTPX__DIGEST];
    int states[MAXREC];
    int64_t firsts[MAXREC], now = (int64_t)time(NULL);
    smtpx_dedupe_opts o;
    smtpx_dedupe_stats st;
    smtpx_dedupe *d = NULL;
    size_t n = 0, len, i;
    FILE *f;
    int rc;

    if (size < 1 || setup() != 0)
        return 0;
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.flags = SMTPX_DEDUPE_NOSYNC;
    o.max_entries = 1 + (data[0] >> 2 & 63);
    len = REC;
    memset(file, 0, REC);
    memcpy(file, "SMTPXD1\n", 8);
    seal(file);
    if ((data[0] & 1) && size >= 1 + REC) {
        memcpy(file, data + 1, REC);
        data += REC;
        size -= REC;
    }
    data++;
    size--;
    while (size > 0 && n < MAXREC) {
        uint8_t op = data[0], *r = file + len;
        size_t take = size - 1 < BODY ? size - 1 : BODY;
        memset(r, 0, REC);
        memcpy(r, data + 1, take);
        if (!(op & 1))
            seal(r);
        memcpy(digests[n++], r + 8, 16);
        /* op's bit 1 on the last: torn, cut at op's high bits */
        len += (size <= 1 + BODY && (op & 2)) ? (size_t)(op >> 2) % REC : REC;
        data += 1 + take;
        size -= 1 + take;
    }
    if ((f = fopen(path, "wb")) == NULL)
        abort();
    if (fwrite(file, 1, len, f) != len || fclose(f) != 0)
        abort();
    unlink(tmp);
    rc = smtpx__dedupe_open_fs(&d, path, &o, NULL);
    if (rc == SMTPX_ERR_CORRUPT)
        goto out;
    if (rc != 0)
        abort();
    stats(d, &st);
    if (st.entries > o.max_entries)
        abort();
    for (i = 0; i < n; i++)
        states[i] = smtpx__dedupe_get_digest(d, digests[i], &firsts[i]);
    if (smtpx_dedupe_put(d, "fuzz", 4, 7) != 0 ||
        smtpx__digest("fuzz", 4, mine) != 0)
        abort();
    smtpx_dedupe_free(d);
    d = NULL;
    if (smtpx__dedupe_open_fs(&d, path, &o, NULL) != 0)
        abort();
    stats(d, &st);
    if (st.entries > o.max_entries || st.dropped != 0 ||
        smtpx_dedupe_get(d, "fuzz", 4, NULL) != 7)
        abort();
    for (i = 0; i < n; i++) {
        int64_t first;
        int s = smtpx__dedupe_get_digest(d, digests[i], &first);
        /* Kept, unless the new key pushed it out or its window ran out
         * between the two opens. */
        if (memcmp(digests[i], mine, sizeof(mine)) == 0)
            continue; /* the input found the digest of "fuzz" */
        if (s != states[i] && s != 0)
            abort();
        if (s == 0 && states[i] != 0 && o.max_entries > n &&
            firsts[i] > now - 7 * 86400 + 60)
            abort();
        if (s != 0 && first != firsts[i])
            abort();
    }
out:
    smtpx_dedupe_free(d);
    unlink(path);
    unlink(tmp);
    return 0;
}
