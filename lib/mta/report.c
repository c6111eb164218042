/*
 * report - a streaming parser of the reports that can acknowledge a
 * message: message disposition notifications (RFC 8098) and delivery
 * status notifications (RFC 3464), and their RFC 6533 global forms, each a
 * multipart/report (RFC 6522).
 *
 * Exports the smtpx_report_* functions and smtpx_report_outcome_name() of
 * <libsmtpx/ack.h>.
 *
 * The message goes through the message layer's parser, which does the
 * MIME work (boundaries, transfer encodings, nesting).  Only three things
 * are kept: the status part (bounded by STATUS_SIZE), the header of a
 * returned text/rfc822-headers part (bounded by REPORT_HDRS_MAX, enough to
 * find its Message-ID) and the Message-ID of a returned message/rfc822.
 * A message that is not a multipart/report is stopped at the end of its
 * header and the rest of it passes without being looked at.
 *
 * At the end the status part is read with the fields reader (fields.h):
 * an MDN is one block (RFC 8098 3.1); a DSN is a per-message block and a
 * block per recipient (RFC 3464 2.1).  Every field is bounded by FIELD
 * and recipients by RCPTS; going past a limit is SMTPX_ERR_LIMIT, never a
 * cut value that could match the wrong message.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <libsmtpx/ack.h>
#include <libsmtpx/msg.h>

#include "base/buf.h"
#include "base/mem.h"
#include "mta/fields.h"

/* Octets of a returned header kept to find its Message-ID. */
#define REPORT_HDRS_MAX 65536
#define REPORT_ID_MAX   998

typedef struct report_rcpt {
    char *rcpt, *orig, *action, *status, *diag;
    int outcome;
} report_rcpt;

struct smtpx_report {
    smtpx_mem mem_store;
    const smtpx_mem *mem;
    smtpx_msg_parser *p;
    size_t lim[SMTPX_REPORT_LIMIT_COUNT];
    int err; /* sticky */
    int fed; /* a feed came: limits are fixed */
    int not_report;
    int limit_hit;
    int want;         /* SMTPX_REPORT_* from the root's report-type */
    int status_state; /* 0 none yet, 1 reading, 2 read */
    int in_hdrs;      /* reading a text/rfc822-headers part */
    char msg_path[64];
    unsigned msg_depth;
    int msg_open; /* a returned message's header comes */
    smtpx__buf status, hdrs;
    char *returned_id; /* Message-ID of what the report returns */
    /* Results. */
    int kind;
    char *orig_id, *envid, *reporter;
    report_rcpt *rcpts;
    size_t nrcpts, caprcpts;
};

static const size_t report_defaults[] = {
#define REPORT_DEFAULT(name, value, dflt, text) [value] = dflt,
    SMTPX_REPORT_LIMIT_MAP(REPORT_DEFAULT)
#undef REPORT_DEFAULT
};

static const char *const outcome_names[] = {
#define OUTCOME_NAME(name, value, text) [value] = text,
    SMTPX_REPORT_OUTCOME_MAP(OUTCOME_NAME)
#undef OUTCOME_NAME
};

const char *smtpx_report_outcome_name(int outcome)
{
    if (outcome < 0 || outcome >= SMTPX_REPORT_OUTCOME_COUNT)
        return "?";
    return outcome_names[outcome];
}

/* ---- the MIME walk ------------------------------------------------------- */

static int report_fail(smtpx_report *r, int err, int limit)
{
    if (r->err == 0) {
        r->err = err;
        if (err == SMTPX_ERR_LIMIT)
            r->limit_hit = limit;
    }
    return SMTPX_MSG_STOP;
}

static int report_type(const char *rt)
{
    if (rt == NULL)
        return 0;
    if (strcasecmp(rt, "delivery-status") == 0 ||
        strcasecmp(rt, "global-delivery-status") == 0)
        return SMTPX_REPORT_DSN;
    if (strcasecmp(rt, "disposition-notification") == 0 ||
        strcasecmp(rt, "global-disposition-notification") == 0)
        return SMTPX_REPORT_MDN;
    return 0;
}

