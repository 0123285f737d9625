#!/usr/bin/env bash
# The comparison harness: Watchfire side by side with Debian's Prometheus, Alertmanager and
# node_exporter, on loopback, with the same synthetic targets, the same scrape configuration and
# the same duration for each. See benches/README.md for what each figure means.
#
#   bash benches/harness/run.sh [--profile smoke|default|million] [--repeat N] [--watchfire PATH] [--out DIR]
#                               [--only scrape,rw,alerts,idle,replay]
#
# Phases: scrape ingest + queries + restart (scrape), remote-write ingest + blocks + disk writes
# (rw), alert intake + notification latency (alerts), idle footprint + host collection (idle),
# and, only when named, WAL replay after a crash with 2 h of remote-written data (replay).
# --only runs the phases named (the report leaves the others' rows out).
# smoke (under 2 min, for CI) checks that every step runs; its figures mean little.
# default (~13-15 min plus the release build) is the profile the README's table comes from.
# million: the scrape phase at about a million series (1 715 targets every 15 s); run it with
# --only scrape (its other phases are the default's), or --only replay for the WAL replay of
# a million series x 2 h (about 20 GiB free disk, 30-40 min).
# Exit status: non-zero only when a step fails to run, never because of a figure.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

profile=default
repeat=1
watchfire=""
only="scrape,rw,alerts,idle"
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --profile=*) profile=${1#*=}; shift ;;
    --repeat) repeat=$2; shift 2 ;;
    --watchfire) watchfire=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$root/benches/harness/run.sh"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

case "$profile" in
  smoke)   targets=5;   interval=2;  scrape_secs=24;  warmup=6;  query_reps=3; alerts=2000;  alert_groups=20;  idle_secs=3
           rw_instances=1;  rw_senders=2; rw_block_wait=3;  notify_groups=8;  notify_gap_ms=100; replay_instances=1 ;;
  default) targets=100; interval=10; scrape_secs=240; warmup=30; query_reps=7; alerts=10000; alert_groups=100; idle_secs=20
           rw_instances=20; rw_senders=4; rw_block_wait=10; notify_groups=30; notify_gap_ms=200; replay_instances=20 ;;
  million) targets=1715; interval=15; scrape_secs=240; warmup=60; query_reps=3; alerts=10000; alert_groups=100; idle_secs=20
           rw_instances=20; rw_senders=4; rw_block_wait=10; notify_groups=30; notify_gap_ms=200; replay_instances=1715 ;;
  *) echo "unknown profile: $profile (smoke|default|million)" >&2; exit 2 ;;
esac
# Idle CPU is counted in 10 ms clock ticks: a minute-long window in the default profile.
case "$profile" in smoke) idle_cpu_secs=$idle_secs ;; *) idle_cpu_secs=60 ;; esac
# Sequential scrapes of the host collector and of node_exporter for CPU per scrape.
host_scrapes=50
want() { case ",$only," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
for p in ${only//,/ }; do
  case "$p" in scrape|rw|alerts|idle|replay) ;; *) echo "unknown phase: $p (scrape,rw,alerts,idle,replay)" >&2; exit 2 ;; esac
done

# Ports: loopback only, away from the usual 9090/9093/9100 other engineers' tests use.
wf_port=29090; prom_port=29091; am_port=29093; hook_port=29095; ne_port=29100; gen_base=29200
# Remote-write data: 15 s apart, 780 steps (3 h 15 min) from a 2 h boundary in the past; part a
# is the first 720 steps (the head spans just under 3 h, so neither server cuts a block yet),
# part b the last 15 min (the head now spans more than 1.5 block ranges: a block is due).
rw_step=15; rw_steps=780; rw_part_a_steps=720
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target-bench}"
started_at=$(date +%s)
log() { printf '[%s +%3ss] %s\n' "$(date -u +%H:%M:%S)" "$(( $(date +%s) - started_at ))" "$*" >&2; }

