/*
 * ctranscript - replay a client transcript: the harness plays the server
 * (feeding its replies in the chosen pieces) and the application.
 *
 *   @limit NAME VALUE / @timeout NAME MS / @ext +NAME|-NAME / @role lmtp
 *   S: text        a line from the server (CRLF added)
 *   S+ text        server bytes as they are (escapes \r \n \t \\ \xHH)
 *   C: text        an expected line from the client (without CRLF; "."
 *                  is the end of a message)
 *   B: text        expected output bytes (escapes), between commands: message
 *                  content, or a line the trace shows redacted
 *   T: text        an expected trace line that is not the output as it is
 *                  (a redacted AUTH line; pair it with a B: line)
 *   E: text        an expected event:
 *                    reply CMD CODE [X.Y.Z] TEXT [local]
 *                    txn ADDR=STATE/STAGE/CODE ...
 *                    close STATUS
 *   A: action      start | ehlo NAME | helo NAME | starttls | rset | noop |
 *                  quit | tls | eof | abort | time +MS | drain off|on |
 *                  txn FROM RCPT[,RCPT...] BODY [8bit] [reader] [size] |
 *                  auth MECHS|- USER pw:PASSWORD|tok:TOKEN [AUTHZID] |
 *                  requiretls
 *                  (BODY with escapes; "reader" sends it through a pull
 *                  callback in 7-octet pieces)
 *   X: NAME VALUE  want_read, want_write, want_tls, done, esmtp, expiry,
 *                  ext KEYWORD, out, authmech
 *
 * Server input between two actions is fed whole, by octet, split at a
 * position or in random pieces; the log of commands and events must be the
 * same, and the output stream must be the C: and B: lines in order.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/smtpx.h>

#include "harness/transcript.h"
#include "harness/tutil.h"

typedef struct reader {
    const char *p;
    size_t len, pos;
} reader;

typedef struct ct {
    smtpx_config *cfg;
    smtpx_client *c;
    smtpx_txn *txns[16];
    reader readers[16];
    char *bodies[16];
    size_t ntxn;
    uint64_t now;
    int started, drain, failed, dropped;
    tu_feeder feed;
    tu_buf log, out, expect_out;
    char *err;
    size_t errsize;
} ct;

static void ct_fail(ct *t, const char *fmt, ...)
{
    va_list ap;

    if (t->failed)
        return;
    t->failed = 1;
    va_start(ap, fmt);
    vsnprintf(t->err, t->errsize, fmt, ap);
    va_end(ap);
}

/* escape_text - a reply text for the log: newlines as \n */
static void escape_text(tu_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\n')
            tu_add(b, "\\n", 2);
        else
            tu_add(b, s, 1);
    }
}

static void log_reply(tu_buf *b, const smtpx_reply *r)
{
    tu_printf(b, "%d", r->code);
    if (r->enh[0])
        tu_printf(b, " %u.%u.%u", r->enh[0], r->enh[1], r->enh[2]);
    if (r->text && r->text[0]) {
        tu_add(b, " ", 1);
        escape_text(b, r->text);
    }
    if (smtpx_reply_local(r))
        tu_add(b, " [local]", 8);
}

static void cb_reply(smtpx_client *c, int cmd, void *cookie,
                     const smtpx_reply *r, void *ud)
{
    ct *t = ud;
    (void)c;
    (void)cookie;
    tu_printf(&t->log, "E: reply %s ", smtpx_cmd_name(cmd));
    log_reply(&t->log, r);
    tu_add(&t->log, "\n", 1);
}

static void cb_txn_done(smtpx_client *c, smtpx_txn *x, void *ud)
{
    ct *t = ud;
    size_t i;

    (void)c;
    tu_add(&t->log, "E: txn", 6);
    for (i = 0; i < smtpx_txn_rcpt_count(x); i++) {
        const smtpx_rcpt_status *st = smtpx_txn_rcpt(x, i);
        char state[16], stage[16];
        tu_upper(state, sizeof(state), smtpx_rcpt_state_name(st->state));
        tu_upper(stage, sizeof(stage), smtpx_stage_name(st->stage));
        tu_printf(&t->log, " %s=%s/%s/%d", st->addr, state, stage,
                  st->reply.code);
    }
    if (smtpx_txn_long_lines(x))
        tu_printf(&t->log, " long=%zu", smtpx_txn_long_lines(x));
    tu_add(&t->log, "\n", 1);
}

