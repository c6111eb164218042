/*
 * tls_mbedtls - the smtpx_tls_ops implementation over mbedTLS.
 *
 * Exports smtpx_mbedtls_new/free/ops/add_cert_file/add_cert_mem/set_sni/
 * add_ca_file/add_ca_mem/set_client_cert/set_resumption/last_error/
 * strerror.
 *
 * This is the only file that includes mbedTLS's TLS and X.509 headers, and
 * every difference between mbedTLS versions stays in it (the compat_*
 * functions).  Debian 12's mbedTLS 2.28 is what is built and tested; the
 * 3.x branches follow its documented API but are not tested.
 *
 * An smtpx_mbedtls is one TLS configuration: an mbedtls_ssl_config, its
 * random generator (entropy + CTR_DRBG), up to 16 certificate chains with
 * their keys, and the trusted CAs.  A client holds two ssl configs that
 * share all of that and differ only in the authentication mode: mbedTLS
 * fixes the mode per config, and a client chooses per connection whether
 * to verify (SMTPX_TLS_OPEN_VERIFY: MBEDTLS_SSL_VERIFY_REQUIRED) or only
 * to report (MBEDTLS_SSL_VERIFY_OPTIONAL, so smtpx_tls_info.verified tells
 * the truth about an opportunistic session).
 *
 * Invariants:
 * - Set-up calls are accepted until the first open; the first open
 *   completes the configuration (its own certificate, the system's CAs for
 *   a client given none, the SNI callback) and marks it in use, after
 *   which it is read-only and set-up calls return SMTPX_ERR_INVALID_STATE.
 *   With MBEDTLS_THREADING_C (Debian) a mutex in the object makes that
 *   hand-over safe even when the first opens race in several threads;
 *   without it, the first open must happen before the object is shared.
 * - A verifying client always sets the host name: mbedTLS 2.28 silently
 *   skips the name check when none is set, so open refuses VERIFY without
 *   a name.
 * - mbedtls_ssl_write() must be called again with the same data after
 *   WANT_*, and then reports the length of the new call; the adapter
 *   remembers the pending length so that a caller offering more data
 *   (as the pump does from its output queue) is never told that unsent
 *   bytes went out.
 *
 * Our structures and mbedTLS's are allocated with calloc/free: mbedTLS
 * allocates with the C library's allocator anyway (Debian builds it without
 * MBEDTLS_PLATFORM_MEMORY), so smtpx_mem would account for only part of it.
 *
 * Resumption: a server seals sessions into tickets (RFC 5077) with keys
 * mbedTLS rotates every lifetime; a client keeps its last session per
 * destination and offers it again (see saved_offer).  A resumed handshake
 * skips the key exchange and the certificate, most of a handshake's CPU.
 *
 * TLS 1.2 at least (RFC 8996 deprecates 1.0 and 1.1); SNI as RFC 6066 3;
 * host-name matching for SNI as RFC 6125 6.4 (DNS names first, the common
 * name only when there are none, "*" for one whole left-most label).
 */
#include <arpa/inet.h>
#include <limits.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libsmtpx/tls_mbedtls.h>

#include <mbedtls/version.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/asn1.h>
#include <mbedtls/x509_crt.h>
#if defined(MBEDTLS_THREADING_C)
#include <mbedtls/threading.h>
#endif
#if MBEDTLS_VERSION_NUMBER < 0x03000000
/* For one flag only: whether the handshake in progress resumes a session
 * (compat_handshake); 2.x has no accessor for it. */
#include <mbedtls/ssl_internal.h>
#endif
#if MBEDTLS_VERSION_NUMBER >= 0x03000000 &&                                    \
    (defined(MBEDTLS_USE_PSA_CRYPTO) || defined(MBEDTLS_SSL_PROTO_TLS1_3))
#include <psa/crypto.h>
#define TLS_NEED_PSA 1
#endif

/* Certificate chains a configuration holds (the header promises 16). */
#define MAX_CERTS 16
/* The trust store a client uses when it was given no CA. */
#define SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
/* Longest host name (RFC 1035 2.3.4: 255 octets with length bytes, so 253
 * characters as text); the buffers hold it and its NUL. */
#define MAX_HOST 253
/* Longest common name kept for smtpx_tls_info.peer (X.520
 * ub-common-name). */
#define MAX_CN 64
/* Session resumption by default: ticket lifetime and key rotation period
 * (Postfix's smtpd_tls_session_cache_timeout), and destinations a client
 * remembers. */
#define RESUME_LIFETIME 3600
#define RESUME_MAX      256

typedef struct cert_key {
    mbedtls_x509_crt crt;
    mbedtls_pk_context key;
} cert_key;

/* A client's session with one destination, to offer again. */
typedef struct saved_session {
    char name[MAX_HOST + 1];
    int verify; /* saved from a verifying connection, offered to those */
    time_t saved;
    mbedtls_ssl_session session;
    struct saved_session *next;
} saved_session;

struct smtpx_mbedtls {
    int server;
    int in_use;      /* set by the first open; set-up is over */
    int client_cert; /* server: 0 not asked, 1 optional, 2 required */
    int last_error;  /* mbedTLS code of the last failed set-up call */
    int own_set;     /* bits: the first chain is in conf, conf_verify */
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf;        /* server; client without VERIFY */
    mbedtls_ssl_config conf_verify; /* client with VERIFY */
    mbedtls_x509_crt ca;
    cert_key *cert[MAX_CERTS];
    size_t ncert;
    smtpx_mbedtls_sni_fn *sni_fn;
    void *sni_user_data;
    uint32_t resume_lifetime;          /* 0: no resumption */
    size_t resume_max;                 /* client: destinations remembered */
    mbedtls_ssl_ticket_context ticket; /* server: keys, rotated */
    int ticket_set;
    saved_session *sessions; /* client: most recently used first */
    size_t nsessions;
#if defined(MBEDTLS_THREADING_C)
    mbedtls_threading_mutex_t lock; /* guards in_use, set-up, sessions */
#endif
};

enum { ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_CLOSED, ST_FAILED };

typedef struct tls_conn {
    mbedtls_ssl_context ssl;
    smtpx_mbedtls *m;
    smtpx_io lower;
    int server;
    int required;    /* a failed verification fails the handshake */
    int state;       /* ST_* */
    int failed;      /* the handshake's result once it failed */
    int eof;         /* recv has reported the end */
    int last_error;  /* mbedTLS code or X.509 flags */
    int io_error;    /* the lower io's code behind the last failure */
    size_t wpending; /* length of a write mbedTLS holds after WANT_* */
    int verified;
    int bits;
    int verify;              /* client: opened with SMTPX_TLS_OPEN_VERIFY */
    int offered;             /* client: a saved session was offered */
    int resumed;             /* the handshake resumed a session */
    char name[MAX_HOST + 1]; /* client: the name asked for, or "" */
    unsigned char ip[16];    /* client: the name as an address literal */
    size_t iplen;            /* 4, 16, or 0 when the name is a host name */
    char peer[MAX_CN + 1];   /* server: the client certificate's CN */
} tls_conn;

