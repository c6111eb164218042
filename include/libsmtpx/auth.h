/*
 * libsmtpx - SMTP authentication (RFC 4954): the SASL mechanisms, what a
 * server's AUTH callbacks see and store, and a client's credentials.
 *
 * Both cores and the SASL engines below them use these types; see
 * smtpx_auth(3) for how a server checks credentials (on_auth,
 * on_auth_lookup in <libsmtpx/server.h>) and how a client logs in
 * (smtpx_client_auth() in <libsmtpx/client.h>).
 */
#ifndef LIBSMTPX_AUTH_H
#define LIBSMTPX_AUTH_H

#include <libsmtpx/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * SASL mechanisms (RFC 4954), as a bit mask: which a server offers, which
 * a client may use.  A server offers a mechanism only if the application
 * set the callback it needs (on_auth for PLAIN, LOGIN, XOAUTH2 and
 * OAUTHBEARER; on_auth_lookup too for CRAM-MD5 and SCRAM-SHA-256).
 *
 * PLAIN          RFC 4616: identity and password in one response.
 * LOGIN          The old two-step form of PLAIN (draft-murchison-sasl-login).
 * CRAM_MD5       RFC 2195; legacy, opt-in: the server must store clear
 *                passwords, and HMAC-MD5 is weak.
 * SCRAM_SHA_256  RFC 7677: the password never crosses the wire and the
 *                server proves it knows the user's key.
 * XOAUTH2        Google's bearer-token form.
 * OAUTHBEARER    RFC 7628 bearer token.
 */
#define SMTPX_SASL_PLAIN         (1u << 0)
#define SMTPX_SASL_LOGIN         (1u << 1)
#define SMTPX_SASL_CRAM_MD5      (1u << 2)
#define SMTPX_SASL_SCRAM_SHA_256 (1u << 3)
#define SMTPX_SASL_XOAUTH2       (1u << 4)
#define SMTPX_SASL_OAUTHBEARER   (1u << 5)
#define SMTPX_SASL_ALL           0x3fu
/** The one list of the mechanisms and their names (RFC 4422 3.1), from
 *  which smtpx_sasl_name() and smtpx_sasl_from_name() are made. */
#define SMTPX_SASL_MAP(XX)                                                     \
    XX(PLAIN, "PLAIN")                                                         \
    XX(LOGIN, "LOGIN")                                                         \
    XX(CRAM_MD5, "CRAM-MD5")                                                   \
    XX(SCRAM_SHA_256, "SCRAM-SHA-256")                                         \
    XX(XOAUTH2, "XOAUTH2")                                                     \
    XX(OAUTHBEARER, "OAUTHBEARER")
/** A server's default: the password mechanisms but legacy CRAM-MD5 (the
 *  token mechanisms are opt-in: the application must expect tokens).  A
 *  client's default is SMTPX_SASL_ALL: it uses the token mechanisms only
 *  when given a token. */
#define SMTPX_SASL_DEFAULT                                                     \
    (SMTPX_SASL_PLAIN | SMTPX_SASL_LOGIN | SMTPX_SASL_SCRAM_SHA_256)

/** @brief A mechanism's name ("SCRAM-SHA-256") for one SMTPX_SASL_* bit,
 *         or NULL. */
SMTPX_EXTERN const char *smtpx_sasl_name(unsigned mech);

/** @brief The SMTPX_SASL_* bit for a name (any case), or 0. */
SMTPX_EXTERN unsigned smtpx_sasl_from_name(const char *name);

/**
 * An AUTH exchange (RFC 4954), for on_auth and on_auth_lookup.  Pointers
 * are valid only during the call; the secret is wiped afterwards.
 *
 * mech       SMTPX_SASL_*.
 * mech_name  Its name ("PLAIN").
 * authzid    The identity the client asks to act as; "" when it asked for
 *            none (it then acts as authcid).
 * authcid    The user name the credentials belong to.
 * secret     on_auth: the password (PLAIN, LOGIN) or the bearer token
 *            (XOAUTH2, OAUTHBEARER) to check, not NUL-terminated; NULL when
 *            the core has already checked the credentials (CRAM-MD5 and
 *            SCRAM-SHA-256, against what on_auth_lookup supplied).
 *            on_auth_lookup: NULL.
 */
typedef struct smtpx_auth_info {
    unsigned mech;
    const char *mech_name;
    const char *authzid;
    const char *authcid;
    const uint8_t *secret;
    size_t secret_len;
} smtpx_auth_info;

/**
 * What the server stores for a user, for the mechanisms that prove a
 * password without sending it; on_auth_lookup fills it in.  The core copies
 * what it needs and wipes its copy after use.
 *
 * found       1 if the user exists; leave 0 otherwise: the exchange goes on
 *             with made-up values and fails at the end, so that a client
 *             cannot tell a wrong user from a wrong password.
 * password    CRAM-MD5: the clear password.
 * salt, iterations, stored_key, server_key
 *             SCRAM-SHA-256 (RFC 5802 3): StoredKey = H(ClientKey) and
 *             ServerKey, both derived from the password with PBKDF2 (see
 *             smtpx_scram_keys()).  iterations of at least 4096 (RFC
 *             7677).
 */
typedef struct smtpx_auth_secret {
    int found;
    const uint8_t *password;
    size_t password_len;
    const uint8_t *salt;
    size_t salt_len;
    uint32_t iterations;
    uint8_t stored_key[32];
    uint8_t server_key[32];
} smtpx_auth_secret;

/**
 * @brief  Derive SCRAM-SHA-256 keys from a password, to store or to fill
 *         an smtpx_auth_secret: SaltedPassword = PBKDF2-HMAC-SHA-256(
 *         password, salt, iterations), StoredKey = SHA-256(HMAC(
 *         SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword,
 *         "Server Key").  The password is used as given (UTF-8; SASLprep is
 *         not applied).
 * @retval 0, SMTPX_ERR_INVALID_ARGUMENT (NULL, or iterations 0),
 *         SMTPX_ERR_NOMEM (mbedTLS could not allocate).
 */
SMTPX_EXTERN int smtpx_scram_keys(const uint8_t *password, size_t password_len,
                                  const uint8_t *salt, size_t salt_len,
                                  uint32_t iterations, uint8_t stored_key[32],
                                  uint8_t server_key[32]);

/**
 * Credentials for smtpx_client_auth().  Set size to
 * sizeof(smtpx_auth_creds); members may be added at the end.
 *
 * mechs     SMTPX_SASL_* the client may use; 0 for the config's mask.  The
 *           strongest mechanism that the server offers and the
 *           credentials fit is chosen: OAUTHBEARER, XOAUTH2 (with a
 *           token), then SCRAM-SHA-256, CRAM-MD5, PLAIN, LOGIN.
 * authzid   The identity to act as, or NULL.
 * user      The user name (authcid).
 * password  For PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256.
 * token     A bearer token, for XOAUTH2 and OAUTHBEARER.
 */
typedef struct smtpx_auth_creds {
    size_t size;
    unsigned mechs;
    const char *authzid;
    const char *user;
    const char *password;
    const char *token;
} smtpx_auth_creds;

#ifdef __cplusplus
}
#endif

#endif /* LIBSMTPX_AUTH_H */
