# By default AUTH is offered, and taken, only under TLS (RFC 4954 4, 14):
# before STARTTLS the EHLO reply has no AUTH and AUTH gets 538 5.7.11;
# after the handshake the client greets again and AUTH is there.
@auth
@tls
@user tim tanstaaftanstaaf
@sasl PLAIN
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
C: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm
S: 538 5.7.11 Encryption required for requested authentication mechanism
C: MAIL FROM:<a@c.test> AUTH=<>
S: 555 5.5.4 Unsupported parameter
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
A: tls
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
C: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm
E: auth PLAIN authzid= user=tim secret=good
S: 235 2.7.0 Authentication successful
X: protocol ESMTPSA
C: MAIL FROM:<a@c.test> AUTH=<>
E: mail <a@c.test> AUTH=<> auth=<>
S: 250 2.1.0 Ok
C: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm
S: 503 5.5.1 Already authenticated
E: txn_end ABORTED
E: close SMTPX_ERR_CLOSED
