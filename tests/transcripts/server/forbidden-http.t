# A browser made to post an SMTP dialogue to port 25 (a cross-protocol
# attack): the request line is not SMTP, so the session ends there and the
# dialogue in the body is never read.  Postfix smtpd_forbidden_commands.
@log
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C+ POST / HTTP/1.1\r\nHost: mx.test:25\r\nUser-Agent: Mozilla/5.0\r\nContent-Type: text/plain\r\nContent-Length: 90\r\n\r\nEHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nevil\r\n.\r\n
L: notice forbidden command from 192.0.2.7 (another protocol?): POST / HTTP/1.1
S: 421 4.7.0 Not an SMTP command, closing connection
E: close SMTPX_ERR_PROTO
X: want_read 0
