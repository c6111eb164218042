/*
 * ext - the capabilities in an EHLO reply (RFC 5321 4.1.1.1).
 */
#ifndef SMTPX_LIB_EXT_H
#define SMTPX_LIB_EXT_H

#include <libsmtpx/common.h>

typedef struct smtpx__ext {
    char *buf; /* "KEYWORD\0params\0" pairs */
    size_t len;
    unsigned mask; /* SMTPX_EXT_* bits offered */
} smtpx__ext;

/* Parse the reply text of EHLO ('\n'-separated lines; the first is the
 * greeting and is skipped).  Replaces what e held.  0 or SMTPX_ERR_NOMEM. */
int smtpx__ext_parse(smtpx__ext *e, const smtpx_mem *mem, const char *text);

/* The parameters of keyword ("" if none), or NULL if not offered. */
const char *smtpx__ext_get(const smtpx__ext *e, const char *keyword);

void smtpx__ext_free(smtpx__ext *e, const smtpx_mem *mem);

#endif
