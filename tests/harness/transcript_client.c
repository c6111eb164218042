/*
 * transcript_client - the client's part of the transcript harness (format
 * in transcript.h): the harness plays the server, whose replies
 * transcript.c feeds, and the application, which queues commands and
 * transactions as the transcript's actions say and logs what the
 * callbacks report.
 *
 * Exports tr_client.  Commands are logged from on_trace as they are
 * written; the output stream is checked against them and the message
 * content (B: lines), which is not traced.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/smtpx.h>

#include "harness/transcript.h"
#include "harness/tutil.h"

#define MAX_TXNS 16

typedef struct reader {
    const char *p;
    size_t len, pos;
} reader;

typedef struct cli {
    tr t; /* first: the harness's state */
    smtpx_txn *txns[MAX_TXNS];
    reader readers[MAX_TXNS];
    char *bodies[MAX_TXNS];
    size_t ntxn;
} cli;

#define SESSION(v) ((smtpx_client *)(v)->t.sess)

TR_SESSION(client)

static void cb_reply(smtpx_client *c, int cmd, void *cookie,
                     const smtpx_reply *r, void *ud)
{
    tu_buf b = {0};
    (void)c;
    (void)cookie;
    tu_printf(&b, "reply %s %d", smtpx_cmd_name(cmd), r->code);
    if (r->enh[0])
        tu_printf(&b, " %u.%u.%u", r->enh[0], r->enh[1], r->enh[2]);
    if (r->text && r->text[0])
        tu_printf(&b, " %s", r->text);
    if (smtpx_reply_local(r))
        tu_printf(&b, " [local]");
    tr_event(ud, "%s", b.p);
    free(b.p);
}

static void cb_txn_done(smtpx_client *c, smtpx_txn *x, void *ud)
{
    tu_buf b = {0};
    size_t i;

    (void)c;
    tu_printf(&b, "txn");
    for (i = 0; i < smtpx_txn_rcpt_count(x); i++) {
        const smtpx_rcpt_status *st = smtpx_txn_rcpt(x, i);
        char state[16], stage[16];
        tu_upper(state, sizeof(state), smtpx_rcpt_state_name(st->state));
        tu_upper(stage, sizeof(stage), smtpx_stage_name(st->stage));
        tu_printf(&b, " %s=%s/%s/%d", st->addr, state, stage, st->reply.code);
    }
    if (smtpx_txn_long_lines(x))
        tu_printf(&b, " long=%zu", smtpx_txn_long_lines(x));
    tr_event(ud, "%s", b.p);
    free(b.p);
}

static const smtpx_client_callbacks cli_cbs = {
    .on_reply = cb_reply,
    .on_txn_done = cb_txn_done,
    .on_trace = tr_client_on_trace,
    .on_close = tr_client_on_close,
};

static int cli_make(tr *t)
{
    smtpx_client_callbacks cbs = cli_cbs;
    smtpx_client *c;

    if (tr_wants_on_log(t))
        cbs.on_log = tr_client_on_log;
    if (smtpx_client_new(&c, t->cfg, &cbs, sizeof(cbs), t) != 0)
        return -1;
    t->sess = c;
    return 0;
}

/* cli_start - at "A: start" or the first input */
static int cli_start(tr *t)
{
    return smtpx_client_start(t->sess, t->now);
}

static smtpx_ssize read_body(void *ctx, uint8_t *buf, size_t len)
{
    reader *r = ctx;
    size_t n = r->len - r->pos;

    if (n > 7)
        n = 7; /* small pieces exercise the stuffer's state */
    if (n > len)
        n = len;
    memcpy(buf, r->p + r->pos, n);
    r->pos += n;
    return (smtpx_ssize)n;
}

/* action_txn - FROM RCPT[;PARAMS][,RCPT...] BODY [options]: reader,
 * 8bit, 7bit, binary, smtputf8 (body types), ret=full|hdrs, envid=X,
 * notify=[N|SFD][:ORCPT] (first recipient), requiretls, priority=N,
 * preferdata */
