# AUTH PLAIN (RFC 4954, RFC 4616) with an initial response: offered in
# the EHLO reply (here in clear text, which the AUTH_CLEARTEXT policy
# allows), checked by on_auth, which alone says 235; the initial response
# never reaches a trace; a second AUTH is refused; the protocol becomes
# ESMTPA and MAIL takes the AUTH= parameter (RFC 4954 5).
@auth
@user tim tanstaaftanstaaf
@policy AUTH_CLEARTEXT 1
@trace
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO c.test
T: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-AUTH SCRAM-SHA-256 PLAIN LOGIN
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
X: auth (null) (null) -
X: protocol ESMTP
C: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm
T: AUTH PLAIN [redacted]
E: auth PLAIN authzid= user=tim secret=good
S: 235 2.7.0 Authentication successful
X: auth tim tim PLAIN
X: protocol ESMTPA
C: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm
T: AUTH PLAIN [redacted]
S: 503 5.5.1 Already authenticated
C: MAIL FROM:<tim@c.test> AUTH=tim+40c.test
T: MAIL FROM:<tim@c.test> AUTH=tim+40c.test
E: mail <tim@c.test> AUTH=tim+40c.test auth=tim+40c.test
S: 250 2.1.0 Ok
C: QUIT
T: QUIT
S: 221 2.0.0 mx.test closing connection
E: txn_end ABORTED
E: close SMTPX_OK
