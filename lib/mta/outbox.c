/*
 * outbox - the sending side of closing the loop: every message sent
 * through it has a Message-ID and is kept until each recipient has
 * acknowledged it (an RFC 8098 MDN, or an RFC 3464 "delivered" DSN),
 * resent unchanged when no acknowledgement comes in time, with back-off,
 * and given up after a limit (a callback and a report).
 *
 * Exports the smtpx_outbox_* functions of <libsmtpx/ack.h>, and
 * smtpx__outbox_open_fs() and smtpx__outbox_engine() of outbox.h.
 *
 * Storage: DIR is a queue of its own (smtpx_queue_open(3): msg/, state/,
 * tmp/, the lock) that no engine delivers: its messages are the copies to
 * resend, their recipients' states the acknowledgements (PENDING waiting,
 * DELIVERED acknowledged, FAILED failed), attempts the sends, next_attempt
 * the deadline.  DIR/history is a dedupe store of the finished messages
 * (not synced: losing its last entries in a crash only makes a late
 * acknowledgement of them a stray).  Every message of DIR is taken in
 * flight at open and stays the outbox's until it is finished.
 *
 * Durable writes:
 *   commit   the copy for the delivery queue and the outbox's are written
 *            together; the outbox's is committed (synced) and tracked,
 *            then the delivery queue's, so that the engine's results
 *            about a copy always find its message.  A crash between leaves
 *            it tracked and not sent: sent at its first deadline (and
 *            commit did not return: the caller sends it again - a
 *            duplicate, which the receiver suppresses).  A failure to keep
 *            the outbox's copy sends nothing; a failure to queue the other
 *            after it leaves the message to its first deadline.  No state
 *            is written: a message without state was sent once, at its
 *            arrival (whole seconds: its deadline is reckoned from the
 *            second after, never sooner than the wait).
 *   resend   the copy is committed to the delivery queue, then the state
 *            (sends, deadline) is saved.  A crash between resends it once
 *            more after the restart: a duplicate, which the receiver
 *            suppresses.
 *   ack      durable before smtpx_outbox_ack() returns (the caller answers
 *            the report 250 then): a message whose recipients are all
 *            final is unlinked and its directory synced, once for the
 *            removals of every thread that waited meanwhile (group commit,
 *            ob_commit); the state of a message some of whose recipients
 *            still wait is saved (a file and a directory sync).  The
 *            engine's own results (smtpx__outbox_engine) are recorded so
 *            too.
 *
 * Copies: the ids of the copies sent through the delivery queue are kept
 * with each message (found again by ENVID at open); when the message is
 * finished, those still queued are cancelled (smtpx__queue_cancel): the
 * engine removes them instead of delivering duplicates.
 *
 * Matching: a report's Original-Envelope-Id is looked up among the ENVIDs
 * (the outbox sets it to the Message-ID when the sender gave none and it
 * fits), its Message-ID (Original-Message-ID, or the returned one) among
 * the Message-IDs; each recipient it names is found by address or by its
 * Original-Recipient (the outbox asks for ORCPT).
 *
 * Threads: a mutex guards the entries and their index; the files of a
 * commit are written and synced outside it, and so is the directory sync
 * of removals, under a lock of its own (taken before the mutex).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libsmtpx/ack.h>

#include "base/buf.h"
#include "base/crypto.h"
#include "base/mem.h"
#include "mta/dedupe.h"
#include "mta/dmap.h"
#include "mta/dsn.h"
#include "proto/cmd.h"
#include "mta/fields.h"
#include "mta/mdn.h"
#include "mta/outbox.h"
#include "mta/queue.h"

#define OB_HDR_MAX    65536
#define OB_ID_MAX     250
#define OB_ENVID_MAX  100 /* RFC 3461 4.4 */
#define OB_TIMEOUT    3600u
#define OB_TIMEOUT_MX 86400u
#define OB_RESENDS    5u
#define OB_HISTORY    (7u * 86400u)
#define OB_NONE       UINT32_MAX

typedef struct ob_entry {
    smtpx__qmsg *m; /* NULL: a free slot */
    char *msgid;
    uint8_t did[SMTPX__DIGEST], denv[SMTPX__DIGEST];
    int has_env;
    int64_t deadline;
    unsigned sends;
    uint32_t next_free;
    char (*copies)[32]; /* the delivery queue's ids of the copies sent */
    uint32_t ncopies, capcopies;
} ob_entry;

struct smtpx_outbox {
    smtpx_mem mem_store;
    const smtpx_mem *mem;
    smtpx_outbox_opts o;
    char *hostname, *ack_address, *report_to;
    smtpx_queue *store;
    smtpx_dedupe *history;
    pthread_mutex_t mu;  /* everything below but the sync */
    pthread_mutex_t smu; /* the sync of the store's removals; before mu */
    uint64_t wseq;       /* removals made */
    uint64_t sseq;       /* removals known durable */
    ob_entry *e;
    uint32_t ne, cap, free_head, count;
    smtpx__dmap by_id, by_env;
    smtpx_outbox_stats st;
};

struct smtpx_outbox_msg {
    smtpx_outbox *ob;
    smtpx_queue_msg *out;  /* the copy that goes */
    smtpx_queue_msg *keep; /* the outbox's copy */
    smtpx__buf hdr;
    size_t scan;
    int hdr_done;
    int envid_given;
    int err;
    char msgid[OB_ID_MAX + 1];
};

static const char *const state_names[] = {
#define OB_STATE_NAME(name, value, text) [value] = text,
    SMTPX_OUTBOX_STATE_MAP(OB_STATE_NAME)
#undef OB_STATE_NAME
};

const char *smtpx_outbox_state_name(int state)
{
    if (state < SMTPX_OUTBOX_WAITING || state > SMTPX_OUTBOX_GAVE_UP)
        return "?";
    return state_names[state];
}

/* ---- keys ---------------------------------------------------------------- */

/* ob_digest - the digest of "kind\0value" */
static int ob_digest(const char *kind, const char *value,
                     uint8_t d[SMTPX__DIGEST])
{
    char buf[16 + SMTPX__QFILE_ADDR_MAX + 1];
    size_t k = strlen(kind) + 1, n = strlen(value);

    if (k + n > sizeof(buf))
        return -1;
    memcpy(buf, kind, k);
    memcpy(buf + k, value, n);
    return smtpx__digest(buf, k + n, d);
}

static const uint8_t *ob_key_id(uint32_t v, void *ud)
{
    return ((smtpx_outbox *)ud)->e[v].did;
}

static const uint8_t *ob_key_env(uint32_t v, void *ud)
{
    return ((smtpx_outbox *)ud)->e[v].denv;
}

/* ---- the entries --------------------------------------------------------- */

static int64_t ob_now(smtpx_outbox *ob)
{
    return smtpx__queue_now(ob->store);
}

/* ob_timeout - how long to wait after send number sends (1-based) */
static int64_t ob_timeout(const smtpx_outbox *ob, unsigned sends)
{
    uint64_t t = ob->o.ack_timeout_s;
    unsigned i;

    for (i = 1; i < sends && t < ob->o.ack_timeout_max_s; i++)
        t *= 2;
    if (t > ob->o.ack_timeout_max_s)
        t = ob->o.ack_timeout_max_s;
    return (int64_t)t;
}

