#!/usr/bin/env bash
# External sort benchmark: outcore's sort_file against GNU sort (on the same numbers as text)
# and the `extsort` crate, each as a multiple of the two-pass I/O bound measured on the same
# disk in the same run (read + write the data twice with large sequential I/O, dd bs=8M with
# fdatasync, cache dropped before each read).
#
#   benches/external_sort.sh            # 4 GiB of u64 under a 1 GiB memory cap
#   N=134217728 TEXT_N=16777216 benches/external_sort.sh   # smaller
#   SKIP_EXTSORT=1 SKIP_TEXT=1 benches/external_sort.sh      # outcore and the bound only
#
# Needs root for the memory cap (MEMCAP, default ../shared/tools/memcap beside the
# repository). Big files go to $DATA (default target/extsort-bench, in the repository);
# numpy comes from $OUTCORE_PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-target/extsort-bench}
N=${N:-536870912}              # u64 elements for outcore and extsort (4 GiB)
TEXT_N=${TEXT_N:-67108864}     # numbers for the GNU sort comparison (text is slow)
CAP=${CAP:-1024}               # memory cap, MiB
MEM_MIB=${MEM_MIB:-768}        # budget given to each sorter, MiB
MEMCAP=${MEMCAP:-../shared/tools/memcap}
PY=${OUTCORE_PYTHON:-python3}
mkdir -p "$DATA"

cargo build --release -p outcore-cli >/dev/null 2>&1
EXTSORT_BIN=$(cargo bench -p outcore-bench --bench extsort_crate --no-run 2>&1 | grep -o 'target/release/deps/extsort_crate-[0-9a-f]*' | head -1)
OUTCORE=target/release/outcore

evict() { for f in "$@"; do dd if="$f" iflag=nocache count=0 status=none; done; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }

# Two-pass I/O bound for FILE: read it and write a copy, twice (copy of the copy).
iobound() {
  local f=$1 t0 t1
  sync; evict "$f"
  t0=$(now)
  dd if="$f" of="$DATA/io1" bs=8M conv=fdatasync status=none
  evict "$DATA/io1"
  dd if="$DATA/io1" of="$DATA/io2" bs=8M conv=fdatasync status=none
  t1=$(now)
  rm -f "$DATA/io1" "$DATA/io2"
  secs "$t0" "$t1"
}

# Runs a command under the cap; prints "seconds max_usage_mb".
capped() {
  local t0 t1 rep
  rep=$(mktemp)
  t0=$(now)
  MEMCAP_REPORT=$rep "$MEMCAP" "$CAP" -- "$@" > "$DATA/last.log" 2>&1 || { cat "$DATA/last.log" >&2; exit 1; }
  t1=$(now)
  echo "$(secs "$t0" "$t1") $(grep -o 'max_usage_mb=[0-9]*' "$rep" | cut -d= -f2) $(grep -o 'oom_kill=[0-9]*' "$rep" | cut -d= -f2)"
  rm -f "$rep"
}

echo "# $(date -u +%FT%TZ) $(uptime)"
IN=$DATA/u64-$N.npy
[ -f "$IN" ] || "$OUTCORE" gen --dtype u64 --dist uniform --count "$N" --out "$IN" --quiet
[ -f "$IN" ] || { echo "could not generate $IN" >&2; exit 1; }
BYTES=$(( N * 8 ))

# Warm the disk: write and delete twice the data, so the timed writes reuse freed blocks.
dd if=/dev/zero of="$DATA/warm" bs=8M count=$(( 2 * BYTES / (8 << 20) + 1 )) conv=fdatasync status=none
rm -f "$DATA/warm"

echo "## $N u64 ($(( BYTES >> 20 )) MiB), cap ${CAP} MiB, budget ${MEM_MIB} MiB"
B=$(iobound "$IN")
echo "two-pass I/O bound (dd):           $(printf %.2f "$B") s"

evict "$IN"; rm -f "$DATA/out.npy"
read -r T U K < <(capped "$OUTCORE" sort "$IN" "$DATA/out.npy" --memory ${MEM_MIB}MiB --tmp "$DATA")
echo "outcore sort_file:                  $(printf %.2f "$T") s  = $(ratio "$T" "$B") x bound  (max_usage ${U} MiB, oom_kill $K)"
grep -E "run formation|merge|runs" "$DATA/last.log" | sed 's/^/    /'
rm -f "$DATA/out.npy"

if [ "${SKIP_EXTSORT:-0}" != 1 ]; then
  evict "$IN"
  read -r T U K < <(capped "$EXTSORT_BIN" "$IN" "$DATA/out.raw" "$DATA" $(( MEM_MIB << 20 )))
  echo "extsort crate 0.5:                  $(printf %.2f "$T") s  = $(ratio "$T" "$B") x bound  (max_usage ${U} MiB, oom_kill $K)"
  sed 's/^/    /' "$DATA/last.log"
  rm -f "$DATA/out.raw"
fi

[ "${SKIP_TEXT:-0}" = 1 ] && { echo "# done $(date -u +%FT%TZ) $(uptime)"; exit 0; }

# GNU sort on the same numbers as text (a prefix of TEXT_N numbers), beside outcore on the
# same numbers in binary; each against the I/O bound of its own file.
SMALL=$DATA/u64-$N-first-$TEXT_N.npy
TXT=$DATA/u64-$N-first-$TEXT_N.txt
if [ ! -f "$TXT" ]; then
  "$PY" - "$IN" "$SMALL" "$TXT" "$TEXT_N" <<'PYEOF'
import sys, numpy as np
a = np.load(sys.argv[1], mmap_mode="r")[: int(sys.argv[4])]
np.save(sys.argv[2], np.ascontiguousarray(a))
with open(sys.argv[3], "w") as f:
    for i in range(0, len(a), 1 << 20):
        f.write("\n".join(map(str, a[i : i + (1 << 20)].tolist())))
        f.write("\n")
PYEOF
fi
TB=$(stat -c %s "$TXT")
echo "## first $TEXT_N of them: binary $(( TEXT_N * 8 >> 20 )) MiB, text $(( TB >> 20 )) MiB"
BS=$(iobound "$SMALL")
BT=$(iobound "$TXT")
echo "two-pass I/O bound, binary:         $(printf %.2f "$BS") s"
echo "two-pass I/O bound, text:           $(printf %.2f "$BT") s"
evict "$SMALL"; rm -f "$DATA/out-small.npy"
read -r T U K < <(capped "$OUTCORE" sort "$SMALL" "$DATA/out-small.npy" --memory ${MEM_MIB}MiB --tmp "$DATA")
echo "outcore sort_file (binary):         $(printf %.2f "$T") s  = $(ratio "$T" "$BS") x binary bound  (max_usage ${U} MiB)"
grep -E "runs|in memory" "$DATA/last.log" | sed 's/^/    /'
rm -f "$DATA/out-small.npy"
evict "$TXT"
read -r T U K < <(capped env LC_ALL=C sort -n -S ${MEM_MIB}M --parallel=2 -T "$DATA" -o "$DATA/out.txt" "$TXT")
echo "GNU sort -n (text):                 $(printf %.2f "$T") s  = $(ratio "$T" "$BT") x text bound, $(ratio "$T" "$BS") x binary bound  (max_usage ${U} MiB)"
rm -f "$DATA/out.txt"
echo "# done $(date -u +%FT%TZ) $(uptime)"