static int report_status_type(const char *type)
{
    if (strcmp(type, "message/delivery-status") == 0 ||
        strcmp(type, "message/global-delivery-status") == 0)
        return SMTPX_REPORT_DSN;
    if (strcmp(type, "message/disposition-notification") == 0 ||
        strcmp(type, "message/global-disposition-notification") == 0)
        return SMTPX_REPORT_MDN;
    return 0;
}

static int report_begin(smtpx_msg_parser *p, const smtpx_part *part,
                        void *user_data)
{
    smtpx_report *r = user_data;
    const char *type = smtpx_part_type(part);
    unsigned depth = smtpx_part_depth(part);

    (void)p;
    if (depth == 0) {
        r->want = strcmp(type, "multipart/report") == 0
                      ? report_type(smtpx_part_param(part, "report-type"))
                      : 0;
        if (r->want == 0) {
            r->not_report = 1; /* the rest is not looked at */
            return SMTPX_MSG_STOP;
        }
        return 0;
    }
    if (depth > 1)
        return SMTPX_MSG_SKIP; /* inside a returned message */
    if (report_status_type(type) == r->want && r->status_state == 0) {
        r->status_state = 1;
        return 0;
    }
    if (strcmp(type, "text/rfc822-headers") == 0 ||
        strcmp(type, "message/global-headers") == 0) {
        r->in_hdrs = 1;
        return 0;
    }
    if (strcmp(type, "message/rfc822") == 0 ||
        strcmp(type, "message/global") == 0) {
        /* Its header comes next, under its path one level down. */
        snprintf(r->msg_path, sizeof(r->msg_path), "%s", smtpx_part_path(part));
        r->msg_depth = depth + 1;
        r->msg_open = 1;
        return 0;
    }
    return SMTPX_MSG_SKIP;
}

static int report_header(smtpx_msg_parser *p, const smtpx_part *part,
                         const char *name, size_t name_len, const char *value,
                         size_t value_len, void *user_data)
{
    smtpx_report *r = user_data;
    char id[REPORT_ID_MAX + 1];

    (void)p;
    (void)value_len;
    if (!r->msg_open || r->returned_id != NULL ||
        smtpx_part_depth(part) != r->msg_depth ||
        strcmp(smtpx_part_path(part), r->msg_path) != 0 ||
        !smtpx__fields_is(name, name_len, "Message-ID"))
        return 0;
    if (smtpx__msgid(value, id, sizeof(id)) > 0) {
        r->returned_id = smtpx__strdup(r->mem, id);
        if (r->returned_id == NULL)
            return report_fail(r, SMTPX_ERR_NOMEM, -1);
    }
    return 0;
}

static int report_data(smtpx_msg_parser *p, const smtpx_part *part,
                       const uint8_t *data, size_t len, void *user_data)
{
    smtpx_report *r = user_data;

    (void)p;
    (void)part;
    if (r->status_state == 1) {
        if (smtpx__buf_used(&r->status) + len >
            r->lim[SMTPX_REPORT_LIMIT_STATUS_SIZE])
            return report_fail(r, SMTPX_ERR_LIMIT,
                               SMTPX_REPORT_LIMIT_STATUS_SIZE);
        if (smtpx__buf_append(&r->status, r->mem, data, len) != 0)
            return report_fail(r, SMTPX_ERR_NOMEM, -1);
    } else if (r->in_hdrs) {
        size_t room = REPORT_HDRS_MAX - smtpx__buf_used(&r->hdrs);
        if (len > room)
            len = room;
        if (smtpx__buf_append(&r->hdrs, r->mem, data, len) != 0)
            return report_fail(r, SMTPX_ERR_NOMEM, -1);
        if (smtpx__buf_used(&r->hdrs) == REPORT_HDRS_MAX)
            return SMTPX_MSG_SKIP;
    }
    return 0;
}

static int report_end_part(smtpx_msg_parser *p, const smtpx_part *part,
                           void *user_data)
{
    smtpx_report *r = user_data;

    (void)p;
    if (smtpx_part_depth(part) != 1)
        return 0;
    if (r->status_state == 1)
        r->status_state = 2;
    r->in_hdrs = 0;
    r->msg_open = 0;
    return 0;
}

