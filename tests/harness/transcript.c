/*
 * transcript - replay a server transcript (format in transcript.h).
 *
 * The harness plays both the client (feeding input in the chosen pieces)
 * and the application (callbacks that log an event and answer as the
 * transcript says).  Replies are logged from on_trace as they are queued,
 * so events and replies form one ordered log; DATA content, which arrives
 * in pieces that depend on the feeding, is merged into one event.  The
 * output bytes are also checked against the traced reply lines.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/smtpx.h>

#include "proto/server.h"
#include "harness/transcript.h"
#include "harness/tutil.h"

enum {
    CB_CONNECT,
    CB_HELO,
    CB_MAIL,
    CB_RCPT,
    CB_DATA_BEGIN,
    CB_CHUNK,
    CB_DATA_END,
    CB_VRFY,
    CB_AUTH,
    CB_LOOKUP,
    CB_COUNT
};
static const char *const cb_names[CB_COUNT] = {
    "connect", "helo",     "mail", "rcpt", "data_begin",
    "chunk",   "data_end", "vrfy", "auth", "lookup"};

/* A user the @auth harness knows: SCRAM keys are made with this salt. */
#define TR_SALT       "transcript-salt!"
#define TR_ITERATIONS 4096
typedef struct tr_user {
    char name[64];
    char password[64];
} tr_user;

enum { ANS_DEFAULT, ANS_PAUSE, ANS_FAIL, ANS_REPLY };

typedef struct answer {
    int kind;
    smtpx_reply reply;
    char text[512];
} answer;

typedef struct tr {
    smtpx_config *cfg;
    smtpx_server *s;
    uint64_t now;
    int started;
    tu_buf log;      /* actual log */
    tu_buf traced;   /* traced reply lines with CRLF */
    tu_buf outbytes; /* bytes taken with out_peek */
    tu_buf data;     /* content not yet logged */
    answer next[CB_COUNT];
    long rcptdata;
    struct {
        size_t i;
        answer a;
    } lmtp[16];
    size_t nlmtp;
    int drain;
    int log_on;
    int tls;
    int last_fatal;
    tu_feeder feed;
    char *err;
    size_t errsize;
    int failed;
    int dropped;  /* the session dropped output (abort, linger expiry) */
    int auth;     /* on_auth and on_auth_lookup are set */
    int trace_in; /* log the traced command lines too (T:) */
    tr_user users[4];
    size_t nusers;
    char looked_up[64]; /* the user of a paused lookup */
    uint32_t rnd;       /* the deterministic random source */
} tr;

static void tr_fail(tr *t, const char *fmt, ...)
{
    va_list ap;

    if (t->failed)
        return;
    t->failed = 1;
    va_start(ap, fmt);
    vsnprintf(t->err, t->errsize, fmt, ap);
    va_end(ap);
}

/* escape - printable form of content for the log */
static void escape(tu_buf *b, const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        char tmp[8];
        if (p[i] == '\r')
            tu_add(b, "\\r", 2);
        else if (p[i] == '\n')
            tu_add(b, "\\n", 2);
        else if (p[i] == '\t')
            tu_add(b, "\\t", 2);
        else if (p[i] == '\\')
            tu_add(b, "\\\\", 2);
        else if (p[i] < 0x20 || p[i] >= 0x7f) {
            snprintf(tmp, sizeof(tmp), "\\x%02X", p[i]);
            tu_add(b, tmp, 4);
        } else {
            tu_add(b, (const char *)p + i, 1);
        }
    }
}

/* flush_data - log merged content before any other event */
static void flush_data(tr *t)
{
    if (t->data.len == 0)
        return;
    tu_add(&t->log, "E: data \"", 9);
    escape(&t->log, (const uint8_t *)t->data.p, t->data.len);
    tu_add(&t->log, "\"\n", 2);
    t->data.len = 0;
}

static void event(tr *t, const char *fmt, ...)
{
    char tmp[2048];
    va_list ap;

    flush_data(t);
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    /* Octets outside printable ASCII are written as escapes. */
    tu_add(&t->log, "E: ", 3);
    escape(&t->log, (const uint8_t *)tmp, strlen(tmp));
    tu_add(&t->log, "\n", 1);
}

