# PLAIN with an authorization identity: the session acts as it (auth_id)
# while the user is the one who proved the password; on_auth sees both.
# Without an initial response the server sends an empty challenge.
@auth
@user tim tanstaaftanstaaf
@policy AUTH_CLEARTEXT 1
@sasl PLAIN
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-AUTH PLAIN
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
C: AUTH PLAIN
S: 334 
X: state auth
C: Ym9zcwB0aW0AdGFuc3RhYWZ0YW5zdGFhZg==
E: auth PLAIN authzid=boss user=tim secret=good
S: 235 2.7.0 Authentication successful
X: state command
X: auth boss tim PLAIN
E: close SMTPX_ERR_CLOSED
