/*
 * tables - lookups in the msg layer's tables that the library needs
 * inside (the public ones are in <libsmtpx/msg.h>).
 */
#ifndef SMTPX_LIB_MSG_TABLES_H
#define SMTPX_LIB_MSG_TABLES_H

#include <stddef.h>

/* smtpx__cte_from_name - the SMTPX_CTE_* of a Content-Transfer-Encoding
 * value (trimmed, any case), or 0 when unknown. */
int smtpx__cte_from_name(const char *s, size_t n);

#endif
