#!/usr/bin/env bash
# Probe benchmark: `skip-action decide` against a local registry (Debian docker-registry) vs
#   - a `docker manifest inspect` loop, a `skopeo inspect` loop (the hand-written shell's way),
#   - one curl reusing one connection for every HEAD (the floor for one-by-one probing),
# for 200 existing + 200 missing tags; then decide for 12,800 images (100 × 128 matrix, six bases)
# in one repository, with memory. Prints Markdown (also to benches/results/decide.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
cargo build --release --quiet
bin=$PWD/target/release/skip-action
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
(cd "$work/p400" && "$bin" hash --json) | python3 -c 'import json,sys; [print(i["tag"]) for i in json.load(sys.stdin)["images"]]' > "$work/tags400"
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

# --- 12,800 images in one repository: 6 bases × (100 benchmarks × 128 agents, parent by axis) ---
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
(cd "$work/big" && "$bin" hash --json) | python3 -c 'import json,sys; [print(i["tag"]) for i in json.load(sys.stdin)["images"]]' > "$work/tagsbig"
n_big=$(wc -l < "$work/tagsbig")
awk 'NR % 2 == 0' "$work/tagsbig" | python3 benches/registry_fixture.py "$REGISTRY" bench/big
decide_big() { (cd "$work/big" && GITHUB_OUTPUT=$work/outbig "$bin" decide --json); }
t_big=$(best_of 3 decide_big)
mem_big=$( { /usr/bin/time -f '%M' bash -c "cd $work/big && GITHUB_OUTPUT=$work/outbig $bin decide --json >/dev/null"; } 2>&1 | tail -1)

mkdir -p benches/results
{
  echo "| probing 400 tags (200 present, 200 missing) | seconds | vs skip-action |"
  echo "|---|---:|---:|"
  for row in "skip-action decide (whole run, incl. hashing; one tags/list):$t_ours" "skip-action decide --probe head (400 HEADs, 16 connections):$t_head" "curl, one connection, 400 HEADs:$t_curl" "skopeo inspect loop:$t_skopeo" "docker manifest inspect loop:$t_docker"; do
    name=${row%%:*} t=${row##*:}
    printf '| %s | %s | %.1f× |\n' "$name" "$t" "$(echo "$t / $t_ours" | bc -l)"
  done
  echo
  printf 'decide for %d images in one repository (half present): %ss, peak memory %d MiB.\n' "$n_big" "$t_big" "$((mem_big / 1024))"
} | tee benches/results/decide.md
