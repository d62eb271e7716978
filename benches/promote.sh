#!/usr/bin/env bash
# Promote benchmark: `skip-action promote` (whole process: config, hashing, every check, the
# writes) against the least a re-tag can cost — one `curl` GET + PUT pair — and against
# `skopeo copy --all --preserve-digests`, on a local docker-registry; then 100 aliases at once.
#
#   benches/promote.sh [RUNS]        (default 20 runs per command; needs docker-registry, curl,
#                                     jq, skopeo, hyperfine: all Debian packages)
#
# The registry runs on 127.0.0.1 with a temp config and storage and is stopped on exit. Images are
# pushed with curl (random layer, config, OCI manifest). Before every timed run each alias is put
# back on another digest (hyperfine --prepare), so every command really writes every alias.
# Prints a Markdown table and the ratios; also written to benches/results/promote.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
root=$PWD
for tool in docker-registry curl jq skopeo hyperfine; do
  command -v "$tool" >/dev/null || { echo "benches/promote.sh needs $tool (apt-get install $tool)" >&2; exit 2; }
done

if [ -z "${SKIP_ACTION_BIN:-}" ]; then
  cargo build --release --quiet -p skip-action
  SKIP_ACTION_BIN=${CARGO_TARGET_DIR:-$root/target}/release/skip-action
fi
bin=$SKIP_ACTION_BIN

work=$(mktemp -d /tmp/skip-promote-bench.XXXXXX)
reg_pid=""
cleanup() {
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- registry ------------------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
host=127.0.0.1:$port
cat > "$work/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/data
http:
  addr: $host
  secret: bench-not-a-secret
YML
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do
  curl -fs "http://$host/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://$host/v2/" >/dev/null || { cat "$work/registry.log"; exit 1; }

# --- pushing with curl -----------------------------------------------------------------------
# push_blob REPO FILE -> prints the digest
push_blob() {
  local repo=$1 file=$2 digest loc
  digest=sha256:$(sha256sum "$file" | cut -d' ' -f1)
  if curl -fsI "http://$host/v2/$repo/blobs/$digest" >/dev/null 2>&1; then echo "$digest"; return; fi
  loc=$(curl -fsi -X POST "http://$host/v2/$repo/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
  case $loc in http*) ;; *) loc="http://$host$loc" ;; esac
  case $loc in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
  curl -fs -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$file" "$loc" >/dev/null
  echo "$digest"
}

# push_image REPO TAG... -> an image with one random layer under each TAG; prints its digest
push_image() {
  local repo=$1; shift
  local d=$work/img.$RANDOM$RANDOM
  mkdir -p "$d"
  head -c 4096 /dev/urandom > "$d/layer"
  local ld; ld=$(push_blob "$repo" "$d/layer")
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}' "$ld" > "$d/config"
  local cd; cd=$(push_blob "$repo" "$d/config")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":4096}]}' \
    "$cd" "$(stat -c %s "$d/config")" "$ld" > "$d/manifest"
  for tag in "$@"; do
    curl -fs -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
      --data-binary "@$d/manifest" "http://$host/v2/$repo/manifests/$tag" >/dev/null
  done
  echo "sha256:$(sha256sum "$d/manifest" | cut -d' ' -f1)"
  cp "$d/manifest" "$work/last-manifest"
}

# --- workspace 1: one image, one alias ---------------------------------------------------------
one=$work/one
mkdir -p "$one"
printf 'FROM alpine:3.20\nRUN true\n' > "$one/Dockerfile"
cat > "$one/skip-action.yml" <<YML
version: 1
repository: $host/acme/app
images:
  app:
    tag: app-{hash}
    promote: [latest]
YML
app_tag=$(cd "$one" && "$bin" hash --json | jq -r '.images[0].tag')
push_image acme/app "$app_tag" >/dev/null
push_image acme/app other >/dev/null
cp "$work/last-manifest" "$work/other-manifest"
accept='application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'

