/* POP3 load client for the benchmark harness: logs in with USER/PASS, then RETRs messages 1…count with
 * up to `depth` commands in flight and reads the multi-line answers with a byte-level state machine, so
 * that the client costs far less CPU than the server it measures (the Python client was the limit with
 * four users on two cores).
 *
 *   pop3load HOST PORT USER PASSWORD COUNT [DEPTH]
 *
 * Prints the number of message octets received (dot-stuffing included, terminator excluded) and exits 0;
 * any -ERR, short read or protocol surprise exits 1 with a message on stderr.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fd;
static char in[1 << 20];
static size_t in_len, in_pos;

static void die(const char *what) {
    fprintf(stderr, "pop3load: %s\n", what);
    exit(1);
}

static void send_all(const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0) die("write failed");
        buf += n;
        len -= (size_t)n;
    }
}

static int next_byte(void) {
    if (in_pos == in_len) {
        ssize_t n = read(fd, in, sizeof in);
        if (n <= 0) die("connection closed");
        in_len = (size_t)n;
        in_pos = 0;
    }
    return (unsigned char)in[in_pos++];
}

/* Reads one status line; fails unless it starts with +OK. */
static void status_line(const char *after) {
    int first = next_byte(), c;
    while ((c = next_byte()) != '\n') {}
    if (first != '+') {
        fprintf(stderr, "pop3load: -ERR after %s\n", after);
        exit(1);
    }
}

static void command(const char *text) {
    send_all(text, strlen(text));
    status_line(text);
}

int main(int argc, char **argv) {
    if (argc < 6) die("usage: pop3load HOST PORT USER PASSWORD COUNT [DEPTH]");
    long count = atol(argv[5]), depth = argc > 6 ? atol(argv[6]) : 16;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) die("bad address");
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("cannot connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    char line[512];
    status_line("greeting");
    snprintf(line, sizeof line, "USER %s\r\n", argv[3]);
    command(line);
    snprintf(line, sizeof line, "PASS %s\r\n", argv[4]);
    command(line);

    long sent = 0, octets = 0;
    char batch[16 * 32];
    for (long done = 0; done < count; done++) {
        /* Keep `depth` RETRs in flight, sent in one write. */
        size_t len = 0;
        while (sent < count && sent - done < depth && len + 32 < sizeof batch) {
            len += (size_t)snprintf(batch + len, sizeof batch - len, "RETR %ld\r\n", ++sent);
        }
        if (len > 0) send_all(batch, len);
        status_line("RETR");
        /* Body until a line that is exactly "." (CRLF.CRLF). */
        int line_start = 1, c;
        for (;;) {
            c = next_byte();
            if (line_start && c == '.') {
                c = next_byte();
                if (c == '\r') {
                    if (next_byte() != '\n') die("bare CR after a dot");
                    break;
                }
                octets++;
            }
            octets++;
            line_start = c == '\n';
        }
    }
    command("QUIT\r\n");
    printf("%ld\n", octets);
    return 0;
}