/* answer_apply - answer a callback as configured; resets to default */
static int answer_apply(tr *t, int cb, smtpx_reply *r)
{
    answer *a = &t->next[cb];
    int kind = a->kind;

    a->kind = ANS_DEFAULT;
    if (kind == ANS_PAUSE)
        return SMTPX_ERR_PAUSE;
    if (kind == ANS_FAIL)
        return SMTPX_ERR_CALLBACK_FAILURE;
    if (kind == ANS_REPLY && r != NULL) {
        r->code = a->reply.code;
        memcpy(r->enh, a->reply.enh, sizeof(r->enh));
        r->text = a->text;
    }
    return 0;
}

static void append_params(tu_buf *b, const smtpx_param *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        tu_printf(b, " %s", p[i].keyword);
        if (p[i].value != NULL)
            tu_printf(b, "=%s", p[i].value);
    }
}

/* check_domain - the domain pointer must follow the last '@' */
static void check_domain(tr *t, const char *addr, const char *domain)
{
    if (domain == NULL)
        return;
    if (domain <= addr || domain[-1] != '@' ||
        domain + strlen(domain) != addr + strlen(addr))
        tr_fail(t, "bad domain pointer for %s", addr);
}

static int cb_connect(smtpx_server *s, const smtpx_peer *peer, smtpx_reply *r,
                      void *ud)
{
    tr *t = ud;
    (void)s;
    event(t, "connect %s %u", peer->addr ? peer->addr : "-",
          (unsigned)peer->port);
    return answer_apply(t, CB_CONNECT, r);
}

static int cb_helo(smtpx_server *s, int kind, const char *name, smtpx_reply *r,
                   void *ud)
{
    tr *t = ud;
    (void)s;
    event(t, "helo %s %s",
          kind == SMTPX_HELO   ? "HELO"
          : kind == SMTPX_EHLO ? "EHLO"
                               : "LHLO",
          name);
    return answer_apply(t, CB_HELO, r);
}

static int cb_mail(smtpx_server *s, const smtpx_mail_info *m, smtpx_reply *r,
                   void *ud)
{
    tr *t = ud;
    tu_buf b = {0};
    (void)s;
    tu_printf(&b, "mail <%s>", m->from);
    append_params(&b, m->params, m->nparams);
    if (m->size)
        tu_printf(&b, " size=%llu", (unsigned long long)m->size);
    if (m->body)
        tu_printf(&b, " body=%d", m->body);
    if (m->smtputf8)
        tu_printf(&b, " utf8");
    if (m->ret)
        tu_printf(&b, " ret=%d", m->ret);
    if (m->envid)
        tu_printf(&b, " envid=%s", m->envid);
    if (m->auth)
        tu_printf(&b, " auth=%s", m->auth);
    check_domain(t, m->from, m->domain);
    if ((m->domain == NULL) != (m->from[0] == '\0'))
        tr_fail(t, "domain NULL mismatch for <%s>", m->from);
    event(t, "%s", b.p);
    free(b.p);
    return answer_apply(t, CB_MAIL, r);
}

static int cb_rcpt(smtpx_server *s, const smtpx_rcpt_info *ri, void **rd,
                   smtpx_reply *r, void *ud)
{
    tr *t = ud;
    tu_buf b = {0};
    (void)s;
    tu_printf(&b, "rcpt <%s> #%zu", ri->to, ri->index);
    append_params(&b, ri->params, ri->nparams);
    if (ri->notify)
        tu_printf(&b, " notify=%u", ri->notify);
    if (ri->orcpt)
        tu_printf(&b, " orcpt=%s", ri->orcpt);
    check_domain(t, ri->to, ri->domain);
    event(t, "%s", b.p);
    free(b.p);
    if (t->rcptdata) {
        *rd = (void *)(intptr_t)t->rcptdata;
        t->rcptdata = 0;
    }
    return answer_apply(t, CB_RCPT, r);
}

static int cb_data_begin(smtpx_server *s, const smtpx_data_info *di,
                         smtpx_reply *r, void *ud)
{
    tr *t = ud;
    (void)s;
    event(t, "data_begin %s body=%d rcpts=%zu",
          di->framing == SMTPX_FRAMING_DATA ? "DATA" : "BDAT", di->body,
          di->nrcpts);
    return answer_apply(t, CB_DATA_BEGIN, r);
}

