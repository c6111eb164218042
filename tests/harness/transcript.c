/*
 * transcript - the replay harness both sides share (format in
 * transcript.h): reading a transcript into steps, the directives, actions
 * and checks both sides know, feeding the peer's input in pieces (from
 * guard pages in TR_GUARD mode), taking the output, the log the callbacks
 * write, and the comparison of log and output with what the transcript
 * expects.
 *
 * The side files (transcript_server.c, transcript_client.c) hold what
 * differs: the session's callbacks, which log events, and the side's own
 * directives, actions and checks.
 *
 * Invariants: the log is one ordered stream of the session's lines (from
 * on_trace), events, and the log and traced input lines the transcript
 * asked for, so it must be the same whichever way the input is fed;
 * content, which comes in pieces that depend on the feeding, is merged
 * into one event.  The config's random source is deterministic, so that
 * challenges are the same in every mode (and freezing a config does not
 * wait for the system's entropy).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/smtpx.h>

#include "harness/guard.h"
#include "harness/transcript.h"
#include "harness/tutil.h"

#define TR_CLOCK     1000000 /* now_ms at the start */
#define TR_MAXPIECE  97      /* the largest random piece */
#define TR_MAXOUTERR 300     /* output shown in a failure */

enum { STEP_DIRECTIVE, STEP_INPUT, STEP_WHOLE, STEP_ACTION, STEP_CHECK };

typedef struct tr_step {
    int kind;
    int line;   /* in the file */
    char *text; /* the line after its tag; the input's octets */
    size_t len; /* of input */
} tr_step;

struct transcript {
    const tr_side *side;
    tr_step *steps;
    size_t nsteps;
    tu_buf expect;     /* the expected log */
    tu_buf expect_out; /* the expected output */
    size_t input_size;
};

/* ---- reading ------------------------------------------------------------ */

static void add_step(transcript *tx, int kind, int line, const char *text,
                     size_t len)
{
    tr_step *st;

    tx->steps = realloc(tx->steps, (tx->nsteps + 1) * sizeof(*tx->steps));
    if (tx->steps == NULL)
        abort();
    st = &tx->steps[tx->nsteps++];
    st->kind = kind;
    st->line = line;
    st->len = len;
    st->text = malloc(len + 1);
    if (st->text == NULL)
        abort();
    memcpy(st->text, text, len);
    st->text[len] = '\0';
}

/* expect_line - an expected log line "TAG: text" */
static void expect_line(transcript *tx, char tag, const char *text)
{
    tu_printf(&tx->expect, "%c: %s\n", tag, text);
}

/* parse_input - a line of the peer's input into pending: 1 if it is
 * one */
static int parse_input(const tr_side *side, const char *l, tu_buf *pending)
{
    if (l[0] != side->peer)
        return 0;
    if (l[1] == ':' && l[2] == '\0')
        tu_add(pending, "\r\n", 2);
    else if (l[1] == ':' && l[2] == ' ')
        tu_printf(pending, "%s\r\n", l + 3);
    else if (l[1] == '+' && l[2] == ' ')
        tu_unescape_add(pending, l + 3);
    else
        return 0;
    return 1;
}

/* parse_line - one line of the file; the peer's input gathers in pending
 * until an action or a check (which see it fed) */
static int parse_line(transcript *tx, const char *l, int lineno,
                      tu_buf *pending)
{
    const tr_side *side = tx->side;
    char tag = l[0];
    const char *text = l + 3;
    size_t before = pending->len;

    if (tag == '\0' || tag == '#')
        return 0;
    if (tag == '@') {
        add_step(tx, STEP_DIRECTIVE, lineno, l, strlen(l));
        return 0;
    }
    if (l[0] == side->peer && l[1] == '*' && l[2] == ' ') {
        /* One write of the peer's: fed whole in every mode. */
        tu_buf one = {0};
        if (pending->len > 0)
            add_step(tx, STEP_INPUT, lineno, pending->p, pending->len);
        pending->len = 0;
        tu_unescape_add(&one, l + 3);
        add_step(tx, STEP_WHOLE, lineno, one.p ? one.p : "", one.len);
        tx->input_size += one.len;
        free(one.p);
        return 0;
    }
    if (parse_input(side, l, pending)) {
        tx->input_size += pending->len - before;
        return 0;
    }
    if (l[1] != ':' || l[2] != ' ')
        return -1;
    if (tag == 'A' || tag == 'X') {
        if (pending->len > 0)
            add_step(tx, STEP_INPUT, lineno, pending->p, pending->len);
        pending->len = 0;
        add_step(tx, tag == 'A' ? STEP_ACTION : STEP_CHECK, lineno, text,
                 strlen(text));
    } else if (tag == side->self) {
        expect_line(tx, side->self, text);
        tu_unescape_add(&tx->expect_out, text);
        tu_add(&tx->expect_out, "\r\n", 2);
    } else if (tag == 'B') {
        tu_unescape_add(&tx->expect_out, text);
    } else if (tag == side->traced_out) {
        expect_line(tx, side->self, text);
    } else if (tag == 'E' || tag == 'L' || tag == side->traced_in) {
        expect_line(tx, tag, text);
    } else {
        return -1;
    }
    return 0;
}

