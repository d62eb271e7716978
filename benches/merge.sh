#!/usr/bin/env bash
# Merge benchmark: `skip-action merge` of 100 images × 2 platforms (whole process: config,
# hashing, the reads, 100 index PUTs) against curl doing the same requests per image — GET the
# content tag (404), GET each per-platform manifest and its config blob, PUT the index built with
# jq — sequentially and 16 in parallel, on a local docker-registry.
#
#   benches/merge.sh [RUNS]        (default 5; needs docker-registry, curl, jq, bc, python3)
#
# Before every timed run the 100 content tags are deleted (by digest), so every command really
# writes every index. Prints a Markdown table; also written to benches/results/merge.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
root=$PWD
for tool in docker-registry curl jq bc python3; do
  command -v "$tool" >/dev/null || { echo "benches/merge.sh needs $tool (apt-get install $tool)" >&2; exit 2; }
done
# shellcheck source=benches/lib.sh
source benches/lib.sh

if [ -z "${SKIP_ACTION_BIN:-}" ]; then
  cargo build --release --quiet -p skip-action
  SKIP_ACTION_BIN=${CARGO_TARGET_DIR:-$root/target}/release/skip-action
fi
bin=$SKIP_ACTION_BIN

work=$(mktemp -d /tmp/skip-merge-bench.XXXXXX)
start_registry "$work/registry"
trap 'kill $REGISTRY_PID 2>/dev/null || true; rm -rf "$work"' EXIT
host=$REGISTRY
repo=acme/many
accept='application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'

# --- the workspace: 100 variants, built per platform -------------------------------------------
ws=$work/ws
mkdir -p "$ws"
printf 'FROM alpine:3.20\nARG N\nRUN echo $N\n' > "$ws/Dockerfile"
{
  printf 'version: 1\nrepository: %s/%s\nplatforms: [linux/amd64, linux/arm64]\n' "$host" "$repo"
  printf 'runners: {linux/amd64: ubuntu-24.04, linux/arm64: ubuntu-24.04-arm}\nimages:\n  app:\n'
  printf '    tag: "{variant}-{hash}"\n    variants:\n'
  for i in $(seq -w 0 99); do printf '      v%s: { N: "%s" }\n' "$i" "$i"; done
} > "$ws/skip-action.yml"
(cd "$ws" && "$bin" hash --json | jq -r '.images[].tag') > "$work/tags"

