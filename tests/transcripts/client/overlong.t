# A reply line over the limit ends the session with a protocol error; the
# waiting command gets a local reply.
@limit LINE 64
A: start
A: noop
S: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: NOOP
S: 250 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
E: reply NOOP 451 4.3.0 Local error in the client [local]
E: close SMTPX_ERR_PROTO