static int cb_chunk(smtpx_server *s, const uint8_t *p, size_t n, void *ud)
{
    tr *t = ud;
    (void)s;
    if (n == 0)
        tr_fail(t, "empty content piece");
    tu_add(&t->data, (const char *)p, n);
    return answer_apply(t, CB_CHUNK, NULL);
}

static int cb_data_end(smtpx_server *s, smtpx_reply *r, void *ud)
{
    tr *t = ud;
    size_t i;

    event(t, "data_end size=%llu",
          (unsigned long long)smtpx_server_data_size(s));
    for (i = 0; i < t->nlmtp; i++) {
        answer *a = &t->lmtp[i].a;
        a->reply.text = a->text;
        if (smtpx_server_reply_rcpt(s, t->lmtp[i].i, &a->reply) != 0)
            tr_fail(t, "reply_rcpt %zu failed", t->lmtp[i].i);
    }
    t->nlmtp = 0;
    return answer_apply(t, CB_DATA_END, r);
}

static void cb_txn_end(smtpx_server *s, int reason, void *ud)
{
    tr *t = ud;
    static const char *const names[] = {"DONE", "RESET", "REFUSED", "ABORTED"};
    (void)s;
    event(t, "txn_end %s", names[reason]);
}

static int cb_vrfy(smtpx_server *s, int cmd, const char *arg, smtpx_reply *r,
                   void *ud)
{
    tr *t = ud;
    (void)s;
    event(t, "vrfy %s %s", cmd == SMTPX_VRFY ? "VRFY" : "EXPN", arg);
    return answer_apply(t, CB_VRFY, r);
}

static const tr_user *find_user(const tr *t, const char *name)
{
    size_t i;

    for (i = 0; i < t->nusers; i++)
        if (strcmp(t->users[i].name, name) == 0)
            return &t->users[i];
    return NULL;
}

/* cb_auth - checks the password against @user lines; the secret itself is
 * never logged, only whether it matched */
static int cb_auth(smtpx_server *s, const smtpx_auth_info *a, smtpx_reply *r,
                   void *ud)
{
    tr *t = ud;
    const tr_user *u = find_user(t, a->authcid);
    const char *how = "proven";
    (void)s;
    if (a->secret != NULL) {
        int ok = u != NULL && a->secret_len == strlen(u->password) &&
                 memcmp(a->secret, u->password, a->secret_len) == 0;
        how = ok ? "good" : "bad";
        if (ok) {
            r->code = 235;
            r->enh[0] = 2;
            r->enh[1] = 7;
            r->enh[2] = 0;
            r->text = "Authentication successful";
        }
    }
    event(t, "auth %s authzid=%s user=%s secret=%s", a->mech_name, a->authzid,
          a->authcid, how);
    return answer_apply(t, CB_AUTH, r);
}

static void fill_secret(const tr_user *u, unsigned mech, smtpx_auth_secret *sec)
{
    memset(sec, 0, sizeof(*sec));
    if (u == NULL)
        return;
    sec->found = 1;
    if (mech == SMTPX_SASL_CRAM_MD5) {
        sec->password = (const uint8_t *)u->password;
        sec->password_len = strlen(u->password);
    } else {
        sec->salt = (const uint8_t *)TR_SALT;
        sec->salt_len = strlen(TR_SALT);
        sec->iterations = TR_ITERATIONS;
        smtpx_scram_keys((const uint8_t *)u->password, strlen(u->password),
                         sec->salt, sec->salt_len, sec->iterations,
                         sec->stored_key, sec->server_key);
    }
}

static int cb_lookup(smtpx_server *s, const smtpx_auth_info *a,
                     smtpx_auth_secret *sec, void *ud)
{
    tr *t = ud;
    int rc;
    (void)s;
    event(t, "lookup %s user=%s", a->mech_name, a->authcid);
    rc = answer_apply(t, CB_LOOKUP, NULL);
    if (rc == SMTPX_ERR_PAUSE) {
        snprintf(t->looked_up, sizeof(t->looked_up), "%s", a->authcid);
        return rc;
    }
    if (rc == 0)
        fill_secret(find_user(t, a->authcid), a->mech, sec);
    return rc;
}

/* tr_random - a deterministic source, so challenges are the same in every
 * feeding mode */
static int tr_random(uint8_t *buf, size_t len, void *ud)
{
    tr *t = ud;
    size_t i;

    for (i = 0; i < len; i++) {
        t->rnd = t->rnd * 1103515245u + 12345u;
        buf[i] = (uint8_t)(t->rnd >> 16);
    }
    return 0;
}

