"""Device probes for `careterm doctor`: present and answering, or a message that says what to fix."""

from __future__ import annotations

from drivers.card_reader.sim import SamModule, SimCard
from drivers.probe import probe_devices


def by_name(checks):
    return {c.name: c for c in checks}


def test_id_card_module_that_answers_and_one_that_does_not(pty, sam_server, make_cfg) -> None:
    cfg = make_cfg(card_reader={"driver": "idcard", "device": pty.path},
                   printer={"driver": "none"})
    silent = by_name(probe_devices(cfg, timeout=0.3))["card_reader"]
    assert not silent.ok and "no answer" in silent.message and "baudrate" in silent.message
    module = SamModule()
    module.present(SimCard(number="11010519491231002X"))
    sam_server(pty.master, module)
    ok = by_name(probe_devices(cfg))["card_reader"]
    assert ok.ok and "card on the reader" in ok.message


def test_missing_devices_are_named(make_cfg, tmp_path) -> None:
    cfg = make_cfg("rating_pad", buttons={"driver": "serial", "device": str(tmp_path / "ttyUSB9")},
                   card_reader={"driver": "evdev", "device": str(tmp_path / "event9")})
    checks = by_name(probe_devices(cfg))
    assert not checks["buttons"].ok and "ttyUSB9" in checks["buttons"].message
    assert not checks["card_reader"].ok and "event9" in checks["card_reader"].message
    assert "printer" not in checks            # a pad has no printer


def test_printers(make_cfg, tmp_path) -> None:
    checks = by_name(probe_devices(make_cfg(printer={"driver": "sim", "device": str(tmp_path)})))
    assert checks["printer"].ok and checks["printer"].message == "online"
    checks = by_name(probe_devices(make_cfg(printer={"driver": "network", "device": "127.0.0.1:9"})))
    assert not checks["printer"].ok and "127.0.0.1:9" in checks["printer"].message
    checks = by_name(probe_devices(make_cfg(printer={"driver": "file", "device": str(tmp_path / "p.bin")})))
    assert checks["printer"].ok and "does not report" in checks["printer"].message
