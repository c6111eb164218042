# Garbage instead of a reply: a clear protocol error, never a crash.
A: start
A: ehlo c.test
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: HTTP/1.1 400 Bad Request
E: reply EHLO 451 4.3.0 Local error in the client [local]
E: close SMTPX_ERR_PROTO
