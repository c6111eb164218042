# A server that hangs up on EHLO: every waiting command gets a local reply
# and the session ends with SMTPX_ERR_EHLO_CLOSED, so the application can
# try again with HELO.
A: start
A: ehlo client.test
A: txn a@b.example c@d.example hi
S: 220 picky.test ESMTP
E: reply greeting 220 picky.test ESMTP
C: EHLO client.test
A: eof
E: reply EHLO 421 4.4.2 Connection lost before the reply [local]
E: reply MAIL 421 4.4.2 The session was closed [local]
E: reply RCPT 421 4.4.2 The session was closed [local]
E: reply DATA 421 4.4.2 The session was closed [local]
E: reply BODY 421 4.4.2 The session was closed [local]
E: txn c@d.example=DEFERRED/MAIL/421
E: close SMTPX_ERR_EHLO_CLOSED
X: done 1
