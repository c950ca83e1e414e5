/*
 * nl-replay: the hand-written C floor for bench/filter-install.ts.
 *
 * Sends pre-encoded rtnetlink requests (the very bytes the SDK would send, written by the
 * benchmark) from a file into a network namespace the way a minimal C program would: one
 * sendmsg per chunk (at most MAX_MSGS messages / MAX_BYTES bytes, the SDK's batch limits), then
 * read answers until every request of the chunk that asked for an ACK (NLM_F_ACK) is answered;
 * the others answer only when refused, before the chunk's ACK. With ACK_EACH = 1, NLM_F_ACK is
 * set on every message first (one ACK per request, as most netlink libraries do). Nothing is
 * encoded or decoded beyond counting answers and errors, so this is the kernel + system-call
 * cost any C implementation pays.
 *
 *   nl-replay NETNS_PATH MSG_FILE MAX_MSGS MAX_BYTES [ACK_EACH]  ->  "<ok> <errors> <first-errno> <ns>"
 *
 * Timing covers the sends and receives only (not process start or reading the file).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

static void die(const char *what) {
  fprintf(stderr, "nl-replay: %s: %s\n", what, strerror(errno));
  exit(2);
}

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: nl-replay NETNS_PATH MSG_FILE MAX_MSGS MAX_BYTES [ACK_EACH]\n");
    return 2;
  }
  long max_msgs = atol(argv[3]), max_bytes = atol(argv[4]);
  int ack_each = argc == 6 && atoi(argv[5]) != 0;
  int nsfd = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) die("open netns");
  if (setns(nsfd, CLONE_NEWNET) < 0) die("setns");
  close(nsfd);

  int f = open(argv[2], O_RDONLY | O_CLOEXEC);
  if (f < 0) die("open messages");
  struct stat st;
  if (fstat(f, &st) < 0) die("stat messages");
  size_t len = (size_t)st.st_size;
  char *buf = malloc(len ? len : 1);
  if (!buf) die("malloc");
  for (size_t got = 0; got < len;) {
    ssize_t r = read(f, buf + got, len - got);
    if (r <= 0) die("read messages");
    got += (size_t)r;
  }
  close(f);
  if (ack_each)
    for (size_t at = 0; at + NLMSG_HDRLEN <= len; at += NLMSG_ALIGN(((struct nlmsghdr *)(buf + at))->nlmsg_len))
      ((struct nlmsghdr *)(buf + at))->nlmsg_flags |= NLM_F_ACK;

  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) die("socket");
  int rcv = 4 << 20, snd = 1 << 20, one = 1;
  if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) < 0) setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  if (setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd) < 0) setsockopt(s, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
  setsockopt(s, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (bind(s, (struct sockaddr *)&local, sizeof local) < 0) die("bind");
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};

  static char rbuf[1 << 16];
  long ok = 0, errors = 0, first_errno = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  size_t pos = 0;
  while (pos < len) {
    /* one chunk: whole messages up to the SDK's limits */
    size_t end = pos;
    long n = 0, acks = 0;
    static uint32_t ack_seqs[4096];
    while (end < len && n < max_msgs && n < 4096) {
      struct nlmsghdr *h = (struct nlmsghdr *)(buf + end);
      size_t l = NLMSG_ALIGN(h->nlmsg_len);
      if (n > 0 && end + l - pos > (size_t)max_bytes) break;
      if (h->nlmsg_flags & NLM_F_ACK) ack_seqs[acks++] = h->nlmsg_seq;
      end += l;
      n++;
    }
    struct iovec iov = {buf + pos, end - pos};
    struct msghdr mh = {.msg_name = &kernel, .msg_namelen = sizeof kernel, .msg_iov = &iov, .msg_iovlen = 1};
    if (sendmsg(s, &mh, 0) < 0) die("sendmsg");
    long chunk = n, chunk_errors = 0;
    n = acks; /* answers still due: one per message that asked for an ACK */
    while (n > 0) {
      ssize_t r = recv(s, rbuf, sizeof rbuf, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        die("recv");
      }
      for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf; NLMSG_OK(h, (size_t)r); h = NLMSG_NEXT(h, r)) {
        if (h->nlmsg_type != NLMSG_ERROR) continue;
        struct nlmsgerr *e = NLMSG_DATA(h);
        if (e->error) {
          chunk_errors++;
          if (!first_errno) first_errno = -e->error;
        }
        for (long i = 0; i < acks; i++)
          if (ack_seqs[i] == h->nlmsg_seq) {
            n--;
            break;
          }
      }
    }
    errors += chunk_errors;
    ok += chunk - chunk_errors;
    pos = end;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long long ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
  printf("%ld %ld %ld %lld\n", ok, errors, first_errno, ns);
  return 0;
}
