/*
 * failcalloc - an LD_PRELOAD library that makes calloc(3) fail on purpose.
 *
 * mbedTLS allocates with calloc and free from the C library (Debian's
 * build has no MBEDTLS_PLATFORM_MEMORY), outside any smtpx_mem, so the
 * failing smtpx_mem of the unit tests cannot reach its allocations.  This
 * library replaces calloc, realloc and free for the whole process: once
 * armed it counts calloc calls, fails the chosen one (and every later one,
 * as a real shortage would), and keeps the blocks calloc gave out in a
 * table so that the test can tell whether every one of them was freed.
 * The real functions are glibc's __libc_* entry points (dlsym would itself
 * allocate).  One thread only; tlsfail.c drives it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

void *__libc_calloc(size_t nmemb, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void __libc_free(void *ptr);

void *calloc(size_t nmemb, size_t size);
void *realloc(void *ptr, size_t size);
void free(void *ptr);
void failcalloc_arm(long fail_at);
long failcalloc_disarm(long *calls, long *failures);

#define SLOTS (1u << 17)
#define TOMB  ((void *)1)

static void *table[SLOTS]; /* live blocks from calloc while armed */
static int armed;
static long calls, fail_at, failures, live;

static size_t slot_of(const void *p)
{
    uintptr_t x = (uintptr_t)p >> 4;

    x ^= x >> 17;
    x *= 0x9e3779b97f4a7c15u;
    return (size_t)(x >> 20) & (SLOTS - 1);
}

static void track(void *p)
{
    size_t i = slot_of(p), n;

    for (n = 0; n < SLOTS; n++, i = (i + 1) & (SLOTS - 1))
        if (table[i] == NULL || table[i] == TOMB) {
            table[i] = p;
            live++;
            return;
        }
}

static int untrack(void *p)
{
    size_t i = slot_of(p), n;

    for (n = 0; n < SLOTS && table[i] != NULL; n++, i = (i + 1) & (SLOTS - 1))
        if (table[i] == p) {
            table[i] = TOMB;
            live--;
            return 1;
        }
    return 0;
}

void failcalloc_arm(long at)
{
    memset(table, 0, sizeof(table));
    calls = failures = live = 0;
    fail_at = at;
    armed = 1;
}

long failcalloc_disarm(long *ncalls, long *nfailures)
{
    armed = 0;
    *ncalls = calls;
    *nfailures = failures;
    return live;
}

void *calloc(size_t nmemb, size_t size)
{
    void *p;

    if (!armed)
        return __libc_calloc(nmemb, size);
    if (++calls >= fail_at && fail_at > 0) {
        failures++;
        errno = ENOMEM;
        return NULL;
    }
    p = __libc_calloc(nmemb, size);
    if (p != NULL)
        track(p);
    return p;
}

void *realloc(void *ptr, size_t size)
{
    int was = ptr != NULL && armed && untrack(ptr);
    void *p = __libc_realloc(ptr, size);

    if (was) {
        /* A calloc block moved (or, on failure, stayed where it was). */
        if (p != NULL)
            track(p);
        else if (size != 0)
            track(ptr);
    }
    return p;
}

void free(void *ptr)
{
    if (ptr != NULL && armed)
        untrack(ptr);
    __libc_free(ptr);
}
