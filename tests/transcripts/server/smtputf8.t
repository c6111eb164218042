# RFC 6531: UTF-8 addresses need SMTPUTF8 on MAIL; malformed UTF-8 is a
# syntax error either way.
@limit ERRORS 100
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
C+ MAIL FROM:<j\xC3\xB8rgen@example.org>\r\n
S: 553 5.6.7 Non-ASCII address needs SMTPUTF8
C+ MAIL FROM:<j\xC3\xB8rgen@example.org> SMTPUTF8\r\n
E: mail <j\xC3\xB8rgen@example.org> SMTPUTF8 utf8
S: 250 2.1.0 Ok
C+ RCPT TO:<\xE7\x94\xA8\xE6\x88\xB7@\xE4\xBE\x8B\xE5\xAD\x90.\xE6\xB5\x8B\xE8\xAF\x95>\r\n
E: rcpt <\xE7\x94\xA8\xE6\x88\xB7@\xE4\xBE\x8B\xE5\xAD\x90.\xE6\xB5\x8B\xE8\xAF\x95> #0
S: 250 2.1.5 Ok
C+ RCPT TO:<bad\xC3@example.org>\r\n
S: 501 5.1.3 Bad recipient address syntax
C: RSET
E: txn_end RESET
S: 250 2.0.0 Ok
C+ MAIL FROM:<a@b.example>\r\nRCPT TO:<j\xC3\xB8rgen@example.org>\r\n
E: mail <a@b.example>
S: 250 2.1.0 Ok
S: 553 5.6.7 Non-ASCII address needs SMTPUTF8
C: MAIL FROM:<a@b.example> SMTPUTF8=yes
S: 503 5.5.1 Nested MAIL command
E: txn_end ABORTED
E: close SMTPX_ERR_CLOSED
