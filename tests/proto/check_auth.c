/*
 * check_auth - AUTH end to end: the client core talks to the server core
 * over memory, for every mechanism with good and bad credentials, with
 * the server's lookup answered at once or after a pause, and with a
 * server that does not know the user's SCRAM key.  The traces of both
 * sides are searched for the secrets, and an allocation failure sweep runs
 * over a whole SCRAM exchange.
 */
#include <stdio.h>
#include <string.h>

#include <libsmtpx/smtpx.h>

#include "harness/failmalloc.h"
#include "suites.h"

#define PASSWORD "tanstaaftanstaaf"
#define TOKEN    "ya29.token-of-tim"
#define SALT     "0123456789abcdef"

typedef struct side {
    smtpx_config *scfg, *ccfg;
    smtpx_server *s;
    smtpx_client *c;
    /* server behaviour */
    int pause_lookup;     /* on_auth_lookup pauses */
    int paused;           /* it did */
    char looked_up[64];   /* for the paused answer */
    int wrong_server_key; /* the server's ServerKey is from another password */
    int refuse_authzid;   /* on_auth refuses an authzid */
    /* what happened */
    int auth_code;
    int auth_replies;
    int client_status, server_status;
    int client_closed, server_closed;
    char trace[16384];
    size_t tlen;
} side;

static void add_trace(side *x, const char *who, const char *line, size_t len)
{
    size_t room = sizeof(x->trace) - x->tlen;
    int n =
        snprintf(x->trace + x->tlen, room, "%s %.*s\n", who, (int)len, line);
    if (n > 0 && (size_t)n < room)
        x->tlen += (size_t)n;
}

static void fill_secret(const side *x, const char *user, unsigned mech,
                        smtpx_auth_secret *sec)
{
    memset(sec, 0, sizeof(*sec));
    if (strcmp(user, "tim") != 0)
        return;
    sec->found = 1;
    if (mech == SMTPX_SASL_CRAM_MD5) {
        sec->password = (const uint8_t *)PASSWORD;
        sec->password_len = strlen(PASSWORD);
        return;
    }
    sec->salt = (const uint8_t *)SALT;
    sec->salt_len = strlen(SALT);
    sec->iterations = 4096;
    ck_assert_int_eq(
        smtpx_scram_keys((const uint8_t *)PASSWORD, strlen(PASSWORD), sec->salt,
                         sec->salt_len, 4096, sec->stored_key, sec->server_key),
        0);
    if (x->wrong_server_key) {
        uint8_t stored[32];
        ck_assert_int_eq(smtpx_scram_keys((const uint8_t *)"other", 5,
                                          sec->salt, sec->salt_len, 4096,
                                          stored, sec->server_key),
                         0);
    }
}

static int s_auth(smtpx_server *s, const smtpx_auth_info *a, smtpx_reply *r,
                  void *ud)
{
    side *x = ud;
    int ok;

    (void)s;
    if (a->secret == NULL) {
        ok = 1; /* proven by the core */
    } else {
        const char *want =
            a->mech & (SMTPX_SASL_XOAUTH2 | SMTPX_SASL_OAUTHBEARER) ? TOKEN
                                                                    : PASSWORD;
        ok = strcmp(a->authcid, "tim") == 0 && a->secret_len == strlen(want) &&
             memcmp(a->secret, want, a->secret_len) == 0;
    }
    if (x->refuse_authzid && a->authzid[0] != '\0')
        ok = 0;
    if (ok) {
        r->code = 235;
        r->text = "welcome";
    } else if (a->secret == NULL) {
        r->code = 535;
        r->enh[0] = 5;
        r->enh[1] = 7;
        r->enh[2] = 8;
        r->text = "not you";
    }
    return 0;
}

static int s_lookup(smtpx_server *s, const smtpx_auth_info *a,
                    smtpx_auth_secret *sec, void *ud)
{
    side *x = ud;

    (void)s;
    ck_assert_ptr_null(a->secret);
    if (x->pause_lookup) {
        x->paused = 1;
        snprintf(x->looked_up, sizeof(x->looked_up), "%s", a->authcid);
        return SMTPX_ERR_PAUSE;
    }
    fill_secret(x, a->authcid, a->mech, sec);
    return 0;
}

