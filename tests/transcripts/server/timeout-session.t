# The whole-session cap holds however busy the client keeps it; a final
# reply the client does not read is dropped after a short grace.
@timeout SESSION 10000
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
A: time +4000
C: NOOP
S: 250 2.0.0 Ok
A: time +4000
C: NOOP
S: 250 2.0.0 Ok
X: expiry +2000
A: drain off
A: time +2000
S: 421 4.4.2 Session time limit exceeded, closing connection
E: close SMTPX_ERR_TIMEOUT
X: done 0
X: expiry +10000
A: time +10000
X: out 0
X: done 1
