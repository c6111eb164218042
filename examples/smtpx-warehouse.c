/*
 * smtpx-warehouse - a warehouse that takes orders by mail, each exactly
 * once, and acknowledges every order once it has stored it.
 *
 *   smtpx-warehouse --listen 127.0.0.1:2526 --dir /var/lib/warehouse \
 *       --address stock@depot.example --ack-via 127.0.0.1:2525
 *
 * An order is a message to --address with one part of type text/csv or
 * application/json.  The message is parsed while it streams in: the order
 * is kept in memory (up to MAX_ORDER), every other part is passed over
 * without being decoded.  At the end of the data, smtpx_inbox_check()
 * looks its Message-ID up in a durable store (DIR/dedupe):
 *
 *   NEW         the order is appended to the ledger (DIR/orders), synced;
 *   REDELIVERY  the warehouse took this message before and stopped (a
 *               crash) before recording it as processed: the order may be
 *               in the ledger already, so the ledger is searched first;
 *   DUPLICATE   processed already: nothing is stored.
 *
 * Then smtpx_inbox_processed() records it as processed and commits an MDN
 * ("processed") to the Disposition-Notification-To address into a queue
 * (DIR/acks), which a delivery engine in this thread sends to --ack-via
 * (or by MX), retrying until it is taken; only then the 250.  (A
 * duplicate's MDN was committed again by the check: the first may be what
 * was lost.)
 *
 * The Message-ID is the order's key in the ledger, whose records are
 *
 *     order KEY LENGTH\n
 *     LENGTH octets of the order, exactly as attached\n
 *
 * so that the one window the inbox cannot close - a crash after the
 * append and before the inbox recorded it - is closed by the warehouse's
 * own records.  A record torn by a crash (never acknowledged) is cut off
 * at start.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libsmtpx/smtpx.h>
#include <libsmtpx/ack.h>
#include <libsmtpx/posix.h>

#define MAX_ORDER (1024 * 1024)

typedef struct warehouse {
    const char *address, *ack_via, *hostname;
    char ledger[4096];
    int ledger_fd;
    smtpx_dedupe *dedupe;
    smtpx_queue *acks;
    smtpx_inbox *inbox;
    smtpx_mta *mta;
    smtpx_loop *loop;
    smtpx_loop_timer *timer; /* the engine's next deadline */
} warehouse;

/* One message being received. */
typedef struct session {
    warehouse *app;
    smtpx_inbox_msg *msg;
    smtpx_msg_parser *parser;
    int err, parse_err, orders, in_order, too_big;
    unsigned char *order;
    size_t len;
} session;

static smtpx_loop *the_loop;

