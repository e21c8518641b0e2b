# The memory phase of the scenario (sourced by lab.sh after lib.sh and
# experiments.sh).
# shellcheck shell=sh

# Memory on real Xen (issue 9). vm1-vm3 run rex's guest agent, vm4 none.
# vm3's hog holds 8 MiB more whenever its available memory allows, up to
# 120 MiB: more than its 128 MiB target leaves (a PV guest sees ~77 MiB of
# it), so it gets there only if rex grows vm3 towards its 256 MiB maxmem
# (xenstore memory/static-max; Xen's own maximum is target + 1 MiB).
mem_target_kb() { xenstore-read "/local/domain/$(domid_of "$1")/memory/target" 2>/dev/null; }
guest_value() { xenstore-read "/local/domain/$(domid_of "$1")/data/$2" 2>/dev/null; }
host_free_mib() { xl info 2>/dev/null | awk '/^free_memory/ { print $3 }'; }
# Current allocation of domain NAME in MiB (xl list's Mem column).
mem_current_mib() { xl list "$1" 2>/dev/null | awk 'NR == 2 { print $3 }'; }
# Free memory as libxl (and so rex) counts it: Xen's free pages (with
# those being scrubbed, few at rest), what xl info reports.
libxl_free_mib() { host_free_mib; }

# Donors and a tight host: before rex starts, vm1 and vm2 (idle, with
# agents) are grown to 192 MiB, 64 above their 128 MiB guarantee, and
# reserve_memory is set so that only MEM_HEADROOM MiB of the host's free
# memory is above the slush and reserve. The hog's grow past that can only
# be served by shrinking the donors first.
MEM_HEADROOM=40
grow_donors() {
    local i=0
    xl mem-set vm1 192m && xl mem-set vm2 192m || return 1
    while [ $i -lt 40 ]; do
        [ "$(mem_current_mib vm1)" -ge 190 ] 2>/dev/null && [ "$(mem_current_mib vm2)" -ge 190 ] 2>/dev/null && return 0
        sleep 1
        i=$((i + 1))
    done
    note "donors not grown: vm1 $(mem_current_mib vm1) MiB, vm2 $(mem_current_mib vm2) MiB"
    return 1
}

# vm1's agent dies and a pressure figure (1 MiB free) appears where it
# wrote: rex, still running, must not grow vm1 on it (its counter stands:
# the figures are not even read again, and after five periods they are
# ignored). The agent is started again afterwards.
dead_agent_check() {
    local start1 d1 now1
    start1=$(mem_target_kb vm1)
    d1=$(domid_of vm1)
    if [ -z "$start1" ] || ! timeout 20 wget -q -O /dev/null "http://$(guest_ip 1)/cgi-bin/agent?stop"; then
        check memory_dead_agent_not_grown false "vm1's agent could not be stopped"
        return
    fi
    sleep 2
    xenstore-write "/local/domain/$d1/data/meminfo_free" 1024
    sleep 12
    now1=$(mem_target_kb vm1)
    if [ -n "$now1" ] && [ "$now1" -le "$start1" ]; then
        check memory_dead_agent_not_grown true "vm1's agent stopped, 1 MiB free written in its place: target $((start1 / 1024)) -> $((now1 / 1024)) MiB in 14 s"
    else
        check memory_dead_agent_not_grown false "vm1 grown on a dead agent's figure: $start1 -> ${now1:-?} kB"
    fi
    timeout 20 wget -q -O /dev/null "http://$(guest_ip 1)/cgi-bin/agent?start" || true
}

