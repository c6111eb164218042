/*
 * smtpx-mime - look into MIME messages, and take attachments out of them.
 *
 *   smtpx-mime list [FILE]          one line per leaf part
 *   smtpx-mime extract [FILE] DIR   write the attachments to DIR
 *   smtpx-mime headers [FILE]       the top-level header fields, decoded
 *
 * The message is read from FILE or standard input and parsed as it is read,
 * in constant memory, by the streaming parser of <libsmtpx/msg.h>.
 *
 * list prints, tab-separated, PATH TYPE/SUBTYPE DISPOSITION FILENAME SIZE
 * SHA256 for each part that has content (IMAP part numbers; message/rfc822
 * parts are descended into), with SIZE and SHA-256 of the decoded content
 * (transfer encoding removed, no charset conversion), "-" for a field that
 * is absent, and the file name in UTF-8 with control characters shown as
 * "?".
 *
 * extract writes each part that has a file name or is an attachment, under
 * a safe name: the last component of the name the sender gave, without
 * control characters, "/", "\" or a leading ".", at most 200 octets; a
 * name already in DIR is never overwritten ("-1", "-2"... is added before
 * the extension).  It prints PATH, the name written and the size.
 *
 * Exit status: 0, 1 when the message could not be parsed (a limit) or a
 * file could not be written, 2 for usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/sha256.h>

#include <libsmtpx/msg.h>

#define NAME_MAX_OCTETS 200

typedef struct mime_app {
    int mode; /* 'l', 'x', 'h' */
    int verbose;
    const char *dir;
    int dirfd;
    int status;
    /* the part being read */
    mbedtls_sha256_context sha;
    int out; /* extract: the file, or -1 */
    char name[NAME_MAX_OCTETS + 32];
} mime_app;

static void usage(FILE *fp)
{
    fprintf(fp, "usage: smtpx-mime [-v] list [FILE]\n"
                "       smtpx-mime [-v] extract [FILE] DIR\n"
                "       smtpx-mime [-v] headers [FILE]\n");
}

