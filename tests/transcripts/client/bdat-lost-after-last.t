# RFC 5321 6.1 with BDAT: the connection is lost after the LAST chunk was
# written: the accepted recipient's outcome is unknown.
A: start
A: ehlo c.test
A: txn a@b.example r1@d.example,r2@d.example hello\r\n
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250-PIPELINING
S: 250 CHUNKING
E: reply EHLO 250 mx\nPIPELINING\nCHUNKING
C: MAIL FROM:<a@b.example>
C: RCPT TO:<r1@d.example>
C: RCPT TO:<r2@d.example>
C: BDAT 7 LAST
B: hello\r\n
S: 250 ok
S: 250 ok
S: 450 4.2.1 busy
E: reply MAIL 250 ok
E: reply RCPT 250 ok
E: reply RCPT 450 4.2.1 busy
A: eof
E: reply BODY 421 4.4.2 Connection lost after the whole message was sent: delivery status unknown [local]
E: txn r1@d.example=UNKNOWN/BODY/421 r2@d.example=DEFERRED/RCPT/450
E: close SMTPX_ERR_EOF
