# AUTH (RFC 4954): the mechanism is chosen when AUTH is written, from the
# EHLO reply (PLAIN over LOGIN); the initial response carries the
# credentials, which the trace never shows.  One AUTH per session.
A: start
A: ehlo c.test
A: auth - tim pw:tanstaaftanstaaf
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 AUTH LOGIN PLAIN
E: reply EHLO 250 mx\nAUTH LOGIN PLAIN
T: AUTH PLAIN [redacted]
B: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n
X: authmech -
S: 235 2.7.0 ok
E: reply AUTH 235 2.7.0 ok
X: authmech PLAIN
A: auth - tim pw:other
E: auth - tim pw:other returned SMTPX_ERR_INVALID_STATE
A: quit
C: QUIT
S: 221 bye
E: reply QUIT 221 bye
E: close SMTPX_OK
