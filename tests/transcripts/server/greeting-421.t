# A greeting of 421 closes at once; a 4xx other than 421 becomes 421.
A: set connect 450 busy
E: connect 192.0.2.7 41000
S: 421 busy
E: close SMTPX_ERR_CLOSED
X: done 1
C: EHLO c.test
