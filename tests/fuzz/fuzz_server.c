/*
 * fuzz_server - a whole server session on arbitrary client input.
 *
 * The first octets choose the policies and limits and how the input is cut;
 * the application answers from the input too (accept, refuse, pause and
 * reply later, pause content and resume), so pauses, held input and the
 * error paths are all reached.  AUTH is offered in clear text with every
 * mechanism (the lookup may pause too), so the SASL parsers are reached.
 * Invariants checked beyond the sanitizers:
 * recv consumes everything or fails fatally, output is whole reply lines,
 * on_close fires exactly once, every accepted MAIL gets one on_txn_end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/smtpx.h>

typedef struct app {
    const uint8_t *ctl;
    size_t nctl, pos;
    int closes, txns_open, paused, chunk_paused, lookup_paused;
} app;

static uint8_t next(app *a)
{
    return a->nctl ? a->ctl[a->pos++ % a->nctl] : 0;
}

static int answer(app *a, smtpx_reply *r)
{
    uint8_t b = next(a);

    if (b % 7 == 0) {
        a->paused = 1;
        return SMTPX_ERR_PAUSE;
    }
    if (b % 11 == 0 && r != NULL) {
        r->code = b % 2 ? 550 : 451;
        r->text = "refused\nby the fuzzer";
    }
    return 0;
}

static int on_mail(smtpx_server *s, const smtpx_mail_info *m, smtpx_reply *r,
                   void *ud)
{
    (void)s;
    if (m->from == NULL || (m->domain == NULL) != (m->from[0] == '\0'))
        abort();
    return answer(ud, r);
}

static int on_rcpt(smtpx_server *s, const smtpx_rcpt_info *ri, void **rd,
                   smtpx_reply *r, void *ud)
{
    (void)s;
    (void)ri;
    *rd = ud;
    return answer(ud, r);
}

static int on_helo(smtpx_server *s, int kind, const char *name, smtpx_reply *r,
                   void *ud)
{
    (void)s;
    (void)kind;
    (void)name;
    return answer(ud, r);
}

static int on_data_begin(smtpx_server *s, const smtpx_data_info *di,
                         smtpx_reply *r, void *ud)
{
    (void)s;
    (void)di;
    return answer(ud, r);
}

static int on_chunk(smtpx_server *s, const uint8_t *p, size_t n, void *ud)
{
    app *a = ud;
    (void)s;
    if (n == 0 || p == NULL)
        abort();
    if (next(a) % 5 == 0) {
        a->chunk_paused = 1;
        return SMTPX_ERR_PAUSE;
    }
    return 0;
}

static int on_data_end(smtpx_server *s, smtpx_reply *r, void *ud)
{
    (void)s;
    return answer(ud, r);
}

static void fill_secret(smtpx_auth_secret *sec, unsigned mech)
{
    static const uint8_t pw[] = "pencil";

    sec->found = 1;
    if (mech == SMTPX_SASL_CRAM_MD5) {
        sec->password = pw;
        sec->password_len = 6;
        return;
    }
    sec->salt = pw;
    sec->salt_len = 6;
    sec->iterations = 1; /* cheap: this is about parsing */
    memset(sec->stored_key, 0x5a, 32);
    memset(sec->server_key, 0xa5, 32);
}

static int on_auth(smtpx_server *s, const smtpx_auth_info *ai, smtpx_reply *r,
                   void *ud)
{
    app *a = ud;
    (void)s;
    if (ai->authcid == NULL || ai->authzid == NULL || ai->mech_name == NULL)
        abort();
    if (next(a) % 3 == 0)
        r->code = 235;
    return answer(ud, r);
}

static int on_auth_lookup(smtpx_server *s, const smtpx_auth_info *ai,
                          smtpx_auth_secret *sec, void *ud)
{
    app *a = ud;
    uint8_t b = next(a);
    (void)s;
    if (ai->secret != NULL)
        abort();
    if (b % 5 == 0) {
        a->lookup_paused = 1;
        return SMTPX_ERR_PAUSE;
    }
    if (b % 2 == 0)
        fill_secret(sec, ai->mech);
    return 0;
}

static int fuzz_random(uint8_t *buf, size_t len, void *ud)
{
    (void)ud;
    memset(buf, 'r', len);
    return 0;
}

static int on_mail_accepted;

static void on_txn_end(smtpx_server *s, int reason, void *ud)
{
    app *a = ud;
    (void)s;
    (void)reason;
    a->txns_open--;
}

static void on_close(smtpx_server *s, int status, void *ud)
{
    (void)s;
    (void)status;
    ((app *)ud)->closes++;
}

