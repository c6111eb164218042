/*
 * engine - the two cores alone: a client session and a server session in
 * one process, their bytes handed across in memory, no socket, no clock
 * but the one read for the result.  N transactions of SIZE octets go
 * through one session (EHLO once, pipelined MAIL, RCPT, DATA, the body,
 * the end), eight at a time; the server accepts and drops each message.
 *
 *   engine N SIZE
 *
 * Prints "<transactions/s> tx/s <MB/s> MB/s of content (N messages of
 * SIZE octets, <s> s)".  Run under callgrind with two values of N, the
 * difference of the instruction counts divided by the difference of N is
 * what one message costs both cores together.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/smtpx.h>
#include <libsmtpx/posix.h>

#define WINDOW 8

typedef struct bench {
    smtpx_config *ccfg;
    smtpx_client *c;
    char *body;
    size_t size;
    size_t queued, done, accepted;
    size_t n;
} bench;

static int queue_one(bench *b)
{
    smtpx_txn *t;

    if (smtpx_txn_new(&t, b->ccfg, "bench@example.test") != 0 ||
        smtpx_txn_add_rcpt(t, "sink@example.test", NULL) != 0 ||
        smtpx_txn_set_body(t, b->body, b->size) != 0 ||
        smtpx_client_send(b->c, t) != 0)
        return -1;
    b->queued++;
    return 0;
}

static void on_txn_done(smtpx_client *c, smtpx_txn *t, void *ud)
{
    bench *b = ud;
    size_t counts[SMTPX_RCPT_STATE_COUNT];

    (void)c;
    smtpx_txn_counts(t, counts);
    b->accepted += counts[SMTPX_RCPT_ACCEPTED];
    b->done++;
    smtpx_txn_free(t);
    if (b->queued < b->n)
        queue_one(b);
    else if (b->done == b->n)
        smtpx_client_quit(b->c, NULL);
}

/* move - what one side has written goes to the other; returns octets */
static size_t move_sc(smtpx_server *s, smtpx_client *c, uint64_t now)
{
    const uint8_t *p;
    size_t n = smtpx_server_out_peek(s, &p);

    if (n > 0) {
        smtpx_client_recv(c, p, n, now);
        smtpx_server_out_drop(s, n, now);
    }
    return n;
}

static size_t move_cs(smtpx_client *c, smtpx_server *s, uint64_t now)
{
    const uint8_t *p;
    size_t n = smtpx_client_out_peek(c, &p), take;

    /* As a socket would: no more than the server reads at a time. */
    take = n > 65536 ? 65536 : n;
    if (take > 0 && smtpx_server_want_read(s)) {
        smtpx_server_recv(s, p, take, now);
        smtpx_client_out_drop(c, take, now);
        return take;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const smtpx_client_callbacks ccbs = {.on_txn_done = on_txn_done};
    smtpx_config *scfg;
    smtpx_server *s;
    bench b;
    uint64_t t0, t1, now = 1000;
    size_t i, len = 0;

    if (argc != 3)
        return 2;
    memset(&b, 0, sizeof(b));
    b.n = strtoul(argv[1], NULL, 10);
    b.size = strtoul(argv[2], NULL, 10);
    b.body = malloc(b.size + 80);
    if (b.body == NULL || b.size < 64)
        return 2;
    len = (size_t)snprintf(b.body, b.size, "Subject: engine\r\n\r\n");
    while (len + 78 <= b.size) {
        memset(b.body + len, 'x', 76);
        memcpy(b.body + len + 76, "\r\n", 2);
        len += 78;
    }
    if (len + 3 <= b.size) { /* a shorter last line: exactly SIZE octets */
        memset(b.body + len, 'x', b.size - len - 2);
        memcpy(b.body + b.size - 2, "\r\n", 2);
        len = b.size;
    }
    b.size = len;
    if (smtpx_config_new(&scfg, SMTPX_ROLE_SERVER, NULL) != 0 ||
        smtpx_config_set_limit(scfg, SMTPX_LIMIT_MSGS, 0) != 0 ||
        smtpx_config_freeze(scfg) != 0 ||
        smtpx_config_new(&b.ccfg, SMTPX_ROLE_CLIENT, NULL) != 0 ||
        smtpx_config_freeze(b.ccfg) != 0 ||
        smtpx_server_new(&s, scfg, NULL, 0, NULL) != 0 ||
        smtpx_client_new(&b.c, b.ccfg, &ccbs, sizeof(ccbs), &b) != 0)
        return 1;
    t0 = smtpx_posix_now_ms();
    smtpx_server_start(s, NULL, now);
    smtpx_client_start(b.c, now);
    smtpx_client_ehlo(b.c, "engine.example.test", NULL);
    for (i = 0; i < WINDOW && i < b.n; i++)
        queue_one(&b);
    while (!smtpx_client_done(b.c) && !smtpx_server_done(s)) {
        size_t moved = move_sc(s, b.c, now) + move_cs(b.c, s, now);
        if (moved == 0)
            break;
    }
    t1 = smtpx_posix_now_ms();
    if (b.accepted != b.n) {
        fprintf(stderr, "engine: %zu of %zu accepted\n", b.accepted, b.n);
        return 1;
    }
    printf("%.0f tx/s %.0f MB/s of content (%zu messages of %zu octets, "
           "%.2f s)\n",
           (double)b.n * 1000.0 / (double)(t1 > t0 ? t1 - t0 : 1),
           (double)b.n * (double)b.size / 1e3 / (double)(t1 > t0 ? t1 - t0 : 1),
           b.n, b.size, (double)(t1 - t0) / 1000.0);
    smtpx_client_free(b.c);
    smtpx_server_free(s);
    smtpx_config_free(scfg);
    smtpx_config_free(b.ccfg);
    free(b.body);
    return 0;
}
