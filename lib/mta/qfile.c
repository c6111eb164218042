/*
 * qfile - the queue file format: the envelope at the head of a message
 * file and the per-recipient state file (the format is described in
 * queue.h).
 *
 * Exports smtpx__qfile_format_env(), _format_state(), _parse_env(),
 * _parse_state(), _field_ok(), smtpx__qmsg_clear() and
 * smtpx__qrcpt_set_reply().
 *
 * Invariants: a parser reads only the bytes it is given (the buffer need
 * not be NUL-terminated); every line is at most SMTPX__QFILE_LINE_MAX
 * octets, numbers are decimal without sign and within their type, fields
 * are printable; anything else is SMTPX_ERR_CORRUPT.  What the formatter
 * writes, the parser reads back to the same record.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/mem.h"
#include "mta/queue.h"

#define QF_MAGIC_ENV   "SMTPXQ1"
#define QF_MAGIC_STATE "SMTPXS1"

int smtpx__qfile_field_ok(const char *s, size_t max)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || i >= max)
            return 0;
    return 1;
}

void smtpx__qmsg_clear(smtpx__qmsg *m, const smtpx_mem *mem)
{
    size_t i;

    for (i = 0; i < m->nrcpts; i++) {
        smtpx__free(mem, m->rcpts[i].addr);
        smtpx__free(mem, m->rcpts[i].orcpt);
        smtpx__free(mem, m->rcpts[i].text);
        smtpx__free(mem, m->rcpts[i].remote);
    }
    smtpx__free(mem, m->rcpts);
    smtpx__free(mem, m->from);
    smtpx__free(mem, m->envid);
    m->rcpts = NULL;
    m->nrcpts = 0;
    m->from = m->envid = NULL;
}

int smtpx__qrcpt_set_reply(smtpx__qrcpt *r, const smtpx_reply *reply,
                           const char *remote, const smtpx_mem *mem)
{
    char text[SMTPX__QFILE_TEXT_MAX];
    const char *t = reply->text != NULL ? reply->text : "";
    size_t i, n = 0;
    char *nt, *nr = NULL;

    /* One line: the reply's lines joined with spaces, controls made
     * spaces, cut to the limit. */
    for (i = 0; t[i] != '\0' && n < sizeof(text) - 1; i++) {
        unsigned char c = (unsigned char)t[i];
        text[n++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    text[n] = '\0';
    nt = smtpx__strdup(mem, text);
    if (remote != NULL && remote[0] != '\0') {
        nr = smtpx__strndup(mem, remote, strnlen(remote, 255));
        if (nr != NULL)
            for (i = 0; nr[i] != '\0'; i++)
                if ((unsigned char)nr[i] <= 0x20 || nr[i] == 0x7f)
                    nr[i] = '?';
    }
    if (nt == NULL || (remote != NULL && remote[0] != '\0' && nr == NULL)) {
        smtpx__free(mem, nt);
        smtpx__free(mem, nr);
        return SMTPX_ERR_NOMEM;
    }
    smtpx__free(mem, r->text);
    smtpx__free(mem, r->remote);
    r->text = nt;
    r->remote = nr;
    r->code = reply->code;
    memcpy(r->enh, reply->enh, sizeof(r->enh));
    return 0;
}

/* ---- formatting ---------------------------------------------------------- */

static int qf_put(smtpx__buf *b, const smtpx_mem *mem, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int qf_put(smtpx__buf *b, const smtpx_mem *mem, const char *fmt, ...)
{
    char line[SMTPX__QFILE_LINE_MAX + 64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line))
        return SMTPX_ERR_INTERNAL;
    return smtpx__buf_append(b, mem, line, (size_t)n);
}

int smtpx__qfile_format_env(const smtpx__qmsg *m, smtpx__buf *b,
                            const smtpx_mem *mem)
{
    size_t i;
    int rc;

    rc = qf_put(b, mem, "%s\nT %lld\nF %s\nP %d %d %d\n", QF_MAGIC_ENV,
                (long long)m->arrival, m->from, m->ret, m->body, m->smtputf8);
    if (rc == 0 && m->envid != NULL)
        rc = qf_put(b, mem, "E %s\n", m->envid);
    for (i = 0; rc == 0 && i < m->nrcpts; i++)
        rc = qf_put(b, mem, "R %u %s %s\n", m->rcpts[i].notify,
                    m->rcpts[i].orcpt ? m->rcpts[i].orcpt : "-",
                    m->rcpts[i].addr);
    if (rc == 0)
        rc = smtpx__buf_append(b, mem, ".\n", 2);
    return rc;
}

int smtpx__qfile_format_state(const smtpx__qmsg *m, smtpx__buf *b,
                              const smtpx_mem *mem)
{
    size_t i;
    int rc;

    rc = qf_put(b, mem, "%s\nN %lld %d\n", QF_MAGIC_STATE,
                (long long)m->next_attempt, m->held ? 1 : 0);
    for (i = 0; rc == 0 && i < m->nrcpts; i++) {
        const smtpx__qrcpt *r = &m->rcpts[i];
        rc = qf_put(b, mem, "S %zu %d %u %u %d %u.%u.%u %s %s\n", i, r->state,
                    r->attempts, r->reported, r->code, (unsigned)r->enh[0],
                    (unsigned)r->enh[1], (unsigned)r->enh[2],
                    r->remote ? r->remote : "-", r->text ? r->text : "");
    }
    if (rc == 0)
        rc = smtpx__buf_append(b, mem, ".\n", 2);
    return rc;
}

/* ---- parsing ------------------------------------------------------------- */

typedef struct qf_reader {
    const char *p, *end;
} qf_reader;

/* qf_line - the next line (without LF) into line/len; 0, or -1 at the end
 * or for a line without LF, over the limit or with a control character */
static int qf_line(qf_reader *r, const char **line, size_t *len)
{
    const char *nl;
    size_t i;

    if (r->p >= r->end)
        return -1;
    nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
    if (nl == NULL || (size_t)(nl - r->p) > SMTPX__QFILE_LINE_MAX)
        return -1;
    *line = r->p;
    *len = (size_t)(nl - r->p);
    for (i = 0; i < *len; i++)
        if ((unsigned char)r->p[i] < 0x20 || r->p[i] == 0x7f)
            return -1;
    r->p = nl + 1;
    return 0;
}

/* qf_num - a decimal number at *p (up to end) no larger than max; moves
 * *p past it and one following space if sp */
static int qf_num(const char **p, const char *end, uint64_t max, uint64_t *out,
                  int sp)
{
    const char *s = *p;
    uint64_t v = 0;

    if (s >= end || *s < '0' || *s > '9')
        return -1;
    while (s < end && *s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        if (d > max || v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
        s++;
    }
    if (sp) {
        if (s >= end || *s != ' ')
            return -1;
        s++;
    } else if (s != end) {
        return -1;
    }
    *p = s;
    *out = v;
    return 0;
}

/* qf_word - a run of non-space bytes, then one space */
static int qf_word(const char **p, const char *end, const char **w, size_t *n)
{
    const char *s = *p, *sp = memchr(s, ' ', (size_t)(end - s));

    if (sp == NULL || sp == s)
        return -1;
    *w = s;
    *n = (size_t)(sp - s);
    *p = sp + 1;
    return 0;
}

static int qf_is(const char *line, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(line, lit, len) == 0;
}

int smtpx__qfile_parse_env(const char *buf, size_t len, smtpx__qmsg *m,
                           const smtpx_mem *mem)
{
    qf_reader r = {
        buf, buf + (len > SMTPX__QFILE_HEAD_MAX ? SMTPX__QFILE_HEAD_MAX : len)};
    const char *line, *p, *end, *w;
    size_t n, wn, cap = 0;
    uint64_t v, ret, body, utf8;
    int seen_t = 0, seen_p = 0;

    if (qf_line(&r, &line, &n) < 0 || !qf_is(line, n, QF_MAGIC_ENV))
        return SMTPX_ERR_CORRUPT;
    for (;;) {
        if (qf_line(&r, &line, &n) < 0)
            return SMTPX_ERR_CORRUPT;
        if (qf_is(line, n, "."))
            break;
        if (n < 2 || line[1] != ' ')
            return SMTPX_ERR_CORRUPT;
        p = line + 2;
        end = line + n;
        switch (line[0]) {
        case 'T':
            if (seen_t++ || qf_num(&p, end, INT64_MAX, &v, 0) < 0)
                return SMTPX_ERR_CORRUPT;
            m->arrival = (int64_t)v;
            break;
        case 'F':
            if (m->from != NULL || (size_t)(end - p) > SMTPX__QFILE_ADDR_MAX)
                return SMTPX_ERR_CORRUPT;
            m->from = smtpx__strndup(mem, p, (size_t)(end - p));
            if (m->from == NULL)
                return SMTPX_ERR_NOMEM;
            break;
        case 'P':
            if (seen_p++ || qf_num(&p, end, 2, &ret, 1) < 0 ||
                qf_num(&p, end, 3, &body, 1) < 0 ||
                qf_num(&p, end, 1, &utf8, 0) < 0)
                return SMTPX_ERR_CORRUPT;
            m->ret = (int)ret;
            m->body = (int)body;
            m->smtputf8 = (int)utf8;
            break;
        case 'E':
            if (m->envid != NULL || p == end ||
                (size_t)(end - p) > SMTPX__QFILE_ADDR_MAX)
                return SMTPX_ERR_CORRUPT;
            m->envid = smtpx__strndup(mem, p, (size_t)(end - p));
            if (m->envid == NULL)
                return SMTPX_ERR_NOMEM;
            break;
        case 'R': {
            smtpx__qrcpt *rc;
            if (m->nrcpts == SMTPX__QFILE_RCPTS_MAX ||
                qf_num(&p, end, 15, &v, 1) < 0 ||
                qf_word(&p, end, &w, &wn) < 0 || p == end ||
                (size_t)(end - p) > SMTPX__QFILE_ADDR_MAX)
                return SMTPX_ERR_CORRUPT;
            if (m->nrcpts == cap) {
                size_t nc = cap ? cap * 2 : 4;
                rc = smtpx__realloc(mem, m->rcpts, nc * sizeof(*rc));
                if (rc == NULL)
                    return SMTPX_ERR_NOMEM;
                m->rcpts = rc;
                cap = nc;
            }
            rc = &m->rcpts[m->nrcpts];
            memset(rc, 0, sizeof(*rc));
            m->nrcpts++;
            rc->notify = (unsigned)v;
            rc->state = SMTPX_QRCPT_PENDING;
            rc->addr = smtpx__strndup(mem, p, (size_t)(end - p));
            if (rc->addr == NULL)
                return SMTPX_ERR_NOMEM;
            if (!(wn == 1 && w[0] == '-')) {
                rc->orcpt = smtpx__strndup(mem, w, wn);
                if (rc->orcpt == NULL)
                    return SMTPX_ERR_NOMEM;
            }
            break;
        }
        default:
            return SMTPX_ERR_CORRUPT;
        }
    }
    if (!seen_t || !seen_p || m->from == NULL || m->nrcpts == 0)
        return SMTPX_ERR_CORRUPT;
    m->content_off = (uint64_t)(r.p - buf);
    return 0;
}

int smtpx__qfile_parse_state(const char *buf, size_t len, smtpx__qmsg *m,
                             const smtpx_mem *mem)
{
    qf_reader r = {buf, buf + len};
    const char *line, *p, *end, *w;
    size_t n, wn, seen = 0;
    uint64_t v, idx, st, att, rep, code, e[3];
    int seen_n = 0;

    if (qf_line(&r, &line, &n) < 0 || !qf_is(line, n, QF_MAGIC_STATE))
        return SMTPX_ERR_CORRUPT;
    for (;;) {
        if (qf_line(&r, &line, &n) < 0)
            return SMTPX_ERR_CORRUPT;
        if (qf_is(line, n, "."))
            break;
        if (n < 2 || line[1] != ' ')
            return SMTPX_ERR_CORRUPT;
        p = line + 2;
        end = line + n;
        if (line[0] == 'N') {
            if (seen_n++ || qf_num(&p, end, INT64_MAX, &v, 1) < 0 ||
                qf_num(&p, end, 1, &st, 0) < 0)
                return SMTPX_ERR_CORRUPT;
            m->next_attempt = (int64_t)v;
            m->held = (int)st;
            continue;
        }
        if (line[0] != 'S' || qf_num(&p, end, m->nrcpts - 1, &idx, 1) < 0 ||
            idx != seen ||
            qf_num(&p, end, SMTPX_QRCPT_STATE_COUNT - 1, &st, 1) < 0 ||
            qf_num(&p, end, UINT32_MAX, &att, 1) < 0 ||
            qf_num(&p, end, 3, &rep, 1) < 0 ||
            qf_num(&p, end, 599, &code, 1) < 0)
            return SMTPX_ERR_CORRUPT;
        /* c.s.d */
        if (qf_word(&p, end, &w, &wn) < 0)
            return SMTPX_ERR_CORRUPT;
        {
            const char *q = w, *qe = w + wn, *dot1, *dot2;
            dot1 = memchr(q, '.', wn);
            dot2 = dot1 ? memchr(dot1 + 1, '.', (size_t)(qe - dot1 - 1)) : NULL;
            if (dot2 == NULL || qf_num(&q, dot1, 9, &e[0], 0) < 0 ||
                (q = dot1 + 1, qf_num(&q, dot2, 999, &e[1], 0) < 0) ||
                (q = dot2 + 1, qf_num(&q, qe, 999, &e[2], 0) < 0))
                return SMTPX_ERR_CORRUPT;
        }
        if (qf_word(&p, end, &w, &wn) < 0 ||
            (size_t)(end - p) > SMTPX__QFILE_TEXT_MAX || wn > 255)
            return SMTPX_ERR_CORRUPT;
        {
            smtpx__qrcpt *rc = &m->rcpts[seen];
            smtpx_reply reply;
            char remote[256], text[SMTPX__QFILE_TEXT_MAX + 1];

            memcpy(remote, w, wn);
            remote[wn] = '\0';
            memcpy(text, p, (size_t)(end - p));
            text[end - p] = '\0';
            rc->state = (int)st;
            rc->attempts = (unsigned)att;
            rc->reported = (unsigned)rep;
            reply.code = (int)code;
            reply.enh[0] = (uint16_t)e[0];
            reply.enh[1] = (uint16_t)e[1];
            reply.enh[2] = (uint16_t)e[2];
            reply.text = text;
            if (smtpx__qrcpt_set_reply(rc, &reply,
                                       strcmp(remote, "-") == 0 ? NULL : remote,
                                       mem) < 0)
                return SMTPX_ERR_NOMEM;
            if (code == 0) {
                smtpx__free(mem, rc->text);
                rc->text = NULL;
            }
        }
        seen++;
    }
    if (!seen_n || seen != m->nrcpts || r.p != r.end)
        return SMTPX_ERR_CORRUPT;
    return 0;
}
