/*
 * local - local delivery to an mbox file and to a command.
 *
 * Exports smtpx_mbox_deliver() and smtpx_pipe_deliver() of
 * <libsmtpx/mta.h>.
 *
 * mbox: the message is appended as mutt and Dovecot read it (mboxrd: a
 * "From " line, body lines that begin with ">*From " get one more '>', LF
 * line ends, an empty line after the message).  Both locks that mail
 * readers take are taken: a dot-lock (path.lock, created O_EXCL; one older
 * than 5 minutes is stale and removed, as procmail does) and an fcntl()
 * write lock on the file.  The message is written, fsync'ed and only then
 * the locks released; on any failure the file is cut back to the size it
 * had, so no reader ever sees half a message once the lock is gone.
 *
 * pipe: the command gets the message on its standard input and the
 * envelope in its environment; its exit status decides, as Postfix's pipe
 * and local delivery agents do: 0 delivered, 75 (EX_TEMPFAIL) deferred,
 * anything else failed with the command's first output line in the reply.
 * A command that runs over its time is killed (its whole process group).
 */
#define _GNU_SOURCE /* pipe2; kill() of a group, fchmod */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libsmtpx/mta.h>

#include "base/error.h"

#define MBOX_LOCK_WAIT_MS  10000
#define MBOX_LOCK_STALE_S  300
#define PIPE_OUTPUT_KEEP   1024
#define PIPE_DEFAULT_MS    600000
#define EX_TEMPFAIL_STATUS 75

static uint64_t local_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void local_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- mbox ---------------------------------------------------------------- */

typedef struct mbox_w {
    int fd;
    char buf[65536];
    size_t used;
    int err;
} mbox_w;

static void mbox_flush(mbox_w *w)
{
    size_t off = 0;

    while (w->err == 0 && off < w->used) {
        ssize_t n = write(w->fd, w->buf + off, w->used - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            w->err = smtpx__errno_code(n < 0 ? errno : EIO);
            break;
        }
        off += (size_t)n;
    }
    w->used = 0;
}

static void mbox_put(mbox_w *w, const char *p, size_t n)
{
    while (n > 0 && w->err == 0) {
        size_t k = sizeof(w->buf) - w->used;
        if (k > n)
            k = n;
        memcpy(w->buf + w->used, p, k);
        w->used += k;
        p += k;
        n -= k;
        if (w->used == sizeof(w->buf))
            mbox_flush(w);
    }
}

/* mbox_line - one line of the message (without its line end): quoted if it
 * begins with >*From , then LF */
static void mbox_line(mbox_w *w, const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && p[i] == '>')
        i++;
    if (n - i >= 5 && memcmp(p + i, "From ", 5) == 0)
        mbox_put(w, ">", 1);
    mbox_put(w, p, n);
    mbox_put(w, "\n", 1);
}

static int mbox_dotlock(const char *lock)
{
    uint64_t end = local_now_ms() + MBOX_LOCK_WAIT_MS;
    struct stat st;
    int fd;

    for (;;) {
        fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (errno != EEXIST)
            return smtpx__errno_code(errno);
        if (stat(lock, &st) == 0 &&
            time(NULL) - st.st_mtime > MBOX_LOCK_STALE_S)
            (void)unlink(lock);
        if (local_now_ms() >= end)
            return SMTPX_ERR_TIMEOUT;
        local_sleep_ms(50);
    }
}

static int mbox_fcntl_lock(int fd)
{
    uint64_t end = local_now_ms() + MBOX_LOCK_WAIT_MS;
    struct flock fl;

    for (;;) {
        memset(&fl, 0, sizeof(fl));
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (fcntl(fd, F_SETLK, &fl) == 0)
            return 0;
        if (errno != EACCES && errno != EAGAIN && errno != EINTR)
            return SMTPX_ERR_IO;
        if (local_now_ms() >= end)
            return SMTPX_ERR_TIMEOUT;
        local_sleep_ms(50);
    }
}

/* The line being put together from the reader's pieces. */
typedef struct mbox_line_buf {
    char *p;
    size_t len, cap;
} mbox_line_buf;

static int mbox_line_add(mbox_line_buf *l, const uint8_t *p, size_t n)
{
    if (l->len + n + 1 > l->cap) {
        size_t nc = (l->len + n + 1) * 2;
        char *np = realloc(l->p, nc);
        if (np == NULL)
            return SMTPX_ERR_NOMEM;
        l->p = np;
        l->cap = nc;
    }
    memcpy(l->p + l->len, p, n);
    l->len += n;
    return 0;
}

