"""Reading a mounted Secret directory consistently, and noticing when it changes.

The kubelet publishes a Secret volume atomically: it writes every key into a fresh
hidden directory (``..2026_11_27_10_00_00.123456789``), points the ``..data`` symlink
at it with one ``rename``, then deletes the previous directory. The visible names are
symlinks through ``..data`` (``tls.crt -> ..data/tls.crt``). Reading ``tls.crt`` and
then ``tls.key`` through those visible names can straddle a swap and pair a new
certificate with an old key, so this module resolves ``..data`` once and reads all
three files from the one directory it names.

A directory without ``..data`` (files copied by hand, a ``hostPath``, a test) is read
file by file; a writer that replaces files one at a time can then be caught half-way,
which the caller detects by checking that the key matches the certificate.
"""

from __future__ import annotations

import dataclasses
import pathlib

from certmint.workload import errors

CERTIFICATE_FILE = "tls.crt"
KEY_FILE = "tls.key"
TRUST_FILE = "ca.crt"
DATA_LINK = "..data"

_FILES = (CERTIFICATE_FILE, KEY_FILE, TRUST_FILE)
# A swap between resolving ..data and opening the files deletes the directory we
# resolved; re-resolving picks up the new one. Two swaps in a row are already rare.
_READ_ATTEMPTS = 3

FileStamp = tuple[int, int, int, int] | None
Signature = tuple[str | None, tuple[FileStamp, ...]]


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The three files as read together from one directory.

    Attributes:
        source: The directory the files were read from: the resolved ``..data``
            target when there is one, else the mounted directory itself.
        chain_pem: ``tls.crt``: the leaf certificate, then intermediates.
        key_pem: ``tls.key``. Excluded from ``repr``.
        trust_pem: ``ca.crt``: the trust anchors.
        signature: What the directory looked like when it was read (see `signature`).
    """

    source: pathlib.Path
    chain_pem: bytes
    key_pem: bytes = dataclasses.field(repr=False)
    trust_pem: bytes
    signature: Signature


def _stamp(path: pathlib.Path) -> FileStamp:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def _data_target(directory: pathlib.Path) -> str | None:
    try:
        return str((directory / DATA_LINK).readlink())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:  # ..data exists but is not a symlink: treat the directory as plain
        return None


def _source(directory: pathlib.Path, target: str | None) -> pathlib.Path:
    return directory if target is None else directory / target


def signature(directory: pathlib.Path) -> Signature:
    """A cheap fingerprint of the directory's current content, from ``stat`` calls only.

    It changes whenever the kubelet swaps ``..data`` (the target name is new) or a file
    is replaced or rewritten (inode, size or modification time change).

    Args:
        directory: The mounted Secret directory.

    Returns:
        An opaque, comparable value.
    """
    target = _data_target(directory)
    source = _source(directory, target)
    return target, tuple(_stamp(source / name) for name in _FILES)


def read(directory: pathlib.Path) -> Snapshot:
    """Read ``tls.crt``, ``tls.key`` and ``ca.crt`` as one consistent set.

    The signature is taken before the contents, so a change racing with the read
    makes the recorded signature stale (causing one extra reload later), never
    hides a change.

    Args:
        directory: The mounted Secret directory.

    Returns:
        The files' bytes and where they came from.

    Raises:
        CredentialsError: ``FileMissing`` when one of the three files does not exist.
    """
    missing = ""
    for _ in range(_READ_ATTEMPTS):
        target = _data_target(directory)
        source = _source(directory, target)
        stamp = target, tuple(_stamp(source / name) for name in _FILES)
        try:
            chain_pem, key_pem, trust_pem = ((source / name).read_bytes() for name in _FILES)
        except FileNotFoundError as err:
            missing = pathlib.Path(str(err.filename)).name
            if target is not None and _data_target(directory) != target:
                continue  # swapped under us: the old directory is gone, read the new one
            break
        return Snapshot(source, chain_pem, key_pem, trust_pem, stamp)
    raise errors.CredentialsError(
        "FileMissing", f"{directory}: {missing or 'a file'} is missing (need {', '.join(_FILES)})"
    )
