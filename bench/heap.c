/*
 * heap - heap bytes the library holds per idle server session.
 *
 * N sessions are driven in memory (no sockets) through a greeting, EHLO and
 * one whole message, then left idle; a counting allocator reports what they
 * hold.  The driver's own stack read buffer is not counted: an idle session
 * holds no buffer, which is the point of measuring.
 *
 * Usage: heap [N]     (default 1000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/smtpx.h>

static long live;

static void *c_malloc(size_t n, void *ud)
{
    size_t *p = malloc(n + 16);
    (void)ud;
    if (p == NULL)
        return NULL;
    p[0] = n;
    live += (long)n;
    return (char *)p + 16;
}

static void c_free(void *ptr, void *ud)
{
    (void)ud;
    if (ptr == NULL)
        return;
    live -= (long)*(size_t *)((char *)ptr - 16);
    free((char *)ptr - 16);
}

static void *c_calloc(size_t a, size_t b, void *ud)
{
    void *p = c_malloc(a * b, ud);
    if (p != NULL)
        memset(p, 0, a * b);
    return p;
}

static void *c_realloc(void *ptr, size_t n, void *ud)
{
    void *q = c_malloc(n, ud);
    if (q != NULL && ptr != NULL) {
        size_t old = *(size_t *)((char *)ptr - 16);
        memcpy(q, ptr, old < n ? old : n);
        c_free(ptr, ud);
    }
    return q;
}

int main(int argc, char **argv)
{
    static const char in[] =
        "EHLO client.example.org\r\nMAIL FROM:<alice@example.org>\r\n"
        "RCPT TO:<bob@example.net>\r\nDATA\r\n"
        "Subject: hello\r\n\r\nbody\r\n.\r\n";
    smtpx_mem mem = {NULL, c_malloc, c_free, c_calloc, c_realloc};
    smtpx_config *cfg;
    smtpx_server **s;
    smtpx_peer peer = {"192.0.2.10", 40000, "192.0.2.1", 25, NULL};
    long n = argc > 1 ? atol(argv[1]) : 1000, i, base;
    const uint8_t *p;

    if (n <= 0 || smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, &mem) != 0 ||
        smtpx_config_set_hostname(cfg, "mx.example.org") != 0 ||
        smtpx_config_freeze(cfg) != 0)
        return 1;
    s = calloc((size_t)n, sizeof(*s));
    base = live;
    for (i = 0; i < n; i++) {
        size_t k;
        if (smtpx_server_new(&s[i], cfg, NULL, 0, NULL) != 0 ||
            smtpx_server_start(s[i], &peer, 0) != 0 ||
            smtpx_server_recv(s[i], (const uint8_t *)in, sizeof(in) - 1, 0) !=
                (smtpx_ssize)sizeof(in) - 1)
            return 1;
        while ((k = smtpx_server_out_peek(s[i], &p)) > 0)
            smtpx_server_out_drop(s[i], k, 0);
    }
    printf("heap per idle session: %.0f bytes (%ld sessions, after EHLO and "
           "one message)\n",
           (double)(live - base) / (double)n, n);
    for (i = 0; i < n; i++)
        smtpx_server_free(s[i]);
    free(s);
    smtpx_config_free(cfg);
    return live == 0 ? 0 : 1;
}
