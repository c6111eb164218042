/*
 * mem - allocation through an smtpx_mem.
 *
 * Every allocation in the library goes through the allocator of the config
 * (or object) it belongs to; there is no global allocator.
 */
#ifndef SMTPX_LIB_MEM_H
#define SMTPX_LIB_MEM_H

#include <libsmtpx/common.h>

/* The C library's allocator as an smtpx_mem. */
const smtpx_mem *smtpx__mem_default(void);

/* Check that an smtpx_mem has all four functions; NULL is the default. */
int smtpx__mem_valid(const smtpx_mem *mem);

void *smtpx__malloc(const smtpx_mem *mem, size_t size);
void *smtpx__calloc(const smtpx_mem *mem, size_t nmemb, size_t size);
void *smtpx__realloc(const smtpx_mem *mem, void *ptr, size_t size);
void smtpx__free(const smtpx_mem *mem, void *ptr);

/* Copy a caller's struct that begins with its own size (a program built
 * against an older, shorter version keeps working): the fields both know,
 * the rest of dst zero, and dst's size its own.  src NULL: dst is zero but
 * its size.  0, or SMTPX_ERR_INVALID_ARGUMENT when src says size 0. */
int smtpx__copy_sized(void *dst, size_t dst_size, const void *src);

/* A NUL-terminated copy of len bytes of s. */
char *smtpx__strndup(const smtpx_mem *mem, const char *s, size_t len);
/* A copy of s, or NULL for NULL (check s before reading NOMEM). */
char *smtpx__strdup(const smtpx_mem *mem, const char *s);

#endif
