/*
 * fuzz_sasl_client - the client's SASL engines (every mechanism) on
 * arbitrary decoded challenges, and both engines talking to each other
 * with the input flipping bits in what they say.
 *
 * Input: octet 0 chooses the mechanism, octet 1 the mode and options,
 * octet 2 seeds the random source; then records of one length octet and
 * that many octets.
 *
 * Challenges mode: the records are the server's challenges.  Every step
 * returns 0 with an answer, or BAD, FAIL, NOMEM, and after one of those
 * every step is BAD; the initial response and the answers are readable to
 * their lengths; smtpx__sasl_cli_done() is 1 for SCRAM only after the
 * server's signature checked out.
 *
 * Exchange mode: the client and server engines run one exchange, the
 * lookup finding the user.  The records say which octet of which message
 * to flip (none: a clean run).  A clean run must succeed on both sides: the
 * server hands the right identity and secret to on_auth, or proves the
 * password itself (CRAM-MD5, SCRAM-SHA-256), and the client is content.
 * A tampered run must end cleanly on both sides, whatever it ends in.
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

static uint8_t touch(const uint8_t *p, size_t n)
{
    volatile uint8_t sum = 0;
    size_t i;

    for (i = 0; i < n; i++)
        sum = (uint8_t)(sum + p[i]);
    return sum;
}

static const char user[] = "tim", pass[] = "tanstaaftanstaaf",
                  token[] = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg";

static const char *secret_for(unsigned mech)
{
    return mech == SMTPX_SASL_XOAUTH2 || mech == SMTPX_SASL_OAUTHBEARER ? token
                                                                        : pass;
}

static void challenges(unsigned mech, unsigned flags, uint32_t seed,
                       const uint8_t *data, size_t size)
{
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__sasl_cli *st;
    const uint8_t *out;
    size_t olen, pos = 0;
    int failed = 0, rc;

    st = smtpx__sasl_cli_new(mem, mech, (flags & 4) ? "admin" : NULL, user,
                             secret_for(mech), lcg_random, &seed);
    if (st == NULL)
        abort();
    if (smtpx__sasl_cli_initial(st, &out, &olen) == 1)
        touch(out, olen);
    while (pos < size) {
        size_t len = data[pos++];
        uint8_t *copy;

        if (len > size - pos)
            len = size - pos;
        copy = malloc(len ? len : 1);
        if (copy == NULL)
            abort();
        memcpy(copy, data + pos, len);
        pos += len;
        rc = smtpx__sasl_cli_step(st, copy, len, &out, &olen);
        free(copy);
        if (failed && rc != SMTPX__SASL_BAD)
            abort();
        if (rc == 0) {
            if (out == NULL && olen > 0)
                abort();
            if (out != NULL)
                touch(out, olen);
        } else if (rc == SMTPX__SASL_BAD || rc == SMTPX__SASL_FAIL) {
            failed = 1;
        } else {
            abort();
        }
    }
    if (failed && smtpx__sasl_cli_done(st))
        abort();
    smtpx__sasl_cli_free(st);
}

/* flip - flip the bits of mask in octet at of msg number n, if the
 * records ask for it (each record: message number, offset, mask) */
static uint8_t *flip(const uint8_t *msg, size_t len, int n, const uint8_t *rec,
                     size_t nrec, int *tampered)
{
    uint8_t *copy = malloc(len ? len : 1);
    size_t i;

    if (copy == NULL)
        abort();
    if (len > 0)
        memcpy(copy, msg, len);
    for (i = 0; i + 3 <= nrec; i += 3)
        if (rec[i] == n && len > 0 && rec[i + 2] != 0) {
            copy[rec[i + 1] % len] ^= rec[i + 2];
            *tampered = 1;
        }
    return copy;
}

static void exchange(unsigned mech, unsigned flags, uint32_t seed,
                     const uint8_t *rec, size_t nrec)
{
    static const uint8_t fake_key[32] = {9};
    static const uint8_t salt[] = "QSXCR+Q6sek8bf92";
    const smtpx_mem *mem = smtpx__mem_default();
    smtpx__sasl_cli *cli;
    smtpx__sasl_srv *srv;
    smtpx_auth_secret sec;
    smtpx_auth_info info;
    const uint8_t *msg = NULL;
    size_t mlen = 0;
    int n = 0, tampered = 0, rc, has, verified = 0, ok = 0, steps;
    uint32_t cseed = seed, sseed = seed ^ 0x5555u;

    cli = smtpx__sasl_cli_new(mem, mech, NULL, user, secret_for(mech),
                              lcg_random, &cseed);
    srv =
        smtpx__sasl_srv_new(mem, mech, "mx.test", lcg_random, &sseed, fake_key);
    if (cli == NULL || srv == NULL)
        abort();
    has = (flags & 2) && smtpx__sasl_cli_initial(cli, &msg, &mlen) == 1;
    for (steps = 0; steps < 16; steps++) {
        uint8_t *in = has ? flip(msg, mlen, n++, rec, nrec, &tampered) : NULL;

        rc = smtpx__sasl_srv_step(srv, in, has ? mlen : 0, has);
        free(in);
        if (rc == SMTPX__SASL_LOOKUP) {
            memset(&sec, 0, sizeof(sec));
            sec.found = 1;
            sec.password = (const uint8_t *)pass;
            sec.password_len = strlen(pass);
            sec.salt = salt;
            sec.salt_len = sizeof(salt) - 1;
            sec.iterations = 2;
            if (smtpx_scram_keys((const uint8_t *)pass, strlen(pass), salt,
                                 sizeof(salt) - 1, 2, sec.stored_key,
                                 sec.server_key) != 0 ||
                smtpx__sasl_srv_secret(srv, &sec) != 0)
                abort();
            has = 0;
            continue;
        }
        if (rc == SMTPX__SASL_CHALLENGE) {
            const uint8_t *c = smtpx__sasl_srv_out(srv, &mlen);
            uint8_t *cc = flip(c, mlen, n++, rec, nrec, &tampered);
            rc = smtpx__sasl_cli_step(cli, cc, mlen, &msg, &mlen);
            free(cc);
            if (rc != 0) {
                if (!tampered)
                    abort();
                break;
            }
            has = 1;
            continue;
        }
        if (rc == SMTPX__SASL_VERIFY) {
            smtpx__sasl_srv_info(srv, &info);
            if (!tampered &&
                (strcmp(info.authcid, user) != 0 ||
                 info.secret_len != strlen(secret_for(mech)) ||
                 memcmp(info.secret, secret_for(mech), info.secret_len) != 0))
                abort();
            verified = 1;
        } else if (rc == SMTPX__SASL_OK) {
            smtpx__sasl_srv_info(srv, &info);
            if (strcmp(info.authcid, user) != 0 && !tampered)
                abort();
            ok = 1;
        } else if (!tampered) {
            abort(); /* a clean run must not fail */
        }
        break;
    }
    if (!tampered) {
        if (!(verified || ok) || !smtpx__sasl_cli_done(cli))
            abort();
        if ((mech == SMTPX_SASL_CRAM_MD5 || mech == SMTPX_SASL_SCRAM_SHA_256) !=
            ok)
            abort();
    }
    smtpx__sasl_cli_free(cli);
    smtpx__sasl_srv_free(srv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned mech, flags;

    if (size < 3)
        return 0;
    mech = mechs[data[0] % 6];
    flags = data[1];
    if (flags & 1)
        exchange(mech, flags, data[2], data + 3, size - 3);
    else
        challenges(mech, flags, data[2], data + 3, size - 3);
    return 0;
}
