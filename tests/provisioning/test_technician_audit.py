"""The technician's audit of 2026-12-03: wrong input, full disks, two runs at once, a bundle
that would hand a system folder to the service, one CA for two sites.

Each test failed before its fix (checked when it was written)."""

from __future__ import annotations

import errno
import fcntl
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from provisioning import certs
from provisioning.bundle import MEMBERS, write_bundle
from provisioning.certs import CAError, SiteCA
from tests.conftest import careterm_cmd, careterm_env, run_careterm
from tests.provisioning.conftest import unpack
from tests.provisioning.test_bundle import provision as provision_device


def provision(ca: Path, out: Path, *args: str, device_id: str = "pad-w03", site: str = "main"):
    return provision_device(ca, out, "--window", "W03", *args, device_id=device_id, site=site)


def one_line(res) -> str:  # type: ignore[no-untyped-def]
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, res.stderr
    return res.stderr


def issued(ca: Path) -> list[str]:
    return sorted(p.name for p in (ca / "issued").iterdir())


# -- names that would split the broker's files ------------------------------------------------


def test_a_site_name_with_a_trailing_newline_never_reaches_the_acl(ca, tmp_path):
    # re.match(`^...$`) let "main\n" through: the ACL got `pattern write careterm/main` and a
    # line `/%u/status` of its own, and identities such as 'collector.main\n'.
    res = run_careterm(
        "provision",
        "broker",
        "--ca",
        str(ca),
        "--site",
        "main\n",
        "--out",
        str(tmp_path / "b"),
        "--host",
        "localhost",
    )
    assert "--site" in one_line(res)
    assert not (tmp_path / "b").exists()
    assert issued(ca) == []


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--host", "broker.hospital.local:8883"),
        ("--host", "mqtts://broker.hospital.local"),
        ("--topic-root", "careterm/#"),
        ("--topic-root", "care\ntopic readwrite #"),
    ],
)
def test_broker_hosts_and_topic_roots_are_checked_before_anything_is_issued(
    ca, tmp_path, option, value
):
    args = ["--host", "localhost"] if option != "--host" else []
    res = run_careterm(
        "provision",
        "broker",
        "--ca",
        str(ca),
        "--site",
        "main",
        "--out",
        str(tmp_path / "b"),
        *args,
        option,
        value,
    )
    assert option in one_line(res)
    assert not (tmp_path / "b").exists() and issued(ca) == []


# -- bundles that cannot be written ------------------------------------------------------------


def test_a_bundle_the_disk_refuses_leaves_no_file_behind(tmp_path, monkeypatch):
    real_write = os.write

    def full(fd: int, data) -> int:  # type: ignore[no-untyped-def]
        real_write(fd, bytes(data)[:100])  # part of it reaches the disk, then it is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(certs.os, "write", full)
    out = tmp_path / "out" / "pad.tar.gz"
    with pytest.raises(OSError):
        write_bundle(out, {m: b"x" for m in MEMBERS})
    assert list((tmp_path / "out").iterdir()) == []  # no pad.tar.gz, no pad.tar.gz.tmp


def test_a_bad_out_path_is_refused_before_a_certificate_is_issued(ca, tmp_path):
    (tmp_path / "afile").write_text("")
    for out, says in (
        (tmp_path, "that is a folder"),
        (tmp_path / "afile" / "pad.tar.gz", "is a file, not a folder"),
    ):
        assert says in one_line(provision(ca, out))
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert issued(ca) == []


# -- the CA ------------------------------------------------------------------------------------


def test_ca_init_on_a_full_disk_keeps_nothing_and_can_be_run_again(tmp_path, monkeypatch):
    real = certs.write_secret

    def full(path: Path, data: bytes, mode: int = 0o600) -> None:
        if path.name == certs.CA_CERT:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data, mode)

    monkeypatch.setattr(certs, "write_secret", full)
    with pytest.raises(CAError, match="nothing was kept"):
        SiteCA.init(tmp_path / "ca")
    assert sorted(p.name for p in (tmp_path / "ca").iterdir()) == []
    monkeypatch.setattr(certs, "write_secret", real)
    SiteCA.init(tmp_path / "ca").issue_device("pad-w03", "main")  # a usable CA


def test_ca_init_on_a_file_says_so_in_one_line(tmp_path):
    (tmp_path / "afile").write_text("")
    res = run_careterm("provision", "ca", "init", "--dir", str(tmp_path / "afile"))
    assert "cannot make the CA folder" in one_line(res)


def test_two_ca_inits_at_once_never_pair_one_key_with_the_other_certificate(tmp_path, monkeypatch):
    ca_dir = tmp_path / "ca"
    real_new_key = certs._new_key

    def other_run_first():  # type: ignore[no-untyped-def]
        key = real_new_key()
        # The other `ca init`, started at the same moment, writes its key first.
        ca_dir.mkdir(parents=True, exist_ok=True)
        (ca_dir / certs.CA_KEY).write_bytes(b"the other run's key")
        return key

    monkeypatch.setattr(certs, "_new_key", other_run_first)
    with pytest.raises(CAError, match="already there"):
        SiteCA.init(ca_dir)
    assert (ca_dir / certs.CA_KEY).read_bytes() == b"the other run's key"
    assert not (ca_dir / certs.CA_CERT).exists()