static void cb_log(smtpx_server *s, int level, const char *msg, void *ud)
{
    tr *t = ud;
    static const char *const names[] = {"",        "",       "",     "error",
                                        "warning", "notice", "info", "debug"};
    (void)s;
    if (!t->log_on)
        return;
    flush_data(t);
    tu_printf(&t->log, "L: %s %s\n", names[level], msg);
}

static void cb_trace(smtpx_server *s, int dir, const char *line, size_t len,
                     void *ud)
{
    tr *t = ud;
    (void)s;
    if (dir != SMTPX_TRACE_OUT) {
        if (t->trace_in) {
            flush_data(t);
            tu_add(&t->log, "T: ", 3);
            tu_add(&t->log, line, len);
            tu_add(&t->log, "\n", 1);
        }
        return;
    }
    flush_data(t);
    tu_add(&t->log, "S: ", 3);
    tu_add(&t->log, line, len);
    tu_add(&t->log, "\n", 1);
    tu_add(&t->traced, line, len);
    tu_add(&t->traced, "\r\n", 2);
}

static void cb_close(smtpx_server *s, int status, void *ud)
{
    tr *t = ud;
    (void)s;
    event(t, "close %s", smtpx_err_name(status));
}

static const smtpx_server_callbacks tr_cbs = {
    .on_connect = cb_connect,
    .on_helo = cb_helo,
    .on_mail = cb_mail,
    .on_rcpt = cb_rcpt,
    .on_data_begin = cb_data_begin,
    .on_data_chunk = cb_chunk,
    .on_data_end = cb_data_end,
    .on_txn_end = cb_txn_end,
    .on_vrfy = cb_vrfy,
    .on_log = cb_log,
    .on_trace = cb_trace,
    .on_close = cb_close,
};

static void drain(tr *t)
{
    const uint8_t *p;
    size_t n;

    if (t->s == NULL)
        return;
    while ((n = smtpx_server_out_peek(t->s, &p)) > 0) {
        tu_add(&t->outbytes, (const char *)p, n);
        smtpx_server_out_drop(t->s, n, t->now);
    }
}

static void start(tr *t)
{
    smtpx_peer peer = {"192.0.2.7", 41000, "198.51.100.1", 25, NULL};
    smtpx_server_callbacks cbs = tr_cbs;

    if (t->started)
        return;
    t->started = 1;
    if (t->auth) {
        cbs.on_auth = cb_auth;
        cbs.on_auth_lookup = cb_lookup;
    }
    if (smtpx_config_freeze(t->cfg) != 0 ||
        smtpx_server_new(&t->s, t->cfg, &cbs, sizeof(cbs), t) != 0) {
        tr_fail(t, "cannot make the session");
        return;
    }
    if (t->tls)
        smtpx_server_set_tls_available(t->s, 1);
    if (smtpx_server_start(t->s, &peer, t->now) != 0)
        tr_fail(t, "start failed");
    if (t->drain)
        drain(t);
}

static void recv1(tr *t, const uint8_t *p, size_t n)
{
    smtpx_ssize r;

    if (smtpx_server_want_tls(t->s))
        return; /* these octets go to the TLS layer, not the session */
    r = smtpx_server_recv(t->s, p, n, t->now);
    if (r < 0) {
        if (r != t->last_fatal && smtpx_is_fatal((int)r)) {
            t->last_fatal = (int)r;
            event(t, "fatal %s", smtpx_err_name((int)r));
        } else if (!smtpx_is_fatal((int)r)) {
            tr_fail(t, "recv failed: %s", smtpx_err_name((int)r));
        }
    } else if ((size_t)r != n) {
        tr_fail(t, "recv consumed %zd of %zu", r, n);
    }
    if (t->drain)
        drain(t);
}

/* feed - client input in the pieces the mode asks for */
static void recv_cb(void *ctx, const uint8_t *p, size_t n)
{
    recv1(ctx, p, n);
}

static void feed(tr *t, const char *p, size_t n)
{
    if (n == 0)
        return;
    start(t);
    if (t->s == NULL)
        return;
    tu_feed(&t->feed, p, n, recv_cb, t);
}