/* show - a string with control characters (and tabs) as "?" */
static void show(const char *s)
{
    for (; *s != '\0'; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

/* safe_name - the part of a sender's file name that is safe in DIR */
static void safe_name(const char *given, const char *path, char *out,
                      size_t size)
{
    const char *s = given != NULL ? given : "", *p;
    size_t n = 0;

    for (p = s; *p != '\0'; p++)
        if (*p == '/' || *p == '\\')
            s = p + 1;
    while (*s == '.' || *s == ' ')
        s++;
    for (; *s != '\0' && n + 1 < size && n < NAME_MAX_OCTETS; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            continue;
        out[n++] = (char)c;
    }
    /* Do not end inside a UTF-8 sequence. */
    while (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0x80)
        n--;
    if (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0xc0)
        n--;
    out[n] = '\0';
    if (n == 0)
        snprintf(out, size, "part-%s.bin", path[0] ? path : "1");
}

/* open_new - create name in the directory without overwriting anything */
static int open_new(mime_app *a, const char *base, char *used, size_t size)
{
    const char *dot = strrchr(base, '.');
    size_t stem =
        dot != NULL && dot != base ? (size_t)(dot - base) : strlen(base);
    int i, fd;

    for (i = 0; i < 1000; i++) {
        if (i == 0)
            snprintf(used, size, "%s", base);
        else
            snprintf(used, size, "%.*s-%d%s", (int)stem, base, i, base + stem);
        fd = openat(a->dirfd, used,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

static int on_header(smtpx_msg_parser *p, const smtpx_part *part,
                     const char *name, size_t name_len, const char *value,
                     size_t value_len, void *user_data)
{
    mime_app *a = user_data;
    size_t i;

    (void)p;
    if (a->mode != 'h' || smtpx_part_depth(part) != 0)
        return 0;
    fwrite(name, 1, name_len, stdout);
    fputs(": ", stdout);
    for (i = 0; i < value_len; i++) {
        unsigned char c = (unsigned char)value[i];
        putchar(c == '\r' || c == '\n' ? ' ' : c < 0x20 && c != '\t' ? '?' : c);
    }
    putchar('\n');
    return 0;
}

static int on_part_begin(smtpx_msg_parser *p, const smtpx_part *part,
                         void *user_data)
{
    mime_app *a = user_data;
    const char *fn = smtpx_part_filename(part);
    const char *disp = smtpx_part_disposition(part);
    char base[NAME_MAX_OCTETS + 32];

    (void)p;
    if (a->mode == 'h')
        return SMTPX_MSG_STOP; /* the top-level header is all we need */
    if (smtpx_part_is_container(part))
        return 0;
    if (a->mode == 'l') {
        mbedtls_sha256_init(&a->sha);
        mbedtls_sha256_starts_ret(&a->sha, 0);
        return 0;
    }
    a->out = -1;
    if (fn == NULL && (disp == NULL || strcmp(disp, "attachment") != 0))
        return SMTPX_MSG_SKIP;
    safe_name(fn, smtpx_part_path(part), base, sizeof(base));
    a->out = open_new(a, base, a->name, sizeof(a->name));
    if (a->out < 0) {
        fprintf(stderr, "smtpx-mime: %s/%s: %s\n", a->dir, base,
                strerror(errno));
        a->status = 1;
        return SMTPX_MSG_SKIP;
    }
    return 0;
}

static int on_part_data(smtpx_msg_parser *p, const smtpx_part *part,
                        const uint8_t *data, size_t len, void *user_data)
{
    mime_app *a = user_data;

    (void)p;
    (void)part;
    if (a->mode == 'l') {
        mbedtls_sha256_update_ret(&a->sha, data, len);
        return 0;
    }
    while (len > 0 && a->out >= 0) {
        ssize_t w = write(a->out, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fprintf(stderr, "smtpx-mime: %s/%s: %s\n", a->dir, a->name,
                    strerror(errno));
            a->status = 1;
            close(a->out);
            unlinkat(a->dirfd, a->name, 0);
            a->out = -1;
            return SMTPX_MSG_SKIP;
        }
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

static int on_part_end(smtpx_msg_parser *p, const smtpx_part *part,
                       void *user_data)
{
    mime_app *a = user_data;
    unsigned char sum[32];
    const char *disp = smtpx_part_disposition(part);
    const char *fn = smtpx_part_filename(part);
    int i;

    (void)p;
    if (smtpx_part_is_container(part))
        return 0;
    if (a->mode == 'l') {
        mbedtls_sha256_finish_ret(&a->sha, sum);
        mbedtls_sha256_free(&a->sha);
        show(smtpx_part_path(part));
        printf("\t%s\t", smtpx_part_type(part));
        show(disp != NULL ? disp : "-");
        putchar('\t');
        show(fn != NULL ? fn : "-");
        printf("\t%llu\t", (unsigned long long)smtpx_part_size(part));
        for (i = 0; i < 32; i++)
            printf("%02x", sum[i]);
        putchar('\n');
    } else if (a->mode == 'x' && a->out >= 0) {
        if (close(a->out) != 0) {
            fprintf(stderr, "smtpx-mime: %s/%s: %s\n", a->dir, a->name,
                    strerror(errno));
            a->status = 1;
        } else {
            show(smtpx_part_path(part));
            putchar('\t');
            show(a->name);
            printf("\t%llu\n", (unsigned long long)smtpx_part_size(part));
        }
        a->out = -1;
    }
    return 0;
}

static int on_defect(smtpx_msg_parser *p, const smtpx_part *part, int defect,
                     void *user_data)
{
    mime_app *a = user_data;

    (void)p;
    if (a->verbose)
        fprintf(stderr, "smtpx-mime: part %s: %s\n",
                part != NULL ? smtpx_part_path(part) : "-",
                smtpx_msg_defect_text(defect));
    return 0;
}

int main(int argc, char **argv)
{
    mime_app a;
    smtpx_msg_callbacks cbs;
    smtpx_msg_parser *p;
    const char *file = NULL;
    static unsigned char buf[65536];
    int fd = 0, rc, argi = 1;
    ssize_t n;

    memset(&a, 0, sizeof(a));
    a.out = -1;
    a.dirfd = -1;
    if (argi < argc && strcmp(argv[argi], "-v") == 0) {
        a.verbose = 1;
        argi++;
    }
    if (argi >= argc) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[argi], "-h") == 0 || strcmp(argv[argi], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[argi], "list") == 0 && argc - argi <= 2) {
        a.mode = 'l';
        file = argi + 1 < argc ? argv[argi + 1] : NULL;
    } else if (strcmp(argv[argi], "headers") == 0 && argc - argi <= 2) {
        a.mode = 'h';
        file = argi + 1 < argc ? argv[argi + 1] : NULL;
    } else if (strcmp(argv[argi], "extract") == 0 && argc - argi >= 2 &&
               argc - argi <= 3) {
        a.mode = 'x';
        if (argc - argi == 3)
            file = argv[argi + 1];
        a.dir = argv[argc - 1];
        a.dirfd = open(a.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (a.dirfd < 0) {
            fprintf(stderr, "smtpx-mime: %s: %s\n", a.dir, strerror(errno));
            return 1;
        }
    } else {
        usage(stderr);
        return 2;
    }
    if (file != NULL && strcmp(file, "-") != 0) {
        fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "smtpx-mime: %s: %s\n", file, strerror(errno));
            return 1;
        }
    }
    memset(&cbs, 0, sizeof(cbs));
    cbs.on_header = on_header;
    cbs.on_part_begin = on_part_begin;
    cbs.on_part_data = on_part_data;
    cbs.on_part_end = on_part_end;
    cbs.on_defect = on_defect;
    rc = smtpx_msg_parser_new(&p, NULL,
                              a.mode == 'h' ? SMTPX_MSG_DECODE_WORDS : 0, &cbs,
                              sizeof(cbs), &a);
    if (rc != 0) {
        fprintf(stderr, "smtpx-mime: %s\n", smtpx_strerror(rc));
        return 1;
    }
    rc = 0;
    while (rc == 0 && (n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "smtpx-mime: reading: %s\n", strerror(errno));
            a.status = 1;
            break;
        }
        rc = smtpx_msg_parser_feed(p, buf, (size_t)n);
    }
    if (rc == 0)
        rc = smtpx_msg_parser_end(p);
    if (rc != 0 && rc != SMTPX_ERR_STOPPED) {
        int lim = smtpx_msg_parser_limit_hit(p);
        fprintf(stderr, "smtpx-mime: %s%s%s\n", smtpx_strerror(rc),
                lim >= 0 ? ": " : "",
                lim >= 0 ? smtpx_msg_limit_text(lim) : "");
        a.status = 1;
    }
    if (a.out >= 0) {
        close(a.out);
        unlinkat(a.dirfd, a.name, 0);
    }
    smtpx_msg_parser_free(p);
    if (fd > 0)
        close(fd);
    if (a.dirfd >= 0)
        close(a.dirfd);
    return a.status;
}
