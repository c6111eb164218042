# RFC 5321 4.1.2 paths: null reverse-path, Postmaster, address literals,
# quoted local parts, source routes (accepted, dropped), and bad syntax.
@limit ERRORS 100
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
C: MAIL FROM:a@b.example
S: 501 5.1.7 Bad sender address syntax
C: MAIL FROM:<a@b.example
S: 501 5.1.7 Bad sender address syntax
C: MAIL FROM:<a@@b.example>
S: 501 5.1.7 Bad sender address syntax
C: MAIL FROM:<a@b.example>junk
S: 501 5.5.4 Syntax error after the address
C: MAIL FROM: <spaced@b.example>
E: mail <spaced@b.example>
S: 250 2.1.0 Ok
C: RSET
E: txn_end RESET
S: 250 2.0.0 Ok
C: MAIL FROM:<>
E: mail <>
S: 250 2.1.0 Ok
C: RCPT TO:<>
S: 501 5.1.3 Bad recipient address syntax
C: RCPT TO:<Postmaster>
E: rcpt <Postmaster> #0
S: 250 2.1.5 Ok
C: RCPT TO:<postmaster>
E: rcpt <postmaster> #1
S: 250 2.1.5 Ok
C: RCPT TO:<user@[192.0.2.1]>
E: rcpt <user@[192.0.2.1]> #2
S: 250 2.1.5 Ok
C: RCPT TO:<user@[IPv6:2001:db8::1]>
E: rcpt <user@[IPv6:2001:db8::1]> #3
S: 250 2.1.5 Ok
C: RCPT TO:<"john doe"@example.org>
E: rcpt <"john doe"@example.org> #4
S: 250 2.1.5 Ok
C: RCPT TO:<"a>b"@example.org>
E: rcpt <"a>b"@example.org> #5
S: 250 2.1.5 Ok
C: RCPT TO:<@relay.example,@hop.example:user@example.org>
E: rcpt <user@example.org> #6
S: 250 2.1.5 Ok
C: RCPT TO:<user@[300.0.0.1]>
S: 501 5.1.3 Bad recipient address syntax
C: RCPT TO:<user@example..org>
S: 501 5.1.3 Bad recipient address syntax
C: RCPT TO:user@example.org
S: 501 5.1.3 Bad recipient address syntax
C: RCPT TO:<user@under_score.example>
S: 501 5.1.3 Bad recipient address syntax
C: RCPT TO:<j\xC3\xB8rgen@example.org>
S: 501 5.1.3 Bad recipient address syntax
X: rcpts 7
E: txn_end ABORTED
E: close SMTPX_ERR_CLOSED
