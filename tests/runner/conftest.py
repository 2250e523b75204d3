"""Fixtures for the runner tests: the fake GitHub server, the executable test provider, keys and certs.

Nothing here needs a database; everything that listens binds 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

import pygarm.testing.test_provider
from pygarm.runner.providers import ExternalProvider, ExternalProviderConfig
from pygarm.testing.fake_github import FakeGithubServer, running_fake_github

TEST_PROVIDER = Path(pygarm.testing.test_provider.__file__)
CONTROLLER_ID = "9b1f0c8e-2f4a-4c1e-9a43-5d0c6a7b8e21"
POOL_ID = "31b2a6c4-6d3e-4f0a-8c55-1e2d3f4a5b6c"
PASSTHROUGH_PREFIXES = ("TEST_PROVIDER_", "LAB_")


@pytest.fixture
def fake_github() -> Iterator[FakeGithubServer]:
    """A fresh fake GitHub (PAT ``ghp_fake``) on a free loopback port, stopped after the test."""
    with running_fake_github() as server:
        yield server


@dataclass
class ProviderHarness:
    """Builds :class:`ExternalProvider` objects around ``pygarm.testing.test_provider``; reads its records."""

    state_dir: Path
    environ: dict[str, str]
    config_file: str = ""

    def provider(self, *, timeout: float | None = 20.0, executable: str | None = None) -> ExternalProvider:
        config = ExternalProviderConfig(
            name="fake",
            description="test provider",
            provider_executable=executable or str(TEST_PROVIDER),
            config_file=self.config_file,
            environment_variables=PASSTHROUGH_PREFIXES,
        )
        return ExternalProvider(config, CONTROLLER_ID, timeout=timeout, environ=self.environ)

    def knob(self, name: str, value: str) -> None:
        """Set a ``TEST_PROVIDER_*`` knob; it reaches the provider through the pass-through list."""
        self.environ["TEST_PROVIDER_" + name.upper()] = value

    def invocations(self) -> list[dict[str, Any]]:
        directory = self.state_dir / "invocations"
        if not directory.exists():
            return []
        return [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]

    def last_invocation(self) -> dict[str, Any]:
        found = self.invocations()
        assert found, "the provider was never run"
        return found[-1]


@pytest.fixture
def provider_harness(tmp_path: Path) -> ProviderHarness:
    state = tmp_path / "provider-state"
    environ = {
        "TEST_PROVIDER_STATE_DIR": str(state),
        "LAB_TEST": "lab-value",
        "GARM_SNEAKY": "must-not-pass",  # matches no prefix
        "TEST_PROVIDER_GARM": "passes",  # GARM in the middle of a name is fine
        "PATH": "/usr/bin:/bin",
        "HOME": "/root",
    }
    return ProviderHarness(state_dir=state, environ=environ)


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def rsa_pkcs1_pem(rsa_key: rsa.RSAPrivateKey) -> bytes:
    """The app private key as GitHub hands it out: PKCS#1 (``BEGIN RSA PRIVATE KEY``)."""
    return rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="session")
def rsa_public_pem(rsa_key: rsa.RSAPrivateKey) -> bytes:
    return rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True)
class TLSFiles:
    ca_pem: bytes
    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="session")
def make_tls(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], TLSFiles]:
    """A private CA plus a server certificate for 127.0.0.1 signed by it, written to files."""

    def build(label: str) -> TLSFiles:
        now = dt.datetime.now(dt.UTC)
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name(f"pygarm test CA {label}"))
            .issuer_name(_name(f"pygarm test CA {label}"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        server_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("127.0.0.1"))
            .issuer_name(ca_cert.subject)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        directory = tmp_path_factory.mktemp(f"tls-{label}")
        cert_file = directory / "server.pem"
        key_file = directory / "server.key"
        cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            server_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return TLSFiles(ca_cert.public_bytes(serialization.Encoding.PEM), cert_file, key_file)

    return build
