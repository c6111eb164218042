# The greeting can wait (block lists, PROXY protocol); a client that talks
# first is held, then answered in order.
A: set connect pause
E: connect 192.0.2.7 41000
X: want_read 0
X: out 0
C: EHLO early.test
X: held 17
A: reply 220 mx.test ESMTP ready
S: 220 mx.test ESMTP ready
E: helo EHLO early.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
E: close SMTPX_ERR_CLOSED