/* ob_deadline - the whole second at which a wait of send number sends,
 * starting now, has passed: never sooner (a one-second wait begun at
 * 10.9 ends at 12, not at 11) */
static int64_t ob_deadline(smtpx_outbox *ob, unsigned sends)
{
    return smtpx__queue_now_up(ob->store) + ob_timeout(ob, sends);
}

/* ob_env_of - the decoded ENVID of a record, for its index */
static int ob_env_of(const smtpx__qmsg *m, char *out, size_t size)
{
    if (m->envid == NULL)
        return -1;
    return smtpx__cmd_xtext_decode(m->envid, strlen(m->envid), out, size) < 0
               ? -1
               : 0;
}

/* ob_add - a new entry for record m with its Message-ID, in slot *slot
 * (lock held) */
static int ob_add(smtpx_outbox *ob, smtpx__qmsg *m, const char *msgid,
                  unsigned sends, int64_t deadline, uint32_t *slot)
{
    char env[SMTPX__QFILE_ADDR_MAX + 1];
    ob_entry *e;
    uint32_t v;

    if (ob->free_head == OB_NONE) {
        if (ob->ne == ob->cap) {
            uint32_t nc = ob->cap ? ob->cap * 2 : 64;
            ob_entry *n = smtpx__realloc(ob->mem, ob->e, nc * sizeof(*n));
            if (n == NULL)
                return SMTPX_ERR_NOMEM;
            ob->e = n;
            ob->cap = nc;
        }
        v = ob->ne++;
    } else {
        v = ob->free_head;
        ob->free_head = ob->e[v].next_free;
    }
    e = &ob->e[v];
    memset(e, 0, sizeof(*e));
    e->next_free = OB_NONE;
    e->msgid = smtpx__strdup(ob->mem, msgid);
    e->has_env = ob_env_of(m, env, sizeof(env)) == 0;
    if (e->msgid == NULL || ob_digest("id", msgid, e->did) != 0 ||
        (e->has_env && ob_digest("env", env, e->denv) != 0) ||
        smtpx__dmap_put(&ob->by_id, v, ob->mem) != 0 ||
        (e->has_env && smtpx__dmap_put(&ob->by_env, v, ob->mem) != 0)) {
        smtpx__dmap_del(&ob->by_id, e->did);
        smtpx__free(ob->mem, e->msgid);
        e->next_free = ob->free_head;
        ob->free_head = v;
        return SMTPX_ERR_NOMEM;
    }
    e->m = m;
    e->sends = sends;
    e->deadline = deadline;
    ob->count++;
    if (slot != NULL)
        *slot = v;
    return 0;
}

/* ob_forget - drop entry v (lock held); its record goes from the store
 * (keep 0) or stays in memory (the outbox is being freed) */
static void ob_forget(smtpx_outbox *ob, uint32_t v, int remove)
{
    ob_entry *e = &ob->e[v];

    smtpx__dmap_del(&ob->by_id, e->did);
    if (e->has_env)
        smtpx__dmap_del(&ob->by_env, e->denv);
    if (remove)
        smtpx__queue_release(ob->store, e->m, 0);
    smtpx__free(ob->mem, e->msgid);
    smtpx__free(ob->mem, e->copies);
    e->msgid = NULL;
    e->copies = NULL;
    e->ncopies = e->capcopies = 0;
    e->m = NULL;
    e->next_free = ob->free_head;
    ob->free_head = v;
    ob->count--;
}

static int ob_rcpt_state(const smtpx__qrcpt *r)
{
    switch (r->state) {
    case SMTPX_QRCPT_DELIVERED:
        return SMTPX_OUTBOX_ACKED;
    case SMTPX_QRCPT_FAILED:
        return r->code == 0 ? SMTPX_OUTBOX_GAVE_UP : SMTPX_OUTBOX_FAILED;
    default:
        return SMTPX_OUTBOX_WAITING;
    }
}

/* ob_event - tell the application (lock held) */
static void ob_event(smtpx_outbox *ob, const ob_entry *e, size_t i)
{
    smtpx_outbox_event ev;
    const smtpx__qrcpt *r = &e->m->rcpts[i];

    if (ob->o.on_event == NULL)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.message_id = e->msgid;
    ev.rcpt = r->addr;
    ev.state = ob_rcpt_state(r);
    ev.sends = e->sends;
    ev.detail = r->text != NULL ? r->text : "";
    ob->o.on_event(ob, &ev, ob->o.event_data);
}

/* ob_aggregate - a message's state from its recipients' */
static int ob_aggregate(const smtpx__qmsg *m)
{
    int failed = 0, gave_up = 0;
    size_t i;

    for (i = 0; i < m->nrcpts; i++) {
        int s = ob_rcpt_state(&m->rcpts[i]);
        if (s == SMTPX_OUTBOX_WAITING)
            return SMTPX_OUTBOX_WAITING;
        failed |= s == SMTPX_OUTBOX_FAILED;
        gave_up |= s == SMTPX_OUTBOX_GAVE_UP;
    }
    return failed    ? SMTPX_OUTBOX_FAILED
           : gave_up ? SMTPX_OUTBOX_GAVE_UP
                     : SMTPX_OUTBOX_ACKED;
}

/* ob_copy_add - remember a copy sent through the delivery queue (lock
 * held); without memory it is not remembered: it is only not cancelled */
static void ob_copy_add(smtpx_outbox *ob, ob_entry *e, const char *qid)
{
    uint32_t k;

    for (k = 0; k < e->ncopies; k++)
        if (strcmp(e->copies[k], qid) == 0)
            return;
    if (e->ncopies == e->capcopies) {
        uint32_t nc = e->capcopies ? e->capcopies * 2 : 4;
        char(*n)[32] = smtpx__realloc(ob->mem, e->copies, nc * sizeof(*n));
        if (n == NULL)
            return;
        e->copies = n;
        e->capcopies = nc;
    }
    snprintf(e->copies[e->ncopies++], sizeof(e->copies[0]), "%s", qid);
}

/* ob_finish - a message whose recipients are all final leaves the outbox,
 * remembered in the history; the copies the delivery queue still holds
 * (but except, whose attempt is ending) are cancelled: delivering them
 * would only make duplicates (lock held) */
static void ob_finish(smtpx_outbox *ob, uint32_t v, const char *except)
{
    ob_entry *e = &ob->e[v];
    int state = ob_aggregate(e->m);
    uint32_t k;

    for (k = 0; k < e->ncopies; k++)
        if (except == NULL || strcmp(e->copies[k], except) != 0)
            (void)smtpx__queue_cancel(ob->o.queue, e->copies[k]);
    (void)smtpx__dedupe_put_digest(ob->history, e->did, state);
    if (e->has_env)
        (void)smtpx__dedupe_put_digest(ob->history, e->denv, state);
    ob_forget(ob, v, 1);
    ob->wseq++;
}

/* ob_record - a change of entry v's recipients, recorded (lock held): a
 * finished message is removed (durable at ob_commit()), the state of one
 * that still waits is saved (durable now) */
