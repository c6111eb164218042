# LOGIN: the user name and the password in two challenges; an initial
# response is the user name.  A malformed PLAIN message is refused with
# 501 5.5.2 (no user name, an empty initial response "=").
@auth
@user tim tanstaaftanstaaf
@policy AUTH_CLEARTEXT 1
@sasl PLAIN LOGIN
@limit AUTH_FAILURES 0
@trace
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO c.test
T: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-AUTH PLAIN LOGIN
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
C: AUTH PLAIN AABwdw==
T: AUTH PLAIN [redacted]
S: 501 5.5.2 Invalid authentication exchange
C: AUTH PLAIN =
T: AUTH PLAIN [redacted]
S: 501 5.5.2 Invalid authentication exchange
C: AUTH LOGIN dGlt
T: AUTH LOGIN [redacted]
S: 334 UGFzc3dvcmQ6
C: dGFuc3RhYWZ0YW5zdGFhZg==
T: [redacted]
E: auth LOGIN authzid= user=tim secret=good
S: 235 2.7.0 Authentication successful
X: auth tim tim LOGIN
E: close SMTPX_ERR_CLOSED
