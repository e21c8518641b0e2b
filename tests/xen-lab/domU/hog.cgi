#!/bin/sh
# Holds 8 MiB more of the guest's memory per request, in tmpfs (no swap:
# only a bigger balloon target makes room); ?free lets it all go.
case "$QUERY_STRING" in
free) rm -f /hog/* ;;
*) dd if=/dev/zero of="/hog/$(ls /hog | wc -l)" bs=1M count=8 2>/dev/null ;;
esac
printf 'Content-Type: text/plain\r\n\r\nheld %s MiB\n' "$(du -sm /hog | cut -f1)"
