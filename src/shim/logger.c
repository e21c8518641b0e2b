/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * logger.c - the C half of rex's xentoollog bridge.
 *
 * xentoollog hands a logger a printf format and a va_list. Rust cannot take
 * a va_list on this toolchain, so the formatting happens here and Rust gets
 * one finished line per message through a plain callback.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xentoollog.h>

typedef void rexshim_log_fn(void *user, int level, const char *context,
                            const char *message);

struct rexshim_logger {
    xentoollog_logger vtable; /* first, so libxl can use it as a logger */
    rexshim_log_fn *callback;
    void *user;
};

static void rexshim_vmessage(xentoollog_logger *logger,
                             xentoollog_level level, int errnoval,
                             const char *context, const char *format,
                             va_list al)
{
    struct rexshim_logger *lg = (struct rexshim_logger *)logger;
    char *text = NULL, *line = NULL;
    int rc;

    rc = vasprintf(&text, format, al);
    if (rc < 0) {
        text = NULL;
        goto out;
    }
    if (errnoval >= 0) {
        rc = asprintf(&line, "%s: %s", text, strerror(errnoval));
        if (rc < 0) {
            line = NULL;
            goto out;
        }
        lg->callback(lg->user, level, context, line);
    } else {
        lg->callback(lg->user, level, context, text);
    }

out:
    free(line);
    free(text);
}

static void rexshim_destroy(xentoollog_logger *logger)
{
    free(logger);
}

/* A logger that hands each formatted line to `callback(user, ...)`.
 * Destroy it with xtl_logger_destroy(). NULL when out of memory. */
xentoollog_logger *rexshim_logger_new(rexshim_log_fn *callback, void *user)
{
    struct rexshim_logger *lg;

    if (!callback)
        return NULL;
    lg = calloc(1, sizeof(*lg));
    if (!lg)
        return NULL;
    lg->vtable.vmessage = rexshim_vmessage;
    lg->vtable.progress = NULL;
    lg->vtable.destroy = rexshim_destroy;
    lg->callback = callback;
    lg->user = user;
    return &lg->vtable;
}

/* Writes one finished line through any xentoollog logger (xl's own, when
 * rex runs inside xl); "%s" keeps the line from being read as a format. */
void rexshim_log(xentoollog_logger *logger, int level, const char *context,
                 const char *message)
{
    if (!logger || !message)
        return;
    xtl_log(logger, (xentoollog_level)level, -1, context, "%s", message);
}
