/*
 * hold - many connections to an SMTP server, for the scale benchmarks.
 *
 *   hold idle HOST PORT N PID SOURCE[,SOURCE...]
 *       Open N connections (from the source addresses in turn, so that
 *       more than one address's ephemeral ports are used), read each
 *       greeting, send EHLO, read its reply, and hold them idle.  Then,
 *       while they are held, open 20 more, one at a time, and time each
 *       greeting.  Prints key=value lines: held, open_s (time to open and
 *       greet them all), rss_kb_before and rss_kb (the server PID's
 *       resident memory before and while holding), probe_ms_median,
 *       probe_ms_max, and the kernel's TCP line of /proc/net/sockstat
 *       while holding.  Connections the server refuses or never greets
 *       within 20 s are counted in failed.
 *
 *   hold storm HOST PORT N
 *       Open N connections at once and wait for every greeting (10 s
 *       each at most).  Prints ms (from the first connect to the last
 *       greeting), greeted and errors (refused, reset, not greeted).
 *
 * Everything is non-blocking on one epoll; the file limit is raised to
 * what N needs (run as root for large N).  Loopback only, bounded in time.
 */
#define _GNU_SOURCE /* SOCK_NONBLOCK, SOCK_CLOEXEC */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { C_CONNECTING, C_GREETING, C_EHLO, C_IDLE, C_DEAD };

typedef struct conn {
    int fd;
    int state;
    int col; /* octets of the current reply line seen, up to 4 */
    char head[4];
    double started;
} conn;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(long pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static void sockstat(void)
{
    char line[256];
    FILE *f = fopen("/proc/net/sockstat", "r");

    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "TCP:", 4) == 0)
            printf("sockstat=%s", line);
    fclose(f);
}

static int open_one(struct sockaddr_in *dst, const struct sockaddr_in *src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (src != NULL) {
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (const struct sockaddr *)src, sizeof(*src)) < 0) {
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)dst, sizeof(*dst)) < 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* feed - what came on c: returns 1 when the reply it waits for is whole
 * ("220 " or "250 " starts its last line), -1 on EOF or error */
static int feed(conn *c)
{
    char buf[4096];
    ssize_t n = read(c->fd, buf, sizeof(buf)), i;
    int done = 0;

    if (n == 0 || (n < 0 && errno != EAGAIN))
        return -1;
    for (i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            if (c->col >= 4 && c->head[3] == ' ')
                done = c->head[0] == '2' ? 1 : -1;
            c->col = 0;
            continue;
        }
        if (c->col < 4)
            c->head[c->col] = buf[i];
        c->col++;
    }
    return done;
}

static void limit_files(size_t n)
{
    struct rlimit rl;

    rl.rlim_cur = rl.rlim_max = (rlim_t)(n + 200);
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* step - advance c on an event; returns the new state */
static int step(int ep, conn *c)
{
    int r;

    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        struct epoll_event ev;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0)
            return C_DEAD;
        c->state = C_GREETING;
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return c->state;
    }
    r = feed(c);
    if (r < 0)
        return C_DEAD;
    if (r == 0)
        return c->state;
    if (c->state == C_GREETING) {
        if (write(c->fd, "EHLO idle.test\r\n", 16) != 16)
            return C_DEAD;
        return C_EHLO;
    }
    return C_IDLE;
}

