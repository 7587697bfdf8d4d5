#!/usr/bin/env bash
# bench/compare/run.sh — shim side by side with the stack it replaces
# (Redis 7 from Debian + BullMQ/ioredis from npm), on this machine, in one run.
#
#   bench/compare/run.sh [--rounds N] [--with-recovery] [--only LIST]
#
#   --rounds N        runs per side and workload, alternating shim, peer,
#                     shim, peer, ... (default 2); the table shows the BEST
#                     of the N runs of each side (highest throughput, lowest
#                     latency)
#   --with-recovery   also fill 1,000,000 keys + 1,000,000 ready tasks into
#                     shim and 1,000,000 BullMQ jobs into Redis, compare
#                     memory and restart time after kill -9 (about 1 min
#                     more on a 2-core host)
#   --only LIST       comma list of state,queue,latency,pubsub (default all)
#
# Environment: SHIM=path/to/shim (else BUILD_DIR, default <repo>/build, is
# built with `cmake --build BUILD_DIR -j2 --target shim`); OUT=dir to keep
# the raw outputs (default: a temp dir, removed at exit).
#
# It installs what is missing: Debian redis-server and redis-tools (apt-get,
# via sudo when not root) and the pinned bullmq + ioredis from
# package-lock.json into bench/compare/node_modules (npm ci). It starts its
# own redis-server (Unix socket only, --port 0, --save '') and its own
# `shim serve` on temp dirs, and stops every process it started at exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=2
WITH_RECOVERY=0
ONLY="state,queue,latency,pubsub"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --with-recovery) WITH_RECOVERY=1; shift ;;
    --only) ONLY=$2; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
want() { [[ ",$ONLY," == *",$1,"* ]]; }

# Sizes of each run (override from the environment).
STATE_N=${STATE_N:-200000}          # requests per state run, pipeline 1
STATE_N_P16=${STATE_N_P16:-400000}  # requests per state run, pipeline 16
QUEUE_N=${QUEUE_N:-30000}           # jobs per queue run, 50 workers
QUEUE_N_C1=${QUEUE_N_C1:-3000}      # jobs per queue run, 1 worker
LAT_N=${LAT_N:-1500}                # one-at-a-time jobs per latency run
PUBSUB_N=${PUBSUB_N:-50000}         # messages per pub/sub run (x 4 subscribers)
PUBSUB_WINDOW=${PUBSUB_WINDOW:-16}  # publishes in flight
FILL_N=${FILL_N:-1000000}           # recovery: keys, tasks and BullMQ jobs

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

