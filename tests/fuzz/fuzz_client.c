/*
 * fuzz_client - a client session on arbitrary server input.
 *
 * The first octets choose the role (SMTP/LMTP), how the input is cut and
 * when the driver writes; the client has EHLO, two transactions (one with
 * a pull source) and QUIT queued.  Other bits of the third octet mark the
 * second body binary (BINARYMIME, so BDAT or a local failure), ask for DSN,
 * REQUIRETLS and MT-PRIORITY, or make the client prefer DATA where the
 * server offers CHUNKING: every framing the server's EHLO reply leads to.
 * Beyond the sanitizers it checks that recv consumes everything, that on_close
 * fires exactly once, and that when the client is freed every transaction is
 * done and every recipient has a final state.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/smtpx.h>

static int closes;

static void on_close(smtpx_client *c, int status, void *ud)
{
    (void)c;
    (void)status;
    (void)ud;
    closes++;
}

static smtpx_ssize reader(void *ctx, uint8_t *buf, size_t len)
{
    size_t *left = ctx, n = *left < len ? *left : len;

    memset(buf, '.', n);
    if (n > 2)
        buf[n / 2] = '\n';
    *left -= n;
    return (smtpx_ssize)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static smtpx_config *cfg[2];
    smtpx_client_callbacks cbs = {.on_close = on_close};
    smtpx_client *c;
    smtpx_txn *t[2];
    size_t pos = 3, piece, left = 3000, i, k;
    const uint8_t *p;
    uint64_t now = 0;

    if (cfg[0] == NULL) {
        smtpx_config_new(&cfg[0], SMTPX_ROLE_CLIENT, NULL);
        smtpx_config_new(&cfg[1], SMTPX_ROLE_LMTP_CLIENT, NULL);
        for (i = 0; i < 2; i++) {
            smtpx_config_set_limit(cfg[i], SMTPX_LIMIT_LINE, 128);
            smtpx_config_set_limit(cfg[i], SMTPX_LIMIT_OUTBUF, 1024);
            smtpx_config_freeze(cfg[i]);
        }
    }
    if (size < 3)
        return 0;
    closes = 0;
    if (smtpx_client_new(&c, cfg[data[0] & 1], &cbs, sizeof(cbs), NULL) != 0)
        return 0;
    smtpx_txn_new(&t[0], cfg[0], "a@b.example");
    smtpx_txn_add_rcpt(t[0], "c@d.example", NULL);
    smtpx_txn_add_rcpt(t[0], "e@d.example", "NOTIFY=NEVER");
    smtpx_txn_set_body(t[0], "Subject: x\n\n.dot\nbody\r\n", 24);
    smtpx_txn_new(&t[1], cfg[0], "");
    smtpx_txn_add_rcpt(t[1], "Postmaster", NULL);
    smtpx_txn_set_body_reader(t[1], reader, &left, 0);
    if (data[2] & 16)
        smtpx_txn_set_body_type(t[1], SMTPX_BODY_BINARYMIME, 0);
    if (data[2] & 32) {
        smtpx_txn_set_dsn(t[0], SMTPX_DSN_RET_HDRS, "env+id=1");
        smtpx_txn_set_rcpt_dsn(t[0], 0, SMTPX_DSN_NOTIFY_FAILURE,
                               "c@d.example");
        smtpx_txn_set_requiretls(t[1], 1);
        smtpx_txn_set_priority(t[1], -3);
    }
    if (data[2] & 64)
        smtpx_client_set_prefer_data(c, 1);
    if (data[2] & 128)
        smtpx_txn_set_prefer_data(t[0], 1);
    smtpx_client_start(c, now);
    smtpx_client_ehlo(c, "fuzz.test", NULL);
    if (data[2] & 4) {
        /* AUTH, with the mechanism the server's EHLO reply leads to: its
         * challenges are fuzzed too. */
        smtpx_auth_creds cr;
        memset(&cr, 0, sizeof(cr));
        cr.size = sizeof(cr);
        cr.user = "tim";
        if (data[2] & 8)
            cr.token = "token";
        else
            cr.password = "pencil";
        smtpx_client_auth(c, &cr, NULL);
    }
    smtpx_client_send(c, t[0]);
    smtpx_client_send(c, t[1]);
    smtpx_client_quit(c, NULL);
    piece = 1 + data[1] % 64;
    while (pos < size && !smtpx_client_done(c)) {
        size_t n = size - pos < piece ? size - pos : piece;
        smtpx_ssize r;

        if (smtpx_client_want_tls(c))
            smtpx_client_tls_started(c, NULL, now);
        r = smtpx_client_recv(c, data + pos, n, now);
        if (r >= 0 && (size_t)r != n)
            abort();
        if (r < 0 && !smtpx_is_fatal((int)r) && r != SMTPX_ERR_INVALID_STATE)
            abort();
        pos += n;
        if (data[2] & 1)
            while ((k = smtpx_client_out_peek(c, &p)) > 0)
                smtpx_client_out_drop(c, k, now);
        now += 1000 * (data[pos % size] % 8);
        smtpx_client_expire(c, now);
    }
    if (data[2] & 2)
        smtpx_client_eof(c);
    smtpx_client_free(c);
    if (closes != 1)
        abort();
    for (i = 0; i < 2; i++) {
        if (!smtpx_txn_done(t[i]))
            abort();
        for (k = 0; k < smtpx_txn_rcpt_count(t[i]); k++)
            if (smtpx_txn_rcpt(t[i], k)->state == SMTPX_RCPT_PENDING)
                abort();
        smtpx_txn_free(t[i]);
    }
    return 0;
}
