/*
 * smtpx-orders - an order system that mails each order to a warehouse as
 * an attachment, and knows which orders the warehouse has processed.
 *
 *   smtpx-orders --listen 127.0.0.1:2525 --spool /var/spool/orders \
 *       --from orders@shop.example --to stock@depot.example \
 *       --via 127.0.0.1:2526 order-1001.csv order-1002.json
 *
 * Each FILE becomes a message with the file attached (its type from its
 * name: text/csv, application/json ...); without FILE, or after a last
 * "-", file names are read from the standard input, one per line, and
 * each is sent as it comes.  The message goes into an outbox
 * (SPOOL/outbox): it keeps its Message-ID, gets a
 * Disposition-Notification-To naming --from, is committed to the delivery
 * queue (SPOOL/queue) and kept until the warehouse acknowledges it with an
 * MDN.  A delivery engine in this thread sends it to --via (or by MX); the
 * outbox resends it unchanged - the same Message-ID, which the warehouse
 * recognises - when no acknowledgement came within --ack-timeout seconds
 * (doubling each time), up to --max-resend times, then gives it up.
 *
 * The acknowledgements come to --from on this program's own listener
 * (--listen): each is read as a report (an MDN or a DSN) and given to
 * the outbox.  Every change is printed on the standard output:
 *
 *     ack: <message-id> <recipient> <state> sends=N <detail>
 *
 * (waiting: sent or resent; acknowledged; failed; unacknowledged: given
 * up).  The program ends once its input has ended and no order waits -
 * those of an earlier run included: the outbox is durable - with status 0
 * if every order was sent and acknowledged.
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

typedef struct orders {
    const char *from, *to, *via;
    smtpx_queue *queue;
    smtpx_outbox *outbox;
    smtpx_mta *mta;
    smtpx_loop *loop;
    smtpx_loop_timer *timer; /* the engine's next deadline */
    char in[4097];           /* file names from the standard input */
    size_t inlen;
    int input_done, stopping;
    unsigned long acked, not_acked, errors;
} orders;

static smtpx_loop *the_loop;

static void on_signal(int sig)
{
    (void)sig;
    smtpx_loop_stop(the_loop, SMTPX_SHUTDOWN_DRAIN);
}

/* check_done - stop once the input has ended and no order waits */
static void check_done(orders *app)
{
    if (app->input_done && !app->stopping &&
        smtpx_outbox_count(app->outbox) == 0) {
        app->stopping = 1;
        smtpx_loop_stop(app->loop, SMTPX_SHUTDOWN_DRAIN);
    }
}

/* on_event - an order changed state (called with the outbox's lock held:
 * it may not call the outbox) */
static void on_event(smtpx_outbox *ob, const smtpx_outbox_event *ev,
                     void *user_data)
{
    orders *app = user_data;

    (void)ob;
    if (ev->state == SMTPX_OUTBOX_ACKED)
        app->acked++;
    else if (ev->state != SMTPX_OUTBOX_WAITING)
        app->not_acked++;
    printf("ack: %s %s %s sends=%u %s\n", ev->message_id, ev->rcpt,
           smtpx_outbox_state_name(ev->state), ev->sends, ev->detail);
}

/* ---- sending an order -------------------------------------------------------
 */

