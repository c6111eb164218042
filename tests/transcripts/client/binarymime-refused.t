# Binary content to a server without BINARYMIME: not sent, every recipient
# fails with a local 554 5.6.3; the next transaction goes as usual.
A: start
A: ehlo c.test
A: txn a@b.example r1@d.example \x00\x01 binary
A: txn a@b.example r2@d.example text\r\n
A: quit
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250-PIPELINING
S: 250 CHUNKING
E: reply EHLO 250 mx\nPIPELINING\nCHUNKING
E: reply MAIL 554 5.6.3 The message is binary and the server does not offer BINARYMIME with CHUNKING [local]
E: reply RCPT 554 5.6.3 The message is binary and the server does not offer BINARYMIME with CHUNKING [local]
E: reply DATA 554 5.6.3 The message is binary and the server does not offer BINARYMIME with CHUNKING [local]
E: reply BODY 554 5.6.3 The message is binary and the server does not offer BINARYMIME with CHUNKING [local]
E: txn r1@d.example=FAILED/MAIL/554
C: MAIL FROM:<a@b.example>
C: RCPT TO:<r2@d.example>
C: BDAT 6 LAST
B: text\r\n
C: QUIT
S: 250 ok
S: 250 ok
S: 250 queued
S: 221 bye
E: reply MAIL 250 ok
E: reply RCPT 250 ok
E: reply BODY 250 queued
E: txn r2@d.example=ACCEPTED/BODY/250
E: reply QUIT 221 bye
E: close SMTPX_OK
