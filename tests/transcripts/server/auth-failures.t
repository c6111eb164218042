# Wrong credentials get 535 5.7.8 (RFC 4954 6); a cancelled exchange
# ("*") gets 501 5.7.0 and bad base64 501 5.5.2; each counts, and the
# AUTH_FAILURES-th failure ends the session with 421 4.7.0.  Logs name
# the mechanism and the client, never the secret.
@auth
@user tim tanstaaftanstaaf
@policy AUTH_CLEARTEXT 1
@sasl PLAIN LOGIN
@limit AUTH_FAILURES 4
@log
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-AUTH PLAIN LOGIN
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
C: AUTH PLAIN AHRpbQB3cm9uZw==
E: auth PLAIN authzid= user=tim secret=bad
L: notice AUTH PLAIN failed (535) from 192.0.2.7
S: 535 5.7.8 Authentication credentials invalid
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: *
L: notice AUTH LOGIN failed (501) from 192.0.2.7
S: 501 5.7.0 Authentication cancelled
C: AUTH PLAIN not#base64
L: notice AUTH PLAIN failed (501) from 192.0.2.7
S: 501 5.5.2 Invalid base64 in initial response
X: state command
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: dGlt
S: 334 UGFzc3dvcmQ6
C: d3Jvbmc=
E: auth LOGIN authzid= user=tim secret=bad
L: notice AUTH LOGIN failed (535) from 192.0.2.7
S: 535 5.7.8 Authentication credentials invalid
L: notice too many authentication failures
S: 421 4.7.0 Too many authentication failures
E: close SMTPX_ERR_LIMIT
