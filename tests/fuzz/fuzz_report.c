/*
 * fuzz_report - the acknowledgement parser (MDNs and DSNs) and the fields
 * reader under it, on hostile input.  Differential: the parser must come
 * to the same result (its error, kind, ids and every recipient) whether
 * the message comes whole, one octet at a time, or cut where the second
 * octet chooses; the first octet picks small limits so that each is
 * reached.  Every result must hold the parser's promises: strings
 * NUL-terminated within the field limit, printable, outcomes in range.
 * The fields reader, the header end (fed growing), the trace end, and the
 * message id and mailbox extractors run over the same octets.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/ack.h>

#include "mta/fields.h"

typedef struct sum {
    char *p;
    size_t len, cap;
} sum;

static void add(sum *s, const char *z, size_t limit)
{
    size_t n, i;

    if (z == NULL)
        z = "(null)";
    n = strlen(z);
    if (n > limit)
        abort();
    for (i = 0; i < n; i++)
        if ((unsigned char)z[i] < 0x20 && z[i] != '\t')
            abort();
    if (s->len + n + 2 > s->cap) {
        s->cap = (s->len + n + 2) * 2;
        s->p = realloc(s->p, s->cap);
        if (s->p == NULL)
            abort();
    }
    memcpy(s->p + s->len, z, n);
    s->len += n;
    s->p[s->len++] = '|';
    s->p[s->len] = '\0';
}

/* run - parse data as split says (0 whole, 1 octet by octet, else cut at
 * split - 2) and summarise what came out */
static void run(const uint8_t *data, size_t size, unsigned opt, size_t split,
                sum *out)
{
    smtpx_report *r;
    size_t field = opt & 4 ? 40 : 998, i;
    char code[32];
    int rc = 0;

    if (smtpx_report_new(&r, NULL) != 0)
        abort();
    if (opt & 1)
        smtpx_report_set_limit(r, SMTPX_REPORT_LIMIT_STATUS_SIZE, 300);
    if (opt & 2)
        smtpx_report_set_limit(r, SMTPX_REPORT_LIMIT_RCPTS, 2);
    if (opt & 4)
        smtpx_report_set_limit(r, SMTPX_REPORT_LIMIT_FIELD, field);
    if (split == 1) {
        for (i = 0; i < size && rc == 0; i++)
            rc = smtpx_report_feed(r, data + i, 1);
    } else if (split > 1 && split - 2 < size) {
        rc = smtpx_report_feed(r, data, split - 2);
        if (rc == 0)
            rc = smtpx_report_feed(r, data + split - 2, size - (split - 2));
    } else {
        rc = smtpx_report_feed(r, data, size);
    }
    if (rc == 0)
        rc = smtpx_report_end(r);
    snprintf(code, sizeof(code), "%d %d %d", rc, smtpx_report_kind(r),
             smtpx_report_limit_hit(r));
    add(out, code, 64);
    if (rc == 0) {
        size_t n = smtpx_report_rcpt_count(r);
        const char *id = smtpx_report_message_id(r);
        if (n == 0 || smtpx_report_kind(r) == 0)
            abort();
        if (id != NULL && (strpbrk(id, " <>\t") != NULL || id[0] == '\0'))
            abort();
        add(out, id, 998);
        add(out, smtpx_report_envid(r), field);
        add(out, smtpx_report_reporter(r), field);
        for (i = 0; i < n; i++) {
            smtpx_report_rcpt rc2;
            if (smtpx_report_get_rcpt(r, i, &rc2) != 0 || rc2.outcome < 0 ||
                rc2.outcome >= SMTPX_REPORT_OUTCOME_COUNT || rc2.rcpt == NULL ||
                rc2.rcpt[0] == '\0' || rc2.action == NULL)
                abort();
            add(out, rc2.rcpt, field);
            add(out, rc2.orig_rcpt, field);
            add(out, rc2.action, field);
            add(out, rc2.status, field);
            add(out, rc2.diagnostic, field);
            add(out, smtpx_report_outcome_name(rc2.outcome), 20);
        }
    } else if (smtpx_report_kind(r) != 0 || smtpx_report_rcpt_count(r) != 0) {
        abort();
    }
    smtpx_report_free(r);
}

static void fields(const char *p, size_t n)
{
    smtpx__fields f = {p, p + n};
    const char *name;
    size_t nlen, scan = 0, i, end = 0;
    char v[128], out[64];
    int rc;

    while ((rc = smtpx__fields_next(&f, &name, &nlen, v, sizeof(v))) !=
               SMTPX__FIELD_END ||
           f.p < f.end) {
        if (f.p > f.end || strlen(v) >= sizeof(v))
            abort();
        if (rc == SMTPX__FIELD_OK) {
            if (nlen == 0 || name < p || name + nlen > p + n)
                abort();
            if (smtpx__msgid(v, out, sizeof(out)) > 0 &&
                (strlen(out) >= sizeof(out) || strpbrk(out, " <>") != NULL))
                abort();
            if (smtpx__mailbox(v, out, sizeof(out)) > 0 &&
                (strchr(out, '@') == NULL || strpbrk(out, " <>") != NULL))
                abort();
        }
    }
    /* The header's end fed growing is where it is found whole. */
    for (i = 1; i <= n; i++) {
        end = smtpx__header_end(p, i, &scan);
        if (end != 0)
            break;
    }
    scan = 0;
    if (end != smtpx__header_end(p, n, &scan) && end != 0)
        abort();
    if (end > n || smtpx__trace_end(p, n) > n)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sum a = {NULL, 0, 0}, b = {NULL, 0, 0}, c = {NULL, 0, 0};
    unsigned opt;
    size_t split;

    if (size < 2)
        return 0;
    opt = data[0];
    split = (size_t)data[1] * 7;
    data += 2;
    size -= 2;
    run(data, size, opt, 0, &a);
    run(data, size, opt, 1, &b);
    run(data, size, opt, split + 2, &c);
    if (strcmp(a.p, b.p) != 0 || strcmp(a.p, c.p) != 0)
        abort();
    fields((const char *)data, size < 8192 ? size : 8192);
    free(a.p);
    free(b.p);
    free(c.p);
    return 0;
}