static void s_trace(smtpx_server *s, int dir, const char *line, size_t len,
                    void *ud)
{
    (void)s;
    add_trace(ud, dir == SMTPX_TRACE_IN ? "S<" : "S>", line, len);
}

static void s_close(smtpx_server *s, int status, void *ud)
{
    side *x = ud;
    (void)s;
    x->server_closed++;
    x->server_status = status;
}

static const smtpx_server_callbacks scbs = {
    .on_trace = s_trace,
    .on_close = s_close,
    .on_auth = s_auth,
    .on_auth_lookup = s_lookup,
};

static void c_reply(smtpx_client *c, int cmd, void *cookie,
                    const smtpx_reply *r, void *ud)
{
    side *x = ud;
    (void)c;
    (void)cookie;
    if (cmd == SMTPX_CMD_AUTH) {
        x->auth_code = r->code;
        x->auth_replies++;
    }
}

static void c_trace(smtpx_client *c, int dir, const char *line, size_t len,
                    void *ud)
{
    (void)c;
    add_trace(ud, dir == SMTPX_TRACE_IN ? "C<" : "C>", line, len);
}

static void c_close(smtpx_client *c, int status, void *ud)
{
    side *x = ud;
    (void)c;
    x->client_closed++;
    x->client_status = status;
}

static const smtpx_client_callbacks ccbs = {
    .on_reply = c_reply,
    .on_trace = c_trace,
    .on_close = c_close,
};

static void setup(side *x, unsigned server_mechs, const smtpx_mem *mem)
{
    memset(x, 0, sizeof(*x));
    ck_assert_int_eq(smtpx_config_new(&x->scfg, SMTPX_ROLE_SERVER, mem), 0);
    ck_assert_int_eq(smtpx_config_set_hostname(x->scfg, "mx.test"), 0);
    ck_assert_int_eq(smtpx_config_set_sasl(x->scfg, server_mechs), 0);
    /* Memory is private: no TLS needed here (auth-tls.t tests that). */
    ck_assert_int_eq(
        smtpx_config_set_policy(x->scfg, SMTPX_POLICY_AUTH_CLEARTEXT, 1), 0);
    smtpx_config_freeze(x->scfg);
    ck_assert_int_eq(smtpx_config_new(&x->ccfg, SMTPX_ROLE_CLIENT, mem), 0);
    smtpx_config_freeze(x->ccfg);
}

static void teardown(side *x)
{
    smtpx_client_free(x->c);
    smtpx_server_free(x->s);
    smtpx_config_free(x->ccfg);
    smtpx_config_free(x->scfg);
}

/* shuttle - move bytes both ways until nothing moves; answers a paused
 * lookup when asked to */
static void shuttle(side *x, int answer_pause)
{
    int moved;

    do {
        const uint8_t *p;
        size_t n;

        moved = 0;
        while ((n = smtpx_client_out_peek(x->c, &p)) > 0) {
            if (smtpx_server_want_read(x->s))
                ck_assert_int_eq(smtpx_server_recv(x->s, p, n, 0),
                                 (smtpx_ssize)n);
            smtpx_client_out_drop(x->c, n, 0);
            moved = 1;
        }
        while ((n = smtpx_server_out_peek(x->s, &p)) > 0) {
            if (smtpx_client_want_read(x->c))
                ck_assert_int_eq(smtpx_client_recv(x->c, p, n, 0),
                                 (smtpx_ssize)n);
            smtpx_server_out_drop(x->s, n, 0);
            moved = 1;
        }
        if (answer_pause && x->paused) {
            smtpx_auth_secret sec;
            x->paused = 0;
            fill_secret(x, x->looked_up, SMTPX_SASL_SCRAM_SHA_256, &sec);
            ck_assert_int_eq(smtpx_server_auth_secret(x->s, &sec), 0);
            ck_assert_int_eq(smtpx_server_resume(x->s, 0), 0);
            moved = 1;
        }
    } while (moved);
}

