/*
 * blast: a closed-loop UDP DNS load generator with batched system calls (sendmmsg/recvmmsg), for
 * the bench's worker-scaling runs (bench/run.mjs --generator blast).
 *
 * Why next to dnsperf: on this kind of machine dnsperf spends about as much CPU per query as the
 * server does (~8 us), so when the server takes every core, dnsperf's own share caps what any
 * server can show. blast sends and receives up to BATCH datagrams per system call and keeps no
 * per-query state beyond a 16-byte slot, so it costs a fraction of that per query.
 *
 * It reads the same input as `dnsperf -B`: raw DNS messages, each preceded by its 2-octet length
 * (RFC 1035 4.2.2), and replays them in order, in a loop, over S sockets with at most Q queries in
 * flight on each; only the ID is rewritten. A reply counts when it is a response (QR) to a query in
 * flight on that socket (its ID) and carries that query's question, octet for octet (the name's
 * case included: RFC 1035 servers echo the question as sent). Anything else counts as a mismatch.
 * Queries not answered within the timeout count as lost. `-a` matches by ID alone, for the bench's
 * reference server, which replays one precomputed answer whatever the question.
 *
 *   blast -s 127.0.0.1 -p PORT -f FILE [-l SECONDS] [-c SOCKETS] [-q OUTSTANDING] [-b BATCH] [-t TIMEOUT_MS] [-w NAP_US] [-a]
 *
 * Prints one JSON object on stdout: sent, completed, lost, mismatched, in flight at the end,
 * seconds, qps (replies within the run time over it), rcodes, latency p50/p99 (us), and the CPU
 * blast itself used (seconds, and µs per completed query).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_MSG 512
#define MAX_BATCH 256
#define MAX_SOCKETS 64
#define HIST_US 100000

struct pend {
  uint64_t sent_ns;
  uint32_t msg;
  uint32_t used;
};

struct sock {
  int fd;
  uint32_t inflight;
  uint16_t next_id;
  struct pend *pend; /* 65536, by ID */
};

static uint8_t *data;     /* the messages, back to back */
static uint32_t *moff;    /* offset of message i in data */
static uint16_t *mlen;    /* its length */
static uint16_t *qend;    /* end of its question section */
static uint32_t nmsg;
static uint64_t hist[HIST_US + 1];
static uint64_t rcodes[16];

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "blast: %s\n", what);
  exit(2);
}

/* End of the question section of message i (12 + name + 4), or 0 when it cannot be read. */
static uint16_t question_end(const uint8_t *m, uint16_t len) {
  uint32_t off = 12;
  if (len < 12 || m[4] != 0 || m[5] != 1) return 0;
  while (off < len && m[off] != 0) {
    if (m[off] > 63) return 0;
    off += 1 + m[off];
  }
  off += 1 + 4;
  return off <= len ? (uint16_t)off : 0;
}