static int parse_answer(const char *s, answer *a)
{
    unsigned e1 = 0, e2 = 0, e3 = 0;
    int n = 0;

    memset(a, 0, sizeof(*a));
    a->kind = ANS_REPLY;
    if (sscanf(s, "%d%n", &a->reply.code, &n) != 1)
        return -1;
    s += n;
    while (*s == ' ')
        s++;
    if (sscanf(s, "%u.%u.%u%n", &e1, &e2, &e3, &n) == 3) {
        a->reply.enh[0] = (uint16_t)e1;
        a->reply.enh[1] = (uint16_t)e2;
        a->reply.enh[2] = (uint16_t)e3;
        s += n;
        while (*s == ' ')
            s++;
    }
    /* Escapes as in "C+" lines: "\n" makes a multi-line reply. */
    if (strlen(s) >= sizeof(a->text))
        return -1;
    a->text[tu_unescape(s, a->text)] = '\0';
    a->reply.text = a->text;
    return 0;
}

static int directive(tr *t, const char *line)
{
    char a[64], b[64];
    unsigned long long v;

    if (sscanf(line, "@limit %63s %llu", a, &v) == 2 && tu_limit_id(a) >= 0)
        return smtpx_config_set_limit(t->cfg, (smtpx_limit)tu_limit_id(a), v);
    if (sscanf(line, "@timeout %63s %llu", a, &v) == 2 && tu_timeout_id(a) >= 0)
        return smtpx_config_set_timeout(t->cfg, (smtpx_timeout)tu_timeout_id(a),
                                        (uint32_t)v);
    if (sscanf(line, "@ext %63s", a) == 1 && (a[0] == '+' || a[0] == '-') &&
        smtpx_ext_from_name(a + 1) != 0) {
        unsigned m = smtpx_config_get_extensions(t->cfg);
        unsigned bit = smtpx_ext_from_name(a + 1);
        m = a[0] == '+' ? m | bit : m & ~bit;
        return smtpx_config_set_extensions(t->cfg, m);
    }
    if (sscanf(line, "@policy %63s %63s", a, b) == 2) {
        if (strcmp(a, "BARE_LF") == 0)
            return smtpx_config_set_policy(t->cfg, SMTPX_POLICY_BARE_LF,
                                           strcmp(b, "reject") == 0
                                               ? SMTPX_BARE_LF_REJECT
                                               : SMTPX_BARE_LF_NORMALIZE);
        if (strcmp(a, "REQUIRE_HELO") == 0)
            return smtpx_config_set_policy(t->cfg, SMTPX_POLICY_REQUIRE_HELO,
                                           atoi(b));
        if (strcmp(a, "VRFY") == 0)
            return smtpx_config_set_policy(t->cfg, SMTPX_POLICY_VRFY, atoi(b));
        if (strcmp(a, "EXPN") == 0)
            return smtpx_config_set_policy(t->cfg, SMTPX_POLICY_EXPN, atoi(b));
        if (strcmp(a, "REQUIRE_TLS") == 0)
            return smtpx_config_set_policy(t->cfg, SMTPX_POLICY_REQUIRE_TLS,
                                           atoi(b));
        if (strcmp(a, "AUTH_CLEARTEXT") == 0)
            return smtpx_config_set_policy(t->cfg, SMTPX_POLICY_AUTH_CLEARTEXT,
                                           atoi(b));
        return -1;
    }
    if (strcmp(line, "@auth") == 0) {
        t->auth = 1;
        return smtpx_config_set_random(t->cfg, tr_random, t);
    }
    if (sscanf(line, "@user %63s %63s", a, b) == 2 &&
        t->nusers < sizeof(t->users) / sizeof(t->users[0])) {
        snprintf(t->users[t->nusers].name, sizeof(t->users[0].name), "%s", a);
        snprintf(t->users[t->nusers].password, sizeof(t->users[0].password),
                 "%s", b);
        t->nusers++;
        return 0;
    }
    if (strncmp(line, "@sasl", 5) == 0) {
        /* @sasl NAME...: exactly these mechanisms */
        unsigned m = 0;
        const char *p = line + 5;
        int n;
        while (sscanf(p, " %63s%n", a, &n) == 1) {
            unsigned bit = smtpx_sasl_from_name(a);
            if (bit == 0)
                return -1;
            m |= bit;
            p += n;
        }
        return smtpx_config_set_sasl(t->cfg, m);
    }
    if (sscanf(line, "@hostname %63s", a) == 1)
        return smtpx_config_set_hostname(t->cfg, a);
    if (strcmp(line, "@tls") == 0) {
        t->tls = 1;
        return 0;
    }
    if (strcmp(line, "@log") == 0) {
        t->log_on = 1;
        return 0;
    }
    if (strcmp(line, "@trace") == 0) {
        t->trace_in = 1;
        return 0;
    }
    return -1;
}

