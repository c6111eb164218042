# CHUNKING (RFC 3030): BDAT chunks are taken byte for byte (a "." line and
# bare line ends are content), each chunk is answered, and LAST ends the
# message.  Chunks may be pipelined.
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C+ EHLO c.test\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n
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
C+ BDAT 10\r\nA\r\n.\r\nB\nC\rBDAT 0\r\nBDAT 4 last\r\nD\r\n\x00
E: data_begin BDAT body=0 rcpts=1
E: data "A\r\n.\r\nB\nC\r"
S: 250 2.0.0 10 octets received
S: 250 2.0.0 10 octets received
E: data "D\r\n\x00"
E: data_end size=14
S: 250 2.0.0 Ok
E: txn_end DONE
C+ MAIL FROM:<a@b.example> BODY=8BITMIME\r\nRCPT TO:<c@d.example>\r\nBDAT 0 LAST\r\n
E: mail <a@b.example> BODY=8BITMIME body=2
S: 250 2.1.0 Ok
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
E: data_begin BDAT body=2 rcpts=1
E: data_end size=0
S: 250 2.0.0 Ok
E: txn_end DONE
X: msgs 2
E: close SMTPX_ERR_CLOSED
