/* failmalloc - an allocator that fails on purpose. */
#include <malloc.h>
#include <stdlib.h>

#include "harness/failmalloc.h"

static int fm_fail(failmalloc *fm)
{
    fm->count++;
    if (fm->fail_at != 0 && fm->count >= fm->fail_at) {
        fm->failures++;
        return 1;
    }
    return 0;
}

static void fm_add(failmalloc *fm, void *p)
{
    fm->bytes += malloc_usable_size(p);
    if (fm->bytes > fm->peak)
        fm->peak = fm->bytes;
}

static void *fm_malloc(size_t size, void *ud)
{
    failmalloc *fm = ud;
    void *p;

    if (fm_fail(fm))
        return NULL;
    p = malloc(size);
    if (p != NULL) {
        fm->live++;
        fm_add(fm, p);
    }
    return p;
}

static void fm_free(void *ptr, void *ud)
{
    failmalloc *fm = ud;

    if (ptr != NULL) {
        fm->live--;
        fm->bytes -= malloc_usable_size(ptr);
    }
    free(ptr);
}

static void *fm_calloc(size_t nmemb, size_t size, void *ud)
{
    failmalloc *fm = ud;
    void *p;

    if (fm_fail(fm))
        return NULL;
    p = calloc(nmemb, size);
    if (p != NULL) {
        fm->live++;
        fm_add(fm, p);
    }
    return p;
}

static void *fm_realloc(void *ptr, size_t size, void *ud)
{
    failmalloc *fm = ud;
    size_t old = ptr != NULL ? malloc_usable_size(ptr) : 0;
    void *p;

    if (fm_fail(fm))
        return NULL;
    p = realloc(ptr, size);
    if (p != NULL && ptr == NULL)
        fm->live++;
    if (p != NULL) {
        fm->bytes -= old;
        fm_add(fm, p);
    }
    return p;
}

smtpx_mem failmalloc_mem(failmalloc *fm)
{
    smtpx_mem m = {fm, fm_malloc, fm_free, fm_calloc, fm_realloc};
    return m;
}
