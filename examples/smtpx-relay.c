/*
 * smtpx-relay - a small mail relay made of libsmtpx: it receives mail,
 * keeps it in a durable queue, and delivers it by MX or to a smarthost,
 * or locally (Maildir, mbox or a command), with retries and bounces.
 *
 *   smtpx-relay --listen 127.0.0.1:25 --queue /var/spool/smtpx \
 *               --smarthost mail.example.net:587
 *   smtpx-relay --queue /var/spool/smtpx --list
 *   smtpx-relay --queue /var/spool/smtpx --flush
 *
 * A message is answered 250 only once it is durable in the queue (see
 * smtpx_queue_open(3) for the order of writes and syncs).  Mail for a
 * domain other than a --local-domain is taken only from an authenticated
 * client (--auth-file, AUTH under TLS) or an address in --mynetworks: the
 * relay is never open.  A client on a local socket (--listen /PATH) may
 * relay: the socket's mode (--socket-mode) says who may connect, as the
 * mode of Postfix's sendmail(1) drop directory does.
 *
 * Threads: --intake-threads receiving loops (smtpx_loop, 4 by default),
 * each on its own listening socket for every address (SO_REUSEPORT, so
 * the kernel spreads connections), and one delivery engine
 * (smtpx_mta_run).  The queue is the only thing they share, and a commit
 * wakes the engine.  Several loops let the fsyncs of several messages be
 * in flight at once, which the file system commits together; one loop
 * would wait for each in turn.  SIGTERM and SIGINT stop receiving (transactions
 * in progress finish) and let deliveries in flight finish and be recorded; a
 * restart resumes.  SIGUSR1 retries the deferred mail now (--flush sends it).
 *
 * --await-ack DURATION closes the loop (<libsmtpx/ack.h>): what is taken
 * for relaying is committed through an smtpx_outbox in DIR/outbox, which
 * gives it a Message-ID, a Disposition-Notification-To (--ack-address),
 * ENVID and NOTIFY=SUCCESS,FAILURE, and keeps it until an MDN or a
 * "delivered" DSN acknowledges it or a failure report ends it (recipients
 * of a --local-domain go straight to the queue).  Every message received
 * is read as a possible report while it streams in (smtpx_report); one
 * the outbox takes is answered 250 and goes nowhere.  The delivery engine runs
 * the outbox's deadlines: a resend (the same octets, the same Message-ID) after
 * DURATION, doubling, --max-resend times, then giving up (a report to
 * --ack-report).  Each change is one log line, "ack: ID RCPT STATE sends=N
 * DETAIL".
 */
#define _DEFAULT_SOURCE /* SO_REUSEPORT */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <mbedtls/base64.h>

#include <libsmtpx/smtpx.h>
#include <libsmtpx/ack.h>
#include <libsmtpx/posix.h>
#include <libsmtpx/tls_mbedtls.h>

#define MAX_LISTEN  16
#define MAX_USERS   1024
#define MAX_THREADS 64

typedef struct relay_opts {
    const char *listen[MAX_LISTEN];
    int nlisten;
    const char *queue;
    const char *hostname;
    const char *smarthost;
    const char *smarthost_user;
    const char *smarthost_tls;
    const char *mx_tls;
    const char *tls_cert, *tls_key, *tls_ca;
    const char *auth_file;
    const char *local_domains[MAX_LISTEN];
    int nlocal;
    const char *mynetworks[MAX_LISTEN];
    int nnet;
    smtpx_mta_tls_policy policies[MAX_LISTEN];
    char policy_domains[MAX_LISTEN][256];
    int npolicies;
    int local_kind;
    const char *local_path;
    const char *postmaster;
    uint32_t retry_min, retry_max, expire, delay_warn;
    uint16_t mx_port;
    uint64_t max_size;
    uint64_t max_msgs;
    size_t max_conns, max_per_dest, max_local;
    int nosync;
    uint32_t await_ack; /* --await-ack: 0 without an outbox */
    uint32_t await_max; /* --await-ack-max: 0, the outbox's default */
    long max_resend;    /* --max-resend, -1: the outbox's default */
    const char *ack_address, *ack_report;
    int threads;
    int list, flush;
    int socket_mode; /* --socket-mode; -1: from the umask */
    int verbose, quiet;
} relay_opts;

typedef struct relay_user {
    char name[256];
    uint32_t iterations;
    uint8_t salt[64];
    size_t salt_len;
    uint8_t stored_key[32];
    uint8_t server_key[32];
} relay_user;

typedef struct relay_app {
    relay_opts opts;
    smtpx_queue *q;
    smtpx_mta *mta;
    smtpx_mbedtls *tls, *ctls;
    smtpx_outbox *ob; /* --await-ack */
    char ack_address[512];
    relay_user *users;
    size_t nusers;
    pthread_mutex_t mu; /* accepted */
    unsigned long long accepted;
    const char *sockets[MAX_LISTEN]; /* local sockets made: removed at exit */
    int nsockets;
} relay_app;

/* One recipient's DSN parameters (smtpx_server_rcpt_data). */
typedef struct relay_rcpt {
    unsigned notify;
    int ack; /* the ack address: taken from anyone, for reports only */
    char orcpt[512];
} relay_rcpt;

typedef struct relay_session {
    relay_app *app;
    int trusted; /* --mynetworks */
    char peer[80];
    /* MAIL FROM */
    char from[1024];
    char envid[256];
    int has_envid;
    int ret, body, smtputf8;
    int to_ack;             /* a recipient is the ack address */
    int begun;              /* on_data_begin succeeded */
    smtpx_queue_msg *msg;   /* the queue's copy (local recipients, or all) */
    smtpx_outbox_msg *omsg; /* the outbox's (recipients relayed) */
    smtpx_report *rep;      /* --await-ack: each message parsed as it comes */
    int rep_err;
    int write_err;
    char reply_text[96]; /* the 250's text: each session its own */
} relay_session;

static smtpx_loop *the_loops[MAX_THREADS];
static int nloops;
static smtpx_mta *the_mta;
static volatile sig_atomic_t signals;

static void on_signal(int sig)
{
    int saved = errno;

    int i;

    if (sig == SIGUSR1) {
        smtpx_mta_flush(the_mta);
        errno = saved;
        return;
    }
    signals++;
    for (i = 0; i < nloops; i++)
        smtpx_loop_stop(the_loops[i], signals > 1 ? SMTPX_SHUTDOWN_NOW
                                                  : SMTPX_SHUTDOWN_DRAIN);
    smtpx_mta_stop(the_mta);
    errno = saved;
}

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void
logline(const char *fmt, ...)
{
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    va_list ap;

    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    flockfile(stderr);
    fprintf(stderr, "%s smtpx-relay[%ld]: ", when, (long)getpid());
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    funlockfile(stderr);
}

/* ---- AUTH (the --auth-file format of smtpx-recv) ------------------------- */

static const relay_user *find_user(const relay_app *app, const char *name)
{
    size_t i;

    for (i = 0; i < app->nusers; i++)
        if (strcmp(app->users[i].name, name) == 0)
            return &app->users[i];
    return NULL;
}

/* same - constant-time comparison of two keys */
static int same(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t d = 0;
    size_t i;

    for (i = 0; i < n; i++)
        d |= (uint8_t)(a[i] ^ b[i]);
    return d == 0;
}

/* cb_auth - PLAIN and LOGIN: derive the StoredKey from the password the
 * client gave and compare; SCRAM-SHA-256 arrives proven (secret NULL) */
