/*
 * conf - the inside of smtpx_config, for the modules that read it.
 */
#ifndef SMTPX_LIB_CONF_H
#define SMTPX_LIB_CONF_H

#include <libsmtpx/conf.h>

struct smtpx_config {
    smtpx_mem mem;
    smtpx_role role;
    int frozen;
    char *hostname;
    uint64_t limits[SMTPX_LIMIT_COUNT];
    uint32_t timeouts[SMTPX_TIMEOUT_COUNT];
    int policies[SMTPX_POLICY_COUNT];
    unsigned extensions;
    smtpx_log_fn *log_fn;
    int log_level;
    void *log_user_data;
    smtpx_random_fn *rand_fn;
    void *rand_user_data;
    unsigned sasl;
    /* Made at freeze: the key of SCRAM's stand-in salts for unknown users
     * (the same salt for the same name across sessions).  fake_key_ok 0:
     * the random source failed, and no mechanism that needs it is
     * offered. */
    uint8_t fake_key[32];
    int fake_key_ok;
};

/* Check a limit value; 0 or SMTPX_ERR_INVALID_ARGUMENT. */
int smtpx__conf_check_limit(smtpx_limit which, uint64_t value);

/* smtpx__conf_log - a line to the config's log function, if it has one
 * that takes level (for what happens outside a session: a call's wrong
 * argument).  cfg may be NULL. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void smtpx__conf_log(const smtpx_config *cfg, int level, const char *fmt, ...);

#endif
