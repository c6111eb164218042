/*
 * msgbench - parse messages with libsmtpx's streaming parser and decode
 * every part (the work an application that reads attachments does), for
 * bench/msg.sh.
 *
 *   msgbench ROUNDS FILE...
 *
 * Each file is read in 64 KiB pieces and fed to the parser, which decodes
 * each part's content (base64, quoted-printable) into a callback that
 * counts it.  Prints: octets parsed per round, the best round's seconds,
 * the decoded octets and parts of one round, the resident memory before
 * parsing and at its peak (KiB).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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
