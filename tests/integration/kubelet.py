"""Write a Secret into a directory the way the kubelet updates a Secret volume.

The kubelet never rewrites a mounted file in place. For every update it writes all
keys into a fresh hidden directory named after the time (``..2026_01_31_12_00_00.NNN``),
points a temporary symlink at it, renames that symlink over ``..data`` (the one atomic
step a reader can rely on), makes sure each visible name is a symlink through
``..data`` (``tls.crt -> ..data/tls.crt``), and finally removes the previous hidden
directory. A process that opens ``tls.crt`` sees either the whole old set or the whole
new one, and a process that keeps a directory open may find it deleted under it.
"""

from __future__ import annotations

import base64
import datetime
import pathlib
import tempfile
from collections.abc import Mapping, Sequence

from kubernetes import client

DATA_LINK = "..data"
STAGING_LINK = "..data_tmp"
TLS_KEYS = ("tls.crt", "tls.key", "ca.crt")
#: ``defaultMode: 0400``, what a pod mounting a private key should ask for.
FILE_MODE = 0o400


def publish(
    directory: pathlib.Path, files: Mapping[str, bytes], *, mode: int = FILE_MODE
) -> pathlib.Path:
    """Publish one generation of a Secret volume, replacing the previous one atomically.

    Args:
        directory: The volume's mount point; created if missing.
        files: File name to content, the whole new generation.
        mode: Permission bits of the files.

    Returns:
        The new hidden generation directory.
    """
    directory.mkdir(parents=True, exist_ok=True)
    link = directory / DATA_LINK
    previous = link.readlink() if link.is_symlink() else None
    stamp = datetime.datetime.now(datetime.UTC).strftime("..%Y_%m_%d_%H_%M_%S.")
    generation = pathlib.Path(tempfile.mkdtemp(prefix=stamp, dir=directory))
    for name, content in files.items():
        path = generation / name
        path.write_bytes(content)
        path.chmod(mode)
    staging = directory / STAGING_LINK
    staging.unlink(missing_ok=True)
    staging.symlink_to(generation.name)
    staging.replace(link)
    for name in files:
        visible = directory / name
        if not visible.is_symlink():
            visible.symlink_to(pathlib.Path(DATA_LINK) / name)
    for stale in directory.iterdir():
        if not stale.name.startswith("..") and stale.is_symlink() and stale.name not in files:
            stale.unlink()
    if previous is not None and previous.name != generation.name:
        old = directory / previous
        for child in old.iterdir():
            child.unlink()
        old.rmdir()
    return generation


def secret_files(secret: client.V1Secret, keys: Sequence[str] = TLS_KEYS) -> dict[str, bytes]:
    """The decoded content of some of a Secret's keys, as a volume would show them.

    Args:
        secret: The Secret as read from the API.
        keys: The keys to project.

    Returns:
        File name to content.

    Raises:
        KeyError: The Secret lacks one of ``keys``.
    """
    data = secret.data or {}
    return {key: base64.b64decode(data[key]) for key in keys}


def mount(secret: client.V1Secret, directory: pathlib.Path) -> pathlib.Path:
    """Publish a certmint Secret's ``tls.crt``, ``tls.key`` and ``ca.crt`` into a volume.

    Args:
        secret: The Secret as read from the API.
        directory: The volume's mount point.

    Returns:
        The new hidden generation directory.
    """
    return publish(directory, secret_files(secret))
