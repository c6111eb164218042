/*
 * server - the SMTP/LMTP server session, sans-IO.
 *
 * Exports the smtpx_server_* functions of <libsmtpx/server.h>.
 *
 * Input is processed in steps: a command line, a run of DATA content, or a
 * run of a BDAT chunk.  Commands come from a table (SERVER_CMD_MAP); each
 * handler checks syntax, sequence and policy and answers errors itself
 * (check), then hands the decision to the application callback (proceed),
 * whose answer is applied by a finish function - at once, or later after a
 * pause.  Replies are queued in order, so a pipelined burst (RFC 2920)
 * leaves one region of output.
 *
 * Invariants:
 *  - recv consumes every byte; what cannot be processed yet (pause, full
 *    output) is kept in the hold buffer, bounded by SMTPX_LIMIT_HOLDBUF.
 *  - After the 220 to STARTTLS every byte that followed the command is
 *    dropped (RFC 3207 4.2) and the EHLO state is forgotten once TLS is up.
 *  - Only <CRLF>.<CRLF> ends DATA (see data.c).
 *  - Every transaction started by an accepted MAIL ends with exactly one
 *    on_txn_end; every started session ends with exactly one on_close.
 *  - An idle session holds no buffer: output, held input and partial
 *    lines release their memory when empty.
 *
 * RFC 5321 (3, 4.1, 4.2, 4.3.2 reply codes, 4.5.3 limits and timeouts),
 * RFC 1870 SIZE, RFC 2033 LMTP, RFC 2034 ENHANCEDSTATUSCODES, RFC 2920
 * PIPELINING, RFC 3030 CHUNKING/BINARYMIME, RFC 3207 STARTTLS, RFC 3461
 * DSN parameters, RFC 4954 AUTH (the mechanisms are in sasl.c), RFC 6152
 * 8BITMIME, RFC 6531 SMTPUTF8.
 *
 *  - AUTH is offered only with an on_auth callback and, unless the
 *    AUTH_CLEARTEXT policy says otherwise, only under TLS.  SASL responses
 *    and initial responses never reach a trace or a log.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <libsmtpx/server.h>

#include "base/buf.h"
#include "base/crypto.h"
#include "base/escape.h"
#include "base/mem.h"
#include "proto/addr.h"
#include "proto/cmd.h"
#include "proto/conf.h"
#include "proto/data.h"
#include "proto/line.h"
#include "proto/reply.h"
#include "proto/sasl.h"
#include "proto/server.h"

/* Time left to write a final reply once the session has ended. */
#define SERVER_LINGER_MS 10000
/* Command lines up to this size are parsed in a stack copy. */
#define SERVER_STACK_LINE 1024
/* ESMTP parameters on one MAIL or RCPT. */
#define SERVER_MAX_PARAMS 16

#define SERVER_STATE_MAP(XX)                                                   \
    XX(INIT, "init")                                                           \
    XX(COMMAND, "command")                                                     \
    XX(DATA, "data")                                                           \
    XX(BDAT, "bdat")                                                           \
    XX(TLS, "tls")                                                             \
    XX(AUTH, "auth")                                                           \
    XX(ENDED, "ended")

enum server_state {
#define SERVER_STATE_ENUM(name, text) ST_##name,
    SERVER_STATE_MAP(SERVER_STATE_ENUM)
#undef SERVER_STATE_ENUM
};

static const char *const server_state_names[] = {
#define SERVER_STATE_NAME(name, text) text,
    SERVER_STATE_MAP(SERVER_STATE_NAME)
#undef SERVER_STATE_NAME
};

/* What a pause waits for: smtpx_server_reply() (REPLY), resume (CHUNK), or
 * either (LOOKUP: the secret and resume, or a reply that ends the AUTH). */
enum { PAUSE_NONE, PAUSE_REPLY, PAUSE_CHUNK, PAUSE_LOOKUP };

/* Why the core refuses a message once it has been read. */
enum { REF_NONE, REF_SIZE, REF_LONG, REF_BARE };

typedef struct server_recipient {
    char *addr;
    void *data;
    int code; /* LMTP: this recipient's own reply, 0 if none */
    uint16_t enh[3];
    char *text;
} server_recipient;

typedef void server_finish_fn(smtpx_server *s, smtpx_reply *r);

struct smtpx_server {
    const smtpx_config *cfg;
    const smtpx_mem *mem;
    smtpx_server_callbacks cbs;
    void *user_data;
    void *driver_data; /* the driver's own (smtpx_server_set_driver_data) */
    uint64_t limits[SMTPX_LIMIT_COUNT];

    int state;
    unsigned started : 1;
    unsigned ended : 1;
    unsigned lmtp : 1;
    unsigned helo_done : 1;
    unsigned esmtp : 1;
    unsigned tls_available : 1;
    unsigned tls_active : 1;
    unsigned refused : 1;   /* greeting was 554: only QUIT is served */
    unsigned purge : 1;     /* drop the rest of the input (STARTTLS) */
    unsigned draining : 1;  /* shutdown DRAIN: 421 when the transaction ends */
    unsigned last_crlf : 1; /* the last command line ended in CRLF */
    unsigned got_input : 1; /* recv has been given at least one octet */
    unsigned greeting_queued : 1; /* the greeting (or 554/421) is queued */
    unsigned greeted : 1;         /* and has been written */
    int in_cb;
    int shutdown_req;
    int status; /* for on_close */
    int fatal;  /* sticky fatal error */
    int pause;
    server_finish_fn *pending;
    int pending_kind; /* HELO kind or DATA framing of the paused command */

    smtpx_peer peer;
    char *peer_mem;
    char *helo;
    smtpx_tls_info tls;
    char *tls_mem;

    smtpx__buf out;
    smtpx__buf hold;
    smtpx__line line;

    struct {
        int active;
        char *from;
        int body;
        int smtputf8;
        server_recipient *rcpt;
        size_t nrcpt, cap;
        size_t tried;    /* RCPT commands that reached the application */
        uint64_t size;   /* content octets so far */
        int framing;     /* 0 until content starts */
        int refused;     /* REF_* */
        int in_data_end; /* LMTP replies may be given */
    } txn;
    char *pending_addr;  /* RCPT address while on_rcpt decides */
    void *pending_rdata; /* its application pointer */

    smtpx__dot dot;
    uint64_t bdat_left;
    unsigned bdat_last : 1;
    unsigned bdat_discard : 1; /* read the chunk, then send bdat_reply */
    int bdat_code;
    uint16_t bdat_enh[3];
    char *bdat_text; /* reply to the discarded chunk */
    uint8_t tail[4]; /* line-end octets held back by a pause */
    size_t tail_len;

    /* AUTH (RFC 4954) */
    smtpx__sasl_srv *sasl; /* the exchange in progress */
    unsigned sasl_mech;
    unsigned auth_refusing : 1; /* an error challenge went out: the next
                                   line gets auth_final */
    smtpx_reply auth_final;
    char *auth_final_text;
    char *auth_user; /* authenticated: authcid */
    char *auth_id;   /* authenticated: authzid or authcid */
    unsigned auth_mech;
    uint64_t auth_failures;

    uint64_t errors, junk, msgs, unknown;
    uint64_t in_total; /* octets recv has been given */
    uint64_t cmd_end;  /* in_total at the end of the last command line */
    uint64_t now;
    uint64_t deadline;         /* command or data deadline */
    uint64_t session_deadline; /* whole-session cap; 0 none */
    uint64_t close_deadline;   /* to write the final reply */
};

/* ---- small helpers ------------------------------------------------------ */

static int server_ext(const smtpx_server *s, unsigned ext)
{
    return (s->cfg->extensions & ext) != 0;
}

static unsigned server_auth_mechs(const smtpx_server *s);
static void server_auth_end_exchange(smtpx_server *s);
static void server_auth_clear(smtpx_server *s);

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
server_log(smtpx_server *s, int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (s->cbs.on_log == NULL &&
        (s->cfg->log_fn == NULL || level > s->cfg->log_level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s->cbs.on_log != NULL) {
        s->in_cb++;
        s->cbs.on_log(s, level, msg, s->user_data);
        s->in_cb--;
    } else {
        s->cfg->log_fn(level, msg, s->cfg->log_user_data);
    }
}

/* server_trace_out - report the reply lines appended from offset from */
static void server_trace_out(smtpx_server *s, size_t from)
{
    const uint8_t *p = s->out.data + from;
    const uint8_t *end = s->out.data + s->out.len;

    if (s->cbs.on_trace == NULL)
        return;
    s->in_cb++;
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)(nl - p);
        s->cbs.on_trace(s, SMTPX_TRACE_OUT, (const char *)p, n - 1,
                        s->user_data);
        p = nl + 1;
    }
    s->in_cb--;
}

static void server_set_deadline(smtpx_server *s)
{
    int data = s->state == ST_DATA || s->state == ST_BDAT;
    s->deadline =
        s->now +
        s->cfg->timeouts[data ? SMTPX_TIMEOUT_DATA : SMTPX_TIMEOUT_COMMAND];
}

static void server_end(smtpx_server *s, int status);
static void server_txn_end(smtpx_server *s, int reason);

/*
 * server_send - queue a reply.  errs: 1 if a 4xx/5xx reply counts towards
 * SMTPX_LIMIT_ERRORS.  A 421 ends the session once written.
 */
static int server_send(smtpx_server *s, int code, const uint16_t *enh,
                       const char *text, int errs)
{
    size_t from = s->out.len - s->out.off;
    uint16_t e[3] = {0, 0, 0};
    int rc;

    if (s->ended)
        return 0;
    if (enh != NULL && server_ext(s, SMTPX_EXT_ENHANCEDSTATUSCODES)) {
        memcpy(e, enh, sizeof(e));
        smtpx__reply_fix_enh(code, e);
    }
    rc = smtpx__reply_append(&s->out, s->mem, code, e, text,
                             (size_t)s->limits[SMTPX_LIMIT_REPLY_LINE]);
    if (rc < 0) {
        s->fatal = SMTPX_ERR_NOMEM;
        server_end(s, SMTPX_ERR_NOMEM);
        return rc;
    }
    server_trace_out(s, s->out.off + from);
    server_set_deadline(s);
    if (code == 421) {
        server_end(s, s->status != 0 ? s->status : SMTPX_ERR_CLOSED);
        return 0;
    }
    if (errs && code >= 400) {
        uint64_t max = s->limits[SMTPX_LIMIT_ERRORS];
        s->errors++;
        if (max != 0 && s->errors >= max) {
            static const uint16_t e470[3] = {4, 7, 0};
            server_log(s, SMTPX_LOG_NOTICE, "too many errors (%llu)",
                       (unsigned long long)s->errors);
            s->status = SMTPX_ERR_LIMIT;
            return server_send(s, 421, e470,
                               "Too many errors, closing connection", 0);
        }
    }
    return 0;
}

/* server_err - queue an error reply that counts towards the error limit */
static int server_err(smtpx_server *s, int code, int e1, int e2, int e3,
                      const char *text)
{
    uint16_t e[3];

    e[0] = (uint16_t)e1;
    e[1] = (uint16_t)e2;
    e[2] = (uint16_t)e3;
    return server_send(s, code, e, text, 1);
}

/* server_refuse - queue an error reply for a command that does not
 * proceed: 1 */
static int server_refuse(smtpx_server *s, int code, int e1, int e2, int e3,
                         const char *text)
{
    server_err(s, code, e1, e2, e3, text);
    return 1;
}

/* server_ok - queue a reply that is not an error */
static int server_ok(smtpx_server *s, int code, int e1, int e2, int e3,
                     const char *text)
{
    uint16_t e[3];

    e[0] = (uint16_t)e1;
    e[1] = (uint16_t)e2;
    e[2] = (uint16_t)e3;
    return server_send(s, code, e, text, 0);
}

/* server_fail - a fatal error: 421 if it can be queued, then end */
static int server_fail(smtpx_server *s, int err)
{
    static const uint16_t e430[3] = {4, 3, 0};

    if (s->fatal == 0)
        s->fatal = err;
    if (!s->ended) {
        s->status = err;
        if (err != SMTPX_ERR_NOMEM)
            server_send(s, 421, e430, "Local error, closing connection", 0);
        server_end(s, err);
    }
    return s->fatal;
}

/* server_copy_reply - prepare an application reply: defaults, checks */
static void server_check_reply(smtpx_server *s, smtpx_reply *r, int lo, int hi,
                               const char *what)
{
    int ok = r->code >= 200 && r->code <= 599 &&
             ((r->code >= lo && r->code <= hi) || r->code >= 400);

    if (!ok) {
        server_log(s, SMTPX_LOG_ERROR,
                   "application reply %d to %s is not allowed; using 451",
                   r->code, what);
        r->code = 451;
        r->enh[0] = 4;
        r->enh[1] = 3;
        r->enh[2] = 0;
        r->text = "Local error in processing";
    }
}

/*
 * server_call - act on a callback's return value: apply the reply now, wait
 * for it (pause), or fail the session.
 */
static int server_call(smtpx_server *s, int rc, smtpx_reply *r,
                       server_finish_fn *finish)
{
    if (rc == 0) {
        finish(s, r);
        return s->fatal;
    }
    if (rc == SMTPX_ERR_PAUSE) {
        s->pause = PAUSE_REPLY;
        s->pending = finish;
        return 0;
    }
    server_log(s, SMTPX_LOG_ERROR, "callback failed (%d)", rc);
    return server_fail(s, SMTPX_ERR_CALLBACK_FAILURE);
}

static void server_reply_init(smtpx_reply *r, int code, int e1, int e2, int e3,
                              const char *text)
{
    r->code = code;
    r->enh[0] = (uint16_t)e1;
    r->enh[1] = (uint16_t)e2;
    r->enh[2] = (uint16_t)e3;
    r->text = text;
}

/* ---- session end and transactions --------------------------------------- */

static void server_free_rcpts(smtpx_server *s)
{
    size_t i;

    for (i = 0; i < s->txn.nrcpt; i++) {
        smtpx__free(s->mem, s->txn.rcpt[i].addr);
        smtpx__free(s->mem, s->txn.rcpt[i].text);
    }
    smtpx__free(s->mem, s->txn.rcpt);
}

