#!/usr/bin/env bash
# Fault injection against the outcore tool, at small sizes for CI:
#   1. `outcore gen` killed with SIGKILL at random moments
#   2. `outcore sort` killed with SIGKILL at random moments
#   3. a full disk (a small tmpfs) under `outcore gen` and `outcore sort`
#   4. `outcore sort` with more runs than the open-file limit (ulimit -n 64)
# After every fault the destination must be absent or complete and correct (checked against
# an independent reference: a complete run's bytes for the deterministic generator, numpy's
# np.sort for the sort), and temporary files must be recognisable and removed by the next run.
# Prints a summary table; exits non-zero on any violation. Needs root for the tmpfs mount.
#
#   KILLS=N     kills per program (default 20)
#   OUTCORE_PYTHON  python with numpy (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS=${KILLS:-20}
PY=${OUTCORE_PYTHON:-python3}

cargo build --release --quiet -p outcore-cli
GEN=(target/release/outcore gen)
SORT=(target/release/outcore sort)

work=$(mktemp -d "${TMPDIR:-/tmp}/outcore-faults.XXXXXX")
small="$work/small"
cleanup() {
  mountpoint -q "$small" 2>/dev/null && umount "$small"
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAULTS: FAIL: $*" >&2; exit 1; }
leftovers() { find "$1" -maxdepth 1 \( -name '*.outcore-tmp-*' -o -name '.outcore-sort-*' \) | wc -l; }
# random integer in [0, $1)
rnd() { "$PY" -c "import random,sys; print(random.randrange(int(sys.argv[1])))" "$1"; }
ms() { date +%s%3N; }

summary=()

# ---- 1. killed generation ------------------------------------------------------------------
mkdir -p "$work/gen"
# --force: a killed run may have completed, and the next one replaces its output.
GEN_ARGS=(--dtype u64 --dist uniform --count 16000000 --seed 7 --force)
t0=$(ms); "${GEN[@]}" "${GEN_ARGS[@]}" --out "$work/ref.npy" >/dev/null 2>&1; t1=$(ms)
gen_ms=$(( t1 - t0 + 50 ))
absent=0; complete=0; stale_seen=0
for i in $(seq 1 "$KILLS"); do
  rm -f "$work/gen/out.npy"
  "${GEN[@]}" "${GEN_ARGS[@]}" --out "$work/gen/out.npy" >/dev/null 2>&1 &
  pid=$!
  sleep "$(printf '0.%03d' "$(rnd "$gen_ms")")" 2>/dev/null || sleep 0.1
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -e "$work/gen/out.npy" ]; then
    cmp -s "$work/ref.npy" "$work/gen/out.npy" || fail "generation: killed run left a wrong file under the final name"
    complete=$((complete + 1))
  else
    absent=$((absent + 1))
  fi
  stale_seen=$((stale_seen + $(leftovers "$work/gen")))
done
# The next run in the same directory removes what the killed runs left.
"${GEN[@]}" "${GEN_ARGS[@]}" --out "$work/gen/out.npy" >/dev/null 2>&1 || fail "generation after kills failed"
cmp -s "$work/ref.npy" "$work/gen/out.npy" || fail "generation after kills differs"
[ "$(leftovers "$work/gen")" = 0 ] || fail "generation: stale temporary files survived the next run"
summary+=("outcore gen killed (SIGKILL, 0-${gen_ms} ms)|$KILLS|absent $absent, complete+identical $complete; $stale_seen temp files left by kills, all removed by the next run|none")

# ---- 2. killed external sort ---------------------------------------------------------------
mkdir -p "$work/sort" "$work/sort-tmp"
cp "$work/ref.npy" "$work/in.npy"
SORT_ARGS=("$work/in.npy" "$work/sort/out.npy" --memory 24MiB --tmp "$work/sort-tmp" --force)
t0=$(ms); "${SORT[@]}" "${SORT_ARGS[@]}" >/dev/null 2>&1 || fail "reference sort failed"; t1=$(ms)
sort_ms=$(( t1 - t0 + 50 ))
"$PY" -c "
import numpy as np, sys
a = np.load(sys.argv[1]); b = np.load(sys.argv[2])
assert b.dtype == a.dtype and b.shape == a.shape
assert np.array_equal(np.sort(a), b)
" "$work/in.npy" "$work/sort/out.npy" || fail "sort output differs from np.sort"
cp "$work/sort/out.npy" "$work/sorted-ref.npy"
absent=0; complete=0; stale_seen=0
for i in $(seq 1 "$KILLS"); do
  rm -f "$work/sort/out.npy"
  "${SORT[@]}" "${SORT_ARGS[@]}" >/dev/null 2>&1 &
  pid=$!
  d=$(rnd "$sort_ms"); sleep "$(( d / 1000 )).$(printf '%03d' $(( d % 1000 )))"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -e "$work/sort/out.npy" ]; then
    cmp -s "$work/sorted-ref.npy" "$work/sort/out.npy" || fail "sort: killed run left a wrong file under the final name"
    complete=$((complete + 1))
  else
    absent=$((absent + 1))
  fi
  stale_seen=$((stale_seen + $(leftovers "$work/sort") + $(leftovers "$work/sort-tmp")))
