/*
 * conf - the shared configuration object.
 *
 * Exports smtpx_config_new(), smtpx_config_free(), the setters and getters,
 * and smtpx_config_freeze().  Invariant: once frozen a config is never
 * written again, so sessions on any thread may read it without locks.
 * Defaults follow RFC 5321 4.5.3 and Postfix; conf.h explains each.
 */
#include <string.h>

#include "proto/cmd.h"
#include "proto/conf.h"
#include "base/crypto.h"
#include "base/mem.h"

static const uint64_t conf_default_limits[SMTPX_LIMIT_COUNT] = {
    [SMTPX_LIMIT_LINE] = 2048,         /* RFC 5321 4.5.3.1.4 + extensions */
    [SMTPX_LIMIT_AUTH_LINE] = 12288,   /* RFC 4954 4 */
    [SMTPX_LIMIT_TEXT_LINE] = 1000,    /* RFC 5321 4.5.3.1.6 */
    [SMTPX_LIMIT_REPLY_LINE] = 512,    /* RFC 5321 4.5.3.1.5 */
    [SMTPX_LIMIT_RCPTS] = 1000,        /* >= 100, RFC 5321 4.5.3.1.8 */
    [SMTPX_LIMIT_MSG_SIZE] = 10240000, /* Postfix message_size_limit */
    [SMTPX_LIMIT_ERRORS] = 20,         /* Postfix smtpd_hard_error_limit */
    [SMTPX_LIMIT_JUNK] = 100,          /* Postfix smtpd_junk_command_limit */
    [SMTPX_LIMIT_MSGS] = 1000,
    [SMTPX_LIMIT_OUTBUF] = 65536,
    [SMTPX_LIMIT_HOLDBUF] = 262144,
    [SMTPX_LIMIT_ADDR] = 256, /* RFC 5321 4.5.3.1.3 */
    [SMTPX_LIMIT_AUTH_FAILURES] = 3,
};

static const uint32_t conf_default_timeouts[SMTPX_TIMEOUT_COUNT] = {
    [SMTPX_TIMEOUT_COMMAND] = 300000, /* RFC 5321 4.5.3.2.7 */
    [SMTPX_TIMEOUT_DATA] = 300000,    /* Postfix smtpd_timeout */
    [SMTPX_TIMEOUT_SESSION] = 3600000,
    [SMTPX_TIMEOUT_GREETING] = 300000,   /* 4.5.3.2.1 */
    [SMTPX_TIMEOUT_MAIL] = 300000,       /* 4.5.3.2.2 */
    [SMTPX_TIMEOUT_RCPT] = 300000,       /* 4.5.3.2.3 */
    [SMTPX_TIMEOUT_DATA_INIT] = 120000,  /* 4.5.3.2.4 */
    [SMTPX_TIMEOUT_DATA_BLOCK] = 180000, /* 4.5.3.2.5 */
    [SMTPX_TIMEOUT_DATA_END] = 600000,   /* 4.5.3.2.6 */
};