/* server_txn_end - end the transaction, telling the application once */
static void server_txn_end(smtpx_server *s, int reason)
{
    if (!s->txn.active) {
        smtpx__free(s->mem, s->txn.from);
        s->txn.from = NULL;
        return;
    }
    if (s->cbs.on_txn_end != NULL) {
        s->in_cb++;
        s->cbs.on_txn_end(s, reason, s->user_data);
        s->in_cb--;
    }
    server_free_rcpts(s);
    smtpx__free(s->mem, s->txn.from);
    memset(&s->txn, 0, sizeof(s->txn));
}

static void server_end(smtpx_server *s, int status)
{
    if (s->ended)
        return;
    s->ended = 1;
    s->status = status;
    s->state = ST_ENDED;
    s->pause = PAUSE_NONE;
    s->pending = NULL;
    smtpx__free(s->mem, s->pending_addr);
    s->pending_addr = NULL;
    server_txn_end(s, SMTPX_TXN_ABORTED);
    server_auth_end_exchange(s);
    s->state = ST_ENDED;
    smtpx__buf_free(&s->hold, s->mem);
    smtpx__line_reset(&s->line, s->mem);
    s->close_deadline = s->now + SERVER_LINGER_MS;
    if (s->cbs.on_close != NULL) {
        s->in_cb++;
        s->cbs.on_close(s, status, s->user_data);
        s->in_cb--;
    }
}

/* server_settle - apply a requested shutdown and a finished drain */
static void server_settle(smtpx_server *s)
{
    static const uint16_t e432[3] = {4, 3, 2};

    if (s->ended || !s->started || s->in_cb)
        return;
    if (s->shutdown_req == SMTPX_SHUTDOWN_DRAIN) {
        s->shutdown_req = 0;
        s->draining = 1;
    } else if (s->shutdown_req == SMTPX_SHUTDOWN_NOW) {
        s->shutdown_req = 0;
        s->pause = PAUSE_NONE;
        s->pending = NULL;
        server_txn_end(s, SMTPX_TXN_ABORTED);
        s->status = SMTPX_ERR_CLOSED;
        server_send(s, 421, e432, "Service shutting down", 0);
        return;
    }
    if (s->draining && !s->txn.active && s->pause == PAUSE_NONE &&
        s->state == ST_COMMAND) {
        s->status = SMTPX_ERR_CLOSED;
        server_send(s, 421, e432, "Service shutting down", 0);
    }
}

/* ---- lifecycle ---------------------------------------------------------- */

