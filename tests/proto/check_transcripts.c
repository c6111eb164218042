/*
 * check_transcripts - replay every file in tests/transcripts/server: whole,
 * one byte at a time, and split in two at every position (transcripts up
 * to 2 KiB of client input) or in random pieces from 64 seeds (larger).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/transcript.h"
#include "suites.h"

#define SPLIT_ALL_MAX 2048
#define RANDOM_SEEDS  64

static char **files;
static int nfiles;

static const char *dir(void)
{
    const char *d = getenv("TRANSCRIPT_DIR");
    return d ? d : "tests/transcripts/server";
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void scan_dir(void)
{
    DIR *dp = opendir(dir());
    struct dirent *e;

    if (dp == NULL)
        return;
    while ((e = readdir(dp)) != NULL) {
        size_t n = strlen(e->d_name);
        char path[1024];
        if (n < 3 || strcmp(e->d_name + n - 2, ".t") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir(), e->d_name);
        files = realloc(files, (size_t)(nfiles + 1) * sizeof(char *));
        files[nfiles++] = strdup(path);
    }
    closedir(dp);
    qsort(files, (size_t)nfiles, sizeof(char *), cmp);
}

START_TEST(test_transcript)
{
    const char *path = files[_i];
    char err[4096];
    long size = transcript_input_size(path);
    long k;

    ck_assert_msg(size >= 0, "cannot read %s", path);
    ck_assert_msg(transcript_run(path, TR_WHOLE, 0, err, sizeof(err)) == 0,
                  "%s (whole): %s", path, err);
    ck_assert_msg(transcript_run(path, TR_BYTES, 0, err, sizeof(err)) == 0,
                  "%s (bytes): %s", path, err);
    if (size <= SPLIT_ALL_MAX) {
        for (k = 1; k < size; k++)
            ck_assert_msg(transcript_run(path, TR_SPLIT, (size_t)k, err,
                                         sizeof(err)) == 0,
                          "%s (split at %ld): %s", path, k, err);
    } else {
        for (k = 1; k <= RANDOM_SEEDS; k++)
            ck_assert_msg(transcript_run(path, TR_RANDOM, (size_t)k, err,
                                         sizeof(err)) == 0,
                          "%s (random seed %ld): %s", path, k, err);
    }
}
END_TEST

START_TEST(test_found)
{
    /* An empty directory would make the suite pass vacuously. */
    ck_assert_msg(nfiles >= 10, "only %d transcripts in %s", nfiles, dir());
}
END_TEST

Suite *suite_transcripts(void)
{
    Suite *s = suite_create("transcripts");
    TCase *tc = tcase_create("server");

    scan_dir();
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_found);
    tcase_add_loop_test(tc, test_transcript, 0, nfiles);
    suite_add_tcase(s, tc);
    return s;
}
