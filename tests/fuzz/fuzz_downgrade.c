/*
 * fuzz_downgrade - the 8-bit to 7-bit converter (smtpx_msg_downgrade) on
 * arbitrary messages, scanned in pieces whose size the input chooses.
 * When it takes a message, the output must be 7-bit with lines of at most
 * 998 octets, as long as the scan said, and a fixed point: scanning it
 * finds nothing to re-encode and converting it again gives it back octet
 * for octet.  A source that gives the message cut short must end in an
 * error or a message, never a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libsmtpx/msg.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct src {
    const uint8_t *p;
    size_t n, pos, step;
} src;

static smtpx_ssize src_read(void *ctx, uint8_t *buf, size_t len)
{
    src *s = ctx;
    size_t k = s->n - s->pos;

    if (k > len)
        k = len;
    if (k > s->step)
        k = s->step;
    memcpy(buf, s->p + s->pos, k);
    s->pos += k;
    return (smtpx_ssize)k;
}

/* run - scan p (cut every cut octets), then read from a source that gives
 * q; the output (malloc) in *out, or NULL when the scan refused */
static int run(const uint8_t *p, size_t n, const uint8_t *q, size_t qn,
               size_t cut, uint8_t **out, size_t *outlen, uint64_t *size,
               size_t *parts)
{
    smtpx_msg_downgrade *d;
    src s = {q, qn, 0, cut * 3 + 1};
    uint8_t buf[777];
    size_t pos = 0, cap = n * 4 + 256;
    smtpx_ssize got;
    int rc;

    *out = NULL;
    *outlen = 0;
    if (smtpx_msg_downgrade_new(&d, NULL) != 0)
        abort();
    for (rc = 0; rc == 0 && pos < n; pos += cut) {
        size_t k = cut < n - pos ? cut : n - pos;

        rc = smtpx_msg_downgrade_scan(d, p + pos, k);
    }
    if (rc == 0)
        rc = smtpx_msg_downgrade_scan_end(d, size, parts);
    if (rc != 0) {
        if (*smtpx_msg_downgrade_why(d) == '\0' && rc != SMTPX_ERR_NOMEM)
            abort(); /* a refusal says why */
        smtpx_msg_downgrade_free(d);
        return rc;
    }
    if (smtpx_msg_downgrade_source(d, src_read, &s) != 0)
        abort();
    *out = malloc(cap);
    if (*out == NULL)
        abort();
    while ((got = smtpx_msg_downgrade_read(d, buf, sizeof(buf))) > 0) {
        if ((size_t)got > cap - *outlen) {
            cap = (cap + (size_t)got) * 2;
            *out = realloc(*out, cap);
            if (*out == NULL)
                abort();
        }
        memcpy(*out + *outlen, buf, (size_t)got);
        *outlen += (size_t)got;
    }
    smtpx_msg_downgrade_free(d);
    return (int)got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out, *again;
    size_t len, len2, parts, parts2, i, col = 0;
    uint64_t total, total2;
    size_t cut;
    int rc;

    if (size < 1)
        return 0;
    cut = data[0] % 64 + 1;
    data++;
    size--;
    rc = run(data, size, data, size, cut, &out, &len, &total, &parts);
    if (out == NULL)
        return 0; /* refused */
    if (rc != 0 || len != total)
        abort();
    for (i = 0; i < len; i++) {
        if (out[i] & 0x80)
            abort();
        col = out[i] == '\n' ? 0 : col + 1;
        if (col > 999) /* 998 and a CR */
            abort();
    }
    rc = run(out, len, out, len, 64 - cut + 1, &again, &len2, &total2, &parts2);
    if (rc != 0 || again == NULL || parts2 != 0 || len2 != len ||
        memcmp(again, out, len) != 0)
        abort();
    free(again);
    free(out);
    /* The message cut short between the passes. */
    if (size > 0) {
        rc = run(data, size, data, size - 1, cut, &out, &len, &total, &parts);
        if (rc == 0 && len != total)
            abort();
        free(out);
    }
    return 0;
}
