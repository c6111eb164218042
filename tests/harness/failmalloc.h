/*
 * failmalloc - an smtpx_mem that fails the Nth allocation, to prove that
 * every allocation failure is reported and leaves objects freeable; it
 * also counts the bytes held, and their peak, to prove memory bounds.
 */
#ifndef TESTS_FAILMALLOC_H
#define TESTS_FAILMALLOC_H

#include <libsmtpx/common.h>

typedef struct failmalloc {
    long fail_at;  /* allocation number that fails (1-based); 0: never */
    long count;    /* allocations so far */
    long live;     /* blocks not yet freed */
    long failures; /* allocations refused */
    size_t bytes;  /* octets in live blocks (as malloc_usable_size counts) */
    size_t peak;   /* the most bytes ever was */
} failmalloc;

/* An smtpx_mem over fm (which must outlive every object made with it). */
smtpx_mem failmalloc_mem(failmalloc *fm);

#endif
