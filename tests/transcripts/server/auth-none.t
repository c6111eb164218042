# Without on_auth there is no AUTH: not offered, 502 (as before).
@policy AUTH_CLEARTEXT 1
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
C: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm
S: 502 5.5.1 Command not implemented
C: MAIL FROM:<a@c.test> AUTH=<>
S: 555 5.5.4 Unsupported parameter
E: close SMTPX_ERR_CLOSED