/* mbox_line_end - the line is complete: written without a CR before its
 * end */
static void mbox_line_end(mbox_w *w, mbox_line_buf *l)
{
    if (l->len > 0 && l->p[l->len - 1] == '\r')
        l->len--;
    mbox_line(w, l->p, l->len);
    l->len = 0;
}

/* mbox_copy - the message from read_fn, line by line (split at LF), and
 * the empty line after it */
static int mbox_copy(mbox_w *w, smtpx_body_read_fn *read_fn, void *ctx)
{
    uint8_t in[16384];
    mbox_line_buf l = {NULL, 0, 0};
    int rc = 0;

    for (;;) {
        smtpx_ssize got = read_fn(ctx, in, sizeof(in));
        size_t k, start = 0;

        if (got <= 0) {
            rc = (int)got;
            break;
        }
        for (k = 0; k < (size_t)got && rc == 0; k++) {
            if (in[k] != '\n')
                continue;
            rc = mbox_line_add(&l, in + start, k - start);
            if (rc == 0)
                mbox_line_end(w, &l);
            start = k + 1;
        }
        if (rc == 0)
            rc = mbox_line_add(&l, in + start, (size_t)got - start);
        if (rc != 0)
            break;
    }
    if (rc == 0) {
        if (l.len > 0) /* a last line without its line end */
            mbox_line_end(w, &l);
        /* An empty line separates messages (every line has ended). */
        mbox_put(w, "\n", 1);
    }
    free(l.p);
    return rc;
}

/* mbox_from_line - "From SENDER DATE" in asctime's form, in UTC */
static void mbox_from_line(mbox_w *w, const char *from, int64_t unix_time)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
                                       "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
                                         "May", "Jun", "Jul", "Aug",
                                         "Sep", "Oct", "Nov", "Dec"};
    char head[1200];
    time_t t = (time_t)unix_time;
    struct tm tm;
    int n;

    gmtime_r(&t, &tm);
    n = snprintf(head, sizeof(head), "From %s %s %s %2d %02d:%02d:%02d %d\n",
                 from[0] ? from : "MAILER-DAEMON", days[tm.tm_wday % 7],
                 months[tm.tm_mon % 12], tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, tm.tm_year + 1900);
    mbox_put(w, head, (size_t)n);
}

/* mbox_append - the message at the end of the locked file; on failure the
 * file is cut back to its old size */
static int mbox_append(mbox_w *w, const char *from, int64_t unix_time,
                       smtpx_body_read_fn *read_fn, void *ctx)
{
    struct stat st;
    int rc;

    if (fstat(w->fd, &st) != 0)
        return SMTPX_ERR_IO;
    mbox_from_line(w, from, unix_time);
    rc = mbox_copy(w, read_fn, ctx);
    if (rc == 0) {
        mbox_flush(w);
        if (w->err == 0 && fsync(w->fd) != 0)
            w->err = smtpx__errno_code(errno);
        rc = w->err;
    }
    if (rc != 0 && ftruncate(w->fd, st.st_size) == 0)
        (void)fsync(w->fd);
    return rc;
}

int smtpx_mbox_deliver(const char *path, const char *from, int64_t unix_time,
                       smtpx_body_read_fn *read_fn, void *ctx, unsigned flags)
{
    char lock[4200];
    mbox_w *w;
    int rc, i;

    if (path == NULL || from == NULL || read_fn == NULL ||
        (flags & ~SMTPX_MBOX_CREATE) != 0 || strlen(path) > 4000)
        return SMTPX_ERR_INVALID_ARGUMENT;
    for (i = 0; from[i] != '\0'; i++)
        if ((unsigned char)from[i] < 0x20 || from[i] == ' ' || i > 998)
            return SMTPX_ERR_INVALID_ARGUMENT;
    w = malloc(sizeof(*w));
    if (w == NULL)
        return SMTPX_ERR_NOMEM;
    w->used = 0;
    w->err = 0;
    snprintf(lock, sizeof(lock), "%s.lock", path);
    rc = mbox_dotlock(lock);
    if (rc != 0) {
        free(w);
        return rc;
    }
    w->fd = open(path,
                 O_WRONLY | O_APPEND | O_CLOEXEC |
                     ((flags & SMTPX_MBOX_CREATE) ? O_CREAT : 0),
                 0600);
    if (w->fd < 0) {
        rc = smtpx__errno_code(errno);
    } else {
        rc = mbox_fcntl_lock(w->fd);
        if (rc == 0)
            rc = mbox_append(w, from, unix_time, read_fn, ctx);
        close(w->fd); /* releases the fcntl lock */
    }
    (void)unlink(lock);
    free(w);
    return rc;
}

