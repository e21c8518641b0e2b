# Helpers for lab.sh (busybox ash in dom0). Every result leaves on the
# serial console as one line: "REXLAB {json}" for machines, "REXLAB-MD text"
# for the summary table run.sh prints.

emit() { echo "REXLAB $*"; }
md() { echo "REXLAB-MD $*"; }
note() { echo "lab: $*"; }

# later TEXT: a summary line kept for the end (the tables stay whole).
later() { echo "$*" >> /tmp/later.md; }

# check NAME true|false|null DETAIL: one verdict (null = skipped).
check() {
    emit "{\"check\":\"$1\",\"pass\":$2,\"detail\":\"$3\"}"
    case $2 in
        true) later "- PASS $1: $3" ;;
        false) later "- FAIL $1: $3" ;;
        *) later "- SKIP $1: $3" ;;
    esac
}

# flush_later: the kept lines, now.
flush_later() {
    [ -f /tmp/later.md ] || return 0
    md ""
    while read -r line; do md "$line"; done < /tmp/later.md
    rm -f /tmp/later.md
}

# json_num JSON FIELD: a numeric field of a flat JSON object.
json_num() {
    echo "$1" | sed -n "s/.*\"$2\":\(-\{0,1\}[0-9.]*\).*/\1/p" | head -n1
}

# Floating-point comparison: fle A B is true when A <= B.
fle() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }

guest_ip() { echo "10.99.0.1$1"; }

# CPU seconds used so far by domain NAME (xl list's Time column).
cpu_seconds() { xl list "$1" 2>/dev/null | awk 'NR == 2 { print $6 }'; }

domid_of() { xl domid "$1" 2>/dev/null; }

uptime_s() { cut -d' ' -f1 /proc/uptime; }

# metric FILE NAME: the value of an unlabelled sample in a metrics file.
metric() { sed -n "s/^$2 //p" "$1" 2>/dev/null | head -n1; }

write_guest_cfg() {
    local n=$1
    cat > "/tmp/vm$n.cfg" <<EOF
name = "vm$n"
type = "pv"
kernel = "/lab/vmlinux"
ramdisk = "/lab/domU.cpio.gz"
extra = "console=hvc0 quiet rexlab.ip=$(guest_ip "$n") rexlab.agent=$([ "$n" = 4 ] && echo 0 || echo 1)"
memory = 128
maxmem = 256
vcpus = 1
cpus = "1"
on_crash = "destroy"
vif = [ "bridge=xenbr0,mac=00:16:3e:00:00:1$n" ]
EOF
}

# Serves HTTP? One request with short timeouts.
http_ok() {
    loadgen -d 0.5 -z 0 -c 2000 -T 5000 "probe=$(guest_ip "$1"):80:1" 2>/dev/null |
        grep -q '"n":[1-9]'
}

# start_guest N: xl create, uncapped (a Debian kernel boots for minutes at
# a 20% cap under TCG), retried: xl create is known to fail now and then
# under TCG.
start_guest() {
    local n=$1 attempt
    write_guest_cfg "$n"
    for attempt in 1 2 3; do
        if timeout 120 xl create "/tmp/vm$n.cfg" > "/tmp/vm$n.create.log" 2>&1; then
            emit "{\"event\":\"guest_created\",\"vm\":\"vm$n\",\"attempt\":$attempt,\"uptime\":\"$(cut -d' ' -f1 /proc/uptime)\"}"
            return 0
        fi
        note "vm$n: xl create failed (attempt $attempt):"
        tail -n 5 "/tmp/vm$n.create.log"
        timeout 60 xl destroy "vm$n" > /dev/null 2>&1
        sleep 2
    done
    return 1
}

# guest_ready N: waits (90 s at most) until the guest's httpd answers.
guest_ready() {
    local i=0
    while [ $i -lt 90 ]; do
        if http_ok "$1"; then
            emit "{\"event\":\"guest_up\",\"vm\":\"vm$1\",\"uptime\":\"$(cut -d' ' -f1 /proc/uptime)\"}"
            return 0
        fi
        sleep 1
        i=$((i + 1))
    done
    note "vm$1: its httpd never answered"
    return 1
}

# bring_up_guests N...: creates the guests back to back (their boots
# overlap the next xl create), then waits for each; a guest that never
# answers is destroyed and created once more.
bring_up_guests() {
    local n
    for n in "$@"; do
        start_guest "$n" || return 1
    done
    for n in "$@"; do
        guest_ready "$n" && continue
        timeout 60 xl destroy "vm$n" > /dev/null 2>&1
        start_guest "$n" && guest_ready "$n" || return 1
    done
}

