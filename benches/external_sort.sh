#!/usr/bin/env bash
# External sort benchmark: outcore's sort against the disk's two-pass I/O bound measured in
# the same run, with the `extsort` crate and GNU sort (on the same numbers as text) in the
# same rounds. Repeats ROUNDS rounds and reports the median with [min, max] of every figure.
#
#   benches/external_sort.sh                                      # 4 GiB u64, 1 GiB cap, 6 rounds
#   N=2147483648 CAP=2048 benches/external_sort.sh                # 16 GiB u64, 2 GiB cap
#   N=33554432 CAP=256 MEM_MIB=128 ROUNDS=2 TEXT_N=1048576 benches/external_sort.sh  # quick check
#   SKIP_EXTSORT=1 SKIP_TEXT=1 benches/external_sort.sh           # outcore and the bounds only
#
# Knobs: N (u64 elements, default 2^29 = 4 GiB), CAP (memory cgroup limit, MiB, default
# 1024), MEM_MIB (budget given to each sorter, MiB, default 3/4 of CAP), ROUNDS (default 6),
# READERS (concurrent readers in the overlapped bound, default 8),
# TEXT_N (numbers for the GNU sort comparison, default 2^26), SKIP_EXTSORT=1, SKIP_TEXT=1,
# DATA (directory for the big files, default target/extsort-bench), MEMCAP (default
# ../shared/tools/memcap beside the repository; needs root), OUTCORE_PYTHON (a python with
# numpy, default python3), KEEP_INPUT=1 (keep the inputs this run generated; by default they
# are deleted at the end, while inputs that already existed in DATA are reused and left alone).
#
# Free space: about 3x the input (input, plus either the bound's two copies or the sort's runs
# and output) and the text files (~2.6 times TEXT_N x 8 bytes, twice during the text part).
#
# What each round measures, each reader starting from a cold file (its pages evicted: fsync,
# then POSIX_FADV_DONTNEED through `dd iflag=nocache count=0`):
#
#   overlapped bound  Two passes, timed separately and summed. Pass 1: READERS (default 8)
#                     concurrent `dd bs=8M` read equal slices of the input (one stream does
#                     not reach this disk's read limit; see readall) while a writer started at
#                     the same moment writes a new file D1 of the same size (a 1 MiB random block,
#                     repeated: not the input's data, and not zeros) in four streams (one
#                     in a round's second measurement) with write-back started as it goes,
#                     as outcore writes (see WRITER), and
#                     fdatasyncs it (its start-up, ~20 ms of Python, is included); the
#                     pass ends when both have finished. Pass 2: the same with D1 as the
#                     source and a new D2 as the destination. The read and the write are
#                     independent, so each pass costs what the disk needs to read and write the
#                     data at once: the least a two-pass sort can cost (run formation reads the
#                     input while writing runs; the merge reads the runs while writing the
#                     output) on a disk that overlaps reads with writes. Like the dd copy
#                     bound, it runs outside the memory cap.
#   dd copy bound     Two passes, timed separately and summed: `dd if=INPUT of=C1 bs=8M
#                     conv=fdatasync`, then the same from C1 to C2. One stream per pass, each
#                     8 MiB block read and then written (writeback of earlier blocks proceeds
#                     in the background; the fdatasync waits for the rest). The yardstick of the
#                     earlier figures, kept beside the overlapped one.
#   outcore           `outcore sort INPUT OUT.npy --memory MEM_MIB --tmp DIR` under a memory
#                     cgroup limit of CAP MiB (memcap, which charges the page cache too): the
#                     wall time of the whole command, which returns once its output is synced.
#   extsort           The `extsort` crate (benches/extsort_crate.rs: segments of MEM_MIB bytes
#                     of items, rayon sort) under the same cap; it also syncs its output.
#   text part         The first TEXT_N numbers as a binary .npy and as decimal text: both bounds
#                     of each file, outcore on the binary, and `LC_ALL=C sort -n -S MEM_MIB
#                     --parallel=2` on the text followed by `sync -d` of its output, under the
#                     same cap.
#
# Each output is then verified outside the timing, by benches/check_u64.py (numpy, not outcore):
# sorted, and the same count and order-independent checksum as the input (sum and xor of a
# hash of each element); GNU sort's output by `sort -n -c` and its line count.
#
# Every round measures the overlapped bound first and last and keeps the faster (see
# step_obound); odd rounds run the dd bound before the sorters, even rounds after them (and
# the text part's bounds likewise), so that the machine's drift weighs on both sides. Ratios are taken within a round (sorter / bound of that round);
# the summary gives the median and [min, max] over the rounds of every time and ratio, and the
# largest cgroup peak (memcap's max_usage) of each sorter over the rounds. It also gives each
# sorter against the fastest overlapped bound of the whole run: the disk's write speed swings
# by 3x within minutes, and in some rounds both of the round's bound measurements caught it
# slow, so that a sorter "beat" its round's bound; the run's fastest bound is a cost the disk
# has been seen to need, so a ratio to it is never flattered by a slow moment. The disk is warmed
# first: twice the input written (non-zero data) and deleted, so that timed writes reuse
# blocks the disk has already written.
set -euo pipefail
export LC_ALL=C   # decimal points in times (bc, printf), byte order for GNU sort
cd "$(dirname "$0")/.."
DATA=${DATA:-target/extsort-bench}
N=${N:-536870912}              # u64 elements for outcore and extsort (4 GiB)
TEXT_N=${TEXT_N:-67108864}     # numbers for the GNU sort comparison (text is slow)
CAP=${CAP:-1024}               # memory cap, MiB
MEM_MIB=${MEM_MIB:-$(( CAP * 3 / 4 ))}   # budget given to each sorter, MiB
ROUNDS=${ROUNDS:-6}
READERS=${READERS:-8}          # concurrent readers in the overlapped bound
WSTREAMS=4                     # its writer's streams (see step_obound)
MEMCAP=${MEMCAP:-../shared/tools/memcap}
PY=${OUTCORE_PYTHON:-python3}
CHECK=benches/check_u64.py
(( ROUNDS >= 1 && N >= 1 && TEXT_N >= 1 )) || { echo "ROUNDS, N and TEXT_N must be at least 1" >&2; exit 2; }
(( TEXT_N <= N )) || TEXT_N=$N
[ -x "$MEMCAP" ] || { echo "no memcap at $MEMCAP (set MEMCAP)" >&2; exit 2; }
"$PY" -c 'import numpy' 2>/dev/null || { echo "$PY has no numpy (set OUTCORE_PYTHON)" >&2; exit 2; }
mkdir -p "$DATA"
WORK=$(mktemp -d "$DATA/run.XXXXXX")   # every temporary file of this run
CREATED=()                             # inputs generated by this run
BG=""                                  # background writers/readers of a bound pass
cleanup() {
  local rc=$?
  for p in $BG; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
  if [ "${KEEP_INPUT:-0}" != 1 ]; then
    for f in "${CREATED[@]}"; do rm -f "$f"; done
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log=$WORK/build.log
cargo build --release -p outcore-cli >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
if [ "${SKIP_EXTSORT:-0}" != 1 ]; then
  cargo bench -p outcore-bench --bench extsort_crate --no-run >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  EXTSORT_BIN=$(grep -o 'target/release/deps/extsort_crate-[0-9a-f]*' "$log" | head -1) ||
    { cat "$log" >&2; echo "no extsort_crate bench binary in cargo's output" >&2; exit 1; }
fi
OUTCORE=target/release/outcore

now() { echo "$EPOCHREALTIME"; }
secs() { echo "$2 - $1" | bc -l; }
ratio() { echo "scale=4; $1 / $2" | bc -l; }
f2() { printf %.2f "$1"; }
evict() { for f in "$@"; do dd if="$f" iflag=nocache count=0 status=none; done; }

# Waits (up to 30 s) until the disk holding DATA has done no I/O for a second. The file
# system here is mounted with `discard`: deleting the files of one step sends the disk
# trims that went on into the next, and a bound measured right after a sorter had deleted
# its output wrote at half speed or less (4 GiB in 13.7 s against 3.2 s). Every timed step
# starts from a quiet disk.
STAT=/sys/class/block/$(basename "$(df --output=source "$DATA" | tail -1)")/stat
settle() {
  local a b quiet=0 i
  sync
  [ -r "$STAT" ] || return 0
  for (( i = 0; i < 60 && quiet < 2; i++ )); do
    a=$(<"$STAT"); sleep 0.5; b=$(<"$STAT")
    if [ "$a" = "$b" ]; then quiet=$(( quiet + 1 )); else quiet=0; fi
  done
}
mib() { echo $(( $1 >> 20 )); }

# Per-round values, key -> space-separated list; the summary reads them.
declare -A V NAMES   # NAMES: key -> outcore's phase names, in order
put() { V[$1]+="$2 "; }

# Writes $2 bytes of non-zero data to a new file $1 and prints the seconds this took (from
# just before the file is created until its fdatasync has returned). It writes the way outcore
# does, the fastest way measured on this disk: the file reserved (posix_fallocate), then $3
# streams over equal ranges of it, each handing every 8 MiB written to the disk at once
# (sync_file_range) with two such chunks in flight, waiting for the oldest and dropping it
# from the page cache. Alone, four streams wrote 4 GiB faster than one (2.2 s against
# 3.0 s); beside eight readers, one let the reads through faster (a 4 GiB pass in 3.5 s
# against 3.7-3.9 s, alternated): a round measures its bound with each and keeps the faster.
# Plain buffered writes and one fdatasync at the end, the writer before this one, left the
# writing to the kernel's flusher and were 3-5x slower on some days
# (4 GiB alone: 7.3-12.9 s against 2.2-2.4 s this way, alternated, same hour; O_DIRECT in
# 8 MiB writes: 2.7-3.0 s), which made the bound a slow moment of the flusher instead of
# a limit of the disk.
WRITER='
import ctypes, os, sys, threading, time
path, size = sys.argv[1], int(sys.argv[2])
STREAMS, CHUNK, START, WAIT = int(sys.argv[3]), 8 << 20, 2, 7
libc = ctypes.CDLL(None, use_errno=True)
libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
def sfr(fd, off, n, flags):
    if libc.sync_file_range(fd, off, n, flags) != 0:
        raise OSError(ctypes.get_errno(), "sync_file_range")
block = memoryview(os.urandom(1 << 20) * 8)
t = time.perf_counter()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.posix_fallocate(fd, 0, size)
errors = []
def stream(lo, hi):
    try:
        off, pending = lo, []
        while off < hi or pending:
            if off < hi:
                n = os.pwrite(fd, block[: min(hi - off, CHUNK)], off)
                sfr(fd, off, n, START)
                pending.append((off, n))
                off += n
            if len(pending) > 2 or (off >= hi and pending):
                o, n = pending.pop(0)
                sfr(fd, o, n, WAIT)
                os.posix_fadvise(fd, o, n, os.POSIX_FADV_DONTNEED)
    except OSError as e:
        errors.append(e)
per = -(-size // STREAMS // CHUNK) * CHUNK
threads = [threading.Thread(target=stream, args=(lo, min(size, lo + per)))
           for lo in range(0, size, per)]
for x in threads: x.start()
for x in threads: x.join()
if errors: raise errors[0]
os.fdatasync(fd)
os.close(fd)
print(f"{time.perf_counter() - t:.6f}")
'

# Reads FILE to /dev/null with READERS concurrent `dd bs=8M` over equal slices of it, and
# prints the seconds until the last has finished. One `dd` stream is not this disk's read
# limit: with one request in flight at a time it read 0.6-1.3 GB/s where 8 streams read
# 2.3-2.9 GB/s (and a sort with several reads in flight beat a one-stream bound), so the
# bound reads with as many streams as it takes to reach the limit.
readall() {
  local f=$1 blocks per i t0
  blocks=$(( ($(stat -c %s "$f") + 8388607) / 8388608 ))
  per=$(( (blocks + READERS - 1) / READERS ))
  t0=$(now)
  for (( i = 0; i < READERS; i++ )); do
    dd if="$f" of=/dev/null bs=8M skip=$(( i * per )) count="$per" status=none &
  done
  wait
  secs "$t0" "$(now)"
}

# One pass of the overlapped bound: reads SRC (evicted) while writing DST of the same size.
# Sets P_WALL (seconds from the common start until both have finished), P_READ and P_WRITE
# (each process's own time, as reported by dd and by the writer).
opass() {
  local src=$1 dst=$2 size t0 t1 r w
  size=$(stat -c %s "$src")
  rm -f "$dst"; settle; evict "$src"
  t0=$(now)
  readall "$src" >"$WORK/read.log" &
  r=$!
  "$PY" -I -S -c "$WRITER" "$dst" "$size" "$WSTREAMS" >"$WORK/write.log" &
  w=$!
  BG="$r $w"
  wait "$r"; wait "$w"
  t1=$(now)
  BG=""
  P_WALL=$(secs "$t0" "$t1")
  P_READ=$(cat "$WORK/read.log")
  P_WRITE=$(cat "$WORK/write.log")
}

# The overlapped bound of FILE (see the header). Sets OB and OB_NOTE; records the read and
# write throughput of each pass under KEY.
obound() {
  local f=$1 key=$2 size p1 r1 w1
  size=$(stat -c %s "$f")
  opass "$f" "$WORK/d1"
  p1=$P_WALL r1=$P_READ w1=$P_WRITE
  opass "$WORK/d1" "$WORK/d2"
  rm -f "$WORK/d1" "$WORK/d2"
  OB=$(echo "$p1 + $P_WALL" | bc -l)
  OB_NOTE="$WSTREAMS-stream writer; pass 1 $(f2 "$p1") s: read $(f2 "$r1") s || write $(f2 "$w1") s; pass 2 $(f2 "$P_WALL") s: read $(f2 "$P_READ") s || write $(f2 "$P_WRITE") s"
  [ "${3:-}" = keep ] || put "$key.ob" "$OB"
  put "$key.ob_read_mbs" "$(echo "$size / 1000000 / $r1" | bc -l)"
  put "$key.ob_read_mbs" "$(echo "$size / 1000000 / $P_READ" | bc -l)"
  put "$key.ob_write_mbs" "$(echo "$size / 1000000 / $w1" | bc -l)"
  put "$key.ob_write_mbs" "$(echo "$size / 1000000 / $P_WRITE" | bc -l)"
}

# The dd copy bound of FILE (see the header). Sets SB and SB_NOTE.
sbound() {
  local f=$1 key=$2 t0 t1 p1 p2
  settle; evict "$f"
  t0=$(now)
  dd if="$f" of="$WORK/c1" bs=8M conv=fdatasync status=none
  t1=$(now); p1=$(secs "$t0" "$t1")
  settle; evict "$WORK/c1"
  t0=$(now)
  dd if="$WORK/c1" of="$WORK/c2" bs=8M conv=fdatasync status=none
  t1=$(now); p2=$(secs "$t0" "$t1")
  rm -f "$WORK/c1" "$WORK/c2"
  SB=$(echo "$p1 + $p2" | bc -l)
  SB_NOTE="pass 1 $(f2 "$p1") s, pass 2 $(f2 "$p2") s"
  put "$key.sb" "$SB"
}

# Runs a command under the cap. Sets T (seconds), U (cgroup peak, MiB), K (oom kills); the
# command's output is in $WORK/last.log.
capped() {
  local rep=$WORK/memcap.report t0 t1
  rm -f "$rep"
  settle
  t0=$(now)
  if ! MEMCAP_REPORT=$rep "$MEMCAP" "$CAP" -- "$@" >"$WORK/last.log" 2>&1; then
    echo "failed under the ${CAP} MiB cap: $*" >&2
    cat "$WORK/last.log" >&2
    exit 1
  fi
  t1=$(now)
  T=$(secs "$t0" "$t1")
  U=$(grep -o 'max_usage_mb=[0-9]*' "$rep" | tail -1 | cut -d= -f2)
  K=$(grep -o 'oom_kill=[0-9]*' "$rep" | tail -1 | cut -d= -f2)
}

# outcore's phases from its report ("run formation 3.92 s, final merge 7.24 s"), recorded
# under KEY.
phases() {
  local key=$1 name s notes="" runs
  runs=$(grep -o '[0-9]* runs, [0-9]* intermediate' "$WORK/last.log" | head -1 | cut -d' ' -f1) || true
  [ -n "$runs" ] && notes="$runs runs" || notes="in memory"
  while read -r name s; do
    notes+=", $name $(f2 "$s") s"
    [ -n "${V[$key.phase.$name]:-}" ] || NAMES[$key]+="$name "
    put "$key.phase.$name" "$s"
  done < <(awk '$NF == "MB/s" && $1 != "total" {
      name = $1; for (i = 2; i <= NF - 4; i++) name = name "_" $i; print name, $(NF - 3) }' "$WORK/last.log")
  PHASES=$notes
}

# Verifies a sorted u64 file against the input's checksum ("COUNT SUM XOR").
verify() {
  local file=$1 kind=$2 want=$3 what=$4 got t0
  t0=$(now)
  got=$("$PY" "$CHECK" "$file" "$kind")
  [ "$got" = "$want yes" ] || { echo "$what: the output did not verify: got '$got', want '$want yes'" >&2; exit 1; }
  VERIFIED="verified (sorted, same count and checksum as the input) in $(f2 "$(secs "$t0" "$(now)")") s"
}

echo "# $(date -u +%FT%TZ) $(uptime)"
echo "# $(uname -sr), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo);" \
  "outcore $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo '+changes');" \
  "cpu pressure: $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)"

IN=$DATA/u64-$N.npy
BYTES=$(( N * 8 ))
SMALL=$DATA/u64-$N-first-$TEXT_N.npy
TXT=$DATA/u64-$N-first-$TEXT_N.txt
need=$(( 2 * BYTES + (1 << 30) ))
[ -f "$IN" ] || need=$(( need + BYTES ))
[ "${SKIP_TEXT:-0}" = 1 ] || need=$(( need + (TEXT_N * 8 + TEXT_N * 21) * 2 ))
avail=$(df -B1 --output=avail "$DATA" | tail -1)
(( avail >= need )) || { echo "$DATA: $(mib "$avail") MiB free, this run needs about $(mib "$need") MiB" >&2; exit 1; }

if [ ! -f "$IN" ]; then
  CREATED+=("$IN")
  "$OUTCORE" gen --dtype u64 --dist uniform --count "$N" --out "$IN" --quiet >/dev/null
fi
[ -f "$IN" ] || { echo "could not generate $IN" >&2; exit 1; }
IN_SUM=$("$PY" "$CHECK" "$IN" npy | cut -d' ' -f1-3)

if [ "${SKIP_TEXT:-0}" != 1 ]; then
  if [ ! -f "$TXT" ] || [ ! -f "$SMALL" ]; then
    CREATED+=("$SMALL" "$TXT")
    "$PY" - "$IN" "$SMALL" "$TXT" "$TEXT_N" <<'PYEOF'
import sys, numpy as np
a = np.load(sys.argv[1], mmap_mode="r")[: int(sys.argv[4])]
np.save(sys.argv[2], np.ascontiguousarray(a))
with open(sys.argv[3], "w") as f:
    for i in range(0, len(a), 1 << 20):
        f.write("\n".join(map(str, a[i : i + (1 << 20)].tolist())))
        f.write("\n")
PYEOF
    sync
  fi
  SMALL_SUM=$("$PY" "$CHECK" "$SMALL" npy | cut -d' ' -f1-3)
fi

# Warm the disk: write and delete twice the data (non-zero, in case the disk treats zeros
# specially), so that the timed writes reuse blocks written before.
t0=$(now)
"$PY" -I -S -c "$WRITER" "$WORK/warm" $(( 2 * BYTES )) 4 >/dev/null
t1=$(now)
rm -f "$WORK/warm"; sync
echo "# disk warmed: $(mib $(( 2 * BYTES ))) MiB written and synced in $(f2 "$(secs "$t0" "$t1")") s, deleted"
echo "## $N u64 ($(mib "$BYTES") MiB), cap ${CAP} MiB, budget ${MEM_MIB} MiB, $ROUNDS rounds"

# The big file's overlapped bound is measured twice a round, before and after the sorters,
# and the round's bound is the faster: the disk's speed drifts within a round (one of the
# pair was up to 45% slower, mostly in its writes), and a bound is the least the work can
# cost, so a slow measurement must not flatter the sorters' ratios.
OB_FIRST=""
step_obound() {
  # The first measurement of a round writes with four streams, the second with one (see
  # WSTREAMS).
  [ -z "$OB_FIRST" ] && WSTREAMS=4 || WSTREAMS=1
  obound "$IN" big keep
  WSTREAMS=4
  echo "overlapped bound         $(f2 "$OB") s  ($OB_NOTE)"
  if [ -z "$OB_FIRST" ]; then
    OB_FIRST=$OB
  else
    put big.ob "$(echo "if ($OB < $OB_FIRST) $OB else $OB_FIRST" | bc -l)"
    echo "round's overlapped bound $(f2 "$(last big.ob)") s (the faster of the two)"
    OB_FIRST=""
  fi
}
step_sbound() {
  sbound "$IN" big
  echo "dd copy bound            $(f2 "$SB") s  ($SB_NOTE)"
}
step_outcore() {
  rm -f "$WORK/out.npy"; sync; evict "$IN"
  capped "$OUTCORE" sort "$IN" "$WORK/out.npy" --memory "${MEM_MIB}MiB" --tmp "$WORK" --quiet
  phases outcore
  put outcore.t "$T"; put outcore.peak "$U"; put outcore.oom "$K"
  verify "$WORK/out.npy" npy "$IN_SUM" outcore
  rm -f "$WORK/out.npy"
  echo "outcore sort             $(f2 "$T") s  (cgroup peak $U MiB, oom_kill $K; $PHASES); $VERIFIED"
}
step_extsort() {
  [ "${SKIP_EXTSORT:-0}" = 1 ] && return 0
  rm -f "$WORK/out.raw"; sync; evict "$IN"
  capped "$EXTSORT_BIN" "$IN" "$WORK/out.raw" "$WORK" $(( MEM_MIB << 20 ))
  put extsort.t "$T"; put extsort.peak "$U"; put extsort.oom "$K"
  verify "$WORK/out.raw" raw "$IN_SUM" extsort
  rm -f "$WORK/out.raw"
  echo "extsort crate 0.5        $(f2 "$T") s  (cgroup peak $U MiB, oom_kill $K); $VERIFIED"
}
step_text_bounds() {
  obound "$SMALL" small
  echo "overlapped bound, binary $(f2 "$OB") s  ($OB_NOTE)"
  obound "$TXT" text
  echo "overlapped bound, text   $(f2 "$OB") s  ($OB_NOTE)"
  sbound "$SMALL" small
  echo "dd copy bound, binary    $(f2 "$SB") s  ($SB_NOTE)"
  sbound "$TXT" text
  echo "dd copy bound, text      $(f2 "$SB") s  ($SB_NOTE)"
}
step_text_outcore() {
  rm -f "$WORK/out-small.npy"; sync; evict "$SMALL"
  capped "$OUTCORE" sort "$SMALL" "$WORK/out-small.npy" --memory "${MEM_MIB}MiB" --tmp "$WORK" --quiet
  phases small_outcore
  put small_outcore.t "$T"; put small_outcore.peak "$U"; put small_outcore.oom "$K"
  verify "$WORK/out-small.npy" npy "$SMALL_SUM" "outcore (binary prefix)"
  rm -f "$WORK/out-small.npy"
  echo "outcore sort, binary     $(f2 "$T") s  (cgroup peak $U MiB, oom_kill $K; $PHASES); $VERIFIED"
}
step_text_gnu() {
  local lines
  rm -f "$WORK/out.txt"; sync; evict "$TXT"
  capped sh -c 'sort -n -S "$1" --parallel=2 -T "$2" -o "$3" "$4" && sync -d "$3"' \
    sh "${MEM_MIB}M" "$WORK" "$WORK/out.txt" "$TXT"
  put gnu.t "$T"; put gnu.peak "$U"; put gnu.oom "$K"
  sort -n -c "$WORK/out.txt" || { echo "GNU sort: output not sorted" >&2; exit 1; }
  lines=$(wc -l <"$WORK/out.txt")
  [ "$lines" = "$TEXT_N" ] || { echo "GNU sort: $lines lines, want $TEXT_N" >&2; exit 1; }
  rm -f "$WORK/out.txt"
  echo "GNU sort -n, text        $(f2 "$T") s  (cgroup peak $U MiB, oom_kill $K); verified (sorted, $lines lines)"
}

# The last value recorded under a key; rput KEY A B records A / B (their last values) under
# KEY and appends it to LINE.
last() { local a=(${V[$1]}); echo "${a[-1]}"; }
rput() {
  local r
  r=$(ratio "$(last "$2")" "$(last "$3")")
  put "$1" "$r"
  LINE+="$(printf %.2f "$r")$4"
}

for (( round = 1; round <= ROUNDS; round++ )); do
  if (( round % 2 )); then
    steps="obound sbound outcore extsort obound"; tsteps="text_bounds text_outcore text_gnu"; order="dd bound first"
  else
    steps="obound extsort outcore sbound obound"; tsteps="text_gnu text_outcore text_bounds"; order="sorters first"
  fi
  echo "### round $round/$ROUNDS ($order), $(date -u +%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
  for s in $steps; do "step_$s"; done
  LINE="outcore "
  rput r.outcore.ob outcore.t big.ob " x overlapped bound, "
  rput r.outcore.sb outcore.t big.sb " x dd copy bound"
  if [ "${SKIP_EXTSORT:-0}" != 1 ]; then
    LINE+="; extsort "
    rput r.extsort.ob extsort.t big.ob " x overlapped, "
    rput r.extsort.sb extsort.t big.sb " x dd copy"
  fi
  echo "ratios: $LINE"
  if [ "${SKIP_TEXT:-0}" != 1 ]; then
    echo "#### first $TEXT_N numbers: binary $(mib $(( TEXT_N * 8 ))) MiB, text $(mib "$(stat -c %s "$TXT")") MiB"
    for s in $tsteps; do "step_$s"; done
    LINE="outcore (binary) "
    rput r.small_outcore.ob small_outcore.t small.ob " x its overlapped bound, "
    rput r.small_outcore.sb small_outcore.t small.sb " x dd copy; GNU sort "
    rput r.gnu.ob gnu.t text.ob " x text overlapped bound, "
    rput r.gnu.sb gnu.t text.sb " x text dd copy, "
    rput r.gnu.obbin gnu.t small.ob " x binary overlapped bound"
    echo "ratios: $LINE"
  fi
done

# median [min, max] of a key's values
mmm() {
  tr ' ' '\n' <<<"${V[$1]}" | grep . | sort -g | awk '{ a[NR] = $1 }
    END { m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
          printf "%9.2f  [%.2f, %.2f]", m, a[1], a[NR] }'
}
maxof() { tr ' ' '\n' <<<"${V[$1]}" | grep . | sort -g | tail -1; }
sumof() { tr ' ' '\n' <<<"${V[$1]}" | grep . | paste -sd+ | bc; }
row() { [ -n "${V[$1]:-}" ] && printf '%-44s %s %s\n' "$2" "$(mmm "$1")" "$3"; return 0; }
peak() {
  [ -n "${V[$1.peak]:-}" ] || return 0
  printf '%-44s %9s MiB (cap %s MiB), oom_kill total %s; per round: %s\n' "$2 cgroup peak, max" \
    "$(maxof "$1.peak")" "$CAP" "$(sumof "$1.oom")" "${V[$1.peak]% }"
}
phase_rows() {
  local k
  for k in ${NAMES[$1]:-}; do row "$1.phase.$k" "  $k" s; done
}

# Against the fastest bound of the whole sitting: the least two passes have been shown to
# cost on this disk in this run, so no round's ratio is flattered by a bound that caught the
# disk in a slow moment (in some rounds both of a round's measurements did, and a sorter
# "beat" its round's bound).
best_ob=$(tr ' ' '\n' <<<"${V[big.ob]}" | grep . | sort -g | head -1)
for k in outcore extsort; do
  for t in ${V[$k.t]:-}; do put "r.$k.best" "$(ratio "$t" "$best_ob")"; done
done

echo
echo "## summary, $ROUNDS rounds: $N u64 ($(mib "$BYTES") MiB), cap ${CAP} MiB, budget ${MEM_MIB} MiB; median [min, max]"
row big.ob "overlapped bound" s
row big.ob_read_mbs "  read during a pass (both passes)" MB/s
row big.ob_write_mbs "  write during a pass (both passes)" MB/s
row big.sb "dd copy bound" s
row outcore.t "outcore sort" s
phase_rows outcore
row r.outcore.ob "outcore / overlapped bound" x
row r.outcore.sb "outcore / dd copy bound" x
row r.outcore.best "outcore / sitting's fastest bound ($(f2 "$best_ob") s)" x
peak outcore "outcore"
row extsort.t "extsort crate 0.5" s
row r.extsort.ob "extsort / overlapped bound" x
row r.extsort.sb "extsort / dd copy bound" x
row r.extsort.best "extsort / sitting's fastest bound" x
peak extsort "extsort"
if [ "${SKIP_TEXT:-0}" != 1 ]; then
  echo "### first $TEXT_N numbers: binary $(mib $(( TEXT_N * 8 ))) MiB, text $(mib "$(stat -c %s "$TXT")") MiB"
  row small.ob "overlapped bound, binary" s
  row small.sb "dd copy bound, binary" s
  row text.ob "overlapped bound, text" s
  row text.sb "dd copy bound, text" s
  row small_outcore.t "outcore sort, binary" s
  row r.small_outcore.ob "outcore / its overlapped bound" x
  row r.small_outcore.sb "outcore / its dd copy bound" x
  peak small_outcore "outcore (binary prefix)"
  row gnu.t "GNU sort -n, text" s
  row r.gnu.ob "GNU sort / text overlapped bound" x
  row r.gnu.sb "GNU sort / text dd copy bound" x
  row r.gnu.obbin "GNU sort / binary overlapped bound" x
  peak gnu "GNU sort"
fi
echo "# done $(date -u +%FT%TZ) $(uptime)"
