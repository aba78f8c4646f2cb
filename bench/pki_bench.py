"""Micro-benchmark of the PKI core (not a test).

Measures the cost of issuing one ECDSA P-256 workload leaf (key generation, signing,
PEM encoding of key and chain) through `certmint.pki` against the same work done with
bare `cryptography` calls, the cost of encoding a claims value with pyasn1 when
`certmint.pki.claims` has not cached it, and the cost of one RSA-2048 key generation.

Run: ``.venv/bin/python bench/pki_bench.py [--rounds N]``
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyasn1.codec.der import encoder as der_encoder

from certmint.pki import ca, claims, issuing, keys, spiffe

NOW = datetime.datetime.now(datetime.UTC)
CLAIMS = {"role": ("reader", "writer"), "env": ("prod",)}


def _with_certmint(signer: ca.CertificateAuthority) -> bytes:
    key = keys.generate_private_key(keys.KeySpec())
    request = issuing.LeafRequest(
        public_key=key.public_key(),
        duration=datetime.timedelta(hours=1),
        spiffe_id=spiffe.workload_id("cluster.local", "payments", "api"),
        dns_names=("api.payments.svc",),
        claims=CLAIMS,
    )
    issued = issuing.issue(request, signer, NOW)
    return keys.private_key_to_pem(key) + issued.chain_pem


def _bare(signer: ca.CertificateAuthority, claims_der: bytes) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_ski = signer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(signer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(seconds=30))
        .not_valid_after(NOW + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.UniformResourceIdentifier("spiffe://cluster.local/ns/payments/sa/api"),
                    x509.DNSName("api.payments.svc"),
                ]
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski.value),
            critical=False,
        )
        .add_extension(x509.UnrecognizedExtension(claims.CLAIMS_OID, claims_der), critical=False)
        .sign(signer.private_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem + certificate.public_bytes(serialization.Encoding.PEM)


def _time(action: Callable[[], object], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def _row(name: str, samples: list[float]) -> str:
    median = statistics.median(samples) * 1000
    p90 = statistics.quantiles(samples, n=10)[-1] * 1000
    return f"{name:<44} {median:8.3f} ms  (p90 {p90:7.3f} ms, n={len(samples)})"


def main() -> None:
    """Run the benchmark and print a small table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500, help="rounds for the leaf benchmarks")
    parser.add_argument("--rsa-rounds", type=int, default=20, help="rounds for RSA-2048 keygen")
    arguments = parser.parse_args()

    signer = ca.generate_root_ca("bench", datetime.timedelta(days=1), keys.KeySpec(), NOW)
    # The bare variant gets its claims pre-encoded: it measures the certificate work only.
    claims_der = claims.encode_claims(CLAIMS)
    for _ in range(20):  # warm up
        _with_certmint(signer)
        _bare(signer, claims_der)

    certmint_samples = _time(lambda: _with_certmint(signer), arguments.rounds)
    bare_samples = _time(lambda: _bare(signer, claims_der), arguments.rounds)
    claims_samples = _time(
        lambda: der_encoder.encode(claims.to_asn1(sorted(CLAIMS.items()))), arguments.rounds
    )
    rsa_samples = _time(
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), arguments.rsa_rounds
    )
    ratio = statistics.median(certmint_samples) / statistics.median(bare_samples)
    print(_row("ECDSA P-256 leaf via certmint.pki", certmint_samples))
    print(_row("ECDSA P-256 leaf via bare cryptography", bare_samples))
    print(f"{'certmint.pki / bare ratio (medians)':<44} {ratio:8.2f}x")
    print(_row("claims extension encoding, uncached (pyasn1)", claims_samples))
    print(_row("RSA-2048 key generation", rsa_samples))


if __name__ == "__main__":
    main()
