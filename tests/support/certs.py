"""TLS for the tests: a trustme CA and a server certificate, written to files for the CLI."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

__all__ = ["Certificates", "make_certificates"]


@dataclass
class Certificates:
    """A test CA and one server certificate it issued, written to files for our server's CLI."""

    ca: trustme.CA
    cert: trustme.LeafCert
    certfile: Path
    keyfile: Path
    cafile: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


def make_certificates(directory: Path, *names: str) -> Certificates:
    ca = trustme.CA()
    cert = ca.issue_cert(*(names or ("127.0.0.1", "localhost", "::1")))
    certfile, keyfile, cafile = directory / "cert.pem", directory / "key.pem", directory / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    return Certificates(ca, cert, certfile, keyfile, cafile)
