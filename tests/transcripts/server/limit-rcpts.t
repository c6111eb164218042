# Recipients per message: beyond the limit each RCPT gets 452 4.5.3
# (RFC 5321 4.5.3.1.10), which does not count as an error.
@limit RCPTS 2
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
C+ MAIL FROM:<a@b.example>\r\nRCPT TO:<r1@b.example>\r\nRCPT TO:<r2@b.example>\r\nRCPT TO:<r3@b.example>\r\nRCPT TO:<r4@b.example>\r\nRCPT TO:<r5@b.example>\r\nDATA\r\n
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <r1@b.example> #0
S: 250 2.1.5 Ok
E: rcpt <r2@b.example> #1
S: 250 2.1.5 Ok
S: 452 4.5.3 Too many recipients
S: 452 4.5.3 Too many recipients
S: 452 4.5.3 Too many recipients
E: data_begin DATA body=0 rcpts=2
S: 354 End data with <CR><LF>.<CR><LF>
C: .
E: data_end size=0
S: 250 2.0.0 Ok
E: txn_end DONE
E: close SMTPX_ERR_CLOSED
