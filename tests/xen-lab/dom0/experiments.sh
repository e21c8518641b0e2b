# The rex parts of the scenario (sourced by lab.sh after lib.sh). They read
# SLA_MS, PHASE_S, BASE_CLIENTS, LOADED_CLIENTS, EXP2_N from lab.sh.
# shellcheck shell=sh

reset_guests() {
    local n d
    for n in 1 2 3 4; do
        set_cap "vm$n" "$BASE_CAP"
        set_weight "vm$n" 256
        d=$(domid_of "vm$n") && xenstore-rm "/local/domain/$d/data/rex" 2> /dev/null
    done
}

kind_label() { if [ "$1" = xl ]; then echo "xl rex (libxl in process)"; else echo "rex run --actuator $1"; fi; }

# emit_rex_log PHASE FILE: reallocations, errors and the timing summary rex
# printed, one REXLAB line each.
emit_rex_log() {
    grep -E '"event":"(reallocation|timings|tick_failed|reload_failed)"' "$2" |
        while read -r line; do emit "{\"phase\":\"$1\",\"rex\":$line}"; done
    [ -s "$2.err" ] && { note "$1: rex stderr:"; tail -n 5 "$2.err"; }
}

# change_list FILE: "vm2 20->40, ..." from a rex --json log.
change_list() {
    reallocations "$1" | while read -r line; do
        printf '%s %s->%s, ' "$(echo "$line" | sed 's/.*"name":"\([^"]*\)".*/\1/')" \
            "$(json_num "$line" from)" "$(json_num "$line" to)"
    done | sed 's/, $//'
}

# rex_started: REX_PID is still running 3 s after start.
rex_started() {
    sleep 3
    running "$REX_PID" && return 0
    note "rex exited at once:"
    cat "$1" "$1.err"
    return 1
}

# Experiment 1, step 3: VM2 loaded and rex (of KIND) managing.
exp1_rex() {
    local kind=$1 phase=rex_$1 status mean watcher bad weight
    if ! rex_available "$kind"; then
        check "exp1_${phase}_meets_sla" null "$(kind_label "$kind") is not in this image"
        return
    fi
    reset_guests
    # Only vm2's demand grows, as in the paper: the others keep their 20%.
    # vm2 also gets twice the default weight (the paper moved both).
    VM2_WEIGHT=512
    write_policy "$SLA_MS" 20 1000 3 20
    VM2_WEIGHT=""
    rm -f "/tmp/caps-$phase"
    watch_caps "/tmp/caps-$phase" &
    watcher=$!
    start_rex "$kind" "/tmp/$phase.out" --verbose
    if ! rex_started "/tmp/$phase.out"; then
        kill "$watcher"
        check "exp1_${phase}_meets_sla" false "$(kind_label "$kind") did not start"
        return
    fi
    run_load "$phase" "$PHASE_S" $BASE_CLIENTS $LOADED_CLIENTS $BASE_CLIENTS $BASE_CLIENTS publish
    weight=$(weight_of vm2)
    stop_rex TERM
    status=$REX_STATUS
    kill "$watcher"
    emit_rex_log "$phase" "/tmp/$phase.out"
    # The whole log, for `rex report` on the host (run.sh draws it).
    sed "s/^/REXLAB-RUN $phase /" "/tmp/$phase.out"
    later "- $(kind_label "$kind") made $(reallocations "/tmp/$phase.out" | wc -l) cap changes in phase $phase: $(change_list "/tmp/$phase.out"); exit status $status"
    mean=$(json_num "$(grep '"name":"vm2"' "/tmp/$phase.json")" mean_ms)
    if [ -n "$mean" ] && fle 0 "$mean" && fle "$mean" "$SLA_MS"; then
        check "exp1_${phase}_meets_sla" true "vm2 mean $mean ms <= SLA $SLA_MS ms"
    else
        check "exp1_${phase}_meets_sla" false "vm2 mean $mean ms > SLA $SLA_MS ms"
    fi
    if [ "$weight" = 512 ]; then
        check "exp1_${phase}_weight" true "vm2's weight 256 -> 512 (the policy's), as xl $XL_SCHED reads it"
    else
        check "exp1_${phase}_weight" false "vm2's weight ${weight:-?} after the run, not the policy's 512"
    fi
    metrics_check "exp1_${phase}_metrics" "/tmp/$phase.out"
    bad=$(awk '{ f = 20; c = ($1 == "vm2") ? 80 : 20; if ($2 < f || $2 > c) print $1 "=" $2 }' \
        "/tmp/caps-$phase" | sort -u | tr '\n' ' ')
    if [ -z "$bad" ] && [ "$status" = 0 ]; then
        check "exp1_${phase}_bounds" true "every guest's cap stayed within [floor, ceiling] ($(wc -l < "/tmp/caps-$phase") samples); rex exited 0 on SIGTERM"
    else
        check "exp1_${phase}_bounds" false "out of bounds: ${bad:-none}; rex exit status $status"
    fi
}

# metrics_check NAME LOG: the --metrics file rex left beside LOG agrees
# with Xen (vm2's cap as xl reads it now) and with the log (its count of
# applied cap changes).
metrics_check() {
    local prom=$2.prom cap exported logged counted unmet
    cap=$(cap_of vm2)
    unmet=$(sed -n 's/^xen_rex_host_unmet_cpu_percent \([0-9]*\)$/\1/p' "$prom" 2>/dev/null)
    exported=$(sed -n 's/^xen_rex_domain_cap_percent{domain="vm2"} //p' "$prom" 2>/dev/null)
    logged=$(reallocations "$2" | grep -c '"name":"vm2"')
    counted=$(awk '/^xen_rex_reallocations_total\{domain="vm2",kind="cap",/ { n += $2 } END { print n + 0 }' "$prom" 2>/dev/null)
    if [ -n "$exported" ] && [ "$exported" = "$cap" ] && [ "$counted" = "$logged" ] &&
        grep -q '^xen_rex_ticks_total [1-9]' "$prom" && [ -n "$unmet" ] &&
        grep -q '^xen_rex_domain_unmet_memory_bytes{domain="vm2"} [0-9]' "$prom"; then
        check "$1" true "metrics file: vm2 cap $exported% as xl reads it, $counted cap changes as logged, unmet CPU $unmet% at the end"
    else
        check "$1" false "metrics file: vm2 cap '${exported}' vs xl $cap, $counted cap changes vs $logged logged, unmet CPU gauge '${unmet}'"
    fi
}

# Experiment 2: KIND's time of one reallocation (decision to applied). The
# policy's level for vm1 is toggled between 20% and 30% and rex is sent
# SIGHUP: each reload makes exactly one cap change on an idle host.
exp2() {
    local kind=$1 i=0 status fields
    if ! rex_available "$kind"; then
        check "exp2_$kind" null "$(kind_label "$kind") is not in this image"
        return
    fi
    reset_guests
    write_policy "$SLA_MS" 20 500 0
    start_rex "$kind" "/tmp/exp2-$kind.out"
    if ! rex_started "/tmp/exp2-$kind.out"; then
        check "exp2_$kind" false "$(kind_label "$kind") did not start"
        return
    fi
    while [ $i -lt "$EXP2_N" ]; do
        i=$((i + 1))
        write_policy "$SLA_MS" $((i % 2 ? 30 : 20)) 500 0
        kill -HUP "$REX_PID"
        sleep 1.5
    done
    stop_rex TERM
    status=$REX_STATUS
    emit_rex_log "exp2_$kind" "/tmp/exp2-$kind.out"
    fields=$(reallocations "/tmp/exp2-$kind.out" | grep '"name":"vm1"' |
        sed -n 's/.*"elapsed_us":\([0-9.e+-]*\).*/\1/p' | awk '{ printf "%.6f\n", $1 / 1000 }' | stats)
    emit "{\"exp2\":\"$kind\",\"exit_status\":\"$status\",$fields}"
    md "| $(kind_label "$kind") | $(json_num "{$fields}" n) | $(json_num "{$fields}" mean_ms) | $(json_num "{$fields}" median_ms) | $(json_num "{$fields}" sd_ms) | $(json_num "{$fields}" ci95_lo_ms)–$(json_num "{$fields}" ci95_hi_ms) |"
    eval "EXP2_MEAN_$kind=$(json_num "{$fields}" mean_ms)"
    if [ "$(json_num "{$fields}" n)" -ge "$EXP2_N" ] && [ "$status" = 0 ]; then
        check "exp2_$kind" true "$(json_num "{$fields}" n) reallocations timed; rex exited 0"
    else
        check "exp2_$kind" false "$(json_num "{$fields}" n) of $EXP2_N reallocations timed; rex exit status $status"
    fi
}

# wait_cap VM CAP SECONDS: until VM's cap is CAP.
wait_cap() {
    local i=0
    while [ $i -lt "$3" ]; do
        [ "$(cap_of "$1")" = "$2" ] && return 0
        sleep 1
        i=$((i + 1))
    done
    return 1
}

# Item 4: domains created and destroyed under rex, garbage from a guest, rex
# stopped by SIGTERM and SIGKILL.
lifecycle() {
    local kind=xl status d1 d2 value bad
    rex_available xl || kind=libxl
    if ! rex_available "$kind"; then
        check lifecycle null "rex is not in this image"
        return
    fi
    reset_guests
    write_policy "$SLA_MS" 20 1000 3 40 vm5
    start_rex "$kind" /tmp/life.out
    rex_started /tmp/life.out || { check lifecycle false "$(kind_label "$kind") did not start"; return; }

    write_guest_cfg 5
    if timeout 120 xl create /tmp/vm5.cfg > /tmp/vm5.create.log 2>&1 ||
        { xl destroy vm5 2> /dev/null; timeout 120 xl create /tmp/vm5.cfg > /tmp/vm5.create.log 2>&1; }; then
        if wait_cap vm5 20 20; then
            check lifecycle_domain_created true "vm5, created while rex ran, was given its level (cap 20)"
        else
            check lifecycle_domain_created false "vm5's cap is '$(cap_of vm5)', not 20, 20 s after creation"
        fi
        timeout 60 xl destroy vm5
        sleep 3
        if running "$REX_PID"; then
            check lifecycle_domain_destroyed true "rex kept running after vm5 was destroyed under it"
        else
            check lifecycle_domain_destroyed false "rex died when vm5 was destroyed"
        fi
    else
        tail -n 5 /tmp/vm5.create.log
        check lifecycle_domain_created false "xl create vm5 failed twice"
    fi

    d1=$(domid_of vm1)
    d2=$(domid_of vm2)
    for value in garbage -1 1e309 NaN 99999999999999999999999999 12abc 0x10 ' 7 7' \
        "$(head -c 3000 /dev/zero | tr '\0' 9)" 999999999; do
        xenstore-write -- "/local/domain/$d1/data/meminfo_free" "$value" \
            "/local/domain/$d1/data/rex/response_ms" "$value" \
            "/local/domain/$d2/data/meminfo_free" "$value" \
            "/local/domain/$d2/data/rex/response_ms" "$value"
        sleep 1
    done
    sleep 5 # 999999999 ms: vm2 "misses" its SLA; rex may raise it, not past 80
    bad=$(caps_within_bounds)
    if running "$REX_PID" && [ -z "$bad" ]; then
        check faults_guest_garbage true "rex kept running; caps within bounds (vm1 $(cap_of vm1), vm2 $(cap_of vm2))"
    else
        check faults_guest_garbage false "rex alive: $(running "$REX_PID" && echo yes || echo no); out of bounds: ${bad:-none}"
    fi

    xenstored_stall
    xenstored_live_update

    stop_rex TERM
    status=$REX_STATUS
    emit_rex_log lifecycle /tmp/life.out
    bad=$(caps_within_bounds)
    if [ "$status" = 0 ] && [ -z "$bad" ]; then
        check faults_sigterm true "rex exited 0 on SIGTERM; caps within bounds"
    else
        check faults_sigterm false "exit status $status; out of bounds: ${bad:-none}"
    fi

    start_rex libxl /tmp/life-kill.out
    if rex_started /tmp/life-kill.out; then
        sleep 2
        stop_rex KILL
        status=$REX_STATUS
        bad=$(caps_within_bounds)
        if [ -z "$bad" ]; then
            check faults_sigkill true "after SIGKILL (status $status) every cap is within bounds"
        else
            check faults_sigkill false "after SIGKILL out of bounds: $bad"
        fi
    else
        check faults_sigkill false "rex run did not start"
    fi
    d1=$(domid_of vm1) && xenstore-rm "/local/domain/$d1/data/rex" 2> /dev/null
}

# The guests in a cpupool of their own, with another scheduler than
# Pool-0's: rex must read the guests' pool before its first tick (the exec
# actuator picks `xl sched-credit` or `sched-credit2` from it). vm1 is
# moved into a credit pool on pCPU 1 (Pool-0 keeps credit2 and pCPU 0),
# its cap set above the policy's ceiling; one tick of `rex run --actuator
# exec` must bring it down with `xl sched-credit`.
cpupool_check() {
    local cap out=/tmp/pool.out
    if ! { xl cpupool-cpu-remove Pool-0 1 &&
        xl cpupool-create name=\"rexpool\" sched=\"credit\" cpus=\"1\" &&
        xl cpupool-migrate vm1 rexpool &&
        xl sched-credit -d vm1 -c 90; } > /tmp/pool.log 2>&1; then
        tail -n 5 /tmp/pool.log
        check cpupool_scheduler_read_first false "the lab could not put vm1 in a credit cpupool"
        return
    fi
    cat > /tmp/pool.cfg <<EOF2
interval = 1000
dom0_cpu = 0
domains = [ "name=vm1,cap_min=10,cap_max=50,mem_min=128M,mem_max=256M" ]
EOF2
    timeout 60 rex run --actuator exec --once -c /tmp/pool.cfg > "$out" 2>&1
    # Within [cap_min, cap_max]: where exactly depends on the guests rex
    # does not manage (vm2-vm4, in Pool-0, still count against the pool).
    cap=$(xl sched-credit -d vm1 2>/dev/null | awk 'NR == 2 { print $4 }')
    if [ -n "$cap" ] && [ "$cap" -ge 10 ] && [ "$cap" -le 50 ]; then
        check cpupool_scheduler_read_first true "vm1 in a credit pool beside credit2's Pool-0: capped 90 -> $cap with xl sched-credit at the first tick"
    else
        tail -n 5 "$out"
        check cpupool_scheduler_read_first false "vm1 in a credit pool: cap ${cap:-?}, not within [10, 50], after one tick"
    fi
}

# until_cap VM CAP SECONDS: polls (5 a second) until VM's cap is CAP;
# prints the seconds it took, or fails.
until_cap() {
    local t0 now
    t0=$(uptime_s)
    while :; do
        now=$(uptime_s)
        if [ "$(cap_of "$1")" = "$2" ]; then
            awk -v a="$t0" -v b="$now" 'BEGIN { printf "%.2f", b - a }'
            return 0
        fi
        fle "$3" "$(awk -v a="$t0" -v b="$now" 'BEGIN { print b - a }')" && return 1
        sleep 0.2
    done
}

# The control socket on real Xen (issue 13), in xl's process when the
# patched xl is there: `rex status --json` shows every managed domain with
# its class; `rex sla` gives vm1 a new level, set within about one interval
# (500 ms, plus xl's read) and audited; `rex pause` holds a change until
# `rex resume`; a second daemon refuses to start; the socket goes with rex.
control_check() {
    local kind=xl out=/tmp/control.out st n took held second status before after hostile_status
    rex_available xl || kind=libxl
    reset_guests
    write_policy "$SLA_MS" 20 500 0
    start_rex "$kind" "$out" --metrics-listen 9101
    if ! rex_started "$out"; then
        check control_status false "$(kind_label "$kind") did not start"
        return
    fi
    # The metrics over HTTP, as a Prometheus server scrapes them (busybox's
    # static wget segfaults here: hostile --get does the GET).
    if timeout 10 hostile --get 127.0.0.1 9101 /metrics > /tmp/control.scrape 2>&1 &&
        head -n1 /tmp/control.scrape | grep -q '^HTTP/1.0 200 OK' &&
        grep -q '^xen_rex_ticks_total [1-9]' /tmp/control.scrape &&
        grep -q '^xen_rex_domain_cap_percent{domain="vm2"} ' /tmp/control.scrape &&
        grep -q '^xen_rex_host_unmet_cpu_percent ' /tmp/control.scrape; then
        check metrics_listen true "GET http://127.0.0.1:9101/metrics from $(kind_label "$kind"): $(wc -l < /tmp/control.scrape) lines, $(grep '^xen_rex_ticks_total' /tmp/control.scrape)"
    else
        check metrics_listen false "GET http://127.0.0.1:9101/metrics: $(head -c 200 /tmp/control.scrape 2>&1 | tr -d '"\\\r' | tr '\n' ' ')"
    fi
    st=$(rex status --json 2>&1)
    n=$(echo "$st" | grep -o '"class":"[^"]*"' | wc -l)
    if [ "$n" = 4 ] && echo "$st" | grep -q '"name":"vm2"' && rex status | grep -q '^vm1 '; then
        check control_status true "$(kind_label "$kind"): rex status lists the 4 managed domains with their class ($(echo "$st" | grep -o '"state":"[a-z_]*"'))"
    else
        check control_status false "rex status: $(echo "$st" | head -c 300)"
    fi
    # Hostile clients (stalled, oversized, garbage, a burst of 40) while
    # rex ticks every 0.5 s: each is answered or dropped in time, the
    # ticks go on, rex lives.
    before=$(rex status --json 2>/dev/null | sed -n 's/.*"ticks":\([0-9]*\).*/\1/p')
    hostile /run/rex/rex.sock > /tmp/control.hostile 2>&1
    hostile_status=$?
    after=$(rex status --json 2>/dev/null | sed -n 's/.*"ticks":\([0-9]*\).*/\1/p')
    if [ "$hostile_status" = 0 ] && running "$REX_PID" && [ -n "$before" ] && [ -n "$after" ] &&
        [ "$after" -gt $((before + 2)) ] && grep -q '"huge":"error' /tmp/control.hostile &&
        grep -q '"garbage":"error' /tmp/control.hostile && grep -q '"status":"ok"' /tmp/control.hostile &&
        ! grep -q '"busy":0,' /tmp/control.hostile; then
        check control_hostile true "ticks $before -> $after during the flood: $(tr -d '"' < /tmp/control.hostile | cut -c1-300)"
    else
        check control_hostile false "status $hostile_status, ticks $before -> $after, rex $(running "$REX_PID" && echo alive || echo gone): $(tr -d '"' < /tmp/control.hostile | cut -c1-300)"
    fi
    emit "{\"control_hostile\":$(cat /tmp/control.hostile 2>/dev/null | grep '^{' || echo null)}"
    if rex sla vm1 cap=30 > /tmp/control.sla 2>&1 && took=$(until_cap vm1 30 5) &&
        grep '"event":"sla_changed"' "$out" | grep -q '"uid":0'; then
        check control_sla true "rex sla vm1 cap=30: set ${took} s after the request (interval 0.5 s), audited with uid 0"
    else
        check control_sla false "rex sla: $(cat /tmp/control.sla); vm1 cap $(cap_of vm1); audit: $(grep -c sla_changed "$out")"
    fi
    rex pause > /dev/null 2>&1
    rex sla vm1 cap=40 --persist > /tmp/control.persist 2>&1
    sleep 2
    held=$(cap_of vm1)
    rex status | grep -q paused && st=paused || st=not-paused
    rex resume > /dev/null 2>&1
    if [ "$held" = 30 ] && [ "$st" = paused ] && took=$(until_cap vm1 40 5); then
        check control_pause true "paused: vm1 held at 30% for 2 s with a level of 40% asked; resumed: 40% ${took} s later"
    else
        check control_pause false "vm1 at $held% while paused (status: $st); now $(cap_of vm1)%"
    fi
    # --persist edited only vm1's entry: the file parses and gives it 40%.
    if grep -q '"name=vm1,cap=40,' /etc/rex/policy.cfg && grep -q '^# Written by the xen lab' /etc/rex/policy.cfg &&
        rex run --once --dry-run --control none -c /etc/rex/policy.cfg > /dev/null 2>&1; then
        check control_persist true "rex sla --persist: $(tail -n1 /tmp/control.persist); vm1's entry reads cap=40, the comment stays, the file loads"
    else
        check control_persist false "rex sla --persist: $(cat /tmp/control.persist); entry: $(grep name=vm1 /etc/rex/policy.cfg)"
    fi
    timeout 30 rex run --once -c /etc/rex/policy.cfg > /tmp/control.second 2>&1
    second=$?
    stop_rex TERM
    status=$REX_STATUS
    if [ "$second" = 3 ] && grep -q "another rex is running" /tmp/control.second &&
        [ "$status" = 0 ] && [ ! -e /run/rex/rex.sock ]; then
        check control_lock true "a second rex run exited 3: $(head -n1 /tmp/control.second | cut -c1-90); the first exited 0 and removed its socket"
    else
        check control_lock false "second rex: status $second: $(head -c 200 /tmp/control.second); first: status $status; socket left: $(ls /run/rex 2>&1)"
    fi
    emit_rex_log control "$out"
}

# floor_phase: the in-process floor. sched_floor (examples/sched_floor.rs)
# times the bare libxl call rex makes for one cap change
# (libxl_domain_sched_params_set, the cap and the scheduler read once
# before) 200 times on vm1, alternating with the same call with the
# scheduler left for libxl to find; exp2's `xl rex` reallocation is
# reported as a ratio of the first (goal: within 1.5x).
# Then rex's own CPU time per tick at 1 s and 100 ms intervals.
floor_phase() {
    local line mean ratio goal
    if ! command -v sched_floor > /dev/null; then
        check inprocess_floor null "sched_floor is not in this image"
    elif ! line=$(sched_floor "$(domid_of vm1)" 200 2> /tmp/floor.err); then
        check inprocess_floor false "sched_floor failed: $(tail -n1 /tmp/floor.err | tr -d '"\\')"
    else
        mean=$(json_num "$line" mean_us)
        emit "{\"floor\":\"libxl_domain_sched_params_set\",\"scheduler\":\"${XL_SCHED#sched-}\",${line#\{}"
        md ""
        md "Bare \`libxl_domain_sched_params_set\` (cap and scheduler, ${XL_SCHED#sched-}), $(json_num "$line" n) calls: mean $mean µs, median $(json_num "$line" median_us) µs, p95 $(json_num "$line" p95_us) µs, min $(json_num "$line" min_us) µs; with the scheduler left for libxl to find (as \`xl sched-*\` does), timed alternately: mean $(json_num "$line" found_mean_us) µs, median $(json_num "$line" found_median_us) µs."
        if [ -n "${EXP2_MEAN_xl:-}" ] && fle 0.000001 "$mean"; then
            ratio=$(awk -v a="$EXP2_MEAN_xl" -v b="$mean" 'BEGIN { printf "%.2f", a * 1000 / b }')
            goal="within"
            fle "$ratio" 1.5 || goal="above"
            emit "{\"inprocess_over_floor\":$ratio}"
            md "xl rex's reallocation (exp2, ${EXP2_MEAN_xl} ms) is ${ratio}x that floor ($goal the 1.5x goal)."
            check inprocess_floor true "floor $mean µs a call; xl rex's reallocation ${EXP2_MEAN_xl} ms = ${ratio}x ($goal 1.5x)"
        elif ! rex_available xl; then
            check inprocess_floor null "floor $mean µs a call; xl rex is not in this image, nothing to compare with"
        else
            check inprocess_floor false "floor $mean µs a call, but no xl rex reallocation time (exp2) to compare"
        fi
    fi
    cpu_per_tick 1000
    cpu_per_tick 100
}

# cpu_per_tick INTERVAL_MS: `rex run --actuator libxl` managing the four idle
# guests for 20 s; its utime + stime (clock ticks of 10 ms) over the ticks
# it ran, from its metrics file.
cpu_per_tick() {
    local out=/tmp/cpu-$1.out t0 t1 c0 c1 ticks0 ticks1 ticks cpu_ms line
    reset_guests
    write_policy "$SLA_MS" 20 "$1" 3
    start_rex libxl "$out"
    if ! rex_started "$out"; then
        check "cpu_per_tick_$1ms" false "rex run did not start"
        return
    fi
    t0=$(uptime_s)
    c0=$(awk '{ print $14 + $15 }' "/proc/$REX_PID/stat")
    ticks0=$(metric "$out.prom" xen_rex_ticks_total)
    sleep 20
    c1=$(awk '{ print $14 + $15 }' "/proc/$REX_PID/stat")
    ticks1=$(metric "$out.prom" xen_rex_ticks_total)
    t1=$(uptime_s)
    stop_rex TERM
    ticks=$((${ticks1:-0} - ${ticks0:-0}))
    if [ "$ticks" -le 0 ] || [ "$REX_STATUS" != 0 ]; then
        check "cpu_per_tick_$1ms" false "no ticks counted (${ticks0:-?} -> ${ticks1:-?}); rex exit status $REX_STATUS"
        return
    fi
    cpu_ms=$(((c1 - c0) * 10))
    line=$(awk -v c="$cpu_ms" -v n="$ticks" -v a="$t0" -v b="$t1" \
        'BEGIN { printf "\"ticks\":%d,\"cpu_ms\":%d,\"cpu_ms_per_tick\":%.3f,\"core_pct\":%.3f", n, c, c / n, c / ((b - a) * 10) }')
    emit "{\"cpu_per_tick\":$1,$line}"
    md "rex run (libxl) at a $1 ms interval: $(json_num "{$line}" cpu_ms) ms of CPU over $ticks ticks: $(json_num "{$line}" cpu_ms_per_tick) ms a tick, $(json_num "{$line}" core_pct)% of a core."
    check "cpu_per_tick_$1ms" true "$(json_num "{$line}" cpu_ms_per_tick) ms of CPU a tick, $(json_num "{$line}" core_pct)% of a core ($ticks ticks)"
}
