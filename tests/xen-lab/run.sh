#!/usr/bin/env bash
# The Xen lab: boot Debian 12's Xen 4.17 (or Debian 13's 4.20) under QEMU
# (TCG), run rex's experiments inside it and report the figures. Run as root.
#
#   tests/xen-lab/run.sh [--short|--full] [--xen 4.17|4.20] [--sched credit]
#                        [--timeout SECONDS] [--allow-skip] [--only PHASE[:PHASE...]]
#
# --short (default, for CI): 40 s load phases, 12 timed reallocations each
# way. --full: 60 s phases, 28 timed reallocations each way. --xen 4.20
# boots Debian 13's hypervisor and kernel with a dom0 made from Debian 13's
# packages, and rex built against 4.20 (both in tests/debian-chroot trixie).
# --sched credit boots Xen with sched=credit (credit1, the paper's) instead
# of 4.17's default credit2 and runs the experiments and the in-process
# floor only (files named MODE-credit).
# Logs and results go to target/xen-lab/ (4.20: target/xen-lab/4.20/). Exit
# status 0 only when every check passed; a skipped check counts as failed
# unless --allow-skip, which lists each as `skipped: lab check NAME: why`.
# --only (for developing a phase, not for CI): after the guests are up, runs
# only the named phase functions of dom0/lab.sh (e.g. lifecycle:cpupool_check)
# with a fixed 750 ms SLA instead of the decomposition's.
set -euo pipefail