static const smtpx_server_callbacks cbs = {
    .on_helo = on_helo,
    .on_mail = on_mail,
    .on_rcpt = on_rcpt,
    .on_data_begin = on_data_begin,
    .on_data_chunk = on_chunk,
    .on_data_end = on_data_end,
    .on_txn_end = on_txn_end,
    .on_close = on_close,
    .on_auth = on_auth,
    .on_auth_lookup = on_auth_lookup,
};

static void drain(smtpx_server *s)
{
    const uint8_t *p;
    size_t n;

    while ((n = smtpx_server_out_peek(s, &p)) > 0) {
        /* Output is always whole lines. */
        if (n < 2 || p[n - 2] != '\r' || p[n - 1] != '\n')
            abort();
        smtpx_server_out_drop(s, n, 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static smtpx_config *cfg[4];
    smtpx_server *s;
    smtpx_peer peer = {"192.0.2.1", 1, "192.0.2.2", 25, NULL};
    app a;
    size_t pos = 4, piece;
    uint64_t now = 0;
    int i;

    if (cfg[0] == NULL) {
        for (i = 0; i < 4; i++) {
            smtpx_config_new(&cfg[i],
                             i & 2 ? SMTPX_ROLE_LMTP_SERVER : SMTPX_ROLE_SERVER,
                             NULL);
            smtpx_config_set_extensions(cfg[i], SMTPX_EXT_DEFAULT |
                                                    SMTPX_EXT_DSN |
                                                    SMTPX_EXT_BINARYMIME);
            smtpx_config_set_policy(cfg[i], SMTPX_POLICY_BARE_LF, i & 1);
            smtpx_config_set_limit(cfg[i], SMTPX_LIMIT_LINE, 128);
            smtpx_config_set_limit(cfg[i], SMTPX_LIMIT_TEXT_LINE, 100);
            smtpx_config_set_limit(cfg[i], SMTPX_LIMIT_MSG_SIZE, 300);
            smtpx_config_set_limit(cfg[i], SMTPX_LIMIT_RCPTS, 3);
            smtpx_config_set_limit(cfg[i], SMTPX_LIMIT_OUTBUF, 1024);
            smtpx_config_set_limit(cfg[i], SMTPX_LIMIT_HOLDBUF, 4096);
            smtpx_config_set_limit(cfg[i], SMTPX_LIMIT_AUTH_LINE, 256);
            smtpx_config_set_sasl(cfg[i], SMTPX_SASL_ALL);
            smtpx_config_set_policy(cfg[i], SMTPX_POLICY_AUTH_CLEARTEXT, 1);
            smtpx_config_set_random(cfg[i], fuzz_random, NULL);
            smtpx_config_freeze(cfg[i]);
        }
    }
    if (size < 4)
        return 0;
    memset(&a, 0, sizeof(a));
    a.ctl = data;
    a.nctl = 4;
    if (smtpx_server_new(&s, cfg[data[0] & 3], &cbs, sizeof(cbs), &a) != 0)
        return 0;
    smtpx_server_set_tls_available(s, data[1] & 1);
    smtpx_server_start(s, &peer, now);
    piece = 1 + data[2] % 64;
    while (pos < size && !smtpx_server_done(s)) {
        size_t n = size - pos < piece ? size - pos : piece;
        smtpx_ssize r;

        if (smtpx_server_want_tls(s))
            smtpx_server_tls_started(s, NULL, now);
        r = smtpx_server_recv(s, data + pos, n, now);
        if (r < 0 && !smtpx_is_fatal((int)r) && r != SMTPX_ERR_INVALID_STATE)
            abort();
        if (r >= 0 && (size_t)r != n)
            abort();
        pos += n;
        if (data[3] & 1)
            drain(s);
        if (a.paused && smtpx_server_want_read(s) == 0) {
            smtpx_reply rep = {250, {2, 0, 0}, "later"};
            a.paused = 0;
            smtpx_server_reply(s, &rep, now);
        }
        if (a.chunk_paused) {
            a.chunk_paused = 0;
            smtpx_server_resume(s, now);
        }
        if (a.lookup_paused) {
            smtpx_auth_secret sec;
            memset(&sec, 0, sizeof(sec));
            a.lookup_paused = 0;
            if (data[pos % size] & 1) {
                fill_secret(&sec, SMTPX_SASL_SCRAM_SHA_256);
                smtpx_server_auth_secret(s, &sec);
            }
            smtpx_server_resume(s, now);
        }
        now += 1000 * (data[pos % size] % 4);
        smtpx_server_expire(s, now);
    }
    drain(s);
    if (data[3] & 2)
        smtpx_server_shutdown(s, data[3] & 4 ? SMTPX_SHUTDOWN_NOW
                                             : SMTPX_SHUTDOWN_DRAIN);
    else
        smtpx_server_eof(s);
    drain(s);
    smtpx_server_free(s);
    if (a.closes != 1)
        abort();
    (void)on_mail_accepted;
    return 0;
}
