// milter_floor: the cheapest milter there can be, to measure what an MTA
// pays for talking to any milter at all (benchmarks/milter_bench.sh).
//
// It speaks the milter protocol (version 6) and does nothing with what it
// hears: every message is let through. It asks for the same stages and the
// same no-reply options as sluice-milter (headers, end of headers and body
// chunks without a reply; no DATA or unknown-command packets), or with
// `--envelope` for the envelope alone (no headers, no body). Unlike
// libmilter, it reads the socket into one buffer (one read() for every
// packet that has arrived) and has no poll() before each read: what it costs
// the MTA is the floor under any real milter's figure.
//
// Not a product: it trusts its peer (loopback only), and answers nothing
// but "continue".
//
// Usage: milter_floor PORT [--envelope]    (listens on 127.0.0.1:PORT)

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// The protocol's commands, replies and flags, as libmilter names them
// (its header only: this milter does not link libmilter).
#include "libmilter/mfdef.h"

enum { kBufferBytes = 1 << 17 };  // above the MTA's largest packet (64 KiB chunks)

static int envelope_only;

static int Send(int fd, char cmd, const void* data, uint32_t n) {
  unsigned char b[32];
  uint32_t len = htonl(n + 1);
  memcpy(b, &len, 4);
  b[4] = (unsigned char)cmd;
  if (n > 0) memcpy(b + 5, data, n);
  return write(fd, b, 5 + n) == (ssize_t)(5 + n) ? 0 : -1;
}

// One connection: packets cut out of one buffer, read as far as the socket
// has data.
static void* Serve(void* arg) {
  const int fd = (int)(intptr_t)arg;
  char* buf = malloc(kBufferBytes);
  size_t have = 0, off = 0;
  uint32_t agreed = 0;  // the protocol flags both sides took
  while (buf != NULL) {
    uint32_t len = 0;
    if (have - off >= 4) {
      memcpy(&len, buf + off, 4);
      len = ntohl(len);
      if (len == 0 || len > kBufferBytes - 4) break;  // not the protocol
    }
    if (have - off < 4 || have - off < 4 + (size_t)len) {
      memmove(buf, buf + off, have - off);
      have -= off;
      off = 0;
      ssize_t r = read(fd, buf + have, kBufferBytes - have);
      if (r <= 0) break;
      have += (size_t)r;
      continue;
    }
    const char* body = buf + off + 5;  // after the length and the command
    const char cmd = buf[off + 4];
    off += 4 + len;
    int reply = 0;
    switch (cmd) {
      case SMFIC_OPTNEG: {  // negotiation: version, actions, protocol flags
        uint32_t offered[3] = {0, 0, 0};
        if (len >= 13) memcpy(offered, body, 12);
        // sluice-milter's choice (bindings/milter/milter_server.cc, OnNegotiate).
        uint32_t want =
            SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_NODATA | SMFIP_NOUNKNOWN;
        if (envelope_only) want |= SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH;
        agreed = ntohl(offered[2]) & want;
        uint32_t answer[3] = {htonl(SMFI_PROT_VERSION), 0, htonl(agreed)};
        if (Send(fd, SMFIC_OPTNEG, answer, sizeof(answer)) != 0) goto done;
        break;
      }
      case SMFIC_CONNECT:
      case SMFIC_HELO:
      case SMFIC_MAIL:
      case SMFIC_RCPT:
      case SMFIC_DATA:
      case SMFIC_UNKNOWN:
      case SMFIC_BODYEOB:
        reply = 1;  // connect, HELO, MAIL, RCPT, DATA, unknown, end of message
        break;
      case SMFIC_HEADER:
        reply = !(agreed & SMFIP_NR_HDR);
        break;  // a header
      case SMFIC_EOH:
        reply = !(agreed & SMFIP_NR_EOH);
        break;  // end of headers
      case SMFIC_BODY:
        reply = !(agreed & SMFIP_NR_BODY);
        break;  // a body chunk
      case SMFIC_QUIT:
        goto done;  // quit
      default:
        break;  // macros, abort, quit-and-new-connection: no reply
    }
    if (reply && Send(fd, SMFIR_CONTINUE, NULL, 0) != 0) break;
  }
done:
  free(buf);
  close(fd);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
    fprintf(stderr, "usage: milter_floor PORT [--envelope]\n");
    return 2;
  }
  envelope_only = argc > 2 && strcmp(argv[2], "--envelope") == 0;
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)atoi(argv[1]));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (s < 0 || bind(s, (struct sockaddr*)&a, sizeof(a)) != 0 || listen(s, 256) != 0) {
    perror("milter_floor: listen");
    return 1;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    pthread_t t;
    if (pthread_create(&t, &attr, Serve, (void*)(intptr_t)c) != 0) close(c);
  }
}
