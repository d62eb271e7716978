#!/usr/bin/env bash
# Scale benchmark (issue 15): `skip-action decide` on the 12,806-image config (6 bases × 100
# benchmarks × 128 agents, one repository), base check included, against a local Debian
# docker-registry, single-platform and per-platform (`runners:` with linux/amd64 + linux/arm64,
# 25,612 entries; present images are indexes of both platforms, as merge writes them: each child's
# entries annotated with the base entry merge verified them on; and, as `per-platform (plain)`, the
# same indexes without the annotations, as another tool writes them), in the states
#   A. every second tag present (the present children's bases are missing: nothing to check);
#   B. every base and half the children present (6,400 children checked);
#   C. all present (12,800 checked);
#   D. (per-platform) every per-platform tag pushed, nothing merged (25,600 per-platform
#      images checked against their parents' per-platform images).
# For each: seconds (best of 3), peak memory, decide's own count of requests, and the *floor*:
# curl fetching the manifests the check must read (every checked image's, and with indexes each
# platform's), at the same concurrency, in the same run — what the registry itself costs.
# Then the size of every output against GitHub's limits (state A).
#
#   benches/scale.sh [CONNECTIONS...]    (default 16; e.g. `benches/scale.sh 16 32 64`)
#
# Prints Markdown (also to benches/results/scale.md). The seed's one-repository-per-combination
# layout behind a token server is measured by
# `cargo test --release --test scale seed_layout -- --ignored --nocapture`.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
conns=("$@")
[ ${#conns[@]} -gt 0 ] || conns=(16)
use_bin
work=$(mktemp -d)
start_registry "$work/reg"
rows=()

# measure NAME DIR URLFILE: one table row per connection count.
measure() {
  local name=$1 dir=$2 urls=$3 n_urls
  n_urls=$(wc -l < "$urls")
  for c in "${conns[@]}"; do
    export SKIP_ACTION_MAX_CONNECTIONS=$c
    local t mem log floor ratio
    t=$(best_of 3 decide_in "$dir")
    mem=$(peak_mib bash -c "cd $dir && GITHUB_OUTPUT=$work/out2 RUNNER_TEMP=$work/tmp $bin decide --json")
    log=$(decide_log "$dir" | tr '\n' ' ' |
      sed -n 's/.*checked=\([0-9]*\).*manifests_read=\([0-9]*\).*stale=\([0-9]*\).*requests_get=\([0-9]*\) requests_head=\([0-9]*\).*/\1 checked, \3 stale; \4 GET, \5 HEAD/p')
    [ -n "$log" ] || log=$(decide_log "$dir" | tr '\n' ' ' |
      sed -n 's/.*checked=\([0-9]*\) manifests_read=\([0-9]*\).*/\1 checked, \2 images read/p')
    if [ "$n_urls" -gt 0 ]; then
      floor=$(best_of 3 curl_gets "$urls" "$c")
      abt=$(best_of 3 ab_gets "$(head -1 "$urls")" "$n_urls" "$c")
      ratio=$(printf '%.2f× / %.2f×' "$(echo "$t / $floor" | bc -l)" "$(echo "$t / $abt" | bc -l)")
      floor="$floor / $abt ($n_urls GETs)"
    else
      floor="—"; ratio="—"
    fi
    rows+=("| $name | $c | $t | $mem | $log | $floor | $ratio |")
    printf '%s\n' "${rows[-1]}" >&2
  done
  unset SKIP_ACTION_MAX_CONNECTIONS
}

for mode in single per-platform per-platform-plain; do
  dir=$work/$mode
  write_scale_config "$dir" "$REGISTRY/bench/$mode" "${mode%-plain}"
  tags_of "$dir" > "$work/tags-$mode"
  index=()
  [ "$mode" = per-platform-plain ] && index=(--index linux/amd64,linux/arm64)
  if [ "$mode" = per-platform ]; then
    # tag, parent name, parent tag: what merge's annotations name.
    (cd "$dir" && "$bin" hash --json) | python3 -c '
import json, sys
imgs = json.load(sys.stdin)["images"]
tag = {i["name"]: i["tag"] for i in imgs}
for i in imgs:
    for p in i["parents"]:
        print(i["tag"], p, tag[p])' > "$work/parents"
    index=(--index linux/amd64,linux/arm64 --parents "$work/parents")
  fi
  u=$work/urls-$mode
  # Each push records the manifests a check of those images reads (--urls): the floor's requests.
  awk 'NR % 2 == 0' "$work/tags-$mode" |
    python3 benches/registry_fixture.py "$REGISTRY" "bench/$mode" "${index[@]}" --urls "$u.a"
  : > "$work/none"
  measure "$mode: A. every second tag present" "$dir" "$work/none"
  cp "$work/out" "$work/out-A-$mode"; cp "$work/summary" "$work/summary-A-$mode"
  # B: the three missing bases pushed; every present child is now checked, and read.
  head -6 "$work/tags-$mode" | awk 'NR % 2 == 1' |
    python3 benches/registry_fixture.py "$REGISTRY" "bench/$mode" "${index[@]}" --urls "$u.b"
  cat "$u.a" "$u.b" > "$u.ab"
  measure "$mode: B. every base, half the children present" "$dir" "$u.ab"
  awk 'NR > 6 && NR % 2 == 1' "$work/tags-$mode" |
    python3 benches/registry_fixture.py "$REGISTRY" "bench/$mode" "${index[@]}" --urls "$u.c"
  cat "$u.ab" "$u.c" > "$u.all"
  measure "$mode: C. all present" "$dir" "$u.all"
done

# D: per-platform tags only (every platform job pushed, no merge ran), in a repository of its own.
dir=$work/split
write_scale_config "$dir" "$REGISTRY/bench/split" per-platform
tags_of "$dir" > "$work/tags-split"
python3 benches/registry_fixture.py "$REGISTRY" bench/split --per-platform linux/amd64,linux/arm64 --urls "$work/urls-split" < "$work/tags-split"
measure "per-platform: D. every per-platform tag, nothing merged" "$dir" "$work/urls-split"

mkdir -p benches/results
{
  echo "decide for 12,806 images (single) / 12,806 × 2 platforms (per-platform), one repository, base check included; local docker-registry ($(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null || echo '?')), $(nproc) cores, load average at the end $(load_avg)."
  echo "Floor: the manifests the check reads, fetched by curl (--parallel, every URL) and by ab (keep-alive, as many GETs of one manifest), as many at a time; ratio = decide's whole run / the floor."
  echo
  echo "| state | connections | decide, s | peak MiB | requests (decide's count) | floor: curl / ab, s | decide / floor (curl / ab) |"
  echo "|---|---:|---:|---:|---|---:|---:|"
  printf '%s\n' "${rows[@]}"
  echo
  for mode in single per-platform; do
    echo "Outputs, $mode, state A:"
    echo
    python3 - "$work/out-A-$mode" "$work/summary-A-$mode" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
outs = {}
for m in re.finditer(r"^([a-z_]+)<<(\S+)\n(.*?)\n\2$", text, re.S | re.M):
    outs[m.group(1)] = m.group(3)
print("| output | bytes | KiB |")
print("|---|---:|---:|")
for k, v in sorted(outs.items(), key=lambda kv: -len(kv[1]))[:6]:
    print("| `%s` | %d | %.1f |" % (k, len(v), len(v) / 1024))
total = sum(len(k) + len(v) for k, v in outs.items())
print("| **all outputs** | %d | %.1f |" % (total, total / 1024))
s = open(sys.argv[2]).read()
print("| step summary | %d | %.1f |" % (len(s), len(s) / 1024))
print()
PY
  done
} | tee benches/results/scale.md
