# The client goes away in the middle of a transaction.
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C+ EHLO c.test\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\npartial
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
E: data_begin DATA body=0 rcpts=1
S: 354 End data with <CR><LF>.<CR><LF>
A: eof
E: data "partial"
E: txn_end ABORTED
E: close SMTPX_ERR_EOF
X: done 1
