# In DATA the deadline moves with every piece of content; a paused
# session keeps its deadline.
@timeout DATA 1000
@timeout COMMAND 5000
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C+ EHLO c.test\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n
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
X: expiry +1000
A: time +900
C: some
X: expiry +1000
A: time +900
A: set data_end pause
C: .
E: data "some\r\n"
E: data_end size=6
X: expiry +1000
A: time +1000
S: 421 4.4.2 Timeout, closing connection
E: txn_end ABORTED
E: close SMTPX_ERR_TIMEOUT
A: reply 250 late
E: reply returned SMTPX_ERR_CLOSED