/* ---- mbedTLS version differences ------------------------------------- */

static int compat_parse_key(smtpx_mbedtls *m, mbedtls_pk_context *pk,
                            const uint8_t *key, size_t len, const char *pw)
{
    const unsigned char *p = (const unsigned char *)pw;
    size_t pwlen = pw != NULL ? strlen(pw) : 0;

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    return mbedtls_pk_parse_key(pk, key, len, p, pwlen, mbedtls_ctr_drbg_random,
                                &m->drbg);
#else
    (void)m;
    return mbedtls_pk_parse_key(pk, key, len, p, pwlen);
#endif
}

static int compat_parse_keyfile(smtpx_mbedtls *m, mbedtls_pk_context *pk,
                                const char *path, const char *pw)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    return mbedtls_pk_parse_keyfile(pk, path, pw, mbedtls_ctr_drbg_random,
                                    &m->drbg);
#else
    (void)m;
    return mbedtls_pk_parse_keyfile(pk, path, pw);
#endif
}

static int compat_check_pair(smtpx_mbedtls *m, const mbedtls_pk_context *pub,
                             const mbedtls_pk_context *prv)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    return mbedtls_pk_check_pair(pub, prv, mbedtls_ctr_drbg_random, &m->drbg);
#else
    (void)m;
    return mbedtls_pk_check_pair(pub, prv);
#endif
}

static void compat_min_tls12(mbedtls_ssl_config *conf)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03020000
    mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
    mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
#endif
}

/*
 * compat_groups - the key exchange groups, fastest first.  mbedTLS 2.x
 * otherwise prefers its curves by size (secp521r1 first): a handshake
 * between two mbedTLS ends then costs several times the CPU for no
 * security anyone needs here (bench/run.sh measured 13 ms per side).
 * 3.x defaults to X25519 first already; the list is set for both.
 */
#if MBEDTLS_VERSION_NUMBER >= 0x03010000
static const uint16_t compat_group_list[] = {
    MBEDTLS_SSL_IANA_TLS_GROUP_X25519, MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
    MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1, MBEDTLS_SSL_IANA_TLS_GROUP_SECP521R1,
    MBEDTLS_SSL_IANA_TLS_GROUP_NONE};
#else
static const mbedtls_ecp_group_id compat_group_list[] = {
#if defined(MBEDTLS_ECP_DP_CURVE25519_ENABLED)
    MBEDTLS_ECP_DP_CURVE25519,
#endif
#if defined(MBEDTLS_ECP_DP_SECP256R1_ENABLED)
    MBEDTLS_ECP_DP_SECP256R1,
#endif
#if defined(MBEDTLS_ECP_DP_SECP384R1_ENABLED)
    MBEDTLS_ECP_DP_SECP384R1,
#endif
#if defined(MBEDTLS_ECP_DP_SECP521R1_ENABLED)
    MBEDTLS_ECP_DP_SECP521R1,
#endif
    MBEDTLS_ECP_DP_NONE};
#endif

static void compat_groups(mbedtls_ssl_config *conf)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03010000
    mbedtls_ssl_conf_groups(conf, compat_group_list);
#else
    mbedtls_ssl_conf_curves(conf, compat_group_list);
#endif
}

/*
 * compat_handshake - mbedtls_ssl_handshake(), step by step so that
 * whether it resumes a session can be seen: 2.x keeps the flag in the
 * handshake state, which it frees at the end.  3.x has no such flag in
 * reach.
 */
static int compat_handshake(mbedtls_ssl_context *ssl, int *resumed)
{
#if MBEDTLS_VERSION_NUMBER < 0x03000000
    int ret = 0;

    /* The flag as it stands last, before the wrap-up frees it: a client
     * sets it when it offers a session, and the server's reply settles
     * it. */
    while (ssl->state != MBEDTLS_SSL_HANDSHAKE_OVER) {
        if (ssl->handshake != NULL)
            *resumed = ssl->handshake->resume != 0;
        ret = mbedtls_ssl_handshake_step(ssl);
        if (ret != 0)
            break;
    }
    return ret;
#else
    (void)resumed;
    return mbedtls_ssl_handshake(ssl);
#endif
}

/* compat_bits - key bits of the negotiated cipher, 0 if unknown */
static int compat_bits(const mbedtls_ssl_context *ssl)
{
    const char *name = mbedtls_ssl_get_ciphersuite(ssl);
    const mbedtls_ssl_ciphersuite_t *cs;

    if (name == NULL)
        return 0;
    cs = mbedtls_ssl_ciphersuite_from_id(mbedtls_ssl_get_ciphersuite_id(name));
    if (cs == NULL)
        return 0;
#if MBEDTLS_VERSION_NUMBER >= 0x03060000
    return (int)mbedtls_ssl_ciphersuite_get_cipher_key_bitlen(cs);
#elif MBEDTLS_VERSION_NUMBER >= 0x03000000
    return 0;
#else
    {
        const mbedtls_cipher_info_t *ci =
            mbedtls_cipher_info_from_type(cs->cipher);
        return ci != NULL ? (int)ci->key_bitlen : 0;
    }
#endif
}

/* ---- helpers --------------------------------------------------------- */

static void cfg_lock(smtpx_mbedtls *m)
{
#if defined(MBEDTLS_THREADING_C)
    (void)mbedtls_mutex_lock(&m->lock);
#else
    (void)m;
#endif
}

static void cfg_unlock(smtpx_mbedtls *m)
{
#if defined(MBEDTLS_THREADING_C)
    (void)mbedtls_mutex_unlock(&m->lock);
#else
    (void)m;
#endif
}

/* tls_nomem - whether an mbedTLS code means that an allocation failed */
static int tls_nomem(int ret)
{
    return ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ||
           ret == MBEDTLS_ERR_X509_ALLOC_FAILED ||
           ret == MBEDTLS_ERR_PK_ALLOC_FAILED ||
           ret == MBEDTLS_ERR_PEM_ALLOC_FAILED;
}

/* cfg_fail - record a set-up failure; returns the SMTPX_ERR_* code */
static int cfg_fail(smtpx_mbedtls *m, int ret)
{
    m->last_error = ret;
    return tls_nomem(ret) ? SMTPX_ERR_NOMEM : SMTPX_ERR_TLS;
}