static int ob_record(smtpx_outbox *ob, uint32_t v, const char *except)
{
    if (ob_aggregate(ob->e[v].m) != SMTPX_OUTBOX_WAITING) {
        ob_finish(ob, v, except);
        return 0;
    }
    return smtpx__queue_save(ob->store, ob->e[v].m);
}

/*
 * ob_commit - make the removals up to number seq durable (group commit,
 * as the dedupe store's): one thread syncs the store's msg/ for every
 * removal made before its sync began; the others that waited meanwhile
 * find theirs done.  A failed sync leaves them to the next one.
 */
static int ob_commit(smtpx_outbox *ob, uint64_t seq)
{
    uint64_t target;
    size_t n;
    int rc = 0;

    pthread_mutex_lock(&ob->smu);
    pthread_mutex_lock(&ob->mu);
    if (ob->sseq < seq) {
        target = ob->wseq;
        n = smtpx__queue_unsynced(ob->store);
        pthread_mutex_unlock(&ob->mu);
        rc = smtpx__queue_sync_msgs(ob->store);
        pthread_mutex_lock(&ob->mu);
        if (rc == 0) {
            ob->sseq = target;
            smtpx__queue_synced(ob->store, n);
        }
    }
    pthread_mutex_unlock(&ob->mu);
    pthread_mutex_unlock(&ob->smu);
    return rc;
}

/* ---- open and close ------------------------------------------------------ */

/* ob_load_id - the Message-ID of a kept message, from its header */
static int ob_load_id(smtpx_outbox *ob, const smtpx__qmsg *m, char *id,
                      size_t size)
{
    char *buf = smtpx__malloc(ob->mem, OB_HDR_MAX);
    size_t len = 0, scan = 0, end;
    smtpx__fields f;
    const char *name;
    size_t nlen;
    char v[SMTPX__QFILE_ADDR_MAX + 1];
    int fd, rc = -1;

    if (buf == NULL)
        return SMTPX_ERR_NOMEM;
    fd = smtpx__queue_open_content(ob->store, m);
    if (fd >= 0) {
        ssize_t r;
        while (len < OB_HDR_MAX &&
               (r = read(fd, buf + len, OB_HDR_MAX - len)) > 0)
            len += (size_t)r;
        close(fd);
    }
    end = smtpx__header_end(buf, len, &scan);
    f.p = buf;
    f.end = buf + (end ? end : len);
    while (rc != 0 && f.p < f.end) {
        if (smtpx__fields_next(&f, &name, &nlen, v, sizeof(v)) ==
                SMTPX__FIELD_OK &&
            smtpx__fields_is(name, nlen, "Message-ID") &&
            smtpx__msgid(v, id, size) > 0)
            rc = 0;
    }
    smtpx__free(ob->mem, buf);
    return rc;
}

/* ob_copy_found - a message of the delivery queue that is a copy of an
 * entry (its ENVID, its sender, recipients all the entry's) is
 * remembered as one (open) */
static void ob_copy_found(const smtpx__qmsg *c, void *ud)
{
    smtpx_outbox *ob = ud;
    char env[SMTPX__QFILE_ADDR_MAX + 1];
    uint8_t d[SMTPX__DIGEST];
    const smtpx__qmsg *m;
    size_t i, k;
    int64_t v;

    if (ob_env_of(c, env, sizeof(env)) != 0 || ob_digest("env", env, d) != 0 ||
        (v = smtpx__dmap_get(&ob->by_env, d)) < 0)
        return;
    m = ob->e[v].m;
    if (strcmp(m->from, c->from) != 0)
        return;
    for (i = 0; i < c->nrcpts; i++) {
        for (k = 0; k < m->nrcpts; k++)
            if (strcasecmp(m->rcpts[k].addr, c->rcpts[i].addr) == 0)
                break;
        if (k == m->nrcpts)
            return;
    }
    ob_copy_add(ob, &ob->e[v], c->id);
}

/* ob_load - take every kept message in (open), and find their copies in
 * the delivery queue */
static int ob_load(smtpx_outbox *ob)
{
    smtpx__qmsg *taken[256];
    int64_t next;
    size_t n, k, i;
    char id[OB_ID_MAX + 1];
    int rc = 0;

    while ((n = smtpx__queue_take_due(ob->store, INT64_MAX, taken, 256,
                                      &next)) > 0) {
        for (k = 0; k < n; k++) {
            smtpx__qmsg *m = taken[k];
            unsigned sends = 0;
            for (i = 0; i < m->nrcpts; i++)
                if (m->rcpts[i].attempts > sends)
                    sends = m->rcpts[i].attempts;
            if (rc == 0)
                rc = ob_load_id(ob, m, id, sizeof(id));
            if (rc == -1) {
                /* No Message-ID (damaged by hand): nothing could match
                 * its acknowledgements; it is set aside by giving up. */
                snprintf(id, sizeof(id), "%s@unknown", m->id);
                rc = 0;
            }
            /* Sent once, at its arrival: a whole second, which the send's
             * time rounded up (ob_deadline) may be one more than. */
            if (rc == 0)
                rc = ob_add(ob, m, id, sends ? sends : 1,
                            sends ? m->next_attempt
                                  : m->arrival + 1 + ob_timeout(ob, 1),
                            NULL);
            if (rc != 0)
                smtpx__queue_release(ob->store, m, 1);
        }
    }
    if (rc == 0 && ob->count > 0)
        smtpx__queue_each(ob->o.queue, ob_copy_found, ob);
    return rc;
}

static int ob_strdup(smtpx_outbox *ob, char **dst, const char *s)
{
    if (s == NULL)
        return 0;
    *dst = smtpx__strdup(ob->mem, s);
    return *dst != NULL ? 0 : SMTPX_ERR_NOMEM;
}

static int ob_check_opts(const smtpx_outbox_opts *o)
{
    const unsigned all = SMTPX_OUTBOX_NOSYNC | SMTPX_OUTBOX_NO_MDN |
                         SMTPX_OUTBOX_NO_DSN | SMTPX_OUTBOX_NO_RESEND;

    if (o->queue == NULL || (o->flags & ~all) != 0 || o->hostname == NULL ||
        o->hostname[0] == '\0' || !smtpx__qfile_field_ok(o->hostname, 200) ||
        !smtpx__mem_valid(o->mem))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (!(o->flags & SMTPX_OUTBOX_NO_MDN) &&
        (o->ack_address == NULL || strchr(o->ack_address, '@') == NULL))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if ((o->ack_address != NULL &&
         !smtpx__qfile_field_ok(o->ack_address, SMTPX__QFILE_ADDR_MAX)) ||
        (o->report_to != NULL &&
         (strchr(o->report_to, '@') == NULL ||
          !smtpx__qfile_field_ok(o->report_to, SMTPX__QFILE_ADDR_MAX))))
        return SMTPX_ERR_INVALID_ARGUMENT;
    return 0;
}