# ---------------------------------------------------------------- install
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null || ! command -v redis-cli >/dev/null; then
  log "installing redis-server redis-tools (apt-get)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "installing nodejs npm (apt-get)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -f "$HERE/node_modules/.package-lock.json" ] || ! cmp -s <(node -e 'const l=require(process.argv[1]);console.log(JSON.stringify([l.packages["node_modules/bullmq"].version,l.packages["node_modules/ioredis"].version]))' "$HERE/package-lock.json") \
      <(node -e 'const l=require(process.argv[1]);console.log(JSON.stringify([l.packages["node_modules/bullmq"].version,l.packages["node_modules/ioredis"].version]))' "$HERE/node_modules/.package-lock.json" 2>/dev/null); then
  log "installing bullmq + ioredis from package-lock.json (npm ci)"
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
if [ -z "${SHIM:-}" ]; then
  BUILD_DIR=${BUILD_DIR:-$ROOT/build}
  [ -f "$BUILD_DIR/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  log "building shim in $BUILD_DIR"
  cmake --build "$BUILD_DIR" -j2 --target shim >/dev/null
  SHIM=$BUILD_DIR/shim
fi
[ -x "$SHIM" ] || { echo "run.sh: no shim binary at $SHIM" >&2; exit 1; }

# ---------------------------------------------------------------- processes
TMP=$(mktemp -d /tmp/shim-compare-XXXXXX)
RAW=${OUT:-$TMP/raw}
mkdir -p "$RAW"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() { local p keep=(); for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done; PIDS=("${keep[@]}"); }
stop_pid() {  # stop_pid PID [SIGNAL]
  kill "-${2:-TERM}" "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget_pid "$1"
}
now_ns() { date +%s%N; }
rss_mb() { awk '/^VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

# start_redis DIR FSYNC -> sets REDIS_PID, REDIS_SOCK
start_redis() {
  mkdir -p "$1"
  REDIS_SOCK=$1/redis.sock
  redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 --dir "$1" --save '' \
    --appendonly yes --appendfsync "$2" --logfile "$1/redis.log" --daemonize no &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  local i
  for i in $(seq 1 3000); do
    redis-cli -s "$REDIS_SOCK" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.01
  done
  echo "run.sh: redis-server did not start (see $1/redis.log)" >&2; exit 1
}
# start_shim DIR DURABILITY -> sets SHIM_PID, SHIM_SOCK, SHIM_READY_MS
start_shim() {
  mkdir -p -m 700 "$1"  # shim refuses a socket in a directory others can open
  SHIM_SOCK=$1/shim.sock
  local t0; t0=$(now_ns)
  "$SHIM" serve --socket "$SHIM_SOCK" --data "$1/data" --durability "$2" --log-level warn 2>>"$1/shim.log" &
  SHIM_PID=$!
  PIDS+=("$SHIM_PID")
  local i
  for i in $(seq 1 60000); do
    if "$SHIM" call sys.ping --socket "$SHIM_SOCK" >/dev/null 2>&1; then
      SHIM_READY_MS=$(( ($(now_ns) - t0) / 1000000 ))
      return 0
    fi
    kill -0 "$SHIM_PID" 2>/dev/null || { echo "run.sh: shim serve exited:" >&2; cat "$1/shim.log" >&2; exit 1; }
    sleep 0.005
  done
  echo "run.sh: shim serve did not answer sys.ping" >&2; exit 1
}

# ---------------------------------------------------------------- results
# raw.tsv: workload  class  side(shim|peer)  value
# rows.tsv: workload  class  unit  better(higher|lower)  target
RAWTSV=$TMP/raw.tsv; ROWS=$TMP/rows.tsv
: >"$RAWTSV"; : >"$ROWS"
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RAWTSV"; log "  $1 [$2] $3 = $4"; }
row() { grep -qF "$(printf '%s\t%s\t' "$1" "$2")" "$ROWS" || printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$ROWS"; }
jget() { node -e 'let d=require("fs").readFileSync(0,"utf8").trim().split("\n").pop();let v=JSON.parse(d);for(const k of process.argv[1].split("."))v=v[k];console.log(v)' "$1"; }
# redis-benchmark --csv: "SET","148148.14",...
rb_rps() { awk -F'"' -v t="$1" '$2==t {print $4}'; }

# quiesce: waits (at most 15 s) until the machine is at least 85% idle over
# 0.3 s, so that no timed run starts while the side measured before it is
# still busy in the background (Redis's AOF rewrite child, RocksDB's flushes
# and compactions) and takes a core from the side being measured.
quiesce() {
  local i k idle total a b
  for i in $(seq 1 50); do
    read -ra a </proc/stat; sleep 0.3; read -ra b </proc/stat
    idle=$(( b[4] + b[5] - a[4] - a[5] )); total=0
    for k in 1 2 3 4 5 6 7 8; do total=$(( total + b[k] - a[k] )); done
    [ "$total" -gt 0 ] && [ $(( idle * 100 / total )) -ge 85 ] && return 0
  done
  log "   (the machine is still busy after 15 s; running anyway)"
}
shim_bench() {  # shim_bench NAME ARGS... -> JSON on stdout, kept in RAW
  local name=$1; shift
  quiesce
  "$SHIM" bench "$@" --socket "$SHIM_SOCK" --json | tee "$RAW/$name.json"
}
peer() {  # peer NAME CMD ARGS...
  local name=$1; shift
  quiesce
  node "$HERE/peer.js" "$@" --sock "$REDIS_SOCK" | tee "$RAW/$name.json"
}

run_class() {  # run_class CLASS SHIM_DURABILITY REDIS_FSYNC
  local cls=$1 dur=$2 fsync=$3 r out p c
  log "== class $cls: shim --durability $dur vs redis appendfsync $fsync"
  start_shim "$TMP/shim-$dur" "$dur"
  start_redis "$TMP/redis-$fsync" "$fsync"
  log "   shim pid $SHIM_PID, redis pid $REDIS_PID"
  for r in $(seq 1 "$ROUNDS"); do
    if want state; then
      for p in 1 16; do
        local n=$STATE_N; [ "$p" = 16 ] && n=$STATE_N_P16
        row "state set, 50 clients, P$p" "$cls" "ops/s" higher "$( [ $p = 16 ] && echo '>=0.5' || { [ $cls = sync/always ] && echo '>=1.0' || echo '>=0.8'; } )"
        row "state get, 50 clients, P$p" "$cls" "ops/s" higher "$( [ $p = 16 ] && echo '>=0.5' || { [ $cls = sync/always ] && echo '>=1.0' || echo '>=0.8'; } )"
        out=$(shim_bench "state-set-P$p-$dur-$r" state --op set --clients 50 --pipeline "$p" --count "$n" --keys 10000 --payload-bytes 100)
        record "state set, 50 clients, P$p" "$cls" shim "$(jget ops_per_sec <<<"$out")"
        out=$(shim_bench "state-get-P$p-$dur-$r" state --op get --clients 50 --pipeline "$p" --count "$n" --keys 10000 --payload-bytes 100)
        record "state get, 50 clients, P$p" "$cls" shim "$(jget ops_per_sec <<<"$out")"
        quiesce
        out=$(redis-benchmark -s "$REDIS_SOCK" -c 50 -P "$p" -t set,get -n "$n" -r 10000 -d 100 --csv | tee "$RAW/redis-state-P$p-$fsync-$r.csv")
        record "state set, 50 clients, P$p" "$cls" peer "$(rb_rps SET <<<"$out")"
        record "state get, 50 clients, P$p" "$cls" peer "$(rb_rps GET <<<"$out")"
      done
    fi
    if want queue; then
      for c in 50 1; do
        local n=$QUEUE_N; [ "$c" = 1 ] && n=$QUEUE_N_C1
        row "queue cycles, $c worker(s)" "$cls" "jobs/s" higher "$( [ $c = 50 ] && echo '>=2.0' || echo '-')"
        # Both sides submit every job first (untimed) and time the draining.
        out=$(shim_bench "queue-c$c-$dur-$r" queue --prefill --clients "$c" --count "$n" --payload-bytes 0)
        record "queue cycles, $c worker(s)" "$cls" shim "$(jget ops_per_sec <<<"$out")"
        [ "$c" = 50 ] && row "queue submit, batches of 1000 (info)" "$cls" "jobs/s" higher "-"
        [ "$c" = 50 ] && record "queue submit, batches of 1000 (info)" "$cls" shim "$(jget prefill_per_sec <<<"$out")"
        out=$(peer "bullmq-queue-c$c-$fsync-$r" queue --jobs "$n" --concurrency "$c")
        record "queue cycles, $c worker(s)" "$cls" peer "$(jget jobs_per_sec <<<"$out")"
        [ "$c" = 50 ] && record "queue submit, batches of 1000 (info)" "$cls" peer "$(jget add_per_sec <<<"$out")"
      done
    fi
    if want latency; then
      row "queue add->complete p50, 1 at a time" "$cls" "ms" lower "$( [ $cls = async/everysec ] && echo '<=1.0' || echo '-')"
      row "queue add->complete p99, 1 at a time" "$cls" "ms" lower "$( [ $cls = async/everysec ] && echo '<=0.5' || echo '-')"
      out=$(shim_bench "latency-$dur-$r" queue --one-at-a-time --count "$LAT_N" --payload-bytes 0)
      record "queue add->complete p50, 1 at a time" "$cls" shim "$(jget latency_us.p50 <<<"$out" | awk '{print $1/1000}')"
      record "queue add->complete p99, 1 at a time" "$cls" shim "$(jget latency_us.p99 <<<"$out" | awk '{print $1/1000}')"
      out=$(peer "bullmq-latency-$fsync-$r" latency --jobs "$LAT_N" --warmup 200)
      record "queue add->complete p50, 1 at a time" "$cls" peer "$(jget p50_us <<<"$out" | awk '{print $1/1000}')"
      record "queue add->complete p99, 1 at a time" "$cls" peer "$(jget p99_us <<<"$out" | awk '{print $1/1000}')"
    fi
    if want pubsub; then
      row "pub/sub 1 pub -> 4 subs, 100 B" "$cls" "msgs/s" higher ">=0.5"
      out=$(shim_bench "pubsub-$dur-$r" pubsub --subscribers 4 --payload-bytes 100 --count "$PUBSUB_N" --pipeline "$PUBSUB_WINDOW")
      record "pub/sub 1 pub -> 4 subs, 100 B" "$cls" shim "$(jget ops_per_sec <<<"$out")"
      out=$(peer "redis-pubsub-$fsync-$r" pubsub --messages "$PUBSUB_N" --subscribers 4 --payload 100 --window "$PUBSUB_WINDOW")
      record "pub/sub 1 pub -> 4 subs, 100 B" "$cls" peer "$(jget delivered_per_sec <<<"$out")"
    fi
  done
  "$SHIM" info --socket "$SHIM_SOCK" >"$RAW/shim-info-$dur.txt" 2>&1 || true
  stop_pid "$SHIM_PID"
  stop_pid "$REDIS_PID"
}

run_recovery() {
  local cls="async/everysec" out t0 i
  log "== recovery and memory: $FILL_N keys + $FILL_N ready tasks in shim (async), $FILL_N BullMQ jobs in Redis (everysec)"
  start_shim "$TMP/rec-shim" async
  out=$(node "$HERE/peer.js" fill-shim --sock "$SHIM_SOCK" --tasks "$FILL_N" --keys 0 | tee "$RAW/fill-shim-tasks.json")
  log "   shim: $FILL_N tasks submitted in $(jget tasks_seconds <<<"$out") s, ready $(jget ready <<<"$out")"
  sleep 2
  row "memory, 1M ready tasks vs 1M BullMQ jobs" "$cls" "MB" lower "<=1.0"
  record "memory, 1M ready tasks vs 1M BullMQ jobs" "$cls" shim "$(rss_mb "$SHIM_PID")"
  out=$(node "$HERE/peer.js" fill-shim --sock "$SHIM_SOCK" --tasks 0 --keys "$FILL_N" | tee "$RAW/fill-shim-keys.json")
  log "   shim: $FILL_N keys set in $(jget keys_seconds <<<"$out") s; RSS now $(rss_mb "$SHIM_PID") MB"
  stop_pid "$SHIM_PID" KILL
  start_shim "$TMP/rec-shim" async
  row "restart after kill -9, 1M keys + 1M tasks" "$cls" "s" lower "abs<=3"
  record "restart after kill -9, 1M keys + 1M tasks" "$cls" shim "$(awk -v m="$SHIM_READY_MS" 'BEGIN{print m/1000}')"
  out=$("$SHIM" call queue.stats '{"queue":"fill"}' --socket "$SHIM_SOCK" --json | tee "$RAW/recovered-queue-stats.json")
  log "   shim after restart: ready $(jget counts.ready <<<"$out"), RSS $(rss_mb "$SHIM_PID") MB"
  row "RSS after fill (info; Redis used_memory_rss)" "$cls" "MB" lower "-"
  record "RSS after fill (info; Redis used_memory_rss)" "$cls" shim "$(rss_mb "$SHIM_PID")"
  stop_pid "$SHIM_PID"
  start_shim "$TMP/rec-shim" async
  row "restart after clean stop, 1M keys + 1M tasks" "$cls" "s" lower "abs<=3"
  record "restart after clean stop, 1M keys + 1M tasks" "$cls" shim "$(awk -v m="$SHIM_READY_MS" 'BEGIN{print m/1000}')"
  stop_pid "$SHIM_PID"

  start_redis "$TMP/rec-redis" everysec
  out=$(peer fill-redis fill-redis --jobs "$FILL_N")
  log "   redis: $FILL_N BullMQ jobs added in $(jget seconds <<<"$out") s, waiting $(jget waiting <<<"$out"), used_memory_rss $(jget used_memory_rss <<<"$out" | awk '{printf "%.1f", $1/1048576}') MB"
  record "memory, 1M ready tasks vs 1M BullMQ jobs" "$cls" peer "$(jget used_memory <<<"$out" | awk '{printf "%.1f", $1/1048576}')"
  record "RSS after fill (info; Redis used_memory_rss)" "$cls" peer "$(jget used_memory_rss <<<"$out" | awk '{printf "%.1f", $1/1048576}')"
  sleep 1.5  # let everysec reach the disk
  stop_pid "$REDIS_PID" KILL
  t0=$(now_ns)
  start_redis "$TMP/rec-redis" everysec
  record "restart after kill -9, 1M keys + 1M tasks" "$cls" peer "$(awk -v n="$(( $(now_ns) - t0 ))" 'BEGIN{print n/1e9}')"
  log "   redis after restart: $(redis-cli -s "$REDIS_SOCK" dbsize) keys"
  stop_pid "$REDIS_PID"
}

# ---------------------------------------------------------------- run
START=$(date +%s)
{
  echo "bench/compare/run.sh — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "shim:  $("$SHIM" --version 2>/dev/null || echo "$SHIM") ($SHIM)"
  echo "peer:  $(redis-server --version | cut -d' ' -f1-3), bullmq $(node -p 'require(process.argv[1]+"/node_modules/bullmq/package.json").version' "$HERE"), ioredis $(node -p 'require(process.argv[1]+"/node_modules/ioredis/package.json").version' "$HERE"), node $(node --version)"
  echo "runs:  $ROUNDS per side and workload, alternating shim/peer; table = best run of each side"
} | tee "$TMP/header.txt" >&2

run_class "async/everysec" async everysec
run_class "sync/always" sync always
[ "$WITH_RECOVERY" = 1 ] && run_recovery

# ---------------------------------------------------------------- table
echo
cat "$TMP/header.txt"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); wall time $(( $(date +%s) - START )) s"
echo
awk -F'\t' '
  NR == FNR { key = $1 SUBSEP $2 SUBSEP $3; v = $4 + 0
              if (!(key in seen)) { seen[key] = 1; best[key] = v; hi[key] = v; lo[key] = v; n[key] = 0 }
              if (v > hi[key]) hi[key] = v; if (v < lo[key]) lo[key] = v; n[key]++; next }
  { rows[++nr] = $0 }
  function fmt(v, unit) {
    if (unit ~ /\/s$/) return v >= 10000 ? sprintf("%.1fk", v / 1000) : sprintf("%.0f", v)
    if (unit == "ms") return sprintf("%.3f", v)
    if (unit == "s") return sprintf("%.2f", v)
    return sprintf("%.0f", v)
  }
  END {
    printf "%-44s %-15s %12s %12s %-7s %8s  %-24s %s\n", "workload", "class", "shim", "peer", "unit", "ratio", "target (shim/peer)", "result"
    for (i = 1; i <= nr; i++) {
      split(rows[i], f, "\t"); w = f[1]; c = f[2]; unit = f[3]; better = f[4]; tgt = f[5]
      ks = w SUBSEP c SUBSEP "shim"; kp = w SUBSEP c SUBSEP "peer"
      s = better == "higher" ? hi[ks] : lo[ks]; p = better == "higher" ? hi[kp] : lo[kp]
      hs = (ks in seen); hp = (kp in seen)
      ratio = (hs && hp && p > 0) ? sprintf("%.2f", s / p) : "-"
      res = "-"; tdesc = "-"
      if (tgt ~ /^>=/) { t = substr(tgt, 3) + 0; tdesc = ">= " t "x (higher is better)"; if (ratio != "-") res = (s / p >= t) ? "PASS" : "MISS" }
      else if (tgt ~ /^<=/) { t = substr(tgt, 3) + 0; tdesc = "<= " t "x (lower is better)"; if (ratio != "-") res = (s / p <= t) ? "PASS" : "MISS" }
      else if (tgt ~ /^abs<=/) { t = substr(tgt, 6) + 0; tdesc = "shim <= " t " " unit; if (hs) res = (s <= t) ? "PASS" : "MISS" }
      else tdesc = (better == "higher" ? "(higher is better)" : "(lower is better)")
      printf "%-44s %-15s %12s %12s %-7s %8s  %-24s %s\n", w, c, hs ? fmt(s, unit) : "-", hp ? fmt(p, unit) : "-", unit, ratio, tdesc, res
    }
  }' "$RAWTSV" "$ROWS"
echo
echo "all runs (workload, class, side, value):"
sort -t$'\t' -k1,1 -k2,2 -k3,3 -s "$RAWTSV" | awk -F'\t' '{ k = $1 " [" $2 "] " $3; a[k] = a[k] (a[k] == "" ? "" : ", ") $4; if (!(k in o)) { o[k] = ++n; ord[n] = k } } END { for (i = 1; i <= n; i++) print "  " ord[i] ": " a[ord[i]] }'