static void send_order(orders *app, const char *path)
{
    static const char body[] = "The order is attached.\r\n";
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    smtpx_msg_part text = {.size = sizeof(text),
                           .kind = SMTPX_PART_TEXT,
                           .data = body,
                           .len = sizeof(body) - 1};
    smtpx_msg_part file = {.size = sizeof(file),
                           .kind = SMTPX_PART_ATTACHMENT,
                           .filename = name}; /* its type from its name */
    smtpx_queue_env env = {.size = sizeof(env), .from = app->from};
    smtpx_outbox_msg *om = NULL;
    smtpx_msg *msg = NULL;
    char subject[300], id[256];
    uint8_t buf[16384];
    smtpx_ssize n;
    int fd, rc;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "smtpx-orders: %s: %s\n", path, strerror(errno));
        app->errors++;
        return;
    }
    snprintf(subject, sizeof(subject), "Order %s", name);
    /* No DSN is asked for (SMTPX_OUTBOX_NO_DSN): the warehouse answers
     * with an MDN once it has processed the order.  Through --via not
     * even a failure report: it would go to the warehouse, the only host
     * this engine sends to (a refused order is given up instead). */
    if ((rc = smtpx_msg_new(&msg, 0, NULL)) == 0 &&
        (rc = smtpx_msg_add_addr(msg, "From", NULL, app->from)) == 0 &&
        (rc = smtpx_msg_add_addr(msg, "To", NULL, app->to)) == 0 &&
        (rc = smtpx_msg_set_subject(msg, subject)) == 0 &&
        (rc = smtpx_msg_add_part(msg, &text)) == 0 &&
        (rc = smtpx_msg_add_fd(msg, &file, fd)) == 0 &&
        (rc = smtpx_outbox_begin(app->outbox, &env, &om)) == 0 &&
        (rc = smtpx_outbox_add_rcpt(om, app->to,
                                    app->via ? SMTPX_DSN_NOTIFY_NEVER
                                             : SMTPX_DSN_NOTIFY_FAILURE,
                                    NULL)) == 0) {
        /* The file is read while the message is written to the outbox. */
        while ((n = smtpx_msg_read(msg, buf, sizeof(buf))) > 0 &&
               (rc = smtpx_outbox_write(om, buf, (size_t)n)) == 0)
            ;
        if (rc == 0 && n < 0)
            rc = (int)n;
        if (rc == 0) /* durable in the outbox and the queue: sent */
            rc = smtpx_outbox_commit(om, id, sizeof(id));
        else
            smtpx_outbox_abort(om);
    }
    smtpx_msg_free(msg);
    close(fd);
    if (rc != 0) {
        fprintf(stderr, "smtpx-orders: %s: %s\n", path, smtpx_strerror(rc));
        app->errors++;
    } else {
        printf("sent: %s %s\n", id, path);
    }
}

/* input_ready - file names on the standard input, one per line */
static void input_ready(smtpx_loop *loop, int fd, int events, void *user_data)
{
    orders *app = user_data;
    ssize_t n =
        read(fd, app->in + app->inlen, sizeof(app->in) - 1 - app->inlen);
    char *nl;

    (void)events;
    if (n < 0 && errno == EINTR)
        return;
    if (n <= 0) { /* the end, or an error: no more orders */
        if (n < 0) {
            perror("smtpx-orders: standard input");
            app->errors++;
        }
        app->in[app->inlen] = '\0'; /* a last line without its newline */
        if (app->inlen > 0)
            send_order(app, app->in);
        smtpx_loop_unwatch(loop, fd);
        app->input_done = 1;
        check_done(app);
        return;
    }
    app->inlen += (size_t)n;
    while ((nl = memchr(app->in, '\n', app->inlen)) != NULL) {
        size_t used = (size_t)(nl - app->in) + 1;
        *nl = '\0';
        if (app->in[0] != '\0')
            send_order(app, app->in);
        memmove(app->in, nl + 1, app->inlen - used);
        app->inlen -= used;
    }
    if (app->inlen == sizeof(app->in) - 1) {
        fprintf(stderr, "smtpx-orders: standard input: line too long\n");
        app->errors++;
        app->inlen = 0;
    }
}

/* ---- the listener of the acknowledgements ---------------------------------
 */

static void set_reply(smtpx_reply *r, int code, int e2, int e3,
                      const char *text)
{
    r->code = code;
    r->enh[0] = (uint16_t)(code / 100);
    r->enh[1] = (uint16_t)e2;
    r->enh[2] = (uint16_t)e3;
    r->text = text;
}

/* One session of the listener: the application and the report being
 * read. */
typedef struct session {
    orders *app;
    smtpx_report *report;
} session;

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
    if (strcasecmp(rcpt->to, ss->app->from) != 0)
        set_reply(reply, 550, 1, 1, "Only acknowledgements are taken here");
    return 0;
}

static int cb_data_begin(smtpx_server *s, const smtpx_data_info *info,
                         smtpx_reply *reply, void *user_data)
{
    session *ss = user_data;

    (void)s;
    (void)info;
    if (smtpx_report_new(&ss->report, NULL) != 0)
        set_reply(reply, 451, 3, 0, "Out of memory, try later");
    return 0;
}

