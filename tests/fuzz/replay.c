/*
 * replay - run a fuzz target's LLVMFuzzerTestOneInput over files, without
 * libFuzzer, so that make check (and make check-san) replays every seed
 * and every input that once crashed (tests/fuzz/regress/TARGET/) through
 * the same entry point the fuzzer uses.  Linked once per target.
 *
 *   replay_TARGET FILE|DIR...
 *
 * A directory is read one level deep; files whose names start with '.' are
 * skipped.  A crash, an abort() from the target's own checks or a
 * sanitizer report ends the run with a failure, naming the input first.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Present in sanitizer builds only: called before a report ends the run. */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static long inputs;
static const char *current; /* the input being run, for the failure note */

/* replay_blame - name the input that failed (async-signal-safe) */
static void replay_blame(void)
{
    static const char pre[] = "replay: failed on input ";
    ssize_t w;

    if (current == NULL)
        return;
    w = write(2, pre, sizeof(pre) - 1);
    w = write(2, current, strlen(current));
    w = write(2, "\n", 1);
    (void)w;
}

static void replay_signal(int sig)
{
    replay_blame();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (fp == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            uint8_t *p;
            cap = cap ? cap * 2 : 4096;
            p = realloc(buf, cap);
            if (p == NULL) {
                fclose(fp);
                free(buf);
                return -1;
            }
            buf = p;
        }
        n = fread(buf + len, 1, cap - len, fp);
        if (n == 0)
            break;
        len += n;
    }
    fclose(fp);
    /* An exact-size copy, so that reading past the input is caught by
     * the sanitizers as it is under libFuzzer. */
    {
        uint8_t *exact = malloc(len ? len : 1);
        if (exact == NULL) {
            free(buf);
            return -1;
        }
        if (len > 0)
            memcpy(exact, buf, len);
        free(buf);
        current = path;
        LLVMFuzzerTestOneInput(exact, len);
        current = NULL;
        free(exact);
    }
    inputs++;
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0, i;
    int rc = 0;

    if (d == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **p;
            cap = cap ? cap * 2 : 64;
            p = realloc(names, cap * sizeof(*names));
            if (p == NULL) {
                rc = -1;
                break;
            }
            names = p;
        }
        names[n] = malloc(strlen(path) + strlen(e->d_name) + 2);
        if (names[n] == NULL) {
            rc = -1;
            break;
        }
        sprintf(names[n], "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), name_cmp);
    for (i = 0; i < n; i++) {
        if (rc == 0 && replay_file(names[i]) != 0)
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    int i;

    if (__sanitizer_set_death_callback != NULL)
        __sanitizer_set_death_callback(replay_blame);
    signal(SIGABRT, replay_signal);
    signal(SIGSEGV, replay_signal);
    signal(SIGBUS, replay_signal);
    for (i = 1; i < argc; i++) {
        struct stat st;

        if (stat(argv[i], &st) != 0) {
            /* A target may have no regression inputs yet. */
            if (errno == ENOENT)
                continue;
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if ((S_ISDIR(st.st_mode) ? replay_dir(argv[i])
                                 : replay_file(argv[i])) != 0)
            return 1;
    }
    if (inputs == 0) {
        fprintf(stderr, "replay: no input\n");
        return 1;
    }
    printf("%s: %ld inputs replayed\n", argv[0], inputs);
    return 0;
}
