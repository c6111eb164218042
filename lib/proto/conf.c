/*
 * conf - the shared configuration object.
 *
 * Exports smtpx_config_new(), smtpx_config_free(), the setters and getters,
 * and smtpx_config_freeze().  Invariant: once frozen a config is never
 * written again, so sessions on any thread may read it without locks.
 * Defaults follow RFC 5321 4.5.3 and Postfix; conf.h explains each.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/crypto.h"
#include "base/mem.h"
#include "proto/cmd.h"
#include "proto/conf.h"

/* The tables below are made from the maps in <libsmtpx/conf.h>; the
 * numbers' reasons (RFC 5321 4.5.3, Postfix) are documented there. */
typedef char conf_limit_count_ok[(
#define CONF_LIMIT_ONE(name, id, dflt, min, max) +1
                                     0 SMTPX_LIMIT_MAP(CONF_LIMIT_ONE)) ==
                                         SMTPX_LIMIT_COUNT
                                     ? 1
                                     : -1];
typedef char conf_timeout_count_ok[(
#define CONF_TIMEOUT_ONE(name, id, dflt) +1
                                       0 SMTPX_TIMEOUT_MAP(CONF_TIMEOUT_ONE)) ==
                                           SMTPX_TIMEOUT_COUNT
                                       ? 1
                                       : -1];
typedef char conf_policy_count_ok[(
#define CONF_POLICY_ONE(name, id, dflt, a, b) +1
                                      0 SMTPX_POLICY_MAP(CONF_POLICY_ONE)) ==
                                          SMTPX_POLICY_COUNT
                                      ? 1
                                      : -1];

static const struct {
    const char *name;
    uint64_t dflt, min, max;
} conf_limits[SMTPX_LIMIT_COUNT] = {
#define CONF_LIMIT_ENTRY(name, id, dflt, min, max)                             \
    [id] = {#name, dflt, min, max},
    SMTPX_LIMIT_MAP(CONF_LIMIT_ENTRY)
#undef CONF_LIMIT_ENTRY
};

static const struct {
    const char *name;
    uint32_t dflt;
} conf_timeouts[SMTPX_TIMEOUT_COUNT] = {
#define CONF_TIMEOUT_ENTRY(name, id, dflt) [id] = {#name, dflt},
    SMTPX_TIMEOUT_MAP(CONF_TIMEOUT_ENTRY)
#undef CONF_TIMEOUT_ENTRY
};

static const struct {
    const char *name;
    int dflt, a, b;
} conf_policies[SMTPX_POLICY_COUNT] = {
#define CONF_POLICY_ENTRY(name, id, dflt, a, b) [id] = {#name, dflt, a, b},
    SMTPX_POLICY_MAP(CONF_POLICY_ENTRY)
#undef CONF_POLICY_ENTRY
};

const char *smtpx_limit_name(smtpx_limit which)
{
    return (unsigned)which < SMTPX_LIMIT_COUNT ? conf_limits[which].name : NULL;
}

const char *smtpx_timeout_name(smtpx_timeout which)
{
    return (unsigned)which < SMTPX_TIMEOUT_COUNT ? conf_timeouts[which].name
                                                 : NULL;
}

const char *smtpx_policy_name(smtpx_policy which)
{
    return (unsigned)which < SMTPX_POLICY_COUNT ? conf_policies[which].name
                                                : NULL;
}

int smtpx_config_new(smtpx_config **out, smtpx_role role, const smtpx_mem *mem)
{
    smtpx_config *cfg;
    size_t i;

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
    for (i = 0; i < SMTPX_LIMIT_COUNT; i++)
        cfg->limits[i] = conf_limits[i].dflt;
    for (i = 0; i < SMTPX_TIMEOUT_COUNT; i++)
        cfg->timeouts[i] = conf_timeouts[i].dflt;
    for (i = 0; i < SMTPX_POLICY_COUNT; i++)
        cfg->policies[i] = conf_policies[i].dflt;
    /* A server offers what puts no duty on the application; a client uses
     * whatever the server offers, when a transaction needs it. */
    cfg->extensions =
        role == SMTPX_ROLE_CLIENT || role == SMTPX_ROLE_LMTP_CLIENT
            ? SMTPX_EXT_ALL
            : SMTPX_EXT_DEFAULT;
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
    if ((unsigned)which >= SMTPX_LIMIT_COUNT)
        return SMTPX_ERR_INVALID_ARGUMENT;
    /* TEXT_LINE: 0 is "none", else at least 64 (a line must hold a
     * reasonable header field). */
    if (which == SMTPX_LIMIT_TEXT_LINE)
        return value == 0 || value >= 64 ? 0 : SMTPX_ERR_INVALID_ARGUMENT;
    if (value < conf_limits[which].min ||
        (conf_limits[which].max != 0 && value > conf_limits[which].max))
        return SMTPX_ERR_INVALID_ARGUMENT;
    return 0;
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

int smtpx_config_set_extensions(smtpx_config *cfg, unsigned mask)
{
    if (cfg == NULL || (mask & ~SMTPX_EXT_ALL) != 0)
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
    if (cfg == NULL || (unsigned)which >= SMTPX_POLICY_COUNT ||
        (value != conf_policies[which].a && value != conf_policies[which].b))
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

void smtpx__conf_log(const smtpx_config *cfg, int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (cfg == NULL || cfg->log_fn == NULL || level > cfg->log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cfg->log_fn(level, msg, cfg->log_user_data);
}