# The guests' scheduler as xl names its command: sched-credit2 (Xen's
# default) or sched-credit (run.sh --sched credit). Both print Name, ID,
# Weight, Cap; credit's listing adds a line per cpupool.
XL_SCHED=sched-$(xl info 2>/dev/null | sed -n 's/^xen_scheduler *: //p')

set_cap() { timeout 60 xl "$XL_SCHED" -d "$1" -c "$2"; }

cap_of() { xl "$XL_SCHED" -d "$1" 2>/dev/null | awk -v d="$1" '$1 == d { print $4 }'; }
set_weight() { timeout 60 xl "$XL_SCHED" -d "$1" -w "$2"; }
weight_of() { xl "$XL_SCHED" -d "$1" 2>/dev/null | awk -v d="$1" '$1 == d { print $3 }'; }

# run_load PHASE DURATION_S CLIENTS1 CLIENTS2 CLIENTS3 CLIENTS4 [PUBLISH]:
# closed-loop load on every guest; prints one REXLAB line per guest with the
# CPU share it used. With PUBLISH=publish, response times are written to
# each guest's data/rex/response_ms for rex.
run_load() {
    local phase=$1 dur=$2 publish=${7:-} targets="" n c before after line cpu xopt=""
    for n in 1 2 3 4; do
        eval "c=\$$((n + 2))"
        targets="$targets vm$n=$(guest_ip "$n"):80:$c:$(domid_of "vm$n")"
        eval "before_$n=$(cpu_seconds "vm$n")"
    done
    [ "$publish" = publish ] && xopt="-X 1000"
    # shellcheck disable=SC2086
    timeout $((dur + 90)) loadgen -d "$dur" -w "$WARMUP" -z "$THINK_MS" -c 3000 -T 30000 \
        $xopt -o "/tmp/$phase.csv" $targets > "/tmp/$phase.json"
    for n in 1 2 3 4; do
        after=$(cpu_seconds "vm$n")
        eval "before=\$before_$n"
        cpu=$(awk -v a="$after" -v b="$before" -v d="$dur" 'BEGIN { printf "%.1f", (a - b) * 100 / d }')
        line=$(grep "\"name\":\"vm$n\"" "/tmp/$phase.json")
        emit "{\"phase\":\"$phase\",\"cpu_pct\":$cpu,${line#\{}"
        md "| $phase | vm$n | $(json_num "$line" clients) | $(json_num "$line" mean_ms) | $(json_num "$line" median_ms) | $(json_num "$line" sd_ms) | $(json_num "$line" ci95_lo_ms)–$(json_num "$line" ci95_hi_ms) | $(json_num "$line" n) | $(json_num "$line" errors) | $cpu |"
    done
}

# write_policy SLA_MS [LEVEL1_CAP] [INTERVAL_MS] [COOLDOWN] [OTHERS_MAX] [VM5]:
# the rex policy at /etc/rex/policy.cfg. pCPU 1 is the guests' (dom0 holds
# pCPU 0, so dom0_cpu=100 of the pool's 200); 4 x 20% is handed out, 20% is
# idle for reallocation. vm2 has the SLA and is served first from the idle
# pool; the others may grow to OTHERS_MAX (40). With VM5=vm5 the policy
# also manages vm5 (rex checks that every level fits the pool, so it is
# listed only when the levels allow it).
write_policy() {
    local sla=$1 cap1=${2:-20} interval=${3:-1000} cooldown=${4:-3} omax=${5:-40} mem vm5="" reserve=""
    [ -n "${RESERVE_MEMORY:-}" ] && reserve="reserve_memory = \"$RESERVE_MEMORY\""
    mem="memory=128M,mem_min=128M,mem_max=256M"
    [ "${6:-}" = vm5 ] && vm5="\"name=vm5,cap=20,cap_min=20,cap_max=$omax,$mem,priority=1\","
    cat > /etc/rex/policy.cfg <<EOF2
# Written by the xen lab (tests/xen-lab/dom0/lib.sh).
interval = $interval
dom0_cpu = 100
reserve_cpu = 0
saturation = 80
cooldown = $cooldown
# A 128 MiB Debian PV guest sees ~77 MiB; its OOM killer fires near 14%.
mem_pressure = 35
balloon_timeout = 10000
$reserve
domains = [
    "name=vm1,cap=$cap1,cap_min=20,cap_max=$omax,$mem,priority=1",
    "name=vm2,sla_ms=$sla,cap=20,cap_min=20,cap_max=80,$mem,priority=2,weight=${VM2_WEIGHT:-256}",
    "name=vm3,cap=20,cap_min=20,cap_max=$omax,$mem,priority=1",
    "name=vm4,cap=20,cap_min=20,cap_max=$omax,$mem,priority=1",
    $vm5
]
EOF2
}