int transcript_load(transcript **out, const tr_side *side, const char *path,
                    char *err, size_t errsize)
{
    transcript *tx = calloc(1, sizeof(*tx));
    tu_buf pending = {0};
    tu_lines f;
    size_t i;

    *out = NULL;
    if (tx == NULL)
        abort();
    tx->side = side;
    if (tu_load(path, &f) < 0) {
        snprintf(err, errsize, "cannot read %s", path);
        free(tx);
        return -1;
    }
    for (i = 0; i < f.n; i++) {
        if (parse_line(tx, f.v[i], (int)i + 1, &pending) < 0) {
            snprintf(err, errsize, "%s:%zu: cannot parse: %s", path, i + 1,
                     f.v[i]);
            tu_unload(&f);
            free(pending.p);
            transcript_free(tx);
            return -1;
        }
    }
    if (pending.len > 0)
        add_step(tx, STEP_INPUT, (int)f.n, pending.p, pending.len);
    tu_unload(&f);
    free(pending.p);
    *out = tx;
    return 0;
}

void transcript_free(transcript *tx)
{
    size_t i;

    if (tx == NULL)
        return;
    for (i = 0; i < tx->nsteps; i++)
        free(tx->steps[i].text);
    free(tx->steps);
    free(tx->expect.p);
    free(tx->expect_out.p);
    free(tx);
}

size_t transcript_input_size(const transcript *tx)
{
    return tx->input_size;
}

/* ---- the log ------------------------------------------------------------ */

void tr_fail(tr *t, const char *fmt, ...)
{
    va_list ap;

    if (t->failed)
        return;
    t->failed = 1;
    va_start(ap, fmt);
    vsnprintf(t->err, t->errsize, fmt, ap);
    va_end(ap);
}

/* flush_data - log merged content before any other line */
static void flush_data(tr *t)
{
    if (t->data.len == 0)
        return;
    tu_add(&t->log, "E: data \"", 9);
    tu_escape_add(&t->log, t->data.p, t->data.len);
    tu_add(&t->log, "\"\n", 2);
    t->data.len = 0;
}

/* log_line - "TAG: text" into the log (escaped if asked), or, when not
 * compared, taken (every octet is read all the same) */
static void log_line(tr *t, int compared, char tag, const char *text,
                     size_t len, int escaped)
{
    tu_buf *b = compared ? &t->log : &t->taken;

    if (compared)
        flush_data(t);
    tu_printf(b, "%c: ", tag);
    if (escaped)
        tu_escape_add(b, text, len);
    else
        tu_add(b, text, len);
    tu_add(b, "\n", 1);
}

void tr_event(tr *t, const char *fmt, ...)
{
    tu_buf b = {0};
    va_list ap;

    va_start(ap, fmt);
    tu_vprintf(&b, fmt, ap);
    va_end(ap);
    flush_data(t);
    tu_add(&t->log, "E: ", 3);
    tu_escape_add(&t->log, b.p, b.len);
    tu_add(&t->log, "\n", 1);
    free(b.p);
}

void tr_data(tr *t, const uint8_t *p, size_t n)
{
    tu_add(&t->data, p, n);
}

void tr_log(tr *t, int level, const char *msg)
{
    static const char *const names[] = {"",        "",       "",     "error",
                                        "warning", "notice", "info", "debug"};
    tu_buf b = {0};

    if (level < SMTPX_LOG_ERROR || level > SMTPX_LOG_DEBUG) {
        tr_fail(t, "log line at level %d: %s", level, msg);
        return;
    }
    tu_printf(&b, "%s %s", names[level], msg);
    log_line(t, t->log_on, 'L', b.p, b.len, 0);
    free(b.p);
}

void tr_trace(tr *t, int dir, const char *line, size_t len)
{
    if (dir == SMTPX_TRACE_OUT)
        log_line(t, 1, t->side->self, line, len, 1);
    else
        log_line(t, t->trace_on, t->side->traced_in, line, len, 1);
}

int tr_wants_on_log(const tr *t)
{
    return !t->guard;
}

