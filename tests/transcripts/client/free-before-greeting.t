# Freed after the start, before the greeting came: the greeting and every
# queued command get local replies in queue order.
A: start
A: ehlo c.test
A: txn a@b.example r1@d.example hello\n
A: quit
E: reply greeting 421 4.4.2 The session was closed [local]
E: reply EHLO 421 4.4.2 The session was closed [local]
E: reply MAIL 421 4.4.2 The session was closed [local]
E: reply RCPT 421 4.4.2 The session was closed [local]
E: reply DATA 421 4.4.2 The session was closed [local]
E: reply BODY 421 4.4.2 The session was closed [local]
E: txn r1@d.example=DEFERRED/MAIL/421
E: reply QUIT 421 4.4.2 The session was closed [local]
E: close SMTPX_ERR_CLOSED
