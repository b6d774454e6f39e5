"""`provision install` refuses a careterm the hardened service could not run, and says how to fix it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from provisioning.bundle import read_bundle
from provisioning.install import (
    HIDDEN_BY,
    InstallError,
    hidden_paths,
    make_plan,
    render_unit,
    service_access_problem,
)
from tests.conftest import run_careterm

HOME = {"ProtectHome": HIDDEN_BY["ProtectHome"]}


@pytest.fixture(scope="module")
def pad_bundle(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bundle")
    assert run_careterm("provision", "ca", "init", "--dir", str(d / "ca")).returncode == 0
    out = d / "pad.tar.gz"
    r = run_careterm(
        "provision",
        "device",
        "--ca",
        str(d / "ca"),
        "--id",
        "pad-w03",
        "--role",
        "rating_pad",
        "--site",
        "main",
        "--broker",
        "mqtts://broker:8883",
        "--window",
        "W03",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture
def open_dir():
    """A folder other users may enter (pytest's own tmp folders are 0700)."""
    d = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="careterm-access-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _venv(base: Path, python: str, mode: int = 0o755) -> Path:
    """A venv-like tree: bin/python (a symlink to `python`) and the console script."""
    (base / "bin").mkdir(parents=True)
    (base / "bin" / "python").symlink_to(python)
    script = base / "bin" / "careterm"
    script.write_text(f"#!{base / 'bin' / 'python'}\nimport sys\n")
    script.chmod(mode)
    return script


def test_the_shipped_units_hide_home_and_tmp():
    for role in ("rating_pad", "kiosk"):
        hidden = hidden_paths(render_unit(role, "/opt/careterm/.venv/bin/careterm").decode())
        assert set(hidden) == {"ProtectHome", "PrivateTmp"}


def test_a_careterm_under_root_is_refused_before_anything_changes(pad_bundle):
    with pytest.raises(InstallError) as e:
        make_plan(read_bundle(pad_bundle), Path("/"), exe="/root/careterm/.venv/bin/careterm")
    msg = str(e.value)
    assert "/root" in msg and "ProtectHome=yes" in msg
    assert "/opt/careterm" in msg and "scripts/bootstrap --device pad" in msg


def test_a_venv_whose_python_leads_under_root_is_refused(open_dir):
    # The field case: a venv made from a pyenv Python in /root; its bin/python is a symlink.
    script = _venv(open_dir / "venv", "/root/.pyenv/versions/3.11.7/bin/python3.11")
    msg = service_access_problem(str(script), "kiosk", HOME, source=open_dir)
    assert msg is not None
    assert "its Python (where" in msg and "/root/.pyenv" in msg and "ProtectHome=yes" in msg
    assert "PYTHON=/usr/bin/python3" in msg and "--device kiosk" in msg


def test_a_folder_closed_to_other_users_is_refused_with_the_chmod(open_dir):
    closed = open_dir / "opt"
    script = _venv(closed / "careterm" / ".venv", os.path.realpath("/usr/bin/python3"))
    closed.chmod(0o700)
    try:
        msg = service_access_problem(str(script), "rating_pad", HOME, source=open_dir)
    finally:
        closed.chmod(0o755)
    assert msg is not None and f"sudo chmod o+rx {closed}" in msg


def test_a_script_other_users_cannot_read_is_refused(open_dir):
    script = _venv(open_dir / "venv", os.path.realpath("/usr/bin/python3"), mode=0o700)
    msg = service_access_problem(str(script), "rating_pad", HOME, source=open_dir)
    assert msg is not None and "not readable and executable by other users" in msg


def test_a_careterm_the_service_can_run_passes(open_dir):
    script = _venv(open_dir / "venv", os.path.realpath("/usr/bin/python3"))
    assert service_access_problem(str(script), "rating_pad", HOME, source=open_dir) is None


def test_a_scratch_root_install_records_the_problem_as_a_note(pad_bundle, tmp_path):
    plan = make_plan(read_bundle(pad_bundle), tmp_path / "root", exe="/root/x/.venv/bin/careterm")
    assert any("ProtectHome=yes" in n for n in plan.notes)
