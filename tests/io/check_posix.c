/*
 * check_posix - POSIX sockets and the two drivers over real loopback
 * sockets: smtpx_posix_serve (one session, blocking) and smtpx_loop (many
 * sessions, poll, stop from a signal handler, session limit).  The server
 * runs in a child process; the test is the client.  The loop also runs in
 * the test's own process, with every allocation failing in turn.
 */
#define _DEFAULT_SOURCE /* kill() and sigaction with -std=c99 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libsmtpx/smtpx.h>
#include <libsmtpx/posix.h>

#include "harness/failmalloc.h"
#include "suites.h"

/* In a build with gcov (make coverage defines SMTPX_COVERAGE) a child
 * writes its counts before it ends; _exit() alone would lose them. */
#ifdef SMTPX_COVERAGE
void __gcov_dump(void);
#endif

static void child_exit(int status)
{
#ifdef SMTPX_COVERAGE
    __gcov_dump();
#endif
    _exit(status);
}

static smtpx_config *make_cfg(void)
{
    smtpx_config *cfg;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, NULL), 0);
    ck_assert_int_eq(smtpx_config_set_hostname(cfg, "mx.test"), 0);
    ck_assert_int_eq(smtpx_config_freeze(cfg), 0);
    return cfg;
}

static int local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int connect_to(int family, int port)
{
    int fd = socket(family, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    if (family == AF_INET6) {
        struct sockaddr_in6 a;
        memset(&a, 0, sizeof(a));
        a.sin6_family = AF_INET6;
        a.sin6_port = htons((uint16_t)port);
        a.sin6_addr = in6addr_loopback;
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    } else {
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    }
    return fd;
}

/* reply - read one whole reply (up to the last line), bounded by 10 s */
static char *reply(int fd, char *buf, size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        char *line;
        ssize_t n;

        ck_assert_int_eq(poll(&p, 1, 10000), 1);
        n = read(fd, buf + len, 1);
        if (n <= 0)
            return buf;
        len++;
        buf[len] = '\0';
        ck_assert_uint_lt(len, size - 1);
        if (buf[len - 1] != '\n')
            continue;
        line = buf + len - 1;
        while (line > buf && line[-1] != '\n')
            line--;
        if (strlen(line) >= 4 && line[3] == ' ')
            return buf;
    }
}

