/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * rex.h - the C ABI of librex, the rex resource reallocator for Xen.
 *
 * librex is loaded by `xl rex` (see xl-patch/) with dlopen(). The caller
 * first checks rex_abi_version() against REX_ABI_VERSION and
 * rex_xen_release() against its own Xen release, then calls rex_xl_main()
 * with xl's own libxl context and logger. librex never
 * allocates a second context, never forks and never calls exit(); it leaves
 * the context as it found it.
 *
 * Panic policy: no Rust panic crosses this boundary. Every exported function
 * catches unwinding and returns REX_ERR_PANIC (or 0 / NULL where the return
 * type has no error value).
 */
#ifndef REX_H
#define REX_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define REX_ABI_VERSION_MAJOR 1
#define REX_ABI_VERSION_MINOR 1
/* A caller accepts a library whose major equals its own and whose minor is
 * at least its own. */
#define REX_ABI_VERSION ((REX_ABI_VERSION_MAJOR << 16) | REX_ABI_VERSION_MINOR)

/* Result codes: explicitly numbered, never renumbered. */
typedef enum rex_status {
    REX_OK = 0,
    REX_ERR_USAGE = 1,      /* bad command line */
    REX_ERR_CONFIG = 2,     /* bad policy file; nothing was changed */
    REX_ERR_XEN = 3,        /* a libxl call failed */
    REX_ERR_PANIC = 4,      /* a bug in librex; caught, nothing unwound into C */
    REX_ERR_INVALID = 5,    /* NULL or otherwise invalid argument */
} rex_status;

struct libxl__ctx;
struct xentoollog_logger;

/* The ABI version librex was built with: REX_ABI_VERSION of its rex.h. */
uint32_t rex_abi_version(void);

/* librex's own version string, e.g. "0.1.0"; static storage. */
const char *rex_version(void);

/*
 * The Xen release whose libxl librex was built against, "MAJOR.MINOR" as in
 * libxenlight.so.MAJOR.MINOR (e.g. "4.20"); static storage. Since ABI 1.1.
 * libxl's ABI changes with every release: an xl of another release must not
 * call rex_xl_main().
 */
const char *rex_xen_release(void);

/*
 * Run the reallocator inside the caller's process, on the caller's libxl
 * context, until SIGINT/SIGTERM (or --once). argv[0] is the subcommand name
 * ("rex"); the options are those of `rex run` without --actuator.
 * Returns a rex_status.
 */
int rex_xl_main(struct libxl__ctx *ctx, struct xentoollog_logger *logger,
                int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif /* REX_H */
