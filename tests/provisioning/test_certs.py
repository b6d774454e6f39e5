"""The site CA and the certificates it issues (device, broker, site service)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioning.certs import SITE_ROLES, CAError, SiteCA, common_name, role_identity
from terminal.certinfo import cert_days_left
from tests.conftest import run_careterm


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_ca_init_keeps_the_key_private_and_refuses_to_overwrite(tmp_path):
    ca = SiteCA.init(tmp_path / "ca")
    assert mode(ca.dir / "ca.key") == 0o600
    assert mode(ca.dir) == 0o700
    cert = x509.load_pem_x509_certificate(ca.cert_pem)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    before = (ca.dir / "ca.key").read_bytes()
    res = run_careterm("provision", "ca", "init", "--dir", str(ca.dir))
    assert res.returncode == 2
    assert "already there" in res.stderr and "Traceback" not in res.stderr
    assert (ca.dir / "ca.key").read_bytes() == before


def test_device_certificate_names_the_device_and_is_for_clients_only(tmp_path):
    ca = SiteCA.init(tmp_path / "ca")
    issued = ca.issue_device("pad-w03", "main")
    cert = x509.load_pem_x509_certificate(issued.cert)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    cert.verify_directly_issued_by(ca_cert)
    assert common_name(cert) == "pad-w03"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "main"
    assert 725 <= cert_days_left_of(issued.cert) <= 730
    # the issued record is public, the key is not kept by the CA
    records = list((ca.dir / "issued").glob("pad-w03-*.crt"))
    assert len(records) == 1
    assert b"PRIVATE" not in records[0].read_bytes()


def cert_days_left_of(pem: bytes) -> int:
    cert = x509.load_pem_x509_certificate(pem)
    return (cert.not_valid_after_utc - dt.datetime.now(dt.UTC)).days


def test_server_certificate_carries_every_host_as_dns_name_or_address(tmp_path):
    ca = SiteCA.init(tmp_path / "ca")
    issued = ca.issue_server(["broker.hospital.local", "10.1.2.3", "::1"], "main")
    cert = x509.load_pem_x509_certificate(issued.cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker.hospital.local"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.1.2.3"),
        ipaddress.ip_address("::1"),
    ]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_no_site_role_name_can_ever_be_a_device_id(tmp_path):
    import re

    from terminal.config import NAME_PATTERN

    ca = SiteCA.init(tmp_path / "ca")
    for role in SITE_ROLES:
        for n in (1, 2):
            name = role_identity(role, "main", n)
            assert not re.match(NAME_PATTERN, name), name
            cert = x509.load_pem_x509_certificate(ca.issue_role(role, "main", n).cert)
            assert common_name(cert) == name
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert role_identity("collector", "main", 2) == "collector-2.main"
    with pytest.raises(CAError):
        role_identity("site-service", "main")


def test_cert_days_left_counts_down_and_never_raises(tmp_path):
    ca = SiteCA.init(tmp_path / "ca")
    (tmp_path / "d.crt").write_bytes(ca.issue_device("pad-w03", "main", days=20).cert)
    assert cert_days_left(tmp_path / "d.crt") in (19, 20)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")])
    old = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=400))
        .not_valid_after(now - dt.timedelta(days=3))
        .sign(key, hashes.SHA256())
    )
    from provisioning.certs import cert_pem

    (tmp_path / "old.crt").write_bytes(cert_pem(old))
    assert cert_days_left(tmp_path / "old.crt") in (-4, -3)
    (tmp_path / "junk.crt").write_text("not a certificate")
    assert cert_days_left(tmp_path / "junk.crt") is None
    assert cert_days_left(tmp_path / "missing.crt") is None
    assert cert_days_left("") is None


def test_issuing_without_a_ca_says_how_to_make_one(tmp_path):
    with pytest.raises(CAError, match="provision ca init"):
        SiteCA(tmp_path / "nothing").issue_device("pad-w03", "main")
    with pytest.raises(CAError, match="--host"):
        SiteCA.init(tmp_path / "ca").issue_server([], "main")
