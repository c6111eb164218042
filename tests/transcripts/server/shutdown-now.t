# Shutdown NOW: 421 at once; a transaction and a pending pause are given up.
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
A: set rcpt pause
C+ EHLO c.test\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n
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
A: shutdown now
E: txn_end ABORTED
S: 421 4.3.2 Service shutting down
E: close SMTPX_ERR_CLOSED
A: reply 250 too late
E: reply returned SMTPX_ERR_CLOSED
