/*
 * posix - POSIX sockets for libsmtpx, and the blocking serve driver.
 *
 * Exports smtpx_posix_now_ms(), smtpx_posix_listen(),
 * smtpx_posix_split_hostport(), smtpx_posix_accept(), smtpx_posix_getaddr(),
 * smtpx_posix_io(), smtpx_posix_wait(), smtpx_posix_serve(),
 * smtpx_posix_serve_tls(), smtpx_posix_connect() and
 * smtpx_posix_connect_start(); smtpx__posix_fd_setup() for the loop.
 * Drivers use the cores through their public headers only.
 *
 * Invariants: every socket is non-blocking and close-on-exec; writes use
 * MSG_NOSIGNAL so a peer that went away never raises SIGPIPE; IPv4 and
 * IPv6 work alike (an IPv6 wildcard listener accepts IPv4 too where the
 * system allows, and IPv4-mapped peers are shown as IPv4).  Accepted
 * sockets get TCP_NODELAY: replies are written whole, so Nagle's algorithm
 * could only delay them by a round trip.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libsmtpx/posix.h>

#include "io/posix.h"

uint64_t smtpx_posix_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int smtpx__posix_fd_setup(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

/*
 * posix_port_ok - a port is a decimal number up to 65535 (0 only where
 * allow_zero: an ephemeral listening port), or a service name (letters,
 * digits, "-", "_") for getaddrinfo to look up.  getaddrinfo would take
 * "99999" and quietly use 99999 mod 65536.
 */
static int posix_port_ok(const char *port, int allow_zero)
{
    size_t i, n = strlen(port);
    unsigned long v = 0;
    int digits = 1;

    if (n == 0 || n > 32)
        return 0;
    for (i = 0; i < n; i++) {
        char c = port[i];
        if (c < '0' || c > '9')
            digits = 0;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || c == '-' || c == '_'))
            return 0;
    }
    if (!digits)
        return 1;
    if (n > 5)
        return 0;
    for (i = 0; i < n; i++)
        v = v * 10 + (unsigned long)(port[i] - '0');
    return v <= 65535 && (v > 0 || allow_zero);
}

int smtpx_posix_split_hostport(const char *spec, char *host, size_t hsize,
                               char *port, size_t psize)
{
    const char *colon, *h = spec;
    size_t hlen;

    if (spec == NULL || host == NULL || port == NULL || hsize == 0 ||
        psize == 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (close == NULL || close[1] != ':')
            return SMTPX_ERR_INVALID_ARGUMENT;
        h = spec + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(spec, ':');
        if (colon == NULL)
            return SMTPX_ERR_INVALID_ARGUMENT;
        /* "::1:25" is ambiguous: IPv6 addresses need brackets. */
        if (memchr(spec, ':', (size_t)(colon - spec)) != NULL)
            return SMTPX_ERR_INVALID_ARGUMENT;
        hlen = (size_t)(colon - spec);
    }
    if (colon[1] == '\0' || hlen >= hsize || strlen(colon + 1) >= psize ||
        !posix_port_ok(colon + 1, 1))
        return SMTPX_ERR_INVALID_ARGUMENT;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

/* posix_sun - the socket address of a local socket's path; -1 if the path
 * does not fit */
static int posix_sun(struct sockaddr_un *sun, const char *path)
{
    size_t n = strlen(path);

    if (n >= sizeof(sun->sun_path))
        return -1;
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n + 1);
    return 0;
}

/* posix_stale - the socket file at sun is left by a listener that is
 * gone: nothing accepts there (a full backlog is a live listener) */