static int cb_id(const char *name)
{
    int i;

    for (i = 0; i < CB_COUNT; i++)
        if (strcmp(cb_names[i], name) == 0)
            return i;
    return -1;
}

static void action(tr *t, const char *line)
{
    char w[64];
    int n = 0, id;
    long long v;

    if (sscanf(line, "set %63s %n", w, &n) == 1 && (id = cb_id(w)) >= 0) {
        const char *rest = line + n;
        if (strcmp(rest, "pause") == 0)
            t->next[id].kind = ANS_PAUSE;
        else if (strcmp(rest, "fail") == 0)
            t->next[id].kind = ANS_FAIL;
        else if (parse_answer(rest, &t->next[id]) < 0)
            tr_fail(t, "bad action: %s", line);
        return;
    }
    start(t);
    if (t->s == NULL)
        return;
    if (sscanf(line, "rcptdata %lld", &v) == 1) {
        t->rcptdata = (long)v;
    } else if (strncmp(line, "reply ", 6) == 0) {
        answer a;
        int rc;
        if (parse_answer(line + 6, &a) < 0) {
            tr_fail(t, "bad action: %s", line);
            return;
        }
        rc = smtpx_server_reply(t->s, &a.reply, t->now);
        if (rc != 0)
            event(t, "reply returned %s", smtpx_err_name(rc));
    } else if (sscanf(line, "lmtp %lld %n", &v, &n) == 1) {
        answer *a = &t->lmtp[t->nlmtp].a;
        t->lmtp[t->nlmtp].i = (size_t)v;
        if (parse_answer(line + n, a) < 0) {
            tr_fail(t, "bad action: %s", line);
            return;
        }
        a->reply.text = a->text;
        /* During a pause in on_data_end the reply is given at once. */
        if (smtpx_server_reply_rcpt(t->s, (size_t)v, &a->reply) == 0)
            return;
        t->nlmtp++;
    } else if (strcmp(line, "secret") == 0) {
        smtpx_auth_secret sec;
        int rc;
        fill_secret(find_user(t, t->looked_up), SMTPX_SASL_SCRAM_SHA_256, &sec);
        rc = smtpx_server_auth_secret(t->s, &sec);
        if (rc != 0)
            event(t, "auth_secret returned %s", smtpx_err_name(rc));
    } else if (strcmp(line, "resume") == 0) {
        int rc = smtpx_server_resume(t->s, t->now);
        if (rc != 0)
            event(t, "resume returned %s", smtpx_err_name(rc));
    } else if (sscanf(line, "time +%lld", &v) == 1) {
        int ended = smtpx_server_expiry(t->s) != 0 &&
                    smtpx_server_want_read(t->s) == 0 &&
                    smtpx_server_done(t->s) == 0 &&
                    smtpx_server_want_write(t->s);
        t->now += (uint64_t)v;
        if (smtpx_server_expire(t->s, t->now) && ended)
            t->dropped = 1;
    } else if (strcmp(line, "eof") == 0) {
        smtpx_server_eof(t->s);
    } else if (strcmp(line, "abort") == 0) {
        t->dropped = 1;
        smtpx_server_abort(t->s, SMTPX_ERR_IO);
    } else if (strcmp(line, "tls") == 0) {
        smtpx_tls_info info = {"TLSv1.2", "TEST-CIPHER", 128, 0, NULL};
        int rc = smtpx_server_tls_started(t->s, &info, t->now);
        if (rc != 0)
            event(t, "tls_started returned %s", smtpx_err_name(rc));
    } else if (strcmp(line, "shutdown now") == 0) {
        smtpx_server_shutdown(t->s, SMTPX_SHUTDOWN_NOW);
    } else if (strcmp(line, "shutdown drain") == 0) {
        smtpx_server_shutdown(t->s, SMTPX_SHUTDOWN_DRAIN);
    } else if (strcmp(line, "drain off") == 0) {
        t->drain = 0;
        return;
    } else if (strcmp(line, "drain on") == 0) {
        t->drain = 1;
    } else {
        tr_fail(t, "unknown action: %s", line);
        return;
    }
    if (t->drain)
        drain(t);
}

