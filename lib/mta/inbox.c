/*
 * inbox - the receiving side of closing the loop: duplicate suppression by
 * Message-ID (and recipient) over a dedupe store, and acknowledgements (an
 * RFC 8098 MDN; a "delivered" RFC 3464 DSN for NOTIFY=SUCCESS) committed
 * to a queue once the application has processed a message.
 *
 * Exports the smtpx_inbox_* functions and smtpx_inbox_verdict_name() of
 * <libsmtpx/ack.h>.
 *
 * Durable writes, in order, for a key (the message, or a recipient of it):
 *
 *   check      NEW: the store records BEGUN (synced) before check returns,
 *              so that the application is handed nothing the store does
 *              not know it was handed.  REDELIVERY: already BEGUN, nothing
 *              is written.  DUPLICATE: nothing is written; the
 *              acknowledgements are committed to the queue again.
 *   processed  the store records DONE (synced), then the acknowledgements
 *              are committed to the queue (each synced), then the server
 *              may answer 250.
 *
 * What a crash leaves at each instant:
 *   before BEGUN is durable       the client got no 250 and sends again:
 *                                 NEW again, nothing was handed over.
 *   BEGUN, DONE not durable       sent again: REDELIVERY (the application
 *                                 may have done its work, and is told so).
 *   DONE, acknowledgement not     sent again (no 250 came): DUPLICATE, the
 *   committed                     acknowledgement is committed then; the
 *                                 application is not bothered.
 *   everything, 250 not written   sent again: DUPLICATE, acknowledged again.
 * So a message is never lost (nothing is acknowledged before it is
 * processed) and never handed over twice without REDELIVERY saying so.
 *
 * Keys being checked or processed are claimed in memory: a second session
 * with the same key meanwhile (a resend that overtook a slow first one)
 * gets SMTPX_ERR_IN_PROGRESS, and the application answers 451.
 *
 * The header (up to INBOX_HDR_MAX) is held to find the Message-ID,
 * Disposition-Notification-To and Subject, and to return it in the
 * acknowledgement; with SMTPX_INBOX_NOID_HASH a message without a
 * Message-ID is hashed from its first field that is not a trace field.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
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
#include "mta/fields.h"
#include "mta/mdn.h"
#include "mta/queue.h"

#define INBOX_HDR_MAX    65536 /* the header held */
#define INBOX_RETURN_MAX 16384 /* the header returned in an ack, at most */
#define INBOX_RCPTS_MAX  1000
#define INBOX_ID_MAX     998
#define INBOX_SUBJ_MAX   200

/* The store's states. */
#define INBOX_BEGUN 1
#define INBOX_DONE  2

typedef struct inbox_rcpt {
    char *addr;
    char *orcpt;
    unsigned notify;
    uint8_t digest[SMTPX__DIGEST]; /* SMTPX_INBOX_PER_RCPT */
    int verdict;
    int done;
} inbox_rcpt;

struct smtpx_inbox_msg {
    smtpx_inbox *ib;
    char *from, *envid;
    inbox_rcpt *rcpts;
    size_t nrcpts, cap;
    int written, checked, claimed;
    /* The header. */
    smtpx__buf hdr;
    size_t scan, hdr_len; /* hdr_len: 0 until the header ends */
    int hdr_over;         /* longer than INBOX_HDR_MAX: no fields */
    char *msgid, *dnt, *subject;
    smtpx__sha256_ctx *sha; /* hashing, NOID_HASH without a Message-ID */
    /* The key. */
    char *key;
    uint8_t digest[SMTPX__DIGEST];
    int verdict, done;
    smtpx_inbox_msg *next; /* the inbox's claimed messages */
};

struct smtpx_inbox {
    smtpx_mem mem_store;
    const smtpx_mem *mem;
    smtpx_inbox_opts o;
    char *ack_from, *hostname;
    pthread_mutex_t mu;
    smtpx_inbox_msg *claimed;
    smtpx_inbox_stats st;
};

