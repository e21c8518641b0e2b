# Faults on real Xen under a running rex (issue 11), sourced by lab.sh:
# xenstored stopped, xenstored restarted by live update, a domain destroyed
# between rex's decision and its change.
# shellcheck shell=sh

# xenstored_stall: xenstored stopped (SIGSTOP) for 8 s under the running
# rex of lifecycle: every read rex makes blocks meanwhile. Once xenstored
# answers again rex must tick on (its metrics file's tick count moves by 2
# or more in the next 5 s) with every cap within bounds.
xenstored_stall() {
    local pid before after bad
    pid=$(cat /run/xenstored.pid 2> /dev/null)
    if [ -z "$pid" ] || ! kill -0 "$pid" 2> /dev/null; then
        check faults_xenstored_stall false "no xenstored pid in /run/xenstored.pid"
        return
    fi
    kill -STOP "$pid"
    sleep 8
    before=$(metric /tmp/life.out.prom xen_rex_ticks_total)
    kill -CONT "$pid"
    sleep 5
    after=$(metric /tmp/life.out.prom xen_rex_ticks_total)
    bad=$(caps_within_bounds)
    if running "$REX_PID" && [ $((${after:-0} - ${before:-0})) -ge 2 ] && [ -z "$bad" ]; then
        check faults_xenstored_stall true "xenstored stopped 8 s under rex: ticks ${before} -> ${after} in the 5 s after it answered again; caps within bounds"
    else
        check faults_xenstored_stall false "after xenstored's 8 s stop: rex alive $(running "$REX_PID" && echo yes || echo no), ticks ${before:-?} -> ${after:-?}, out of bounds: ${bad:-none}"
    fi
}

# xenstored_live_update: xenstored restarted under the running rex of
# lifecycle, the way Xen restarts it (xenstore-control live-update: systemd's
# xenstored.service refuses a manual stop, and a killed xenstored takes the
# guests' store with it). The new xenstored keeps the connections and
# watches, so rex must tick on, without a failed tick, and go on receiving
# its watch events (the guests' agents publish every second).
xenstored_live_update() {
    local xs ticks0 ticks1 events0 events1 failed0 failed1 st bad detail pid text0 text1
    xs=$(ls /usr/lib/xen-*/bin/xenstored 2> /dev/null | head -n1)
    failed0=$(grep -c '"event":"tick_failed"' /tmp/life.out)
    # exec(2) keeps the pid: the new binary shows as a new text mapping
    # (the kernel randomises where it lands).
    pid=$(cat /run/xenstored.pid 2> /dev/null)
    text0=$(head -n1 "/proc/$pid/maps" 2> /dev/null | cut -d' ' -f1)
    timeout 120 xenstore-control live-update "$xs" > /tmp/live-update.log 2>&1
    st=$?
    if [ "$st" != 0 ]; then
        tail -n 3 /tmp/live-update.log
        check faults_xenstored_live_update false "xenstore-control live-update $xs exited $st: $(tail -n1 /tmp/live-update.log)"
        return
    fi
    text1=$(head -n1 "/proc/$pid/maps" 2> /dev/null | cut -d' ' -f1)
    if [ -z "$text0" ] || [ "$text0" = "$text1" ]; then
        check faults_xenstored_live_update false "xenstore-control live-update exited 0 but xenstored (pid ${pid:-?}) kept its text mapping ${text0:-?}: not restarted"
        return
    fi
    sleep 2
    ticks0=$(metric /tmp/life.out.prom xen_rex_ticks_total)
    events0=$(metric /tmp/life.out.prom xen_rex_xenstore_watch_events_total)
    sleep 6
    ticks1=$(metric /tmp/life.out.prom xen_rex_ticks_total)
    events1=$(metric /tmp/life.out.prom xen_rex_xenstore_watch_events_total)
    failed1=$(grep -c '"event":"tick_failed"' /tmp/life.out)
    bad=$(caps_within_bounds)
    detail="xenstored pid $pid re-executed (text at $text0, then $text1); ticks ${ticks0:-?} -> ${ticks1:-?} and watch events ${events0:-?} -> ${events1:-?} in the 6 s after; failed ticks $failed0 -> $failed1; store $(xenstore-read /local/domain/0/name 2> /dev/null || echo lost)"
    if running "$REX_PID" && [ $((${ticks1:-0} - ${ticks0:-0})) -ge 4 ] &&
        [ "${events1:-0}" -gt "${events0:-0}" ] && [ "$failed1" = "$failed0" ] &&
        [ -z "$bad" ] && xenstore-read /local/domain/0/name > /dev/null 2>&1; then
        check faults_xenstored_live_update true "xenstored live-updated under rex: $detail"
    else
        check faults_xenstored_live_update false "after xenstored's live update: rex alive $(running "$REX_PID" && echo yes || echo no), $detail, out of bounds: ${bad:-none}"
    fi
}

