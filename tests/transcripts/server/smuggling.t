# SMTP smuggling: only <CRLF>.<CRLF> ends DATA.  Each of these end-marker
# look-alikes stays inside the one message, with its line ends made CRLF,
# so the MAIL/RCPT/DATA "smuggled" after it are content, not commands.
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
C+ Subject: one\r\n\r\nA\n.\nMAIL FROM:<evil@x.example>\r\n
C+ B\n.\r\nRCPT TO:<victim@x.example>\r\n
C+ C\r\n.\nDATA\r\n
C+ D\r.\rX\r\n
C+ E\r\n.\rY\r\n
C+ F\r.\r\nZ\r\n
C+ G\r\n.\r\r\nW\r\n
C+ \r\n.\r\n
E: data "Subject: one\r\n\r\nA\r\n.\r\nMAIL FROM:<evil@x.example>\r\nB\r\n.\r\nRCPT TO:<victim@x.example>\r\nC\r\n.\r\nDATA\r\nD\r\n.\r\nX\r\nE\r\n.\r\nY\r\nF\r\n.\r\nZ\r\nG\r\n.\r\n\r\nW\r\n\r\n"
E: data_end size=136
S: 250 2.0.0 Ok
E: txn_end DONE
X: msgs 1
E: close SMTPX_ERR_CLOSED
