# A server may close with 421 at any time, also while nothing waits.
A: start
A: ehlo c.test
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S: 250 mx
E: reply EHLO 250 mx
S: 421 4.3.2 shutting down
E: close SMTPX_ERR_CLOSED
X: done 1
