#!/bin/sh
# Fixed CPU work per request: a shell loop, no I/O, so a request's service
# time is CPU time and scales with the guest's scheduler cap.
i=0
while [ $i -lt 200 ]; do i=$((i + 1)); done
printf 'Content-Type: text/plain\r\n\r\nok %d\n' "$i"
