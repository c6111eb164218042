/*
 * fuzz_ext - the EHLO keyword parser on arbitrary reply text, against a
 * plain reference: every line after the greeting that starts with a
 * keyword (ALPHA / DIGIT / "-") followed by a space or its end is offered,
 * smtpx__ext_get() finds it in any case with the parameters of its first
 * line (leading spaces skipped), the mask has exactly the known keywords
 * seen, and a keyword no line offered is not found.  The mechanisms of an
 * AUTH line go through smtpx_sasl_from_name() and the client's choice.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libsmtpx/conf.h>

#include "base/mem.h"
#include "proto/cmd.h"
#include "proto/ext.h"
#include "proto/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
    const char *kw;
    unsigned bit;
} known[] = {{"PIPELINING", SMTPX_EXT_PIPELINING},
             {"SIZE", SMTPX_EXT_SIZE},
             {"8BITMIME", SMTPX_EXT_8BITMIME},
             {"ENHANCEDSTATUSCODES", SMTPX_EXT_ENHANCEDSTATUSCODES},
             {"SMTPUTF8", SMTPX_EXT_SMTPUTF8},
             {"CHUNKING", SMTPX_EXT_CHUNKING},
             {"BINARYMIME", SMTPX_EXT_BINARYMIME},
             {"DSN", SMTPX_EXT_DSN},
             {"STARTTLS", SMTPX_EXT_STARTTLS},
             {"AUTH", SMTPX_EXT_AUTH},
             {"REQUIRETLS", SMTPX_EXT_REQUIRETLS},
             {"MT-PRIORITY", SMTPX_EXT_MT_PRIORITY}};

static int kw_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-';
}

/* offered_before - a line before `line` offers the same keyword */
static int offered_before(const char *text, const char *line, const char *kw,
                          size_t klen)
{
    const char *p = strchr(text, '\n');

    while (p != NULL && p + 1 < line) {
        const char *s = p + 1;
        size_t k = 0;

        while (kw_char(s[k]))
            k++;
        if (k == klen && (s[k] == ' ' || s[k] == '\n' || s[k] == '\0') &&
            strncasecmp(s, kw, k) == 0)
            return 1;
        p = strchr(s, '\n');
    }
    return 0;
}

static void check_auth(const char *params)
{
    char *copy = strdup(params), *tok, *save = NULL;
    unsigned offered = 0;

    if (copy == NULL)
        abort();
    for (tok = strtok_r(copy, " ", &save); tok != NULL;
         tok = strtok_r(NULL, " ", &save)) {
        unsigned m = smtpx_sasl_from_name(tok);
        if (m != 0 && (smtpx_sasl_name(m) == NULL ||
                       strcasecmp(smtpx_sasl_name(m), tok) != 0))
            abort();
        offered |= m;
    }
    for (int pw = 0; pw < 2; pw++)
        for (int tk = 0; tk < 2; tk++) {
            unsigned m = smtpx__sasl_cli_pick(offered, SMTPX_SASL_ALL, pw, tk);
            if (m != 0 && ((m & offered) == 0 || (m & (m - 1)) != 0))
                abort();
        }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__ext e;
    char *text = malloc(size + 1);
    const char *p;
    unsigned mask = 0;
    size_t i;

    if (text == NULL)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    memset(&e, 0, sizeof(e));
    /* Twice: the second parse replaces the first (no leak). */
    if (smtpx__ext_parse(&e, mem, "x\nOLD") != 0 ||
        smtpx__ext_parse(&e, mem, text) != 0)
        abort();
    for (p = strchr(text, '\n'); p != NULL; p = strchr(p + 1, '\n')) {
        const char *s = p + 1, *params, *got;
        char kw[64];
        size_t k = 0;

        while (kw_char(s[k]))
            k++;
        if (k == 0 || (s[k] != ' ' && s[k] != '\n' && s[k] != '\0'))
            continue;
        params = s + k;
        while (*params == ' ')
            params++;
        if (k < sizeof(kw)) {
            memcpy(kw, s, k);
            kw[k] = '\0';
            for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                if (strcasecmp(kw, known[i].kw) == 0)
                    mask |= known[i].bit;
            got = smtpx__ext_get(&e, kw);
            if (got == NULL)
                abort();
            if (!offered_before(text, s, kw, k)) {
                size_t plen = strcspn(params, "\n");
                if (strlen(got) != plen || memcmp(got, params, plen) != 0)
                    abort();
                if (strcasecmp(kw, "AUTH") == 0)
                    check_auth(got);
            }
        }
    }
    if (e.mask != mask)
        abort();
    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if ((smtpx__ext_get(&e, known[i].kw) != NULL) !=
            ((mask & known[i].bit) != 0))
            abort();
    smtpx__ext_free(&e, mem);
    free(text);
    return 0;
}
