/*
 * sasl - the SASL mechanisms of AUTH (RFC 4954), server and client side,
 * on decoded data: the cores do the SMTP framing and base64.
 *
 * Exports smtpx__sasl_srv_new(), _free(), _step(), _out(), _info(),
 * _secret() and _refused(); smtpx__sasl_cli_pick(), _new(), _free(),
 * _initial(), _step() and _done(); and the public smtpx_sasl_name(),
 * smtpx_sasl_from_name() and smtpx_scram_keys().
 *
 * Mechanisms: PLAIN (RFC 4616 2), LOGIN (draft-murchison-sasl-login),
 * CRAM-MD5 (RFC 2195 2), SCRAM-SHA-256 (RFC 5802 3, 5, 7 and RFC 7677,
 * without channel binding and without SASLprep: names and passwords are
 * used as the octets given), XOAUTH2 (Google's format) and OAUTHBEARER
 * (RFC 7628 3.1, 3.2.2, 3.2.3).
 *
 * Invariants.  Every parser works on (pointer, length) input that is not
 * NUL-terminated and reads nothing outside it.  Names handed to on_auth
 * (authcid, authzid) are at most SMTPX__SASL_NAME_MAX octets of UTF-8
 * without control characters, since they reach logs as C strings.
 * Passwords and tokens are wiped when they are no longer needed and at
 * free; allocation failure returns NOMEM and leaves the engine freeable.
 *
 * Randomness, and how a test steers it.  A SCRAM nonce is made of
 * "printable" characters (RFC 5802 7: %x21-7E but ","): each random octet,
 * its top bit cleared, is kept if it is one of those and skipped
 * otherwise, so every character is equally likely and random octets that
 * are themselves nonce characters give exactly that nonce.  The client
 * nonce has 20 characters and the server's part 30 (the lengths of RFC
 * 7677 3's example; about 130 and 196 bits).  The CRAM-MD5 challenge is
 * "<A.B@hostname>" where A and B are the decimal values of two 64-bit
 * big-endian numbers taken from 16 random octets (RFC 2195 2 asks for
 * random digits and a timestamp; the core has no clock).
 *
 * Unknown users.  CRAM-MD5 and SCRAM go on to the end with stand-in values
 * and fail there, so that a client cannot tell a wrong user from a wrong
 * password (RFC 5802 5.1).  SCRAM's stand-in salt is the first 16 octets
 * of HMAC-SHA-256(fake_key, "salt" || user), the same for the same name;
 * its iteration count is 4096 and its keys are random.
 *
 * SCRAM iteration counts: the server sends whatever on_auth_lookup stored,
 * even below RFC 7677's 4096, because the stored keys were made with that
 * count.  The client refuses more than SASL_SCRAM_MAX_ITER, so that a
 * hostile server cannot make it burn CPU.
 */
#include <stdio.h>
#include <string.h>

#include "base/crypto.h"
#include "base/mem.h"
#include "proto/addr.h"
#include "proto/cmd.h"
#include "proto/sasl.h"

#define SASL_CNONCE_LEN     20
#define SASL_SNONCE_LEN     30
#define SASL_FAKE_SALT_LEN  16
#define SASL_FAKE_ITER      4096u
#define SASL_SCRAM_MAX_ITER 1000000u
/* A gs2 header: "n,a=" saslname "," with every octet escaped. */
#define SASL_GS2_MAX (5 + 3 * SMTPX__SASL_NAME_MAX)

#define SASL_KVSEP 0x01 /* RFC 7628 3.1 kvsep */

/* The names, from the one list in <libsmtpx/auth.h>. */
static const smtpx__named sasl_mechs[] = {
#define SASL_ENTRY(name, text) {SMTPX_SASL_##name, text},
    SMTPX_SASL_MAP(SASL_ENTRY)
#undef SASL_ENTRY
};

#define SASL_NMECHS (sizeof(sasl_mechs) / sizeof(sasl_mechs[0]))

/* Every bit of SMTPX_SASL_ALL has its name. */
typedef char sasl_map_complete[(0
#define SASL_BIT(name, text) | SMTPX_SASL_##name
                                SMTPX_SASL_MAP(SASL_BIT)
#undef SASL_BIT
                                    ) == SMTPX_SASL_ALL
                                   ? 1
                                   : -1];

const char *smtpx_sasl_name(unsigned mech)
{
    return smtpx__named_name(sasl_mechs, SASL_NMECHS, mech);
}

unsigned smtpx_sasl_from_name(const char *name)
{
    return smtpx__named_bit(sasl_mechs, SASL_NMECHS, name);
}

/* ---- helpers ------------------------------------------------------------ */

/* A writer into a buffer sized beforehand: one allocation per message. */
typedef struct sasl_w {
    uint8_t *p;
    size_t len, cap;
} sasl_w;

static int sasl_w_init(sasl_w *w, const smtpx_mem *mem, size_t cap)
{
    w->len = 0;
    w->cap = cap;
    w->p = smtpx__malloc(mem, cap + 1);
    return w->p != NULL ? 0 : -1;
}

static void sasl_w_put(sasl_w *w, const void *p, size_t n)
{
    /* The caller sized the buffer; cutting here only guards a mistake. */
    if (n > w->cap - w->len)
        n = w->cap - w->len;
    if (n > 0)
        memcpy(w->p + w->len, p, n);
    w->len += n;
    w->p[w->len] = '\0';
}

static void sasl_w_str(sasl_w *w, const char *s)
{
    sasl_w_put(w, s, strlen(s));
}

/* sasl_esc_len - octets of s as a saslname: "," and "=" become "=2C" and
 * "=3D" (RFC 5802 5.1) */
static size_t sasl_esc_len(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += (*s == ',' || *s == '=') ? 3 : 1;
    return n;
}

static void sasl_w_esc(sasl_w *w, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == ',')
            sasl_w_put(w, "=2C", 3);
        else if (*s == '=')
            sasl_w_put(w, "=3D", 3);
        else
            sasl_w_put(w, s, 1);
    }
}

/* sasl_w_b64 - append the base64 of n octets (room for
 * SMTPX__B64_LEN(n) + 1 must have been counted) */
static void sasl_w_b64(sasl_w *w, const uint8_t *p, size_t n)
{
    long k =
        smtpx__b64_encode(p, n, (char *)w->p + w->len, w->cap - w->len + 1);

    if (k > 0)
        w->len += (size_t)k;
}

/* sasl_take - replace *buf by the writer's bytes, wiping the old ones */
static void sasl_take(const smtpx_mem *mem, uint8_t **buf, size_t *len,
                      sasl_w *w)
{
    if (*buf != NULL) {
        smtpx__wipe(*buf, *len);
        smtpx__free(mem, *buf);
    }
    *buf = w->p;
    *len = w->len;
    w->p = NULL;
}

static void sasl_drop(const smtpx_mem *mem, uint8_t **buf, size_t *len)
{
    if (*buf != NULL) {
        smtpx__wipe(*buf, *len);
        smtpx__free(mem, *buf);
    }
    *buf = NULL;
    *len = 0;
}

/* sasl_copy - replace *buf by a NUL-terminated copy of p[0..n) */
static int sasl_copy(const smtpx_mem *mem, uint8_t **buf, size_t *len,
                     const void *p, size_t n)
{
    sasl_w w;

    if (sasl_w_init(&w, mem, n) != 0)
        return -1;
    sasl_w_put(&w, p, n);
    sasl_take(mem, buf, len, &w);
    return 0;
}

/* sasl_name - take a user name or authzid: at most SMTPX__SASL_NAME_MAX
 * octets (RFC 4616 2) of UTF-8, without NUL or other control characters,
 * as it goes to on_auth as a C string and to the log */
