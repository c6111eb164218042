/*
 * fuzz_qfile - the queue file parsers on hostile input: an envelope and a
 * state file (the input split at the first NUL).  Whatever parses must
 * format back to text that parses to the same record (a round trip), and
 * nothing may be read past the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "mta/queue.h"

static void same(const smtpx__qmsg *a, const smtpx__qmsg *b, int state)
{
    size_t i;

    if (a->nrcpts != b->nrcpts || strcmp(a->from, b->from) != 0 ||
        a->arrival != b->arrival || a->ret != b->ret || a->body != b->body ||
        a->smtputf8 != b->smtputf8 ||
        (a->envid == NULL) != (b->envid == NULL) ||
        (a->envid && strcmp(a->envid, b->envid) != 0))
        abort();
    for (i = 0; i < a->nrcpts; i++) {
        const smtpx__qrcpt *x = &a->rcpts[i], *y = &b->rcpts[i];
        if (strcmp(x->addr, y->addr) != 0 || x->notify != y->notify ||
            (x->orcpt == NULL) != (y->orcpt == NULL) ||
            (x->orcpt && strcmp(x->orcpt, y->orcpt) != 0))
            abort();
        if (state && (x->state != y->state || x->attempts != y->attempts ||
                      x->code != y->code || x->reported != y->reported))
            abort();
    }
    if (state && (a->next_attempt != b->next_attempt || a->held != b->held))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const smtpx_mem *mem = smtpx__mem_default();
    const uint8_t *nul = memchr(data, 0, size);
    size_t elen = nul ? (size_t)(nul - data) : size;
    smtpx__qmsg m, back;
    smtpx__buf b = SMTPX__BUF_INIT;
    char *env = malloc(elen ? elen : 1), *st = NULL;
    size_t slen = nul ? size - elen - 1 : 0;
    int has_state = 0;

    memcpy(env, data, elen);
    memset(&m, 0, sizeof(m));
    if (smtpx__qfile_parse_env(env, elen, &m, mem) != 0)
        goto out;
    if (nul != NULL) {
        st = malloc(slen ? slen : 1);
        memcpy(st, nul + 1, slen);
        has_state = smtpx__qfile_parse_state(st, slen, &m, mem) == 0;
    }
    /* Round trip: the envelope (and the state, if it parsed). */
    memset(&back, 0, sizeof(back));
    if (smtpx__qfile_format_env(&m, &b, mem) != 0 ||
        smtpx__qfile_parse_env((const char *)smtpx__buf_head(&b),
                               smtpx__buf_used(&b), &back, mem) != 0)
        abort();
    smtpx__buf_free(&b, mem);
    if (has_state) {
        if (smtpx__qfile_format_state(&m, &b, mem) != 0 ||
            smtpx__qfile_parse_state((const char *)smtpx__buf_head(&b),
                                     smtpx__buf_used(&b), &back, mem) != 0)
            abort();
        smtpx__buf_free(&b, mem);
    }
    same(&m, &back, has_state);
    smtpx__qmsg_clear(&back, mem);
out:
    smtpx__qmsg_clear(&m, mem);
    free(env);
    free(st);
    return 0;
}
