/* Pin the libxl API: 0x041700 is an #error in 4.17's header, and leaving it
 * unset pulls in no-op compatibility inline stubs. */
#define LIBXL_API_VERSION 0x041400
#include <stdio.h>
#include <xentoollog.h>
#include <libxl.h>
#include <libxl_event.h>
#include <libxl_utils.h>
#include <libxlutil.h>
#include <xenstore.h>
