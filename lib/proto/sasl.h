/*
 * sasl - SASL mechanisms for AUTH (RFC 4954), both sides, without the SMTP
 * framing: the server and client cores parse the AUTH command, base64,
 * "*" and the 334/235/535 replies, and call the application; these
 * engines turn decoded responses into decoded challenges and say what the
 * core must do next.
 *
 * PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195), SCRAM-SHA-256 (RFC 5802,
 * RFC 7677; no channel binding, no SASLprep: names and passwords are used
 * as their octets), XOAUTH2 and OAUTHBEARER (RFC 7628).
 */
#ifndef SMTPX_LIB_SASL_H
#define SMTPX_LIB_SASL_H

#include <libsmtpx/auth.h>
#include <libsmtpx/common.h>

/* Longest user name or authzid an engine accepts (RFC 4616 2: 255). */
#define SMTPX__SASL_NAME_MAX 255
/* Longest password; tokens are bounded by SMTPX_LIMIT_AUTH_LINE only. */
#define SMTPX__SASL_PASS_MAX 1024

/* What the core must do after a step. */
enum {
    SMTPX__SASL_CHALLENGE = 1, /* send the output (maybe empty) in a 334 */
    SMTPX__SASL_VERIFY,        /* call on_auth with the secret to check */
    SMTPX__SASL_LOOKUP,        /* call on_auth_lookup, then _srv_secret()
                                  and step again with no input */
    SMTPX__SASL_OK,            /* credentials proven: on_auth, secret NULL */
    SMTPX__SASL_FAIL,          /* wrong credentials: 535 5.7.8 */
    SMTPX__SASL_BAD,           /* malformed response: 501 5.5.2 */
    SMTPX__SASL_NOMEM
};

/* ---- server ------------------------------------------------------------- */

typedef struct smtpx__sasl_srv smtpx__sasl_srv;

/*
 * smtpx__sasl_srv_new - an exchange for one mechanism (one SMTPX_SASL_*
 * bit).  hostname goes into the CRAM-MD5 challenge (copied; NULL:
 * "localhost"); rnd makes nonces (NULL: smtpx__random_system); fake_key
 * (32 octets, copied) makes the stand-in SCRAM salt of an unknown user,
 * the same for the same name, and must not be NULL for SCRAM-SHA-256.
 * NULL on NOMEM or a bad mechanism.  How nonces are made from rnd's octets
 * is described at the top of sasl.c (tests rely on it).
 */
smtpx__sasl_srv *smtpx__sasl_srv_new(const smtpx_mem *mem, unsigned mech,
                                     const char *hostname, smtpx_random_fn *rnd,
                                     void *rnd_ud, const uint8_t fake_key[32]);

/* smtpx__sasl_srv_free - wipe and free (NULL-safe). */
void smtpx__sasl_srv_free(smtpx__sasl_srv *st);

/*
 * smtpx__sasl_srv_step - go on: in is the decoded response (has_in 1), or
 * nothing (has_in 0: the AUTH command had no initial response, or after
 * a lookup).  An initial response to CRAM-MD5 (server first) is BAD.
 * Returns SMTPX__SASL_*.  After OK, FAIL, BAD or NOMEM the exchange is
 * over: secrets are wiped and further steps return BAD.  A failing random
 * source (CRAM-MD5 challenge, SCRAM nonce) gives FAIL.
 */
int smtpx__sasl_srv_step(smtpx__sasl_srv *st, const uint8_t *in, size_t len,
                         int has_in);

/* The challenge of the last CHALLENGE step (len may be 0). */
const uint8_t *smtpx__sasl_srv_out(const smtpx__sasl_srv *st, size_t *len);

/* The parsed identity and secret, after VERIFY, LOOKUP or OK: info points
 * into the engine (valid until the next step or free).  authzid and
 * authcid are never NULL ("" until parsed); secret is set only while the
 * last step returned VERIFY (not after _refused()). */
void smtpx__sasl_srv_info(const smtpx__sasl_srv *st, smtpx_auth_info *info);

/* smtpx__sasl_srv_secret - what on_auth_lookup found (copied); with
 * !sec->found, or sec NULL, stand-in values are used and the exchange
 * fails at its end.  SCRAM data without a salt or with 0 iterations counts
 * as not found; an iteration count below 4096 is used as given (the keys
 * were made with it).  0, SMTPX_ERR_NOMEM, or SMTPX_ERR_INVALID_STATE when
 * the last step did not return LOOKUP. */
int smtpx__sasl_srv_secret(smtpx__sasl_srv *st, const smtpx_auth_secret *sec);

/* smtpx__sasl_srv_refused - on_auth refused: for XOAUTH2 and OAUTHBEARER
 * returns CHALLENGE with the error to send in a 334 (the client answers,
 * then the refusal is sent); for the others FAIL. */
int smtpx__sasl_srv_refused(smtpx__sasl_srv *st);

/* ---- client ------------------------------------------------------------- */

typedef struct smtpx__sasl_cli smtpx__sasl_cli;

/* smtpx__sasl_cli_pick - the strongest of offered & allowed that the
 * credentials fit (token mechanisms need a token, the others a
 * password); 0 if none. */
unsigned smtpx__sasl_cli_pick(unsigned offered, unsigned allowed,
                              int has_password, int has_token);

/*
 * smtpx__sasl_cli_new - a client exchange.  Strings are copied (and wiped
 * at free); authzid may be NULL ("" is the same; XOAUTH2 and OAUTHBEARER
 * have no place for it: OAUTHBEARER's gs2 "a=" carries user); secret is
 * the password or the token as the mechanism needs.  NULL on NOMEM, when
 * rnd fails (SCRAM's nonce; NULL rnd: smtpx__random_system), or on input
 * no mechanism message can carry: a control character in user, authzid
 * or a token (it would forge the ^A framing of the token mechanisms), or
 * an empty user for SCRAM-SHA-256.
 */
smtpx__sasl_cli *smtpx__sasl_cli_new(const smtpx_mem *mem, unsigned mech,
                                     const char *authzid, const char *user,
                                     const char *secret, smtpx_random_fn *rnd,
                                     void *rnd_ud);

void smtpx__sasl_cli_free(smtpx__sasl_cli *st);

/* smtpx__sasl_cli_initial - the initial response to send with AUTH: 1 and
 * *out (maybe empty), or 0 when the mechanism sends none (LOGIN,
 * CRAM-MD5). */
int smtpx__sasl_cli_initial(smtpx__sasl_cli *st, const uint8_t **out,
                            size_t *len);

/*
 * smtpx__sasl_cli_step - answer a decoded 334 challenge: 0 and *out (valid
 * until the next call or free), or SMTPX__SASL_BAD (a challenge it cannot
 * make sense of: cancel with "*"), SMTPX__SASL_FAIL (SCRAM: the server's
 * proof is wrong, or it sent "e=": cancel, and do not trust this server),
 * SMTPX__SASL_NOMEM.  When the initial response was not sent with AUTH,
 * the server's empty challenge gets it.  After an error every later
 * step is BAD.
 */
int smtpx__sasl_cli_step(smtpx__sasl_cli *st, const uint8_t *in, size_t len,
                         const uint8_t **out, size_t *olen);

/* smtpx__sasl_cli_done - 235 arrived: 1 if the mechanism is content (SCRAM
 * has checked the server's proof), 0 if not. */
int smtpx__sasl_cli_done(const smtpx__sasl_cli *st);

#endif
