# ESMTP parameters of MAIL and RCPT: SIZE (RFC 1870), BODY (RFC 6152),
# unknown ones (555), duplicates and bad values (501).  DSN is not offered
# by default, so its parameters are not recognized.
@limit ERRORS 100
@limit MSG_SIZE 1000
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 1000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
C: MAIL FROM:<a@b.example> SIZE=1001
S: 552 5.3.4 Message size exceeds fixed maximum message size
C: MAIL FROM:<a@b.example> SIZE=abc
S: 501 5.5.4 Bad SIZE parameter
C: MAIL FROM:<a@b.example> SIZE=
S: 501 5.5.4 Bad parameter syntax
C: MAIL FROM:<a@b.example> SIZE=12345678901234567890123
S: 501 5.5.4 Bad SIZE parameter
C: MAIL FROM:<a@b.example> BODY=9BIT
S: 501 5.5.4 Bad BODY parameter
C: MAIL FROM:<a@b.example> BODY=BINARYMIME
S: 501 5.5.4 Bad BODY parameter
C: MAIL FROM:<a@b.example> X-FOO=bar
S: 555 5.5.4 Unsupported parameter
C: MAIL FROM:<a@b.example> RET=FULL
S: 555 5.5.4 Unsupported parameter
C: MAIL FROM:<a@b.example> SIZE=1 SIZE=2
S: 501 5.5.4 Duplicate parameter
C: MAIL FROM:<a@b.example> -BAD
S: 501 5.5.4 Bad parameter syntax
C: MAIL FROM:<a@b.example> A=B=C
S: 501 5.5.4 Bad parameter syntax
C: MAIL FROM:<a@b.example> SIZE=1000 body=8bitmime
E: mail <a@b.example> SIZE=1000 body=8bitmime size=1000 body=2
S: 250 2.1.0 Ok
C: RCPT TO:<c@d.example> NOTIFY=SUCCESS
S: 555 5.5.4 Unsupported parameter
C: RCPT TO:<c@d.example>  
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
E: txn_end ABORTED
E: close SMTPX_ERR_CLOSED
