/*
 * sendbench - messages per second through the client engine.
 *
 *   sendbench HOST PORT N SIZE_KB [SESSIONS [bdat|data]]
 *
 * Opens SESSIONS connections (default 1) and sends N messages of SIZE_KB
 * KiB over them in all, each session queueing its transactions at once so
 * that they are pipelined when the server offers PIPELINING (RFC 2920:
 * MAIL, RCPT, DATA in one write; the next MAIL right after the final dot).
 * Where the server offers CHUNKING the content goes in BDAT chunks, and
 * nothing waits for a reply (RFC 3030); "data" makes the client prefer
 * DATA all the same.  Every session is driven by the client pump from one
 * poll() loop.  Prints "<msgs/s> msg/s (<N> msgs, <seconds> s, <cpu> us
 * CPU/msg)", the CPU being this process's (user and system); exits
 * non-zero unless every message was accepted.
 */
#include <poll.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/smtpx.h>
#include <libsmtpx/posix.h>

/* cpu_us - user and system CPU of this process so far, in microseconds */
static double cpu_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

typedef struct sess {
    int fd;
    smtpx_client *c;
    smtpx_transport *t;
    smtpx_txn **txns;
    size_t ntxn;
    int wait;
} sess;

int main(int argc, char **argv)
{
    smtpx_config *cfg;
    char *body;
    size_t n, kb, nsess, i, j, len, accepted = 0;
    sess *ss;
    uint64_t t0, t1;
    double c0;
    struct pollfd *pfd;
    int data;

    if (argc < 5) {
        fprintf(stderr, "usage: sendbench HOST PORT N SIZE_KB [SESSIONS "
                        "[bdat|data]]\n");
        return 2;
    }
    n = strtoul(argv[3], NULL, 10);
    kb = strtoul(argv[4], NULL, 10);
    nsess = argc > 5 ? strtoul(argv[5], NULL, 10) : 1;
    data = argc > 6 && strcmp(argv[6], "data") == 0;
    if (n == 0 || nsess == 0 || nsess > n)
        return 2;
    /* The message smtp-source sends: headers and 76-octet lines. */
    len = kb * 1024;
    body = malloc(len + 256);
    i = (size_t)snprintf(body, 256,
                         "From: <bench@example.test>\r\nTo: "
                         "<sink@example.test>\r\nSubject: bench\r\n\r\n");
    while (i + 78 <= len) {
        memset(body + i, 'x', 76);
        memcpy(body + i + 76, "\r\n", 2);
        i += 78;
    }
    len = i;
    if (smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL) != 0 ||
        smtpx_config_freeze(cfg) != 0)
        return 1;
    ss = calloc(nsess, sizeof(*ss));
    pfd = calloc(nsess, sizeof(*pfd));
    t0 = smtpx_posix_now_ms();
    c0 = cpu_us();
    for (i = 0; i < nsess; i++) {
        sess *s = &ss[i];
        smtpx_io io;
        size_t mine = n / nsess + (i < n % nsess);

        if (smtpx_posix_connect(argv[1], argv[2], 10000, &s->fd) != 0) {
            fprintf(stderr, "sendbench: cannot connect\n");
            return 1;
        }
        smtpx_posix_io(&io, s->fd);
        if (smtpx_transport_new(&s->t, &io, NULL) != 0 ||
            smtpx_client_new(&s->c, cfg, NULL, 0, NULL) != 0 ||
            smtpx_client_set_prefer_data(s->c, data) != 0 ||
            smtpx_client_start(s->c, t0) != 0 ||
            smtpx_client_ehlo(s->c, "sendbench.example.test", NULL) != 0)
            return 1;
        s->txns = calloc(mine, sizeof(smtpx_txn *));
        s->ntxn = mine;
        for (j = 0; j < mine; j++) {
            smtpx_txn *x;
            if (smtpx_txn_new(&x, cfg, "bench@example.test") != 0 ||
                smtpx_txn_add_rcpt(x, "sink@example.test", NULL) != 0 ||
                smtpx_txn_set_body(x, body, len) != 0 ||
                smtpx_client_send(s->c, x) != 0)
                return 1;
            s->txns[j] = x;
        }
        smtpx_client_quit(s->c, NULL);
    }
    for (;;) {
        size_t active = 0;
        for (i = 0; i < nsess; i++) {
            sess *s = &ss[i];
            pfd[i].fd = -1;
            pfd[i].events = 0;
            if (s->c == NULL)
                continue;
            s->wait = smtpx_client_pump(s->c, s->t, smtpx_posix_now_ms());
            if (s->wait <= 0) {
                for (j = 0; j < s->ntxn; j++) {
                    if (smtpx_txn_rcpt(s->txns[j], 0)->state ==
                        SMTPX_RCPT_ACCEPTED)
                        accepted++;
                    smtpx_txn_free(s->txns[j]);
                }
                smtpx_client_free(s->c);
                smtpx_transport_free(s->t);
                s->c = NULL;
                continue;
            }
            active++;
            pfd[i].fd = s->fd;
            pfd[i].events =
                (short)(((s->wait & SMTPX_WAIT_READ) ? POLLIN : 0) |
                        ((s->wait & SMTPX_WAIT_WRITE) ? POLLOUT : 0));
        }
        if (active == 0)
            break;
        if (poll(pfd, (nfds_t)nsess, 30000) <= 0) {
            fprintf(stderr, "sendbench: stalled\n");
            return 1;
        }
    }
    t1 = smtpx_posix_now_ms();
    printf("%.1f msg/s (%zu msgs, %.3f s, %.1f us CPU/msg)\n",
           (double)n * 1000.0 / (double)(t1 - t0 ? t1 - t0 : 1), n,
           (double)(t1 - t0) / 1000.0, (cpu_us() - c0) / (double)n);
    smtpx_config_free(cfg);
    free(ss);
    free(pfd);
    free(body);
    return accepted == n ? 0 : 1;
}
