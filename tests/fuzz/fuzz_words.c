/*
 * fuzz_words - the header decoders on arbitrary text: RFC 2047 encoded
 * words (smtpx__words_decode) and RFC 2045 / RFC 2231 parameters
 * (smtpx__params_parse), checked to give UTF-8 always, and the encoder
 * (smtpx__words_encode) checked to decode back to its input when that is
 * valid UTF-8 without controls.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "msg/words.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__mstr out, type, params, enc, back;
    unsigned bad = 0;
    size_t i;

    smtpx__mstr_init(&out, mem);
    smtpx__words_decode(&out, (const char *)data, size, &bad);
    if (out.err || !smtpx__utf8_valid((const uint8_t *)out.p, out.len))
        abort();
    smtpx__mstr_free(&out);

    smtpx__mstr_init(&type, mem);
    smtpx__mstr_init(&params, mem);
    smtpx__params_parse((const char *)data, size, &type, &params, &bad);
    if (type.err || params.err)
        abort();
    /* Every value is UTF-8 and every pair is found again by its name. */
    for (i = 0; i < params.len;) {
        const char *k = params.p + i, *v = k + strlen(k) + 1;
        if (!smtpx__utf8_valid((const uint8_t *)v, strlen(v)) ||
            smtpx__params_get(params.p, params.len, k) == NULL)
            abort();
        i += strlen(k) + 1 + strlen(v) + 1;
    }
    smtpx__mstr_free(&type);
    smtpx__mstr_free(&params);

    if (smtpx__utf8_valid(data, size)) {
        for (i = 0; i < size; i++)
            if (data[i] < 0x20 || data[i] == 0x7f)
                return 0;
        smtpx__mstr_init(&enc, mem);
        smtpx__mstr_init(&back, mem);
        smtpx__words_encode(&enc, (const char *)data, size, size % 2,
                            20 + size % 60);
        bad = 0;
        smtpx__words_decode(&back, enc.p != NULL ? enc.p : "", enc.len, &bad);
        if (back.len != size || (size > 0 && memcmp(back.p, data, size) != 0))
            abort();
        smtpx__mstr_free(&enc);
        smtpx__mstr_free(&back);
    }
    return 0;
}
