#!/usr/bin/env bash
# Probe benchmark: `skip-action decide` against a local registry (Debian docker-registry) vs
#   - a `docker manifest inspect` loop, a `skopeo inspect` loop (the hand-written shell's way),
#   - one curl reusing one connection for every HEAD (the floor for one-by-one probing),
# for 200 existing + 200 missing tags. decide at 12,806 images is benches/scale.sh. Prints
# Markdown (also to benches/results/decide.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
use_bin
work=$(mktemp -d)
start_registry "$work/reg"

# --- 400 images: 200 present, 200 missing ---
mkdir -p "$work/p400"
cat > "$work/p400/skip-action.yml" <<YML
version: 1
repository: $REGISTRY/bench/p400
images:
  app:
    matrix:
      n: [$(seq -s, 1 400)]
    tag: "{variant}-{hash}"
YML
printf 'FROM scratch\nARG n\n' > "$work/p400/Dockerfile"
tags_of "$work/p400" > "$work/tags400"
head -200 "$work/tags400" | python3 benches/registry_fixture.py "$REGISTRY" bench/p400

decide400() { (cd "$work/p400" && GITHUB_OUTPUT=$work/out400 "$bin" decide --json); }
decide400_head() { (cd "$work/p400" && GITHUB_OUTPUT=$work/out400 "$bin" decide --json --probe head); }
decide400 > "$work/plan400.json"
built=$(python3 -c 'import json,sys; print(sum(1 for e in json.load(open(sys.argv[1])) if e["need_build"]))' "$work/plan400.json")
[ "$built" = 200 ] || { echo "decide found $built to build, expected 200" >&2; exit 1; }
decide400_head > "$work/plan400h.json"
built=$(python3 -c 'import json,sys; print(sum(1 for e in json.load(open(sys.argv[1])) if e["need_build"]))' "$work/plan400h.json")
[ "$built" = 200 ] || { echo "decide --probe head found $built to build, expected 200" >&2; exit 1; }

curl_one_conn() {
  local args=()
  while read -r t; do args+=(-o /dev/null -I -H "Accept: application/vnd.oci.image.manifest.v1+json" "http://$REGISTRY/v2/bench/p400/manifests/$t"); done < "$work/tags400"
  curl -s "${args[@]}" || true
}
docker_loop() { while read -r t; do docker manifest inspect --insecure "$REGISTRY/bench/p400:$t" >/dev/null 2>&1 || true; done < "$work/tags400"; }
skopeo_loop() { while read -r t; do skopeo inspect --tls-verify=false --raw "docker://$REGISTRY/bench/p400:$t" >/dev/null 2>&1 || true; done < "$work/tags400"; }

t_ours=$(best_of 5 decide400)
t_head=$(best_of 5 decide400_head)
t_curl=$(best_of 3 curl_one_conn)
t_skopeo=$(best_of 1 skopeo_loop)
t_docker=$(best_of 1 docker_loop)

mkdir -p benches/results
{
  echo "| probing 400 tags (200 present, 200 missing) | seconds | vs skip-action |"
  echo "|---|---:|---:|"
  for row in "skip-action decide (whole run, incl. hashing; one tags/list):$t_ours" "skip-action decide --probe head (400 HEADs, 16 connections):$t_head" "curl, one connection, 400 HEADs:$t_curl" "skopeo inspect loop:$t_skopeo" "docker manifest inspect loop:$t_docker"; do
    name=${row%%:*} t=${row##*:}
    printf '| %s | %s | %.1f× |\n' "$name" "$t" "$(echo "$t / $t_ours" | bc -l)"
  done
  echo
  echo "Load average at the end: $(load_avg). decide at 12,806 images: benches/scale.sh."
} | tee benches/results/decide.md
