# LOGIN answers the challenges in order (user name, then password)
# whatever their text says; each response is redacted in the trace.  A
# 535 is the reply to AUTH and the session goes on.
A: start
A: ehlo c.test
A: auth - tim pw:tanstaaftanstaaf boss
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 AUTH LOGIN
E: reply EHLO 250 mx\nAUTH LOGIN
C: AUTH LOGIN
S: 334 VXNlciBOYW1l
T: [redacted]
B: dGlt\r\n
S: 334 UGFzc3dvcmQ6
T: [redacted]
B: dGFuc3RhYWZ0YW5zdGFhZg==\r\n
S: 535 5.7.8 no
E: reply AUTH 535 5.7.8 no
X: authmech -
A: noop
C: NOOP
S: 250 ok
E: reply NOOP 250 ok
E: close SMTPX_ERR_CLOSED
