/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * abi.c - calls every export of librex through include/rex.h, as xl's shim
 * would. Built with -Wall -Wextra -Werror by tests/abi.rs. Exit 0 = pass.
 */
#include <stdio.h>
#include <string.h>

#include "rex.h"

int main(void)
{
    char arg0[] = "rex";
    char *argv[] = { arg0, NULL };
    const char *version, *release;
    uint32_t abi;
    int rc;

    abi = rex_abi_version();
    if (abi != REX_ABI_VERSION) {
        fprintf(stderr, "abi: library %#x, header %#x\n", (unsigned)abi,
                (unsigned)REX_ABI_VERSION);
        return 1;
    }
    if ((abi >> 16) != REX_ABI_VERSION_MAJOR ||
        (abi & 0xffff) < REX_ABI_VERSION_MINOR) {
        fprintf(stderr, "abi: incompatible %#x\n", (unsigned)abi);
        return 1;
    }

    version = rex_version();
    if (!version || !*version) {
        fprintf(stderr, "abi: empty version\n");
        return 1;
    }

    release = rex_xen_release();
    if (!release || !strchr(release, '.')) {
        fprintf(stderr, "abi: Xen release '%s' is not MAJOR.MINOR\n",
                release ? release : "(null)");
        return 1;
    }

    rc = rex_xl_main(NULL, NULL, 1, argv);
    if (rc != REX_ERR_INVALID) {
        fprintf(stderr, "abi: rex_xl_main(NULL ctx) = %d\n", rc);
        return 1;
    }

    printf("%s %u %s\n", version, (unsigned)abi, release);
    return 0;
}
