# LMTP (RFC 2033): LHLO instead of HELO/EHLO, and after the content one
# reply per accepted recipient, in order.
@role lmtp
E: connect 192.0.2.7 41000
S: 220 mx.test LMTP
C: EHLO c.test
S: 500 5.5.2 Command unrecognized
C: LHLO c.test
E: helo LHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
X: protocol LMTP
A: set rcpt 550 5.1.1 Unknown
C+ MAIL FROM:<a@b.example>\r\nRCPT TO:<gone@d.example>\r\nRCPT TO:<one@d.example>\r\nRCPT TO:<two@d.example>\r\nRCPT TO:<three@d.example>\r\nDATA\r\n
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <gone@d.example> #0
S: 550 5.1.1 Unknown
E: rcpt <one@d.example> #0
S: 250 2.1.5 Ok
E: rcpt <two@d.example> #1
S: 250 2.1.5 Ok
E: rcpt <three@d.example> #2
S: 250 2.1.5 Ok
E: data_begin DATA body=0 rcpts=3
S: 354 End data with <CR><LF>.<CR><LF>
A: lmtp 1 452 4.2.2 Mailbox full
C: hi
C: .
E: data "hi\r\n"
E: data_end size=4
S: 250 2.0.0 Ok
S: 452 4.2.2 Mailbox full
S: 250 2.0.0 Ok
E: txn_end DONE
X: msgs 1
A: set data_end pause
C+ MAIL FROM:<a@b.example>\r\nRCPT TO:<one@d.example>\r\nRCPT TO:<two@d.example>\r\nDATA\r\nyo\r\n.\r\n
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <one@d.example> #0
S: 250 2.1.5 Ok
E: rcpt <two@d.example> #1
S: 250 2.1.5 Ok
E: data_begin DATA body=0 rcpts=2
S: 354 End data with <CR><LF>.<CR><LF>
E: data "yo\r\n"
E: data_end size=4
A: lmtp 0 550 5.7.1 Refused by filter
A: reply 250 2.0.0 Delivered
S: 550 5.7.1 Refused by filter
S: 250 2.0.0 Delivered
E: txn_end DONE
X: msgs 2
E: close SMTPX_ERR_CLOSED
