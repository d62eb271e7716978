#!/usr/bin/env python3
# Reference check of the README definition: `python3 scripts/hash-v2-reference.py` prints the
# context digest and hash of tests/golden.rs `golden_single_image`, computed from the README alone.
# They matched the pinned values when v2 was written.
# Independent implementation of the README's "The hash (definition version 2)", for the
# golden_single_image tree. Reads only what the README says.
import hashlib, struct
def u64(v): return struct.pack(">Q", v)
def s(b):
    if isinstance(b,str): b=b.encode()
    return u64(len(b))+b
def opt(v): return b"\x00" if v is None else b"\x01"+s(v)
sha=lambda b: hashlib.sha256(b).digest()
entries=[("bin/a.sh","f",0,sha(b"echo a\n")),("rootfs","d",0,None),("rootfs/etc","d",0,None),
 ("rootfs/etc/issue","l","motd",None),("rootfs/etc/motd","f",0o644,sha(b"hello\n")),
 ("rootfs/usr","d",0,None),("rootfs/usr/bin","d",0,None),("rootfs/usr/bin/tool","f",0o755,sha(b"#!/bin/sh\n")),
 ("rootfs/var","d",0,None),("rootfs/var/empty","d",0,None)]
t=s("skip-action/tree")+u64(2)+u64(len(entries))
for p,k,m,d in sorted(entries):
    t+=s(p)
    if k=="f": t+=b"f"+u64(m)+d
    elif k=="d": t+=b"d"+u64(m)
    elif k=="l": t+=b"l"+s(m)
ctx=sha(t)
print("context", ctx.hex())
df=("# syntax=docker/dockerfile:1\nFROM alpine:3.20 AS final\nARG A\nARG B\nARG C\nCOPY rootfs/ /\nCOPY --chmod=0755 bin/*.sh /usr/local/bin/\nADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 https://example.com/x.tgz /x.tgz\n")
k=s("skip-action/image-key")+u64(2)+s("dockerfile")+s(df)+s("target")+opt("final")
k+=s("platforms")+u64(2)+s("linux/amd64")+s("linux/arm64")
k+=s("args")+u64(3)+s("A")+b"\x01"+s("1")+s("B")+b"\x01"+s("")+s("C")+b"\x00"
k+=s("context")+ctx+s("inputs")+b"\x00"+s("generated")+u64(0)+s("parents")+u64(0)
imgs=sorted([("alpine:3.20",None),("docker/dockerfile:1",None)])
k+=s("images")+u64(len(imgs))
for r,d in imgs: k+=s(r)+opt(d)
k+=s("remotes")+u64(1)+s("https://example.com/x.tgz")+opt("sha256:"+"0"*64)
print("hash", sha(k).hex())
