# With the bare-LF policy set to reject, the same message is read to its
# real end and refused with 550 5.5.2; nothing inside it becomes a command.
@policy BARE_LF reject
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
C+ MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
E: data_begin DATA body=0 rcpts=1
S: 354 End data with <CR><LF>.<CR><LF>
C+ Subject: one\r\n\r\nA\n.\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<v@x.example>\r\nDATA\r\nhi\r\n.\r\n
E: data "Subject: one\r\n\r\nA"
E: txn_end REFUSED
S: 550 5.5.2 Message contains bare CR or LF (RFC 5321 2.3.8)
C+ NOOP\nNOOP\r\n
S: 500 5.5.2 Bare <LF> in command
S: 250 2.0.0 Ok
E: close SMTPX_ERR_CLOSED
