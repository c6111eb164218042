# TLS required (RFC 3207 4, the client's side): without TLS neither MAIL
# nor AUTH is written; the client says QUIT and the session ends with
# SMTPX_ERR_TLS_REQUIRED, the recipients deferred.
@policy REQUIRE_TLS 1
A: start
A: ehlo c.test
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 AUTH PLAIN
E: reply EHLO 250 mx\nAUTH PLAIN
A: auth - tim pw:x
C: QUIT
E: reply AUTH 454 4.7.10 TLS is required but not active: nothing was sent [local]
E: close SMTPX_ERR_TLS_REQUIRED
