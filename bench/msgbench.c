/*
 * msgbench - parse messages with libsmtpx's streaming parser and decode
 * every part (the work an application that reads attachments does), for
 * bench/msg.sh.
 *
 *   msgbench ROUNDS FILE...
 *   msgbench stream MIB
 *   msgbench downgrade ROUNDS FILE
 *
 * Each file is read in 64 KiB pieces and fed to the parser, which decodes
 * each part's content (base64, quoted-printable) into a callback that
 * counts it.  Prints: octets parsed per round, the best round's seconds,
 * the decoded octets and parts of one round, the resident memory before
 * parsing and at its peak (KiB).
 *
 * "stream" parses a message with one base64 attachment of MIB MiB that is
 * made as it is fed (so nothing of it is ever held), through an allocator
 * that counts: it prints the octets fed, the seconds, the decoded octets,
 * and the parser's peak heap in octets.
 *
 * "downgrade" makes FILE 7-bit (smtpx_msg_downgrade: a scan, then the
 * converted message read out), as a relay does for a server without
 * 8BITMIME: it prints the octets in, the best round's seconds, the
 * octets out, and the resident memory before and at its peak (KiB).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <libsmtpx/msg.h>

typedef struct counts {
    unsigned long long decoded, parts;
} counts;

static int on_data(smtpx_msg_parser *p, const smtpx_part *part,
                   const uint8_t *d, size_t n, void *ud)
{
    counts *c = ud;
    (void)p;
    (void)part;
    (void)d;
    c->decoded += n;
    return 0;
}

static int on_end(smtpx_msg_parser *p, const smtpx_part *part, void *ud)
{
    counts *c = ud;
    (void)p;
    if (!smtpx_part_is_container(part))
        c->parts++;
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_now_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A counting allocator: the parser's own memory. */
typedef struct heap {
    size_t now, peak;
} heap;

static void *h_malloc(size_t n, void *ud)
{
    heap *h = ud;
    size_t *p = malloc(n + 2 * sizeof(size_t));
    if (p == NULL)
        return NULL;
    p[0] = n;
    h->now += n;
    if (h->now > h->peak)
        h->peak = h->now;
    return p + 2;
}

static void h_free(void *ptr, void *ud)
{
    heap *h = ud;
    size_t *p = ptr;
    if (p != NULL) {
        h->now -= p[-2];
        free(p - 2);
    }
}

static void *h_calloc(size_t a, size_t b, void *ud)
{
    void *p = h_malloc(a * b, ud);
    if (p != NULL)
        memset(p, 0, a * b);
    return p;
}

static void *h_realloc(void *ptr, size_t n, void *ud)
{
    size_t *old = ptr;
    void *p;
    if (ptr == NULL)
        return h_malloc(n, ud);
    p = h_malloc(n, ud);
    if (p != NULL) {
        memcpy(p, ptr, old[-2] < n ? old[-2] : n);
        h_free(ptr, ud);
    }
    return p;
}

static int stream(unsigned long mib)
{
    static const char head[] =
        "From: camera@example.org\r\nSubject: one big picture\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\n"
        "--=_b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        "--=_b\r\nContent-Type: image/jpeg\r\n"
        "Content-Disposition: attachment; filename=big.jpg\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n";
    static const char tail[] = "\r\n--=_b--\r\n";
    static char chunk[78 * 840];
    heap h = {0, 0};
    smtpx_mem mem = {&h, h_malloc, h_free, h_calloc, h_realloc};
    smtpx_msg_callbacks cbs = {0};
    smtpx_msg_parser *p;
    counts c = {0, 0};
    unsigned long long fed = 0, want = (unsigned long long)mib << 20, lines;
    size_t i;
    double t0;

    for (i = 0; i < sizeof(chunk); i++)
        chunk[i] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
            "+/"[(i * 7 + i / 78) % 64];
    for (i = 0; i < 840; i++) {
        chunk[i * 78 + 76] = '\r';
        chunk[i * 78 + 77] = '\n';
    }
    cbs.on_part_data = on_data;
    cbs.on_part_end = on_end;
    if (smtpx_msg_parser_new(&p, &mem, 0, &cbs, sizeof(cbs), &c) != 0)
        return 1;
    t0 = now();
    smtpx_msg_parser_feed(p, head, sizeof(head) - 1);
    /* 57 decoded octets per line of 78. */
    for (lines = 0; lines * 57 < want; lines += 840) {
        if (smtpx_msg_parser_feed(p, chunk, sizeof(chunk)) != 0)
            return 1;
        fed += sizeof(chunk);
    }
    smtpx_msg_parser_feed(p, tail, sizeof(tail) - 1);
    if (smtpx_msg_parser_end(p) != 0)
        return 1;
    printf("%llu %.6f %llu %zu\n", fed, now() - t0, c.decoded, h.peak);
    smtpx_msg_parser_free(p);
    return h.now != 0;
}