static void config_log(int level, const char *msg, void *ud)
{
    tr_log(ud, level, msg);
}

/* tr_random - a deterministic source, so challenges are the same in every
 * feeding mode */
static int tr_random(uint8_t *buf, size_t len, void *ud)
{
    tr *t = ud;
    size_t i;

    for (i = 0; i < len; i++) {
        t->rnd = t->rnd * 1103515245u + 12345u;
        buf[i] = (uint8_t)(t->rnd >> 16);
    }
    return 0;
}

/* ---- the session -------------------------------------------------------- */

static size_t waiting(tr *t)
{
    const uint8_t *p;

    return t->sess ? t->side->ops->out_peek(t->sess, &p) : 0;
}

static void drain(tr *t)
{
    const uint8_t *p;
    size_t n;

    while (t->sess && (n = t->side->ops->out_peek(t->sess, &p)) > 0) {
        tu_add(&t->out, p, n);
        t->side->ops->out_drop(t->sess, n, t->now);
    }
}

void tr_open(tr *t, int start)
{
    if (t->sess == NULL) {
        if (smtpx_config_freeze(t->cfg) != 0 || t->side->make(t) != 0) {
            tr_fail(t, "cannot make the %s", t->side->name);
            return;
        }
    }
    if (!t->started && (start || t->side->start_at_once)) {
        t->started = 1;
        if (t->side->start(t) != 0)
            tr_fail(t, "start failed");
    }
    if (t->drain)
        drain(t);
}

/* after - output queued before a call (out_before) and gone after it
 * without being taken was dropped; then take what is there */
static void after(tr *t, size_t out_before)
{
    if (waiting(t) < out_before)
        t->dropped = 1;
    if (t->drain)
        drain(t);
}

static void recv1(tr *t, const uint8_t *p, size_t n)
{
    const tr_session_ops *ops = t->side->ops;
    size_t before = waiting(t);
    smtpx_ssize r;

    if (ops->want_tls(t->sess))
        return; /* these octets go to the TLS layer, not the session */
    if (t->guard)
        p = (const uint8_t *)guard_copy(p, n);
    r = ops->recv(t->sess, p, n, t->now);
    if (t->guard)
        guard_seal();
    if (r < 0) {
        if (r != t->last_fatal && smtpx_is_fatal((int)r)) {
            t->last_fatal = (int)r;
            tr_event(t, "fatal %s", smtpx_err_name((int)r));
        } else if (!smtpx_is_fatal((int)r)) {
            tr_fail(t, "recv failed: %s", smtpx_err_name((int)r));
        }
    } else if ((size_t)r != n) {
        tr_fail(t, "recv consumed %zd of %zu", r, n);
    }
    after(t, before);
}

/* feed - the peer's input in the pieces the mode asks for */
static void feed(tr *t, const char *p, size_t n)
{
    const uint8_t *b = (const uint8_t *)p;
    size_t i, k;

    tr_open(t, 1);
    if (t->sess == NULL)
        return;
    switch (t->mode) {
    case TR_BYTES:
        for (i = 0; i < n; i++)
            recv1(t, b + i, 1);
        break;
    case TR_SPLIT:
        if (t->arg > t->fed && t->arg < t->fed + n) {
            k = t->arg - t->fed;
            recv1(t, b, k);
            recv1(t, b + k, n - k);
        } else {
            recv1(t, b, n);
        }
        break;
    case TR_RANDOM:
        for (i = 0; i < n; i += k) {
            t->rng = t->rng * 1103515245u + 12345u;
            k = 1 + (t->rng >> 16) % TR_MAXPIECE;
            if (k > n - i)
                k = n - i;
            recv1(t, b + i, k);
        }
        break;
    default:
        recv1(t, b, n);
    }
    t->fed += n;
}

/* feed_whole - the peer's input in one piece, whatever the mode */
static void feed_whole(tr *t, const char *p, size_t n)
{
    tr_open(t, 1);
    if (t->sess == NULL)
        return;
    recv1(t, (const uint8_t *)p, n);
    t->fed += n;
}

/* ---- directives, actions, checks ---------------------------------------- */

static void config_new(tr *t, smtpx_role role)
{
    smtpx_config_free(t->cfg);
    if (smtpx_config_new(&t->cfg, role, NULL) != 0 ||
        smtpx_config_set_random(t->cfg, tr_random, t) != 0 ||
        (t->side->hostname != NULL &&
         smtpx_config_set_hostname(t->cfg, t->side->hostname) != 0) ||
        (t->guard &&
         smtpx_config_set_log(t->cfg, config_log, SMTPX_LOG_DEBUG, t) != 0))
        abort();
}