done
"${SORT[@]}" "${SORT_ARGS[@]}" >/dev/null 2>&1 || fail "sort after kills failed"
cmp -s "$work/sorted-ref.npy" "$work/sort/out.npy" || fail "sort after kills differs"
[ "$(leftovers "$work/sort")" = 0 ] && [ "$(leftovers "$work/sort-tmp")" = 0 ] \
  || fail "sort: stale temporary files survived the next run"
summary+=("outcore sort killed (SIGKILL, 0-${sort_ms} ms)|$KILLS|absent $absent, complete+identical $complete; $stale_seen temp files/dirs left by kills, all removed by the next run|none")

# ---- 3. full disk ---------------------------------------------------------------------------
mkdir -p "$small"
if mount -t tmpfs -o size=64m tmpfs "$small" 2>/dev/null; then
  if "${GEN[@]}" --dtype f64 --dist uniform --size 128MiB --out "$small/big.npy" >"$work/gen.err" 2>&1; then
    fail "generation onto a full disk succeeded"
  fi
  grep -qi "space\|disk" "$work/gen.err" || fail "generation: unclear full-disk message: $(cat "$work/gen.err")"
  [ -z "$(ls -A "$small")" ] || fail "generation left files on the full disk: $(ls -A "$small")"
  summary+=("outcore gen onto a 64 MiB tmpfs (128 MiB asked)|1|refused before writing: $(head -1 "$work/gen.err" | cut -c1-90)|none")

  # 128 MB input: output and runs cannot both fit in 64 MiB.
  if "${SORT[@]}" "$work/in.npy" "$small/sorted.npy" --memory 16MiB --tmp "$small" >"$work/sort.err" 2>&1; then
    fail "sort onto a full disk succeeded"
  fi
  grep -qi "space\|disk" "$work/sort.err" || fail "sort: unclear full-disk message: $(cat "$work/sort.err")"
  [ -z "$(ls -A "$small")" ] || fail "sort left files on the full disk: $(ls -A "$small")"
  cmp -s "$work/ref.npy" "$work/in.npy" || fail "sort changed its input"
  summary+=("outcore sort onto a 64 MiB tmpfs (128 MB input)|1|refused: $(grep -i 'space\|disk' "$work/sort.err" | head -1 | cut -c1-90)|none")
  umount "$small"
else
  echo "FAULTS: skipped the full-disk checks: cannot mount a tmpfs (needs root)"
fi

# ---- 4. open-file limit -----------------------------------------------------------------------
"${GEN[@]}" --dtype u32 --dist uniform --count 4000000 --seed 3 --out "$work/many.npy" >/dev/null 2>&1
( ulimit -n 64; "${SORT[@]}" "$work/many.npy" "$work/many-sorted.npy" --memory 64KiB --tmp "$work/sort-tmp" ) \
  >"$work/many.log" 2>&1 || fail "sort under ulimit -n 64 failed: $(tail -5 "$work/many.log")"
"$PY" -c "
import numpy as np, sys
a = np.load(sys.argv[1]); b = np.load(sys.argv[2])
assert np.array_equal(np.sort(a), b)
" "$work/many.npy" "$work/many-sorted.npy" || fail "sort under ulimit -n 64: wrong output"
runs=$(grep -oiE '[0-9]+ runs' "$work/many.log" | head -1 || true)
summary+=("outcore sort, 16 MB with 64 KiB budget, ulimit -n 64|1|completed (${runs:-runs: see log}), equal to np.sort|none")

echo
echo "| fault | times | observed | data lost |"
echo "|---|---|---|---|"
for row in "${summary[@]}"; do echo "| ${row//|/ | } |"; done
echo
echo "FAULTS: all checks passed"
