/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * fake_librex.c - a stand-in for librex, for tests/xl_patch.rs.
 *
 * Built with -DFAKE_ABI=<packed version> to test xl's ABI check, and
 * with -DNO_ABI_SYMBOL to test a library that is not librex at all, and
 * with -DFAKE_XEN_RELEASE='"X.Y"' for the Xen release it claims. Its
 * rex_xl_main prints what xl passed it, one line, and returns
 * $FAKE_REX_STATUS (default 0).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "rex.h"

#ifndef FAKE_ABI
#define FAKE_ABI REX_ABI_VERSION
#endif

#ifndef NO_ABI_SYMBOL
uint32_t rex_abi_version(void)
{
    return FAKE_ABI;
}
#endif

const char *rex_version(void)
{
    return "fake";
}

const char *rex_xen_release(void)
{
    return FAKE_XEN_RELEASE;
}

int rex_xl_main(struct libxl__ctx *ctx, struct xentoollog_logger *logger,
                int argc, char **argv)
{
    const char *status = getenv("FAKE_REX_STATUS");
    int i;

    printf("fake rex_xl_main: ctx=%s logger=%s argc=%d argv=",
           ctx ? "set" : "NULL", logger ? "set" : "NULL", argc);
    for (i = 0; i < argc; i++)
        printf("%s%s", i ? " " : "", argv[i]);
    printf("%s\n", argv[argc] ? " (argv not NULL-terminated)" : "");
    fflush(stdout);
    return status ? atoi(status) : REX_OK;
}
