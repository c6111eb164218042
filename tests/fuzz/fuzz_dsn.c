/*
 * fuzz_dsn - the delivery report (bounce) parser and the xtext decoder of
 * DSN parameters on hostile input: no crash, no read past the input, every
 * field NUL-terminated within its bound, and xtext that decodes never
 * grows.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/dsn.h"
#include "proto/cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    smtpx__dsn_report *rep = malloc(sizeof(*rep));
    char *copy = malloc(size ? size : 1), out[1024];
    size_t i;

    memcpy(copy, data, size);
    if (smtpx__dsn_parse(copy, size, rep) == 0) {
        if (rep->nrcpts == 0 ||
            strlen(rep->reporting_mta) >= sizeof(rep->reporting_mta))
            abort();
        for (i = 0; i < rep->nrcpts && i < SMTPX__DSN_PARSE_RCPTS; i++)
            if (rep->rcpts[i].final_rcpt[0] == '\0' ||
                rep->rcpts[i].action[0] == '\0' ||
                strlen(rep->rcpts[i].status) >= sizeof(rep->rcpts[i].status))
                abort();
    }
    {
        smtpx_ssize n = smtpx__cmd_xtext_decode(copy, size < 1000 ? size : 1000,
                                                out, sizeof(out));
        if (n > (smtpx_ssize)size || (n >= 0 && strlen(out) > (size_t)n))
            abort();
    }
    free(copy);
    free(rep);
    return 0;
}