/* run - EHLO, AUTH with creds, QUIT */
static void run(side *x, const smtpx_auth_creds *cr, int answer_pause)
{
    ck_assert_int_eq(smtpx_server_new(&x->s, x->scfg, &scbs, sizeof(scbs), x),
                     0);
    ck_assert_int_eq(smtpx_client_new(&x->c, x->ccfg, &ccbs, sizeof(ccbs), x),
                     0);
    ck_assert_int_eq(smtpx_server_start(x->s, NULL, 0), 0);
    ck_assert_int_eq(smtpx_client_start(x->c, 0), 0);
    ck_assert_int_eq(smtpx_client_ehlo(x->c, "c.test", NULL), 0);
    ck_assert_int_eq(smtpx_client_auth(x->c, cr, NULL), 0);
    ck_assert_int_eq(smtpx_client_quit(x->c, NULL), 0);
    shuttle(x, answer_pause);
}

static smtpx_auth_creds creds(unsigned mechs, const char *user, const char *pw,
                              const char *token)
{
    smtpx_auth_creds cr;

    memset(&cr, 0, sizeof(cr));
    cr.size = sizeof(cr);
    cr.mechs = mechs;
    cr.user = user;
    cr.password = pw;
    cr.token = token;
    return cr;
}

static const unsigned all_mechs[] = {
    SMTPX_SASL_PLAIN,         SMTPX_SASL_LOGIN,   SMTPX_SASL_CRAM_MD5,
    SMTPX_SASL_SCRAM_SHA_256, SMTPX_SASL_XOAUTH2, SMTPX_SASL_OAUTHBEARER};

/* no_secret_in - the trace holds neither the secret nor the base64 of a
 * PLAIN message with it */
