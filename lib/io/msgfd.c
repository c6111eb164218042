/*
 * msgfd - message content from a file descriptor.
 *
 * Exports smtpx_msg_add_fd() of <libsmtpx/msg.h>.  The msg layer does no
 * I/O, so reading a descriptor lives here, on top of its public API: the
 * descriptor becomes an smtpx_msg_read_fn.  read(2) is retried on EINTR;
 * other errors become SMTPX_ERR_IO with errno kept.
 */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include <libsmtpx/msg.h>

static smtpx_ssize msgfd_read(void *ctx, uint8_t *buf, size_t len)
{
    int fd = (int)(intptr_t)ctx;
    ssize_t n;

    do
        n = read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n < 0 ? SMTPX_ERR_IO : (smtpx_ssize)n;
}

int smtpx_msg_add_fd(smtpx_msg *m, const smtpx_msg_part *spec, int fd)
{
    smtpx_msg_part p;

    if (m == NULL || spec == NULL || fd < 0 ||
        spec->size < sizeof(smtpx_msg_part))
        return SMTPX_ERR_INVALID_ARGUMENT;
    p = *spec;
    p.data = NULL;
    p.len = 0;
    p.read = msgfd_read;
    p.read_ctx = (void *)(intptr_t)fd;
    return smtpx_msg_add_part(m, &p);
}
