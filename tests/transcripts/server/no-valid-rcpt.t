# RFC 5321 3.3 and RFC 2920 3.1: when every recipient was refused, the
# pipelined DATA gets 554.  The client waits for that reply (DATA ends a
# pipelining group) and goes on with commands; one that does not wait is
# refused-pipelining.t.
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
A: set rcpt 550 5.1.1 Unknown
C+ MAIL FROM:<a@x.example>\r\nRCPT TO:<z@x.example>\r\nDATA\r\n
E: mail <a@x.example>
S: 250 2.1.0 Ok
E: rcpt <z@x.example> #0
S: 550 5.1.1 Unknown
S: 554 5.5.1 No valid recipients
A: wait
C: RSET
E: txn_end RESET
S: 250 2.0.0 Ok
C: DATA
S: 503 5.5.1 Need MAIL command
A: wait
C: MAIL FROM:<a@x.example>
E: mail <a@x.example>
S: 250 2.1.0 Ok
C: DATA
S: 503 5.5.1 Need RCPT command
A: wait
C: QUIT
S: 221 2.0.0 mx.test closing connection
E: txn_end ABORTED
E: close SMTPX_OK
