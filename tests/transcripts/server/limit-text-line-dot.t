# RFC 5321 4.5.3.1.6: the text line limit does not count the dot a
# client duplicates for transparency.  With TEXT_LINE 64, a line may hold
# 62 octets: one that begins with "." arrives as 63 and is fine; 63
# octets of content are refused, with or without a leading dot.
@limit TEXT_LINE 64
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
C: ..1234567890123456789012345678901234567890123456789012345678901
C: 12345678901234567890123456789012345678901234567890123456789012
C: .
E: data ".1234567890123456789012345678901234567890123456789012345678901\r\n12345678901234567890123456789012345678901234567890123456789012\r\n"
E: data_end size=128
S: 250 2.0.0 Ok
E: txn_end DONE
C+ MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
E: data_begin DATA body=0 rcpts=1
S: 354 End data with <CR><LF>.<CR><LF>
C: ..12345678901234567890123456789012345678901234567890123456789012
C: .
E: data ".12345678901234567890123456789012345678901234567890123456789012\r\n"
E: txn_end REFUSED
S: 550 5.5.2 Message has a line too long (RFC 5321 4.5.3.1.6)
C: QUIT
S: 221 2.0.0 mx.test closing connection
E: close SMTPX_OK