static const char *const verdict_names[] = {
#define VERDICT_NAME(name, value, text) [value] = text,
    SMTPX_INBOX_VERDICT_MAP(VERDICT_NAME)
#undef VERDICT_NAME
};

const char *smtpx_inbox_verdict_name(int verdict)
{
    if (verdict < SMTPX_INBOX_NEW || verdict > SMTPX_INBOX_DUPLICATE)
        return "?";
    return verdict_names[verdict];
}

/* ---- the inbox ----------------------------------------------------------- */

int smtpx_inbox_new(smtpx_inbox **out, const smtpx_inbox_opts *opts)
{
    smtpx_inbox_opts o;
    const smtpx_mem *mem;
    smtpx_inbox *ib;

    if (out != NULL)
        *out = NULL;
    if (out == NULL || opts == NULL ||
        smtpx__copy_sized(&o, sizeof(o), opts) != 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (o.dedupe == NULL ||
        (o.flags & ~(SMTPX_INBOX_PER_RCPT | SMTPX_INBOX_ACK_ALWAYS |
                     SMTPX_INBOX_DSN_SUCCESS)) != 0 ||
        o.no_id < 0 || o.no_id >= SMTPX_INBOX_NOID_COUNT ||
        !smtpx__mem_valid(o.mem) ||
        (o.acks != NULL &&
         (o.ack_from == NULL || o.hostname == NULL ||
          !smtpx__qfile_field_ok(o.ack_from, SMTPX__QFILE_ADDR_MAX) ||
          strchr(o.ack_from, '@') == NULL ||
          !smtpx__qfile_field_ok(o.hostname, 255) || o.hostname[0] == '\0')))
        return SMTPX_ERR_INVALID_ARGUMENT;
    mem = o.mem != NULL ? o.mem : smtpx__mem_default();
    ib = smtpx__calloc(mem, 1, sizeof(*ib));
    if (ib == NULL)
        return SMTPX_ERR_NOMEM;
    ib->mem_store = *mem;
    ib->mem = &ib->mem_store;
    ib->o = o;
    ib->o.size = sizeof(o);
    ib->o.mem = ib->mem;
    ib->st.size = sizeof(ib->st);
    ib->ack_from = smtpx__strdup(ib->mem, o.ack_from);
    ib->hostname = smtpx__strdup(ib->mem, o.hostname);
    if ((o.ack_from != NULL && ib->ack_from == NULL) ||
        (o.hostname != NULL && ib->hostname == NULL) ||
        pthread_mutex_init(&ib->mu, NULL) != 0) {
        smtpx__free(mem, ib->ack_from);
        smtpx__free(mem, ib->hostname);
        smtpx__free(mem, ib);
        return SMTPX_ERR_NOMEM;
    }
    *out = ib;
    return 0;
}

void smtpx_inbox_free(smtpx_inbox *ib)
{
    smtpx_mem mem;

    if (ib == NULL)
        return;
    pthread_mutex_destroy(&ib->mu);
    smtpx__free(ib->mem, ib->ack_from);
    smtpx__free(ib->mem, ib->hostname);
    mem = ib->mem_store;
    smtpx__free(&mem, ib);
}

void smtpx_inbox_stats_get(smtpx_inbox *ib, smtpx_inbox_stats *st)
{
    smtpx_inbox_stats s;

    if (ib == NULL || st == NULL || st->size == 0)
        return;
    pthread_mutex_lock(&ib->mu);
    s = ib->st;
    pthread_mutex_unlock(&ib->mu);
    s.size = st->size;
    memcpy(st, &s, st->size < sizeof(s) ? st->size : sizeof(s));
}

/* ---- a message: its envelope and header ---------------------------------- */

int smtpx_inbox_begin(smtpx_inbox *ib, const char *from, const char *envid,
                      smtpx_inbox_msg **out)
{
    smtpx_inbox_msg *m;

    if (out != NULL)
        *out = NULL;
    if (ib == NULL || from == NULL || out == NULL ||
        !smtpx__qfile_field_ok(from, SMTPX__QFILE_ADDR_MAX) ||
        (envid != NULL && !smtpx__qfile_field_ok(envid, SMTPX__QFILE_ADDR_MAX)))
        return SMTPX_ERR_INVALID_ARGUMENT;
    m = smtpx__calloc(ib->mem, 1, sizeof(*m));
    if (m == NULL)
        return SMTPX_ERR_NOMEM;
    m->ib = ib;
    m->from = smtpx__strdup(ib->mem, from);
    m->envid = smtpx__strdup(ib->mem, envid);
    if (m->from == NULL || (envid != NULL && m->envid == NULL)) {
        smtpx_inbox_msg_free(m);
        return SMTPX_ERR_NOMEM;
    }
    *out = m;
    return 0;
}

int smtpx_inbox_add_rcpt(smtpx_inbox_msg *m, const char *addr, unsigned notify,
                         const char *orcpt)
{
    inbox_rcpt *r;

    if (m == NULL || addr == NULL || addr[0] == '\0' ||
        !smtpx__qfile_field_ok(addr, SMTPX__QFILE_ADDR_MAX) || notify > 15 ||
        (orcpt != NULL && !smtpx__qfile_field_ok(orcpt, SMTPX__QFILE_ADDR_MAX)))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (m->written || m->checked)
        return SMTPX_ERR_INVALID_STATE;
    if (m->nrcpts == INBOX_RCPTS_MAX)
        return SMTPX_ERR_LIMIT;
    if (m->nrcpts == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 4;
        r = smtpx__realloc(m->ib->mem, m->rcpts, nc * sizeof(*r));
        if (r == NULL)
            return SMTPX_ERR_NOMEM;
        m->rcpts = r;
        m->cap = nc;
    }
    r = &m->rcpts[m->nrcpts];
    memset(r, 0, sizeof(*r));
    r->addr = smtpx__strdup(m->ib->mem, addr);
    r->orcpt = smtpx__strdup(m->ib->mem, orcpt);
    r->notify = notify;
    if (r->addr == NULL || (orcpt != NULL && r->orcpt == NULL)) {
        smtpx__free(m->ib->mem, r->addr);
        smtpx__free(m->ib->mem, r->orcpt);
        return SMTPX_ERR_NOMEM;
    }
    m->nrcpts++;
    return 0;
}

/* inbox_fields - Message-ID, Disposition-Notification-To and Subject of
 * the header held (the first of each) */
static int inbox_fields(smtpx_inbox_msg *m)
{
    const smtpx_mem *mem = m->ib->mem;
    smtpx__fields f;
    const char *name;
    size_t nlen;
    char v[INBOX_ID_MAX + 1], out[INBOX_ID_MAX + 1];
    int rc;

    if (m->hdr_over || m->hdr_len == 0)
        return 0;
    f.p = (const char *)smtpx__buf_head(&m->hdr);
    f.end = f.p + m->hdr_len;
    while ((rc = smtpx__fields_next(&f, &name, &nlen, v, sizeof(v))) !=
           SMTPX__FIELD_END) {
        char **dst = NULL;
        if (rc != SMTPX__FIELD_OK)
            continue;
        if (m->msgid == NULL && smtpx__fields_is(name, nlen, "Message-ID") &&
            smtpx__msgid(v, out, sizeof(out)) > 0)
            dst = &m->msgid;
        else if (m->dnt == NULL &&
                 smtpx__fields_is(name, nlen, "Disposition-Notification-To") &&
                 smtpx__mailbox(v, out, sizeof(out)) > 0 &&
                 smtpx__qfile_field_ok(out, SMTPX__QFILE_ADDR_MAX))
            dst = &m->dnt;
        else if (m->subject == NULL &&
                 smtpx__fields_is(name, nlen, "Subject") &&
                 strlen(v) <= INBOX_SUBJ_MAX) {
            snprintf(out, sizeof(out), "%s", v);
            dst = &m->subject;
        }
        if (dst != NULL && (*dst = smtpx__strdup(mem, out)) == NULL)
            return SMTPX_ERR_NOMEM;
    }
    return 0;
}

/* inbox_hash_start - the header has ended without a Message-ID: hash it
 * from its first field that is not a trace field (NOID_HASH) */
static int inbox_hash_start(smtpx_inbox_msg *m)
{
    const char *h = (const char *)smtpx__buf_head(&m->hdr);
    size_t len = smtpx__buf_used(&m->hdr);
    size_t from = m->hdr_over ? 0 : smtpx__trace_end(h, m->hdr_len);
    int rc;

    rc = smtpx__sha256_new(&m->sha, m->ib->mem);
    if (rc != 0)
        return rc;
    if (len > from && smtpx__sha256_update(m->sha, h + from, len - from) != 0)
        return SMTPX_ERR_INTERNAL;
    return 0;
}

/* inbox_header_done - the header ended (or passed its bound) */
static int inbox_header_done(smtpx_inbox_msg *m)
{
    int rc = inbox_fields(m);

    if (rc == 0 && m->msgid == NULL && m->ib->o.no_id == SMTPX_INBOX_NOID_HASH)
        rc = inbox_hash_start(m);
    return rc;
}

int smtpx_inbox_write(smtpx_inbox_msg *m, const void *data, size_t len)
{
    const smtpx_mem *mem;
    size_t used, take, end;
    int rc;

    if (m == NULL || (data == NULL && len > 0))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (m->checked || m->nrcpts == 0)
        return SMTPX_ERR_INVALID_STATE;
    m->written = 1;
    mem = m->ib->mem;
    if (m->hdr_len == 0 && !m->hdr_over && len > 0) {
        used = smtpx__buf_used(&m->hdr);
        take = len < INBOX_HDR_MAX - used ? len : INBOX_HDR_MAX - used;
        if (smtpx__buf_append(&m->hdr, mem, data, take) != 0)
            return SMTPX_ERR_NOMEM;
        end = smtpx__header_end((const char *)smtpx__buf_head(&m->hdr),
                                used + take, &m->scan);
        if (end != 0) {
            /* Keep the header alone; what followed it is content. */
            m->hdr_len = end;
            m->hdr.len = m->hdr.off + end;
            take = end - used;
        } else if (used + take == INBOX_HDR_MAX) {
            m->hdr_over = 1;
        } else {
            return 0;
        }
        rc = inbox_header_done(m);
        if (rc != 0)
            return rc;
        data = (const uint8_t *)data + take;
        len -= take;
    }
    if (m->sha != NULL && len > 0 &&
        smtpx__sha256_update(m->sha, data, len) != 0)
        return SMTPX_ERR_INTERNAL;
    return 0;
}

/* ---- checking ------------------------------------------------------------ */

/* inbox_make_key - the key of the message, once it is whole */
static int inbox_make_key(smtpx_inbox_msg *m)
{
    const smtpx_mem *mem = m->ib->mem;
    char key[80];

    if (m->hdr_len == 0 && !m->hdr_over) {
        /* A message that ended inside its header: what came is its
         * header. */
        m->hdr_len = smtpx__buf_used(&m->hdr);
        if (inbox_header_done(m) != 0)
            return SMTPX_ERR_NOMEM;
    }
    if (m->msgid != NULL) {
        m->key = smtpx__strdup(mem, m->msgid);
    } else if (m->ib->o.no_id == SMTPX_INBOX_NOID_HASH) {
        uint8_t h[32];
        size_t i;
        if (m->sha == NULL && inbox_hash_start(m) != 0)
            return SMTPX_ERR_NOMEM;
        if (smtpx__sha256_finish(m->sha, h) != 0)
            return SMTPX_ERR_INTERNAL;
        memcpy(key, "sha256:", 7);
        for (i = 0; i < 32; i++)
            snprintf(key + 7 + 2 * i, 3, "%02x", h[i]);
        m->key = smtpx__strdup(mem, key);
    } else if (m->ib->o.no_id == SMTPX_INBOX_NOID_ACCEPT) {
        m->key = smtpx__strdup(mem, "");
    } else {
        return SMTPX_ERR_NO_MESSAGE_ID;
    }
    return m->key != NULL ? 0 : SMTPX_ERR_NOMEM;
}

/* inbox_rcpt_digest - the key of one recipient: the message's key, a NUL,
 * and the address with its domain in lower case */
static int inbox_rcpt_digest(smtpx_inbox_msg *m, inbox_rcpt *r)
{
    size_t kl = strlen(m->key), al = strlen(r->addr), i;
    char *buf = smtpx__malloc(m->ib->mem, kl + al + 1);
    const char *at = strrchr(r->addr, '@');
    int rc;

    if (buf == NULL)
        return SMTPX_ERR_NOMEM;
    memcpy(buf, m->key, kl);
    buf[kl] = '\0';
    memcpy(buf + kl + 1, r->addr, al);
    for (i = at ? (size_t)(at - r->addr) : al; i < al; i++)
        buf[kl + 1 + i] = (char)tolower((unsigned char)buf[kl + 1 + i]);
    rc = smtpx__digest(buf, kl + 1 + al, r->digest) == 0 ? 0
                                                         : SMTPX_ERR_INTERNAL;
    smtpx__free(m->ib->mem, buf);
    return rc;
}

static int inbox_per_rcpt(const smtpx_inbox_msg *m)
{
    return (m->ib->o.flags & SMTPX_INBOX_PER_RCPT) != 0;
}

/* inbox_units - the digests this message claims: one, or one per
 * recipient */
static size_t inbox_units(const smtpx_inbox_msg *m)
{
    return inbox_per_rcpt(m) ? m->nrcpts : 1;
}

static const uint8_t *inbox_unit(const smtpx_inbox_msg *m, size_t u)
{
    return inbox_per_rcpt(m) ? m->rcpts[u].digest : m->digest;
}

/* inbox_busy - another message claims one of m's digests (lock held) */
static int inbox_busy(const smtpx_inbox *ib, const smtpx_inbox_msg *m)
{
    const smtpx_inbox_msg *o;
    size_t u, v;

    for (o = ib->claimed; o != NULL; o = o->next)
        for (u = 0; u < inbox_units(m); u++)
            for (v = 0; v < inbox_units(o); v++)
                if (memcmp(inbox_unit(m, u), inbox_unit(o, v), SMTPX__DIGEST) ==
                    0)
                    return 1;
    return 0;
}

static void inbox_unclaim(smtpx_inbox_msg *m)
{
    smtpx_inbox *ib = m->ib;
    smtpx_inbox_msg **pp;

    if (!m->claimed)
        return;
    pthread_mutex_lock(&ib->mu);
    for (pp = &ib->claimed; *pp != NULL; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    pthread_mutex_unlock(&ib->mu);
    m->claimed = 0;
}

/* inbox_claim - claim m's digests, or SMTPX_ERR_IN_PROGRESS */
static int inbox_claim(smtpx_inbox_msg *m)
{
    smtpx_inbox *ib = m->ib;
    int busy;

    pthread_mutex_lock(&ib->mu);
    busy = inbox_busy(ib, m);
    if (!busy) {
        m->next = ib->claimed;
        ib->claimed = m;
        m->claimed = 1;
    }
    pthread_mutex_unlock(&ib->mu);
    return busy ? SMTPX_ERR_IN_PROGRESS : 0;
}

/* inbox_acks - commit the acknowledgements of recipients [from, to) */
static void inbox_acks(smtpx_inbox_msg *m, size_t from, size_t to);

/* inbox_decide - the verdict of a unit from the store; a NEW one is
 * recorded BEGUN, durably */
static int inbox_decide(smtpx_inbox_msg *m, const uint8_t *digest, int *verdict)
{
    int state = smtpx__dedupe_get_digest(m->ib->o.dedupe, digest, NULL);

    if (state == INBOX_DONE) {
        *verdict = SMTPX_INBOX_DUPLICATE;
        return 0;
    }
    if (state == INBOX_BEGUN) {
        *verdict = SMTPX_INBOX_REDELIVERY;
        return 0;
    }
    *verdict = SMTPX_INBOX_NEW;
    return smtpx__dedupe_put_digest(m->ib->o.dedupe, digest, INBOX_BEGUN);
}

static void inbox_count(smtpx_inbox *ib, int verdict)
{
    pthread_mutex_lock(&ib->mu);
    if (verdict == SMTPX_INBOX_NEW)
        ib->st.new_keys++;
    else if (verdict == SMTPX_INBOX_REDELIVERY)
        ib->st.redelivered++;
    else
        ib->st.duplicates++;
    pthread_mutex_unlock(&ib->mu);
}

static int inbox_check_units(smtpx_inbox_msg *m)
{
    size_t u;
    int rc;

    if (!inbox_per_rcpt(m)) {
        rc = inbox_decide(m, m->digest, &m->verdict);
        if (rc != 0)
            return rc;
        inbox_count(m->ib, m->verdict);
        for (u = 0; u < m->nrcpts; u++)
            m->rcpts[u].verdict = m->verdict;
        if (m->verdict == SMTPX_INBOX_DUPLICATE)
            inbox_acks(m, 0, m->nrcpts);
        return 0;
    }
    for (u = 0; u < m->nrcpts; u++) {
        inbox_rcpt *r = &m->rcpts[u];
        rc = inbox_decide(m, r->digest, &r->verdict);
        if (rc != 0)
            return rc;
        inbox_count(m->ib, r->verdict);
        if (r->verdict == SMTPX_INBOX_DUPLICATE)
            inbox_acks(m, u, u + 1);
    }
    return 0;
}

int smtpx_inbox_check(smtpx_inbox_msg *m)
{
    smtpx_inbox *ib;
    size_t u;
    int rc;

    if (m == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (m->checked || m->nrcpts == 0)
        return SMTPX_ERR_INVALID_STATE;
    ib = m->ib;
    m->checked = 1;
    pthread_mutex_lock(&ib->mu);
    ib->st.messages++;
    pthread_mutex_unlock(&ib->mu);
    rc = inbox_make_key(m);
    if (rc == SMTPX_ERR_NO_MESSAGE_ID) {
        pthread_mutex_lock(&ib->mu);
        ib->st.refused++;
        pthread_mutex_unlock(&ib->mu);
    }
    if (rc != 0)
        return rc;
    if (m->key[0] == '\0') {
        /* NOID_ACCEPT: nothing to suppress by. */
        m->verdict = SMTPX_INBOX_NEW;
        for (u = 0; u < m->nrcpts; u++)
            m->rcpts[u].verdict = SMTPX_INBOX_NEW;
        return 0;
    }
    if (smtpx__digest(m->key, strlen(m->key), m->digest) != 0)
        return SMTPX_ERR_INTERNAL;
    for (u = 0; inbox_per_rcpt(m) && u < m->nrcpts; u++)
        if ((rc = inbox_rcpt_digest(m, &m->rcpts[u])) != 0)
            return rc;
    rc = inbox_claim(m);
    if (rc == 0)
        rc = inbox_check_units(m);
    if (rc != 0) {
        /* What was recorded BEGUN stays so: the next time is a
         * REDELIVERY, which is true of nothing yet but harmless. */
        inbox_unclaim(m);
        m->verdict = 0;
        return rc;
    }
    if (inbox_per_rcpt(m)) {
        m->verdict = SMTPX_INBOX_DUPLICATE;
        for (u = 0; u < m->nrcpts; u++)
            if (m->rcpts[u].verdict < m->verdict)
                m->verdict = m->rcpts[u].verdict;
    }
    return 0;
}

int smtpx_inbox_verdict(const smtpx_inbox_msg *m, size_t i)
{
    if (m == NULL || (i != SMTPX_INBOX_ALL && i >= m->nrcpts))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (!m->checked || m->verdict == 0)
        return SMTPX_ERR_INVALID_STATE;
    return i == SMTPX_INBOX_ALL ? m->verdict : m->rcpts[i].verdict;
}

const char *smtpx_inbox_key(const smtpx_inbox_msg *m)
{
    return m != NULL && m->verdict != 0 ? m->key : NULL;
}

/* ---- acknowledgements ---------------------------------------------------- */

/* inbox_returned - the header to return in an acknowledgement, or NULL */
static const char *inbox_returned(const smtpx_inbox_msg *m, size_t *len)
{
    if (m->hdr_over || m->hdr_len == 0 || m->hdr_len > INBOX_RETURN_MAX)
        return NULL;
    *len = m->hdr_len;
    return (const char *)smtpx__buf_head(&m->hdr);
}

static void inbox_ack_result(smtpx_inbox *ib, int rc)
{
    pthread_mutex_lock(&ib->mu);
    if (rc == 0)
        ib->st.acks++;
    else
        ib->st.ack_errors++;
    pthread_mutex_unlock(&ib->mu);
}

/* inbox_mdn - an MDN for recipient r, to the address asked for (the
 * Disposition-Notification-To, or the sender under ACK_ALWAYS) */
static void inbox_mdn(smtpx_inbox_msg *m, const inbox_rcpt *r, int64_t now)
{
    smtpx_inbox *ib = m->ib;
    const char *to = m->dnt;
    smtpx__mdn mdn;

    if (to == NULL && (ib->o.flags & SMTPX_INBOX_ACK_ALWAYS))
        to = m->from[0] != '\0' ? m->from : NULL;
    if (to == NULL)
        return;
    memset(&mdn, 0, sizeof(mdn));
    mdn.to = to;
    mdn.from = ib->ack_from;
    mdn.hostname = ib->hostname;
    mdn.orig_msgid = m->msgid;
    mdn.rcpt = r->addr;
    mdn.orcpt = r->orcpt;
    mdn.subject = m->subject;
    mdn.headers = inbox_returned(m, &mdn.headers_len);
    mdn.now = now;
    inbox_ack_result(ib, smtpx__mdn_queue(ib->o.acks, &mdn, NULL, 0));
}

/* inbox_dsn - a "delivered" DSN for the recipients in [from, to) that
 * asked for one with NOTIFY=SUCCESS (RFC 3461 4.1), to the sender */
static void inbox_dsn(smtpx_inbox_msg *m, size_t from, size_t to, int64_t now)
{
    static const char ok[] = "delivered";
    smtpx_inbox *ib = m->ib;
    smtpx__qrcpt *rc;
    size_t *idx, n = 0, i;
    smtpx__dsn_opts o;
    smtpx__qmsg q;

    if (!(ib->o.flags & SMTPX_INBOX_DSN_SUCCESS) || m->from[0] == '\0')
        return;
    for (i = from; i < to; i++)
        if ((m->rcpts[i].notify & SMTPX_DSN_NOTIFY_SUCCESS) &&
            !(m->rcpts[i].notify & SMTPX_DSN_NOTIFY_NEVER))
            n++;
    if (n == 0)
        return;
    rc = smtpx__calloc(ib->mem, n, sizeof(*rc));
    idx = smtpx__calloc(ib->mem, n, sizeof(*idx));
    if (rc == NULL || idx == NULL) {
        inbox_ack_result(ib, SMTPX_ERR_NOMEM);
        goto out;
    }
    for (n = 0, i = from; i < to; i++) {
        const inbox_rcpt *r = &m->rcpts[i];
        if (!(r->notify & SMTPX_DSN_NOTIFY_SUCCESS) ||
            (r->notify & SMTPX_DSN_NOTIFY_NEVER))
            continue;
        rc[n].addr = r->addr;
        rc[n].orcpt = r->orcpt;
        rc[n].notify = r->notify;
        rc[n].state = SMTPX_QRCPT_DELIVERED;
        rc[n].code = 250;
        rc[n].enh[0] = 2;
        rc[n].text = (char *)ok;
        idx[n] = n;
        n++;
    }
    memset(&q, 0, sizeof(q));
    if (smtpx__make_msgid(q.id, sizeof(q.id), NULL) < 0)
        snprintf(q.id, sizeof(q.id), "%lld", (long long)now);
    q.from = m->from;
    q.envid = m->envid;
    q.ret = SMTPX_DSN_RET_HDRS;
    q.arrival = now;
    q.nrcpts = n;
    q.rcpts = rc;
    memset(&o, 0, sizeof(o));
    o.hostname = ib->hostname;
    o.now = now;
    o.headers = inbox_returned(m, &o.headers_len);
    inbox_ack_result(ib, smtpx__dsn_queue(ib->o.acks, &q, SMTPX__DSN_DELIVERED,
                                          idx, NULL, n, -1, &o, NULL, 0));
out:
    smtpx__free(ib->mem, rc);
    smtpx__free(ib->mem, idx);
}

static void inbox_acks(smtpx_inbox_msg *m, size_t from, size_t to)
{
    smtpx_queue *q = m->ib->o.acks;
    int64_t now;
    size_t i;

    if (q == NULL)
        return;
    now = smtpx__queue_now(q);
    for (i = from; i < to; i++)
        inbox_mdn(m, &m->rcpts[i], now);
    inbox_dsn(m, from, to, now);
}

/* inbox_done - record DONE for a unit that was handed over */
static int inbox_done(smtpx_inbox_msg *m, const uint8_t *digest)
{
    return smtpx__dedupe_put_digest(m->ib->o.dedupe, digest, INBOX_DONE);
}

int smtpx_inbox_processed(smtpx_inbox_msg *m, size_t i)
{
    size_t u;
    int rc;

    if (m == NULL || (i != SMTPX_INBOX_ALL && i >= m->nrcpts))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (!m->checked || m->verdict == 0)
        return SMTPX_ERR_INVALID_STATE;
    if (!inbox_per_rcpt(m)) {
        if (m->done || m->verdict == SMTPX_INBOX_DUPLICATE)
            return 0;
        if (m->key[0] != '\0' && (rc = inbox_done(m, m->digest)) != 0)
            return rc;
        m->done = 1;
        inbox_acks(m, 0, m->nrcpts);
        return 0;
    }
    for (u = i == SMTPX_INBOX_ALL ? 0 : i;
         u < (i == SMTPX_INBOX_ALL ? m->nrcpts : i + 1); u++) {
        inbox_rcpt *r = &m->rcpts[u];
        if (r->done || r->verdict == SMTPX_INBOX_DUPLICATE)
            continue;
        if (m->key[0] != '\0' && (rc = inbox_done(m, r->digest)) != 0)
            return rc;
        r->done = 1;
        inbox_acks(m, u, u + 1);
    }
    return 0;
}

void smtpx_inbox_msg_free(smtpx_inbox_msg *m)
{
    const smtpx_mem *mem;
    size_t i;

    if (m == NULL)
        return;
    mem = m->ib->mem;
    inbox_unclaim(m);
    for (i = 0; i < m->nrcpts; i++) {
        smtpx__free(mem, m->rcpts[i].addr);
        smtpx__free(mem, m->rcpts[i].orcpt);
    }
    smtpx__free(mem, m->rcpts);
    smtpx__free(mem, m->from);
    smtpx__free(mem, m->envid);
    smtpx__free(mem, m->msgid);
    smtpx__free(mem, m->dnt);
    smtpx__free(mem, m->subject);
    smtpx__free(mem, m->key);
    smtpx__sha256_free(m->sha, mem);
    smtpx__buf_free(&m->hdr, mem);
    smtpx__free(mem, m);
}
