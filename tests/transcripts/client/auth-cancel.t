# A challenge that is not base64 (or that the mechanism cannot answer) is
# cancelled with "*" (RFC 4954 4); the server's 501 is the reply.  A
# token mechanism answers an error challenge with an empty response
# (XOAUTH2), then gets the failure.
A: start
A: ehlo c.test
A: auth LOGIN tim pw:secret
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 AUTH LOGIN XOAUTH2
E: reply EHLO 250 mx\nAUTH LOGIN XOAUTH2
C: AUTH LOGIN
S: 334 not*base64
C: *
S: 501 5.7.0 cancelled
E: reply AUTH 501 5.7.0 cancelled
A: auth - tim tok:tok123
T: AUTH XOAUTH2 [redacted]
B: AUTH XOAUTH2 dXNlcj10aW0BYXV0aD1CZWFyZXIgdG9rMTIzAQE=\r\n
S: 334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=
T: [redacted]
B: \r\n
S: 535 5.7.8 bad token
E: reply AUTH 535 5.7.8 bad token
E: close SMTPX_ERR_CLOSED
