/*
 * fuzz_sasl_server - the server's SASL engines (every mechanism) on
 * arbitrary decoded responses, with the application's answers (lookup
 * found or not, on_auth accepting or refusing) chosen by the input.
 *
 * Input: octet 0 chooses the mechanism, octet 1 the application's
 * answers and whether AUTH carried an initial response, octet 2 seeds the
 * random source; then records of one length octet and that many octets,
 * one per response.  Checked beyond the sanitizers: every step returns one
 * of the documented results; a challenge is there to read after
 * CHALLENGE; the identity is never NULL and fits its limit; the secret is
 * shown after VERIFY only; after the end every step is BAD; the exchange
 * ends within as many steps as there are records (plus the lookups).
 */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "proto/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned mechs[6] = {SMTPX_SASL_PLAIN,    SMTPX_SASL_LOGIN,
                                  SMTPX_SASL_CRAM_MD5, SMTPX_SASL_SCRAM_SHA_256,
                                  SMTPX_SASL_XOAUTH2,  SMTPX_SASL_OAUTHBEARER};

static int lcg_random(uint8_t *buf, size_t len, void *ud)
{
    uint32_t *x = ud;
    size_t i;

    for (i = 0; i < len; i++) {
        *x = *x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(*x >> 16);
    }
    return 0;
}

static void check_info(const smtpx__sasl_srv *st, int verify)
{
    smtpx_auth_info info;

    smtpx__sasl_srv_info(st, &info);
    if (info.authcid == NULL || info.authzid == NULL ||
        info.mech_name == NULL || strlen(info.authcid) > SMTPX__SASL_NAME_MAX ||
        strlen(info.authzid) > SMTPX__SASL_NAME_MAX)
        abort();
    if ((info.secret != NULL) != verify)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t fake_key[32] = {7};
    static const uint8_t pw[] = "tanstaaftanstaaf";
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__sasl_srv *st;
    uint32_t seed;
    unsigned mech, flags;
    size_t pos = 3, steps = 0;
    int rc, has_in;

    if (size < 3)
        return 0;
    mech = mechs[data[0] % 6];
    flags = data[1];
    seed = data[2];
    st = smtpx__sasl_srv_new(mem, mech, "mx.test", lcg_random, &seed, fake_key);
    if (st == NULL)
        abort();
    has_in = flags & 1;
    for (;;) {
        const uint8_t *in = NULL;
        uint8_t *copy = NULL;
        size_t len = 0;

        if (has_in) {
            if (pos >= size)
                break; /* the client went away mid-exchange */
            len = data[pos++];
            if (len > size - pos)
                len = size - pos;
            /* An exact copy: reading past the response is caught. */
            copy = malloc(len ? len : 1);
            if (copy == NULL)
                abort();
            memcpy(copy, data + pos, len);
            in = copy;
            pos += len;
        }
        if (++steps > 64)
            abort(); /* every step consumes a record or ends */
        rc = smtpx__sasl_srv_step(st, in, len, has_in);
        free(copy);
        has_in = 1;
        if (rc == SMTPX__SASL_CHALLENGE) {
            size_t olen;
            const uint8_t *out = smtpx__sasl_srv_out(st, &olen);
            volatile uint8_t sum = 0;
            size_t i;
            if (out == NULL)
                abort();
            for (i = 0; i < olen; i++) /* read whole: a wrong length shows */
                sum = (uint8_t)(sum + out[i]);
            continue;
        }
        if (rc == SMTPX__SASL_LOOKUP) {
            smtpx_auth_secret sec;
            check_info(st, 0);
            memset(&sec, 0, sizeof(sec));
            if (flags & 2) {
                sec.found = 1;
                sec.password = pw;
                sec.password_len = sizeof(pw) - 1;
                sec.salt = pw;
                sec.salt_len = (flags & 8) ? 0 : 4;
                sec.iterations = 1; /* cheap: this is about parsing */
                memset(sec.stored_key, 0x5a, 32);
                memset(sec.server_key, 0xa5, 32);
            }
            if (smtpx__sasl_srv_secret(st, (flags & 16) ? NULL : &sec) != 0)
                abort();
            has_in = 0;
            continue;
        }
        if (rc == SMTPX__SASL_VERIFY) {
            check_info(st, 1);
            if (flags & 4) {
                rc = smtpx__sasl_srv_refused(st);
                if (rc == SMTPX__SASL_CHALLENGE)
                    continue;
                if (rc != SMTPX__SASL_FAIL)
                    abort();
            }
            break;
        }
        if (rc == SMTPX__SASL_OK)
            check_info(st, 0);
        else if (rc != SMTPX__SASL_FAIL && rc != SMTPX__SASL_BAD)
            abort();
        /* The end: nothing more is taken. */
        if (smtpx__sasl_srv_step(st, (const uint8_t *)"", 0, 1) !=
                SMTPX__SASL_BAD ||
            smtpx__sasl_srv_step(st, NULL, 0, 0) != SMTPX__SASL_BAD ||
            smtpx__sasl_srv_secret(st, NULL) != SMTPX_ERR_INVALID_STATE)
            abort();
        break;
    }
    smtpx__sasl_srv_free(st);
    return 0;
}