/* crt_count - certificates in a chain (an initialised, empty one has 0) */
static size_t crt_count(const mbedtls_x509_crt *c)
{
    size_t n = 0;

    for (; c != NULL; c = c->next)
        if (c->raw.len != 0)
            n++;
    return n;
}

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int ascii_eq(const unsigned char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (ascii_lower(a[i]) != ascii_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* name_match - a certificate name (pattern) against a host name, without
 * regard to case; "*." matches one whole left-most label (RFC 6125 6.4.3) */
static int name_match(const unsigned char *pat, size_t plen, const char *host,
                      size_t hlen)
{
    if (plen > 2 && pat[0] == '*' && pat[1] == '.') {
        const char *dot = memchr(host, '.', hlen);
        size_t rest;

        if (dot == NULL || dot == host)
            return 0;
        rest = hlen - (size_t)(dot - host);
        return rest == plen - 1 && ascii_eq(pat + 1, dot, rest);
    }
    return plen == hlen && ascii_eq(pat, host, hlen);
}

/* cert_cn - the subject's common name, or NULL */
static const mbedtls_x509_buf *cert_cn(const mbedtls_x509_crt *crt)
{
    const mbedtls_x509_name *n;

    for (n = &crt->subject; n != NULL; n = n->next)
        if (n->oid.p != NULL &&
            MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0)
            return &n->val;
    return NULL;
}

/* cert_matches - whether a certificate is for host: its DNS names, or its
 * common name when it has none (RFC 6125 6.4.4) */
static int cert_matches(const mbedtls_x509_crt *crt, const char *host,
                        size_t hlen)
{
    const int dns = MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME;
    const int mask = MBEDTLS_ASN1_TAG_CLASS_MASK | MBEDTLS_ASN1_TAG_VALUE_MASK;
    const mbedtls_x509_sequence *san;
    const mbedtls_x509_buf *cn;
    int have_dns = 0;

    for (san = &crt->subject_alt_names; san != NULL; san = san->next) {
        if (san->buf.p == NULL || (san->buf.tag & mask) != dns)
            continue;
        have_dns = 1;
        if (name_match(san->buf.p, san->buf.len, host, hlen))
            return 1;
    }
    if (have_dns)
        return 0;
    cn = cert_cn(crt);
    return cn != NULL && name_match(cn->p, cn->len, host, hlen);
}

/*
 * tls_sni - mbedTLS's SNI callback on the server: present the certificate
 * the application's callback names, else every certificate whose names
 * match (mbedTLS takes the first that suits the cipher suite, so an RSA and
 * an ECDSA certificate for one name both work), else the configuration's
 * own, the first added.  Runs in any thread: reads the frozen object only.
 */
static int tls_sni(void *p, mbedtls_ssl_context *ssl, const unsigned char *name,
                   size_t len)
{
    const smtpx_mbedtls *m = p;
    char host[MAX_HOST + 1];
    size_t i;
    int ret;

    /* A name with a NUL, or longer than a DNS name can be, is no host
     * name: refuse it rather than look up a truncated one. */
    if (len == 0 || len > MAX_HOST || memchr(name, '\0', len) != NULL)
        return -1;
    memcpy(host, name, len);
    host[len] = '\0';
    if (m->sni_fn != NULL) {
        int idx = m->sni_fn(host, m->sni_user_data);

        if (idx < 0 || (size_t)idx >= m->ncert)
            return -1; /* mbedTLS sends unrecognized_name */
        return mbedtls_ssl_set_hs_own_cert(ssl, &m->cert[idx]->crt,
                                           &m->cert[idx]->key);
    }
    for (i = 0; i < m->ncert; i++) {
        if (!cert_matches(&m->cert[i]->crt, host, len))
            continue;
        ret = mbedtls_ssl_set_hs_own_cert(ssl, &m->cert[i]->crt,
                                          &m->cert[i]->key);
        if (ret != 0)
            return ret;
    }
    return 0;
}

/* conf_setup - one mbedtls_ssl_config with our defaults */
static int conf_setup(smtpx_mbedtls *m, mbedtls_ssl_config *conf, int authmode)
{
    int ret;

    ret = mbedtls_ssl_config_defaults(
        conf, m->server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
        MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0)
        return ret;
    mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &m->drbg);
    compat_min_tls12(conf);
    compat_groups(conf);
    mbedtls_ssl_conf_authmode(conf, authmode);
#if defined(MBEDTLS_SSL_RENEGOTIATION)
    /* The default, said aloud: a renegotiation would run a handshake
     * inside recv, past the verification this adapter reports. */
    mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
#endif
    return 0;
}

/* cfg_own_cert - make the first chain the own certificate of conf (bit
 * in own_set); mbedTLS can only append, so it is done once, at the first
 * open, and a failure leaves nothing to undo */
static int cfg_own_cert(smtpx_mbedtls *m, mbedtls_ssl_config *conf, int bit)
{
    int ret;

    if (m->ncert == 0 || (m->own_set & bit) != 0)
        return 0;
    ret = mbedtls_ssl_conf_own_cert(conf, &m->cert[0]->crt, &m->cert[0]->key);
    if (ret != 0)
        return tls_nomem(ret) ? SMTPX_ERR_NOMEM : SMTPX_ERR_TLS;
    m->own_set |= bit;
    return 0;
}

/* cfg_freeze - complete the configuration at its first open (locked); may
 * be run again after a failure */
static int cfg_freeze(smtpx_mbedtls *m)
{
    int has_ca, rc;

    if (m->server && m->ncert == 0)
        return SMTPX_ERR_INVALID_STATE; /* nothing to present */
    /* The first chain is the configuration's own: what a server presents
     * without SNI or without a match, and what a client presents when it
     * is asked for a certificate. */
    if ((rc = cfg_own_cert(m, &m->conf, 1)) != 0 ||
        (!m->server && (rc = cfg_own_cert(m, &m->conf_verify, 2)) != 0))
        return rc;
    if (!m->server && crt_count(&m->ca) == 0) {
        /* Loaded for every client, verifying or not, so that a verifying
         * open after an opportunistic one finds it, and so that
         * smtpx_tls_info.verified means something for opportunistic
         * sessions too.  A missing store leaves verifying handshakes to
         * fail with MBEDTLS_ERR_SSL_CA_CHAIN_REQUIRED. */
        (void)mbedtls_x509_crt_parse_file(&m->ca, SYSTEM_CA_FILE);
    }
    if (m->server && m->resume_lifetime != 0 && !m->ticket_set) {
        /* RFC 5077 tickets: the session sealed with a key that mbedTLS
         * replaces every lifetime (keeping the one before, so a ticket
         * lives at most a lifetime), and that never leaves the process. */
        int ret = mbedtls_ssl_ticket_setup(&m->ticket, mbedtls_ctr_drbg_random,
                                           &m->drbg, MBEDTLS_CIPHER_AES_256_GCM,
                                           m->resume_lifetime);
        if (ret != 0)
            return tls_nomem(ret) ? SMTPX_ERR_NOMEM : SMTPX_ERR_TLS;
        mbedtls_ssl_conf_session_tickets_cb(&m->conf, mbedtls_ssl_ticket_write,
                                            mbedtls_ssl_ticket_parse,
                                            &m->ticket);
        m->ticket_set = 1;
    }
#if defined(MBEDTLS_SSL_SESSION_TICKETS)
    if (!m->server && (m->resume_lifetime == 0 || m->resume_max == 0)) {
        /* No session will be kept: do not make servers seal one. */
        mbedtls_ssl_conf_session_tickets(&m->conf,
                                         MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
        mbedtls_ssl_conf_session_tickets(&m->conf_verify,
                                         MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
    }
#endif
    has_ca = crt_count(&m->ca) > 0;
    if (has_ca)
        mbedtls_ssl_conf_ca_chain(&m->conf, &m->ca, NULL);
    if (m->server)
        mbedtls_ssl_conf_sni(&m->conf, tls_sni, m);
    else if (has_ca)
        mbedtls_ssl_conf_ca_chain(&m->conf_verify, &m->ca, NULL);
    m->in_use = 1;
    return 0;
}

/* cfg_begin - start a set-up call: lock, and refuse once in use */
static int cfg_begin(smtpx_mbedtls *m)
{
    cfg_lock(m);
    if (m->in_use) {
        cfg_unlock(m);
        return SMTPX_ERR_INVALID_STATE;
    }
    return 0;
}

/* ---- client sessions to resume --------------------------------------- */

/*
 * A client remembers its last session with each destination (the name it
 * asked for, and whether it verified), most recently used first, and
 * offers it to the next connection there.  A session saved by a verifying
 * connection is offered only to verifying ones and the other way round: a
 * resumed handshake does not look at the certificate again, so an
 * unverified session must never stand in for a verified one.  The list is
 * shared by every connection of the configuration, under its mutex.
 */

static void saved_free(saved_session *e)
{
    mbedtls_ssl_session_free(&e->session);
    free(e);
}

/* saved_take - unlink and return the entry for (name, verify), or NULL;
 * expired entries met on the way are dropped (locked) */
static saved_session *saved_take(smtpx_mbedtls *m, const char *name, int verify,
                                 time_t now)
{
    saved_session **p = &m->sessions, *e;

    while ((e = *p) != NULL) {
        if (now - e->saved >= (time_t)m->resume_lifetime || now < e->saved) {
            *p = e->next;
            m->nsessions--;
            saved_free(e);
            continue;
        }
        if (e->verify == verify && strcmp(e->name, name) == 0) {
            *p = e->next;
            m->nsessions--;
            return e;
        }
        p = &e->next;
    }
    return NULL;
}

/* saved_offer - offer the saved session for the connection's destination */
static void saved_offer(smtpx_mbedtls *m, tls_conn *c)
{
    saved_session *e;

    if (m->resume_lifetime == 0 || m->resume_max == 0 || c->name[0] == '\0')
        return;
    cfg_lock(m);
    e = saved_take(m, c->name, c->verify, time(NULL));
    if (e != NULL) {
        c->offered = mbedtls_ssl_set_session(&c->ssl, &e->session) == 0;
        e->next = m->sessions; /* most recently used */
        m->sessions = e;
        m->nsessions++;
    }
    cfg_unlock(m);
}

/* saved_forget - the offered session did not work: do not offer it again */
static void saved_forget(smtpx_mbedtls *m, const tls_conn *c)
{
    saved_session *e;

    cfg_lock(m);
    e = saved_take(m, c->name, c->verify, time(NULL));
    cfg_unlock(m);
    if (e != NULL)
        saved_free(e);
}

/* saved_keep - remember the session a handshake made (or resumed) */
static void saved_keep(smtpx_mbedtls *m, tls_conn *c)
{
    saved_session *e, *old, **p;

    if (m->resume_lifetime == 0 || m->resume_max == 0 || c->name[0] == '\0' ||
        (c->verify && !c->verified))
        return;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return;
    mbedtls_ssl_session_init(&e->session);
    if (mbedtls_ssl_get_session(&c->ssl, &e->session) != 0) {
        saved_free(e);
        return;
    }
    memcpy(e->name, c->name, sizeof(e->name));
    e->verify = c->verify;
    e->saved = time(NULL);
    cfg_lock(m);
    old = saved_take(m, c->name, c->verify, e->saved);
    e->next = m->sessions;
    m->sessions = e;
    m->nsessions++;
    if (m->nsessions > m->resume_max) {
        /* the least recently used goes */
        for (p = &m->sessions; (*p)->next != NULL; p = &(*p)->next)
            ;
        saved_free(*p);
        *p = NULL;
        m->nsessions--;
    }
    cfg_unlock(m);
    if (old != NULL)
        saved_free(old);
}

/* ---- the BIO shim: smtpx_io below mbedTLS ---------------------------- */

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    tls_conn *c = ctx;
    smtpx_ssize r;

    if (len == 0)
        return 0;
    if (len > INT_MAX)
        len = INT_MAX;
    r = c->lower.send(c->lower.ctx, buf, len);
    if (r > 0 && (size_t)r <= len)
        return (int)r;
    /* Nothing written is "try again", as the pump takes it: mbedTLS would
     * take a 0 as success and lose the record. */
    if (r == 0 || r == SMTPX_ERR_WANT_WRITE)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    if (r == SMTPX_ERR_WANT_READ)
        return MBEDTLS_ERR_SSL_WANT_READ;
    c->io_error = r < 0 ? (int)r : SMTPX_ERR_IO;
    return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    tls_conn *c = ctx;
    smtpx_ssize r;

    if (len > INT_MAX)
        len = INT_MAX;
    r = c->lower.recv(c->lower.ctx, buf, len);
    if (r > 0 && (size_t)r <= len)
        return (int)r;
    if (r == 0 || r == SMTPX_ERR_EOF)
        return 0; /* mbedTLS: MBEDTLS_ERR_SSL_CONN_EOF */
    if (r == SMTPX_ERR_WANT_READ)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (r == SMTPX_ERR_WANT_WRITE)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    c->io_error = r < 0 ? (int)r : SMTPX_ERR_IO;
    return MBEDTLS_ERR_NET_RECV_FAILED;
}

/* conn_fail - map an mbedTLS failure of recv, send or close: WANT_* as
 * such, the lower io's own code when it failed, else SMTPX_ERR_TLS */
static int conn_fail(tls_conn *c, int ret)
{
    if (ret == MBEDTLS_ERR_SSL_WANT_READ)
        return SMTPX_ERR_WANT_READ;
    if (ret == MBEDTLS_ERR_SSL_WANT_WRITE)
        return SMTPX_ERR_WANT_WRITE;
    c->last_error = ret;
    return c->io_error != 0 ? c->io_error : SMTPX_ERR_TLS;
}

/* ---- smtpx_tls_ops --------------------------------------------------- */

/* name_is_ip - an IPv4 or IPv6 literal, which RFC 6066 3 keeps out of SNI */
static int name_is_ip(const char *name)
{
    const char *p;
    int dots = 0;

    if (strchr(name, ':') != NULL)
        return 1;
    for (p = name; *p != '\0'; p++) {
        if (*p == '.')
            dots++;
        else if (*p < '0' || *p > '9')
            return 0;
    }
    return dots == 3;
}

/*
 * cert_has_ip - the subjectAltName of crt has an iPAddress entry equal to
 * ip (RFC 5280 4.2.1.6, RFC 6125 6.2.1: an address is matched against
 * iPAddress entries only, octet for octet).  mbedTLS 2.28 lists only
 * dNSName and otherName entries, so the extension is read here from the
 * certificate's raw extensions.
 */
static int cert_has_ip(const mbedtls_x509_crt *crt, const unsigned char *ip,
                       size_t iplen)
{
    static const unsigned char san_oid[] = MBEDTLS_OID_SUBJECT_ALT_NAME;
    unsigned char *p = crt->v3_ext.p, *end, *ext_end, *names_end;
    size_t len;

    if (p == NULL || crt->v3_ext.len == 0)
        return 0;
    end = p + crt->v3_ext.len;
    /* Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension */
    if (mbedtls_asn1_get_tag(&p, end, &len,
                             MBEDTLS_ASN1_CONSTRUCTED |
                                 MBEDTLS_ASN1_SEQUENCE) != 0)
        return 0;
    end = p + len;
    while (p < end) {
        int critical = 0;
        size_t oid_len;
        unsigned char *oid;

        if (mbedtls_asn1_get_tag(&p, end, &len,
                                 MBEDTLS_ASN1_CONSTRUCTED |
                                     MBEDTLS_ASN1_SEQUENCE) != 0)
            return 0;
        ext_end = p + len;
        if (mbedtls_asn1_get_tag(&p, ext_end, &oid_len, MBEDTLS_ASN1_OID) != 0)
            return 0;
        oid = p;
        p += oid_len;
        (void)mbedtls_asn1_get_bool(&p, ext_end, &critical);
        if (mbedtls_asn1_get_tag(&p, ext_end, &len,
                                 MBEDTLS_ASN1_OCTET_STRING) != 0)
            return 0;
        if (oid_len != sizeof(san_oid) - 1 ||
            memcmp(oid, san_oid, oid_len) != 0) {
            p = ext_end;
            continue;
        }
        /* GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName */
        if (mbedtls_asn1_get_tag(&p, ext_end, &len,
                                 MBEDTLS_ASN1_CONSTRUCTED |
                                     MBEDTLS_ASN1_SEQUENCE) != 0)
            return 0;
        names_end = p + len;
        while (p < names_end) {
            unsigned char tag = *p++;
            if (mbedtls_asn1_get_len(&p, names_end, &len) != 0)
                return 0;
            /* iPAddress [7] IMPLICIT OCTET STRING */
            if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && len == iplen &&
                memcmp(p, ip, iplen) == 0)
                return 1;
            p += len;
        }
        return 0;
    }
    return 0;
}

/* verify_ip - mbedTLS's verification callback for a server named by an
 * address: the leaf must carry it among its iPAddress names */
static int verify_ip(void *ctx, mbedtls_x509_crt *crt, int depth,
                     uint32_t *flags)
{
    const tls_conn *c = ctx;

    if (depth == 0 && !cert_has_ip(crt, c->ip, c->iplen))
        *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    return 0;
}

/* name_ip - an address literal ("192.0.2.1", "2001:db8::1", "[::1]") as
 * octets: 4, 16, or 0 for a host name */
static size_t name_ip(const char *name, unsigned char ip[16])
{
    char buf[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(name);

    if (n >= 2 && name[0] == '[' && name[n - 1] == ']' && n - 2 < sizeof(buf)) {
        memcpy(buf, name + 1, n - 2);
        buf[n - 2] = '\0';
        name = buf;
    }
    if (inet_pton(AF_INET, name, ip) == 1)
        return 4;
    if (inet_pton(AF_INET6, name, ip) == 1)
        return 16;
    return 0;
}

static int tls_open(void *tls_cfg, int flags, const char *name,
                    const smtpx_io *lower, void **conn)
{
    smtpx_mbedtls *m = tls_cfg;
    int server = (flags & SMTPX_TLS_OPEN_SERVER) != 0;
    int verify = !server && (flags & SMTPX_TLS_OPEN_VERIFY) != 0;
    tls_conn *c;
    size_t nlen;
    int rc, ret;

    if (conn == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    *conn = NULL;
    /* Unknown flags are refused: a flag that asks for more checking must
     * not be ignored by an adapter that does not know it. */
    if (m == NULL || lower == NULL || lower->send == NULL ||
        lower->recv == NULL ||
        (flags & ~(SMTPX_TLS_OPEN_SERVER | SMTPX_TLS_OPEN_VERIFY)) != 0 ||
        server != m->server)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (server || name == NULL)
        name = "";
    nlen = strlen(name);
    /* A chain without a name proves nothing about whom one talks to, and
     * mbedTLS checks no name unless it is given one. */
    if ((verify && nlen == 0) || nlen > MAX_HOST)
        return SMTPX_ERR_INVALID_ARGUMENT;

    cfg_lock(m);
    rc = m->in_use ? 0 : cfg_freeze(m);
    cfg_unlock(m);
    if (rc != 0)
        return rc;

    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return SMTPX_ERR_NOMEM;
    mbedtls_ssl_init(&c->ssl);
    c->m = m;
    c->lower = *lower;
    c->server = server;
    c->verify = verify;
    c->required = server ? m->client_cert == 2 : verify;
    memcpy(c->name, name, nlen + 1);
    ret = mbedtls_ssl_setup(&c->ssl, verify ? &m->conf_verify : &m->conf);
    c->iplen = verify ? name_ip(c->name, c->ip) : 0;
    if (ret == 0 && c->iplen > 0) {
        /* An address is verified against the certificate's iPAddress
         * names (which mbedTLS 2.28 does not match), and never sent as SNI
         * (RFC 6066 3). */
        mbedtls_ssl_set_verify(&c->ssl, verify_ip, c);
    } else if (ret == 0 && nlen > 0 && !name_is_ip(c->name)) {
        /* The name goes out as SNI, and is verified when asked. */
        ret = mbedtls_ssl_set_hostname(&c->ssl, c->name);
    }
    if (ret != 0) {
        mbedtls_ssl_free(&c->ssl);
        free(c);
        return tls_nomem(ret) ? SMTPX_ERR_NOMEM : SMTPX_ERR_TLS;
    }
    mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
    if (!server)
        saved_offer(m, c);
    *conn = c;
    return 0;
}

/* conn_established - the facts info() reports, once the handshake is done */
static void conn_established(tls_conn *c)
{
    uint32_t flags = mbedtls_ssl_get_verify_result(&c->ssl);

    c->bits = compat_bits(&c->ssl);
    /* On the server, flags are MBEDTLS_X509_BADCERT_SKIP_VERIFY when no
     * certificate was asked for and BADCERT_MISSING when none came. */
    c->verified = flags == 0 && (c->server || c->name[0] != '\0');
    if (c->verified && c->server) {
        const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&c->ssl);
        const mbedtls_x509_buf *cn = crt != NULL ? cert_cn(crt) : NULL;
        size_t i;

        /* The CN ends up in logs and a Received header: keep only a
         * printable one. */
        if (cn == NULL || cn->len == 0 || cn->len > MAX_CN)
            return;
        for (i = 0; i < cn->len; i++)
            if (cn->p[i] < 0x20 || cn->p[i] > 0x7e)
                return;
        memcpy(c->peer, cn->p, cn->len);
        c->peer[cn->len] = '\0';
    }
}

static int tls_handshake(void *conn)
{
    tls_conn *c = conn;
    uint32_t flags;
    int ret;

    if (c == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (c->state == ST_FAILED)
        return c->failed;
    if (c->state != ST_HANDSHAKE)
        return 0;
    c->io_error = 0;
    ret = compat_handshake(&c->ssl, &c->resumed);
    if (ret == MBEDTLS_ERR_SSL_WANT_READ)
        return SMTPX_ERR_WANT_READ;
    if (ret == MBEDTLS_ERR_SSL_WANT_WRITE)
        return SMTPX_ERR_WANT_WRITE;
    if (ret == 0) {
        conn_established(c);
        c->state = ST_OPEN;
        if (!c->server)
            saved_keep(c->m, c);
        return 0;
    }
    c->state = ST_FAILED;
    if (c->offered)
        saved_forget(c->m, c);
    c->last_error = ret;
    c->failed = SMTPX_ERR_TLS;
#if defined(MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE)
    /* mbedTLS 2.28 ends here without an alert, and the client would wait
     * for the server's Finished until its deadline; tell it (best effort,
     * RFC 5246 7.4.6). */
    if (ret == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE)
        (void)mbedtls_ssl_send_alert_message(
            &c->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
            MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE);
#endif
    if (c->required) {
        /* Flags are 0 before the certificate was looked at and all ones
         * when mbedTLS has no result. */
        flags = mbedtls_ssl_get_verify_result(&c->ssl);
        if (flags != 0 && flags != UINT32_MAX && flags <= INT_MAX) {
            c->last_error = (int)flags;
            c->failed = SMTPX_ERR_TLS_VERIFY;
        } else if (ret == MBEDTLS_ERR_SSL_CA_CHAIN_REQUIRED) {
            c->failed = SMTPX_ERR_TLS_VERIFY; /* nothing to verify with */
        }
    }
    return c->failed;
}

static smtpx_ssize tls_recv(void *conn, uint8_t *buf, size_t len)
{
    tls_conn *c = conn;
    int ret;

    if (c == NULL || buf == NULL || len == 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (c->state == ST_HANDSHAKE || c->state == ST_FAILED)
        return SMTPX_ERR_INVALID_STATE;
    if (c->eof)
        return 0;
    if (len > INT_MAX)
        len = INT_MAX;
    c->io_error = 0;
    ret = mbedtls_ssl_read(&c->ssl, buf, len);
    if (ret > 0)
        return ret;
    /* close_notify, or the connection's end without one (mbedTLS returns
     * 0 then): SMTP has its own end (QUIT, "."), so a truncation shows
     * there. */
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY ||
        ret == MBEDTLS_ERR_SSL_CONN_EOF) {
        c->eof = 1;
        return 0;
    }
#if defined(MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
    if (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
        return SMTPX_ERR_WANT_READ; /* TLS 1.3: not data; read again */
#endif
    return conn_fail(c, ret);
}

static smtpx_ssize tls_send(void *conn, const uint8_t *buf, size_t len)
{
    tls_conn *c = conn;
    int ret;

    if (c == NULL || buf == NULL || len == 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (c->state != ST_OPEN)
        return SMTPX_ERR_INVALID_STATE;
    if (c->wpending > 0) {
        /* The record is sealed: only the same octets can complete it. */
        if (len < c->wpending)
            return SMTPX_ERR_INVALID_ARGUMENT;
        len = c->wpending;
    } else if (len > INT_MAX) {
        len = INT_MAX;
    }
    c->io_error = 0;
    ret = mbedtls_ssl_write(&c->ssl, buf, len);
    if (ret > 0) {
        c->wpending = 0;
        return ret;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
        c->wpending = len;
    else
        c->wpending = 0;
    return conn_fail(c, ret != 0 ? ret : MBEDTLS_ERR_SSL_INTERNAL_ERROR);
}

static size_t tls_pending(void *conn)
{
    tls_conn *c = conn;

    return c != NULL ? mbedtls_ssl_get_bytes_avail(&c->ssl) : 0;
}

static int tls_info(void *conn, smtpx_tls_info *out)
{
    tls_conn *c = conn;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (c == NULL || out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (c->state == ST_HANDSHAKE || c->state == ST_FAILED)
        return SMTPX_ERR_INVALID_STATE;
    out->version = mbedtls_ssl_get_version(&c->ssl);
    out->cipher = mbedtls_ssl_get_ciphersuite(&c->ssl);
    out->bits = c->bits;
    out->verified = c->verified;
    out->resumed = c->resumed;
    if (c->verified) {
        if (!c->server)
            out->peer = c->name;
        else if (c->peer[0] != '\0')
            out->peer = c->peer;
    }
    return 0;
}

static int tls_close(void *conn)
{
    tls_conn *c = conn;
    int ret;

    if (c == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (c->state == ST_CLOSED)
        return 0;
    if (c->state != ST_OPEN && c->state != ST_CLOSING)
        return SMTPX_ERR_INVALID_STATE;
    /* From here on nothing but the alert may be sent (RFC 5246 7.2.1). */
    c->state = ST_CLOSING;
    c->io_error = 0;
    ret = mbedtls_ssl_close_notify(&c->ssl);
    if (ret == 0) {
        c->state = ST_CLOSED;
        return 0;
    }
    return conn_fail(c, ret);
}

static void tls_free(void *conn)
{
    tls_conn *c = conn;

    if (c == NULL)
        return;
    mbedtls_ssl_free(&c->ssl);
    free(c);
}

static int tls_last_error(void *conn)
{
    const tls_conn *c = conn;

    return c != NULL ? c->last_error : 0;
}

static const smtpx_tls_ops tls_ops = {
    sizeof(smtpx_tls_ops), tls_open, tls_handshake, tls_recv, tls_send,
    tls_pending,           tls_info, tls_close,     tls_free, tls_last_error};

const smtpx_tls_ops *smtpx_mbedtls_ops(void)
{
    return &tls_ops;
}

/* ---- the configuration ----------------------------------------------- */

int smtpx_mbedtls_new(smtpx_mbedtls **out, int server)
{
    /* Personalisation (NIST SP 800-90A 8.7.1): keeps this generator's
     * output apart from other CTR_DRBG users of the same entropy. */
    static const char pers[] = "libsmtpx tls_mbedtls";
    smtpx_mbedtls *m;
    int ret;

    if (out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (server != 0 && server != 1)
        return SMTPX_ERR_INVALID_ARGUMENT;
#if defined(TLS_NEED_PSA)
    if (psa_crypto_init() != PSA_SUCCESS)
        return SMTPX_ERR_TLS;
#endif
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return SMTPX_ERR_NOMEM;
    m->server = server;
    m->resume_lifetime = RESUME_LIFETIME;
    m->resume_max = server ? 0 : RESUME_MAX;
    mbedtls_ssl_ticket_init(&m->ticket);
    mbedtls_entropy_init(&m->entropy);
    mbedtls_ctr_drbg_init(&m->drbg);
    mbedtls_ssl_config_init(&m->conf);
    mbedtls_ssl_config_init(&m->conf_verify);
    mbedtls_x509_crt_init(&m->ca);
#if defined(MBEDTLS_THREADING_C)
    mbedtls_mutex_init(&m->lock);
#endif
    ret = mbedtls_ctr_drbg_seed(&m->drbg, mbedtls_entropy_func, &m->entropy,
                                (const unsigned char *)pers, sizeof(pers) - 1);
    if (ret == 0)
        ret = conf_setup(m, &m->conf,
                         server ? MBEDTLS_SSL_VERIFY_NONE
                                : MBEDTLS_SSL_VERIFY_OPTIONAL);
    if (ret == 0 && !server)
        ret = conf_setup(m, &m->conf_verify, MBEDTLS_SSL_VERIFY_REQUIRED);
    if (ret != 0) {
        smtpx_mbedtls_free(m);
        return tls_nomem(ret) ? SMTPX_ERR_NOMEM : SMTPX_ERR_TLS;
    }
    *out = m;
    return 0;
}

void smtpx_mbedtls_free(smtpx_mbedtls *m)
{
    size_t i;

    if (m == NULL)
        return;
    for (i = 0; i < m->ncert; i++) {
        mbedtls_x509_crt_free(&m->cert[i]->crt);
        mbedtls_pk_free(&m->cert[i]->key);
        free(m->cert[i]);
    }
    while (m->sessions != NULL) {
        saved_session *e = m->sessions;
        m->sessions = e->next;
        saved_free(e);
    }
    mbedtls_ssl_ticket_free(&m->ticket);
    mbedtls_x509_crt_free(&m->ca);
    mbedtls_ssl_config_free(&m->conf_verify);
    mbedtls_ssl_config_free(&m->conf);
    mbedtls_ctr_drbg_free(&m->drbg);
    mbedtls_entropy_free(&m->entropy);
#if defined(MBEDTLS_THREADING_C)
    mbedtls_mutex_free(&m->lock);
#endif
    free(m);
}

/*
 * pem_copy - mbedTLS takes PEM only with its NUL counted in the length;
 * when the caller left it out (strlen rather than strlen + 1, the usual
 * slip), make a terminated copy.  *copy is NULL when none was needed.
 */
static int pem_copy(const uint8_t *p, size_t len, uint8_t **copy)
{
    static const char begin[] = "-----BEGIN ";

    *copy = NULL;
    if (len == 0 || p[len - 1] == '\0' || len < sizeof(begin) - 1 ||
        memcmp(p, begin, sizeof(begin) - 1) != 0)
        return 0;
    if (len == SIZE_MAX || (*copy = malloc(len + 1)) == NULL)
        return SMTPX_ERR_NOMEM;
    memcpy(*copy, p, len);
    (*copy)[len] = '\0';
    return 0;
}

static void pem_copy_free(uint8_t *copy, size_t len)
{
    if (copy == NULL)
        return;
    mbedtls_platform_zeroize(copy, len + 1); /* it may hold a key */
    free(copy);
}

/* cfg_add_cert - parse a chain and its key from files (cert_file set) or
 * memory, check that they belong together, and keep them */
static int cfg_add_cert(smtpx_mbedtls *m, const char *cert_file,
                        const char *key_file, const uint8_t *cert,
                        size_t cert_len, const uint8_t *key, size_t key_len,
                        const char *pw)
{
    uint8_t *cert_pem = NULL, *key_pem = NULL;
    cert_key *ck;
    int rc, ret;

    if ((rc = cfg_begin(m)) != 0)
        return rc;
    if (m->ncert == MAX_CERTS) {
        cfg_unlock(m);
        return SMTPX_ERR_LIMIT;
    }
    ck = calloc(1, sizeof(*ck));
    if (ck == NULL ||
        (cert_file == NULL && (pem_copy(cert, cert_len, &cert_pem) != 0 ||
                               pem_copy(key, key_len, &key_pem) != 0))) {
        pem_copy_free(cert_pem, cert_len);
        free(ck);
        cfg_unlock(m);
        return SMTPX_ERR_NOMEM;
    }
    mbedtls_x509_crt_init(&ck->crt);
    mbedtls_pk_init(&ck->key);
    if (cert_file != NULL)
        ret = mbedtls_x509_crt_parse_file(&ck->crt, cert_file);
    else if (cert_pem != NULL)
        ret = mbedtls_x509_crt_parse(&ck->crt, cert_pem, cert_len + 1);
    else
        ret = mbedtls_x509_crt_parse(&ck->crt, cert, cert_len);
    if (ret > 0) /* so many certificates of the chain were not parsed */
        ret = MBEDTLS_ERR_X509_CERT_UNKNOWN_FORMAT;
    if (ret == 0 && key_file != NULL)
        ret = compat_parse_keyfile(m, &ck->key, key_file, pw);
    else if (ret == 0 && key_pem != NULL)
        ret = compat_parse_key(m, &ck->key, key_pem, key_len + 1, pw);
    else if (ret == 0)
        ret = compat_parse_key(m, &ck->key, key, key_len, pw);
    if (ret == 0)
        ret = compat_check_pair(m, &ck->crt.pk, &ck->key);
    pem_copy_free(cert_pem, cert_len);
    pem_copy_free(key_pem, key_len);
    if (ret != 0) {
        mbedtls_x509_crt_free(&ck->crt);
        mbedtls_pk_free(&ck->key);
        free(ck);
        rc = cfg_fail(m, ret);
    } else {
        m->cert[m->ncert++] = ck;
    }
    cfg_unlock(m);
    return rc;
}

int smtpx_mbedtls_add_cert_file(smtpx_mbedtls *m, const char *cert_file,
                                const char *key_file, const char *key_password)
{
    if (m == NULL || cert_file == NULL || key_file == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    return cfg_add_cert(m, cert_file, key_file, NULL, 0, NULL, 0, key_password);
}

int smtpx_mbedtls_add_cert_mem(smtpx_mbedtls *m, const uint8_t *cert,
                               size_t cert_len, const uint8_t *key,
                               size_t key_len, const char *key_password)
{
    if (m == NULL || cert == NULL || cert_len == 0 || key == NULL ||
        key_len == 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    return cfg_add_cert(m, NULL, NULL, cert, cert_len, key, key_len,
                        key_password);
}

int smtpx_mbedtls_set_sni(smtpx_mbedtls *m, smtpx_mbedtls_sni_fn *fn,
                          void *sni_user_data)
{
    int rc;

    if (m == NULL || !m->server)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if ((rc = cfg_begin(m)) != 0)
        return rc;
    m->sni_fn = fn;
    m->sni_user_data = sni_user_data;
    cfg_unlock(m);
    return 0;
}

/* cfg_add_ca - add CAs from a file, a directory or memory; succeeds when
 * at least one certificate was added (a system bundle may hold one that
 * mbedTLS cannot parse) */
static int cfg_add_ca(smtpx_mbedtls *m, const char *path, const uint8_t *p,
                      size_t len)
{
    size_t before;
    uint8_t *pem = NULL;
    struct stat st;
    int rc, ret;

    if ((rc = cfg_begin(m)) != 0)
        return rc;
    before = crt_count(&m->ca);
    if (path != NULL && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        ret = mbedtls_x509_crt_parse_path(&m->ca, path);
    else if (path != NULL)
        ret = mbedtls_x509_crt_parse_file(&m->ca, path);
    else if (pem_copy(p, len, &pem) != 0)
        ret = MBEDTLS_ERR_X509_ALLOC_FAILED;
    else if (pem != NULL)
        ret = mbedtls_x509_crt_parse(&m->ca, pem, len + 1);
    else
        ret = mbedtls_x509_crt_parse(&m->ca, p, len);
    pem_copy_free(pem, len);
    if (crt_count(&m->ca) == before)
        rc = cfg_fail(m, ret < 0 ? ret : MBEDTLS_ERR_X509_CERT_UNKNOWN_FORMAT);
    cfg_unlock(m);
    return rc;
}

int smtpx_mbedtls_add_ca_file(smtpx_mbedtls *m, const char *path)
{
    if (m == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    return cfg_add_ca(m, path != NULL ? path : SYSTEM_CA_FILE, NULL, 0);
}

int smtpx_mbedtls_add_ca_mem(smtpx_mbedtls *m, const uint8_t *pem, size_t len)
{
    if (m == NULL || pem == NULL || len == 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    return cfg_add_ca(m, NULL, pem, len);
}

int smtpx_mbedtls_set_client_cert(smtpx_mbedtls *m, int mode)
{
    static const int authmode[] = {MBEDTLS_SSL_VERIFY_NONE,
                                   MBEDTLS_SSL_VERIFY_OPTIONAL,
                                   MBEDTLS_SSL_VERIFY_REQUIRED};
    int rc;

    if (m == NULL || !m->server || mode < 0 || mode > 2)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if ((rc = cfg_begin(m)) != 0)
        return rc;
    m->client_cert = mode;
    mbedtls_ssl_conf_authmode(&m->conf, authmode[mode]);
    cfg_unlock(m);
    return 0;
}

int smtpx_mbedtls_set_resumption(smtpx_mbedtls *m, uint32_t lifetime_s,
                                 size_t max_sessions)
{
    int rc;

    if (m == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if ((rc = cfg_begin(m)) != 0)
        return rc;
    m->resume_lifetime = lifetime_s;
    m->resume_max = m->server ? 0 : max_sessions;
    cfg_unlock(m);
    return 0;
}

int smtpx_mbedtls_last_error(const smtpx_mbedtls *m)
{
    return m != NULL ? m->last_error : 0;
}

/* str_add - append n octets of s to buf (len octets used), truncating */
static void str_add(char *buf, size_t size, size_t *len, const char *s,
                    size_t n)
{
    if (*len + 1 >= size)
        return;
    if (n > size - 1 - *len)
        n = size - 1 - *len;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = '\0';
}

const char *smtpx_mbedtls_strerror(int code, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return buf;
    buf[0] = '\0';
    if (code > 0) {
        /* X.509 flags: mbedTLS writes one line per reason; join them. */
        char tmp[1024];
        const char *p = tmp, *nl;
        size_t len = 0;

        if (mbedtls_x509_crt_verify_info(tmp, sizeof(tmp), "", (uint32_t)code) <
            0)
            tmp[0] = '\0';
        for (; *p != '\0'; p = *nl != '\0' ? nl + 1 : nl) {
            nl = strchr(p, '\n');
            if (nl == NULL)
                nl = p + strlen(p);
            if (len > 0)
                str_add(buf, size, &len, "; ", 2);
            str_add(buf, size, &len, p, (size_t)(nl - p));
        }
    } else if (code == 0 || (code > -0x1000 && code <= -0x80)) {
        /* Not an mbedTLS code (those are -0x01..-0x7f, optionally plus a
         * multiple of -0x80 from -0x1000): one of ours, or success. */
        const char *s = smtpx_strerror(code);
        size_t len = 0;

        str_add(buf, size, &len, s, strlen(s));
    } else {
        mbedtls_strerror(code, buf, size);
    }
    return buf;
}
