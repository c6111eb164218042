# A multi-line reply whose code changes (RFC 5321 4.2.1) is refused.
A: start
A: ehlo c.test
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 251 PIPELINING
E: reply EHLO 451 4.3.0 Local error in the client [local]
E: close SMTPX_ERR_PROTO
