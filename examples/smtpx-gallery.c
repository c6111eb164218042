/*
 * smtpx-gallery - a photo gallery that takes pictures by mail.
 *
 *   smtpx-gallery --listen 127.0.0.1:2525 --dir ~/gallery
 *
 * Each message is parsed while it streams in (the parser of
 * <libsmtpx/msg.h> fed from on_data_chunk): only the image parts are kept
 * - JPEG, PNG, GIF and WebP, recognised by their first octets, whatever
 * their name or declared type says - and each is written to DIR/.tmp while
 * it arrives.  Text, other attachments and everything else of the message
 * are never stored: the parser passes over them without decoding.  At the
 * end of the data, the pictures are made durable (fsync, rename into DIR,
 * fsync DIR) before the 250; a message without an acceptable picture is
 * refused in the SMTP dialogue itself, with a reply that lists the formats
 * taken, so no bounce is ever sent (no backscatter).
 *
 * A picture is named after the time, the process and a counter, never
 * after the name the sender gave: the sender chooses nothing of the path.
 *
 * Built on the public API only: the poll() loop of <libsmtpx/posix.h>, the
 * server callbacks, the message parser.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libsmtpx/smtpx.h>
#include <libsmtpx/posix.h>

/* Pictures kept from one message, at most. */
#define MAX_PICTURES 64
/* Octets that tell the formats apart (WebP needs 12). */
#define MAGIC_LEN 12

/* The formats taken: XX(name, extension, MIME type). */
#define GALLERY_FORMATS(XX)                                                    \
    XX(JPEG, "jpg", "image/jpeg")                                              \
    XX(PNG, "png", "image/png")                                                \
    XX(GIF, "gif", "image/gif")                                                \
    XX(WEBP, "webp", "image/webp")

enum {
    FMT_NONE,
#define GALLERY_FMT_ENUM(name, ext, type) FMT_##name,
    GALLERY_FORMATS(GALLERY_FMT_ENUM)
#undef GALLERY_FMT_ENUM
};

static const char *const fmt_ext[] = {"",
#define GALLERY_FMT_EXT(name, ext, type) ext,
                                      GALLERY_FORMATS(GALLERY_FMT_EXT)
#undef GALLERY_FMT_EXT
};

typedef struct gallery_opts {
    const char *listen, *dir, *hostname;
    unsigned long max_size;
    int verbose, quiet;
} gallery_opts;

typedef struct gallery_app {
    gallery_opts opts;
    int dirfd, tmpfd;
    unsigned long counter;
    unsigned long long stored;
} gallery_app;

/* A picture being received, or received and waiting for the end of the
 * data. */
typedef struct picture {
    char tmp[96];
    int fmt;
} picture;

/* One session. */
typedef struct gallery_session {
    gallery_app *app;
    char peer[80];
    smtpx_msg_parser *parser;
    int parse_err;
    /* The part being read. */
    int sniffing, fd;
    uint8_t magic[MAGIC_LEN];
    size_t nmagic;
    picture *cur;
    int io_err;
    picture pics[MAX_PICTURES];
    size_t npics;
    size_t skipped; /* leaf parts that were not pictures */
} gallery_session;

static smtpx_loop *the_loop;

static void on_signal(int sig)
{
    (void)sig;
    smtpx_loop_stop(the_loop, SMTPX_SHUTDOWN_DRAIN);
}

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void
logline(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "smtpx-gallery[%ld]: ", (long)getpid());
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* sniff - the format of a picture from its first octets, or FMT_NONE */
static int sniff(const uint8_t *m, size_t n)
{
    if (n >= 3 && m[0] == 0xff && m[1] == 0xd8 && m[2] == 0xff)
        return FMT_JPEG;
    if (n >= 8 && memcmp(m, "\x89PNG\r\n\x1a\n", 8) == 0)
        return FMT_PNG;
    if (n >= 6 && (memcmp(m, "GIF87a", 6) == 0 || memcmp(m, "GIF89a", 6) == 0))
        return FMT_GIF;
    if (n >= 12 && memcmp(m, "RIFF", 4) == 0 && memcmp(m + 8, "WEBP", 4) == 0)
        return FMT_WEBP;
    return FMT_NONE;
}