static void check(tr *t, const char *line, int lineno)
{
    char name[64], want[256], got[256];
    const smtpx_server *s = t->s;
    int n = 0;

    start(t);
    if (s == NULL)
        return;
    if (sscanf(line, "%63s %n", name, &n) != 1) {
        tr_fail(t, "line %d: bad check", lineno);
        return;
    }
    snprintf(want, sizeof(want), "%s", line + n);
    if (strcmp(name, "want_read") == 0)
        snprintf(got, sizeof(got), "%d", smtpx_server_want_read(s));
    else if (strcmp(name, "want_write") == 0)
        snprintf(got, sizeof(got), "%d", smtpx_server_want_write(s));
    else if (strcmp(name, "want_tls") == 0)
        snprintf(got, sizeof(got), "%d", smtpx_server_want_tls(s));
    else if (strcmp(name, "done") == 0)
        snprintf(got, sizeof(got), "%d", smtpx_server_done(s));
    else if (strcmp(name, "expiry") == 0) {
        uint64_t e = smtpx_server_expiry(s);
        if (e == 0)
            snprintf(got, sizeof(got), "0");
        else
            snprintf(got, sizeof(got), "+%lld", (long long)(e - t->now));
    } else if (strcmp(name, "rcpts") == 0)
        snprintf(got, sizeof(got), "%zu", smtpx_server_rcpt_count(s));
    else if (strcmp(name, "size") == 0)
        snprintf(got, sizeof(got), "%llu",
                 (unsigned long long)smtpx_server_data_size(s));
    else if (strcmp(name, "msgs") == 0)
        snprintf(got, sizeof(got), "%llu",
                 (unsigned long long)smtpx_server_msg_count(s));
    else if (strcmp(name, "state") == 0)
        snprintf(got, sizeof(got), "%s", smtpx__server_state_name(s));
    else if (strcmp(name, "helo") == 0)
        snprintf(got, sizeof(got), "%s",
                 smtpx_server_helo(s) ? smtpx_server_helo(s) : "(null)");
    else if (strcmp(name, "protocol") == 0)
        snprintf(got, sizeof(got), "%s", smtpx_server_protocol(s));
    else if (strcmp(name, "auth") == 0)
        snprintf(got, sizeof(got), "%s %s %s",
                 smtpx_server_auth_id(s) ? smtpx_server_auth_id(s) : "(null)",
                 smtpx_server_auth_user(s) ? smtpx_server_auth_user(s)
                                           : "(null)",
                 smtpx_sasl_name(smtpx_server_auth_mech(s))
                     ? smtpx_sasl_name(smtpx_server_auth_mech(s))
                     : "-");
    else if (strcmp(name, "from") == 0)
        snprintf(got, sizeof(got), "%s",
                 smtpx_server_mail_from(s) ? smtpx_server_mail_from(s)
                                           : "(null)");
    else if (strcmp(name, "out") == 0) {
        const uint8_t *p;
        snprintf(got, sizeof(got), "%zu", smtpx_server_out_peek(t->s, &p));
    } else if (strcmp(name, "held") == 0)
        snprintf(got, sizeof(got), "%zu", smtpx__server_held(s));
    else if (strcmp(name, "rcptdata") == 0) {
        size_t i = (size_t)atol(want);
        char *sp = strchr(want, ' ');
        snprintf(got, sizeof(got), "%zu %ld", i,
                 (long)(intptr_t)smtpx_server_rcpt_data(s, i));
        if (sp == NULL) {
            tr_fail(t, "line %d: rcptdata needs I VALUE", lineno);
            return;
        }
    } else {
        tr_fail(t, "line %d: unknown check %s", lineno, name);
        return;
    }
    if (strcmp(want, got) != 0)
        tr_fail(t, "line %d: %s is %s, expected %s (mode %d/%zu)", lineno, name,
                got, want, t->feed.mode, t->feed.arg);
}