# --- what we need ---------------------------------------------------------------------------
need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
command -v prometheus-node-exporter >/dev/null 2>&1 || need_apt+=(prometheus-node-exporter)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  # Keep the packages' services from starting: a policy-rc.d that denies every start (as .ci/test).
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  if [ -n "$made_policy" ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
fi
for c in curl awk du; do command -v $c >/dev/null || { echo "missing: $c" >&2; exit 1; }; done

if [ -z "$watchfire" ]; then
  log "building watchfire (release) into $CARGO_TARGET_DIR"
  cargo build --release --quiet --locked -p watchfire
  watchfire=$CARGO_TARGET_DIR/release/watchfire
fi
log "building the harness (release)"
cargo build --release --quiet --locked --manifest-path benches/harness/Cargo.toml
harness=$CARGO_TARGET_DIR/release/watchfire-harness
prometheus=$(command -v prometheus)
alertmanager=$(command -v prometheus-alertmanager)
node_exporter=$(command -v prometheus-node-exporter)

for p in $wf_port $prom_port $am_port $hook_port $ne_port $gen_base $((gen_base + targets - 1)); do
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/"; then
    echo "port 127.0.0.1:$p is in use; stop what listens there first" >&2; exit 1
  fi
done

out=${out:-$root/benches/harness/out/$profile-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
results=$out/results.txt
: > "$results"
tmp=$(mktemp -d /tmp/watchfire-harness.XXXXXX)

# --- process bookkeeping: every process we start is stopped by its own pid -------------------
pids=()
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: runs CMD in the background, logging to $out/NAME.log; sets $last_pid.
start() {
  local name=$1; shift
  "$@" >>"$out/$name.log" 2>&1 &
  last_pid=$!
  pids+=("$last_pid")
}
# stop PID: SIGTERM, then SIGKILL after 30 s.
stop() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then log "pid $pid ignored SIGTERM for 30s; killing it"; kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}
# wait_ready URL PID TIMEOUT: polls until URL answers 200; fails if the process died or timed out.
wait_ready() {
  local url=$1 pid=$2 deadline=$(( $(date +%s) + $3 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)" = 200 ] && return 0
    kill -0 "$pid" 2>/dev/null || { echo "process $pid exited before $url was ready (see $out/*.log)" >&2; return 1; }
    sleep 0.02
  done
  echo "timed out waiting for $url" >&2; return 1
}
now() { date +%s.%N; }
# pause SECS: a sleep the EXIT/INT/TERM traps can interrupt.
pause() { sleep "$1" & pids+=("$!"); wait "$!"; }
clk_tck=$(getconf CLK_TCK)
cpu_s() { sed 's/^.*) //' "/proc/$1/stat" | awk -v t="$clk_tck" '{ print ($12 + $13) / t }'; }
status_mib() { awk -v f="$2:" '$1 == f { print $2 / 1024 }' "/proc/$1/status"; }
# io_write PID: bytes the process caused to be written to storage (/proc/<pid>/io write_bytes).
io_write() { awk '$1 == "write_bytes:" { print $2 }' "/proc/$1/io"; }
# metric URL NAME: the sum of every sample of NAME on URL/metrics.
metric() {
  curl -s --max-time 10 "$1/metrics" | awk -v n="$2" '
    index($0, n) == 1 { c = substr($0, length(n) + 1, 1); if (c == "{" || c == " ") { s += $NF; found = 1 } }
    END { if (!found) { exit 1 } printf "%.0f\n", s }'
}
put() { echo "$1 $2" >> "$results"; }
calc() { awk "BEGIN { printf \"%.15g\n\", $* }"; }

# --- the template: one page from the real node_exporter --------------------------------------
log "capturing a node_exporter page as the template"
start node_exporter "$node_exporter" --web.listen-address=127.0.0.1:$ne_port
ne_pid=$last_pid
wait_ready "http://127.0.0.1:$ne_port/metrics" "$ne_pid" 30
curl -sf "http://127.0.0.1:$ne_port/metrics" > "$out/template.prom"
stop "$ne_pid"
series_per_target=$("$harness" serve --template "$out/template.prom" --count-only)
log "template: $(grep -vc '^#' "$out/template.prom") samples; $series_per_target series per synthetic target x $targets targets"

# --- configurations --------------------------------------------------------------------------
{
  echo "global:"
  echo "  scrape_interval: ${interval}s"
  echo "  scrape_timeout: $(( interval < 10 ? interval : 10 ))s"
  echo "scrape_configs:"
  echo "  - job_name: node"
  echo "    static_configs:"
  echo "      - targets:"
  for i in $(seq 0 $((targets - 1))); do echo "          - 127.0.0.1:$((gen_base + i))"; done
} > "$tmp/scrape.yml"
printf 'global:\n  scrape_interval: %ss\nscrape_configs: []\n' "$interval" > "$tmp/empty.yml"
# The intake alerts go to a receiver without integrations; the latency probes (harness="latency")
# to the harness' webhook with a 1 s group_wait.
cat > "$tmp/am.yml" <<YML
route:
  receiver: "null"
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['harness="latency"']
      receiver: hook
      group_wait: 1s
      group_interval: 1m
receivers:
  - name: "null"
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:$hook_port/hook
        send_resolved: false
YML

# run_server SYS DATA CONFIG [FLAG...]: starts Watchfire or Prometheus; sets $last_pid and $url.
run_server() {
  local sys=$1 data=$2 config=$3; shift 3
  case $sys in
    wf)   url=http://127.0.0.1:$wf_port
          start watchfire "$watchfire" --config.file="$config" --web.listen-address=127.0.0.1:$wf_port \
            --storage.tsdb.path="$data" --alertmanager.config.file="$tmp/am.yml" "$@" ;;
    prom) url=http://127.0.0.1:$prom_port
          start prometheus "$prometheus" --config.file="$config" --web.listen-address=127.0.0.1:$prom_port \
            --storage.tsdb.path="$data" "$@" ;;
  esac
}