static int cb_auth(smtpx_server *s, const smtpx_auth_info *a,
                   smtpx_reply *reply, void *user_data)
{
    relay_session *rs = user_data;
    const relay_user *u = find_user(rs->app, a->authcid);
    uint8_t stored[32], server[32];
    int ok;

    (void)s;
    if (a->authzid[0] != '\0' && strcmp(a->authzid, a->authcid) != 0) {
        /* Acting as someone else is not allowed here.  The reply is set
         * explicitly: for SCRAM the core has proven the password and the
         * prefilled reply is 235. */
        reply->code = 535;
        reply->enh[0] = 5;
        reply->enh[1] = 7;
        reply->enh[2] = 8;
        reply->text = "Not authorized to act as that identity";
        return 0;
    }
    if (a->secret == NULL) {
        ok = u != NULL;
    } else {
        ok = u != NULL &&
             smtpx_scram_keys(a->secret, a->secret_len, u->salt, u->salt_len,
                              u->iterations, stored, server) == 0 &&
             same(stored, u->stored_key, sizeof(stored));
    }
    if (ok) {
        reply->code = 235;
        reply->enh[0] = 2;
        reply->enh[1] = 7;
        reply->enh[2] = 0;
        reply->text = "Authentication successful";
    }
    return 0;
}

/* cb_auth_lookup - SCRAM-SHA-256: what the file stores */
static int cb_auth_lookup(smtpx_server *s, const smtpx_auth_info *a,
                          smtpx_auth_secret *secret, void *user_data)
{
    relay_session *rs = user_data;
    const relay_user *u = find_user(rs->app, a->authcid);

    (void)s;
    if (u == NULL)
        return 0; /* found stays 0: the exchange fails at its end */
    secret->found = 1;
    secret->salt = u->salt;
    secret->salt_len = u->salt_len;
    secret->iterations = u->iterations;
    memcpy(secret->stored_key, u->stored_key, 32);
    memcpy(secret->server_key, u->server_key, 32);
    return 0;
}

/* cb_rcpt - with AUTH, only local domains take mail from anyone */

/* b64_decode - decode one field of an entry */
static int b64_decode(const char *p, size_t n, uint8_t *out, size_t size,
                      size_t *len)
{
    return mbedtls_base64_decode(out, size, len, (const unsigned char *)p, n) ==
                   0
               ? 0
               : -1;
}

/*
 * load_users - "user:SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY" lines
 * (RFC 5803, base64 fields); "#" comments and empty lines are skipped.
 */
