# The REQUIRE_TLS policy: MAIL and AUTH get 530 5.7.0 until TLS is up
# (RFC 3207 4), even when AUTH in clear text is allowed.
@auth
@tls
@user tim tanstaaftanstaaf
@sasl PLAIN
@policy REQUIRE_TLS 1
@policy AUTH_CLEARTEXT 1
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-STARTTLS
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
C: MAIL FROM:<a@c.test>
S: 530 5.7.0 Must issue a STARTTLS command first
C: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm
S: 530 5.7.0 Must issue a STARTTLS command first
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
A: tls
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
C: MAIL FROM:<a@c.test>
E: mail <a@c.test>
S: 250 2.1.0 Ok
E: txn_end ABORTED
E: close SMTPX_ERR_CLOSED
