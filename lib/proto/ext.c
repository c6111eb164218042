/*
 * ext - EHLO capabilities.
 *
 * Exports smtpx__ext_parse(), smtpx__ext_get() and smtpx__ext_free(), and
 * smtpx_ext_name() / smtpx_ext_from_name() of <libsmtpx/conf.h>.
 * Each line after the first is "keyword [SP params]" (RFC 5321 4.1.1.1);
 * keywords are kept in upper case and looked up without case.  Empty lines
 * (Postfix's smtp-sink ends its reply with "250 ") and malformed keywords
 * are skipped rather than failing the session.
 */
#include <string.h>

#include <libsmtpx/conf.h>

#include "base/mem.h"
#include "proto/cmd.h"
#include "proto/ext.h"

/* The keywords, from the one list in <libsmtpx/conf.h>. */
static const smtpx__named ext_known[] = {
#define EXT_ENTRY(name, kw) {SMTPX_EXT_##name, kw},
    SMTPX_EXT_MAP(EXT_ENTRY)
#undef EXT_ENTRY
};

#define EXT_N (sizeof(ext_known) / sizeof(ext_known[0]))

/* Every bit of SMTPX_EXT_ALL has its keyword. */
typedef char ext_map_complete[(0
#define EXT_BIT(name, kw) | SMTPX_EXT_##name
                               SMTPX_EXT_MAP(EXT_BIT)
#undef EXT_BIT
                                   ) == SMTPX_EXT_ALL
                                  ? 1
                                  : -1];

const char *smtpx_ext_name(unsigned ext)
{
    return smtpx__named_name(ext_known, EXT_N, ext);
}

unsigned smtpx_ext_from_name(const char *name)
{
    return smtpx__named_bit(ext_known, EXT_N, name);
}

static int ext_keyword_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-';
}

int smtpx__ext_parse(smtpx__ext *e, const smtpx_mem *mem, const char *text)
{
    const char *line = strchr(text, '\n'), *q;
    size_t total = strlen(text), n = 0;
    char *buf;

    /* Each line becomes "KEYWORD\0params\0": at most its length plus
     * two octets. */
    for (q = text; (q = strchr(q, '\n')) != NULL; q++)
        total += 2;
    smtpx__ext_free(e, mem);
    buf = smtpx__malloc(mem, total + 2);
    if (buf == NULL)
        return SMTPX_ERR_NOMEM;
    while (line != NULL) {
        const char *start = line + 1, *end = strchr(start, '\n');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        size_t k = 0, i;

        line = end;
        while (k < len && ext_keyword_char(start[k]))
            k++;
        if (k == 0 || (k < len && start[k] != ' '))
            continue;
        for (i = 0; i < k; i++) {
            char c = start[i];
            buf[n + i] = (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
        }
        buf[n + k] = '\0';
        e->mask |= smtpx_ext_from_name(buf + n);
        n += k + 1;
        while (k < len && start[k] == ' ')
            k++;
        memcpy(buf + n, start + k, len - k);
        buf[n + len - k] = '\0';
        n += len - k + 1;
    }
    e->buf = buf;
    e->len = n;
    return 0;
}

const char *smtpx__ext_get(const smtpx__ext *e, const char *keyword)
{
    size_t i = 0;

    while (i < e->len) {
        const char *kw = e->buf + i, *params = kw + strlen(kw) + 1;
        if (smtpx__cmd_ieq(kw, keyword))
            return params;
        i = (size_t)(params - e->buf) + strlen(params) + 1;
    }
    return NULL;
}

void smtpx__ext_free(smtpx__ext *e, const smtpx_mem *mem)
{
    smtpx__free(mem, e->buf);
    memset(e, 0, sizeof(*e));
}
