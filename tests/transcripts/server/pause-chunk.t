# Back-pressure from the application: on_data_chunk pauses and the
# session takes no more input until resume; nothing is lost or repeated.
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C+ EHLO c.test\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n
E: helo EHLO c.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
E: mail <a@b.example>
S: 250 2.1.0 Ok
E: rcpt <c@d.example> #0
S: 250 2.1.5 Ok
E: data_begin DATA body=0 rcpts=1
S: 354 End data with <CR><LF>.<CR><LF>
A: set chunk pause
C+ line one\nline two\r\n..three\r\n.\r\nNOOP\r\n
X: want_read 0
A: resume
E: data "line one\r\nline two\r\n.three\r\n"
E: data_end size=28
S: 250 2.0.0 Ok
E: txn_end DONE
S: 250 2.0.0 Ok
A: resume
E: resume returned SMTPX_ERR_INVALID_STATE
E: close SMTPX_ERR_CLOSED