def test_two_first_bundles_at_once_get_one_site_salt(tmp_path, monkeypatch):
    ca = SiteCA.init(tmp_path / "ca")
    real = certs.secrets.token_hex

    def other_run_first(n: int) -> str:
        # The other `provision device` made the salt between our look and our write.
        (ca.dir / certs.SALT).write_text("f" * 64 + "\n")
        return real(n)

    monkeypatch.setattr(certs.secrets, "token_hex", other_run_first)
    assert ca.salt() == b"f" * 64 + b"\n"  # the salt on disk, the one every device gets
    assert (ca.dir / certs.SALT).read_bytes() == b"f" * 64 + b"\n"


def test_one_ca_issues_for_one_site_only(ca, tmp_path):
    assert provision(ca, tmp_path / "a.tar.gz").returncode == 0
    res = provision(ca, tmp_path / "b.tar.gz", device_id="pad-x1", site="annex")
    assert "is the CA of site 'main'" in one_line(res)
    assert not (tmp_path / "b.tar.gz").exists()
    with pytest.raises(CAError, match="site 'main'"):
        SiteCA(ca).issue_server(["localhost"], "annex")


def test_a_second_bundle_for_one_id_warns_and_says_how_to_revoke(ca, tmp_path):
    first = provision(ca, tmp_path / "a.tar.gz")
    assert first.returncode == 0 and "already has" not in first.stderr
    again = provision(ca, tmp_path / "b.tar.gz")
    assert again.returncode == 0, again.stderr
    assert "pad-w03 already has 1 valid certificate" in again.stderr
    assert "provision revoke" in again.stderr and "another --id" in again.stderr


# -- install -----------------------------------------------------------------------------------


