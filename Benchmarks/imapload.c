/* IMAP load client for the benchmark harness (plain sockets, no TLS): logs in, selects INBOX and runs
 * the benchmark's commands, reading every response with literals ({n}\r\n + n octets) by counting
 * octets instead of scanning them, so that the client costs far less CPU than the server it measures.
 *
 *   imapload HOST PORT USER PASSWORD PHASE...
 *
 * Phases run in order on one connection; before each, imapload prints "ready PHASE" and waits for a
 * line on stdin (so the harness reads the server's CPU counters exactly around the phase); after it,
 * "done PHASE SECONDS RESPONSES OCTETS CPU" (responses: untagged FETCH responses, or the UIDs SEARCH
 * found; octets: literal octets received; CPU: imapload's own user + system seconds). Phases:
 *
 *   select            SELECT INBOX (the first SELECT of a cold mailbox builds the server's index)
 *   headers           UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)
 *   bodies:B:D        UID FETCH lo:hi (UID BODY.PEEK[]) for every B UIDs of 1..EXISTS, D commands in flight
 *   search:WORD       UID SEARCH TEXT "WORD"
 *   store:+ / store:- STORE 1:* +FLAGS (\Seen) / -FLAGS (\Seen)
 *
 *   imapload HOST PORT idle USERFMT PASSWORD SESSIONS WINDOW
 *
 * opens SESSIONS connections (user i % N as USERFMT formats it, e.g. "idle%d" with N from USERFMT's
 * ",N" suffix: "idle%d,1000"), each LOGIN, SELECT INBOX, IDLE, with at most WINDOW sessions between
 * connect and "+ idling" at once (epoll); prints "idling SESSIONS" and holds them until stdin closes.
 *
 * Any NO/BAD, short read or protocol surprise exits 1 with a message on stderr.
 */
#define _GNU_SOURCE
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

static struct sockaddr_in addr;

static void die(const char *what) {
    fprintf(stderr, "imapload: %s\n", what);
    exit(1);
}

static double clock_seconds(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
#define now() clock_seconds(CLOCK_MONOTONIC)
#define cpu_now() clock_seconds(CLOCK_PROCESS_CPUTIME_ID)

static int dial(int nonblocking) {
    int fd = socket(AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) die("socket failed");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0 && errno != EINPROGRESS) die("cannot connect");
    return fd;
}

/* ---------------------------------------------------------------------------------------------- */
/* one blocking session */

static int fd;
static char in[1 << 20];
static size_t in_len, in_pos;
/* The current response's non-literal text (literals are counted, not kept). */
static char *text;
static size_t text_len, text_cap;
static long literal_octets;

static void send_all(const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0) die("write failed");
        buf += n;
        len -= (size_t)n;
    }
}

static void fill(void) {
    ssize_t n = read(fd, in, sizeof in);
    if (n <= 0) die("connection closed");
    in_len = (size_t)n;
    in_pos = 0;
}

static void keep(const char *p, size_t n) {
    if (text_len + n + 1 > text_cap) {
        text_cap = (text_len + n + 1) * 2;
        text = realloc(text, text_cap);
        if (!text) die("out of memory");
    }
    memcpy(text + text_len, p, n);
    text_len += n;
    text[text_len] = 0;
}

/* Reads one whole response (a line, and the lines after each literal it announces) into `text`. */
static void response(void) {
    text_len = 0;
    for (;;) {
        /* up to and including LF */
        size_t start = text_len;
        for (;;) {
            if (in_pos == in_len) fill();
            char *lf = memchr(in + in_pos, '\n', in_len - in_pos);
            size_t n = lf ? (size_t)(lf - (in + in_pos)) + 1 : in_len - in_pos;
            keep(in + in_pos, n);
            in_pos += n;
            if (lf) break;
        }
        /* a literal: "{123}\r\n" (or "~{123}" for literal8) at the end of this line */
        char *s = text + start, *e = text + text_len;
        if (e - s >= 4 && e[-1] == '\n' && e[-2] == '\r' && e[-3] == '}') {
            char *q = e - 4;
            while (q > s && *q >= '0' && *q <= '9') q--;
            if (*q == '{' && q < e - 4) {
                long n = strtol(q + 1, NULL, 10);
                literal_octets += n;
                text_len = (size_t)(q - text); /* drop "{n}\r\n"; the literal is skipped */
                keep("L", 1);
                while (n > 0) {
                    if (in_pos == in_len) fill();
                    size_t take = in_len - in_pos < (size_t)n ? in_len - in_pos : (size_t)n;
                    in_pos += take;
                    n -= (long)take;
                }
                continue;
            }
        }
        return;
    }
}

