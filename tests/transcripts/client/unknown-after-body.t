# RFC 5321 6.1: the connection is lost after the whole message went out;
# the accepted recipient's outcome is unknown (not deferred, not done).
A: start
A: ehlo c.test
A: txn a@b.example r1@d.example,r2@d.example hello\n
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 PIPELINING
E: reply EHLO 250 mx\nPIPELINING
C: MAIL FROM:<a@b.example>
C: RCPT TO:<r1@d.example>
C: RCPT TO:<r2@d.example>
C: DATA
S: 250 ok
S: 250 ok
S: 450 4.2.1 busy
S: 354 go
E: reply MAIL 250 ok
E: reply RCPT 250 ok
E: reply RCPT 450 4.2.1 busy
E: reply DATA 354 go
B: hello\r\n
C: .
A: eof
E: reply BODY 421 4.4.2 Connection lost after the whole message was sent: delivery status unknown [local]
E: txn r1@d.example=UNKNOWN/BODY/421 r2@d.example=DEFERRED/RCPT/450
E: close SMTPX_ERR_EOF