static smtpx_ssize fd_read(void *ctx, uint8_t *buf, size_t len)
{
    ssize_t n = read(*(int *)ctx, buf, len);

    return n < 0 ? SMTPX_ERR_IO : n;
}

static int downgrade(int rounds, const char *path)
{
    static uint8_t buf[65536];
    unsigned long long in = 0, out = 0;
    double best = 1e30;
    long base = rss_now_kib();
    struct rusage ru;
    int r;

    for (r = 0; r < rounds; r++) {
        smtpx_msg_downgrade *d;
        double t0 = now();
        int fd = open(path, O_RDONLY);
        smtpx_ssize n;

        if (fd < 0 || smtpx_msg_downgrade_new(&d, NULL) != 0)
            return 1;
        in = out = 0;
        while ((n = fd_read(&fd, buf, sizeof(buf))) > 0) {
            in += (unsigned long long)n;
            if (smtpx_msg_downgrade_scan(d, buf, (size_t)n) != 0)
                return 1;
        }
        if (n < 0 || smtpx_msg_downgrade_scan_end(d, NULL, NULL) != 0 ||
            lseek(fd, 0, SEEK_SET) != 0 ||
            smtpx_msg_downgrade_source(d, fd_read, &fd) != 0)
            return 1;
        while ((n = smtpx_msg_downgrade_read(d, buf, sizeof(buf))) > 0)
            out += (unsigned long long)n;
        if (n < 0)
            return 1;
        smtpx_msg_downgrade_free(d);
        close(fd);
        if (now() - t0 < best)
            best = now() - t0;
    }
    getrusage(RUSAGE_SELF, &ru);
    printf("%llu %.6f %llu %ld %ld\n", in, best, out, base, ru.ru_maxrss);
    return 0;
}

int main(int argc, char **argv)
{
    static unsigned char buf[65536];
    smtpx_msg_callbacks cbs = {0};
    smtpx_msg_parser *p;
    counts c = {0, 0};
    unsigned long long total = 0;
    double best = 1e30;
    long base;
    int rounds, r, i;
    struct rusage ru;

    if (argc < 3)
        return 2;
    if (strcmp(argv[1], "stream") == 0)
        return stream(strtoul(argv[2], NULL, 10));
    if (strcmp(argv[1], "downgrade") == 0 && argc == 4)
        return downgrade(atoi(argv[2]), argv[3]);
    rounds = atoi(argv[1]);
    cbs.on_part_data = on_data;
    cbs.on_part_end = on_end;
    base = rss_now_kib();
    if (smtpx_msg_parser_new(&p, NULL, 0, &cbs, sizeof(cbs), &c) != 0)
        return 1;
    for (r = 0; r < rounds; r++) {
        double t0 = now();
        total = 0;
        c.decoded = c.parts = 0;
        for (i = 2; i < argc; i++) {
            int fd = open(argv[i], O_RDONLY);
            ssize_t n;
            if (fd < 0)
                return 1;
            smtpx_msg_parser_reset(p);
            while ((n = read(fd, buf, sizeof(buf))) > 0) {
                total += (unsigned long long)n;
                if (smtpx_msg_parser_feed(p, buf, (size_t)n) != 0)
                    return 1;
            }
            if (smtpx_msg_parser_end(p) != 0)
                return 1;
            close(fd);
        }
        if (now() - t0 < best)
            best = now() - t0;
    }
    smtpx_msg_parser_free(p);
    getrusage(RUSAGE_SELF, &ru);
    printf("%llu %.6f %llu %llu %ld %ld\n", total, best, c.decoded, c.parts,
           base, ru.ru_maxrss);
    return 0;
}