static long exists_count;
static int tag_counter;

/* Sends `cmd` (without tag and CRLF) and reads until its tagged OK; returns the number of untagged
 * FETCH responses, or of UIDs in SEARCH responses. */
static long run_command(const char *cmd, const char *phase) {
    char tag[16], line[256];
    snprintf(tag, sizeof tag, "A%d", ++tag_counter);
    int n = snprintf(line, sizeof line, "%s %s\r\n", tag, cmd);
    send_all(line, (size_t)n);
    long counted = 0;
    size_t tl = strlen(tag);
    for (;;) {
        response();
        if (text[0] == '*') {
            char *sp = strchr(text + 2, ' ');
            if (sp && strncmp(sp, " FETCH ", 7) == 0) counted++;
            else if (sp && strncmp(sp, " EXISTS", 7) == 0) exists_count = atol(text + 2);
            else if (strncmp(text, "* SEARCH", 8) == 0) {
                for (char *p = text + 8; *p; p++)
                    if (*p == ' ' && p[1] >= '0' && p[1] <= '9') counted++;
            }
        } else if (strncmp(text, tag, tl) == 0 && text[tl] == ' ') {
            if (strncmp(text + tl + 1, "OK", 2) != 0) {
                fprintf(stderr, "imapload: %s: %s", phase, text);
                exit(1);
            }
            return counted;
        } else if (text[0] != '+') {
            fprintf(stderr, "imapload: %s: unexpected %s", phase, text);
            exit(1);
        }
    }
}

/* UID FETCH lo:hi (UID BODY.PEEK[]) for every `batch` UIDs, `depth` commands in flight. */
static long fetch_bodies(long batch, long depth) {
    long total = exists_count, sent = 0, done = 0, counted = 0;
    long lo_next = 1;
    char tags[64][24];
    if (depth > 64) depth = 64;
    long commands = (total + batch - 1) / batch;
    while (done < commands) {
        char buf[4096];
        size_t len = 0;
        while (sent < commands && sent - done < depth) {
            long lo = lo_next, hi = lo + batch - 1 < total ? lo + batch - 1 : total;
            lo_next = hi + 1;
            snprintf(tags[sent % 64], sizeof tags[0], "B%ld", sent);
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s UID FETCH %ld:%ld (UID BODY.PEEK[])\r\n",
                                    tags[sent % 64], lo, hi);
            sent++;
        }
        if (len) send_all(buf, len);
        const char *tag = tags[done % 64];
        size_t tl = strlen(tag);
        for (;;) {
            response();
            if (text[0] == '*') {
                char *sp = strchr(text + 2, ' ');
                if (sp && strncmp(sp, " FETCH ", 7) == 0) counted++;
            } else if (strncmp(text, tag, tl) == 0 && text[tl] == ' ') {
                if (strncmp(text + tl + 1, "OK", 2) != 0) {
                    fprintf(stderr, "imapload: bodies: %s", text);
                    exit(1);
                }
                break;
            } else {
                fprintf(stderr, "imapload: bodies: unexpected %s", text);
                exit(1);
            }
        }
        done++;
    }
    return counted;
}

static void wait_go(const char *phase) {
    printf("ready %s\n", phase);
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) exit(0);
}

static int session(int argc, char **argv) {
    fd = dial(0);
    response();
    if (strncmp(text, "* OK", 4) != 0) die("no greeting");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "LOGIN \"%s\" \"%s\"", argv[3], argv[4]);
    run_command(cmd, "login");
    for (int i = 5; i < argc; i++) {
        const char *phase = argv[i];
        wait_go(phase);
        long before = literal_octets, counted = 0;
        double t0 = now(), c0 = cpu_now();
        if (strcmp(phase, "select") == 0) {
            run_command("SELECT INBOX", phase);
        } else if (strcmp(phase, "headers") == 0) {
            counted = run_command("UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)", phase);
        } else if (strncmp(phase, "bodies:", 7) == 0) {
            long b = 100, d = 2;
            sscanf(phase + 7, "%ld:%ld", &b, &d);
            counted = fetch_bodies(b, d);
        } else if (strncmp(phase, "search:", 7) == 0) {
            snprintf(cmd, sizeof cmd, "UID SEARCH TEXT \"%s\"", phase + 7);
            counted = run_command(cmd, phase);
        } else if (strcmp(phase, "store:+") == 0) {
            counted = run_command("STORE 1:* +FLAGS (\\Seen)", phase);
        } else if (strcmp(phase, "store:-") == 0) {
            counted = run_command("STORE 1:* -FLAGS (\\Seen)", phase);
        } else {
            die("unknown phase");
        }
        double t1 = now(), c1 = cpu_now();
        printf("done %s %.6f %ld %ld %.6f\n", phase, t1 - t0, counted, literal_octets - before, c1 - c0);
        fflush(stdout);
    }
    run_command("LOGOUT", "logout");
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* many idle sessions */

