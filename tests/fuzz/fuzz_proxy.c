/*
 * fuzz_proxy - the PROXY protocol header parser on any input, each call on
 * an exact-size copy (AddressSanitizer sees any over-read), with the
 * properties the loop relies on checked as it goes:
 *   - a header found whole is found again, the same length, in exactly
 *     its own octets, and every shorter prefix asks for more;
 *   - once a prefix is refused, every longer input is refused (waiting
 *     for more cannot turn garbage into a header);
 *   - no length beyond SMTPX__PROXY_MAX, and none beyond the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/proxy.h"

static smtpx_ssize run(const uint8_t *in, size_t len, int versions,
                       smtpx__proxy *out)
{
    uint8_t *copy = malloc(len ? len : 1);
    smtpx_ssize r;

    if (copy == NULL)
        abort();
    memcpy(copy, in, len);
    r = smtpx__proxy_parse(copy, len, versions, out);
    free(copy);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    smtpx__proxy a, b;
    int versions;
    smtpx_ssize r, p;
    size_t i;

    if (size == 0)
        return 0;
    versions = 1 + data[0] % 3; /* V1, V2 or both */
    data++;
    size--;
    r = run(data, size, versions, &a);
    if (r < -1 || r > (smtpx_ssize)size || r > SMTPX__PROXY_MAX)
        abort();
    if (r > 0) {
        if (run(data, (size_t)r, versions, &b) != r || a.version != b.version ||
            a.local != b.local || a.sport != b.sport ||
            memcmp(a.src.b, b.src.b, 16) != 0)
            abort();
        for (i = 0; i < (size_t)r; i++)
            if (run(data, i, versions, &b) != 0)
                abort();
    } else {
        /* A refused prefix is never followed by a header. */
        for (i = 1; i <= size && i <= SMTPX__PROXY_MAX + 1; i++) {
            p = run(data, i, versions, &b);
            if (p > 0)
                abort(); /* r says the whole is not a header */
            if (p < 0 && r == 0)
                abort();
        }
    }
    return 0;
}
