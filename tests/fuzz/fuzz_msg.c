/*
 * fuzz_msg - differential: the MIME parser must report the same events
 * (headers, parts with their type, disposition and file name, content and
 * its digest, defects, and the Subject, Message-ID and From it keeps)
 * whether the message comes whole, one octet at a
 * time, or cut where the first two octets choose, with every option on and
 * small limits so that they are reached too.  Any crash, leak, hang or
 * difference is a finding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/msg.h>

typedef struct flog {
    char *p;
    size_t len, cap;
    uint64_t hash; /* of the current part's content */
} flog;

static void add(flog *l, const char *s, size_t n)
{
    if (l->len + n + 1 > l->cap) {
        l->cap = (l->len + n + 1) * 2;
        l->p = realloc(l->p, l->cap);
        if (l->p == NULL)
            abort();
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
    l->p[l->len] = '\0';
}

static void adds(flog *l, const char *s)
{
    add(l, s != NULL ? s : "(null)", strlen(s != NULL ? s : "(null)"));
}

static int on_header(smtpx_msg_parser *p, const smtpx_part *part,
                     const char *name, size_t nl, const char *value, size_t vl,
                     void *ud)
{
    flog *l = ud;
    (void)p;
    /* NUL-terminated, and counted: a hostile value may hold NUL. */
    if (name[nl] != '\0' || value[vl] != '\0' || strlen(name) != nl)
        abort();
    adds(l, "H ");
    adds(l, smtpx_part_path(part));
    add(l, name, nl);
    add(l, value, vl);
    return 0;
}

static int on_begin(smtpx_msg_parser *p, const smtpx_part *part, void *ud)
{
    flog *l = ud;
    (void)p;
    adds(l, "B ");
    adds(l, smtpx_part_path(part));
    adds(l, smtpx_part_type(part));
    adds(l, smtpx_part_disposition(part));
    adds(l, smtpx_part_filename(part));
    adds(l, smtpx_part_charset(part));
    adds(l, smtpx_part_content_id(part));
    adds(l, smtpx_part_param(part, "boundary"));
    adds(l, smtpx_part_disposition_param(part, "size"));
    l->hash = 1469598103934665603ull;
    /* Skip some parts, chosen by their path, to reach that code too. */
    return strlen(smtpx_part_path(part)) % 5 == 3 ? SMTPX_MSG_SKIP : 0;
}

static int on_data(smtpx_msg_parser *p, const smtpx_part *part,
                   const uint8_t *d, size_t n, void *ud)
{
    flog *l = ud;
    size_t i;
    (void)p;
    (void)part;
    if (n == 0)
        abort();
    for (i = 0; i < n; i++)
        l->hash = (l->hash ^ d[i]) * 1099511628211ull;
    return 0;
}

static int on_end(smtpx_msg_parser *p, const smtpx_part *part, void *ud)
{
    flog *l = ud;
    char b[64];
    (void)p;
    snprintf(b, sizeof(b), "E %llu %llx",
             (unsigned long long)smtpx_part_size(part),
             (unsigned long long)l->hash);
    adds(l, b);
    adds(l, smtpx_part_path(part));
    return 0;
}

static int on_defect(smtpx_msg_parser *p, const smtpx_part *part, int defect,
                     void *ud)
{
    flog *l = ud;
    (void)p;
    adds(l, "D ");
    adds(l, part ? smtpx_part_path(part) : "-");
    adds(l, smtpx_msg_defect_name(defect));
    return 0;
}

static const smtpx_msg_callbacks cbs = {on_header, on_begin, on_data, on_end,
                                        on_defect};

/* run - parse in pieces of `piece` octets (0: whole, else cut at `cut`
 * first); the flog and the result */
static int run(const uint8_t *in, size_t len, size_t piece, size_t cut, flog *l)
{
    smtpx_msg_parser *p;
    size_t pos = 0;
    int rc;

    if (smtpx_msg_parser_new(&p, NULL, SMTPX_MSG_DECODE_WORDS, &cbs,
                             sizeof(cbs), l) != 0)
        abort();
    smtpx_msg_parser_set_limit(p, SMTPX_MSG_LIMIT_DEPTH, 8);
    smtpx_msg_parser_set_limit(p, SMTPX_MSG_LIMIT_PARTS, 64);
    smtpx_msg_parser_set_limit(p, SMTPX_MSG_LIMIT_HEADER_LINE, 400);
    smtpx_msg_parser_set_limit(p, SMTPX_MSG_LIMIT_HEADER_SIZE, 2000);
    smtpx_msg_parser_set_limit(p, SMTPX_MSG_LIMIT_HEADER_COUNT, 40);
    smtpx_msg_parser_set_limit(p, SMTPX_MSG_LIMIT_BOUNDARY, 40);
    if (smtpx_msg_parser_keep(p, "Subject") != 0 ||
        smtpx_msg_parser_keep(p, "Message-ID") != 0 ||
        smtpx_msg_parser_keep(p, "From") != 0)
        abort();
    rc = 0;
    while (pos < len && rc == 0) {
        size_t n = len - pos;
        if (piece != 0 && n > piece)
            n = piece;
        if (cut > pos && cut < pos + n)
            n = cut - pos;
        rc = smtpx_msg_parser_feed(p, in + pos, n);
        pos += n;
    }
    if (rc == 0)
        rc = smtpx_msg_parser_end(p);
    if (rc == 0) {
        /* The kept fields agree however the input was cut. */
        static const char *const names[3] = {"Subject", "Message-ID", "From"};
        int k;
        for (k = 0; k < 3; k++) {
            const char *v = smtpx_msg_parser_header(p, names[k]);
            adds(l, v != NULL ? v : "(none)");
        }
    }
    smtpx_msg_parser_free(p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flog a = {0}, b = {0}, c = {0};
    size_t cut;
    int ra, rb, rc;

    if (size < 2)
        return 0;
    cut = ((size_t)data[0] << 8 | data[1]) % size;
    data += 2;
    size -= 2;
    ra = run(data, size, 0, 0, &a);
    rb = run(data, size, 1, 0, &b);
    rc = run(data, size, 0, cut, &c);
    /* A limit may be hit at different points of the flog, but it is hit
     * (or not) alike; without one, the logs are equal. */
    if (ra != rb || ra != rc)
        abort();
    if (ra == 0 && (a.len != b.len || a.len != c.len ||
                    (a.len > 0 && (memcmp(a.p, b.p, a.len) != 0 ||
                                   memcmp(a.p, c.p, a.len) != 0))))
        abort();
    free(a.p);
    free(b.p);
    free(c.p);
    return 0;
}