struct conn {
    int fd;
    int state; /* 0 greeting, 1 login sent, 2 select sent, 3 idle sent, 4 idling */
    int len;
    char buf[2048];
};

static int idle_sessions(char **argv) {
    const char *fmt = argv[4], *password = argv[5];
    long sessions = atol(argv[6]), window = atol(argv[7]);
    char userfmt[128];
    long users = 1;
    snprintf(userfmt, sizeof userfmt, "%s", fmt);
    char *comma = strrchr(userfmt, ',');
    if (comma) {
        *comma = 0;
        users = atol(comma + 1);
    }
    struct rlimit rl = {(rlim_t)sessions + 64, (rlim_t)sessions + 64};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit RLIMIT_NOFILE failed");
    struct conn *conns = calloc((size_t)sessions, sizeof *conns);
    int ep = epoll_create1(0);
    long opened = 0, pending = 0, idling = 0;
    struct epoll_event events[256];
    while (idling < sessions) {
        while (opened < sessions && pending < window) {
            struct conn *c = &conns[opened];
            c->fd = dial(1);
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)opened};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            opened++;
            pending++;
        }
        int n = epoll_wait(ep, events, 256, 60000);
        if (n <= 0) die("no progress for 60 s");
        for (int k = 0; k < n; k++) {
            long i = (long)events[k].data.u64;
            struct conn *c = &conns[i];
            ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - (size_t)c->len);
            if (r <= 0) {
                fprintf(stderr, "imapload: idle session %ld closed in state %d\n", i, c->state);
                exit(1);
            }
            c->len += (int)r;
            c->buf[c->len] = 0;
            /* act on each complete line */
            char *line = c->buf, *lf;
            while ((lf = strchr(line, '\n')) != NULL) {
                *lf = 0;
                char out[512];
                int olen = 0;
                if (c->state == 0) {
                    if (strncmp(line, "* OK", 4) != 0) die("no greeting");
                    char user[128];
                    snprintf(user, sizeof user, userfmt, (int)(i % users));
                    olen = snprintf(out, sizeof out, "L LOGIN \"%s\" \"%s\"\r\n", user, password);
                    c->state = 1;
                } else if (c->state == 1 && line[0] == 'L') {
                    if (strncmp(line, "L OK", 4) != 0) { fprintf(stderr, "imapload: login: %s\n", line); exit(1); }
                    olen = snprintf(out, sizeof out, "S SELECT INBOX\r\n");
                    c->state = 2;
                } else if (c->state == 2 && line[0] == 'S') {
                    if (strncmp(line, "S OK", 4) != 0) { fprintf(stderr, "imapload: select: %s\n", line); exit(1); }
                    olen = snprintf(out, sizeof out, "I IDLE\r\n");
                    c->state = 3;
                } else if (c->state == 3 && line[0] == '+') {
                    c->state = 4;
                    pending--;
                    idling++;
                } else if (line[0] != '*' && c->state != 4) {
                    fprintf(stderr, "imapload: idle session %ld state %d: %s\n", i, c->state, line);
                    exit(1);
                }
                if (olen > 0 && write(c->fd, out, (size_t)olen) != olen) die("write failed");
                line = lf + 1;
            }
            c->len = (int)strlen(line);
            memmove(c->buf, line, (size_t)c->len);
            if (c->len > 1500) c->len = 0; /* a long untagged line we do not need */
        }
    }
    printf("idling %ld\n", idling);
    fflush(stdout);
    char tmp[64];
    while (fgets(tmp, sizeof tmp, stdin)) {}
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 6) die("usage: imapload HOST PORT USER PASSWORD PHASE... | HOST PORT idle USERFMT,N PASSWORD SESSIONS WINDOW");
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) die("bad address");
    if (strcmp(argv[3], "idle") == 0) {
        if (argc < 8) die("usage: imapload HOST PORT idle USERFMT,N PASSWORD SESSIONS WINDOW");
        return idle_sessions(argv);
    }
    return session(argc, argv);
}
