/*
 * transcript_server - the server's part of the transcript harness (format
 * in transcript.h): the harness plays the client, which transcript.c
 * feeds, and the application, whose callbacks log an event and answer as
 * the transcript says.
 *
 * Exports tr_server.  Replies are logged from on_trace as they are
 * queued, so events and replies form one ordered log.
 */
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

typedef struct srv {
    tr t; /* first: the harness's state */
    answer next[CB_COUNT];
    long rcptdata;
    struct {
        size_t i;
        answer a;
    } lmtp[16];
    size_t nlmtp;
    int tls;  /* @tls */
    int auth; /* @auth: on_auth and on_auth_lookup are set */
    tr_user users[4];
    size_t nusers;
    char looked_up[64]; /* the user of a paused lookup */
} srv;

#define SESSION(v) ((smtpx_server *)(v)->t.sess)

TR_SESSION(server)

/* answer_apply - answer a callback as configured; resets to default */
static int answer_apply(srv *v, int cb, smtpx_reply *r)
{
    answer *a = &v->next[cb];
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
static void check_domain(srv *v, const char *addr, const char *domain)
{
    if (domain == NULL)
        return;
    if (domain <= addr || domain[-1] != '@' ||
        domain + strlen(domain) != addr + strlen(addr))
        tr_fail(&v->t, "bad domain pointer for %s", addr);
}

static int cb_connect(smtpx_server *s, const smtpx_peer *peer, smtpx_reply *r,
                      void *ud)
{
    srv *v = ud;
    (void)s;
    tr_event(&v->t, "connect %s %u", peer->addr ? peer->addr : "-",
             (unsigned)peer->port);
    return answer_apply(v, CB_CONNECT, r);
}

static int cb_helo(smtpx_server *s, int kind, const char *name, smtpx_reply *r,
                   void *ud)
{
    srv *v = ud;
    (void)s;
    tr_event(&v->t, "helo %s %s",
             kind == SMTPX_HELO   ? "HELO"
             : kind == SMTPX_EHLO ? "EHLO"
                                  : "LHLO",
             name);
    return answer_apply(v, CB_HELO, r);
}

static int cb_mail(smtpx_server *s, const smtpx_mail_info *m, smtpx_reply *r,
                   void *ud)
{
    srv *v = ud;
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
    check_domain(v, m->from, m->domain);
    if ((m->domain == NULL) != (m->from[0] == '\0'))
        tr_fail(&v->t, "domain NULL mismatch for <%s>", m->from);
    tr_event(&v->t, "%s", b.p);
    free(b.p);
    return answer_apply(v, CB_MAIL, r);
}

static int cb_rcpt(smtpx_server *s, const smtpx_rcpt_info *ri, void **rd,
                   smtpx_reply *r, void *ud)
{
    srv *v = ud;
    tu_buf b = {0};
    (void)s;
    tu_printf(&b, "rcpt <%s> #%zu", ri->to, ri->index);
    append_params(&b, ri->params, ri->nparams);
    if (ri->notify)
        tu_printf(&b, " notify=%u", ri->notify);
    if (ri->orcpt)
        tu_printf(&b, " orcpt=%s", ri->orcpt);
    check_domain(v, ri->to, ri->domain);
    tr_event(&v->t, "%s", b.p);
    free(b.p);
    if (v->rcptdata) {
        *rd = (void *)(intptr_t)v->rcptdata;
        v->rcptdata = 0;
    }
    return answer_apply(v, CB_RCPT, r);
}

static int cb_data_begin(smtpx_server *s, const smtpx_data_info *di,
                         smtpx_reply *r, void *ud)
{
    srv *v = ud;
    (void)s;
    tr_event(&v->t, "data_begin %s body=%d rcpts=%zu",
             di->framing == SMTPX_FRAMING_DATA ? "DATA" : "BDAT", di->body,
             di->nrcpts);
    return answer_apply(v, CB_DATA_BEGIN, r);
}

static int cb_chunk(smtpx_server *s, const uint8_t *p, size_t n, void *ud)
{
    srv *v = ud;
    (void)s;
    if (n == 0)
        tr_fail(&v->t, "empty content piece");
    tr_data(&v->t, p, n);
    return answer_apply(v, CB_CHUNK, NULL);
}

static int cb_data_end(smtpx_server *s, smtpx_reply *r, void *ud)
{
    srv *v = ud;
    size_t i;

    tr_event(&v->t, "data_end size=%llu",
             (unsigned long long)smtpx_server_data_size(s));
    for (i = 0; i < v->nlmtp; i++) {
        answer *a = &v->lmtp[i].a;
        a->reply.text = a->text;
        if (smtpx_server_reply_rcpt(s, v->lmtp[i].i, &a->reply) != 0)
            tr_fail(&v->t, "reply_rcpt %zu failed", v->lmtp[i].i);
    }
    v->nlmtp = 0;
    return answer_apply(v, CB_DATA_END, r);
}

static void cb_txn_end(smtpx_server *s, int reason, void *ud)
{
    static const char *const names[] = {"DONE", "RESET", "REFUSED", "ABORTED"};
    srv *v = ud;
    (void)s;
    tr_event(&v->t, "txn_end %s", names[reason]);
}

static int cb_vrfy(smtpx_server *s, int cmd, const char *arg, smtpx_reply *r,
                   void *ud)
{
    srv *v = ud;
    (void)s;
    tr_event(&v->t, "vrfy %s %s", cmd == SMTPX_VRFY ? "VRFY" : "EXPN", arg);
    return answer_apply(v, CB_VRFY, r);
}

static const tr_user *find_user(const srv *v, const char *name)
{
    size_t i;

    for (i = 0; i < v->nusers; i++)
        if (strcmp(v->users[i].name, name) == 0)
            return &v->users[i];
    return NULL;
}

/* cb_auth - checks the password against @user lines; the secret itself is
 * never logged, only whether it matched */
static int cb_auth(smtpx_server *s, const smtpx_auth_info *a, smtpx_reply *r,
                   void *ud)
{
    srv *v = ud;
    const tr_user *u = find_user(v, a->authcid);
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
    tr_event(&v->t, "auth %s authzid=%s user=%s secret=%s", a->mech_name,
             a->authzid, a->authcid, how);
    return answer_apply(v, CB_AUTH, r);
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
    srv *v = ud;
    int rc;
    (void)s;
    tr_event(&v->t, "lookup %s user=%s", a->mech_name, a->authcid);
    rc = answer_apply(v, CB_LOOKUP, NULL);
    if (rc == SMTPX_ERR_PAUSE) {
        snprintf(v->looked_up, sizeof(v->looked_up), "%s", a->authcid);
        return rc;
    }
    if (rc == 0)
        fill_secret(find_user(v, a->authcid), a->mech, sec);
    return rc;
}

static const smtpx_server_callbacks srv_cbs = {
    .on_connect = cb_connect,
    .on_helo = cb_helo,
    .on_mail = cb_mail,
    .on_rcpt = cb_rcpt,
    .on_data_begin = cb_data_begin,
    .on_data_chunk = cb_chunk,
    .on_data_end = cb_data_end,
    .on_txn_end = cb_txn_end,
    .on_vrfy = cb_vrfy,
    .on_trace = tr_server_on_trace,
    .on_close = tr_server_on_close,
};

static int srv_make(tr *t)
{
    srv *v = (srv *)t;
    smtpx_server_callbacks cbs = srv_cbs;
    smtpx_server *s;

    if (v->auth) {
        cbs.on_auth = cb_auth;
        cbs.on_auth_lookup = cb_lookup;
    }
    if (tr_wants_on_log(t))
        cbs.on_log = tr_server_on_log;
    if (smtpx_server_new(&s, t->cfg, &cbs, sizeof(cbs), v) != 0)
        return -1;
    t->sess = s;
    if (v->tls)
        smtpx_server_set_tls_available(s, 1);
    return 0;
}

static int srv_start(tr *t)
{
    smtpx_peer peer = {"192.0.2.7", 41000, "198.51.100.1", 25, NULL};

    return smtpx_server_start(t->sess, &peer, t->now);
}

static int srv_directive(tr *t, const char *line)
{
    srv *v = (srv *)t;
    char a[64], b[64];

    if (strcmp(line, "@auth") == 0) {
        v->auth = 1;
        return 0;
    }
    if (sscanf(line, "@user %63s %63s", a, b) == 2 &&
        v->nusers < sizeof(v->users) / sizeof(v->users[0])) {
        snprintf(v->users[v->nusers].name, sizeof(v->users[0].name), "%s", a);
        snprintf(v->users[v->nusers].password, sizeof(v->users[0].password),
                 "%s", b);
        v->nusers++;
        return 0;
    }
    if (strcmp(line, "@tls") == 0) {
        v->tls = 1;
        return 0;
    }
    return -1;
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

static int cb_id(const char *name)
{
    int i;

    for (i = 0; i < CB_COUNT; i++)
        if (strcmp(cb_names[i], name) == 0)
            return i;
    return -1;
}

/* srv_call - an action's call that may be refused: an event says so */
static void srv_call(srv *v, const char *what, int rc)
{
    if (rc != 0)
        tr_event(&v->t, "%s returned %s", what, smtpx_err_name(rc));
}

static int srv_action(tr *t, const char *line)
{
    srv *v = (srv *)t;
    char w[64];
    int n = 0, id;
    long long i;

    if (sscanf(line, "set %63s %n", w, &n) == 1 && (id = cb_id(w)) >= 0) {
        const char *rest = line + n;
        if (strcmp(rest, "pause") == 0)
            v->next[id].kind = ANS_PAUSE;
        else if (strcmp(rest, "fail") == 0)
            v->next[id].kind = ANS_FAIL;
        else if (parse_answer(rest, &v->next[id]) < 0)
            tr_fail(t, "bad action: %s", line);
        return 0;
    }
    tr_open(t, 1);
    if (t->sess == NULL)
        return 0;
    if (sscanf(line, "rcptdata %lld", &i) == 1) {
        v->rcptdata = (long)i;
    } else if (strncmp(line, "reply ", 6) == 0) {
        answer a;
        if (parse_answer(line + 6, &a) < 0)
            tr_fail(t, "bad action: %s", line);
        else
            srv_call(v, "reply",
                     smtpx_server_reply(SESSION(v), &a.reply, t->now));
    } else if (sscanf(line, "lmtp %lld %n", &i, &n) == 1) {
        /* During a pause in on_data_end the reply is given at once. */
        if (v->nlmtp == sizeof(v->lmtp) / sizeof(v->lmtp[0]) ||
            parse_answer(line + n, &v->lmtp[v->nlmtp].a) < 0)
            tr_fail(t, "bad action: %s", line);
        else if (smtpx_server_reply_rcpt(SESSION(v), (size_t)i,
                                         &v->lmtp[v->nlmtp].a.reply) != 0)
            v->lmtp[v->nlmtp++].i = (size_t)i;
    } else if (strcmp(line, "secret") == 0) {
        smtpx_auth_secret sec;
        fill_secret(find_user(v, v->looked_up), SMTPX_SASL_SCRAM_SHA_256, &sec);
        srv_call(v, "auth_secret", smtpx_server_auth_secret(SESSION(v), &sec));
    } else if (strcmp(line, "resume") == 0) {
        srv_call(v, "resume", smtpx_server_resume(SESSION(v), t->now));
    } else if (strcmp(line, "tls") == 0) {
        smtpx_tls_info info = {"TLSv1.2", "TEST-CIPHER", 128, 0, NULL, 0};
        srv_call(v, "tls_started",
                 smtpx_server_tls_started(SESSION(v), &info, t->now));
    } else if (strcmp(line, "shutdown now") == 0) {
        smtpx_server_shutdown(SESSION(v), SMTPX_SHUTDOWN_NOW);
    } else if (strcmp(line, "shutdown drain") == 0) {
        smtpx_server_shutdown(SESSION(v), SMTPX_SHUTDOWN_DRAIN);
    } else {
        return 1;
    }
    return 0;
}

static int srv_check(tr *t, const char *name, const char *want, char *got,
                     size_t size)
{
    const smtpx_server *s = t->sess;

    if (strcmp(name, "rcpts") == 0) {
        snprintf(got, size, "%zu", smtpx_server_rcpt_count(s));
    } else if (strcmp(name, "size") == 0) {
        snprintf(got, size, "%llu",
                 (unsigned long long)smtpx_server_data_size(s));
    } else if (strcmp(name, "msgs") == 0) {
        snprintf(got, size, "%llu",
                 (unsigned long long)smtpx_server_msg_count(s));
    } else if (strcmp(name, "state") == 0) {
        snprintf(got, size, "%s", smtpx__server_state_name(s));
    } else if (strcmp(name, "helo") == 0) {
        const char *h = smtpx_server_helo(s);
        snprintf(got, size, "%s", h ? h : "(null)");
    } else if (strcmp(name, "protocol") == 0) {
        snprintf(got, size, "%s", smtpx_server_protocol(s));
    } else if (strcmp(name, "auth") == 0) {
        const char *id = smtpx_server_auth_id(s);
        const char *user = smtpx_server_auth_user(s);
        const char *mech = smtpx_sasl_name(smtpx_server_auth_mech(s));
        snprintf(got, size, "%s %s %s", id ? id : "(null)",
                 user ? user : "(null)", mech ? mech : "-");
    } else if (strcmp(name, "from") == 0) {
        const char *from = smtpx_server_mail_from(s);
        snprintf(got, size, "%s", from ? from : "(null)");
    } else if (strcmp(name, "held") == 0) {
        snprintf(got, size, "%zu", smtpx__server_held(s));
    } else if (strcmp(name, "rcptdata") == 0) {
        /* I VALUE: the value stored for recipient I */
        size_t i = (size_t)atol(want);
        snprintf(got, size, "%zu %ld", i,
                 (long)(intptr_t)smtpx_server_rcpt_data(s, i));
    } else {
        return -1;
    }
    return 0;
}

const tr_side tr_server = {
    .name = "server",
    .size = sizeof(srv),
    .peer = 'C',
    .self = 'S',
    .traced_in = 'T',
    .traced_out = 0,
    .role = SMTPX_ROLE_SERVER,
    .lmtp_role = SMTPX_ROLE_LMTP_SERVER,
    .hostname = "mx.test",
    .ops = &tr_server_ops,
    .directive = srv_directive,
    .make = srv_make,
    .start = srv_start,
    .start_at_once = 1,
    .action = srv_action,
    .check = srv_check,
};
