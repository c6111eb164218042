# A plain session: greeting, EHLO, one message with a dot-stuffed line,
# QUIT.  The default config offers the extensions that put no duty on the
# application.
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
X: protocol ESMTP
X: helo client.test
C: MAIL FROM:<alice@example.org>
E: mail <alice@example.org>
S: 250 2.1.0 Ok
X: from alice@example.org
C: RCPT TO:<bob@example.net>
E: rcpt <bob@example.net> #0
S: 250 2.1.5 Ok
X: rcpts 1
C: DATA
E: data_begin DATA body=0 rcpts=1
S: 354 End data with <CR><LF>.<CR><LF>
X: state data
C: Subject: hello
C:
C: ..leading dot
C: body
C: .
E: data "Subject: hello\r\n\r\n.leading dot\r\nbody\r\n"
E: data_end size=38
S: 250 2.0.0 Ok
E: txn_end DONE
X: msgs 1
X: rcpts 0
X: from (null)
X: want_read 1
X: want_write 0
C: QUIT
S: 221 2.0.0 mx.test closing connection
E: close SMTPX_OK
X: done 1
X: want_read 0
