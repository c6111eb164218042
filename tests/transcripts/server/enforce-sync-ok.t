# SMTPX_POLICY_ENFORCE_SYNC: a client that waits for each reply it must
# wait for, and pipelines only where RFC 2920 lets it (MAIL, RCPT and DATA
# as one group after an EHLO that offered PIPELINING; BDAT with its
# chunk), is served as usual.
@policy ENFORCE_SYNC 1
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
A: wait
C* MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nRCPT TO:<e@d.example>\r\nDATA\r\n
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
E: rcpt <e@d.example> #1
S: 250 2.1.5 Ok
E: data_begin DATA body=0 rcpts=2
S: 354 End data with <CR><LF>.<CR><LF>
C* Subject: hi\r\n\r\nhello\r\n.\r\n
E: data "Subject: hi\r\n\r\nhello\r\n"
E: data_end size=22
S: 250 2.0.0 Ok
E: txn_end DONE
C* MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nBDAT 5 LAST\r\nhello
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
E: data_begin BDAT body=0 rcpts=1
E: data "hello"
E: data_end size=5
S: 250 2.0.0 Ok
E: txn_end DONE
A: wait
C: QUIT
S: 221 2.0.0 mx.test closing connection
E: close SMTPX_OK
