#!/usr/bin/env python3
"""Push one tiny OCI image under many tags of a local registry, over one keep-alive connection.

Usage: registry_fixture.py HOST:PORT REPO < tags.txt
Stdlib only, so benchmarks need nothing beyond Debian's docker-registry and python3.
"""
import hashlib
import http.client
import json
import sys

def main():
    host, repo = sys.argv[1], sys.argv[2]
    tags = [t.strip() for t in sys.stdin if t.strip()]
    conn = http.client.HTTPConnection(host, timeout=30)

    def request(method, path, body=None, headers=None):
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
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
    config = blob(json.dumps({"architecture": "amd64", "os": "linux",
                              "rootfs": {"type": "layers", "diff_ids": [layer[0]]}}).encode())
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config[0], "size": config[1]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer[0], "size": layer[1]}],
    }).encode()
    for t in tags:
        request("PUT", f"/v2/{repo}/manifests/{t}", body=manifest,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})

if __name__ == "__main__":
    main()
