/*
 * watchlog PATH...: for every xenstore watch event on the PATHs, one line
 * "UPTIME PATH VALUE" (UPTIME as /proc/uptime reads it, VALUE read at once,
 * empty when the node is gone). In one process: a shell loop forking
 * xenstore-read per event falls behind under TCG and then reads a later
 * value than the event's, so a figure rex acted on at once could be
 * missed. Used by the lab's memory and reaction phases.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <xenstore.h>

int main(int argc, char **argv)
{
    struct xs_handle *xs;
    int i;

    if (argc < 2) {
        fprintf(stderr, "usage: watchlog PATH...\n");
        return 2;
    }
    xs = xs_open(0);
    if (!xs) {
        perror("watchlog: xs_open");
        return 1;
    }
    for (i = 1; i < argc; i++) {
        if (!xs_watch(xs, argv[i], argv[i])) {
            perror("watchlog: xs_watch");
            return 1;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) {
        unsigned int n, len;
        struct timespec now;
        char **event = xs_read_watch(xs, &n);
        char *value;

        if (!event)
            return 0;
        clock_gettime(CLOCK_BOOTTIME, &now);
        value = xs_read(xs, XBT_NULL, event[XS_WATCH_PATH], &len);
        printf("%lld.%02ld %s %s\n", (long long)now.tv_sec, now.tv_nsec / 10000000,
               event[XS_WATCH_PATH], value ? value : "");
        free(value);
        free(event);
    }
}