int smtpx_config_new(smtpx_config **out, smtpx_role role, const smtpx_mem *mem)
{
    smtpx_config *cfg;

    if (out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (role < SMTPX_ROLE_SERVER || role > SMTPX_ROLE_LMTP_CLIENT ||
        !smtpx__mem_valid(mem))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (mem == NULL)
        mem = smtpx__mem_default();
    cfg = smtpx__calloc(mem, 1, sizeof(*cfg));
    if (cfg == NULL)
        return SMTPX_ERR_NOMEM;
    cfg->mem = *mem;
    cfg->role = role;
    cfg->hostname = smtpx__strdup(mem, "localhost");
    if (cfg->hostname == NULL) {
        smtpx__free(mem, cfg);
        return SMTPX_ERR_NOMEM;
    }
    memcpy(cfg->limits, conf_default_limits, sizeof(cfg->limits));
    memcpy(cfg->timeouts, conf_default_timeouts, sizeof(cfg->timeouts));
    cfg->policies[SMTPX_POLICY_BARE_LF] = SMTPX_BARE_LF_NORMALIZE;
    cfg->policies[SMTPX_POLICY_REQUIRE_HELO] = 1;
    cfg->policies[SMTPX_POLICY_VRFY] = 252; /* RFC 5321 3.5.3 */
    cfg->policies[SMTPX_POLICY_EXPN] = 502;
    cfg->extensions = SMTPX_EXT_DEFAULT;
    cfg->sasl = role == SMTPX_ROLE_CLIENT || role == SMTPX_ROLE_LMTP_CLIENT
                    ? SMTPX_SASL_ALL
                    : SMTPX_SASL_DEFAULT;
    cfg->rand_fn = smtpx__random_system;
    cfg->log_level = SMTPX_LOG_INFO;
    *out = cfg;
    return 0;
}

void smtpx_config_free(smtpx_config *cfg)
{
    smtpx_mem mem;

    if (cfg == NULL)
        return;
    mem = cfg->mem;
    smtpx__free(&mem, cfg->hostname);
    smtpx__wipe(cfg->fake_key, sizeof(cfg->fake_key));
    smtpx__free(&mem, cfg);
}

int smtpx_config_set_hostname(smtpx_config *cfg, const char *name)
{
    char *copy;

    if (cfg == NULL || !smtpx__cmd_name_ok(name))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (cfg->frozen)
        return SMTPX_ERR_INVALID_STATE;
    copy = smtpx__strdup(&cfg->mem, name);
    if (copy == NULL)
        return SMTPX_ERR_NOMEM;
    smtpx__free(&cfg->mem, cfg->hostname);
    cfg->hostname = copy;
    return 0;
}

const char *smtpx_config_get_hostname(const smtpx_config *cfg)
{
    return cfg->hostname;
}

int smtpx__conf_check_limit(smtpx_limit which, uint64_t value)
{
    switch (which) {
    case SMTPX_LIMIT_LINE:
    case SMTPX_LIMIT_AUTH_LINE:
        return value >= 64 && value <= (1u << 24) ? 0
                                                  : SMTPX_ERR_INVALID_ARGUMENT;
    case SMTPX_LIMIT_TEXT_LINE:
        return value == 0 || value >= 64 ? 0 : SMTPX_ERR_INVALID_ARGUMENT;
    case SMTPX_LIMIT_REPLY_LINE:
        return value >= 64 && value <= 65536 ? 0 : SMTPX_ERR_INVALID_ARGUMENT;
    case SMTPX_LIMIT_OUTBUF:
    case SMTPX_LIMIT_HOLDBUF:
        return value >= 1024 && value <= ((uint64_t)1 << 32)
                   ? 0
                   : SMTPX_ERR_INVALID_ARGUMENT;
    case SMTPX_LIMIT_ADDR:
        return value >= 16 && value <= 65536 ? 0 : SMTPX_ERR_INVALID_ARGUMENT;
    case SMTPX_LIMIT_RCPTS:
        return value >= 1 && value <= (1u << 20) ? 0
                                                 : SMTPX_ERR_INVALID_ARGUMENT;
    case SMTPX_LIMIT_MSG_SIZE:
    case SMTPX_LIMIT_ERRORS:
    case SMTPX_LIMIT_JUNK:
    case SMTPX_LIMIT_MSGS:
    case SMTPX_LIMIT_AUTH_FAILURES:
        return 0;
    default:
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
}

int smtpx_config_set_limit(smtpx_config *cfg, smtpx_limit which, uint64_t value)
{
    int rc;

    if (cfg == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    rc = smtpx__conf_check_limit(which, value);
    if (rc < 0)
        return rc;
    if (cfg->frozen)
        return SMTPX_ERR_INVALID_STATE;
    cfg->limits[which] = value;
    return 0;
}

uint64_t smtpx_config_get_limit(const smtpx_config *cfg, smtpx_limit which)
{
    if (cfg == NULL || (unsigned)which >= SMTPX_LIMIT_COUNT)
        return 0;
    return cfg->limits[which];
}

int smtpx_config_set_timeout(smtpx_config *cfg, smtpx_timeout which,
                             uint32_t ms)
{
    if (cfg == NULL || (unsigned)which >= SMTPX_TIMEOUT_COUNT ||
        (ms == 0 && which != SMTPX_TIMEOUT_SESSION))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (cfg->frozen)
        return SMTPX_ERR_INVALID_STATE;
    cfg->timeouts[which] = ms;
    return 0;
}

uint32_t smtpx_config_get_timeout(const smtpx_config *cfg, smtpx_timeout which)
{
    if (cfg == NULL || (unsigned)which >= SMTPX_TIMEOUT_COUNT)
        return 0;
    return cfg->timeouts[which];
}

#define CONF_EXT_ALL ((SMTPX_EXT_AUTH << 1) - 1)

int smtpx_config_set_extensions(smtpx_config *cfg, unsigned mask)
{
    if (cfg == NULL || (mask & ~CONF_EXT_ALL) != 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    /* RFC 3030 3: BINARYMIME is usable only with BDAT. */
    if ((mask & SMTPX_EXT_BINARYMIME) && !(mask & SMTPX_EXT_CHUNKING))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (cfg->frozen)
        return SMTPX_ERR_INVALID_STATE;
    cfg->extensions = mask;
    return 0;
}

unsigned smtpx_config_get_extensions(const smtpx_config *cfg)
{
    return cfg->extensions;
}

int smtpx_config_set_policy(smtpx_config *cfg, smtpx_policy which, int value)
{
    int ok;

    if (cfg == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    switch (which) {
    case SMTPX_POLICY_BARE_LF:
        ok = value == SMTPX_BARE_LF_NORMALIZE || value == SMTPX_BARE_LF_REJECT;
        break;
    case SMTPX_POLICY_REQUIRE_HELO:
    case SMTPX_POLICY_REQUIRE_TLS:
    case SMTPX_POLICY_AUTH_CLEARTEXT:
        ok = value == 0 || value == 1;
        break;
    case SMTPX_POLICY_VRFY:
    case SMTPX_POLICY_EXPN:
        ok = value == 252 || value == 502;
        break;
    default:
        ok = 0;
    }
    if (!ok)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (cfg->frozen)
        return SMTPX_ERR_INVALID_STATE;
    cfg->policies[which] = value;
    return 0;
}

int smtpx_config_get_policy(const smtpx_config *cfg, smtpx_policy which)
{
    if (cfg == NULL || (unsigned)which >= SMTPX_POLICY_COUNT)
        return -1;
    return cfg->policies[which];
}

int smtpx_config_set_log(smtpx_config *cfg, smtpx_log_fn *fn, int level,
                         void *log_user_data)
{
    if (cfg == NULL || level < SMTPX_LOG_ERROR || level > SMTPX_LOG_DEBUG)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (cfg->frozen)
        return SMTPX_ERR_INVALID_STATE;
    cfg->log_fn = fn;
    cfg->log_level = level;
    cfg->log_user_data = log_user_data;
    return 0;
}

int smtpx_config_set_random(smtpx_config *cfg, smtpx_random_fn *fn,
                            void *rand_user_data)
{
    if (cfg == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (cfg->frozen)
        return SMTPX_ERR_INVALID_STATE;
    cfg->rand_fn = fn != NULL ? fn : smtpx__random_system;
    cfg->rand_user_data = fn != NULL ? rand_user_data : NULL;
    return 0;
}

int smtpx_config_set_sasl(smtpx_config *cfg, unsigned mechs)
{
    if (cfg == NULL || (mechs & ~SMTPX_SASL_ALL) != 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (cfg->frozen)
        return SMTPX_ERR_INVALID_STATE;
    cfg->sasl = mechs;
    return 0;
}

unsigned smtpx_config_get_sasl(const smtpx_config *cfg)
{
    return cfg != NULL ? cfg->sasl : 0;
}

int smtpx_config_freeze(smtpx_config *cfg)
{
    if (cfg == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (!cfg->frozen)
        cfg->fake_key_ok = cfg->rand_fn(cfg->fake_key, sizeof(cfg->fake_key),
                                        cfg->rand_user_data) == 0;
    cfg->frozen = 1;
    return 0;
}

int smtpx_config_is_frozen(const smtpx_config *cfg)
{
    return cfg != NULL && cfg->frozen;
}

smtpx_role smtpx_config_get_role(const smtpx_config *cfg)
{
    return cfg->role;
}