static void ob_defaults(smtpx_outbox_opts *o)
{
    if (o->ack_timeout_s == 0)
        o->ack_timeout_s = OB_TIMEOUT;
    if (o->ack_timeout_max_s == 0)
        o->ack_timeout_max_s = OB_TIMEOUT_MX;
    if (o->ack_timeout_max_s < o->ack_timeout_s)
        o->ack_timeout_max_s = o->ack_timeout_s;
    if (o->max_resends == 0)
        o->max_resends = OB_RESENDS;
    if (o->flags & SMTPX_OUTBOX_NO_RESEND)
        o->max_resends = 0;
    if (o->history_s == 0)
        o->history_s = OB_HISTORY;
}

/* ob_open_files - the store and the history */
static int ob_open_files(smtpx_outbox *ob, const char *dir, const smtpx__fs *fs)
{
    smtpx_queue_opts qo;
    smtpx_dedupe_opts ho;
    char path[4096];
    int rc;

    memset(&qo, 0, sizeof(qo));
    qo.size = sizeof(qo);
    qo.flags = ob->o.flags & SMTPX_OUTBOX_NOSYNC ? SMTPX_QUEUE_NOSYNC : 0;
    qo.max_rcpts = SMTPX__QFILE_RCPTS_MAX;
    qo.mem = ob->mem;
    rc = smtpx__queue_open_fs(&ob->store, dir, &qo, fs);
    if (rc != 0)
        return rc;
    if ((size_t)snprintf(path, sizeof(path), "%s/history", dir) >= sizeof(path))
        return SMTPX_ERR_INVALID_ARGUMENT;
    memset(&ho, 0, sizeof(ho));
    ho.size = sizeof(ho);
    ho.flags = SMTPX_DEDUPE_NOSYNC;
    ho.window_s = ob->o.history_s;
    ho.mem = ob->mem;
    return smtpx__dedupe_open_fs(&ob->history, path, &ho, fs);
}