static int policy_value(const char *name, const char *v)
{
    char *end;
    long n;

    if (strcmp(name, "BARE_LF") == 0 && strcmp(v, "normalize") == 0)
        return SMTPX_BARE_LF_NORMALIZE;
    if (strcmp(name, "BARE_LF") == 0 && strcmp(v, "reject") == 0)
        return SMTPX_BARE_LF_REJECT;
    n = strtol(v, &end, 10);
    return *end == '\0' && end != v ? (int)n : -1;
}

/* directive - 0, or -1 if bad */
static int directive(tr *t, const char *line)
{
    char a[64], b[64];
    unsigned long long v;
    int id, n;

    if (strcmp(line, "@role lmtp") == 0) {
        config_new(t, t->side->lmtp_role);
        return 0;
    }
    if (sscanf(line, "@limit %63s %llu", a, &v) == 2)
        return (id = tu_id(TU_LIMIT, a)) < 0
                   ? -1
                   : smtpx_config_set_limit(t->cfg, (smtpx_limit)id, v);
    if (sscanf(line, "@timeout %63s %llu", a, &v) == 2)
        return (id = tu_id(TU_TIMEOUT, a)) < 0
                   ? -1
                   : smtpx_config_set_timeout(t->cfg, (smtpx_timeout)id,
                                              (uint32_t)v);
    if (sscanf(line, "@ext %63s", a) == 1) {
        unsigned m = smtpx_config_get_extensions(t->cfg);
        unsigned bit = smtpx_ext_from_name(a + 1);
        if (bit == 0 || (a[0] != '+' && a[0] != '-'))
            return -1;
        return smtpx_config_set_extensions(t->cfg,
                                           a[0] == '+' ? m | bit : m & ~bit);
    }
    if (sscanf(line, "@policy %63s %63s", a, b) == 2)
        return (id = tu_id(TU_POLICY, a)) < 0 || policy_value(a, b) < 0
                   ? -1
                   : smtpx_config_set_policy(t->cfg, (smtpx_policy)id,
                                             policy_value(a, b));
    if (sscanf(line, "@hostname %63s", a) == 1)
        return smtpx_config_set_hostname(t->cfg, a);
    if (strncmp(line, "@sasl ", 6) == 0) {
        unsigned m = 0;
        const char *p = line + 5;
        while (sscanf(p, " %63s%n", a, &n) == 1) {
            unsigned bit = smtpx_sasl_from_name(a);
            if (bit == 0)
                return -1;
            m |= bit;
            p += n;
        }
        return smtpx_config_set_sasl(t->cfg, m);
    }
    if (strcmp(line, "@log") == 0) {
        t->log_on = 1;
        return 0;
    }
    if (strcmp(line, "@trace") == 0) {
        t->trace_on = 1;
        return 0;
    }
    return t->side->directive != NULL ? t->side->directive(t, line) : -1;
}

static void action(tr *t, const char *line)
{
    const tr_session_ops *ops = t->side->ops;
    size_t before = waiting(t);
    long long v;
    int rc;

    rc = t->side->action(t, line);
    if (rc == 1) {
        tr_open(t, 0);
        if (t->sess == NULL)
            return;
        if (sscanf(line, "time +%lld", &v) == 1) {
            t->now += (uint64_t)v;
            ops->expire(t->sess, t->now);
        } else if (strcmp(line, "eof") == 0) {
            ops->eof(t->sess);
        } else if (strcmp(line, "abort") == 0) {
            ops->abort(t->sess, SMTPX_ERR_IO);
        } else if (strcmp(line, "drain off") == 0) {
            t->drain = 0;
        } else if (strcmp(line, "drain on") == 0) {
            t->drain = 1;
        } else if (strcmp(line, "wait") == 0) {
            /* The peer waits for the replies before it sends more: the
             * input so far has been fed, nothing else happens. */
        } else {
            tr_fail(t, "unknown action: %s", line);
            return;
        }
    }
    after(t, before);
}

