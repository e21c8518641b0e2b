/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * loadgen - closed-loop HTTP load for the Xen lab (runs in dom0).
 *
 * Every client thread loops: connect, send one GET, read to EOF, record the
 * response time on the monotonic clock, sleep the think time. Connect and
 * whole-request timeouts are enforced with poll(); failed requests are
 * counted apart and never enter the response-time statistics.
 *
 *   loadgen -d SECONDS [-w WARMUP_S] [-z THINK_MS] [-c CONNECT_MS] [-T TIMEOUT_MS]
 *           [-p PATH] [-o CSV] [-X INTERVAL_MS]
 *           NAME=IP:PORT:CLIENTS[:DOMID] ...
 *
 * With -X, every INTERVAL_MS the mean response time of the requests finished
 * in that interval is written to /local/domain/DOMID/data/rex/response_ms
 * (by running xenstore-write) for each target given a DOMID: the guest's SLA
 * signal, published from dom0 where it is measured.
 *
 * Output: one JSON object per target on stdout, and with -o every request as
 * a CSV row "name,start_ms,response_ms,ok".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TARGETS 16
#define MAX_CLIENTS 64

struct sample {
	double start_ms;   /* since the run began */
	double resp_ms;
	int ok;
};

struct target {
	char name[32];
	struct sockaddr_in addr;
	int clients;
	int domid;         /* -1: do not publish */
	pthread_mutex_t lock;
	struct sample *samples;
	size_t n, cap;
	/* publish window */
	double win_sum;
	long win_n;
	long errors_connect, errors_timeout, errors_http, errors_read;
	char bad_status[16];
};

static struct target targets[MAX_TARGETS];
static int ntargets;
static double duration_s = 30, warmup_s = 0, think_ms = 100;
static int connect_ms = 3000, timeout_ms = 30000, publish_ms = 0;
static const char *path = "/cgi-bin/work";
static const char *csv_path;
static double t0;
extern char **environ;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = { (time_t)(ms / 1e3), (long)(fmod(ms, 1e3) * 1e6) };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Waits for fd to be ready for `events` until the absolute deadline. */
static int wait_fd(int fd, short events, double deadline)
{
	for (;;) {
		double left = deadline - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { fd, events, 0 };
		int r = poll(&p, 1, (int)left + 1);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

enum outcome { OK, ERR_CONNECT, ERR_TIMEOUT, ERR_HTTP, ERR_READ };

static enum outcome one_request(struct target *t)
{
	double start = now_ms();
	double deadline = start + timeout_ms;
	double connect_deadline = start + connect_ms;
	if (connect_deadline > deadline)
		connect_deadline = deadline;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ERR_CONNECT;
	enum outcome out = ERR_HTTP;
	if (connect(fd, (struct sockaddr *)&t->addr, sizeof t->addr) < 0) {
		if (errno != EINPROGRESS) {
			out = ERR_CONNECT;
			goto done;
		}
		int r = wait_fd(fd, POLLOUT, connect_deadline);
		int soerr = 0;
		socklen_t len = sizeof soerr;
		if (r <= 0) {
			out = r == 0 ? ERR_TIMEOUT : ERR_CONNECT;
			goto done;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr) {
			out = ERR_CONNECT;
			goto done;
		}
	}
	char req[256];
	int len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n",
			   path, inet_ntoa(t->addr.sin_addr));
	if (send(fd, req, len, MSG_NOSIGNAL) != len) {
		out = ERR_CONNECT;
		goto done;
	}
	char buf[4096], head[16] = "";
	size_t got = 0;
	for (;;) {
		int r = wait_fd(fd, POLLIN, deadline);
		if (r == 0) {
			out = ERR_TIMEOUT;
			goto done;
		}
		if (r < 0) {
			out = ERR_READ;
			goto done;
		}
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			out = ERR_READ;
			goto done;
		}
		if (n == 0)
			break;
		if (got < sizeof head - 1) {
			size_t take = sizeof head - 1 - got;
			memcpy(head + got, buf, (size_t)n < take ? (size_t)n : take);
		}
		got += n;
	}
	/* "HTTP/1.x 200"; nothing at all is a dropped connection. */
	if (got == 0)
		out = ERR_READ;
	else if (got >= 12 && strncmp(head, "HTTP/1.", 7) == 0 && strncmp(head + 9, "200", 3) == 0)
		out = OK;
	else {
		out = ERR_HTTP;
		/* Keep the status line of the last bad answer for the report. */
		pthread_mutex_lock(&t->lock);
		for (size_t i = 0; i < sizeof t->bad_status - 1; i++)
			t->bad_status[i] = (head[i] >= ' ' && head[i] <= '~' && head[i] != '"' && head[i] != '\\') ? head[i] : '_';
		pthread_mutex_unlock(&t->lock);
	}
done:
	close(fd);
	double end = now_ms();
	pthread_mutex_lock(&t->lock);
	if (start - t0 >= warmup_s * 1e3 || out != OK) {
		if (t->n == t->cap) {
			t->cap = t->cap ? 2 * t->cap : 1024;
			t->samples = realloc(t->samples, t->cap * sizeof *t->samples);
			if (!t->samples) {
				perror("realloc");
				exit(2);
			}
		}
		t->samples[t->n++] = (struct sample){ start - t0, end - start, out == OK };
	}
	if (out == OK) {
		t->win_sum += end - start;
		t->win_n++;
	} else if (out == ERR_CONNECT) {
		t->errors_connect++;
	} else if (out == ERR_TIMEOUT) {
		t->errors_timeout++;
	} else if (out == ERR_READ) {
		t->errors_read++;
	} else {
		t->errors_http++;
	}
	pthread_mutex_unlock(&t->lock);
	return out;
}

