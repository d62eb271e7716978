#!/usr/bin/env bash
# What decide's base check costs (is every image that would be reused built on its parents'
# current push?): whole `skip-action decide` runs against a local registry (Debian
# docker-registry), for
#   - a 50-image DAG of 5 levels (1 + 3 + 6 + 15 + 25 images, one repository), all present;
#   - the 12,806-image scale config of benches/decide.sh (6 bases × 100 × 128), half present
#     (as in decide.sh) and all present (every image with a parent is checked).
# Reports seconds (best of 3), peak memory and the manifests read (GETs), from decide's own
# `base check` log line. Prints Markdown (also to benches/results/base_check.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
cargo build --release --quiet
bin=$PWD/target/release/skip-action
work=$(mktemp -d)
start_registry "$work/reg"

tags_of() { (cd "$1" && "$bin" hash --json) | python3 -c 'import json,sys; [print(i["tag"]) for i in json.load(sys.stdin)["images"]]'; }
run_decide() { (cd "$1" && GITHUB_OUTPUT=$work/out "$bin" decide --json >/dev/null); }
reads_of() {
  (cd "$1" && GITHUB_OUTPUT=$work/out SKIP_ACTION_LOG=info "$bin" decide --json 2>&1 >/dev/null) |
    sed 's/\x1b\[[0-9;]*m//g' |
    sed -n 's/.*base check checked=\([0-9]*\) manifests_read=\([0-9]*\).*/\1 images checked, \2 manifests read/p' | head -1
}
mem_of() { { /usr/bin/time -f '%M' bash -c "cd $1 && GITHUB_OUTPUT=$work/out $bin decide --json >/dev/null"; } 2>&1 | tail -1; }

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
t50=$(best_of 3 run_decide "$work/dag50")
r50=$(reads_of "$work/dag50")
m50=$(mem_of "$work/dag50")

# --- 12,806 images (the config of benches/decide.sh) ---
mkdir -p "$work/big"
cat > "$work/big/skip-action.yml" <<YML
version: 1
repository: $REGISTRY/bench/big
images:
  base:
    dockerfile: Dockerfile.base
    matrix:
      distro: [d0, d1, d2, d3, d4, d5]
    tag: "base-{variant}-{hash}"
  app:
    from: "base/{distro}"
    dockerfile: Dockerfile.app
    matrix:
      bench: [$(seq -s, 1 100)]
      agent: [$(seq -s, 1 128)]
      include:
$(for a in $(seq 1 128); do echo "        - { agent: $a, distro: d$((a % 6)) }"; done)
    tag: "{bench}-{agent}-{hash}"
YML
printf 'FROM scratch\nARG distro\n' > "$work/big/Dockerfile.base"
printf 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG bench\nARG agent\n' > "$work/big/Dockerfile.app"
tags_of "$work/big" > "$work/tagsbig"
n_big=$(wc -l < "$work/tagsbig")
# Every other line, as in decide.sh: that puts the present children on the three absent bases,
# so nothing is checked (they build anyway).
awk 'NR % 2 == 0' "$work/tagsbig" | python3 benches/registry_fixture.py "$REGISTRY" bench/big
t_half0=$(best_of 3 run_decide "$work/big")
r_half0=$(reads_of "$work/big")
m_half0=$(mem_of "$work/big")
# Every base present, half the children (6,400 checked).
head -6 "$work/tagsbig" | python3 benches/registry_fixture.py "$REGISTRY" bench/big
t_half=$(best_of 3 run_decide "$work/big")
r_half=$(reads_of "$work/big")
m_half=$(mem_of "$work/big")
awk 'NR % 2 == 1' "$work/tagsbig" | python3 benches/registry_fixture.py "$REGISTRY" bench/big
t_all=$(best_of 3 run_decide "$work/big")
r_all=$(reads_of "$work/big")
m_all=$(mem_of "$work/big")

mkdir -p benches/results
{
  echo "| decide, base check included | images | seconds | peak MiB | base check |"
  echo "|---|---:|---:|---:|---|"
  echo "| 5-level DAG, all present | $n50 | $t50 | $((m50 / 1024)) | $r50 |"
  echo "| scale config, half present (as in decide.sh: the present children's bases are missing) | $n_big | $t_half0 | $((m_half0 / 1024)) | $r_half0 |"
  echo "| scale config, every base and half the children present | $n_big | $t_half | $((m_half / 1024)) | $r_half |"
  echo "| scale config, all present | $n_big | $t_all | $((m_all / 1024)) | $r_all |"
  echo
  echo "Load average at the end: $(cut -d' ' -f1 /proc/loadavg)."
} | tee benches/results/base_check.md