static void say(int fd, const char *s)
{
    ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

START_TEST(test_split_hostport)
{
    char h[64], p[16];

    ck_assert_int_eq(
        smtpx_posix_split_hostport("127.0.0.1:25", h, sizeof(h), p, sizeof(p)),
        0);
    ck_assert_str_eq(h, "127.0.0.1");
    ck_assert_str_eq(p, "25");
    ck_assert_int_eq(
        smtpx_posix_split_hostport("[::1]:2525", h, sizeof(h), p, sizeof(p)),
        0);
    ck_assert_str_eq(h, "::1");
    ck_assert_str_eq(p, "2525");
    ck_assert_int_eq(
        smtpx_posix_split_hostport(":smtp", h, sizeof(h), p, sizeof(p)), 0);
    ck_assert_str_eq(h, "");
    ck_assert_str_eq(p, "smtp");
    ck_assert_int_eq(
        smtpx_posix_split_hostport("::1:25", h, sizeof(h), p, sizeof(p)),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(
        smtpx_posix_split_hostport("host", h, sizeof(h), p, sizeof(p)),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(
        smtpx_posix_split_hostport("host:", h, sizeof(h), p, sizeof(p)),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(
        smtpx_posix_split_hostport("[::1]25", h, sizeof(h), p, sizeof(p)),
        SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(smtpx_posix_split_hostport("averyveryverylonghost:1", h, 8,
                                                p, sizeof(p)),
                     SMTPX_ERR_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_listen_accept)
{
    smtpx_posix_addr pa;
    int lfd, cfd, afd, one = 0, fam;
    socklen_t len = sizeof(one);

    for (fam = 0; fam < 2; fam++) {
        const char *host = fam ? "[::1]" : "127.0.0.1";
        int rc = smtpx_posix_listen(host, "0", 0, &lfd);
        if (fam == 1 && rc != 0)
            continue; /* no IPv6 on this machine */
        ck_assert_int_eq(rc, 0);
        ck_assert(fcntl(lfd, F_GETFL) & O_NONBLOCK);
        ck_assert(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
        ck_assert_int_eq(smtpx_posix_accept(lfd, &afd, &pa),
                         SMTPX_ERR_WANT_READ);
        cfd = connect_to(fam ? AF_INET6 : AF_INET, local_port(lfd));
        for (int i = 0; i < 100; i++) {
            rc = smtpx_posix_accept(lfd, &afd, &pa);
            if (rc != SMTPX_ERR_WANT_READ)
                break;
            usleep(10000);
        }
        ck_assert_int_eq(rc, 0);
        ck_assert_str_eq(pa.addr, fam ? "::1" : "127.0.0.1");
        ck_assert_str_eq(pa.local_addr, fam ? "::1" : "127.0.0.1");
        ck_assert_int_eq(pa.local_port, local_port(lfd));
        ck_assert_int_eq(pa.port, local_port(cfd));
        ck_assert(fcntl(afd, F_GETFL) & O_NONBLOCK);
        ck_assert(fcntl(afd, F_GETFD) & FD_CLOEXEC);
        ck_assert_int_eq(getsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &one, &len),
                         0);
        ck_assert_int_ne(one, 0);
        close(afd);
        close(cfd);
        close(lfd);
    }
    ck_assert_int_eq(smtpx_posix_listen("no.such.host.invalid", "25", 0, &lfd),
                     SMTPX_ERR_RESOLVE);
    ck_assert_int_eq(smtpx_posix_listen(NULL, NULL, 0, &lfd),
                     SMTPX_ERR_INVALID_ARGUMENT);
}
END_TEST

/* A local (Unix) socket: listened on at a path, reached by
 * smtpx_posix_connect with that path; a socket file left by a listener
 * that is gone is replaced, a live listener's and a plain file are not
 * touched; a path too long is refused. */
START_TEST(test_listen_unix)
{
    char dir[] = "/tmp/smtpx-unix-XXXXXX", path[256], longp[200];
    smtpx_posix_addr pa;
    struct stat st;
    int lfd, lfd2, cfd, afd, rc, i;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/lmtp.sock", dir);
    ck_assert_int_eq(smtpx_posix_listen(path, NULL, 0, &lfd), 0);
    ck_assert(fcntl(lfd, F_GETFL) & O_NONBLOCK);
    ck_assert(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    ck_assert_int_eq(smtpx_posix_accept(lfd, &afd, &pa), SMTPX_ERR_WANT_READ);
    ck_assert_int_eq(smtpx_posix_connect(path, NULL, 5000, &cfd), 0);
    for (i = 0; i < 100; i++) {
        rc = smtpx_posix_accept(lfd, &afd, &pa);
        if (rc != SMTPX_ERR_WANT_READ)
            break;
        usleep(10000);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(pa.addr, "");
    ck_assert_int_eq(pa.port, 0);
    ck_assert_str_eq(pa.local_addr, "");
    ck_assert_int_eq(pa.local_port, 0);
    ck_assert_int_eq(write(cfd, "LHLO x\r\n", 8), 8);
    {
        char buf[16];
        struct pollfd p = {afd, POLLIN, 0};
        ck_assert_int_eq(poll(&p, 1, 5000), 1);
        ck_assert_int_eq(read(afd, buf, sizeof(buf)), 8);
        ck_assert_int_eq(memcmp(buf, "LHLO x\r\n", 8), 0);
    }
    close(afd);
    close(cfd);
    /* A live listener's socket is left alone. */
    ck_assert_int_eq(smtpx_posix_listen(path, NULL, 0, &lfd2), SMTPX_ERR_IO);
    ck_assert_int_eq(errno, EADDRINUSE);
    ck_assert_int_eq(lfd2, -1);
    ck_assert_int_eq(smtpx_posix_connect(path, NULL, 5000, &cfd), 0);
    close(cfd);
    /* Its listener gone, the file left behind is replaced. */
    close(lfd);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert_int_eq(smtpx_posix_connect(path, NULL, 5000, &cfd),
                     SMTPX_ERR_CONNECT);
    ck_assert_int_eq(smtpx_posix_listen(path, NULL, 0, &lfd), 0);
    ck_assert_int_eq(smtpx_posix_connect(path, NULL, 5000, &cfd), 0);
    close(cfd);
    close(lfd);
    ck_assert_int_eq(unlink(path), 0);
    /* A file that is no socket is never removed. */
    {
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs("keep me\n", f);
        fclose(f);
    }
    ck_assert_int_eq(smtpx_posix_listen(path, NULL, 0, &lfd), SMTPX_ERR_IO);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(st.st_size, 8);
    ck_assert_int_eq(unlink(path), 0);
    /* No directory: the error of bind. */
    snprintf(path, sizeof(path), "%s/none/lmtp.sock", dir);
    ck_assert_int_eq(smtpx_posix_listen(path, NULL, 0, &lfd), SMTPX_ERR_IO);
    ck_assert_int_eq(errno, ENOENT);
    /* sun_path holds 108 bytes with its NUL: a path of 108 does not fit. */
    memset(longp, 'a', sizeof(longp));
    longp[0] = '/';
    longp[108] = '\0';
    ck_assert_int_eq(smtpx_posix_listen(longp, NULL, 0, &lfd),
                     SMTPX_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lfd, -1);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_io_no_sigpipe)
{
    /* Writing to a socket whose peer is gone is an error, not a signal. */
    int sv[2];
    smtpx_io io;
    smtpx_ssize r;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    smtpx_posix_io(&io, sv[0]);
    r = io.send(io.ctx, (const uint8_t *)"x", 1);
    ck_assert_int_eq(r, SMTPX_ERR_IO);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    ck_assert_int_eq(io.recv(io.ctx, (uint8_t[4]){0}, 4), 0);
    io.close(io.ctx);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    smtpx_posix_io(&io, sv[0]);
    ck_assert_int_eq(io.recv(io.ctx, (uint8_t[4]){0}, 4), SMTPX_ERR_WANT_READ);
    io.close(io.ctx);
    close(sv[1]);
}
END_TEST

static int serve_mails;

static int serve_on_mail(smtpx_server *s, const smtpx_mail_info *mi,
                         smtpx_reply *r, void *ud)
{
    (void)s;
    (void)mi;
    (void)r;
    (void)ud;
    serve_mails++;
    return 0;
}

START_TEST(test_serve)
{
    smtpx_config *cfg = make_cfg();
    char buf[2048];
    int sv[2], status;
    pid_t pid;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        smtpx_server_callbacks cbs = {.on_mail = serve_on_mail};
        int rc;
        close(sv[1]);
        rc = smtpx_posix_serve(sv[0], cfg, &cbs, sizeof(cbs), NULL, NULL, NULL);
        child_exit(rc == 0 && serve_mails == 1 ? 0 : 10);
    }
    close(sv[0]);
    ck_assert_str_eq(reply(sv[1], buf, sizeof(buf)), "220 mx.test ESMTP\r\n");
    say(sv[1], "EHLO c.test\r\nMAIL FROM:<a@b.example>\r\nQUIT\r\n");
    ck_assert_ptr_nonnull(strstr(reply(sv[1], buf, sizeof(buf)), "250 "));
    ck_assert_str_eq(reply(sv[1], buf, sizeof(buf)), "250 2.1.0 Ok\r\n");
    ck_assert_str_eq(reply(sv[1], buf, sizeof(buf)),
                     "221 2.0.0 mx.test closing connection\r\n");
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    close(sv[1]);
    smtpx_config_free(cfg);
}
END_TEST

START_TEST(test_serve_timeout)
{
    /* A silent client is timed out by the blocking driver. */
    smtpx_config *cfg;
    char buf[2048];
    int sv[2], status;
    pid_t pid;

    ck_assert_int_eq(smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, NULL), 0);
    smtpx_config_set_hostname(cfg, "mx.test");
    smtpx_config_set_timeout(cfg, SMTPX_TIMEOUT_COMMAND, 200);
    smtpx_config_freeze(cfg);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int rc;
        close(sv[1]);
        rc = smtpx_posix_serve(sv[0], cfg, NULL, 0, NULL, NULL, NULL);
        child_exit(rc == SMTPX_ERR_TIMEOUT ? 0 : 10);
    }
    close(sv[0]);
    reply(sv[1], buf, sizeof(buf));
    ck_assert_str_eq(reply(sv[1], buf, sizeof(buf)),
                     "421 4.4.2 Timeout, closing connection\r\n");
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    close(sv[1]);
    smtpx_config_free(cfg);
}
END_TEST

static int fail_connect(smtpx_server *s, const smtpx_peer *peer, smtpx_reply *r,
                        void *ud)
{
    (void)s;
    (void)peer;
    (void)r;
    (void)ud;
    return SMTPX_ERR_CALLBACK_FAILURE;
}

START_TEST(test_serve_connect_failure)
{
    /* on_connect fails: the client still gets the 421 the core queued. */
    smtpx_config *cfg = make_cfg();
    char buf[2048];
    int sv[2], status;
    pid_t pid;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        smtpx_server_callbacks cbs = {.on_connect = fail_connect};
        int rc;
        close(sv[1]);
        rc = smtpx_posix_serve(sv[0], cfg, &cbs, sizeof(cbs), NULL, NULL, NULL);
        /* The child's copy too (valgrind checks each process's heap). */
        smtpx_config_free(cfg);
        _exit(rc == SMTPX_ERR_CALLBACK_FAILURE ? 0 : 10);
    }
    close(sv[0]);
    ck_assert_ptr_nonnull(strstr(reply(sv[1], buf, sizeof(buf)), "421 4.3.0"));
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    close(sv[1]);
    smtpx_config_free(cfg);
}
END_TEST

static smtpx_loop *child_loop;

static void child_stop(int sig)
{
    (void)sig;
    smtpx_loop_stop(child_loop, SMTPX_SHUTDOWN_DRAIN);
}

/* run_loop_child - a loop serving lfd until SIGTERM; exit status 0 if it
 * stopped cleanly with no session left */
static pid_t run_loop_child(int lfd, size_t max)
{
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        smtpx_config *cfg = make_cfg();
        struct sigaction sa;
        int rc;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = child_stop;
        sigaction(SIGTERM, &sa, NULL);
        if (smtpx_loop_new(&child_loop, NULL) != 0 ||
            smtpx_loop_listen(child_loop, lfd, cfg, NULL, 0, NULL, NULL,
                              NULL) != 0)
            child_exit(10);
        smtpx_loop_set_max_sessions(child_loop, max);
        rc = smtpx_loop_run(child_loop);
        rc = rc == 0 && smtpx_loop_sessions(child_loop) == 0 ? 0 : 11;
        smtpx_loop_free(child_loop);
        smtpx_config_free(cfg);
        child_exit(rc);
    }
    close(lfd);
    return pid;
}

START_TEST(test_loop_sessions_and_stop)
{
    char buf[4096];
    int lfd, port, c[3], i, idle, status;
    pid_t pid;

    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "0", 0, &lfd), 0);
    port = local_port(lfd);
    pid = run_loop_child(lfd, 0);
    /* Three clients at once, interleaved: the loop serves them all. */
    for (i = 0; i < 3; i++) {
        c[i] = connect_to(AF_INET, port);
        ck_assert_str_eq(reply(c[i], buf, sizeof(buf)),
                         "220 mx.test ESMTP\r\n");
    }
    for (i = 0; i < 3; i++)
        say(c[i], "EHLO c.test\r\nMAIL FROM:<a@b.example>\r\n"
                  "RCPT TO:<c@d.example>\r\nDATA\r\n");
    for (i = 0; i < 3; i++) {
        reply(c[i], buf, sizeof(buf));
        ck_assert_str_eq(reply(c[i], buf, sizeof(buf)), "250 2.1.0 Ok\r\n");
        ck_assert_str_eq(reply(c[i], buf, sizeof(buf)), "250 2.1.5 Ok\r\n");
        ck_assert_str_eq(reply(c[i], buf, sizeof(buf)),
                         "354 End data with <CR><LF>.<CR><LF>\r\n");
    }
    for (i = 0; i < 2; i++) {
        say(c[i], "hi\r\n.\r\nQUIT\r\n");
        ck_assert_str_eq(reply(c[i], buf, sizeof(buf)), "250 2.0.0 Ok\r\n");
        ck_assert_ptr_nonnull(strstr(reply(c[i], buf, sizeof(buf)), "221 "));
        close(c[i]);
    }
    /* Stop while the third is inside DATA: it may finish, then 421.  An
     * idle session is told at once: the sign that the stop was taken. */
    idle = connect_to(AF_INET, port);
    ck_assert_str_eq(reply(idle, buf, sizeof(buf)), "220 mx.test ESMTP\r\n");
    kill(pid, SIGTERM);
    ck_assert_str_eq(reply(idle, buf, sizeof(buf)),
                     "421 4.3.2 Service shutting down\r\n");
    close(idle);
    say(c[2], "last\r\n.\r\n");
    ck_assert_str_eq(reply(c[2], buf, sizeof(buf)), "250 2.0.0 Ok\r\n");
    ck_assert_str_eq(reply(c[2], buf, sizeof(buf)),
                     "421 4.3.2 Service shutting down\r\n");
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    close(c[2]);
}
END_TEST

START_TEST(test_loop_max_sessions)
{
    char buf[4096];
    int lfd, port, a, b, status;
    pid_t pid;

    ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "0", 0, &lfd), 0);
    port = local_port(lfd);
    pid = run_loop_child(lfd, 1);
    a = connect_to(AF_INET, port);
    ck_assert_str_eq(reply(a, buf, sizeof(buf)), "220 mx.test ESMTP\r\n");
    b = connect_to(AF_INET, port);
    ck_assert_str_eq(reply(b, buf, sizeof(buf)),
                     "421 4.7.0 mx.test Too many connections, try later\r\n");
    close(b);
    say(a, "QUIT\r\n");
    ck_assert_ptr_nonnull(strstr(reply(a, buf, sizeof(buf)), "221 "));
    close(a);
    kill(pid, SIGTERM);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* sweep_client - connect to port, send a whole pipelined session */
