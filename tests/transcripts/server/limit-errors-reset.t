# The error count starts again after an accepted message (as Postfix).
@limit ERRORS 2
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
C: FOO
S: 500 5.5.2 Command unrecognized
C+ MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nx\r\n.\r\n
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
E: data_begin DATA body=0 rcpts=1
S: 354 End data with <CR><LF>.<CR><LF>
E: data "x\r\n"
E: data_end size=3
S: 250 2.0.0 Ok
E: txn_end DONE
C: FOO
S: 500 5.5.2 Command unrecognized
C: NOOP
S: 250 2.0.0 Ok
C: FOO
S: 500 5.5.2 Command unrecognized
S: 421 4.7.0 Too many errors, closing connection
E: close SMTPX_ERR_LIMIT
