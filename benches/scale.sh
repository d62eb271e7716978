#!/usr/bin/env bash
# Scale benchmark (issue 15): `skip-action decide` on the 12,806-image config of benches/decide.sh
# (6 bases × 100 benchmarks × 128 agents, one repository) against a local docker-registry with
# every second tag present, through $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY as on a runner:
# wall time (best of 3), peak memory, and the size of every output and of the summary, against
# GitHub's limits (1 MB per output, 1 MiB for a step's outputs together). Prints Markdown (also
# to benches/results/scale.md). The seed's one-repository-per-combination layout behind a token
# server is measured by `cargo test --release --test scale seed_layout -- --ignored --nocapture`.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
cargo build --release --quiet
bin=$PWD/target/release/skip-action
work=$(mktemp -d)
start_registry "$work/reg"

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
(cd "$work/big" && "$bin" hash --json) | python3 -c 'import json,sys; [print(i["tag"]) for i in json.load(sys.stdin)["images"]]' > "$work/tags"
n=$(wc -l < "$work/tags")
awk 'NR % 2 == 0' "$work/tags" | python3 benches/registry_fixture.py "$REGISTRY" bench/big

run() {
  rm -f "$work/out" "$work/summary"
  (cd "$work/big" && GITHUB_OUTPUT=$work/out GITHUB_STEP_SUMMARY=$work/summary RUNNER_TEMP=$work/tmp "$bin" decide)
}
mkdir -p "$work/tmp"
t=$(best_of 3 run)
mem=$( { /usr/bin/time -f '%M' bash -c "cd $work/big && GITHUB_OUTPUT=$work/out2 GITHUB_STEP_SUMMARY=$work/summary2 RUNNER_TEMP=$work/tmp $bin decide >/dev/null"; } 2>&1 | tail -1)
run >/dev/null

mkdir -p benches/results
{
  printf 'decide for %d images in one repository, every second tag present: %ss (best of 3), peak memory %d MiB, load average %s.\n\n' \
    "$n" "$t" "$((mem / 1024))" "$(cut -d' ' -f1 /proc/loadavg)"
  python3 - "$work/out" "$work/summary" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
outs = {}
for m in re.finditer(r"^([a-z_]+)<<(\S+)\n(.*?)\n\2$", text, re.S | re.M):
    outs[m.group(1)] = m.group(3)
print("| output | bytes | KiB |")
print("|---|---:|---:|")
for k, v in sorted(outs.items(), key=lambda kv: -len(kv[1])):
    print("| `%s` | %d | %.1f |" % (k, len(v), len(v) / 1024))
total = sum(len(k) + len(v) for k, v in outs.items())
print("| **all outputs** | %d | %.1f |" % (total, total / 1024))
s = open(sys.argv[2]).read()
print("| step summary | %d | %.1f |" % (len(s), len(s) / 1024))
assert max(len(v) for v in outs.values()) <= 512 * 1024 and total <= 1024 * 1024, "over GitHub's limits"
PY
} | tee benches/results/scale.md
