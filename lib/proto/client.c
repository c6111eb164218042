/*
 * client - the SMTP/LMTP client session, sans-IO, and transactions.
 *
 * Exports the smtpx_client_* and smtpx_txn_* functions of
 * <libsmtpx/client.h>.
 *
 * Commands wait in one queue with two cursors (as in Postfix's smtp_proto
 * and libESMTP): q[head..sent) were written and wait for their replies,
 * q[sent..len) are not written yet.  A command is written when the
 * protocol allows: never before the greeting; without PIPELINING only when
 * nothing waits; with it, in RFC 2920 groups - nothing after a command
 * that ends a group (EHLO, HELO, LHLO, STARTTLS, DATA, NOOP, QUIT) until
 * that command is answered.  A transaction is MAIL, RCPT..., DATA and a
 * BODY pseudo-command whose "writing" is the message content; its reply is
 * the reply to the final dot (one per accepted recipient in LMTP).
 *
 * Invariants:
 *  - Every queued command gets exactly one on_reply (internal RSETs after
 *    a failed transaction get none); when the session ends the rest get
 *    local replies, whose texts are the static strings of client_local[]
 *    (smtpx_reply_local() recognises them by address).
 *  - A recipient is ACCEPTED only by the reply to the end of the message;
 *    if the connection is lost after the whole message was written it is
 *    UNKNOWN, never assumed delivered or lost (RFC 5321 6.1).
 *  - No content is sent when no recipient was accepted; a 354 then gets
 *    just the final dot, and the transaction is reset.
 *  - After the 220 to STARTTLS no other reply byte is accepted (response
 *    injection, RFC 3207 4.2).
 *  - With TLS required, neither MAIL nor AUTH is written before TLS is up.
 *  - AUTH is one queued command whose 334 challenges are answered in place
 *    (the mechanisms are in sasl.c); its responses never reach a trace.
 *
 * RFC 5321 (3.3, 4.1, 4.2, 4.5.2 transparency, 4.5.3.2 timeouts, 6.1),
 * RFC 2920, RFC 1870, RFC 6152, RFC 6531, RFC 2033, RFC 3207, RFC 4954.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <libsmtpx/client.h>

#include "base/buf.h"
#include "base/crypto.h"
#include "base/escape.h"
#include "base/mem.h"
#include "proto/addr.h"
#include "proto/cmd.h"
#include "proto/conf.h"
#include "proto/data.h"
#include "proto/ext.h"
#include "proto/line.h"
#include "proto/reply.h"
#include "proto/sasl.h"

/* Content read from a pull source at a time. */
#define CLIENT_READ 16384
/* A BDAT chunk made from content that must be changed on the way (line
 * ends) is at most this long; content that needs no change goes whole. */
#define CLIENT_CHUNK 65536
/* Content that needs no change is written from the application's memory
 * without a copy from this size on; below it a copy into the output costs
 * less than the write it would take on its own. */
#define CLIENT_BORROW_MIN 16384
/* Time left to write the final bytes once the session has ended. */
#define CLIENT_LINGER_MS 10000

#define CMD_SENT      1u /* written */
#define CMD_GROUP_END 2u /* nothing follows until it is answered */
#define CMD_INTERNAL  4u /* queued by the client itself: no on_reply */
#define CMD_FALLBACK  8u /* an EHLO now sent as HELO */

/* The type of a queue slot whose command left the queue unsent: it sits
 * among the written commands, gets no reply and is never at the head. */
#define CLIENT_CMD_GONE (-1)

typedef struct client_cmd {
    int type;
    unsigned flags;
    void *cookie;
    smtpx_txn *txn;
    size_t rcpt;               /* RCPT: index in the transaction */
    char *line;                /* with CRLF; NULL for the greeting and BODY */
    size_t replies;            /* BODY in LMTP: replies still expected */
    size_t chunks;             /* BODY by BDAT: chunks before LAST written */
    size_t acked;              /* ... and answered */
    unsigned bdat : 1;         /* BODY goes in BDAT chunks */
    unsigned last_sent : 1;    /* BDAT LAST is in the output */
    unsigned stopped : 1;      /* no more chunks will be sent */
    unsigned last_replied : 1; /* the reply to LAST has begun */
    uint64_t out_end;          /* out_queued once its bytes were queued */
    uint64_t deadline;         /* 0 until its bytes are written */
} client_cmd;

typedef struct txn_rcpt {
    char *addr;
    char *params;
    char *orcpt;     /* DSN ORCPT address, or NULL */
    unsigned notify; /* DSN NOTIFY bits */
    int utf8;        /* the address needs SMTPUTF8 */
    smtpx_rcpt_status st;
    char *text;   /* copy of st.reply.text, unless local */
    int accepted; /* RCPT got 2xx */
} txn_rcpt;

struct smtpx_txn {
    smtpx_mem mem;
    const smtpx_config *cfg;
    char *from;
    char *mail_params;
    txn_rcpt *r;
    size_t n, cap;
    const uint8_t *body;
    size_t body_len;
    smtpx_body_read_fn *read;
    void *read_ctx;
    uint64_t size;
    int body_type;
    int smtputf8;
    int queued;
    int done;
    int mail_failed;
    size_t accepted;  /* recipients RCPT accepted */
    size_t lmtp_next; /* LMTP: the accepted recipient the next reply is for */
    uint64_t body_sent;
    size_t body_pos;
    int body_empty; /* only the final dot is sent */
    size_t long_lines;
    int declared;    /* the application set the body type */
    int has8bit;     /* the body in memory has 8-bit octets */
    int clean;       /* ... and needs no change: CRLF lines within limit */
    int utf8_sender; /* the reverse-path needs SMTPUTF8 */
    int utf8_msg;    /* the message itself needs SMTPUTF8 */
    int dsn_ret;     /* SMTPX_DSN_RET_* */
    char *envid;     /* DSN ENVID, as given */
    int dsn_dropped; /* DSN requests left out: not offered */
    int requiretls;
    int priority, has_priority;
    int prefer_data;
    int framing;     /* SMTPX_FRAMING_* once MAIL went */
    int bdat_failed; /* a chunk was refused */
};

struct smtpx_client {
    const smtpx_config *cfg;
    const smtpx_mem *mem;
    smtpx_client_callbacks cbs;
    void *user_data;

    unsigned started : 1;
    unsigned ended : 1;
    unsigned lmtp : 1;
    unsigned esmtp : 1;
    unsigned tls_active : 1;
    unsigned want_tls : 1;
    unsigned in_body : 1;    /* content of q[sent - 1] is being written */
    unsigned body_ended : 1; /* its final dot is in the output */
    unsigned got_input : 1;  /* recv has been given an octet */
    unsigned refused : 1;    /* the greeting refused service */
    unsigned require_tls : 1;
    unsigned prefer_data : 1; /* DATA even where CHUNKING is offered */
    unsigned bdat_wait : 1;   /* no PIPELINING: a chunk waits its reply */
    int in_cb;
    int status;
    int fatal;

    client_cmd *q;
    size_t head, sent, len, cap;
    size_t group_out; /* written group-ending commands still unanswered */

    smtpx__buf out;
    /* Content written without a copy (a BDAT chunk from memory): it is
     * the output once out is empty; what is queued meanwhile goes to
     * after, which becomes out once the borrowed octets are written. */
    const uint8_t *borrow;
    size_t borrow_len;
    smtpx__buf after;
    smtpx__buf chunk;     /* a BDAT chunk being made */
    uint64_t out_queued;  /* octets ever put into out */
    uint64_t out_dropped; /* octets ever written */
    uint64_t body_end_at; /* out_queued after the last final dot */
    smtpx__line in;       /* reply line framing */
    smtpx__rparse rp;
    smtpx__ext ext;
    smtpx__stuff stuff;

    smtpx_tls_info tls;
    char *tls_mem;

    /* AUTH: the credentials wait (copied) until the command is written;
     * then the exchange runs on sasl. */
    unsigned auth_queued : 1;
    unsigned auth_mechs;
    char *auth_authzid, *auth_user, *auth_password, *auth_token;
    smtpx__sasl_cli *sasl;
    unsigned sasl_mech;
    unsigned auth_mech; /* after a 235 */

    uint64_t now;
    uint64_t session_deadline;
    uint64_t close_deadline;
};

/* ---- local replies ------------------------------------------------------- */

/* Replies the client makes up; their texts identify them (by address). */
#define CLIENT_LOCAL_MAP(XX)                                                   \
    XX(LOST, 421, 4, 4, 2, "Connection lost before the reply")                 \
    XX(LOST_AFTER_BODY, 421, 4, 4, 2,                                          \
       "Connection lost after the whole message was sent: delivery status "    \
       "unknown")                                                              \
    XX(TIMEOUT, 421, 4, 4, 2, "Timed out waiting for the reply")               \
    XX(CLOSED, 421, 4, 4, 2, "The session was closed")                         \
    XX(ERROR, 451, 4, 3, 0, "Local error in the client")                       \
    XX(NOT_SENT, 554, 5, 5, 0, "Not sent: the transaction had already failed") \
    XX(UTF8, 553, 5, 6, 7,                                                     \
       "The server does not offer SMTPUTF8, which the addresses need")         \
    XX(BODY, 451, 4, 3, 0, "The message content could not be read")            \
    XX(TLS, 454, 4, 7, 10, "TLS is required but not active: nothing was sent") \
    XX(NO_MECH, 504, 5, 5, 4,                                                  \
       "No authentication mechanism that both sides support")                  \
    XX(AUTH_PROOF, 535, 5, 7, 0,                                               \
       "The server could not prove that it knows the credentials")             \
    XX(NO_8BITMIME, 554, 5, 6, 3,                                              \
       "The message has 8-bit content and the server does not offer "          \
       "8BITMIME")                                                             \
    XX(NO_BINARYMIME, 554, 5, 6, 3,                                            \
       "The message is binary and the server does not offer BINARYMIME "       \
       "with CHUNKING")                                                        \
    XX(REQUIRETLS, 550, 5, 7, 30,                                              \
       "REQUIRETLS support required: verified TLS to a server that offers "    \
       "REQUIRETLS")

enum {
#define CLIENT_LOCAL_ENUM(name, code, e1, e2, e3, text) LOCAL_##name,
    CLIENT_LOCAL_MAP(CLIENT_LOCAL_ENUM)
#undef CLIENT_LOCAL_ENUM
        LOCAL_COUNT
};