# Floors and ceilings of write_policy (with OTHERS_MAX 40), for the checks.
floor_of() { echo 20; }
ceiling_of() { if [ "$1" = vm2 ]; then echo 80; else echo 40; fi; }

# start_rex KIND OUT [OPTION...]: starts rex in the background, sets
# REX_PID. KIND: xl (xl rex, libxl in xl's process), libxl or exec (rex
# run); the options are added to rex's own.
start_rex() {
    local kind=$1 out=$2
    shift 2
    case $kind in
        xl) xl rex -c /etc/rex/policy.cfg -- --json --metrics "$out.prom" "$@" > "$out" 2> "$out.err" & ;;
        libxl) rex run -c /etc/rex/policy.cfg --actuator libxl --json --metrics "$out.prom" "$@" > "$out" 2> "$out.err" & ;;
        exec) rex run -c /etc/rex/policy.cfg --actuator exec --json --metrics "$out.prom" "$@" > "$out" 2> "$out.err" & ;;
    esac
    REX_PID=$!
}

# running PID: alive and not a zombie (kill -0 succeeds on a zombie, which
# the shell reaps only in `wait`).
running() {
    [ -e "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat")" != Z ]
}

# stop_rex SIGNAL: signals REX_PID and waits (at most 30 s) for it to exit;
# sets REX_STATUS to its exit status, or "hung". Not for $(...): `wait`
# works only in the shell that started rex.
stop_rex() {
    local i=0 t
    kill -"$1" "$REX_PID" 2>/dev/null
    while running "$REX_PID" && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
    if running "$REX_PID"; then
        # Where it is stuck, for the report.
        for t in /proc/"$REX_PID"/task/*; do
            note "rex thread ${t##*/}: $(cut -d' ' -f3 "$t/stat") wchan=$(cat "$t/wchan" 2>/dev/null) $(cat "$t/comm")"
        done
        kill -9 "$REX_PID" 2>/dev/null
        wait "$REX_PID" 2>/dev/null
        REX_STATUS=hung
        return
    fi
    wait "$REX_PID" 2>/dev/null
    REX_STATUS=$?
}

rex_available() {
    case $1 in
        xl) [ "$(cat /lab/xl-kind)" = patched ] && [ -f /usr/lib/librex.so ] ;;
        *) command -v rex > /dev/null ;;
    esac
}

# Applied cap reallocations of a rex --json log, one JSON line each.
reallocations() { grep '"event":"reallocation"' "$1" | grep '"kind":"cap"' | grep '"error":null'; }

# stats: numbers on stdin -> n, mean, median, sd and 95% CI as JSON fields.
# Debian's busybox awk has no math library: square roots by Newton.
stats() {
    sort -n | awk '
        function root(x,  r, i) {
            if (x <= 0) return 0
            r = x > 1 ? x : 1
            for (i = 0; i < 60; i++) r = (r + x / r) / 2
            return r
        }
        { v[NR] = $1; s += $1 }
        END {
            n = NR; if (n == 0) { print "\"n\":0"; exit }
            m = s / n; for (i = 1; i <= n; i++) ss += (v[i] - m) * (v[i] - m)
            sd = n > 1 ? root(ss / (n - 1)) : 0
            med = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            split("12.706 4.303 3.182 2.776 2.571 2.447 2.365 2.306 2.262 2.228 2.201 2.179 2.160 2.145 2.131 2.120 2.110 2.101 2.093 2.086 2.080 2.074 2.069 2.064 2.060 2.056 2.052 2.048 2.045 2.042", t, " ")
            df = n - 1; q = df < 1 ? 0 : (df <= 30 ? t[df] : 1.960 + 2.4 / df)
            h = n > 1 ? q * sd / root(n) : 0
            printf "\"n\":%d,\"mean_ms\":%.3f,\"median_ms\":%.3f,\"sd_ms\":%.3f,\"ci95_lo_ms\":%.3f,\"ci95_hi_ms\":%.3f", n, m, med, sd, m - h, m + h
        }'
}

# caps_within_bounds: every managed guest's cap is in [floor, ceiling];
# prints the offenders.
caps_within_bounds() {
    local ok=0 n cap
    for n in 1 2 3 4 5; do
        domid_of "vm$n" > /dev/null || continue
        cap=$(cap_of "vm$n")
        if [ -z "$cap" ] || [ "$cap" -lt "$(floor_of "vm$n")" ] || [ "$cap" -gt "$(ceiling_of "vm$n")" ]; then
            echo "vm$n cap=$cap"
            ok=1
        fi
    done
    return $ok
}

# watch_caps FILE: samples every guest's cap each second until killed.
watch_caps() {
    while :; do
        xl "$XL_SCHED" 2>/dev/null | awk '$1 ~ /^vm/ { print $1, $4 }' >> "$1"
        sleep 1
    done
}
