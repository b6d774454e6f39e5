"""The site CA: EC P-256 keys and X.509 certificates for devices, the broker and the site roles."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_KEY = "ca.key"
CA_CERT = "ca.crt"
SALT = "site.salt"
ISSUED = "issued"
CRL = "crl.pem"
REVOKED = "revoked.txt"

CA_DAYS = 3650
LEAF_DAYS = 730
# Clocks on a Pi without an RTC can lag before NTP syncs: backdate so a fresh cert is valid.
BACKDATE = dt.timedelta(hours=1)

SITE_ROLES = ("collector", "alerts", "roster", "dashboard", "queue")
"""The site tools' identities (SPEC 9.5), one certificate each, each with its own ACL
(provisioning/broker.py): `collector` (site collect), `alerts` (site alerts), `roster`
(site publish), `dashboard` (site dashboard), `queue` (the queue-calling system that
sends `cmd/prompt`)."""


class CAError(Exception):
    """A CA directory problem the technician can fix (missing, already there, unreadable)."""


def role_identity(role: str, site: str, n: int = 1) -> str:
    """A site role's certificate name: `collector.main`, `collector-2.main`, ... The dot keeps
    it out of the device-id pattern, so no device certificate can ever carry a role's name.
    The broker makes the name the client id, so each running tool needs its own: a second
    collector gets `collector-2.<site>`."""
    if role not in SITE_ROLES:
        raise CAError(f"unknown site role {role!r} (one of {', '.join(SITE_ROLES)})")
    return f"{role}.{site}" if n == 1 else f"{role}-{n}.{site}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _synced_temp(path: Path, data: bytes) -> str:
    """A new file beside `path`, of a name of its own, owner-only (mkstemp makes it 0600),
    holding `data` written whole and synced; removed again when that fails."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def write_secret(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a file atomically, owner-only (0600) from the first byte on disk until it is
    complete and synced; then give it `mode` and move it into place.

    The temporary file has a name of its own (never a fixed `<name>.tmp` another run, or a
    symlink planted there, could share) and is removed when writing fails (a full disk), so
    nothing half-written is left behind, under the final name or beside it."""
    tmp = _synced_temp(path, data)
    try:
        if mode != 0o600:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def create_secret(path: Path, data: bytes) -> None:
    """Create `path` (0600) with `data`, complete and synced, only if nothing is there yet:
    FileExistsError when another run (the same command started twice) made it first."""
    tmp = _synced_temp(path, data)
    try:
        os.link(tmp, path)  # atomic, and never replaces an existing file
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on `folder` (flock on the folder itself), waited for; released when
    the block ends or the process does."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_public(path: Path, data: bytes) -> None:
    """A public file (certificate, CRL, configuration), 0644, written atomically: a reader
    (Mosquitto reading crl.pem, the next run reading ca.crt) sees the old file or the new
    one, never an empty or truncated one."""
    write_secret(path, data, 0o644)


@dataclass(frozen=True)
class Issued:
    """A freshly issued identity: its certificate and private key, both PEM."""

    name: str
    cert: bytes
    key: bytes


class SiteCA:
    """A CA directory: `ca.key` (0600, never leaves the directory), `ca.crt`, `site.salt`, `issued/`."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)

    @classmethod
    def init(cls, directory: str | os.PathLike[str], name: str = "careterm site CA") -> SiteCA:
        ca = cls(directory)
        already = CAError(
            f"{ca.dir}: a CA is already there; a new one would orphan every device it signed "
            "(use another --dir, or move the old CA away on purpose)"
        )
        if (ca.dir / CA_KEY).exists() or (ca.dir / CA_CERT).exists():
            raise already
        try:
            ca.dir.mkdir(parents=True, exist_ok=True)
            os.chmod(ca.dir, 0o700)
        except OSError as e:
            raise CAError(
                f"{ca.dir}: cannot make the CA folder here ({e.strerror}); give --dir a new "
                "folder this user may create, e.g. ~/careterm-ca/<site>"
            ) from None
        key = _new_key()
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "careterm"),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        made: list[Path] = []
        try:
            create_secret(ca.dir / CA_KEY, key_pem(key))  # a second `ca init` at once loses
            made.append(ca.dir / CA_KEY)
            write_public(ca.dir / CA_CERT, cert_pem(cert))
            made.append(ca.dir / CA_CERT)
            (ca.dir / ISSUED).mkdir(exist_ok=True)
        except FileExistsError:
            raise already from None
        except OSError as e:
            # A key without its certificate (a full disk) would block `ca init` and every
            # `provision device` alike: keep nothing.
            for path in made:
                with contextlib.suppress(OSError):
                    path.unlink()
            raise CAError(
                f"{ca.dir}: cannot write the CA ({e.strerror}); nothing was kept: free some "
                "space (or choose another --dir) and run `careterm provision ca init` again"
            ) from None
        return ca

    # -- loading --------------------------------------------------------------------------

    def _load(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key_path, cert_path = self.dir / CA_KEY, self.dir / CA_CERT
        if not key_path.exists() or not cert_path.exists():
            raise CAError(
                f"{self.dir}: no CA here (run `careterm provision ca init --dir {self.dir}`)"
            )
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except (OSError, ValueError, TypeError) as e:
            raise CAError(f"{self.dir}: cannot read the CA key or certificate: {e}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CAError(f"{key_path}: not an EC key")
        return key, cert

    @property
    def cert_pem(self) -> bytes:
        return (self.dir / CA_CERT).read_bytes()

    def salt(self) -> bytes:
        """The site's card-token salt (64 hex characters), created here on first use."""
        self._load()
        path = self.dir / SALT
        try:
            if not path.exists():
                with contextlib.suppress(FileExistsError):  # another run made it first: use it
                    create_secret(path, (secrets.token_hex(32) + "\n").encode())
            data = path.read_bytes()
        except OSError as e:
            raise CAError(f"{path}: cannot create or read the site salt ({e.strerror})") from None
        if not data.strip():
            raise CAError(f"{path}: empty salt file; restore it from backup (tokens depend on it)")
        return data

    # -- issuing --------------------------------------------------------------------------

    def _issue(
        self,
        cn: str,
        *,
        client: bool,
        server: bool,
        hosts: list[str] | None = None,
        site: str = "",
        days: int = LEAF_DAYS,
    ) -> Issued:
        ca_key, ca_cert = self._load()
        if site:
            self._check_site(site, cn)
        key = _new_key()
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "careterm")]
        if site:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, site))
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
        now = _now()
        usages = []
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
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
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        issued_dir = self.dir / ISSUED
        try:
            issued_dir.mkdir(exist_ok=True)
            # A public record of every certificate signed: what a revocation list is built from.
            write_public(issued_dir / f"{cn}-{cert.serial_number:x}.crt", cert_pem(cert))
        except OSError as e:
            raise CAError(
                f"{issued_dir}: cannot record the certificate for {cn} ({e.strerror}); "
                "nothing was issued: free some space and run the command again"
            ) from None
        return Issued(cn, cert_pem(cert), key_pem(key))

    def sites(self) -> set[str]:
        """The sites this CA has issued certificates for (the OU of each issued record)."""
        found: set[str] = set()
        for record in (self.dir / ISSUED).glob("*.crt"):
            try:
                names = load_cert(record).subject.get_attributes_for_oid(
                    NameOID.ORGANIZATIONAL_UNIT_NAME
                )
            except (OSError, ValueError):
                continue
            found.update(str(n.value) for n in names)
        return found

    def _check_site(self, site: str, cn: str) -> None:
        """One CA, one site. The broker admits every certificate of its CA and the ACL knows
        only the certificate's name: a device issued for another site by the same CA would
        be admitted by this site's broker and could publish as one of its devices."""
        others = sorted(self.sites() - {site})
        if others:
            raise CAError(
                f"{self.dir} is the CA of site {others[0]!r}; a certificate for {cn!r} at "
                f"site {site!r} would be admitted by that site's broker too: make a CA for "
                f"site {site!r} (careterm provision ca init --dir <new folder>) and use it"
            )

    def issue_device(self, device_id: str, site: str, days: int = LEAF_DAYS) -> Issued:
        return self._issue(device_id, client=True, server=False, site=site, days=days)

    def issue_role(self, role: str, site: str, n: int = 1, days: int = LEAF_DAYS) -> Issued:
        name = role_identity(role, site, n)
        return self._issue(name, client=True, server=False, site=site, days=days)

    def issue_server(self, hosts: list[str], site: str, days: int = LEAF_DAYS) -> Issued:
        if not hosts:
            raise CAError("the broker certificate needs at least one --host name or address")
        return self._issue(hosts[0], client=False, server=True, hosts=hosts, site=site, days=days)

    def server_names(self) -> set[str]:
        """Every DNS name and address in a broker certificate this CA has issued."""
        names: set[str] = set()
        for record in (self.dir / ISSUED).glob("*.crt"):
            try:
                cert = load_cert(record)
                eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
                if ExtendedKeyUsageOID.SERVER_AUTH not in eku:
                    continue
                san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            except (OSError, ValueError, x509.ExtensionNotFound):
                continue
            names.update(san.get_values_for_type(x509.DNSName))
            names.update(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
        return names

    # -- revoking ------------------------------------------------------------------------

    def revoked_serials(self) -> set[int]:
        path = self.dir / REVOKED
        if not path.exists():
            return set()
        return {
            int(line.split()[0], 16)
            for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")
        }

    def valid_for(self, name: str) -> list[x509.Certificate]:
        """Certificates issued to `name` that are neither revoked nor expired."""
        revoked, now, out = self.revoked_serials(), _now(), []
        for record in sorted((self.dir / ISSUED).glob(f"{name}-*.crt")):
            try:
                cert = load_cert(record)
            except (OSError, ValueError):
                continue
            if (
                common_name(cert) == name
                and cert.serial_number not in revoked
                and cert.not_valid_after_utc > now
            ):
                out.append(cert)
        return out

    def revoke(self, name: str) -> list[int]:
        """Revoke every certificate issued so far to `name`; rewrite crl.pem. Returns the
        serials newly revoked. A bundle made afterwards for the same name is valid."""
        ca_key, ca_cert = self._load()
        serials = []
        for record in sorted((self.dir / ISSUED).glob(f"{name}-*.crt")):
            cert = load_cert(record)
            if common_name(cert) == name:
                serials.append(cert.serial_number)
        if not serials:
            raise CAError(f"{self.dir}: no certificate was issued to {name!r} by this CA")
        # One revocation at a time: two at once could each write crl.pem from the list as it
        # stood before the other's line, and the last one written would leave a device out.
        with _locked(self.dir):
            already = self.revoked_serials()
            new = [s for s in serials if s not in already]
            if new:
                with open(self.dir / REVOKED, "a", encoding="utf-8") as f:
                    for serial in new:
                        f.write(f"{serial:x} {name} {_now().isoformat(timespec='seconds')}\n")
                    f.flush()
                    os.fsync(f.fileno())
            self.write_crl(ca_key, ca_cert)
        return new

    def write_crl(
        self,
        ca_key: ec.EllipticCurvePrivateKey | None = None,
        ca_cert: x509.Certificate | None = None,
    ) -> Path:
        if ca_key is None or ca_cert is None:
            ca_key, ca_cert = self._load()
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now - BACKDATE)
            # An expired CRL makes the broker refuse every client: let it live as long as the CA.
            .next_update(ca_cert.not_valid_after_utc)
        )
        for serial in sorted(self.revoked_serials()):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(now - BACKDATE)
                .build()
            )
        crl = builder.sign(ca_key, hashes.SHA256())
        path = self.dir / CRL
        write_public(path, crl.public_bytes(serialization.Encoding.PEM))
        return path


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def load_cert(path: str | os.PathLike[str]) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""
