# AUTH out of place: without a callback it is not implemented (502);
# before EHLO 503; an unknown or disabled mechanism 504; inside a
# transaction 503 (RFC 4954 4); bad syntax 501.
@auth
@user tim tanstaaftanstaaf
@policy AUTH_CLEARTEXT 1
@sasl PLAIN
@limit ERRORS 100
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm
S: 503 5.5.1 Send EHLO first
C: HELO c.test
E: helo HELO c.test
S: 250 mx.test
C: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm
S: 503 5.5.1 Send EHLO first
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
C: AUTH
S: 501 5.5.4 Syntax: AUTH mechanism [initial-response]
C: AUTH PLAIN a b
S: 501 5.5.4 Syntax: AUTH mechanism [initial-response]
C: AUTH LOGIN
S: 504 5.5.4 Unrecognized authentication type
C: AUTH GSSAPI
S: 504 5.5.4 Unrecognized authentication type
C: MAIL FROM:<a@c.test>
E: mail <a@c.test>
S: 250 2.1.0 Ok
C: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm
S: 503 5.5.1 AUTH not permitted during a mail transaction
C: RSET
E: txn_end RESET
S: 250 2.0.0 Ok
C: auth plain AHRpbQB0YW5zdGFhZnRhbnN0YWFm
E: auth PLAIN authzid= user=tim secret=good
S: 235 2.7.0 Authentication successful
E: close SMTPX_ERR_CLOSED
