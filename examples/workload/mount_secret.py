"""Write a certmint Secret into a directory the way the kubelet mounts it.

Reads the JSON of ``kubectl get secret NAME -o json`` on standard input and writes
``tls.crt``, ``tls.key`` and ``ca.crt`` into DIRECTORY: into a fresh timestamped
directory first, then one atomic rename of the ``..data`` symlink, with the visible
names as symlinks through ``..data``. Run it again after the operator renews the
certificate and a running server or client picks up the new files.

Usage::

    kubectl -n payments get secret api-tls -o json | python mount_secret.py ./api-tls
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import pathlib
import shutil
import sys

KEYS = ("tls.crt", "tls.key", "ca.crt")


def mount(secret: dict[str, object], directory: pathlib.Path) -> pathlib.Path:
    """Publish the Secret's TLS keys into ``directory``; return the new data directory."""
    data = secret.get("data")
    if not isinstance(data, dict) or any(key not in data for key in KEYS):
        raise SystemExit(f"the Secret must have data keys {', '.join(KEYS)}")
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    generation = directory / stamp
    generation.mkdir(mode=0o700)
    for key in KEYS:
        target = generation / key
        target.touch(mode=0o600)
        target.write_bytes(base64.b64decode(data[key]))
    link = directory / "..data"
    previous = link.readlink() if link.is_symlink() else None
    staging = directory / "..data_tmp"
    staging.unlink(missing_ok=True)
    staging.symlink_to(generation.name)
    staging.rename(link)  # the one atomic step readers rely on
    for key in KEYS:
        visible = directory / key
        if not visible.is_symlink():
            visible.unlink(missing_ok=True)
            visible.symlink_to(pathlib.Path("..data") / key)
    if previous is not None and previous.name != generation.name:
        shutil.rmtree(directory / previous, ignore_errors=True)
    return generation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=pathlib.Path, help="where to mount the Secret")
    args = parser.parse_args()
    generation = mount(json.load(sys.stdin), args.directory)
    sys.stderr.write(f"mounted into {args.directory} ({generation.name})\n")


if __name__ == "__main__":
    main()