static void action_txn(cli *v, char *args)
{
    char *from = strtok(args, " ");
    char *rcpts = strtok(NULL, " ");
    char *body = strtok(NULL, " ");
    char *opt, *r;
    smtpx_txn *x;
    size_t blen;
    int rc, use_reader = 0, eight = 0, binary = 0, seven = 0, utf8 = 0;
    int ret = -1, requiretls = 0, prio = 100, preferdata = 0;
    char *envid = NULL, *notify = NULL;

    if (from == NULL || rcpts == NULL || body == NULL || v->ntxn == MAX_TXNS) {
        tr_fail(&v->t, "bad txn action");
        return;
    }
    while ((opt = strtok(NULL, " ")) != NULL) {
        if (strcmp(opt, "reader") == 0)
            use_reader = 1;
        else if (strcmp(opt, "8bit") == 0)
            eight = 1;
        else if (strcmp(opt, "7bit") == 0)
            seven = 1;
        else if (strcmp(opt, "binary") == 0)
            binary = 1;
        else if (strcmp(opt, "smtputf8") == 0)
            utf8 = 1;
        else if (strcmp(opt, "requiretls") == 0)
            requiretls = 1;
        else if (strcmp(opt, "preferdata") == 0)
            preferdata = 1;
        else if (strncmp(opt, "ret=", 4) == 0)
            ret = strcmp(opt + 4, "full") == 0 ? SMTPX_DSN_RET_FULL
                                               : SMTPX_DSN_RET_HDRS;
        else if (strncmp(opt, "envid=", 6) == 0)
            envid = opt + 6;
        else if (strncmp(opt, "notify=", 7) == 0)
            notify = opt + 7; /* RCPT 0: NEVER, or letters S F D */
        else if (strncmp(opt, "priority=", 9) == 0)
            prio = atoi(opt + 9);
        else
            tr_fail(&v->t, "unknown txn option %s", opt);
    }
    if (smtpx_txn_new(&x, v->t.cfg, strcmp(from, "<>") == 0 ? "" : from) != 0) {
        tr_fail(&v->t, "txn_new failed");
        return;
    }
    v->txns[v->ntxn] = x;
    for (r = strtok(rcpts, ","); r != NULL; r = strtok(NULL, ",")) {
        char *params = strchr(r, ';');
        if (params != NULL)
            *params++ = '\0';
        if (smtpx_txn_add_rcpt(x, r, params) != 0)
            tr_fail(&v->t, "add_rcpt %s failed", r);
    }
    v->bodies[v->ntxn] = malloc(strlen(body) + 1);
    if (v->bodies[v->ntxn] == NULL)
        abort();
    blen = tu_unescape(body, v->bodies[v->ntxn]);
    if (use_reader) {
        reader *rd = &v->readers[v->ntxn];
        rd->p = v->bodies[v->ntxn];
        rd->len = blen;
        rd->pos = 0;
        smtpx_txn_set_body_reader(x, read_body, rd, 0);
    } else {
        smtpx_txn_set_body(x, v->bodies[v->ntxn], blen);
    }
    if (eight || binary || seven || utf8)
        smtpx_txn_set_body_type(x,
                                binary  ? SMTPX_BODY_BINARYMIME
                                : eight ? SMTPX_BODY_8BITMIME
                                : seven ? SMTPX_BODY_7BIT
                                        : SMTPX_BODY_NONE,
                                utf8);
    if ((ret >= 0 || envid != NULL) &&
        smtpx_txn_set_dsn(x, ret >= 0 ? ret : SMTPX_DSN_RET_NONE, envid) != 0)
        tr_fail(&v->t, "set_dsn failed");
    if (notify != NULL) {
        unsigned bits = 0;
        char *orcpt = strchr(notify, ':'); /* notify=SF:orig@addr */
        if (orcpt != NULL)
            *orcpt++ = '\0';
        bits |= strchr(notify, 'N') ? SMTPX_DSN_NOTIFY_NEVER : 0;
        bits |= strchr(notify, 'S') ? SMTPX_DSN_NOTIFY_SUCCESS : 0;
        bits |= strchr(notify, 'F') ? SMTPX_DSN_NOTIFY_FAILURE : 0;
        bits |= strchr(notify, 'D') ? SMTPX_DSN_NOTIFY_DELAY : 0;
        if (smtpx_txn_set_rcpt_dsn(x, 0, bits, orcpt) != 0)
            tr_fail(&v->t, "set_rcpt_dsn failed");
    }
    if (requiretls)
        smtpx_txn_set_requiretls(x, 1);
    if (prio != 100 && smtpx_txn_set_priority(x, prio) != 0)
        tr_fail(&v->t, "set_priority failed");
    if (preferdata)
        smtpx_txn_set_prefer_data(x, 1);
    v->ntxn++;
    rc = smtpx_client_send(SESSION(v), x);
    if (rc != 0)
        tr_event(&v->t, "send returned %s", smtpx_err_name(rc));
}