# --- scrape ingest, memory, disk, restart, queries (one system at a time) --------------------
scrape_phase() {
  local sys=$1 run=$2
  local data=$tmp/$sys-data-$run
  log "[$sys run $run] generator: $targets targets, step ${interval}s"
  # Start on a multiple of the interval, so the evaluation time (and subquery steps, which are
  # aligned to absolute time) sit at the same place in both systems' data.
  pause "$(awk -v i="$interval" -v t="$(now)" 'BEGIN { printf "%.3f", i - (t - int(t / i) * i) }')"
  local gen_t0; gen_t0=$(now)
  start generator "$harness" serve --template "$out/template.prom" --targets "$targets" --base-port $gen_base \
    --interval "$interval" --max-runtime $(( scrape_secs * 3 + 300 ))
  local gen_pid=$last_pid
  wait_ready "http://127.0.0.1:$((gen_base + targets - 1))/metrics" "$gen_pid" 30
  # Every target must become active within 20 s. Watchfire sometimes never picks up its static
  # targets (seen on loaded machines: /api/v1/targets stays empty, nothing is scraped); then it is
  # restarted on a fresh data dir, at most 3 times, and the retries are reported.
  local pid attempt active
  for attempt in 1 2 3 4; do
    rm -rf "$data"
    run_server "$sys" "$data" "$tmp/scrape.yml"
    pid=$last_pid
    wait_ready "$url/-/ready" "$pid" 120
    for _ in $(seq 1 40); do
      active=$( { curl -s --max-time 2 "$url/api/v1/targets?state=active" || true; } | { grep -o '"scrapeUrl"' || true; } | wc -l)
      [ "$active" -ge "$targets" ] && break
      pause 0.5
    done
    [ "$active" -ge "$targets" ] && break
    log "[$sys run $run] only $active of $targets targets active after 20s (attempt $attempt); restarting"
    put "$sys.start_retries" 1
    stop "$pid"
    [ "$attempt" = 4 ] && { echo "[$sys] targets never became active" >&2; exit 1; }
  done
  log "[$sys run $run] ready; warming up ${warmup}s, then 3 measured windows"
  pause "$warmup"
  # Ingestion must have started: a server that has not appended a sample is a failure to run.
  if [ "$(metric "$url" prometheus_tsdb_head_samples_appended_total || echo 0)" = 0 ]; then
    echo "[$sys] appended no samples in ${warmup}s of warm-up (targets: $(curl -s "$url/api/v1/targets" | grep -o '"scrapeUrl"' | wc -l)); see $out/*.log" >&2
    exit 1
  fi
  local window=$(( (scrape_secs - warmup) / 3 )) total=0
  local io0 t_io0; io0=$(io_write "$pid"); t_io0=$(now)
  for w in 1 2 3; do
    local c0 s0 c1 s1
    c0=$(cpu_s "$pid"); s0=$(metric "$url" prometheus_tsdb_head_samples_appended_total)
    pause "$window"
    c1=$(cpu_s "$pid"); s1=$(metric "$url" prometheus_tsdb_head_samples_appended_total)
    local per; per=$(calc "($c1 - $c0) / (($s1 - $s0) > 0 ? ($s1 - $s0) : 1) * 1e6")
    log "[$sys run $run] window $w: $(calc "$c1 - $c0") CPU s for $((s1 - s0)) samples = $per CPU s per million"
    put "$sys.cpu_s_per_msample" "$per"
    total=$(( total + s1 - s0 ))
  done
  put "$sys.samples_measured" "$total"
  local io1 t_io1; io1=$(io_write "$pid"); t_io1=$(now)
  # Bytes written over the three windows, scaled to an hour of scraping at the profile's rate.
  put "$sys.scrape_write_mib_per_h" "$(calc "($io1 - $io0) / ($t_io1 - $t_io0) * 3600 / 1048576")"
  put "$sys.scrape_write_bytes_per_sample" "$(calc "($io1 - $io0) / ($total > 0 ? $total : 1)")"
  local series samples rss hwm
  series=$(metric "$url" prometheus_tsdb_head_series)
  samples=$(metric "$url" prometheus_tsdb_head_samples_appended_total)
  rss=$(status_mib "$pid" VmRSS); hwm=$(status_mib "$pid" VmHWM)
  put "$sys.head_series" "$series"; put "$sys.rss_mib" "$rss"; put "$sys.hwm_mib" "$hwm"
  put "$sys.rss_bytes_per_series" "$(calc "$rss * 1048576 / $series")"
  log "[$sys run $run] $series series, RSS $rss MiB (peak $hwm MiB); running the query set"
  # Same offset from the generator's start for both systems: the data they hold there is the same.
  local eval_time; eval_time=$(calc "$gen_t0 + $scrape_secs - 2 * $interval")
  "$harness" query --url "$url" --time "$eval_time" --interval "$interval" \
    --span "$(calc "$scrape_secs - 3 * $interval")" --reps "$query_reps" --out "$out/queries-$sys-$run.json"
  samples=$(metric "$url" prometheus_tsdb_head_samples_appended_total)
  stop "$pid"
  stop "$gen_pid"
  local disk wal
  disk=$(du -sb "$data" | awk '{print $1}')
  wal=$(du -sb "$data/wal" 2>/dev/null | awk '{print $1}'); wal=${wal:-0}
  put "$sys.disk_mib" "$(calc "$disk / 1048576")"
  put "$sys.wal_bytes_per_sample" "$(calc "$wal / $samples")"
  log "[$sys run $run] on disk $disk bytes (WAL $wal) for $samples samples; restarting on the full WAL"
  local t0 t1
  t0=$(now)
  run_server "$sys" "$data" "$tmp/empty.yml"
  pid=$last_pid
  wait_ready "$url/-/ready" "$pid" 300
  t1=$(now)
  sleep 2
  put "$sys.restart_s" "$(calc "$t1 - $t0")"
  put "$sys.restart_rss_mib" "$(status_mib "$pid" VmRSS)"
  put "$sys.series_after_restart" "$(metric "$url" prometheus_tsdb_head_series)"
  log "[$sys run $run] ready again after $(calc "$t1 - $t0")s"
  stop "$pid"
}

