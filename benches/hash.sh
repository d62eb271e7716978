#!/usr/bin/env bash
# Hashing benchmark: skip-action vs the hand-written shell pipeline vs @actions/glob hashFiles,
# against the machine's SHA-256 limit (openssl over the same bytes, split over the cores).
#
#   benches/hash.sh [FILES] [TOTAL_MIB]     (default 20000 files, 1024 MiB)
#
# Prints a Markdown table (also written to benches/results/hash.md). Page cache warm.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
files=${1:-20000}
mib=${2:-1024}
work=benches/work/tree-$files-$mib
cores=$(nproc)

cargo build --release --quiet
bin=$PWD/target/release/skip-action

if [ ! -f "$work/.done" ]; then
  rm -rf "$work" && mkdir -p "$work/ctx"
  python3 benches/gen_tree.py "$work/ctx" "$files" $((mib * 1024 * 1024))
  touch "$work/.done"
fi
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

if [ ! -d benches/node_modules/@actions/glob ]; then
  (cd benches && npm install --silent --no-audit --no-fund @actions/glob@0.5.0 >/dev/null)
fi

bytes=$(find "$work/ctx" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
find "$work/ctx" -type f -print0 | xargs -0 cat > /dev/null   # warm the page cache

ours() { (cd "$work" && "$bin" hash); }
shell_pipeline() { (cd "$work/ctx" && find . -type f | sort | xargs cat | sha256sum | cut -c1-12); }
hashfiles() { node benches/hashfiles.js "$PWD/$work/ctx"; }
openssl_split() {
  # The SHA-256 limit: every byte through openssl, one stream per core.
  find "$work/ctx" -type f | sort > "$work/list"
  split -n "l/$cores" "$work/list" "$work/part."
  for p in "$work"/part.*; do (xargs cat < "$p" | openssl dgst -sha256 >/dev/null) & done
  wait
  rm -f "$work"/part.*
}

t_ours=$(best_of 5 ours)
t_shell=$(best_of 3 shell_pipeline)
t_glob=$(best_of 1 hashfiles)
t_ssl=$(best_of 3 openssl_split)
# The pure compute limit, no file I/O: openssl's in-memory SHA-256 speed on every core.
speed_k=$(openssl speed -seconds 3 -bytes 1048576 -multi "$cores" -evp sha256 2>/dev/null | awk '/^sha256/ {v=$NF} END {sub(/k$/,"",v); print v}')
t_speed=$(echo "$bytes / ($speed_k * 1000)" | bc -l)

gib=$(echo "$bytes / 1073741824" | bc -l)
mkdir -p benches/results
{
  echo "| tool | seconds | GiB/s | vs skip-action |"
  echo "|---|---:|---:|---:|"
  for row in "skip-action hash:$t_ours" "find \\| sort \\| xargs cat \\| sha256sum:$t_shell" "@actions/glob hashFiles:$t_glob" "openssl dgst -sha256 over the files, split over $cores cores:$t_ssl" "openssl speed, in memory, $cores cores (compute bound):$(printf '%.3f' "$t_speed")"; do
    name=${row%%:*} t=${row##*:}
    printf '| %s | %s | %.2f | %.2f× |\n' "$name" "$t" "$(echo "$gib / $t" | bc -l)" "$(echo "$t / $t_ours" | bc -l)"
  done
  echo
  printf 'Tree: %d files, %.2f GiB, %d cores, page cache warm. skip-action runs at %.0f %% of openssl over the same files split over the cores, and %.0f %% of openssl'"'"'s in-memory speed; the shell pipeline is %.1f× and hashFiles %.1f× slower. Load average at the end: %s.\n' \
    "$files" "$gib" "$cores" "$(echo "100 * $t_ssl / $t_ours" | bc -l)" "$(echo "100 * $t_speed / $t_ours" | bc -l)" "$(echo "$t_shell / $t_ours" | bc -l)" "$(echo "$t_glob / $t_ours" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
} | tee benches/results/hash.md