static void cb_trace(smtpx_client *c, int dir, const char *line, size_t len,
                     void *ud)
{
    ct *t = ud;
    (void)c;
    if (dir != SMTPX_TRACE_OUT)
        return;
    tu_add(&t->log, "C: ", 3);
    tu_add(&t->log, line, len);
    tu_add(&t->log, "\n", 1);
}

static void cb_close(smtpx_client *c, int status, void *ud)
{
    ct *t = ud;
    (void)c;
    tu_printf(&t->log, "E: close %s\n", smtpx_err_name(status));
}

static const smtpx_client_callbacks ct_cbs = {
    .on_reply = cb_reply,
    .on_txn_done = cb_txn_done,
    .on_trace = cb_trace,
    .on_close = cb_close,
};

static void drain(ct *t)
{
    const uint8_t *p;
    size_t n;

    while (t->c && (n = smtpx_client_out_peek(t->c, &p)) > 0) {
        tu_add(&t->out, p, n);
        smtpx_client_out_drop(t->c, n, t->now);
    }
}

static void make(ct *t)
{
    if (t->c != NULL)
        return;
    if (smtpx_config_freeze(t->cfg) != 0 ||
        smtpx_client_new(&t->c, t->cfg, &ct_cbs, sizeof(ct_cbs), t) != 0)
        ct_fail(t, "cannot make the client");
}

static void start(ct *t)
{
    make(t);
    if (t->started || t->c == NULL)
        return;
    t->started = 1;
    if (smtpx_client_start(t->c, t->now) != 0)
        ct_fail(t, "start failed");
    if (t->drain)
        drain(t);
}

static void recv1(ct *t, const uint8_t *p, size_t n)
{
    smtpx_ssize r;

    if (smtpx_client_want_tls(t->c))
        return; /* these octets would go to the TLS layer */
    r = smtpx_client_recv(t->c, p, n, t->now);
    if (r < 0)
        ct_fail(t, "recv failed: %s", smtpx_err_name((int)r));
    else if ((size_t)r != n)
        ct_fail(t, "recv consumed %zd of %zu", r, n);
    if (t->drain)
        drain(t);
}

static void recv_cb(void *ctx, const uint8_t *p, size_t n)
{
    recv1(ctx, p, n);
}