# --- remote-write ingest, blocks, disk writes ----------------------------------------------------
# blocks_ready DATA: true when DATA holds at least one block (a directory with meta.json) and no
# compaction or checkpoint is still being written (upstream and Watchfire write into *.tmp*
# directories and rename them when done).
blocks_ready() {
  compgen -G "$1/*/meta.json" >/dev/null || return 1
  ! compgen -G "$1/*.tmp*" >/dev/null && ! compgen -G "$1/wal/*.tmp*" >/dev/null
}
# wait_blocks DATA SECS: waits until blocks_ready DATA. Gives up after SECS if no block is being
# written by then, and after 120 s in any case.
wait_blocks() {
  local data=$1 i
  for i in $(seq 1 1200); do
    blocks_ready "$data" && return 0
    if [ "$i" -gt $(( $2 * 10 )) ] && ! compgen -G "$data/*.tmp*" >/dev/null && ! compgen -G "$data/wal/*.tmp*" >/dev/null; then
      return 1
    fi
    sleep 0.1
  done
  return 1
}

rw_phase() {
  local sys=$1
  local data=$tmp/$sys-rw
  rm -rf "$data"
  run_server "$sys" "$data" "$tmp/empty.yml" --web.enable-remote-write-receiver
  local pid=$last_pid
  wait_ready "$url/-/ready" "$pid" 60
  local io0; io0=$(io_write "$pid")
  log "[$sys] remote write, part a: $rw_part_a_steps steps of $rw_series series, $rw_senders senders"
  "$harness" rw-send --data "$tmp/rw.bin" --url "$url" --pid "$pid" --part a --key "$sys" --results "$results"
  sleep 2
  local series appended wal rss
  series=$(metric "$url" prometheus_tsdb_head_series)
  appended=$(metric "$url" prometheus_tsdb_head_samples_appended_total)
  rss=$(status_mib "$pid" VmRSS)
  wal=$(du -sb "$data/wal" | awk '{print $1}')
  put "$sys.rw_head_series" "$series"; put "$sys.rw_rss_mib" "$rss"
  put "$sys.rw_rss_bytes_per_series" "$(calc "$rss * 1048576 / $series")"
  put "$sys.rw_wal_bytes_per_sample" "$(calc "$wal / ($appended > 0 ? $appended : 1)")"
  log "[$sys] after part a: $series series, RSS $rss MiB, WAL $wal bytes for $appended samples"
  "$harness" rw-send --data "$tmp/rw.bin" --url "$url" --pid "$pid" --part b --key "$sys" --results "$results"
  # The head now spans more than 3 h: Prometheus cuts a 2 h block as soon as a commit sees that,
  # Watchfire at its next storage maintenance (every minute, and right after start-up).
  local io_total restarted=0
  if ! wait_blocks "$data" "$rw_block_wait"; then
    put "$sys.rw_hwm_mib" "$(status_mib "$pid" VmHWM)"
    io_total=$(( $(io_write "$pid") - io0 ))
    log "[$sys] no block after ${rw_block_wait}s; restarting on the same data (Watchfire's maintenance runs at start-up, Prometheus' a minute after)"
    stop "$pid"
    run_server "$sys" "$data" "$tmp/empty.yml" --web.enable-remote-write-receiver
    pid=$last_pid
    wait_ready "$url/-/ready" "$pid" 120
    wait_blocks "$data" 90 || log "[$sys] WARNING: still no block 90s after the restart"
    restarted=1
    sleep 1
    put "$sys.rw_hwm_after_restart_mib" "$(status_mib "$pid" VmHWM)"
    io_total=$(( io_total + $(io_write "$pid") ))
  else
    sleep 1
    put "$sys.rw_hwm_mib" "$(status_mib "$pid" VmHWM)"
    io_total=$(( $(io_write "$pid") - io0 ))
  fi
  put "$sys.rw_block_after_restart" "$restarted"
  # Everything written for 3 h 15 min of data: WAL, head chunks, the block, any checkpoint.
  put "$sys.rw_write_bytes" "$io_total"
  put "$sys.rw_write_mib_per_data_h" "$(calc "$io_total / 1048576 / ($rw_steps * $rw_step / 3600)")"
  put "$sys.rw_write_bytes_per_sample" "$(calc "$io_total / $rw_samples")"
  "$harness" rw-verify --data "$tmp/rw.bin" --url "$url" --key "$sys" --results "$results"
  stop "$pid"
  local blocks=0 bbytes=0 cbytes=0 ibytes=0 bsamples=0 bseries=0 d
  for d in "$data"/*/; do
    [ -f "$d/meta.json" ] || continue
    blocks=$((blocks + 1))
    bbytes=$(( bbytes + $(du -sb "$d" | awk '{print $1}') ))
    cbytes=$(( cbytes + $(du -sb "$d/chunks" | awk '{print $1}') ))
    ibytes=$(( ibytes + $(stat -c %s "$d/index") ))
    bsamples=$(( bsamples + $(grep -o '"numSamples": *[0-9]*' "$d/meta.json" | grep -o '[0-9]*$') ))
    bseries=$(( bseries + $(grep -o '"numSeries": *[0-9]*' "$d/meta.json" | grep -o '[0-9]*$') ))
  done
  put "$sys.rw_blocks" "$blocks"
  if [ "$blocks" -gt 0 ] && [ "$bsamples" -gt 0 ]; then
    put "$sys.block_bytes_per_sample" "$(calc "$bbytes / $bsamples")"
    put "$sys.block_chunk_bytes_per_sample" "$(calc "$cbytes / $bsamples")"
    put "$sys.block_index_bytes_per_series" "$(calc "$ibytes / ($bseries > 0 ? $bseries : 1)")"
    put "$sys.block_samples" "$bsamples"
  fi
  log "[$sys] $blocks block(s): $bbytes bytes (chunks $cbytes, index $ibytes) for $bsamples samples; wrote $io_total bytes in all"
  rm -rf "$data"
}

# --- WAL replay after a crash ------------------------------------------------------------------
# replay_phase SYS: fills a fresh server with 2 h of remote-written data (480 steps of 15 s, every
# sample through the WAL; the head spans 2 h, so no block is cut), kills it with SIGKILL (no
# clean shutdown: Watchfire writes no head snapshot, the WAL must be replayed), restarts it on
# the same directory and times the restart to ready; then counts every sample through the query
# API, so a replay that lost data cannot win.
replay_phase() {
  local sys=$1
  local data=$tmp/$sys-replay
  rm -rf "$data"
  run_server "$sys" "$data" "$tmp/empty.yml" --web.enable-remote-write-receiver
  local pid=$last_pid
  wait_ready "$url/-/ready" "$pid" 60
  log "[$sys] replay: filling with $replay_instances instances x $series_per_target series x 480 steps"
  "$harness" rw-fill --template "$out/template.prom" --instances "$replay_instances" --steps 480 --step 15 \
    --shards 4 --url "$url" --key "$sys.replay" --results "$results" --desc "$tmp/replay-$sys"
  sleep 2
  local series wal disk
  series=$(metric "$url" prometheus_tsdb_head_series)
  put "$sys.replay_rss_before_mib" "$(status_mib "$pid" VmRSS)"
  kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
  wal=$(du -sb "$data/wal" | awk '{print $1}'); disk=$(du -sb "$data" | awk '{print $1}')
  put "$sys.replay_series" "$series"; put "$sys.replay_wal_mib" "$(calc "$wal / 1048576")"
  put "$sys.replay_disk_mib" "$(calc "$disk / 1048576")"
  log "[$sys] killed with $series series, WAL $wal bytes, $disk bytes on disk; restarting"
  # The page cache stays warm, as after a process crash (not a machine restart).
  local t0 t1
  t0=$(now)
  run_server "$sys" "$data" "$tmp/empty.yml"
  pid=$last_pid
  wait_ready "$url/-/ready" "$pid" 1800
  t1=$(now)
  put "$sys.replay_s" "$(calc "$t1 - $t0")"
  put "$sys.replay_hwm_mib" "$(status_mib "$pid" VmHWM)"
  sleep 2
  put "$sys.replay_rss_after_mib" "$(status_mib "$pid" VmRSS)"
  put "$sys.replay_series_after" "$(metric "$url" prometheus_tsdb_head_series)"
  log "[$sys] ready after $(calc "$t1 - $t0")s; counting the samples"
  "$harness" rw-verify --data "$tmp/replay-$sys" --url "$url" --key "$sys.replay" --results "$results" || true
  stop "$pid"
  rm -rf "$data"
}

# --- alert intake ----------------------------------------------------------------------------
alert_phase() {
  local sys=$1
  case $sys in
    wf) run_server wf "$tmp/wf-alerts" "$tmp/empty.yml" ;;
    am) url=http://127.0.0.1:$am_port
        start alertmanager "$alertmanager" --config.file="$tmp/am.yml" --storage.path="$tmp/am-data" \
          --web.listen-address=127.0.0.1:$am_port --cluster.listen-address= ;;
  esac
  local pid=$last_pid
  wait_ready "$url/-/ready" "$pid" 60
  sleep 2
  log "[$sys] posting $alerts alerts in $alert_groups groups, 3 rounds"
  "$harness" alerts --url "$url" --pid "$pid" --key "$sys" --alerts "$alerts" --groups "$alert_groups" --results "$results"
  log "[$sys] notification latency: $notify_groups new groups, group_wait 1s, webhook on 127.0.0.1:$hook_port"
  "$harness" notify-latency --url "$url" --listen 127.0.0.1:$hook_port --groups "$notify_groups" --group-wait-ms 1000 \
    --gap-ms "$notify_gap_ms" --key "$sys" --results "$results"
  stop "$pid"
  rm -rf "$tmp/wf-alerts" "$tmp/am-data"
}

# --- host collection ---------------------------------------------------------------------------
# CPU per scrape of the built-in host collector (/metrics/host of the embedded default) and of
# node_exporter restricted to the same 13 collectors with the same filters, $host_scrapes
# sequential scrapes each. Both figures include serving the HTTP request and encoding the page.
host_cpu_ms() { # PID URL -> CPU ms per scrape
  local pid=$1 u=$2 c0 i
  curl -sf -o /dev/null "$u" || { echo "scrape of $u failed" >&2; return 1; }
  c0=$(cpu_s "$pid")
  for i in $(seq 1 "$host_scrapes"); do curl -sf -o /dev/null "$u"; done
  calc "($(cpu_s "$pid") - $c0) * 1000 / $host_scrapes"
}

# --- idle footprint --------------------------------------------------------------------------
idle_phase() {
  printf 'global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ["127.0.0.1:%s"]\n' "$wf_port" > "$tmp/idle-wf.yml"
  run_server wf "$tmp/idle-wf" "$tmp/idle-wf.yml"
  local pid=$last_pid
  wait_ready "$url/-/ready" "$pid" 60
  pause "$idle_secs"
  put wf.idle_rss_mib "$(status_mib "$pid" VmRSS)"
  stop "$pid"
  # The embedded default, as a user starts it: no --config.file and no
  # --alertmanager.config.file (self and host scrapes every 15 s, the 14 default rules, the
  # built-in Alertmanager). RSS after the idle pause, then CPU over a second pause of the same
  # length, as CPU seconds per minute.
  start watchfire "$watchfire" --web.listen-address=127.0.0.1:$wf_port --storage.tsdb.path="$tmp/idle-default"
  pid=$last_pid
  wait_ready "http://127.0.0.1:$wf_port/-/ready" "$pid" 60
  pause "$idle_secs"
  put wf.idle_default_rss_mib "$(status_mib "$pid" VmRSS)"
  local c0; c0=$(cpu_s "$pid")
  pause "$idle_cpu_secs"
  put wf.idle_default_cpu_s_per_min "$(calc "($(cpu_s "$pid") - $c0) * 60 / $idle_cpu_secs")"
  put wf.host_scrape_cpu_ms "$(host_cpu_ms "$pid" "http://127.0.0.1:$wf_port/metrics/host")"
  stop "$pid"
  printf 'global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ["127.0.0.1:%s", "127.0.0.1:%s", "127.0.0.1:%s"]\n' \
    "$prom_port" "$ne_port" "$am_port" > "$tmp/idle-prom.yml"
  start node_exporter "$node_exporter" --web.listen-address=127.0.0.1:$ne_port; local ne=$last_pid
  start alertmanager "$alertmanager" --config.file="$tmp/am.yml" --storage.path="$tmp/am-idle" \
    --web.listen-address=127.0.0.1:$am_port --cluster.listen-address=; local am=$last_pid
  run_server prom "$tmp/idle-prom" "$tmp/idle-prom.yml"; local pr=$last_pid
  wait_ready "$url/-/ready" "$pr" 60; wait_ready "http://127.0.0.1:$am_port/-/ready" "$am" 60
  pause "$idle_secs"
  local a b c
  a=$(status_mib "$pr" VmRSS); b=$(status_mib "$am" VmRSS); c=$(status_mib "$ne" VmRSS)
  put stack.idle_rss_mib "$(calc "$a + $b + $c")"
  put meta.idle_rss_prometheus_mib "$a"; put meta.idle_rss_alertmanager_mib "$b"; put meta.idle_rss_node_exporter_mib "$c"
  local c0; c0=$(calc "$(cpu_s "$pr") + $(cpu_s "$am") + $(cpu_s "$ne")")
  pause "$idle_cpu_secs"
  put stack.idle_cpu_s_per_min "$(calc "($(cpu_s "$pr") + $(cpu_s "$am") + $(cpu_s "$ne") - $c0) * 60 / $idle_cpu_secs")"
  stop "$pr"; stop "$am"; stop "$ne"
  # node_exporter with the host collector's 13 collectors and filters (as the test comparing
  # their output, crates/hostmetrics/tests/host.rs).
  start node_exporter "$node_exporter" --web.listen-address=127.0.0.1:$ne_port --collector.disable-defaults \
    --collector.cpu --collector.diskstats --collector.filefd --collector.filesystem --collector.hwmon \
    --collector.loadavg --collector.meminfo --collector.netdev --collector.netstat --collector.pressure \
    --collector.stat --collector.time --collector.uname \
    '--collector.filesystem.fs-types-exclude=^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$' \
    '--collector.filesystem.mount-points-exclude=^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)' \
    '--collector.diskstats.device-exclude=^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$' \
    '--collector.netstat.fields=^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$' \
    --collector.netdev.device-exclude=
  ne=$last_pid
  wait_ready "http://127.0.0.1:$ne_port/metrics" "$ne" 30
  put ne.host_scrape_cpu_ms "$(host_cpu_ms "$ne" "http://127.0.0.1:$ne_port/metrics")"
  stop "$ne"
  local sw sp sa sn
  # Debian's binaries are stripped; compare with a stripped copy of ours.
  cp "$watchfire" "$tmp/watchfire.stripped"; strip "$tmp/watchfire.stripped" 2>/dev/null || true
  put meta.binary_watchfire_unstripped_mib "$(calc "$(stat -c %s "$watchfire") / 1048576")"
  sw=$(stat -c %s "$tmp/watchfire.stripped"); sp=$(stat -c %s -L "$prometheus"); sa=$(stat -c %s -L "$alertmanager"); sn=$(stat -c %s -L "$node_exporter")
  put wf.binary_mib "$(calc "$sw / 1048576")"
  put stack.binary_mib "$(calc "($sp + $sa + $sn) / 1048576")"
  put meta.binary_prometheus_mib "$(calc "$sp / 1048576")"; put meta.binary_alertmanager_mib "$(calc "$sa / 1048576")"
  put meta.binary_node_exporter_mib "$(calc "$sn / 1048576")"
}

log "profile $profile: $targets targets every ${interval}s for ${scrape_secs}s per system, $repeat run(s); results in $out"
for run in $(seq 1 "$repeat"); do
  want scrape || break
  scrape_phase wf "$run"
  scrape_phase prom "$run"
  "$harness" compare "$out/queries-wf-$run.json" "$out/queries-prom-$run.json" --results "$results" > "$out/compare-$run.md"
done
if want rw; then
log "remote write: generating $rw_instances instances x $series_per_target series x $rw_steps steps"
"$harness" rw-gen --template "$out/template.prom" --instances "$rw_instances" --steps $rw_steps --part-a-steps $rw_part_a_steps \
  --step $rw_step --shards "$rw_senders" --out "$tmp/rw.bin"
rw_series=$(awk -F': *' '/"series_per_step"/ { gsub(/,/, "", $2); print $2 }' "$tmp/rw.bin.json")
rw_samples=$(awk -F': *' '/"samples"/ { gsub(/,/, "", $2); print $2 }' "$tmp/rw.bin.json")
put meta.rw_series "$rw_series"; put meta.rw_samples "$rw_samples"
rw_phase wf
rw_phase prom
fi
if want replay; then
  replay_phase wf
  replay_phase prom
fi
if want alerts; then
  alert_phase wf
  alert_phase am
fi
if want idle; then
  log "idle footprint"
  idle_phase
fi

{
  echo "## Watchfire vs Prometheus $("$prometheus" --version 2>&1 | awk 'NR==1{print $3}') / Alertmanager $("$alertmanager" --version 2>&1 | awk 'NR==1{print $3}')"
  echo
  echo "Profile \`$profile\` ($targets targets x $series_per_target series, scraped every ${interval}s for ${scrape_secs}s per system, $repeat run(s)),"
  echo "$(date -u +%Y-%m-%d), $(nproc) cores, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Watchfire: $("$watchfire" --version 2>&1 | head -1)."
  echo
  "$harness" report "$results"
  echo
  if [ -f "$out/compare-1.md" ]; then
    echo "### Queries (run 1)"
    echo
    cat "$out/compare-1.md"
  fi
} > "$out/report.md"
cat "$out/report.md"
log "done in $(( $(date +%s) - started_at ))s; report in $out/report.md"
