# No mechanism both sides support (the server offers none the client may
# use, or no AUTH at all): nothing is sent, the reply is local, and the
# client may try again.
A: start
A: ehlo c.test
A: auth CRAM-MD5 tim pw:x
A: auth - tim tok:abc
E: auth - tim tok:abc returned SMTPX_ERR_INVALID_STATE
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 AUTH GSSAPI PLAIN
E: reply EHLO 250 mx\nAUTH GSSAPI PLAIN
E: reply AUTH 504 5.5.4 No authentication mechanism that both sides support [local]
A: auth - tim tok:abc
E: reply AUTH 504 5.5.4 No authentication mechanism that both sides support [local]
A: auth - tim pw:x
T: AUTH PLAIN [redacted]
B: AUTH PLAIN AHRpbQB4\r\n
S: 235 ok
E: reply AUTH 235 ok
E: close SMTPX_ERR_CLOSED
