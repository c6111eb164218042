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
#define _DEFAULT_SOURCE /* kill() of a group, fchmod */
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

static int local_code(int e)
{
    if (e == ENOSPC)
        return SMTPX_ERR_NOSPACE;
#ifdef EDQUOT
    if (e == EDQUOT)
        return SMTPX_ERR_NOSPACE;
#endif
    return SMTPX_ERR_IO;
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
            w->err = local_code(n < 0 ? errno : EIO);
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
            return local_code(errno);
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

int smtpx_mbox_deliver(const char *path, const char *from, int64_t unix_time,
                       smtpx_body_read_fn *read_fn, void *ctx, unsigned flags)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
                                       "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
                                         "May", "Jun", "Jul", "Aug",
                                         "Sep", "Oct", "Nov", "Dec"};
    char lock[4200], head[1200];
    uint8_t in[16384];
    char *line = NULL;
    size_t line_len = 0, line_cap = 0;
    mbox_w *w;
    struct stat st;
    struct tm tm;
    time_t t;
    off_t old_size;
    int rc, n, i;

    if (path == NULL || from == NULL || read_fn == NULL ||
        (flags & ~SMTPX_MBOX_CREATE) != 0 || strlen(path) > 4000)
        return SMTPX_ERR_INVALID_ARGUMENT;
    for (i = 0; from[i] != '\0'; i++)
        if ((unsigned char)from[i] < 0x20 || from[i] == ' ' || i > 998)
            return SMTPX_ERR_INVALID_ARGUMENT;
    w = malloc(sizeof(*w));
    if (w == NULL)
        return SMTPX_ERR_NOMEM;
    memset(w, 0, offsetof(mbox_w, buf));
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
        rc = local_code(errno);
        goto unlock;
    }
    rc = mbox_fcntl_lock(w->fd);
    if (rc != 0)
        goto close;
    if (fstat(w->fd, &st) != 0) {
        rc = SMTPX_ERR_IO;
        goto close;
    }
    old_size = st.st_size;
    t = (time_t)unix_time;
    gmtime_r(&t, &tm);
    n = snprintf(head, sizeof(head), "From %s %s %s %2d %02d:%02d:%02d %d\n",
                 from[0] ? from : "MAILER-DAEMON", days[tm.tm_wday % 7],
                 months[tm.tm_mon % 12], tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, tm.tm_year + 1900);
    mbox_put(w, head, (size_t)n);
    /* Lines, split at LF; a CR before the LF is dropped. */
    for (;;) {
        smtpx_ssize got = read_fn(ctx, in, sizeof(in));
        size_t k, start = 0;

        if (got < 0) {
            rc = (int)got;
            goto undo;
        }
        if (got == 0)
            break;
        for (k = 0; k < (size_t)got; k++) {
            if (in[k] != '\n')
                continue;
            {
                size_t piece = k - start;
                if (line_len + piece + 1 > line_cap) {
                    size_t nc = (line_len + piece + 1) * 2;
                    char *nl = realloc(line, nc);
                    if (nl == NULL) {
                        rc = SMTPX_ERR_NOMEM;
                        goto undo;
                    }
                    line = nl;
                    line_cap = nc;
                }
                memcpy(line + line_len, in + start, piece);
                line_len += piece;
                if (line_len > 0 && line[line_len - 1] == '\r')
                    line_len--;
                mbox_line(w, line, line_len);
                line_len = 0;
                start = k + 1;
            }
        }
        if (start < (size_t)got) {
            size_t piece = (size_t)got - start;
            if (line_len + piece + 1 > line_cap) {
                size_t nc = (line_len + piece + 1) * 2;
                char *nl = realloc(line, nc);
                if (nl == NULL) {
                    rc = SMTPX_ERR_NOMEM;
                    goto undo;
                }
                line = nl;
                line_cap = nc;
            }
            memcpy(line + line_len, in + start, piece);
            line_len += piece;
        }
    }
    if (line_len > 0) { /* a last line without its line end */
        if (line[line_len - 1] == '\r')
            line_len--;
        mbox_line(w, line, line_len);
    }
    /* An empty line separates messages (every line has ended above). */
    mbox_put(w, "\n", 1);
    mbox_flush(w);
    if (w->err == 0 && fsync(w->fd) != 0)
        w->err = local_code(errno);
    rc = w->err;
undo:
    if (rc != 0 && ftruncate(w->fd, old_size) == 0)
        (void)fsync(w->fd);
close:
    close(w->fd); /* releases the fcntl lock */
unlock:
    (void)unlink(lock);
    free(line);
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

