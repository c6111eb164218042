# Asynchronous decisions: a callback pauses, the session holds the
# pipelined input and stops reading; the application's later reply lets
# it go on in order.
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
A: set rcpt pause
C+ MAIL FROM:<a@b.example>\r\nRCPT TO:<slow@d.example>\r\nRCPT TO:<fast@d.example>\r\nDATA\r\n
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <slow@d.example> #0
X: want_read 0
X: held 32
X: expiry +300000
A: time +1000
X: expiry +299000
A: reply 450 4.2.1 Try again later
S: 450 4.2.1 Try again later
E: rcpt <fast@d.example> #0
S: 250 2.1.5 Ok
E: data_begin DATA body=0 rcpts=1
S: 354 End data with <CR><LF>.<CR><LF>
X: want_read 1
X: held 0
A: set data_end pause
C: hello
C: .
E: data "hello\r\n"
E: data_end size=7
X: want_read 0
A: reply 250 2.0.0 Queued as 42
S: 250 2.0.0 Queued as 42
E: txn_end DONE
A: reply 250 again
E: reply returned SMTPX_ERR_INVALID_STATE
E: close SMTPX_ERR_CLOSED
