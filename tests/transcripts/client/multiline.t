# Multi-line replies with continuation lines, enhanced codes taken out of
# the text, a bare code, and a reply split across packets (the harness
# feeds every split).
A: start
A: noop
A: rset
A: noop
S: 220-mx.test ESMTP
S: 220-welcome
S: 220 ready
E: reply greeting 220 mx.test ESMTP\nwelcome\nready
C: NOOP
S: 250-2.0.0 first
S: 250 2.0.0 second
E: reply NOOP 250 2.0.0 first\nsecond
C: RSET
S: 250
E: reply RSET 250
C: NOOP
S: 252 2.5.0
E: reply NOOP 252 2.5.0
E: close SMTPX_ERR_CLOSED