# vm4 (no agent) is paused and given a target 32 MiB above what it holds:
# its balloon cannot move. rex (balloon_timeout = 10 s in write_policy)
# must publish it as uncooperative in xenstore, as squeezed does, and set
# its target back to what it holds. vm4 runs again afterwards.
stuck_balloon_check() {
    local d4 before asked flag="" target i=0
    d4=$(domid_of vm4)
    before=$(mem_target_kb vm4)
    if [ -z "$before" ] || ! xl pause vm4; then
        check memory_stuck_balloon_flagged false "vm4 could not be paused"
        return
    fi
    asked=$((before / 1024 + 32))
    if ! xl mem-set vm4 "${asked}m" > /tmp/memset.log 2>&1; then
        tail -n 3 /tmp/memset.log
        xl unpause vm4
        check memory_stuck_balloon_flagged false "xl mem-set vm4 ${asked}m failed"
        return
    fi
    while [ $i -lt 45 ]; do
        flag=$(xenstore-read "/local/domain/$d4/memory/uncooperative" 2>/dev/null)
        [ "$flag" = 1 ] && break
        sleep 1
        i=$((i + 1))
    done
    sleep 2
    target=$(mem_target_kb vm4)
    xl unpause vm4
    if [ "$flag" = 1 ] && [ -n "$target" ] && [ "$target" -lt $((asked * 1024 - 4096)) ]; then
        check memory_stuck_balloon_flagged true "vm4 paused, target ${asked} MiB: memory/uncooperative = 1 after ${i} s, target set back to $((target / 1024)) MiB"
    else
        check memory_stuck_balloon_flagged false "vm4 paused, target ${asked} MiB: flag '${flag}', target ${target:-?} kB after ${i} s"
    fi
    # The flag stays for rex's probation; memory_phase checks that rex
    # withdraws it when it stops.
}

