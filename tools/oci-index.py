#!/usr/bin/env python3
"""Merges single-image OCI layouts (one per architecture) into one layout whose tag names a multi-arch
image index (application/vnd.oci.image.index.v1+json) with each manifest's platform from its config:

    oci-index.py OUT TAG LAYOUT [LAYOUT ...]

Blobs are hard-linked (copied across file systems); the index is deterministic (manifests in the order
given). `skopeo copy --all oci:OUT:TAG docker://...` pushes every architecture.
"""
import hashlib
import json
import os
import shutil
import sys

INDEX = "application/vnd.oci.image.index.v1+json"


def blob(layout, digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(layout, "blobs", algo, hexd)


def put(out, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    p = blob(out, d)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p + ".tmp", "wb") as f:
        f.write(data)
    os.chmod(p + ".tmp", 0o644)
    os.replace(p + ".tmp", p)
    return d, len(data)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    out, tag, layouts = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    manifests = []
    for layout in layouts:
        idx = json.load(open(os.path.join(layout, "index.json")))
        if len(idx["manifests"]) != 1:
            sys.exit(f"oci-index.py: {layout} holds {len(idx['manifests'])} manifests, want 1")
        desc = dict(idx["manifests"][0])
        manifest = json.load(open(blob(layout, desc["digest"])))
        config = json.load(open(blob(layout, manifest["config"]["digest"])))
        digests = [desc["digest"], manifest["config"]["digest"]] + [l["digest"] for l in manifest["layers"]]
        for d in digests:
            dst = blob(out, d)
            if not os.path.exists(dst):
                try:
                    os.link(blob(layout, d), dst)
                except OSError:
                    shutil.copy2(blob(layout, d), dst)
        platform = {"architecture": config["architecture"], "os": config["os"]}
        if config.get("variant"):
            platform["variant"] = config["variant"]
        desc.pop("annotations", None)
        desc["platform"] = platform
        manifests.append(desc)
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}
    d, size = put(out, json.dumps(index, indent=2).encode())
    top = {"schemaVersion": 2, "manifests": [{"mediaType": INDEX, "digest": d, "size": size,
                                              "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(out, "index.json.tmp"), "w") as f:
        json.dump(top, f, indent=2)
    os.replace(os.path.join(out, "index.json.tmp"), os.path.join(out, "index.json"))
    print(d)


if __name__ == "__main__":
    main()
