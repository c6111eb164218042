# A 421 in the middle of a pipelined BDAT transaction (the chunk already
# written): the server goes away; the recipient keeps the 421, and what was
# written gets local replies.
A: start
A: ehlo c.test
A: txn a@b.example r1@d.example hello\r\n
A: quit
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250-PIPELINING
S: 250 CHUNKING
E: reply EHLO 250 mx\nPIPELINING\nCHUNKING
C: MAIL FROM:<a@b.example>
C: RCPT TO:<r1@d.example>
C: BDAT 7 LAST
B: hello\r\n
C: QUIT
A: wait
S: 250 ok
S: 421 4.3.2 going down
E: reply MAIL 250 ok
E: reply RCPT 421 4.3.2 going down
E: reply BODY 421 4.4.2 Connection lost after the whole message was sent: delivery status unknown [local]
E: txn r1@d.example=DEFERRED/RCPT/421
E: reply QUIT 421 4.4.2 The session was closed [local]
E: close SMTPX_ERR_CLOSED