static const struct {
    int code;
    uint16_t enh[3];
    const char *text;
} client_local[LOCAL_COUNT] = {
#define CLIENT_LOCAL_ENTRY(name, code, e1, e2, e3, text)                       \
    [LOCAL_##name] = {code, {e1, e2, e3}, text},
    CLIENT_LOCAL_MAP(CLIENT_LOCAL_ENTRY)
#undef CLIENT_LOCAL_ENTRY
};

int smtpx_reply_local(const smtpx_reply *r)
{
    int i;

    for (i = 0; i < LOCAL_COUNT; i++)
        if (r->text == client_local[i].text)
            return 1;
    return 0;
}

static smtpx_reply client_local_reply(int which)
{
    smtpx_reply r;

    r.code = client_local[which].code;
    memcpy(r.enh, client_local[which].enh, sizeof(r.enh));
    r.text = client_local[which].text;
    return r;
}

/* ---- names ----------------------------------------------------------------
 */

#define CLIENT_NAME_ENTRY(name, id, text) [id] = text,

const char *smtpx_cmd_name(int cmd)
{
    static const char *const names[SMTPX_CMD_COUNT] = {
        SMTPX_CMD_MAP(CLIENT_NAME_ENTRY)};

    return cmd > 0 && cmd < SMTPX_CMD_COUNT && names[cmd] ? names[cmd] : "?";
}

const char *smtpx_stage_name(int stage)
{
    static const char *const names[SMTPX_STAGE_COUNT] = {
        SMTPX_STAGE_MAP(CLIENT_NAME_ENTRY)};

    return stage >= 0 && stage < SMTPX_STAGE_COUNT ? names[stage] : "?";
}

const char *smtpx_rcpt_state_name(int state)
{
    static const char *const names[SMTPX_RCPT_STATE_COUNT] = {
        SMTPX_RCPT_STATE_MAP(CLIENT_NAME_ENTRY)};

    return state >= 0 && state < SMTPX_RCPT_STATE_COUNT ? names[state] : "?";
}

#undef CLIENT_NAME_ENTRY

/* ---- small helpers ------------------------------------------------------- */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
client_log(smtpx_client *c, int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (c->cbs.on_log == NULL &&
        (c->cfg->log_fn == NULL || level > c->cfg->log_level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->cbs.on_log != NULL) {
        c->in_cb++;
        c->cbs.on_log(c, level, msg, c->user_data);
        c->in_cb--;
    } else {
        c->cfg->log_fn(level, msg, c->cfg->log_user_data);
    }
}

static void client_trace(smtpx_client *c, int dir, const char *line, size_t len)
{
    if (c->cbs.on_trace == NULL)
        return;
    c->in_cb++;
    c->cbs.on_trace(c, dir, line, len, c->user_data);
    c->in_cb--;
}

static int client_use(const smtpx_client *c, unsigned ext)
{
    return c->esmtp && (c->ext.mask & ext) && (c->cfg->extensions & ext);
}

static uint32_t client_timeout(const smtpx_client *c, int type)
{
    const uint32_t *t = c->cfg->timeouts;

    switch (type) {
    case SMTPX_CMD_GREETING:
        return t[SMTPX_TIMEOUT_GREETING];
    case SMTPX_CMD_MAIL:
        return t[SMTPX_TIMEOUT_MAIL];
    case SMTPX_CMD_RCPT:
        return t[SMTPX_TIMEOUT_RCPT];
    case SMTPX_CMD_DATA:
        return t[SMTPX_TIMEOUT_DATA_INIT];
    case SMTPX_CMD_BODY:
        return t[SMTPX_TIMEOUT_DATA_END];
    default:
        return t[SMTPX_TIMEOUT_COMMAND];
    }
}

/* ---- transactions: results ---------------------------------------------- */

/* txn_state_of - the final state a reply gives: only a 2xx to the end of
 * the message accepts (callers check that); 5xx fails, anything else
 * (4xx, and replies that make no sense at that point) defers */
static int txn_state_of(int code)
{
    if (code >= 200 && code < 300)
        return SMTPX_RCPT_ACCEPTED;
    return code >= 500 ? SMTPX_RCPT_FAILED : SMTPX_RCPT_DEFERRED;
}

static int txn_fail_state(int code)
{
    return code >= 500 ? SMTPX_RCPT_FAILED : SMTPX_RCPT_DEFERRED;
}

/* txn_set - record a reply for recipient i */
static int txn_set(smtpx_txn *t, size_t i, int stage, int state,
                   const smtpx_reply *r)
{
    txn_rcpt *rc = &t->r[i];
    char *copy = NULL;

    if (!smtpx_reply_local(r) && r->text != NULL) {
        copy = smtpx__strdup(&t->mem, r->text);
        if (copy == NULL)
            return SMTPX_ERR_NOMEM;
    }
    smtpx__free(&t->mem, rc->text);
    rc->text = copy;
    rc->st.stage = stage;
    rc->st.state = state;
    rc->st.reply.code = r->code;
    memcpy(rc->st.reply.enh, r->enh, sizeof(rc->st.reply.enh));
    rc->st.reply.text = copy != NULL ? copy : r->text;
    return 0;
}

/* txn_settle - every recipient without a final state gets reply r */
static int txn_settle(smtpx_txn *t, int stage, int state, const smtpx_reply *r)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        if (t->r[i].st.state == SMTPX_RCPT_PENDING &&
            txn_set(t, i, stage, state, r) < 0)
            return SMTPX_ERR_NOMEM;
    return 0;
}

/* ---- the queue ----------------------------------------------------------- */

static void client_end(smtpx_client *c, int status, int local);
static void client_flush(smtpx_client *c);
static int client_put(smtpx_client *c, const char *p, size_t n);

static int client_push(smtpx_client *c, int type, unsigned flags, void *cookie,
                       smtpx_txn *t, size_t rcpt, char *line)
{
    client_cmd *q;

    if (c->len == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        q = smtpx__realloc(c->mem, c->q, cap * sizeof(*q));
        if (q == NULL)
            return SMTPX_ERR_NOMEM;
        c->q = q;
        c->cap = cap;
    }
    q = &c->q[c->len++];
    memset(q, 0, sizeof(*q));
    q->type = type;
    q->flags = flags;
    q->cookie = cookie;
    q->txn = t;
    q->rcpt = rcpt;
    q->line = line;
    return 0;
}

/*
 * The queue is one array: answered commands before head, written ones
 * waiting for replies in [head, sent), then the unsent ones up to len;
 * thousands of queued transactions may follow.  Commands enter and leave
 * at the edge between written and unsent, so nothing there moves the
 * unsent tail: an insertion moves the written ones down into the answered
 * space, a removal moves the unsent ones before it up and leaves a gone
 * slot among the written (except while a body is written, q[sent - 1]
 * being that body).
 */

/* client_skip_gone - head steps over gone slots */
static void client_skip_gone(smtpx_client *c)
{
    while (c->head < c->sent && c->q[c->head].type == CLIENT_CMD_GONE)
        c->head++;
}

/* client_insert_unsent - put a command first among the unsent ones */
static int client_insert_unsent(smtpx_client *c, int type, unsigned flags,
                                char *line)
{
    client_cmd tmp;
    int rc;

    if (c->head > 0 && !c->in_body) {
        memmove(&c->q[c->head - 1], &c->q[c->head],
                (c->sent - c->head) * sizeof(tmp));
        c->head--;
        c->sent--;
        memset(&c->q[c->sent], 0, sizeof(tmp));
        c->q[c->sent].type = type;
        c->q[c->sent].flags = flags;
        c->q[c->sent].line = line;
        return 0;
    }
    rc = client_push(c, type, flags, NULL, NULL, 0, line);
    if (rc < 0)
        return rc;
    tmp = c->q[c->len - 1];
    memmove(&c->q[c->sent + 1], &c->q[c->sent],
            (c->len - 1 - c->sent) * sizeof(tmp));
    c->q[c->sent] = tmp;
    return 0;
}

/* client_remove_unsent - q[i], not written (its line freed), leaves the
 * queue */
static void client_remove_unsent(smtpx_client *c, size_t i)
{
    if (c->in_body) {
        memmove(&c->q[i], &c->q[i + 1], (c->len - i - 1) * sizeof(c->q[0]));
        c->len--;
        return;
    }
    memmove(&c->q[c->sent + 1], &c->q[c->sent],
            (i - c->sent) * sizeof(c->q[0]));
    memset(&c->q[c->sent], 0, sizeof(c->q[0]));
    c->q[c->sent].type = CLIENT_CMD_GONE;
    c->sent++;
    client_skip_gone(c);
}

/* client_compact - drop answered commands from the front; only once they
 * are as many as those left, so that each is moved O(1) times */
static void client_compact(smtpx_client *c)
{
    if (c->head == 0 ||
        (c->head < c->len && (c->head < 256 || c->head < c->len - c->head)))
        return;
    memmove(c->q, c->q + c->head, (c->len - c->head) * sizeof(*c->q));
    c->len -= c->head;
    c->sent -= c->head;
    c->head = 0;
    if (c->len == 0) {
        smtpx__free(c->mem, c->q);
        c->q = NULL;
        c->cap = 0;
    }
}

static char *client_fmt(smtpx_client *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static char *client_fmt(smtpx_client *c, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    s = smtpx__malloc(c->mem, (size_t)n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* ---- delivering replies -------------------------------------------------- */

/* client_unborrow - copy a chunk still borrowed from the application's
 * memory into the output: its transaction is being finished, after which
 * the application may free that memory */
static void client_unborrow(smtpx_client *c)
{
    if (c->borrow_len == 0)
        return;
    if (smtpx__buf_append(&c->out, c->mem, c->borrow, c->borrow_len) < 0 ||
        smtpx__buf_append(&c->out, c->mem, smtpx__buf_head(&c->after),
                          smtpx__buf_used(&c->after)) < 0) {
        /* Half an output makes no sense: drop it all (the session ends). */
        smtpx__buf_free(&c->out, c->mem);
        c->fatal = SMTPX_ERR_NOMEM;
    }
    smtpx__buf_free(&c->after, c->mem);
    c->borrow = NULL;
    c->borrow_len = 0;
}

static void client_txn_done(smtpx_client *c, smtpx_txn *t)
{
    if (t->done)
        return;
    client_unborrow(c);
    t->done = 1;
    if (c->cbs.on_txn_done != NULL) {
        c->in_cb++;
        c->cbs.on_txn_done(c, t, c->user_data);
        c->in_cb--;
    }
}

static void client_notify(smtpx_client *c, const client_cmd *cmd,
                          const smtpx_reply *r)
{
    if ((cmd->flags & CMD_INTERNAL) || c->cbs.on_reply == NULL)
        return;
    c->in_cb++;
    c->cbs.on_reply(c, cmd->type, cmd->txn ? (void *)cmd->txn : cmd->cookie, r,
                    c->user_data);
    c->in_cb--;
}

/*
 * client_txn_reply - what a reply means for its transaction.  body_written
 * tells, for a local reply to BODY, whether the whole message had gone out.
 */
static int client_txn_reply(smtpx_client *c, client_cmd *cmd,
                            const smtpx_reply *r, int body_written)
{
    smtpx_txn *t = cmd->txn;
    int local = smtpx_reply_local(r), rc = 0;
    size_t i;

    switch (cmd->type) {
    case SMTPX_CMD_MAIL:
        if (r->code < 200 || r->code >= 300) {
            t->mail_failed = 1;
            rc = txn_settle(t, SMTPX_STAGE_MAIL, txn_fail_state(r->code), r);
        }
        break;
    case SMTPX_CMD_RCPT:
        if (t->mail_failed)
            break;
        if (r->code >= 200 && r->code < 300) {
            t->r[cmd->rcpt].accepted = 1;
            t->accepted++;
            rc = txn_set(t, cmd->rcpt, SMTPX_STAGE_RCPT, SMTPX_RCPT_PENDING, r);
        } else {
            rc = txn_set(t, cmd->rcpt, SMTPX_STAGE_RCPT,
                         txn_fail_state(r->code), r);
        }
        break;
    case SMTPX_CMD_DATA:
        if (r->code != 354)
            rc = txn_settle(t, SMTPX_STAGE_DATA, txn_fail_state(r->code), r);
        break;
    case SMTPX_CMD_BODY:
        if (local) {
            /* RFC 5321 6.1: once the final dot went out, the message may
             * have been delivered; before that, it certainly was not. */
            smtpx_reply u = client_local_reply(LOCAL_LOST_AFTER_BODY);
            rc = body_written && !t->body_empty
                     ? txn_settle(t, SMTPX_STAGE_BODY, SMTPX_RCPT_UNKNOWN, &u)
                     : txn_settle(t, SMTPX_STAGE_BODY, SMTPX_RCPT_DEFERRED, r);
        } else if (c->lmtp) {
            /* RFC 2033 4.2: one reply per accepted recipient, in order. */
            for (i = t->lmtp_next; i < t->n; i++)
                if (t->r[i].accepted)
                    break;
            if (i < t->n) {
                rc = txn_set(t, i, SMTPX_STAGE_BODY, txn_state_of(r->code), r);
                t->lmtp_next = i + 1;
            }
        } else {
            rc = txn_settle(t, SMTPX_STAGE_BODY, txn_state_of(r->code), r);
        }
        break;
    default:
        break;
    }
    return rc;
}

/* client_pop - the command at head has had all its replies: it leaves the
 * queue (on_reply is the caller's) */
static void client_pop(smtpx_client *c)
{
    client_cmd *cmd = &c->q[c->head];

    if ((cmd->flags & (CMD_SENT | CMD_GROUP_END)) ==
            (CMD_SENT | CMD_GROUP_END) &&
        c->group_out > 0)
        c->group_out--;
    smtpx__free(c->mem, cmd->line);
    cmd->line = NULL;
    c->head++;
    client_skip_gone(c);
    if (c->head > c->sent)
        c->sent = c->head;
}

static void client_bdat_stop(smtpx_client *c, smtpx_txn *t);

/* client_bdat_finish - a BODY sent in chunks has had every reply: its
 * on_reply came with the refused chunk; a BODY stopped because no
 * recipient was accepted gets a local one */
static void client_bdat_finish(smtpx_client *c, const client_cmd *cmd)
{
    if (!cmd->txn->bdat_failed) {
        smtpx_reply r = client_local_reply(LOCAL_NOT_SENT);
        txn_settle(cmd->txn, SMTPX_STAGE_BODY, SMTPX_RCPT_FAILED, &r);
        client_notify(c, cmd, &r);
    }
    client_txn_done(c, cmd->txn);
}

/*
 * client_bdat_reply - a server reply while a BODY sent in BDAT chunks is
 * at head (RFC 3030 2, 4.2).  The replies come in order: one for each
 * chunk before LAST, then the reply (in LMTP one per accepted recipient)
 * to LAST.  The first refused chunk decides the transaction and is
 * BODY's one on_reply; what comes after it is taken without a word.
 * Returns 1 when the reply was taken here, 0 for the usual way of a
 * final reply.
 */
static int client_bdat_reply(smtpx_client *c, const smtpx_reply *r)
{
    client_cmd *q = &c->q[c->head];
    client_cmd cmd;
    smtpx_txn *t = q->txn;

    if (q->acked < q->chunks) {
        /* A chunk before LAST. */
        q->acked++;
        c->bdat_wait = 0;
        if ((r->code < 200 || r->code >= 300) && !t->bdat_failed) {
            t->bdat_failed = 1;
            if (txn_settle(t, SMTPX_STAGE_BODY, txn_fail_state(r->code), r) < 0)
                c->fatal = SMTPX_ERR_NOMEM;
            client_notify(c, q, r);
            client_bdat_stop(c, t);
            if (c->head >= c->len || c->q[c->head].txn != t ||
                c->q[c->head].type != SMTPX_CMD_BODY)
                return 1; /* nothing else was waiting: it is done */
            q = &c->q[c->head];
        }
    } else if (!q->last_sent) {
        /* Nothing asked for it: the server is out of step. */
        client_log(c, SMTPX_LOG_ERROR, "unexpected reply %d during BDAT",
                   r->code);
        client_end(c, SMTPX_ERR_PROTO, LOCAL_ERROR);
        return 1;
    } else {
        if (!q->last_replied) {
            /* RFC 2033 4.2: in LMTP one reply per accepted recipient;
             * by now every RCPT has been answered. */
            q->last_replied = 1;
            q->replies = c->lmtp && t->accepted > 0 ? t->accepted : 1;
        }
        if (!t->bdat_failed)
            return 0; /* the transaction's outcome, the usual way */
        if (--q->replies > 0)
            return 1;
    }
    /* Done once every chunk sent was answered, and LAST if it was sent. */
    if (q->acked < q->chunks ||
        (q->last_sent && !(q->last_replied && q->replies == 0)))
        return 1;
    if (!q->last_sent && !q->stopped)
        return 1;
    cmd = *q;
    client_pop(c);
    client_bdat_finish(c, &cmd);
    return 1;
}

/* client_answer - a reply (real or local) for the command at head */
static void client_answer(smtpx_client *c, const smtpx_reply *r,
                          int body_written)
{
    client_cmd cmd = c->q[c->head];
    int more = 0;

    if (cmd.type == SMTPX_CMD_BODY && cmd.bdat && !smtpx_reply_local(r) &&
        client_bdat_reply(c, r))
        return;
    if (cmd.txn != NULL &&
        client_txn_reply(c, &c->q[c->head], r, body_written) < 0) {
        c->fatal = SMTPX_ERR_NOMEM;
    }
    if (cmd.type == SMTPX_CMD_BODY && !smtpx_reply_local(r) &&
        c->q[c->head].replies > 1) {
        c->q[c->head].replies--;
        more = 1;
    }
    if (!more)
        client_pop(c);
    if (!(cmd.type == SMTPX_CMD_BODY && cmd.txn != NULL &&
          cmd.txn->bdat_failed))
        client_notify(c, &cmd, r);
    if (!more && cmd.type == SMTPX_CMD_BODY && cmd.txn != NULL)
        client_txn_done(c, cmd.txn);
    /* Every recipient refused while the chunks are still going out: no
     * more of them (RFC 3030 4.2 lets the client stop). */
    if (!more && cmd.type == SMTPX_CMD_RCPT && cmd.txn != NULL &&
        (cmd.txn->accepted == 0 || cmd.txn->mail_failed))
        client_bdat_stop(c, cmd.txn);
}

/* client_drop_unsent - q[i], not written, leaves the queue with reply r */
static void client_drop_unsent(smtpx_client *c, size_t i, const smtpx_reply *r)
{
    client_cmd cmd = c->q[i];

    smtpx__free(c->mem, cmd.line);
    client_remove_unsent(c, i);
    client_notify(c, &cmd, r);
}

/*
 * client_bdat_stop - the transaction t cannot succeed (a chunk was
 * refused, or no recipient was accepted): RFC 3030 2, 4.2 - no more
 * chunks.  A BODY not begun leaves the queue; one being written stops,
 * and RSET follows, as the server is left inside the transaction.
 */
static void client_bdat_stop(smtpx_client *c, smtpx_txn *t)
{
    client_cmd *q;
    client_cmd cmd;
    smtpx_reply r;
    size_t i;

    for (i = c->head; i < c->len; i++)
        if (c->q[i].txn == t && c->q[i].type == SMTPX_CMD_BODY)
            break;
    if (i == c->len || !c->q[i].bdat)
        return;
    q = &c->q[i];
    if (q->last_sent || q->stopped)
        return;
    if (i >= c->sent) {
        r = client_local_reply(LOCAL_NOT_SENT);
        txn_settle(t, SMTPX_STAGE_BODY, SMTPX_RCPT_FAILED, &r);
        client_drop_unsent(c, i, &r);
        client_txn_done(c, t);
        return;
    }
    q->stopped = 1;
    if (c->in_body && i == c->sent - 1)
        c->in_body = 0;
    c->bdat_wait = 0;
    if (client_insert_unsent(c, SMTPX_CMD_RSET, CMD_INTERNAL,
                             client_fmt(c, "RSET\r\n")) < 0)
        c->fatal = SMTPX_ERR_NOMEM;
    q = &c->q[i];
    if (i == c->head && q->acked == q->chunks) {
        cmd = *q;
        client_pop(c);
        client_bdat_finish(c, &cmd);
    }
}

/* client_fail_unsent_txn - the transaction of q[i] cannot go on: its
 * remaining unsent commands get local replies and leave the queue */
static void client_fail_unsent_txn(smtpx_client *c, size_t i,
                                   const smtpx_reply *r)
{
    smtpx_txn *t = c->q[i].txn;

    txn_settle(t, SMTPX_STAGE_MAIL, txn_state_of(r->code), r);
    /* Each leaves from the front of the unsent ones (i is c->sent). */
    while (c->sent < c->len && c->q[c->sent].txn == t)
        client_drop_unsent(c, c->sent, r);
    client_txn_done(c, t);
}

/* ---- AUTH ---------------------------------------------------------------- */

static void client_wipe_str(smtpx_client *c, char **p)
{
    if (*p == NULL)
        return;
    smtpx__wipe(*p, strlen(*p));
    smtpx__free(c->mem, *p);
    *p = NULL;
}

/* client_auth_forget - wipe the credentials and the exchange */
static void client_auth_forget(smtpx_client *c)
{
    client_wipe_str(c, &c->auth_authzid);
    client_wipe_str(c, &c->auth_user);
    client_wipe_str(c, &c->auth_password);
    client_wipe_str(c, &c->auth_token);
    smtpx__sasl_cli_free(c->sasl);
    c->sasl = NULL;
    c->sasl_mech = 0;
    c->auth_queued = 0;
}

/* client_auth_offered - the mechanisms of the server's AUTH keyword */
static unsigned client_auth_offered(const smtpx_client *c)
{
    const char *v =
        client_use(c, SMTPX_EXT_AUTH) ? smtpx__ext_get(&c->ext, "AUTH") : NULL;
    unsigned mask = 0;
    char word[32];

    while (v != NULL && *v != '\0') {
        size_t n;

        while (*v == ' ')
            v++;
        n = strcspn(v, " ");
        if (n > 0 && n < sizeof(word)) {
            memcpy(word, v, n);
            word[n] = '\0';
            mask |= smtpx_sasl_from_name(word);
        }
        v += n;
    }
    return mask;
}

/*
 * client_auth_start - AUTH is about to be written: choose the mechanism
 * and make the line.  Returns 0 (cmd->line set), 1 when the command was
 * answered locally and left the queue, or SMTPX_ERR_NOMEM.
 */
static int client_auth_start(smtpx_client *c, client_cmd *cmd)
{
    unsigned mech =
        smtpx__sasl_cli_pick(client_auth_offered(c), c->auth_mechs,
                             c->auth_password != NULL, c->auth_token != NULL);
    const uint8_t *ir;
    size_t irlen;
    char *line;
    const char *name;

    if (mech == 0) {
        smtpx_reply r = client_local_reply(LOCAL_NO_MECH);
        const char *offer = client_use(c, SMTPX_EXT_AUTH)
                                ? smtpx__ext_get(&c->ext, "AUTH")
                                : "AUTH not offered";
        char shown[SMTPX__ESCAPE_SIZE(100)];
        client_log(c, SMTPX_LOG_ERROR,
                   "AUTH: no mechanism in common (server: %s)",
                   smtpx__escape(shown, sizeof(shown), offer, strlen(offer)));
        client_auth_forget(c);
        client_drop_unsent(c, c->sent, &r);
        return 1;
    }
    c->sasl = smtpx__sasl_cli_new(
        c->mem, mech, c->auth_authzid, c->auth_user,
        mech & (SMTPX_SASL_XOAUTH2 | SMTPX_SASL_OAUTHBEARER) ? c->auth_token
                                                             : c->auth_password,
        c->cfg->rand_fn, c->cfg->rand_user_data);
    if (c->sasl == NULL)
        return SMTPX_ERR_NOMEM;
    c->sasl_mech = mech;
    /* The engine has its own copies now. */
    client_wipe_str(c, &c->auth_authzid);
    client_wipe_str(c, &c->auth_user);
    client_wipe_str(c, &c->auth_password);
    client_wipe_str(c, &c->auth_token);
    name = smtpx_sasl_name(mech);
    if (smtpx__sasl_cli_initial(c->sasl, &ir, &irlen)) {
        /* RFC 4954 4: "=" stands for an empty initial response. */
        size_t size = strlen(name) + SMTPX__B64_LEN(irlen) + 10;
        size_t off;
        long b;

        line = smtpx__malloc(c->mem, size);
        if (line == NULL)
            return SMTPX_ERR_NOMEM;
        off = (size_t)snprintf(line, size, "AUTH %s ", name);
        if (irlen == 0) {
            line[off++] = '=';
        } else {
            b = smtpx__b64_encode(ir, irlen, line + off, size - off);
            if (b < 0) {
                smtpx__free(c->mem, line);
                return SMTPX_ERR_NOMEM;
            }
            off += (size_t)b;
        }
        memcpy(line + off, "\r\n", 3);
    } else {
        line = client_fmt(c, "AUTH %s\r\n", name);
        if (line == NULL)
            return SMTPX_ERR_NOMEM;
    }
    smtpx__free(c->mem, cmd->line);
    cmd->line = line;
    return 0;
}

/* client_auth_challenge - answer a 334 in place: the AUTH command stays
 * at the head of the queue until its final reply */
static int client_auth_challenge(smtpx_client *c, client_cmd *cmd,
                                 const smtpx_reply *r)
{
    const char *text = r->text != NULL ? r->text : "";
    size_t tlen = strlen(text), olen = 0;
    const uint8_t *out = NULL;
    uint8_t *dec;
    char *line;
    long n;
    int rc;

    dec = smtpx__malloc(c->mem, SMTPX__B64_DEC_MAX(tlen) + 1);
    if (dec == NULL)
        return SMTPX_ERR_NOMEM;
    n = smtpx__b64_decode(text, tlen, dec, SMTPX__B64_DEC_MAX(tlen) + 1);
    if (n >= 2 && c->sasl_mech == SMTPX_SASL_SCRAM_SHA_256 && dec[0] == 'e' &&
        dec[1] == '=')
        /* RFC 5802 7: the server says why it refuses (a wrong password):
         * an ordinary failure, not a server that cannot prove itself. */
        rc = SMTPX__SASL_BAD;
    else
        rc = n < 0 ? SMTPX__SASL_BAD
                   : smtpx__sasl_cli_step(c->sasl, dec, (size_t)n, &out, &olen);
    smtpx__free(c->mem, dec);
    if (rc == SMTPX__SASL_NOMEM)
        return SMTPX_ERR_NOMEM;
    if (rc == SMTPX__SASL_FAIL) {
        client_log(c, SMTPX_LOG_ERROR,
                   "AUTH %s: the server's proof is wrong; closing",
                   smtpx_sasl_name(c->sasl_mech));
        client_end(c, SMTPX_ERR_AUTH, LOCAL_AUTH_PROOF);
        return 0;
    }
    if (rc == SMTPX__SASL_BAD) {
        /* RFC 4954 4: "*" cancels; the server answers 501. */
        char shown[SMTPX__ESCAPE_SIZE(60)];
        client_log(c, SMTPX_LOG_NOTICE, "AUTH %s: cancelled (challenge %s)",
                   smtpx_sasl_name(c->sasl_mech),
                   smtpx__escape(shown, sizeof(shown), text, strlen(text)));
        if (client_put(c, "*\r\n", 3) < 0)
            return SMTPX_ERR_NOMEM;
        client_trace(c, SMTPX_TRACE_OUT, "*", 1);
    } else {
        size_t size = SMTPX__B64_LEN(olen) + 3;
        long b;

        line = smtpx__malloc(c->mem, size);
        if (line == NULL)
            return SMTPX_ERR_NOMEM;
        b = smtpx__b64_encode(out, olen, line, size);
        if (b >= 0) {
            memcpy(line + b, "\r\n", 2);
            rc = client_put(c, line, (size_t)b + 2);
        }
        smtpx__wipe(line, size);
        smtpx__free(c->mem, line);
        if (b < 0 || rc < 0)
            return SMTPX_ERR_NOMEM;
        client_trace(c, SMTPX_TRACE_OUT, "[redacted]", 10);
    }
    /* The wait for the next reply starts when this line is out. */
    cmd->out_end = c->out_queued;
    cmd->deadline = 0;
    return 0;
}

/* client_tls_required - MAIL or AUTH would go out in clear text: say QUIT
 * and end instead (the policy is to send nothing without TLS) */
static void client_tls_required(smtpx_client *c, int type)
{
    client_log(c, SMTPX_LOG_ERROR,
               "TLS is required but not active: %s not sent",
               smtpx_cmd_name(type));
    if (client_put(c, "QUIT\r\n", 6) == 0)
        client_trace(c, SMTPX_TRACE_OUT, "QUIT", 4);
    client_end(c, SMTPX_ERR_TLS_REQUIRED, LOCAL_TLS);
}

/* ---- writing ------------------------------------------------------------- */

/* client_tail - where output is appended: behind a borrowed chunk, if any */
static smtpx__buf *client_tail(smtpx_client *c)
{
    return c->borrow_len > 0 ? &c->after : &c->out;
}

/* client_out_used - output waiting, borrowed octets included */
static size_t client_out_used(const smtpx_client *c)
{
    return smtpx__buf_used(&c->out) + c->borrow_len +
           smtpx__buf_used(&c->after);
}

/* client_out_mem - output held in the client's memory (what
 * SMTPX_LIMIT_OUTBUF bounds; borrowed octets take none) */
static size_t client_out_mem(const smtpx_client *c)
{
    return smtpx__buf_used(&c->out) + smtpx__buf_used(&c->after);
}

static int client_put(smtpx_client *c, const char *p, size_t n)
{
    if (smtpx__buf_append(client_tail(c), c->mem, p, n) < 0)
        return SMTPX_ERR_NOMEM;
    c->out_queued += n;
    return 0;
}

/* client_drop_output - forget what was not written */
static void client_drop_output(smtpx_client *c)
{
    smtpx__buf_free(&c->out, c->mem);
    smtpx__buf_free(&c->after, c->mem);
    c->borrow = NULL;
    c->borrow_len = 0;
}

/* client_body - write message content while the output has room */
static int client_body(smtpx_client *c)
{
    client_cmd *cmd = &c->q[c->sent - 1];
    smtpx_txn *t = cmd->txn;
    uint8_t buf[CLIENT_READ];
    uint64_t room = c->cfg->limits[SMTPX_LIMIT_OUTBUF];
    smtpx_ssize n;

    while (c->in_body && client_out_mem(c) < room) {
        const uint8_t *p = NULL;
        size_t len = 0;

        if (!t->body_empty && t->body != NULL) {
            len = t->body_len - t->body_pos;
            if (len > CLIENT_READ)
                len = CLIENT_READ;
            p = t->body + t->body_pos;
            t->body_pos += len;
        } else if (!t->body_empty && t->read != NULL) {
            n = t->read(t->read_ctx, buf, sizeof(buf));
            if (n < 0) {
                /* DATA cannot be taken back: the connection must go. */
                client_log(c, SMTPX_LOG_ERROR,
                           "reading the message failed (%s)",
                           smtpx_strerror((int)n));
                c->in_body = 0;
                client_end(c, SMTPX_ERR_IO, LOCAL_BODY);
                return 0;
            }
            p = buf;
            len = (size_t)n;
        }
        if (len > 0) {
            n = smtpx__stuff_add(&c->stuff, client_tail(c), c->mem, p, len);
            if (n < 0)
                return SMTPX_ERR_NOMEM;
            c->out_queued += (uint64_t)n;
            t->body_sent += (uint64_t)n;
            continue;
        }
        n = smtpx__stuff_end(&c->stuff, client_tail(c), c->mem);
        if (n < 0)
            return SMTPX_ERR_NOMEM;
        c->out_queued += (uint64_t)n;
        t->long_lines = c->stuff.long_lines;
        if (t->long_lines > 0)
            client_log(c, SMTPX_LOG_WARNING,
                       "%zu line(s) longer than %llu octets were broken",
                       t->long_lines, (unsigned long long)c->stuff.max_text);
        c->in_body = 0;
        c->body_ended = 1;
        c->body_end_at = c->out_queued;
        cmd->out_end = c->out_queued;
        cmd->deadline = 0;
        client_trace(c, SMTPX_TRACE_OUT, ".", 1);
    }
    return 0;
}

static int client_pipelining(const smtpx_client *c)
{
    return client_use(c, SMTPX_EXT_PIPELINING);
}

/* client_can_send - may q[sent] be written now? */
static int client_can_send(const smtpx_client *c)
{
    if (c->ended || c->in_body || c->want_tls || c->sent >= c->len)
        return 0;
    if (c->head == c->sent)
        return 1;
    return client_pipelining(c) && c->group_out == 0;
}

/* client_dsn_offered - DSN requests may go; if not, the transaction is
 * told they were left out (RFC 3461 5.2) */
static int client_dsn_offered(smtpx_client *c, smtpx_txn *t)
{
    if (client_use(c, SMTPX_EXT_DSN))
        return 1;
    if (!t->dsn_dropped)
        client_log(c, SMTPX_LOG_INFO,
                   "the server does not offer DSN: the DSN requests of "
                   "<%s> are left out",
                   t->from);
    t->dsn_dropped = 1;
    return 0;
}

/* client_mail_line - MAIL FROM with the parameters the server offers */
static char *client_mail_line(smtpx_client *c, smtpx_txn *t)
{
    char size[40] = "", body[24] = "", dsn[160] = "", prio[24] = "";
    char envid[101];
    const char *utf8 = "", *reqtls = "";
    int eight = client_use(c, SMTPX_EXT_8BITMIME);

    if (t->size > 0 && client_use(c, SMTPX_EXT_SIZE))
        snprintf(size, sizeof(size), " SIZE=%llu", (unsigned long long)t->size);
    if (t->body_type == SMTPX_BODY_BINARYMIME)
        snprintf(body, sizeof(body), " BODY=BINARYMIME");
    else if (t->body_type == SMTPX_BODY_8BITMIME && eight)
        snprintf(body, sizeof(body), " BODY=8BITMIME");
    else if (t->body_type == SMTPX_BODY_7BIT && eight)
        snprintf(body, sizeof(body), " BODY=7BIT");
    if (t->smtputf8)
        utf8 = " SMTPUTF8";
    if ((t->dsn_ret != SMTPX_DSN_RET_NONE || t->envid != NULL) &&
        client_dsn_offered(c, t)) {
        size_t n = 0;
        if (t->dsn_ret != SMTPX_DSN_RET_NONE)
            n = (size_t)snprintf(dsn, sizeof(dsn), " RET=%s",
                                 t->dsn_ret == SMTPX_DSN_RET_FULL ? "FULL"
                                                                  : "HDRS");
        if (t->envid != NULL &&
            smtpx__cmd_xtext_encode(t->envid, envid, sizeof(envid)) >= 0)
            snprintf(dsn + n, sizeof(dsn) - n, " ENVID=%s", envid);
    }
    if (t->requiretls)
        reqtls = " REQUIRETLS";
    if (t->has_priority && client_use(c, SMTPX_EXT_MT_PRIORITY))
        snprintf(prio, sizeof(prio), " MT-PRIORITY=%d", t->priority);
    return client_fmt(c, "MAIL FROM:<%s>%s%s%s%s%s%s%s%s\r\n", t->from, size,
                      body, utf8, dsn, reqtls, prio, t->mail_params ? " " : "",
                      t->mail_params ? t->mail_params : "");
}

/* client_rcpt_line - RCPT TO with its parameters, DSN where offered */
static char *client_rcpt_line(smtpx_client *c, smtpx_txn *t, size_t i)
{
    const txn_rcpt *r = &t->r[i];
    char dsn[1400] = "";

    if ((r->notify != 0 || r->orcpt != NULL) && client_dsn_offered(c, t)) {
        size_t n = 0;
        if (r->notify == SMTPX_DSN_NOTIFY_NEVER) {
            n = (size_t)snprintf(dsn, sizeof(dsn), " NOTIFY=NEVER");
        } else if (r->notify != 0) {
            static const struct {
                unsigned bit;
                const char *word;
            } words[] = {{SMTPX_DSN_NOTIFY_SUCCESS, "SUCCESS"},
                         {SMTPX_DSN_NOTIFY_FAILURE, "FAILURE"},
                         {SMTPX_DSN_NOTIFY_DELAY, "DELAY"}};
            const char *sep = " NOTIFY=";
            size_t k;
            for (k = 0; k < sizeof(words) / sizeof(words[0]); k++)
                if (r->notify & words[k].bit) {
                    n += (size_t)snprintf(dsn + n, sizeof(dsn) - n, "%s%s", sep,
                                          words[k].word);
                    sep = ",";
                }
        }
        if (r->orcpt != NULL) {
            /* RFC 3461 4.2: addr-type ";" xtext */
            n += (size_t)snprintf(dsn + n, sizeof(dsn) - n, " ORCPT=rfc822;");
            if (smtpx__cmd_xtext_encode(r->orcpt, dsn + n, sizeof(dsn) - n) < 0)
                dsn[n - sizeof(" ORCPT=rfc822;") + 1] = '\0';
        }
    }
    return client_fmt(c, "RCPT TO:<%s>%s%s%s\r\n", r->addr, dsn,
                      r->params ? " " : "", r->params ? r->params : "");
}

/*
 * client_mail_prepare - MAIL of q[sent] is about to be written: by now the
 * server's extensions are known.  Refuse locally what cannot go (RFC
 * 6531 3.4, RFC 6152 3, RFC 3030 3, RFC 8689 4.2.1), and choose the
 * framing.  Returns 0 to write MAIL, 1 when the transaction (or some of
 * its recipients) was answered here and the queue changed.
 */
static int client_mail_prepare(smtpx_client *c)
{
    client_cmd *cmd = &c->q[c->sent];
    smtpx_txn *t = cmd->txn;
    int chunking = client_use(c, SMTPX_EXT_CHUNKING);
    int binary = t->body_type == SMTPX_BODY_BINARYMIME;
    smtpx_reply r;
    size_t i, nutf8 = 0;

    if (t->smtputf8 && !client_use(c, SMTPX_EXT_SMTPUTF8)) {
        for (i = 0; i < t->n; i++)
            nutf8 += t->r[i].utf8 ? 1 : 0;
        r = client_local_reply(LOCAL_UTF8);
        if (t->utf8_sender || t->utf8_msg || nutf8 == t->n) {
            client_fail_unsent_txn(c, c->sent, &r);
            return 1;
        }
        /* Only some recipients' addresses need it: those cannot go, the
         * others go without SMTPUTF8. */
        for (i = c->sent; i < c->len && c->q[i].txn == t; i++) {
            /* A removal moves the commands before q[i] up by one. */
            if (c->q[i].type == SMTPX_CMD_RCPT && t->r[c->q[i].rcpt].utf8) {
                txn_set(t, c->q[i].rcpt, SMTPX_STAGE_RCPT, SMTPX_RCPT_FAILED,
                        &r);
                client_drop_unsent(c, i, &r);
            }
        }
        t->smtputf8 = 0;
        return 1;
    }
    if (!t->declared && t->has8bit)
        t->body_type = SMTPX_BODY_8BITMIME;
    if (binary && !(chunking && client_use(c, SMTPX_EXT_BINARYMIME))) {
        r = client_local_reply(LOCAL_NO_BINARYMIME);
        client_fail_unsent_txn(c, c->sent, &r);
        return 1;
    }
    if (t->body_type == SMTPX_BODY_8BITMIME &&
        !client_use(c, SMTPX_EXT_8BITMIME)) {
        r = client_local_reply(LOCAL_NO_8BITMIME);
        client_fail_unsent_txn(c, c->sent, &r);
        return 1;
    }
    if (t->requiretls && !(c->tls_active && c->tls.verified &&
                           client_use(c, SMTPX_EXT_REQUIRETLS))) {
        r = client_local_reply(LOCAL_REQUIRETLS);
        client_fail_unsent_txn(c, c->sent, &r);
        return 1;
    }
    /* RFC 3030: BDAT where offered, so that nothing waits for a 354;
     * without PIPELINING only binary content is worth the lock-step. */
    if (binary || (chunking && client_pipelining(c) && !c->prefer_data &&
                   !t->prefer_data)) {
        t->framing = SMTPX_FRAMING_BDAT;
        for (i = c->sent + 1; i < c->len && c->q[i].txn == t; i++) {
            if (c->q[i].type == SMTPX_CMD_DATA) {
                /* No DATA for this transaction, and no reply to it; the
                 * commands before it (this MAIL among them) move up. */
                smtpx__free(c->mem, c->q[i].line);
                client_remove_unsent(c, i);
            } else if (c->q[i].type == SMTPX_CMD_BODY) {
                c->q[i].bdat = 1;
            }
        }
    } else {
        t->framing = SMTPX_FRAMING_DATA;
    }
    client_log(c, SMTPX_LOG_INFO,
               "transaction from <%s> to %zu recipient%s: %s", t->from, t->n,
               t->n == 1 ? "" : "s",
               t->framing == SMTPX_FRAMING_BDAT ? "BDAT (CHUNKING)" : "DATA");
    return 0;
}

/* client_bdat_put - one chunk: its command, then its octets (from
 * c->chunk, or data: copied, or borrowed without a copy) */
static int client_bdat_put(smtpx_client *c, client_cmd *cmd,
                           const uint8_t *data, size_t len, int last, int copy)
{
    char head[48];
    int n = snprintf(head, sizeof(head), "BDAT %zu%s\r\n", len,
                     last ? " LAST" : "");

    if (client_put(c, head, (size_t)n) < 0)
        return SMTPX_ERR_NOMEM;
    client_trace(c, SMTPX_TRACE_OUT, head, (size_t)n - 2);
    if (data != NULL && copy) {
        if (client_put(c, (const char *)data, len) < 0)
            return SMTPX_ERR_NOMEM;
    } else if (data != NULL) {
        /* Borrowed: written from the application's memory (the caller
         * made sure nothing else is borrowed). */
        c->borrow = data;
        c->borrow_len = len;
        c->out_queued += len;
    } else if (len > 0) {
        if (client_put(c, (const char *)smtpx__buf_head(&c->chunk), len) < 0)
            return SMTPX_ERR_NOMEM;
        smtpx__buf_free(&c->chunk, c->mem);
    }
    cmd->txn->body_sent += len;
    if (!last) {
        cmd->chunks++;
        /* Without PIPELINING each chunk waits for its reply. */
        if (!client_pipelining(c))
            c->bdat_wait = 1;
        return 0;
    }
    cmd->last_sent = 1;
    c->in_body = 0;
    c->body_ended = 1;
    c->body_end_at = c->out_queued;
    cmd->out_end = c->out_queued;
    cmd->deadline = 0;
    return 0;
}

/* client_bdat_fill - the next chunk into c->chunk, up to piece octets:
 * from memory or the reader, line ends made CRLF unless binary.  1 if it
 * is the last, 0 if not, BDAT_READ_FAILED if reading failed (the session
 * is over), or SMTPX_ERR_NOMEM. */
#define BDAT_READ_FAILED 2
static int client_bdat_fill(smtpx_client *c, smtpx_txn *t, size_t piece,
                            int binary)
{
    uint8_t buf[CLIENT_READ];
    int last = 0;

    while (smtpx__buf_used(&c->chunk) < piece && !last) {
        const uint8_t *p = buf;
        size_t len;

        if (t->body != NULL) {
            len = t->body_len - t->body_pos;
            if (len > piece)
                len = piece;
            p = t->body + t->body_pos;
            t->body_pos += len;
            last = t->body_pos == t->body_len;
        } else {
            smtpx_ssize n = t->read(t->read_ctx, buf,
                                    piece < sizeof(buf) ? piece : sizeof(buf));
            if (n < 0) {
                /* A chunk cannot be taken back: the connection must go. */
                client_log(c, SMTPX_LOG_ERROR,
                           "reading the message failed (%s)",
                           smtpx_strerror((int)n));
                c->in_body = 0;
                client_end(c, SMTPX_ERR_IO, LOCAL_BODY);
                return BDAT_READ_FAILED;
            }
            len = (size_t)n;
            last = n == 0;
        }
        if (binary) {
            if (len > 0 && smtpx__buf_append(&c->chunk, c->mem, p, len) < 0)
                return SMTPX_ERR_NOMEM;
        } else if ((len > 0 && smtpx__stuff_add(&c->stuff, &c->chunk, c->mem, p,
                                                len) < 0) ||
                   (last &&
                    smtpx__stuff_end(&c->stuff, &c->chunk, c->mem) < 0)) {
            return SMTPX_ERR_NOMEM;
        }
    }
    if (last && !binary) {
        t->long_lines = c->stuff.long_lines;
        if (t->long_lines > 0)
            client_log(c, SMTPX_LOG_WARNING,
                       "%zu line(s) longer than %llu octets were broken",
                       t->long_lines, (unsigned long long)c->stuff.max_text);
    }
    return last;
}

/* client_bdat_body - write BDAT chunks while the output has room
 * (RFC 3030 2) */
static int client_bdat_body(smtpx_client *c)
{
    client_cmd *cmd = &c->q[c->sent - 1];
    smtpx_txn *t = cmd->txn;
    uint64_t room = c->cfg->limits[SMTPX_LIMIT_OUTBUF];
    int binary = t->body_type == SMTPX_BODY_BINARYMIME;
    /* A chunk fills at most half the output buffer, so that the output
     * stays within its limit. */
    size_t piece =
        room / 2 < CLIENT_CHUNK / 2 ? (size_t)room / 2 : CLIENT_CHUNK / 2;

    while (c->in_body && !c->bdat_wait && client_out_mem(c) < room) {
        int last;

        if (t->body != NULL && (t->clean || binary)) {
            /* As it is, the rest in one chunk: copied into the output if
             * small and there is room, else written from where it is
             * without a copy.  One body is borrowed at a time; while the
             * one before is still being written this one waits (out_drop
             * comes back here) rather than being copied past the output
             * limit. */
            size_t len = t->body_len - t->body_pos;
            const uint8_t *p = t->body + t->body_pos;
            int copy =
                len < CLIENT_BORROW_MIN && client_out_mem(c) + len < room;
            if (!copy && c->borrow_len > 0)
                break;
            t->body_pos = t->body_len;
            return client_bdat_put(c, cmd, p, len, 1, copy);
        }
        last = client_bdat_fill(c, t, piece, binary);
        if (last == BDAT_READ_FAILED)
            return 0;
        if (last < 0 ||
            client_bdat_put(c, cmd, NULL, smtpx__buf_used(&c->chunk), last, 0) <
                0)
            return SMTPX_ERR_NOMEM;
    }
    return 0;
}

/* client_start_body - BODY goes out: in BDAT chunks or after the 354 */
static int client_start_body(smtpx_client *c, client_cmd *cmd)
{
    size_t max_text = (size_t)c->cfg->limits[SMTPX_LIMIT_TEXT_LINE];

    cmd->flags |= CMD_SENT;
    cmd->deadline = c->now + c->cfg->timeouts[SMTPX_TIMEOUT_DATA_BLOCK];
    cmd->replies = c->lmtp ? cmd->txn->accepted : 1;
    if (cmd->replies == 0)
        cmd->replies = 1;
    c->sent++;
    c->in_body = 1;
    c->body_ended = 0;
    if (cmd->bdat) {
        cmd->replies = 1; /* for LAST; known when it is answered */
        smtpx__stuff_init_bdat(&c->stuff, max_text);
        return client_bdat_body(c);
    }
    smtpx__stuff_init(&c->stuff, max_text);
    return client_body(c);
}

/* client_line_out - the command's line goes out (credentials shown only
 * as "[redacted]", and wiped once written) */
static int client_line_out(smtpx_client *c, client_cmd *cmd)
{
    const char *line = cmd->line;
    size_t shown = strlen(line) - 2;

    if (client_put(c, line, strlen(line)) < 0)
        return SMTPX_ERR_NOMEM;
    if (cmd->type == SMTPX_CMD_AUTH) {
        /* "AUTH PLAIN " and no more: the rest is credentials. */
        const char *sp = strchr(line + 5, ' ');
        if (sp != NULL) {
            char tmp[64];
            int w = snprintf(tmp, sizeof(tmp), "%.*s [redacted]",
                             (int)(sp - line), line);
            client_trace(c, SMTPX_TRACE_OUT, tmp,
                         w > 0 && (size_t)w < sizeof(tmp) ? (size_t)w : 0);
            shown = 0;
        }
    }
    if (shown > 0)
        client_trace(c, SMTPX_TRACE_OUT, line, shown);
    if (cmd->type == SMTPX_CMD_AUTH) {
        /* The credentials are in the output now; the line is not needed
         * any more. */
        smtpx__wipe(cmd->line, strlen(cmd->line));
    }
    cmd->flags |= CMD_SENT;
    if (cmd->flags & CMD_GROUP_END)
        c->group_out++;
    /* RFC 5321 4.5.3.2: the wait for a reply starts when the command has
     * gone out; out_drop starts its clock. */
    cmd->out_end = c->out_queued;
    cmd->deadline = 0;
    c->sent++;
    return 0;
}

/* client_prepare - the command at c->sent as it is to be written: AUTH
 * picks its mechanism, MAIL and RCPT their parameters from what the
 * server offers.  0: q[c->sent] is ready; 1: the queue changed (look
 * again); <0: an error. */
static int client_prepare(smtpx_client *c)
{
    client_cmd *cmd = &c->q[c->sent];

    if (cmd->type == SMTPX_CMD_AUTH)
        return client_auth_start(c, cmd);
    if (cmd->type == SMTPX_CMD_MAIL && cmd->txn != NULL) {
        if (client_mail_prepare(c))
            return 1;
        cmd = &c->q[c->sent];
        smtpx__free(c->mem, cmd->line);
        cmd->line = client_mail_line(c, cmd->txn);
        return cmd->line != NULL ? 0 : SMTPX_ERR_NOMEM;
    }
    if (cmd->type == SMTPX_CMD_RCPT && cmd->txn != NULL) {
        smtpx__free(c->mem, cmd->line);
        cmd->line = client_rcpt_line(c, cmd->txn, cmd->rcpt);
        return cmd->line != NULL ? 0 : SMTPX_ERR_NOMEM;
    }
    return 0;
}

/* client_flush - write every command the protocol lets out now */
static void client_flush(smtpx_client *c)
{
    if (c->in_body &&
        (c->q[c->sent - 1].bdat ? client_bdat_body(c) : client_body(c)) < 0) {
        client_end(c, SMTPX_ERR_NOMEM, LOCAL_ERROR);
        return;
    }
    while (client_can_send(c)) {
        client_cmd *cmd = &c->q[c->sent];
        int rc;

        if ((cmd->type == SMTPX_CMD_MAIL || cmd->type == SMTPX_CMD_AUTH) &&
            c->require_tls && !c->tls_active) {
            client_tls_required(c, cmd->type);
            return;
        }
        rc = client_prepare(c);
        if (rc > 0)
            continue;
        cmd = &c->q[c->sent];
        if (rc == 0)
            rc = cmd->type == SMTPX_CMD_BODY ? client_start_body(c, cmd)
                                             : client_line_out(c, cmd);
        if (rc < 0) {
            client_end(c, SMTPX_ERR_NOMEM, LOCAL_ERROR);
            return;
        }
    }
}

/* ---- the end ------------------------------------------------------------- */

/*
 * client_end - the session is over: every command still waiting gets the
 * local reply `local`, then on_close(status).
 */
static void client_end(smtpx_client *c, int status, int local)
{
    int written;

    if (c->ended)
        return;
    c->ended = 1;
    c->status = status;
    c->in_body = 0;
    c->want_tls = 0;
    c->close_deadline = c->now + CLIENT_LINGER_MS;
    written = c->body_ended && c->out_dropped >= c->body_end_at;
    client_unborrow(c);
    while (c->head < c->len) {
        client_cmd *cmd = &c->q[c->head];
        smtpx_reply r = client_local_reply(
            cmd->flags & CMD_SENT || local == LOCAL_ERROR || local == LOCAL_TLS
                ? local
                : LOCAL_CLOSED);
        if (cmd->type == SMTPX_CMD_BODY && (cmd->flags & CMD_SENT) && written)
            r = client_local_reply(LOCAL_LOST_AFTER_BODY);
        cmd->replies = 1;
        client_answer(c, &r, written && cmd->type == SMTPX_CMD_BODY);
    }
    client_compact(c);
    client_auth_forget(c);
    smtpx__line_reset(&c->in, c->mem);
    smtpx__rparse_free(&c->rp, c->mem);
    if (c->cbs.on_close != NULL) {
        c->in_cb++;
        c->cbs.on_close(c, status, c->user_data);
        c->in_cb--;
    }
}

/* ---- replies ------------------------------------------------------------- */

/*
 * The reply handlers, one per kind of command.  Each gets the command at
 * the head of the queue and its reply, answers it (client_answer) and
 * does what the reply means for the session.  They return 0 (the session
 * goes on; a 421 then ends it), CLIENT_ENDED (the handler ended the
 * session or needs nothing more), or a negative SMTPX_ERR_* code.
 */
#define CLIENT_ENDED 1

typedef int client_reply_fn(smtpx_client *c, client_cmd *cmd,
                            const smtpx_reply *r, size_t left);

/* client_on_greeting - RFC 5321 3.1: a 220, or no service */
static int client_on_greeting(smtpx_client *c, client_cmd *cmd,
                              const smtpx_reply *r, size_t left)
{
    smtpx_reply rr;

    (void)cmd;
    (void)left;
    client_answer(c, r, 0);
    if (r->code == 220)
        return 0;
    /* What waits is answered locally and, after a 554, the client says
     * QUIT as it should. */
    c->refused = 1;
    if (r->code == 421) {
        client_end(c, SMTPX_ERR_CLOSED, LOCAL_CLOSED);
        return CLIENT_ENDED;
    }
    while (c->head < c->len) {
        rr = client_local_reply(LOCAL_CLOSED);
        client_answer(c, &rr, 0);
    }
    if (client_push(c, SMTPX_CMD_QUIT, CMD_INTERNAL | CMD_GROUP_END, NULL, NULL,
                    0, client_fmt(c, "QUIT\r\n")) < 0)
        return SMTPX_ERR_NOMEM;
    return CLIENT_ENDED;
}

/* client_on_helo - RFC 5321 4.1.4: a new greeting; HELO means no
 * extensions */
static int client_on_helo(smtpx_client *c, client_cmd *cmd,
                          const smtpx_reply *r, size_t left)
{
    (void)cmd;
    (void)left;
    smtpx__ext_free(&c->ext, c->mem);
    c->esmtp = 0;
    client_answer(c, r, 0);
    return 0;
}

/* client_on_ehlo - EHLO or LHLO: the capabilities, or the HELO fallback */
static int client_on_ehlo(smtpx_client *c, client_cmd *cmd,
                          const smtpx_reply *r, size_t left)
{
    (void)left;
    if ((r->code == 500 || r->code == 502) && !c->lmtp &&
        !(cmd->flags & CMD_FALLBACK)) {
        /* RFC 5321 4.1.4 / 3.2: an old server; say HELO instead and
         * report its reply for this command. */
        const char *name = cmd->line + 5;
        char *line = client_fmt(c, "HELO %s", name);
        if (line == NULL)
            return SMTPX_ERR_NOMEM;
        smtpx__free(c->mem, cmd->line);
        cmd->line = line;
        cmd->flags = (cmd->flags & ~CMD_SENT) | CMD_FALLBACK;
        c->sent = c->head;
        c->group_out--; /* it is written again, and counted again */
        client_log(c, SMTPX_LOG_INFO, "EHLO refused (%d): trying HELO",
                   r->code);
        return 0;
    }
    smtpx__ext_free(&c->ext, c->mem);
    c->esmtp = 0;
    if (r->code >= 200 && r->code < 300 && !(cmd->flags & CMD_FALLBACK)) {
        if (smtpx__ext_parse(&c->ext, c->mem, r->text) < 0)
            return SMTPX_ERR_NOMEM;
        c->esmtp = 1;
    }
    client_answer(c, r, 0);
    return 0;
}

/* client_on_starttls - RFC 3207: on 220, TLS; nothing may follow it */
static int client_on_starttls(smtpx_client *c, client_cmd *cmd,
                              const smtpx_reply *r, size_t left)
{
    (void)cmd;
    client_answer(c, r, 0);
    if (r->code != 220)
        return 0;
    if (left > 0) {
        /* RFC 3207 4.2 / response injection: nothing may follow the 220
         * in clear text. */
        client_log(c, SMTPX_LOG_ERROR, "%zu octets after the 220 to STARTTLS",
                   left);
        client_end(c, SMTPX_ERR_PROTO, LOCAL_ERROR);
        return CLIENT_ENDED;
    }
    c->want_tls = 1;
    return 0;
}

/* client_on_data - 354, or the transaction fails without its content */
static int client_on_data(smtpx_client *c, client_cmd *cmd,
                          const smtpx_reply *r, size_t left)
{
    smtpx_txn *t = cmd->txn;
    smtpx_reply rr;

    (void)left;
    client_answer(c, r, 0);
    if (t == NULL || c->head >= c->len || c->q[c->head].txn != t)
        return 0;
    if (r->code == 354) {
        if (t->accepted > 0 && !t->mail_failed)
            return 0;
        /* No recipient accepted: no content, only the final dot (the
         * server must refuse it), then reset. */
        t->body_empty = 1;
        rr = client_local_reply(LOCAL_NOT_SENT);
        txn_settle(t, SMTPX_STAGE_DATA, SMTPX_RCPT_FAILED, &rr);
        if (client_insert_unsent(c, SMTPX_CMD_RSET, CMD_INTERNAL,
                                 client_fmt(c, "RSET\r\n")) < 0)
            return SMTPX_ERR_NOMEM;
        /* The RSET goes after the BODY. */
        {
            client_cmd tmp = c->q[c->sent];
            c->q[c->sent] = c->q[c->sent + 1];
            c->q[c->sent + 1] = tmp;
        }
        return 0;
    }
    /* DATA refused: the content is not sent; its BODY gets a local reply,
     * and the transaction is reset. */
    rr = client_local_reply(LOCAL_NOT_SENT);
    client_answer(c, &rr, 0);
    if (client_insert_unsent(c, SMTPX_CMD_RSET, CMD_INTERNAL,
                             client_fmt(c, "RSET\r\n")) < 0)
        return SMTPX_ERR_NOMEM;
    return 0;
}

/* client_on_quit - the end */
static int client_on_quit(smtpx_client *c, client_cmd *cmd,
                          const smtpx_reply *r, size_t left)
{
    (void)cmd;
    (void)left;
    client_answer(c, r, 0);
    client_end(c, c->refused ? SMTPX_ERR_CLOSED : 0, LOCAL_CLOSED);
    return CLIENT_ENDED;
}

/* client_on_auth - a challenge is answered in place; the final reply
 * answers the command (RFC 4954 4) */
static int client_on_auth(smtpx_client *c, client_cmd *cmd,
                          const smtpx_reply *r, size_t left)
{
    (void)left;
    if (r->code == 334 && c->sasl != NULL)
        return client_auth_challenge(c, cmd, r);
    if (r->code == 235 && c->sasl != NULL && !smtpx__sasl_cli_done(c->sasl)) {
        /* SCRAM: success without the server's proof is no success (RFC
         * 5802 3). */
        client_log(c, SMTPX_LOG_ERROR,
                   "AUTH %s: 235 without the server's proof; closing",
                   smtpx_sasl_name(c->sasl_mech));
        client_end(c, SMTPX_ERR_AUTH, LOCAL_AUTH_PROOF);
        return CLIENT_ENDED;
    }
    if (r->code == 235)
        c->auth_mech = c->sasl_mech;
    client_auth_forget(c);
    client_answer(c, r, 0);
    return 0;
}

/* client_on_other - MAIL, RCPT, BODY, RSET, NOOP: the transaction takes
 * care of what the reply means (client_txn_reply) */
static int client_on_other(smtpx_client *c, client_cmd *cmd,
                           const smtpx_reply *r, size_t left)
{
    (void)cmd;
    (void)left;
    client_answer(c, r, 0);
    return 0;
}

static client_reply_fn *const client_reply_handlers[SMTPX_CMD_COUNT] = {
    [SMTPX_CMD_GREETING] = client_on_greeting,
    [SMTPX_CMD_HELO] = client_on_helo,
    [SMTPX_CMD_EHLO] = client_on_ehlo,
    [SMTPX_CMD_LHLO] = client_on_ehlo,
    [SMTPX_CMD_STARTTLS] = client_on_starttls,
    [SMTPX_CMD_DATA] = client_on_data,
    [SMTPX_CMD_QUIT] = client_on_quit,
    [SMTPX_CMD_AUTH] = client_on_auth,
};

/* client_reply - a complete reply from the server */
static int client_reply(smtpx_client *c, const smtpx_reply *r, size_t left)
{
    client_reply_fn *fn;
    client_cmd *cmd;
    int rc;

    if (c->head == c->sent) {
        /* A 421 may come at any time (RFC 5321 3.8); anything else that
         * nobody waits for is a protocol error. */
        if (r->code == 421) {
            client_log(c, SMTPX_LOG_NOTICE, "server closed: 421 %s", r->text);
            client_end(c, SMTPX_ERR_CLOSED, LOCAL_CLOSED);
            return 0;
        }
        client_log(c, SMTPX_LOG_ERROR, "unexpected reply %d", r->code);
        client_end(c, SMTPX_ERR_PROTO, LOCAL_ERROR);
        return 0;
    }
    cmd = &c->q[c->head];
    fn = client_reply_handlers[cmd->type];
    rc = (fn != NULL ? fn : client_on_other)(c, cmd, r, left);
    if (rc < 0)
        return rc;
    if (rc == 0 && r->code == 421 && !c->ended) {
        client_log(c, SMTPX_LOG_NOTICE, "server closed: 421 %s", r->text);
        client_end(c, SMTPX_ERR_CLOSED, LOCAL_CLOSED);
    }
    return c->fatal;
}

/* client_line - one line from the server (without its line end) */
static int client_line(smtpx_client *c, const char *p, size_t len, size_t left)
{
    smtpx_reply r;
    int rc;

    if (len > 0 && p[len - 1] == '\r')
        len--;
    client_trace(c, SMTPX_TRACE_IN, p, len);
    rc = smtpx__rparse_line(&c->rp, c->mem, p, len, &r);
    if (rc == SMTPX_ERR_PROTO) {
        char shown[SMTPX__ESCAPE_SIZE(80)];
        /* The line is the peer's and not NUL-terminated. */
        client_log(c, SMTPX_LOG_ERROR, "malformed reply line: %s",
                   smtpx__escape(shown, sizeof(shown), p, len));
        client_end(c, SMTPX_ERR_PROTO, LOCAL_ERROR);
        return 0;
    }
    if (rc < 0)
        return rc;
    if (rc == 1) {
        rc = client_reply(c, &r, left);
        /* What this reply lets out goes out now, before the next reply
         * in the same input is read (it may answer it). */
        if (rc == 0 && !c->ended && !c->in_cb)
            client_flush(c);
        return rc;
    }
    return 0;
}

/* client_written - commands whose bytes are all out start their clocks */
static void client_written(smtpx_client *c, uint64_t now_ms)
{
    size_t i;

    for (i = c->head; i < c->sent; i++) {
        client_cmd *cmd = &c->q[i];
        if (cmd->deadline != 0 || cmd->type == CLIENT_CMD_GONE ||
            (cmd->type == SMTPX_CMD_BODY && c->in_body && i == c->sent - 1))
            continue;
        if (cmd->out_end > c->out_dropped)
            break;
        cmd->deadline = now_ms + client_timeout(c, cmd->type);
    }
}

/* ---- lifecycle ----------------------------------------------------------- */

int smtpx_client_new(smtpx_client **out, const smtpx_config *cfg,
                     const smtpx_client_callbacks *cbs, size_t cbs_size,
                     void *user_data)
{
    smtpx_client *c;

    if (out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (cfg == NULL ||
        (cfg->role != SMTPX_ROLE_CLIENT && cfg->role != SMTPX_ROLE_LMTP_CLIENT))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (!cfg->frozen)
        return SMTPX_ERR_INVALID_STATE;
    c = smtpx__calloc(&cfg->mem, 1, sizeof(*c));
    if (c == NULL)
        return SMTPX_ERR_NOMEM;
    c->cfg = cfg;
    c->mem = &cfg->mem;
    if (cbs != NULL)
        memcpy(&c->cbs, cbs,
               cbs_size < sizeof(c->cbs) ? cbs_size : sizeof(c->cbs));
    c->user_data = user_data;
    c->lmtp = cfg->role == SMTPX_ROLE_LMTP_CLIENT;
    c->require_tls = cfg->policies[SMTPX_POLICY_REQUIRE_TLS] != 0;
    *out = c;
    return 0;
}

void smtpx_client_free(smtpx_client *c)
{
    size_t i;

    if (c == NULL)
        return;
    if (!c->ended)
        client_end(c, SMTPX_ERR_CLOSED, LOCAL_CLOSED);
    for (i = 0; i < c->len; i++)
        smtpx__free(c->mem, c->q[i].line);
    smtpx__free(c->mem, c->q);
    client_drop_output(c);
    smtpx__buf_free(&c->chunk, c->mem);
    smtpx__line_reset(&c->in, c->mem);
    smtpx__rparse_free(&c->rp, c->mem);
    smtpx__ext_free(&c->ext, c->mem);
    client_auth_forget(c);
    smtpx__free(c->mem, c->tls_mem);
    smtpx__free(c->mem, c);
}

int smtpx_client_start(smtpx_client *c, uint64_t now_ms)
{
    int rc;

    if (c == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (c->started)
        return SMTPX_ERR_INVALID_STATE;
    c->now = now_ms;
    /* The greeting is answered first, before anything queued already. */
    rc = client_push(c, SMTPX_CMD_GREETING, CMD_SENT | CMD_GROUP_END, NULL,
                     NULL, 0, NULL);
    if (rc < 0)
        return rc;
    if (c->len > 1) {
        client_cmd g = c->q[c->len - 1];
        memmove(&c->q[1], &c->q[0], (c->len - 1) * sizeof(g));
        c->q[0] = g;
    }
    c->q[0].deadline = now_ms + client_timeout(c, SMTPX_CMD_GREETING);
    c->sent = 1;
    c->group_out = 1; /* nothing goes before the greeting */
    c->started = 1;
    c->session_deadline = c->cfg->timeouts[SMTPX_TIMEOUT_SESSION]
                              ? now_ms + c->cfg->timeouts[SMTPX_TIMEOUT_SESSION]
                              : 0;
    return 0;
}

smtpx_ssize smtpx_client_recv(smtpx_client *c, const uint8_t *in, size_t len,
                              uint64_t now_ms)
{
    size_t pos = 0;
    int rc = 0;

    if (c == NULL || (in == NULL && len > 0))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (c->fatal)
        return c->fatal;
    if (!c->started || c->want_tls || c->in_cb)
        return SMTPX_ERR_INVALID_STATE;
    c->now = now_ms;
    if (len > 0)
        c->got_input = 1;
    while (pos < len && !c->ended && rc == 0) {
        size_t max = (size_t)c->cfg->limits[SMTPX_LIMIT_LINE];
        const uint8_t *line;
        size_t used, n;

        rc = smtpx__line_next(&c->in, c->mem, in + pos, len - pos, max, &used,
                              &line, &n);
        pos += used;
        if (rc == SMTPX__LINE_OVER || rc == SMTPX__LINE_LONG) {
            client_log(c, SMTPX_LOG_ERROR, "reply line over %zu octets", max);
            client_end(c, SMTPX_ERR_PROTO, LOCAL_ERROR);
            rc = 0;
            break;
        }
        if (rc != SMTPX__LINE_OK)
            break; /* MORE: all taken; or SMTPX_ERR_NOMEM */
        rc = client_line(c, (const char *)line, n, len - pos);
        smtpx__line_release(&c->in, c->mem);
        if (c->want_tls && pos < len && !c->ended) {
            client_end(c, SMTPX_ERR_PROTO, LOCAL_ERROR);
            break;
        }
    }
    if (rc < 0) {
        c->fatal = rc;
        client_end(c, rc, LOCAL_ERROR);
        return rc;
    }
    if (c->rp.code == 0)
        smtpx__rparse_free(&c->rp, c->mem); /* no reply in progress */
    client_compact(c);
    client_flush(c);
    return c->fatal ? c->fatal : (smtpx_ssize)len;
}

size_t smtpx_client_out_peek(smtpx_client *c, const uint8_t **data)
{
    size_t n = smtpx__buf_used(&c->out);

    if (n == 0 && c->borrow_len > 0) {
        /* A chunk from the application's memory, after the output
         * before it. */
        *data = c->borrow;
        return c->borrow_len;
    }
    *data = n ? smtpx__buf_head(&c->out) : NULL;
    return n;
}

void smtpx_client_out_drop(smtpx_client *c, size_t n, uint64_t now_ms)
{
    size_t used = smtpx__buf_used(&c->out);

    if (used == 0 && c->borrow_len > 0) {
        if (n > c->borrow_len)
            n = c->borrow_len;
        c->borrow += n;
        c->borrow_len -= n;
        if (c->borrow_len == 0) {
            smtpx__buf tmp = c->out; /* empty */
            c->borrow = NULL;
            c->out = c->after;
            c->after = tmp;
        }
    } else {
        if (n > used)
            n = used;
        smtpx__buf_drop(&c->out, c->mem, n);
    }
    c->out_dropped += n;
    c->now = now_ms;
    client_written(c, now_ms);
    if (c->in_body && n > 0) {
        /* RFC 5321 4.5.3.2.5: the data block deadline moves with each
         * write that makes progress. */
        c->q[c->sent - 1].deadline =
            now_ms + c->cfg->timeouts[SMTPX_TIMEOUT_DATA_BLOCK];
    }
    if (!c->in_cb && !c->ended)
        client_flush(c);
}

int smtpx_client_want_read(const smtpx_client *c)
{
    return c->started && !c->ended && !c->want_tls;
}

int smtpx_client_want_write(const smtpx_client *c)
{
    return client_out_used(c) > 0;
}

int smtpx_client_want_tls(const smtpx_client *c)
{
    return c->want_tls && !c->ended;
}

int smtpx_client_done(const smtpx_client *c)
{
    return c->ended && client_out_used(c) == 0;
}

int smtpx_client_tls_started(smtpx_client *c, const smtpx_tls_info *info,
                             uint64_t now_ms)
{
    if (c == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    /* After STARTTLS, or for implicit TLS (RFC 8314) before the server
     * has said anything. */
    if (c->tls_active || c->ended || c->in_cb ||
        (c->started && !c->want_tls && c->got_input))
        return SMTPX_ERR_INVALID_STATE;
    memset(&c->tls, 0, sizeof(c->tls));
    if (info != NULL) {
        const char *v = info->version ? info->version : "";
        const char *ci = info->cipher ? info->cipher : "";
        const char *p = info->peer;
        size_t lv = strlen(v) + 1, lc = strlen(ci) + 1,
               lp = p ? strlen(p) + 1 : 0;
        char *m = smtpx__malloc(c->mem, lv + lc + lp);

        if (m == NULL)
            return SMTPX_ERR_NOMEM;
        memcpy(m, v, lv);
        memcpy(m + lv, ci, lc);
        if (p != NULL)
            memcpy(m + lv + lc, p, lp);
        smtpx__free(c->mem, c->tls_mem);
        c->tls_mem = m;
        c->tls.version = info->version ? m : NULL;
        c->tls.cipher = info->cipher ? m + lv : NULL;
        c->tls.peer = p ? m + lv + lc : NULL;
        c->tls.bits = info->bits;
        c->tls.verified = info->verified;
        c->tls.resumed = info->resumed;
    }
    c->now = now_ms;
    c->tls_active = 1;
    c->auth_mech = 0;
    c->want_tls = 0;
    /* RFC 3207 4.2: forget what the server said before TLS. */
    smtpx__ext_free(&c->ext, c->mem);
    c->esmtp = 0;
    if (c->started)
        client_flush(c);
    return 0;
}

uint64_t smtpx_client_expiry(const smtpx_client *c)
{
    uint64_t e = 0;

    if (!c->started)
        return 0;
    if (c->ended)
        return client_out_used(c) ? c->close_deadline : 0;
    /* A command not yet written cannot be late with its reply; the
     * session cap still holds. */
    if (c->head < c->sent)
        e = c->q[c->head].deadline;
    if (c->in_body && (e == 0 || c->q[c->sent - 1].deadline < e))
        e = c->q[c->sent - 1].deadline;
    if (c->session_deadline != 0 && (e == 0 || c->session_deadline < e))
        e = c->session_deadline;
    return e;
}

int smtpx_client_expire(smtpx_client *c, uint64_t now_ms)
{
    uint64_t e = smtpx_client_expiry(c);

    if (e == 0 || now_ms < e || c->in_cb)
        return 0;
    c->now = now_ms;
    if (c->ended) {
        client_drop_output(c);
        return 1;
    }
    client_log(c, SMTPX_LOG_NOTICE, "timed out waiting for %s",
               c->head < c->sent ? smtpx_cmd_name(c->q[c->head].type)
                                 : "the session");
    client_drop_output(c);
    client_end(c, SMTPX_ERR_TIMEOUT, LOCAL_TIMEOUT);
    return 1;
}

void smtpx_client_eof(smtpx_client *c)
{
    int status = SMTPX_ERR_EOF;

    if (c == NULL || c->ended || c->in_cb)
        return;
    if (c->head < c->sent && (c->q[c->head].type == SMTPX_CMD_EHLO) &&
        !(c->q[c->head].flags & CMD_FALLBACK)) {
        /* Some old servers hang up on EHLO: say so, so the application
         * can try again with HELO. */
        status = SMTPX_ERR_EHLO_CLOSED;
        client_log(c, SMTPX_LOG_NOTICE,
                   "the server closed the connection after EHLO");
    }
    c->started = 1;
    client_end(c, status, LOCAL_LOST);
}

void smtpx_client_abort(smtpx_client *c, int err)
{
    if (c == NULL || c->in_cb)
        return;
    client_drop_output(c);
    if (c->ended)
        return;
    c->started = 1;
    client_end(c, err < 0 ? err : SMTPX_ERR_IO, LOCAL_LOST);
}

/* ---- commands ------------------------------------------------------------ */

static int client_queue(smtpx_client *c, int type, unsigned flags, void *cookie,
                        char *line)
{
    int rc;

    if (c->refused) {
        smtpx__free(c->mem, line);
        return SMTPX_ERR_INVALID_STATE;
    }
    if (line == NULL)
        return SMTPX_ERR_NOMEM;
    rc = client_push(c, type, flags, cookie, NULL, 0, line);
    if (rc < 0) {
        smtpx__free(c->mem, line);
        return rc;
    }
    if (c->started && !c->in_cb)
        client_flush(c);
    return 0;
}

int smtpx_client_ehlo(smtpx_client *c, const char *name, void *cookie)
{
    if (c == NULL || !smtpx__cmd_name_ok(name))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (c->ended)
        return SMTPX_ERR_INVALID_STATE;
    return client_queue(
        c, c->lmtp ? SMTPX_CMD_LHLO : SMTPX_CMD_EHLO, CMD_GROUP_END, cookie,
        client_fmt(c, "%s %s\r\n", c->lmtp ? "LHLO" : "EHLO", name));
}

int smtpx_client_helo(smtpx_client *c, const char *name, void *cookie)
{
    if (c == NULL || !smtpx__cmd_name_ok(name))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (c->ended)
        return SMTPX_ERR_INVALID_STATE;
    if (c->lmtp)
        return SMTPX_ERR_NOT_SUPPORTED; /* RFC 2033 4.1: LHLO only */
    return client_queue(c, SMTPX_CMD_HELO, CMD_GROUP_END, cookie,
                        client_fmt(c, "HELO %s\r\n", name));
}

int smtpx_client_starttls(smtpx_client *c, void *cookie)
{
    if (c == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (c->ended || c->tls_active)
        return SMTPX_ERR_INVALID_STATE;
    if (!(c->cfg->extensions & SMTPX_EXT_STARTTLS) ||
        (c->esmtp && !(c->ext.mask & SMTPX_EXT_STARTTLS)))
        return SMTPX_ERR_NOT_SUPPORTED;
    return client_queue(c, SMTPX_CMD_STARTTLS, CMD_GROUP_END, cookie,
                        client_fmt(c, "STARTTLS\r\n"));
}

/* client_simple - queue a command without arguments */
static int client_simple(smtpx_client *c, int type, unsigned flags,
                         void *cookie, const char *line)
{
    if (c == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (c->ended)
        return SMTPX_ERR_INVALID_STATE;
    return client_queue(c, type, flags, cookie, client_fmt(c, "%s", line));
}

int smtpx_client_rset(smtpx_client *c, void *cookie)
{
    return client_simple(c, SMTPX_CMD_RSET, 0, cookie, "RSET\r\n");
}

int smtpx_client_noop(smtpx_client *c, void *cookie)
{
    return client_simple(c, SMTPX_CMD_NOOP, CMD_GROUP_END, cookie, "NOOP\r\n");
}

int smtpx_client_quit(smtpx_client *c, void *cookie)
{
    return client_simple(c, SMTPX_CMD_QUIT, CMD_GROUP_END, cookie, "QUIT\r\n");
}

int smtpx_client_esmtp(const smtpx_client *c)
{
    return c->esmtp;
}

const char *smtpx_client_ext(const smtpx_client *c, const char *keyword)
{
    if (!c->esmtp || keyword == NULL)
        return NULL;
    return smtpx__ext_get(&c->ext, keyword);
}

unsigned smtpx_client_ext_mask(const smtpx_client *c)
{
    return c->esmtp ? c->ext.mask : 0;
}

/* client_name_text_ok - a user name, authzid or token: no control
 * character (a token's ^A would forge the XOAUTH2 framing) */
static int client_name_text_ok(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

int smtpx_client_auth(smtpx_client *c, const smtpx_auth_creds *creds,
                      void *cookie)
{
    smtpx_auth_creds cr;
    int rc;

    if (c == NULL || creds == NULL || creds->size == 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    memset(&cr, 0, sizeof(cr));
    memcpy(&cr, creds, creds->size < sizeof(cr) ? creds->size : sizeof(cr));
    if (cr.user == NULL || cr.user[0] == '\0' ||
        strlen(cr.user) > SMTPX__SASL_NAME_MAX ||
        !client_name_text_ok(cr.user) ||
        (cr.authzid != NULL && (strlen(cr.authzid) > SMTPX__SASL_NAME_MAX ||
                                !client_name_text_ok(cr.authzid))) ||
        (cr.password == NULL && cr.token == NULL) ||
        (cr.token != NULL && !client_name_text_ok(cr.token)) ||
        (cr.mechs & ~SMTPX_SASL_ALL) != 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (c->ended || c->refused || c->auth_queued || c->auth_mech != 0)
        return SMTPX_ERR_INVALID_STATE;
    c->auth_mechs = cr.mechs != 0 ? cr.mechs : c->cfg->sasl;
    c->auth_user = smtpx__strdup(c->mem, cr.user);
    c->auth_authzid = smtpx__strdup(c->mem, cr.authzid);
    c->auth_password = smtpx__strdup(c->mem, cr.password);
    c->auth_token = smtpx__strdup(c->mem, cr.token);
    if (c->auth_user == NULL || (cr.authzid && c->auth_authzid == NULL) ||
        (cr.password && c->auth_password == NULL) ||
        (cr.token && c->auth_token == NULL)) {
        client_auth_forget(c);
        return SMTPX_ERR_NOMEM;
    }
    c->auth_queued = 1;
    rc = client_queue(c, SMTPX_CMD_AUTH, CMD_GROUP_END, cookie,
                      client_fmt(c, "AUTH\r\n"));
    if (rc < 0)
        client_auth_forget(c);
    return rc;
}

unsigned smtpx_client_auth_mech(const smtpx_client *c)
{
    return c->auth_mech;
}

const smtpx_tls_info *smtpx_client_tls(const smtpx_client *c)
{
    return c->tls_active ? &c->tls : NULL;
}

int smtpx_client_set_prefer_data(smtpx_client *c, int on)
{
    if (c == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    c->prefer_data = on ? 1 : 0;
    return 0;
}

int smtpx_client_set_require_tls(smtpx_client *c, int on)
{
    if (c == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    c->require_tls = on ? 1 : 0;
    return 0;
}

void *smtpx_client_get_user_data(const smtpx_client *c)
{
    return c->user_data;
}

void smtpx_client_set_user_data(smtpx_client *c, void *user_data)
{
    c->user_data = user_data;
}

/* ---- transactions -------------------------------------------------------- */

/* txn_addr_ok - a path the server can parse; sets *utf8 for UTF-8 */
static int txn_addr_ok(const char *addr, int null_ok, int *utf8)
{
    char buf[520];
    size_t n = strlen(addr);
    smtpx__path p;

    if (n > 512)
        return 0;
    buf[0] = '<';
    memcpy(buf + 1, addr, n);
    buf[n + 1] = '>';
    if (smtpx__addr_parse_path(buf, n + 2,
                               (null_ok ? SMTPX__ADDR_NULL_OK : 0u) |
                                   SMTPX__ADDR_POSTMASTER | SMTPX__ADDR_UTF8,
                               512, &p) != 0 ||
        p.consumed != n + 2 || p.mbox_off != 1)
        return 0;
    if (p.non_ascii)
        *utf8 = 1;
    return 1;
}

/* txn_bad_addr - say in the config's log which argument was wrong and,
 * for the common mistakes, what was meant */
static void txn_bad_addr(const smtpx_config *cfg, const char *call,
                         const char *what, const char *addr)
{
    char shown[SMTPX__ESCAPE_SIZE(100)];
    const char *lt = addr != NULL ? strchr(addr, '<') : NULL;
    const char *gt = lt != NULL ? strchr(lt, '>') : NULL;

    if (addr == NULL) {
        smtpx__conf_log(cfg, SMTPX_LOG_ERROR, "%s: %s is NULL", call, what);
        return;
    }
    smtpx__escape(shown, sizeof(shown), addr, strlen(addr));
    if (lt != NULL && gt != NULL && gt > lt + 1 && gt - lt - 1 < 256)
        smtpx__conf_log(cfg, SMTPX_LOG_ERROR,
                        "%s: %s \"%s\" is not an address: give the address "
                        "alone (%.*s), without a display name or angle "
                        "brackets",
                        call, what, shown, (int)(gt - lt - 1), lt + 1);
    else
        smtpx__conf_log(cfg, SMTPX_LOG_ERROR,
                        "%s: %s \"%s\" is not an address (RFC 5321 4.1.2: "
                        "local-part@domain)",
                        call, what, shown);
}

/* txn_params_ok - ESMTP parameters that cannot break the command line */
static int txn_params_ok(const char *params)
{
    size_t i;

    for (i = 0; params[i] != '\0'; i++)
        if ((unsigned char)params[i] < ' ' || params[i] == 0x7f)
            return 0;
    return i < 1000;
}

int smtpx_txn_new(smtpx_txn **out, const smtpx_config *cfg, const char *from)
{
    smtpx_txn *t;
    int utf8 = 0;

    if (out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (cfg == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (from == NULL || !txn_addr_ok(from, 1, &utf8)) {
        txn_bad_addr(cfg, "smtpx_txn_new", "the sender", from);
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    t = smtpx__calloc(&cfg->mem, 1, sizeof(*t));
    if (t == NULL)
        return SMTPX_ERR_NOMEM;
    t->mem = cfg->mem;
    t->cfg = cfg;
    t->smtputf8 = utf8;
    t->utf8_sender = utf8;
    t->from = smtpx__strdup(&t->mem, from);
    if (t->from == NULL) {
        smtpx__free(&cfg->mem, t);
        return SMTPX_ERR_NOMEM;
    }
    *out = t;
    return 0;
}

void smtpx_txn_free(smtpx_txn *t)
{
    smtpx_mem mem;
    size_t i;

    if (t == NULL)
        return;
    mem = t->mem;
    for (i = 0; i < t->n; i++) {
        smtpx__free(&mem, t->r[i].addr);
        smtpx__free(&mem, t->r[i].params);
        smtpx__free(&mem, t->r[i].text);
        smtpx__free(&mem, t->r[i].orcpt);
    }
    smtpx__free(&mem, t->envid);
    smtpx__free(&mem, t->r);
    smtpx__free(&mem, t->from);
    smtpx__free(&mem, t->mail_params);
    smtpx__free(&mem, t);
}

int smtpx_txn_add_rcpt(smtpx_txn *t, const char *to, const char *params)
{
    txn_rcpt *r;
    int utf8 = 0;

    if (t == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (to == NULL || !txn_addr_ok(to, 0, &utf8)) {
        txn_bad_addr(t->cfg, "smtpx_txn_add_rcpt", "the recipient", to);
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    if (params != NULL && !txn_params_ok(params)) {
        smtpx__conf_log(t->cfg, SMTPX_LOG_ERROR,
                        "smtpx_txn_add_rcpt: params hold a control character "
                        "or are over 999 octets");
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    if (t->queued) {
        smtpx__conf_log(t->cfg, SMTPX_LOG_ERROR,
                        "smtpx_txn_add_rcpt: the transaction was already "
                        "sent");
        return SMTPX_ERR_INVALID_STATE;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4;
        r = smtpx__realloc(&t->mem, t->r, cap * sizeof(*r));
        if (r == NULL)
            return SMTPX_ERR_NOMEM;
        t->r = r;
        t->cap = cap;
    }
    r = &t->r[t->n];
    memset(r, 0, sizeof(*r));
    r->addr = smtpx__strdup(&t->mem, to);
    r->params = params ? smtpx__strdup(&t->mem, params) : NULL;
    if (r->addr == NULL || (params != NULL && r->params == NULL)) {
        smtpx__free(&t->mem, r->addr);
        smtpx__free(&t->mem, r->params);
        return SMTPX_ERR_NOMEM;
    }
    r->st.addr = r->addr;
    r->utf8 = utf8;
    t->n++;
    if (utf8)
        t->smtputf8 = 1;
    return 0;
}

int smtpx_txn_set_mail_params(smtpx_txn *t, const char *params)
{
    char *copy;

    if (t == NULL || params == NULL || !txn_params_ok(params))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (t->queued)
        return SMTPX_ERR_INVALID_STATE;
    copy = smtpx__strdup(&t->mem, params);
    if (copy == NULL)
        return SMTPX_ERR_NOMEM;
    smtpx__free(&t->mem, t->mail_params);
    t->mail_params = copy;
    return 0;
}

/* txn_breaks - octets added by breaking a line of n octets (see
 * smtpx__stuff_add: CRLF and a space each time the limit is reached; a
 * stuffed dot is not counted here, as RFC 1870 leaves it out) */
static uint64_t txn_breaks(size_t n, size_t max)
{
    if (max < 2 || n <= max)
        return 0;
    return 3 * (uint64_t)((n - max + (max - 1) - 1) / (max - 1));
}

/*
 * txn_wire_size - RFC 1870 4: the octets sent after the 354, with CRLF line
 * ends and broken long lines, not counting stuffed dots or the final dot.
 */
static uint64_t txn_wire_size(const uint8_t *p, size_t len, size_t max)
{
    uint64_t size = len;
    size_t i = 0, line = 0;

    while (i < len) {
        const uint8_t *lf = memchr(p + i, '\n', len - i);
        size_t end = lf ? (size_t)(lf - p) : len;
        const uint8_t *cr = memchr(p + i, '\r', end - i);
        size_t k = cr ? (size_t)(cr - p) : end;

        line += k - i;
        if (k == len)
            break;
        size += txn_breaks(line, max);
        line = 0;
        if (p[k] == '\r' && k + 1 < len && p[k + 1] == '\n') {
            i = k + 2;
            continue;
        }
        size++; /* a bare CR or bare LF becomes CRLF */
        i = k + 1;
    }
    size += txn_breaks(line, max);
    if (len > 0 && p[len - 1] != '\n' && p[len - 1] != '\r')
        size += 2; /* the last line gets its CRLF */
    return size;
}

/* txn_block - bit k of *cr (*lf) tells whether p[k] is a CR (an LF), for
 * the 64 octets at p; returns non-zero if one has its high bit set */
static unsigned txn_block(const uint8_t *p, uint64_t *cr, uint64_t *lf)
{
#if defined(__SSE2__)
    const __m128i vcr = _mm_set1_epi8('\r'), vlf = _mm_set1_epi8('\n');
    __m128i hi = _mm_setzero_si128();
    uint64_t c = 0, l = 0;
    int k;

    for (k = 0; k < 4; k++) {
        __m128i x =
            _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        c |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vcr))
             << (16 * k);
        l |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vlf))
             << (16 * k);
        hi = _mm_or_si128(hi, x);
    }
    *cr = c;
    *lf = l;
    return (unsigned)_mm_movemask_epi8(hi);
#else
    uint64_t c = 0, l = 0;
    unsigned hi = 0;
    int k;

    for (k = 0; k < 64; k++) {
        c |= (uint64_t)(p[k] == '\r') << k;
        l |= (uint64_t)(p[k] == '\n') << k;
        hi |= p[k];
    }
    *cr = c;
    *lf = l;
    return hi & 0x80;
#endif
}

/* txn_lowest - the index of the lowest bit set in m (m != 0) */
static unsigned txn_lowest(uint64_t m)
{
#if defined(__GNUC__)
    return (unsigned)__builtin_ctzll(m);
#else
    unsigned k = 0;
    while (!(m & 1)) {
        m >>= 1;
        k++;
    }
    return k;
#endif
}

/*
 * txn_clean - the body goes as it is: every line ends in CRLF (the last one
 * too), no CR or LF stands alone, and no line is longer than max (when max
 * is 2 or more, as for txn_breaks).  *has8bit tells whether an octet has
 * its high bit set.  One pass, 64 octets at a time: a large clean body
 * costs a fraction of the time it takes to send it.  When it returns 0,
 * *has8bit is not known.
 */
static int txn_clean(const uint8_t *p, size_t len, size_t max, int *has8bit)
{
    uint8_t tail[64];
    uint64_t carry = 0, cr, lf;
    size_t i, start = 0;
    unsigned hi = 0;

    if (len > 0 && p[len - 1] != '\n')
        return 0;
    for (i = 0; i < len; i += 64) {
        const uint8_t *b = p + i;
        if (len - i < 64) {
            memset(tail, 0, sizeof(tail));
            memcpy(tail, b, len - i);
            b = tail;
        }
        hi |= txn_block(b, &cr, &lf);
        /* CRLF pairs only: an LF right after each CR, and nowhere else. */
        if (lf != ((cr << 1) | carry))
            return 0;
        carry = cr >> 63;
        if (max >= 2)
            while (lf != 0) {
                size_t at = i + txn_lowest(lf);
                if (at - 1 - start > max)
                    return 0;
                start = at + 1;
                lf &= lf - 1;
            }
    }
    *has8bit = hi != 0;
    return 1;
}

/* txn_has8bit - an octet with the high bit set (RFC 6152 needs 8BITMIME) */
static int txn_has8bit(const uint8_t *p, size_t len)
{
    const uint64_t high = 0x8080808080808080u;
    size_t i = 0, k;

    /* 64 octets per test, a word at a time: a large body is looked at
     * once, when it is set, at memory speed. */
    for (; i + 64 <= len; i += 64) {
        uint64_t acc = 0, w;
        for (k = 0; k < 64; k += 8) {
            memcpy(&w, p + i + k, sizeof(w));
            acc |= w;
        }
        if (acc & high)
            return 1;
    }
    for (; i < len; i++)
        if (p[i] & 0x80)
            return 1;
    return 0;
}

int smtpx_txn_set_body(smtpx_txn *t, const void *data, size_t len)
{
    size_t max;
    int eight = 0;

    if (t == NULL || (data == NULL && len > 0))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (t->queued)
        return SMTPX_ERR_INVALID_STATE;
    t->body = data != NULL ? data : (const uint8_t *)"";
    t->body_len = len;
    t->read = NULL;
    max = t->cfg->limits[SMTPX_LIMIT_TEXT_LINE] >= 2
              ? (size_t)t->cfg->limits[SMTPX_LIMIT_TEXT_LINE] - 2
              : 0;
    /* Nothing to change on the way (CRLF everywhere, no line to break):
     * then BDAT can send it as it is, without a copy. */
    t->clean = txn_clean(t->body, len, max, &eight);
    if (t->clean) {
        t->size = len;
        t->has8bit = eight;
    } else {
        t->size = txn_wire_size(t->body, len, max);
        t->has8bit = txn_has8bit(t->body, len);
    }
    return 0;
}

int smtpx_txn_set_body_reader(smtpx_txn *t, smtpx_body_read_fn *fn, void *ctx,
                              uint64_t size)
{
    if (t == NULL || fn == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (t->queued)
        return SMTPX_ERR_INVALID_STATE;
    t->read = fn;
    t->read_ctx = ctx;
    t->body = NULL;
    t->size = size;
    t->clean = 0;
    t->has8bit = 0;
    return 0;
}

int smtpx_txn_set_body_type(smtpx_txn *t, int body, int smtputf8)
{
    if (t == NULL || body < SMTPX_BODY_NONE || body > SMTPX_BODY_BINARYMIME)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (t->queued)
        return SMTPX_ERR_INVALID_STATE;
    t->body_type = body;
    t->declared = body != SMTPX_BODY_NONE;
    if (smtputf8) {
        t->smtputf8 = 1;
        t->utf8_msg = 1;
    }
    return 0;
}

int smtpx_txn_set_dsn(smtpx_txn *t, int ret, const char *envid)
{
    char enc[101];
    char *copy = NULL;

    if (t == NULL || ret < SMTPX_DSN_RET_NONE || ret > SMTPX_DSN_RET_HDRS ||
        (envid != NULL && smtpx__cmd_xtext_encode(envid, enc, sizeof(enc)) < 0))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (t->queued)
        return SMTPX_ERR_INVALID_STATE;
    if (envid != NULL && (copy = smtpx__strdup(&t->mem, envid)) == NULL)
        return SMTPX_ERR_NOMEM;
    smtpx__free(&t->mem, t->envid);
    t->envid = copy;
    t->dsn_ret = ret;
    return 0;
}

int smtpx_txn_set_rcpt_dsn(smtpx_txn *t, size_t i, unsigned notify,
                           const char *orcpt)
{
    unsigned all = SMTPX_DSN_NOTIFY_SUCCESS | SMTPX_DSN_NOTIFY_FAILURE |
                   SMTPX_DSN_NOTIFY_DELAY;
    char *copy = NULL;
    size_t k;

    if (t == NULL || i >= t->n ||
        (notify != 0 && notify != SMTPX_DSN_NOTIFY_NEVER &&
         (notify & ~all) != 0))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (orcpt != NULL) {
        if (strlen(orcpt) > 400 || orcpt[0] == '\0')
            return SMTPX_ERR_INVALID_ARGUMENT;
        for (k = 0; orcpt[k] != '\0'; k++)
            if ((unsigned char)orcpt[k] < 0x20 || orcpt[k] == 0x7f)
                return SMTPX_ERR_INVALID_ARGUMENT;
    }
    if (t->queued)
        return SMTPX_ERR_INVALID_STATE;
    if (orcpt != NULL && (copy = smtpx__strdup(&t->mem, orcpt)) == NULL)
        return SMTPX_ERR_NOMEM;
    smtpx__free(&t->mem, t->r[i].orcpt);
    t->r[i].orcpt = copy;
    t->r[i].notify = notify;
    return 0;
}

int smtpx_txn_dsn_dropped(const smtpx_txn *t)
{
    return t != NULL && t->dsn_dropped;
}

int smtpx_txn_set_requiretls(smtpx_txn *t, int on)
{
    if (t == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (t->queued)
        return SMTPX_ERR_INVALID_STATE;
    t->requiretls = on ? 1 : 0;
    return 0;
}

int smtpx_txn_set_priority(smtpx_txn *t, int priority)
{
    if (t == NULL || priority < -9 || priority > 9)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (t->queued)
        return SMTPX_ERR_INVALID_STATE;
    t->priority = priority;
    t->has_priority = 1;
    return 0;
}

int smtpx_txn_set_prefer_data(smtpx_txn *t, int on)
{
    if (t == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (t->queued)
        return SMTPX_ERR_INVALID_STATE;
    t->prefer_data = on ? 1 : 0;
    return 0;
}

int smtpx_txn_framing(const smtpx_txn *t)
{
    return t != NULL ? t->framing : 0;
}

int smtpx_client_send(smtpx_client *c, smtpx_txn *t)
{
    size_t first, i;
    int rc;

    if (c == NULL || t == NULL || t->n == 0 ||
        (t->body == NULL && t->read == NULL))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (t->queued || c->ended || c->refused)
        return SMTPX_ERR_INVALID_STATE;
    if (t->smtputf8 && (!(c->cfg->extensions & SMTPX_EXT_SMTPUTF8) ||
                        (c->esmtp && !(c->ext.mask & SMTPX_EXT_SMTPUTF8))))
        return SMTPX_ERR_NOT_SUPPORTED;
    first = c->len;
    /* MAIL's line is made when it is written: by then the client knows
     * which parameters the server takes. */
    rc = client_push(c, SMTPX_CMD_MAIL, 0, NULL, t, 0,
                     client_fmt(c, "MAIL\r\n"));
    for (i = 0; rc == 0 && i < t->n; i++) {
        char *line = client_fmt(c, "RCPT TO:<%s>%s%s\r\n", t->r[i].addr,
                                t->r[i].params ? " " : "",
                                t->r[i].params ? t->r[i].params : "");
        rc = line ? client_push(c, SMTPX_CMD_RCPT, 0, NULL, t, i, line)
                  : SMTPX_ERR_NOMEM;
        if (rc < 0)
            smtpx__free(c->mem, line);
    }
    if (rc == 0) {
        char *line = client_fmt(c, "DATA\r\n");
        rc = line ? client_push(c, SMTPX_CMD_DATA, CMD_GROUP_END, NULL, t, 0,
                                line)
                  : SMTPX_ERR_NOMEM;
        if (rc < 0)
            smtpx__free(c->mem, line);
    }
    if (rc == 0)
        rc = client_push(c, SMTPX_CMD_BODY, 0, NULL, t, 0, NULL);
    if (rc < 0) {
        for (i = first; i < c->len; i++)
            smtpx__free(c->mem, c->q[i].line);
        c->len = first;
        return rc;
    }
    t->queued = 1;
    if (c->started && !c->in_cb)
        client_flush(c);
    return 0;
}

int smtpx_txn_done(const smtpx_txn *t)
{
    return t->done;
}

size_t smtpx_txn_rcpt_count(const smtpx_txn *t)
{
    return t->n;
}

const smtpx_rcpt_status *smtpx_txn_rcpt(const smtpx_txn *t, size_t i)
{
    return i < t->n ? &t->r[i].st : NULL;
}

void smtpx_txn_counts(const smtpx_txn *t, size_t counts[SMTPX_RCPT_STATE_COUNT])
{
    size_t i;

    memset(counts, 0, SMTPX_RCPT_STATE_COUNT * sizeof(counts[0]));
    for (i = 0; i < t->n; i++)
        if (t->r[i].st.state >= 0 && t->r[i].st.state < SMTPX_RCPT_STATE_COUNT)
            counts[t->r[i].st.state]++;
}

uint64_t smtpx_txn_body_sent(const smtpx_txn *t)
{
    return t->body_sent;
}

uint64_t smtpx_txn_body_size(const smtpx_txn *t)
{
    return t->size;
}

size_t smtpx_txn_long_lines(const smtpx_txn *t)
{
    return t->long_lines;
}

int smtpx_client_status(const smtpx_client *c)
{
    if (c == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    return c->ended ? c->status : SMTPX_ERR_INVALID_STATE;
}

int smtpx_txn_fail(smtpx_txn *t, const smtpx_reply *why)
{
    smtpx_reply closed = client_local_reply(LOCAL_CLOSED);
    int rc = 0;

    if (t == NULL || (why != NULL && (why->code < 400 || why->code > 599)))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (t->done)
        return 0;
    if (t->queued)
        return SMTPX_ERR_INVALID_STATE;
    if (why != NULL)
        rc = txn_settle(t, SMTPX_STAGE_MAIL, txn_fail_state(why->code), why);
    /* Whoever is left (all, or those whose copy failed) gets the local
     * reply, which needs no memory. */
    txn_settle(t, SMTPX_STAGE_MAIL, SMTPX_RCPT_DEFERRED, &closed);
    t->done = 1;
    return rc;
}