static void load(const char *file) {
  FILE *f = fopen(file, "rb");
  if (!f) die("cannot open the input file");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *raw = malloc((size_t)size);
  if (!raw || fread(raw, 1, (size_t)size, f) != (size_t)size) die("cannot read the input file");
  fclose(f);
  uint32_t cap = 1024;
  moff = malloc(cap * sizeof *moff);
  mlen = malloc(cap * sizeof *mlen);
  qend = malloc(cap * sizeof *qend);
  for (long off = 0; off + 2 <= size;) {
    uint16_t len = (uint16_t)(raw[off] << 8 | raw[off + 1]);
    if (off + 2 + len > size || len > MAX_MSG) die("the input file is not a sequence of 2-octet-length-prefixed messages of at most 512 octets");
    if (nmsg == cap) {
      cap *= 2;
      moff = realloc(moff, cap * sizeof *moff);
      mlen = realloc(mlen, cap * sizeof *mlen);
      qend = realloc(qend, cap * sizeof *qend);
    }
    moff[nmsg] = (uint32_t)(off + 2);
    mlen[nmsg] = len;
    qend[nmsg] = question_end(raw + off + 2, len);
    if (qend[nmsg] == 0) die("a message in the input file has no readable single question");
    nmsg++;
    off += 2 + len;
  }
  if (nmsg == 0) die("the input file holds no message");
  data = raw;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static uint64_t percentile(uint64_t total, double p) {
  uint64_t want = (uint64_t)(total * p), seen = 0;
  for (uint32_t i = 0; i <= HIST_US; i++) {
    seen += hist[i];
    if (seen > want) return i;
  }
  return HIST_US;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *file = NULL;
  int port = 0, nsock = 4, batch = 32, id_only = 0, nap_us = 200;
  uint32_t outstanding = 64;
  double seconds = 10, timeout_ms = 1000;
  int opt;
  while ((opt = getopt(argc, argv, "s:p:f:l:c:q:b:t:w:a")) != -1) {
    switch (opt) {
      case 's': host = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 'f': file = optarg; break;
      case 'l': seconds = atof(optarg); break;
      case 'c': nsock = atoi(optarg); break;
      case 'q': outstanding = (uint32_t)atoi(optarg); break;
      case 'b': batch = atoi(optarg); break;
      case 't': timeout_ms = atof(optarg); break;
      case 'a': id_only = 1; break;
      case 'w': nap_us = atoi(optarg); break;
      default: die("usage: blast -s ADDR -p PORT -f FILE [-l SECONDS] [-c SOCKETS] [-q OUTSTANDING] [-b BATCH] [-t TIMEOUT_MS] [-w NAP_US] [-a]");
    }
  }
  if (!file || port <= 0 || port > 65535) die("-f FILE and -p PORT are required");
  if (nsock < 1 || nsock > MAX_SOCKETS || batch < 1 || batch > MAX_BATCH || outstanding < 1 || outstanding > 60000 || seconds <= 0 || timeout_ms <= 0 || nap_us < 0 || nap_us > 100000) die("an option is out of range");
  load(file);

  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &to.sin_addr) != 1) die("-s must be an IPv4 address");
  struct sock socks[MAX_SOCKETS];
  struct pollfd pfd[MAX_SOCKETS];
  for (int i = 0; i < nsock; i++) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof to) != 0) die("cannot open or connect a UDP socket");
    socks[i] = (struct sock){.fd = fd, .pend = calloc(65536, sizeof(struct pend))};
    pfd[i] = (struct pollfd){.fd = fd, .events = POLLIN};
  }

  static uint8_t sbuf[MAX_BATCH][MAX_MSG], rbuf[MAX_BATCH][MAX_MSG];
  struct mmsghdr smsg[MAX_BATCH], rmsg[MAX_BATCH];
  struct iovec siov[MAX_BATCH], riov[MAX_BATCH];
  uint16_t sid[MAX_BATCH];
  for (int j = 0; j < MAX_BATCH; j++) {
    riov[j] = (struct iovec){.iov_base = rbuf[j], .iov_len = MAX_MSG};
    rmsg[j] = (struct mmsghdr){.msg_hdr = {.msg_iov = &riov[j], .msg_iovlen = 1}};
    siov[j] = (struct iovec){.iov_base = sbuf[j]};
    smsg[j] = (struct mmsghdr){.msg_hdr = {.msg_iov = &siov[j], .msg_iovlen = 1}};
  }

  uint64_t sent = 0, completed = 0, in_run = 0, lost = 0, mismatched = 0;
  uint32_t next = 0;
  const uint64_t timeout_ns = (uint64_t)(timeout_ms * 1e6);
  double cpu0 = cpu_seconds();
  const uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9);
  uint64_t now = start, last_expire = start;
  int sending = 1;
  for (;;) {
    now = now_ns();
    if (sending && now >= end) sending = 0;
    uint32_t inflight_all = 0;
    int progress = 0, received = 0;
    for (int i = 0; i < nsock; i++) {
      struct sock *s = &socks[i];
      int n = recvmmsg(s->fd, rmsg, (unsigned)batch, MSG_DONTWAIT, NULL);
      if (n > 0) {
        progress = 1;
        received += n;
        uint64_t t = now_ns();
        for (int j = 0; j < n; j++) {
          const uint8_t *r = rbuf[j];
          uint32_t len = rmsg[j].msg_len;
          if (len < 12 || !(r[2] & 0x80)) { mismatched++; continue; }
          struct pend *p = &s->pend[r[0] << 8 | r[1]];
          if (!p->used) { mismatched++; continue; }
          const uint8_t *q = data + moff[p->msg];
          uint16_t qe = qend[p->msg];
          if (!id_only && (len < qe || memcmp(r + 4, q + 4, 2) != 0 || memcmp(r + 12, q + 12, qe - 12u) != 0)) { mismatched++; continue; }
          p->used = 0;
          s->inflight--;
          completed++;
          if (t <= end) in_run++;
          rcodes[r[3] & 0x0f]++;
          uint64_t us = (t - p->sent_ns) / 1000;
          hist[us > HIST_US ? HIST_US : us]++;
        }
      }
      if (sending && s->inflight < outstanding) {
        uint32_t k = outstanding - s->inflight;
        if (k > (uint32_t)batch) k = (uint32_t)batch;
        uint64_t t = now_ns();
        for (uint32_t j = 0; j < k; j++) {
          uint16_t id = s->next_id++;
          while (s->pend[id].used) id = s->next_id++;
          uint32_t m = next;
          next = next + 1 == nmsg ? 0 : next + 1;
          memcpy(sbuf[j], data + moff[m], mlen[m]);
          sbuf[j][0] = (uint8_t)(id >> 8);
          sbuf[j][1] = (uint8_t)id;
          siov[j].iov_len = mlen[m];
          s->pend[id] = (struct pend){.sent_ns = t, .msg = m, .used = 1};
          sid[j] = id;
        }
        int r = sendmmsg(s->fd, smsg, k, MSG_DONTWAIT);
        uint32_t ok = r > 0 ? (uint32_t)r : 0;
        for (uint32_t j = ok; j < k; j++) s->pend[sid[j]].used = 0; /* not sent: free its ID */
        if (ok > 0) progress = 1;
        s->inflight += ok;
        sent += ok;
      }
      inflight_all += s->inflight;
    }
    if (!sending && (inflight_all == 0 || now >= end + timeout_ns)) break;
    if (now - last_expire >= 50000000u) {
      /* Queries older than the timeout are lost: free their IDs. */
      now = now_ns(); /* after this pass's sends: no slot is younger than this */
      last_expire = now;
      for (int i = 0; i < nsock; i++) {
        struct pend *p = socks[i].pend;
        for (uint32_t id = 0; id < 65536; id++) {
          if (p[id].used && now - p[id].sent_ns > timeout_ns) {
            p[id].used = 0;
            socks[i].inflight--;
            lost++;
          }
        }
      }
    }
    if (!progress) {
      poll(pfd, (nfds_t)nsock, 1);
    } else if (received < batch && nap_us > 0) {
      /* Few replies per system call: let them gather (the batching is the point). */
      struct timespec nap = {.tv_sec = 0, .tv_nsec = nap_us * 1000L};
      nanosleep(&nap, NULL);
    }
  }
  double cpu = cpu_seconds() - cpu0;
  double elapsed = (double)(now - start) / 1e9;
  double run = seconds < elapsed ? seconds : elapsed;
  uint64_t left = 0;
  for (int i = 0; i < nsock; i++) left += socks[i].inflight;
  printf("{\"sent\":%llu,\"completed\":%llu,\"lost\":%llu,\"mismatched\":%llu,\"inFlightAtEnd\":%llu,\"runSeconds\":%.3f,\"qps\":%.1f,",
         (unsigned long long)sent, (unsigned long long)completed, (unsigned long long)(lost + left), (unsigned long long)mismatched,
         (unsigned long long)left, run, in_run / run);
  printf("\"rcodes\":{\"NOERROR\":%llu,\"SERVFAIL\":%llu,\"NXDOMAIN\":%llu,\"REFUSED\":%llu,\"other\":%llu},",
         (unsigned long long)rcodes[0], (unsigned long long)rcodes[2], (unsigned long long)rcodes[3], (unsigned long long)rcodes[5],
         (unsigned long long)(completed - rcodes[0] - rcodes[2] - rcodes[3] - rcodes[5]));
  printf("\"p50Us\":%llu,\"p99Us\":%llu,\"generatorCpuSeconds\":%.3f,\"generatorCpuUsPerQuery\":%.2f}\n",
         (unsigned long long)percentile(completed, 0.5), (unsigned long long)percentile(completed, 0.99), cpu,
         completed ? cpu * 1e6 / (double)completed : 0.0);
  return 0;
}
