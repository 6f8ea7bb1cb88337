"""The programs the deployment checks run: Debian's nginx, kubectl (its kustomize), and the
checkers installed with the dev dependencies. A missing one skips its test, or fails it when
`CI=true`."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NGINX_DIR = DEPLOY / "nginx"
INSTALL = {
    "nginx": "apt-get install -y nginx (scripts/test does, as root)",
    "kubectl": "kubectl (its kustomize renders deploy/k8s); it comes with this machine's image",
}
OPTIONAL = frozenset({"kubectl"})
"""Skipped even when CI=true: no package registry here has a kubectl new enough for the
kustomizations (Debian's is 1.20), so only the rendering of the overlays waits for it; every
manifest file is still checked against the schemas without it."""


def required(program: str) -> str:
    """The path of `program`: on PATH, in /usr/sbin (nginx), or beside this Python (the venv's
    own tools)."""
    path = os.pathsep.join(
        [os.environ.get("PATH", ""), "/usr/sbin", str(Path(sys.executable).parent)]
    )
    found = shutil.which(program, path=path)
    if found:
        return found
    message = f"{program} is missing: {INSTALL.get(program, 'uv sync (a dev dependency)')}"
    if os.environ.get("CI") == "true" and program not in OPTIONAL:
        pytest.fail(message)
    pytest.skip(message)


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)


def write_certificate(directory: Path, name: str = "tls") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (certificate, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