static int sweep_client(int port)
{
    static const char script[] = "EHLO c.test\r\nMAIL FROM:<a@b.example>\r\n"
                                 "RCPT TO:<c@d.example>\r\nDATA\r\n"
                                 "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n";
    int fd = connect_to(AF_INET, port);

    say(fd, script);
    ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    return fd;
}

START_TEST(test_loop_nomem)
{
    /* Fail each allocation of the loop, its config, its sessions and
     * their transports in turn over a whole session: the loop reports
     * NOMEM or drops the connection, never crashes, and frees all. */
    long n;
    int done_clean = 0;

    for (n = 1; n < 2000 && !done_clean; n++) {
        failmalloc fm = {.fail_at = 0};
        smtpx_mem mem = failmalloc_mem(&fm);
        smtpx_config *cfg = NULL;
        smtpx_loop *loop = NULL;
        char buf[4096], got[8192];
        size_t glen = 0;
        int lfd, cfd, i, rc = 1;

        fm.fail_at = n;
        if (smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, &mem) != 0) {
            ck_assert_int_eq(fm.live, 0);
            continue;
        }
        if (smtpx_config_set_hostname(cfg, "mx.test") != 0 ||
            smtpx_config_freeze(cfg) != 0 || smtpx_loop_new(&loop, &mem) != 0) {
            smtpx_config_free(cfg);
            ck_assert_int_eq(fm.live, 0);
            continue;
        }
        ck_assert_int_eq(smtpx_posix_listen("127.0.0.1", "0", 0, &lfd), 0);
        if (smtpx_loop_listen(loop, lfd, cfg, NULL, 0, NULL, NULL, NULL) != 0) {
            close(lfd);
            smtpx_loop_free(loop);
            smtpx_config_free(cfg);
            ck_assert_int_eq(fm.live, 0);
            continue;
        }
        cfd = sweep_client(local_port(lfd));
        for (i = 0; i < 500 && rc > 0; i++) {
            ssize_t r;
            rc = smtpx_loop_run_once(loop, 10);
            ck_assert(rc == 1 || rc == SMTPX_ERR_NOMEM);
            r = read(cfd, buf, sizeof(buf));
            if (r == 0)
                break; /* the server closed: done or dropped */
            if (r > 0) {
                ck_assert_uint_lt(glen + (size_t)r, sizeof(got));
                memcpy(got + glen, buf, (size_t)r);
                glen += (size_t)r;
            }
        }
        ck_assert_int_lt(i, 500);
        got[glen] = '\0';
        smtpx_loop_free(loop); /* closes the listener and the sessions */
        close(cfd);
        smtpx_config_free(cfg);
        ck_assert_int_eq(fm.live, 0);
        if (fm.failures == 0) {
            /* Nothing failed: the whole session went through. */
            ck_assert_ptr_nonnull(strstr(got, "250 2.0.0 Ok"));
            ck_assert_ptr_nonnull(strstr(got, "221 2.0.0"));
            done_clean = 1;
        }
    }
    ck_assert_int_eq(done_clean, 1);
    ck_assert_int_gt(n, 10);
}
END_TEST

Suite *suite_posix(void)
{
    Suite *s = suite_create("posix");
    TCase *tc = tcase_create("sockets");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_split_hostport);
    tcase_add_test(tc, test_listen_accept);
    tcase_add_test(tc, test_listen_unix);
    tcase_add_test(tc, test_io_no_sigpipe);
    tcase_add_test(tc, test_serve);
    tcase_add_test(tc, test_serve_timeout);
    tcase_add_test(tc, test_serve_connect_failure);
    tcase_add_test(tc, test_loop_sessions_and_stop);
    tcase_add_test(tc, test_loop_max_sessions);
    tcase_add_test(tc, test_loop_nomem);
    suite_add_tcase(s, tc);
    return s;
}
