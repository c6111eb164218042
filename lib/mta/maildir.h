/*
 * maildir - internal declarations of the Maildir writer.
 *
 * Every file-system call of maildir.c goes through an smtpx__fs table, so
 * that tests can make fsync, rename or write fail on purpose (ENOSPC,
 * EIO...) and fix the clock and host name that unique names are made of.
 * Nothing but the tests replaces it.
 */
#ifndef SMTPX_LIB_MAILDIR_H
#define SMTPX_LIB_MAILDIR_H

#include <sys/types.h>
#include <time.h>

#include <libsmtpx/mta.h>

/*
 * The file-system calls, with the signatures and errno conventions of
 * their POSIX namesakes (open takes its mode always, clock is
 * clock_gettime(CLOCK_REALTIME)).
 */
typedef struct smtpx__fs {
    int (*open)(const char *path, int flags, mode_t mode);
    ssize_t (*write)(int fd, const void *buf, size_t len);
    int (*fsync)(int fd);
    int (*close)(int fd);
    int (*rename)(const char *from, const char *to);
    int (*unlink)(const char *path);
    int (*mkdir)(const char *path, mode_t mode);
    int (*clock)(struct timespec *ts);
    int (*gethostname)(char *name, size_t size);
    int (*fdatasync)(int fd); /* NULL: fsync */
} smtpx__fs;

/* The real calls. */
const smtpx__fs *smtpx__maildir_fs_default(void);

/*
 * smtpx_maildir_open() with the file-system calls of fs (NULL: the real
 * ones); fs is used by reference and must outlive the Maildir.  Tests use
 * it to inject faults; there is no global switch.
 */
int smtpx__maildir_open_fs(smtpx_maildir **out, const char *path,
                           unsigned flags, const smtpx_mem *mem,
                           const smtpx__fs *fs);

#endif
