/*
 * dotscan - the DATA scanner (smtpx__dot_scan) against a bare memchr walk
 * over the same buffer: the walk finds every line end with memchr and does
 * nothing else, the least any scanner that must see each line can do.
 *
 * The content is mail-like: lines of 50 to 78 printable octets and CRLF,
 * one in 50 starting with a stuffed dot, ending with <CRLF>.<CRLF>; it is
 * fed in pieces of 16 KiB, as the pump reads, and each run's best of
 * several rounds is kept.  Prints both rates in MB/s and their ratio.
 *
 * Usage: dotscan [MB] [ROUNDS]      (default 64 MB, 7 rounds)
 * Built by make bench-scale (it needs the library's internals).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/data.h"

#define PIECE 16384

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t emitted;

static int count(void *ctx, const uint8_t *p, size_t n)
{
    (void)ctx;
    (void)p;
    emitted += n;
    return 0;
}

static uint8_t *make(size_t size, size_t *len)
{
    uint8_t *b = malloc(size + 8);
    size_t n = 0;
    unsigned r = 12345;

    if (b == NULL)
        exit(1);
    while (n + 90 < size) {
        size_t k, line = 50 + (r >> 16) % 29;
        r = r * 1103515245u + 12345u;
        if ((r >> 16) % 50 == 0)
            b[n++] = '.', b[n++] = '.';
        for (k = 0; k < line; k++) {
            r = r * 1103515245u + 12345u;
            b[n++] = (uint8_t)(' ' + (r >> 16) % 94);
        }
        b[n++] = '\r';
        b[n++] = '\n';
    }
    memcpy(b + n, ".\r\n", 3);
    *len = n + 3;
    return b;
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? (size_t)atoi(argv[1]) : 64, len, i, lines = 0;
    int rounds = argc > 2 ? atoi(argv[2]) : 7, r, end = 0;
    uint8_t *buf = make(mb << 20, &len);
    double best_scan = 1e9, best_walk = 1e9, t;

    for (r = 0; r < rounds; r++) {
        smtpx__dot d;

        t = now_s();
        smtpx__dot_init(&d, 1000, 1);
        emitted = 0;
        for (i = 0; i < len && !end; i += PIECE) {
            size_t n = len - i < PIECE ? len - i : PIECE;
            smtpx__dot_scan(&d, buf + i, n, count, NULL, &end);
        }
        t = now_s() - t;
        if (!end || d.bare || d.long_line) {
            fprintf(stderr, "dotscan: the content was not scanned right\n");
            return 1;
        }
        end = 0;
        if (t < best_scan)
            best_scan = t;
        t = now_s();
        lines = 0;
        for (i = 0; i < len; i += PIECE) {
            size_t n = len - i < PIECE ? len - i : PIECE;
            const uint8_t *p = buf + i, *e = p + n, *q;
            while ((q = memchr(p, '\n', (size_t)(e - p))) != NULL) {
                lines++;
                p = q + 1;
            }
        }
        t = now_s() - t;
        if (t < best_walk)
            best_walk = t;
    }
    printf("scanner %.0f MB/s, memchr walk %.0f MB/s, ratio %.2f "
           "(%zu MB, %zu lines, %zu octets handed on)\n",
           (double)len / 1e6 / best_scan, (double)len / 1e6 / best_walk,
           best_walk / best_scan, len >> 20, lines, emitted);
    free(buf);
    return 0;
}
