# RFC 5321 4.5.3.2: each command waits as long as its kind allows (here
# DATA 1 s); then every waiting command gets a local reply.
@timeout DATA_INIT 1000
A: start
A: ehlo c.test
A: txn a@b.example c@d.example hi
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250-mx
S: 250 PIPELINING
E: reply EHLO 250 mx\nPIPELINING
C: MAIL FROM:<a@b.example>
C: RCPT TO:<c@d.example>
C: DATA
X: expiry +300000
S: 250 ok
S: 250 ok
E: reply MAIL 250 ok
E: reply RCPT 250 ok
X: expiry +1000
A: time +999
X: expiry +1
A: time +1
E: reply DATA 421 4.4.2 Timed out waiting for the reply [local]
E: reply BODY 421 4.4.2 The session was closed [local]
E: txn c@d.example=DEFERRED/DATA/421
E: close SMTPX_ERR_TIMEOUT
X: done 1