memory_phase() {
    local i n agents="" start3 start4 t0 d3 now held=0 avail total target flag
    local pressure_at="" grown_at="" min_free="" free peak3 alive="" kind=xl end4 watcher total0
    local donors=true reserve="" rex_free rex_min_free="" d1 d2
    # Without the patched xl (Debian 13's source unavailable), rex run.
    rex_available xl || kind=libxl
    grow_donors || donors=false
    free=$(libxl_free_mib) && reserve=$((free - 32 - MEM_HEADROOM))
    RESERVE_MEMORY=${reserve:+${reserve}M}
    write_policy "$SLA_MS"
    RESERVE_MEMORY=""
    note "memory: donors vm1 $(mem_current_mib vm1) MiB, vm2 $(mem_current_mib vm2) MiB; libxl free ${free:-?} MiB, reserve_memory ${reserve:-unset} MiB"
    i=0
    while [ -z "$(guest_value vm3 meminfo_total)" ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
    for n in 1 2 3 4; do [ -n "$(guest_value "vm$n" rex/agent)" ] && agents="$agents vm$n"; done
    emit "{\"event\":\"memory_agents\",\"with_agent\":\"${agents# }\",\"vm3_total_kb\":\"$(guest_value vm3 meminfo_total)\",\"vm3_free_kb\":\"$(guest_value vm3 meminfo_free)\"}"
    start3=$(mem_target_kb vm3)
    start4=$(mem_target_kb vm4)
    total0=$(guest_value vm3 meminfo_total)
    start_rex "$kind" /tmp/mem.out
    if ! rex_started /tmp/mem.out; then
        check memory_hog_grown false "rex did not start"
        return
    fi
    t0=$(uptime_s)
    d3=$(domid_of vm3)
    peak3=$start3
    # Every write of vm3's free figure, total and target and of the donors'
    # targets, stamped when xenstore delivered the watch event (dom0's
    # clock, all alike), its value read at once (watchlog.c: a shell loop
    # forking xenstore-read per event fell behind under TCG).
    d1=$(domid_of vm1)
    d2=$(domid_of vm2)
    watchlog "/local/domain/$d3/data/meminfo_free" "/local/domain/$d3/memory/target" \
        "/local/domain/$d3/data/meminfo_total" "/local/domain/$d1/memory/target" \
        "/local/domain/$d2/memory/target" > /tmp/mem-watch.log 2> /tmp/mem-watch.err &
    watcher=$!
    i=0
    while :; do
        now=$(awk -v a="$(uptime_s)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
        # At most 150 s, whatever happens (TCG: each step takes seconds).
        fle 150 "$now" && break
        avail=$(xenstore-read "/local/domain/$d3/data/meminfo_free" 2>/dev/null)
        total=$(xenstore-read "/local/domain/$d3/data/meminfo_total" 2>/dev/null)
        target=$(xenstore-read "/local/domain/$d3/memory/target" 2>/dev/null)
        free=$(host_free_mib)
        if [ -n "$free" ] && { [ -z "$min_free" ] || [ "$free" -lt "$min_free" ]; }; then min_free=$free; fi
        rex_free=$(metric /tmp/mem.out.prom xen_rex_host_free_memory_bytes)
        rex_free=${rex_free:+$((rex_free / 1048576))}
        if [ -n "$rex_free" ] && { [ -z "$rex_min_free" ] || [ "$rex_free" -lt "$rex_min_free" ]; }; then rex_min_free=$rex_free; fi
        [ -n "$target" ] && [ "$target" -gt "$peak3" ] && peak3=$target
        # rex's threshold (mem_pressure = 35 in write_policy).
        if [ -z "$pressure_at" ] && [ -n "$avail" ] && [ -n "$total" ] && [ $((avail * 100)) -lt $((total * 35)) ]; then
            pressure_at=$now
        fi
        if [ -z "$grown_at" ] && [ -n "$target" ] && [ "$target" -gt $((start3 + 1024)) ]; then
            grown_at=$now
        fi
        if [ "$held" -ge 120 ] && [ -n "$grown_at" ]; then
            break
        fi
        # Hold more only with 24 MiB to spare: the guest has no swap, and
        # its OOM killer fires near 14% of MemTotal. rex's threshold is
        # above that (35% of ~77 MiB), so pressure shows before the hog stops.
        if [ "$held" -lt 120 ] && [ -n "$avail" ] && [ "$avail" -gt 24576 ]; then
            timeout 20 wget -q -O /dev/null "http://$(guest_ip 3)/cgi-bin/hog" && held=$((held + 8))
        fi
        [ $((i % 5)) = 0 ] && note "memory +${now}s: vm3 target ${target:-?} kB, MemTotal ${total:-?}, MemAvailable ${avail:-?} kB, hog ${held} MiB, host free ${free:-?} MiB"
        sleep 1
        i=$((i + 1))
    done
    kill "$watcher" 2> /dev/null
    reaction_time "$total0" "$start3" "$d3"
    for n in 1 2 3 4; do
        if domid_of "vm$n" >/dev/null && http_ok "$n"; then alive="$alive vm$n"; fi
    done
    timeout 30 wget -q -O /dev/null "http://$(guest_ip 3)/cgi-bin/hog?free" || true
    dead_agent_check
    end4=$(mem_target_kb vm4)
    stuck_balloon_check
    flag=$(xenstore-read "/local/domain/$(domid_of vm4)/memory/uncooperative" 2>/dev/null)
    stop_rex TERM
    if [ "$flag" = 1 ] && ! xenstore-read "/local/domain/$(domid_of vm4)/memory/uncooperative" > /dev/null 2>&1 &&
        grep -q '"event":"flag_withdrawn".*"error":null' /tmp/mem.out; then
        check memory_flag_withdrawn true "vm4's memory/uncooperative, set while rex ran, is gone after SIGTERM (rex exit $REX_STATUS)"
    else
        check memory_flag_withdrawn false "flag before stop '$flag'; after: '$(xenstore-read "/local/domain/$(domid_of vm4)/memory/uncooperative" 2>&1)'; $(grep -c flag_withdrawn /tmp/mem.out) withdrawal lines"
    fi
    xenstore-rm "/local/domain/$(domid_of vm4)/memory/uncooperative" 2> /dev/null || true
    emit_rex_log memory /tmp/mem.out
    emit "{\"memory\":\"vm3\",\"start_kb\":$start3,\"peak_kb\":$peak3,\"held_mib\":$held,\"pressure_s\":\"$pressure_at\",\"grown_s\":\"$grown_at\",\"min_host_free_mib\":\"$min_free\",\"rex_status\":\"$REX_STATUS\"}"
    md ""
    md "Memory: vm3 target $((start3 / 1024)) -> $((peak3 / 1024)) MiB (maxmem 256) while its hog held $held MiB; pressure published at +${pressure_at:-never} s, target raised at +${grown_at:-never} s; host free never below ${min_free:-?} MiB."
    if [ "$peak3" -gt $((start3 + 1024)) ] && [ "$held" -ge 120 ]; then
        check memory_hog_grown true "vm3 grown $((start3 / 1024)) -> $((peak3 / 1024)) MiB past Xen's target+1 MiB maximum; its hog held $held MiB"
    else
        check memory_hog_grown false "vm3 target $((start3 / 1024)) -> $((peak3 / 1024)) MiB, hog held $held of 120 MiB"
    fi
    if [ "${alive# }" = "vm1 vm2 vm3 vm4" ]; then
        check memory_no_guest_lost true "all four guests alive and serving after the hog"
    else
        check memory_no_guest_lost false "alive and serving:${alive:- none}"
    fi
    if [ "$end4" = "$start4" ]; then
        check memory_agentless_untouched true "vm4 (no agent) kept its $((start4 / 1024)) MiB target"
    else
        check memory_agentless_untouched false "vm4 (no agent) moved from $start4 to $end4 kB"
    fi
    if [ -n "$min_free" ] && [ "$min_free" -ge 32 ]; then
        check memory_host_free true "host free memory never below the 32 MiB slush (lowest ${min_free} MiB)"
    else
        check memory_host_free false "host free memory fell to ${min_free:-?} MiB (slush 32)"
    fi
    if [ -n "$reserve" ] && [ -n "$rex_min_free" ] && [ "$rex_min_free" -ge $((32 + reserve)) ]; then
        check memory_reserve_kept true "free memory as rex counts it never below slush 32 + reserve_memory $reserve MiB (lowest ${rex_min_free} MiB)"
    else
        check memory_reserve_kept false "free memory as rex counts it fell to ${rex_min_free:-?} MiB (slush 32 + reserve_memory ${reserve:-?} MiB)"
    fi
    memory_order_checks "$donors" "$start3" "$d1" "$d2" "$d3"
    # The later phases start from the lab's usual 128 MiB guests.
    xl mem-set vm1 128m || true
    xl mem-set vm2 128m || true
}

# reaction_time TOTAL_KB START_KB D3: from /tmp/mem-watch.log, the time
# from the first free figure vm3 (domain D3) published below rex's
# threshold (35% of TOTAL_KB, write_policy's mem_pressure) to the first
# target above Xen's maximum at START_KB (+1 MiB) after it: how long rex
# took to act on pressure, with xenstore's own event times; and from that
# target to the first MemTotal vm3 published above TOTAL_KB (+1 MiB): its
# balloon taking the pages. Pass if rex acted within two intervals (1 s).
reaction_time() {
    local line ms
    line=$(awk -v total="$1" -v start="$2" -v vm3="/local/domain/$3/" '
        index($2, vm3) != 1 { next }
        $2 ~ /meminfo_free$/ && p == "" && $3 != "" && $3 * 100 < total * 35 { p = $1 }
        $2 ~ /memory\/target$/ && p != "" && g == "" && $3 > start + 1024 { g = $1 }
        $2 ~ /meminfo_total$/ && g != "" && b == "" && $3 > total + 1024 { b = $1 }
        END {
            if (p == "" || g == "") exit
            printf "\"pressure_at_s\":%s,\"target_at_s\":%s,\"reaction_ms\":%.0f", p, g, (g - p) * 1000
            if (b != "") printf ",\"balloon_at_s\":%s,\"balloon_ms\":%.0f", b, (b - g) * 1000
        }
    ' /tmp/mem-watch.log)
    if [ -z "$line" ]; then
        # For diagnosis: what the watcher logged of vm3.
        grep "/local/domain/$3/" /tmp/mem-watch.log | head -n 60 | sed 's/^/lab: watch /'
        sed 's/^/lab: watchlog: /' /tmp/mem-watch.err
        check memory_grown_within_two_intervals false "no pressure-to-target pair in the watch log ($(wc -l < /tmp/mem-watch.log) events)"
        return
    fi
    emit "{\"memory_reaction\":\"vm3\",$line}"
    ms=$(json_num "{$line}" reaction_ms)
    md "vm3's first free figure below 35% to its raised target, as xenstore delivered both: $ms ms (rex polls at a 1 s interval); raised target to a larger MemTotal published: $(json_num "{$line}" balloon_ms) ms."
    if [ "$ms" -le 2000 ]; then
        check memory_grown_within_two_intervals true "vm3's target raised $ms ms after its first free figure below 35% (two intervals: 2000 ms)"
    else
        check memory_grown_within_two_intervals false "vm3's target raised $ms ms after its first free figure below 35% (two intervals: 2000 ms)"
    fi
}

# memory_order_checks DONORS START3 D1 D2 D3: free before allocate. With
# only MEM_HEADROOM MiB above the slush and reserve, vm3 (domain D3) can
# pass START3 + MEM_HEADROOM MiB only on memory the donors (D1, D2, grown
# to 192 MiB when DONORS is true) gave back: the first lowered donor
# target must come before that vm3 target in the watch log.
memory_order_checks() {
    local line shrunk shrunk_kb past past_kb
    if [ "$1" != true ]; then
        check memory_donors_first false "vm1 and vm2 could not be grown to 192 MiB to act as donors"
        return
    fi
    # (+2 MiB: xl info rounds down, and pages being scrubbed count as free.)
    line=$(awk -v past_kb=$(($2 + (MEM_HEADROOM + 2) * 1024)) -v vm3="/local/domain/$5/memory/target" \
        -v d1="/local/domain/$3/memory/target" -v d2="/local/domain/$4/memory/target" '
        ($2 == d1 || $2 == d2) && s == "" && $3 != "" && $3 < (192 - 1) * 1024 { s = $1; sv = $3 }
        $2 == vm3 && b == "" && $3 > past_kb { b = $1; bv = $3 }
        END { printf "%s %s %s %s", (s == "" ? "-" : s), (sv == "" ? "-" : sv), (b == "" ? "-" : b), (bv == "" ? "-" : bv) }
    ' /tmp/mem-watch.log)
    read -r shrunk shrunk_kb past past_kb <<EOF2
$line
EOF2
    emit "{\"memory_order\":\"vm3\",\"donor_shrunk_at_s\":\"$shrunk\",\"donor_target_kb\":\"$shrunk_kb\",\"vm3_past_free_at_s\":\"$past\",\"vm3_target_kb\":\"$past_kb\"}"
    if [ "$shrunk" != - ] && [ "$past" != - ] && fle "$shrunk" "$past"; then
        check memory_donors_first true "a donor's target lowered to $((shrunk_kb / 1024)) MiB at ${shrunk} s, before vm3's passed the ${MEM_HEADROOM} MiB free at ${past} s ($((past_kb / 1024)) MiB)"
    else
        check memory_donors_first false "first donor shrink at ${shrunk} s, vm3 past the ${MEM_HEADROOM} MiB free at ${past} s"
    fi
}

# Watches against polling (issue 14). rex (xl rex, else rex run) manages
# the guests once watching xenstore and once with --poll. Each time dom0
# writes a pressure figure three times where vm4 (no agent) would publish
# one; the time from each write to vm4's raised target, both stamped by
# watchlog in dom0, is how long rex took to act. Then, the agents
# stopped, rex's xenstore reads over 5 quiet seconds (its metrics).
reaction_phase() {
    local kind=xl mode d4 out log watcher i n r0 r1 t0 t1 e1 line quiet watch_ms="" poll_ms=""
    rex_available xl || kind=libxl
    write_policy "$SLA_MS"
    d4=$(domid_of vm4)
    for mode in watch poll; do
        out=/tmp/react-$mode.out
        log=/tmp/react-$mode.log
        xl mem-set vm4 128m
        xenstore-rm "/local/domain/$d4/data/meminfo_free" "/local/domain/$d4/data/meminfo_total" 2> /dev/null
        sleep 2
        if [ "$mode" = poll ]; then start_rex "$kind" "$out" --poll; else start_rex "$kind" "$out"; fi
        if ! rex_started "$out"; then
            check "reaction_$mode" false "$(kind_label "$kind") did not start"
            continue
        fi
        watchlog "/local/domain/$d4/data/meminfo_free" "/local/domain/$d4/memory/target" > "$log" 2> "$log.err" &
        watcher=$!
        for i in 1 2 3; do
            # Not in step with rex's ticks: 1.3, 1.6, 1.9 s apart.
            sleep "1.$((i * 3))"
            xenstore-write "/local/domain/$d4/data/meminfo_total" 79000 "/local/domain/$d4/data/meminfo_free" $((1000 + i))
            wait_target_above vm4 $((129 * 1024)) 6
            xenstore-write "/local/domain/$d4/data/meminfo_free" 70000
            xl mem-set vm4 128m
            sleep 2
        done
        for n in 1 2 3; do timeout 20 wget -q -O /dev/null "http://$(guest_ip "$n")/cgi-bin/agent?stop" || true; done
        sleep 2
        r0=$(metric "$out.prom" xen_rex_xenstore_reads_total)
        t0=$(metric "$out.prom" xen_rex_ticks_total)
        sleep 5
        r1=$(metric "$out.prom" xen_rex_xenstore_reads_total)
        t1=$(metric "$out.prom" xen_rex_ticks_total)
        e1=$(metric "$out.prom" xen_rex_early_ticks_total)
        for n in 1 2 3; do timeout 20 wget -q -O /dev/null "http://$(guest_ip "$n")/cgi-bin/agent?start" || true; done
        kill "$watcher" 2> /dev/null
        stop_rex TERM
        emit_rex_log "reaction_$mode" "$out"
        line=$(reaction_samples "$log")
        [ -n "$line" ] || sed 's/^/lab: watchlog: /' "$log.err"
        quiet=$(awk -v r0="${r0:-0}" -v r1="${r1:-0}" -v t0="${t0:-0}" -v t1="${t1:-0}" \
            'BEGIN { if (t1 > t0) printf "%.2f", (r1 - r0) / (t1 - t0); else print "?" }')
        emit "{\"reaction\":\"$mode\",\"samples_ms\":\"$line\",\"quiet_reads_per_tick\":\"$quiet\",\"quiet_ticks\":$((${t1:-0} - ${t0:-0})),\"early_ticks\":\"$e1\",\"rex_status\":\"$REX_STATUS\"}"
        md "Reaction ($mode, $(kind_label "$kind")): pressure written to vm4's target raised in ${line:-?} ms; with the agents stopped, ${quiet} xenstore reads a tick over $((${t1:-0} - ${t0:-0})) ticks; early ticks ${e1:-?}."
        if [ "$mode" = watch ]; then watch_ms=$line; else poll_ms=$line; fi
        if [ "$mode" = watch ]; then
            if [ "$quiet" = 0.00 ]; then
                check keys_quiet_no_reads true "watching: no xenstore read over $((t1 - t0)) quiet ticks"
            else
                check keys_quiet_no_reads false "watching: ${quiet} xenstore reads a tick with nothing changing"
            fi
        fi
    done
    xl mem-set vm4 128m || true
    xenstore-rm "/local/domain/$d4/data/meminfo_free" "/local/domain/$d4/data/meminfo_total" 2> /dev/null || true
    reaction_verdict "$watch_ms" "$poll_ms"
}

# wait_target_above VM KB SECONDS: until VM's target exceeds KB.
wait_target_above() {
    local i=0
    while [ $i -lt $(($3 * 5)) ]; do
        [ "$(mem_target_kb "$1")" -gt "$2" ] 2> /dev/null && return 0
        sleep 0.2
        i=$((i + 1))
    done
    return 1
}

# reaction_samples LOG: "a b c", each the ms from a pressure figure written
# (free below 35% of 79000 kB) to the next raised target.
reaction_samples() {
    awk '
        $2 ~ /meminfo_free$/ && $3 != "" && $3 * 100 < 79000 * 35 { p = $1; next }
        $2 ~ /memory\/target$/ && p != "" && $3 > 129 * 1024 { printf "%s%.0f", sep, ($1 - p) * 1000; sep = " "; p = "" }
    ' "$1"
}

# reaction_verdict WATCH_MS POLL_MS: watching must act on every pressure
# figure, on average sooner than polling does.
reaction_verdict() {
    local mw mp
    mw=$(echo "$1" | awk '{ for (i = 1; i <= NF; i++) s += $i; if (NF == 3) printf "%.0f", s / NF }')
    mp=$(echo "$2" | awk '{ for (i = 1; i <= NF; i++) s += $i; if (NF) printf "%.0f", s / NF }')
    emit "{\"reaction_mean_ms\":{\"watch\":\"$mw\",\"poll\":\"$mp\"}}"
    if [ -n "$mw" ] && [ -n "$mp" ] && [ "$mw" -lt "$mp" ]; then
        check reaction_watch_before_tick true "pressure to raised target: watching ${mw} ms mean ($1), polling ${mp} ms ($2), 1 s interval"
    else
        check reaction_watch_before_tick false "pressure to raised target: watching '${mw}' ms ($1), polling '${mp}' ms ($2)"
    fi
}
