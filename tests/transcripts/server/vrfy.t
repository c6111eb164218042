# VRFY and EXPN reveal nothing by default and every attempt is logged.
@log
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: VRFY root
L: notice VRFY root from 192.0.2.7
E: vrfy VRFY root
S: 252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery
C: EXPN staff
L: notice EXPN staff from 192.0.2.7
E: vrfy EXPN staff
S: 502 5.5.1 EXPN command is disabled
C: VRFY
S: 501 5.5.4 Syntax: VRFY address
A: set vrfy 550 5.1.1 No such user
C: VRFY nobody
L: notice VRFY nobody from 192.0.2.7
E: vrfy VRFY nobody
S: 550 5.1.1 No such user
E: close SMTPX_ERR_CLOSED