static void no_secret_in(const side *x)
{
    ck_assert_ptr_null(strstr(x->trace, PASSWORD));
    ck_assert_ptr_null(strstr(x->trace, TOKEN));
    ck_assert_ptr_null(strstr(x->trace, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"));
    ck_assert_ptr_null(strstr(x->trace, "dGFuc3RhYWZ0YW5zdGFhZg"));
}

START_TEST(test_auth_each_mech_good)
{
    unsigned mech = all_mechs[_i];
    int token = mech & (SMTPX_SASL_XOAUTH2 | SMTPX_SASL_OAUTHBEARER);
    smtpx_auth_creds cr =
        creds(mech, "tim", token ? NULL : PASSWORD, token ? TOKEN : NULL);
    side x;

    setup(&x, SMTPX_SASL_ALL, NULL);
    run(&x, &cr, 0);
    ck_assert_int_eq(x.auth_code, 235);
    ck_assert_int_eq(x.auth_replies, 1);
    ck_assert_uint_eq(smtpx_client_auth_mech(x.c), mech);
    ck_assert_uint_eq(smtpx_server_auth_mech(x.s), mech);
    ck_assert_str_eq(smtpx_server_auth_user(x.s), "tim");
    ck_assert_str_eq(smtpx_server_auth_id(x.s), "tim");
    ck_assert_str_eq(smtpx_server_protocol(x.s), "ESMTPA");
    ck_assert_int_eq(x.client_status, 0);
    ck_assert_int_eq(x.client_closed, 1);
    no_secret_in(&x);
    teardown(&x);
}
END_TEST

START_TEST(test_auth_each_mech_bad)
{
    unsigned mech = all_mechs[_i];
    int token = mech & (SMTPX_SASL_XOAUTH2 | SMTPX_SASL_OAUTHBEARER);
    smtpx_auth_creds cr = creds(mech, "tim", token ? NULL : "wrong-password",
                                token ? "wrong-token" : NULL);
    side x;

    setup(&x, SMTPX_SASL_ALL, NULL);
    run(&x, &cr, 0);
    ck_assert_int_eq(x.auth_code, 535);
    ck_assert_int_eq(x.auth_replies, 1);
    ck_assert_uint_eq(smtpx_client_auth_mech(x.c), 0);
    ck_assert_ptr_null(smtpx_server_auth_user(x.s));
    ck_assert_str_eq(smtpx_server_protocol(x.s), "ESMTP");
    /* The session went on to QUIT. */
    ck_assert_int_eq(x.client_status, 0);
    teardown(&x);
}
END_TEST

START_TEST(test_auth_unknown_user)
{
    /* CRAM-MD5 and SCRAM: an unknown user fails like a wrong password. */
    unsigned mech = _i == 0 ? SMTPX_SASL_CRAM_MD5 : SMTPX_SASL_SCRAM_SHA_256;
    smtpx_auth_creds cr = creds(mech, "nobody", PASSWORD, NULL);
    side x;

    setup(&x, SMTPX_SASL_ALL, NULL);
    run(&x, &cr, 0);
    ck_assert_int_eq(x.auth_code, 535);
    ck_assert_ptr_null(smtpx_server_auth_user(x.s));
    ck_assert_int_eq(x.client_status, 0);
    teardown(&x);
}
END_TEST

START_TEST(test_auth_strongest)
{
    /* The client takes the strongest mechanism both sides have. */
    smtpx_auth_creds pw = creds(0, "tim", PASSWORD, NULL);
    smtpx_auth_creds tok = creds(0, "tim", NULL, TOKEN);
    side x;

    setup(&x, SMTPX_SASL_ALL, NULL);
    run(&x, &pw, 0);
    ck_assert_uint_eq(smtpx_client_auth_mech(x.c), SMTPX_SASL_SCRAM_SHA_256);
    teardown(&x);
    setup(&x, SMTPX_SASL_PLAIN | SMTPX_SASL_LOGIN | SMTPX_SASL_CRAM_MD5, NULL);
    run(&x, &pw, 0);
    ck_assert_uint_eq(smtpx_client_auth_mech(x.c), SMTPX_SASL_CRAM_MD5);
    teardown(&x);
    setup(&x, SMTPX_SASL_ALL, NULL);
    run(&x, &tok, 0);
    ck_assert_uint_eq(smtpx_client_auth_mech(x.c), SMTPX_SASL_OAUTHBEARER);
    teardown(&x);
}
END_TEST

START_TEST(test_auth_lookup_paused)
{
    /* The application looks the user up asynchronously: the exchange
     * waits, holding what the client sends meanwhile. */
    smtpx_auth_creds cr =
        creds(SMTPX_SASL_SCRAM_SHA_256, "tim", PASSWORD, NULL);
    side x;

    setup(&x, SMTPX_SASL_ALL, NULL);
    x.pause_lookup = 1;
    run(&x, &cr, 1);
    ck_assert_int_eq(x.auth_code, 235);
    ck_assert_str_eq(smtpx_server_auth_user(x.s), "tim");
    teardown(&x);
}
END_TEST

START_TEST(test_auth_lookup_paused_refused)
{
    /* A paused lookup answered with a reply ends the exchange. */
    smtpx_auth_creds cr =
        creds(SMTPX_SASL_SCRAM_SHA_256, "tim", PASSWORD, NULL);
    smtpx_reply r = {454, {4, 7, 0}, "directory down"};
    side x;

    setup(&x, SMTPX_SASL_ALL, NULL);
    x.pause_lookup = 1;
    run(&x, &cr, 0);
    ck_assert_int_eq(x.paused, 1);
    ck_assert_int_eq(smtpx_server_want_read(x.s), 0);
    ck_assert_int_eq(smtpx_server_auth_secret(x.s, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_server_reply(x.s, &r, 0), 0);
    shuttle(&x, 0);
    ck_assert_int_eq(x.auth_code, 454);
    ck_assert_ptr_null(smtpx_server_auth_user(x.s));
    /* Not paused any more. */
    ck_assert_int_eq(smtpx_server_auth_secret(x.s, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    teardown(&x);
}
END_TEST

START_TEST(test_auth_scram_server_without_key)
{
    /* A server that has the StoredKey but not the ServerKey (or a man in
     * the middle) cannot prove itself: the client ends the session. */
    smtpx_auth_creds cr =
        creds(SMTPX_SASL_SCRAM_SHA_256, "tim", PASSWORD, NULL);
    side x;

    setup(&x, SMTPX_SASL_ALL, NULL);
    x.wrong_server_key = 1;
    run(&x, &cr, 0);
    ck_assert_int_eq(x.client_status, SMTPX_ERR_AUTH);
    ck_assert_int_eq(x.auth_code, 535);
    ck_assert_uint_eq(smtpx_client_auth_mech(x.c), 0);
    teardown(&x);
}
END_TEST

/* feed - a server line to the client */
static void feed(smtpx_client *c, const char *line)
{
    ck_assert_int_eq(
        smtpx_client_recv(c, (const uint8_t *)line, strlen(line), 0),
        (smtpx_ssize)strlen(line));
}

/* take - what the client wrote, as a string */
static void take(smtpx_client *c, char *buf, size_t size)
{
    const uint8_t *p;
    size_t n = smtpx_client_out_peek(c, &p);

    ck_assert_uint_lt(n, size);
    memcpy(buf, p, n);
    buf[n] = '\0';
    smtpx_client_out_drop(c, n, 0);
}

START_TEST(test_auth_scram_server_error)
{
    /* A SCRAM server that refuses with "e=" (RFC 5802 7) is an ordinary
     * failure: the client cancels, reports the server's reply, and the
     * session goes on. */
    smtpx_auth_creds cr =
        creds(SMTPX_SASL_SCRAM_SHA_256, "tim", PASSWORD, NULL);
    char out[1024], first[512], line[1024], b64[700];
    const char *nonce;
    side x;
    size_t n;

    setup(&x, SMTPX_SASL_ALL, NULL);
    ck_assert_int_eq(smtpx_client_new(&x.c, x.ccfg, &ccbs, sizeof(ccbs), &x),
                     0);
    ck_assert_int_eq(smtpx_client_start(x.c, 0), 0);
    ck_assert_int_eq(smtpx_client_ehlo(x.c, "c.test", NULL), 0);
    ck_assert_int_eq(smtpx_client_auth(x.c, &cr, NULL), 0);
    feed(x.c, "220 mx ESMTP\r\n");
    take(x.c, out, sizeof(out));
    feed(x.c, "250-mx\r\n250 AUTH SCRAM-SHA-256\r\n");
    take(x.c, out, sizeof(out));
    ck_assert_int_eq(strncmp(out, "AUTH SCRAM-SHA-256 ", 19), 0);
    /* The client-first message, to learn the client's nonce. */
    n = strcspn(out + 19, "\r");
    memcpy(b64, out + 19, n);
    b64[n] = '\0';
    {
        /* decode with the library's own pair: a 334 echo is not needed;
         * the test decodes by hand, the alphabet is small */
        static const char al[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t i, o = 0;
        unsigned v = 0;
        int bits = 0;
        for (i = 0; b64[i] && b64[i] != '='; i++) {
            v = (v << 6) | (unsigned)(strchr(al, b64[i]) - al);
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                first[o++] = (char)((v >> bits) & 0xff);
            }
        }
        first[o] = '\0';
    }
    nonce = strstr(first, ",r=");
    ck_assert_ptr_nonnull(nonce);
    /* server-first: the client's nonce and more, a salt, 4096 */
    snprintf(line, sizeof(line), "r=%sSERVERPART,s=c2FsdHNhbHQ=,i=4096",
             nonce + 3);
    {
        static const char al[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t i, len = strlen(line), o = 0;
        for (i = 0; i < len; i += 3) {
            unsigned v = (unsigned)(unsigned char)line[i] << 16;
            if (i + 1 < len)
                v |= (unsigned)(unsigned char)line[i + 1] << 8;
            if (i + 2 < len)
                v |= (unsigned char)line[i + 2];
            b64[o++] = al[(v >> 18) & 63];
            b64[o++] = al[(v >> 12) & 63];
            b64[o++] = i + 1 < len ? al[(v >> 6) & 63] : '=';
            b64[o++] = i + 2 < len ? al[v & 63] : '=';
        }
        b64[o] = '\0';
    }
    snprintf(out, sizeof(out), "334 %s\r\n", b64);
    feed(x.c, out);
    take(x.c, out, sizeof(out)); /* the client-final message */
    ck_assert_int_gt((int)strlen(out), 10);
    /* "e=invalid-proof" */
    feed(x.c, "334 ZT1pbnZhbGlkLXByb29m\r\n");
    take(x.c, out, sizeof(out));
    ck_assert_str_eq(out, "*\r\n");
    feed(x.c, "501 5.7.0 cancelled\r\n");
    ck_assert_int_eq(x.auth_code, 501);
    ck_assert_int_eq(x.client_closed, 0);
    ck_assert_uint_eq(smtpx_client_auth_mech(x.c), 0);
    teardown(&x);
}
END_TEST

START_TEST(test_auth_authzid_refused)
{
    /* Proven credentials, but on_auth has the final word. */
    smtpx_auth_creds cr =
        creds(SMTPX_SASL_SCRAM_SHA_256, "tim", PASSWORD, NULL);
    side x;

    cr.authzid = "boss";
    setup(&x, SMTPX_SASL_ALL, NULL);
    x.refuse_authzid = 1;
    run(&x, &cr, 0);
    ck_assert_int_eq(x.auth_code, 535);
    ck_assert_ptr_null(smtpx_server_auth_id(x.s));
    teardown(&x);
    setup(&x, SMTPX_SASL_ALL, NULL);
    run(&x, &cr, 0);
    ck_assert_int_eq(x.auth_code, 235);
    ck_assert_str_eq(smtpx_server_auth_id(x.s), "boss");
    ck_assert_str_eq(smtpx_server_auth_user(x.s), "tim");
    teardown(&x);
}
END_TEST

START_TEST(test_auth_not_offered_without_lookup)
{
    /* Without on_auth_lookup the stored-secret mechanisms are not
     * offered; a client that wants only them gets a local 504. */
    smtpx_server_callbacks cbs = scbs;
    smtpx_auth_creds cr =
        creds(SMTPX_SASL_SCRAM_SHA_256, "tim", PASSWORD, NULL);
    side x;

    cbs.on_auth_lookup = NULL;
    setup(&x, SMTPX_SASL_ALL, NULL);
    ck_assert_int_eq(smtpx_server_new(&x.s, x.scfg, &cbs, sizeof(cbs), &x), 0);
    ck_assert_int_eq(smtpx_client_new(&x.c, x.ccfg, &ccbs, sizeof(ccbs), &x),
                     0);
    ck_assert_int_eq(smtpx_server_start(x.s, NULL, 0), 0);
    ck_assert_int_eq(smtpx_client_start(x.c, 0), 0);
    ck_assert_int_eq(smtpx_client_ehlo(x.c, "c.test", NULL), 0);
    ck_assert_int_eq(smtpx_client_auth(x.c, &cr, NULL), 0);
    shuttle(&x, 0);
    ck_assert_str_eq(smtpx_client_ext(x.c, "AUTH"),
                     "PLAIN LOGIN OAUTHBEARER XOAUTH2");
    ck_assert_int_eq(x.auth_code, 504);
    teardown(&x);
}
END_TEST

START_TEST(test_auth_bad_args)
{
    smtpx_auth_creds cr = creds(0, "tim", PASSWORD, NULL);
    smtpx_auth_creds bad;
    side x;

    setup(&x, SMTPX_SASL_ALL, NULL);
    ck_assert_int_eq(smtpx_client_new(&x.c, x.ccfg, &ccbs, sizeof(ccbs), &x),
                     0);
    ck_assert_int_eq(smtpx_client_auth(x.c, NULL, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    bad = creds(0, NULL, PASSWORD, NULL);
    ck_assert_int_eq(smtpx_client_auth(x.c, &bad, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    bad = creds(0, "tim", NULL, NULL);
    ck_assert_int_eq(smtpx_client_auth(x.c, &bad, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    bad = creds(0, "ti\nm", PASSWORD, NULL);
    ck_assert_int_eq(smtpx_client_auth(x.c, &bad, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    bad = creds(1u << 20, "tim", PASSWORD, NULL);
    ck_assert_int_eq(smtpx_client_auth(x.c, &bad, NULL),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_client_auth(x.c, &cr, NULL), 0);
    /* One at a time. */
    ck_assert_int_eq(smtpx_client_auth(x.c, &cr, NULL),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_int_eq(smtpx_config_set_sasl(x.ccfg, SMTPX_SASL_PLAIN),
                     SMTPX_ERR_INVALID_STATE);
    ck_assert_str_eq(smtpx_sasl_name(SMTPX_SASL_SCRAM_SHA_256),
                     "SCRAM-SHA-256");
    ck_assert_uint_eq(smtpx_sasl_from_name("cram-md5"), SMTPX_SASL_CRAM_MD5);
    ck_assert_uint_eq(smtpx_sasl_from_name("GSSAPI"), 0);
    teardown(&x);
}
END_TEST

START_TEST(test_auth_nomem_sweep)
{
    /* Fail each allocation of a whole SCRAM session in turn, on both
     * sides: nothing crashes, nothing leaks. */
    failmalloc fm = {.fail_at = 0};
    smtpx_mem mem = failmalloc_mem(&fm);
    smtpx_auth_creds cr =
        creds(SMTPX_SASL_SCRAM_SHA_256, "tim", PASSWORD, NULL);
    long n;

    for (n = 0;; n++) {
        side x;

        fm.fail_at = n;
        fm.count = 0;
        fm.failures = 0;
        memset(&x, 0, sizeof(x));
        if (smtpx_config_new(&x.scfg, SMTPX_ROLE_SERVER, &mem) != 0)
            continue;
        smtpx_config_set_policy(x.scfg, SMTPX_POLICY_AUTH_CLEARTEXT, 1);
        smtpx_config_freeze(x.scfg);
        if (smtpx_config_new(&x.ccfg, SMTPX_ROLE_CLIENT, &mem) != 0) {
            smtpx_config_free(x.scfg);
            continue;
        }
        smtpx_config_freeze(x.ccfg);
        if (smtpx_server_new(&x.s, x.scfg, &scbs, sizeof(scbs), &x) == 0 &&
            smtpx_client_new(&x.c, x.ccfg, &ccbs, sizeof(ccbs), &x) == 0 &&
            smtpx_server_start(x.s, NULL, 0) == 0 &&
            smtpx_client_start(x.c, 0) == 0 &&
            smtpx_client_ehlo(x.c, "c.test", NULL) == 0 &&
            smtpx_client_auth(x.c, &cr, NULL) == 0) {
            int rounds;
            for (rounds = 0; rounds < 50; rounds++) {
                const uint8_t *p;
                size_t k;
                int moved = 0;
                while ((k = smtpx_client_out_peek(x.c, &p)) > 0) {
                    if (smtpx_server_want_read(x.s))
                        smtpx_server_recv(x.s, p, k, 0);
                    smtpx_client_out_drop(x.c, k, 0);
                    moved = 1;
                }
                while ((k = smtpx_server_out_peek(x.s, &p)) > 0) {
                    if (smtpx_client_want_read(x.c))
                        smtpx_client_recv(x.c, p, k, 0);
                    smtpx_server_out_drop(x.s, k, 0);
                    moved = 1;
                }
                if (!moved)
                    break;
            }
            if (fm.failures == 0)
                ck_assert_int_eq(x.auth_code, 235);
        }
        teardown(&x);
        ck_assert_int_eq(fm.live, 0);
        if (n > 0 && fm.failures == 0)
            break;
        ck_assert_int_lt(n, 10000);
    }
    ck_assert_int_gt(n, 20);
}
END_TEST

Suite *suite_auth(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("auth");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_auth_each_mech_good, 0, 6);
    tcase_add_loop_test(tc, test_auth_each_mech_bad, 0, 6);
    tcase_add_loop_test(tc, test_auth_unknown_user, 0, 2);
    tcase_add_test(tc, test_auth_strongest);
    tcase_add_test(tc, test_auth_lookup_paused);
    tcase_add_test(tc, test_auth_lookup_paused_refused);
    tcase_add_test(tc, test_auth_scram_server_without_key);
    tcase_add_test(tc, test_auth_scram_server_error);
    tcase_add_test(tc, test_auth_authzid_refused);
    tcase_add_test(tc, test_auth_not_offered_without_lookup);
    tcase_add_test(tc, test_auth_bad_args);
    tcase_add_test(tc, test_auth_nomem_sweep);
    suite_add_tcase(s, tc);
    return s;
}
