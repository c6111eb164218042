/* guard - input followed by an unreadable page. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness/guard.h"

/* The area: pages for the copy, then the guard page. */
static char *area;
static size_t area_size;
static int sealed;

/* guard_protect - the copy's pages readable and writable, or not at all */
static void guard_protect(int prot)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    if (mprotect(area, area_size - page, prot) != 0)
        abort();
}

const char *guard_copy(const void *p, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t need = (len + page - 1) / page * page + page;
    char *dst;

    if (area != NULL && area_size < need) {
        munmap(area, area_size);
        area = NULL;
    }
    if (area == NULL) {
        area = mmap(NULL, need, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (area == MAP_FAILED)
            abort();
        area_size = need;
        sealed = 0;
        if (mprotect(area + need - page, page, PROT_NONE) != 0)
            abort();
    } else if (sealed) {
        guard_protect(PROT_READ | PROT_WRITE);
        sealed = 0;
    }
    dst = area + area_size - page - len;
    memcpy(dst, p, len);
    return dst;
}

void guard_seal(void)
{
    if (area == NULL || sealed)
        return;
    guard_protect(PROT_NONE);
    sealed = 1;
}