static int sasl_name(char *out, const uint8_t *p, size_t n)
{
    size_t i = 0;

    if (n > SMTPX__SASL_NAME_MAX)
        return -1;
    while (i < n) {
        if (p[i] < 0x80) {
            if (p[i] < 0x20 || p[i] == 0x7f)
                return -1;
            i++;
        } else {
            size_t k = smtpx__utf8_seq(p + i, n - i);
            if (k == 0)
                return -1;
            i += k;
        }
    }
    if (n > 0)
        memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* sasl_saslname - decode a saslname (RFC 5802 5.1: "=2C" is ",", "=3D" is
 * "=", any other "=" is an error) and take it as a name */
static int sasl_saslname(char *out, const uint8_t *p, size_t n)
{
    uint8_t tmp[SMTPX__SASL_NAME_MAX];
    size_t i, k = 0;

    for (i = 0; i < n; i++) {
        uint8_t c = p[i];

        if (c == '=') {
            if (n - i < 3)
                return -1;
            if (p[i + 1] == '2' && p[i + 2] == 'C')
                c = ',';
            else if (p[i + 1] == '3' && p[i + 2] == 'D')
                c = '=';
            else
                return -1;
            i += 2;
        } else if (c == ',') {
            return -1;
        }
        if (k == sizeof(tmp))
            return -1;
        tmp[k++] = c;
    }
    return sasl_name(out, tmp, k);
}

/* sasl_field - the next ","-separated field of p[0..n) from *pos: 1 and
 * the field (maybe empty), or 0 when there is none left */
static int sasl_field(const uint8_t *p, size_t n, size_t *pos,
                      const uint8_t **f, size_t *flen)
{
    const uint8_t *comma;
    size_t i = *pos;

    if (i > n)
        return 0;
    comma = i < n ? memchr(p + i, ',', n - i) : NULL;
    *f = p + i;
    if (comma == NULL) {
        *flen = n - i;
        *pos = n + 1;
    } else {
        *flen = (size_t)(comma - (p + i));
        *pos = i + *flen + 1;
    }
    return 1;
}

/* sasl_attr - a field is "<a>=" followed by something */
static int sasl_attr(const uint8_t *f, size_t n, char a)
{
    return n >= 2 && f[0] == (uint8_t)a && f[1] == '=';
}

static int sasl_alpha(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* sasl_ext - an extension attr-val (RFC 5802 7: ALPHA "=" 1*value-char);
 * "m" is reserved for mandatory extensions, which we know none of */
static int sasl_ext(const uint8_t *f, size_t n)
{
    return n >= 3 && sasl_alpha(f[0]) && f[0] != 'm' && f[1] == '=' &&
           memchr(f, '\0', n) == NULL;
}

/* sasl_printable - RFC 5802 7 printable: %x21-2B / %x2D-7E */
static int sasl_printable(uint8_t c)
{
    return c >= 0x21 && c <= 0x7e && c != ',';
}

static int sasl_nonce_ok(const uint8_t *p, size_t n)
{
    size_t i;

    if (n == 0)
        return 0;
    for (i = 0; i < n; i++)
        if (!sasl_printable(p[i]))
            return 0;
    return 1;
}

/* sasl_nonce - n nonce characters (see the header comment) and a NUL;
 * 0, or -1 if the random source fails or yields too few characters */
static int sasl_nonce(smtpx_random_fn *rnd, void *ud, char *out, size_t n)
{
    uint8_t buf[64];
    size_t k = 0, i, round;

    /* Each octet is kept with probability 93/128: one round almost always
     * does; 16 only guard a source that keeps returning junk. */
    for (round = 0; k < n && round < 16; round++) {
        if (rnd(buf, sizeof(buf), ud) != 0)
            break;
        for (i = 0; i < sizeof(buf) && k < n; i++) {
            uint8_t c = buf[i] & 0x7f;
            if (sasl_printable(c))
                out[k++] = (char)c;
        }
    }
    smtpx__wipe(buf, sizeof(buf));
    out[k] = '\0';
    return k == n ? 0 : -1;
}

/* sasl_scram_keys - RFC 5802 3: SaltedPassword, ClientKey, StoredKey and
 * ServerKey; client_key may be NULL.  0, or -1 if mbedTLS failed. */
static int sasl_scram_keys(const uint8_t *pw, size_t pwlen, const uint8_t *salt,
                           size_t slen, uint32_t iter, uint8_t *client_key,
                           uint8_t stored_key[32], uint8_t server_key[32])
{
    uint8_t salted[32], ck[32];
    int rc;

    rc = smtpx__pbkdf2_sha256(pw, pwlen, salt, slen, iter, salted, 32);
    if (rc == 0)
        rc = smtpx__hmac_sha256(salted, 32, (const uint8_t *)"Client Key", 10,
                                ck);
    if (rc == 0)
        rc = smtpx__sha256(ck, 32, stored_key);
    if (rc == 0)
        rc = smtpx__hmac_sha256(salted, 32, (const uint8_t *)"Server Key", 10,
                                server_key);
    if (rc == 0 && client_key != NULL)
        memcpy(client_key, ck, 32);
    smtpx__wipe(salted, sizeof(salted));
    smtpx__wipe(ck, sizeof(ck));
    return rc;
}

int smtpx_scram_keys(const uint8_t *password, size_t password_len,
                     const uint8_t *salt, size_t salt_len, uint32_t iterations,
                     uint8_t stored_key[32], uint8_t server_key[32])
{
    if (password == NULL || salt == NULL || iterations == 0 ||
        stored_key == NULL || server_key == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    /* mbedTLS allocates its HMAC context with calloc: it can fail. */
    if (sasl_scram_keys(password, password_len, salt, salt_len, iterations,
                        NULL, stored_key, server_key) != 0)
        return SMTPX_ERR_NOMEM;
    return 0;
}

/* sasl_auth_message - RFC 5802 3 AuthMessage: client-first-message-bare
 * "," server-first-message "," client-final-message-without-proof */
static int sasl_auth_message(const smtpx_mem *mem, sasl_w *w,
                             const uint8_t *bare, size_t bare_len,
                             const uint8_t *sfirst, size_t sfirst_len,
                             const uint8_t *cfinal, size_t cfinal_len)
{
    if (sasl_w_init(w, mem, bare_len + sfirst_len + cfinal_len + 2) != 0)
        return -1;
    sasl_w_put(w, bare, bare_len);
    sasl_w_put(w, ",", 1);
    sasl_w_put(w, sfirst, sfirst_len);
    sasl_w_put(w, ",", 1);
    sasl_w_put(w, cfinal, cfinal_len);
    return 0;
}

/* sasl_gs2 - a gs2-header (RFC 5801 4, RFC 5802 7): "n," or "y," then
 * ["a=" saslname] ",".  "p=" asks for channel binding, which we never
 * offer (no -PLUS mechanism).  Returns its length, or 0 if malformed. */
static size_t sasl_gs2(const uint8_t *p, size_t n, char *authzid)
{
    const uint8_t *comma;
    size_t end;

    if (n < 3 || (p[0] != 'n' && p[0] != 'y') || p[1] != ',')
        return 0;
    comma = memchr(p + 2, ',', n - 2);
    if (comma == NULL)
        return 0;
    end = (size_t)(comma - p);
    authzid[0] = '\0';
    if (end > 2) {
        /* authzid = "a=" saslname, and saslname is 1*(...) */
        if (end - 2 < 3 || !sasl_attr(p + 2, end - 2, 'a') ||
            sasl_saslname(authzid, p + 4, end - 4) != 0)
            return 0;
    }
    return end + 1;
}

/* sasl_kv - the next kvpair (RFC 7628 3.1: key "=" value kvsep) from *pos:
 * 1 and the pair; 0 at the closing kvsep, which must end the input; -1 if
 * malformed.  Values may hold octets above 0x7f besides RFC 7628's VCHAR,
 * SP, HTAB, CR and LF: XOAUTH2 user names can be UTF-8 addresses. */
static int sasl_kv(const uint8_t *p, size_t n, size_t *pos, const uint8_t **k,
                   size_t *klen, const uint8_t **v, size_t *vlen)
{
    size_t i = *pos, start;

    if (i >= n)
        return -1;
    if (p[i] == SASL_KVSEP)
        return i + 1 == n ? 0 : -1;
    for (start = i; i < n && sasl_alpha(p[i]); i++)
        ;
    if (i == start || i >= n || p[i] != '=')
        return -1;
    *k = p + start;
    *klen = i - start;
    for (start = ++i; i < n && p[i] != SASL_KVSEP; i++) {
        uint8_t c = p[i];
        if (c < 0x20 && c != '\t' && c != '\r' && c != '\n')
            return -1;
        if (c == 0x7f)
            return -1;
    }
    if (i >= n)
        return -1;
    *v = p + start;
    *vlen = i - start;
    *pos = i + 1;
    return 1;
}

static int sasl_key_is(const uint8_t *k, size_t klen, const char *name)
{
    return klen == strlen(name) && memcmp(k, name, klen) == 0;
}

/* sasl_b64token_char - RFC 6750 2.1 b64token, but the trailing "=" */
static int sasl_b64token_char(uint8_t c)
{
    return sasl_alpha(c) || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~' || c == '+' || c == '/';
}

/* sasl_bearer - an auth value, "Bearer" 1*SP b64token (RFC 7628 3.1, RFC
 * 6750 2.1; the scheme name is case-insensitive): 0 and the token, or -1 */
static int sasl_bearer(const uint8_t *v, size_t n, const uint8_t **tok,
                       size_t *tlen)
{
    size_t i = 6, start;

    if (n < 8 || !smtpx__cmd_iprefix((const char *)v, n, "Bearer") ||
        v[6] != ' ')
        return -1;
    while (i < n && v[i] == ' ')
        i++;
    start = i;
    while (i < n && sasl_b64token_char(v[i]))
        i++;
    if (i == start)
        return -1;
    while (i < n && v[i] == '=')
        i++;
    if (i != n)
        return -1;
    *tok = v + start;
    *tlen = n - start;
    return 0;
}

static int sasl_hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void sasl_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static uint64_t sasl_be64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* ---- server ------------------------------------------------------------- */

enum {
    SRV_START,       /* nothing received yet */
    SRV_RESPONSE,    /* first challenge sent, waiting for the response */
    SRV_LOGIN_USER,  /* LOGIN: "Username:" sent */
    SRV_LOGIN_PASS,  /* LOGIN: "Password:" sent */
    SRV_LOOKUP,      /* LOOKUP returned: _srv_secret(), then a step */
    SRV_SCRAM_FINAL, /* server-first sent, waiting for client-final */
    SRV_SCRAM_ACK,   /* server-final sent, waiting for an empty response */
    SRV_VERIFY,      /* VERIFY returned: on_auth decides */
    SRV_REFUSED,     /* token mechanisms: the error challenge was sent */
    SRV_DONE         /* OK, FAIL, BAD or NOMEM returned */
};

struct smtpx__sasl_srv {
    const smtpx_mem *mem;
    unsigned mech;
    int state;
    smtpx_random_fn *rnd;
    void *rnd_ud;
    char *hostname; /* CRAM-MD5 only */
    uint8_t fake_key[32];
    uint8_t *out; /* the last challenge */
    size_t out_len;
    char authzid[SMTPX__SASL_NAME_MAX + 1];
    char authcid[SMTPX__SASL_NAME_MAX + 1];
    /* The password or token to VERIFY; CRAM-MD5: the stored password. */
    uint8_t *secret;
    size_t secret_len;
    int found; /* _srv_secret() gave a user */
    /* CRAM-MD5 */
    uint8_t *chal;
    size_t chal_len;
    uint8_t digest[16];
    /* SCRAM-SHA-256 */
    uint8_t *gs2; /* the gs2 header as received */
    size_t gs2_len;
    uint8_t *bare; /* client-first-message-bare */
    size_t bare_len;
    uint8_t *nonce; /* the client's, then the client's and ours */
    size_t nonce_len;
    uint8_t *sfirst; /* server-first-message */
    size_t sfirst_len;
    uint8_t *salt;
    size_t salt_len;
    uint32_t iterations;
    uint8_t stored_key[32];
    uint8_t server_key[32];
};

smtpx__sasl_srv *smtpx__sasl_srv_new(const smtpx_mem *mem, unsigned mech,
                                     const char *hostname, smtpx_random_fn *rnd,
                                     void *rnd_ud, const uint8_t fake_key[32])
{
    smtpx__sasl_srv *st;

    if (mem == NULL || smtpx_sasl_name(mech) == NULL ||
        (mech == SMTPX_SASL_SCRAM_SHA_256 && fake_key == NULL))
        return NULL;
    st = smtpx__calloc(mem, 1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->mem = mem;
    st->mech = mech;
    st->state = SRV_START;
    st->rnd = rnd != NULL ? rnd : smtpx__random_system;
    st->rnd_ud = rnd_ud;
    if (fake_key != NULL)
        memcpy(st->fake_key, fake_key, sizeof(st->fake_key));
    if (mech == SMTPX_SASL_CRAM_MD5) {
        st->hostname =
            smtpx__strdup(mem, hostname != NULL ? hostname : "localhost");
        if (st->hostname == NULL) {
            smtpx__free(mem, st);
            return NULL;
        }
    }
    return st;
}

/* srv_forget - wipe what was looked up or received as a secret */
static void srv_forget(smtpx__sasl_srv *st)
{
    const smtpx_mem *mem = st->mem;

    sasl_drop(mem, &st->secret, &st->secret_len);
    sasl_drop(mem, &st->salt, &st->salt_len);
    smtpx__wipe(st->stored_key, sizeof(st->stored_key));
    smtpx__wipe(st->server_key, sizeof(st->server_key));
    st->found = 0;
}

void smtpx__sasl_srv_free(smtpx__sasl_srv *st)
{
    const smtpx_mem *mem;

    if (st == NULL)
        return;
    mem = st->mem;
    srv_forget(st);
    sasl_drop(mem, &st->out, &st->out_len);
    sasl_drop(mem, &st->chal, &st->chal_len);
    sasl_drop(mem, &st->gs2, &st->gs2_len);
    sasl_drop(mem, &st->bare, &st->bare_len);
    sasl_drop(mem, &st->nonce, &st->nonce_len);
    sasl_drop(mem, &st->sfirst, &st->sfirst_len);
    smtpx__free(mem, st->hostname);
    smtpx__wipe(st, sizeof(*st));
    smtpx__free(mem, st);
}

/* srv_challenge - send p[0..n) in a 334 */
static int srv_challenge(smtpx__sasl_srv *st, const void *p, size_t n, int next)
{
    if (n == 0)
        sasl_drop(st->mem, &st->out, &st->out_len);
    else if (sasl_copy(st->mem, &st->out, &st->out_len, p, n) != 0)
        return SMTPX__SASL_NOMEM;
    st->state = next;
    return SMTPX__SASL_CHALLENGE;
}

/* srv_verify - hand the secret p[0..n) to on_auth */
static int srv_verify(smtpx__sasl_srv *st, const uint8_t *p, size_t n)
{
    if (sasl_copy(st->mem, &st->secret, &st->secret_len, p, n) != 0)
        return SMTPX__SASL_NOMEM;
    st->state = SRV_VERIFY;
    return SMTPX__SASL_VERIFY;
}

/* PLAIN (RFC 4616 2): [authzid] NUL authcid NUL passwd */
static int srv_plain(smtpx__sasl_srv *st, const uint8_t *in, size_t len)
{
    const uint8_t *nul1, *nul2, *pw, *end = in + len;
    size_t pwlen;

    if (len == 0 || (nul1 = memchr(in, '\0', len)) == NULL)
        return SMTPX__SASL_BAD;
    if ((nul2 = memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1))) == NULL)
        return SMTPX__SASL_BAD;
    pw = nul2 + 1;
    pwlen = (size_t)(end - pw);
    if (nul2 == nul1 + 1 || pwlen == 0 || pwlen > SMTPX__SASL_PASS_MAX ||
        memchr(pw, '\0', pwlen) != NULL)
        return SMTPX__SASL_BAD;
    if (sasl_name(st->authzid, in, (size_t)(nul1 - in)) != 0 ||
        sasl_name(st->authcid, nul1 + 1, (size_t)(nul2 - nul1 - 1)) != 0)
        return SMTPX__SASL_BAD;
    return srv_verify(st, pw, pwlen);
}

/* LOGIN: the user name, then the password, each in a response */
static int srv_login_user(smtpx__sasl_srv *st, const uint8_t *in, size_t len)
{
    if (len == 0 || sasl_name(st->authcid, in, len) != 0)
        return SMTPX__SASL_BAD;
    return srv_challenge(st, "Password:", 9, SRV_LOGIN_PASS);
}

static int srv_login_pass(smtpx__sasl_srv *st, const uint8_t *in, size_t len)
{
    /* Same rules as PLAIN's passwd: the application gets the same. */
    if (len == 0 || len > SMTPX__SASL_PASS_MAX || memchr(in, '\0', len) != NULL)
        return SMTPX__SASL_BAD;
    return srv_verify(st, in, len);
}

/* CRAM-MD5 (RFC 2195 2): the server speaks first */
static int srv_cram_challenge(smtpx__sasl_srv *st)
{
    uint8_t r[16];
    char digits[2 * 20 + 2];
    sasl_w w;
    int n;

    if (st->rnd(r, sizeof(r), st->rnd_ud) != 0)
        return SMTPX__SASL_FAIL; /* no nonce, no exchange */
    n = snprintf(digits, sizeof(digits), "%llu.%llu",
                 (unsigned long long)sasl_be64(r),
                 (unsigned long long)sasl_be64(r + 8));
    smtpx__wipe(r, sizeof(r));
    if (n < 0 || (size_t)n >= sizeof(digits))
        return SMTPX__SASL_FAIL;
    if (sasl_w_init(&w, st->mem, (size_t)n + strlen(st->hostname) + 3) != 0)
        return SMTPX__SASL_NOMEM;
    sasl_w_put(&w, "<", 1);
    sasl_w_put(&w, digits, (size_t)n);
    sasl_w_put(&w, "@", 1);
    sasl_w_str(&w, st->hostname);
    sasl_w_put(&w, ">", 1);
    sasl_take(st->mem, &st->chal, &st->chal_len, &w);
    return srv_challenge(st, st->chal, st->chal_len, SRV_RESPONSE);
}

/* The response: user SP 32 hex digits (RFC 2195 2 sends them in lower
 * case; either case is taken).  The name is what precedes the last
 * space. */
static int srv_cram_response(smtpx__sasl_srv *st, const uint8_t *in, size_t len)
{
    size_t ulen, i;

    if (len < 34 || in[len - 33] != ' ')
        return SMTPX__SASL_BAD;
    ulen = len - 33;
    for (i = 0; i < 16; i++) {
        int hi = sasl_hexval(in[ulen + 1 + 2 * i]);
        int lo = sasl_hexval(in[ulen + 2 + 2 * i]);
        if (hi < 0 || lo < 0)
            return SMTPX__SASL_BAD;
        st->digest[i] = (uint8_t)(hi << 4 | lo);
    }
    if (sasl_name(st->authcid, in, ulen) != 0)
        return SMTPX__SASL_BAD;
    st->state = SRV_LOOKUP;
    return SMTPX__SASL_LOOKUP;
}

static int srv_cram_check(smtpx__sasl_srv *st)
{
    uint8_t mac[16];
    int ok;

    /* An unknown user costs the same HMAC as a known one. */
    if (smtpx__hmac_md5(st->secret, st->secret_len, st->chal, st->chal_len,
                        mac) != 0)
        return SMTPX__SASL_NOMEM;
    ok = smtpx__ct_equal(mac, st->digest, sizeof(mac)) & st->found;
    smtpx__wipe(mac, sizeof(mac));
    return ok ? SMTPX__SASL_OK : SMTPX__SASL_FAIL;
}

/* SCRAM client-first-message (RFC 5802 7): gs2-header [reserved-mext ","]
 * username "," nonce ["," extensions] */
static int srv_scram_client_first(smtpx__sasl_srv *st, const uint8_t *in,
                                  size_t len)
{
    const uint8_t *bare, *f, *user, *nonce;
    size_t gs2_len, bare_len, pos = 0, flen, ulen, nlen;

    gs2_len = sasl_gs2(in, len, st->authzid);
    if (gs2_len == 0)
        return SMTPX__SASL_BAD;
    bare = in + gs2_len;
    bare_len = len - gs2_len;
    /* username: "m=" (a mandatory extension) cannot be understood. */
    if (!sasl_field(bare, bare_len, &pos, &f, &flen) ||
        !sasl_attr(f, flen, 'n') || flen < 3)
        return SMTPX__SASL_BAD;
    user = f + 2;
    ulen = flen - 2;
    if (!sasl_field(bare, bare_len, &pos, &f, &flen) ||
        !sasl_attr(f, flen, 'r') || !sasl_nonce_ok(f + 2, flen - 2))
        return SMTPX__SASL_BAD;
    nonce = f + 2;
    nlen = flen - 2;
    while (sasl_field(bare, bare_len, &pos, &f, &flen))
        if (!sasl_ext(f, flen))
            return SMTPX__SASL_BAD;
    if (sasl_saslname(st->authcid, user, ulen) != 0)
        return SMTPX__SASL_BAD;
    if (sasl_copy(st->mem, &st->gs2, &st->gs2_len, in, gs2_len) != 0 ||
        sasl_copy(st->mem, &st->bare, &st->bare_len, bare, bare_len) != 0 ||
        sasl_copy(st->mem, &st->nonce, &st->nonce_len, nonce, nlen) != 0)
        return SMTPX__SASL_NOMEM;
    st->state = SRV_LOOKUP;
    return SMTPX__SASL_LOOKUP;
}

/* srv_scram_stand_in - values for a user that does not exist */
static int srv_scram_stand_in(smtpx__sasl_srv *st)
{
    uint8_t msg[4 + SMTPX__SASL_NAME_MAX], mac[32], keys[64];
    size_t ulen = strlen(st->authcid);

    memcpy(msg, "salt", 4);
    memcpy(msg + 4, st->authcid, ulen);
    if (smtpx__hmac_sha256(st->fake_key, sizeof(st->fake_key), msg, 4 + ulen,
                           mac) != 0)
        return SMTPX__SASL_NOMEM;
    if (sasl_copy(st->mem, &st->salt, &st->salt_len, mac, SASL_FAKE_SALT_LEN) !=
        0)
        return SMTPX__SASL_NOMEM;
    st->iterations = SASL_FAKE_ITER;
    if (st->rnd(keys, sizeof(keys), st->rnd_ud) != 0)
        return SMTPX__SASL_FAIL;
    memcpy(st->stored_key, keys, 32);
    memcpy(st->server_key, keys + 32, 32);
    smtpx__wipe(keys, sizeof(keys));
    return 0;
}

/* server-first-message: "r=" c-nonce s-nonce ",s=" salt ",i=" count */
static int srv_scram_server_first(smtpx__sasl_srv *st)
{
    char snonce[SASL_SNONCE_LEN + 1], count[16];
    size_t cap;
    sasl_w w;
    int rc;

    if (sasl_nonce(st->rnd, st->rnd_ud, snonce, SASL_SNONCE_LEN) != 0)
        return SMTPX__SASL_FAIL;
    if (!st->found && (rc = srv_scram_stand_in(st)) != 0)
        return rc;
    snprintf(count, sizeof(count), "%lu", (unsigned long)st->iterations);
    /* The full nonce, kept for client-final's "r=". */
    if (sasl_w_init(&w, st->mem, st->nonce_len + SASL_SNONCE_LEN) != 0)
        return SMTPX__SASL_NOMEM;
    sasl_w_put(&w, st->nonce, st->nonce_len);
    sasl_w_put(&w, snonce, SASL_SNONCE_LEN);
    sasl_take(st->mem, &st->nonce, &st->nonce_len, &w);
    cap = 2 + st->nonce_len + 3 + SMTPX__B64_LEN(st->salt_len) + 3 +
          strlen(count);
    if (sasl_w_init(&w, st->mem, cap) != 0)
        return SMTPX__SASL_NOMEM;
    sasl_w_put(&w, "r=", 2);
    sasl_w_put(&w, st->nonce, st->nonce_len);
    sasl_w_put(&w, ",s=", 3);
    sasl_w_b64(&w, st->salt, st->salt_len);
    sasl_w_put(&w, ",i=", 3);
    sasl_w_str(&w, count);
    sasl_take(st->mem, &st->sfirst, &st->sfirst_len, &w);
    return srv_challenge(st, st->sfirst, st->sfirst_len, SRV_SCRAM_FINAL);
}

/* client-final-message (RFC 5802 7): "c=" base64(gs2-header) "," "r="
 * nonce ["," extensions] "," "p=" base64(ClientProof) */
static int srv_scram_client_final(smtpx__sasl_srv *st, const uint8_t *in,
                                  size_t len)
{
    char cbind[SMTPX__B64_LEN(SASL_GS2_MAX) + 1];
    uint8_t proof[SMTPX__B64_DEC_MAX(44)], sig[32], key[32], hkey[32];
    const uint8_t *f;
    size_t pos = 0, flen, cblen, without = 0;
    int have_proof = 0, ok, i;
    sasl_w am;
    long k;

    k = smtpx__b64_encode(st->gs2, st->gs2_len, cbind, sizeof(cbind));
    if (k < 0)
        return SMTPX__SASL_BAD;
    cblen = (size_t)k;
    if (!sasl_field(in, len, &pos, &f, &flen) || flen != 2 + cblen ||
        !sasl_attr(f, flen, 'c') || memcmp(f + 2, cbind, cblen) != 0)
        return SMTPX__SASL_BAD;
    if (!sasl_field(in, len, &pos, &f, &flen) || flen != 2 + st->nonce_len ||
        !sasl_attr(f, flen, 'r') ||
        memcmp(f + 2, st->nonce, st->nonce_len) != 0)
        return SMTPX__SASL_BAD;
    while (sasl_field(in, len, &pos, &f, &flen)) {
        if (have_proof)
            return SMTPX__SASL_BAD; /* the proof comes last */
        if (sasl_attr(f, flen, 'p')) {
            /* 32 octets are 44 base64 characters. */
            if (flen != 46 || smtpx__b64_decode((const char *)f + 2, 44, proof,
                                                sizeof(proof)) != 32)
                return SMTPX__SASL_BAD;
            without = (size_t)(f - in) - 1;
            have_proof = 1;
        } else if (!sasl_ext(f, flen)) {
            return SMTPX__SASL_BAD;
        }
    }
    if (!have_proof)
        return SMTPX__SASL_BAD;
    if (sasl_auth_message(st->mem, &am, st->bare, st->bare_len, st->sfirst,
                          st->sfirst_len, in, without) != 0)
        return SMTPX__SASL_NOMEM;
    /* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the
     * client knows the password iff H(ClientKey) is StoredKey. */
    ok = smtpx__hmac_sha256(st->stored_key, 32, am.p, am.len, sig) == 0;
    for (i = 0; i < 32; i++)
        key[i] = proof[i] ^ sig[i];
    ok = ok && smtpx__sha256(key, 32, hkey) == 0;
    ok = ok && smtpx__hmac_sha256(st->server_key, 32, am.p, am.len, sig) == 0;
    smtpx__wipe(am.p, am.len);
    smtpx__free(st->mem, am.p);
    smtpx__wipe(key, sizeof(key));
    if (!ok) {
        smtpx__wipe(sig, sizeof(sig));
        return SMTPX__SASL_NOMEM;
    }
    ok = smtpx__ct_equal(hkey, st->stored_key, 32) & st->found;
    smtpx__wipe(hkey, sizeof(hkey));
    if (!ok) {
        smtpx__wipe(sig, sizeof(sig));
        return SMTPX__SASL_FAIL;
    }
    /* server-final-message: "v=" base64(ServerSignature) */
    if (sasl_w_init(&am, st->mem, 2 + SMTPX__B64_LEN(32)) != 0)
        return SMTPX__SASL_NOMEM;
    sasl_w_put(&am, "v=", 2);
    sasl_w_b64(&am, sig, 32);
    smtpx__wipe(sig, sizeof(sig));
    sasl_take(st->mem, &st->out, &st->out_len, &am);
    st->state = SRV_SCRAM_ACK;
    return SMTPX__SASL_CHALLENGE;
}

/* XOAUTH2: "user=" user ^A "auth=Bearer " token ^A ^A */
static int srv_xoauth2(smtpx__sasl_srv *st, const uint8_t *in, size_t len)
{
    const uint8_t *k, *v, *tok = NULL;
    size_t klen, vlen, tlen = 0, pos = 0;
    int rc, have_user = 0;

    while ((rc = sasl_kv(in, len, &pos, &k, &klen, &v, &vlen)) == 1) {
        if (sasl_key_is(k, klen, "user")) {
            if (have_user || vlen == 0 || sasl_name(st->authcid, v, vlen) != 0)
                return SMTPX__SASL_BAD;
            have_user = 1;
        } else if (sasl_key_is(k, klen, "auth")) {
            if (tok != NULL || sasl_bearer(v, vlen, &tok, &tlen) != 0)
                return SMTPX__SASL_BAD;
        }
    }
    if (rc != 0 || !have_user || tok == NULL)
        return SMTPX__SASL_BAD;
    return srv_verify(st, tok, tlen);
}

/* OAUTHBEARER (RFC 7628 3.1): gs2-header kvsep *kvpair kvsep; the user is
 * the gs2 authzid ("" when absent), the token is in "auth" */
static int srv_oauthbearer(smtpx__sasl_srv *st, const uint8_t *in, size_t len)
{
    const uint8_t *k, *v, *tok = NULL;
    size_t klen, vlen, tlen = 0, pos;
    int rc;

    pos = sasl_gs2(in, len, st->authcid);
    if (pos == 0 || pos >= len || in[pos] != SASL_KVSEP)
        return SMTPX__SASL_BAD;
    pos++;
    while ((rc = sasl_kv(in, len, &pos, &k, &klen, &v, &vlen)) == 1) {
        if (sasl_key_is(k, klen, "auth") &&
            (tok != NULL || sasl_bearer(v, vlen, &tok, &tlen) != 0))
            return SMTPX__SASL_BAD;
    }
    if (rc != 0 || tok == NULL)
        return SMTPX__SASL_BAD;
    return srv_verify(st, tok, tlen);
}

/* srv_response - the response that carries the credentials */
static int srv_response(smtpx__sasl_srv *st, const uint8_t *in, size_t len)
{
    switch (st->mech) {
    case SMTPX_SASL_PLAIN:
        return srv_plain(st, in, len);
    case SMTPX_SASL_LOGIN:
        return srv_login_user(st, in, len);
    case SMTPX_SASL_CRAM_MD5:
        return srv_cram_response(st, in, len);
    case SMTPX_SASL_SCRAM_SHA_256:
        return srv_scram_client_first(st, in, len);
    case SMTPX_SASL_XOAUTH2:
        return srv_xoauth2(st, in, len);
    default:
        return srv_oauthbearer(st, in, len);
    }
}

static int srv_step(smtpx__sasl_srv *st, const uint8_t *in, size_t len,
                    int has_in)
{
    switch (st->state) {
    case SRV_START:
        if (st->mech == SMTPX_SASL_CRAM_MD5)
            return has_in ? SMTPX__SASL_BAD : srv_cram_challenge(st);
        if (has_in)
            return srv_response(st, in, len);
        if (st->mech == SMTPX_SASL_LOGIN)
            return srv_challenge(st, "Username:", 9, SRV_LOGIN_USER);
        /* RFC 4954 4: no initial response, an empty challenge. */
        return srv_challenge(st, NULL, 0, SRV_RESPONSE);
    case SRV_RESPONSE:
    case SRV_LOGIN_USER:
        return has_in ? srv_response(st, in, len) : SMTPX__SASL_BAD;
    case SRV_LOGIN_PASS:
        return has_in ? srv_login_pass(st, in, len) : SMTPX__SASL_BAD;
    case SRV_LOOKUP:
        if (has_in)
            return SMTPX__SASL_BAD;
        return st->mech == SMTPX_SASL_CRAM_MD5 ? srv_cram_check(st)
                                               : srv_scram_server_first(st);
    case SRV_SCRAM_FINAL:
        return has_in ? srv_scram_client_final(st, in, len) : SMTPX__SASL_BAD;
    case SRV_SCRAM_ACK:
        /* RFC 5802 5: the client has nothing more to say. */
        return has_in && len == 0 ? SMTPX__SASL_OK : SMTPX__SASL_BAD;
    case SRV_REFUSED:
        /* The client's answer to the error (RFC 7628 3.2.3). */
        return SMTPX__SASL_FAIL;
    default:
        return SMTPX__SASL_BAD;
    }
}

int smtpx__sasl_srv_step(smtpx__sasl_srv *st, const uint8_t *in, size_t len,
                         int has_in)
{
    int rc;

    if (st == NULL)
        return SMTPX__SASL_BAD;
    if (!has_in || in == NULL) {
        if (has_in && len > 0)
            return SMTPX__SASL_BAD;
        in = (const uint8_t *)"";
        len = 0;
    }
    rc = srv_step(st, in, len, has_in);
    if (rc != SMTPX__SASL_CHALLENGE && rc != SMTPX__SASL_VERIFY &&
        rc != SMTPX__SASL_LOOKUP) {
        /* The end: nothing secret is needed any more. */
        srv_forget(st);
        st->state = SRV_DONE;
    }
    return rc;
}

const uint8_t *smtpx__sasl_srv_out(const smtpx__sasl_srv *st, size_t *len)
{
    if (st == NULL || st->out == NULL) {
        *len = 0;
        return (const uint8_t *)"";
    }
    *len = st->out_len;
    return st->out;
}

void smtpx__sasl_srv_info(const smtpx__sasl_srv *st, smtpx_auth_info *info)
{
    memset(info, 0, sizeof(*info));
    if (st == NULL)
        return;
    info->mech = st->mech;
    info->mech_name = smtpx_sasl_name(st->mech);
    info->authzid = st->authzid;
    info->authcid = st->authcid;
    if (st->state == SRV_VERIFY) {
        info->secret = st->secret;
        info->secret_len = st->secret_len;
    }
}

int smtpx__sasl_srv_secret(smtpx__sasl_srv *st, const smtpx_auth_secret *sec)
{
    if (st == NULL || st->state != SRV_LOOKUP)
        return SMTPX_ERR_INVALID_STATE;
    srv_forget(st);
    if (sec == NULL || !sec->found)
        return 0;
    if (st->mech == SMTPX_SASL_CRAM_MD5) {
        if (sec->password == NULL && sec->password_len > 0)
            return 0;
        if (sasl_copy(st->mem, &st->secret, &st->secret_len,
                      sec->password != NULL ? sec->password
                                            : (const uint8_t *)"",
                      sec->password_len) != 0)
            return SMTPX_ERR_NOMEM;
    } else {
        /* Without a salt or a count there is nothing to send: treat the
         * user as unknown, so the exchange fails at its end. */
        if (sec->salt == NULL || sec->salt_len == 0 || sec->iterations == 0)
            return 0;
        if (sasl_copy(st->mem, &st->salt, &st->salt_len, sec->salt,
                      sec->salt_len) != 0)
            return SMTPX_ERR_NOMEM;
        st->iterations = sec->iterations;
        memcpy(st->stored_key, sec->stored_key, 32);
        memcpy(st->server_key, sec->server_key, 32);
    }
    st->found = 1;
    return 0;
}

int smtpx__sasl_srv_refused(smtpx__sasl_srv *st)
{
    /* RFC 7628 3.2.2 error; Google's documented XOAUTH2 error. */
    static const char oauthbearer_err[] = "{\"status\":\"invalid_token\"}";
    static const char xoauth2_err[] =
        "{\"status\":\"401\",\"schemes\":\"bearer\","
        "\"scope\":\"https://mail.google.com/\"}";
    int rc;

    if (st == NULL)
        return SMTPX__SASL_FAIL;
    sasl_drop(st->mem, &st->secret, &st->secret_len);
    if (st->state == SRV_VERIFY && st->mech == SMTPX_SASL_OAUTHBEARER)
        rc = srv_challenge(st, oauthbearer_err, sizeof(oauthbearer_err) - 1,
                           SRV_REFUSED);
    else if (st->state == SRV_VERIFY && st->mech == SMTPX_SASL_XOAUTH2)
        rc = srv_challenge(st, xoauth2_err, sizeof(xoauth2_err) - 1,
                           SRV_REFUSED);
    else
        rc = SMTPX__SASL_FAIL;
    if (rc != SMTPX__SASL_CHALLENGE)
        st->state = SRV_DONE;
    return rc;
}

/* ---- client ------------------------------------------------------------- */

/* The strongest first (RFC 4954 has no order; ours is the client.h one). */
static const struct sasl_rank {
    unsigned mech;
    int token; /* needs a token, else a password */
} sasl_ranks[] = {
    {SMTPX_SASL_OAUTHBEARER, 1},   {SMTPX_SASL_XOAUTH2, 1},
    {SMTPX_SASL_SCRAM_SHA_256, 0}, {SMTPX_SASL_CRAM_MD5, 0},
    {SMTPX_SASL_PLAIN, 0},         {SMTPX_SASL_LOGIN, 0},
};

unsigned smtpx__sasl_cli_pick(unsigned offered, unsigned allowed,
                              int has_password, int has_token)
{
    size_t i;

    for (i = 0; i < sizeof(sasl_ranks) / sizeof(sasl_ranks[0]); i++) {
        const struct sasl_rank *r = &sasl_ranks[i];
        if ((offered & allowed & r->mech) != 0 &&
            (r->token ? has_token : has_password))
            return r->mech;
    }
    return 0;
}

enum {
    CLI_START,      /* nothing sent */
    CLI_SENT,       /* the initial response, or the first answer, sent */
    CLI_SENT2,      /* LOGIN: the password; SCRAM: client-final */
    CLI_ERROR_SEEN, /* token mechanisms: the error was answered */
    CLI_VERIFIED,   /* SCRAM: the server's signature checked out */
    CLI_DONE        /* failed: nothing more */
};

struct smtpx__sasl_cli {
    const smtpx_mem *mem;
    unsigned mech;
    int state;
    char *user;
    char *secret;
    size_t secret_len;
    uint8_t *init; /* the initial response, made at new */
    size_t init_len;
    uint8_t *out;
    size_t out_len;
    /* SCRAM: init is gs2-header then client-first-message-bare. */
    size_t gs2_len;
    char cnonce[SASL_CNONCE_LEN + 1];
    uint8_t server_sig[32];
};

/* cli_text_ok - no control characters: they could forge the framing of
 * XOAUTH2 and OAUTHBEARER, and servers log names */
static int cli_text_ok(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* cli_make_initial - the first message of the mechanisms that send one */
static int cli_make_initial(smtpx__sasl_cli *st, const char *authzid)
{
    size_t ulen = strlen(st->user), zlen = authzid ? strlen(authzid) : 0;
    sasl_w w;

    switch (st->mech) {
    case SMTPX_SASL_PLAIN:
        if (sasl_w_init(&w, st->mem, zlen + ulen + st->secret_len + 2) != 0)
            return -1;
        sasl_w_put(&w, authzid, zlen);
        sasl_w_put(&w, "", 1);
        sasl_w_put(&w, st->user, ulen);
        sasl_w_put(&w, "", 1);
        sasl_w_put(&w, st->secret, st->secret_len);
        break;
    case SMTPX_SASL_SCRAM_SHA_256:
        st->gs2_len = 3 + (zlen > 0 ? 2 + sasl_esc_len(authzid) : 0);
        if (sasl_w_init(&w, st->mem,
                        st->gs2_len + 2 + sasl_esc_len(st->user) + 3 +
                            SASL_CNONCE_LEN) != 0)
            return -1;
        sasl_w_put(&w, "n,", 2);
        if (zlen > 0) {
            sasl_w_put(&w, "a=", 2);
            sasl_w_esc(&w, authzid);
        }
        sasl_w_put(&w, ",n=", 3);
        sasl_w_esc(&w, st->user);
        sasl_w_put(&w, ",r=", 3);
        sasl_w_put(&w, st->cnonce, SASL_CNONCE_LEN);
        break;
    case SMTPX_SASL_XOAUTH2:
        if (sasl_w_init(&w, st->mem, 5 + ulen + 1 + 12 + st->secret_len + 2) !=
            0)
            return -1;
        sasl_w_put(&w, "user=", 5);
        sasl_w_put(&w, st->user, ulen);
        sasl_w_put(&w, "\001auth=Bearer ", 13);
        sasl_w_put(&w, st->secret, st->secret_len);
        sasl_w_put(&w, "\001\001", 2);
        break;
    case SMTPX_SASL_OAUTHBEARER:
        /* The gs2 authzid names the user (RFC 7628 3.1's example). */
        if (sasl_w_init(&w, st->mem,
                        5 + sasl_esc_len(st->user) + 1 + 12 + st->secret_len +
                            2) != 0)
            return -1;
        sasl_w_put(&w, "n,", 2);
        if (ulen > 0) {
            sasl_w_put(&w, "a=", 2);
            sasl_w_esc(&w, st->user);
        }
        sasl_w_put(&w, ",\001auth=Bearer ", 14);
        sasl_w_put(&w, st->secret, st->secret_len);
        sasl_w_put(&w, "\001\001", 2);
        break;
    default:
        return 0; /* LOGIN and CRAM-MD5 wait for the server */
    }
    sasl_take(st->mem, &st->init, &st->init_len, &w);
    return 0;
}

smtpx__sasl_cli *smtpx__sasl_cli_new(const smtpx_mem *mem, unsigned mech,
                                     const char *authzid, const char *user,
                                     const char *secret, smtpx_random_fn *rnd,
                                     void *rnd_ud)
{
    int token = mech == SMTPX_SASL_XOAUTH2 || mech == SMTPX_SASL_OAUTHBEARER;
    smtpx__sasl_cli *st;

    if (mem == NULL || smtpx_sasl_name(mech) == NULL || user == NULL ||
        secret == NULL || !cli_text_ok(user) ||
        (authzid != NULL && !cli_text_ok(authzid)) ||
        (token && !cli_text_ok(secret)) ||
        (mech == SMTPX_SASL_SCRAM_SHA_256 && user[0] == '\0'))
        return NULL;
    st = smtpx__calloc(mem, 1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->mem = mem;
    st->mech = mech;
    st->state = CLI_START;
    st->user = smtpx__strdup(mem, user);
    st->secret = smtpx__strdup(mem, secret);
    if (st->user == NULL || st->secret == NULL)
        goto fail;
    st->secret_len = strlen(secret);
    if (mech == SMTPX_SASL_SCRAM_SHA_256 &&
        sasl_nonce(rnd != NULL ? rnd : smtpx__random_system, rnd_ud, st->cnonce,
                   SASL_CNONCE_LEN) != 0)
        goto fail;
    if (cli_make_initial(st, authzid) != 0)
        goto fail;
    return st;
fail:
    smtpx__sasl_cli_free(st);
    return NULL;
}

void smtpx__sasl_cli_free(smtpx__sasl_cli *st)
{
    const smtpx_mem *mem;

    if (st == NULL)
        return;
    mem = st->mem;
    if (st->user != NULL) {
        smtpx__wipe(st->user, strlen(st->user));
        smtpx__free(mem, st->user);
    }
    if (st->secret != NULL) {
        smtpx__wipe(st->secret, st->secret_len);
        smtpx__free(mem, st->secret);
    }
    sasl_drop(mem, &st->init, &st->init_len);
    sasl_drop(mem, &st->out, &st->out_len);
    smtpx__wipe(st, sizeof(*st));
    smtpx__free(mem, st);
}

int smtpx__sasl_cli_initial(smtpx__sasl_cli *st, const uint8_t **out,
                            size_t *len)
{
    *out = NULL;
    *len = 0;
    if (st == NULL || st->init == NULL || st->state != CLI_START)
        return 0;
    *out = st->init;
    *len = st->init_len;
    st->state = CLI_SENT;
    return 1;
}

/* CRAM-MD5 (RFC 2195 2): user SP hex(HMAC-MD5(password, challenge)) */
static int cli_cram(smtpx__sasl_cli *st, const uint8_t *in, size_t len)
{
    uint8_t mac[16];
    char hex[33];
    size_t ulen = strlen(st->user);
    sasl_w w;

    if (len == 0)
        return SMTPX__SASL_BAD;
    if (smtpx__hmac_md5((const uint8_t *)st->secret, st->secret_len, in, len,
                        mac) != 0)
        return SMTPX__SASL_NOMEM;
    sasl_hex(mac, sizeof(mac), hex);
    smtpx__wipe(mac, sizeof(mac));
    if (sasl_w_init(&w, st->mem, ulen + 1 + 32) != 0)
        return SMTPX__SASL_NOMEM;
    sasl_w_put(&w, st->user, ulen);
    sasl_w_put(&w, " ", 1);
    sasl_w_put(&w, hex, 32);
    sasl_take(st->mem, &st->out, &st->out_len, &w);
    return 0;
}

/* cli_count - RFC 5802 7 iteration-count, a posit-number, at most max */
static int cli_count(const uint8_t *p, size_t n, uint32_t max, uint32_t *out)
{
    uint32_t v = 0;
    size_t i;

    if (n == 0 || p[0] < '1' || p[0] > '9')
        return -1;
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (uint32_t)(p[i] - '0');
        if (v > max)
            return -1;
    }
    *out = v;
    return 0;
}

/* SCRAM server-first-message (RFC 5802 7): "r=" nonce ",s=" salt ",i="
 * count ["," extensions]; the answer is client-final-message. */
static int cli_scram_first(smtpx__sasl_cli *st, const uint8_t *in, size_t len)
{
    const uint8_t *f, *nonce, *salt64;
    size_t pos = 0, flen, nlen, slen64, cap, without;
    uint8_t *salt = NULL, ck[32], sk[32], srvk[32], sig[32];
    uint32_t iter;
    long saltlen;
    sasl_w w, am;
    int rc, i;

    /* "m=" first would be a mandatory extension: not understood. */
    if (!sasl_field(in, len, &pos, &f, &flen) || !sasl_attr(f, flen, 'r'))
        return SMTPX__SASL_BAD;
    nonce = f + 2;
    nlen = flen - 2;
    /* Our nonce, and more of the server's (RFC 5802 5.1). */
    if (nlen <= SASL_CNONCE_LEN ||
        memcmp(nonce, st->cnonce, SASL_CNONCE_LEN) != 0 ||
        !sasl_nonce_ok(nonce, nlen))
        return SMTPX__SASL_BAD;
    if (!sasl_field(in, len, &pos, &f, &flen) || !sasl_attr(f, flen, 's') ||
        flen == 2)
        return SMTPX__SASL_BAD;
    salt64 = f + 2;
    slen64 = flen - 2;
    if (!sasl_field(in, len, &pos, &f, &flen) || !sasl_attr(f, flen, 'i') ||
        cli_count(f + 2, flen - 2, SASL_SCRAM_MAX_ITER, &iter) != 0)
        return SMTPX__SASL_BAD;
    while (sasl_field(in, len, &pos, &f, &flen))
        if (!sasl_ext(f, flen))
            return SMTPX__SASL_BAD;
    salt = smtpx__malloc(st->mem, SMTPX__B64_DEC_MAX(slen64));
    if (salt == NULL)
        return SMTPX__SASL_NOMEM;
    saltlen = smtpx__b64_decode((const char *)salt64, slen64, salt,
                                SMTPX__B64_DEC_MAX(slen64));
    if (saltlen <= 0) {
        smtpx__free(st->mem, salt);
        return SMTPX__SASL_BAD;
    }
    rc = sasl_scram_keys((const uint8_t *)st->secret, st->secret_len, salt,
                         (size_t)saltlen, iter, ck, sk, srvk);
    smtpx__free(st->mem, salt);
    if (rc != 0)
        return SMTPX__SASL_NOMEM;
    /* client-final-message-without-proof: "c=" base64(gs2-header) ",r="
     * nonce; then ",p=" base64(ClientProof). */
    rc = SMTPX__SASL_NOMEM;
    am.p = NULL;
    am.len = 0;
    cap = 2 + SMTPX__B64_LEN(st->gs2_len) + 3 + nlen + 3 + SMTPX__B64_LEN(32);
    if (sasl_w_init(&w, st->mem, cap) != 0)
        goto out;
    sasl_w_put(&w, "c=", 2);
    sasl_w_b64(&w, st->init, st->gs2_len);
    sasl_w_put(&w, ",r=", 3);
    sasl_w_put(&w, nonce, nlen);
    without = w.len;
    if (sasl_auth_message(st->mem, &am, st->init + st->gs2_len,
                          st->init_len - st->gs2_len, in, len, w.p,
                          without) != 0)
        goto out;
    if (smtpx__hmac_sha256(sk, 32, am.p, am.len, sig) != 0 ||
        smtpx__hmac_sha256(srvk, 32, am.p, am.len, st->server_sig) != 0)
        goto out;
    for (i = 0; i < 32; i++)
        sig[i] ^= ck[i]; /* ClientProof */
    sasl_w_put(&w, ",p=", 3);
    sasl_w_b64(&w, sig, 32);
    sasl_take(st->mem, &st->out, &st->out_len, &w);
    rc = 0;
out:
    if (w.p != NULL) {
        smtpx__wipe(w.p, w.len);
        smtpx__free(st->mem, w.p);
    }
    if (am.p != NULL) {
        smtpx__wipe(am.p, am.len);
        smtpx__free(st->mem, am.p);
    }
    smtpx__wipe(ck, sizeof(ck));
    smtpx__wipe(sk, sizeof(sk));
    smtpx__wipe(srvk, sizeof(srvk));
    smtpx__wipe(sig, sizeof(sig));
    return rc;
}

/* server-final-message (RFC 5802 7): ("e=" error / "v=" base64
 * (ServerSignature)) ["," extensions] */
static int cli_scram_final(smtpx__sasl_cli *st, const uint8_t *in, size_t len)
{
    uint8_t v[SMTPX__B64_DEC_MAX(44)];
    const uint8_t *f;
    size_t pos = 0, flen;
    int ok;

    if (!sasl_field(in, len, &pos, &f, &flen))
        return SMTPX__SASL_BAD;
    if (sasl_attr(f, flen, 'e'))
        return SMTPX__SASL_FAIL;
    if (!sasl_attr(f, flen, 'v') || flen != 46 ||
        smtpx__b64_decode((const char *)f + 2, 44, v, sizeof(v)) != 32)
        return SMTPX__SASL_BAD;
    ok = smtpx__ct_equal(v, st->server_sig, 32);
    while (sasl_field(in, len, &pos, &f, &flen))
        if (!sasl_ext(f, flen))
            return SMTPX__SASL_BAD;
    return ok ? 0 : SMTPX__SASL_FAIL;
}

static int cli_step(smtpx__sasl_cli *st, const uint8_t *in, size_t len,
                    const uint8_t **out, size_t *olen)
{
    int rc;

    /* The server asked for the initial response with an empty challenge
     * (RFC 4954 4) because it was not sent with AUTH. */
    if (st->state == CLI_START && st->init != NULL) {
        if (len != 0)
            return SMTPX__SASL_BAD;
        *out = st->init;
        *olen = st->init_len;
        st->state = CLI_SENT;
        return 0;
    }
    switch (st->mech) {
    case SMTPX_SASL_LOGIN:
        /* Whatever the prompts say: the user name, then the password. */
        if (st->state == CLI_START) {
            *out = (const uint8_t *)st->user;
            *olen = strlen(st->user);
            st->state = CLI_SENT;
            return 0;
        }
        if (st->state == CLI_SENT) {
            *out = (const uint8_t *)st->secret;
            *olen = st->secret_len;
            st->state = CLI_SENT2;
            return 0;
        }
        return SMTPX__SASL_BAD;
    case SMTPX_SASL_CRAM_MD5:
        if (st->state != CLI_START)
            return SMTPX__SASL_BAD;
        rc = cli_cram(st, in, len);
        st->state = CLI_SENT;
        break;
    case SMTPX_SASL_SCRAM_SHA_256:
        if (st->state == CLI_SENT) {
            rc = cli_scram_first(st, in, len);
            st->state = CLI_SENT2;
        } else if (st->state == CLI_SENT2) {
            rc = cli_scram_final(st, in, len);
            if (rc == 0) {
                /* The empty response that ends the exchange. */
                sasl_drop(st->mem, &st->out, &st->out_len);
                *out = (const uint8_t *)"";
                *olen = 0;
                st->state = CLI_VERIFIED;
                return 0;
            }
        } else {
            rc = SMTPX__SASL_BAD;
        }
        break;
    case SMTPX_SASL_XOAUTH2:
    case SMTPX_SASL_OAUTHBEARER:
        /* A challenge after the token is the server's error (RFC 7628
         * 3.2.2); the answer is ^A (3.2.3), or empty for XOAUTH2. */
        if (st->state != CLI_SENT)
            return SMTPX__SASL_BAD;
        st->state = CLI_ERROR_SEEN;
        *out = (const uint8_t *)"\001";
        *olen = st->mech == SMTPX_SASL_OAUTHBEARER ? 1 : 0;
        return 0;
    default:
        /* PLAIN: nothing follows the initial response. */
        return SMTPX__SASL_BAD;
    }
    if (rc == 0) {
        *out = st->out;
        *olen = st->out_len;
    }
    return rc;
}

int smtpx__sasl_cli_step(smtpx__sasl_cli *st, const uint8_t *in, size_t len,
                         const uint8_t **out, size_t *olen)
{
    int rc;

    *out = NULL;
    *olen = 0;
    if (st == NULL || (in == NULL && len > 0))
        return SMTPX__SASL_BAD;
    if (in == NULL)
        in = (const uint8_t *)"";
    rc = cli_step(st, in, len, out, olen);
    if (rc != 0) {
        st->state = CLI_DONE;
        *out = NULL;
        *olen = 0;
    }
    return rc;
}

int smtpx__sasl_cli_done(const smtpx__sasl_cli *st)
{
    if (st == NULL || st->state == CLI_DONE)
        return 0;
    if (st->mech == SMTPX_SASL_SCRAM_SHA_256)
        return st->state == CLI_VERIFIED;
    return 1;
}