# Everything is in main(), which bash parses whole before running it, so
# editing this file during a run cannot derail the run.
main() {
    LAB=$(cd "$(dirname "$0")" && pwd)
    ROOT=$(cd "$LAB/../.." && pwd)
    MODE=short
    TIMEOUT=
    XEN_RELEASE=4.17
    ALLOW_SKIP=
    SCHED=
    ONLY=
    while [ $# -gt 0 ]; do
        case $1 in
            --short) MODE=short ;;
            --full) MODE=full ;;
            --xen) XEN_RELEASE=$2; shift ;;
            --allow-skip) ALLOW_SKIP=1 ;;
            --sched) SCHED=$2; shift ;;
            --timeout) TIMEOUT=$2; shift ;;
            --only) ONLY=$2; shift ;;
            -h|--help) sed -n '2,18s/^# \{0,1\}//p' "$0"; exit 0 ;;
            *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
        esac
        shift
    done
    case $XEN_RELEASE in
        4.17) OUT=$ROOT/target/xen-lab REX_BUILD=$ROOT/target/release ;;
        4.20) OUT=$ROOT/target/xen-lab/4.20 REX_BUILD=$ROOT/target/trixie/release ;;
        *) echo "run.sh: no lab for Xen $XEN_RELEASE (4.17, 4.20)" >&2; exit 2 ;;
    esac
    case $SCHED in
        ''|credit2) SCHED= LABEL=$MODE ;;
        credit) LABEL=$MODE-credit ;;
        *) echo "run.sh: no lab for scheduler '$SCHED' (credit, credit2)" >&2; exit 2 ;;
    esac
    if [ -z "$TIMEOUT" ]; then
        if [ "$MODE" = full ]; then TIMEOUT=5400; else TIMEOUT=1080; fi
    fi

    log() { echo "[xen-lab $(date -u +%H:%M:%S)] $*" >&2; }

    # report_runs: each rex log the lab sent (REXLAB-RUN PHASE JSON) is read
    # back by `rex report` (the host's build) into a summary and an SVG
    # beside the results, one check each: the log parses, has usage ticks,
    # and shows vm2's reallocations.
    report_runs() {
        local reporter=$ROOT/target/release/rex phase run ticks vm2 verdict detail
        for phase in $(tr -d '\r' < "$console" | sed -n 's/^.*REXLAB-RUN \([a-z0-9_]*\) {.*$/\1/p' | sort -u); do
            run=$OUT/run-$LABEL-$phase
            tr -d '\r' < "$console" | sed -n "s/^.*REXLAB-RUN $phase \\({.*}\\)\$/\\1/p" > "$run.jsonl"
            if [ ! -x "$reporter" ]; then
                verdict=null detail="no host build of rex ($reporter) to run rex report with"
            elif "$reporter" report "$run.jsonl" --svg "$run.svg" > "$run.txt" 2>&1; then
                ticks=$(sed -n '1s/.* \([0-9]*\) with usage.*/\1/p' "$run.txt")
                vm2=$(awk '$1 == "vm2" && NF == 5 { print $3 " s missing its SLA, " $4 " reallocations" }' "$run.txt")
                if [ "${ticks:-0}" -gt 0 ] && [ -n "$vm2" ] && [ "$(awk '$1 == "vm2" && NF == 5 { print $4 }' "$run.txt")" -gt 0 ] && [ -s "$run.svg" ]; then
                    verdict=true
                else
                    verdict=false
                fi
                detail="rex report: ${ticks:-no} ticks with usage, vm2 ${vm2:-absent}; ${run#"$ROOT"/}.svg"
            else
                verdict=false detail="rex report refused the log: $(head -n1 "$run.txt" | tr -d '"\\' | cut -c1-160)"
            fi
            echo "{\"check\":\"report_$phase\",\"pass\":$verdict,\"detail\":\"$detail\"}" >> "$results"
            log "report_$phase: $verdict: $detail"
        done
    }

    [ "$(id -u)" -eq 0 ] || { echo "run.sh: must run as root (apt-get, QEMU images)" >&2; exit 2; }
    mkdir -p "$OUT"
    # shellcheck source=images.sh
    . "$LAB/images.sh"

    QEMU_PID=
    cleanup() {
        # QEMU_PID is timeout(1), QEMU its only child: stop both.
        if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
            pkill -TERM -P "$QEMU_PID" 2>/dev/null || true
            kill "$QEMU_PID" 2>/dev/null || true
            sleep 1
            pkill -KILL -P "$QEMU_PID" 2>/dev/null || true
            kill -9 "$QEMU_PID" 2>/dev/null || true
        fi
    }
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    # Debian 13's images are made in its chroot: apt, ldd and the C library
    # copied into dom0 must be Debian 13's. The chroot sees the repository at
    # /rex.
    in_release() {
        if [ "$XEN_RELEASE" = 4.17 ]; then
            "$@"
        else
            REX_CHROOT_ENV="LAB=/rex/tests/xen-lab OUT=/rex/${OUT#"$ROOT"/} ROOT=/rex XEN_RELEASE=$XEN_RELEASE REX_BUILD=/rex/${REX_BUILD#"$ROOT"/}" \
                "$ROOT/tests/debian-chroot" trixie -- bash -c \
                'log() { echo "[xen-lab $(date -u +%H:%M:%S)] $*" >&2; }; . "$LAB/images.sh"; "$@"' bash "$@"
        fi
    }

    started=$(date +%s)
    ensure_host_packages
    in_release fetch_packages
    log "building the load generator, the hostile control client and the watch logger"
    gcc -O2 -Wall -static -pthread -o "$OUT/loadgen" "$LAB/loadgen.c" -lm
    gcc -O2 -Wall -static -o "$OUT/hostile" "$LAB/hostile.c"
    # Linked against the image's own libxenstore.so.4 (a stable ABI): static,
    # libxenstore cannot size its watch thread's stack and xs_watch fails.
    gcc -O2 -Wall -o "$OUT/watchlog" "$LAB/watchlog.c" -lxenstore
    # rex and the patched xl are (re)built every run, so the lab never boots
    # stale binaries (both builds are incremental). If either fails the lab
    # still boots, but the rex checks it cannot run count as failures.
    log "building rex for Xen $XEN_RELEASE (cargo build --release)"
    if [ "$XEN_RELEASE" = 4.17 ]; then
        (cd "$ROOT" && timeout 1200 cargo build --release -q --lib --bins --example sched_floor) ||
            log "rex did not build"
    else
        timeout 1200 "$ROOT/tests/debian-chroot" trixie -- cargo build --release -q --lib --bins \
            --example sched_floor || log "rex did not build"
    fi
    # The guest agent, static: the guests have no C library.
    log "building the guest agent (rex-agent, static)"
    rm -f "$OUT/rex-agent"
    (cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static" timeout 600 cargo build --release -q \
        -p rex-agent --target x86_64-unknown-linux-gnu --target-dir target/agent) &&
        cp "$ROOT/target/agent/x86_64-unknown-linux-gnu/release/rex-agent" "$OUT/rex-agent" ||
        log "rex-agent did not build"
    log "building the patched xl (xl-patch/build-xl.sh $XEN_RELEASE)"
    rm -f "$ROOT/target/xl-rex/$XEN_RELEASE/xl"
    timeout 900 "$ROOT/xl-patch/build-xl.sh" "$XEN_RELEASE" > "$OUT/build-xl.log" 2>&1 ||
        log "the patched xl did not build (see $OUT/build-xl.log); using stock xl"
    log "building images"
    in_release build_domu_image
    in_release build_dom0_image
    log "images: dom0 $(du -h "$OUT/dom0.cpio.gz" | cut -f1), xl $(cat "$OUT/dom0-root/lab/xl-kind"), rex $([ -x "$OUT/dom0-root/usr/local/bin/rex" ] && echo yes || echo no), librex $([ -f "$OUT/dom0-root/usr/lib/librex.so" ] && echo yes || echo no)"

    gunzip -c "$OUT/cache/root/boot/xen-$XEN_RELEASE-amd64.gz" > "$OUT/xen.elf"
    kver=$(kernel_version)
    console=$OUT/console-$LABEL.log
    results=$OUT/results-$LABEL.jsonl
    log "booting Xen under QEMU (timeout ${TIMEOUT}s); console: $console"
    # -smap: the PV dom0 faults at once with SMAP. -avx,-avx2,-xsave: with
    # XSAVE, processes in guests sharing a pCPU saw corrupted registers under
    # TCG (malloc() aborts, garbage in shell arithmetic): Xen then saves and
    # restores vCPU state with FXSAVE.
    local cpu=${REX_LAB_CPU:-max,-smap,-avx,-avx2,-xsave}
    timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 \
        -accel tcg -cpu "$cpu" -m 2G -smp 2 \
        -nographic -no-reboot -nodefaults -serial stdio \
        -kernel "$OUT/xen.elf" \
        -append "console=com1 com1=115200,8n1 dom0_mem=512M,max:512M dom0_max_vcpus=1 noreboot${SCHED:+ sched=$SCHED}" \
        -initrd "$OUT/cache/root/boot/vmlinuz-$kver console=hvc0 earlyprintk=xen rexlab.mode=$MODE${ONLY:+ rexlab.only=$ONLY},$OUT/dom0.cpio.gz" \
        </dev/null >"$console" 2>&1 &
    QEMU_PID=$!
    set +e
    wait "$QEMU_PID"
    qemu_status=$?
    set -e
    QEMU_PID=
    elapsed=$(($(date +%s) - started))

    tr -d '\r' < "$console" | sed -n 's/^.*REXLAB \({.*}\)$/\1/p' > "$results"
    report_runs
    {
        echo "Xen lab, $MODE: $(date -u '+%Y-%m-%d %H:%M UTC'), $(qemu-system-x86_64 --version | head -n1),"
        echo "Xen $(sed -n 's/.*"xen":"\([^"]*\)".*/\1/p' "$results" | head -n1) ($(sed -n 's/.*"scheduler":"\([^"]*\)".*/\1/p' "$results" | head -n1)), dom0 and guests: Debian kernel $kver, xl: $(cat "$OUT/dom0-root/lab/xl-kind")."
        echo "Command: \`tests/xen-lab/run.sh --$MODE$([ "$XEN_RELEASE" = 4.17 ] || echo " --xen $XEN_RELEASE")${SCHED:+ --sched $SCHED}${ONLY:+ --only $ONLY}\`; wall clock ${elapsed} s."
        tr -d '\r' < "$console" | sed -n 's/^.*REXLAB-MD \(.*\)$/\1/p'
    } > "$OUT/summary-$LABEL.md"
    log "QEMU exited with status $qemu_status after ${elapsed}s in all"
    if [ "$qemu_status" -eq 124 ] || [ "$qemu_status" -eq 137 ]; then
        log "TIMEOUT: the experiment did not finish in ${TIMEOUT}s"
    fi
    cat "$OUT/summary-$LABEL.md"
    passed=$(grep -c '"check":.*"pass":true' "$results" || true)
    failed=$(grep -c '"check":.*"pass":false' "$results" || true)
    skipped=$(grep -c '"check":.*"pass":null' "$results" || true)
    log "checks: $passed passed, $failed failed, $skipped skipped; results: $results"
    if ! grep -q '"event":"lab_end"' "$results"; then
        log "FAIL: the experiment did not run to the end"
        exit 1
    fi
    if [ -n "$ALLOW_SKIP" ]; then
        sed -n 's/^{"check":"\([^"]*\)","pass":null,"detail":"\(.*\)"}$/skipped: lab check \1 (Xen '"$XEN_RELEASE"'): \2/p' "$results"
        echo "xen-lab: $passed passed, $failed failed, $skipped skipped"
        [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
        return
    fi
    # A skipped check proved nothing: it counts as failed.
    echo "xen-lab: $passed passed, $((failed + skipped)) failed"
    [ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ] && [ "$passed" -gt 0 ]
}

main "$@"