static void feed(ct *t, const char *p, size_t n)
{
    if (n == 0)
        return;
    start(t);
    if (t->c == NULL)
        return;
    tu_feed(&t->feed, p, n, recv_cb, t);
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

static void action_txn(ct *t, char *args)
{
    char *from = strtok(args, " ");
    char *rcpts = strtok(NULL, " ");
    char *body = strtok(NULL, " ");
    char *opt;
    smtpx_txn *x;
    size_t blen;
    int rc, use_reader = 0, eight = 0;

    if (from == NULL || rcpts == NULL || body == NULL || t->ntxn == 16) {
        ct_fail(t, "bad txn action");
        return;
    }
    while ((opt = strtok(NULL, " ")) != NULL) {
        if (strcmp(opt, "reader") == 0)
            use_reader = 1;
        else if (strcmp(opt, "8bit") == 0)
            eight = 1;
    }
    if (smtpx_txn_new(&x, t->cfg, strcmp(from, "<>") == 0 ? "" : from) != 0) {
        ct_fail(t, "txn_new failed");
        return;
    }
    t->txns[t->ntxn] = x;
    for (char *r = strtok(rcpts, ","); r != NULL; r = strtok(NULL, ",")) {
        char *params = strchr(r, ';');
        if (params != NULL)
            *params++ = '\0';
        if (smtpx_txn_add_rcpt(x, r, params) != 0)
            ct_fail(t, "add_rcpt %s failed", r);
    }
    t->bodies[t->ntxn] = malloc(strlen(body) + 1);
    blen = tu_unescape(body, t->bodies[t->ntxn]);
    if (use_reader) {
        reader *rd = &t->readers[t->ntxn];
        rd->p = t->bodies[t->ntxn];
        rd->len = blen;
        rd->pos = 0;
        smtpx_txn_set_body_reader(x, read_body, rd, 0);
    } else {
        smtpx_txn_set_body(x, t->bodies[t->ntxn], blen);
    }
    if (eight)
        smtpx_txn_set_body_type(x, SMTPX_BODY_8BITMIME, 0);
    t->ntxn++;
    rc = smtpx_client_send(t->c, x);
    if (rc != 0)
        tu_printf(&t->log, "E: send returned %s\n", smtpx_err_name(rc));
}

static void action(ct *t, const char *line)
{
    char buf[8192];
    long long v;
    int rc = 0;

    make(t);
    if (t->c == NULL)
        return;
    if (strcmp(line, "start") == 0) {
        start(t);
    } else if (strncmp(line, "ehlo ", 5) == 0) {
        rc = smtpx_client_ehlo(t->c, line + 5, NULL);
    } else if (strncmp(line, "helo ", 5) == 0) {
        rc = smtpx_client_helo(t->c, line + 5, NULL);
    } else if (strcmp(line, "starttls") == 0) {
        rc = smtpx_client_starttls(t->c, NULL);
    } else if (strcmp(line, "rset") == 0) {
        rc = smtpx_client_rset(t->c, NULL);
    } else if (strcmp(line, "noop") == 0) {
        rc = smtpx_client_noop(t->c, NULL);
    } else if (strcmp(line, "quit") == 0) {
        rc = smtpx_client_quit(t->c, NULL);
    } else if (strcmp(line, "tls") == 0) {
        rc = smtpx_client_tls_started(t->c, NULL, t->now);
    } else if (strcmp(line, "eof") == 0) {
        smtpx_client_eof(t->c);
    } else if (strcmp(line, "abort") == 0) {
        t->dropped = 1;
        smtpx_client_abort(t->c, SMTPX_ERR_IO);
    } else if (sscanf(line, "time +%lld", &v) == 1) {
        t->now += (uint64_t)v;
        if (smtpx_client_expire(t->c, t->now))
            t->dropped = 1;
    } else if (strcmp(line, "drain off") == 0) {
        t->drain = 0;
        return;
    } else if (strcmp(line, "drain on") == 0) {
        t->drain = 1;
    } else if (strncmp(line, "txn ", 4) == 0) {
        snprintf(buf, sizeof(buf), "%s", line + 4);
        action_txn(t, buf);
    } else if (strncmp(line, "auth ", 5) == 0) {
        char mechs[128], user[128], secret[512], authzid[128] = "";
        smtpx_auth_creds cr;
        memset(&cr, 0, sizeof(cr));
        cr.size = sizeof(cr);
        if (sscanf(line + 5, "%127s %127s %511s %127s", mechs, user, secret,
                   authzid) < 3) {
            ct_fail(t, "bad auth action: %s", line);
            return;
        }
        if (strcmp(mechs, "-") != 0) {
            char *m;
            for (m = strtok(mechs, ","); m != NULL; m = strtok(NULL, ","))
                cr.mechs |= smtpx_sasl_from_name(m);
        }
        cr.user = user;
        cr.authzid = authzid[0] ? authzid : NULL;
        if (strncmp(secret, "pw:", 3) == 0)
            cr.password = secret + 3;
        else if (strncmp(secret, "tok:", 4) == 0)
            cr.token = secret + 4;
        rc = smtpx_client_auth(t->c, &cr, NULL);
    } else if (strcmp(line, "requiretls") == 0) {
        rc = smtpx_client_set_require_tls(t->c, 1);
    } else {
        ct_fail(t, "unknown action: %s", line);
        return;
    }
    if (rc != 0)
        tu_printf(&t->log, "E: %s returned %s\n", line, smtpx_err_name(rc));
    if (t->drain)
        drain(t);
}

static void check(ct *t, const char *line, int lineno)
{
    char name[64], want[256], got[256], kw[64];
    int n = 0;

    make(t);
    if (t->c == NULL || sscanf(line, "%63s %n", name, &n) != 1)
        return;
    snprintf(want, sizeof(want), "%s", line + n);
    if (strcmp(name, "want_read") == 0)
        snprintf(got, sizeof(got), "%d", smtpx_client_want_read(t->c));
    else if (strcmp(name, "want_write") == 0)
        snprintf(got, sizeof(got), "%d", smtpx_client_want_write(t->c));
    else if (strcmp(name, "want_tls") == 0)
        snprintf(got, sizeof(got), "%d", smtpx_client_want_tls(t->c));
    else if (strcmp(name, "done") == 0)
        snprintf(got, sizeof(got), "%d", smtpx_client_done(t->c));
    else if (strcmp(name, "esmtp") == 0)
        snprintf(got, sizeof(got), "%d", smtpx_client_esmtp(t->c));
    else if (strcmp(name, "expiry") == 0) {
        uint64_t e = smtpx_client_expiry(t->c);
        if (e == 0)
            snprintf(got, sizeof(got), "0");
        else
            snprintf(got, sizeof(got), "+%lld", (long long)(e - t->now));
    } else if (strcmp(name, "out") == 0) {
        const uint8_t *p;
        snprintf(got, sizeof(got), "%zu", smtpx_client_out_peek(t->c, &p));
    } else if (strcmp(name, "authmech") == 0) {
        const char *m = smtpx_sasl_name(smtpx_client_auth_mech(t->c));
        snprintf(got, sizeof(got), "%s", m ? m : "-");
    } else if (strcmp(name, "ext") == 0 && sscanf(want, "%63s", kw) == 1) {
        const char *e = smtpx_client_ext(t->c, kw);
        snprintf(got, sizeof(got), "%s %s", kw, e ? e : "(null)");
        if (e != NULL && e[0] == '\0')
            snprintf(got, sizeof(got), "%s", kw);
    } else {
        ct_fail(t, "line %d: unknown check %s", lineno, name);
        return;
    }
    if (strcmp(want, got) != 0)
        ct_fail(t, "line %d: %s is '%s', expected '%s' (mode %d/%zu)", lineno,
                name, got, want, t->feed.mode, t->feed.arg);
}

static int directive(ct *t, const char *line)
{
    char a[64];
    unsigned long long v;
    int i;

    if (sscanf(line, "@limit %63s %llu", a, &v) == 2 &&
        (i = tu_limit_id(a)) >= 0)
        return smtpx_config_set_limit(t->cfg, (smtpx_limit)i, v);
    if (sscanf(line, "@timeout %63s %llu", a, &v) == 2 &&
        (i = tu_timeout_id(a)) >= 0)
        return smtpx_config_set_timeout(t->cfg, (smtpx_timeout)i, (uint32_t)v);
    if (sscanf(line, "@policy REQUIRE_TLS %llu", &v) == 1)
        return smtpx_config_set_policy(t->cfg, SMTPX_POLICY_REQUIRE_TLS,
                                       (int)v);
    if (sscanf(line, "@ext -%63s", a) == 1 && strcmp(a, "PIPELINING") == 0)
        return smtpx_config_set_extensions(t->cfg,
                                           smtpx_config_get_extensions(t->cfg) &
                                               ~SMTPX_EXT_PIPELINING);
    return -1;
}

long ctranscript_input_size(const char *path);
int ctranscript_run(const char *path, int mode, size_t arg, char *err,
                    size_t errsize);

long ctranscript_input_size(const char *path)
{
    tu_lines f;
    long total = 0;
    size_t i;

    if (tu_load(path, &f) < 0)
        return -1;
    for (i = 0; i < f.n; i++) {
        const char *l = f.v[i];
        if (strncmp(l, "S: ", 3) == 0 || strcmp(l, "S:") == 0) {
            total += (long)strlen(l) - 1;
        } else if (strncmp(l, "S+ ", 3) == 0) {
            char *tmp = malloc(strlen(l) + 1);
            total += (long)tu_unescape(l + 3, tmp);
            free(tmp);
        }
    }
    tu_unload(&f);
    return total;
}

int ctranscript_run(const char *path, int mode, size_t arg, char *err,
                    size_t errsize)
{
    ct t;
    tu_lines f;
    tu_buf expect = {0}, pending = {0};
    size_t i;
    int rc;

    memset(&t, 0, sizeof(t));
    t.err = err;
    t.errsize = errsize;
    tu_feeder_init(&t.feed, mode, arg, 7, 61);
    t.drain = 1;
    t.now = 5000000;
    err[0] = '\0';
    if (tu_load(path, &f) < 0) {
        snprintf(err, errsize, "cannot read %s", path);
        return -1;
    }
    smtpx_config_new(&t.cfg, SMTPX_ROLE_CLIENT, NULL);
    for (i = 0; i < f.n && !t.failed; i++) {
        const char *l = f.v[i];
        if (strcmp(l, "@role lmtp") == 0) {
            smtpx_config_free(t.cfg);
            smtpx_config_new(&t.cfg, SMTPX_ROLE_LMTP_CLIENT, NULL);
        } else if (l[0] == '@') {
            if (directive(&t, l) != 0)
                ct_fail(&t, "line %zu: bad directive", i + 1);
        } else if (strncmp(l, "S: ", 3) == 0 || strcmp(l, "S:") == 0) {
            tu_add(&pending, l + (l[2] ? 3 : 2), strlen(l + (l[2] ? 3 : 2)));
            tu_add(&pending, "\r\n", 2);
        } else if (strncmp(l, "S+ ", 3) == 0) {
            tu_unescape_add(&pending, l + 3);
        } else if (strncmp(l, "C: ", 3) == 0) {
            tu_add(&expect, l, strlen(l));
            tu_add(&expect, "\n", 1);
            tu_add(&t.expect_out, l + 3, strlen(l + 3));
            tu_add(&t.expect_out, "\r\n", 2);
        } else if (strncmp(l, "B: ", 3) == 0) {
            tu_unescape_add(&t.expect_out, l + 3);
        } else if (strncmp(l, "E: ", 3) == 0) {
            tu_add(&expect, l, strlen(l));
            tu_add(&expect, "\n", 1);
        } else if (strncmp(l, "T: ", 3) == 0) {
            tu_add(&expect, "C: ", 3);
            tu_add(&expect, l + 3, strlen(l + 3));
            tu_add(&expect, "\n", 1);
        } else if (strncmp(l, "A: ", 3) == 0 || strncmp(l, "X: ", 3) == 0) {
            feed(&t, pending.p, pending.len);
            pending.len = 0;
            if (l[0] == 'A')
                action(&t, l + 3);
            else
                check(&t, l + 3, (int)i + 1);
        } else if (l[0] != '#' && l[0] != '\0') {
            ct_fail(&t, "line %zu: cannot parse: %s", i + 1, l);
        }
    }
    if (!t.failed) {
        feed(&t, pending.p, pending.len);
        drain(&t);
        smtpx_client_free(t.c);
        t.c = NULL;
        if (t.dropped
                ? t.out.len > t.expect_out.len
                : t.out.len != t.expect_out.len ||
                      (t.out.len && memcmp(t.out.p, t.expect_out.p, t.out.len)))
            ct_fail(&t,
                    "output stream differs:\n  expected: %.*s\n  got:      "
                    "%.*s",
                    (int)(t.expect_out.len > 600 ? 600 : t.expect_out.len),
                    t.expect_out.p ? t.expect_out.p : "",
                    (int)(t.out.len > 600 ? 600 : t.out.len),
                    t.out.p ? t.out.p : "");
    } else {
        smtpx_client_free(t.c);
    }
    if (!t.failed) {
        const char *a = expect.p ? expect.p : "", *b = t.log.p ? t.log.p : "";
        char msg[1200];
        if (tu_logdiff(a, b, msg, sizeof(msg)) != 0)
            ct_fail(&t, "mode %d/%zu: %s", mode, arg, msg);
    }
    rc = t.failed ? -1 : 0;
    for (i = 0; i < t.ntxn; i++) {
        smtpx_txn_free(t.txns[i]);
        free(t.bodies[i]);
    }
    smtpx_config_free(t.cfg);
    tu_unload(&f);
    free(expect.p);
    free(pending.p);
    free(t.log.p);
    free(t.out.p);
    free(t.expect_out.p);
    return rc;
}
