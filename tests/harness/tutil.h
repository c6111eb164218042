/*
 * tutil - helpers for the transcript harness: a growing string, files as
 * lines, escapes, comparing logs, names to numbers.
 */
#ifndef TESTS_TUTIL_H
#define TESTS_TUTIL_H

#include <stdarg.h>
#include <stddef.h>

/* A growing NUL-terminated buffer; zero-initialise, release with free(p). */
typedef struct tu_buf {
    char *p;
    size_t len, cap;
} tu_buf;

void tu_add(tu_buf *b, const void *p, size_t n);
void tu_printf(tu_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void tu_vprintf(tu_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

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

/* tu_escape_add - append p[0..n) to b with CR, LF, tab, backslash and
 * octets outside printable ASCII as escapes (the inverse of tu_unescape) */
void tu_escape_add(tu_buf *b, const void *p, size_t n);

/* tu_logdiff - 0 if want equals got; else -1 with the first differing line
 * described in msg. */
int tu_logdiff(const char *want, const char *got, char *msg, size_t msgsize);

/* The tables of names tu_id looks in. */
enum { TU_LIMIT, TU_TIMEOUT, TU_POLICY };

/* tu_id - the number of a limit, timeout or policy (table TU_*) from its
 * name ("MSG_SIZE"), as the library names it, or -1 */
int tu_id(int table, const char *name);

/* tu_upper - copy s upper-cased into out (cut to size) */
void tu_upper(char *out, size_t size, const char *s);

#endif