/* ---- pictures ------------------------------------------------------------ */

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* picture_open - a new file in DIR/.tmp for the part being read */
static int picture_open(gallery_session *gs, int fmt)
{
    gallery_app *app = gs->app;
    picture *pic;

    if (gs->npics == MAX_PICTURES)
        return -1;
    pic = &gs->pics[gs->npics];
    snprintf(pic->tmp, sizeof(pic->tmp), "%ld.%ld.%lu.%s", (long)time(NULL),
             (long)getpid(), ++app->counter, fmt_ext[fmt]);
    gs->fd = openat(app->tmpfd, pic->tmp,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (gs->fd < 0)
        return -1;
    pic->fmt = fmt;
    gs->cur = pic;
    gs->npics++;
    return 0;
}

/* pictures_drop - remove every picture of the message */
static void pictures_drop(gallery_session *gs)
{
    size_t i;

    if (gs->fd >= 0) {
        close(gs->fd);
        gs->fd = -1;
    }
    for (i = 0; i < gs->npics; i++)
        unlinkat(gs->app->tmpfd, gs->pics[i].tmp, 0);
    gs->npics = 0;
    gs->cur = NULL;
}

/* ---- the parser's callbacks ---------------------------------------------- */

static int on_part_begin(smtpx_msg_parser *p, const smtpx_part *part,
                         void *user_data)
{
    gallery_session *gs = user_data;
    const char *type = smtpx_part_type(part);

    (void)p;
    if (smtpx_part_is_container(part))
        return 0;
    gs->sniffing = 0;
    gs->nmagic = 0;
    gs->fd = -1;
    gs->cur = NULL;
    /* Only parts that say they are pictures, or opaque data, can be one;
     * the rest is passed over without being decoded. */
    if (strncmp(type, "image/", 6) != 0 &&
        strcmp(type, "application/octet-stream") != 0) {
        gs->skipped++;
        return SMTPX_MSG_SKIP;
    }
    gs->sniffing = 1;
    return 0;
}

/* decide - the first octets are in: keep the part, or pass over it */
static int decide(gallery_session *gs)
{
    int fmt = sniff(gs->magic, gs->nmagic);

    gs->sniffing = 0;
    if (fmt == FMT_NONE) {
        gs->skipped++;
        return SMTPX_MSG_SKIP;
    }
    if (picture_open(gs, fmt) < 0 ||
        write_all(gs->fd, gs->magic, gs->nmagic) < 0) {
        gs->io_err = errno ? errno : EIO;
        return SMTPX_MSG_STOP;
    }
    return 0;
}

static int on_part_data(smtpx_msg_parser *p, const smtpx_part *part,
                        const uint8_t *data, size_t len, void *user_data)
{
    gallery_session *gs = user_data;

    (void)p;
    (void)part;
    if (gs->sniffing) {
        size_t k = MAGIC_LEN - gs->nmagic;
        int rc;
        if (k > len)
            k = len;
        memcpy(gs->magic + gs->nmagic, data, k);
        gs->nmagic += k;
        data += k;
        len -= k;
        if (gs->nmagic < MAGIC_LEN)
            return 0;
        if ((rc = decide(gs)) != 0)
            return rc;
    }
    if (len > 0 && write_all(gs->fd, data, len) < 0) {
        gs->io_err = errno;
        return SMTPX_MSG_STOP;
    }
    return 0;
}

static int on_part_end(smtpx_msg_parser *p, const smtpx_part *part,
                       void *user_data)
{
    gallery_session *gs = user_data;

    (void)p;
    (void)part;
    /* A picture shorter than the longest magic (a tiny GIF). */
    if (gs->sniffing && gs->nmagic > 0) {
        int rc = decide(gs);
        if (rc == SMTPX_MSG_STOP)
            return rc;
    }
    gs->sniffing = 0;
    if (gs->fd >= 0) {
        int rc = fsync(gs->fd);
        if (close(gs->fd) != 0 || rc != 0) {
            gs->fd = -1;
            gs->io_err = errno;
            return SMTPX_MSG_STOP;
        }
        gs->fd = -1;
        if (gs->app->opts.verbose)
            logline("%s picture %s (%s, %llu octets, sent as %s)", gs->peer,
                    gs->cur->tmp, smtpx_part_type(part),
                    (unsigned long long)smtpx_part_size(part),
                    smtpx_part_filename(part) ? smtpx_part_filename(part)
                                              : "-");
    }
    return 0;
}

static const smtpx_msg_callbacks parse_cbs = {
    .on_part_begin = on_part_begin,
    .on_part_data = on_part_data,
    .on_part_end = on_part_end,
};

/* ---- the server's callbacks -------------------------------------------------
 */

static int cb_connect(smtpx_server *s, const smtpx_peer *peer,
                      smtpx_reply *reply, void *user_data)
{
    gallery_session *gs = calloc(1, sizeof(*gs));

    (void)reply;
    if (gs == NULL)
        return SMTPX_ERR_CALLBACK_FAILURE;
    gs->app = user_data;
    gs->fd = -1;
    snprintf(gs->peer, sizeof(gs->peer), "%s:%u",
             peer->addr ? peer->addr : "unknown", (unsigned)peer->port);
    smtpx_server_set_user_data(s, gs);
    return 0;
}

static void reset_txn(gallery_session *gs)
{
    pictures_drop(gs);
    smtpx_msg_parser_free(gs->parser);
    gs->parser = NULL;
    gs->parse_err = 0;
    gs->io_err = 0;
    gs->skipped = 0;
}

static int cb_data_begin(smtpx_server *s, const smtpx_data_info *info,
                         smtpx_reply *reply, void *user_data)
{
    gallery_session *gs = user_data;

    (void)s;
    (void)info;
    reset_txn(gs);
    if (smtpx_msg_parser_new(&gs->parser, NULL, 0, &parse_cbs,
                             sizeof(parse_cbs), gs) != 0) {
        reply->code = 451;
        reply->enh[0] = 4;
        reply->enh[1] = 3;
        reply->enh[2] = 0;
        reply->text = "Out of memory, try later";
    }
    return 0;
}

static int cb_data_chunk(smtpx_server *s, const uint8_t *data, size_t len,
                         void *user_data)
{
    gallery_session *gs = user_data;

    (void)s;
    /* After an error the rest is still read, and answered at the end. */
    if (gs->parser != NULL && gs->parse_err == 0)
        gs->parse_err = smtpx_msg_parser_feed(gs->parser, data, len);
    return 0;
}

static void set_reply(smtpx_reply *r, int code, int e2, int e3,
                      const char *text)
{
    r->code = code;
    r->enh[0] = (uint16_t)(code / 100);
    r->enh[1] = (uint16_t)e2;
    r->enh[2] = (uint16_t)e3;
    r->text = text;
}

/* commit - make the pictures durable: rename into DIR, fsync DIR */
static int commit(gallery_session *gs)
{
    gallery_app *app = gs->app;
    size_t i;

    for (i = 0; i < gs->npics; i++)
        if (renameat(app->tmpfd, gs->pics[i].tmp, app->dirfd,
                     gs->pics[i].tmp) != 0)
            goto fail;
    if (fsync(app->dirfd) != 0)
        goto fail;
    return 0;
fail:
    /* Not acknowledged: the client sends it again, so none may stay. */
    while (i-- > 0)
        unlinkat(app->dirfd, gs->pics[i].tmp, 0);
    return -1;
}

static int cb_data_end(smtpx_server *s, smtpx_reply *reply, void *user_data)
{
    gallery_session *gs = user_data;
    static char text[160];
    size_t n = 0;

    if (gs->parse_err == 0 && gs->parser != NULL)
        gs->parse_err = smtpx_msg_parser_end(gs->parser);
    if (gs->io_err != 0) {
        logline("%s cannot store a picture: %s", gs->peer,
                strerror(gs->io_err));
        set_reply(reply, 451, 3, 0, "Cannot store the pictures now, try later");
    } else if (gs->parse_err != 0) {
        set_reply(reply, 554, 6, 0,
                  "The message could not be read as MIME; send JPEG, PNG, GIF "
                  "or WebP pictures as attachments");
    } else if (gs->npics == 0) {
        /* Refused in the dialogue: no bounce is ever sent. */
        set_reply(reply, 550, 6, 1,
                  "No picture found: this gallery takes JPEG, PNG, GIF and "
                  "WebP images");
    } else if (commit(gs) != 0) {
        logline("%s cannot store the pictures: %s", gs->peer, strerror(errno));
        set_reply(reply, 451, 3, 0, "Cannot store the pictures now, try later");
    } else {
        n = gs->npics;
        gs->npics = 0; /* they are the gallery's now */
        gs->app->stored += n;
        snprintf(text, sizeof(text), "%zu picture%s stored", n,
                 n == 1 ? "" : "s");
        set_reply(reply, 250, 0, 0, text);
    }
    if (!gs->app->opts.quiet)
        logline("%s from=<%s> size=%llu pictures=%zu other=%zu status=%d",
                gs->peer, smtpx_server_mail_from(s),
                (unsigned long long)smtpx_server_data_size(s), n, gs->skipped,
                reply->code);
    reset_txn(gs);
    return 0;
}

static void cb_txn_end(smtpx_server *s, int reason, void *user_data)
{
    gallery_session *gs = user_data;

    (void)s;
    (void)reason;
    reset_txn(gs);
}

static void cb_close(smtpx_server *s, int status, void *user_data)
{
    gallery_session *gs = user_data;

    (void)status;
    if (gs == NULL)
        return;
    reset_txn(gs);
    smtpx_server_set_user_data(s, NULL);
    free(gs);
}

static const smtpx_server_callbacks gallery_cbs = {
    .on_connect = cb_connect,
    .on_data_begin = cb_data_begin,
    .on_data_chunk = cb_data_chunk,
    .on_data_end = cb_data_end,
    .on_txn_end = cb_txn_end,
    .on_close = cb_close,
};

/* ---- main -------------------------------------------------------------------
 */

static void usage(FILE *fp)
{
    fprintf(fp, "usage: smtpx-gallery --listen ADDR:PORT --dir DIR\n"
                "       [--hostname NAME] [--max-size BYTES] [-q] [-v]\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"dir", required_argument, NULL, 'd'},
        {"hostname", required_argument, NULL, 'H'},
        {"max-size", required_argument, NULL, 'S'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    gallery_app app;
    smtpx_config *cfg = NULL;
    struct sigaction sa;
    char host[256], port[32];
    int c, fd, rc, status = 1;

    memset(&app, 0, sizeof(app));
    app.opts.max_size = 50ul * 1024 * 1024;
    app.dirfd = app.tmpfd = -1;
    while ((c = getopt_long(argc, argv, "vqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            app.opts.listen = optarg;
            break;
        case 'd':
            app.opts.dir = optarg;
            break;
        case 'H':
            app.opts.hostname = optarg;
            break;
        case 'S':
            app.opts.max_size = strtoul(optarg, NULL, 10);
            break;
        case 'v':
            app.opts.verbose = 1;
            break;
        case 'q':
            app.opts.quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (app.opts.listen == NULL || app.opts.dir == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    mkdir(app.opts.dir, 0755);
    app.dirfd = open(app.opts.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (app.dirfd >= 0) {
        mkdirat(app.dirfd, ".tmp", 0700);
        app.tmpfd = openat(app.dirfd, ".tmp",
                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (app.tmpfd < 0) {
        fprintf(stderr, "smtpx-gallery: %s: %s\n", app.opts.dir,
                strerror(errno));
        goto out;
    }
    if (smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, NULL) < 0 ||
        smtpx_config_set_hostname(cfg, app.opts.hostname ? app.opts.hostname
                                                         : "localhost") < 0 ||
        smtpx_config_set_limit(cfg, SMTPX_LIMIT_MSG_SIZE, app.opts.max_size) <
            0 ||
        smtpx_config_freeze(cfg) < 0) {
        fprintf(stderr, "smtpx-gallery: bad settings\n");
        goto out;
    }
    if (smtpx_posix_split_hostport(app.opts.listen, host, sizeof(host), port,
                                   sizeof(port)) < 0 ||
        (rc = smtpx_posix_listen(host, port, 0, &fd)) < 0) {
        fprintf(stderr, "smtpx-gallery: cannot listen on %s: %s\n",
                app.opts.listen, strerror(errno));
        goto out;
    }
    if (smtpx_loop_new(&the_loop, NULL) < 0 ||
        smtpx_loop_listen(the_loop, fd, cfg, &gallery_cbs, sizeof(gallery_cbs),
                          &app, NULL, NULL) < 0) {
        fprintf(stderr, "smtpx-gallery: cannot start\n");
        close(fd);
        goto out;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    if (!app.opts.quiet)
        logline("listening on %s, pictures into %s", app.opts.listen,
                app.opts.dir);
    rc = smtpx_loop_run(the_loop);
    if (!app.opts.quiet)
        logline("stopped after %llu pictures", app.stored);
    status = rc < 0 ? 1 : 0;
out:
    smtpx_loop_free(the_loop);
    smtpx_config_free(cfg);
    if (app.tmpfd >= 0)
        close(app.tmpfd);
    if (app.dirfd >= 0)
        close(app.dirfd);
    return status;
}