long transcript_input_size(const char *path)
{
    tu_lines f;
    long total = 0;
    size_t i;
    char *tmp;

    if (tu_load(path, &f) < 0)
        return -1;
    for (i = 0; i < f.n; i++) {
        const char *l = f.v[i];
        if (strcmp(l, "C:") == 0) {
            total += 2;
        } else if (strncmp(l, "C: ", 3) == 0) {
            total += (long)strlen(l + 3) + 2;
        } else if (strncmp(l, "C+ ", 3) == 0) {
            tmp = malloc(strlen(l) + 1);
            total += (long)tu_unescape(l + 3, tmp);
            free(tmp);
        }
    }
    tu_unload(&f);
    return total;
}

int transcript_run(const char *path, int mode, size_t arg, char *err,
                   size_t errsize)
{
    tr t;
    tu_lines f;
    tu_buf expect = {0}, pending = {0};
    size_t i;
    int rc = 0;

    memset(&t, 0, sizeof(t));
    t.err = err;
    t.errsize = errsize;
    tu_feeder_init(&t.feed, mode, arg, 1, 97);
    t.drain = 1;
    t.now = 1000000;
    err[0] = '\0';
    if (tu_load(path, &f) < 0) {
        snprintf(err, errsize, "cannot read %s", path);
        return -1;
    }
    if (smtpx_config_new(&t.cfg, SMTPX_ROLE_SERVER, NULL) != 0)
        abort();
    smtpx_config_set_hostname(t.cfg, "mx.test");
    for (i = 0; i < f.n && !t.failed; i++) {
        const char *l = f.v[i];

        if (strcmp(l, "@role lmtp") == 0) {
            smtpx_config_free(t.cfg);
            if (smtpx_config_new(&t.cfg, SMTPX_ROLE_LMTP_SERVER, NULL) != 0)
                abort();
            smtpx_config_set_hostname(t.cfg, "mx.test");
        } else if (l[0] == '@') {
            if (directive(&t, l) != 0)
                tr_fail(&t, "line %zu: bad directive %s", i + 1, l);
        } else if (strncmp(l, "C: ", 3) == 0 || strcmp(l, "C:") == 0) {
            tu_add(&pending, l + (l[2] ? 3 : 2), strlen(l + (l[2] ? 3 : 2)));
            tu_add(&pending, "\r\n", 2);
        } else if (strncmp(l, "C+ ", 3) == 0) {
            tu_unescape_add(&pending, l + 3);
        } else if (strncmp(l, "S: ", 3) == 0 || strncmp(l, "E: ", 3) == 0 ||
                   strncmp(l, "L: ", 3) == 0 || strncmp(l, "T: ", 3) == 0) {
            tu_add(&expect, l, strlen(l));
            tu_add(&expect, "\n", 1);
        } else if (strncmp(l, "A: ", 3) == 0 || strncmp(l, "X: ", 3) == 0) {
            feed(&t, pending.p, pending.len);
            pending.len = 0;
            if (l[0] == 'A')
                action(&t, l + 3);
            else
                check(&t, l + 3, (int)i + 1);
        } else if (l[0] != '#' && l[0] != '\0') {
            tr_fail(&t, "line %zu: cannot parse: %s", i + 1, l);
        }
    }
    if (!t.failed) {
        feed(&t, pending.p, pending.len);
        start(&t);
        drain(&t);
        smtpx_server_free(t.s);
        flush_data(&t);
        /* What was written is what was traced (only a prefix of it when
         * the session dropped its output). */
        if ((t.dropped ? t.outbytes.len > t.traced.len
                       : t.outbytes.len != t.traced.len) ||
            (t.outbytes.len &&
             memcmp(t.outbytes.p, t.traced.p, t.outbytes.len) != 0))
            tr_fail(&t, "output bytes differ from the traced replies");
    } else {
        smtpx_server_free(t.s);
    }
    if (!t.failed) {
        const char *a = expect.p ? expect.p : "";
        const char *b = t.log.p ? t.log.p : "";
        char msg[1200];
        if (tu_logdiff(a, b, msg, sizeof(msg)) != 0)
            tr_fail(&t, "mode %d/%zu: %s", mode, arg, msg);
    }
    rc = t.failed ? -1 : 0;
    smtpx_config_free(t.cfg);
    tu_unload(&f);
    free(expect.p);
    free(pending.p);
    free(t.log.p);
    free(t.traced.p);
    free(t.outbytes.p);
    free(t.data.p);
    return rc;
}
