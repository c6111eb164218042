# Message size: an over-size message is read to its end, then refused
# with 552 (RFC 5321 4.5.3.1.10, RFC 1870); content already handed on is
# withdrawn by on_txn_end REFUSED.  The session goes on.
@limit MSG_SIZE 20
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 20
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
C+ MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
E: data_begin DATA body=0 rcpts=1
S: 354 End data with <CR><LF>.<CR><LF>
C: 0123456789
C: 0123456789
C: 0123456789
C: .
E: data "0123456789\r\n01234567"
E: txn_end REFUSED
S: 552 5.3.4 Message size exceeds fixed maximum message size
C+ MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
E: data_begin DATA body=0 rcpts=1
S: 354 End data with <CR><LF>.<CR><LF>
# exactly 20 octets is allowed
C: 0123456789abcdefgh
C: .
E: data "0123456789abcdefgh\r\n"
E: data_end size=20
S: 250 2.0.0 Ok
E: txn_end DONE
E: close SMTPX_ERR_CLOSED
