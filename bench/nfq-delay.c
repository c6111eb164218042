/*
 * nfq-delay - hold every packet of an NFQUEUE for a fixed time, then let
 * it go: a one-way delay for links where the kernel has no netem.
 *
 *   nfq-delay QUEUE DELAY_MS SECONDS
 *
 * Packets reach the queue through an iptables rule such as
 *   iptables -A OUTPUT -j NFQUEUE --queue-num QUEUE
 * and are accepted DELAY_MS after they arrived, in order.  The program
 * stops by itself after SECONDS.  Used by bench/rtt.sh inside network
 * namespaces that the benchmark creates.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

#define HELD_MAX 65536

typedef struct held {
    uint32_t id;
    uint64_t release_us;
} held;

static held ring[HELD_MAX];
static size_t head, count;
static uint64_t delay_us;

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg,
                     struct nfq_data *nfa, void *data)
{
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    uint32_t id;

    (void)msg;
    (void)data;
    if (ph == NULL)
        return 0;
    id = (uint32_t)ntohl(ph->packet_id);
    if (count == HELD_MAX) /* full: let it go at once rather than drop it */
        return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
    ring[(head + count) % HELD_MAX].id = id;
    ring[(head + count) % HELD_MAX].release_us = now_us() + delay_us;
    count++;
    return 0;
}

int main(int argc, char **argv)
{
    struct nfq_handle *h;
    struct nfq_q_handle *qh;
    char buf[65536];
    uint64_t end;
    int fd;

    if (argc != 4) {
        fprintf(stderr, "usage: nfq-delay QUEUE DELAY_MS SECONDS\n");
        return 2;
    }
    delay_us = strtoull(argv[2], NULL, 10) * 1000u;
    end = now_us() + strtoull(argv[3], NULL, 10) * 1000000u;
    h = nfq_open();
    if (h == NULL) {
        perror("nfq_open");
        return 1;
    }
    nfq_unbind_pf(h, AF_INET);
    nfq_bind_pf(h, AF_INET);
    qh = nfq_create_queue(h, (uint16_t)atoi(argv[1]), on_packet, NULL);
    if (qh == NULL || nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
        perror("nfq_create_queue");
        return 1;
    }
    fd = nfq_fd(h);
    while (now_us() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        int timeout = 100;
        uint64_t t = now_us();

        while (count > 0 && ring[head].release_us <= t) {
            nfq_set_verdict(qh, ring[head].id, NF_ACCEPT, 0, NULL);
            head = (head + 1) % HELD_MAX;
            count--;
        }
        if (count > 0)
            timeout = (int)((ring[head].release_us - t) / 1000u) + 1;
        if (poll(&p, 1, timeout) > 0) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n > 0)
                nfq_handle_packet(h, buf, (int)n);
            else if (n < 0 && errno != EINTR && errno != ENOBUFS)
                break;
        }
    }
    while (count > 0) {
        nfq_set_verdict(qh, ring[head].id, NF_ACCEPT, 0, NULL);
        head = (head + 1) % HELD_MAX;
        count--;
    }
    nfq_destroy_queue(qh);
    nfq_close(h);
    return 0;
}
