/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * fake_xen_host.c - LD_PRELOAD library that lets the patched xl reach its
 * command dispatch on a machine without Xen (tests/xl_patch.rs).
 *
 * xl's main() allocates a libxl context and reads the global config before
 * running any command, and libxl_ctx_alloc() fails without
 * /dev/xen/privcmd. This library replaces exactly the libxl calls main()
 * makes on that path (see xl_ctx_alloc, parse_global_config, xl_ctx_free in
 * tools/xl/xl.c): the context is a dummy that nothing dereferences before
 * `xl rex' hands it to librex. It also points xl's read of the global
 * config file at $FAKE_XL_CONF, so a test can choose xl.conf's contents
 * without writing /etc/xen/xl.conf; xl still names the file it thinks it
 * read.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <libxl.h>

static char dummy_ctx[4096];

int libxl_ctx_alloc(libxl_ctx **pctx, int version, unsigned flags,
                    xentoollog_logger *lg)
{
    (void)version;
    (void)flags;
    (void)lg;
    *pctx = (libxl_ctx *)dummy_ctx;
    return 0;
}

int libxl_ctx_free(libxl_ctx *ctx)
{
    (void)ctx;
    return 0;
}

void libxl_childproc_setmode(libxl_ctx *ctx, const libxl_childproc_hooks *h,
                             void *user)
{
    (void)ctx;
    (void)h;
    (void)user;
}

/* auto_autoballoon() treats NULL as "no dom0_mem given" */
const libxl_version_info *libxl_get_version_info(libxl_ctx *ctx)
{
    (void)ctx;
    return NULL;
}

/* xl sizes its global affinity masks by the host's CPU count */
int libxl_cpu_bitmap_alloc(libxl_ctx *ctx, libxl_bitmap *cpumap,
                           int max_cpus)
{
    (void)ctx;
    (void)max_cpus;
    cpumap->size = 1;
    cpumap->map = calloc(1, 1);
    return cpumap->map ? 0 : ERROR_NOMEM;
}

/* The real function, which needs no hypervisor, on $FAKE_XL_CONF */
int libxl_read_file_contents(libxl_ctx *ctx, const char *filename,
                             void **data_r, int *datalen_r)
{
    int (*real)(libxl_ctx *, const char *, void **, int *);
    const char *conf = getenv("FAKE_XL_CONF");

    real = (int (*)(libxl_ctx *, const char *, void **, int *))
        dlsym(RTLD_NEXT, "libxl_read_file_contents");
    if (!real)
        abort();
    return real(ctx, conf ? conf : filename, data_r, datalen_r);
}