def repack(bundle: Path, out: Path, old: str, new: str) -> Path:
    files = {}
    with tarfile.open(bundle) as tar:
        for m in MEMBERS:
            f = tar.extractfile(m)
            assert f is not None
            files[m] = f.read()
    files["device.toml"] = files["device.toml"].replace(old.encode(), new.encode())
    with tarfile.open(out, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


@pytest.mark.parametrize("data_dir", ["/etc", "/var/lib", "/srv", "/home/pi/careterm", "/"])
def test_provision_refuses_a_data_dir_install_would_hand_over(ca, tmp_path, data_dir):
    res = provision(ca, tmp_path / "p.tar.gz", "--set", f"device.data_dir={data_dir}")
    assert "device.data_dir" in one_line(res) and "/var/lib/careterm" in res.stderr
    assert not (tmp_path / "p.tar.gz").exists()


def test_install_never_gives_a_system_folder_to_the_service(ca, tmp_path):
    # A bundle edited by hand (or by someone else) with data_dir = "/etc": install made /etc
    # careterm:careterm 0750 and writable by the service (ReadWritePaths=/etc).
    assert provision(ca, tmp_path / "p.tar.gz").returncode == 0
    bad = repack(tmp_path / "p.tar.gz", tmp_path / "etc.tar.gz", "/var/lib/careterm", "/etc")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    res = run_careterm("provision", "install", "--bundle", str(bad), "--root", str(root))
    assert res.returncode == 2 and "device.data_dir" in res.stderr, res.stderr
    assert sorted(p.name for p in root.rglob("*")) == ["etc"]  # nothing written, no plan


def test_install_refuses_a_data_dir_that_holds_other_files(ca, tmp_path):
    assert (
        provision(ca, tmp_path / "p.tar.gz", "--set", "device.data_dir=/srv/data").returncode == 0
    )
    root = tmp_path / "root"
    (root / "srv/data").mkdir(parents=True)
    (root / "srv/data/other.db").write_text("someone else's")
    res = run_careterm(
        "provision", "install", "--bundle", str(tmp_path / "p.tar.gz"), "--root", str(root)
    )
    assert res.returncode == 1 and "already holds other files" in res.stderr, res.stderr
    assert not (root / "careterm-install-plan.json").exists()
    # A folder that already holds careterm's outbox is careterm's: a re-install goes on.
    (root / "srv/data/other.db").unlink()
    (root / "srv/data/outbox.sqlite").write_bytes(b"")
    (root / "srv/data/other.db").write_text("state")
    res = run_careterm(
        "provision", "install", "--bundle", str(tmp_path / "p.tar.gz"), "--root", str(root)
    )
    assert res.returncode == 0, res.stderr


def test_a_second_install_at_the_same_time_is_refused(ca, tmp_path):
    assert provision(ca, tmp_path / "p.tar.gz").returncode == 0
    root = tmp_path / "root"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the first install, still running
        res = run_careterm(
            "provision", "install", "--bundle", str(tmp_path / "p.tar.gz"), "--root", str(root)
        )
    finally:
        os.close(fd)
    assert res.returncode == 1 and "another `careterm provision install`" in res.stderr
    assert list(root.iterdir()) == []


# -- doctor ------------------------------------------------------------------------------------


def test_doctor_fails_a_device_key_or_salt_other_users_can_read(ca, tmp_path):
    import tests.provisioning.test_doctor as td
    from tests.conftest import free_port

    assert provision(ca, tmp_path / "p.tar.gz").returncode == 0
    ident = tmp_path / "ident"
    unpack(tmp_path / "p.tar.gz", ident)
    cfg = td.write_config(
        tmp_path / "pad.toml",
        device_id="pad-w03",
        role="rating_pad",
        port=free_port(),  # nothing listens: the network checks fail fast
        ident=ident,
        data_dir=tmp_path / "data",
    )
    _, by = td.doctor(cfg)
    td.assert_line(by, "secrets", "ok", "device.key", "site.salt")

    os.chmod(ident / "device.key", 0o644)  # copied by hand with the wrong mode
    os.chmod(ident / "site.salt", 0o644)
    res, by = td.doctor(cfg)
    assert res.returncode == 1
    td.assert_line(by, "secrets", "FAIL", "device.key", "other users can read it", "1 more")
    assert f"chmod 0640 {ident / 'device.key'} {ident / 'site.salt'}" in by["secrets"]
    assert "BEGIN" not in res.stdout  # never the key itself


# -- device.toml -------------------------------------------------------------------------------


def test_relative_paths_are_refused_by_config_check_and_doctor(ca, tmp_path):
    # `config check` run in /etc/careterm found ca.crt beside the file and said ok; the
    # service, started by systemd in /, found nothing.
    assert provision(ca, tmp_path / "p.tar.gz").returncode == 0
    etc = tmp_path / "etc"
    unpack(tmp_path / "p.tar.gz", etc)
    text = (etc / "device.toml").read_text().replace("/etc/careterm/", "")
    text = text.replace('"/var/lib/careterm"', f'"{tmp_path / "data"}"')
    (etc / "device.toml").write_text(text)
    res = subprocess.run(
        careterm_cmd("config", "check", "device.toml"),
        cwd=etc,
        capture_output=True,
        text=True,
        timeout=60,
        env=careterm_env(),
    )
    assert res.returncode == 2, res.stdout + res.stderr
    assert "mqtt.ca_file: ca.crt: a relative path" in res.stderr
    assert f"write the full path, e.g. {etc / 'ca.crt'}" in res.stderr
    res = subprocess.run(
        careterm_cmd("doctor", "--config", "device.toml"),
        cwd=etc,
        capture_output=True,
        text=True,
        timeout=60,
        env=careterm_env(CARETERM_CLOCK_SYNCED="1"),
    )
    paths = next(ln for ln in res.stdout.splitlines() if ln.split()[1] == "paths")
    assert paths.startswith("FAIL") and "relative path" in paths and "-> fix:" in paths


def test_doctor_piped_into_a_reader_that_stops_early_prints_no_error(tmp_path):
    read, write = os.pipe()
    os.close(read)  # `careterm doctor | head -1`, once head has gone
    try:
        res = subprocess.run(
            careterm_cmd("doctor", "--config", str(tmp_path / "none.toml")),
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env=careterm_env(),
        )
    finally:
        os.close(write)
    assert res.returncode == 1
    assert "BrokenPipe" not in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_revocations_wait_for_each_other_so_the_crl_misses_none(ca, tmp_path):
    """Two `provision revoke` at once could each write crl.pem from the list as it stood
    before the other's line: the last one written left a lost device out. A revocation now
    waits for the CA folder's lock (held here by the test) and then lists both."""
    import threading

    from cryptography import x509

    provision(ca, tmp_path / "a.tar.gz", device_id="pad-a")
    provision(ca, tmp_path / "b.tar.gz", device_id="pad-b")
    site_ca = SiteCA(ca)
    site_ca.revoke("pad-a")
    fd = os.open(ca, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        done = threading.Event()
        worker = threading.Thread(target=lambda: (SiteCA(ca).revoke("pad-b"), done.set()))
        worker.start()
        assert not done.wait(0.5), "revoke did not wait for the CA folder's lock"
    finally:
        os.close(fd)
    worker.join(30)
    assert done.is_set()
    crl = x509.load_pem_x509_crl((ca / certs.CRL).read_bytes())
    assert len(list(crl)) == 2


def test_a_bundle_written_over_an_existing_one_says_so(ca, tmp_path):
    out = tmp_path / "p.tar.gz"
    assert "replaced" not in provision(ca, out).stderr
    again = provision(ca, out, device_id="pad-w04")
    assert again.returncode == 0 and f"--out {out} exists and is replaced" in again.stderr
