#!/usr/bin/env bash
# Hashing a tree of many small files: `skip-action hash` over N files (default 200,000, a few
# bytes each, 1,000 per directory) in a temp dir, removed on exit. Cold run (just after the files
# were written) and best of 3 warm runs, with peak memory. Prints Markdown (also written to
# benches/results/tree200k.md).
#
#   benches/tree200k.sh [FILES]
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
files=${1:-200000}

cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/skip-action
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/ctx"
python3 - "$work/ctx" "$files" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%d.txt" % i), "w") as f:
        f.write("file %d\n" % i)
PY
cat > "$work/skip-action.yml" <<YML
version: 1
repository: localhost:5000/bench
images:
  all:
    dockerfile: Dockerfile
    context: ctx
    tag: all-{hash}
YML
printf 'FROM scratch\nCOPY . /\n' > "$work/Dockerfile"

hash_once() { (cd "$work" && "$bin" hash >/dev/null); }
s=$(date +%s.%N); hash_once; e=$(date +%s.%N)
t_cold=$(printf '%.3f' "$(echo "$e - $s" | bc -l)")
t_warm=$(best_of 3 hash_once)
mem=$( { /usr/bin/time -f '%M' bash -c "cd $work && $bin hash >/dev/null"; } 2>&1 | tail -1)

mkdir -p benches/results
{
  echo "| hash of $files small files ($(nproc) cores) | seconds |"
  echo "|---|---:|"
  echo "| first run, right after writing the files | $t_cold |"
  echo "| best of 3 | $t_warm |"
  echo
  printf 'Peak memory: %d MiB.\n' "$((mem / 1024))"
} | tee benches/results/tree200k.md