int smtpx__outbox_open_fs(smtpx_outbox **out, const char *dir,
                          const smtpx_outbox_opts *opts, const smtpx__fs *fs)
{
    smtpx_outbox_opts o;
    const smtpx_mem *mem;
    smtpx_outbox *ob;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (out == NULL || dir == NULL || opts == NULL ||
        smtpx__copy_sized(&o, sizeof(o), opts) != 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if ((rc = ob_check_opts(&o)) != 0)
        return rc;
    ob_defaults(&o);
    mem = o.mem != NULL ? o.mem : smtpx__mem_default();
    ob = smtpx__calloc(mem, 1, sizeof(*ob));
    if (ob == NULL)
        return SMTPX_ERR_NOMEM;
    ob->mem_store = *mem;
    ob->mem = &ob->mem_store;
    ob->o = o;
    ob->o.size = sizeof(o);
    ob->o.mem = ob->mem;
    ob->free_head = OB_NONE;
    ob->st.size = sizeof(ob->st);
    if (pthread_mutex_init(&ob->mu, NULL) != 0) {
        smtpx__free(mem, ob);
        return SMTPX_ERR_NOMEM;
    }
    if (pthread_mutex_init(&ob->smu, NULL) != 0) {
        pthread_mutex_destroy(&ob->mu);
        smtpx__free(mem, ob);
        return SMTPX_ERR_NOMEM;
    }
    rc = ob_strdup(ob, &ob->hostname, o.hostname);
    if (rc == 0)
        rc = ob_strdup(ob, &ob->ack_address, o.ack_address);
    if (rc == 0)
        rc = ob_strdup(ob, &ob->report_to, o.report_to);
    if (rc == 0)
        rc = smtpx__dmap_init(&ob->by_id, 64, ob_key_id, ob, ob->mem);
    if (rc == 0)
        rc = smtpx__dmap_init(&ob->by_env, 64, ob_key_env, ob, ob->mem);
    if (rc == 0)
        rc = ob_open_files(ob, dir, fs);
    if (rc == 0)
        rc = ob_load(ob);
    if (rc != 0) {
        smtpx_outbox_free(ob);
        return rc;
    }
    *out = ob;
    return 0;
}

int smtpx_outbox_open(smtpx_outbox **out, const char *dir,
                      const smtpx_outbox_opts *opts)
{
    return smtpx__outbox_open_fs(out, dir, opts, NULL);
}

void smtpx_outbox_free(smtpx_outbox *ob)
{
    smtpx_mem mem;
    uint32_t v;

    if (ob == NULL)
        return;
    for (v = 0; v < ob->ne; v++)
        if (ob->e[v].m != NULL) {
            smtpx__queue_release(ob->store, ob->e[v].m, 1);
            ob_forget(ob, v, 0);
        }
    smtpx_queue_free(ob->store); /* syncs what was removed */
    smtpx_dedupe_free(ob->history);
    smtpx__dmap_free(&ob->by_id, ob->mem);
    smtpx__dmap_free(&ob->by_env, ob->mem);
    smtpx__free(ob->mem, ob->e);
    smtpx__free(ob->mem, ob->hostname);
    smtpx__free(ob->mem, ob->ack_address);
    smtpx__free(ob->mem, ob->report_to);
    pthread_mutex_destroy(&ob->mu);
    pthread_mutex_destroy(&ob->smu);
    mem = ob->mem_store;
    smtpx__free(&mem, ob);
}

/* ---- a message going out ------------------------------------------------- */

int smtpx_outbox_begin(smtpx_outbox *ob, const smtpx_queue_env *env,
                       smtpx_outbox_msg **out)
{
    smtpx_queue_env e;
    smtpx_outbox_msg *m;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (ob == NULL || env == NULL || env->size == 0 || out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    memset(&e, 0, sizeof(e));
    memcpy(&e, env, env->size < sizeof(e) ? env->size : sizeof(e));
    e.size = sizeof(e);
    if (e.from == NULL || e.from[0] == '\0')
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (!(ob->o.flags & SMTPX_OUTBOX_NO_DSN) && e.ret == SMTPX_DSN_RET_NONE)
        e.ret = SMTPX_DSN_RET_HDRS; /* the header comes back: its id */
    m = smtpx__calloc(ob->mem, 1, sizeof(*m));
    if (m == NULL)
        return SMTPX_ERR_NOMEM;
    m->ob = ob;
    m->envid_given = e.envid != NULL;
    rc = smtpx_queue_begin(ob->o.queue, &e, &m->out);
    if (rc == 0)
        rc = smtpx_queue_begin(ob->store, &e, &m->keep);
    if (rc != 0) {
        smtpx_outbox_abort(m);
        return rc;
    }
    *out = m;
    return 0;
}

int smtpx_outbox_add_rcpt(smtpx_outbox_msg *m, const char *addr,
                          unsigned notify, const char *orcpt)
{
    char own[8 + 3 * SMTPX__QFILE_ADDR_MAX + 1];
    int rc;

    if (m == NULL || addr == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (!(m->ob->o.flags & SMTPX_OUTBOX_NO_DSN)) {
        notify &= ~SMTPX_DSN_NOTIFY_NEVER;
        notify |= SMTPX_DSN_NOTIFY_SUCCESS | SMTPX_DSN_NOTIFY_FAILURE;
        if (orcpt == NULL) {
            /* The report names the address given, whatever it became. */
            memcpy(own, "rfc822;", 8);
            if (smtpx__cmd_xtext_encode(addr, own + 7, sizeof(own) - 7) >= 0)
                orcpt = own;
        }
    }
    rc = smtpx_queue_add_rcpt(m->out, addr, notify, orcpt);
    if (rc == 0)
        rc = smtpx_queue_add_rcpt(m->keep, addr, notify, orcpt);
    return rc;
}

/* ob_both - the same octets to both copies */
static int ob_both(smtpx_outbox_msg *m, const void *data, size_t len)
{
    int rc = smtpx_queue_write(m->out, data, len);

    if (rc == 0)
        rc = smtpx_queue_write(m->keep, data, len);
    return rc;
}

/* ob_scan_header - the Message-ID and whether a Disposition-Notification-To
 * is there */
static int ob_scan_header(smtpx_outbox_msg *m, const char *h, size_t len)
{
    smtpx__fields f = {h, h + len};
    const char *name;
    size_t nlen;
    char v[SMTPX__QFILE_ADDR_MAX + 1];
    int dnt = 0, rc;

    while ((rc = smtpx__fields_next(&f, &name, &nlen, v, sizeof(v))) !=
           SMTPX__FIELD_END) {
        if (rc != SMTPX__FIELD_OK)
            continue;
        if (m->msgid[0] == '\0' && smtpx__fields_is(name, nlen, "Message-ID"))
            (void)smtpx__msgid(v, m->msgid, sizeof(m->msgid));
        else if (smtpx__fields_is(name, nlen, "Disposition-Notification-To"))
            dnt = 1;
    }
    return dnt;
}

/* ob_header_done - the header is whole: add what it lacks after its trace
 * fields, set the ENVID, and write it to both copies */
static int ob_header_done(smtpx_outbox_msg *m)
{
    smtpx_outbox *ob = m->ob;
    const char *h = smtpx__buf_used(&m->hdr) > 0
                        ? (const char *)smtpx__buf_head(&m->hdr)
                        : "";
    size_t len = smtpx__buf_used(&m->hdr), trace = smtpx__trace_end(h, len);
    char add[1200], env[OB_ENVID_MAX + 1];
    int dnt = ob_scan_header(m, h, len), n = 0, rc;

    m->hdr_done = 1;
    if (m->msgid[0] == '\0') {
        if (smtpx__make_msgid(m->msgid, sizeof(m->msgid), ob->hostname) < 0)
            return SMTPX_ERR_INTERNAL;
        n += snprintf(add + n, sizeof(add) - (size_t)n, "Message-ID: <%s>\r\n",
                      m->msgid);
    }
    if (!dnt && !(ob->o.flags & SMTPX_OUTBOX_NO_MDN))
        n += snprintf(add + n, sizeof(add) - (size_t)n,
                      "Disposition-Notification-To: <%s>\r\n", ob->ack_address);
    if (!(ob->o.flags & SMTPX_OUTBOX_NO_DSN) && !m->envid_given &&
        smtpx__cmd_xtext_encode(m->msgid, env, sizeof(env)) >= 0) {
        /* The DSNs name the message by it (RFC 3461 4.4). */
        rc = smtpx__queue_set_envid(m->out, env);
        if (rc == 0)
            rc = smtpx__queue_set_envid(m->keep, env);
        if (rc != 0)
            return rc;
    }
    rc = ob_both(m, h, trace);
    if (rc == 0 && n > 0)
        rc = ob_both(m, add, (size_t)n);
    if (rc == 0)
        rc = ob_both(m, h + trace, len - trace);
    smtpx__buf_free(&m->hdr, ob->mem);
    return rc;
}

int smtpx_outbox_write(smtpx_outbox_msg *m, const void *data, size_t len)
{
    size_t used, end;

    if (m == NULL || (data == NULL && len > 0))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (m->err != 0)
        return m->err;
    if (m->hdr_done)
        return m->err = ob_both(m, data, len);
    used = smtpx__buf_used(&m->hdr);
    if (smtpx__buf_append(&m->hdr, m->ob->mem, data, len) != 0)
        return m->err = SMTPX_ERR_NOMEM;
    end = smtpx__header_end((const char *)smtpx__buf_head(&m->hdr), used + len,
                            &m->scan);
    if (end == 0) {
        if (used + len > OB_HDR_MAX)
            m->err = SMTPX_ERR_LIMIT;
        return m->err;
    }
    m->hdr.len = m->hdr.off + end; /* the header alone */
    if ((m->err = ob_header_done(m)) != 0)
        return m->err;
    return m->err = ob_both(m, (const uint8_t *)data + (end - used),
                            len - (end - used));
}

void smtpx_outbox_abort(smtpx_outbox_msg *m)
{
    if (m == NULL)
        return;
    smtpx_queue_abort(m->out);
    smtpx_queue_abort(m->keep);
    smtpx__buf_free(&m->hdr, m->ob->mem);
    smtpx__free(m->ob->mem, m);
}

int smtpx_outbox_commit(smtpx_outbox_msg *m, char *message_id, size_t size)
{
    smtpx_outbox *ob;
    smtpx__qmsg *rec;
    char qid[32];
    int rc;

    if (m == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    ob = m->ob;
    if (message_id != NULL && size > 0)
        message_id[0] = '\0';
    rc = m->err;
    if (rc == 0 && !m->hdr_done)
        rc = ob_header_done(m); /* a message that is all header */
    if (rc == 0 && message_id != NULL && strlen(m->msgid) >= size)
        rc = SMTPX_ERR_INVALID_ARGUMENT;
    if (rc != 0) {
        smtpx_outbox_abort(m);
        return rc;
    }
    /* The outbox's copy first, then the one that goes: the engine's
     * results about a copy always find the message tracked. */
    rc = smtpx__queue_commit_take(m->keep, NULL, 0, &rec);
    m->keep = NULL;
    if (rc == 0) {
        uint32_t v;
        size_t i;
        pthread_mutex_lock(&ob->mu);
        rc = ob_add(ob, rec, m->msgid, 1, ob_deadline(ob, 1), &v);
        if (rc == 0) {
            ob->st.sent++;
            for (i = 0; i < rec->nrcpts; i++)
                ob_event(ob, &ob->e[v], i);
        } else {
            /* Not tracked: neither kept nor sent. */
            smtpx__queue_release(ob->store, rec, 0);
        }
        pthread_mutex_unlock(&ob->mu);
    }
    if (rc == 0) {
        uint8_t d[SMTPX__DIGEST];
        int64_t v;
        /* A failure to send leaves it kept: sent at its first deadline,
         * which the engine is told of (no commit woke it). */
        if (smtpx_queue_commit(m->out, qid, sizeof(qid)) != 0)
            smtpx__queue_poke(ob->o.queue);
        else if (ob_digest("id", m->msgid, d) == 0) {
            pthread_mutex_lock(&ob->mu);
            v = smtpx__dmap_get(&ob->by_id, d);
            if (v >= 0)
                ob_copy_add(ob, &ob->e[v], qid);
            pthread_mutex_unlock(&ob->mu);
        }
        m->out = NULL;
    }
    if (rc == 0 && message_id != NULL)
        snprintf(message_id, size, "%s", m->msgid);
    smtpx_outbox_abort(m);
    return rc;
}

/* ---- acknowledgements ---------------------------------------------------- */

/* ob_same_addr - a and b name the same mailbox (the domain in any case;
 * the local part too, as every system does in practice) */
static int ob_same_addr(const char *a, const char *b)
{
    return a != NULL && b != NULL && a[0] != '\0' && strcasecmp(a, b) == 0;
}

/* ob_match_rcpt - the recipient of m a report's recipient is about, or -1:
 * by its address, or by the Original-Recipient the outbox asked for */
static long ob_match_rcpt(const smtpx__qmsg *m, const smtpx_report_rcpt *rr)
{
    char orcpt[SMTPX__QFILE_ADDR_MAX + 1];
    size_t i;

    for (i = 0; i < m->nrcpts; i++)
        if (ob_same_addr(m->rcpts[i].addr, rr->rcpt) ||
            ob_same_addr(m->rcpts[i].addr, rr->orig_rcpt))
            return (long)i;
    for (i = 0; i < m->nrcpts; i++) {
        const char *o = m->rcpts[i].orcpt, *semi;
        if (o == NULL || (semi = strchr(o, ';')) == NULL ||
            smtpx__cmd_xtext_decode(semi + 1, strlen(semi + 1), orcpt,
                                    sizeof(orcpt)) < 0)
            continue;
        if (ob_same_addr(orcpt, rr->orig_rcpt) || ob_same_addr(orcpt, rr->rcpt))
            return (long)i;
    }
    return -1;
}

/* ob_find - the entry a report is about (lock held), or -1 */
static int64_t ob_find(smtpx_outbox *ob, const smtpx_report *r)
{
    const char *env = smtpx_report_envid(r), *id = smtpx_report_message_id(r);
    uint8_t d[SMTPX__DIGEST];
    int64_t v = -1;

    if (env != NULL && ob_digest("env", env, d) == 0)
        v = smtpx__dmap_get(&ob->by_env, d);
    if (v < 0 && id != NULL && ob_digest("id", id, d) == 0)
        v = smtpx__dmap_get(&ob->by_id, d);
    return v;
}

/* ob_known - the report is about a message the outbox has finished */
static int ob_known(smtpx_outbox *ob, const smtpx_report *r)
{
    const char *env = smtpx_report_envid(r), *id = smtpx_report_message_id(r);
    uint8_t d[SMTPX__DIGEST];

    return (env != NULL && ob_digest("env", env, d) == 0 &&
            smtpx__dedupe_get_digest(ob->history, d, NULL) > 0) ||
           (id != NULL && ob_digest("id", id, d) == 0 &&
            smtpx__dedupe_get_digest(ob->history, d, NULL) > 0);
}

/* ob_detail - what a report said of a recipient, one line */
static void ob_detail(char *out, size_t size, const smtpx_report_rcpt *rr)
{
    snprintf(out, size, "%s%s%s%s%s", rr->action, rr->status[0] ? " " : "",
             rr->status, rr->diagnostic[0] ? " " : "", rr->diagnostic);
}

/* ob_set - recipient i of entry e is acknowledged (ack) or failed, with
 * code and what was said of it (lock held) */
static void ob_set(smtpx_outbox *ob, ob_entry *e, size_t i, int ack, int code,
                   const char *detail)
{
    smtpx__qrcpt *q = &e->m->rcpts[i];
    smtpx_reply reply;

    memset(&reply, 0, sizeof(reply));
    reply.code = code;
    reply.text = detail;
    (void)smtpx__qrcpt_set_reply(q, &reply, NULL, ob->mem);
    q->state = ack ? SMTPX_QRCPT_DELIVERED : SMTPX_QRCPT_FAILED;
    if (ack)
        ob->st.acked++;
    else
        ob->st.failed++;
    ob_event(ob, e, i);
}

/* ob_apply - a report's recipients onto entry v; the number changed */
static int ob_apply(smtpx_outbox *ob, uint32_t v, const smtpx_report *r)
{
    ob_entry *e = &ob->e[v];
    size_t k, n = smtpx_report_rcpt_count(r);
    int changed = 0;

    for (k = 0; k < n; k++) {
        smtpx_report_rcpt rr;
        char detail[512];
        long i;
        if (smtpx_report_get_rcpt(r, k, &rr) != 0 ||
            rr.outcome == SMTPX_REPORT_NONE ||
            (i = ob_match_rcpt(e->m, &rr)) < 0)
            continue;
        if (ob_rcpt_state(&e->m->rcpts[i]) != SMTPX_OUTBOX_WAITING) {
            ob->st.repeats++;
            continue;
        }
        ob_detail(detail, sizeof(detail), &rr);
        ob_set(ob, e, (size_t)i, rr.outcome == SMTPX_REPORT_ACK,
               rr.outcome == SMTPX_REPORT_ACK ? 250 : 550, detail);
        changed++;
    }
    return changed;
}

int smtpx_outbox_ack(smtpx_outbox *ob, const smtpx_report *r, const char *to)
{
    uint64_t seq;
    int64_t v;
    int rc, saved = 0, mine = 0;

    if (ob == NULL || r == NULL || smtpx_report_kind(r) == 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&ob->mu);
    v = ob_find(ob, r);
    if (v >= 0) {
        rc = ob_apply(ob, (uint32_t)v, r);
        /* A delay or "relayed" changes nothing: rc is 0. */
        if (rc > 0)
            saved = ob_record(ob, (uint32_t)v, NULL);
        mine = 1;
    } else if (ob_known(ob, r)) {
        ob->st.repeats++;
        rc = 0;
        mine = 1;
    } else if (to != NULL && ob->ack_address != NULL &&
               ob_same_addr(to, ob->ack_address)) {
        ob->st.strays++;
        rc = 0;
    } else {
        rc = SMTPX_ERR_NOT_FOUND;
    }
    seq = ob->wseq;
    pthread_mutex_unlock(&ob->mu);
    /* Durable before the caller answers 250: what this report changed,
     * and what an earlier one did whose sync failed (a repeat comes when
     * the first was not answered). */
    if (mine) {
        int c = ob_commit(ob, seq);
        if (saved == 0)
            saved = c;
    }
    return saved != 0 ? saved : rc;
}

/* ---- the delivery engine's own results ----------------------------------- */

/* ob_engine_detail - what the engine did, as a report would say it */
static void ob_engine_detail(char *out, size_t size, const char *action,
                             const smtpx__qrcpt *r)
{
    int c = r->code >= 500 ? 5 : 2;

    if (r->enh[0] != 0)
        snprintf(out, size, "%s %u.%u.%u %d %s", action, r->enh[0], r->enh[1],
                 r->enh[2], r->code, r->text != NULL ? r->text : "");
    else
        snprintf(out, size, "%s %d.0.0 %d %s", action, c, r->code,
                 r->text != NULL ? r->text : "");
}

int smtpx__outbox_engine(smtpx_outbox *ob, const smtpx__qmsg *c,
                         const int *what, unsigned char *quiet)
{
    char env[SMTPX__QFILE_ADDR_MAX + 1], detail[700];
    uint8_t d[SMTPX__DIGEST];
    int quiet_success, found = 0, changed = 0, rc = 0;
    uint64_t seq;
    ob_entry *e;
    int64_t v;
    size_t i, k;

    if (ob == NULL || ob_env_of(c, env, sizeof(env)) != 0 ||
        ob_digest("env", env, d) != 0)
        return 0;
    /* The success reports are the outbox's requests, not the sender's. */
    quiet_success = !(ob->o.flags & SMTPX_OUTBOX_NO_DSN);
    pthread_mutex_lock(&ob->mu);
    v = smtpx__dmap_get(&ob->by_env, d);
    if (v >= 0 && strcmp(ob->e[v].m->from, c->from) == 0) {
        e = &ob->e[v];
        found = 1;
        for (i = 0; i < c->nrcpts; i++) {
            const smtpx__qrcpt *cr = &c->rcpts[i];
            int waiting;
            if (what[i] == 0)
                continue;
            for (k = 0; k < e->m->nrcpts; k++)
                if (ob_same_addr(e->m->rcpts[k].addr, cr->addr))
                    break;
            if (k == e->m->nrcpts)
                continue; /* not the outbox's recipient */
            waiting = ob_rcpt_state(&e->m->rcpts[k]) == SMTPX_OUTBOX_WAITING;
            switch (what[i]) {
            case SMTPX__OUTBOX_FAILED:
                /* The sender has its bounce once, not once per copy. */
                if (!waiting) {
                    quiet[i] = 1;
                    break;
                }
                ob_engine_detail(detail, sizeof(detail), "failed", cr);
                ob_set(ob, e, k, 0, cr->code >= 500 ? cr->code : 550, detail);
                changed++;
                break;
            case SMTPX__OUTBOX_DELIVERED:
                quiet[i] = (unsigned char)quiet_success;
                if (!waiting)
                    break;
                ob_engine_detail(detail, sizeof(detail), "delivered", cr);
                ob_set(ob, e, k, 1, 250, detail);
                changed++;
                break;
            default: /* relayed: RFC 3464 2.3.3, no acknowledgement */
                quiet[i] = (unsigned char)quiet_success;
                break;
            }
        }
        if (changed > 0)
            rc = ob_record(ob, (uint32_t)v, c->id);
    } else if (v < 0 && smtpx__dedupe_get_digest(ob->history, d, NULL) > 0) {
        /* A copy of a finished message (cancelled too late, or found
         * again after a crash): its results change nothing, and the
         * sender has had the reports it will get. */
        for (i = 0; i < c->nrcpts; i++)
            if (what[i] != 0)
                quiet[i] = what[i] == SMTPX__OUTBOX_FAILED
                               ? 1
                               : (unsigned char)quiet_success;
    }
    seq = ob->wseq;
    pthread_mutex_unlock(&ob->mu);
    if (found) {
        int s2 = ob_commit(ob, seq);
        if (rc == 0)
            rc = s2;
    }
    return rc != 0 ? rc : found;
}

/* ---- deadlines ----------------------------------------------------------- */

/* ob_resend - commit the copy of entry e for the recipients that wait,
 * its id into qid */
static int ob_resend(smtpx_outbox *ob, ob_entry *e, char *qid, size_t size)
{
    smtpx__qmsg *m = e->m;
    smtpx_queue_env env;
    smtpx_queue_msg *qm;
    char buf[16384];
    uint64_t left = m->size;
    size_t i;
    int fd, rc;

    memset(&env, 0, sizeof(env));
    env.size = sizeof(env);
    env.from = m->from;
    env.ret = m->ret;
    env.envid = m->envid;
    env.body = m->body;
    env.smtputf8 = m->smtputf8;
    rc = smtpx_queue_begin(ob->o.queue, &env, &qm);
    if (rc != 0)
        return rc;
    for (i = 0; rc == 0 && i < m->nrcpts; i++)
        if (ob_rcpt_state(&m->rcpts[i]) == SMTPX_OUTBOX_WAITING)
            rc = smtpx_queue_add_rcpt(qm, m->rcpts[i].addr, m->rcpts[i].notify,
                                      m->rcpts[i].orcpt);
    fd = rc == 0 ? smtpx__queue_open_content(ob->store, m) : -1;
    if (rc == 0 && fd < 0)
        rc = SMTPX_ERR_IO;
    while (rc == 0 && left > 0) {
        ssize_t r = read(fd, buf, left < sizeof(buf) ? left : sizeof(buf));
        if (r <= 0) {
            rc = SMTPX_ERR_IO;
            break;
        }
        rc = smtpx_queue_write(qm, buf, (size_t)r);
        left -= (uint64_t)r;
    }
    if (fd >= 0)
        close(fd);
    if (rc != 0) {
        smtpx_queue_abort(qm);
        return rc;
    }
    return smtpx_queue_commit(qm, qid, size);
}

/* ob_report - the report of a message given up, to report_to */
static void ob_report(smtpx_outbox *ob, const ob_entry *e, int64_t now)
{
    smtpx_queue_env env;
    smtpx__qw w = {NULL, 0};
    char date[40], id[300], t[600];
    size_t i;

    if (ob->report_to == NULL)
        return;
    memset(&env, 0, sizeof(env));
    env.size = sizeof(env);
    env.from = "";
    if (smtpx_queue_begin(ob->o.queue, &env, &w.qm) != 0)
        return;
    if (smtpx_queue_add_rcpt(w.qm, ob->report_to, 0, NULL) != 0) {
        smtpx_queue_abort(w.qm);
        return;
    }
    if (smtpx_format_date(now, 0, date, sizeof(date)) < 0)
        snprintf(date, sizeof(date), "Thu, 01 Jan 1970 00:00:00 +0000");
    smtpx__qw_put(&w,
                  "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
                  "To: <%s>\r\nSubject: Not acknowledged: <%s>\r\n"
                  "Date: %s\r\n",
                  ob->hostname, ob->report_to,
                  smtpx__qw_text(t, sizeof(t), e->msgid), date);
    if (smtpx__make_msgid(id, sizeof(id), ob->hostname) > 0)
        smtpx__qw_put(&w, "Message-ID: <%s>\r\n", id);
    smtpx__qw_put(&w,
                  "Auto-Submitted: auto-generated\r\n"
                  "MIME-Version: 1.0\r\n"
                  "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
                  "The message <%s>\r\nfrom <%s> was sent %u times;"
                  " no acknowledgement came\r\nfrom these recipients,"
                  " and it is no longer sent:\r\n\r\n",
                  t, smtpx__qw_text(id, sizeof(id), e->m->from), e->sends);
    for (i = 0; i < e->m->nrcpts; i++)
        if (ob_rcpt_state(&e->m->rcpts[i]) == SMTPX_OUTBOX_GAVE_UP)
            smtpx__qw_put(&w, "  <%s>\r\n",
                          smtpx__qw_text(t, sizeof(t), e->m->rcpts[i].addr));
    if (w.err != 0)
        smtpx_queue_abort(w.qm);
    else
        (void)smtpx_queue_commit(w.qm, NULL, 0);
}

/* ob_give_up - every waiting recipient of entry v is given up */
static void ob_give_up(smtpx_outbox *ob, uint32_t v, int64_t now)
{
    ob_entry *e = &ob->e[v];
    size_t i;

    for (i = 0; i < e->m->nrcpts; i++) {
        smtpx__qrcpt *q = &e->m->rcpts[i];
        if (ob_rcpt_state(q) != SMTPX_OUTBOX_WAITING)
            continue;
        q->state = SMTPX_QRCPT_FAILED;
        q->code = 0; /* given up, not failed */
        ob->st.gave_up++;
        ob_event(ob, e, i);
    }
    ob_report(ob, e, now);
    ob_finish(ob, v, NULL);
}

/* ob_due - entry v's deadline has come: resend or give up */
static int ob_due(smtpx_outbox *ob, uint32_t v, int64_t now)
{
    ob_entry *e = &ob->e[v];
    char qid[32];
    size_t i;
    int rc;

    if (e->sends > ob->o.max_resends) {
        ob_give_up(ob, v, now);
        return 0;
    }
    rc = ob_resend(ob, e, qid, sizeof(qid));
    if (rc != 0) {
        /* Tried again at the next run; it is not a resend yet. */
        e->deadline = now + 60;
        return rc;
    }
    ob_copy_add(ob, e, qid);
    e->sends++;
    e->deadline = ob_deadline(ob, e->sends);
    e->m->next_attempt = e->deadline;
    for (i = 0; i < e->m->nrcpts; i++)
        e->m->rcpts[i].attempts = e->sends;
    ob->st.resent++;
    for (i = 0; i < e->m->nrcpts; i++)
        if (ob_rcpt_state(&e->m->rcpts[i]) == SMTPX_OUTBOX_WAITING)
            ob_event(ob, e, i);
    /* A crash before this is durable resends once more after the
     * restart: a duplicate the receiver suppresses. */
    return smtpx__queue_save(ob->store, e->m);
}

int smtpx_outbox_run(smtpx_outbox *ob)
{
    uint64_t seq;
    int64_t now;
    uint32_t v;
    int n = 0, rc = 0, r;

    if (ob == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&ob->mu);
    now = ob_now(ob);
    for (v = 0; v < ob->ne; v++) {
        if (ob->e[v].m == NULL || ob->e[v].deadline > now)
            continue;
        r = ob_due(ob, v, now);
        if (r != 0 && rc == 0)
            rc = r;
        n++;
    }
    seq = ob->wseq;
    pthread_mutex_unlock(&ob->mu);
    /* One directory sync for the messages given up. */
    r = ob_commit(ob, seq);
    if (r != 0 && rc == 0)
        rc = r;
    return rc != 0 ? rc : n;
}

int64_t smtpx_outbox_next(smtpx_outbox *ob)
{
    int64_t next = 0;
    uint32_t v;

    if (ob == NULL)
        return 0;
    pthread_mutex_lock(&ob->mu);
    for (v = 0; v < ob->ne; v++)
        if (ob->e[v].m != NULL && (next == 0 || ob->e[v].deadline < next))
            next = ob->e[v].deadline > 0 ? ob->e[v].deadline : 1;
    pthread_mutex_unlock(&ob->mu);
    return next;
}

/* ---- questions ----------------------------------------------------------- */

int smtpx_outbox_state(smtpx_outbox *ob, const char *message_id)
{
    uint8_t d[SMTPX__DIGEST];
    int64_t v;
    int state;

    if (ob == NULL || message_id == NULL || ob_digest("id", message_id, d) != 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&ob->mu);
    v = smtpx__dmap_get(&ob->by_id, d);
    state = v >= 0 ? ob_aggregate(ob->e[v].m)
                   : smtpx__dedupe_get_digest(ob->history, d, NULL);
    pthread_mutex_unlock(&ob->mu);
    return state > 0 ? state : SMTPX_ERR_NOT_FOUND;
}

static int ob_list_cmp(const void *a, const void *b)
{
    const ob_entry *x = *(const ob_entry *const *)a;
    const ob_entry *y = *(const ob_entry *const *)b;

    return strcmp(x->m->id, y->m->id);
}

/* ob_list_one - call fn for entry e */
static int ob_list_one(smtpx_outbox *ob, const ob_entry *e,
                       smtpx_outbox_list_fn *fn, void *user_data)
{
    const char **rcpts;
    int *states, rc;
    smtpx_outbox_info info;
    size_t i;

    rcpts = smtpx__calloc(ob->mem, e->m->nrcpts, sizeof(*rcpts));
    states = smtpx__calloc(ob->mem, e->m->nrcpts, sizeof(*states));
    if (rcpts == NULL || states == NULL) {
        smtpx__free(ob->mem, rcpts);
        smtpx__free(ob->mem, states);
        return SMTPX_ERR_NOMEM;
    }
    for (i = 0; i < e->m->nrcpts; i++) {
        rcpts[i] = e->m->rcpts[i].addr;
        states[i] = ob_rcpt_state(&e->m->rcpts[i]);
    }
    memset(&info, 0, sizeof(info));
    info.message_id = e->msgid;
    info.from = e->m->from;
    info.arrival = e->m->arrival;
    info.next = e->deadline;
    info.sends = e->sends;
    info.nrcpts = e->m->nrcpts;
    info.rcpts = rcpts;
    info.states = states;
    rc = fn(&info, user_data);
    smtpx__free(ob->mem, rcpts);
    smtpx__free(ob->mem, states);
    return rc;
}

int smtpx_outbox_list(smtpx_outbox *ob, smtpx_outbox_list_fn *fn,
                      void *user_data)
{
    const ob_entry **all;
    uint32_t v, n = 0;
    int rc = 0;

    if (ob == NULL || fn == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&ob->mu);
    all = smtpx__calloc(ob->mem, ob->count ? ob->count : 1, sizeof(*all));
    if (all == NULL) {
        pthread_mutex_unlock(&ob->mu);
        return SMTPX_ERR_NOMEM;
    }
    for (v = 0; v < ob->ne; v++)
        if (ob->e[v].m != NULL)
            all[n++] = &ob->e[v];
    qsort(all, n, sizeof(*all), ob_list_cmp); /* ids begin with the time */
    for (v = 0; v < n && rc == 0; v++)
        rc = ob_list_one(ob, all[v], fn, user_data);
    smtpx__free(ob->mem, all);
    pthread_mutex_unlock(&ob->mu);
    return rc;
}

size_t smtpx_outbox_count(smtpx_outbox *ob)
{
    size_t n;

    if (ob == NULL)
        return 0;
    pthread_mutex_lock(&ob->mu);
    n = ob->count;
    pthread_mutex_unlock(&ob->mu);
    return n;
}

void smtpx_outbox_stats_get(smtpx_outbox *ob, smtpx_outbox_stats *st)
{
    smtpx_outbox_stats s;

    if (ob == NULL || st == NULL || st->size == 0)
        return;
    pthread_mutex_lock(&ob->mu);
    s = ob->st;
    s.waiting = ob->count;
    pthread_mutex_unlock(&ob->mu);
    s.size = st->size;
    memcpy(st, &s, st->size < sizeof(s) ? st->size : sizeof(s));
}
