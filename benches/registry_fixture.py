#!/usr/bin/env python3
"""Push tiny OCI images under many tags of a local registry, over a few keep-alive connections.

Usage: registry_fixture.py HOST:PORT REPO [--index P1,P2 [--parents FILE] | --per-platform P1,P2] [--urls FILE] < tags.txt

- default: a single-arch image under each tag;
- --index: for each tag, one image per platform and an OCI index of them under the tag (what
  `merge` writes);
- --parents FILE (with --index): lines `tag parent-name parent-tag`; each platform entry of such a
  tag's index carries the annotation merge writes once it has verified the entry on the parent's
  entry of that platform (`io.github.skip-action.parent.<name>` = that entry's digest, computed:
  the parent's images are these same deterministic bytes), so a reader judges it from the index;
  --urls then records only the tag;
- --per-platform: for each tag and platform, that platform's image under `<tag>-<os>-<arch>`
  (what a platform job of `runners:` pushes before merge).

Every manifest carries the tag in an annotation, so each tag has its own digest (a reader cannot
get away with reading one manifest for all), and every image's layers are the same one layer, so
each child sits on its parent (the base check passes). --urls appends, per tag, the manifest
paths a reader needs to judge it (the tag; with --index, each platform's manifest by digest):
the peer tool's requests for the floor. Stdlib only, so benchmarks need nothing beyond Debian's
docker-registry and python3.
"""
import argparse
import hashlib
import http.client
import json
import sys
import threading

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
CONNECTIONS = 4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("repo")
    ap.add_argument("--index", default="")
    ap.add_argument("--per-platform", default="")
    ap.add_argument("--urls", default="")
    ap.add_argument("--parents", default="")
    a = ap.parse_args()
    parents = {}
    if a.parents:
        for line in open(a.parents):
            f = line.split()
            if len(f) == 3:
                parents[f[0]] = (f[1], f[2])
    host, repo = a.host, a.repo
    tags = [t.strip() for t in sys.stdin if t.strip()]
    local = threading.local()

    def request(method, path, body=None, headers=None):
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(host, timeout=60)
        local.conn.request(method, path, body=body, headers=headers or {})
        r = local.conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise SystemExit(f"{method} {path}: {r.status} {data[:200]!r}")
        return r

    def blob(data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = request("POST", f"/v2/{repo}/blobs/uploads/")
        loc = r.getheader("Location")
        sep = "&" if "?" in loc else "?"
        path = loc.split(host, 1)[-1]
        request("PUT", f"{path}{sep}digest={digest}", body=data,
                headers={"Content-Type": "application/octet-stream"})
        return digest, len(data)

    layer = blob(b"skip-action benchmark layer")
    configs = {}

    def config_for(platform):
        if platform not in configs:
            os_, arch = platform.split("/")[:2]
            configs[platform] = blob(json.dumps({
                "architecture": arch, "os": os_,
                "rootfs": {"type": "layers", "diff_ids": [layer[0]]}}).encode())
        return configs[platform]

    def image(platform, tag):
        c = config_for(platform)
        return json.dumps({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": c[0], "size": c[1]},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer[0], "size": layer[1]}],
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }).encode()

    def put(reference, body, media_type):
        request("PUT", f"/v2/{repo}/manifests/{reference}", body=body,
                headers={"Content-Type": media_type})
        return "sha256:" + hashlib.sha256(body).hexdigest()

    index_platforms = [p for p in a.index.split(",") if p]
    split_platforms = [p for p in a.per_platform.split(",") if p]
    for p in index_platforms + split_platforms + ["linux/amd64"]:
        config_for(p)
    urls = []
    lock = threading.Lock()

    def push(tag):
        mine = [f"/v2/{repo}/manifests/{tag}"]
        if index_platforms:
            entries = []
            parent = parents.get(tag)
            for p in index_platforms:
                body = image(p, tag)
                d = put("sha256:" + hashlib.sha256(body).hexdigest(), body, OCI_MANIFEST)
                os_, arch = p.split("/")[:2]
                entry = {"mediaType": OCI_MANIFEST, "digest": d, "size": len(body),
                         "platform": {"os": os_, "architecture": arch}}
                if parent:
                    pd = "sha256:" + hashlib.sha256(image(p, parent[1])).hexdigest()
                    entry["annotations"] = {"io.github.skip-action.parent." + parent[0]: pd}
                else:
                    mine.append(f"/v2/{repo}/manifests/{d}")
                entries.append(entry)
            put(tag, json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                 "manifests": entries}).encode(), OCI_INDEX)
        elif split_platforms:
            mine = []
            for p in split_platforms:
                t = f"{tag}-{p.replace('/', '-')}"
                put(t, image(p, t), OCI_MANIFEST)
                mine.append(f"/v2/{repo}/manifests/{t}")
        else:
            put(tag, image("linux/amd64", tag), OCI_MANIFEST)
        with lock:
            urls.extend(mine)

    errors = []

    def worker(k):
        try:
            for t in tags[k::CONNECTIONS]:
                push(t)
        except BaseException as e:  # SystemExit too: a thread's exit would be silent
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"registry_fixture: {errors[0]}")
    if a.urls:
        with open(a.urls, "a") as f:
            for u in urls:
                f.write(f"http://{host}{u}\n")


if __name__ == "__main__":
    main()
