# Shutdown DRAIN lets the transaction in progress finish, then says 421.
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C+ EHLO c.test\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nbody\r\n
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
A: shutdown drain
X: want_read 1
C+ more\r\n.\r\nMAIL FROM:<next@b.example>\r\n
E: data "body\r\nmore\r\n"
E: data_end size=12
S: 250 2.0.0 Ok
E: txn_end DONE
S: 421 4.3.2 Service shutting down
E: close SMTPX_ERR_CLOSED
