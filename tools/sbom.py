#!/usr/bin/env python3
"""SBOMs of the lifecycle's own binaries, from `cargo metadata --format-version 1` (build time).

    cargo metadata --format-version 1 --locked --filter-platform TRIPLE | \
      python3 tools/sbom.py --package cnb-lifecycle --component lifecycle --out-dir DIR

writes DIR/<component>.sbom.cdx.json (CycloneDX 1.5), DIR/<component>.sbom.spdx.json (SPDX 2.3) and
DIR/<component>.sbom.syft.json (syft's JSON format), the three files the reference ships next to its
binaries and the exporter copies into the image's SBOM layer (Platform API 0.11+). Each lists every crate
linked into the package's binaries: the closure of its normal (not dev, not build) dependencies for the
target platform, without procedural macros and what only they use (they run in the compiler and are not
linked), each with name, version, declared licence and purl. The output is deterministic: the timestamp
is $SOURCE_DATE_EPOCH or 1980-01-01T00:00:01Z (the reference's normalised archive time), identifiers are
derived from the content.
"""
import argparse
import datetime
import hashlib
import json
import os
import re
import sys
import uuid

CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"
TOOL = "cnb-lifecycle-sbom"


def closure(meta, root_name):
    pkgs = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    roots = [i for i in meta["workspace_members"] if pkgs[i]["name"] == root_name]
    if not roots:
        sys.exit(f"sbom.py: package {root_name!r} is not a workspace member")
    root = roots[0]

    def is_proc_macro(pid):
        return any("proc-macro" in t["kind"] for t in pkgs[pid]["targets"])

    seen, edges, todo = {root}, {}, [root]
    while todo:
        cur = todo.pop()
        deps = []
        for d in nodes[cur]["deps"]:
            if not any(k["kind"] is None for k in d["dep_kinds"]):
                continue  # dev- or build-dependency only
            if is_proc_macro(d["pkg"]):
                continue
            deps.append(d["pkg"])
            if d["pkg"] not in seen:
                seen.add(d["pkg"])
                todo.append(d["pkg"])
        edges[cur] = sorted(set(deps))
    return root, pkgs, sorted(seen - {root}, key=lambda i: (pkgs[i]["name"], pkgs[i]["version"])), edges


def purl(p):
    return f"pkg:cargo/{p['name']}@{p['version']}"


def license_expr(p):
    lic = p.get("license")
    if not lic:
        return None
    # Old-style "MIT/Apache-2.0" means either.
    return " OR ".join(s.strip() for s in lic.split("/")) if "/" in lic else lic


def timestamp():
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    t = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch else \
        datetime.datetime(1980, 1, 1, 0, 0, 1, tzinfo=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def spdx_id(p):
    return "SPDXRef-Package-" + re.sub(r"[^A-Za-z0-9.-]", "-", f"{p['name']}-{p['version']}")


def cyclonedx(component, version, root, pkgs, deps, edges, digest):
    comps = []
    for i in deps:
        p = pkgs[i]
        c = {"type": "library", "bom-ref": purl(p), "name": p["name"], "version": p["version"],
             "purl": purl(p)}
        lic = license_expr(p)
        c["licenses"] = [{"expression": lic}] if lic else []
        if p.get("source") == CRATES_IO:
            c["externalReferences"] = [{"type": "distribution",
                                        "url": f"https://crates.io/crates/{p['name']}/{p['version']}"}]
        comps.append(c)
    app = {"type": "application", "bom-ref": purl(pkgs[root]), "name": component, "version": version,
           "purl": purl(pkgs[root])}
    lic = license_expr(pkgs[root])
    if lic:
        app["licenses"] = [{"expression": lic}]
    dependencies = [{"ref": purl(pkgs[i]), "dependsOn": [purl(pkgs[d]) for d in edges.get(i, [])]}
                    for i in [root] + deps]
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.UUID(digest[:32])}",
        "version": 1,
        "metadata": {"timestamp": timestamp(),
                     "tools": {"components": [{"type": "application", "name": TOOL, "version": version}]},
                     "component": app},
        "components": comps,
        "dependencies": dependencies,
    }


def spdx(component, version, root, pkgs, deps, edges, digest):
    def package(p, name=None):
        e = {"SPDXID": spdx_id(p), "name": name or p["name"], "versionInfo": p["version"],
             "downloadLocation": (f"https://crates.io/api/v1/crates/{p['name']}/{p['version']}/download"
                                  if p.get("source") == CRATES_IO else "NOASSERTION"),
             "filesAnalyzed": False, "licenseConcluded": "NOASSERTION",
             "licenseDeclared": license_expr(p) or "NOASSERTION", "copyrightText": "NOASSERTION",
             "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                               "referenceLocator": purl(p)}]}
        return e
    packages = [package(pkgs[root], component)] + [package(pkgs[i]) for i in deps]
    rels = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
             "relatedSpdxElement": spdx_id(pkgs[root])}]
    for i in [root] + deps:
        for d in edges.get(i, []):
            rels.append({"spdxElementId": spdx_id(pkgs[i]), "relationshipType": "DEPENDS_ON",
                         "relatedSpdxElement": spdx_id(pkgs[d])})
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{component}-{version}",
        "documentNamespace": f"https://spdx.org/spdxdocs/{component}-{version}-{digest[:32]}",
        "creationInfo": {"created": timestamp(), "creators": [f"Tool: {TOOL}-{version}"]},
        "documentDescribes": [spdx_id(pkgs[root])],
        "packages": packages,
        "relationships": rels,
    }


def syft(component, version, root, pkgs, deps, edges, digest):
    def art_id(p):
        return hashlib.sha256(purl(p).encode()).hexdigest()[:16]
    arts = []
    for i in deps:
        p = pkgs[i]
        lic = license_expr(p)
        arts.append({"id": art_id(p), "name": p["name"], "version": p["version"], "type": "rust-crate",
                     "foundBy": TOOL, "locations": [], "language": "rust", "cpes": [], "purl": purl(p),
                     "licenses": ([{"value": lic, "spdxExpression": lic, "type": "declared",
                                    "urls": [], "locations": []}] if lic else [])})
    rels = [{"parent": art_id(pkgs[i]), "child": art_id(pkgs[d]), "type": "dependency-of"}
            for i in deps for d in edges.get(i, [])]
    return {
        "artifacts": arts,
        "artifactRelationships": rels,
        "source": {"id": digest[:64], "name": component, "version": version, "type": "file",
                   "metadata": {"path": f"/cnb/lifecycle/{component}"}},
        "distro": {},
        "descriptor": {"name": TOOL, "version": version},
        "schema": {"version": "16.0.0",
                   "url": "https://raw.githubusercontent.com/anchore/syft/main/schema/json/schema-16.0.0.json"},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metadata", default="-", help="cargo metadata JSON file (default: stdin)")
    ap.add_argument("--package", required=True)
    ap.add_argument("--component", required=True, help="binary name, e.g. lifecycle or launcher")
    ap.add_argument("--out-dir", required=True)
    a = ap.parse_args()
    meta = json.load(sys.stdin if a.metadata == "-" else open(a.metadata))
    root, pkgs, deps, edges = closure(meta, a.package)
    version = pkgs[root]["version"]
    digest = hashlib.sha256(json.dumps([a.component] + [purl(pkgs[i]) for i in deps]).encode()).hexdigest()
    for ext, make in (("cdx", cyclonedx), ("spdx", spdx), ("syft", syft)):
        doc = make(a.component, version, root, pkgs, deps, edges, digest)
        path = os.path.join(a.out_dir, f"{a.component}.sbom.{ext}.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)


if __name__ == "__main__":
    main()