static void *client(void *arg)
{
	struct target *t = arg;
	double stop = t0 + duration_s * 1e3;
	while (now_ms() < stop) {
		if (one_request(t) != OK)
			sleep_ms(200); /* do not spin on a dead server */
		sleep_ms(think_ms);
	}
	return NULL;
}

static void publish(struct target *t)
{
	char key[96], val[32];
	pthread_mutex_lock(&t->lock);
	double mean = t->win_n ? t->win_sum / t->win_n : -1;
	t->win_sum = 0;
	t->win_n = 0;
	pthread_mutex_unlock(&t->lock);
	if (mean < 0)
		return; /* nothing finished: keep the last value */
	snprintf(key, sizeof key, "/local/domain/%d/data/rex/response_ms", t->domid);
	snprintf(val, sizeof val, "%.0f", mean);
	char *argv[] = { "xenstore-write", key, val, NULL };
	pid_t pid;
	if (posix_spawnp(&pid, "xenstore-write", NULL, NULL, argv, environ) == 0)
		waitpid(pid, NULL, 0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Two-sided 95% Student t quantile for df degrees of freedom. */
static double t95(long df)
{
	static const double table[] = { 0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365,
					2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
					2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069,
					2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042 };
	if (df <= 0)
		return NAN;
	if (df <= 30)
		return table[df];
	return 1.960 + 2.4 / df; /* within 0.3% of the exact value for df > 30 */
}

static void report(struct target *t)
{
	double *v = malloc((t->n + 1) * sizeof *v);
	long n = 0, nerr = 0;
	double sum = 0, err_sum = 0;
	for (size_t i = 0; i < t->n; i++)
		if (t->samples[i].ok) {
			v[n++] = t->samples[i].resp_ms;
			sum += t->samples[i].resp_ms;
		} else {
			err_sum += t->samples[i].resp_ms;
			nerr++;
		}
	double mean = n ? sum / n : NAN, ss = 0;
	for (long i = 0; i < n; i++)
		ss += (v[i] - mean) * (v[i] - mean);
	double sd = n > 1 ? sqrt(ss / (n - 1)) : NAN;
	qsort(v, n, sizeof *v, cmp_double);
	double median = n ? (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : NAN;
	double half = n > 1 ? t95(n - 1) * sd / sqrt(n) : NAN;
	double p95 = n ? v[(long)ceil(0.95 * n) - 1] : NAN;
	/* NaN is not JSON: -1 stands for "no value". */
#define J(x) (isnan(x) ? -1 : (x))
	printf("{\"name\":\"%s\",\"clients\":%d,\"n\":%ld,\"errors\":%ld,"
	       "\"errors_connect\":%ld,\"errors_timeout\":%ld,\"errors_http\":%ld,\"errors_read\":%ld,"
	       "\"mean_ms\":%.2f,\"median_ms\":%.2f,\"sd_ms\":%.2f,\"ci95_lo_ms\":%.2f,"
	       "\"ci95_hi_ms\":%.2f,\"p95_ms\":%.2f,\"min_ms\":%.2f,\"max_ms\":%.2f,"
	       "\"duration_s\":%.1f,\"warmup_s\":%.1f,\"think_ms\":%.0f,\"bad_status\":\"%s\","
	       "\"error_mean_ms\":%.2f}\n",
	       t->name, t->clients, n,
	       t->errors_connect + t->errors_timeout + t->errors_http + t->errors_read,
	       t->errors_connect, t->errors_timeout, t->errors_http, t->errors_read, J(mean), J(median), J(sd),
	       J(mean - half), J(mean + half), J(p95), n ? v[0] : -1, n ? v[n - 1] : -1,
	       duration_s, warmup_s, think_ms, t->bad_status, nerr ? err_sum / nerr : -1);
#undef J
	free(v);
}

static void usage(void)
{
	fprintf(stderr, "usage: loadgen -d SECONDS [-w WARMUP_S] [-z THINK_MS] [-c CONNECT_MS] "
			"[-T TIMEOUT_MS] [-p PATH] [-o CSV] [-X PUBLISH_MS] "
			"NAME=IP:PORT:CLIENTS[:DOMID] ...\n");
	exit(2);
}

static void parse_target(const char *arg)
{
	if (ntargets == MAX_TARGETS)
		usage();
	struct target *t = &targets[ntargets++];
	char ip[64];
	int port, n;
	t->domid = -1;
	const char *eq = strchr(arg, '=');
	if (!eq || eq - arg >= (long)sizeof t->name)
		usage();
	memcpy(t->name, arg, eq - arg);
	if ((n = sscanf(eq + 1, "%63[^:]:%d:%d:%d", ip, &port, &t->clients, &t->domid)) < 3 ||
	    t->clients < 0 || t->clients > MAX_CLIENTS || port <= 0 || port > 65535) {
		fprintf(stderr, "loadgen: bad target '%s'\n", arg);
		exit(2);
	}
	t->addr.sin_family = AF_INET;
	t->addr.sin_port = htons(port);
	if (inet_pton(AF_INET, ip, &t->addr.sin_addr) != 1) {
		fprintf(stderr, "loadgen: bad address '%s'\n", ip);
		exit(2);
	}
	pthread_mutex_init(&t->lock, NULL);
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "d:w:z:c:T:p:o:X:")) != -1) {
		switch (opt) {
		case 'd': duration_s = atof(optarg); break;
		case 'w': warmup_s = atof(optarg); break;
		case 'z': think_ms = atof(optarg); break;
		case 'c': connect_ms = atoi(optarg); break;
		case 'T': timeout_ms = atoi(optarg); break;
		case 'p': path = optarg; break;
		case 'o': csv_path = optarg; break;
		case 'X': publish_ms = atoi(optarg); break;
		default: usage();
		}
	}
	if (optind >= argc || duration_s <= 0 || connect_ms <= 0 || timeout_ms <= 0)
		usage();
	for (int i = optind; i < argc; i++)
		parse_target(argv[i]);
	signal(SIGPIPE, SIG_IGN);

	t0 = now_ms();
	pthread_t tids[MAX_TARGETS * MAX_CLIENTS];
	int nt = 0;
	for (int i = 0; i < ntargets; i++)
		for (int c = 0; c < targets[i].clients; c++)
			if (pthread_create(&tids[nt], NULL, client, &targets[i]) == 0)
				nt++;
	if (publish_ms > 0) {
		double stop = t0 + duration_s * 1e3;
		while (now_ms() < stop) {
			sleep_ms(publish_ms);
			for (int i = 0; i < ntargets; i++)
				if (targets[i].domid >= 0)
					publish(&targets[i]);
		}
	}
	for (int i = 0; i < nt; i++)
		pthread_join(tids[i], NULL);

	if (csv_path) {
		FILE *f = fopen(csv_path, "w");
		if (!f) {
			perror(csv_path);
			return 2;
		}
		fprintf(f, "name,start_ms,response_ms,ok\n");
		for (int i = 0; i < ntargets; i++)
			for (size_t k = 0; k < targets[i].n; k++)
				fprintf(f, "%s,%.1f,%.2f,%d\n", targets[i].name,
					targets[i].samples[k].start_ms,
					targets[i].samples[k].resp_ms, targets[i].samples[k].ok);
		fclose(f);
	}
	for (int i = 0; i < ntargets; i++)
		report(&targets[i]);
	return 0;
}
