# HELO: a plain SMTP session (no extension list, no parameters), the
# argument checks, and a greeting the application refuses.
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: HELO
S: 501 5.5.4 Syntax: HELO hostname
C: EHLO
S: 501 5.5.4 Syntax: EHLO hostname
A: set helo 550 5.7.1 Go away
C: HELO bad.example
E: helo HELO bad.example
S: 550 5.7.1 Go away
X: helo (null)
C: MAIL FROM:<a@b.example>
S: 503 5.5.1 Send HELO/EHLO first
C: HELO client.test
E: helo HELO client.test
S: 250 mx.test
X: protocol SMTP
C: MAIL FROM:<a@b.example> SIZE=10
S: 555 5.5.4 Parameters not recognized after HELO
C: MAIL FROM:<a@b.example>
E: mail <a@b.example>
S: 250 2.1.0 Ok
C: BDAT 3 LAST
S: 503 5.5.1 Send EHLO first
C: EHLO again.test
E: txn_end RESET
E: helo EHLO again.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
X: protocol ESMTP
C: LHLO x.test
S: 500 5.5.2 Command unrecognized
E: close SMTPX_ERR_CLOSED