/* ---- pipe ---------------------------------------------------------------- */

static void pipe_reply(smtpx_reply *r, int code, int e0, int e1, int e2,
                       char *text, size_t size, const char *what,
                       const char *out)
{
    size_t i;

    r->code = code;
    r->enh[0] = (uint16_t)e0;
    r->enh[1] = (uint16_t)e1;
    r->enh[2] = (uint16_t)e2;
    if (text != NULL && size > 0) {
        snprintf(text, size, "%s%s%s", what, out && out[0] ? ": " : "",
                 out ? out : "");
        for (i = 0; text[i] != '\0'; i++)
            if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
                text[i] = ' ';
    }
    r->text = text;
}

/* A command being fed its message and read for its output. */
typedef struct pipe_run {
    int in_fd, out_fd; /* our ends: its standard input, its output */
    int in_open, out_open, eof_in;
    uint8_t buf[16384]; /* read from the message, not yet written */
    size_t pend, poff;
    char out[PIPE_OUTPUT_KEEP + 1]; /* the start of its output */
    size_t out_len;
    int reader_err, timed_out;
} pipe_run;

/* pipe_spawn - /bin/sh -c command in a process group of its own, with env
 * (PATH added); 0, or the errno that stopped it */
static int pipe_spawn(const char *command, const char *const *env, pid_t *pid,
                      int *in_fd, int *out_fd)
{
    const char *argv[4] = {"/bin/sh", "-c", NULL, NULL};
    char path_env[] = "PATH=/usr/bin:/bin", *envp[64];
    int in_pipe[2], out_pipe[2], e;
    size_t nenv = 0;

    envp[nenv++] = path_env;
    while (env != NULL && env[nenv - 1] != NULL && nenv < 63) {
        envp[nenv] = (char *)(uintptr_t)env[nenv - 1];
        nenv++;
    }
    envp[nenv] = NULL;
    argv[2] = command;
    /* Close-on-exec: a command started at the same time on another thread
     * must not hold this one's pipes open (dup2 clears it on 0, 1, 2). */
    if (pipe2(in_pipe, O_CLOEXEC) != 0)
        return errno;
    if (pipe2(out_pipe, O_CLOEXEC) != 0) {
        e = errno;
        close(in_pipe[0]);
        close(in_pipe[1]);
        return e;
    }
    *pid = fork();
    if (*pid < 0) {
        e = errno;
        close(in_pipe[0]);
        close(in_pipe[1]);
        close(out_pipe[0]);
        close(out_pipe[1]);
        return e;
    }
    if (*pid == 0) {
        sigset_t none;
        int fd;
        /* The command starts with no signal blocked, whatever the calling
         * thread blocks (SIGPIPE while it writes, everything on the
         * delivery engine's threads). */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        dup2(out_pipe[1], 2);
        for (fd = 3; fd < 1024; fd++)
            close(fd);
        signal(SIGPIPE, SIG_DFL);
        execve("/bin/sh", (char *const *)(uintptr_t)argv, envp);
        _exit(127);
    }
    setpgid(*pid, *pid);
    close(in_pipe[0]);
    close(out_pipe[1]);
    fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
    fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
    *in_fd = in_pipe[1];
    *out_fd = out_pipe[0];
    return 0;
}

/* pipe_refill - more of the message when all read so far is written; the
 * command's input is closed at its end */
static void pipe_refill(pipe_run *r, smtpx_body_read_fn *read_fn, void *ctx)
{
    if (r->in_open && r->pend == r->poff && !r->eof_in) {
        smtpx_ssize got = read_fn(ctx, r->buf, sizeof(r->buf));
        if (got < 0) {
            r->reader_err = (int)got;
            r->eof_in = 1;
        } else if (got == 0) {
            r->eof_in = 1;
        } else {
            r->pend = (size_t)got;
            r->poff = 0;
        }
    }
    if (r->in_open && r->eof_in && r->pend == r->poff) {
        close(r->in_fd);
        r->in_open = 0;
    }
}

/* pipe_step - wait up to wait_ms, then write what the command can take
 * and keep the start of what it says */