int smtpx_server_new(smtpx_server **out, const smtpx_config *cfg,
                     const smtpx_server_callbacks *cbs, size_t cbs_size,
                     void *user_data)
{
    smtpx_server *s;

    if (out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (cfg == NULL ||
        (cfg->role != SMTPX_ROLE_SERVER && cfg->role != SMTPX_ROLE_LMTP_SERVER))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (!cfg->frozen)
        return SMTPX_ERR_INVALID_STATE;
    s = smtpx__calloc(&cfg->mem, 1, sizeof(*s));
    if (s == NULL)
        return SMTPX_ERR_NOMEM;
    s->cfg = cfg;
    s->mem = &cfg->mem;
    if (cbs != NULL)
        memcpy(&s->cbs, cbs,
               cbs_size < sizeof(s->cbs) ? cbs_size : sizeof(s->cbs));
    s->user_data = user_data;
    memcpy(s->limits, cfg->limits, sizeof(s->limits));
    s->lmtp = cfg->role == SMTPX_ROLE_LMTP_SERVER;
    s->state = ST_INIT;
    *out = s;
    return 0;
}

void smtpx_server_free(smtpx_server *s)
{
    if (s == NULL)
        return;
    if (s->started && !s->ended)
        server_end(s, SMTPX_ERR_CLOSED);
    server_txn_end(s, SMTPX_TXN_ABORTED);
    smtpx__free(s->mem, s->pending_addr);
    smtpx__buf_free(&s->out, s->mem);
    smtpx__buf_free(&s->hold, s->mem);
    smtpx__line_reset(&s->line, s->mem);
    smtpx__free(s->mem, s->peer_mem);
    smtpx__free(s->mem, s->helo);
    smtpx__free(s->mem, s->tls_mem);
    smtpx__free(s->mem, s->bdat_text);
    server_auth_clear(s);
    smtpx__free(s->mem, s);
}

/* server_copy_strings - copy n strings into one allocation */
static char *server_copy_strings(smtpx_server *s, const char **src,
                                 const char **dst, size_t n)
{
    size_t total = 0, i;
    char *mem, *p;

    for (i = 0; i < n; i++)
        if (src[i] != NULL)
            total += strlen(src[i]) + 1;
    mem = smtpx__malloc(s->mem, total);
    if (mem == NULL)
        return NULL;
    p = mem;
    for (i = 0; i < n; i++) {
        if (src[i] == NULL) {
            dst[i] = NULL;
            continue;
        }
        size_t len = strlen(src[i]) + 1;
        memcpy(p, src[i], len);
        dst[i] = p;
        p += len;
    }
    return mem;
}

static void server_finish_greeting(smtpx_server *s, smtpx_reply *r)
{
    s->state = ST_COMMAND;
    s->greeting_queued = 1;
    if (r->code == 220) {
        server_send(s, 220, NULL, r->text, 0);
        return;
    }
    if (r->code < 400 || r->code > 599) {
        server_log(s, SMTPX_LOG_ERROR,
                   "greeting reply %d is not allowed; using 421", r->code);
        r->code = 421;
        r->text = NULL;
    }
    /* RFC 5321 3.1: 554 refuses service but waits for QUIT; 4xx means the
     * service is not available now, which is 421. */
    if (r->code >= 500) {
        s->refused = 1;
        server_send(s, 554, NULL, r->text, 0);
    } else {
        s->status = SMTPX_ERR_CLOSED;
        server_send(s, 421, NULL, r->text, 0);
    }
}

int smtpx_server_start(smtpx_server *s, const smtpx_peer *peer, uint64_t now_ms)
{
    char greeting[300];
    smtpx_reply r;
    int rc;

    if (s == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (s->started)
        return SMTPX_ERR_INVALID_STATE;
    s->now = now_ms;
    if (peer != NULL) {
        const char *src[3] = {peer->addr, peer->local_addr, peer->name};
        const char *dst[3];
        s->peer_mem = server_copy_strings(s, src, dst, 3);
        if (s->peer_mem == NULL)
            return SMTPX_ERR_NOMEM;
        s->peer.addr = dst[0];
        s->peer.port = peer->port;
        s->peer.local_addr = dst[1];
        s->peer.local_port = peer->local_port;
        s->peer.name = dst[2];
    }
    s->started = 1;
    s->state = ST_COMMAND;
    s->session_deadline = s->cfg->timeouts[SMTPX_TIMEOUT_SESSION]
                              ? now_ms + s->cfg->timeouts[SMTPX_TIMEOUT_SESSION]
                              : 0;
    server_set_deadline(s);
    snprintf(greeting, sizeof(greeting), "%s %s", s->cfg->hostname,
             s->lmtp ? "LMTP" : "ESMTP");
    server_reply_init(&r, 220, 0, 0, 0, greeting);
    rc = 0;
    if (s->cbs.on_connect != NULL) {
        s->in_cb++;
        rc = s->cbs.on_connect(s, &s->peer, &r, s->user_data);
        s->in_cb--;
    }
    rc = server_call(s, rc, &r, server_finish_greeting);
    server_settle(s);
    return rc;
}

/* ---- HELO / EHLO / LHLO ------------------------------------------------- */

/* server_ehlo_text - the EHLO reply: the application's text, then the
 * extensions (RFC 5321 4.1.1.1) */
static int server_ehlo_text(smtpx_server *s, const char *first, char *buf,
                            size_t size)
{
    /* The order of the one list of extensions (SMTPX_EXT_MAP). */
    static const unsigned server_ehlo_order[] = {
#define SERVER_EHLO_BIT(name, kw) SMTPX_EXT_##name,
        SMTPX_EXT_MAP(SERVER_EHLO_BIT)
#undef SERVER_EHLO_BIT
    };
    size_t n = 0, i;
    int w;

#define EHLO_ADD(...)                                                          \
    do {                                                                       \
        w = snprintf(buf + n, size - n, __VA_ARGS__);                          \
        if (w < 0 || (size_t)w >= size - n)                                    \
            return -1;                                                         \
        n += (size_t)w;                                                        \
    } while (0)

    EHLO_ADD("%s", first);
    for (i = 0; i < sizeof(server_ehlo_order) / sizeof(server_ehlo_order[0]);
         i++) {
        unsigned ext = server_ehlo_order[i];
        const char *kw = smtpx_ext_name(ext);

        if (!server_ext(s, ext))
            continue;
        if (ext == SMTPX_EXT_SIZE && s->limits[SMTPX_LIMIT_MSG_SIZE] != 0) {
            EHLO_ADD("\nSIZE %llu",
                     (unsigned long long)s->limits[SMTPX_LIMIT_MSG_SIZE]);
        } else if (ext == SMTPX_EXT_STARTTLS) {
            if (s->tls_available && !s->tls_active)
                EHLO_ADD("\n%s", kw);
        } else if (ext == SMTPX_EXT_REQUIRETLS) {
            /* RFC 8689 4.1: offered only once TLS is up. */
            if (s->tls_active)
                EHLO_ADD("\n%s", kw);
        } else if (ext == SMTPX_EXT_AUTH) {
            /* Strongest first; clients choose for themselves anyway. */
            static const unsigned order[] = {
                SMTPX_SASL_SCRAM_SHA_256, SMTPX_SASL_CRAM_MD5,
                SMTPX_SASL_PLAIN,         SMTPX_SASL_LOGIN,
                SMTPX_SASL_OAUTHBEARER,   SMTPX_SASL_XOAUTH2};
            unsigned mechs = server_auth_mechs(s);
            size_t j;

            if (mechs == 0)
                continue;
            EHLO_ADD("\n%s", kw);
            for (j = 0; j < sizeof(order) / sizeof(order[0]); j++)
                if (mechs & order[j])
                    EHLO_ADD(" %s", smtpx_sasl_name(order[j]));
        } else {
            EHLO_ADD("\n%s", kw);
        }
    }
#undef EHLO_ADD
    return 0;
}

static void server_finish_helo(smtpx_server *s, smtpx_reply *r)
{
    char text[1024];
    int kind = s->pending_kind;

    server_check_reply(s, r, 200, 299, "HELO");
    if (r->code >= 400) {
        smtpx__free(s->mem, s->helo);
        s->helo = NULL;
        s->helo_done = 0;
        s->esmtp = 0;
        server_send(s, r->code, r->enh, r->text, 1);
        return;
    }
    s->helo_done = 1;
    s->esmtp = kind != SMTPX_HELO;
    if (r->text == NULL || r->text[0] == '\0')
        r->text = s->cfg->hostname;
    if (kind != SMTPX_HELO &&
        server_ehlo_text(s, r->text, text, sizeof(text)) == 0) {
        server_send(s, r->code, NULL, text, 0);
        return;
    }
    server_send(s, r->code, NULL, r->text, 0);
}

static int server_helo(smtpx_server *s, int kind, char *arg)
{
    smtpx_reply r;
    size_t len = strlen(arg);
    int rc = 0;

    size_t i;

    for (i = 0; i < len; i++)
        if ((unsigned char)arg[i] < 0x20 || arg[i] == 0x7f)
            return server_err(s, 501, 5, 5, 2,
                              "Control character in host name");
    if (len == 0 || len > 255) {
        return server_err(s, 501, 5, 5, 4,
                          kind == SMTPX_HELO   ? "Syntax: HELO hostname"
                          : kind == SMTPX_EHLO ? "Syntax: EHLO hostname"
                                               : "Syntax: LHLO hostname");
    }
    /* A new greeting resets the session (RFC 5321 4.1.4). */
    server_txn_end(s, SMTPX_TXN_RESET);
    smtpx__free(s->mem, s->helo);
    s->helo = smtpx__strdup(s->mem, arg);
    if (s->helo == NULL)
        return server_fail(s, SMTPX_ERR_NOMEM);
    s->helo_done = 0;
    s->esmtp = 0;
    s->pending_kind = kind;
    server_reply_init(&r, 250, 0, 0, 0, s->cfg->hostname);
    if (s->cbs.on_helo != NULL) {
        s->in_cb++;
        rc = s->cbs.on_helo(s, kind, s->helo, &r, s->user_data);
        s->in_cb--;
    }
    return server_call(s, rc, &r, server_finish_helo);
}

/* ---- MAIL ---------------------------------------------------------------- */

static int server_parse_num(const char *v, uint64_t *out)
{
    uint64_t n = 0;
    size_t i;

    if (v == NULL || v[0] == '\0')
        return -1;
    for (i = 0; v[i] != '\0'; i++) {
        if (v[i] < '0' || v[i] > '9' || i >= 19)
            return -1;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    *out = n;
    return 0;
}

static void server_finish_mail(smtpx_server *s, smtpx_reply *r)
{
    server_check_reply(s, r, 200, 299, "MAIL");
    if (r->code >= 400) {
        smtpx__free(s->mem, s->txn.from);
        s->txn.from = NULL;
        server_send(s, r->code, r->enh, r->text, 1);
        return;
    }
    s->txn.active = 1;
    server_send(s, r->code, r->enh, r->text, 0);
}

/*
 * server_path_args - split "FROM:<path> params" (prefix "FROM:" or "TO:"):
 * parses the path, NUL-terminates the mailbox and the parameters in place.
 * Returns 0, or 1 when an error reply was queued.
 */
static int server_path_args(smtpx_server *s, char *arg, const char *prefix,
                            unsigned flags, smtpx__path *path,
                            smtpx_param *params, size_t *nparams, char **base)
{
    size_t plen = strlen(prefix), len;
    int from = prefix[0] == 'F';
    char *rest;
    int rc;

    if (!smtpx__cmd_iprefix(arg, strlen(arg), prefix)) {
        server_err(s, 501, 5, 5, 4,
                   from ? "Syntax: MAIL FROM:<address>"
                        : "Syntax: RCPT TO:<address>");
        return 1;
    }
    arg += plen;
    /* Tolerate "MAIL FROM: <a@b>", as most servers do. */
    while (*arg == ' ')
        arg++;
    len = strlen(arg);
    if (server_ext(s, SMTPX_EXT_SMTPUTF8))
        flags |= SMTPX__ADDR_UTF8;
    rc = smtpx__addr_parse_path(arg, len, flags,
                                (size_t)s->limits[SMTPX_LIMIT_ADDR], path);
    if (rc == SMTPX__ADDR_TOO_LONG) {
        server_err(s, 501, 5, 1, from ? 7 : 3, "Path too long");
        return 1;
    }
    if (rc != 0) {
        server_err(s, 501, 5, 1, from ? 7 : 3,
                   from ? "Bad sender address syntax"
                        : "Bad recipient address syntax");
        return 1;
    }
    if (arg[path->consumed] != '\0' && arg[path->consumed] != ' ') {
        server_err(s, 501, 5, 5, 4, "Syntax error after the address");
        return 1;
    }
    rest = arg + path->consumed;
    if (*rest == ' ')
        rest++;
    /* The mailbox becomes a string: the '>' after it is overwritten. */
    arg[path->mbox_off + path->mbox_len] = '\0';
    rc = smtpx__cmd_params(rest, server_ext(s, SMTPX_EXT_SMTPUTF8), params,
                           SERVER_MAX_PARAMS, nparams);
    if (rc != 0) {
        server_err(s, 501, 5, 5, 4,
                   rc == SMTPX__CMD_TOO_MANY ? "Too many parameters"
                                             : "Bad parameter syntax");
        return 1;
    }
    if (*nparams > 0 && !s->esmtp) {
        /* Parameters exist only in ESMTP (RFC 5321 4.1.2). */
        server_err(s, 555, 5, 5, 4, "Parameters not recognized after HELO");
        return 1;
    }
    *base = arg; /* what the path offsets refer to */
    return 0;
}

/* server_dup_param - 1 if params[0..i) already has keyword */
static int server_dup_param(const smtpx_param *p, size_t i)
{
    size_t j;

    for (j = 0; j < i; j++)
        if (smtpx__cmd_ieq(p[j].keyword, p[i].keyword))
            return 1;
    return 0;
}

/* server_notify - RFC 3461 4.1: NEVER, or a list of SUCCESS/FAILURE/DELAY */
static int server_notify(const char *v, unsigned *out)
{
    char word[16];
    unsigned bits = 0;

    if (v == NULL || *v == '\0')
        return -1;
    while (*v != '\0') {
        size_t n = strcspn(v, ",");
        unsigned b;

        if (n == 0 || n >= sizeof(word))
            return -1;
        memcpy(word, v, n);
        word[n] = '\0';
        if (smtpx__cmd_ieq(word, "NEVER"))
            b = SMTPX_DSN_NOTIFY_NEVER;
        else if (smtpx__cmd_ieq(word, "SUCCESS"))
            b = SMTPX_DSN_NOTIFY_SUCCESS;
        else if (smtpx__cmd_ieq(word, "FAILURE"))
            b = SMTPX_DSN_NOTIFY_FAILURE;
        else if (smtpx__cmd_ieq(word, "DELAY"))
            b = SMTPX_DSN_NOTIFY_DELAY;
        else
            return -1;
        if (bits & b)
            return -1;
        bits |= b;
        v += n;
        if (*v == ',' && *++v == '\0')
            return -1;
    }
    if ((bits & SMTPX_DSN_NOTIFY_NEVER) && bits != SMTPX_DSN_NOTIFY_NEVER)
        return -1;
    *out = bits;
    return 0;
}

/* server_orcpt - RFC 3461 4.2: addr-type ";" xtext */
static int server_orcpt(const char *v)
{
    const char *semi;
    size_t i;

    if (v == NULL || strlen(v) > 500)
        return -1;
    semi = strchr(v, ';');
    if (semi == NULL || semi == v)
        return -1;
    for (i = 0; v + i < semi; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-'))
            return -1;
    }
    return smtpx__cmd_xtext_ok(semi + 1) && semi[1] != '\0' ? 0 : -1;
}

/* What the parameters of one MAIL or RCPT fill in. */
typedef struct server_params {
    smtpx_mail_info *mi;
    smtpx_rcpt_info *ri;
} server_params;

/* A parameter's parser: 0, or 1 when it queued an error reply. */
typedef int server_param_fn(smtpx_server *s, const char *v, server_params *p);

static int param_bad(smtpx_server *s, const char *text)
{
    return server_refuse(s, 501, 5, 5, 4, text);
}

static int param_size(smtpx_server *s, const char *v, server_params *p)
{
    uint64_t max = s->limits[SMTPX_LIMIT_MSG_SIZE];

    if (server_parse_num(v, &p->mi->size) < 0)
        return param_bad(s, "Bad SIZE parameter");
    /* RFC 1870 6. */
    if (max != 0 && p->mi->size > max)
        return server_refuse(s, 552, 5, 3, 4,
                             "Message size exceeds fixed maximum message size");
    return 0;
}

static int param_body(smtpx_server *s, const char *v, server_params *p)
{
    if (v != NULL && smtpx__cmd_ieq(v, "7BIT"))
        p->mi->body = SMTPX_BODY_7BIT;
    else if (v != NULL && smtpx__cmd_ieq(v, "8BITMIME"))
        p->mi->body = SMTPX_BODY_8BITMIME;
    else if (v != NULL && smtpx__cmd_ieq(v, "BINARYMIME") &&
             server_ext(s, SMTPX_EXT_BINARYMIME))
        p->mi->body = SMTPX_BODY_BINARYMIME;
    else
        return param_bad(s, "Bad BODY parameter");
    return 0;
}

static int param_smtputf8(smtpx_server *s, const char *v, server_params *p)
{
    if (v != NULL)
        return param_bad(s, "Bad SMTPUTF8 parameter");
    p->mi->smtputf8 = 1;
    return 0;
}

static int param_ret(smtpx_server *s, const char *v, server_params *p)
{
    if (v != NULL && smtpx__cmd_ieq(v, "FULL"))
        p->mi->ret = SMTPX_DSN_RET_FULL;
    else if (v != NULL && smtpx__cmd_ieq(v, "HDRS"))
        p->mi->ret = SMTPX_DSN_RET_HDRS;
    else
        return param_bad(s, "Bad RET parameter");
    return 0;
}

static int param_envid(smtpx_server *s, const char *v, server_params *p)
{
    /* RFC 3461 4.4: xtext, at most 100 characters. */
    if (v == NULL || strlen(v) > 100 || !smtpx__cmd_xtext_ok(v))
        return param_bad(s, "Bad ENVID parameter");
    p->mi->envid = v;
    return 0;
}

static int param_auth(smtpx_server *s, const char *v, server_params *p)
{
    /* RFC 4954 5: xtext, or "<>" for an unknown submitter. */
    if (v == NULL || strlen(v) > 500 ||
        (strcmp(v, "<>") != 0 && !smtpx__cmd_xtext_ok(v)))
        return param_bad(s, "Bad AUTH parameter");
    p->mi->auth = v;
    return 0;
}

static int param_requiretls(smtpx_server *s, const char *v, server_params *p)
{
    if (v != NULL)
        return param_bad(s, "Bad REQUIRETLS parameter");
    p->mi->requiretls = 1;
    return 0;
}

static int param_priority(smtpx_server *s, const char *v, server_params *p)
{
    /* RFC 6710 2: priority-value = ["-" / "+"] 1DIGIT, -9 to 9. */
    int sign = 1;

    if (v != NULL && (v[0] == '-' || v[0] == '+')) {
        sign = v[0] == '-' ? -1 : 1;
        v++;
    }
    if (v == NULL || v[0] < '0' || v[0] > '9' || v[1] != '\0')
        return param_bad(s, "Bad MT-PRIORITY parameter");
    p->mi->priority = sign * (v[0] - '0');
    p->mi->has_priority = 1;
    return 0;
}

static int param_notify(smtpx_server *s, const char *v, server_params *p)
{
    if (server_notify(v, &p->ri->notify) < 0)
        return param_bad(s, "Bad NOTIFY parameter");
    return 0;
}

static int param_orcpt(smtpx_server *s, const char *v, server_params *p)
{
    if (server_orcpt(v) < 0)
        return param_bad(s, "Bad ORCPT parameter");
    p->ri->orcpt = v;
    return 0;
}

/*
 * The ESMTP parameters: keyword, the command that takes it, the extension
 * that must be offered for it to be known (RFC 5321 4.1.2: an unknown one
 * gets 555), and its parser.  RFC 1870 SIZE, RFC 6152 BODY (RFC 3030
 * BINARYMIME), RFC 6531 SMTPUTF8, RFC 3461 RET ENVID NOTIFY ORCPT, RFC 4954
 * AUTH, RFC 8689 REQUIRETLS, RFC 6710 MT-PRIORITY.
 */
#define PARAM_MAIL 1
#define PARAM_RCPT 2
/* clang-format off */
#define SERVER_PARAM_MAP(XX)                                                   \
    XX("SIZE",        PARAM_MAIL, SMTPX_EXT_SIZE,        param_size)           \
    XX("BODY",        PARAM_MAIL, SMTPX_EXT_8BITMIME,    param_body)           \
    XX("SMTPUTF8",    PARAM_MAIL, SMTPX_EXT_SMTPUTF8,    param_smtputf8)       \
    XX("RET",         PARAM_MAIL, SMTPX_EXT_DSN,         param_ret)            \
    XX("ENVID",       PARAM_MAIL, SMTPX_EXT_DSN,         param_envid)          \
    XX("AUTH",        PARAM_MAIL, SMTPX_EXT_AUTH,        param_auth)           \
    XX("REQUIRETLS",  PARAM_MAIL, SMTPX_EXT_REQUIRETLS,  param_requiretls)     \
    XX("MT-PRIORITY", PARAM_MAIL, SMTPX_EXT_MT_PRIORITY, param_priority)       \
    XX("NOTIFY",      PARAM_RCPT, SMTPX_EXT_DSN,         param_notify)         \
    XX("ORCPT",       PARAM_RCPT, SMTPX_EXT_DSN,         param_orcpt)
/* clang-format on */

static const struct {
    const char *keyword;
    int cmd;
    unsigned ext;
    server_param_fn *parse;
} server_param_table[] = {
#define SERVER_PARAM_ENTRY(kw, cmd, ext, fn) {kw, cmd, ext, fn},
    SERVER_PARAM_MAP(SERVER_PARAM_ENTRY)
#undef SERVER_PARAM_ENTRY
};

/* server_param_offered - the extension a parameter belongs to is on; AUTH=
 * only where AUTH itself is offered */
static int server_param_offered(const smtpx_server *s, unsigned ext)
{
    if (ext == SMTPX_EXT_AUTH)
        return server_auth_mechs(s) != 0;
    if (ext == SMTPX_EXT_REQUIRETLS)
        return server_ext(s, ext) && s->tls_active;
    return server_ext(s, ext);
}

/* server_params_apply - check and apply every parameter of a MAIL (cmd
 * PARAM_MAIL) or RCPT; 0, or 1 when an error reply was queued */
static int server_params_apply(smtpx_server *s, int cmd,
                               const smtpx_param *params, size_t np,
                               server_params *out)
{
    size_t i, j;

    for (i = 0; i < np; i++) {
        if (server_dup_param(params, i))
            return server_refuse(s, 501, 5, 5, 4, "Duplicate parameter");
        for (j = 0;
             j < sizeof(server_param_table) / sizeof(server_param_table[0]);
             j++)
            if (server_param_table[j].cmd == cmd &&
                smtpx__cmd_ieq(params[i].keyword,
                               server_param_table[j].keyword) &&
                server_param_offered(s, server_param_table[j].ext))
                break;
        if (j == sizeof(server_param_table) / sizeof(server_param_table[0]))
            return server_refuse(s, 555, 5, 5, 4, "Unsupported parameter");
        if (server_param_table[j].parse(s, params[i].value, out))
            return 1;
    }
    return 0;
}

static int server_mail(smtpx_server *s, char *arg)
{
    smtpx_param params[SERVER_MAX_PARAMS];
    smtpx_mail_info mi;
    server_params sp = {&mi, NULL};
    smtpx__path path;
    smtpx_reply r;
    size_t np = 0;
    char *base;
    int rc = 0;
    static const uint16_t e470[3] = {4, 7, 0};

    if (s->limits[SMTPX_LIMIT_MSGS] != 0 &&
        s->msgs >= s->limits[SMTPX_LIMIT_MSGS]) {
        s->status = SMTPX_ERR_LIMIT;
        return server_send(s, 421, e470, "Too many messages in this session",
                           0);
    }
    if (server_path_args(s, arg, "FROM:", SMTPX__ADDR_NULL_OK, &path, params,
                         &np, &base))
        return s->fatal;
    memset(&mi, 0, sizeof(mi));
    mi.from = base + path.mbox_off;
    mi.domain = path.domain_off != SIZE_MAX ? base + path.domain_off : NULL;
    mi.params = params;
    mi.nparams = np;
    if (server_params_apply(s, PARAM_MAIL, params, np, &sp))
        return s->fatal;
    if (path.non_ascii && !mi.smtputf8)
        return server_err(s, 553, 5, 6, 7, "Non-ASCII address needs SMTPUTF8");
    s->txn.from = smtpx__strdup(s->mem, mi.from);
    if (s->txn.from == NULL)
        return server_fail(s, SMTPX_ERR_NOMEM);
    s->txn.body = mi.body;
    s->txn.smtputf8 = mi.smtputf8;
    server_reply_init(&r, 250, 2, 1, 0, "Ok");
    if (s->cbs.on_mail != NULL) {
        s->in_cb++;
        rc = s->cbs.on_mail(s, &mi, &r, s->user_data);
        s->in_cb--;
    }
    return server_call(s, rc, &r, server_finish_mail);
}

/* ---- RCPT ---------------------------------------------------------------- */

static void server_finish_rcpt(smtpx_server *s, smtpx_reply *r)
{
    server_recipient *rc;

    server_check_reply(s, r, 200, 299, "RCPT");
    if (r->code >= 400) {
        smtpx__free(s->mem, s->pending_addr);
        s->pending_addr = NULL;
        server_send(s, r->code, r->enh, r->text, 1);
        return;
    }
    if (s->txn.nrcpt == s->txn.cap) {
        size_t cap = s->txn.cap ? s->txn.cap * 2 : 4;
        server_recipient *n =
            smtpx__realloc(s->mem, s->txn.rcpt, cap * sizeof(*n));
        if (n == NULL) {
            server_fail(s, SMTPX_ERR_NOMEM);
            return;
        }
        s->txn.rcpt = n;
        s->txn.cap = cap;
    }
    rc = &s->txn.rcpt[s->txn.nrcpt++];
    memset(rc, 0, sizeof(*rc));
    rc->addr = s->pending_addr;
    rc->data = s->pending_rdata;
    s->pending_addr = NULL;
    s->pending_rdata = NULL;
    server_send(s, r->code, r->enh, r->text, 0);
}

static int server_rcpt(smtpx_server *s, char *arg)
{
    smtpx_param params[SERVER_MAX_PARAMS];
    smtpx_rcpt_info ri;
    server_params sp = {NULL, &ri};
    smtpx__path path;
    smtpx_reply r;
    size_t np = 0;
    char *base;
    int rc = 0;
    static const uint16_t e453[3] = {4, 5, 3};

    if (s->txn.framing != 0)
        return server_err(s, 503, 5, 5, 1, "Message content already began");
    if (server_path_args(s, arg, "TO:", SMTPX__ADDR_POSTMASTER, &path, params,
                         &np, &base))
        return s->fatal;
    if (s->txn.nrcpt >= s->limits[SMTPX_LIMIT_RCPTS]) {
        /* RFC 5321 4.5.3.1.10: 452, which the client retries later; it
         * does not count as an error. */
        return server_send(s, 452, e453, "Too many recipients", 0);
    }
    memset(&ri, 0, sizeof(ri));
    ri.to = base + path.mbox_off;
    ri.domain = path.domain_off != SIZE_MAX ? base + path.domain_off : NULL;
    ri.params = params;
    ri.nparams = np;
    ri.index = s->txn.nrcpt;
    if (server_params_apply(s, PARAM_RCPT, params, np, &sp))
        return s->fatal;
    if (path.non_ascii && !s->txn.smtputf8)
        return server_err(s, 553, 5, 6, 7, "Non-ASCII address needs SMTPUTF8");
    s->pending_addr = smtpx__strdup(s->mem, ri.to);
    if (s->pending_addr == NULL)
        return server_fail(s, SMTPX_ERR_NOMEM);
    s->pending_rdata = NULL;
    s->txn.tried++;
    server_reply_init(&r, 250, 2, 1, 5, "Ok");
    if (s->cbs.on_rcpt != NULL) {
        s->in_cb++;
        rc = s->cbs.on_rcpt(s, &ri, &s->pending_rdata, &r, s->user_data);
        s->in_cb--;
    }
    return server_call(s, rc, &r, server_finish_rcpt);
}

/* ---- DATA and BDAT: content --------------------------------------------- */

/* server_content_ok - can content start: 0, or 1 with an error queued (or
 * stored for BDAT, whose chunk must be read first) */
static int server_content_check(smtpx_server *s, int framing, int *code,
                                uint16_t enh[3], const char **text)
{
    enh[0] = 5;
    enh[1] = 5;
    enh[2] = 1;
    if (!s->txn.active) {
        *code = 503;
        *text = "Need MAIL command";
    } else if (s->txn.nrcpt == 0) {
        /* RFC 5321 3.3: with pipelining, 554 says no recipient made it. */
        *code = s->txn.tried > 0 ? 554 : 503;
        *text = s->txn.tried > 0 ? "No valid recipients" : "Need RCPT command";
    } else if (framing == SMTPX_FRAMING_DATA &&
               s->txn.framing == SMTPX_FRAMING_BDAT) {
        *code = 503;
        *text = "DATA cannot follow BDAT";
    } else if (framing == SMTPX_FRAMING_DATA &&
               s->txn.body == SMTPX_BODY_BINARYMIME) {
        /* RFC 3030 3: BINARYMIME content travels only in BDAT. */
        *code = 503;
        *text = "BODY=BINARYMIME needs BDAT";
    } else {
        return 0;
    }
    return 1;
}

static void server_finish_data_begin(smtpx_server *s, smtpx_reply *r);
static void server_finish_bdat_begin(smtpx_server *s, smtpx_reply *r);
static int server_bdat_chunk_done(smtpx_server *s);

static int server_data_begin(smtpx_server *s, int framing)
{
    smtpx_data_info di;
    smtpx_reply r;
    int rc = 0;

    di.framing = framing;
    di.body = s->txn.body;
    di.nrcpts = s->txn.nrcpt;
    if (framing == SMTPX_FRAMING_DATA)
        server_reply_init(&r, 354, 0, 0, 0, NULL);
    else
        server_reply_init(&r, 250, 2, 0, 0, "Ok");
    s->pending_kind = framing;
    if (s->cbs.on_data_begin != NULL) {
        s->in_cb++;
        rc = s->cbs.on_data_begin(s, &di, &r, s->user_data);
        s->in_cb--;
    }
    return server_call(s, rc, &r,
                       framing == SMTPX_FRAMING_DATA
                           ? server_finish_data_begin
                           : server_finish_bdat_begin);
}

/*
 * server_desync - SMTPX_POLICY_ENFORCE_SYNC: the client sent what it
 * should not have sent yet (before the greeting, or behind a command
 * whose reply it must wait for): 554, and the session ends.  A pause in
 * progress (on_connect delaying the greeting) is abandoned.
 */
static void server_desync(smtpx_server *s, const char *when)
{
    static const uint16_t e550[3] = {5, 5, 0};

    server_log(s, SMTPX_LOG_NOTICE,
               "synchronization error from %s: %llu octets sent %s",
               s->peer.addr ? s->peer.addr : "unknown",
               (unsigned long long)(s->in_total - s->cmd_end), when);
    s->pause = PAUSE_NONE;
    s->pending = NULL;
    server_send(s, 554, e550, "Error: SMTP protocol synchronization", 0);
    server_end(s, SMTPX_ERR_PROTO);
}

/*
 * server_sync_check - DATA was refused.  RFC 2920 3.1: a client sends
 * nothing after DATA until it has the reply, so input that came after the
 * DATA line is message content that a broken or hostile client pipelined.
 * Run as commands, it could smuggle a transaction in (Postfix answers
 * such a client "I can break rules, too", Exim's smtp_enforce_sync drops
 * it): never run it; close.
 */
static void server_sync_check(smtpx_server *s)
{
    static const uint16_t e450[3] = {4, 5, 0};

    if (s->ended || s->in_total <= s->cmd_end)
        return;
    server_log(s, SMTPX_LOG_NOTICE,
               "pipelining violation from %s: %llu octets sent after a "
               "refused DATA before its reply",
               s->peer.addr ? s->peer.addr : "unknown",
               (unsigned long long)(s->in_total - s->cmd_end));
    s->status = SMTPX_ERR_PROTO;
    server_send(s, 421, e450,
                "Message content sent before the reply to DATA, closing "
                "connection",
                0);
}

static void server_finish_data_begin(smtpx_server *s, smtpx_reply *r)
{
    if (r->code != 354 && r->code < 400) {
        server_log(s, SMTPX_LOG_ERROR,
                   "application reply %d to DATA is not allowed; using 451",
                   r->code);
        server_reply_init(r, 451, 4, 3, 0, "Local error in processing");
    }
    if (r->code >= 400) {
        server_send(s, r->code, r->enh, r->text, 1);
        server_sync_check(s);
        return;
    }
    s->txn.framing = SMTPX_FRAMING_DATA;
    s->txn.size = 0;
    s->txn.refused = REF_NONE;
    smtpx__dot_init(&s->dot, (size_t)s->limits[SMTPX_LIMIT_TEXT_LINE],
                    s->last_crlf);
    s->state = ST_DATA;
    server_send(s, 354, NULL, r->text, 0);
}

static int server_data(smtpx_server *s, char *arg)
{
    int code;
    uint16_t enh[3];
    const char *text;

    (void)arg;
    if (server_content_check(s, SMTPX_FRAMING_DATA, &code, enh, &text))
        return server_send(s, code, enh, text, 1);
    return server_data_begin(s, SMTPX_FRAMING_DATA);
}

/* server_deliver - hand content to the application, counting its size */
static int server_deliver(smtpx_server *s, const uint8_t *p, size_t n)
{
    uint64_t max = s->limits[SMTPX_LIMIT_MSG_SIZE];
    int rc;

    if (s->txn.refused != REF_NONE) {
        s->txn.size += n;
        return 0;
    }
    if (max != 0 && s->txn.size + n > max) {
        /* Content is handed on exactly up to the limit, however the
         * input was cut; the message is refused at its end. */
        size_t room = (size_t)(max - s->txn.size);
        s->txn.refused = REF_SIZE;
        s->txn.size += n;
        if (room == 0)
            return 0;
        n = room;
    } else {
        s->txn.size += n;
    }
    if (s->cbs.on_data_chunk == NULL)
        return 0;
    s->in_cb++;
    rc = s->cbs.on_data_chunk(s, p, n, s->user_data);
    s->in_cb--;
    if (rc == 0)
        return 0;
    if (rc == SMTPX_ERR_PAUSE) {
        s->pause = PAUSE_CHUNK;
        return 1;
    }
    server_log(s, SMTPX_LOG_ERROR, "on_data_chunk failed (%d)", rc);
    server_fail(s, SMTPX_ERR_CALLBACK_FAILURE);
    return 1;
}

/* server_emit - the DATA scanner's output */
static int server_emit(void *ctx, const uint8_t *p, size_t n)
{
    smtpx_server *s = ctx;

    if (s->pause != PAUSE_NONE || s->ended) {
        /* The scanner finishes its step after a pause: keep the few
         * line-end octets it still hands on for the resume. */
        if (!s->ended && s->tail_len + n <= sizeof(s->tail)) {
            memcpy(s->tail + s->tail_len, p, n);
            s->tail_len += n;
        }
        return 1;
    }
    if (s->dot.bare &&
        s->cfg->policies[SMTPX_POLICY_BARE_LF] == SMTPX_BARE_LF_REJECT &&
        s->txn.refused == REF_NONE)
        s->txn.refused = REF_BARE;
    return server_deliver(s, p, n);
}

static void server_finish_data_end(smtpx_server *s, smtpx_reply *r)
{
    int accepted = 0;

    s->txn.in_data_end = 0;
    server_check_reply(s, r, 200, 299, "end of data");
    if (s->lmtp) {
        /* RFC 2033 4.2: one reply per accepted recipient, in order. */
        size_t i;
        for (i = 0; i < s->txn.nrcpt && !s->ended; i++) {
            server_recipient *rc = &s->txn.rcpt[i];
            if (rc->code != 0) {
                server_send(s, rc->code, rc->enh, rc->text, rc->code >= 400);
                accepted |= rc->code < 400;
            } else {
                server_send(s, r->code, r->enh, r->text, r->code >= 400);
                accepted |= r->code < 400;
            }
        }
    } else {
        server_send(s, r->code, r->enh, r->text, r->code >= 400);
        accepted = r->code < 400;
    }
    if (accepted) {
        s->msgs++;
        s->errors = 0;
        s->junk = 0;
    }
    server_txn_end(s, SMTPX_TXN_DONE);
}

/* server_data_end - the content is complete: refuse it, or ask the app */
static int server_data_end(smtpx_server *s)
{
    smtpx_reply r;
    int rc = 0;

    s->state = ST_COMMAND;
    if (s->dot.long_line && s->txn.framing == SMTPX_FRAMING_DATA &&
        s->txn.refused == REF_NONE)
        s->txn.refused = REF_LONG;
    if (s->txn.refused != REF_NONE) {
        int why = s->txn.refused;
        server_log(s, SMTPX_LOG_NOTICE, "message refused: %s (%llu octets)",
                   why == REF_SIZE   ? "too big"
                   : why == REF_LONG ? "line too long"
                                     : "bare CR or LF",
                   (unsigned long long)s->txn.size);
        server_txn_end(s, SMTPX_TXN_REFUSED);
        if (why == REF_SIZE)
            return server_err(s, 552, 5, 3, 4,
                              "Message size exceeds fixed maximum message "
                              "size");
        if (why == REF_LONG)
            return server_err(s, 550, 5, 5, 2,
                              "Message has a line too long (RFC 5321 "
                              "4.5.3.1.6)");
        return server_err(s, 550, 5, 5, 2,
                          "Message contains bare CR or LF (RFC 5321 2.3.8)");
    }
    server_reply_init(&r, 250, 2, 0, 0, "Ok");
    s->txn.in_data_end = 1;
    if (s->cbs.on_data_end != NULL) {
        s->in_cb++;
        rc = s->cbs.on_data_end(s, &r, s->user_data);
        s->in_cb--;
    }
    return server_call(s, rc, &r, server_finish_data_end);
}

/* server_step_data - a run of DATA content */
static int server_step_data(smtpx_server *s, const uint8_t *in, size_t len,
                            size_t *used)
{
    int end = 0;

    s->deadline = s->now + s->cfg->timeouts[SMTPX_TIMEOUT_DATA];
    *used = smtpx__dot_scan(&s->dot, in, len, server_emit, s, &end);
    if (s->fatal)
        return s->fatal;
    if (end)
        return server_data_end(s);
    return 0;
}

/* ---- BDAT (RFC 3030) ----------------------------------------------------- */

static int server_bdat_refuse(smtpx_server *s, int code, const uint16_t *enh,
                              const char *text)
{
    s->bdat_discard = 1;
    s->bdat_code = code;
    memcpy(s->bdat_enh, enh, sizeof(s->bdat_enh));
    smtpx__free(s->mem, s->bdat_text);
    s->bdat_text = NULL;
    if (text != NULL && (s->bdat_text = smtpx__strdup(s->mem, text)) == NULL)
        return server_fail(s, SMTPX_ERR_NOMEM);
    return 0;
}

static void server_finish_bdat_begin(smtpx_server *s, smtpx_reply *r)
{
    server_check_reply(s, r, 200, 299, "BDAT");
    if (r->code >= 400) {
        if (server_bdat_refuse(s, r->code, r->enh, r->text) < 0)
            return;
    } else {
        s->txn.framing = SMTPX_FRAMING_BDAT;
        s->txn.size = 0;
        s->txn.refused = REF_NONE;
    }
    s->state = ST_BDAT;
    if (s->bdat_left == 0)
        server_bdat_chunk_done(s);
}

static int server_bdat(smtpx_server *s, char *arg)
{
    char *sp = strchr(arg, ' ');
    uint64_t size;
    int code;
    uint16_t enh[3];
    const char *text;

    if (!server_ext(s, SMTPX_EXT_CHUNKING))
        return server_err(s, 503, 5, 5, 1, "Send EHLO first");
    if (sp != NULL) {
        *sp++ = '\0';
        while (*sp == ' ')
            sp++;
    }
    if (server_parse_num(arg, &size) < 0 ||
        (sp != NULL && *sp != '\0' && !smtpx__cmd_ieq(sp, "LAST")))
        return server_err(s, 501, 5, 5, 4, "Syntax: BDAT size [LAST]");
    s->bdat_left = size;
    s->bdat_last = sp != NULL && *sp != '\0';
    s->bdat_discard = 0;
    if (server_content_check(s, SMTPX_FRAMING_BDAT, &code, enh, &text)) {
        /* RFC 3030 2: the chunk is read even when the command fails. */
        if (server_bdat_refuse(s, code, enh, text) < 0)
            return s->fatal;
        s->state = ST_BDAT;
        if (size == 0)
            return server_bdat_chunk_done(s);
        return 0;
    }
    if (s->txn.framing == 0)
        return server_data_begin(s, SMTPX_FRAMING_BDAT);
    s->state = ST_BDAT;
    if (size == 0)
        return server_bdat_chunk_done(s);
    return 0;
}

/* server_bdat_chunk_done - the whole chunk has been read: answer it */
static int server_bdat_chunk_done(smtpx_server *s)
{
    static const uint16_t e534[3] = {5, 3, 4};
    char text[64];

    s->state = ST_COMMAND;
    if (s->bdat_discard) {
        int rc;
        s->bdat_discard = 0;
        /* A refused chunk fails the transaction (RFC 3030 2). */
        server_txn_end(s, SMTPX_TXN_REFUSED);
        rc = server_send(s, s->bdat_code, s->bdat_enh, s->bdat_text, 1);
        smtpx__free(s->mem, s->bdat_text);
        s->bdat_text = NULL;
        return rc;
    }
    if (s->txn.refused == REF_SIZE) {
        server_txn_end(s, SMTPX_TXN_REFUSED);
        return server_send(
            s, 552, e534, "Message size exceeds fixed maximum message size", 1);
    }
    if (s->bdat_last)
        return server_data_end(s);
    snprintf(text, sizeof(text), "%llu octets received",
             (unsigned long long)s->txn.size);
    return server_ok(s, 250, 2, 0, 0, text);
}

/* server_step_bdat - a run of a BDAT chunk, byte for byte */
static int server_step_bdat(smtpx_server *s, const uint8_t *in, size_t len,
                            size_t *used)
{
    size_t n = len;

    if ((uint64_t)n > s->bdat_left)
        n = (size_t)s->bdat_left;
    s->deadline = s->now + s->cfg->timeouts[SMTPX_TIMEOUT_DATA];
    s->bdat_left -= n;
    *used = n;
    if (!s->bdat_discard)
        server_deliver(s, in, n);
    if (s->fatal)
        return s->fatal;
    if (s->bdat_left == 0 && s->pause == PAUSE_NONE)
        return server_bdat_chunk_done(s);
    return 0;
}

/* ---- AUTH (RFC 4954) ------------------------------------------------------
 */

#define SASL_VERIFY_MECHS                                                      \
    (SMTPX_SASL_PLAIN | SMTPX_SASL_LOGIN | SMTPX_SASL_XOAUTH2 |                \
     SMTPX_SASL_OAUTHBEARER)
#define SASL_LOOKUP_MECHS (SMTPX_SASL_CRAM_MD5 | SMTPX_SASL_SCRAM_SHA_256)

/* server_auth_usable - the mechanisms this application can serve */
static unsigned server_auth_usable(const smtpx_server *s)
{
    unsigned m = 0;

    if (!server_ext(s, SMTPX_EXT_AUTH) || s->cbs.on_auth == NULL)
        return 0;
    m = s->cfg->sasl & SASL_VERIFY_MECHS;
    /* CRAM-MD5 and SCRAM need stored data and nonces. */
    if (s->cbs.on_auth_lookup != NULL && s->cfg->fake_key_ok)
        m |= s->cfg->sasl & SASL_LOOKUP_MECHS;
    return m;
}

/* server_auth_mechs - what the EHLO reply offers now: nothing before TLS
 * unless clear text is allowed (RFC 4954 4, 14) */
static unsigned server_auth_mechs(const smtpx_server *s)
{
    if (!s->tls_active && (!s->cfg->policies[SMTPX_POLICY_AUTH_CLEARTEXT] ||
                           s->cfg->policies[SMTPX_POLICY_REQUIRE_TLS]))
        return 0;
    return server_auth_usable(s);
}

/* server_auth_end_exchange - forget the exchange in progress */
static void server_auth_end_exchange(smtpx_server *s)
{
    smtpx__sasl_srv_free(s->sasl);
    s->sasl = NULL;
    s->sasl_mech = 0;
    s->auth_refusing = 0;
    smtpx__free(s->mem, s->auth_final_text);
    s->auth_final_text = NULL;
    if (s->state == ST_AUTH)
        s->state = ST_COMMAND;
}

/* server_auth_clear - forget the exchange and the identity (STARTTLS) */
static void server_auth_clear(smtpx_server *s)
{
    server_auth_end_exchange(s);
    smtpx__free(s->mem, s->auth_user);
    smtpx__free(s->mem, s->auth_id);
    s->auth_user = NULL;
    s->auth_id = NULL;
    s->auth_mech = 0;
}

/* server_auth_failed - reply with a failure and count it; too many end the
 * session (421 4.7.0) */
static int server_auth_failed(smtpx_server *s, int code, const uint16_t *enh,
                              const char *text)
{
    static const uint16_t e470[3] = {4, 7, 0};
    uint64_t max = s->limits[SMTPX_LIMIT_AUTH_FAILURES];
    const char *mech = smtpx_sasl_name(s->sasl_mech);

    server_auth_end_exchange(s);
    server_log(s, SMTPX_LOG_NOTICE, "AUTH %s failed (%d) from %s",
               mech ? mech : "?", code,
               s->peer.addr ? s->peer.addr : "unknown");
    server_send(s, code, enh, text, 1);
    if (s->ended || code < 500)
        return s->fatal;
    s->auth_failures++;
    if (max != 0 && s->auth_failures >= max) {
        server_log(s, SMTPX_LOG_NOTICE, "too many authentication failures");
        s->status = SMTPX_ERR_LIMIT;
        server_send(s, 421, e470, "Too many authentication failures", 0);
    }
    return s->fatal;
}

static int server_auth_err(smtpx_server *s, int code, int e1, int e2, int e3,
                           const char *text)
{
    uint16_t e[3];

    e[0] = (uint16_t)e1;
    e[1] = (uint16_t)e2;
    e[2] = (uint16_t)e3;
    return server_auth_failed(s, code, e, text);
}

/* server_auth_challenge - "334 base64": written directly, since a
 * challenge is data that the reply line limit must not cut */
static int server_auth_challenge(smtpx_server *s, const uint8_t *p, size_t n)
{
    size_t from = s->out.len - s->out.off;
    size_t need = 4 + SMTPX__B64_LEN(n) + 3;
    uint8_t *w = smtpx__buf_reserve(&s->out, s->mem, need);
    long b;

    if (w == NULL)
        return server_fail(s, SMTPX_ERR_NOMEM);
    memcpy(w, "334 ", 4);
    b = smtpx__b64_encode(p, n, (char *)w + 4, need - 4);
    if (b < 0)
        return server_fail(s, SMTPX_ERR_INTERNAL);
    memcpy(w + 4 + b, "\r\n", 2);
    smtpx__buf_commit(&s->out, 4 + (size_t)b + 2);
    server_trace_out(s, s->out.off + from);
    s->state = ST_AUTH;
    server_set_deadline(s);
    return 0;
}

static void server_finish_auth(smtpx_server *s, smtpx_reply *r);
static void server_finish_lookup_reply(smtpx_server *s, smtpx_reply *r);

/* server_auth_call - on_auth: the final say */
static int server_auth_call(smtpx_server *s, int proven)
{
    smtpx_auth_info info;
    smtpx_reply r;
    int rc;

    smtpx__sasl_srv_info(s->sasl, &info);
    if (proven)
        server_reply_init(&r, 235, 2, 7, 0, "Authentication successful");
    else
        server_reply_init(&r, 535, 5, 7, 8,
                          "Authentication credentials invalid");
    s->in_cb++;
    rc = s->cbs.on_auth(s, &info, &r, s->user_data);
    s->in_cb--;
    return server_call(s, rc, &r, server_finish_auth);
}

/* server_auth_result - act on what the mechanism says */
static int server_auth_result(smtpx_server *s, int what)
{
    const uint8_t *out;
    size_t n;

    switch (what) {
    case SMTPX__SASL_CHALLENGE:
        out = smtpx__sasl_srv_out(s->sasl, &n);
        return server_auth_challenge(s, out, n);
    case SMTPX__SASL_VERIFY:
        return server_auth_call(s, 0);
    case SMTPX__SASL_OK:
        return server_auth_call(s, 1);
    case SMTPX__SASL_LOOKUP: {
        smtpx_auth_secret sec;
        smtpx_auth_info info;
        int rc;

        memset(&sec, 0, sizeof(sec));
        smtpx__sasl_srv_info(s->sasl, &info);
        info.secret = NULL;
        info.secret_len = 0;
        s->in_cb++;
        rc = s->cbs.on_auth_lookup(s, &info, &sec, s->user_data);
        s->in_cb--;
        if (rc == SMTPX_ERR_PAUSE) {
            s->pause = PAUSE_LOOKUP;
            s->pending = server_finish_lookup_reply;
            return 0;
        }
        if (rc != 0) {
            server_log(s, SMTPX_LOG_ERROR, "callback failed (%d)", rc);
            smtpx__wipe(sec.stored_key, sizeof(sec.stored_key));
            smtpx__wipe(sec.server_key, sizeof(sec.server_key));
            return server_fail(s, SMTPX_ERR_CALLBACK_FAILURE);
        }
        rc = smtpx__sasl_srv_secret(s->sasl, &sec);
        smtpx__wipe(sec.stored_key, sizeof(sec.stored_key));
        smtpx__wipe(sec.server_key, sizeof(sec.server_key));
        if (rc < 0)
            return server_fail(s, SMTPX_ERR_NOMEM);
        return server_auth_result(s, smtpx__sasl_srv_step(s->sasl, NULL, 0, 0));
    }
    case SMTPX__SASL_FAIL:
        return server_auth_err(s, 535, 5, 7, 8,
                               "Authentication credentials invalid");
    case SMTPX__SASL_BAD:
        return server_auth_err(s, 501, 5, 5, 2,
                               "Invalid authentication exchange");
    default:
        return server_fail(s, SMTPX_ERR_NOMEM);
    }
}

/* server_finish_auth - apply on_auth's reply */
static void server_finish_auth(smtpx_server *s, smtpx_reply *r)
{
    smtpx_auth_info info;

    if (r->code != 235 && (r->code < 400 || r->code > 599)) {
        server_log(s, SMTPX_LOG_ERROR,
                   "application reply %d to AUTH is not allowed; using 454",
                   r->code);
        server_reply_init(r, 454, 4, 7, 0, "Temporary authentication failure");
    }
    if (r->code != 235) {
        /* A token mechanism says why in a challenge first (RFC 7628
         * 3.2.2); the reply follows the client's answer. */
        if (r->code >= 500 &&
            smtpx__sasl_srv_refused(s->sasl) == SMTPX__SASL_CHALLENGE) {
            const uint8_t *out;
            size_t n;

            s->auth_final = *r;
            s->auth_final_text = NULL;
            if (r->text != NULL &&
                (s->auth_final_text = smtpx__strdup(s->mem, r->text)) == NULL) {
                server_fail(s, SMTPX_ERR_NOMEM);
                return;
            }
            s->auth_final.text = s->auth_final_text;
            s->auth_refusing = 1;
            out = smtpx__sasl_srv_out(s->sasl, &n);
            server_auth_challenge(s, out, n);
            return;
        }
        server_auth_failed(s, r->code, r->enh, r->text);
        return;
    }
    smtpx__sasl_srv_info(s->sasl, &info);
    s->auth_user = smtpx__strdup(s->mem, info.authcid);
    s->auth_id = smtpx__strdup(s->mem, info.authzid[0] != '\0' ? info.authzid
                                                               : info.authcid);
    if (s->auth_user == NULL || s->auth_id == NULL) {
        server_fail(s, SMTPX_ERR_NOMEM);
        return;
    }
    s->auth_mech = s->sasl_mech;
    {
        char shown[SMTPX__ESCAPE_SIZE(255)];
        server_log(s, SMTPX_LOG_INFO, "AUTH %s as %s from %s",
                   smtpx_sasl_name(s->auth_mech),
                   smtpx__escape(shown, sizeof(shown), s->auth_user,
                                 strlen(s->auth_user)),
                   s->peer.addr ? s->peer.addr : "unknown");
    }
    server_auth_end_exchange(s);
    server_send(s, 235, r->enh, r->text, 0);
}

/* server_finish_lookup_reply - smtpx_server_reply() ended a paused lookup */
static void server_finish_lookup_reply(smtpx_server *s, smtpx_reply *r)
{
    if (r->code < 400 || r->code > 599) {
        server_log(s, SMTPX_LOG_ERROR,
                   "application reply %d to an AUTH lookup; using 454",
                   r->code);
        server_reply_init(r, 454, 4, 7, 0, "Temporary authentication failure");
    }
    server_auth_failed(s, r->code, r->enh, r->text);
}

/* server_auth_lookup_resume - go on after a paused lookup */
static int server_auth_lookup_resume(smtpx_server *s)
{
    return server_auth_result(s, smtpx__sasl_srv_step(s->sasl, NULL, 0, 0));
}

/* server_auth_decode - a response or initial response: "=" is empty (RFC
 * 4954 4); returns the length, or -1 for bad base64 */
static long server_auth_decode(const char *p, size_t n, uint8_t **out,
                               const smtpx_mem *mem)
{
    long len;

    *out = smtpx__malloc(mem, SMTPX__B64_DEC_MAX(n) + 1);
    if (*out == NULL)
        return -2;
    if (n == 1 && p[0] == '=')
        return 0;
    len = smtpx__b64_decode(p, n, *out, SMTPX__B64_DEC_MAX(n) + 1);
    return len < 0 ? -1 : len;
}

static int server_auth(smtpx_server *s, char *arg)
{
    char *ir;
    unsigned mech;
    uint8_t *dec = NULL;
    long n = 0;
    int rc;

    if (server_auth_mechs(s) == 0)
        return server_err(s, 538, 5, 7, 11,
                          "Encryption required for requested authentication "
                          "mechanism");
    if (s->auth_user != NULL)
        return server_err(s, 503, 5, 5, 1, "Already authenticated");
    if (s->txn.active)
        return server_err(s, 503, 5, 5, 1,
                          "AUTH not permitted during a mail transaction");
    ir = strchr(arg, ' ');
    if (ir != NULL) {
        *ir++ = '\0';
        if (strchr(ir, ' ') != NULL)
            return server_err(s, 501, 5, 5, 4,
                              "Syntax: AUTH mechanism [initial-response]");
    }
    if (*arg == '\0')
        return server_err(s, 501, 5, 5, 4,
                          "Syntax: AUTH mechanism [initial-response]");
    mech = smtpx_sasl_from_name(arg);
    if (mech == 0 || (mech & server_auth_mechs(s)) == 0)
        return server_err(s, 504, 5, 5, 4, "Unrecognized authentication type");
    s->sasl =
        smtpx__sasl_srv_new(s->mem, mech, s->cfg->hostname, s->cfg->rand_fn,
                            s->cfg->rand_user_data, s->cfg->fake_key);
    if (s->sasl == NULL)
        return server_fail(s, SMTPX_ERR_NOMEM);
    s->sasl_mech = mech;
    if (ir != NULL) {
        n = server_auth_decode(ir, strlen(ir), &dec, s->mem);
        if (n == -2)
            return server_fail(s, SMTPX_ERR_NOMEM);
        if (n < 0) {
            smtpx__free(s->mem, dec);
            return server_auth_err(s, 501, 5, 5, 2,
                                   "Invalid base64 in initial response");
        }
    }
    rc = smtpx__sasl_srv_step(s->sasl, dec, (size_t)n, ir != NULL);
    if (dec != NULL) {
        smtpx__wipe(dec, (size_t)n);
        smtpx__free(s->mem, dec);
    }
    return server_auth_result(s, rc);
}

/* server_auth_line - a line of the exchange (after a 334) */
static int server_auth_line(smtpx_server *s, const uint8_t *p, size_t len)
{
    uint8_t *dec = NULL;
    long n;
    int rc;

    if (s->cbs.on_trace != NULL) {
        int cancel = len == 1 && p[0] == '*';
        s->in_cb++;
        s->cbs.on_trace(s, SMTPX_TRACE_IN, cancel ? "*" : "[redacted]",
                        cancel ? 1 : 10, s->user_data);
        s->in_cb--;
    }
    if (s->auth_refusing) {
        smtpx_reply r = s->auth_final;

        s->auth_final_text = NULL; /* owned by r until sent */
        rc = server_auth_failed(s, r.code, r.enh, r.text);
        smtpx__free(s->mem, (void *)r.text);
        return rc;
    }
    if (len == 1 && p[0] == '*')
        return server_auth_err(s, 501, 5, 7, 0, "Authentication cancelled");
    n = server_auth_decode((const char *)p, len, &dec, s->mem);
    if (n == -2)
        return server_fail(s, SMTPX_ERR_NOMEM);
    if (n < 0) {
        smtpx__free(s->mem, dec);
        return server_auth_err(s, 501, 5, 5, 2, "Invalid base64 data");
    }
    rc = smtpx__sasl_srv_step(s->sasl, dec, (size_t)n, 1);
    smtpx__wipe(dec, (size_t)n);
    smtpx__free(s->mem, dec);
    return server_auth_result(s, rc);
}

/* ---- other commands ------------------------------------------------------ */

static int server_junk(smtpx_server *s)
{
    static const uint16_t e470[3] = {4, 7, 0};
    uint64_t max = s->limits[SMTPX_LIMIT_JUNK];

    s->junk++;
    if (max != 0 && s->junk > max) {
        server_log(s, SMTPX_LOG_NOTICE, "too many commands without mail");
        s->status = SMTPX_ERR_LIMIT;
        server_send(s, 421, e470, "Too many commands, closing connection", 0);
        return 1;
    }
    return 0;
}

static int server_rset(smtpx_server *s, char *arg)
{
    (void)arg;
    server_txn_end(s, SMTPX_TXN_RESET);
    return server_ok(s, 250, 2, 0, 0, "Ok");
}

static int server_noop(smtpx_server *s, char *arg)
{
    (void)arg;
    return server_ok(s, 250, 2, 0, 0, "Ok");
}

static int server_quit(smtpx_server *s, char *arg)
{
    char text[300];

    (void)arg;
    snprintf(text, sizeof(text), "%s closing connection", s->cfg->hostname);
    server_ok(s, 221, 2, 0, 0, text);
    server_end(s, 0);
    return 0;
}

static int server_help(smtpx_server *s, char *arg)
{
    (void)arg;
    return server_ok(s, 214, 2, 0, 0,
                     s->lmtp ? "Commands: LHLO MAIL RCPT DATA BDAT RSET NOOP "
                               "QUIT HELP VRFY EXPN STARTTLS"
                             : "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET "
                               "NOOP QUIT HELP VRFY EXPN STARTTLS");
}

static void server_finish_simple(smtpx_server *s, smtpx_reply *r)
{
    server_check_reply(s, r, 200, 299, "VRFY/EXPN");
    server_send(s, r->code, r->enh, r->text, 1);
}

static int server_vrfy_expn(smtpx_server *s, int cmd, char *arg)
{
    const char *name = cmd == SMTPX_VRFY ? "VRFY" : "EXPN";
    int policy = s->cfg->policies[cmd == SMTPX_VRFY ? SMTPX_POLICY_VRFY
                                                    : SMTPX_POLICY_EXPN];
    smtpx_reply r;
    int rc = 0;

    if (*arg == '\0')
        return server_err(s, 501, 5, 5, 4,
                          cmd == SMTPX_VRFY ? "Syntax: VRFY address"
                                            : "Syntax: EXPN list");
    /* Address harvesting is logged; nothing is revealed by default. */
    {
        char shown[SMTPX__ESCAPE_SIZE(200)];
        server_log(s, SMTPX_LOG_NOTICE, "%s %s from %s", name,
                   smtpx__escape(shown, sizeof(shown), arg, strlen(arg)),
                   s->peer.addr ? s->peer.addr : "unknown");
    }
    if (policy == 252)
        server_reply_init(&r, 252, 2, 5, 0, NULL);
    else
        server_reply_init(&r, 502, 5, 5, 1,
                          cmd == SMTPX_VRFY ? "VRFY command is disabled"
                                            : "EXPN command is disabled");
    if (s->cbs.on_vrfy != NULL) {
        s->in_cb++;
        rc = s->cbs.on_vrfy(s, cmd, arg, &r, s->user_data);
        s->in_cb--;
    }
    return server_call(s, rc, &r, server_finish_simple);
}

static int server_vrfy(smtpx_server *s, char *arg)
{
    return server_vrfy_expn(s, SMTPX_VRFY, arg);
}

static int server_expn(smtpx_server *s, char *arg)
{
    return server_vrfy_expn(s, SMTPX_EXPN, arg);
}

/* server_starttls_check - TLS can start now (RFC 3207 4) */
static int server_starttls_check(smtpx_server *s)
{
    if (s->tls_active)
        return server_refuse(s, 503, 5, 5, 1, "TLS already active");
    if (!server_ext(s, SMTPX_EXT_STARTTLS) || !s->tls_available)
        return server_refuse(s, 502, 5, 5, 1, "Command not implemented");
    return 0;
}

static int server_starttls(smtpx_server *s, char *arg)
{
    (void)arg;
    server_txn_end(s, SMTPX_TXN_RESET);
    server_ok(s, 220, 2, 0, 0, "Ready to start TLS");
    /* RFC 3207 4.2 (and the STARTTLS injection attacks): nothing that the
     * client sent in clear text after STARTTLS may be obeyed. */
    s->purge = 1;
    s->state = ST_TLS;
    smtpx__line_reset(&s->line, s->mem);
    return s->fatal;
}

static int server_ehlo(smtpx_server *s, char *arg)
{
    return server_helo(s, SMTPX_EHLO, arg);
}

static int server_helo_cmd(smtpx_server *s, char *arg)
{
    return server_helo(s, SMTPX_HELO, arg);
}

static int server_lhlo(smtpx_server *s, char *arg)
{
    return server_helo(s, SMTPX_LHLO, arg);
}

static int server_not_impl(smtpx_server *s, char *arg)
{
    (void)arg;
    return server_err(s, 502, 5, 5, 1, "Command not implemented");
}

/* server_auth_check - AUTH is served at all: an on_auth callback and a
 * mechanism it can serve (RFC 4954 3) */
static int server_auth_check(smtpx_server *s)
{
    if (server_auth_usable(s) == 0)
        return server_refuse(s, 502, 5, 5, 1, "Command not implemented");
    return 0;
}

/*
 * The command table: each command's verb, its policy flags, an optional
 * check of its own and the handler that proceeds.  Before a handler runs,
 * server_command() applies the flags in this order, the first that fails
 * answering (the check and proceed split of OpenSMTPD, the command table
 * of Postfix's smtpd):
 *
 *   CMD_ANYTIME     served after a 554 greeting (RFC 5321 3.1: only QUIT)
 *   CMD_NO_ARG      takes no argument: 501 5.5.4 "Syntax: VERB"
 *   (check)         the command's own availability (502, 503)
 *   CMD_NEEDS_EHLO  only after EHLO/LHLO: 503 5.5.1
 *   CMD_NEEDS_HELO  only after a greeting, if SMTPX_POLICY_REQUIRE_HELO
 *   CMD_NO_TXN      not inside a transaction (nested MAIL): 503 5.5.1
 *   CMD_NEEDS_TLS   only under TLS, if SMTPX_POLICY_REQUIRE_TLS: 530 5.7.0
 *   CMD_NEEDS_TXN   only inside a transaction: 503 5.5.1
 *   CMD_JUNK        makes no progress: counts towards SMTPX_LIMIT_JUNK
 *
 * CMD_SMTP and CMD_LMTP say which protocol knows the verb.  CMD_GROUP_END
 * marks the commands after which a pipelining client must wait for the
 * reply (RFC 2920 3.1, RFC 3207 4.2, RFC 4954 4).  SEND, SOML, SAML and
 * TURN are obsolete and refused (RFC 5321 F.1-F.4); AUTH is answered 502
 * unless the application handles authentication.  DATA and BDAT check the
 * transaction themselves: a refused BDAT chunk must still be read.
 * CMD_SYNC: when it is refused, input that came after it before the reply
 * is never run as commands (server_sync_check).
 */
#define CMD_SMTP       (1u << 0)
#define CMD_LMTP       (1u << 1)
#define CMD_ANYTIME    (1u << 2)
#define CMD_NO_ARG     (1u << 3)
#define CMD_NEEDS_EHLO (1u << 4)
#define CMD_NEEDS_HELO (1u << 5)
#define CMD_NO_TXN     (1u << 6)
#define CMD_NEEDS_TLS  (1u << 7)
#define CMD_NEEDS_TXN  (1u << 8)
#define CMD_JUNK       (1u << 9)
#define CMD_GROUP_END  (1u << 10)
#define CMD_SYNC       (1u << 11)

/* clang-format off */
#define SERVER_CMD_MAP(XX)                                                     \
    XX("HELO", server_helo_cmd, NULL, CMD_SMTP | CMD_GROUP_END)                \
    XX("EHLO", server_ehlo, NULL, CMD_SMTP | CMD_GROUP_END)                    \
    XX("LHLO", server_lhlo, NULL, CMD_LMTP | CMD_GROUP_END)                    \
    XX("MAIL", server_mail, NULL,                                              \
       CMD_NEEDS_HELO | CMD_NO_TXN | CMD_NEEDS_TLS)                            \
    XX("RCPT", server_rcpt, NULL, CMD_NEEDS_TXN)                               \
    XX("DATA", server_data, NULL, CMD_NO_ARG | CMD_GROUP_END | CMD_SYNC)       \
    XX("BDAT", server_bdat, NULL, CMD_NEEDS_EHLO)                              \
    XX("RSET", server_rset, NULL, CMD_NO_ARG | CMD_JUNK)                       \
    XX("NOOP", server_noop, NULL, CMD_JUNK | CMD_GROUP_END)                    \
    XX("QUIT", server_quit, NULL, CMD_ANYTIME | CMD_GROUP_END)                 \
    XX("HELP", server_help, NULL, CMD_JUNK)                                    \
    XX("VRFY", server_vrfy, NULL, CMD_JUNK | CMD_GROUP_END)                    \
    XX("EXPN", server_expn, NULL, CMD_JUNK | CMD_GROUP_END)                    \
    XX("STARTTLS", server_starttls, server_starttls_check,                     \
       CMD_NO_ARG | CMD_NEEDS_EHLO | CMD_GROUP_END)                            \
    XX("AUTH", server_auth, server_auth_check,                                 \
       CMD_NEEDS_EHLO | CMD_NEEDS_TLS | CMD_GROUP_END)                         \
    XX("SEND", server_not_impl, NULL, 0)                                       \
    XX("SOML", server_not_impl, NULL, 0)                                       \
    XX("SAML", server_not_impl, NULL, 0)                                       \
    XX("TURN", server_not_impl, NULL, CMD_GROUP_END)                           \
    XX("ETRN", server_not_impl, NULL, 0)
/* clang-format on */

typedef struct server_cmd {
    const char *verb;
    int (*proceed)(smtpx_server *s, char *arg);
    int (*check)(smtpx_server *s); /* 0, or 1 with a refusal queued */
    unsigned flags;
} server_cmd;

static const server_cmd server_cmds[] = {
#define SERVER_CMD_ENTRY(verb, proceed, check, flags)                          \
    {verb, proceed, check, flags},
    SERVER_CMD_MAP(SERVER_CMD_ENTRY)
#undef SERVER_CMD_ENTRY
};

static const server_cmd *server_find_cmd(const smtpx_server *s,
                                         const char *verb)
{
    size_t i;

    for (i = 0; i < sizeof(server_cmds) / sizeof(server_cmds[0]); i++) {
        const server_cmd *c = &server_cmds[i];
        if (!smtpx__cmd_ieq(verb, c->verb))
            continue;
        if ((c->flags & CMD_SMTP) && s->lmtp)
            return NULL;
        if ((c->flags & CMD_LMTP) && !s->lmtp)
            return NULL;
        return c;
    }
    return NULL;
}

/*
 * server_policy - apply a command's flags (see the table); 0 when it may
 * proceed, 1 when a reply was queued instead
 */
static int server_policy(smtpx_server *s, const server_cmd *c, const char *arg)
{
    unsigned f = c->flags;

    if (s->refused && !(f & CMD_ANYTIME))
        return server_refuse(s, 503, 5, 5, 1, "Service refused, send QUIT");
    if ((f & CMD_NO_ARG) && *arg != '\0') {
        char text[32];
        snprintf(text, sizeof(text), "Syntax: %s", c->verb);
        return server_refuse(s, 501, 5, 5, 4, text);
    }
    if (c->check != NULL && c->check(s))
        return 1;
    if ((f & CMD_NEEDS_EHLO) && !s->esmtp)
        return server_refuse(s, 503, 5, 5, 1, "Send EHLO first");
    if ((f & CMD_NEEDS_HELO) && !s->helo_done &&
        s->cfg->policies[SMTPX_POLICY_REQUIRE_HELO])
        return server_refuse(s, 503, 5, 5, 1, "Send HELO/EHLO first");
    if ((f & CMD_NO_TXN) && s->txn.active)
        return server_refuse(s, 503, 5, 5, 1, "Nested MAIL command");
    if ((f & CMD_NEEDS_TLS) && !s->tls_active &&
        s->cfg->policies[SMTPX_POLICY_REQUIRE_TLS])
        return server_refuse(s, 530, 5, 7, 0,
                             "Must issue a STARTTLS command first");
    if ((f & CMD_NEEDS_TXN) && !s->txn.active)
        return server_refuse(s, 503, 5, 5, 1, "Need MAIL command");
    if ((f & CMD_JUNK) && server_junk(s))
        return 1;
    return 0;
}

/* server_is_auth - the line (so far) is an AUTH command */
static int server_is_auth(const uint8_t *p, size_t len)
{
    return len >= 5 && smtpx__cmd_iprefix((const char *)p, len, "AUTH ");
}

/* server_trace_len - how much of a command line a trace may show: all of
 * it, except an AUTH initial response ("AUTH PLAIN " is shown) */
static size_t server_trace_len(const uint8_t *p, size_t len)
{
    const uint8_t *sp;

    if (!server_is_auth(p, len))
        return len;
    sp = memchr(p + 5, ' ', len - 5);
    return sp != NULL ? (size_t)(sp - p) + 1 : len;
}

/*
 * server_forbidden - a line that no SMTP client sends: a request or header
 * line of HTTP, or binary (a TLS handshake on the plain port).  Browsers
 * can be made to post an SMTP dialogue to port 25 inside an HTTP request,
 * and the cross-protocol attacks (ALPACA, USENIX Security 2021) rely on a
 * server that reads past such lines; Postfix hangs up on them
 * (smtpd_forbidden_commands: CONNECT, GET, POST, and lines that do not
 * start with a letter), as does this server for the HTTP methods, header
 * lines and lines that start with a control or 8-bit octet (a line that
 * starts with a space is only unrecognized).
 */
static int server_forbidden(const uint8_t *p, size_t len)
{
    static const char *const methods[] = {"CONNECT", "GET",   "POST",
                                          "PUT",     "HEAD",  "OPTIONS",
                                          "DELETE",  "PATCH", "TRACE"};
    size_t i, verb;

    if (len == 0)
        return 0;
    if (p[0] < 0x20 || p[0] >= 0x7f)
        return 1; /* binary: a TLS handshake, another protocol */
    for (verb = 0; verb < len && p[verb] != ' '; verb++)
        if (p[verb] == ':')
            return 1; /* "Host:", "User-Agent:": a header field */
    for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(methods[i]) == verb &&
            smtpx__cmd_iprefix((const char *)p, len, methods[i]))
            return 1;
    return 0;
}

/* server_forbidden_close - log the line (escaped) and hang up */
static int server_forbidden_close(smtpx_server *s, const uint8_t *p, size_t len)
{
    static const uint16_t e470[3] = {4, 7, 0};
    char shown[SMTPX__ESCAPE_SIZE(60)];

    server_log(s, SMTPX_LOG_NOTICE,
               "forbidden command from %s (another protocol?): %s",
               s->peer.addr ? s->peer.addr : "unknown",
               smtpx__escape(shown, sizeof(shown), p, len));
    s->status = SMTPX_ERR_PROTO;
    server_send(s, 421, e470, "Not an SMTP command, closing connection", 0);
    return s->fatal;
}

/* server_unknown - an unrecognized command; too many end the session
 * (SMTPX_LIMIT_UNKNOWN) */
static int server_unknown(smtpx_server *s)
{
    static const uint16_t e470[3] = {4, 7, 0};
    uint64_t max = s->limits[SMTPX_LIMIT_UNKNOWN];

    s->unknown++;
    if (max != 0 && s->unknown > max) {
        server_log(s, SMTPX_LOG_NOTICE,
                   "too many unrecognized commands from %s",
                   s->peer.addr ? s->peer.addr : "unknown");
        s->status = SMTPX_ERR_LIMIT;
        server_send(s, 421, e470,
                    "Too many unrecognized commands, closing "
                    "connection",
                    0);
        return s->fatal;
    }
    return server_err(s, 500, 5, 5, 2, "Command unrecognized");
}

/* server_command - one complete command line (without its line end) */
static int server_command(smtpx_server *s, const uint8_t *p, size_t len)
{
    char stackbuf[SERVER_STACK_LINE];
    char *work, *arg, *end;
    const server_cmd *c;
    size_t i;
    int rc;

    if (s->cbs.on_trace != NULL) {
        size_t shown = server_trace_len(p, len);
        char tmp[64];

        s->in_cb++;
        if (shown < len && shown + 10 < sizeof(tmp)) {
            /* AUTH's initial response holds credentials. */
            memcpy(tmp, p, shown);
            memcpy(tmp + shown, "[redacted]", 10);
            s->cbs.on_trace(s, SMTPX_TRACE_IN, tmp, shown + 10, s->user_data);
        } else {
            s->cbs.on_trace(s, SMTPX_TRACE_IN, (const char *)p,
                            shown < len ? shown : len, s->user_data);
        }
        s->in_cb--;
    }
    if (server_forbidden(p, len))
        return server_forbidden_close(s, p, len);
    for (i = 0; i < len; i++)
        if (p[i] == '\r' || p[i] == '\0')
            return server_err(s, 500, 5, 5, 2,
                              p[i] == '\0' ? "NUL character in command"
                                           : "Bare <CR> in command");
    work = len < sizeof(stackbuf) ? stackbuf : smtpx__malloc(s->mem, len + 1);
    if (work == NULL)
        return server_fail(s, SMTPX_ERR_NOMEM);
    memcpy(work, p, len);
    work[len] = '\0';
    /* Trailing spaces are tolerated. */
    end = work + len;
    while (end > work && end[-1] == ' ')
        *--end = '\0';
    arg = strchr(work, ' ');
    if (arg != NULL) {
        *arg++ = '\0';
        while (*arg == ' ')
            arg++;
    } else {
        arg = end;
    }
    c = work[0] != '\0' ? server_find_cmd(s, work) : NULL;
    /* RFC 2920 3.1: without PIPELINING in effect a client waits for each
     * reply, and with it still for the reply to a command that ends a
     * group.  Input already behind such a command breaks the rule (but
     * BDAT's chunk follows it by design, RFC 3030 2). */
    if (s->cfg->policies[SMTPX_POLICY_ENFORCE_SYNC] &&
        s->in_total > s->cmd_end &&
        (c != NULL && (c->flags & CMD_GROUP_END)
             ? 1
             : (!s->esmtp || !server_ext(s, SMTPX_EXT_PIPELINING)) &&
                   (c == NULL || strcmp(c->verb, "BDAT") != 0))) {
        server_desync(s, c != NULL ? "before a reply it had to wait for"
                                   : "behind a command, without PIPELINING");
        rc = 0;
    } else if (c == NULL)
        rc = server_unknown(s);
    else if (server_policy(s, c, arg))
        rc = s->fatal;
    else
        rc = c->proceed(s, arg);
    /* Refused at once (a pause decides later, in its finish function). */
    if (rc == 0 && c != NULL && (c->flags & CMD_SYNC) &&
        s->state == ST_COMMAND && s->pause == PAUSE_NONE)
        server_sync_check(s);
    if (work != stackbuf)
        smtpx__free(s->mem, work);
    return rc;
}

/* server_line - a line has arrived (without LF); apply the line rules */
static int server_line(smtpx_server *s, const uint8_t *p, size_t len)
{
    static const uint16_t e552[3] = {5, 5, 2};

    if (len > 0 && p[len - 1] == '\r') {
        len--;
        s->last_crlf = 1;
    } else {
        s->last_crlf = 0;
        if (s->cfg->policies[SMTPX_POLICY_BARE_LF] == SMTPX_BARE_LF_REJECT) {
            if (s->state == ST_AUTH)
                return server_auth_failed(s, 500, e552, "Bare <LF> in line");
            return server_send(s, 500, e552, "Bare <LF> in command", 1);
        }
    }
    if (s->state == ST_AUTH)
        return server_auth_line(s, p, len);
    return server_command(s, p, len);
}

/* server_line_too_long - RFC 5321 4.5.3.1.4 and 4.5.3.1.10; in an AUTH
 * exchange RFC 4954 4 (500 5.5.6), which ends the exchange */
static int server_line_too_long(smtpx_server *s)
{
    static const uint16_t e556[3] = {5, 5, 6};

    if (s->state == ST_AUTH)
        return server_auth_failed(s, 500, e556,
                                  "Authentication exchange line is too long");
    return server_err(s, 500, 5, 5, 2, "Line too long");
}

/* server_step_command - find and run one command line */
static int server_step_command(smtpx_server *s, const uint8_t *in, size_t len,
                               size_t *used)
{
    size_t max = (size_t)s->limits[SMTPX_LIMIT_LINE];
    const uint8_t *line;
    uint8_t head[5];
    size_t n;
    int rc;

    /* RFC 4954 4: SASL responses, and AUTH with an initial response, may
     * be longer than other commands. */
    if (s->state == ST_AUTH ||
        server_is_auth(head,
                       smtpx__line_head(&s->line, in, len, head, sizeof(head))))
        max = (size_t)s->limits[SMTPX_LIMIT_AUTH_LINE];
    rc = smtpx__line_next(&s->line, s->mem, in, len, max, used, &line, &n);
    switch (rc) {
    case SMTPX__LINE_OK:
        /* What is fed always ends where the input received so far ends. */
        s->cmd_end = s->in_total - (len - *used);
        rc = server_line(s, line, n);
        smtpx__line_release(&s->line, s->mem);
        return rc;
    case SMTPX__LINE_LONG:
        /* Answered once the line has ended, in order with the rest. */
        return server_line_too_long(s);
    case SMTPX__LINE_MORE:
    case SMTPX__LINE_OVER:
        return 0;
    default:
        return server_fail(s, rc);
    }
}

/* ---- the input engine ---------------------------------------------------- */

static int server_can_process(const smtpx_server *s)
{
    return s->started && !s->ended && s->fatal == 0 && s->pause == PAUSE_NONE &&
           s->state != ST_TLS &&
           smtpx__buf_used(&s->out) < s->limits[SMTPX_LIMIT_OUTBUF];
}

/* server_deliver_tail - line-end octets held back by a pause */
static int server_deliver_tail(smtpx_server *s)
{
    uint8_t t[sizeof(s->tail)];
    size_t n = s->tail_len;

    if (n == 0 || s->pause != PAUSE_NONE)
        return 0;
    memcpy(t, s->tail, n);
    s->tail_len = 0;
    server_deliver(s, t, n);
    return s->fatal;
}

/*
 * server_feed - process in[0..len) as far as the session can go; returns
 * the octets consumed (all of them after STARTTLS), or a fatal error.
 */
static smtpx_ssize server_feed(smtpx_server *s, const uint8_t *in, size_t len)
{
    size_t pos = 0;

    while (pos < len && server_can_process(s)) {
        size_t n = 0;
        int rc;

        if (s->tail_len != 0) {
            rc = server_deliver_tail(s);
            if (rc < 0)
                return rc;
            continue;
        }
        switch (s->state) {
        case ST_DATA:
            rc = server_step_data(s, in + pos, len - pos, &n);
            break;
        case ST_BDAT:
            rc = server_step_bdat(s, in + pos, len - pos, &n);
            break;
        default:
            rc = server_step_command(s, in + pos, len - pos, &n);
            break;
        }
        pos += n;
        if (rc < 0)
            return rc;
        if (s->purge) {
            s->purge = 0;
            if (pos < len)
                server_log(s, SMTPX_LOG_WARNING,
                           "%zu octets after STARTTLS discarded", len - pos);
            pos = len;
        }
        server_settle(s);
    }
    return (smtpx_ssize)pos;
}

/* server_overflow - input beyond the hold limit */
static void server_overflow(smtpx_server *s)
{
    static const uint16_t e470[3] = {4, 7, 0};

    server_log(s, SMTPX_LOG_NOTICE, "too much input held (limit %llu)",
               (unsigned long long)s->limits[SMTPX_LIMIT_HOLDBUF]);
    s->pause = PAUSE_NONE;
    s->pending = NULL;
    s->status = SMTPX_ERR_LIMIT;
    server_send(s, 421, e470, "Too much pipelined input", 0);
}

/* server_hold - keep input that cannot be processed yet */
static int server_hold(smtpx_server *s, const uint8_t *in, size_t len)
{
    if (smtpx__buf_used(&s->hold) + len > s->limits[SMTPX_LIMIT_HOLDBUF]) {
        server_overflow(s);
        return 0;
    }
    if (smtpx__buf_append(&s->hold, s->mem, in, len) < 0)
        return server_fail(s, SMTPX_ERR_NOMEM);
    return 0;
}

/* server_continue - process held input while the session can */
static int server_continue(smtpx_server *s)
{
    while (smtpx__buf_used(&s->hold) > 0 && server_can_process(s)) {
        smtpx_ssize n = server_feed(s, smtpx__buf_head(&s->hold),
                                    smtpx__buf_used(&s->hold));
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        smtpx__buf_drop(&s->hold, s->mem, (size_t)n);
    }
    if (s->tail_len != 0 && server_can_process(s))
        return server_deliver_tail(s);
    return s->fatal;
}

smtpx_ssize smtpx_server_recv(smtpx_server *s, const uint8_t *in, size_t len,
                              uint64_t now_ms)
{
    smtpx_ssize n;
    int rc;

    if (s == NULL || (in == NULL && len > 0))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (s->fatal)
        return s->fatal;
    if (!s->started || s->state == ST_TLS || s->in_cb)
        return SMTPX_ERR_INVALID_STATE;
    s->now = now_ms;
    if (s->ended || len == 0)
        return (smtpx_ssize)len;
    s->got_input = 1;
    s->in_total += len;
    if (!s->greeted && s->cfg->policies[SMTPX_POLICY_ENFORCE_SYNC]) {
        /* Talking before the greeting: postscreen's pregreet test. */
        server_desync(s, "before the greeting");
        server_settle(s);
        return (smtpx_ssize)len;
    }
    if (smtpx__buf_used(&s->hold) > 0 || !server_can_process(s) ||
        s->tail_len != 0) {
        rc = server_hold(s, in, len);
        if (rc == 0)
            rc = server_continue(s);
        server_settle(s);
        return rc < 0 ? rc : (smtpx_ssize)len;
    }
    n = server_feed(s, in, len);
    if (n < 0)
        return n;
    if ((size_t)n < len && !s->ended && s->state != ST_TLS) {
        rc = server_hold(s, in + n, len - (size_t)n);
        if (rc < 0)
            return rc;
    }
    server_settle(s);
    return (smtpx_ssize)len;
}

/* ---- output, time, state ------------------------------------------------- */

size_t smtpx_server_out_peek(smtpx_server *s, const uint8_t **data)
{
    size_t n = smtpx__buf_used(&s->out);

    *data = n ? smtpx__buf_head(&s->out) : NULL;
    return n;
}

void smtpx_server_out_drop(smtpx_server *s, size_t n, uint64_t now_ms)
{
    int was_full = smtpx__buf_used(&s->out) >= s->limits[SMTPX_LIMIT_OUTBUF];

    smtpx__buf_drop(&s->out, s->mem, n);
    s->now = now_ms;
    /* The greeting is the first output: all of it written, the client may
     * speak. */
    if (!s->greeted && s->greeting_queued && smtpx__buf_used(&s->out) == 0)
        s->greeted = 1;
    if (was_full && !s->in_cb && server_can_process(s)) {
        server_continue(s);
        server_settle(s);
    }
}

int smtpx_server_want_read(const smtpx_server *s)
{
    return server_can_process(s) && smtpx__buf_used(&s->hold) == 0 &&
           s->tail_len == 0;
}

int smtpx_server_want_write(const smtpx_server *s)
{
    return smtpx__buf_used(&s->out) > 0;
}

int smtpx_server_want_tls(const smtpx_server *s)
{
    return s->state == ST_TLS && !s->ended;
}

int smtpx_server_done(const smtpx_server *s)
{
    return s->ended && smtpx__buf_used(&s->out) == 0;
}

int smtpx_server_tls_started(smtpx_server *s, const smtpx_tls_info *info,
                             uint64_t now_ms)
{
    const char *src[3], *dst[3];

    if (s == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    /* After STARTTLS, or for implicit TLS (RFC 8314) before the client
     * has said anything: the greeting may wait for the handshake. */
    if (s->tls_active || s->ended || s->in_cb ||
        (s->started && s->state != ST_TLS && s->got_input))
        return SMTPX_ERR_INVALID_STATE;
    s->now = now_ms;
    memset(&s->tls, 0, sizeof(s->tls));
    if (info != NULL) {
        src[0] = info->version;
        src[1] = info->cipher;
        src[2] = info->peer;
        s->tls_mem = server_copy_strings(s, src, dst, 3);
        if (s->tls_mem == NULL)
            return SMTPX_ERR_NOMEM;
        s->tls.version = dst[0];
        s->tls.cipher = dst[1];
        s->tls.peer = dst[2];
        s->tls.bits = info->bits;
        s->tls.verified = info->verified;
        s->tls.resumed = info->resumed;
    }
    s->tls_active = 1;
    /* RFC 3207 4.2: forget everything learnt before TLS. */
    server_auth_clear(s);
    smtpx__free(s->mem, s->helo);
    s->helo = NULL;
    s->helo_done = 0;
    s->esmtp = 0;
    if (s->started) {
        s->state = ST_COMMAND;
        server_set_deadline(s);
    }
    return 0;
}

uint64_t smtpx_server_expiry(const smtpx_server *s)
{
    uint64_t e;

    if (!s->started)
        return 0;
    if (s->ended)
        return smtpx__buf_used(&s->out) ? s->close_deadline : 0;
    e = s->deadline;
    if (s->session_deadline != 0 && s->session_deadline < e)
        e = s->session_deadline;
    return e;
}

int smtpx_server_expire(smtpx_server *s, uint64_t now_ms)
{
    static const uint16_t e442[3] = {4, 4, 2};
    uint64_t e = smtpx_server_expiry(s);
    int whole;

    if (e == 0 || now_ms < e || s->in_cb)
        return 0;
    s->now = now_ms;
    if (s->ended) {
        /* The client did not take the final reply in time. */
        smtpx__buf_free(&s->out, s->mem);
        return 1;
    }
    whole = s->session_deadline != 0 && now_ms >= s->session_deadline;
    server_log(s, SMTPX_LOG_INFO, "%s in state %s",
               whole ? "session time limit" : "timeout",
               server_state_names[s->state]);
    s->pause = PAUSE_NONE;
    s->pending = NULL;
    s->status = SMTPX_ERR_TIMEOUT;
    server_send(s, 421, e442,
                whole ? "Session time limit exceeded, closing connection"
                      : "Timeout, closing connection",
                0);
    return 1;
}

void smtpx_server_eof(smtpx_server *s)
{
    if (s == NULL || s->ended || s->in_cb)
        return;
    if (!s->started) {
        s->started = 1;
        server_end(s, SMTPX_ERR_EOF);
        return;
    }
    if (s->txn.active)
        server_log(s, SMTPX_LOG_INFO, "connection lost in a transaction");
    server_end(s, SMTPX_ERR_EOF);
}

void smtpx_server_abort(smtpx_server *s, int err)
{
    if (s == NULL || s->in_cb)
        return;
    smtpx__buf_free(&s->out, s->mem);
    if (s->ended)
        return;
    s->started = 1;
    server_end(s, err < 0 ? err : SMTPX_ERR_IO);
}

/* ---- pause and resume ---------------------------------------------------- */

int smtpx_server_reply(smtpx_server *s, const smtpx_reply *r, uint64_t now_ms)
{
    server_finish_fn *fn;
    smtpx_reply copy;
    int rc;

    if (s == NULL || r == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (s->fatal)
        return s->fatal;
    if (s->ended)
        return SMTPX_ERR_CLOSED;
    if (s->in_cb || (s->pause != PAUSE_REPLY && s->pause != PAUSE_LOOKUP))
        return SMTPX_ERR_INVALID_STATE;
    s->now = now_ms;
    copy = *r;
    fn = s->pending;
    s->pause = PAUSE_NONE;
    s->pending = NULL;
    fn(s, &copy);
    rc = s->fatal ? s->fatal : server_continue(s);
    server_settle(s);
    return rc;
}

int smtpx_server_reply_rcpt(smtpx_server *s, size_t i, const smtpx_reply *r)
{
    server_recipient *rc;
    char *text = NULL;

    if (s == NULL || r == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (!s->lmtp || !s->txn.in_data_end)
        return SMTPX_ERR_INVALID_STATE;
    if (i >= s->txn.nrcpt || r->code < 200 || r->code > 599 ||
        (r->code >= 300 && r->code < 400))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (r->text != NULL) {
        text = smtpx__strdup(s->mem, r->text);
        if (text == NULL)
            return SMTPX_ERR_NOMEM;
    }
    rc = &s->txn.rcpt[i];
    smtpx__free(s->mem, rc->text);
    rc->text = text;
    rc->code = r->code;
    memcpy(rc->enh, r->enh, sizeof(rc->enh));
    return 0;
}

int smtpx_server_resume(smtpx_server *s, uint64_t now_ms)
{
    int rc;

    if (s == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (s->fatal)
        return s->fatal;
    if (s->ended)
        return SMTPX_ERR_CLOSED;
    if (s->in_cb || (s->pause != PAUSE_CHUNK && s->pause != PAUSE_LOOKUP))
        return SMTPX_ERR_INVALID_STATE;
    s->now = now_ms;
    if (s->pause == PAUSE_LOOKUP) {
        s->pause = PAUSE_NONE;
        s->pending = NULL;
        rc = server_auth_lookup_resume(s);
        if (rc == 0)
            rc = server_continue(s);
        server_settle(s);
        return rc;
    }
    s->pause = PAUSE_NONE;
    rc = server_deliver_tail(s);
    /* A BDAT chunk may have ended with the paused piece. */
    if (rc == 0 && s->state == ST_BDAT && s->bdat_left == 0 &&
        s->pause == PAUSE_NONE)
        rc = server_bdat_chunk_done(s);
    if (rc == 0)
        rc = server_continue(s);
    server_settle(s);
    return rc;
}

int smtpx_server_shutdown(smtpx_server *s, int how)
{
    if (s == NULL || (how != SMTPX_SHUTDOWN_NOW && how != SMTPX_SHUTDOWN_DRAIN))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (s->ended)
        return 0;
    if (!s->started) {
        s->started = 1;
        server_end(s, SMTPX_ERR_CLOSED);
        return 0;
    }
    if (s->shutdown_req != SMTPX_SHUTDOWN_NOW)
        s->shutdown_req = how;
    server_settle(s);
    return s->fatal;
}

/* ---- accessors ----------------------------------------------------------- */

void *smtpx_server_get_user_data(const smtpx_server *s)
{
    return s->user_data;
}

void smtpx_server_set_user_data(smtpx_server *s, void *user_data)
{
    s->user_data = user_data;
}

void *smtpx_server_get_driver_data(const smtpx_server *s)
{
    return s->driver_data;
}

void smtpx_server_set_driver_data(smtpx_server *s, void *driver_data)
{
    s->driver_data = driver_data;
}

uint64_t smtpx_server_auth_failures(const smtpx_server *s)
{
    return s->auth_failures;
}

int smtpx_server_set_tls_available(smtpx_server *s, int on)
{
    if (s->tls_active)
        return SMTPX_ERR_INVALID_STATE;
    s->tls_available = on ? 1 : 0;
    return 0;
}

int smtpx_server_set_limit(smtpx_server *s, smtpx_limit which, uint64_t value)
{
    int rc = smtpx__conf_check_limit(which, value);

    if (rc < 0)
        return rc;
    s->limits[which] = value;
    return 0;
}

uint64_t smtpx_server_get_limit(const smtpx_server *s, smtpx_limit which)
{
    if ((unsigned)which >= SMTPX_LIMIT_COUNT)
        return 0;
    return s->limits[which];
}

const smtpx_peer *smtpx_server_peer(const smtpx_server *s)
{
    return &s->peer;
}

const char *smtpx_server_hostname(const smtpx_server *s)
{
    return s->cfg->hostname;
}

const char *smtpx_server_helo(const smtpx_server *s)
{
    return s->helo;
}

const char *smtpx_server_protocol(const smtpx_server *s)
{
    /* RFC 3848 with-protocol types. */
    static const char *const names[2][4] = {
        {"ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA"},
        {"LMTP", "LMTPS", "LMTPA", "LMTPSA"}};
    int i = (s->tls_active ? 1 : 0) + (s->auth_user != NULL ? 2 : 0);

    if (!s->lmtp && !s->esmtp)
        return "SMTP"; /* RFC 3848 has no TLS variant of SMTP */
    return names[s->lmtp ? 1 : 0][i];
}

const char *smtpx_server_auth_user(const smtpx_server *s)
{
    return s->auth_user;
}

const char *smtpx_server_auth_id(const smtpx_server *s)
{
    return s->auth_id;
}

unsigned smtpx_server_auth_mech(const smtpx_server *s)
{
    return s->auth_mech;
}

int smtpx_server_auth_secret(smtpx_server *s, const smtpx_auth_secret *secret)
{
    if (s == NULL || secret == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (s->pause != PAUSE_LOOKUP || s->sasl == NULL || s->in_cb)
        return SMTPX_ERR_INVALID_STATE;
    return smtpx__sasl_srv_secret(s->sasl, secret);
}

const smtpx_tls_info *smtpx_server_tls(const smtpx_server *s)
{
    return s->tls_active ? &s->tls : NULL;
}

const char *smtpx_server_mail_from(const smtpx_server *s)
{
    return s->txn.active ? s->txn.from : NULL;
}

size_t smtpx_server_rcpt_count(const smtpx_server *s)
{
    return s->txn.nrcpt;
}

const char *smtpx_server_rcpt_addr(const smtpx_server *s, size_t i)
{
    return i < s->txn.nrcpt ? s->txn.rcpt[i].addr : NULL;
}

void *smtpx_server_rcpt_data(const smtpx_server *s, size_t i)
{
    return i < s->txn.nrcpt ? s->txn.rcpt[i].data : NULL;
}

uint64_t smtpx_server_data_size(const smtpx_server *s)
{
    return s->txn.size;
}

uint64_t smtpx_server_msg_count(const smtpx_server *s)
{
    return s->msgs;
}

const char *smtpx__server_state_name(const smtpx_server *s)
{
    return server_state_names[s->state];
}

int smtpx_server_status(const smtpx_server *s)
{
    if (s == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    return s->ended ? s->status : SMTPX_ERR_INVALID_STATE;
}

size_t smtpx__server_held(const smtpx_server *s)
{
    return smtpx__buf_used(&s->hold);
}