static void check(tr *t, const char *line, int lineno)
{
    const tr_session_ops *ops = t->side->ops;
    char name[64], want[256], got[256];
    const uint8_t *p;
    int n = 0;

    tr_open(t, 0);
    if (t->sess == NULL)
        return;
    if (sscanf(line, "%63s %n", name, &n) != 1) {
        tr_fail(t, "line %d: bad check", lineno);
        return;
    }
    snprintf(want, sizeof(want), "%s", line + n);
    if (strcmp(name, "want_read") == 0) {
        snprintf(got, sizeof(got), "%d", ops->want_read(t->sess));
    } else if (strcmp(name, "want_write") == 0) {
        snprintf(got, sizeof(got), "%d", ops->want_write(t->sess));
    } else if (strcmp(name, "want_tls") == 0) {
        snprintf(got, sizeof(got), "%d", ops->want_tls(t->sess));
    } else if (strcmp(name, "done") == 0) {
        snprintf(got, sizeof(got), "%d", ops->done(t->sess));
    } else if (strcmp(name, "expiry") == 0) {
        uint64_t e = ops->expiry(t->sess);
        if (e == 0)
            snprintf(got, sizeof(got), "0");
        else
            snprintf(got, sizeof(got), "+%lld", (long long)(e - t->now));
    } else if (strcmp(name, "out") == 0) {
        snprintf(got, sizeof(got), "%zu", ops->out_peek(t->sess, &p));
    } else if (t->side->check(t, name, want, got, sizeof(got)) != 0) {
        tr_fail(t, "line %d: unknown check %s", lineno, name);
        return;
    }
    if (strcmp(want, got) != 0)
        tr_fail(t, "line %d: %s is '%s', expected '%s'", lineno, name, got,
                want);
}

/* ---- replay ------------------------------------------------------------- */

/* check_output - what was written is the expected output (only a prefix
 * of it when the session dropped output) */
static void check_output(tr *t)
{
    const tu_buf *want = &t->tx->expect_out;
    const tu_buf *got = &t->out;
    size_t i, n = got->len < want->len ? got->len : want->len;
    tu_buf w = {0}, g = {0};

    for (i = 0; i < n && got->p[i] == want->p[i]; i++)
        ;
    if (i == got->len && (i == want->len || t->dropped))
        return;
    tu_escape_add(&w, want->p + i,
                  want->len - i < TR_MAXOUTERR ? want->len - i : TR_MAXOUTERR);
    tu_escape_add(&g, got->p + i,
                  got->len - i < TR_MAXOUTERR ? got->len - i : TR_MAXOUTERR);
    tr_fail(t, "output differs at octet %zu:\n  expected: %s\n  got:      %s",
            i, w.p ? w.p : "(end)", g.p ? g.p : "(end)");
    free(w.p);
    free(g.p);
}

static const char *mode_name(int mode)
{
    static const char *const names[] = {"whole", "bytes", "split", "random"};

    return names[mode & 3];
}

int transcript_run(const transcript *tx, int mode, size_t arg, char *err,
                   size_t errsize)
{
    tr *t = calloc(1, tx->side->size);
    size_t i;
    int rc;

    if (t == NULL)
        abort();
    t->tx = tx;
    t->side = tx->side;
    t->err = err;
    t->errsize = errsize;
    t->mode = mode & ~TR_GUARD;
    t->guard = (mode & TR_GUARD) != 0;
    t->arg = arg;
    t->rng = (uint32_t)arg * 2654435761u + 1;
    t->drain = 1;
    t->now = TR_CLOCK;
    err[0] = '\0';
    config_new(t, tx->side->role);
    for (i = 0; i < tx->nsteps && !t->failed; i++) {
        const tr_step *st = &tx->steps[i];
        if (st->kind == STEP_DIRECTIVE) {
            if (directive(t, st->text) != 0)
                tr_fail(t, "line %d: bad directive %s", st->line, st->text);
        } else if (st->kind == STEP_INPUT) {
            feed(t, st->text, st->len);
        } else if (st->kind == STEP_WHOLE) {
            feed_whole(t, st->text, st->len);
        } else if (st->kind == STEP_ACTION) {
            action(t, st->text);
        } else {
            check(t, st->text, st->line);
        }
    }
    if (!t->failed) {
        tr_open(t, 0);
        drain(t);
    }
    if (t->sess != NULL)
        t->side->ops->free(t->sess);
    t->sess = NULL;
    flush_data(t);
    if (!t->failed) {
        const char *want = tx->expect.p ? tx->expect.p : "";
        char msg[1200];
        if (tu_logdiff(want, t->log.p ? t->log.p : "", msg, sizeof(msg)) != 0)
            tr_fail(t, "%s", msg);
    }
    if (!t->failed)
        check_output(t);
    if (t->failed) {
        size_t used = strlen(err);
        snprintf(err + used, errsize - used, " (%s%s %zu)",
                 t->guard ? "guarded " : "", mode_name(t->mode), arg);
    }
    rc = t->failed ? -1 : 0;
    if (t->side->end != NULL)
        t->side->end(t);
    smtpx_config_free(t->cfg);
    free(t->log.p);
    free(t->out.p);
    free(t->data.p);
    free(t->taken.p);
    free(t);
    return rc;
}
