#!/usr/bin/env bash
# What decide's base check costs (is every image that would be reused built on its parents'
# current push?): whole `skip-action decide` runs against a local registry (Debian
# docker-registry) on a 50-image DAG of 5 levels (1 + 3 + 6 + 15 + 25 images, one repository),
# all present. Reports seconds (best of 3), peak memory and decide's own account of its reads.
# The check at scale (12,806 images, single- and per-platform, three states, with the peer
# floor) is benches/scale.sh. Prints Markdown (also to benches/results/base_check.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
use_bin
work=$(mktemp -d)
start_registry "$work/reg"

reads_of() {
  decide_log "$1" | tr '\n' ' ' |
    sed -n 's/.*checked=\([0-9]*\) manifests_read=\([0-9]*\).*requests_get=\([0-9]*\).*/\1 images checked, \3 manifest GETs/p'
}

# --- 50 images, 5 levels ---
mkdir -p "$work/dag50"
python3 - "$REGISTRY" > "$work/dag50/skip-action.yml" <<'PY'
import sys
print(f"version: 1\nrepository: {sys.argv[1]}/bench/dag50\nimages:")
print("  l0: { dockerfile: Dockerfile.root, tag: 'l0-{hash}' }")
prev = ["l0"]
for level, n in [(1, 3), (2, 6), (3, 15), (4, 25)]:
    cur = [f"l{level}-{i}" for i in range(1, n + 1)]
    for i, name in enumerate(cur):
        print(f"  {name}: {{ from: {prev[i % len(prev)]}, dockerfile: Dockerfile.child, "
              f"args: {{ N: '{name}' }}, tag: '{name}-{{hash}}' }}")
    prev = cur
PY
printf 'FROM scratch\nCOPY root.txt /\n' > "$work/dag50/Dockerfile.root"
echo root > "$work/dag50/root.txt"
printf 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG N\n' > "$work/dag50/Dockerfile.child"
tags_of "$work/dag50" > "$work/tags50"
n50=$(wc -l < "$work/tags50")
python3 benches/registry_fixture.py "$REGISTRY" bench/dag50 < "$work/tags50"
t50=$(best_of 3 decide_in "$work/dag50")
r50=$(reads_of "$work/dag50")
m50=$(peak_mib bash -c "cd $work/dag50 && GITHUB_OUTPUT=$work/out RUNNER_TEMP=$work/tmp $bin decide --json")

mkdir -p benches/results
{
  echo "| decide, base check included | images | seconds | peak MiB | base check |"
  echo "|---|---:|---:|---:|---|"
  echo "| 5-level DAG, all present | $n50 | $t50 | $m50 | $r50 |"
  echo
  echo "Load average at the end: $(load_avg). At scale: benches/scale.sh."
} | tee benches/results/base_check.md
