"""Test PKI for the local Armada's TLS mode: a CA, a server and a client certificate."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TestPki:
    """PEM bytes of a throwaway CA and the certificates it signed."""

    __test__ = False  # not a pytest test class

    ca_cert: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write every PEM into ``directory``; returns name → path."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in ("ca_cert", "server_cert", "server_key", "client_cert", "client_key"):
            path = folder / f"{name}.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(getattr(self, name))
            path.chmod(0o600)  # an existing file keeps its old mode through O_CREAT
            paths[name] = path
        return paths


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _builder(
    subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
    )


def make_test_pki(hostnames: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")) -> TestPki:
    """A fresh CA with a server certificate for ``hostnames`` and a client certificate."""
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "armada-hooks test CA")])
    ca = (
        _builder("armada-hooks test CA", ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    sans: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    server_key = _key()
    server = (
        _builder(hostnames[0], ca_name, server_key)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    client_key = _key()
    client = (
        _builder("armada-hooks test client", ca_name, client_key)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return TestPki(
        ca_cert=ca.public_bytes(pem),
        server_cert=server.public_bytes(pem),
        server_key=_pem_key(server_key),
        client_cert=client.public_bytes(pem),
        client_key=_pem_key(client_key),
    )
