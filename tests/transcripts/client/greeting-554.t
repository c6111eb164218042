# A refused greeting (RFC 5321 3.1): queued commands get local replies and
# the client says QUIT, as it should; nothing else is sent.
A: start
A: ehlo c.test
S: 554 5.7.1 no service for you
E: reply greeting 554 5.7.1 no service for you
E: reply EHLO 421 4.4.2 The session was closed [local]
C: QUIT
A: noop
E: noop returned SMTPX_ERR_INVALID_STATE
S: 221 bye
E: close SMTPX_ERR_CLOSED
X: done 1
