# A client freed before it was started: every queued command still gets
# its one reply, made up by the client, in queue order; the transaction is
# finished (deferred: nothing was sent) and on_close fires once.
A: ehlo c.test
A: txn a@b.example r1@d.example hello\n
A: quit
E: reply EHLO 421 4.4.2 The session was closed [local]
E: reply MAIL 421 4.4.2 The session was closed [local]
E: reply RCPT 421 4.4.2 The session was closed [local]
E: reply DATA 421 4.4.2 The session was closed [local]
E: reply BODY 421 4.4.2 The session was closed [local]
E: txn r1@d.example=DEFERRED/MAIL/421
E: reply QUIT 421 4.4.2 The session was closed [local]
E: close SMTPX_ERR_CLOSED
