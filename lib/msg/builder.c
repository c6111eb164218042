/*
 * msg_builder - an RFC 5322 + MIME message, produced as a pull stream.
 *
 * Exports smtpx_msg_* of <libsmtpx/msg.h> but smtpx_msg_add_fd() (which
 * reads a file descriptor: lib/io/msgfd.c) and the parser's functions.
 *
 * RFC 5322 (fields, folding 2.2.3, line length 2.1.1, Date 3.3,
 * Message-ID 3.6.4), RFC 2045 (Content-Type, transfer encodings), RFC
 * 2046 (multipart, boundaries), RFC 2047 (encoded words), RFC 2183
 * (Content-Disposition), RFC 2231 (non-ASCII parameters), RFC 2387
 * (multipart/related), RFC 6532 (UTF-8 headers with SMTPUTF8), RFC 6152
 * and RFC 3030 (8bit and binary only when the transport carries them).
 *
 * Invariants:
 *  - Until the first read the message is a list of fields and parts;
 *    the first read (or smtpx_msg_body_type()) plans the output once: a
 *    list of literal pieces (headers, boundaries) and part contents.
 *  - Content is read from its source only as the output needs it and
 *    encoded through fixed buffers: memory does not grow with a part.
 *  - Header lines are folded at 78 columns where white space allows;
 *    every token is bounded when it is added, so no line passes 998.
 *  - A boundary ("=_" and random hex) cannot appear in quoted-printable or
 *    base64; content sent as it is (7bit, 8bit, binary) is searched for it
 *    and encoded instead if it holds it.
 */
#include <string.h>
#include <time.h>

#include <libsmtpx/msg.h>

#include "base/crypto.h"
#include "base/mem.h"
#include "msg/codec.h"
#include "msg/words.h"

/* RFC 5322 2.1.1. */
#define BUILD_FOLD     78
#define BUILD_LINE_MAX 998
/* Longest word written as it is in unstructured text; longer ones are
 * encoded (encoded words are split). */
#define BUILD_WORD_MAX 900
/* Input read per step, a multiple of 57 (one base64 line). */
#define BUILD_IN  (57 * 60)
#define BUILD_OUT SMTPX__QPENC_OUT(BUILD_IN)

/* The address fields, in the order they are written (Bcc is not). */
#define BUILD_ADDR_MAP(XX)                                                     \
    XX(FROM, "From")                                                           \
    XX(SENDER, "Sender")                                                       \
    XX(REPLY_TO, "Reply-To")                                                   \
    XX(TO, "To")                                                               \
    XX(CC, "Cc")                                                               \
    XX(BCC, "Bcc")

enum {
#define BUILD_ADDR_ENUM(id, name) ADDR_##id,
    BUILD_ADDR_MAP(BUILD_ADDR_ENUM)
#undef BUILD_ADDR_ENUM
        ADDR_COUNT
};

static const char *const build_addr_names[ADDR_COUNT] = {
#define BUILD_ADDR_NAME(id, name) name,
    BUILD_ADDR_MAP(BUILD_ADDR_NAME)
#undef BUILD_ADDR_NAME
};

typedef struct build_part {
    int kind;
    char *type, *charset, *filename, *cid;
    int cte;      /* chosen (never AUTO after planning) */
    int norm_eol; /* bodies: LF and CRLF become CRLF */
    const uint8_t *data;
    size_t len;
    smtpx_msg_read_fn *read;
    void *read_ctx;
} build_part;

/* An output item: literal text, or a part's content. */
typedef struct build_item {
    size_t off, len; /* literal: in m->lit */
    long part;       /* -1 for a literal */
} build_item;

struct smtpx_msg {
    smtpx_mem mem;
    unsigned flags;
    int (*rand)(uint8_t *buf, size_t len, void *ud);
    void *rand_ud;
    int planned, err;

    smtpx__mstr addrs[ADDR_COUNT]; /* "name\0addr\0" pairs (name may be "") */
    size_t naddrs[ADDR_COUNT];
    char *subject, *msgid;
    int has_date;
    int64_t date;
    int date_off;
    smtpx__mstr refs;   /* "<id> <id>" */
    char *last_ref;     /* In-Reply-To */
    smtpx__mstr custom; /* "Name\0value\0" */
    build_part *parts;
    size_t nparts;

    /* The plan. */
    smtpx__mstr lit;
    unsigned nbound; /* boundaries made */
    build_item *items;
    size_t nitems, items_cap;
    int body_type;
    /* Reading. */
    size_t item, pos; /* current item; offset in a literal or memory */
    int src_done;     /* the current part's source has ended */
    smtpx__qpenc qp;
    smtpx__b64enc b64;
    int last_cr; /* norm_eol: the last input octet was CR */
    uint8_t in[BUILD_IN];
    uint8_t out[BUILD_OUT];
    size_t out_off, out_len;
};

/* ---- helpers --------------------------------------------------------------
 */

static int build_ieq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

/* build_text_ok - UTF-8 text without control characters (but TAB) */
static int build_text_ok(const char *s, size_t max)
{
    size_t n = strlen(s), i;

    if (n > max || !smtpx__utf8_valid((const uint8_t *)s, n))
        return 0;
    for (i = 0; i < n; i++)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
            return 0;
    return 1;
}

static int build_ascii(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 0;
    return 1;
}

/* build_id_ok - a msg-id without brackets: id-left "@" id-right, printable
 * ASCII without white space, brackets or a second "@" */
static int build_id_ok(const char *id)
{
    size_t n, i, at = 0;

    if (id == NULL || (n = strlen(id)) == 0 || n > 250)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c <= ' ' || c >= 127 || strchr("<>()[]\\\",;:", c) != NULL)
            return 0;
        if (c == '@')
            at++;
    }
    return at == 1 && id[0] != '@' && id[n - 1] != '@';
}

static int build_writable(const smtpx_msg *m)
{
    if (m->planned)
        return SMTPX_ERR_INVALID_STATE;
    return 0;
}

static char *build_dup(smtpx_msg *m, const char *s)
{
    return s != NULL ? smtpx__strdup(&m->mem, s) : NULL;
}

/* ---- setters
 * ----------------------------------------------------------------- */

