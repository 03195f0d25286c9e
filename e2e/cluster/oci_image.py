#!/usr/bin/env python3
"""Builds a single-layer OCI image archive from files on this machine, with no daemon and no registry.

    oci_image.py --name datarestor.test/restic:0.14.0 --out restic.tar \
        --busybox /bin/busybox --add /usr/bin/restic:/usr/bin/restic \
        --entrypoint /usr/bin/restic --user 65532

The archive is an OCI image layout that `ctr -n k8s.io images import` loads under --name. The layer
is reproducible (sorted entries, zero mtimes), so the same inputs give the same image digest.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile


def add_dir(tar, path, mode=0o755):
    info = tarfile.TarInfo(path.lstrip("/"))
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def add_file(tar, source, dest, mode=None):
    with open(source, "rb") as f:
        data = f.read()
    info = tarfile.TarInfo(dest.lstrip("/"))
    info.size = len(data)
    info.mode = mode if mode is not None else (os.stat(source).st_mode & 0o777)
    tar.addfile(info, io.BytesIO(data))


def add_symlink(tar, dest, target):
    info = tarfile.TarInfo(dest.lstrip("/"))
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    tar.addfile(info)


def shared_libraries(binary):
    """The shared libraries a dynamically linked binary loads (ldd), by their real paths."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) > parts.index("=>") + 1 and parts[parts.index("=>") + 1].startswith("/"):
            libs.append(parts[parts.index("=>") + 1])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])
    return libs


def build_layer(args):
    entries = {}  # dest -> (kind, payload)
    for d in ["/bin", "/etc", "/tmp", "/usr", "/usr/bin", "/usr/local", "/usr/local/bin", "/var", "/data", "/cache"]:
        entries[d] = ("dir", 0o1777 if d in ("/tmp",) else 0o755)
    passwd = "root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin\n"
    group = "root:x:0:\nnonroot:x:65532:\n"
    for entry in args.user_entry:
        name, uid, gid = entry.split(":")
        passwd += f"{name}:x:{uid}:{gid}:{name}:/tmp:/bin/sh\n"
        group += f"{name}:x:{gid}:\n"
    entries["/etc/passwd"] = ("bytes", passwd.encode())
    entries["/etc/group"] = ("bytes", group.encode())
    if args.busybox:
        entries["/bin/busybox"] = ("file", args.busybox)
        applets = subprocess.run([args.busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
        for applet in applets:
            if applet != "busybox":
                entries.setdefault(f"/bin/{applet}", ("symlink", "busybox"))
    for spec in args.add_tree:
        source, dest = spec.split(":", 1)
        for root, dirs, files in os.walk(source):
            for name in dirs + files:
                path = os.path.join(root, name)
                target = os.path.join(dest, os.path.relpath(path, source))
                if os.path.islink(path):
                    entries[target] = ("symlink", os.readlink(path))
                elif os.path.isdir(path):
                    entries[target] = ("dir", 0o755)
                else:
                    entries[target] = ("file", path)
                    if args.with_libraries and name.endswith(".so"):
                        for lib in shared_libraries(path):
                            entries.setdefault(lib, ("file", os.path.realpath(lib)))
    for spec in args.add:
        source, dest = spec.split(":", 1)
        entries[dest] = ("file", source)
        if args.with_libraries:
            for lib in shared_libraries(source):
                entries.setdefault(lib, ("file", os.path.realpath(lib)))
    # Every parent directory exists in the layer.
    for dest in list(entries):
        parent = os.path.dirname(dest)
        while parent not in ("", "/"):
            entries.setdefault(parent, ("dir", 0o755))
            parent = os.path.dirname(parent)

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dest in sorted(entries):
            kind, payload = entries[dest]
            if kind == "dir":
                add_dir(tar, dest, payload)
            elif kind == "symlink":
                add_symlink(tar, dest, payload)
            elif kind == "bytes":
                info = tarfile.TarInfo(dest.lstrip("/"))
                info.size = len(payload)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(payload))
            else:
                add_file(tar, payload, dest)
    uncompressed = raw.getvalue()
    compressed = gzip.compress(uncompressed, mtime=0)
    return uncompressed, compressed


def blob(tar, data):
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))
    return f"sha256:{digest}", len(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="image reference, e.g. datarestor.test/restic:0.14.0")
    parser.add_argument("--out", required=True, help="OCI archive to write")
    parser.add_argument("--busybox", help="a static busybox: /bin/sh and the usual tools")
    parser.add_argument("--add", action="append", default=[], help="SOURCE:DEST, a file to put into the image")
    parser.add_argument("--add-tree", action="append", default=[], help="SOURCE:DEST, a directory to put into the image whole")
    parser.add_argument("--user-entry", action="append", default=[], help="NAME:UID:GID, one more user (and group) in /etc/passwd")
    parser.add_argument("--with-libraries", action="store_true", help="also add the shared libraries each --add file (and each .so of a tree) loads")
    parser.add_argument("--entrypoint", nargs="*", default=[])
    parser.add_argument("--cmd", nargs="*", default=[])
    parser.add_argument("--user", default="")
    parser.add_argument("--env", action="append", default=[])
    args = parser.parse_args()

    uncompressed, compressed = build_layer(args)
    env = ["PATH=/usr/local/bin:/usr/bin:/bin"] + args.env
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": env, "Entrypoint": args.entrypoint or None, "Cmd": args.cmd or None, "User": args.user, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(uncompressed).hexdigest()]},
        "history": [{"created_by": "e2e/cluster/oci_image.py"}],
    }
    with tarfile.open(args.out, "w") as tar:
        layer_digest, layer_size = blob(tar, compressed)
        config_bytes = json.dumps(config, sort_keys=True).encode()
        config_digest, config_size = blob(tar, config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size}],
        }
        manifest_digest, manifest_size = blob(tar, json.dumps(manifest, sort_keys=True).encode())
        index = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest,
                    "size": manifest_size,
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {"io.containerd.image.name": args.name, "org.opencontainers.image.ref.name": args.name.rsplit(":", 1)[-1]},
                }
            ],
        }
        for name, data in (("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", json.dumps(index, sort_keys=True).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    print(f"{args.name} {manifest_digest} ({len(compressed) // 1024} KiB layer)")


if __name__ == "__main__":
    main()