int smtpx_pipe_deliver(const char *command, const char *const *env,
                       smtpx_body_read_fn *read_fn, void *ctx, int timeout_ms,
                       smtpx_reply *result, char *text, size_t text_size)
{
    char out[PIPE_OUTPUT_KEEP + 1], *envp[64];
    const char *argv[4] = {"/bin/sh", "-c", NULL, NULL};
    int in_pipe[2], out_pipe[2], status = 0, timed_out = 0, reader_err = 0;
    size_t out_len = 0, nenv = 0, pend = 0, poff = 0;
    uint8_t buf[16384];
    uint64_t end;
    pid_t pid;
    int in_open = 1, out_open = 1, eof_in = 0;
    char path_env[] = "PATH=/usr/bin:/bin";
    sigset_t pipe_set, old_mask, pending;
    int had_pipe;

    if (command == NULL || read_fn == NULL || result == NULL)
        return SMTPX_ERR_INVALID_ARGUMENT;
    if (timeout_ms <= 0)
        timeout_ms = PIPE_DEFAULT_MS;
    envp[nenv++] = path_env;
    while (env != NULL && env[nenv - 1] != NULL && nenv < 63) {
        envp[nenv] = (char *)(uintptr_t)env[nenv - 1];
        nenv++;
    }
    envp[nenv] = NULL;
    argv[2] = command;
    if (pipe(in_pipe) != 0) {
        pipe_reply(result, 451, 4, 3, 0, text, text_size,
                   "cannot run the command", strerror(errno));
        return SMTPX_ERR_IO;
    }
    if (pipe(out_pipe) != 0) {
        close(in_pipe[0]);
        close(in_pipe[1]);
        pipe_reply(result, 451, 4, 3, 0, text, text_size,
                   "cannot run the command", strerror(errno));
        return SMTPX_ERR_IO;
    }
    pid = fork();
    if (pid < 0) {
        close(in_pipe[0]);
        close(in_pipe[1]);
        close(out_pipe[0]);
        close(out_pipe[1]);
        pipe_reply(result, 451, 4, 3, 0, text, text_size,
                   "cannot run the command", strerror(errno));
        return SMTPX_ERR_IO;
    }
    if (pid == 0) {
        int fd;
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
    setpgid(pid, pid);
    /* A command that exits without reading its input must not kill us
     * with SIGPIPE: it is blocked in this thread while we write, and one
     * raised meanwhile is taken back before the mask is restored. */
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    had_pipe = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    close(in_pipe[0]);
    close(out_pipe[1]);
    fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
    fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
    end = local_now_ms() + (uint64_t)timeout_ms;
    while (out_open) {
        struct pollfd pfd[2];
        nfds_t np = 0;
        uint64_t now = local_now_ms();
        int wait;

        if (now >= end) {
            timed_out = 1;
            break;
        }
        if (in_open && pend == poff && !eof_in) {
            smtpx_ssize got = read_fn(ctx, buf, sizeof(buf));
            if (got < 0) {
                reader_err = (int)got;
                eof_in = 1;
            } else if (got == 0) {
                eof_in = 1;
            } else {
                pend = (size_t)got;
                poff = 0;
            }
        }
        if (in_open && eof_in && pend == poff) {
            close(in_pipe[1]);
            in_open = 0;
        }
        if (in_open) {
            pfd[np].fd = in_pipe[1];
            pfd[np++].events = POLLOUT;
        }
        pfd[np].fd = out_pipe[0];
        pfd[np++].events = POLLIN;
        wait = (int)(end - now);
        if (poll(pfd, np, wait) < 0 && errno != EINTR)
            break;
        if (in_open && (pfd[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t wn = write(in_pipe[1], buf + poff, pend - poff);
            if (wn > 0) {
                poff += (size_t)wn;
            } else if (wn < 0 && errno != EAGAIN && errno != EINTR) {
                /* The command stopped reading: its exit status decides. */
                close(in_pipe[1]);
                in_open = 0;
            }
        }
        if (pfd[np - 1].revents & (POLLIN | POLLHUP | POLLERR)) {
            char tmp[4096];
            ssize_t rn = read(out_pipe[0], tmp, sizeof(tmp));
            if (rn > 0) {
                size_t k = (size_t)rn;
                if (k > PIPE_OUTPUT_KEEP - out_len)
                    k = PIPE_OUTPUT_KEEP - out_len;
                memcpy(out + out_len, tmp, k);
                out_len += k;
            } else if (rn == 0 || (errno != EAGAIN && errno != EINTR)) {
                out_open = 0;
            }
        }
    }
    if (in_open)
        close(in_pipe[1]);
    close(out_pipe[0]);
    if (timed_out)
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
    out[out_len] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    if (timed_out)
        pipe_reply(result, 550, 5, 3, 0, text, text_size, "command timed out",
                   out);
    else if (reader_err != 0)
        pipe_reply(result, 451, 4, 3, 0, text, text_size,
                   "cannot read the message", smtpx_strerror(reader_err));
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        pipe_reply(result, 250, 2, 0, 0, text, text_size,
                   "delivered to command", out);
    else if (WIFEXITED(status) && WEXITSTATUS(status) == EX_TEMPFAIL_STATUS)
        pipe_reply(result, 451, 4, 3, 0, text, text_size,
                   "command deferred (exit 75)", out);
    else {
        char what[64];
        if (WIFEXITED(status))
            snprintf(what, sizeof(what), "command failed (exit %d)",
                     WEXITSTATUS(status));
        else
            snprintf(what, sizeof(what), "command killed by signal %d",
                     WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        pipe_reply(result, 550, 5, 3, 0, text, text_size, what, out);
    }
    return 0;
}
