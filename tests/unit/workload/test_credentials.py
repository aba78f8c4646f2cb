"""Loading credentials from a mounted Secret directory, and following updates to it."""

from __future__ import annotations

import datetime
import pathlib
from collections.abc import Callable

import pytest

from certmint import workload
from certmint.pki import errors as pki_errors
from certmint.workload import files
from tests.unit.workload import support

NEVER = datetime.timedelta(days=1)
ALWAYS = datetime.timedelta(0)


def test_load_reads_a_kubelet_style_directory(pki: support.Pki, tmp_path: pathlib.Path) -> None:
    leaf = pki.leaf("payments", "api")
    generation_dir = support.publish(tmp_path, leaf.files)

    credentials = workload.load(tmp_path)

    assert (
        credentials.identity,
        credentials.trust_domain,
        credentials.certificate.serial_number,
        credentials.generation.source,
    ) == ("spiffe://cluster.local/ns/payments/sa/api", "cluster.local", leaf.serial, generation_dir)


def test_load_reads_a_plain_directory(pki: support.Pki, tmp_path: pathlib.Path) -> None:
    leaf = pki.leaf()
    support.write_plain(tmp_path, leaf.files)

    credentials = workload.load(tmp_path)

    assert (credentials.certificate.serial_number, credentials.generation.source) == (
        leaf.serial,
        tmp_path,
    )


def test_no_key_material_appears_in_reprs(pki: support.Pki, tmp_path: pathlib.Path) -> None:
    support.publish(tmp_path, pki.leaf().files)
    credentials = workload.load(tmp_path)

    shown = repr(credentials) + repr(credentials.generation) + str(credentials.generation)

    assert "PRIVATE KEY" not in shown
    assert "spiffe://cluster.local/ns/default/sa/api" in shown


def test_the_files_are_read_through_one_resolved_data_directory(
    pki: support.Pki, tmp_path: pathlib.Path
) -> None:
    leaf = pki.leaf()
    support.publish(tmp_path, leaf.files)
    # A stray top-level tls.key that a name-by-name reader would pair with the certificate.
    (tmp_path / "tls.key").unlink()
    (tmp_path / "tls.key").write_bytes(pki.leaf().key_pem)

    credentials = workload.load(tmp_path)

    assert credentials.certificate.serial_number == leaf.serial


