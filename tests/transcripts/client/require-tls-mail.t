# The same for a transaction, with the per-session switch.
A: start
A: requiretls
A: ehlo c.test
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250 mx
E: reply EHLO 250 mx
A: txn a@c.test b@d.test hello\n
C: QUIT
E: reply MAIL 454 4.7.10 TLS is required but not active: nothing was sent [local]
E: reply RCPT 454 4.7.10 TLS is required but not active: nothing was sent [local]
E: reply DATA 454 4.7.10 TLS is required but not active: nothing was sent [local]
E: reply BODY 454 4.7.10 TLS is required but not active: nothing was sent [local]
E: txn b@d.test=DEFERRED/MAIL/454
E: close SMTPX_ERR_TLS_REQUIRED