static int load_users(relay_app *app, const char *path)
{
    FILE *fp = fopen(path, "r");
    char line[1024];
    int lineno = 0;

    if (fp == NULL) {
        fprintf(stderr, "smtpx-relay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    app->users = calloc(MAX_USERS, sizeof(*app->users));
    if (app->users == NULL) {
        fclose(fp);
        return -1;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        relay_user *u = &app->users[app->nusers];
        char *colon, *iter, *salt, *keys, *server, *end;
        size_t n;
        unsigned long it;

        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        colon = strchr(line, ':');
        if (app->nusers == MAX_USERS || colon == NULL ||
            (size_t)(colon - line) >= sizeof(u->name) ||
            strncmp(colon + 1, "SCRAM-SHA-256$", 14) != 0)
            goto bad;
        memcpy(u->name, line, (size_t)(colon - line));
        u->name[colon - line] = '\0';
        iter = colon + 15;
        salt = strchr(iter, ':');
        keys = salt ? strchr(salt, '$') : NULL;
        server = keys ? strchr(keys, ':') : NULL;
        if (server == NULL)
            goto bad;
        errno = 0;
        it = strtoul(iter, &end, 10);
        if (errno != 0 || end != salt || it == 0 || it > 10000000)
            goto bad;
        u->iterations = (uint32_t)it;
        if (b64_decode(salt + 1, (size_t)(keys - salt - 1), u->salt,
                       sizeof(u->salt), &u->salt_len) < 0 ||
            u->salt_len == 0 ||
            b64_decode(keys + 1, (size_t)(server - keys - 1), u->stored_key,
                       sizeof(u->stored_key), &n) < 0 ||
            n != 32 ||
            b64_decode(server + 1, strlen(server + 1), u->server_key,
                       sizeof(u->server_key), &n) < 0 ||
            n != 32)
            goto bad;
        app->nusers++;
        continue;
    bad:
        fprintf(stderr, "smtpx-relay: %s:%d: not a SCRAM-SHA-256 entry\n", path,
                lineno);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    return 0;
}

/* ---- receiving ------------------------------------------------------------
 */

/* in_network - addr in one of "a.b.c.d/len" or an exact address */
static int in_network(const relay_opts *o, const char *addr)
{
    struct in_addr a, n;
    int i;

    if (addr == NULL)
        return 0;
    for (i = 0; i < o->nnet; i++) {
        char net[64], *slash;
        long len = 32;

        snprintf(net, sizeof(net), "%s", o->mynetworks[i]);
        slash = strchr(net, '/');
        if (slash != NULL) {
            *slash = '\0';
            len = strtol(slash + 1, NULL, 10);
        }
        if (strcmp(net, addr) == 0)
            return 1;
        if (len >= 0 && len <= 32 && inet_pton(AF_INET, net, &n) == 1 &&
            inet_pton(AF_INET, addr, &a) == 1) {
            uint32_t mask = len == 0 ? 0 : ~0u << (32 - len);
            if ((ntohl(a.s_addr) & mask) == (ntohl(n.s_addr) & mask))
                return 1;
        }
    }
    return 0;
}

static int is_local(const relay_opts *o, const char *domain)
{
    int i;

    for (i = 0; domain != NULL && i < o->nlocal; i++)
        if (strcasecmp(domain, o->local_domains[i]) == 0)
            return 1;
    return 0;
}

static void set_reply(smtpx_reply *r, int code, int e0, int e1, int e2,
                      const char *text)
{
    r->code = code;
    r->enh[0] = (uint16_t)e0;
    r->enh[1] = (uint16_t)e1;
    r->enh[2] = (uint16_t)e2;
    r->text = text;
}

static int cb_connect(smtpx_server *s, const smtpx_peer *peer,
                      smtpx_reply *reply, void *user_data)
{
    relay_app *app = user_data;
    relay_session *rs = calloc(1, sizeof(*rs));

    (void)reply;
    if (rs == NULL)
        return SMTPX_ERR_CALLBACK_FAILURE;
    rs->app = app;
    if (peer->addr == NULL) { /* a local socket: its mode let it in */
        rs->trusted = 1;
        snprintf(rs->peer, sizeof(rs->peer), "local");
    } else {
        rs->trusted = in_network(&app->opts, peer->addr);
        snprintf(rs->peer, sizeof(rs->peer),
                 strchr(peer->addr, ':') ? "[%s]:%u" : "%s:%u", peer->addr,
                 (unsigned)peer->port);
    }
    smtpx_server_set_user_data(s, rs);
    return 0;
}

static int cb_mail(smtpx_server *s, const smtpx_mail_info *mail,
                   smtpx_reply *reply, void *user_data)
{
    relay_session *rs = user_data;

    (void)s;
    if (strlen(mail->from) >= sizeof(rs->from) ||
        (mail->envid != NULL && strlen(mail->envid) >= sizeof(rs->envid))) {
        set_reply(reply, 553, 5, 1, 7, "Sender address too long");
        return 0;
    }
    strcpy(rs->from, mail->from);
    rs->has_envid = mail->envid != NULL;
    if (rs->has_envid)
        strcpy(rs->envid, mail->envid);
    rs->ret = mail->ret;
    rs->body = mail->body;
    rs->smtputf8 = mail->smtputf8;
    rs->to_ack = 0;
    return 0;
}

static int cb_rcpt(smtpx_server *s, const smtpx_rcpt_info *rcpt,
                   void **rcpt_data, smtpx_reply *reply, void *user_data)
{
    relay_session *rs = user_data;
    relay_rcpt *rr;
    int ack =
        rs->app->ob != NULL && strcasecmp(rcpt->to, rs->app->ack_address) == 0;

    /* Reports come to the ack address from any mail system. */
    if (!ack && !is_local(&rs->app->opts, rcpt->domain) && !rs->trusted &&
        smtpx_server_auth_id(s) == NULL) {
        set_reply(reply, 554, 5, 7, 1, "Relay access denied");
        return 0;
    }
    if (rcpt->orcpt != NULL && strlen(rcpt->orcpt) >= sizeof(rr->orcpt)) {
        set_reply(reply, 501, 5, 5, 4, "ORCPT too long");
        return 0;
    }
    rr = calloc(1, sizeof(*rr));
    if (rr == NULL) {
        set_reply(reply, 452, 4, 3, 1, "Out of memory, try later");
        return 0;
    }
    rr->notify = rcpt->notify;
    rr->ack = ack;
    rs->to_ack |= ack;
    if (rcpt->orcpt != NULL)
        strcpy(rr->orcpt, rcpt->orcpt);
    *rcpt_data = rr;
    return 0;
}

static void store_error(relay_session *rs, smtpx_reply *reply, int rc,
                        const char *what)
{
    logline("%s %s: %s (%s)", rs->peer, what, smtpx_strerror(rc),
            strerror(errno));
    if (rc == SMTPX_ERR_NOSPACE)
        set_reply(reply, 452, 4, 3, 1, "Insufficient system storage");
    else
        set_reply(reply, 451, 4, 3, 0, "Local error in processing, try later");
}

/* rcpt_local - recipient i is delivered by this relay (a --local-domain) */
static int rcpt_local(smtpx_server *s, const relay_opts *o, size_t i)
{
    const char *at = strrchr(smtpx_server_rcpt_addr(s, i), '@');

    return at != NULL && is_local(o, at + 1);
}

/*
 * begin_copies - where the message goes: recipients relayed elsewhere
 * through the outbox (--await-ack, a sender that is not null: a report is
 * never awaited), the others (local ones, or all without an outbox)
 * straight to the queue; the ack address to neither.
 */
static int begin_copies(smtpx_server *s, relay_session *rs)
{
    relay_app *app = rs->app;
    smtpx_queue_env env;
    size_t i, n = smtpx_server_rcpt_count(s);
    int rc = 0, outbox = app->ob != NULL && rs->from[0] != '\0';

    memset(&env, 0, sizeof(env));
    env.size = sizeof(env);
    env.from = rs->from;
    env.ret = rs->ret;
    env.envid = rs->has_envid ? rs->envid : NULL;
    env.body = rs->body;
    env.smtputf8 = rs->smtputf8;
    for (i = 0; rc == 0 && i < n; i++) {
        const relay_rcpt *rr = smtpx_server_rcpt_data(s, i);
        const char *addr = smtpx_server_rcpt_addr(s, i);
        unsigned notify = rr ? rr->notify : 0;
        const char *orcpt = rr && rr->orcpt[0] ? rr->orcpt : NULL;
        if (rr != NULL && rr->ack)
            continue;
        if (outbox && !rcpt_local(s, &app->opts, i)) {
            if (rs->omsg == NULL &&
                (rc = smtpx_outbox_begin(app->ob, &env, &rs->omsg)) != 0)
                break;
            rc = smtpx_outbox_add_rcpt(rs->omsg, addr, notify, orcpt);
        } else {
            if (rs->msg == NULL &&
                (rc = smtpx_queue_begin(app->q, &env, &rs->msg)) != 0)
                break;
            rc = smtpx_queue_add_rcpt(rs->msg, addr, notify, orcpt);
        }
    }
    return rc;
}

/* abort_copies - nothing of the message is kept */
static void abort_copies(relay_session *rs)
{
    smtpx_queue_abort(rs->msg);
    rs->msg = NULL;
    smtpx_outbox_abort(rs->omsg);
    rs->omsg = NULL;
}

/* write_copies - the same octets to every copy */
static int write_copies(relay_session *rs, const void *data, size_t len)
{
    int rc = 0;

    if (rs->msg != NULL)
        rc = smtpx_queue_write(rs->msg, data, len);
    if (rc == 0 && rs->omsg != NULL)
        rc = smtpx_outbox_write(rs->omsg, data, len);
    return rc;
}

static int cb_data_begin(smtpx_server *s, const smtpx_data_info *info,
                         smtpx_reply *reply, void *user_data)
{
    relay_session *rs = user_data;
    char hdr[2048];
    smtpx_ssize n;
    int rc;

    (void)info;
    rs->write_err = 0;
    rs->rep_err = 0;
    rs->begun = 0;
    rc = begin_copies(s, rs);
    if (rc == 0 && rs->app->ob != NULL) {
        /* Every message is read as a possible report while it streams
         * in: only its status part is kept. */
        rc = rs->rep == NULL ? smtpx_report_new(&rs->rep, NULL)
                             : smtpx_report_reset(rs->rep);
    }
    if (rc == 0) {
        /* The Return-Path is added at final delivery, not here. */
        n = smtpx_server_received_header(s, NULL, (int64_t)time(NULL), 0, hdr,
                                         sizeof(hdr));
        if (n > 0)
            rc = write_copies(rs, hdr, (size_t)n);
    }
    if (rc < 0) {
        abort_copies(rs);
        store_error(rs, reply, rc, "cannot queue a message");
        return 0;
    }
    rs->begun = 1;
    return 0;
}

static int cb_data_chunk(smtpx_server *s, const uint8_t *data, size_t len,
                         void *user_data)
{
    relay_session *rs = user_data;

    (void)s;
    if (rs->begun && rs->write_err == 0)
        rs->write_err = write_copies(rs, data, len);
    if (rs->rep != NULL && rs->rep_err == 0)
        rs->rep_err = smtpx_report_feed(rs->rep, data, len);
    return 0;
}

/* report_says - "rcpt action, ..." of the first recipients of a report,
 * for the log */
static void report_says(const smtpx_report *r, char *out, size_t size)
{
    size_t i, n = smtpx_report_rcpt_count(r), len = 0;
    smtpx_report_rcpt rr;

    out[0] = '\0';
    for (i = 0; i < n && i < 3 && len < size; i++) {
        if (smtpx_report_get_rcpt(r, i, &rr) != 0)
            break;
        len += (size_t)snprintf(out + len, size - len, "%s%s %s", i ? ", " : "",
                                rr.rcpt, rr.action);
    }
    if (n > 3 && len < size)
        snprintf(out + len, size - len, ", ...");
}

/*
 * take_report - --await-ack: is the message a report the outbox takes?
 * 1: yes, it is consumed (reply set: 250 or, when the outbox could not
 * record it, 451); 0: no, the message goes on as any other; -1: refused
 * (reply set).
 */
static int take_report(relay_session *rs, smtpx_reply *reply)
{
    relay_app *app = rs->app;
    const char *about;
    int rc = rs->rep_err;

    if (rc == 0)
        rc = smtpx_report_end(rs->rep);
    if (rc == 0) {
        rc = smtpx_outbox_ack(app->ob, rs->rep,
                              rs->to_ack ? app->ack_address : NULL);
        if (rc == SMTPX_ERR_NOT_FOUND)
            return 0;
        if (rc < 0) {
            store_error(rs, reply, rc, "report not recorded");
            return 1;
        }
        about = smtpx_report_message_id(rs->rep);
        if (about == NULL)
            about = smtpx_report_envid(rs->rep);
        if (!app->opts.quiet) {
            char what[300];
            report_says(rs->rep, what, sizeof(what));
            logline(
                "%s: %s from <%s> about <%s> taken: %d recipient%s "
                "changed (%s)",
                rs->peer,
                smtpx_report_kind(rs->rep) == SMTPX_REPORT_MDN ? "MDN" : "DSN",
                rs->from, about ? about : "?", rc, rc == 1 ? "" : "s", what);
        }
        set_reply(reply, 250, 2, 0, 0, "Ok: report taken");
        return 1;
    }
    if (rc == SMTPX_ERR_NOMEM) {
        store_error(rs, reply, rc, "report not read");
        return 1;
    }
    if (!rs->to_ack)
        return 0;
    /* Not a report, yet for the ack address: nothing else goes there. */
    if (!app->opts.quiet)
        logline("%s: from=<%s> to <%s> refused: not a report%s", rs->peer,
                rs->from, app->ack_address,
                rc == SMTPX_ERR_LIMIT ? " (over a limit of the parser)" : "");
    set_reply(reply, 550, 5, 7, 1, "Only reports are taken for this address");
    return -1;
}

static int cb_data_end(smtpx_server *s, smtpx_reply *reply, void *user_data)
{
    relay_session *rs = user_data;
    char id[32], msgid[256];
    int rc = rs->write_err;

    if (!rs->begun) {
        set_reply(reply, 451, 4, 3, 0, "Local error in processing");
        return 0;
    }
    if (rs->app->ob != NULL && take_report(rs, reply) != 0) {
        abort_copies(rs);
        return 0;
    }
    if (rs->msg == NULL && rs->omsg == NULL) {
        /* Only for the ack address, and a report it was not: refused
         * above.  Nothing else leaves a message without a copy. */
        set_reply(reply, 451, 4, 3, 0, "Local error in processing");
        return 0;
    }
    id[0] = msgid[0] = '\0';
    if (rc != 0) {
        abort_copies(rs);
    } else {
        /* The queue's copy first: it can be deleted again when the
         * outbox's fails (the outbox's cannot). */
        if (rs->msg != NULL)
            rc = smtpx_queue_commit(rs->msg, id, sizeof(id));
        rs->msg = NULL;
        if (rs->omsg != NULL) {
            if (rc == 0) {
                rc = smtpx_outbox_commit(rs->omsg, msgid, sizeof(msgid));
                if (rc != 0 && id[0] != '\0')
                    (void)smtpx_queue_delete(rs->app->q, id);
            } else {
                smtpx_outbox_abort(rs->omsg);
            }
            rs->omsg = NULL;
        }
    }
    if (rc < 0) {
        store_error(rs, reply, rc, "message not queued");
        return 0;
    }
    /* Durable in the queue (and the outbox): now, and only now, 250. */
    if (msgid[0] != '\0')
        snprintf(rs->reply_text, sizeof(rs->reply_text),
                 "Ok: queued as <%.60s>", msgid);
    else
        snprintf(rs->reply_text, sizeof(rs->reply_text), "Ok: queued as %s",
                 id);
    reply->text = rs->reply_text;
    pthread_mutex_lock(&rs->app->mu);
    rs->app->accepted++;
    pthread_mutex_unlock(&rs->app->mu);
    if (!rs->app->opts.quiet)
        logline("%s: client=%s from=<%s> nrcpt=%zu size=%llu%s%s%s",
                id[0] ? id : "outbox", rs->peer, rs->from,
                smtpx_server_rcpt_count(s),
                (unsigned long long)smtpx_server_data_size(s),
                msgid[0] ? " awaiting-ack=<" : "", msgid, msgid[0] ? ">" : "");
    return 0;
}

static void cb_txn_end(smtpx_server *s, int reason, void *user_data)
{
    relay_session *rs = user_data;
    size_t i;

    (void)reason;
    abort_copies(rs);
    rs->begun = 0;
    for (i = 0; i < smtpx_server_rcpt_count(s); i++)
        free(smtpx_server_rcpt_data(s, i));
}

static void cb_log(smtpx_server *s, int level, const char *msg, void *user_data)
{
    relay_session *rs = user_data;

    (void)s;
    if (rs == NULL || (rs->app->opts.quiet && level > SMTPX_LOG_ERROR) ||
        (!rs->app->opts.verbose && level > SMTPX_LOG_NOTICE))
        return;
    logline("%s %s", rs->peer, msg);
}

static void cb_close(smtpx_server *s, int status, void *user_data)
{
    relay_session *rs = user_data;

    (void)status;
    if (rs == NULL)
        return;
    abort_copies(rs);
    smtpx_report_free(rs->rep);
    smtpx_server_set_user_data(s, NULL);
    free(rs);
}

static const smtpx_server_callbacks relay_cbs = {
    .on_connect = cb_connect,
    .on_mail = cb_mail,
    .on_rcpt = cb_rcpt,
    .on_data_begin = cb_data_begin,
    .on_data_chunk = cb_data_chunk,
    .on_data_end = cb_data_end,
    .on_txn_end = cb_txn_end,
    .on_log = cb_log,
    .on_close = cb_close,
};

/* ---- delivering -----------------------------------------------------------
 */

static void mta_log(int level, const char *msg, void *log_user_data)
{
    relay_app *app = log_user_data;

    if ((app->opts.quiet && level > SMTPX_LOG_ERROR) ||
        (!app->opts.verbose && level > SMTPX_LOG_INFO))
        return;
    logline("%s", msg);
}

/* outbox_event - one line per change of an outbox recipient's state */
static void outbox_event(smtpx_outbox *ob, const smtpx_outbox_event *ev,
                         void *user_data)
{
    (void)ob;
    (void)user_data;
    logline("ack: %s %s %s sends=%u%s%s", ev->message_id, ev->rcpt,
            smtpx_outbox_state_name(ev->state), ev->sends,
            ev->detail[0] ? " " : "", ev->detail);
}

static void *delivery_thread(void *arg)
{
    relay_app *app = arg;
    int rc = smtpx_mta_run(app->mta);

    if (rc < 0)
        logline("delivery stopped: %s", smtpx_strerror(rc));
    return NULL;
}

static void *intake_thread(void *arg)
{
    smtpx_loop *loop = arg;

    if (smtpx_loop_run(loop) < 0)
        logline("receiving stopped: poll failed");
    return NULL;
}

/* listen_local - a listening local socket at path, its mode set (a stale
 * socket file is replaced; smtpx_posix_listen(3)); 0 or -1, said why */
static int listen_local(relay_app *app, const char *path, int *fd)
{
    int rc = smtpx_posix_listen(path, "", 0, fd);

    if (rc < 0) {
        fprintf(stderr, "smtpx-relay: cannot listen on %s: %s%s%s\n", path,
                rc == SMTPX_ERR_INVALID_ARGUMENT ? "a path too long for a "
                                                   "socket"
                                                 : smtpx_strerror(rc),
                rc == SMTPX_ERR_IO ? ": " : "",
                rc == SMTPX_ERR_IO ? strerror(errno) : "");
        return -1;
    }
    app->sockets[app->nsockets++] = path;
    /* Who may connect: a socket's mode is its access control. */
    if (app->opts.socket_mode >= 0 &&
        chmod(path, (mode_t)app->opts.socket_mode) < 0) {
        fprintf(stderr, "smtpx-relay: cannot set the mode of %s: %s\n", path,
                strerror(errno));
        close(*fd);
        return -1;
    }
    return 0;
}

/* listen_reuseport - a listening socket of its own for one loop; every
 * loop's socket has the same address (SO_REUSEPORT) */
static int listen_reuseport(const char *host, const char *port, int *fd_out)
{
    struct addrinfo hints, *ai, *p;
    int fd = -1, one = 1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(host[0] ? host : NULL, port, &hints, &ai) != 0)
        return -1;
    for (p = ai; p != NULL; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype, p->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (bind(fd, p->ai_addr, p->ai_addrlen) == 0 && listen(fd, 1024) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return -1;
    *fd_out = fd;
    return 0;
}

/* ---- --list and --flush ---------------------------------------------------
 */

/* What --list counts: messages, octets; and --await-ack when given with
 * it, for the first deadline of a message sent once. */
typedef struct list_ctx {
    unsigned long n, octets;
    uint32_t await_ack;
} list_ctx;

static void list_time(char *buf, size_t size, int64_t when)
{
    time_t t = (time_t)when;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, size, "%a %b %d %H:%M:%S", &tm);
}

/* list_head - a message's first line (after the column titles, before
 * the first message), counted */
static void list_head(list_ctx *c, const smtpx_queue_info *info)
{
    char when[32];

    if (c->n++ == 0)
        printf("-Queue ID-------------- --Size-- ----Arrival Time---- "
               "-Sender/Recipient-------\n");
    c->octets += (unsigned long)info->size;
    list_time(when, sizeof(when), info->arrival);
    printf("%-22s%s %8llu %s  %s\n", info->id, info->held ? "!" : " ",
           (unsigned long long)info->size, when,
           info->from[0] ? info->from : "MAILER-DAEMON");
}

static int list_one(const smtpx_queue_info *info, void *user_data)
{
    size_t i;

    list_head(user_data, info);
    for (i = 0; i < info->nrcpts; i++) {
        const smtpx_queue_rcpt *r = &info->rcpts[i];
        if (r->state == SMTPX_QRCPT_DELIVERED)
            continue;
        if (r->reply.code != 0)
            printf("%47s(%d %s%s%s)\n", "", r->reply.code, r->reply.text,
                   r->remote[0] ? " from " : "", r->remote);
        printf("%47s%s%s\n", "", r->addr,
               r->state == SMTPX_QRCPT_FAILED ? " (failed)" : "");
    }
    printf("\n");
    return 0;
}

/* list_awaiting - a message of the outbox (--await-ack): its queue's
 * recipients are pending while they wait, delivered when acknowledged;
 * attempts counts the sends, and a message sent once has no deadline
 * written (its first is its arrival and --await-ack) */
static int list_awaiting(const smtpx_queue_info *info, void *user_data)
{
    list_ctx *c = user_data;
    char next[32];
    unsigned sends = 1;
    size_t i;

    list_head(c, info);
    for (i = 0; i < info->nrcpts; i++)
        if (info->rcpts[i].attempts > sends)
            sends = info->rcpts[i].attempts;
    if (info->next_attempt != 0)
        list_time(next, sizeof(next), info->next_attempt);
    else if (c->await_ack != 0)
        list_time(next, sizeof(next), info->arrival + c->await_ack);
    else
        snprintf(next, sizeof(next), "%s", "after --await-ack");
    printf("%47s(sent %u time%s; next %s)\n", "", sends, sends == 1 ? "" : "s",
           next);
    for (i = 0; i < info->nrcpts; i++) {
        const smtpx_queue_rcpt *r = &info->rcpts[i];
        printf("%47s%s%s\n", "", r->addr,
               r->state == SMTPX_QRCPT_DELIVERED ? " (acknowledged)"
               : r->state == SMTPX_QRCPT_FAILED  ? " (failed)"
                                                 : "");
    }
    printf("\n");
    return 0;
}

/* list_total - the last line, as mailq writes it */
static void list_total(const list_ctx *c, const char *empty, const char *what)
{
    if (c->n == 0)
        printf("%s\n", empty);
    else
        printf("-- %lu Kbytes in %lu Request%s%s.\n", (c->octets + 1023) / 1024,
               c->n, c->n == 1 ? "" : "s", what);
}

/* list_dir - list the queue in dir with fn (read-only, while a relay may
 * run) */
static int list_dir(const char *dir, smtpx_queue_list_fn *fn, list_ctx *c)
{
    smtpx_queue_opts qo;
    smtpx_queue *q;
    int rc;

    memset(&qo, 0, sizeof(qo));
    qo.size = sizeof(qo);
    qo.flags = SMTPX_QUEUE_READONLY;
    rc = smtpx_queue_open(&q, dir, &qo);
    if (rc == 0)
        rc = smtpx_queue_list(q, fn, c);
    smtpx_queue_free(q);
    if (rc < 0)
        fprintf(stderr, "smtpx-relay: %s: %s\n", dir, smtpx_strerror(rc));
    return rc;
}

/* do_list - the queue as mailq shows it, then what the outbox (--await-ack)
 * holds, when there is one */
static int do_list(const relay_opts *o)
{
    list_ctx c;
    char dir[4096];
    struct stat st;

    memset(&c, 0, sizeof(c));
    if (list_dir(o->queue, list_one, &c) < 0)
        return 1;
    list_total(&c, "Mail queue is empty", "");
    if ((size_t)snprintf(dir, sizeof(dir), "%s/outbox", o->queue) >=
            sizeof(dir) ||
        stat(dir, &st) != 0)
        return 0;
    memset(&c, 0, sizeof(c));
    c.await_ack = o->await_ack;
    printf("\nAwaiting acknowledgement (%s):\n", dir);
    if (list_dir(dir, list_awaiting, &c) < 0)
        return 1;
    list_total(&c, "Nothing awaits acknowledgement",
               " awaiting acknowledgement");
    return 0;
}

static int do_flush(const relay_opts *o)
{
    char path[4096], buf[32];
    FILE *fp;
    long pid = 0;
    smtpx_queue *q;
    int rc;

    rc = smtpx_queue_open(&q, o->queue, NULL);
    if (rc == 0) {
        smtpx_queue_free(q);
        fprintf(stderr,
                "smtpx-relay: no relay runs on %s: the queue is "
                "tried when it starts\n",
                o->queue);
        return 1;
    }
    if (rc != SMTPX_ERR_BUSY) {
        fprintf(stderr, "smtpx-relay: %s: %s\n", o->queue, smtpx_strerror(rc));
        return 1;
    }
    snprintf(path, sizeof(path), "%s/lock", o->queue);
    fp = fopen(path, "r");
    if (fp != NULL && fgets(buf, sizeof(buf), fp) != NULL)
        pid = strtol(buf, NULL, 10);
    if (fp != NULL)
        fclose(fp);
    if (pid <= 0 || kill((pid_t)pid, SIGUSR1) != 0) {
        fprintf(stderr, "smtpx-relay: cannot signal the relay (pid %ld): %s\n",
                pid, strerror(errno));
        return 1;
    }
    return 0;
}

/* ---- options --------------------------------------------------------------
 */

static void usage(FILE *fp)
{
    fprintf(
        fp,
        "usage: smtpx-relay --listen ADDR:PORT --queue DIR [options]\n"
        "       smtpx-relay --queue DIR --list | --flush\n"
        "  --listen ADDR:PORT     receive here (repeatable); /PATH: on a\n"
        "                         local socket, whose clients may relay\n"
        "  --socket-mode MODE     the mode of /PATH sockets (octal; 666:\n"
        "                         anyone may connect)\n"
        "  --queue DIR            the queue directory (created if missing)\n"
        "  --hostname NAME        this host's name (greeting, HELO, bounces)\n"
        "  --smarthost HOST:PORT  relay everything non-local there (no MX)\n"
        "  --smarthost-user USER  AUTH to the smarthost; the password comes\n"
        "                         from the SMTPX_RELAY_PASSWORD variable\n"
        "  --smarthost-tls LEVEL  none|may|encrypt|verify (default verify)\n"
        "  --mx-tls LEVEL         for MX hosts (default may)\n"
        "  --tls-policy DOM=LEVEL for MX delivery to DOM (.DOM: its "
        "subdomains;\n"
        "                         repeatable)\n"
        "  --tls-ca FILE          CAs to verify servers with\n"
        "  --tls-cert FILE --tls-key FILE  offer STARTTLS when receiving\n"
        "  --auth-file FILE       offer AUTH (smtpx-recv --make-password)\n"
        "  --mynetworks NET       clients that may relay without AUTH\n"
        "                         (a.b.c.d/len or an address; repeatable)\n"
        "  --local-domain DOM     deliver mail for DOM locally (repeatable)\n"
        "  --maildir DIR | --mbox DIR | --pipe CMD  how: DIR/LOCALPART/,\n"
        "                         DIR/LOCALPART, or a command\n"
        "  --postmaster ADDR      where bounces of bounces go (else dropped)\n"
        "  --retry-min DURATION   first retry (default 5m); 30s, 5m, 1h, 2d\n"
        "  --retry-max DURATION   longest wait between retries (default 1h)\n"
        "  --expire DURATION      give up after (default 5d)\n"
        "  --delay-warning DURATION  send a delay report after (default "
        "never)\n"
        "  --mx-port PORT         port for MX delivery (default 25)\n"
        "  --max-conns N          connections in all (default 20)\n"
        "  --max-conns-per-dest N per destination (default 5)\n"
        "  --max-local N          local deliveries at once (default 2)\n"
        "  --max-size BYTES       message size limit (default 10240000)\n"
        "  --max-msgs N           messages per session (default 1000; 0: "
        "none)\n"
        "  --intake-threads N     receiving loops (default 4)\n"
        "  --await-ack DURATION   keep what is relayed (DIR/outbox) until\n"
        "                         an MDN or DSN acknowledges it; resend\n"
        "                         after DURATION, doubling\n"
        "  --await-ack-max DURATION  ... up to this (default 1d)\n"
        "  --max-resend N         resends before giving up (default 5)\n"
        "  --ack-address ADDR     where acknowledgements come (default\n"
        "                         relay-ack@HOSTNAME)\n"
        "  --ack-report ADDR      who is told of what was given up\n"
        "  --no-fsync             do not sync the queue (tests only: a "
        "crash\n"
        "                         loses mail)\n"
        "  --list                 show the queue (like mailq) and what\n"
        "                         awaits acknowledgement\n"
        "  --flush                retry deferred mail now\n"
        "  -v, --verbose, -q, --quiet, -h, --help, --version\n");
}

static int parse_duration(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;
    unsigned long mul = 1;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || s[0] == '-')
        return -1;
    if (*end == 's' || *end == '\0')
        mul = 1;
    else if (*end == 'm')
        mul = 60;
    else if (*end == 'h')
        mul = 3600;
    else if (*end == 'd')
        mul = 86400;
    else
        return -1;
    if (*end != '\0' && end[1] != '\0')
        return -1;
    if (v == 0 || v > 100UL * 86400UL / mul)
        return -1;
    *out = (uint32_t)(v * mul);
    return 0;
}

static int parse_tls(const char *s)
{
    if (strcmp(s, "none") == 0)
        return SMTPX_TLS_NONE;
    if (strcmp(s, "may") == 0)
        return SMTPX_TLS_MAY;
    if (strcmp(s, "encrypt") == 0)
        return SMTPX_TLS_ENCRYPT;
    if (strcmp(s, "verify") == 0)
        return SMTPX_TLS_VERIFY;
    return -1;
}

static int parse_args(int argc, char **argv, relay_opts *o)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"socket-mode", required_argument, NULL, 'Z'},
        {"queue", required_argument, NULL, 'Q'},
        {"hostname", required_argument, NULL, 'H'},
        {"smarthost", required_argument, NULL, 's'},
        {"smarthost-user", required_argument, NULL, 'u'},
        {"smarthost-tls", required_argument, NULL, 'T'},
        {"mx-tls", required_argument, NULL, 'X'},
        {"tls-policy", required_argument, NULL, 'Y'},
        {"tls-ca", required_argument, NULL, 'A'},
        {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'K'},
        {"auth-file", required_argument, NULL, 'a'},
        {"mynetworks", required_argument, NULL, 'n'},
        {"local-domain", required_argument, NULL, 'D'},
        {"maildir", required_argument, NULL, 'm'},
        {"mbox", required_argument, NULL, 'b'},
        {"pipe", required_argument, NULL, 'p'},
        {"postmaster", required_argument, NULL, 'P'},
        {"retry-min", required_argument, NULL, 'r'},
        {"retry-max", required_argument, NULL, 'R'},
        {"expire", required_argument, NULL, 'e'},
        {"delay-warning", required_argument, NULL, 'w'},
        {"mx-port", required_argument, NULL, 'o'},
        {"max-conns", required_argument, NULL, 'c'},
        {"max-conns-per-dest", required_argument, NULL, 'd'},
        {"max-local", required_argument, NULL, 'x'},
        {"max-size", required_argument, NULL, 'S'},
        {"max-msgs", required_argument, NULL, 'M'},
        {"no-fsync", no_argument, NULL, 'F'},
        {"intake-threads", required_argument, NULL, 'I'},
        {"await-ack", required_argument, NULL, 'W'},
        {"await-ack-max", required_argument, NULL, 'G'},
        {"max-resend", required_argument, NULL, 'N'},
        {"ack-address", required_argument, NULL, 'k'},
        {"ack-report", required_argument, NULL, 'j'},
        {"list", no_argument, NULL, 'L'},
        {"flush", no_argument, NULL, 'f'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    unsigned long v;
    char *end;
    int c;

    memset(o, 0, sizeof(o[0]));
    o->max_size = 10240000;
    o->max_msgs = 1000;
    o->threads = 4;
    o->max_resend = -1;
    o->socket_mode = -1;
    while ((c = getopt_long(argc, argv, "vqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (o->nlisten == MAX_LISTEN)
                return -1;
            o->listen[o->nlisten++] = optarg;
            break;
        case 'Z':
            errno = 0;
            v = strtoul(optarg, &end, 8);
            if (optarg[0] < '0' || optarg[0] > '7' || *end != '\0' ||
                errno != 0 || v > 0777)
                return -1;
            o->socket_mode = (int)v;
            break;
        case 'Q':
            o->queue = optarg;
            break;
        case 'H':
            o->hostname = optarg;
            break;
        case 's':
            o->smarthost = optarg;
            break;
        case 'u':
            o->smarthost_user = optarg;
            break;
        case 'T':
            if (parse_tls(optarg) < 0)
                return -1;
            o->smarthost_tls = optarg;
            break;
        case 'X':
            if (parse_tls(optarg) < 0)
                return -1;
            o->mx_tls = optarg;
            break;
        case 'Y': {
            const char *eq = strchr(optarg, '=');
            int lv = eq ? parse_tls(eq + 1) : -1;
            size_t dl = eq ? (size_t)(eq - optarg) : 0;
            if (lv < 0 || dl == 0 || dl >= sizeof(o->policy_domains[0]) ||
                o->npolicies == MAX_LISTEN)
                return -1;
            memcpy(o->policy_domains[o->npolicies], optarg, dl);
            o->policy_domains[o->npolicies][dl] = '\0';
            o->policies[o->npolicies].domain = o->policy_domains[o->npolicies];
            o->policies[o->npolicies].level = lv;
            o->npolicies++;
            break;
        }
        case 'A':
            o->tls_ca = optarg;
            break;
        case 'C':
            o->tls_cert = optarg;
            break;
        case 'K':
            o->tls_key = optarg;
            break;
        case 'a':
            o->auth_file = optarg;
            break;
        case 'n':
            if (o->nnet == MAX_LISTEN)
                return -1;
            o->mynetworks[o->nnet++] = optarg;
            break;
        case 'D':
            if (o->nlocal == MAX_LISTEN)
                return -1;
            o->local_domains[o->nlocal++] = optarg;
            break;
        case 'm':
        case 'b':
        case 'p':
            if (o->local_kind != 0)
                return -1;
            o->local_kind = c == 'm'   ? SMTPX_LOCAL_MAILDIR
                            : c == 'b' ? SMTPX_LOCAL_MBOX
                                       : SMTPX_LOCAL_PIPE;
            o->local_path = optarg;
            break;
        case 'P':
            o->postmaster = optarg;
            break;
        case 'r':
            if (parse_duration(optarg, &o->retry_min) < 0)
                return -1;
            break;
        case 'R':
            if (parse_duration(optarg, &o->retry_max) < 0)
                return -1;
            break;
        case 'e':
            if (parse_duration(optarg, &o->expire) < 0)
                return -1;
            break;
        case 'w':
            if (parse_duration(optarg, &o->delay_warn) < 0)
                return -1;
            break;
        case 'o':
        case 'c':
        case 'd':
        case 'x':
        case 'S':
            errno = 0;
            v = strtoul(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || end == optarg || v == 0 ||
                optarg[0] == '-' || (c == 'o' && v > 65535) ||
                (c == 'x' && v > 1000) || (c != 'S' && v > 100000))
                return -1;
            if (c == 'o')
                o->mx_port = (uint16_t)v;
            else if (c == 'c')
                o->max_conns = v;
            else if (c == 'd')
                o->max_per_dest = v;
            else if (c == 'x')
                o->max_local = v;
            else
                o->max_size = v;
            break;
        case 'M':
            errno = 0;
            v = strtoul(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || end == optarg)
                return -1;
            o->max_msgs = v;
            break;
        case 'F':
            o->nosync = 1;
            break;
        case 'I':
            errno = 0;
            v = strtoul(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || v == 0 || v > MAX_THREADS)
                return -1;
            o->threads = (int)v;
            break;
        case 'W':
            if (parse_duration(optarg, &o->await_ack) < 0)
                return -1;
            break;
        case 'G':
            if (parse_duration(optarg, &o->await_max) < 0)
                return -1;
            break;
        case 'N':
            errno = 0;
            v = strtoul(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || end == optarg ||
                optarg[0] == '-' || v > 1000)
                return -1;
            o->max_resend = (long)v;
            break;
        case 'k':
        case 'j':
            if (strchr(optarg, '@') == NULL || strlen(optarg) >= 500)
                return -1;
            if (c == 'k')
                o->ack_address = optarg;
            else
                o->ack_report = optarg;
            break;
        case 'L':
            o->list = 1;
            break;
        case 'f':
            o->flush = 1;
            break;
        case 'v':
            o->verbose = 1;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("smtpx-relay (libsmtpx %s)\n", smtpx_version_string());
            exit(0);
        default:
            return -1;
        }
    }
    if (optind != argc || o->queue == NULL)
        return -1;
    if (o->list || o->flush)
        return o->list && o->flush ? -1 : 0;
    if (o->nlisten == 0 || (o->nlocal > 0) != (o->local_kind != 0) ||
        (o->tls_cert == NULL) != (o->tls_key == NULL))
        return -1;
    if (o->await_ack == 0 && (o->max_resend >= 0 || o->await_max != 0 ||
                              o->ack_address != NULL || o->ack_report != NULL))
        return -1; /* they mean nothing without an outbox */
    if (o->await_max != 0 && o->await_max < o->await_ack)
        return -1;
    if (o->socket_mode >= 0) {
        int i, paths = 0;
        for (i = 0; i < o->nlisten; i++)
            paths += o->listen[i][0] == '/';
        if (paths == 0)
            return -1; /* it is for a local socket */
    }
    return 0;
}

static int make_server_config(const relay_opts *o, const char *host,
                              smtpx_config **out)
{
    smtpx_config *cfg;
    int rc = smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, NULL);

    if (rc < 0)
        return rc;
    /* DSN parameters are taken and honoured (RFC 3461). */
    if ((rc = smtpx_config_set_hostname(cfg, host)) < 0 ||
        (rc = smtpx_config_set_extensions(cfg, SMTPX_EXT_DEFAULT |
                                                   SMTPX_EXT_DSN)) < 0 ||
        (rc = smtpx_config_set_limit(cfg, SMTPX_LIMIT_MSG_SIZE, o->max_size)) <
            0 ||
        (rc = smtpx_config_set_limit(cfg, SMTPX_LIMIT_MSGS, o->max_msgs)) < 0 ||
        (rc = smtpx_config_freeze(cfg)) < 0) {
        smtpx_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

static int make_client_config(const char *host, smtpx_config **out)
{
    smtpx_config *cfg;
    int rc = smtpx_config_new(&cfg, SMTPX_ROLE_CLIENT, NULL);

    if (rc < 0)
        return rc;
    if ((rc = smtpx_config_set_hostname(cfg, host)) < 0 ||
        (rc = smtpx_config_set_extensions(cfg, SMTPX_EXT_DEFAULT |
                                                   SMTPX_EXT_DSN)) < 0 ||
        (rc = smtpx_config_freeze(cfg)) < 0) {
        smtpx_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

/* open_outbox - --await-ack: the outbox in DIR/outbox, sending through
 * the queue */
static int open_outbox(relay_app *app, const char *host)
{
    const relay_opts *o = &app->opts;
    smtpx_outbox_opts oo;
    char dir[4096];
    int rc;

    if (o->ack_address != NULL)
        snprintf(app->ack_address, sizeof(app->ack_address), "%s",
                 o->ack_address);
    else
        snprintf(app->ack_address, sizeof(app->ack_address), "relay-ack@%s",
                 host);
    if ((size_t)snprintf(dir, sizeof(dir), "%s/outbox", o->queue) >=
        sizeof(dir))
        return SMTPX_ERR_INVALID_ARGUMENT;
    memset(&oo, 0, sizeof(oo));
    oo.size = sizeof(oo);
    oo.flags = o->nosync ? SMTPX_OUTBOX_NOSYNC : 0;
    if (o->max_resend == 0)
        oo.flags |= SMTPX_OUTBOX_NO_RESEND;
    else if (o->max_resend > 0)
        oo.max_resends = (uint32_t)o->max_resend;
    oo.queue = app->q;
    oo.hostname = host;
    oo.ack_address = app->ack_address;
    oo.ack_timeout_s = o->await_ack;
    oo.ack_timeout_max_s = o->await_max;
    oo.report_to = o->ack_report;
    oo.on_event = outbox_event;
    oo.event_data = app;
    rc = smtpx_outbox_open(&app->ob, dir, &oo);
    if (rc < 0)
        fprintf(stderr, "smtpx-relay: outbox %s: %s (%s)\n", dir,
                smtpx_strerror(rc), strerror(errno));
    return rc;
}

int main(int argc, char **argv)
{
    relay_app app;
    smtpx_config *scfg = NULL, *ccfg = NULL;
    smtpx_resolver *res = NULL;
    smtpx_queue_opts qo;
    smtpx_mta_opts mo;
    smtpx_auth_creds creds;
    struct sigaction sa;
    pthread_t thread, intake[MAX_THREADS];
    char host[256];
    int i, t, rc, status = 1, started = 0, nintake = 0;

    memset(&app, 0, sizeof(app));
    pthread_mutex_init(&app.mu, NULL);
    if (parse_args(argc, argv, &app.opts) < 0) {
        usage(stderr);
        return 2;
    }
    if (app.opts.list)
        return do_list(&app.opts);
    if (app.opts.flush)
        return do_flush(&app.opts);
    if (app.opts.hostname == NULL) {
        if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
            strcpy(host, "localhost");
        host[sizeof(host) - 1] = '\0';
    } else {
        snprintf(host, sizeof(host), "%s", app.opts.hostname);
    }
    if (app.opts.auth_file != NULL && load_users(&app, app.opts.auth_file) < 0)
        return 2;
    if (app.opts.tls_cert != NULL &&
        (smtpx_mbedtls_new(&app.tls, 1) < 0 ||
         smtpx_mbedtls_add_cert_file(app.tls, app.opts.tls_cert,
                                     app.opts.tls_key, NULL) < 0)) {
        fprintf(stderr, "smtpx-relay: cannot load %s / %s\n", app.opts.tls_cert,
                app.opts.tls_key);
        return 2;
    }
    if (smtpx_mbedtls_new(&app.ctls, 0) < 0 ||
        (app.opts.tls_ca != NULL &&
         smtpx_mbedtls_add_ca_file(app.ctls, app.opts.tls_ca) < 0)) {
        fprintf(stderr, "smtpx-relay: cannot set up client TLS\n");
        return 2;
    }
    if (make_server_config(&app.opts, host, &scfg) < 0 ||
        make_client_config(host, &ccfg) < 0) {
        fprintf(stderr, "smtpx-relay: bad settings\n");
        goto out;
    }
    memset(&qo, 0, sizeof(qo));
    qo.size = sizeof(qo);
    qo.flags = app.opts.nosync ? SMTPX_QUEUE_NOSYNC : 0;
    qo.retry_min_s = app.opts.retry_min;
    qo.retry_max_s = app.opts.retry_max;
    qo.expire_s = app.opts.expire;
    qo.delay_warn_s = app.opts.delay_warn;
    rc = smtpx_queue_open(&app.q, app.opts.queue, &qo);
    if (rc < 0) {
        fprintf(stderr, "smtpx-relay: queue %s: %s (%s)\n", app.opts.queue,
                smtpx_strerror(rc), strerror(errno));
        goto out;
    }
    if (app.opts.await_ack != 0 && open_outbox(&app, host) < 0)
        goto out;
    rc = smtpx_resolver_new(&res, NULL);
    if (rc < 0) {
        fprintf(stderr, "smtpx-relay: resolver: %s\n", smtpx_strerror(rc));
        goto out;
    }
    memset(&mo, 0, sizeof(mo));
    mo.size = sizeof(mo);
    mo.client_cfg = ccfg;
    mo.hostname = host;
    mo.resolver = res;
    mo.smarthost = app.opts.smarthost;
    mo.mx_port = app.opts.mx_port;
    mo.tls = smtpx_mbedtls_ops();
    mo.tls_cfg = app.ctls;
    mo.tls_set = 1;
    mo.mx_tls_level =
        app.opts.mx_tls ? parse_tls(app.opts.mx_tls) : SMTPX_TLS_MAY;
    mo.smarthost_tls_level = app.opts.smarthost_tls
                                 ? parse_tls(app.opts.smarthost_tls)
                                 : SMTPX_TLS_VERIFY;
    if (app.opts.smarthost_user != NULL) {
        const char *pw = getenv("SMTPX_RELAY_PASSWORD");
        memset(&creds, 0, sizeof(creds));
        creds.size = sizeof(creds);
        creds.user = app.opts.smarthost_user;
        creds.password = pw ? pw : "";
        mo.smarthost_auth = &creds;
    }
    mo.local_domains = app.opts.local_domains;
    mo.nlocal = (size_t)app.opts.nlocal;
    mo.local_kind = app.opts.local_kind;
    mo.local_path = app.opts.local_path;
    mo.postmaster = app.opts.postmaster;
    mo.max_conns = app.opts.max_conns;
    mo.max_conns_per_dest = app.opts.max_per_dest;
    mo.max_local = app.opts.max_local;
    mo.on_log = mta_log;
    mo.log_data = &app;
    mo.tls_policies = app.opts.policies;
    mo.ntls_policies = (size_t)app.opts.npolicies;
    mo.outbox = app.ob; /* its resends and giving up run with deliveries */
    rc = smtpx_mta_new(&app.mta, app.q, &mo);
    if (rc < 0) {
        fprintf(stderr, "smtpx-relay: delivery: %s\n", smtpx_strerror(rc));
        goto out;
    }
    the_mta = app.mta;
    for (t = 0; t < app.opts.threads; t++) {
        if (smtpx_loop_new(&the_loops[t], NULL) < 0)
            goto out;
        nloops = t + 1;
    }
    for (i = 0; i < app.opts.nlisten; i++) {
        smtpx_server_callbacks cbs = relay_cbs;
        char lhost[256], port[32];
        int fd;

        if (app.opts.auth_file != NULL) {
            cbs.on_auth = cb_auth;
            cbs.on_auth_lookup = cb_auth_lookup;
        }
        if (app.opts.listen[i][0] == '/') {
            /* A local socket: one, on the first loop (no SO_REUSEPORT). */
            if (listen_local(&app, app.opts.listen[i], &fd) != 0)
                goto out;
            if (smtpx_loop_listen(the_loops[0], fd, scfg, &cbs, sizeof(cbs),
                                  &app, app.tls ? smtpx_mbedtls_ops() : NULL,
                                  app.tls) < 0) {
                close(fd);
                goto out;
            }
        } else if (smtpx_posix_split_hostport(app.opts.listen[i], lhost,
                                              sizeof(lhost), port,
                                              sizeof(port)) < 0) {
            fprintf(stderr, "smtpx-relay: bad listen address %s\n",
                    app.opts.listen[i]);
            goto out;
        }
        for (t = 0; t < nloops && app.opts.listen[i][0] != '/'; t++) {
            if (listen_reuseport(lhost, port, &fd) < 0) {
                fprintf(stderr, "smtpx-relay: cannot listen on %s: %s\n",
                        app.opts.listen[i], strerror(errno));
                goto out;
            }
            if (smtpx_loop_listen(the_loops[t], fd, scfg, &cbs, sizeof(cbs),
                                  &app, app.tls ? smtpx_mbedtls_ops() : NULL,
                                  app.tls) < 0) {
                close(fd);
                goto out;
            }
        }
        if (!app.opts.quiet && app.ob != NULL)
            logline("listening on %s, queue %s, %zu waiting, %zu awaiting "
                    "acknowledgement to <%s>",
                    app.opts.listen[i], app.opts.queue,
                    smtpx_queue_count(app.q), smtpx_outbox_count(app.ob),
                    app.ack_address);
        else if (!app.opts.quiet)
            logline("listening on %s, queue %s, %zu waiting",
                    app.opts.listen[i], app.opts.queue,
                    smtpx_queue_count(app.q));
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    if (pthread_create(&thread, NULL, delivery_thread, &app) != 0) {
        fprintf(stderr, "smtpx-relay: cannot start the delivery thread\n");
        goto out;
    }
    started = 1;
    for (t = 1; t < nloops; t++)
        if (pthread_create(&intake[t], NULL, intake_thread, the_loops[t]) != 0)
            smtpx_loop_stop(the_loops[t], SMTPX_SHUTDOWN_NOW);
        else
            nintake = t + 1;
    rc = smtpx_loop_run(the_loops[0]);
    for (t = 1; t < nintake; t++)
        pthread_join(intake[t], NULL);
    nintake = 0;
    smtpx_mta_stop(app.mta);
    pthread_join(thread, NULL);
    started = 0;
    if (!app.opts.quiet)
        logline("stopped after receiving %llu messages; %zu in the queue, "
                "%zu awaiting acknowledgement",
                app.accepted, smtpx_queue_count(app.q),
                smtpx_outbox_count(app.ob));
    status = rc < 0 ? 1 : 0;
out:
    if (started) {
        smtpx_mta_stop(app.mta);
        pthread_join(thread, NULL);
    }
    for (t = 1; t < nintake; t++) {
        smtpx_loop_stop(the_loops[t], SMTPX_SHUTDOWN_NOW);
        pthread_join(intake[t], NULL);
    }
    for (t = 0; t < nloops; t++)
        smtpx_loop_free(the_loops[t]);
    nloops = 0;
    for (i = 0; i < app.nsockets; i++)
        unlink(app.sockets[i]);
    the_mta = NULL;
    smtpx_mta_free(app.mta);
    smtpx_resolver_free(res);
    smtpx_outbox_free(app.ob); /* before the queue it sends through */
    smtpx_queue_free(app.q);
    smtpx_config_free(scfg);
    smtpx_config_free(ccfg);
    smtpx_mbedtls_free(app.tls);
    smtpx_mbedtls_free(app.ctls);
    free(app.users);
    return status;
}