int smtpx_msg_new(smtpx_msg **out, unsigned flags, const smtpx_mem *mem)
{
    smtpx_msg *m;
    int i;

    if (out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!smtpx__mem_valid(mem) ||
        (flags & ~(SMTPX_MSG_8BIT | SMTPX_MSG_BINARY | SMTPX_MSG_SMTPUTF8)))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (mem == NULL)
        mem = smtpx__mem_default();
    m = smtpx__calloc(mem, 1, sizeof(*m));
    if (m == NULL)
        return SMTPX_ERR_NOMEM;
    m->mem = *mem;
    m->flags = flags;
    m->rand = smtpx__random_system;
    for (i = 0; i < ADDR_COUNT; i++)
        smtpx__mstr_init(&m->addrs[i], &m->mem);
    smtpx__mstr_init(&m->refs, &m->mem);
    smtpx__mstr_init(&m->custom, &m->mem);
    smtpx__mstr_init(&m->lit, &m->mem);
    *out = m;
    return 0;
}

void smtpx_msg_free(smtpx_msg *m)
{
    size_t i;

    if (m == NULL)
        return;
    for (i = 0; i < ADDR_COUNT; i++)
        smtpx__mstr_free(&m->addrs[i]);
    smtpx__mstr_free(&m->refs);
    smtpx__mstr_free(&m->custom);
    smtpx__mstr_free(&m->lit);
    for (i = 0; i < m->nparts; i++) {
        smtpx__free(&m->mem, m->parts[i].type);
        smtpx__free(&m->mem, m->parts[i].charset);
        smtpx__free(&m->mem, m->parts[i].filename);
        smtpx__free(&m->mem, m->parts[i].cid);
    }
    smtpx__free(&m->mem, m->parts);
    smtpx__free(&m->mem, m->items);
    smtpx__free(&m->mem, m->subject);
    smtpx__free(&m->mem, m->msgid);
    smtpx__free(&m->mem, m->last_ref);
    smtpx__free(&m->mem, m);
}

int smtpx_msg_set_random(smtpx_msg *m,
                         int (*fn)(uint8_t *buf, size_t len, void *ud),
                         void *rand_user_data)
{
    if (m == NULL || fn == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (m->planned)
        return SMTPX_ERR_INVALID_STATE;
    m->rand = fn;
    m->rand_ud = rand_user_data;
    return 0;
}

static int build_field(const char *field)
{
    int i;

    if (field == NULL)
        return -1;
    for (i = 0; i < ADDR_COUNT; i++)
        if (build_ieq(field, build_addr_names[i]))
            return i;
    return -1;
}

int smtpx_msg_add_addr(smtpx_msg *m, const char *field, const char *name,
                       const char *addr)
{
    int f = build_field(field), rc;
    size_t n, i, at = 0;
    smtpx__mstr *s;

    if (m == NULL || f < 0 || addr == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if ((rc = build_writable(m)) != 0)
        return rc;
    n = strlen(addr);
    if (n == 0 || n > 254 || !smtpx__utf8_valid((const uint8_t *)addr, n))
        return SMTPX_ERR_INVALID_ARGUMENT;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)addr[i];
        if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ',' ||
            (c >= 0x80 && !(m->flags & SMTPX_MSG_SMTPUTF8)))
            return SMTPX_ERR_INVALID_ARGUMENT;
        if (c == '@')
            at = i + 1;
    }
    if (at <= 1 || at == n)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (name != NULL && !build_text_ok(name, 256))
        return SMTPX_ERR_INVALID_ARGUMENT;
    s = &m->addrs[f];
    smtpx__mstr_adds(s, name != NULL ? name : "");
    smtpx__mstr_addc(s, '\0');
    smtpx__mstr_adds(s, addr);
    smtpx__mstr_addc(s, '\0');
    if (s->err) {
        s->err = 0;
        return SMTPX_ERR_NOMEM;
    }
    m->naddrs[f]++;
    return 0;
}

const char *smtpx_msg_addr(const smtpx_msg *m, const char *field, size_t i)
{
    int f = build_field(field);
    const char *p;
    size_t k;

    if (m == NULL || f < 0 || i >= m->naddrs[f])
        return NULL;
    p = m->addrs[f].p;
    for (k = 0;; k++) {
        p += strlen(p) + 1; /* the name */
        if (k == i)
            return p;
        p += strlen(p) + 1;
    }
}

static int build_set_str(smtpx_msg *m, char **dst, const char *s)
{
    char *c = smtpx__strdup(&m->mem, s);

    if (c == NULL)
        return SMTPX_ERR_NOMEM;
    smtpx__free(&m->mem, *dst);
    *dst = c;
    return 0;
}

int smtpx_msg_set_subject(smtpx_msg *m, const char *subject)
{
    int rc;

    if (m == NULL || subject == NULL || !build_text_ok(subject, 8192))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if ((rc = build_writable(m)) != 0)
        return rc;
    return build_set_str(m, &m->subject, subject);
}