def test_a_data_directory_removed_mid_read_is_resolved_again(
    pki: support.Pki, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaf = pki.leaf()
    support.publish(tmp_path, leaf.files)
    real = files._data_target
    answers = iter(["..2026_01_01_00_00_00.1"])  # the directory a swap just deleted
    monkeypatch.setattr(files, "_data_target", lambda d: next(answers, None) or real(d))

    credentials = workload.load(tmp_path)

    assert credentials.certificate.serial_number == leaf.serial


def _without(name: str) -> Callable[[support.Pki, support.Leaf], dict[str, bytes]]:
    return lambda pki, leaf: {k: v for k, v in leaf.files.items() if k != name}


def _replace(name: str, content: bytes) -> Callable[[support.Pki, support.Leaf], dict[str, bytes]]:
    return lambda pki, leaf: {**leaf.files, name: content}


@pytest.mark.parametrize(
    ("make_files", "reason", "message"),
    [
        pytest.param(
            _without("tls.key"),
            "FileMissing",
            "{dir}: tls.key is missing (need tls.crt, tls.key, ca.crt)",
            id="refuse a directory without tls.key",
        ),
        pytest.param(
            _without("ca.crt"),
            "FileMissing",
            "{dir}: ca.crt is missing (need tls.crt, tls.key, ca.crt)",
            id="refuse a directory without ca.crt",
        ),
        pytest.param(
            _replace("tls.crt", b"not a certificate"),
            "CertificateUnreadable",
            "tls.crt holds no readable PEM certificate",
            id="refuse a tls.crt that is not PEM",
        ),
        pytest.param(
            _replace("tls.key", b"not a key"),
            "KeyUnreadable",
            "tls.key: not a PEM-encoded private key certmint can read",
            id="refuse a tls.key that is not PEM",
        ),
        pytest.param(
            lambda pki, leaf: {**leaf.files, "tls.key": pki.leaf().key_pem},
            "KeyMismatch",
            "tls.key is not the key of the certificate in tls.crt (serial {serial:x}); "
            "is an update half-written?",
            id="refuse a key that belongs to another certificate",
        ),
        pytest.param(
            _replace("ca.crt", b""),
            "TrustBundleUnreadable",
            "ca.crt holds no readable PEM certificate",
            id="refuse an empty ca.crt",
        ),
    ],
)
def test_load_refuses_unusable_files(
    pki: support.Pki,
    tmp_path: pathlib.Path,
    make_files: Callable[[support.Pki, support.Leaf], dict[str, bytes]],
    reason: str,
    message: str,
) -> None:
    leaf = pki.leaf()
    support.publish(tmp_path, make_files(pki, leaf))

    with pytest.raises(workload.CredentialsError) as refused:
        workload.load(tmp_path)

    assert (refused.value.reason, refused.value.message) == (
        reason,
        message.format(dir=tmp_path, serial=leaf.serial),
    )


def test_an_unchanged_directory_is_not_reloaded(pki: support.Pki, tmp_path: pathlib.Path) -> None:
    support.publish(tmp_path, pki.leaf().files)
    credentials = workload.load(tmp_path)
    before = credentials.generation

    assert (credentials.reload_if_changed(), credentials.generation) == (False, before)


def test_a_kubelet_swap_is_loaded(pki: support.Pki, tmp_path: pathlib.Path) -> None:
    support.publish(tmp_path, pki.leaf().files)
    credentials = workload.load(tmp_path)
    renewed = pki.leaf()

    support.publish(tmp_path, renewed.files)

    assert (credentials.reload_if_changed(), credentials.certificate.serial_number) == (
        True,
        renewed.serial,
    )


def test_a_torn_swap_is_rejected_once_and_the_old_pair_kept(
    pki: support.Pki, tmp_path: pathlib.Path
) -> None:
    first, renewed = pki.leaf(), pki.leaf()
    support.publish(tmp_path, first.files)
    reported: list[workload.CredentialsError] = []
    credentials = workload.load(tmp_path, on_reload_error=reported.append)

    support.publish(tmp_path, {**renewed.files, "tls.key": first.key_pem})
    outcomes = [credentials.reload_if_changed(), credentials.reload_if_changed()]

    assert outcomes == [False, False]
    assert credentials.certificate.serial_number == first.serial
    assert [err.reason for err in reported] == ["KeyMismatch"]
    assert credentials.last_error is reported[0]


def test_the_fixed_update_after_a_torn_one_is_loaded(
    pki: support.Pki, tmp_path: pathlib.Path
) -> None:
    first, renewed = pki.leaf(), pki.leaf()
    support.publish(tmp_path, first.files)
    credentials = workload.load(tmp_path)
    support.publish(tmp_path, {**renewed.files, "tls.key": first.key_pem})
    credentials.reload_if_changed()

    support.publish(tmp_path, renewed.files)

    assert credentials.reload_if_changed()
    assert (credentials.certificate.serial_number, credentials.last_error) == (
        renewed.serial,
        None,
    )


def test_a_plain_directory_written_file_by_file_is_loaded_only_when_complete(
    pki: support.Pki, tmp_path: pathlib.Path
) -> None:
    first, renewed = pki.leaf(), pki.leaf()
    support.write_plain(tmp_path, first.files)
    credentials = workload.load(tmp_path)

    support.write_plain(tmp_path, {"tls.crt": renewed.chain_pem})
    halfway = (credentials.reload_if_changed(), credentials.certificate.serial_number)
    support.write_plain(tmp_path, {"tls.key": renewed.key_pem})
    complete = (credentials.reload_if_changed(), credentials.certificate.serial_number)

    assert (halfway, complete) == ((False, first.serial), (True, renewed.serial))


@pytest.mark.parametrize(
    ("interval", "expect_new"),
    [
        pytest.param(ALWAYS, True, id="a zero check interval looks at the files every time"),
        pytest.param(NEVER, False, id="a long check interval does not look again yet"),
    ],
)
def test_current_looks_at_the_files_at_most_once_per_interval(
    pki: support.Pki, tmp_path: pathlib.Path, interval: datetime.timedelta, expect_new: bool
) -> None:
    first, renewed = pki.leaf(), pki.leaf()
    support.publish(tmp_path, first.files)
    credentials = workload.load(tmp_path, check_interval=interval)

    support.publish(tmp_path, renewed.files)

    expected = renewed.serial if expect_new else first.serial
    assert credentials.current().serial_number == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(None, "cluster.local", id="default to the workload's own trust domain"),
        pytest.param("partner.example", "partner.example", id="an explicit one wins"),
    ],
)
def test_the_expected_trust_domain(
    pki: support.Pki, tmp_path: pathlib.Path, given: str | None, expected: str
) -> None:
    support.publish(tmp_path, pki.leaf().files)

    assert workload.load(tmp_path, trust_domain=given).trust_domain == expected


def test_an_invalid_trust_domain_is_refused(pki: support.Pki, tmp_path: pathlib.Path) -> None:
    support.publish(tmp_path, pki.leaf().files)

    with pytest.raises(pki_errors.PKIError) as refused:
        workload.load(tmp_path, trust_domain="Cluster.Local")

    assert str(refused.value) == (
        "trust_domain: the trust domain 'Cluster.Local' contains 'C', outside [a-z0-9._-]; "
        "trust domains are lowercase"
    )
