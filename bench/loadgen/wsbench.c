/*
 * wsbench: the WebSocket load generator of bench/run.py (RFC 6455 client, one thread, epoll).
 *
 *   wsbench --port P [--host 127.0.0.1] [--path /echo] [--mode echo|bcast|idle]
 *           [--conns N] [--size BYTES] [--binary] [--duration S] [--warmup S] [--hold S]
 *
 * echo   every connection sends one message and waits for its echo before sending the next;
 *        reports messages/s, echoed MB/s and the round-trip latency.
 * bcast  connection 0 sends one message; the server fans it out to every connection; the
 *        round ends when all open connections got it, then the next round starts. Reports
 *        deliveries/s and the latency of a round.
 * idle   opens N connections, prints "READY <open>" and holds them for --hold seconds
 *        (answering pings) so that the caller can read the server's memory.
 *
 * Written in C so that the generator costs less CPU per message than the servers it measures:
 * a Python client would be the bottleneck. Output: one JSON object on the last stdout line.
 * Build: gcc -O2 -o wsbench wsbench.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { ECHO, BCAST, IDLE };
enum cstate { HANDSHAKE, OPEN, DEAD };

struct conn {
    int fd;
    enum cstate st;
    unsigned char *in; /* received bytes not yet parsed */
    size_t in_len, in_cap;
    const unsigned char *out; /* bytes being written (a prebuilt frame or a pong) */
    size_t out_len, out_off;
    unsigned char pong[2 + 4 + 125];
    int got_round;   /* bcast: this connection has the current round's message */
    double sent_at;  /* echo: when the outstanding message went out */
    int want_write;  /* EPOLLOUT armed */
    int msg_waiting; /* our message is to go out once the current write is done */
};

static const char *opt_host = "127.0.0.1", *opt_path = "/echo";
static int opt_port, opt_conns = 16, opt_binary;
static size_t opt_size = 32;
static double opt_duration = 4, opt_warmup = 1, opt_hold = 3;
static enum mode opt_mode = ECHO;

static struct conn *conns;
static int ep, n_open, n_dead;
static unsigned char *frame; /* the masked message every connection sends */
static size_t frame_len;

/* latency histogram in microseconds: exact below 100 ms, 100 us steps up to 10 s */
#define FINE 100000
#define BUCKETS (FINE + 99000)
static uint64_t hist[BUCKETS + 1], samples;
static int measuring;
static uint64_t msgs, deliveries, rounds;
static double round_start;
static int round_got;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void record(double seconds)
{
    uint64_t us = (uint64_t)(seconds * 1e6);
    size_t b = us < FINE ? us : FINE + (us - FINE) / 100;
    hist[b < BUCKETS ? b : BUCKETS]++;
    samples++;
}

static double percentile(double q)
{
    uint64_t want = (uint64_t)(q * (double)samples), seen = 0;
    for (size_t b = 0; b <= BUCKETS; b++) {
        seen += hist[b];
        if (seen > want || (seen == samples && seen))
            return b < FINE ? (double)b : (double)FINE + (double)(b - FINE) * 100;
    }
    return 0;
}

static void die(const char *what)
{
    printf("{\"error\":\"%s: %s\"}\n", what, strerror(errno));
    exit(1);
}

static void arm(struct conn *c, int want_write)
{
    if (c->want_write == want_write)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_write = want_write;
}

static void kill_conn(struct conn *c)
{
    if (c->st == DEAD)
        return;
    if (c->st == OPEN)
        n_open--;
    c->st = DEAD;
    n_dead++;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
}

static void send_bytes(struct conn *c, const unsigned char *p, size_t n);

/* Write what is pending; returns 0 once it all went out. */
static int flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EAGAIN) {
                arm(c, 1);
                return 1;
            }
            kill_conn(c);
            return 1;
        }
        c->out_off += (size_t)n;
    }
    c->out = NULL;
    arm(c, 0);
    if (c->msg_waiting) {
        c->msg_waiting = 0;
        send_bytes(c, frame, frame_len);
    }
    return 0;
}

static void send_bytes(struct conn *c, const unsigned char *p, size_t n)
{
    if (c->out != NULL) {
        /* busy: a message waits for the pong ahead of it; a pong behind a message is dropped
         * (a later ping gets one) */
        if (p == frame)
            c->msg_waiting = 1;
        return;
    }
    c->out = p;
    c->out_len = n;
    c->out_off = 0;
    flush(c);
}

static void send_message(struct conn *c)
{
    c->sent_at = now();
    send_bytes(c, frame, frame_len);
}