int smtpx_msg_set_date(smtpx_msg *m, int64_t unix_time, int utc_offset)
{
    char buf[32];
    int rc;

    if (m == NULL ||
        smtpx_format_date(unix_time, utc_offset, buf, sizeof(buf)) < 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if ((rc = build_writable(m)) != 0)
        return rc;
    m->has_date = 1;
    m->date = unix_time;
    m->date_off = utc_offset;
    return 0;
}

int smtpx_msg_set_message_id(smtpx_msg *m, const char *id)
{
    int rc;

    if (m == NULL || !build_id_ok(id))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if ((rc = build_writable(m)) != 0)
        return rc;
    return build_set_str(m, &m->msgid, id);
}

/* build_make_id - 128 random bits in base32 "@" the sender's domain */
static int build_make_id(smtpx_msg *m)
{
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    uint8_t r[16];
    char id[300];
    const char *from = smtpx_msg_addr(m, "From", 0);
    const char *dom = from != NULL ? strrchr(from, '@') + 1 : "localhost";
    size_t i, k = 0;
    uint32_t acc = 0;
    int bits = 0, rc;

    if (m->msgid != NULL)
        return 0;
    rc = m->rand(r, sizeof(r), m->rand_ud);
    if (rc != 0)
        return rc < 0 ? rc : SMTPX_ERR_INTERNAL;
    for (i = 0; i < sizeof(r); i++) {
        acc = acc << 8 | r[i];
        bits += 8;
        while (bits >= 5) {
            id[k++] = b32[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        id[k++] = b32[(acc << (5 - bits)) & 31];
    id[k++] = '@';
    if (strlen(dom) + k + 1 > sizeof(id) || !build_ascii(dom, strlen(dom)))
        dom = "localhost";
    strcpy(id + k, dom);
    return build_set_str(m, &m->msgid, id);
}

const char *smtpx_msg_message_id(smtpx_msg *m)
{
    if (m == NULL || build_make_id(m) != 0)
        return NULL;
    return m->msgid;
}

int smtpx_msg_add_reference(smtpx_msg *m, const char *id)
{
    int rc;

    if (m == NULL || !build_id_ok(id))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if ((rc = build_writable(m)) != 0)
        return rc;
    if (m->refs.len > 0)
        smtpx__mstr_addc(&m->refs, ' ');
    smtpx__mstr_addc(&m->refs, '<');
    smtpx__mstr_adds(&m->refs, id);
    smtpx__mstr_addc(&m->refs, '>');
    if (m->refs.err) {
        m->refs.err = 0;
        return SMTPX_ERR_NOMEM;
    }
    return build_set_str(m, &m->last_ref, id);
}

int smtpx_msg_add_header(smtpx_msg *m, const char *name, const char *value)
{
    static const char *const reserved[] = {
        "From",       "Sender",       "Reply-To",    "To",
        "Cc",         "Bcc",          "Subject",     "Date",
        "Message-ID", "MIME-Version", "In-Reply-To", "References"};
    size_t n, i;
    int rc;

    if (m == NULL || name == NULL || value == NULL ||
        !build_text_ok(value, 8192))
        return SMTPX_ERR_INVALID_ARGUMENT;
    n = strlen(name);
    if (n == 0 || n > 76)
        return SMTPX_ERR_INVALID_ARGUMENT;
    for (i = 0; i < n; i++)
        if ((unsigned char)name[i] <= ' ' || (unsigned char)name[i] >= 127 ||
            name[i] == ':')
            return SMTPX_ERR_INVALID_ARGUMENT;
    for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (build_ieq(name, reserved[i]))
            return SMTPX_ERR_INVALID_ARGUMENT;
    if (n >= 8) {
        char low[9];
        for (i = 0; i < 8; i++)
            low[i] = name[i] >= 'A' && name[i] <= 'Z'
                         ? (char)(name[i] - 'A' + 'a')
                         : name[i];
        low[8] = '\0';
        if (strcmp(low, "content-") == 0)
            return SMTPX_ERR_INVALID_ARGUMENT;
    }
    if ((rc = build_writable(m)) != 0)
        return rc;
    smtpx__mstr_adds(&m->custom, name);
    smtpx__mstr_addc(&m->custom, '\0');
    smtpx__mstr_adds(&m->custom, value);
    smtpx__mstr_addc(&m->custom, '\0');
    if (m->custom.err) {
        m->custom.err = 0;
        return SMTPX_ERR_NOMEM;
    }
    return 0;
}

/* build_scan - what a part from memory holds */
typedef struct build_stats {
    size_t n8, nctl, bare_cr, bare_lf, crlf, maxline;
} build_stats;

static void build_scan(const uint8_t *d, size_t n, build_stats *st)
{
    size_t i, line = 0;

    memset(st, 0, sizeof(*st));
    for (i = 0; i < n; i++) {
        unsigned char c = d[i];
        if (c == '\n') {
            if (i > 0 && d[i - 1] == '\r')
                st->crlf++;
            else
                st->bare_lf++;
            if (line > st->maxline)
                st->maxline = line;
            line = 0;
            continue;
        }
        if (c == '\r') {
            if (i + 1 >= n || d[i + 1] != '\n')
                st->bare_cr++;
            continue;
        }
        line++;
        if (c >= 0x80)
            st->n8++;
        else if ((c < 0x20 && c != '\t') || c == 0x7f)
            st->nctl++;
    }
    if (line > st->maxline)
        st->maxline = line;
}

/* build_choose - the transfer encoding of a part from memory (cte AUTO),
 * or the check of a forced one; 0 or SMTPX_ERR_INVALID_ARGUMENT */
static int build_choose(const smtpx_msg *m, build_part *p)
{
    int body = p->kind == SMTPX_PART_TEXT || p->kind == SMTPX_PART_HTML;
    int b8 = (m->flags & SMTPX_MSG_8BIT) != 0;
    int bin = (m->flags & SMTPX_MSG_BINARY) != 0;
    build_stats st;
    int lines_ok;

    if (p->read != NULL) {
        switch (p->cte) {
        case SMTPX_CTE_AUTO:
            p->cte = body  ? SMTPX_CTE_QP
                     : bin ? SMTPX_CTE_BINARY
                           : SMTPX_CTE_BASE64;
            return 0;
        case SMTPX_CTE_QP:
        case SMTPX_CTE_BASE64:
            return 0;
        case SMTPX_CTE_BINARY:
            return bin ? 0 : SMTPX_ERR_INVALID_ARGUMENT;
        default: /* 7bit and 8bit cannot be checked in advance */
            return SMTPX_ERR_INVALID_ARGUMENT;
        }
    }
    build_scan(p->data, p->len, &st);
    /* Bodies may end lines with LF (made CRLF); attachments must have
     * CRLF already, or an octet would change on the way. */
    lines_ok = st.nctl == 0 && st.bare_cr == 0 &&
               st.maxline <= BUILD_LINE_MAX && (body || st.bare_lf == 0);
    switch (p->cte) {
    case SMTPX_CTE_AUTO:
        if (lines_ok && st.n8 == 0)
            p->cte = SMTPX_CTE_7BIT;
        else if (lines_ok && b8)
            p->cte = SMTPX_CTE_8BIT;
        else if (!body && bin)
            p->cte = SMTPX_CTE_BINARY;
        else if (body || (st.n8 + st.nctl + st.bare_cr) * 8 < p->len)
            p->cte = SMTPX_CTE_QP;
        else
            p->cte = SMTPX_CTE_BASE64;
        break;
    case SMTPX_CTE_7BIT:
        if (!lines_ok || st.n8 != 0)
            return SMTPX_ERR_INVALID_ARGUMENT;
        break;
    case SMTPX_CTE_8BIT:
        if (!lines_ok || !b8)
            return SMTPX_ERR_INVALID_ARGUMENT;
        break;
    case SMTPX_CTE_BINARY:
        if (!bin)
            return SMTPX_ERR_INVALID_ARGUMENT;
        break;
    default:
        break;
    }
    p->norm_eol =
        body && (p->cte == SMTPX_CTE_7BIT || p->cte == SMTPX_CTE_8BIT);
    return 0;
}

/* build_type_ok - "type/subtype" of token characters, not multipart */
static int build_type_ok(const char *t)
{
    const char *slash;
    size_t i;

    if (t == NULL)
        return 1;
    slash = strchr(t, '/');
    if (slash == NULL || slash == t || slash[1] == '\0' ||
        strchr(slash + 1, '/') != NULL || strlen(t) > 200)
        return 0;
    for (i = 0; t[i] != '\0'; i++)
        if ((unsigned char)t[i] <= ' ' || (unsigned char)t[i] >= 127 ||
            strchr("()<>@,;:\\\"[]?=", t[i]) != NULL)
            return 0;
    return strncmp(t, "multipart/", 10) != 0;
}

int smtpx_msg_add_part(smtpx_msg *m, const smtpx_msg_part *spec)
{
    build_part p, *np;
    size_t i;
    int rc;

    if (m == NULL || spec == NULL ||
        spec->size < offsetof(smtpx_msg_part, read_ctx) + sizeof(void *) ||
        spec->size > sizeof(smtpx_msg_part))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (spec->kind < SMTPX_PART_TEXT || spec->kind > SMTPX_PART_INLINE ||
        spec->cte < SMTPX_CTE_AUTO || spec->cte > SMTPX_CTE_BASE64 ||
        (spec->data == NULL && spec->len > 0) ||
        (spec->read != NULL && (spec->data != NULL || spec->len > 0)) ||
        !build_type_ok(spec->type) ||
        (spec->charset != NULL &&
         (!build_text_ok(spec->charset, 40) ||
          !build_ascii(spec->charset, strlen(spec->charset)) ||
          strpbrk(spec->charset, " \t\"\\;") != NULL)) ||
        (spec->filename != NULL && !build_text_ok(spec->filename, 255)) ||
        (spec->content_id != NULL && !build_id_ok(spec->content_id)))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if ((rc = build_writable(m)) != 0)
        return rc;
    if (spec->kind == SMTPX_PART_TEXT || spec->kind == SMTPX_PART_HTML)
        for (i = 0; i < m->nparts; i++)
            if (m->parts[i].kind == spec->kind)
                return SMTPX_ERR_INVALID_ARGUMENT;
    memset(&p, 0, sizeof(p));
    p.kind = spec->kind;
    p.cte = spec->cte;
    p.data = spec->data;
    p.len = spec->len;
    p.read = spec->read;
    p.read_ctx = spec->read_ctx;
    if (build_choose(m, &p) != 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    np = smtpx__realloc(&m->mem, m->parts, (m->nparts + 1) * sizeof(*np));
    if (np == NULL)
        return SMTPX_ERR_NOMEM;
    m->parts = np;
    p.type = build_dup(m, spec->type);
    p.charset = build_dup(m, spec->charset);
    if (spec->filename != NULL) {
        /* The last path component only. */
        const char *base = spec->filename, *s;
        for (s = base; *s != '\0'; s++)
            if (*s == '/' || *s == '\\')
                base = s + 1;
        p.filename = build_dup(m, base);
    }
    p.cid = build_dup(m, spec->content_id);
    if ((spec->type != NULL && p.type == NULL) ||
        (spec->charset != NULL && p.charset == NULL) ||
        (spec->filename != NULL && p.filename == NULL) ||
        (spec->content_id != NULL && p.cid == NULL)) {
        smtpx__free(&m->mem, p.type);
        smtpx__free(&m->mem, p.charset);
        smtpx__free(&m->mem, p.filename);
        smtpx__free(&m->mem, p.cid);
        return SMTPX_ERR_NOMEM;
    }
    m->parts[m->nparts++] = p;
    return 0;
}

/* ---- header writing
 * ---------------------------------------------------------- */

typedef struct build_hdr {
    smtpx__mstr *out;
    size_t col;
    size_t start; /* the column after "Name:" */
} build_hdr;

static void hdr_begin(build_hdr *h, smtpx__mstr *out, const char *name)
{
    h->out = out;
    smtpx__mstr_adds(out, name);
    smtpx__mstr_addc(out, ':');
    h->col = h->start = strlen(name) + 1;
}

/* hdr_token - a token, after a space or a fold */
static void hdr_token(build_hdr *h, const char *t, size_t n)
{
    /* Never right after the name: Python's parser would keep the fold's
     * blank in the value. */
    if (h->col + 1 + n > BUILD_FOLD && h->col > h->start && n > 0) {
        smtpx__mstr_add(h->out, "\r\n ", 3);
        h->col = 1;
    } else {
        smtpx__mstr_addc(h->out, ' ');
        h->col++;
    }
    smtpx__mstr_add(h->out, t, n);
    h->col += n;
}

/* hdr_glue - text that sticks to the last token (a comma, a ";") */
static void hdr_glue(build_hdr *h, const char *t)
{
    smtpx__mstr_adds(h->out, t);
    h->col += strlen(t);
}

static void hdr_end(build_hdr *h)
{
    smtpx__mstr_add(h->out, "\r\n", 2);
}

/* hdr_words - space-separated tokens of s */
static void hdr_words(build_hdr *h, const char *s, size_t n)
{
    size_t i = 0, start = 0;

    for (i = 0; i <= n; i++) {
        if (i == n || s[i] == ' ') {
            hdr_token(h, s + start, i - start);
            start = i + 1;
        }
    }
}

/* hdr_needs_words - must text be written as encoded words? */
static int hdr_needs_words(const smtpx_msg *m, const char *s, size_t n)
{
    size_t i, word = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == '\t')
            return 1; /* a tab would not survive folding as it is */
        if (s[i] == '=' && i + 1 < n && s[i + 1] == '?')
            return 1;
        if ((unsigned char)s[i] >= 0x80 && !(m->flags & SMTPX_MSG_SMTPUTF8))
            return 1;
        word = s[i] == ' ' ? 0 : word + 1;
        if (word > BUILD_WORD_MAX)
            return 1;
    }
    return n > 0 && (s[0] == ' ' || s[n - 1] == ' ');
}

/* hdr_text - unstructured text (RFC 5322 3.2.5), folded */
static void hdr_text(build_hdr *h, const smtpx_msg *m, const char *s)
{
    size_t n = strlen(s);
    smtpx__mstr enc;

    if (!hdr_needs_words(m, s, n)) {
        hdr_words(h, s, n);
        return;
    }
    smtpx__mstr_init(&enc, h->out->mem);
    smtpx__words_encode(&enc, s, n, 0,
                        h->col + 1 < BUILD_FOLD ? BUILD_FOLD - h->col - 1 : 0);
    if (enc.err)
        h->out->err = enc.err;
    else
        hdr_words(h, enc.p, enc.len);
    smtpx__mstr_free(&enc);
}

static int build_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* hdr_phrase - a display name: atoms, a quoted string, or encoded words */
static void hdr_phrase(build_hdr *h, const smtpx_msg *m, const char *s)
{
    size_t n = strlen(s), i;
    int atoms = 1, ascii = build_ascii(s, n);
    smtpx__mstr q;

    /* RFC 6532 3.2: UTF-8 is atext too, where it may be written. */
    for (i = 0; i < n; i++)
        if (!build_atext((unsigned char)s[i]) && s[i] != ' ' &&
            !((unsigned char)s[i] >= 0x80 && (m->flags & SMTPX_MSG_SMTPUTF8)))
            atoms = 0;
    if (n == 0 || s[0] == ' ' || s[n - 1] == ' ' || strstr(s, "  ") != NULL)
        atoms = 0;
    if (atoms && !hdr_needs_words(m, s, n)) {
        hdr_words(h, s, n);
        return;
    }
    smtpx__mstr_init(&q, h->out->mem);
    if ((ascii || (m->flags & SMTPX_MSG_SMTPUTF8)) && strchr(s, '\t') == NULL &&
        strstr(s, "=?") == NULL) {
        smtpx__mstr_addc(&q, '"');
        for (i = 0; i < n; i++) {
            if (s[i] == '"' || s[i] == '\\')
                smtpx__mstr_addc(&q, '\\');
            smtpx__mstr_addc(&q, s[i]);
        }
        smtpx__mstr_addc(&q, '"');
        if (!q.err)
            hdr_token(h, q.p, q.len);
    } else {
        smtpx__words_encode(
            &q, s, n, 1, h->col + 1 < BUILD_FOLD ? BUILD_FOLD - h->col - 1 : 0);
        if (!q.err)
            hdr_words(h, q.p, q.len);
    }
    if (q.err)
        h->out->err = q.err;
    smtpx__mstr_free(&q);
}

static void build_addrs(smtpx_msg *m, smtpx__mstr *out, int f)
{
    build_hdr h;
    const char *p = m->addrs[f].p;
    size_t i;

    if (m->naddrs[f] == 0)
        return;
    hdr_begin(&h, out, build_addr_names[f]);
    for (i = 0; i < m->naddrs[f]; i++) {
        const char *name = p, *addr = p + strlen(p) + 1;
        smtpx__mstr a;

        p = addr + strlen(addr) + 1;
        smtpx__mstr_init(&a, &m->mem);
        if (name[0] != '\0') {
            hdr_phrase(&h, m, name);
            smtpx__mstr_addc(&a, '<');
            smtpx__mstr_adds(&a, addr);
            smtpx__mstr_addc(&a, '>');
        } else {
            smtpx__mstr_adds(&a, addr);
        }
        if (a.err)
            out->err = a.err;
        else
            hdr_token(&h, a.p, a.len);
        smtpx__mstr_free(&a);
        if (i + 1 < m->naddrs[f])
            hdr_glue(&h, ",");
    }
    hdr_end(&h);
}

static int build_token_ok(const char *s)
{
    size_t i;

    if (s[0] == '\0')
        return 0;
    for (i = 0; s[i] != '\0'; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 127 ||
            strchr("()<>@,;:\\\"/[]?=", s[i]) != NULL)
            return 0;
    return 1;
}

/* hdr_param - "; name=value": a token, a quoted string, or RFC 2231
 * sections in UTF-8 when not ASCII */
static void hdr_param(build_hdr *h, const smtpx_msg *m, const char *name,
                      const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(v), i;
    smtpx__mstr t;

    hdr_glue(h, ";");
    smtpx__mstr_init(&t, h->out->mem);
    if (build_ascii(v, n) || (m->flags & SMTPX_MSG_SMTPUTF8)) {
        smtpx__mstr_adds(&t, name);
        smtpx__mstr_addc(&t, '=');
        if (build_token_ok(v)) {
            smtpx__mstr_adds(&t, v);
        } else {
            smtpx__mstr_addc(&t, '"');
            for (i = 0; i < n; i++) {
                if (v[i] == '"' || v[i] == '\\')
                    smtpx__mstr_addc(&t, '\\');
                smtpx__mstr_addc(&t, v[i] == '\t' ? ' ' : v[i]);
            }
            smtpx__mstr_addc(&t, '"');
        }
        if (!t.err)
            hdr_token(h, t.p, t.len);
    } else {
        /* RFC 2231 3, 4: name*0*=utf-8''%XX..., name*1*=... */
        size_t sec = 0, chunk = 0;
        char num[24];

        i = 0;
        while (i < n && !t.err) {
            smtpx__mstr_clear(&t);
            smtpx__mstr_adds(&t, name);
            num[0] = '\0';
            {
                size_t s = sec, k = 0;
                char tmp[20];
                do {
                    tmp[k++] = (char)('0' + s % 10);
                    s /= 10;
                } while (s > 0);
                num[0] = '*';
                for (s = 1; k > 0; s++)
                    num[s] = tmp[--k];
                num[s] = '\0';
            }
            smtpx__mstr_adds(&t, num);
            smtpx__mstr_adds(&t, sec == 0 ? "*=utf-8''" : "*=");
            for (chunk = 0; i < n && chunk < 45; i++) {
                unsigned char c = (unsigned char)v[i];
                if (build_atext(c) && c != '%' && c != '\'' && c != '*') {
                    smtpx__mstr_addc(&t, (char)c);
                    chunk++;
                } else {
                    char e[3] = {'%', hex[c >> 4], hex[c & 15]};
                    smtpx__mstr_add(&t, e, 3);
                    chunk += 3;
                }
            }
            if (!t.err)
                hdr_token(h, t.p, t.len);
            if (i < n)
                hdr_glue(h, ";");
            sec++;
        }
    }
    if (t.err)
        h->out->err = t.err;
    smtpx__mstr_free(&t);
}

/* ---- planning
 * ------------------------------------------------------------------ */

static void build_lit(smtpx_msg *m, const char *s, size_t n)
{
    smtpx__mstr_add(&m->lit, s, n);
}

static int build_item_add(smtpx_msg *m, long part)
{
    build_item *it;

    if (m->nitems == m->items_cap) {
        size_t cap = m->items_cap ? m->items_cap * 2 : 16;
        it = smtpx__realloc(&m->mem, m->items, cap * sizeof(*it));
        if (it == NULL)
            return SMTPX_ERR_NOMEM;
        m->items = it;
        m->items_cap = cap;
    }
    it = &m->items[m->nitems++];
    it->part = part;
    it->off = it->len = 0;
    return 0;
}

/* build_flush_lit - close the literal item being written */
static int build_flush_lit(smtpx_msg *m, size_t *lit_start)
{
    int rc;

    if (m->lit.err)
        return SMTPX_ERR_NOMEM;
    if (m->lit.len == *lit_start)
        return 0;
    if ((rc = build_item_add(m, -1)) != 0)
        return rc;
    m->items[m->nitems - 1].off = *lit_start;
    m->items[m->nitems - 1].len = m->lit.len - *lit_start;
    *lit_start = m->lit.len;
    return 0;
}

/* A node of the structure: a part, or a multipart of nodes. */
typedef struct build_node {
    const char *sub; /* multipart subtype, or NULL for a part */
    long part;
    struct build_node **kids;
    size_t nkids;
} build_node;

/* build_boundary - "=_" (never in quoted-printable or base64 output),
 * 96 random bits, and the multipart's number (distinct even if the random
 * source repeats itself) */
static int build_boundary(smtpx_msg *m, char b[40])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t r[12];
    size_t i;
    int rc = m->rand(r, sizeof(r), m->rand_ud);

    if (rc != 0)
        return rc < 0 ? rc : SMTPX_ERR_INTERNAL;
    memcpy(b, "=_smtpx_", 8);
    for (i = 0; i < sizeof(r); i++) {
        b[8 + 2 * i] = hex[r[i] >> 4];
        b[9 + 2 * i] = hex[r[i] & 15];
    }
    b[8 + 2 * sizeof(r)] = '.';
    b[9 + 2 * sizeof(r)] = (char)('0' + m->nbound++ % 10);
    b[10 + 2 * sizeof(r)] = '\0';
    return 0;
}

/* build_part_headers - the Content-* fields of a part */
static void build_part_headers(smtpx_msg *m, const build_part *p)
{
    build_hdr h;
    const char *type = p->type;
    int text;

    if (type == NULL)
        type = p->kind == SMTPX_PART_TEXT ? "text/plain"
               : p->kind == SMTPX_PART_HTML
                   ? "text/html"
                   : smtpx_msg_type_for_name(p->filename);
    text = strncmp(type, "text/", 5) == 0;
    hdr_begin(&h, &m->lit, "Content-Type");
    hdr_token(&h, type, strlen(type));
    if (text)
        hdr_param(&h, m, "charset", p->charset ? p->charset : "utf-8");
    if (p->filename != NULL)
        hdr_param(&h, m, "name", p->filename);
    hdr_end(&h);
    hdr_begin(&h, &m->lit, "Content-Transfer-Encoding");
    hdr_token(&h, smtpx_cte_name(p->cte), strlen(smtpx_cte_name(p->cte)));
    hdr_end(&h);
    if (p->kind == SMTPX_PART_ATTACHMENT || p->kind == SMTPX_PART_INLINE) {
        const char *d = p->kind == SMTPX_PART_INLINE ? "inline" : "attachment";
        hdr_begin(&h, &m->lit, "Content-Disposition");
        hdr_token(&h, d, strlen(d));
        if (p->filename != NULL)
            hdr_param(&h, m, "filename", p->filename);
        hdr_end(&h);
    }
    if (p->cid != NULL) {
        hdr_begin(&h, &m->lit, "Content-ID");
        smtpx__mstr_adds(&m->lit, " <");
        smtpx__mstr_adds(&m->lit, p->cid);
        smtpx__mstr_addc(&m->lit, '>');
        hdr_end(&h);
    }
}

/* build_contains - does a part sent as it is hold the boundary? */
static int build_contains(const build_part *p, const char *b)
{
    size_t bl = strlen(b), i;

    if (p->read != NULL || p->len < bl)
        return 0;
    for (i = 0; i + bl <= p->len; i++) {
        const uint8_t *q = memchr(p->data + i, b[0], p->len - bl + 1 - i);
        if (q == NULL)
            return 0;
        i = (size_t)(q - p->data);
        if (memcmp(q, b, bl) == 0)
            return 1;
    }
    return 0;
}

/* build_emit - the headers (after the top-level ones) and body of a node */
static int build_emit(smtpx_msg *m, const build_node *n, int top,
                      size_t *lit_start)
{
    build_hdr h;
    char b[40];
    size_t i;
    int rc;

    if (n->sub == NULL) {
        build_part *p = &m->parts[n->part];
        build_part_headers(m, p);
        build_lit(m, "\r\n", 2);
        if ((rc = build_flush_lit(m, lit_start)) != 0)
            return rc;
        return build_item_add(m, n->part);
    }
    if ((rc = build_boundary(m, b)) != 0)
        return rc;
    /* Content sent as it is must not hold the boundary. */
    for (i = 0; i < m->nparts; i++) {
        build_part *p = &m->parts[i];
        if ((p->cte == SMTPX_CTE_7BIT || p->cte == SMTPX_CTE_8BIT ||
             p->cte == SMTPX_CTE_BINARY) &&
            build_contains(p, b)) {
            p->cte =
                p->cte == SMTPX_CTE_BINARY ? SMTPX_CTE_BASE64 : SMTPX_CTE_QP;
            p->norm_eol = 0;
        }
    }
    {
        char t[64], bp[64];
        size_t tl = (size_t)(strlen(n->sub) + 11), bl = strlen(b) + 11;
        memcpy(t, "multipart/", 10);
        memcpy(t + 10, n->sub, tl - 11);
        t[tl - 1] = ';';
        memcpy(bp, "boundary=\"", 10);
        memcpy(bp + 10, b, bl - 11);
        bp[bl - 1] = '"';
        hdr_begin(&h, &m->lit, "Content-Type");
        hdr_token(&h, t, tl);
        hdr_token(&h, bp, bl);
        hdr_end(&h);
    }
    build_lit(m, "\r\n", 2);
    if (top) /* for readers that know no MIME (RFC 2046 5.1.1) */
        smtpx__mstr_adds(&m->lit, "This is a message in MIME format.\r\n\r\n");
    for (i = 0; i < n->nkids; i++) {
        build_lit(m, i == 0 ? "--" : "\r\n--", i == 0 ? 2 : 4);
        smtpx__mstr_adds(&m->lit, b);
        build_lit(m, "\r\n", 2);
        if ((rc = build_emit(m, n->kids[i], 0, lit_start)) != 0)
            return rc;
    }
    build_lit(m, "\r\n--", 4);
    smtpx__mstr_adds(&m->lit, b);
    build_lit(m, "--\r\n", 4);
    return m->lit.err ? SMTPX_ERR_NOMEM : 0;
}

/* build_tree - the MIME structure of m's parts: leaves[i] for part i,
 * multiparts from nodes (up to 3, whose kids arrays are set); returns the
 * top node, NULL when there is no part */
static build_node *build_tree(smtpx_msg *m, build_node *nodes,
                              build_node *leaves)
{
    build_node *html = NULL, *body, *top;
    size_t nn = 0, i;
    long text = -1, htm = -1;
    int has_inline = 0, has_att = 0;

    for (i = 0; i < m->nparts; i++) {
        leaves[i].part = (long)i;
        if (m->parts[i].kind == SMTPX_PART_TEXT)
            text = (long)i;
        else if (m->parts[i].kind == SMTPX_PART_HTML)
            htm = (long)i;
        else if (m->parts[i].kind == SMTPX_PART_INLINE)
            has_inline = 1;
        else
            has_att = 1;
    }
    /* The HTML, with its inline parts in multipart/related (RFC 2387). */
    if (htm >= 0) {
        html = &leaves[htm];
        if (has_inline) {
            build_node *r = &nodes[nn++];
            r->sub = "related";
            r->kids[r->nkids++] = html;
            for (i = 0; i < m->nparts; i++)
                if (m->parts[i].kind == SMTPX_PART_INLINE)
                    r->kids[r->nkids++] = &leaves[i];
            html = r;
        }
    }
    /* Text and HTML as alternatives, the plainer first (RFC 2046 5.1.4). */
    if (text >= 0 && html != NULL) {
        body = &nodes[nn++];
        body->sub = "alternative";
        body->kids[body->nkids++] = &leaves[text];
        body->kids[body->nkids++] = html;
    } else {
        body = text >= 0 ? &leaves[text] : html;
    }
    top = body;
    /* Attachments (and inline parts without HTML) around it. */
    if (has_att || (has_inline && htm < 0)) {
        build_node *mx = &nodes[nn++];
        mx->sub = "mixed";
        if (body != NULL)
            mx->kids[mx->nkids++] = body;
        for (i = 0; i < m->nparts; i++)
            if (m->parts[i].kind == SMTPX_PART_ATTACHMENT ||
                (m->parts[i].kind == SMTPX_PART_INLINE && htm < 0))
                mx->kids[mx->nkids++] = &leaves[i];
        top = mx;
    }
    return top;
}

/* build_fields - the top-level fields but the MIME ones, into m->lit */
static void build_fields(smtpx_msg *m)
{
    const char *p = m->custom.p, *end = m->custom.p + m->custom.len;
    char date[32];
    build_hdr h;
    int f;

    smtpx_format_date(m->date, m->date_off, date, sizeof(date));
    hdr_begin(&h, &m->lit, "Date");
    hdr_token(&h, date, strlen(date));
    hdr_end(&h);
    for (f = 0; f < ADDR_COUNT; f++)
        if (f != ADDR_BCC)
            build_addrs(m, &m->lit, f);
    if (m->subject != NULL) {
        hdr_begin(&h, &m->lit, "Subject");
        hdr_text(&h, m, m->subject);
        hdr_end(&h);
    }
    hdr_begin(&h, &m->lit, "Message-ID");
    smtpx__mstr_adds(&m->lit, " <");
    smtpx__mstr_adds(&m->lit, m->msgid);
    smtpx__mstr_addc(&m->lit, '>');
    hdr_end(&h);
    if (m->last_ref != NULL) {
        hdr_begin(&h, &m->lit, "In-Reply-To");
        smtpx__mstr_adds(&m->lit, " <");
        smtpx__mstr_adds(&m->lit, m->last_ref);
        smtpx__mstr_addc(&m->lit, '>');
        hdr_end(&h);
        hdr_begin(&h, &m->lit, "References");
        hdr_words(&h, m->refs.p, m->refs.len);
        hdr_end(&h);
    }
    while (p != NULL && p < end) {
        const char *v = p + strlen(p) + 1;
        hdr_begin(&h, &m->lit, p);
        hdr_text(&h, m, v);
        hdr_end(&h);
        p = v + strlen(v) + 1;
    }
    build_lit(m, "MIME-Version: 1.0\r\n", 19);
}

/* build_body_type - the BODY= the message needs (RFC 6152, RFC 3030) */
static void build_body_type(smtpx_msg *m)
{
    size_t i;

    m->body_type = SMTPX_BODY_7BIT;
    if (m->flags & SMTPX_MSG_SMTPUTF8 && !build_ascii(m->lit.p, m->lit.len))
        m->body_type = SMTPX_BODY_8BITMIME;
    for (i = 0; i < m->nparts; i++) {
        if (m->parts[i].cte == SMTPX_CTE_8BIT &&
            m->body_type < SMTPX_BODY_8BITMIME)
            m->body_type = SMTPX_BODY_8BITMIME;
        if (m->parts[i].cte == SMTPX_CTE_BINARY)
            m->body_type = SMTPX_BODY_BINARYMIME;
    }
}

static int build_plan(smtpx_msg *m)
{
    build_node nodes[3], *top, *leaves, **kids;
    size_t i, lit_start = 0, nk = m->nparts + 2;
    build_hdr h;
    int rc;

    if (m->planned)
        return m->err;
    m->planned = 1;
    if (!m->has_date) {
        time_t now = time(NULL);
        m->date = (int64_t)now;
        m->date_off = 0;
    }
    if ((rc = build_make_id(m)) != 0)
        return m->err = rc;
    leaves = smtpx__calloc(&m->mem, m->nparts + 1, sizeof(*leaves));
    kids = smtpx__calloc(&m->mem, 3 * nk, sizeof(*kids));
    if (leaves == NULL || kids == NULL) {
        smtpx__free(&m->mem, leaves);
        smtpx__free(&m->mem, kids);
        return m->err = SMTPX_ERR_NOMEM;
    }
    memset(nodes, 0, sizeof(nodes));
    for (i = 0; i < 3; i++)
        nodes[i].kids = kids + i * nk;
    top = build_tree(m, nodes, leaves);
    build_fields(m);
    if (top == NULL) {
        /* No part at all: an empty text body. */
        hdr_begin(&h, &m->lit, "Content-Type");
        hdr_token(&h, "text/plain;", 11);
        hdr_token(&h, "charset=utf-8", 13);
        hdr_end(&h);
        build_lit(m, "\r\n", 2);
        rc = 0;
    } else {
        rc = build_emit(m, top, 1, &lit_start);
    }
    if (rc == 0)
        rc = build_flush_lit(m, &lit_start);
    smtpx__free(&m->mem, kids);
    smtpx__free(&m->mem, leaves);
    if (rc == 0 && m->lit.err)
        rc = SMTPX_ERR_NOMEM;
    if (rc != 0)
        return m->err = rc;
    build_body_type(m);
    m->item = 0;
    m->pos = 0;
    return 0;
}

int smtpx_msg_body_type(smtpx_msg *m)
{
    int rc;

    if (m == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    rc = build_plan(m);
    return rc != 0 ? rc : m->body_type;
}

/* ---- reading
 * ------------------------------------------------------------------ */

/* build_source - up to BUILD_IN octets of the current part's content into
 * m->in; 0 at its end, or an error */
static smtpx_ssize build_source(smtpx_msg *m, build_part *p, size_t want)
{
    smtpx_ssize n;

    if (want > BUILD_IN)
        want = BUILD_IN;
    if (p->read == NULL) {
        size_t k = p->len - m->pos < want ? p->len - m->pos : want;
        memcpy(m->in, p->data + m->pos, k);
        m->pos += k;
        return (smtpx_ssize)k;
    }
    n = p->read(p->read_ctx, m->in, want);
    if (n < 0)
        return n;
    if ((size_t)n > want)
        return SMTPX_ERR_IO;
    return n;
}

/* build_norm - bodies sent as they are: LF and CRLF become CRLF */
static size_t build_norm(smtpx_msg *m, const uint8_t *in, size_t n)
{
    uint8_t *o = m->out;
    size_t i;

    for (i = 0; i < n; i++) {
        if (in[i] == '\n' && !m->last_cr)
            *o++ = '\r';
        *o++ = in[i];
        m->last_cr = in[i] == '\r';
    }
    return (size_t)(o - m->out);
}

/* build_fill - produce the next encoded output of the current part into
 * m->out; 0 when the part is done */
static int build_fill(smtpx_msg *m, build_part *p)
{
    smtpx_ssize n;
    size_t want = BUILD_IN;

    m->out_off = m->out_len = 0;
    if (m->src_done)
        return 0;
    if (p->cte == SMTPX_CTE_QP || p->norm_eol)
        want = BUILD_IN / 4; /* out holds 4 per in (QP) or 2 (line ends) */
    n = build_source(m, p, want);
    if (n < 0)
        return (int)n;
    if (n == 0)
        m->src_done = 1;
    switch (p->cte) {
    case SMTPX_CTE_BASE64:
        m->out_len = smtpx__b64enc_run(&m->b64, m->in, (size_t)n, m->out);
        if (n == 0)
            m->out_len += smtpx__b64enc_end(&m->b64, m->out + m->out_len);
        break;
    case SMTPX_CTE_QP:
        m->out_len = smtpx__qpenc_run(&m->qp, m->in, (size_t)n, m->out);
        if (n == 0)
            m->out_len += smtpx__qpenc_end(&m->qp, m->out + m->out_len);
        break;
    default:
        if (p->norm_eol) {
            m->out_len = build_norm(m, m->in, (size_t)n);
        } else {
            memcpy(m->out, m->in, (size_t)n);
            m->out_len = (size_t)n;
        }
        break;
    }
    return 1;
}

smtpx_ssize smtpx_msg_read(void *msg, uint8_t *buf, size_t len)
{
    smtpx_msg *m = msg;
    size_t done = 0;
    int rc;

    if (m == NULL || buf == NULL || len == 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if ((rc = build_plan(m)) != 0)
        return rc;
    if (m->err != 0)
        return m->err;
    while (done < len && m->item < m->nitems) {
        build_item *it = &m->items[m->item];

        if (it->part < 0) {
            size_t k = it->len - m->pos;
            if (k > len - done)
                k = len - done;
            memcpy(buf + done, m->lit.p + it->off + m->pos, k);
            m->pos += k;
            done += k;
        } else if (m->out_off < m->out_len) {
            size_t k = m->out_len - m->out_off;
            if (k > len - done)
                k = len - done;
            memcpy(buf + done, m->out + m->out_off, k);
            m->out_off += k;
            done += k;
            continue;
        } else {
            build_part *p = &m->parts[it->part];
            rc = build_fill(m, p);
            if (rc < 0) {
                m->err = rc;
                return rc;
            }
            if (rc > 0)
                continue;
        }
        if ((it->part < 0 && m->pos == it->len) ||
            (it->part >= 0 && m->src_done && m->out_off >= m->out_len)) {
            m->item++;
            m->pos = 0;
            m->src_done = 0;
            smtpx__b64enc_init(&m->b64);
            m->last_cr = 0;
            m->out_off = m->out_len = 0;
            if (m->item < m->nitems && m->items[m->item].part >= 0) {
                build_part *np = &m->parts[m->items[m->item].part];
                smtpx__qpenc_init(&m->qp, np->kind == SMTPX_PART_TEXT ||
                                              np->kind == SMTPX_PART_HTML);
            }
        }
    }
    return (smtpx_ssize)done;
}
