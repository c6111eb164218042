/*
 * mem - allocation through an smtpx_mem.
 *
 * smtpx__mem_default() wraps the C library; smtpx__malloc() and friends
 * call the allocator they are given.  Zero-size requests allocate one byte
 * so that a NULL result always means "out of memory".
 */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

static void *mem_libc_malloc(size_t size, void *ud)
{
    (void)ud;
    return malloc(size);
}

static void mem_libc_free(void *ptr, void *ud)
{
    (void)ud;
    free(ptr);
}

static void *mem_libc_calloc(size_t nmemb, size_t size, void *ud)
{
    (void)ud;
    return calloc(nmemb, size);
}

static void *mem_libc_realloc(void *ptr, size_t size, void *ud)
{
    (void)ud;
    return realloc(ptr, size);
}

static const smtpx_mem mem_libc = {NULL, mem_libc_malloc, mem_libc_free,
                                   mem_libc_calloc, mem_libc_realloc};

const smtpx_mem *smtpx__mem_default(void)
{
    return &mem_libc;
}

int smtpx__copy_sized(void *dst, size_t dst_size, const void *src)
{
    size_t n = 0;

    memset(dst, 0, dst_size);
    if (src != NULL) {
        memcpy(&n, src, sizeof(n));
        if (n == 0)
            return SMTPX_ERR_INVALID_ARGUMENT;
        memcpy(dst, src, n < dst_size ? n : dst_size);
    }
    memcpy(dst, &dst_size, sizeof(dst_size));
    return 0;
}

int smtpx__mem_valid(const smtpx_mem *mem)
{
    return mem == NULL || (mem->malloc != NULL && mem->free != NULL &&
                           mem->calloc != NULL && mem->realloc != NULL);
}

void *smtpx__malloc(const smtpx_mem *mem, size_t size)
{
    return mem->malloc(size ? size : 1, mem->mem_user_data);
}

void *smtpx__calloc(const smtpx_mem *mem, size_t nmemb, size_t size)
{
    if (nmemb == 0 || size == 0)
        nmemb = size = 1;
    return mem->calloc(nmemb, size, mem->mem_user_data);
}

void *smtpx__realloc(const smtpx_mem *mem, void *ptr, size_t size)
{
    return mem->realloc(ptr, size ? size : 1, mem->mem_user_data);
}

void smtpx__free(const smtpx_mem *mem, void *ptr)
{
    if (ptr != NULL)
        mem->free(ptr, mem->mem_user_data);
}

char *smtpx__strndup(const smtpx_mem *mem, const char *s, size_t len)
{
    char *p = smtpx__malloc(mem, len + 1);

    if (p == NULL)
        return NULL;
    if (len > 0)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *smtpx__strdup(const smtpx_mem *mem, const char *s)
{
    return s == NULL ? NULL : smtpx__strndup(mem, s, strlen(s));
}
