# LMTP with BDAT (RFC 2033, RFC 3030): the reply to LAST is one per
# accepted recipient, in order.
@role lmtp
A: start
A: ehlo c.test
A: txn a@b.example r1@d.example,r2@d.example,r3@d.example hello\r\n
A: quit
S: 220 mx LMTP
E: reply greeting 220 mx LMTP
C: LHLO c.test
S: 250-mx
S: 250-PIPELINING
S: 250 CHUNKING
E: reply LHLO 250 mx\nPIPELINING\nCHUNKING
C: MAIL FROM:<a@b.example>
C: RCPT TO:<r1@d.example>
C: RCPT TO:<r2@d.example>
C: RCPT TO:<r3@d.example>
C: BDAT 7 LAST
B: hello\r\n
C: QUIT
S: 250 ok
S: 250 ok
S: 550 5.1.1 no r2
S: 250 ok
S: 250 r1 delivered
S: 452 4.2.2 r3 over quota
S: 221 bye
E: reply MAIL 250 ok
E: reply RCPT 250 ok
E: reply RCPT 550 5.1.1 no r2
E: reply RCPT 250 ok
E: reply BODY 250 r1 delivered
E: reply BODY 452 4.2.2 r3 over quota
E: txn r1@d.example=ACCEPTED/BODY/250 r2@d.example=FAILED/RCPT/550 r3@d.example=DEFERRED/BODY/452
E: reply QUIT 221 bye
E: close SMTPX_OK
