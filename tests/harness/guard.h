/*
 * guard - put test input right before a page that cannot be read, so that
 * a parser reading one octet too far crashes (picohttpparser's trick).
 */
#ifndef TESTS_GUARD_H
#define TESTS_GUARD_H

#include <stddef.h>

/* A copy of p[0..len) that ends where an unreadable page begins.  Valid
 * until the next call, or until guard_seal. */
const char *guard_copy(const void *p, size_t len);

/* guard_seal - make the last copy unreadable too, until the next
 * guard_copy: code that kept a pointer into input it was handed (rather
 * than a copy) crashes when it reads it later. */
void guard_seal(void);

#endif
