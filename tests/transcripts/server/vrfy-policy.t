# The policy answer for VRFY can be 502 instead of 252.
@policy VRFY 502
@policy EXPN 252
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: VRFY root
E: vrfy VRFY root
S: 502 5.5.1 VRFY command is disabled
C: EXPN staff
E: vrfy EXPN staff
S: 252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery
E: close SMTPX_ERR_CLOSED