static void on_signal(int sig)
{
    (void)sig;
    smtpx_loop_stop(the_loop, SMTPX_SHUTDOWN_DRAIN);
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

/* ---- the ledger ------------------------------------------------------------
 */

/* ledger_scan - look for key (NULL: for nothing); *end receives the offset
 * past the last whole record.  1 found, 0 not, -1 read error (errno). */
static int ledger_scan(warehouse *app, const char *key, off_t *end)
{
    FILE *fp = fopen(app->ledger, "r");
    char line[512], *sp;
    unsigned long long len;
    struct stat st;
    int found = 0;

    *end = 0;
    if (fp == NULL || fstat(fileno(fp), &st) != 0) {
        if (fp != NULL)
            fclose(fp);
        return -1;
    }
    while (!found && fgets(line, sizeof(line), fp) != NULL) {
        off_t body = ftello(fp);
        /* Anything but a whole record ends the scan. */
        if (strncmp(line, "order ", 6) != 0 ||
            (sp = strrchr(line, ' ')) == line + 5 ||
            sscanf(sp, " %llu", &len) != 1 ||
            len >= (unsigned long long)(st.st_size - body) ||
            fseeko(fp, (off_t)len, SEEK_CUR) != 0 || fgetc(fp) != '\n')
            break;
        *end = ftello(fp);
        *sp = '\0';
        found = key != NULL && strcmp(line + 6, key) == 0;
    }
    if (ferror(fp))
        found = -1;
    fclose(fp);
    return found;
}

/* ledger_append - append a record and sync it: 0, or -1 (errno) with
 * nothing added */
static int ledger_append(warehouse *app, const char *key,
                         const unsigned char *order, size_t len)
{
    FILE *fp;
    struct stat st;
    int rc, e;

    if (fstat(app->ledger_fd, &st) != 0 ||
        (fp = fdopen(dup(app->ledger_fd), "a")) == NULL)
        return -1;
    fprintf(fp, "order %s %zu\n", key, len);
    fwrite(order, 1, len, fp);
    fputc('\n', fp);
    rc = fflush(fp) == 0 && fsync(app->ledger_fd) == 0 ? 0 : -1;
    e = errno;
    fclose(fp);
    if (rc != 0 && ftruncate(app->ledger_fd, st.st_size) != 0)
        perror("smtpx-warehouse: cutting a failed append");
    errno = e;
    return rc;
}

/* ---- the message parser: keep the order, pass over the rest ------------- */

static int on_part_begin(smtpx_msg_parser *p, const smtpx_part *part,
                         void *user_data)
{
    session *ss = user_data;
    const char *type = smtpx_part_type(part);

    (void)p;
    if (smtpx_part_is_container(part))
        return 0;
    if ((strcmp(type, "text/csv") != 0 &&
         strcmp(type, "application/json") != 0) ||
        ++ss->orders > 1)
        return SMTPX_MSG_SKIP;
    ss->in_order = 1;
    return 0;
}

static int on_part_data(smtpx_msg_parser *p, const smtpx_part *part,
                        const uint8_t *data, size_t len, void *user_data)
{
    session *ss = user_data;
    unsigned char *o;

    (void)p;
    (void)part;
    if (len > MAX_ORDER - ss->len) {
        ss->too_big = 1;
        return SMTPX_MSG_STOP;
    }
    if ((o = realloc(ss->order, ss->len + len)) == NULL) {
        ss->err = SMTPX_ERR_NOMEM;
        return SMTPX_MSG_STOP;
    }
    memcpy(o + ss->len, data, len);
    ss->order = o;
    ss->len += len;
    return 0;
}

static const smtpx_msg_callbacks parse_cbs = {
    .on_part_begin = on_part_begin,
    .on_part_data = on_part_data,
};

/* ---- the server ------------------------------------------------------------
 */

static void reset(session *ss)
{
    smtpx_inbox_msg_free(ss->msg);
    smtpx_msg_parser_free(ss->parser);
    free(ss->order);
    *ss = (session){.app = ss->app};
}

static int cb_connect(smtpx_server *s, const smtpx_peer *peer,
                      smtpx_reply *reply, void *user_data)
{
    session *ss = calloc(1, sizeof(*ss));

    (void)peer;
    (void)reply;
    if (ss == NULL)
        return SMTPX_ERR_CALLBACK_FAILURE;
    ss->app = user_data;
    smtpx_server_set_user_data(s, ss);
    return 0;
}

static int cb_rcpt(smtpx_server *s, const smtpx_rcpt_info *rcpt,
                   void **rcpt_data, smtpx_reply *reply, void *user_data)
{
    session *ss = user_data;

    (void)s;
    (void)rcpt_data;
    if (strcasecmp(rcpt->to, ss->app->address) != 0)
        set_reply(reply, 550, 1, 1, "No such mailbox here");
    return 0;
}

static int cb_data_begin(smtpx_server *s, const smtpx_data_info *info,
                         smtpx_reply *reply, void *user_data)
{
    session *ss = user_data;
    int rc;

    (void)info;
    reset(ss);
    if ((rc = smtpx_inbox_begin(ss->app->inbox, smtpx_server_mail_from(s), NULL,
                                &ss->msg)) != 0 ||
        (rc = smtpx_inbox_add_rcpt(ss->msg, ss->app->address, 0, NULL)) != 0 ||
        (rc = smtpx_msg_parser_new(&ss->parser, NULL, 0, &parse_cbs,
                                   sizeof(parse_cbs), ss)) != 0) {
        fprintf(stderr, "smtpx-warehouse: %s\n", smtpx_strerror(rc));
        set_reply(reply, 451, 3, 0, "Cannot take orders now, try later");
    }
    return 0;
}

static int cb_data_chunk(smtpx_server *s, const uint8_t *data, size_t len,
                         void *user_data)
{
    session *ss = user_data;

    (void)s;
    /* The inbox reads the header (the Message-ID), the parser the order.
     * After an error the rest is read, and answered at the end. */
    if (ss->err == 0)
        ss->err = smtpx_inbox_write(ss->msg, data, len);
    if (ss->parse_err == 0)
        ss->parse_err = smtpx_msg_parser_feed(ss->parser, data, len);
    return 0;
}

/* take - store the order once, have it acknowledged; what was done */
static const char *take(session *ss, smtpx_reply *reply)
{
    int rc = smtpx_inbox_check(ss->msg), verdict, found = 0;
    const char *key = smtpx_inbox_key(ss->msg);
    off_t end;

    if (rc == SMTPX_ERR_NO_MESSAGE_ID) {
        set_reply(reply, 550, 6, 0, "A Message-ID is required");
        return "refused";
    }
    if (rc != 0) { /* SMTPX_ERR_IN_PROGRESS: on another connection now */
        fprintf(stderr, "smtpx-warehouse: %s\n", smtpx_strerror(rc));
        set_reply(reply, 451, 3, 0, "Cannot take the order now, try later");
        return "deferred";
    }
    if (strcspn(key, " \t\r\n") != strlen(key)) {
        set_reply(reply, 550, 6, 0, "This Message-ID cannot be an order key");
        return "refused";
    }
    verdict = smtpx_inbox_verdict(ss->msg, SMTPX_INBOX_ALL);
    if (verdict == SMTPX_INBOX_DUPLICATE) {
        set_reply(reply, 250, 0, 0, "Order taken already");
        return "skipped";
    }
    if (verdict == SMTPX_INBOX_REDELIVERY)
        found = ledger_scan(ss->app, key, &end);
    if (found < 0 ||
        (found == 0 && ledger_append(ss->app, key, ss->order, ss->len) != 0)) {
        perror("smtpx-warehouse: ledger");
        set_reply(reply, 451, 3, 0, "Cannot store the order now, try later");
        return "deferred";
    }
    /* In the ledger: record it as processed, which sends the MDN.  Should
     * that fail, the resend is a REDELIVERY, and the ledger has it. */
    if ((rc = smtpx_inbox_processed(ss->msg, SMTPX_INBOX_ALL)) != 0) {
        fprintf(stderr, "smtpx-warehouse: %s\n", smtpx_strerror(rc));
        set_reply(reply, 451, 3, 0, "Cannot take the order now, try later");
        return "deferred";
    }
    set_reply(reply, 250, 0, 0, "Order taken");
    return found ? "found" : "stored";
}

static int cb_data_end(smtpx_server *s, smtpx_reply *reply, void *user_data)
{
    session *ss = user_data;
    const char *done = "refused", *key;
    char esc[SMTPX_ESCAPE_SIZE(64)];
    int verdict;

    (void)s;
    if (ss->parse_err == 0)
        ss->parse_err = smtpx_msg_parser_end(ss->parser);
    if (ss->err != 0) {
        set_reply(reply, 451, 3, 0, "Out of memory, try later");
        done = "deferred";
    } else if (ss->too_big) {
        set_reply(reply, 552, 3, 4, "The order is too large");
    } else if (ss->parse_err != 0) {
        set_reply(reply, 554, 6, 0, "The message could not be read as MIME");
    } else if (ss->orders != 1) {
        set_reply(reply, 550, 6, 0,
                  "Send one order per message, as a text/csv or "
                  "application/json attachment");
    } else {
        done = take(ss, reply);
    }
    key = smtpx_inbox_key(ss->msg);
    verdict = smtpx_inbox_verdict(ss->msg, SMTPX_INBOX_ALL);
    printf("order: %s verdict=%s %s size=%zu status=%d\n",
           key ? smtpx_escape(esc, sizeof(esc), key, strlen(key)) : "-",
           verdict > 0 ? smtpx_inbox_verdict_name(verdict) : "-", done, ss->len,
           reply->code);
    reset(ss);
    return 0;
}

static void cb_txn_end(smtpx_server *s, int reason, void *user_data)
{
    (void)s;
    (void)reason;
    reset(user_data);
}

static void cb_close(smtpx_server *s, int status, void *user_data)
{
    (void)s;
    (void)status;
    if (user_data != NULL)
        reset(user_data);
    free(user_data);
}

static const smtpx_server_callbacks server_cbs = {
    .on_connect = cb_connect,
    .on_rcpt = cb_rcpt,
    .on_data_begin = cb_data_begin,
    .on_data_chunk = cb_data_chunk,
    .on_data_end = cb_data_end,
    .on_txn_end = cb_txn_end,
    .on_close = cb_close,
};

/* ---- the delivery engine of the MDNs, in the loop's thread -------------- */

static void engine_step(smtpx_loop *loop, void *user_data)
{
    warehouse *app = user_data;
    uint64_t at;
    int rc;

    if ((rc = smtpx_mta_run_once(app->mta, 0)) < 0)
        fprintf(stderr, "smtpx-warehouse: engine: %s\n", smtpx_strerror(rc));
    /* Run by the timer (cancelling it then does nothing) or before it
     * came: set it again. */
    if (app->timer != NULL)
        smtpx_loop_timer_cancel(loop, app->timer);
    app->timer = NULL;
    if ((at = smtpx_mta_expiry(app->mta)) != 0 &&
        smtpx_loop_timer_add(loop, at, engine_step, app, &app->timer) != 0)
        fprintf(stderr, "smtpx-warehouse: engine: no timer\n");
}

static void engine_ready(smtpx_loop *loop, int fd, int events, void *app)
{
    (void)fd;
    (void)events;
    engine_step(loop, app);
}

static void engine_log(int level, const char *msg, void *user_data)
{
    (void)user_data;
    if (level <= SMTPX_LOG_INFO) /* deliveries, deferrals, trouble */
        fprintf(stderr, "smtpx-warehouse: ack: %s\n", msg);
}

/* ---- main ---------------------------------------------------------------- */

/* fail - report a failed call; 1 for the exit status */
static int fail(const char *what, int rc)
{
    fprintf(stderr, "smtpx-warehouse: %s: %s\n", what,
            rc == SMTPX_ERR_IO ? strerror(errno) : smtpx_strerror(rc));
    return 1;
}

/* open_all - the ledger, the dedupe store, the inbox, the MDNs' queue and
 * their delivery engine */
static int open_all(warehouse *app, const char *dir,
                    const smtpx_config *client_cfg, smtpx_resolver *resolver)
{
    smtpx_inbox_opts io = {.size = sizeof(io)};
    smtpx_mta_opts mo = {.size = sizeof(mo)};
    char path[4096];
    off_t end;
    int rc, dfd;

    snprintf(app->ledger, sizeof(app->ledger), "%s/orders", dir);
    if ((mkdir(dir, 0755) != 0 && errno != EEXIST) ||
        (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return fail(dir, SMTPX_ERR_IO);
    app->ledger_fd =
        open(app->ledger, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    rc = app->ledger_fd >= 0 && fsync(dfd) == 0 ? 0 : SMTPX_ERR_IO;
    close(dfd);
    if (rc != 0 || ledger_scan(app, NULL, &end) < 0 ||
        ftruncate(app->ledger_fd, end) != 0 || fsync(app->ledger_fd) != 0)
        return fail(app->ledger, SMTPX_ERR_IO);
    snprintf(path, sizeof(path), "%s/dedupe", dir);
    if ((rc = smtpx_dedupe_open(&app->dedupe, path, NULL)) != 0)
        return fail(path, rc);
    snprintf(path, sizeof(path), "%s/acks", dir);
    if ((rc = smtpx_queue_open(&app->acks, path, NULL)) != 0)
        return fail(path, rc);
    io.dedupe = app->dedupe;
    io.acks = app->acks;
    io.ack_from = app->address;
    io.hostname = app->hostname;
    if ((rc = smtpx_inbox_new(&app->inbox, &io)) != 0)
        return fail("inbox", rc);
    mo.client_cfg = client_cfg;
    mo.hostname = app->hostname;
    mo.smarthost = app->ack_via; /* NULL: by MX, through the resolver */
    mo.resolver = resolver;
    mo.on_log = engine_log;
    if ((rc = smtpx_mta_new(&app->mta, app->acks, &mo)) != 0)
        return fail("delivery engine", rc);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"dir", required_argument, NULL, 'd'},
        {"address", required_argument, NULL, 'a'},
        {"ack-via", required_argument, NULL, 'v'},
        {NULL, 0, NULL, 0}};
    warehouse app = {.ledger_fd = -1};
    const char *listen = NULL, *dir = NULL;
    smtpx_config *scfg = NULL, *ccfg = NULL;
    smtpx_resolver *resolver = NULL;
    struct sigaction sa = {.sa_handler = on_signal};
    char host[256], port[32];
    int c, fd, rc, status = 1;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'l')
            listen = optarg;
        else if (c == 'd')
            dir = optarg;
        else if (c == 'a')
            app.address = optarg;
        else if (c == 'v')
            app.ack_via = optarg;
        else
            return 2;
    }
    if (listen == NULL || dir == NULL || app.address == NULL ||
        strchr(app.address, '@') == NULL || optind != argc) {
        fprintf(stderr, "usage: smtpx-warehouse --listen ADDR:PORT --dir DIR "
                        "--address ADDR [--ack-via HOST:PORT]\n");
        return 2;
    }
    app.hostname = strchr(app.address, '@') + 1;
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line per order, as it comes */
    if (app.ack_via == NULL && (rc = smtpx_resolver_new(&resolver, NULL)) != 0)
        return fail("resolver", rc);
    if ((rc = smtpx_config_new(&ccfg, SMTPX_ROLE_CLIENT, NULL)) != 0 ||
        (rc = smtpx_config_set_hostname(ccfg, app.hostname)) != 0 ||
        (rc = smtpx_config_freeze(ccfg)) != 0 ||
        (rc = smtpx_config_new(&scfg, SMTPX_ROLE_SERVER, NULL)) != 0 ||
        (rc = smtpx_config_set_hostname(scfg, app.hostname)) != 0 ||
        (rc = smtpx_config_freeze(scfg)) != 0) {
        fail("settings", rc);
        goto out;
    }
    if (open_all(&app, dir, ccfg, resolver) != 0)
        goto out;
    if (smtpx_posix_split_hostport(listen, host, sizeof(host), port,
                                   sizeof(port)) != 0 ||
        smtpx_posix_listen(host, port, 0, &fd) != 0) {
        fail(listen, SMTPX_ERR_IO);
        goto out;
    }
    if ((rc = smtpx_loop_new(&app.loop, NULL)) != 0 ||
        (rc = smtpx_loop_listen(app.loop, fd, scfg, &server_cbs,
                                sizeof(server_cbs), &app, NULL, NULL)) != 0) {
        close(fd);
        fail("loop", rc);
        goto out;
    }
    /* The engine shares this thread: the loop watches its descriptor. */
    if ((rc = smtpx_mta_fd(app.mta)) < 0 ||
        (rc = smtpx_loop_watch(app.loop, rc, SMTPX_WAIT_READ, engine_ready,
                               &app)) != 0) {
        fail("delivery engine", rc);
        goto out;
    }
    engine_step(app.loop, &app);
    the_loop = app.loop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    fprintf(stderr, "smtpx-warehouse: orders to <%s> on %s into %s\n",
            app.address, listen, app.ledger);
    if ((rc = smtpx_loop_run(app.loop)) != 0)
        fail("loop", rc);
    else
        status = 0;
out:
    smtpx_loop_free(app.loop); /* first: its sessions hold inbox messages */
    smtpx_mta_free(app.mta);   /* MDNs not sent yet stay in the queue */
    smtpx_inbox_free(app.inbox);
    smtpx_queue_free(app.acks);
    smtpx_dedupe_free(app.dedupe);
    smtpx_resolver_free(resolver);
    smtpx_config_free(scfg);
    smtpx_config_free(ccfg);
    if (app.ledger_fd >= 0)
        close(app.ledger_fd);
    return status;
}
