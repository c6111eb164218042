/*
 * smtpx-recv - an SMTP (or LMTP) receiver that stores mail in a Maildir.
 *
 *   smtpx-recv --listen 127.0.0.1:2525 --maildir ~/Maildir
 *   smtpx-recv --listen :587 --tls-listen :465 --tls-cert crt.pem \
 *              --tls-key key.pem --auth-file users --maildir ~/Maildir
 *
 * With a certificate it offers STARTTLS (RFC 3207) and serves implicit
 * TLS (RFC 8314) on --tls-listen addresses.  With --auth-file it offers
 * AUTH (PLAIN, LOGIN, SCRAM-SHA-256) under TLS, checking passwords against
 * salted SCRAM entries (RFC 5803: the file never holds a password), and
 * takes mail for domains other than --local-domain ones only from
 * authenticated clients (no open relay).  --make-password prints an entry.
 *
 * Every accepted message is written to DIR/tmp, synced, renamed into
 * DIR/new and the directory synced before the client gets its 250: a
 * message is acknowledged only once it is on disk.  The syncing happens
 * off the serving thread: the session pauses at the end of its message,
 * a pool of threads syncs the messages of many sessions at once and
 * commits them in groups (one sync of new/ for the group), and the answers
 * come back through smtpx_loop_post().  Each message gets a
 * Return-Path and a Received header.  One log line per transaction goes to
 * standard error.  SIGTERM/SIGINT let transactions in progress finish;
 * a second signal closes at once.
 *
 * With --dedupe FILE it receives each message once (smtpx_inbox_new(3)):
 * a message already stored is answered 250 and not stored again, one whose
 * storing a crash interrupted is stored again and logged as a redelivery.
 * With --ack it acknowledges what it stored: an MDN (RFC 8098) to the
 * message's Disposition-Notification-To (or, --ack always, to its sender),
 * and with --dsn a "delivered" DSN where NOTIFY=SUCCESS asks; the
 * acknowledgements wait in a queue of their own, delivered by an engine on
 * a thread of its own to --ack-via (or by MX), so they are retried and
 * never lost.  The order, per message, all of it on the pool's threads:
 * the store records the Message-ID as begun (smtpx_inbox_check, a sync
 * shared with the other sessions' checks), the message is made durable in
 * the Maildir, the store records it done and the acknowledgements are
 * committed (smtpx_inbox_processed), and only then does the client get
 * its 250.  A duplicate gets its 250 after the check, and its
 * acknowledgements are committed again.
 *
 * It is also a reference for the library: the callbacks table, per-session
 * state made and freed by the listener (on_session_new / on_session_free),
 * the Maildir writer, the event loop, the inbox and the delivery engine.
 */
#define _DEFAULT_SOURCE /* usleep with -std=c99 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/base64.h>

#include <libsmtpx/smtpx.h>
#include <libsmtpx/limiter.h>
#include <libsmtpx/posix.h>
#include <libsmtpx/tls_mbedtls.h>

#define MAX_LISTEN 16
#define EX_USAGE_  64 /* sysexits.h: the command was used wrongly */

/* The usage error to report, when there is one to name. */
static const char *usage_why;

static int usage_error(const char *why)
{
    usage_why = why;
    return -1;
}

/* syserr - the system's words for an I/O failure; other library errors
 * say it all themselves (errno would be stale) */
static const char *syserr(int rc)
{
    static char buf[160];

    if (rc != SMTPX_ERR_IO || errno == 0)
        return "";
    snprintf(buf, sizeof(buf), " (%s)", strerror(errno));
    return buf;
}

#define MAX_USERS        1024
#define MAX_SYNC_THREADS 64
/* RFC 7677 4: at least 4096 iterations. */
#define DEFAULT_ITERATIONS 4096

typedef struct recv_opts {
    const char *listen[MAX_LISTEN];
    int nlisten;
    const char *tls_listen[MAX_LISTEN];
    int ntls_listen;
    const char *proxy_listen[MAX_LISTEN];
    int nproxy_listen;
    int socket_mode; /* --socket-mode; -1: from the umask */
    const char *proxy_trusted;
    const char *tls_cert, *tls_key;
    int require_tls;
    const char *auth_file;
    int auth_cleartext;
    const char *local_domains[MAX_LISTEN];
    int nlocal;
    const char *make_password; /* user name */
    uint32_t iterations;
    const char *maildir;
    int discard;
    const char *hostname;
    uint64_t max_size;
    uint64_t max_rcpts;
    uint64_t max_msgs;
    size_t max_sessions;
    uint32_t timeout_s;
    int sync_threads;
    int enforce_sync;
    smtpx_limiter_opts limits;
    const char *limit_exempt;
    int crlf;
    int dsn, binarymime, requiretls; /* extensions offered besides the
                                        default ones */
    int bare_lf_reject;
    int lmtp;
    int verbose;
    int quiet;
    /* Closing the loop. */
    const char *dedupe; /* --dedupe FILE */
    uint32_t dedupe_window;
    uint32_t dedupe_max;
    int dedupe_noid;       /* SMTPX_INBOX_NOID_* */
    const char *dedupe_by; /* an option that needs --dedupe */
    int ack;               /* 1: --ack, 2: --ack always */
    const char *ack_from;
    const char *ack_via;
    const char *ack_queue;
    const char *ack_by; /* an option that needs --ack */
} recv_opts;

/* A user of --auth-file: RFC 5803's SCRAM-SHA-256 entry. */
typedef struct recv_user {
    char name[256];
    uint32_t iterations;
    uint8_t salt[64];
    size_t salt_len;
    uint8_t stored_key[32];
    uint8_t server_key[32];
} recv_user;

typedef struct recv_session recv_session;

/*
 * A message on its way to disk: made by on_data_end (which pauses the
 * session), synced by a worker, committed together with the others synced
 * meanwhile, answered on the loop thread.  rs is NULL once the session has
 * gone (written on the loop thread only); cancelled is its copy for the
 * workers (under the pool's mutex).
 */
typedef struct recv_job {
    recv_session *rs;
    smtpx_server *s;
    smtpx_maildir_msg *msg;
    smtpx_inbox_msg *im; /* --dedupe: checked by the worker */
    int verdict;
    int stored; /* in new/: the inbox is told next, on a worker */
    int cancelled;
    int rc;
    char name[256];
    struct recv_job *next;
    /* Or a password to check (PLAIN, LOGIN) against user: the hashing
     * (SCRAM's iterations) runs on a worker, not on the loop. */
    const recv_user *user;
    uint8_t secret[256];
    size_t secret_len;
} recv_job;

static int pool_auth(recv_session *rs, smtpx_server *s, const recv_user *u,
                     const smtpx_auth_info *a);
static void set_reply(smtpx_reply *r, int code, int e1, int e2, int e3,
                      const char *text);

/*
 * The delivery pool (--sync-threads).  Each worker takes a message from
 * todo and syncs it (fdatasync, in parallel with the others), then puts it
 * on synced.  A worker that finds no commit running commits everything on
 * synced as one group (renames, one fsync of new/) and posts the answers to
 * the loop; commits keep running while work arrives, so the messages that
 * are synced meanwhile make the next group.  The durable throughput grows
 * with the number of messages in flight.
 */
typedef struct recv_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    recv_job *todo, **todo_tail;
    recv_job *synced, **synced_tail;
    int committing;
    int stop;
    int nthreads;
    pthread_t th[MAX_SYNC_THREADS];
    smtpx_loop *loop;
} recv_pool;

/* --dedupe and --ack: the store, the inbox, and the acknowledgements'
 * queue with the engine (on a thread of its own) that delivers it. */
typedef struct recv_acks {
    smtpx_dedupe *dd;
    smtpx_inbox *inbox;
    smtpx_queue *q;
    smtpx_mta *mta;
    smtpx_config *cfg;
    smtpx_resolver *res;
    smtpx_mbedtls *tls; /* client: STARTTLS where offered */
    pthread_t th;
    int running;
    char from[300];
    char qdir[4096];
} recv_acks;

/* State shared by all sessions. */
typedef struct recv_app {
    recv_opts opts;
    char host[256];
    smtpx_maildir *md;
    smtpx_mbedtls *tls;
    recv_user *users;
    size_t nusers;
    unsigned long long accepted;
    recv_pool pool;
    recv_acks acks;
    const char *sockets[3 * MAX_LISTEN]; /* local sockets made: removed
                                            at the end */
    int nsockets;
} recv_app;

/* A recipient's DSN parameters, for its acknowledgement. */
typedef struct recv_rcpt {
    unsigned notify;
    char orcpt[512];
} recv_rcpt;

/* State of one session (made by session_new). */
struct recv_session {
    recv_app *app;
    smtpx_maildir_msg *msg;
    recv_job *job; /* the message being stored, while paused */
    int write_err; /* the first error writing the message */
    char peer[80];
    /* --dedupe */
    smtpx_inbox_msg *im;
    int inbox_err;
    char envid[256];
    int has_envid;
    int verdict;                      /* of the message just ended, for
                                         its log line */
    char key[SMTPX_ESCAPE_SIZE(256)]; /* its key, shown escaped */
};

static smtpx_loop *the_loop;
static smtpx_mta *the_acks; /* --ack: the engine, for SIGUSR1 */
static volatile sig_atomic_t signals;
static int report_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    signals++;
    smtpx_loop_stop(the_loop,
                    signals > 1 ? SMTPX_SHUTDOWN_NOW : SMTPX_SHUTDOWN_DRAIN);
}

/* on_usr1 - ask for the counters (the loop reads the pipe: a signal
 * handler may not print), and retry the acknowledgements waiting now */
