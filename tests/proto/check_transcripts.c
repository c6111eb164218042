/*
 * check_transcripts - replay every transcript in tests/transcripts/server
 * (TCase "server") and tests/transcripts/client (TCase "client") the same
 * ways: whole, one octet at a time, and split in two at every position
 * (up to 2 KiB of input) or in random pieces from 64 seeds (larger); then
 * all of that again in guard mode, each piece on a guard page, with the
 * library logging at its most verbose and tracing.
 *
 * TRANSCRIPT_SERVER_DIR and TRANSCRIPT_CLIENT_DIR replace the
 * directories.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/transcript.h"
#include "suites.h"

#define SPLIT_ALL_MAX 2048
#define RANDOM_SEEDS  64

/* A directory of transcripts for one side: a TCase of its own. */
typedef struct tr_dir {
    const tr_side *side;
    const char *env;  /* names another directory */
    const char *path; /* the default */
    int min;          /* fewer files means the directory is wrong */
} tr_dir;

static const tr_dir dirs[] = {
    {&tr_server, "TRANSCRIPT_SERVER_DIR", "tests/transcripts/server", 10},
    {&tr_client, "TRANSCRIPT_CLIENT_DIR", "tests/transcripts/client", 8},
};
#define NDIRS (int)(sizeof(dirs) / sizeof(dirs[0]))

/* Every transcript of every directory; a TCase loops over its range. */
typedef struct tr_file {
    const tr_dir *dir;
    char *path;
} tr_file;

static tr_file *files;
static int nfiles;
static int dir_files[NDIRS];

static const char *dir_path(const tr_dir *d)
{
    const char *p = getenv(d->env);
    return p ? p : d->path;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(((const tr_file *)a)->path, ((const tr_file *)b)->path);
}

/* scan_dir - add the directory's files, sorted, to files */
static void scan_dir(const tr_dir *d)
{
    DIR *dp = opendir(dir_path(d));
    struct dirent *e;
    int first = nfiles;

    if (dp == NULL)
        return;
    while ((e = readdir(dp)) != NULL) {
        size_t n = strlen(e->d_name);
        char path[1024];
        if (n < 3 || strcmp(e->d_name + n - 2, ".t") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir_path(d), e->d_name);
        files = realloc(files, (size_t)(nfiles + 1) * sizeof(*files));
        files[nfiles].dir = d;
        files[nfiles++].path = strdup(path);
    }
    closedir(dp);
    qsort(files + first, (size_t)(nfiles - first), sizeof(*files), cmp);
}

static void run(const transcript *tx, const char *path, int mode, size_t arg)
{
    char err[4096];

    ck_assert_msg(transcript_run(tx, mode, arg, err, sizeof(err)) == 0,
                  "%s: %s", path, err);
}

/* replay - a transcript in every mode, or'ed with guard */
static void replay(const tr_file *f, int guard)
{
    transcript *tx;
    char err[4096];
    size_t size, k;

    ck_assert_msg(
        transcript_load(&tx, f->dir->side, f->path, err, sizeof(err)) == 0,
        "%s", err);
    size = transcript_input_size(tx);
    run(tx, f->path, TR_WHOLE | guard, 0);
    run(tx, f->path, TR_BYTES | guard, 0);
    if (size <= SPLIT_ALL_MAX) {
        for (k = 1; k < size; k++)
            run(tx, f->path, TR_SPLIT | guard, k);
    } else {
        for (k = 1; k <= RANDOM_SEEDS; k++)
            run(tx, f->path, TR_RANDOM | guard, k);
    }
    transcript_free(tx);
}

START_TEST(test_found)
{
    /* An empty directory would make the case pass vacuously. */
    ck_assert_msg(dir_files[_i] >= dirs[_i].min, "only %d transcripts in %s",
                  dir_files[_i], dir_path(&dirs[_i]));
}
END_TEST

START_TEST(test_replay)
{
    replay(&files[_i], 0);
}
END_TEST

START_TEST(test_replay_guarded)
{
    replay(&files[_i], TR_GUARD);
}
END_TEST

Suite *suite_transcripts(void)
{
    Suite *s = suite_create("transcripts");
    int i;

    for (i = 0; i < NDIRS; i++) {
        TCase *tc = tcase_create(dirs[i].side->name);
        int first = nfiles;
        scan_dir(&dirs[i]);
        dir_files[i] = nfiles - first;
        tcase_set_timeout(tc, 300);
        tcase_add_loop_test(tc, test_found, i, i + 1);
        tcase_add_loop_test(tc, test_replay, first, nfiles);
        tcase_add_loop_test(tc, test_replay_guarded, first, nfiles);
        suite_add_tcase(s, tc);
    }
    return s;
}