static const smtpx_msg_callbacks report_cbs = {
    .on_header = report_header,
    .on_part_begin = report_begin,
    .on_part_data = report_data,
    .on_part_end = report_end_part,
};

/* ---- objects ------------------------------------------------------------- */

static void report_clear(smtpx_report *r)
{
    size_t i;

    for (i = 0; i < r->nrcpts; i++) {
        report_rcpt *rc = &r->rcpts[i];
        smtpx__free(r->mem, rc->rcpt);
        smtpx__free(r->mem, rc->orig);
        smtpx__free(r->mem, rc->action);
        smtpx__free(r->mem, rc->status);
        smtpx__free(r->mem, rc->diag);
    }
    smtpx__free(r->mem, r->rcpts);
    r->rcpts = NULL;
    r->nrcpts = r->caprcpts = 0;
    smtpx__free(r->mem, r->orig_id);
    smtpx__free(r->mem, r->envid);
    smtpx__free(r->mem, r->reporter);
    smtpx__free(r->mem, r->returned_id);
    r->orig_id = r->envid = r->reporter = r->returned_id = NULL;
    smtpx__buf_free(&r->status, r->mem);
    smtpx__buf_free(&r->hdrs, r->mem);
    r->err = r->fed = r->not_report = r->kind = r->want = 0;
    r->status_state = r->in_hdrs = r->msg_open = 0;
    r->limit_hit = -1;
}

int smtpx_report_new(smtpx_report **out, const smtpx_mem *mem)
{
    smtpx_report *r;
    int rc;

    if (out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!smtpx__mem_valid(mem))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (mem == NULL)
        mem = smtpx__mem_default();
    r = smtpx__calloc(mem, 1, sizeof(*r));
    if (r == NULL)
        return SMTPX_ERR_NOMEM;
    r->mem_store = *mem;
    r->mem = &r->mem_store;
    r->limit_hit = -1;
    memcpy(r->lim, report_defaults, sizeof(r->lim));
    rc = smtpx_msg_parser_new(&r->p, r->mem, 0, &report_cbs, sizeof(report_cbs),
                              r);
    if (rc != 0) {
        smtpx__free(mem, r);
        return rc;
    }
    *out = r;
    return 0;
}

void smtpx_report_free(smtpx_report *r)
{
    smtpx_mem mem;

    if (r == NULL)
        return;
    report_clear(r);
    smtpx_msg_parser_free(r->p);
    mem = r->mem_store;
    smtpx__free(&mem, r);
}