static int cb_data_chunk(smtpx_server *s, const uint8_t *data, size_t len,
                         void *user_data)
{
    session *ss = user_data;

    (void)s;
    /* Errors are sticky: the rest is read, and answered at the end. */
    smtpx_report_feed(ss->report, data, len);
    return 0;
}

static int cb_data_end(smtpx_server *s, smtpx_reply *reply, void *user_data)
{
    session *ss = user_data;
    int rc = smtpx_report_end(ss->report);

    (void)s;
    if (rc == 0)
        rc = smtpx_outbox_ack(ss->app->outbox, ss->report, ss->app->from);
    if (rc >= 0) {
        set_reply(reply, 250, 0, 0, "Acknowledgement taken");
    } else if (rc == SMTPX_ERR_PROTO || rc == SMTPX_ERR_LIMIT) {
        set_reply(reply, 550, 6, 0, "Not an acknowledgement (MDN or DSN)");
    } else {
        fprintf(stderr, "smtpx-orders: %s\n", smtpx_strerror(rc));
        set_reply(reply, 451, 3, 0, "Cannot take it now, try later");
    }
    check_done(ss->app);
    return 0;
}

static void cb_txn_end(smtpx_server *s, int reason, void *user_data)
{
    session *ss = user_data;

    (void)s;
    (void)reason;
    smtpx_report_free(ss->report);
    ss->report = NULL;
}