# Each command is a small script, so hyperfine runs exactly what is written here.
script() { local f=$work/$1.sh; shift; { echo '#!/usr/bin/env bash'; echo 'set -euo pipefail'; cat; } > "$f"; chmod +x "$f"; }
script reset-one <<SH
curl -fs -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @$work/other-manifest http://$host/v2/acme/app/manifests/latest >/dev/null
SH
script ours-one <<SH
cd $one && $bin promote --wait 0 >/dev/null
SH
# The least a re-tag can cost: GET with every manifest type accepted, PUT the same bytes with the
# same Content-Type (no checks at all).
script curl-pair <<SH
ct=\$(curl -fs -H 'Accept: $accept' -o $work/m -w '%{content_type}' http://$host/v2/acme/app/manifests/$app_tag)
curl -fs -X PUT -H "Content-Type: \$ct" --data-binary @$work/m http://$host/v2/acme/app/manifests/latest >/dev/null
SH
script skopeo-one <<SH
skopeo copy -q --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false docker://$host/acme/app:$app_tag docker://$host/acme/app:latest
SH

digest_of() { curl -fsI -H "Accept: $accept" "http://$host/v2/$1/manifests/$2" | tr -d '\r' | awk 'tolower($1)=="docker-content-digest:" {print $2}'; }
# Sanity: each command really moves the alias to the content digest.
want=$(digest_of acme/app "$app_tag")
for c in ours-one curl-pair skopeo-one; do
  "$work/reset-one.sh"; "$work/$c.sh"
  got=$(digest_of acme/app latest)
  [ "$got" = "$want" ] || { echo "sanity check failed for $c ($got != $want)" >&2; exit 1; }
done

hyperfine --warmup 3 --runs "$runs" --style basic --export-json "$work/one.json" \
  --prepare "$work/reset-one.sh" \
  -n "skip-action promote (1 alias)" "$work/ours-one.sh" \
  -n "curl GET + PUT" "$work/curl-pair.sh" \
  -n "skopeo copy --all --preserve-digests" "$work/skopeo-one.sh"

# --- workspace 2: 100 variants, one alias each --------------------------------------------------
many=$work/many
mkdir -p "$many"
printf 'FROM alpine:3.20\nARG N\nRUN echo $N\n' > "$many/Dockerfile"
{
  printf 'version: 1\nrepository: %s/acme/many\nimages:\n  app:\n    tag: "{variant}-{hash}"\n    promote: ["latest-{variant}"]\n    variants:\n' "$host"
  for i in $(seq -w 0 99); do printf '      v%s: { N: "%s" }\n' "$i" "$i"; done
} > "$many/skip-action.yml"
(cd "$many" && "$bin" hash --json | jq -r '.images[].tag') > "$work/many-tags"
mapfile -t many_tags < "$work/many-tags"
# Distinct content per variant, as real builds produce. (Identical manifests PUT concurrently
# under many tags make docker-registry's filesystem driver serve half-written links — HTTP 500
# "invalid checksum digest format" — to concurrent readers; skip-action retries 5xx, raw curl
# does not.)
for t in "${many_tags[@]}"; do push_image acme/many "$t" >/dev/null; done
push_image acme/many other >/dev/null
cp "$work/last-manifest" "$work/other-many"
(cd "$many" && "$bin" hash --json | jq -r '.images[] | "\(.tag) latest-\(.variant)"') > "$work/many-pairs"
script reset-many <<SH
# Sequential: one manifest under 100 tags at once would hit the registry race described above.
for a in \$(cut -d' ' -f2 $work/many-pairs); do
  curl -fs -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @$work/other-many http://$host/v2/acme/many/manifests/\$a
done
SH
script ours-many <<SH
cd $many && $bin promote --wait 0 >/dev/null
SH
script retag-one <<SH
# retag-one CONTENT_TAG ALIAS: one GET + PUT with curl.
ct=\$(curl -fs -H 'Accept: $accept' -o $work/mm.\$2 -w '%{content_type}' http://$host/v2/acme/many/manifests/\$1)
curl -fs -o /dev/null -X PUT -H "Content-Type: \$ct" --data-binary @$work/mm.\$2 http://$host/v2/acme/many/manifests/\$2
SH
script curl-many-seq <<SH
while read -r t a; do $work/retag-one.sh "\$t" "\$a"; done < $work/many-pairs
SH
script curl-many-par <<SH
xargs -P 16 -L 1 $work/retag-one.sh < $work/many-pairs
SH
script skopeo-many <<SH
while read -r t a; do
  skopeo copy -q --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false docker://$host/acme/many:\$t docker://$host/acme/many:\$a
done < $work/many-pairs
SH

for c in ours-many curl-many-seq curl-many-par; do
  "$work/reset-many.sh"; "$work/$c.sh"
  [ "$(digest_of acme/many latest-v57)" = "$(digest_of acme/many "${many_tags[57]}")" ] \
    || { echo "sanity check failed for $c" >&2; exit 1; }
done

many_runs=$(( runs < 10 ? runs : 10 ))
hyperfine --warmup 1 --runs "$many_runs" --style basic --export-json "$work/many.json" \
  --prepare "$work/reset-many.sh" \
  -n "skip-action promote (100 aliases)" "$work/ours-many.sh" \
  -n "curl GET + PUT x100, sequential" "$work/curl-many-seq.sh" \
  -n "curl GET + PUT x100, 16 parallel" "$work/curl-many-par.sh" \
  -n "skopeo copy x100, sequential" "$work/skopeo-many.sh"

# --- report ------------------------------------------------------------------------------------
report() {
  jq -r '.results as $r | $r[0].mean as $ours |
    ($r[] | "| \(.command) | \((.mean*1000)|floor) ms | ±\((.stddev*1000*10|floor)/10) ms | \(((.mean/$ours)*100|floor)/100)× |")' "$1"
}
mkdir -p benches/results
{
  echo "## promote benchmark ($(nproc) cores, docker-registry $(docker-registry --version 2>/dev/null | awk '{print $NF}'), $runs runs)"
  echo
  echo "Whole process, against a local registry; every run really moves every alias."
  echo "The last column is the command's time relative to skip-action's (above 1: slower than skip-action)."
  echo
  echo "| one alias | mean | stddev | vs skip-action |"
  echo "|---|---|---|---|"
  report "$work/one.json"
  echo
  echo "| 100 aliases (100 images) | mean | stddev | vs skip-action |"
  echo "|---|---|---|---|"
  report "$work/many.json"
} | tee benches/results/promote.md
