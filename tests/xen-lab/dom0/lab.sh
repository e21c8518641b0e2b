# The lab's scenario, run by dom0's /init: lab.sh short|full.
# shellcheck shell=sh
. /lab/lib.sh
. /lab/experiments.sh
. /lab/memory.sh
. /lab/faults.sh

MODE=$1
BASE_CAP=20
BASE_CLIENTS=3
LOADED_CLIENTS=5
THINK_MS=100
if [ "$MODE" = full ]; then
    PHASE_S=60 WARMUP=10 EXP2_N=28
else
    PHASE_S=40 WARMUP=5 EXP2_N=12
fi
emit "{\"event\":\"lab_start\",\"mode\":\"$MODE\",\"xl\":\"$(cat /lab/xl-kind)\",\"xen\":\"$(xl info | sed -n 's/^xen_version *: //p')\",\"scheduler\":\"$(xl info | sed -n 's/^xen_scheduler *: //p')\"}"

xl vcpu-pin 0 0 0
bring_up_guests 1 2 3 4 || { check guests_up false "the guests could not be brought up"; exit 1; }
for n in 1 2 3 4; do set_cap "vm$n" $BASE_CAP; done
xl list
xl "$XL_SCHED"
check guests_up true "4 PV guests up, serving HTTP on xenbr0"

# run.sh --only A:B (developing a phase): those phase functions and nothing
# else, with a fixed SLA in place of the decomposition's.
ONLY=$(sed -n 's/.*rexlab\.only=\([a-z_:]*\).*/\1/p' /proc/cmdline)
if [ -n "$ONLY" ]; then
    SLA_MS=750
    for phase in $(echo "$ONLY" | tr : ' '); do
        "$phase"
        flush_later
    done
    emit "{\"event\":\"lab_end\"}"
    exit 0
fi

md ""
md "| phase | vm | clients | mean ms | median ms | sd ms | 95% CI ms | n | errors | CPU % |"
md "|---|---|---|---|---|---|---|---|---|---|"

# Experiment 1, step 1: the SLA decomposition at the base allocation.
run_load decomp "$PHASE_S" $BASE_CLIENTS $BASE_CLIENTS $BASE_CLIENTS $BASE_CLIENTS
# The four guests are identical and equally loaded here, so the SLA is the
# mean over all their requests: the same quantity as vm2's own mean, with
# four times the samples.
SLA_MS=$(awk -F, '$4 == 1 { s += $3; n++ } END { if (n) printf "%.2f", s / n }' /tmp/decomp.csv)
VM2_BASE_MS=$(json_num "$(grep '"name":"vm2"' /tmp/decomp.json)" mean_ms)
emit "{\"event\":\"sla\",\"vm\":\"vm2\",\"sla_ms\":$SLA_MS,\"vm2_base_mean_ms\":$VM2_BASE_MS}"


# Step 2: VM2 loaded, static allocation.
run_load static "$PHASE_S" $BASE_CLIENTS $LOADED_CLIENTS $BASE_CLIENTS $BASE_CLIENTS
STATIC_MS=$(json_num "$(grep '"name":"vm2"' /tmp/static.json)" mean_ms)
if fle "$STATIC_MS" "$SLA_MS"; then
    check static_misses_sla false "vm2 static mean $STATIC_MS ms is within the SLA $SLA_MS ms: the load does not stress it"
else
    check static_misses_sla true "vm2 static mean $STATIC_MS ms > SLA $SLA_MS ms"
fi

# Step 3: VM2 loaded, under rex: in xl's process (ReX's way), then with a
# fork/exec of xl per change (SRX's way).
for kind in xl exec; do
    exp1_rex "$kind"
done

md ""
md "SLA (mean response time of the four guests at the base load and allocation): $SLA_MS ms (vm2 alone: $VM2_BASE_MS ms)."

flush_later

# Experiment 2: time of one reallocation, both ways, in this same boot.
md ""
md "| reallocation via | n | mean ms | median ms | sd ms | 95% CI ms |"
md "|---|---|---|---|---|---|"
exp2 xl
exp2 exec
if [ -n "$EXP2_MEAN_xl" ] && [ -n "$EXP2_MEAN_exec" ]; then
    ratio=$(awk -v a="$EXP2_MEAN_exec" -v b="$EXP2_MEAN_xl" 'BEGIN { printf "%.1f", a / b }')
    emit "{\"exp2_ratio_exec_over_libxl\":$ratio}"
    md ""
    md "fork/exec of xl takes ${ratio}x the time of the in-process libxl call."
    if fle "$EXP2_MEAN_xl" "$EXP2_MEAN_exec"; then
        check exp2_in_process_faster true "libxl in xl ${EXP2_MEAN_xl} ms vs exec ${EXP2_MEAN_exec} ms (x$ratio)"
    else
        check exp2_in_process_faster false "libxl in xl ${EXP2_MEAN_xl} ms vs exec ${EXP2_MEAN_exec} ms"
    fi
fi

flush_later
floor_phase
flush_later
if [ "$XL_SCHED" = sched-credit ]; then
    # Credit1 boot (run.sh --sched credit): the experiments and the floor
    # only; the rest does not depend on the scheduler and runs on credit2.
    emit "{\"event\":\"lab_end\"}"
    exit 0
fi
control_check
flush_later
memory_phase
flush_later
reaction_phase
flush_later
lifecycle
flush_later
destroyed_before_apply
flush_later
cpupool_check
flush_later
# Only now has every check run: run.sh requires this line.
emit "{\"event\":\"lab_end\"}"

# The end of each guest's console (xenconsoled --log=guest), for diagnosis.
for n in 1 2; do
    note "vm$n console (tail):"
    tail -n 8 "/var/log/xen/console/guest-vm$n.log" 2> /dev/null
done
