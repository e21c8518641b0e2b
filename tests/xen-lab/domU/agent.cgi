#!/bin/sh
# Stops (?stop) or starts again (?start) the guest's rex-agent: the lab's
# dead-agent check. What the agent last wrote stays in xenstore.
case "$QUERY_STRING" in
stop) kill $(pidof rex-agent) 2>/dev/null ;;
start) pidof rex-agent >/dev/null || rex-agent --interval 1 </dev/null >/dev/null 2>&1 & ;;
esac
printf 'Content-Type: text/plain\r\n\r\nagent %s\n' "$(pidof rex-agent || echo stopped)"
