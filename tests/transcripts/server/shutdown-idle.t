# Shutdown DRAIN with no transaction in progress closes at once.
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO c.test
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
A: shutdown drain
S: 421 4.3.2 Service shutting down
E: close SMTPX_ERR_CLOSED