static size_t build_frame(unsigned char *dst, int opcode, const unsigned char *payload, size_t n)
{
    size_t h = 0;
    dst[h++] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        dst[h++] = (unsigned char)(0x80 | n);
    } else if (n < 65536) {
        dst[h++] = 0x80 | 126;
        dst[h++] = (unsigned char)(n >> 8);
        dst[h++] = (unsigned char)n;
    } else {
        dst[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            dst[h++] = (unsigned char)(n >> (8 * i));
    }
    unsigned char key[4] = {(unsigned char)rand(), (unsigned char)rand(), (unsigned char)rand(),
                            (unsigned char)rand()};
    memcpy(dst + h, key, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        dst[h + i] = payload[i] ^ key[i & 3];
    return h + n;
}

static void on_message(struct conn *c, double t)
{
    if (opt_mode == ECHO) {
        if (measuring) {
            msgs++;
            record(t - c->sent_at);
        }
        send_message(c);
    } else if (opt_mode == BCAST && !c->got_round) {
        c->got_round = 1;
        round_got++;
    }
}

/* Parse every complete frame in c->in. Server frames are never masked. */
static void parse(struct conn *c, double t)
{
    size_t pos = 0;
    while (c->st == OPEN && c->in_len - pos >= 2) {
        unsigned char *p = c->in + pos;
        size_t avail = c->in_len - pos, h = 2;
        uint64_t len = p[1] & 0x7f;
        if (len == 126) {
            if (avail < 4)
                break;
            len = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | p[2 + i];
            h = 10;
        }
        if (avail < h + len)
            break;
        int op = p[0] & 0x0f, fin = p[0] & 0x80;
        if (op == 0x9 && len <= 125) { /* ping: answer with a pong */
            size_t n = build_frame(c->pong, 0xa, p + h, (size_t)len);
            send_bytes(c, c->pong, n);
        } else if (op == 0x8) {
            kill_conn(c);
            return;
        } else if (fin && op != 0xa) {
            on_message(c, t);
        }
        pos += h + len;
    }
    if (pos) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
}

static void handshake_done(struct conn *c, double t)
{
    unsigned char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (end == NULL)
        return;
    if (c->in_len < 12 || memcmp(c->in + 9, "101", 3) != 0) {
        fprintf(stderr, "handshake refused: %.40s\n", (char *)c->in);
        kill_conn(c);
        return;
    }
    size_t used = (size_t)(end + 4 - c->in);
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    c->st = OPEN;
    n_open++;
    parse(c, t);
}

static void on_readable(struct conn *c, double t)
{
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            c->in_cap = c->in_cap * 2 + 4096;
            c->in = realloc(c->in, c->in_cap);
            if (c->in == NULL)
                die("realloc");
        }
        size_t space = c->in_cap - c->in_len;
        ssize_t n = read(c->fd, c->in + c->in_len, space);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            kill_conn(c);
            return;
        }
        if (n < 0)
            return;
        c->in_len += (size_t)n;
        if (c->st == HANDSHAKE)
            handshake_done(c, t);
        else
            parse(c, t);
        if (c->st == DEAD || (size_t)n < space)
            return; /* a short read: the socket is empty */
    }
}

static void poll_once(int timeout_ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, timeout_ms);
    double t = now();
    for (int i = 0; i < n; i++) {
        struct conn *c = evs[i].data.ptr;
        if (c->st == DEAD)
            continue;
        if (evs[i].events & EPOLLOUT)
            flush(c);
        if (c->st != DEAD && evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
            on_readable(c, t);
    }
}

