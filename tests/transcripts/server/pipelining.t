# RFC 2920: a pipelined burst is answered in order, every recipient on its
# own; one refused recipient does not stop the others.
E: connect 192.0.2.7 41000
S: 220 mx.test ESMTP
C: EHLO client.test
E: helo EHLO client.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250 CHUNKING
A: set rcpt 550 5.1.1 No such user here
C+ MAIL FROM:<a@example.org>\r\nRCPT TO:<nobody@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n
E: mail <a@example.org>
S: 250 2.1.0 Ok
E: rcpt <nobody@example.org> #0
S: 550 5.1.1 No such user here
E: rcpt <b@example.org> #0
S: 250 2.1.5 Ok
E: rcpt <c@example.org> #1
S: 250 2.1.5 Ok
E: data_begin DATA body=0 rcpts=2
S: 354 End data with <CR><LF>.<CR><LF>
C+ one\r\n.\r\nMAIL FROM:<d@example.org>\r\nRCPT TO:<e@example.org>\r\nDATA\r\ntwo\r\n.\r\nQUIT\r\n
E: data "one\r\n"
E: data_end size=5
S: 250 2.0.0 Ok
E: txn_end DONE
E: mail <d@example.org>
S: 250 2.1.0 Ok
E: rcpt <e@example.org> #0
S: 250 2.1.5 Ok
E: data_begin DATA body=0 rcpts=1
S: 354 End data with <CR><LF>.<CR><LF>
E: data "two\r\n"
E: data_end size=5
S: 250 2.0.0 Ok
E: txn_end DONE
S: 221 2.0.0 mx.test closing connection
E: close SMTPX_OK
X: msgs 2