int smtpx_report_set_limit(smtpx_report *r, int limit, size_t value)
{
    if (r == NULL || limit < 0 || limit >= SMTPX_REPORT_LIMIT_COUNT ||
        value == 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (r->fed)
        return SMTPX_ERR_INVALID_STATE;
    r->lim[limit] = value;
    return 0;
}

int smtpx_report_reset(smtpx_report *r)
{
    if (r == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    report_clear(r);
    return smtpx_msg_parser_reset(r->p);
}

int smtpx_report_feed(smtpx_report *r, const void *data, size_t len)
{
    int rc;

    if (r == NULL || (data == NULL && len > 0))
        return SMTPX_ERR_INVALID_ARGUMENT;
    r->fed = 1;
    if (r->err != 0)
        return r->err;
    if (r->not_report || len == 0)
        return 0;
    rc = smtpx_msg_parser_feed(r->p, data, len);
    if (rc == SMTPX_ERR_STOPPED && r->err == 0)
        return 0; /* not a report: the rest passes */
    if (rc != 0 && r->err == 0)
        r->err = rc == SMTPX_ERR_STOPPED ? SMTPX_ERR_INTERNAL : rc;
    return r->err;
}

/* ---- the status part ----------------------------------------------------- */

/* report_set - a value for the results */
static int report_set(smtpx_report *r, char **dst, const char *v)
{
    smtpx__free(r->mem, *dst);
    *dst = smtpx__strdup(r->mem, v);
    return *dst != NULL ? 0 : SMTPX_ERR_NOMEM;
}

/* report_typed - "rfc822; a@b" (address-type ";" value, RFC 3464 2.1.2,
 * RFC 8098 3.2): the value, its white space cut */
static const char *report_typed(char *v)
{
    char *semi = strchr(v, ';'), *e;

    if (semi == NULL)
        return v;
    v = semi + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    e = v + strlen(v);
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return v;
}

/* report_name - "name; product" (Reporting-UA, RFC 8098 3.2.1): the
 * name */
static const char *report_name(char *v)
{
    size_t n = strcspn(v, ";");

    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    v[n] = '\0';
    return v;
}

/* report_word - the first word of a value, lower case (an Action, a
 * Status: comments and the like after it are dropped) */
static const char *report_word(char *v)
{
    size_t n = strcspn(v, " \t(;");
    size_t i;

    v[n] = '\0';
    for (i = 0; i < n; i++)
        v[i] = (char)tolower((unsigned char)v[i]);
    return v;
}

/* report_next - the next field of a block: 1, 0 at the block's end,
 * SMTPX_ERR_PROTO for a line that is no field, SMTPX_ERR_LIMIT */
static int report_next(smtpx_report *r, smtpx__fields *f, const char **name,
                       size_t *nlen, char *value, size_t size)
{
    int rc = smtpx__fields_next(f, name, nlen, value, size);

    switch (rc) {
    case SMTPX__FIELD_OK:
        return 1;
    case SMTPX__FIELD_END:
        return 0;
    case SMTPX__FIELD_LONG:
        r->limit_hit = SMTPX_REPORT_LIMIT_FIELD;
        return SMTPX_ERR_LIMIT;
    default:
        return SMTPX_ERR_PROTO;
    }
}

/* report_skip_blank - past the empty lines between blocks; 0 at the end */
static int report_skip_blank(smtpx__fields *f)
{
    while (f->p < f->end && (*f->p == '\n' || *f->p == '\r'))
        f->p++;
    return f->p < f->end;
}

static report_rcpt *report_add_rcpt(smtpx_report *r)
{
    if (r->nrcpts == r->caprcpts) {
        size_t nc = r->caprcpts ? r->caprcpts * 2 : 4;
        report_rcpt *n = smtpx__realloc(r->mem, r->rcpts, nc * sizeof(*n));
        if (n == NULL)
            return NULL;
        r->rcpts = n;
        r->caprcpts = nc;
    }
    memset(&r->rcpts[r->nrcpts], 0, sizeof(report_rcpt));
    return &r->rcpts[r->nrcpts++];
}

/* report_rcpt_field - a field of a recipient block (both kinds) */
static int report_rcpt_field(smtpx_report *r, report_rcpt *rc, const char *name,
                             size_t nlen, char *v)
{
    if (smtpx__fields_is(name, nlen, "Final-Recipient"))
        return report_set(r, &rc->rcpt, report_typed(v));
    if (smtpx__fields_is(name, nlen, "Original-Recipient"))
        return report_set(r, &rc->orig, report_typed(v));
    if (smtpx__fields_is(name, nlen, "Action"))
        return report_set(r, &rc->action, report_word(v));
    if (smtpx__fields_is(name, nlen, "Status"))
        return report_set(r, &rc->status, report_word(v));
    if (smtpx__fields_is(name, nlen, "Diagnostic-Code") ||
        smtpx__fields_is(name, nlen, "Error"))
        return report_set(r, &rc->diag, v);
    return 0;
}

/* report_dsn_outcome - RFC 3464 2.3.3 */
static int report_dsn_outcome(const char *action)
{
    if (strcmp(action, "delivered") == 0 || strcmp(action, "expanded") == 0)
        return SMTPX_REPORT_ACK;
    if (strcmp(action, "failed") == 0)
        return SMTPX_REPORT_FAILED;
    return SMTPX_REPORT_NONE;
}

static int report_parse_dsn(smtpx_report *r, smtpx__fields *f, char *v,
                            size_t size)
{
    const char *name;
    size_t nlen;
    int rc;

    while ((rc = report_next(r, f, &name, &nlen, v, size)) == 1) {
        if (smtpx__fields_is(name, nlen, "Reporting-MTA"))
            rc = report_set(r, &r->reporter, report_typed(v));
        else if (smtpx__fields_is(name, nlen, "Original-Envelope-Id"))
            rc = report_set(r, &r->envid, v);
        else
            rc = 0;
        if (rc != 0)
            return rc;
    }
    if (rc < 0)
        return rc;
    if (r->reporter == NULL || r->reporter[0] == '\0')
        return SMTPX_ERR_PROTO;
    while (report_skip_blank(f)) {
        report_rcpt *rc2;
        if (r->nrcpts == r->lim[SMTPX_REPORT_LIMIT_RCPTS]) {
            r->limit_hit = SMTPX_REPORT_LIMIT_RCPTS;
            return SMTPX_ERR_LIMIT;
        }
        rc2 = report_add_rcpt(r);
        if (rc2 == NULL)
            return SMTPX_ERR_NOMEM;
        while ((rc = report_next(r, f, &name, &nlen, v, size)) == 1)
            if ((rc = report_rcpt_field(r, rc2, name, nlen, v)) != 0)
                return rc;
        if (rc < 0)
            return rc;
        if (rc2->rcpt == NULL || rc2->rcpt[0] == '\0' || rc2->action == NULL ||
            rc2->action[0] == '\0' || rc2->status == NULL ||
            rc2->status[0] == '\0')
            return SMTPX_ERR_PROTO;
        rc2->outcome = report_dsn_outcome(rc2->action);
    }
    return r->nrcpts > 0 ? 0 : SMTPX_ERR_PROTO;
}

/* report_disposition - "mode; type[/modifier,...]" (RFC 8098 3.2.6) into
 * the recipient's action (type) and status (modifiers), and its outcome */
static int report_disposition(smtpx_report *r, report_rcpt *rc, char *v)
{
    char *semi = strchr(v, ';'), *slash, *t;
    int rcode;

    if (semi == NULL)
        return SMTPX_ERR_PROTO;
    t = semi + 1;
    while (*t == ' ' || *t == '\t')
        t++;
    slash = strchr(t, '/');
    if (slash != NULL)
        *slash++ = '\0';
    for (semi = t; *semi != '\0'; semi++)
        *semi = (char)tolower((unsigned char)*semi);
    rcode = report_set(r, &rc->action, report_word(t));
    if (rcode == 0)
        rcode = report_set(r, &rc->status, slash ? report_word(slash) : "");
    if (rcode != 0)
        return rcode;
    if (rc->action[0] == '\0')
        return SMTPX_ERR_PROTO;
    if (strcmp(rc->action, "failed") == 0 || strstr(rc->status, "error"))
        rc->outcome = SMTPX_REPORT_FAILED;
    else if (strcmp(rc->action, "processed") == 0 ||
             strcmp(rc->action, "displayed") == 0 ||
             strcmp(rc->action, "dispatched") == 0 ||
             strcmp(rc->action, "deleted") == 0)
        rc->outcome = SMTPX_REPORT_ACK;
    else
        rc->outcome = SMTPX_REPORT_NONE;
    return 0;
}

static int report_parse_mdn(smtpx_report *r, smtpx__fields *f, char *v,
                            size_t size)
{
    report_rcpt *rc = report_add_rcpt(r);
    const char *name;
    size_t nlen;
    int st, disposition = 0;
    char id[REPORT_ID_MAX + 1];

    if (rc == NULL)
        return SMTPX_ERR_NOMEM;
    while ((st = report_next(r, f, &name, &nlen, v, size)) == 1) {
        if (smtpx__fields_is(name, nlen, "Reporting-UA"))
            st = report_set(r, &r->reporter, report_name(v));
        else if (smtpx__fields_is(name, nlen, "Original-Message-ID"))
            st = smtpx__msgid(v, id, sizeof(id)) > 0
                     ? report_set(r, &r->orig_id, id)
                     : 0;
        else if (smtpx__fields_is(name, nlen, "Disposition")) {
            st = report_disposition(r, rc, v);
            disposition = 1;
        } else
            st = report_rcpt_field(r, rc, name, nlen, v);
        if (st != 0)
            return st;
    }
    if (st < 0)
        return st;
    /* A Reporting-UA may be left out (RFC 8098 3.1.1 makes it optional
     * for a gateway); Final-Recipient and Disposition may not. */
    if (!disposition || rc->rcpt == NULL || rc->rcpt[0] == '\0')
        return SMTPX_ERR_PROTO;
    return 0;
}

/* report_returned_id - the Message-ID of a returned text/rfc822-headers */
static int report_returned_id(smtpx_report *r, char *v, size_t size)
{
    smtpx__fields f;
    const char *name;
    size_t nlen;
    char id[REPORT_ID_MAX + 1];
    int rc;

    if (r->returned_id != NULL || smtpx__buf_used(&r->hdrs) == 0)
        return 0;
    f.p = (const char *)smtpx__buf_head(&r->hdrs);
    f.end = f.p + smtpx__buf_used(&r->hdrs);
    while ((rc = smtpx__fields_next(&f, &name, &nlen, v, size)) !=
           SMTPX__FIELD_END) {
        if (rc == SMTPX__FIELD_OK && smtpx__fields_is(name, nlen, "Message-ID"))
            return smtpx__msgid(v, id, sizeof(id)) > 0
                       ? report_set(r, &r->returned_id, id)
                       : 0;
    }
    return 0;
}

int smtpx_report_end(smtpx_report *r)
{
    smtpx__fields f;
    char *v;
    size_t size;
    int rc;

    if (r == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    r->fed = 1;
    if (r->err != 0)
        return r->err;
    if (r->not_report)
        return SMTPX_ERR_PROTO;
    rc = smtpx_msg_parser_end(r->p);
    if (r->err != 0)
        return r->err;
    if (rc != 0 && rc != SMTPX_ERR_STOPPED)
        return r->err = rc;
    if (r->status_state == 0 || r->want == 0)
        return r->err = SMTPX_ERR_PROTO;
    size = r->lim[SMTPX_REPORT_LIMIT_FIELD] + 1;
    v = smtpx__malloc(r->mem, size);
    if (v == NULL)
        return r->err = SMTPX_ERR_NOMEM;
    f.p = smtpx__buf_used(&r->status) > 0
              ? (const char *)smtpx__buf_head(&r->status)
              : "";
    f.end = f.p + smtpx__buf_used(&r->status);
    rc = r->want == SMTPX_REPORT_DSN ? report_parse_dsn(r, &f, v, size)
                                     : report_parse_mdn(r, &f, v, size);
    if (rc == 0)
        rc = report_returned_id(r, v, size);
    smtpx__free(r->mem, v);
    smtpx__buf_free(&r->status, r->mem);
    smtpx__buf_free(&r->hdrs, r->mem);
    if (rc != 0)
        return r->err = rc;
    r->kind = r->want;
    return 0;
}

/* ---- results ------------------------------------------------------------- */

int smtpx_report_limit_hit(const smtpx_report *r)
{
    return r != NULL ? r->limit_hit : -1;
}

int smtpx_report_kind(const smtpx_report *r)
{
    return r != NULL ? r->kind : 0;
}

const char *smtpx_report_message_id(const smtpx_report *r)
{
    if (r == NULL || r->kind == 0)
        return NULL;
    return r->orig_id != NULL ? r->orig_id : r->returned_id;
}

const char *smtpx_report_envid(const smtpx_report *r)
{
    return r != NULL && r->kind != 0 ? r->envid : NULL;
}

const char *smtpx_report_reporter(const smtpx_report *r)
{
    return r != NULL && r->kind != 0 ? r->reporter : NULL;
}

size_t smtpx_report_rcpt_count(const smtpx_report *r)
{
    return r != NULL && r->kind != 0 ? r->nrcpts : 0;
}

int smtpx_report_get_rcpt(const smtpx_report *r, size_t i,
                          smtpx_report_rcpt *out)
{
    const report_rcpt *rc;

    if (r == NULL || out == NULL || r->kind == 0 || i >= r->nrcpts)
        return SMTPX_ERR_INVALID_ARGUMENT;
    rc = &r->rcpts[i];
    out->rcpt = rc->rcpt;
    out->orig_rcpt = rc->orig ? rc->orig : "";
    out->action = rc->action ? rc->action : "";
    out->status = rc->status ? rc->status : "";
    out->diagnostic = rc->diag ? rc->diag : "";
    out->outcome = rc->outcome;
    return 0;
}