# destroyed_before_apply: a domain destroyed after rex decided a change to it
# and before the change is made. rex run --actuator exec runs the lab's xl
# wrapper, which destroys vm5 at the first call naming it and then runs the
# real xl, which fails. rex must report that change failed, once; not try
# vm5 again on later ticks; keep ticking, and still correct the others (vm1,
# set above its ceiling afterwards, is brought back within bounds).
destroyed_before_apply() {
    local out=/tmp/vanish.out d5 i c calls_then calls_after failures fixed bad ticks0 ticks1 detail
    if ! rex_available exec; then
        check faults_destroyed_before_apply null "rex is not in this image"
        return
    fi
    reset_guests
    write_policy "$SLA_MS" 20 1000 3 40 vm5
    write_guest_cfg 5
    xl destroy vm5 2> /dev/null
    if ! timeout 120 xl create /tmp/vm5.cfg > /tmp/vm5.create.log 2>&1; then
        tail -n 5 /tmp/vm5.create.log
        check faults_destroyed_before_apply false "xl create vm5 failed"
        return
    fi
    d5=$(domid_of vm5)
    # Uncapped at creation; vm5's level is cap 20, so rex's first tick caps it.
    set_cap vm5 0
    rm -f /tmp/vanish.done /tmp/vanish.calls
    # The exec actuator runs `sched-credit[2] -d DOMID ...` and `mem-set DOMID ...`.
    cat > /tmp/xl-vanish <<EOF2
#!/bin/sh
case "\$1" in
    sched-credit|sched-credit2) dom=\$3 ;;
    *) dom=\$2 ;;
esac
if [ "\$dom" = "$d5" ]; then
    if [ ! -e /tmp/vanish.done ]; then
        xl destroy $d5 > /dev/null 2>&1
        touch /tmp/vanish.done
    fi
    echo "\$*" >> /tmp/vanish.calls
fi
exec xl "\$@"
EOF2
    chmod +x /tmp/xl-vanish
    start_rex exec "$out" --xl /tmp/xl-vanish
    i=0
    while [ ! -e /tmp/vanish.done ] && [ $i -lt 40 ]; do sleep 0.5; i=$((i + 1)); done
    if [ ! -e /tmp/vanish.done ]; then
        stop_rex TERM
        check faults_destroyed_before_apply false "rex made no change to vm5 (domid $d5) in 20 s: $(tail -n 2 "$out.err")"
        return
    fi
    sleep 2 # the tick under way ends (each xl call ~0.2 s under TCG)
    calls_then=$(wc -l < /tmp/vanish.calls)
    ticks0=$(metric "$out.prom" xen_rex_ticks_total)
    sleep 4
    set_cap vm1 95
    fixed=no
    i=0
    while [ $i -lt 20 ]; do
        c=$(cap_of vm1)
        if [ -n "$c" ] && [ "$c" -ge 20 ] && [ "$c" -le 40 ]; then fixed=$c; break; fi
        sleep 0.5
        i=$((i + 1))
    done
    ticks1=$(metric "$out.prom" xen_rex_ticks_total)
    calls_after=$(wc -l < /tmp/vanish.calls)
    failures=$(grep '"event":"reallocation"' "$out" | grep "\"domid\":$d5," | grep -vc '"error":null')
    bad=$(caps_within_bounds)
    note "rex on the change to the destroyed vm5: $(grep '"event":"reallocation"' "$out" | grep "\"domid\":$d5," | head -n1 | cut -c1-400)"
    detail="vm5 (domid $d5) destroyed at rex's first change to it: xl calls naming it $calls_then, $calls_after 14 s later; failed changes reported $failures; ticks ${ticks0:-?} -> ${ticks1:-?}; vm1 set to 95 afterwards, then $fixed"
    if running "$REX_PID" && [ "$calls_then" -ge 1 ] && [ "$calls_after" = "$calls_then" ] &&
        [ "$failures" = "$calls_then" ] && [ "$fixed" != no ] && [ -z "$bad" ] &&
        ! domid_of vm5 > /dev/null; then
        check faults_destroyed_before_apply true "$detail"
    else
        cat /tmp/vanish.calls
        grep "\"domid\":$d5," "$out" | tail -n 3
        check faults_destroyed_before_apply false "$detail; rex alive $(running "$REX_PID" && echo yes || echo no); out of bounds: ${bad:-none}"
    fi
    stop_rex TERM
}