static void pipe_step(pipe_run *r, int wait_ms)
{
    struct pollfd pfd[2];
    nfds_t np = 0;

    if (r->in_open) {
        pfd[np].fd = r->in_fd;
        pfd[np++].events = POLLOUT;
    }
    pfd[np].fd = r->out_fd;
    pfd[np++].events = POLLIN;
    if (poll(pfd, np, wait_ms) < 0) {
        if (errno != EINTR)
            r->out_open = 0;
        return;
    }
    if (r->in_open && (pfd[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
        ssize_t wn = write(r->in_fd, r->buf + r->poff, r->pend - r->poff);
        if (wn > 0) {
            r->poff += (size_t)wn;
        } else if (wn < 0 && errno != EAGAIN && errno != EINTR) {
            /* The command stopped reading: its exit status decides. */
            close(r->in_fd);
            r->in_open = 0;
        }
    }
    if (pfd[np - 1].revents & (POLLIN | POLLHUP | POLLERR)) {
        char tmp[4096];
        ssize_t rn = read(r->out_fd, tmp, sizeof(tmp));
        if (rn > 0) {
            size_t k = (size_t)rn;
            if (k > PIPE_OUTPUT_KEEP - r->out_len)
                k = PIPE_OUTPUT_KEEP - r->out_len;
            memcpy(r->out + r->out_len, tmp, k);
            r->out_len += k;
        } else if (rn == 0 || (errno != EAGAIN && errno != EINTR)) {
            r->out_open = 0;
        }
    }
}

/* pipe_result - what the run and the exit status mean */
static void pipe_result(pipe_run *r, int status, smtpx_reply *result,
                        char *text, size_t size)
{
    char what[64];

    r->out[r->out_len] = '\0';
    r->out[strcspn(r->out, "\r\n")] = '\0';
    if (r->timed_out)
        pipe_reply(result, 550, 5, 3, 0, text, size, "command timed out",
                   r->out);
    else if (r->reader_err != 0)
        pipe_reply(result, 451, 4, 3, 0, text, size, "cannot read the message",
                   smtpx_strerror(r->reader_err));
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        pipe_reply(result, 250, 2, 0, 0, text, size, "delivered to command",
                   r->out);
    else if (WIFEXITED(status) && WEXITSTATUS(status) == EX_TEMPFAIL_STATUS)
        pipe_reply(result, 451, 4, 3, 0, text, size,
                   "command deferred (exit 75)", r->out);
    else {
        if (WIFEXITED(status))
            snprintf(what, sizeof(what), "command failed (exit %d)",
                     WEXITSTATUS(status));
        else
            snprintf(what, sizeof(what), "command killed by signal %d",
                     WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        pipe_reply(result, 550, 5, 3, 0, text, size, what, r->out);
    }
}

int smtpx_pipe_deliver(const char *command, const char *const *env,
                       smtpx_body_read_fn *read_fn, void *ctx, int timeout_ms,
                       smtpx_reply *result, char *text, size_t text_size)
{
    pipe_run run, *r = &run;
    sigset_t pipe_set, old_mask, pending;
    uint64_t end;
    pid_t pid = -1;
    int status = 0, had_pipe, e;

    if (command == NULL || read_fn == NULL || result == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (timeout_ms <= 0)
        timeout_ms = PIPE_DEFAULT_MS;
    memset(r, 0, sizeof(*r));
    e = pipe_spawn(command, env, &pid, &r->in_fd, &r->out_fd);
    if (e != 0) {
        pipe_reply(result, 451, 4, 3, 0, text, text_size,
                   "cannot run the command", strerror(e));
        return SMTPX_ERR_IO;
    }
    r->in_open = r->out_open = 1;
    /* A command that exits without reading its input must not kill us
     * with SIGPIPE: it is blocked in this thread while we write, and one
     * raised meanwhile is taken back before the mask is restored. */
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    had_pipe = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    end = local_now_ms() + (uint64_t)timeout_ms;
    while (r->out_open) {
        uint64_t now = local_now_ms();
        if (now >= end) {
            r->timed_out = 1;
            break;
        }
        pipe_refill(r, read_fn, ctx);
        pipe_step(r, (int)(end - now));
    }
    if (r->in_open)
        close(r->in_fd);
    close(r->out_fd);
    if (r->timed_out)
        kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    sigpending(&pending);
    if (!had_pipe && sigismember(&pending, SIGPIPE)) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    pipe_result(r, status, result, text, text_size);
    return 0;
}
