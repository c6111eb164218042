/*
 * gmimebench - the same work as msgbench with GMime 3 (Debian's
 * libgmime-3.0): parse each file from a file stream and decode every
 * part's content into a null stream.  Built only for bench/msg.sh.
 *
 *   gmimebench ROUNDS FILE...
 *   gmimebench downgrade ROUNDS FILE
 *
 * Prints what msgbench prints.  "downgrade" parses FILE, makes it 7-bit
 * (g_mime_object_encode with GMIME_ENCODING_CONSTRAINT_7BIT) and writes
 * it into a null stream: the octets in, the best round's seconds, the
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

#include <gmime/gmime.h>

typedef struct counts {
    unsigned long long decoded, parts;
} counts;

static void each(GMimeObject *parent, GMimeObject *part, gpointer ud)
{
    counts *c = ud;
    (void)parent;
    if (GMIME_IS_MESSAGE_PART(part)) {
        GMimeMessage *m =
            g_mime_message_part_get_message((GMimeMessagePart *)part);
        if (m != NULL)
            g_mime_message_foreach(m, each, ud);
        return;
    }
    if (GMIME_IS_PART(part)) {
        GMimeDataWrapper *w = g_mime_part_get_content((GMimePart *)part);
        GMimeStream *null = g_mime_stream_null_new();
        if (w != NULL)
            g_mime_data_wrapper_write_to_stream(w, null);
        c->decoded += GMIME_STREAM_NULL(null)->written;
        c->parts++;
        g_object_unref(null);
    }
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

static int downgrade(int rounds, const char *path)
{
    unsigned long long in = 0, out = 0;
    double best = 1e30;
    long base = rss_now_kib();
    struct rusage ru;
    int r;

    for (r = 0; r < rounds; r++) {
        double t0 = now();
        int fd = open(path, O_RDONLY);
        GMimeStream *s, *null;
        GMimeParser *parser;
        GMimeMessage *m;

        if (fd < 0)
            return 1;
        in = (unsigned long long)lseek(fd, 0, SEEK_END);
        lseek(fd, 0, SEEK_SET);
        s = g_mime_stream_fs_new(fd);
        parser = g_mime_parser_new_with_stream(s);
        m = g_mime_parser_construct_message(parser, NULL);
        if (m == NULL)
            return 1;
        g_mime_object_encode(GMIME_OBJECT(m), GMIME_ENCODING_CONSTRAINT_7BIT);
        null = g_mime_stream_null_new();
        g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, null);
        out = GMIME_STREAM_NULL(null)->written;
        g_object_unref(null);
        g_object_unref(m);
        g_object_unref(parser);
        g_object_unref(s);
        if (now() - t0 < best)
            best = now() - t0;
    }
    getrusage(RUSAGE_SELF, &ru);
    printf("%llu %.6f %llu %ld %ld\n", in, best, out, base, ru.ru_maxrss);
    return 0;
}

int main(int argc, char **argv)
{
    counts c = {0, 0};
    unsigned long long total = 0;
    double best = 1e30;
    long base;
    int rounds, r, i;
    struct rusage ru;

    if (argc < 3)
        return 2;
    g_mime_init();
    if (strcmp(argv[1], "downgrade") == 0 && argc == 4)
        return downgrade(atoi(argv[2]), argv[3]);
    rounds = atoi(argv[1]);
    base = rss_now_kib();
    for (r = 0; r < rounds; r++) {
        double t0 = now();
        total = 0;
        c.decoded = c.parts = 0;
        for (i = 2; i < argc; i++) {
            int fd = open(argv[i], O_RDONLY);
            GMimeStream *s;
            GMimeParser *parser;
            GMimeMessage *m;
            if (fd < 0)
                return 1;
            total += (unsigned long long)lseek(fd, 0, SEEK_END);
            lseek(fd, 0, SEEK_SET);
            s = g_mime_stream_fs_new(fd);
            parser = g_mime_parser_new_with_stream(s);
            m = g_mime_parser_construct_message(parser, NULL);
            if (m == NULL)
                return 1;
            g_mime_message_foreach(m, each, &c);
            g_object_unref(m);
            g_object_unref(parser);
            g_object_unref(s); /* closes fd */
        }
        if (now() - t0 < best)
            best = now() - t0;
    }
    getrusage(RUSAGE_SELF, &ru);
    printf("%llu %.6f %llu %llu %ld %ld\n", total, best, c.decoded, c.parts,
           base, ru.ru_maxrss);
    return 0;
}