/* action_auth - MECHS|- USER pw:PASSWORD|tok:TOKEN [AUTHZID] */
static int action_auth(cli *v, const char *args)
{
    char mechs[128], user[128], secret[512], authzid[128] = "";
    smtpx_auth_creds cr;
    char *m;

    memset(&cr, 0, sizeof(cr));
    cr.size = sizeof(cr);
    if (sscanf(args, "%127s %127s %511s %127s", mechs, user, secret, authzid) <
        3) {
        tr_fail(&v->t, "bad auth action: %s", args);
        return 0;
    }
    if (strcmp(mechs, "-") != 0)
        for (m = strtok(mechs, ","); m != NULL; m = strtok(NULL, ","))
            cr.mechs |= smtpx_sasl_from_name(m);
    cr.user = user;
    cr.authzid = authzid[0] ? authzid : NULL;
    if (strncmp(secret, "pw:", 3) == 0)
        cr.password = secret + 3;
    else if (strncmp(secret, "tok:", 4) == 0)
        cr.token = secret + 4;
    return smtpx_client_auth(SESSION(v), &cr, NULL);
}

static int cli_action(tr *t, const char *line)
{
    cli *v = (cli *)t;
    smtpx_client *c;
    char buf[8192];
    int rc = 0;

    tr_open(t, 0);
    if ((c = t->sess) == NULL)
        return 0;
    if (strcmp(line, "start") == 0) {
        tr_open(t, 1);
    } else if (strncmp(line, "ehlo ", 5) == 0) {
        rc = smtpx_client_ehlo(c, line + 5, NULL);
    } else if (strncmp(line, "helo ", 5) == 0) {
        rc = smtpx_client_helo(c, line + 5, NULL);
    } else if (strcmp(line, "starttls") == 0) {
        rc = smtpx_client_starttls(c, NULL);
    } else if (strcmp(line, "rset") == 0) {
        rc = smtpx_client_rset(c, NULL);
    } else if (strcmp(line, "noop") == 0) {
        rc = smtpx_client_noop(c, NULL);
    } else if (strcmp(line, "quit") == 0) {
        rc = smtpx_client_quit(c, NULL);
    } else if (strcmp(line, "tls") == 0) {
        rc = smtpx_client_tls_started(c, NULL, t->now);
    } else if (strncmp(line, "txn ", 4) == 0) {
        snprintf(buf, sizeof(buf), "%s", line + 4);
        action_txn(v, buf);
    } else if (strncmp(line, "auth ", 5) == 0) {
        rc = action_auth(v, line + 5);
    } else if (strcmp(line, "preferdata") == 0) {
        rc = smtpx_client_set_prefer_data(c, 1);
    } else if (strcmp(line, "requiretls") == 0) {
        rc = smtpx_client_set_require_tls(c, 1);
    } else {
        return 1;
    }
    if (rc != 0)
        tr_event(t, "%s returned %s", line, smtpx_err_name(rc));
    return 0;
}

static int cli_check(tr *t, const char *name, const char *want, char *got,
                     size_t size)
{
    const smtpx_client *c = t->sess;
    char kw[64];

    if (strcmp(name, "esmtp") == 0) {
        snprintf(got, size, "%d", smtpx_client_esmtp(c));
    } else if (strcmp(name, "authmech") == 0) {
        const char *m = smtpx_sasl_name(smtpx_client_auth_mech(c));
        snprintf(got, size, "%s", m ? m : "-");
    } else if (strcmp(name, "ext") == 0 && sscanf(want, "%63s", kw) == 1) {
        /* KEYWORD [PARAMETERS]: as offered, or "(null)" */
        const char *e = smtpx_client_ext(c, kw);
        if (e != NULL && e[0] == '\0')
            snprintf(got, size, "%s", kw);
        else
            snprintf(got, size, "%s %s", kw, e ? e : "(null)");
    } else {
        return -1;
    }
    return 0;
}

static void cli_end(tr *t)
{
    cli *v = (cli *)t;
    size_t i;

    for (i = 0; i < v->ntxn; i++) {
        smtpx_txn_free(v->txns[i]);
        free(v->bodies[i]);
    }
}

const tr_side tr_client = {
    .name = "client",
    .size = sizeof(cli),
    .peer = 'S',
    .self = 'C',
    .traced_in = 'R',
    .traced_out = 'T',
    .role = SMTPX_ROLE_CLIENT,
    .lmtp_role = SMTPX_ROLE_LMTP_CLIENT,
    .hostname = NULL,
    .ops = &tr_client_ops,
    .directive = NULL,
    .make = cli_make,
    .start = cli_start,
    .start_at_once = 0,
    .action = cli_action,
    .check = cli_check,
    .end = cli_end,
};