static int posix_stale(const struct sockaddr_un *sun)
{
    struct stat st;
    int fd, rc, stale;

    if (lstat(sun->sun_path, &st) < 0)
        return errno == ENOENT; /* gone since: bind again */
    if (!S_ISSOCK(st.st_mode)) {
        errno = EEXIST;
        return 0;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
    stale = rc < 0 && errno == ECONNREFUSED;
    close(fd);
    errno = EADDRINUSE;
    return stale;
}

/* posix_listen_unix - smtpx_posix_listen on a local socket's path */
static int posix_listen_unix(const char *path, int backlog, int *fd_out)
{
    struct sockaddr_un sun;
    int fd, err, rc;

    if (posix_sun(&sun, path) < 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || smtpx__posix_fd_setup(fd) < 0)
        goto fail;
    rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    if (rc < 0 && errno == EADDRINUSE) {
        if (!posix_stale(&sun))
            goto fail;
        if (unlink(sun.sun_path) < 0 && errno != ENOENT)
            goto fail;
        rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    }
    if (rc < 0 || listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0)
        goto fail;
    *fd_out = fd;
    return 0;
fail:
    err = errno;
    if (fd >= 0)
        close(fd);
    errno = err;
    return SMTPX_ERR_IO;
}

int smtpx_posix_listen(const char *host, const char *port, int backlog,
                       int *fd_out)
{
    struct addrinfo hints, *res = NULL, *ai;
    char hbuf[256];
    int fd = -1, err = 0, one = 1, zero = 0, rc;

    if (fd_out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    *fd_out = -1;
    if (host != NULL && host[0] == '/')
        return posix_listen_unix(host, backlog, fd_out);
    if (port == NULL || !posix_port_ok(port, 1))
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (host != NULL && host[0] == '[') {
        size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']' || n - 2 >= sizeof(hbuf))
            return SMTPX_ERR_INVALID_ARGUMENT;
        memcpy(hbuf, host + 1, n - 2);
        hbuf[n - 2] = '\0';
        host = hbuf;
    }
    if (host != NULL && (host[0] == '\0' || strcmp(host, "*") == 0))
        host = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc == EAI_SERVICE)
        return SMTPX_ERR_INVALID_ARGUMENT; /* no such service name */
    if (rc != 0)
        return SMTPX_ERR_RESOLVE;
    /* For the wildcard, prefer IPv6 (dual stack) and fall back to IPv4. */
    for (int pass = 0; pass < 2 && fd < 0; pass++) {
        for (ai = res; ai != NULL; ai = ai->ai_next) {
            if (host == NULL && (pass == 0) != (ai->ai_family == AF_INET6))
                continue;
            if (host != NULL && pass == 1)
                break;
            fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
            if (fd < 0) {
                err = errno;
                continue;
            }
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (ai->ai_family == AF_INET6 && host == NULL)
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
            if (smtpx__posix_fd_setup(fd) < 0 ||
                bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
                listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
                err = errno;
                close(fd);
                fd = -1;
                continue;
            }
            break;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        errno = err;
        return SMTPX_ERR_IO;
    }
    *fd_out = fd;
    return 0;
}

/* posix_addr_text - an address as text; IPv4-mapped IPv6 as IPv4 */
static void posix_addr_text(const struct sockaddr_storage *ss, char *buf,
                            size_t size, uint16_t *port)
{
    buf[0] = '\0';
    *port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, buf, (socklen_t)size);
        *port = ntohs(in->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf,
                      (socklen_t)size);
        else
            inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t)size);
        *port = ntohs(in6->sin6_port);
    }
}

/* posix_sockaddr_text - an address (without port) as text */
static void posix_sockaddr_text(const struct sockaddr *sa, char *buf,
                                size_t size)
{
    struct sockaddr_storage ss;
    uint16_t port;

    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, sa,
           sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                     : sizeof(struct sockaddr_in));
    posix_addr_text(&ss, buf, size, &port);
}

int smtpx_posix_accept(int lfd, int *fd_out, smtpx_posix_addr *addr)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd, one = 1;

    if (fd_out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    *fd_out = -1;
    do {
        fd = accept(lfd, (struct sockaddr *)&ss, &len);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED)
            return SMTPX_ERR_WANT_READ;
        return SMTPX_ERR_IO;
    }
    if (smtpx__posix_fd_setup(fd) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return SMTPX_ERR_IO;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (addr != NULL) {
        posix_addr_text(&ss, addr->addr, sizeof(addr->addr), &addr->port);
        len = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
            posix_addr_text(&ss, addr->local_addr, sizeof(addr->local_addr),
                            &addr->local_port);
        else
            addr->local_addr[0] = '\0';
    }
    *fd_out = fd;
    return 0;
}

int smtpx_posix_getaddr(int fd, smtpx_posix_addr *addr)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (addr == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    memset(addr, 0, sizeof(*addr));
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return SMTPX_ERR_IO;
    posix_addr_text(&ss, addr->local_addr, sizeof(addr->local_addr),
                    &addr->local_port);
    len = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
        posix_addr_text(&ss, addr->addr, sizeof(addr->addr), &addr->port);
    return 0;
}