# Push each platform image (one random layer, a config naming its platform) with python's stdlib
# over one connection: 200 images in a few seconds.
python3 - "$host" "$repo" "$work/tags" <<'PY'
import hashlib, http.client, json, os, sys
host, repo, tags_file = sys.argv[1:4]
conn = http.client.HTTPConnection(host, timeout=30)
def req(method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse(); data = r.read()
    if r.status >= 300: raise SystemExit(f"{method} {path}: {r.status} {data[:200]!r}")
    return r
def blob(data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    loc = req("POST", f"/v2/{repo}/blobs/uploads/").getheader("Location")
    path = loc.split(host, 1)[-1]
    req("PUT", path + ("&" if "?" in path else "?") + "digest=" + d, data,
        {"Content-Type": "application/octet-stream"})
    return d, len(data)
for tag in open(tags_file).read().split():
    for arch in ("amd64", "arm64"):
        layer = os.urandom(4096); ld, ls = blob(layer)
        cfg = json.dumps({"architecture": arch, "os": "linux",
                          "rootfs": {"type": "layers", "diff_ids": [ld]}}).encode()
        cd, cs = blob(cfg)
        m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls}]}).encode()
        req("PUT", f"/v2/{repo}/manifests/{tag}-linux-{arch}", m,
            {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
PY

script() { local f=$work/$1.sh; shift; { echo '#!/usr/bin/env bash'; echo 'set -euo pipefail'; cat; } > "$f"; chmod +x "$f"; }
digest_of() { curl -fsI -H "Accept: $accept" "http://$host/v2/$repo/manifests/$1" | tr -d '\r' | awk 'tolower($1)=="docker-content-digest:" {print $2}'; }

# Delete every content tag (its index digest), so the next run writes all 100 again.
script reset <<SH
while read -r t; do
  d=\$(curl -fsI -H "Accept: $accept" "http://$host/v2/$repo/manifests/\$t" 2>/dev/null | tr -d '\r' | awk 'tolower(\$1)=="docker-content-digest:" {print \$2}') || true
  [ -z "\$d" ] || curl -fs -o /dev/null -X DELETE "http://$host/v2/$repo/manifests/\$d"
done < $work/tags
SH
script ours <<SH
cd $ws && $bin merge >/dev/null
SH
# What merge does for one image, with curl and jq: the content tag (404), each platform's
# manifest and config blob, then the index PUT.
script merge-one <<SH
t=\$1
curl -s -o /dev/null -H 'Accept: $accept' "http://$host/v2/$repo/manifests/\$t"
entries=""
for arch in amd64 arm64; do
  m=$work/m.\$t.\$arch
  ct=\$(curl -fs -H 'Accept: $accept' -o "\$m" -w '%{content_type}' "http://$host/v2/$repo/manifests/\$t-linux-\$arch")
  cfg=\$(jq -r .config.digest "\$m")
  p=\$(curl -fs "http://$host/v2/$repo/blobs/\$cfg" | jq -c '{os, architecture}')
  e=\$(jq -cn --arg mt "\$ct" --arg d "sha256:\$(sha256sum "\$m" | cut -d' ' -f1)" --argjson s "\$(stat -c %s "\$m")" --argjson p "\$p" '{mediaType:\$mt, digest:\$d, size:\$s, platform:\$p}')
  entries="\$entries\${entries:+,}\$e"
done
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' "\$entries" > $work/i.\$t
curl -fs -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary @$work/i.\$t "http://$host/v2/$repo/manifests/\$t"
SH
script curl-seq <<SH
while read -r t; do $work/merge-one.sh "\$t"; done < $work/tags
SH
script curl-par <<SH
xargs -P 16 -L 1 $work/merge-one.sh < $work/tags
SH

# Sanity: each command writes an index of both platforms under every content tag.
first=$(head -n1 "$work/tags")
for c in ours curl-seq curl-par; do
  "$work/reset.sh"; "$work/$c.sh"
  n=$(curl -fs -H "Accept: $accept" "http://$host/v2/$repo/manifests/$first" | jq '.manifests | length')
  [ "$n" = 2 ] || { echo "sanity check failed for $c ($n platforms)" >&2; exit 1; }
  [ -n "$(digest_of "$(tail -n1 "$work/tags")")" ] || { echo "sanity check failed for $c (last tag)" >&2; exit 1; }
done

# Best of RUNS, each after a reset (the reset is not timed).
time_best() {
  local best=""
  for _ in $(seq "$runs"); do
    "$work/reset.sh"
    local t; t=$(best_of 1 "$work/$1.sh")
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
  done
  echo "$best"
}
ours=$(time_best ours)
seq_t=$(time_best curl-seq)
par_t=$(time_best curl-par)
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }

out=$(cat <<MD
## merge benchmark ($(nproc) cores, $(docker-registry --version 2>/dev/null | awk '{print $NF}' || echo docker-registry), best of $runs)

100 images × 2 platforms, whole process, against a local registry; every run writes all 100
indexes. The last column is skip-action's time relative to the command's (below 1: faster).

| command | best | skip-action / command |
|---|---|---|
| skip-action merge (100 images, concurrent) | ${ours} s | 1× |
| curl + jq, same requests, sequential | ${seq_t} s | $(ratio "$ours" "$seq_t")× |
| curl + jq, same requests, 16 parallel | ${par_t} s | $(ratio "$ours" "$par_t")× |
MD
)
echo "$out"
mkdir -p benches/results
echo "$out" > benches/results/merge.md
