# Application replies are checked: a code a command cannot take becomes
# 451, an enhanced code of the wrong class is corrected, text cannot inject
# lines, multi-line text is allowed, and 421 ends the session.
@log
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
A: set mail 354 3.0.0 go on
C: MAIL FROM:<a@b.example>
E: mail <a@b.example>
L: error application reply 354 to MAIL is not allowed; using 451
S: 451 4.3.0 Local error in processing
A: set mail 550 2.1.0 Sender\r\n250 fake
C: MAIL FROM:<a@b.example>
E: mail <a@b.example>
S: 550-5.0.0 Sender 
S: 550 5.0.0 250 fake
A: set mail 250 2.1.0 Sender ok\nand a second line
C: MAIL FROM:<a@b.example>
E: mail <a@b.example>
S: 250-2.1.0 Sender ok
S: 250 2.1.0 and a second line
A: set rcpt 421 4.7.0 Go away now
C: RCPT TO:<c@d.example>
E: rcpt <c@d.example> #0
S: 421 4.7.0 Go away now
E: txn_end ABORTED
E: close SMTPX_ERR_CLOSED
