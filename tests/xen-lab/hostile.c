/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hostile - bad clients of rex's control socket, for the Xen lab (dom0).
 *
 *   hostile SOCKET
 *   hostile --get IPV4 PORT PATH
 *
 * Against a running rex, in turn: 20 clients that connect and send nothing
 * (more than rex serves at once), a request of 64 KiB with no newline,
 * binary garbage, then 40 clients asking `status` at once; finally one
 * `status`. Prints one JSON object: how many were told `busy`, how long
 * rex took to drop the stalled ones, the first line of each answer, how
 * the burst was answered, and how long the final status took. Exit status
 * 0 if every connection was answered or closed in time, 1 otherwise.
 *
 * With --get: one HTTP/1.0 GET of PATH (busybox's static wget crashes in
 * the lab's dom0); the answer, headers and all, on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#define STALLED 20
#define BURST 40
#define HUGE (64 * 1024)

static const char *sock_path;

static long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

static int connect_socket(void)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	strncpy(addr.sun_path, sock_path, sizeof(addr.sun_path) - 1);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads until EOF or timeout; the start of what came, made JSON-safe, into
 * line. Returns the ms until EOF, or -1 on timeout. */
static long read_answer(int fd, char *line, size_t size, long timeout_ms)
{
	char buf[4096];
	size_t used = 0;
	long start = now_ms();
	line[0] = 0;
	for (;;) {
		long left = timeout_ms - (now_ms() - start);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		if (left <= 0)
			return -1;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return now_ms() - start;
		for (ssize_t i = 0; i < n && used + 1 < size; i++) {
			char c = buf[i];
			if (c == '"' || c == '\\')
				c = '\'';
			else if ((c < 32 && c != '\n') || c == 127)
				c = '?';
			line[used++] = c;
		}
		line[used] = 0;
	}
}

/* The first line of an answer, without its newline. */
static const char *first_line(char *line)
{
	char *nl = strchr(line, '\n');
	if (nl)
		*nl = 0;
	return line;
}

static void send_all(int fd, const char *data, size_t len)
{
	size_t sent = 0;
	long start = now_ms();
	while (sent < len && now_ms() - start < 3000) {
		ssize_t n = send(fd, data + sent, len - sent, MSG_NOSIGNAL);
		if (n > 0) {
			sent += n;
		} else if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			poll(&p, 1, 100);
		} else {
			return; /* closed by rex: it refused the request */
		}
	}
}

/* One request, its answer's first line; -1 ms when unanswered in 5 s. */
static long ask(const char *request, size_t len, char *line, size_t size)
{
	int fd = connect_socket();
	long ms;
	if (fd < 0) {
		snprintf(line, size, "connect: %s", strerror(errno));
		return -1;
	}
	send_all(fd, request, len);
	ms = read_answer(fd, line, size, 5000);
	close(fd);
	first_line(line);
	return ms;
}

static int http_get(const char *ip, const char *port, const char *path)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(atoi(port)) };
	char request[512], buf[4096];
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || inet_pton(AF_INET, ip, &addr.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("hostile --get");
		return 1;
	}
	snprintf(request, sizeof(request), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, ip);
	if (write(fd, request, strlen(request)) < 0) {
		perror("hostile --get: write");
		return 1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, n, stdout);
	close(fd);
	return n < 0;
}

int main(int argc, char **argv)
{
	int stalled[STALLED], burst[BURST], busy = 0, ok_burst = 0, busy_burst = 0, other = 0;
	long dropped_max = 0, status_ms, huge_ms, garbage_ms;
	char line[256], huge_line[256], garbage_line[256], status_line[256];
	int failed = 0;
	static char huge[HUGE];

	if (argc == 5 && strcmp(argv[1], "--get") == 0)
		return http_get(argv[2], argv[3], argv[4]);
	if (argc != 2) {
		fprintf(stderr, "usage: hostile SOCKET | hostile --get IPV4 PORT PATH\n");
		return 2;
	}
	sock_path = argv[1];

	/* Stalled: connect, say nothing. Those over rex's table are told busy
	 * at once; the others are dropped when their time is up. */
	for (int i = 0; i < STALLED; i++)
		stalled[i] = connect_socket();
	for (int i = 0; i < STALLED; i++) {
		long ms;
		if (stalled[i] < 0) {
			failed = 1;
			continue;
		}
		ms = read_answer(stalled[i], line, sizeof(line), 8000);
		if (ms < 0)
			failed = 1;
		else if (strncmp(line, "error: busy", 11) == 0)
			busy++;
		else if (ms > dropped_max)
			dropped_max = ms;
		close(stalled[i]);
	}

	memset(huge, 'x', sizeof(huge));
	huge_ms = ask(huge, sizeof(huge), huge_line, sizeof(huge_line));
	garbage_ms = ask("\x01\x02\xff\xfe garbage \x7f\n", 15, garbage_line, sizeof(garbage_line));

	/* A burst: every client sends status at once. */
	for (int i = 0; i < BURST; i++) {
		burst[i] = connect_socket();
		if (burst[i] >= 0)
			send_all(burst[i], "status\n", 7);
	}
	for (int i = 0; i < BURST; i++) {
		if (burst[i] < 0 || read_answer(burst[i], line, sizeof(line), 5000) < 0) {
			other++;
		} else if (strncmp(line, "ok\n", 3) == 0) {
			ok_burst++;
		} else if (strncmp(line, "error: busy", 11) == 0) {
			busy_burst++;
		} else {
			other++;
		}
		if (burst[i] >= 0)
			close(burst[i]);
	}

	status_ms = ask("status\n", 7, status_line, sizeof(status_line));
	if (huge_ms < 0 || garbage_ms < 0 || status_ms < 0 || other > 0)
		failed = 1;
	printf("{\"busy\":%d,\"stalled_dropped_max_ms\":%ld,\"huge_ms\":%ld,\"huge\":\"%s\","
	       "\"garbage_ms\":%ld,\"garbage\":\"%s\",\"burst_ok\":%d,\"burst_busy\":%d,"
	       "\"burst_other\":%d,\"status_ms\":%ld,\"status\":\"%s\"}\n",
	       busy, dropped_max, huge_ms, huge_line, garbage_ms, garbage_line, ok_burst,
	       busy_burst, other, status_ms, status_line);
	return failed;
}