static void start(struct conn *c, const char *request, size_t request_len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port)};
    inet_pton(AF_INET, opt_host, &sa.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) { /* blocking: loopback is quick */
        c->st = DEAD;
        close(c->fd);
        n_dead++;
        return;
    }
    if (write(c->fd, request, request_len) != (ssize_t)request_len) {
        c->st = DEAD;
        close(c->fd);
        n_dead++;
        return;
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void open_all(void)
{
    char request[512];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: d3NiZW5jaC1rZXktMDAwMQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     opt_path, opt_host, opt_port);
    for (int i = 0; i < opt_conns; i++) {
        start(&conns[i], request, (size_t)n);
        /* keep the listen backlog short: wait for handshakes every 100 connections */
        if (i % 100 == 99)
            for (double t = now(); n_open + n_dead < i + 1 && now() - t < 5;)
                poll_once(10);
    }
    for (double t = now(); n_open + n_dead < opt_conns && now() - t < 10;)
        poll_once(10);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void start_round(double t)
{
    for (int i = 0; i < opt_conns; i++)
        conns[i].got_round = 0;
    round_got = 0;
    round_start = t;
    struct conn *sender = NULL;
    for (int i = 0; i < opt_conns && sender == NULL; i++)
        if (conns[i].st == OPEN)
            sender = &conns[i];
    if (sender)
        send_message(sender);
}

static void run_load(void)
{
    double t0 = now(), t_measure = t0 + opt_warmup, t_end = t_measure + opt_duration, cpu0 = 0;
    if (opt_mode == ECHO) {
        for (int i = 0; i < opt_conns; i++)
            if (conns[i].st == OPEN)
                send_message(&conns[i]);
    } else {
        start_round(t0);
    }
    for (;;) {
        poll_once(5);
        double t = now();
        if (!measuring && t >= t_measure) {
            measuring = 1;
            cpu0 = cpu_seconds();
        }
        if (t >= t_end || n_open == 0)
            break;
        if (opt_mode == BCAST && round_got >= n_open) {
            if (measuring) {
                rounds++;
                deliveries += (uint64_t)round_got;
                record(t - round_start);
            }
            start_round(t);
        }
    }
    double secs = opt_duration, cpu = (cpu_seconds() - cpu0) / secs;
    if (opt_mode == ECHO)
        printf("{\"mode\":\"echo\",\"conns\":%d,\"open\":%d,\"dead\":%d,\"size\":%zu,"
               "\"msgs\":%llu,\"msgs_per_s\":%.1f,\"mb_per_s\":%.2f,\"p50_us\":%.0f,"
               "\"p99_us\":%.0f,\"client_cpu\":%.3f}\n",
               opt_conns, n_open, n_dead, opt_size, (unsigned long long)msgs, (double)msgs / secs,
               (double)msgs * (double)opt_size / secs / 1e6, percentile(0.5), percentile(0.99),
               cpu);
    else
        printf("{\"mode\":\"bcast\",\"conns\":%d,\"open\":%d,\"dead\":%d,\"size\":%zu,"
               "\"rounds\":%llu,\"deliveries\":%llu,\"deliveries_per_s\":%.1f,\"p50_us\":%.0f,"
               "\"p99_us\":%.0f,\"client_cpu\":%.3f}\n",
               opt_conns, n_open, n_dead, opt_size, (unsigned long long)rounds,
               (unsigned long long)deliveries, (double)deliveries / secs, percentile(0.5),
               percentile(0.99), cpu);
}

static void run_idle(void)
{
    printf("READY %d\n", n_open);
    fflush(stdout);
    for (double end = now() + opt_hold; now() < end;)
        poll_once(50);
    printf("{\"mode\":\"idle\",\"conns\":%d,\"open\":%d,\"dead\":%d}\n", opt_conns, n_open, n_dead);
}

static void usage(void)
{
    fprintf(stderr, "usage: wsbench --port P [--host H] [--path P] [--mode echo|bcast|idle] "
                    "[--conns N] [--size B] [--binary] [--duration S] [--warmup S] [--hold S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--binary")) {
            opt_binary = 1;
            continue;
        }
        if (v == NULL)
            usage();
        i++;
        if (!strcmp(a, "--port")) opt_port = atoi(v);
        else if (!strcmp(a, "--host")) opt_host = v;
        else if (!strcmp(a, "--path")) opt_path = v;
        else if (!strcmp(a, "--conns")) opt_conns = atoi(v);
        else if (!strcmp(a, "--size")) opt_size = (size_t)strtoull(v, NULL, 10);
        else if (!strcmp(a, "--duration")) opt_duration = atof(v);
        else if (!strcmp(a, "--warmup")) opt_warmup = atof(v);
        else if (!strcmp(a, "--hold")) opt_hold = atof(v);
        else if (!strcmp(a, "--mode"))
            opt_mode = !strcmp(v, "echo") ? ECHO : !strcmp(v, "bcast") ? BCAST
                     : !strcmp(v, "idle") ? IDLE : (usage(), ECHO);
        else usage();
    }
    if (opt_port <= 0 || opt_conns <= 0)
        usage();
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());

    unsigned char *payload = malloc(opt_size + 1);
    for (size_t i = 0; i < opt_size; i++)
        payload[i] = (unsigned char)('a' + i % 26);
    frame = malloc(opt_size + 14);
    frame_len = build_frame(frame, opt_binary ? 0x2 : 0x1, payload, opt_size);
    conns = calloc((size_t)opt_conns, sizeof *conns);
    ep = epoll_create1(0);
    if (ep < 0 || conns == NULL || frame == NULL)
        die("setup");

    open_all();
    if (n_open == 0) {
        printf("{\"error\":\"no connection opened (%d failed)\"}\n", n_dead);
        return 1;
    }
    if (opt_mode == IDLE)
        run_idle();
    else
        run_load();
    return 0;
}