static smtpx_ssize posix_send(void *ctx, const uint8_t *buf, size_t len)
{
    int fd = (int)(intptr_t)ctx;
    ssize_t n;

    do {
        n = send(fd, buf, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (smtpx_ssize)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return SMTPX_ERR_WANT_WRITE;
    return SMTPX_ERR_IO;
}

static smtpx_ssize posix_recv(void *ctx, uint8_t *buf, size_t len)
{
    int fd = (int)(intptr_t)ctx;
    ssize_t n;

    do {
        n = recv(fd, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (smtpx_ssize)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return SMTPX_ERR_WANT_READ;
    return SMTPX_ERR_IO;
}

static void posix_close(void *ctx)
{
    close((int)(intptr_t)ctx);
}

void smtpx_posix_io(smtpx_io *io, int fd)
{
    io->ctx = (void *)(intptr_t)fd;
    io->send = posix_send;
    io->recv = posix_recv;
    io->close = posix_close;
}

int smtpx_posix_wait(int fd, int wait, uint64_t deadline)
{
    struct pollfd pfd;
    int timeout = -1, rc;

    pfd.fd = fd;
    pfd.events = (short)(((wait & SMTPX_WAIT_READ) ? POLLIN : 0) |
                         ((wait & SMTPX_WAIT_WRITE) ? POLLOUT : 0));
    pfd.revents = 0;
    if (deadline != 0) {
        uint64_t now = smtpx_posix_now_ms();
        uint64_t left = deadline > now ? deadline - now : 0;
        timeout = left > INT32_MAX ? INT32_MAX : (int)left;
    }
    do {
        rc = poll(&pfd, 1, timeout);
    } while (rc < 0 && errno == EINTR);
    return rc;
}

int smtpx_posix_serve(int fd, const smtpx_config *cfg,
                      const smtpx_server_callbacks *cbs, size_t cbs_size,
                      void *user_data, const smtpx_tls_ops *tls, void *tls_cfg)
{
    return smtpx_posix_serve_tls(fd, cfg, cbs, cbs_size, user_data, tls,
                                 tls_cfg, SMTPX_LISTEN_STARTTLS);
}

int smtpx_posix_serve_tls(int fd, const smtpx_config *cfg,
                          const smtpx_server_callbacks *cbs, size_t cbs_size,
                          void *user_data, const smtpx_tls_ops *tls,
                          void *tls_cfg, int mode)
{
    smtpx_posix_addr pa;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    smtpx_server *s = NULL;
    smtpx_transport *t = NULL;
    smtpx_peer peer;
    smtpx_io io;
    int rc, status = 0, one = 1;

    if (fd < 0 || cfg == NULL ||
        (mode != SMTPX_LISTEN_STARTTLS && mode != SMTPX_LISTEN_IMPLICIT_TLS) ||
        (mode == SMTPX_LISTEN_IMPLICIT_TLS && tls == NULL)) {
        if (fd >= 0)
            close(fd);
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    smtpx__posix_fd_setup(fd);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&pa, 0, sizeof(pa));
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
        posix_addr_text(&ss, pa.addr, sizeof(pa.addr), &pa.port);
    len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        posix_addr_text(&ss, pa.local_addr, sizeof(pa.local_addr),
                        &pa.local_port);
    smtpx_posix_io(&io, fd);
    rc = smtpx_transport_new(&t, &io, NULL);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    if (tls != NULL && (rc = smtpx_transport_set_tls(t, tls, tls_cfg)) < 0)
        goto out;
    rc = smtpx_server_new(&s, cfg, cbs, cbs_size, user_data);
    if (rc < 0)
        goto out;
    if (tls != NULL && mode == SMTPX_LISTEN_STARTTLS)
        smtpx_server_set_tls_available(s, 1);
    if (mode == SMTPX_LISTEN_IMPLICIT_TLS &&
        (rc = smtpx_transport_start_tls(t, 1, NULL)) < 0)
        goto out;
    peer.addr = pa.addr[0] ? pa.addr : NULL;
    peer.port = pa.port;
    peer.local_addr = pa.local_addr[0] ? pa.local_addr : NULL;
    peer.local_port = pa.local_port;
    peer.name = NULL;
    rc = smtpx_server_start(s, &peer, smtpx_posix_now_ms());
    /* If on_connect failed, the session has ended with a 421 queued: it
     * is written below like any last reply. */
    if (rc < 0 && smtpx_server_status(s) == SMTPX_ERR_INVALID_STATE)
        goto out;
    for (;;) {
        uint64_t now = smtpx_posix_now_ms();
        int wait = smtpx_server_pump(s, t, now);

        if (wait <= 0)
            break;
        if (smtpx_server_expire(s, smtpx_posix_now_ms()) ||
            (wait & SMTPX_WAIT_AGAIN))
            continue;
        if (wait == SMTPX_WAIT_APP) {
            /* Nothing else can answer a pause in a blocking driver: only
             * the deadline is left to wait for. */
            wait = 0;
        }
        if (smtpx_posix_wait(fd, wait, smtpx_server_expiry(s)) < 0) {
            smtpx_server_abort(s, SMTPX_ERR_IO);
        } else if (smtpx_server_expiry(s) != 0 &&
                   smtpx_posix_now_ms() >= smtpx_server_expiry(s)) {
            smtpx_server_expire(s, smtpx_posix_now_ms());
        }
    }
    rc = 0;
out:
    if (s != NULL) {
        status = smtpx_server_status(s);
        smtpx_server_free(s);
    }
    smtpx_transport_free(t);
    return rc < 0 ? rc : status;
}

/* ---- the client side ----------------------------------------------------- */

/* posix_why - "what happened" for smtpx_posix_connect_why() */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
posix_why(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
}

/* posix_connect_unix - a local socket (LMTP to a delivery agent is
 * usually spoken over one) */
static int posix_connect_unix(const char *path, int timeout_ms, int *fd_out,
                              char *why, size_t why_size)
{
    struct sockaddr_un sun;
    struct pollfd p;
    socklen_t len = sizeof(int);
    int fd, rc, err = 0;

    *fd_out = -1;
    if (posix_sun(&sun, path) < 0) {
        posix_why(why, why_size, "Socket path too long: %s", path);
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || smtpx__posix_fd_setup(fd) < 0) {
        err = errno;
        goto fail;
    }
    rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    if (rc < 0 && (errno == EINPROGRESS || errno == EAGAIN)) {
        p.fd = fd;
        p.events = POLLOUT;
        p.revents = 0;
        do {
            rc = poll(&p, 1, timeout_ms > 0 ? timeout_ms : 30000);
        } while (rc < 0 && errno == EINTR);
        if (rc == 0) {
            err = ETIMEDOUT;
            goto fail;
        }
        if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
            err != 0) {
            if (err == 0)
                err = errno;
            goto fail;
        }
    } else if (rc < 0) {
        err = errno;
        goto fail;
    }
    *fd_out = fd;
    return 0;
fail:
    posix_why(why, why_size, "%s: %s", path, strerror(err));
    if (fd >= 0)
        close(fd);
    errno = err;
    return err == ETIMEDOUT ? SMTPX_ERR_TIMEOUT : SMTPX_ERR_CONNECT;
}

int smtpx_posix_connect(const char *host, const char *port, int timeout_ms,
                        int *fd_out)
{
    return smtpx_posix_connect_why(host, port, timeout_ms, fd_out, NULL, 0);
}

int smtpx_posix_connect_why(const char *host, const char *port, int timeout_ms,
                            int *fd_out, char *why, size_t why_size)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, err = ECONNREFUSED, timeouts = 0, tries = 0, one = 1, gai;
    char last[INET6_ADDRSTRLEN] = "";

    posix_why(why, why_size, "%s", "");
    if (host != NULL && host[0] == '/' && fd_out != NULL)
        return posix_connect_unix(host, timeout_ms, fd_out, why, why_size);
    if (host == NULL || port == NULL || fd_out == NULL || host[0] == '\0' ||
        !posix_port_ok(port, 0)) {
        posix_why(why, why_size, "Invalid host or port");
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    *fd_out = -1;
    if (timeout_ms <= 0)
        timeout_ms = 30000;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    gai = getaddrinfo(host, port, &hints, &res);
    if (gai == EAI_SERVICE) {
        posix_why(why, why_size, "Unknown service %s", port);
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    if (gai != 0) {
        posix_why(why, why_size, "Host %s not found (%s)", host,
                  gai_strerror(gai));
        return SMTPX_ERR_RESOLVE;
    }
    /* RFC 5321 5.1 and RFC 6724: every address in turn, in the order the
     * resolver gives. */
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        struct pollfd p;
        socklen_t len = sizeof(err);
        int rc;

        tries++;
        posix_sockaddr_text(ai->ai_addr, last, sizeof(last));
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (smtpx__posix_fd_setup(fd) < 0) {
            err = errno;
            close(fd);
            fd = -1;
            continue;
        }
        rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc < 0 && errno == EINPROGRESS) {
            p.fd = fd;
            p.events = POLLOUT;
            p.revents = 0;
            do {
                rc = poll(&p, 1, timeout_ms);
            } while (rc < 0 && errno == EINTR);
            if (rc == 0) {
                err = ETIMEDOUT;
                timeouts++;
            } else if (rc > 0 &&
                       getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
                       err == 0) {
                rc = 0;
            } else if (rc < 0) {
                err = errno;
            }
            if (rc != 0 || err != 0)
                rc = -1;
        } else if (rc < 0) {
            err = errno;
        }
        if (rc == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        int timed_out = timeouts > 0 && timeouts == tries;
        /* The last address tried stands for all: with one address (the
         * usual case) it is the whole story. */
        posix_why(why, why_size, "%s %s %s%s%s:%s", strerror(err),
                  timed_out ? "connecting to" : "by",
                  strchr(last, ':') ? "[" : "", last,
                  strchr(last, ':') ? "]" : "", port);
        if (why != NULL && why_size > 0 && (why[0] >= 'a' && why[0] <= 'z'))
            why[0] = (char)(why[0] - 'a' + 'A');
        errno = err;
        return timed_out ? SMTPX_ERR_TIMEOUT : SMTPX_ERR_CONNECT;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *fd_out = fd;
    return 0;
}

int smtpx_posix_hostname(char *buf, size_t size)
{
    struct addrinfo hints, *res = NULL;
    char name[256];

    if (buf == NULL || size == 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    buf[0] = '\0';
    if (gethostname(name, sizeof(name)) < 0)
        return SMTPX_ERR_IO;
    name[sizeof(name) - 1] = '\0';
    /* As Postfix's myhostname: the system's name if it is fully qualified,
     * else the canonical name the resolver gives for it. */
    if (strchr(name, '.') == NULL) {
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_flags = AI_CANONNAME;
        if (getaddrinfo(name, NULL, &hints, &res) == 0 && res != NULL &&
            res->ai_canonname != NULL && strchr(res->ai_canonname, '.') &&
            strlen(res->ai_canonname) < sizeof(name))
            strcpy(name, res->ai_canonname);
        if (res != NULL)
            freeaddrinfo(res);
    }
    if (strchr(name, '.') == NULL || strlen(name) >= size)
        return SMTPX_ERR_NOT_SUPPORTED;
    strcpy(buf, name);
    return 0;
}

int smtpx_posix_local_literal(int fd, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char addr[INET6_ADDRSTRLEN];
    uint16_t port;
    int n;

    if (buf == NULL || size == 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    buf[0] = '\0';
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return SMTPX_ERR_IO;
    posix_addr_text(&ss, addr, sizeof(addr), &port);
    if (addr[0] == '\0')
        return SMTPX_ERR_NOT_SUPPORTED;
    /* RFC 5321 4.1.3: [192.0.2.1], [IPv6:2001:db8::1] */
    n = snprintf(buf, size, strchr(addr, ':') ? "[IPv6:%s]" : "[%s]", addr);
    if (n < 0 || (size_t)n >= size) {
        buf[0] = '\0';
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    return 0;
}

/* posix_numeric - a numeric address (brackets allowed around IPv6) and
 * port; 0, or -1 */
static int posix_numeric(const char *addr, const char *port,
                         struct addrinfo **res)
{
    struct addrinfo hints;
    char buf[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(addr);

    if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
        if (n - 2 >= sizeof(buf))
            return -1;
        memcpy(buf, addr + 1, n - 2);
        buf[n - 2] = '\0';
        addr = buf;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    return getaddrinfo(addr, port, &hints, res) == 0 ? 0 : -1;
}

int smtpx_posix_connect_start(const char *addr, const char *port,
                              const char *source, int *fd_out)
{
    struct addrinfo *res = NULL, *src = NULL;
    int fd, err, one = 1;

    if (fd_out == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    *fd_out = -1;
    if (addr == NULL || port == NULL || posix_numeric(addr, port, &res) < 0)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (source != NULL && (posix_numeric(source, "0", &src) < 0 ||
                           src->ai_family != res->ai_family)) {
        freeaddrinfo(res);
        if (src != NULL)
            freeaddrinfo(src);
        return SMTPX_ERR_INVALID_ARGUMENT;
    }
    fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (fd < 0 || smtpx__posix_fd_setup(fd) < 0)
        goto fail;
    if (src != NULL) {
#ifdef IP_BIND_ADDRESS_NO_PORT
        /* Let connect() choose the port for the whole 4-tuple: a port
         * bound first would count against every destination at once. */
        if (src->ai_family == AF_INET)
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                       sizeof(one));
#endif
        if (bind(fd, src->ai_addr, src->ai_addrlen) < 0)
            goto fail;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, res->ai_addr, res->ai_addrlen) < 0 &&
        errno != EINPROGRESS && errno != EINTR)
        goto fail;
    freeaddrinfo(res);
    if (src != NULL)
        freeaddrinfo(src);
    *fd_out = fd;
    return 0;
fail:
    err = errno;
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    if (src != NULL)
        freeaddrinfo(src);
    errno = err;
    return SMTPX_ERR_CONNECT;
}
