# A whole session with a pipelining server: the greeting, EHLO, one
# message to two recipients in one pipelined group, QUIT.  The message is
# dot-stuffed and its line ends made CRLF.
A: start
A: ehlo client.test
A: txn a@b.example c@d.example,e@d.example Subject:\sx\n\n.dot\nbody\n
A: quit
S: 220 mx.test ESMTP
E: reply greeting 220 mx.test ESMTP
C: EHLO client.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250 8BITMIME
E: reply EHLO 250 mx.test\nPIPELINING\nSIZE 10240000\n8BITMIME
C: MAIL FROM:<a@b.example> SIZE=26
C: RCPT TO:<c@d.example>
C: RCPT TO:<e@d.example>
C: DATA
X: esmtp 1
X: ext SIZE 10240000
X: ext PIPELINING
X: ext STARTTLS (null)
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 250 2.1.5 Ok
S: 354 go ahead
E: reply MAIL 250 2.1.0 Ok
E: reply RCPT 250 2.1.5 Ok
E: reply RCPT 250 2.1.5 Ok
E: reply DATA 354 go ahead
B: Subject: x\r\n\r\n..dot\r\nbody\r\n
C: .
C: QUIT
S: 250 2.0.0 Queued
S: 221 2.0.0 Bye
E: reply BODY 250 2.0.0 Queued
E: txn c@d.example=ACCEPTED/BODY/250 e@d.example=ACCEPTED/BODY/250
E: reply QUIT 221 2.0.0 Bye
E: close SMTPX_OK
X: done 1
