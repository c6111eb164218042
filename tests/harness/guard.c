/* guard - input followed by an unreadable page. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness/guard.h"

const char *guard_copy(const void *p, size_t len)
{
    static char *area;
    static size_t area_size;
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
        if (mprotect(area + need - page, page, PROT_NONE) != 0)
            abort();
    }
    dst = area + area_size - page - len;
    memcpy(dst, p, len);
    return dst;
}
