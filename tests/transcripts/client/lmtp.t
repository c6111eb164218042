# LMTP (RFC 2033): LHLO, and after the content one reply per accepted
# recipient, each deciding its own recipient.
@role lmtp
A: start
A: ehlo c.test
A: txn a@b.example r1@d.example,r2@d.example,r3@d.example hi
S: 220 lmtp ready
E: reply greeting 220 lmtp ready
C: LHLO c.test
S: 250-lmtp
S: 250 PIPELINING
E: reply LHLO 250 lmtp\nPIPELINING
C: MAIL FROM:<a@b.example>
C: RCPT TO:<r1@d.example>
C: RCPT TO:<r2@d.example>
C: RCPT TO:<r3@d.example>
C: DATA
S: 250 ok
S: 250 ok
S: 550 5.1.1 no r2
S: 250 ok
S: 354 go
E: reply MAIL 250 ok
E: reply RCPT 250 ok
E: reply RCPT 550 5.1.1 no r2
E: reply RCPT 250 ok
E: reply DATA 354 go
B: hi\r\n
C: .
S: 250 2.0.0 r1 delivered
S: 452 4.2.2 r3 over quota
E: reply BODY 250 2.0.0 r1 delivered
E: reply BODY 452 4.2.2 r3 over quota
E: txn r1@d.example=ACCEPTED/BODY/250 r2@d.example=FAILED/RCPT/550 r3@d.example=DEFERRED/BODY/452
E: close SMTPX_ERR_CLOSED