static int idle(const char *host, int port, size_t n, long pid, char *srcs)
{
    struct sockaddr_in dst, src[64];
    struct epoll_event evs[1024];
    size_t nsrc = 0, opened = 0, settled = 0, held = 0, failed = 0, i;
    double t0, probes[20], tmp, last_scan = 0;
    long before = rss_kb(pid);
    char *tok, *save = NULL;
    conn *cs = calloc(n, sizeof(*cs));
    int ep = epoll_create1(EPOLL_CLOEXEC), k;

    if (cs == NULL || ep < 0)
        return 1;
    memset(&dst, 0, sizeof(dst));
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &dst.sin_addr);
    for (tok = strtok_r(srcs, ",", &save); tok != NULL && nsrc < 64;
         tok = strtok_r(NULL, ",", &save)) {
        memset(&src[nsrc], 0, sizeof(src[nsrc]));
        src[nsrc].sin_family = AF_INET;
        if (inet_pton(AF_INET, tok, &src[nsrc].sin_addr) == 1)
            nsrc++;
    }
    limit_files(n + 20);
    t0 = now_s();
    /* At most 2000 handshakes in flight: the listen queue is finite. */
    while (settled < n && now_s() - t0 < 600) {
        while (opened < n && opened - settled < 2000) {
            conn *c = &cs[opened++];
            struct epoll_event ev;
            c->fd = open_one(&dst, nsrc ? &src[opened % nsrc] : NULL);
            c->started = now_s();
            if (c->fd < 0) {
                c->state = C_DEAD;
                failed++;
                settled++;
                continue;
            }
            memset(&ev, 0, sizeof(ev));
            ev.events = EPOLLOUT;
            ev.data.ptr = c;
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        }
        k = epoll_wait(ep, evs, 1024, 100);
        for (int j = 0; j < k; j++) {
            conn *c = evs[j].data.ptr;
            int was = c->state;
            if (was == C_IDLE || was == C_DEAD)
                continue;
            c->state = step(ep, c);
            if (c->state == C_IDLE) {
                held++;
                settled++;
            } else if (c->state == C_DEAD) {
                failed++;
                settled++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            }
        }
        /* Connections not greeted within 20 s count as failed (a server
         * at its own limit leaves them in the listen queue). */
        if (now_s() - last_scan > 1) {
            double t = now_s();
            last_scan = t;
            for (i = 0; i < opened; i++) {
                conn *c = &cs[i];
                if (c->state >= C_IDLE || t - c->started < 20)
                    continue;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
                c->state = C_DEAD;
                failed++;
                settled++;
            }
        }
    }
    printf("held=%zu\nfailed=%zu\nopen_s=%.2f\n", held, failed, now_s() - t0);
    printf("rss_kb_before=%ld\n", before);
    sleep(1);
    printf("rss_kb=%ld\n", rss_kb(pid));
    sockstat();
    fflush(stdout);
    /* New clients while the others are held. */
    for (i = 0; i < 20; i++) {
        conn p;
        double s = now_s();
        memset(&p, 0, sizeof(p));
        p.fd = open_one(&dst, NULL);
        p.state = C_CONNECTING;
        probes[i] = -1;
        while (p.fd >= 0 && now_s() - s < 10 && p.state != C_EHLO &&
               p.state != C_DEAD) {
            struct epoll_event ev;
            int pe = epoll_create1(EPOLL_CLOEXEC);
            memset(&ev, 0, sizeof(ev));
            ev.events = p.state == C_CONNECTING ? EPOLLOUT : EPOLLIN;
            ev.data.ptr = &p;
            epoll_ctl(pe, EPOLL_CTL_ADD, p.fd, &ev);
            if (epoll_wait(pe, &ev, 1, 100) == 1)
                p.state = step(pe, &p);
            close(pe);
        }
        if (p.state == C_EHLO)
            probes[i] = (now_s() - s) * 1000;
        if (p.fd >= 0)
            close(p.fd);
        usleep(50000);
    }
    for (i = 0; i < 20; i++)
        for (size_t j = i + 1; j < 20; j++)
            if (probes[j] < probes[i]) {
                tmp = probes[i];
                probes[i] = probes[j];
                probes[j] = tmp;
            }
    printf("probe_ms_median=%.2f\nprobe_ms_max=%.2f\n", probes[10], probes[19]);
    for (i = 0; i < opened; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    free(cs);
    close(ep);
    return 0;
}

static int storm(const char *host, int port, size_t n)
{
    struct sockaddr_in dst;
    struct epoll_event evs[1024];
    conn *cs = calloc(n, sizeof(*cs));
    size_t i, greeted = 0, errors = 0, settled = 0;
    int ep = epoll_create1(EPOLL_CLOEXEC), k;
    double t0, last = 0;

    if (cs == NULL || ep < 0)
        return 1;
    limit_files(n);
    memset(&dst, 0, sizeof(dst));
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &dst.sin_addr);
    t0 = now_s();
    for (i = 0; i < n; i++) {
        struct epoll_event ev;
        cs[i].fd = open_one(&dst, NULL);
        if (cs[i].fd < 0) {
            cs[i].state = C_DEAD;
            errors++;
            settled++;
            continue;
        }
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLOUT;
        ev.data.ptr = &cs[i];
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    while (settled < n && now_s() - t0 < 10) {
        k = epoll_wait(ep, evs, 1024, 100);
        for (int j = 0; j < k; j++) {
            conn *c = evs[j].data.ptr;
            if (c->state == C_EHLO || c->state == C_DEAD)
                continue;
            c->state = step(ep, c);
            if (c->state == C_EHLO) { /* greeted (EHLO sent) */
                greeted++;
                settled++;
                last = now_s();
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            } else if (c->state == C_DEAD) {
                errors++;
                settled++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            }
        }
    }
    errors += n - settled; /* never greeted */
    printf("ms=%.0f\ngreeted=%zu\nerrors=%zu\n", (last - t0) * 1000, greeted,
           errors);
    for (i = 0; i < n; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    free(cs);
    close(ep);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "idle") == 0)
        return idle(argv[2], atoi(argv[3]), strtoul(argv[4], NULL, 10),
                    strtol(argv[5], NULL, 10), argv[6]);
    if (argc == 5 && strcmp(argv[1], "storm") == 0)
        return storm(argv[2], atoi(argv[3]), strtoul(argv[4], NULL, 10));
    fprintf(stderr, "usage: hold idle HOST PORT N PID SOURCES | "
                    "hold storm HOST PORT N\n");
    return 2;
}