static void on_usr1(int sig)
{
    int saved = errno;
    ssize_t w = write(report_pipe[1], "", 1);

    (void)sig;
    if (the_acks != NULL)
        smtpx_mta_flush(the_acks);
    (void)w;
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
    fprintf(stderr, "%s smtpx-recv[%ld]: ", when, (long)getpid());
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* report - the loop's counters on one line */
static void report(smtpx_loop *loop)
{
    char line[1024];
    size_t len = 0;
    int i;

    line[0] = '\0';
    for (i = 0; i < SMTPX_LOOP_COUNTER_COUNT && len < sizeof(line); i++) {
        int w = snprintf(line + len, sizeof(line) - len, "%s%s=%llu",
                         i ? " " : "", smtpx_loop_counter_name(i),
                         (unsigned long long)smtpx_loop_counter(loop, i));
        if (w > 0)
            len += (size_t)w;
    }
    logline("counters: %s", line);
}

static void on_report(smtpx_loop *loop, int fd, int events, void *user_data)
{
    char buf[64];

    (void)events;
    (void)user_data;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    report(loop);
}

/* limiter_log - the limiter's refusals, one line each */
static void limiter_log(int level, const char *msg, void *user_data)
{
    const recv_opts *o = user_data;

    (void)level;
    if (!o->quiet)
        logline("%s", msg);
}

/* esc - a client's text (a name, an address: UTF-8 ones too) as it may
 * be shown on a log line: every octet outside printable ASCII as \xHH */
static const char *esc(char *buf, size_t size, const char *s)
{
    return smtpx_escape(buf, size, s, strlen(s));
}

/* log_txn - the one line per transaction */
static void log_txn(smtpx_server *s, recv_session *rs, const char *status,
                    const char *id)
{
    char to[512], helo[SMTPX_ESCAPE_SIZE(64)], from[SMTPX_ESCAPE_SIZE(80)],
        one[SMTPX_ESCAPE_SIZE(80)], auth[SMTPX_ESCAPE_SIZE(64)];
    size_t i, n = smtpx_server_rcpt_count(s), len = 0;
    const char *f = smtpx_server_mail_from(s), *a = smtpx_server_auth_id(s);
    int verdict = rs->verdict;

    rs->verdict = 0; /* it belongs to this line only */
    if (rs->app->opts.quiet)
        return;
    to[0] = '\0';
    for (i = 0; i < n && len < sizeof(to) - 64; i++) {
        int w = snprintf(to + len, sizeof(to) - len, "%s<%s>", i ? "," : "",
                         esc(one, sizeof(one), smtpx_server_rcpt_addr(s, i)));
        if (w > 0)
            len += (size_t)w;
    }
    if (i < n)
        snprintf(to + len, sizeof(to) - len, ",+%zu more", n - i);
    logline("%s helo=%s from=<%s> to=%s size=%llu%s%s%s%s status=%s%s%s%s%s"
            "%s%s",
            rs->peer,
            smtpx_server_helo(s) ? esc(helo, sizeof(helo), smtpx_server_helo(s))
                                 : "-",
            f ? esc(from, sizeof(from), f) : "", n ? to : "-",
            (unsigned long long)smtpx_server_data_size(s),
            smtpx_server_tls(s) ? " tls=" : "",
            smtpx_server_tls(s) ? smtpx_server_tls(s)->version : "",
            a ? " auth=" : "", a ? esc(auth, sizeof(auth), a) : "", status,
            id ? " id=" : "", id ? id : "", verdict ? " verdict=" : "",
            verdict ? smtpx_inbox_verdict_name(verdict) : "",
            verdict ? " key=" : "", verdict ? rs->key : "");
}

/* session_new / session_free - the state of one connection, made before
 * its session and freed after it, whatever happens to it */
static int session_new(smtpx_loop *loop, const smtpx_peer *peer,
                       void **session_user_data, void *user_data)
{
    recv_app *app = user_data;
    recv_session *rs = calloc(1, sizeof(*rs));

    (void)loop;
    if (rs == NULL)
        return -1; /* refused with 421 */
    rs->app = app;
    if (peer->addr == NULL) /* a local socket */
        snprintf(rs->peer, sizeof(rs->peer), "local");
    else if (strchr(peer->addr, ':') != NULL)
        snprintf(rs->peer, sizeof(rs->peer), "[%s]:%u", peer->addr,
                 (unsigned)peer->port);
    else
        snprintf(rs->peer, sizeof(rs->peer), "%s:%u", peer->addr,
                 (unsigned)peer->port);
    *session_user_data = rs;
    return 0;
}

static void session_free(smtpx_loop *loop, void *session_user_data,
                         void *user_data)
{
    (void)loop;
    (void)user_data;
    free(session_user_data);
}

static int cb_connect(smtpx_server *s, const smtpx_peer *peer,
                      smtpx_reply *reply, void *user_data)
{
    recv_session *rs = user_data;

    (void)s;
    (void)peer;
    (void)reply;
    if (rs->app->opts.verbose)
        logline("%s connected", rs->peer);
    return 0;
}

/* ---- AUTH and relay ----------------------------------------------------- */

static const recv_user *find_user(const recv_app *app, const char *name)
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
    recv_session *rs = user_data;
    const recv_user *u = find_user(rs->app, a->authcid);
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
    } else if (u != NULL && rs->app->pool.nthreads > 0 &&
               a->secret_len <= sizeof(((recv_job *)0)->secret) &&
               pool_auth(rs, s, u, a) == 0) {
        return SMTPX_ERR_PAUSE; /* answered from the loop thread later */
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
    recv_session *rs = user_data;
    const recv_user *u = find_user(rs->app, a->authcid);

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
static int cb_rcpt(smtpx_server *s, const smtpx_rcpt_info *rcpt,
                   void **rcpt_data, smtpx_reply *reply, void *user_data)
{
    recv_session *rs = user_data;
    const recv_opts *o = &rs->app->opts;
    int i, ok = o->auth_file == NULL || smtpx_server_auth_id(s) != NULL ||
                rcpt->domain == NULL;

    for (i = 0; !ok && i < o->nlocal; i++)
        if (strcasecmp(rcpt->domain, o->local_domains[i]) == 0)
            ok = 1;
    if (!ok) {
        reply->code = 554;
        reply->enh[0] = 5;
        reply->enh[1] = 7;
        reply->enh[2] = 1;
        reply->text = "Relay access denied";
        return 0;
    }
    if (rs->app->acks.inbox != NULL) {
        /* NOTIFY and ORCPT, for the acknowledgement (freed at txn end). */
        recv_rcpt *rr;
        if (rcpt->orcpt != NULL && strlen(rcpt->orcpt) >= sizeof(rr->orcpt)) {
            set_reply(reply, 501, 5, 5, 4, "ORCPT too long");
            return 0;
        }
        if ((rr = calloc(1, sizeof(*rr))) == NULL) {
            set_reply(reply, 452, 4, 3, 1, "Out of memory, try later");
            return 0;
        }
        rr->notify = rcpt->notify;
        if (rcpt->orcpt != NULL)
            strcpy(rr->orcpt, rcpt->orcpt);
        *rcpt_data = rr;
    }
    return 0;
}

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
static int load_users(recv_app *app, const char *path)
{
    FILE *fp = fopen(path, "r");
    char line[1024];
    int lineno = 0;

    if (fp == NULL) {
        fprintf(stderr, "smtpx-recv: %s: %s\n", path, strerror(errno));
        return -1;
    }
    app->users = calloc(MAX_USERS, sizeof(*app->users));
    if (app->users == NULL) {
        fclose(fp);
        return -1;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        recv_user *u = &app->users[app->nusers];
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
        fprintf(stderr, "smtpx-recv: %s:%d: not a SCRAM-SHA-256 entry\n", path,
                lineno);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    return 0;
}

/* make_password - print an entry for the password on standard input */
static int make_password(const char *user, uint32_t iterations)
{
    char pw[1024];
    uint8_t salt[16], stored[32], server[32];
    unsigned char b_salt[32], b_stored[64], b_server[64];
    size_t n1, n2, n3, n;
    FILE *fp;

    if (fgets(pw, sizeof(pw), stdin) == NULL) {
        fprintf(stderr, "smtpx-recv: no password on standard input\n");
        return EX_USAGE_;
    }
    n = strcspn(pw, "\r\n");
    pw[n] = '\0';
    fp = fopen("/dev/urandom", "rb");
    if (fp == NULL || fread(salt, 1, sizeof(salt), fp) != sizeof(salt)) {
        fprintf(stderr, "smtpx-recv: /dev/urandom: %s\n", strerror(errno));
        if (fp != NULL)
            fclose(fp);
        return 1;
    }
    fclose(fp);
    if (n == 0 ||
        smtpx_scram_keys((const uint8_t *)pw, n, salt, sizeof(salt), iterations,
                         stored, server) != 0 ||
        mbedtls_base64_encode(b_salt, sizeof(b_salt), &n1, salt,
                              sizeof(salt)) != 0 ||
        mbedtls_base64_encode(b_stored, sizeof(b_stored), &n2, stored, 32) !=
            0 ||
        mbedtls_base64_encode(b_server, sizeof(b_server), &n3, server, 32) !=
            0) {
        fprintf(stderr, "smtpx-recv: cannot make the entry\n");
        return 1;
    }
    memset(pw, 0, sizeof(pw));
    printf("%s:SCRAM-SHA-256$%u:%.*s$%.*s:%.*s\n", user, (unsigned)iterations,
           (int)n1, b_salt, (int)n2, b_stored, (int)n3, b_server);
    return 0;
}

/* ---- a full disk -------------------------------------------------------- */

/* fs_space - the size of the Maildir's file system and the room left on it
 * for us, in bytes; -1 if unknown */
static int fs_space(const recv_app *app, uint64_t *total, uint64_t *avail)
{
    struct statvfs sv;

    if (app->opts.maildir == NULL || statvfs(app->opts.maildir, &sv) != 0)
        return -1;
    *total = (uint64_t)sv.f_blocks * sv.f_frsize;
    *avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    return 0;
}

static void set_reply(smtpx_reply *r, int code, int e1, int e2, int e3,
                      const char *text)
{
    r->code = code;
    r->enh[0] = (uint16_t)e1;
    r->enh[1] = (uint16_t)e2;
    r->enh[2] = (uint16_t)e3;
    r->text = text;
}

/* cb_mail - RFC 1870 6.1: a declared SIZE that can never fit the file
 * system is refused for good (552 5.3.4), one that does not fit now for a
 * while (452 4.3.1), before the client sends a byte of it */
static int cb_mail(smtpx_server *s, const smtpx_mail_info *m,
                   smtpx_reply *reply, void *user_data)
{
    recv_session *rs = user_data;
    uint64_t total, avail;

    (void)s;
    rs->has_envid = m->envid != NULL && strlen(m->envid) < sizeof(rs->envid);
    if (rs->has_envid)
        strcpy(rs->envid, m->envid);
    if (m->size == 0 || fs_space(rs->app, &total, &avail) != 0)
        return 0;
    if (m->size > total)
        set_reply(reply, 552, 5, 3, 4,
                  "Message too big for this system's storage");
    else if (m->size > avail)
        set_reply(reply, 452, 4, 3, 1, "Insufficient system storage");
    return 0;
}

/* ---- receiving once, and acknowledging --------------------------------- */

/* inbox_begin - with --dedupe, the inbox follows the message: its
 * envelope now, its content as it comes */
static int inbox_begin(smtpx_server *s, recv_session *rs)
{
    size_t i;
    int rc;

    rs->inbox_err = 0;
    if (rs->app->acks.inbox == NULL)
        return 0;
    rc = smtpx_inbox_begin(rs->app->acks.inbox, smtpx_server_mail_from(s),
                           rs->has_envid ? rs->envid : NULL, &rs->im);
    for (i = 0; rc == 0 && i < smtpx_server_rcpt_count(s); i++) {
        const recv_rcpt *rr = smtpx_server_rcpt_data(s, i);
        rc = smtpx_inbox_add_rcpt(rs->im, smtpx_server_rcpt_addr(s, i),
                                  rr ? rr->notify : 0,
                                  rr && rr->orcpt[0] ? rr->orcpt : NULL);
    }
    return rc;
}

/*
 * inbox_before - before the message is committed: the inbox records that
 * it is handed over (or finds it was already).  0 to commit it, 1 for a
 * duplicate (not stored again), or an error for the reply.
 */
static int inbox_before(smtpx_inbox_msg *im, int *verdict)
{
    int rc;

    *verdict = 0;
    if (im == NULL)
        return 0;
    rc = smtpx_inbox_check(im);
    if (rc != 0)
        return rc;
    *verdict = smtpx_inbox_verdict(im, SMTPX_INBOX_ALL);
    return *verdict == SMTPX_INBOX_DUPLICATE;
}

/* inbox_after - the message is durable in the Maildir: processed, and
 * acknowledged */
static int inbox_after(smtpx_inbox_msg *im, int rc)
{
    if (im == NULL || rc != 0)
        return rc;
    return smtpx_inbox_processed(im, SMTPX_INBOX_ALL);
}

/* inbox_done - keep the verdict and key for the log line, free im */
static void inbox_done(recv_session *rs, smtpx_inbox_msg *im, int verdict)
{
    const char *key = smtpx_inbox_key(im);

    if (rs != NULL && verdict != 0 && key != NULL) {
        rs->verdict = verdict;
        smtpx_escape(rs->key, sizeof(rs->key), key, strlen(key));
    }
    smtpx_inbox_msg_free(im);
}

static int cb_data_begin(smtpx_server *s, const smtpx_data_info *info,
                         smtpx_reply *reply, void *user_data)
{
    recv_session *rs = user_data;
    char hdr[2048];
    smtpx_ssize n;
    int rc;

    (void)info;
    rs->write_err = 0;
    if (rs->app->md == NULL)
        return 0;
    rc = inbox_begin(s, rs);
    if (rc == 0)
        rc = smtpx_maildir_begin(rs->app->md, &rs->msg);
    if (rc == 0) {
        n = smtpx_server_trace_headers(s, NULL, (int64_t)time(NULL), 0, hdr,
                                       sizeof(hdr));
        if (n > 0)
            rc = smtpx_maildir_write(rs->msg, hdr, (size_t)n);
    }
    if (rc < 0) {
        logline("%s cannot store a message: %s%s", rs->peer, smtpx_strerror(rc),
                syserr(rc));
        smtpx_maildir_abort(rs->msg);
        rs->msg = NULL;
        if (rc == SMTPX_ERR_NOSPACE)
            set_reply(reply, 452, 4, 3, 1,
                      "Insufficient system storage, try later");
        else
            set_reply(reply, 451, 4, 3, 0,
                      "Cannot store the message now, try later");
    }
    return 0;
}

static int cb_data_chunk(smtpx_server *s, const uint8_t *data, size_t len,
                         void *user_data)
{
    recv_session *rs = user_data;

    (void)s;
    /* After a write error the rest of the message is still read, so the
     * client gets a clear reply at its end. */
    if (rs->msg != NULL && rs->write_err == 0)
        rs->write_err = smtpx_maildir_write(rs->msg, data, len);
    if (rs->im != NULL && rs->inbox_err == 0)
        rs->inbox_err = smtpx_inbox_write(rs->im, data, len);
    return 0;
}

/* store_reply - the reply to the end of a message, by how storing it
 * went; text is the caller's buffer */
static void store_reply(smtpx_server *s, recv_session *rs, int rc,
                        int err_errno, const char *name, smtpx_reply *reply,
                        char *text, size_t size)
{
    if (rc == 1) {
        /* --dedupe: stored before; the sender must stop sending it. */
        set_reply(reply, 250, 2, 0, 0, "Ok: already received");
        log_txn(s, rs, "250", NULL);
        return;
    }
    if (rc == SMTPX_ERR_NO_MESSAGE_ID || rc == SMTPX_ERR_IN_PROGRESS) {
        if (rc == SMTPX_ERR_NO_MESSAGE_ID)
            set_reply(reply, 550, 5, 6, 0, "A Message-ID is required here");
        else
            set_reply(reply, 451, 4, 5, 0,
                      "The same message is being received, try later");
        log_txn(s, rs, rc == SMTPX_ERR_NO_MESSAGE_ID ? "550" : "451", NULL);
        return;
    }
    if (rc < 0) {
        uint64_t total, avail;
        const char *status = "451";

        errno = err_errno; /* for syserr(): 0 when not known */
        logline("%s message not stored: %s%s", rs->peer, smtpx_strerror(rc),
                syserr(rc));
        if (rc != SMTPX_ERR_NOSPACE) {
            set_reply(reply, 451, 4, 3, 0, "Message not stored, try later");
        } else if (fs_space(rs->app, &total, &avail) == 0 &&
                   smtpx_server_data_size(s) > total) {
            /* It could never fit: do not let the client try forever. */
            set_reply(reply, 552, 5, 3, 4,
                      "Message too big for this system's storage");
            status = "552";
        } else {
            /* The file is gone already (the writer removes it at the
             * first error), so a full disk stays no fuller than it was;
             * the client tries again later, when there may be room. */
            set_reply(reply, 452, 4, 3, 1,
                      "Insufficient system storage, try later");
            status = "452";
        }
        log_txn(s, rs, status, NULL);
        return;
    }
    /* The message is durable: now, and only now, say 250. */
    set_reply(reply, 250, 2, 0, 0, NULL);
    snprintf(text, size, "Ok: queued as %s", name);
    reply->text = text;
    rs->app->accepted++;
    log_txn(s, rs, "250", name);
}

/* pool_answer - on the loop thread: the answers of one committed group */
static void pool_answer(smtpx_loop *loop, void *user_data)
{
    recv_job *j = user_data, *next;
    char text[300];

    for (; j != NULL; j = next) {
        next = j->next;
        inbox_done(j->rs, j->im, j->verdict);
        if (j->rs != NULL) {
            smtpx_reply r;
            j->rs->job = NULL;
            store_reply(j->s, j->rs, j->rc, 0, j->name, &r, text, sizeof(text));
            smtpx_server_reply(j->s, &r, smtpx_loop_now(loop));
        }
        free(j);
    }
}

/* auth_answer - on the loop thread: the outcome of a password check */
static void auth_answer(smtpx_loop *loop, void *user_data)
{
    recv_job *j = user_data;

    if (j->rs != NULL) {
        smtpx_reply r;
        memset(&r, 0, sizeof(r));
        j->rs->job = NULL;
        if (j->rc) {
            set_reply(&r, 235, 2, 7, 0, "Authentication successful");
        } else {
            set_reply(&r, 535, 5, 7, 8, "Authentication credentials invalid");
        }
        smtpx_server_reply(j->s, &r, smtpx_loop_now(loop));
    }
    free(j);
}

/* auth_check - on a worker: the password against the user's StoredKey
 * (unless the session went: cancelled, read under the lock) */
static void auth_check(recv_pool *p, recv_job *j, int cancelled)
{
    const recv_user *u = j->user;
    uint8_t stored[32], server[32];
    int tries;

    j->rc = !cancelled &&
            smtpx_scram_keys(j->secret, j->secret_len, u->salt, u->salt_len,
                             u->iterations, stored, server) == 0 &&
            same(stored, u->stored_key, sizeof(stored));
    memset(j->secret, 0, sizeof(j->secret));
    for (tries = 0; smtpx_loop_post(p->loop, auth_answer, j) != 0; tries++) {
        if (tries == 1000)
            abort(); /* out of memory for a second: give up loudly */
        usleep(1000);
    }
}

/* pool_push - a job for the workers (under the lock) */
static void pool_push(recv_pool *p, recv_job *j)
{
    pthread_mutex_lock(&p->mu);
    *p->todo_tail = j;
    p->todo_tail = &j->next;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* pool_auth - check a PLAIN or LOGIN password on a worker; 0 (the session
 * pauses), or -1 (check it here) */
static int pool_auth(recv_session *rs, smtpx_server *s, const recv_user *u,
                     const smtpx_auth_info *a)
{
    recv_job *j = calloc(1, sizeof(*j));

    if (j == NULL)
        return -1;
    j->rs = rs;
    j->s = s;
    j->user = u;
    memcpy(j->secret, a->secret, a->secret_len);
    j->secret_len = a->secret_len;
    rs->job = j;
    pool_push(&rs->app->pool, j);
    return 0;
}

/* pool_post - the answers of a list of jobs, to the loop thread */
static void pool_post(recv_pool *p, recv_job *list)
{
    int tries;

    for (tries = 0; smtpx_loop_post(p->loop, pool_answer, list) != 0; tries++) {
        if (tries == 1000)
            abort(); /* out of memory for a second: give up loudly */
        usleep(1000);
    }
}

/*
 * pool_commit - commit a group (messages whose session went are aborted)
 * and post its answers.  A message the inbox follows goes back to the
 * workers once it is in new/: smtpx_inbox_processed() syncs the store (and
 * commits acknowledgements), and done there, by several workers at once,
 * those syncs are shared instead of run one after another here.
 */
static void pool_commit(recv_pool *p, recv_job *group)
{
    smtpx_maildir_msg **msgs;
    recv_job *j, *next, *answers = NULL, **atail = &answers;
    recv_job *later = NULL, **ltail = &later;
    size_t n = 0, i, nsize = sizeof(group->name);
    int *results;
    char *names;

    for (j = group; j != NULL; j = j->next)
        n++;
    msgs = calloc(n, sizeof(*msgs));
    results = calloc(n, sizeof(*results));
    names = calloc(n, nsize);
    for (i = 0, j = group; j != NULL; j = j->next, i++) {
        if (j->msg == NULL)
            continue; /* a duplicate, or refused by the inbox */
        if (j->cancelled || msgs == NULL || results == NULL || names == NULL) {
            smtpx_maildir_abort(j->msg);
            j->rc = SMTPX_ERR_NOMEM;
        } else {
            msgs[i] = j->msg;
        }
        j->msg = NULL;
    }
    if (msgs != NULL && results != NULL && names != NULL) {
        smtpx_maildir_commit_group(msgs, n, results, names, nsize);
        for (i = 0, j = group; j != NULL; j = j->next, i++) {
            if (msgs[i] == NULL)
                continue;
            j->rc = results[i];
            j->stored = j->rc == 0 && j->im != NULL;
            memcpy(j->name, names + i * nsize, nsize);
        }
    }
    free(msgs);
    free(results);
    free(names);
    for (j = group; j != NULL; j = next) {
        next = j->next;
        j->next = NULL;
        if (j->stored) {
            *ltail = j;
            ltail = &j->next;
        } else {
            *atail = j;
            atail = &j->next;
        }
    }
    if (later != NULL) {
        pthread_mutex_lock(&p->mu);
        *p->todo_tail = later;
        p->todo_tail = ltail;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    if (answers != NULL)
        pool_post(p, answers);
}

static void *pool_worker(void *arg)
{
    recv_pool *p = arg;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        recv_job *j, *group;

        while (p->todo == NULL && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->todo == NULL)
            break;
        j = p->todo;
        p->todo = j->next;
        if (p->todo == NULL)
            p->todo_tail = &p->todo;
        j->next = NULL;
        if (j->user != NULL) {
            int cancelled = j->cancelled;
            pthread_mutex_unlock(&p->mu);
            auth_check(p, j, cancelled);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        if (j->stored) {
            /* In new/: now, whether or not its session is still there,
             * the inbox records it processed (and acknowledges it). */
            pthread_mutex_unlock(&p->mu);
            j->rc = inbox_after(j->im, 0);
            pool_post(p, j);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        if (!j->cancelled) {
            pthread_mutex_unlock(&p->mu);
            j->rc = inbox_before(j->im, &j->verdict);
            if (j->rc == 0) {
                j->rc = smtpx_maildir_sync(j->msg);
            } else {
                smtpx_maildir_abort(j->msg);
                j->msg = NULL;
            }
            pthread_mutex_lock(&p->mu);
        }
        *p->synced_tail = j;
        p->synced_tail = &j->next;
        if (p->committing)
            continue; /* the running commit takes it next */
        p->committing = 1;
        while ((group = p->synced) != NULL) {
            p->synced = NULL;
            p->synced_tail = &p->synced;
            pthread_mutex_unlock(&p->mu);
            pool_commit(p, group);
            pthread_mutex_lock(&p->mu);
        }
        p->committing = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int pool_start(recv_pool *p, smtpx_loop *loop, int n)
{
    p->loop = loop;
    p->todo_tail = &p->todo;
    p->synced_tail = &p->synced;
    if (pthread_mutex_init(&p->mu, NULL) != 0 ||
        pthread_cond_init(&p->cv, NULL) != 0)
        return -1;
    for (p->nthreads = 0; p->nthreads < n; p->nthreads++)
        if (pthread_create(&p->th[p->nthreads], NULL, pool_worker, p) != 0)
            return -1;
    return 0;
}

/* pool_stop - the workers finish what is queued, then end */
static void pool_stop(recv_pool *p)
{
    int i;

    if (p->nthreads == 0)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (i = 0; i < p->nthreads; i++)
        pthread_join(p->th[i], NULL);
    p->nthreads = 0;
}

static int cb_data_end(smtpx_server *s, smtpx_reply *reply, void *user_data)
{
    recv_session *rs = user_data;
    recv_pool *p = &rs->app->pool;
    static char text[300];
    char name[256];
    recv_job *j;
    int rc = rs->write_err, verdict = 0;

    if (rs->msg == NULL) {
        /* --discard */
        rs->app->accepted++;
        log_txn(s, rs, "250", NULL);
        return 0;
    }
    if (rc == 0)
        rc = rs->inbox_err;
    if (rc == 0 && p->nthreads > 0 && (j = calloc(1, sizeof(*j))) != NULL) {
        /* Off the loop thread: the session waits, the others go on. */
        j->rs = rs;
        j->s = s;
        j->msg = rs->msg;
        j->im = rs->im;
        rs->msg = NULL;
        rs->im = NULL;
        rs->job = j;
        pool_push(p, j);
        return SMTPX_ERR_PAUSE;
    }
    if (rc == 0)
        rc = inbox_before(rs->im, &verdict);
    if (rc == 0)
        rc = inbox_after(rs->im,
                         smtpx_maildir_commit(rs->msg, name, sizeof(name)));
    else
        smtpx_maildir_abort(rs->msg);
    rs->msg = NULL;
    inbox_done(rs, rs->im, verdict);
    rs->im = NULL;
    store_reply(s, rs, rc, errno, name, reply, text, sizeof(text));
    return 0;
}

static void cb_txn_end(smtpx_server *s, int reason, void *user_data)
{
    recv_session *rs = user_data;
    size_t i;

    if (rs->msg != NULL) {
        smtpx_maildir_abort(rs->msg);
        rs->msg = NULL;
    }
    smtpx_inbox_msg_free(rs->im);
    rs->im = NULL;
    rs->has_envid = 0;
    for (i = 0; i < smtpx_server_rcpt_count(s); i++)
        free(smtpx_server_rcpt_data(s, i));
    if (reason == SMTPX_TXN_REFUSED)
        log_txn(s, rs, "refused", NULL);
    else if (reason == SMTPX_TXN_ABORTED && smtpx_server_rcpt_count(s) > 0)
        log_txn(s, rs, "aborted", NULL);
}

static void cb_log(smtpx_server *s, int level, const char *msg, void *user_data)
{
    recv_session *rs = user_data;

    (void)s;
    if (rs == NULL || (rs->app->opts.quiet && level > SMTPX_LOG_ERROR) ||
        (!rs->app->opts.verbose && level > SMTPX_LOG_NOTICE))
        return;
    logline("%s %s", rs->peer, msg);
}

static void cb_trace(smtpx_server *s, int dir, const char *line, size_t len,
                     void *user_data)
{
    recv_session *rs = user_data;

    (void)s;
    /* A client's line may hold anything (NUL, escape sequences): shown
     * escaped, it can neither forge a log line nor drive a terminal. */
    if (rs != NULL && rs->app->opts.verbose) {
        char shown[SMTPX_ESCAPE_SIZE(1000)];
        logline("%s %s %s", rs->peer, dir == SMTPX_TRACE_IN ? "<" : ">",
                smtpx_escape(shown, sizeof(shown), line, len));
    }
}

static void cb_close(smtpx_server *s, int status, void *user_data)
{
    recv_session *rs = user_data;

    (void)s;
    if (rs->msg != NULL) {
        smtpx_maildir_abort(rs->msg);
        rs->msg = NULL;
    }
    smtpx_inbox_msg_free(rs->im);
    rs->im = NULL;
    if (rs->job != NULL) {
        /* Gone while its message was being stored: the workers drop it
         * if they have not committed it yet, and nobody answers. */
        pthread_mutex_lock(&rs->app->pool.mu);
        rs->job->cancelled = 1;
        rs->job->rs = NULL;
        pthread_mutex_unlock(&rs->app->pool.mu);
        rs->job = NULL;
    }
    /* A client that hangs up or resets is ordinary; timeouts, limits and
     * protocol or local failures are worth a line. */
    if (rs->app->opts.verbose ||
        (status != 0 && status != SMTPX_ERR_EOF && status != SMTPX_ERR_IO &&
         !rs->app->opts.quiet))
        logline("%s closed: %s", rs->peer,
                status == 0 ? "QUIT" : smtpx_strerror(status));
}

static const smtpx_server_callbacks recv_cbs = {
    .on_connect = cb_connect,
    .on_mail = cb_mail,
    .on_rcpt = cb_rcpt,
    .on_data_begin = cb_data_begin,
    .on_data_chunk = cb_data_chunk,
    .on_data_end = cb_data_end,
    .on_txn_end = cb_txn_end,
    .on_log = cb_log,
    .on_trace = cb_trace,
    .on_close = cb_close,
};

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: smtpx-recv --listen ADDR:PORT [--listen ...] "
            "(--maildir DIR | --discard) [options]\n"
            "  --listen ADDR:PORT   listen here (repeatable): 127.0.0.1:2525, "
            "[::1]:2525, :2525,\n"
            "                       or /PATH for a local socket\n"
            "  --socket-mode MODE   the mode of /PATH sockets (octal; "
            "default from the umask)\n"
            "  --maildir DIR        deliver into the Maildir DIR (created if "
            "missing)\n"
            "  --discard            accept and discard (benchmarks)\n"
            "  --hostname NAME      name in the greeting and Received header\n"
            "  --max-size BYTES     message size limit (default 10240000; 0: "
            "none)\n"
            "  --max-rcpts N        recipients per message (default 1000)\n"
            "  --max-sessions N     simultaneous sessions (default: no "
            "limit)\n"
            "  --max-msgs N         messages per session (default 1000; 0: "
            "none)\n"
            "  --timeout SECONDS    command and data timeout (default 300)\n"
            "  --sync-threads N     threads that make messages durable, "
            "committing\n"
            "                       them in groups, and check passwords "
            "(default 8;\n"
            "                       0: one at a time in the serving "
            "thread)\n"
            "  --limit-addr-sessions N  sessions at once from one address "
            "(421)\n"
            "  --limit-net-sessions N   sessions at once from one network\n"
            "  --limit-conn-rate N      connections per address per minute\n"
            "  --limit-msg-rate N       messages per address per minute "
            "(450)\n"
            "  --limit-auth-rate N      AUTH attempts per address per minute "
            "(454)\n"
            "  --limit-net4 BITS, --limit-net6 BITS  the network of an "
            "address\n"
            "                       (default 24 and 64)\n"
            "  --limit-exempt LIST  addresses and networks no limit applies "
            "to\n"
            "                       (\"127.0.0.1, ::1, 10.0.0.0/8\")\n"
            "  --proxy-listen ADDR:PORT  listen here for connections relayed "
            "by a\n"
            "                       proxy that sends the PROXY protocol "
            "header\n"
            "                       (HAProxy send-proxy, v1 or v2; "
            "repeatable)\n"
            "  --proxy-trusted LIST the proxies allowed to say who the "
            "client is\n"
            "  --enforce-sync       disconnect clients that talk before the "
            "greeting\n"
            "                       or pipeline where they must wait (554)\n"
            "  --crlf               store CRLF line ends instead of LF\n"
            "  --bare-lf normalize|reject  bare LF/CR policy (default "
            "normalize)\n"
            "  --lmtp               speak LMTP instead of SMTP\n"
            "  --dsn                offer DSN (RFC 3461)\n"
            "  --binarymime         offer BINARYMIME (RFC 3030); messages are\n"
            "                       stored byte for byte (with CRLF)\n"
            "  --requiretls         offer REQUIRETLS under TLS (RFC 8689)\n"
            "  --tls-cert FILE --tls-key FILE  certificate (chain) and key: "
            "STARTTLS\n"
            "  --tls-listen ADDR:PORT  implicit TLS here (repeatable; port "
            "465)\n"
            "  --require-tls        no MAIL or AUTH before TLS (530)\n"
            "  --auth-file FILE     offer AUTH, users from FILE (see "
            "--make-password)\n"
            "  --auth-cleartext     offer AUTH before TLS too (not "
            "advised)\n"
            "  --local-domain DOM   with AUTH: mail for DOM from anyone, "
            "other\n"
            "                       domains only when authenticated "
            "(repeatable)\n"
            "  --make-password USER print an --auth-file entry for the "
            "password on\n"
            "                       standard input (--iterations N, default "
            "4096)\n"
            "  --dedupe FILE        receive each message once: Message-IDs "
            "are kept\n"
            "                       in FILE; a message seen before is "
            "answered 250\n"
            "                       and not stored again\n"
            "  --dedupe-window DURATION  how long an id is kept (default 7d;"
            "\n"
            "                       s, m, h or d)\n"
            "  --dedupe-max N       ids kept at most (default 100000)\n"
            "  --dedupe-noid refuse|hash|accept  a message without a "
            "Message-ID:\n"
            "                       refused (550, the default), known by "
            "its hash,\n"
            "                       or taken each time\n"
            "  --ack [always]       acknowledge what is stored: an MDN to "
            "the\n"
            "                       Disposition-Notification-To (always: "
            "else to the\n"
            "                       sender); with --dsn, a \"delivered\" DSN "
            "where\n"
            "                       NOTIFY=SUCCESS asks\n"
            "  --ack-from ADDR      the MDNs' From (default "
            "postmaster@HOSTNAME)\n"
            "  --ack-via HOST:PORT  send acknowledgements there (default: "
            "by MX)\n"
            "  --ack-queue DIR      where they wait (default: the --dedupe "
            "FILE.acks)\n"
            "  -v, --verbose        log the SMTP dialogue too\n"
            "  -q, --quiet          log only errors\n"
            "  -h, --help, --version\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

/* parse_duration - "90", "90s", "15m", "12h", "7d": seconds, 1 to ten
 * years */
static int parse_duration(const char *s, uint32_t *out)
{
    uint64_t v, mul = 1;
    char num[32];
    size_t n = strlen(s);

    if (n == 0 || n >= sizeof(num))
        return -1;
    memcpy(num, s, n + 1);
    switch (num[n - 1]) {
    case 'd':
        mul *= 24; /* fall through */
    case 'h':
        mul *= 60; /* fall through */
    case 'm':
        mul *= 60; /* fall through */
    case 's':
        num[n - 1] = '\0';
        break;
    default:
        break;
    }
    if (parse_u64(num, &v) < 0 || v == 0 || v > 3650u * 86400u / mul)
        return -1;
    *out = (uint32_t)(v * mul);
    return 0;
}

/* ack_address_ok - an address to send from: local@domain, printable, no
 * white space or brackets */
static int ack_address_ok(const char *a)
{
    const char *at = strrchr(a, '@');
    size_t i, n = strlen(a);

    if (at == NULL || at == a || at[1] == '\0' || n > 254)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)a[i] <= ' ' || (unsigned char)a[i] >= 127 ||
            a[i] == '<' || a[i] == '>')
            return 0;
    return 1;
}

static int parse_args(int argc, char **argv, recv_opts *o)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"maildir", required_argument, NULL, 'm'},
        {"discard", no_argument, NULL, 'd'},
        {"hostname", required_argument, NULL, 'H'},
        {"max-size", required_argument, NULL, 'S'},
        {"max-rcpts", required_argument, NULL, 'R'},
        {"max-sessions", required_argument, NULL, 'N'},
        {"max-msgs", required_argument, NULL, 'M'},
        {"timeout", required_argument, NULL, 'T'},
        {"sync-threads", required_argument, NULL, 'Y'},
        {"enforce-sync", no_argument, NULL, 'E'},
        {"limit-addr-sessions", required_argument, NULL, 1001},
        {"limit-net-sessions", required_argument, NULL, 1002},
        {"limit-conn-rate", required_argument, NULL, 1003},
        {"limit-msg-rate", required_argument, NULL, 1004},
        {"limit-auth-rate", required_argument, NULL, 1010},
        {"limit-net4", required_argument, NULL, 1005},
        {"limit-net6", required_argument, NULL, 1006},
        {"limit-exempt", required_argument, NULL, 1007},
        {"proxy-listen", required_argument, NULL, 1008},
        {"proxy-trusted", required_argument, NULL, 1009},
        {"socket-mode", required_argument, NULL, 1011},
        {"crlf", no_argument, NULL, 'c'},
        {"dsn", no_argument, NULL, 'x' + 256},
        {"binarymime", no_argument, NULL, 'y' + 256},
        {"requiretls", no_argument, NULL, 'z' + 256},
        {"bare-lf", required_argument, NULL, 'b'},
        {"lmtp", no_argument, NULL, 'L'},
        {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'K'},
        {"tls-listen", required_argument, NULL, 't'},
        {"require-tls", no_argument, NULL, 'r'},
        {"auth-file", required_argument, NULL, 'a'},
        {"auth-cleartext", no_argument, NULL, 'A'},
        {"local-domain", required_argument, NULL, 'D'},
        {"make-password", required_argument, NULL, 'P'},
        {"iterations", required_argument, NULL, 'I'},
        {"dedupe", required_argument, NULL, 1020},
        {"dedupe-window", required_argument, NULL, 1021},
        {"dedupe-max", required_argument, NULL, 1022},
        {"dedupe-noid", required_argument, NULL, 1023},
        {"ack", optional_argument, NULL, 1024},
        {"ack-from", required_argument, NULL, 1025},
        {"ack-via", required_argument, NULL, 1026},
        {"ack-queue", required_argument, NULL, 1027},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    uint64_t v;
    int c;

    memset(o, 0, sizeof(*o));
    o->max_size = 10240000;
    o->max_rcpts = 1000;
    o->max_msgs = 1000;
    o->timeout_s = 300;
    o->socket_mode = -1;
    o->sync_threads = 8;
    o->iterations = DEFAULT_ITERATIONS;
    while ((c = getopt_long(argc, argv, "vqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (o->nlisten == MAX_LISTEN)
                return -1;
            o->listen[o->nlisten++] = optarg;
            break;
        case 'm':
            o->maildir = optarg;
            break;
        case 'd':
            o->discard = 1;
            break;
        case 'H':
            o->hostname = optarg;
            break;
        case 'S':
            if (parse_u64(optarg, &o->max_size) < 0)
                return -1;
            break;
        case 'R':
            if (parse_u64(optarg, &o->max_rcpts) < 0 || o->max_rcpts == 0)
                return -1;
            break;
        case 'N':
            if (parse_u64(optarg, &v) < 0)
                return -1;
            o->max_sessions = (size_t)v;
            break;
        case 'M':
            if (parse_u64(optarg, &o->max_msgs) < 0)
                return -1;
            break;
        case 'T':
            if (parse_u64(optarg, &v) < 0 || v == 0 || v > 86400)
                return -1;
            o->timeout_s = (uint32_t)v;
            break;
        case 'Y':
            if (parse_u64(optarg, &v) < 0 || v > MAX_SYNC_THREADS)
                return -1;
            o->sync_threads = (int)v;
            break;
        case 'E':
            o->enforce_sync = 1;
            break;
        case 1001:
        case 1002:
        case 1003:
        case 1004:
        case 1005:
        case 1006:
        case 1010:
            if (parse_u64(optarg, &v) < 0 || v > UINT32_MAX ||
                (c == 1005 && (v == 0 || v > 32)) ||
                (c == 1006 && (v == 0 || v > 128)))
                return -1;
            if (c == 1001)
                o->limits.addr_sessions = (uint32_t)v;
            else if (c == 1002)
                o->limits.net_sessions = (uint32_t)v;
            else if (c == 1003)
                o->limits.conn_rate = (uint32_t)v;
            else if (c == 1004)
                o->limits.msg_rate = (uint32_t)v;
            else if (c == 1010)
                o->limits.auth_rate = (uint32_t)v;
            else if (c == 1005)
                o->limits.net4 = (unsigned)v;
            else
                o->limits.net6 = (unsigned)v;
            break;
        case 1007:
            o->limit_exempt = optarg;
            break;
        case 1008:
            if (o->nproxy_listen == MAX_LISTEN)
                return -1;
            o->proxy_listen[o->nproxy_listen++] = optarg;
            break;
        case 1009:
            o->proxy_trusted = optarg;
            break;
        case 'c':
            o->crlf = 1;
            break;
        case 'b':
            if (strcmp(optarg, "reject") == 0)
                o->bare_lf_reject = 1;
            else if (strcmp(optarg, "normalize") != 0)
                return -1;
            break;
        case 'L':
            o->lmtp = 1;
            break;
        case 'C':
            o->tls_cert = optarg;
            break;
        case 'K':
            o->tls_key = optarg;
            break;
        case 't':
            if (o->ntls_listen == MAX_LISTEN)
                return -1;
            o->tls_listen[o->ntls_listen++] = optarg;
            break;
        case 'x' + 256:
            o->dsn = 1;
            break;
        case 'y' + 256:
            o->binarymime = 1;
            o->crlf = 1; /* binary content is stored as it came */
            break;
        case 'z' + 256:
            o->requiretls = 1;
            break;
        case 'r':
            o->require_tls = 1;
            break;
        case 'a':
            o->auth_file = optarg;
            break;
        case 'A':
            o->auth_cleartext = 1;
            break;
        case 'D':
            if (o->nlocal == MAX_LISTEN)
                return -1;
            o->local_domains[o->nlocal++] = optarg;
            break;
        case 'P':
            o->make_password = optarg;
            break;
        case 'I':
            if (parse_u64(optarg, &v) < 0 || v == 0 || v > 10000000)
                return -1;
            o->iterations = (uint32_t)v;
            break;
        case 1020:
            o->dedupe = optarg;
            break;
        case 1021:
            if (parse_duration(optarg, &o->dedupe_window) < 0)
                return usage_error("--dedupe-window wants a duration: "
                                   "seconds, or a number followed by s, m, "
                                   "h or d (7d), up to 3650d");
            o->dedupe_by = "--dedupe-window";
            break;
        case 1022:
            if (parse_u64(optarg, &v) < 0 || v == 0 || v > (1u << 28))
                return usage_error("--dedupe-max wants a number from 1 to "
                                   "268435456");
            o->dedupe_max = (uint32_t)v;
            o->dedupe_by = "--dedupe-max";
            break;
        case 1023:
            if (strcmp(optarg, "refuse") == 0)
                o->dedupe_noid = SMTPX_INBOX_NOID_REFUSE;
            else if (strcmp(optarg, "hash") == 0)
                o->dedupe_noid = SMTPX_INBOX_NOID_HASH;
            else if (strcmp(optarg, "accept") == 0)
                o->dedupe_noid = SMTPX_INBOX_NOID_ACCEPT;
            else
                return usage_error("--dedupe-noid wants refuse, hash or "
                                   "accept");
            o->dedupe_by = "--dedupe-noid";
            break;
        case 1024:
            /* "--ack always" as well as "--ack=always". */
            if (optarg == NULL && optind < argc &&
                strcmp(argv[optind], "always") == 0)
                optarg = argv[optind++];
            if (optarg != NULL && strcmp(optarg, "always") != 0)
                return usage_error("--ack takes nothing, or \"always\"");
            o->ack = optarg != NULL ? 2 : 1;
            o->dedupe_by = "--ack";
            break;
        case 1025:
            if (!ack_address_ok(optarg))
                return usage_error("--ack-from wants an address, "
                                   "local@domain");
            o->ack_from = optarg;
            o->ack_by = "--ack-from";
            break;
        case 1026: {
            char h[256], port[32];
            if (smtpx_posix_split_hostport(optarg, h, sizeof(h), port,
                                           sizeof(port)) < 0 ||
                h[0] == '\0' || atoi(port) <= 0 || atoi(port) > 65535)
                return usage_error("--ack-via wants HOST:PORT "
                                   "(127.0.0.1:2525, [::1]:25, "
                                   "relay.example.org:587)");
            o->ack_via = optarg;
            o->ack_by = "--ack-via";
            break;
        }
        case 1011: {
            char *end;
            unsigned long m;
            errno = 0;
            m = strtoul(optarg, &end, 8);
            if (optarg[0] < '0' || optarg[0] > '7' || *end != '\0' ||
                errno != 0 || m > 0777)
                return usage_error("--socket-mode wants an octal mode, 0 "
                                   "to 777 (666: anyone may connect)");
            o->socket_mode = (int)m;
            break;
        }
        case 1027:
            o->ack_queue = optarg;
            o->ack_by = "--ack-queue";
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
            printf("smtpx-recv (libsmtpx %s)\n", smtpx_version_string());
            exit(0);
        default:
            return -1;
        }
    }
    if (o->make_password != NULL)
        return optind == argc ? 0
                              : usage_error("--make-password takes no "
                                            "other arguments");
    if (optind != argc)
        return usage_error("unexpected argument");
    if (o->nlisten + o->ntls_listen + o->nproxy_listen == 0)
        return usage_error("nothing to listen on: give --listen ADDR:PORT "
                           "(or --tls-listen, --proxy-listen)");
    if (o->socket_mode >= 0) {
        int i, paths = 0;
        for (i = 0; i < o->nlisten; i++)
            paths += o->listen[i][0] == '/';
        for (i = 0; i < o->ntls_listen; i++)
            paths += o->tls_listen[i][0] == '/';
        for (i = 0; i < o->nproxy_listen; i++)
            paths += o->proxy_listen[i][0] == '/';
        if (paths == 0)
            return usage_error("--socket-mode needs a local socket: "
                               "--listen /PATH");
    }
    if (o->nproxy_listen > 0 && o->proxy_trusted == NULL)
        return usage_error("--proxy-listen needs --proxy-trusted");
    if (o->nproxy_listen == 0 && o->proxy_trusted != NULL)
        return usage_error("--proxy-trusted needs --proxy-listen");
    if (o->maildir == NULL && o->discard == 0)
        return usage_error("where should messages go? give --maildir DIR or "
                           "--discard");
    if (o->maildir != NULL && o->discard != 0)
        return usage_error("--maildir and --discard exclude each other");
    if ((o->tls_cert == NULL) != (o->tls_key == NULL))
        return usage_error("--tls-cert and --tls-key go together");
    if (o->ntls_listen > 0 && o->tls_cert == NULL)
        return usage_error("--tls-listen needs --tls-cert and --tls-key");
    if (o->requiretls && o->tls_cert == NULL)
        return usage_error("--requiretls needs --tls-cert and --tls-key");
    if (o->require_tls && o->tls_cert == NULL)
        return usage_error("--require-tls needs --tls-cert and --tls-key");
    if (o->dedupe == NULL && o->dedupe_by != NULL) {
        static char why[80];
        snprintf(why, sizeof(why), "%s needs --dedupe FILE", o->dedupe_by);
        return usage_error(why);
    }
    if (o->ack == 0 && o->ack_by != NULL) {
        static char why[80];
        snprintf(why, sizeof(why), "%s needs --ack", o->ack_by);
        return usage_error(why);
    }
    if (o->dedupe != NULL && o->maildir == NULL)
        return usage_error("--dedupe needs --maildir: it keeps a message "
                           "from being stored twice");
    if (o->ack && o->ack_queue == NULL &&
        strlen(o->dedupe) + sizeof(".acks") > 4096)
        return usage_error("--dedupe FILE: name too long");
    return 0;
}

/* host_name - --hostname, else the system's (fully qualified if it can
 * be had) */
static void host_name(const recv_opts *o, char *host, size_t size)
{
    if (o->hostname != NULL) {
        snprintf(host, size, "%s", o->hostname);
    } else if (smtpx_posix_hostname(host, size) < 0) {
        /* No fully qualified name: the bare one (--hostname says better). */
        if (gethostname(host, size) < 0 || host[0] == '\0')
            snprintf(host, size, "localhost");
        host[size - 1] = '\0';
    }
}

/* make_config - the shared, frozen config from the options */
static int make_config(const recv_opts *o, const char *host, smtpx_config **out)
{
    smtpx_config *cfg;
    int rc;

    rc = smtpx_config_new(
        &cfg, o->lmtp ? SMTPX_ROLE_LMTP_SERVER : SMTPX_ROLE_SERVER, NULL);
    if (rc < 0)
        return rc;
    if ((rc = smtpx_config_set_hostname(cfg, host)) < 0 ||
        (rc = smtpx_config_set_limit(cfg, SMTPX_LIMIT_MSG_SIZE, o->max_size)) <
            0 ||
        (rc = smtpx_config_set_limit(cfg, SMTPX_LIMIT_RCPTS, o->max_rcpts)) <
            0 ||
        (rc = smtpx_config_set_limit(cfg, SMTPX_LIMIT_MSGS, o->max_msgs)) < 0 ||
        (rc = smtpx_config_set_timeout(cfg, SMTPX_TIMEOUT_COMMAND,
                                       o->timeout_s * 1000u)) < 0 ||
        (rc = smtpx_config_set_timeout(cfg, SMTPX_TIMEOUT_DATA,
                                       o->timeout_s * 1000u)) < 0 ||
        (rc = smtpx_config_set_policy(cfg, SMTPX_POLICY_BARE_LF,
                                      o->bare_lf_reject
                                          ? SMTPX_BARE_LF_REJECT
                                          : SMTPX_BARE_LF_NORMALIZE)) < 0 ||
        (rc = smtpx_config_set_policy(cfg, SMTPX_POLICY_REQUIRE_TLS,
                                      o->require_tls)) < 0 ||
        (rc = smtpx_config_set_policy(cfg, SMTPX_POLICY_AUTH_CLEARTEXT,
                                      o->auth_cleartext)) < 0 ||
        (rc = smtpx_config_set_policy(cfg, SMTPX_POLICY_ENFORCE_SYNC,
                                      o->enforce_sync)) < 0 ||
        (rc = smtpx_config_set_extensions(
             cfg, SMTPX_EXT_DEFAULT | (o->dsn ? SMTPX_EXT_DSN : 0u) |
                      (o->binarymime ? SMTPX_EXT_BINARYMIME : 0u) |
                      (o->requiretls ? SMTPX_EXT_REQUIRETLS : 0u))) < 0 ||
        (rc = smtpx_config_freeze(cfg)) < 0) {
        smtpx_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

/* ---- the store, the inbox and the acknowledgements' engine -------------- */

static void acks_log(int level, const char *msg, void *user_data)
{
    const recv_opts *o = user_data;

    if ((o->quiet && level > SMTPX_LOG_ERROR) ||
        (!o->verbose && level > SMTPX_LOG_INFO))
        return;
    logline("ack queue: %s", msg);
}

static void *acks_thread(void *arg)
{
    recv_acks *a = arg;
    int rc = smtpx_mta_run(a->mta);

    if (rc < 0)
        logline("ack queue: delivery stopped: %s", smtpx_strerror(rc));
    return NULL;
}

/*
 * acks_open - --dedupe: open the store and make the inbox; with --ack,
 * open the acknowledgements' queue and start its engine on a thread of its
 * own (what a previous run left in it is tried at once).  Reports what
 * failed; 0 or -1.
 */
static int acks_open(recv_app *app)
{
    const recv_opts *o = &app->opts;
    recv_acks *a = &app->acks;
    smtpx_dedupe_opts dop;
    smtpx_inbox_opts iop;
    smtpx_mta_opts mop;
    int rc;

    if (o->dedupe == NULL)
        return 0;
    memset(&dop, 0, sizeof(dop));
    dop.size = sizeof(dop);
    dop.window_s = o->dedupe_window;
    dop.max_entries = o->dedupe_max;
    rc = smtpx_dedupe_open(&a->dd, o->dedupe, &dop);
    if (rc < 0) {
        fprintf(stderr, "smtpx-recv: --dedupe %s: %s%s\n", o->dedupe,
                smtpx_strerror(rc), syserr(rc));
        return -1;
    }
    memset(&iop, 0, sizeof(iop));
    iop.size = sizeof(iop);
    iop.no_id = o->dedupe_noid;
    iop.dedupe = a->dd;
    if (o->ack) {
        smtpx_queue_opts qop;
        size_t waiting;

        if (o->ack_queue != NULL)
            snprintf(a->qdir, sizeof(a->qdir), "%s", o->ack_queue);
        else
            snprintf(a->qdir, sizeof(a->qdir), "%s.acks", o->dedupe);
        if (o->ack_from != NULL)
            snprintf(a->from, sizeof(a->from), "%s", o->ack_from);
        else
            snprintf(a->from, sizeof(a->from), "postmaster@%s", app->host);
        memset(&qop, 0, sizeof(qop));
        qop.size = sizeof(qop);
        rc = smtpx_queue_open(&a->q, a->qdir, &qop);
        if (rc < 0) {
            fprintf(stderr, "smtpx-recv: --ack-queue %s: %s%s\n", a->qdir,
                    smtpx_strerror(rc), syserr(rc));
            return -1;
        }
        waiting = smtpx_queue_count(a->q);
        if (waiting > 0) {
            /* Left by the last run: their next try may be far off. */
            smtpx_queue_flush(a->q, NULL);
            if (!o->quiet)
                logline("ack queue %s: %zu acknowledgement%s waiting", a->qdir,
                        waiting, waiting == 1 ? "" : "s");
        }
        if ((rc = smtpx_config_new(&a->cfg, SMTPX_ROLE_CLIENT, NULL)) < 0 ||
            (rc = smtpx_config_set_hostname(a->cfg, app->host)) < 0 ||
            (rc = smtpx_config_freeze(a->cfg)) < 0 ||
            (rc = smtpx_resolver_new(&a->res, NULL)) < 0 ||
            (rc = smtpx_mbedtls_new(&a->tls, 0)) < 0) {
            fprintf(stderr, "smtpx-recv: acknowledgements: %s\n",
                    smtpx_strerror(rc));
            return -1;
        }
        iop.flags = (o->ack == 2 ? SMTPX_INBOX_ACK_ALWAYS : 0u) |
                    (o->dsn ? SMTPX_INBOX_DSN_SUCCESS : 0u);
        iop.acks = a->q;
        iop.ack_from = a->from;
        iop.hostname = app->host;
        memset(&mop, 0, sizeof(mop));
        mop.size = sizeof(mop);
        mop.client_cfg = a->cfg;
        mop.hostname = app->host;
        mop.resolver = a->res;
        mop.smarthost = o->ack_via;
        /* STARTTLS where offered, unverified: an acknowledgement says
         * little, and must not wait for a certificate to be fixed. */
        mop.tls = smtpx_mbedtls_ops();
        mop.tls_cfg = a->tls;
        mop.tls_set = 1;
        mop.mx_tls_level = SMTPX_TLS_MAY;
        mop.smarthost_tls_level = SMTPX_TLS_MAY;
        mop.on_log = acks_log;
        mop.log_data = (void *)o;
        rc = smtpx_mta_new(&a->mta, a->q, &mop);
        if (rc < 0) {
            fprintf(stderr, "smtpx-recv: acknowledgements' engine: %s\n",
                    smtpx_strerror(rc));
            return -1;
        }
    }
    rc = smtpx_inbox_new(&a->inbox, &iop);
    if (rc < 0) {
        fprintf(stderr, "smtpx-recv: inbox: %s\n", smtpx_strerror(rc));
        return -1;
    }
    if (a->mta != NULL) {
        if (pthread_create(&a->th, NULL, acks_thread, a) != 0) {
            fprintf(stderr, "smtpx-recv: cannot start the acknowledgements' "
                            "thread\n");
            return -1;
        }
        a->running = 1;
        the_acks = a->mta;
    }
    return 0;
}

/* acks_stop - the engine finishes the deliveries under way and ends; what
 * it has not sent waits in the queue for the next run */
static void acks_stop(recv_acks *a)
{
    if (!a->running)
        return;
    the_acks = NULL;
    smtpx_mta_stop(a->mta);
    pthread_join(a->th, NULL);
    a->running = 0;
}

/* acks_close - everything acks_open() made (the engine stopped first) */
static void acks_close(recv_acks *a)
{
    acks_stop(a);
    smtpx_inbox_free(a->inbox);
    smtpx_mta_free(a->mta);
    smtpx_queue_free(a->q);
    smtpx_resolver_free(a->res);
    smtpx_mbedtls_free(a->tls);
    smtpx_config_free(a->cfg);
    smtpx_dedupe_free(a->dd);
    memset(a, 0, sizeof(*a));
}

/* acks_report - what the inbox did, at the end */
static void acks_report(recv_acks *a)
{
    smtpx_inbox_stats st;

    if (a->inbox == NULL)
        return;
    memset(&st, 0, sizeof(st));
    st.size = sizeof(st);
    smtpx_inbox_stats_get(a->inbox, &st);
    logline("dedupe: %llu checked, %llu new, %llu redelivered, %llu "
            "duplicate%s, %llu refused; %llu acknowledgement%s queued (%llu "
            "failed), %zu waiting",
            (unsigned long long)st.messages, (unsigned long long)st.new_keys,
            (unsigned long long)st.redelivered,
            (unsigned long long)st.duplicates, st.duplicates == 1 ? "" : "s",
            (unsigned long long)st.refused, (unsigned long long)st.acks,
            st.acks == 1 ? "" : "s", (unsigned long long)st.ack_errors,
            a->q != NULL ? smtpx_queue_count(a->q) : (size_t)0);
}

/* add_listener - the i-th listener of the options (plain, implicit TLS,
 * then behind a PROXY protocol proxy) on the loop; 0, or the exit status
 * after saying why */
static int add_listener(recv_app *app, int i, smtpx_config *cfg,
                        smtpx_limiter *lim)
{
    int implicit =
        i >= app->opts.nlisten && i < app->opts.nlisten + app->opts.ntls_listen;
    int proxied = i >= app->opts.nlisten + app->opts.ntls_listen;
    const char *spec =
        proxied
            ? app->opts
                  .proxy_listen[i - app->opts.nlisten - app->opts.ntls_listen]
        : implicit ? app->opts.tls_listen[i - app->opts.nlisten]
                   : app->opts.listen[i];
    smtpx_server_callbacks cbs = recv_cbs;
    smtpx_listen_opts lo;
    smtpx_posix_addr pa;
    char host[256], port[32], where[96];
    int fd, rc;

    /* A local socket's path is the host (smtpx_posix_listen). */
    port[0] = '\0';
    if (spec[0] != '/' && smtpx_posix_split_hostport(spec, host, sizeof(host),
                                                     port, sizeof(port)) < 0) {
        fprintf(stderr,
                "smtpx-recv: bad listen address %s (want ADDR:PORT, the "
                "port 0 to 65535, or /PATH)\n",
                spec);
        return EX_USAGE_;
    }
    rc = smtpx_posix_listen(spec[0] == '/' ? spec : host, port, 0, &fd);
    if (rc < 0) {
        if (rc == SMTPX_ERR_INVALID_ARGUMENT) {
            fprintf(stderr,
                    spec[0] == '/'
                        ? "smtpx-recv: bad listen address %s: a path too "
                          "long for a socket\n"
                        : "smtpx-recv: bad listen address %s: no such port "
                          "(0 to 65535) or service name\n",
                    spec);
            return EX_USAGE_;
        }
        fprintf(stderr, "smtpx-recv: cannot listen on %s: %s%s\n", spec,
                smtpx_strerror(rc), syserr(rc));
        return 1;
    }
    if (spec[0] == '/') {
        app->sockets[app->nsockets++] = spec;
        /* Who may connect: a socket's mode is its access control. */
        if (app->opts.socket_mode >= 0 &&
            chmod(spec, (mode_t)app->opts.socket_mode) < 0) {
            fprintf(stderr, "smtpx-recv: cannot set the mode of %s: %s\n", spec,
                    strerror(errno));
            close(fd);
            return 1;
        }
    }
    if (app->opts.auth_file != NULL) {
        /* The callbacks' presence is what offers AUTH. */
        cbs.on_auth = cb_auth;
        cbs.on_auth_lookup = cb_auth_lookup;
    }
    /* The address as bound: the real port for ":0". */
    if (smtpx_posix_getaddr(fd, &pa) == 0 && strchr(pa.local_addr, ':') != NULL)
        snprintf(where, sizeof(where), "[%s]:%u", pa.local_addr,
                 (unsigned)pa.local_port);
    else if (pa.local_addr[0] != '\0')
        snprintf(where, sizeof(where), "%s:%u", pa.local_addr,
                 (unsigned)pa.local_port);
    else
        snprintf(where, sizeof(where), "%s", spec);
    memset(&lo, 0, sizeof(lo));
    lo.size = sizeof(lo);
    lo.cfg = cfg;
    lo.cbs = &cbs;
    lo.cbs_size = sizeof(cbs);
    lo.user_data = app;
    lo.tls = app->tls ? smtpx_mbedtls_ops() : NULL;
    lo.tls_cfg = app->tls;
    lo.mode = implicit ? SMTPX_LISTEN_IMPLICIT_TLS : SMTPX_LISTEN_STARTTLS;
    lo.on_session_new = session_new;
    lo.on_session_free = session_free;
    lo.limiter = lim;
    if (proxied) {
        lo.proxy = SMTPX_PROXY_ANY;
        lo.proxy_trusted = app->opts.proxy_trusted;
        lo.log = limiter_log; /* refused PROXY headers */
        lo.log_user_data = &app->opts;
    }
    rc = smtpx_loop_add_listener(the_loop, fd, &lo);
    if (rc < 0) {
        fprintf(stderr, "smtpx-recv: cannot serve %s: %s%s\n", spec,
                smtpx_strerror(rc), proxied ? " (--proxy-trusted?)" : "");
        close(fd);
        return 2;
    }
    /* Even with --quiet when the system chose the port: it must be
     * told somewhere. */
    if (!app->opts.quiet || strcmp(port, "0") == 0)
        logline("listening on %s%s%s (%s)", where,
                implicit   ? " with TLS"
                : app->tls ? " with STARTTLS"
                           : "",
                proxied ? " behind a PROXY protocol proxy" : "",
                app->opts.discard ? "discard" : app->opts.maildir);
    return 0;
}

int main(int argc, char **argv)
{
    recv_app app;
    smtpx_config *cfg = NULL;
    smtpx_limiter *lim = NULL;
    struct sigaction sa;
    size_t stale = 0;
    int i, rc, status = 1;

    memset(&app, 0, sizeof(app));
    if (parse_args(argc, argv, &app.opts) < 0) {
        if (usage_why != NULL)
            fprintf(stderr, "smtpx-recv: %s (smtpx-recv --help)\n", usage_why);
        else
            usage(stderr);
        return EX_USAGE_;
    }
    if (app.opts.make_password != NULL)
        return make_password(app.opts.make_password, app.opts.iterations);
    if (app.opts.auth_file != NULL && load_users(&app, app.opts.auth_file) < 0)
        return EX_USAGE_;
    if (app.opts.tls_cert != NULL) {
        rc = smtpx_mbedtls_new(&app.tls, 1);
        if (rc == 0)
            rc = smtpx_mbedtls_add_cert_file(app.tls, app.opts.tls_cert,
                                             app.opts.tls_key, NULL);
        if (rc < 0) {
            char why[160];
            fprintf(stderr, "smtpx-recv: certificate %s / key %s: %s (%s)\n",
                    app.opts.tls_cert, app.opts.tls_key, smtpx_strerror(rc),
                    smtpx_mbedtls_strerror(smtpx_mbedtls_last_error(app.tls),
                                           why, sizeof(why)));
            smtpx_mbedtls_free(app.tls);
            free(app.users);
            return EX_USAGE_;
        }
    }
    host_name(&app.opts, app.host, sizeof(app.host));
    rc = make_config(&app.opts, app.host, &cfg);
    if (rc < 0) {
        fprintf(stderr, "smtpx-recv: bad settings: %s\n", smtpx_strerror(rc));
        return EX_USAGE_;
    }
    if (app.opts.maildir != NULL) {
        rc = smtpx_maildir_open(&app.md, app.opts.maildir,
                                SMTPX_MAILDIR_CREATE |
                                    (app.opts.crlf ? SMTPX_MAILDIR_CRLF : 0u),
                                NULL);
        if (rc < 0) {
            fprintf(stderr, "smtpx-recv: maildir %s: %s%s\n", app.opts.maildir,
                    smtpx_strerror(rc), syserr(rc));
            goto out;
        }
        /* What deliveries that died (a crash, a kill) left in tmp/, once
         * it is old enough not to be another program's delivery. */
        rc = smtpx_maildir_clean_tmp(app.md, SMTPX_MAILDIR_TMP_MAX_AGE, &stale);
        if (rc < 0)
            logline("maildir %s: cleaning tmp/: %s (%s)", app.opts.maildir,
                    smtpx_strerror(rc), strerror(errno));
        if (stale > 0 && !app.opts.quiet)
            logline("removed %zu stale files from %s/tmp", stale,
                    app.opts.maildir);
    }
    if (acks_open(&app) < 0)
        goto out;
    if (smtpx_loop_new(&the_loop, NULL) < 0) {
        fprintf(stderr, "smtpx-recv: cannot make the event loop\n");
        goto out;
    }
    if (app.opts.limits.addr_sessions || app.opts.limits.net_sessions ||
        app.opts.limits.conn_rate || app.opts.limits.msg_rate ||
        app.opts.limits.auth_rate) {
        smtpx_limiter_opts lo = app.opts.limits;
        lo.size = sizeof(lo);
        lo.exempt = app.opts.limit_exempt;
        lo.log = limiter_log;
        lo.log_user_data = &app.opts;
        rc = smtpx_limiter_new(&lim, &lo, NULL);
        if (rc < 0) {
            fprintf(stderr, "smtpx-recv: bad limits (--limit-exempt?): %s\n",
                    smtpx_strerror(rc));
            status = 2;
            goto out;
        }
    }
    /* SIGUSR1 reports the counters: its handler writes to a pipe the
     * loop watches, so that the report is written from the loop. */
    if (pipe(report_pipe) < 0 ||
        fcntl(report_pipe[0], F_SETFL, O_NONBLOCK) < 0 ||
        fcntl(report_pipe[1], F_SETFL, O_NONBLOCK) < 0 ||
        smtpx_loop_watch(the_loop, report_pipe[0], SMTPX_WAIT_READ, on_report,
                         NULL) < 0) {
        fprintf(stderr, "smtpx-recv: cannot watch for SIGUSR1\n");
        goto out;
    }
    for (i = 0;
         i < app.opts.nlisten + app.opts.ntls_listen + app.opts.nproxy_listen;
         i++)
        if ((status = add_listener(&app, i, cfg, lim)) != 0)
            goto out;
    status = 1;
    smtpx_loop_set_max_sessions(the_loop, app.opts.max_sessions);
    if ((app.md != NULL || app.nusers > 0) && app.opts.sync_threads > 0 &&
        pool_start(&app.pool, the_loop, app.opts.sync_threads) < 0) {
        fprintf(stderr, "smtpx-recv: cannot start the worker threads\n");
        pool_stop(&app.pool);
        goto out;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    rc = smtpx_loop_run(the_loop);
    /* Every session has ended: what the workers still hold was given up
     * by its session; their last answers run in smtpx_loop_free(). */
    pool_stop(&app.pool);
    /* Every acknowledgement is in the queue: deliver what is under way,
     * keep the rest for the next run. */
    acks_stop(&app.acks);
    if (!app.opts.quiet) {
        report(the_loop);
        acks_report(&app.acks);
        logline("stopped after %llu message%s", app.accepted,
                app.accepted == 1 ? "" : "s");
    }
    status = rc < 0 ? 1 : 0;
out:
    smtpx_loop_free(the_loop);
    for (i = 0; i < app.nsockets; i++)
        unlink(app.sockets[i]);
    /* After the loop: its last answers free the inbox's messages. */
    acks_close(&app.acks);
    smtpx_limiter_free(lim);
    if (report_pipe[0] >= 0) {
        close(report_pipe[0]);
        close(report_pipe[1]);
    }
    smtpx_maildir_free(app.md);
    smtpx_config_free(cfg);
    smtpx_mbedtls_free(app.tls);
    free(app.users);
    return status;
}