static void cb_close(smtpx_server *s, int status, void *user_data)
{
    (void)s;
    (void)status;
    free(user_data); /* its report was freed at the end of the mail */
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

/* ---- the delivery engine, in the loop's thread --------------------------- */

static void engine_step(smtpx_loop *loop, void *user_data)
{
    orders *app = user_data;
    uint64_t at;
    int rc;

    /* Deliveries, and the outbox's resends and giving up. */
    if ((rc = smtpx_mta_run_once(app->mta, 0)) < 0)
        fprintf(stderr, "smtpx-orders: engine: %s\n", smtpx_strerror(rc));
    /* Run by the timer (cancelling it then does nothing) or before it
     * came: set it again. */
    if (app->timer != NULL)
        smtpx_loop_timer_cancel(loop, app->timer);
    app->timer = NULL;
    if ((at = smtpx_mta_expiry(app->mta)) != 0 &&
        smtpx_loop_timer_add(loop, at, engine_step, app, &app->timer) != 0)
        fprintf(stderr, "smtpx-orders: engine: no timer\n");
    check_done(app);
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
    if (level <= SMTPX_LOG_NOTICE) /* deferrals, failures, trouble */
        fprintf(stderr, "smtpx-orders: %s\n", msg);
}

/* ---- main ---------------------------------------------------------------- */

/* fail - report a failed call; 1 for the exit status */
static int fail(const char *what, int rc)
{
    fprintf(stderr, "smtpx-orders: %s: %s\n", what,
            rc == SMTPX_ERR_IO ? strerror(errno) : smtpx_strerror(rc));
    return 1;
}

/* open_all - the delivery queue, the outbox over it, their engine */
static int open_all(orders *app, const char *spool, unsigned long timeout,
                    unsigned long resends, const smtpx_config *client_cfg,
                    smtpx_resolver *resolver)
{
    /* A copy the warehouse could not take is retried as often as the
     * outbox resends. */
    smtpx_queue_opts qo = {.size = sizeof(qo),
                           .retry_min_s = (uint32_t)timeout};
    smtpx_outbox_opts oo = {.size = sizeof(oo)};
    smtpx_mta_opts mo = {.size = sizeof(mo)};
    char path[4096];
    int rc;

    snprintf(path, sizeof(path), "%s/queue", spool);
    if (mkdir(spool, 0700) != 0 && errno != EEXIST)
        return fail(spool, SMTPX_ERR_IO);
    if ((rc = smtpx_queue_open(&app->queue, path, &qo)) != 0)
        return fail(path, rc);
    oo.flags = SMTPX_OUTBOX_NO_DSN;
    oo.queue = app->queue;
    oo.hostname = strchr(app->from, '@') + 1;
    oo.ack_address = app->from;
    oo.ack_timeout_s = (uint32_t)timeout;
    oo.max_resends = (uint32_t)resends;
    oo.on_event = on_event;
    oo.event_data = app;
    snprintf(path, sizeof(path), "%s/outbox", spool);
    if ((rc = smtpx_outbox_open(&app->outbox, path, &oo)) != 0)
        return fail(path, rc);
    mo.client_cfg = client_cfg;
    mo.hostname = oo.hostname;
    mo.smarthost = app->via; /* NULL: by MX, through the resolver */
    mo.resolver = resolver;
    mo.on_log = engine_log;
    mo.outbox = app->outbox; /* the engine runs its resends */
    if ((rc = smtpx_mta_new(&app->mta, app->queue, &mo)) != 0)
        return fail("delivery engine", rc);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"spool", required_argument, NULL, 's'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"via", required_argument, NULL, 'v'},
        {"ack-timeout", required_argument, NULL, 'T'},
        {"max-resend", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0}};
    orders app = {.from = NULL};
    const char *listen = NULL, *spool = NULL;
    unsigned long timeout = 600, resends = 5;
    smtpx_config *scfg = NULL, *ccfg = NULL;
    smtpx_resolver *resolver = NULL;
    struct sigaction sa = {.sa_handler = on_signal};
    char host[256], port[32];
    int c, i, fd, rc, status = 1;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'l')
            listen = optarg;
        else if (c == 's')
            spool = optarg;
        else if (c == 'f')
            app.from = optarg;
        else if (c == 't')
            app.to = optarg;
        else if (c == 'v')
            app.via = optarg;
        else if (c == 'T')
            timeout = strtoul(optarg, NULL, 10);
        else if (c == 'n')
            resends = strtoul(optarg, NULL, 10);
        else
            return 2;
    }
    if (listen == NULL || spool == NULL || app.from == NULL ||
        strchr(app.from, '@') == NULL || app.to == NULL || timeout == 0 ||
        timeout > 86400 || resends == 0 || resends > 100) {
        fprintf(stderr, "usage: smtpx-orders --listen ADDR:PORT --spool DIR "
                        "--from ADDR --to ADDR\n"
                        "       [--via HOST:PORT] [--ack-timeout SECONDS] "
                        "[--max-resend N] [FILE ...] [-]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line per event, as it comes */
    if (app.via == NULL && (rc = smtpx_resolver_new(&resolver, NULL)) != 0)
        return fail("resolver", rc);
    if ((rc = smtpx_config_new(&ccfg, SMTPX_ROLE_CLIENT, NULL)) != 0 ||
        (rc = smtpx_config_set_hostname(ccfg, strchr(app.from, '@') + 1)) !=
            0 ||
        (rc = smtpx_config_freeze(ccfg)) != 0 ||
        (rc = smtpx_config_new(&scfg, SMTPX_ROLE_SERVER, NULL)) != 0 ||
        (rc = smtpx_config_freeze(scfg)) != 0) {
        fail("settings", rc);
        goto out;
    }
    if (open_all(&app, spool, timeout, resends, ccfg, resolver) != 0)
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
    the_loop = app.loop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    if (smtpx_outbox_count(app.outbox) > 0)
        printf("waiting: %zu orders of an earlier run\n",
               smtpx_outbox_count(app.outbox));
    for (i = optind; i < argc; i++)
        if (strcmp(argv[i], "-") != 0)
            send_order(&app, argv[i]);
    if (optind < argc && strcmp(argv[argc - 1], "-") != 0)
        app.input_done = 1;
    else if (smtpx_loop_watch(app.loop, 0, SMTPX_WAIT_READ, input_ready,
                              &app) != 0)
        while (!app.input_done) /* a regular file, which epoll refuses */
            input_ready(app.loop, 0, SMTPX_WAIT_READ, &app);
    engine_step(app.loop, &app);
    if ((rc = smtpx_loop_run(app.loop)) != 0)
        fail("loop", rc);
    else if (app.stopping && app.not_acked == 0 && app.errors == 0)
        status = 0;
    printf("done: %lu acknowledged, %lu not, %lu errors, %zu waiting\n",
           app.acked, app.not_acked, app.errors,
           smtpx_outbox_count(app.outbox));
out:
    smtpx_loop_free(app.loop);
    smtpx_mta_free(app.mta); /* what was not sent stays in the queue */
    smtpx_outbox_free(app.outbox);
    smtpx_queue_free(app.queue);
    smtpx_resolver_free(resolver);
    smtpx_config_free(scfg);
    smtpx_config_free(ccfg);
    return status;
}
