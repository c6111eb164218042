/*
 * tlsbench - TLS sessions per second: each session is a new connection,
 * STARTTLS with the certificate and name verified, EHLO again, one 1 KiB
 * message, QUIT (smtpx_posix_sendmail), THREADS of them at a time.
 *
 *   tlsbench HOST PORT N THREADS CAFILE NAME [encrypt] [resume]
 *
 * With "encrypt" the certificate is not verified (SMTPX_TLS_ENCRYPT), so
 * that the client's own cost (mbedTLS 2.28 verifies an ECDSA P-256
 * signature in about 5 ms) does not hide the server's.  With "resume" the
 * client keeps its session and offers it again (session tickets): after
 * the first, every handshake is a resumed one; without it every handshake
 * is full.
 * Prints "<sessions/s> sessions/s (<N> sessions, <seconds> s)"; exits
 * non-zero unless every message was accepted.  The TLS configuration is one
 * smtpx_mbedtls shared by every thread, as an application would share it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/smtpx.h>
#include <libsmtpx/posix.h>
#include <libsmtpx/tls_mbedtls.h>

typedef struct job {
    const char *host, *port, *name;
    smtpx_config *cfg;
    smtpx_mbedtls *tls;
    const char *body;
    size_t len;
    int level;
    size_t n; /* sessions for this thread */
    size_t ok;
} job;

static void *run(void *arg)
{
    job *j = arg;
    size_t i;

    for (i = 0; i < j->n; i++) {
        smtpx_sendmail_opts o;
        smtpx_txn *t;
        size_t counts[SMTPX_RCPT_STATE_COUNT];

        if (smtpx_txn_new(&t, j->cfg, "bench@example.test") != 0)
            break;
        smtpx_txn_add_rcpt(t, "sink@example.test", NULL);
        smtpx_txn_set_body(t, j->body, j->len);
        memset(&o, 0, sizeof(o));
        o.size = sizeof(o);
        o.host = j->host;
        o.port = j->port;
        o.helo = "tlsbench.example.test";
        o.tls = smtpx_mbedtls_ops();
        o.tls_cfg = j->tls;
        o.tls_level = j->level;
        o.tls_name = j->name;
        smtpx_posix_sendmail(j->cfg, &o, t);
        smtpx_txn_counts(t, counts);
        j->ok += counts[SMTPX_RCPT_ACCEPTED];
        smtpx_txn_free(t);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    smtpx_config *cfg;
    smtpx_mbedtls *tls;
    pthread_t th[64];
    job jobs[64];
    char body[2048];
    size_t n, nth, i, len, ok = 0;
    uint64_t t0, t1;

    int encrypt = 0, resume = 0, a;

    if (argc < 7 || argc > 9) {
        fprintf(stderr, "usage: tlsbench HOST PORT N THREADS CAFILE NAME "
                        "[encrypt] [resume]\n");
        return 2;
    }
    for (a = 7; a < argc; a++) {
        if (strcmp(argv[a], "encrypt") == 0)
            encrypt = 1;
        else if (strcmp(argv[a], "resume") == 0)
            resume = 1;
        else
            return 2;
    }
    n = strtoul(argv[3], NULL, 10);
    nth = strtoul(argv[4], NULL, 10);
    if (n == 0 || nth == 0 || nth > 64 || nth > n)
        return 2;
    len = (size_t)snprintf(body, sizeof(body),
                           "From: <bench@example.test>\r\nTo: "
                           "<sink@example.test>\r\nSubject: bench\r\n\r\n");
    while (len + 78 <= 1024) {
        memset(body + len, 'x', 76);
        memcpy(body + len + 76, "\r\n", 2);
        len += 78;
    }
    if (smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL) != 0 ||
        smtpx_config_freeze(cfg) != 0 || smtpx_mbedtls_new(&tls, 0) != 0 ||
        smtpx_mbedtls_add_ca_file(tls, argv[5]) != 0 ||
        (!resume && smtpx_mbedtls_set_resumption(tls, 0, 0) != 0)) {
        fprintf(stderr, "tlsbench: set-up failed\n");
        return 1;
    }
    t0 = smtpx_posix_now_ms();
    for (i = 0; i < nth; i++) {
        jobs[i].host = argv[1];
        jobs[i].port = argv[2];
        jobs[i].name = argv[6];
        jobs[i].cfg = cfg;
        jobs[i].tls = tls;
        jobs[i].body = body;
        jobs[i].len = len;
        jobs[i].n = n / nth + (i < n % nth);
        jobs[i].ok = 0;
        jobs[i].level = encrypt ? SMTPX_TLS_ENCRYPT : SMTPX_TLS_VERIFY;
        pthread_create(&th[i], NULL, run, &jobs[i]);
    }
    for (i = 0; i < nth; i++) {
        pthread_join(th[i], NULL);
        ok += jobs[i].ok;
    }
    t1 = smtpx_posix_now_ms();
    printf("%.0f sessions/s (%zu sessions, %.2f s)\n",
           (double)n * 1000.0 / (double)(t1 - t0 ? t1 - t0 : 1), n,
           (double)(t1 - t0) / 1000.0);
    smtpx_mbedtls_free(tls);
    smtpx_config_free(cfg);
    if (ok != n) {
        fprintf(stderr, "tlsbench: %zu of %zu accepted\n", ok, n);
        return 1;
    }
    return 0;
}
