# The log and the trace: a line that is no reply is logged escaped (a
# server must not forge log lines) and within its bounds (in the input it
# is not NUL-terminated); the trace shows every reply line as it came.
@log
@trace
A: start
A: ehlo c.test
S: 220 mx ESMTP
R: 220 mx ESMTP
E: reply greeting 220 mx ESMTP
C: EHLO c.test
S+ 2\x1b[31m\r0 x\r\n
R: 2\x1B[31m\r0 x
L: error malformed reply line: 2\x1b[31m\x0d0 x
E: reply EHLO 451 4.3.0 Local error in the client [local]
E: close SMTPX_ERR_PROTO
