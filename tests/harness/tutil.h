/*
 * tutil - helpers shared by the transcript harnesses: a growing string,
 * transcript files as lines, escapes, feeding input in pieces and
 * comparing logs.
 */
#ifndef TESTS_TUTIL_H
#define TESTS_TUTIL_H

#include <stddef.h>
#include <stdint.h>

/* A growing NUL-terminated buffer; zero-initialise, release with free(p). */
typedef struct tu_buf {
    char *p;
    size_t len, cap;
} tu_buf;

void tu_add(tu_buf *b, const void *p, size_t n);
void tu_printf(tu_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The lines of a file without their line ends. */
typedef struct tu_lines {
    char **v;
    size_t n;
} tu_lines;

int tu_load(const char *path, tu_lines *f);
void tu_unload(tu_lines *f);

/* tu_unescape - escaped text (\r \n \t \s \\ \xHH) to bytes; out needs
 * strlen(in) octets.  Returns the number of octets. */
size_t tu_unescape(const char *in, char *out);

/* tu_unescape_add - unescape in and append it to b */
void tu_unescape_add(tu_buf *b, const char *in);

/* How input is fed (TR_WHOLE, TR_BYTES, TR_SPLIT, TR_RANDOM). */
typedef struct tu_feeder {
    int mode;
    size_t arg; /* split offset, or the seed for random pieces */
    size_t fed; /* octets fed so far */
    uint32_t rng;
    unsigned maxpiece; /* largest random piece */
} tu_feeder;

void tu_feeder_init(tu_feeder *f, int mode, size_t arg, uint32_t salt,
                    unsigned maxpiece);

/* tu_feed - hand p to recv in the pieces the mode asks for */
void tu_feed(tu_feeder *f, const char *p, size_t n,
             void (*recv)(void *ctx, const uint8_t *p, size_t n), void *ctx);

/* tu_logdiff - 0 if want equals got; else -1 with the first differing line
 * described in msg. */
int tu_logdiff(const char *want, const char *got, char *msg, size_t msgsize);

/* tu_limit_id, tu_timeout_id - a limit's or timeout's number from its name
 * ("MSG_SIZE"), as the library names it, or -1 */
int tu_limit_id(const char *name);
int tu_timeout_id(const char *name);

/* tu_upper - copy s upper-cased into out (cut to size) */
void tu_upper(char *out, size_t size, const char *s);

#endif
