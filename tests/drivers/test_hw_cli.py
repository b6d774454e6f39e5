"""`careterm hw ...` as a technician runs it: a subprocess against ptys, files and fake sysfs trees."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from drivers.card_reader.sim import SamModule, SimCard
from drivers.hwlist import input_devices, serial_ports, usb_printers
from drivers.printer.escpos_decode import decode
from tests.conftest import careterm_cmd, careterm_env, run_careterm
from tests.drivers.test_classify import spec_token

GOOD = "11010519491231002X"
BAD_CHECK = "110105194912310021"


def kiosk_config(config_writer, salt_file: Path, extra: str) -> Path:
    return config_writer(
        role="kiosk", device_id="kiosk-01", extra=f'[privacy]\nsalt_file = "{salt_file}"\n{extra}'
    )


def test_card_reader_prints_token_and_mask_and_only_the_problem_for_a_bad_check_digit(
    pty, sam_server, config_writer, salt_file
) -> None:
    module = SamModule()
    sam_server(pty.master, module)
    cfg = kiosk_config(
        config_writer, salt_file, f'[card_reader]\ndriver = "idcard"\ndevice = "{pty.path}"\n'
    )

    module.present(SimCard(number=BAD_CHECK, name="李四"))
    bad = run_careterm(
        "hw", "test", "card-reader", "--config", str(cfg), "--count", "1", "--timeout", "3"
    )
    assert bad.returncode == 0, bad.stderr
    assert [json.loads(x) for x in bad.stdout.splitlines()] == [
        {
            "kind": "id_card",
            "token": None,
            "masked": "",
            "name_masked": None,
            "valid": False,
            "problem": "check_digit",
        }
    ]
    assert BAD_CHECK not in bad.stdout + bad.stderr and "李四" not in bad.stdout + bad.stderr

    module.remove()
    module.present(SimCard(number=GOOD, name="张三丰"))
    good = run_careterm(
        "hw", "test", "card-reader", "--config", str(cfg), "--count", "1", "--timeout", "10"
    )
    assert good.returncode == 0, good.stderr
    lines = good.stdout.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {
        "kind": "id_card",
        "token": spec_token("id_card", GOOD),
        "masked": "1101**********002X",
        "name_masked": "张**",
        "valid": True,
    }
    assert GOOD not in good.stdout + good.stderr and "张三丰" not in good.stdout + good.stderr


def test_card_reader_keyboard_driver_reads_typed_lines(config_writer, salt_file) -> None:
    cfg = kiosk_config(config_writer, salt_file, '[card_reader]\ndriver = "keyboard"\n')
    p = subprocess.run(
        careterm_cmd("hw", "test", "card-reader", "--config", str(cfg)),
        input="S1024\nnonsense\nCT1:A20261123-0042\n",
        capture_output=True,
        text=True,
        timeout=30,
        env=careterm_env(),
    )
    assert p.returncode == 0, p.stderr
    out = [json.loads(x) for x in p.stdout.splitlines()]
    assert [o["kind"] for o in out] == ["staff_card", "appointment_qr"]
    assert out[0]["token"] == spec_token("staff_card", "1024")


def test_buttons_over_a_serial_pty(pty, config_writer, salt_file) -> None:
    cfg = config_writer(
        extra='[buttons]\ndriver = "serial"\n'
        f'device = "{pty.path}"\n'
        'keys = { "1" = 1, "4" = 4, "P" = "prompt" }\n'
    )
    proc = subprocess.Popen(
        careterm_cmd(
            "hw", "test", "buttons", "--config", str(cfg), "--count", "3", "--timeout", "15"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=careterm_env(),
    )
    try:
        # wait for the port to be open (its state line on stderr), then press keys
        line = proc.stderr.readline()
        assert "buttons: ok" in line, line
        for key in (b"4", b"x", b"P", b"1"):
            pty.write(key)
            time.sleep(0.15)  # beyond the 80 ms debounce
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert [json.loads(x) for x in out.splitlines()] == [
        {"key": "4", "action": 4},
        {"key": "P", "action": "prompt"},
        {"key": "1", "action": 1},
    ]


def test_printer_file_driver_prints_a_decodable_test_ticket(
    config_writer, salt_file, tmp_path
) -> None:
    out = tmp_path / "printer.bin"
    cfg = kiosk_config(
        config_writer, salt_file, f'[printer]\ndriver = "file"\ndevice = "{out}"\ncolumns = 32\n'
    )
    p = run_careterm("hw", "test", "printer", "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    status = json.loads(p.stdout)
    assert status["printed"] is True and status["online"] is None  # a file cannot tell
    t = decode(out.read_bytes())
    assert t.find("打印测试") and any(ln.double for ln in t.lines) and t.qr and t.cut


def test_printer_sim_driver_reports_status_and_the_ticket_file(config_writer, salt_file) -> None:
    cfg = kiosk_config(config_writer, salt_file, '[printer]\ndriver = "sim"\n')
    p = run_careterm("hw", "test", "printer", "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    status = json.loads(p.stdout)
    assert status["online"] is True and status["paper_out"] is False
    assert Path(status["file"]).is_file() and Path(status["file"]).with_suffix(".png").is_file()


def test_unreachable_printer_exits_1_with_the_reason(config_writer, salt_file) -> None:
    cfg = kiosk_config(
        config_writer, salt_file, '[printer]\ndriver = "network"\ndevice = "127.0.0.1:9"\n'
    )
    p = run_careterm("hw", "test", "printer", "--config", str(cfg), timeout=30)
    assert p.returncode == 1
    status = json.loads(p.stdout)
    assert status["printed"] is False and "127.0.0.1:9" in status["error"]


def test_configuration_problems_exit_2_naming_the_key(config_writer, salt_file, tmp_path) -> None:
    cfg = kiosk_config(config_writer, salt_file, '[card_reader]\ndriver = "none"\n')
    p = run_careterm("hw", "test", "card-reader", "--config", str(cfg))
    assert p.returncode == 2 and "card_reader.driver" in p.stderr
    cfg2 = config_writer(
        name="nosalt.toml",
        role="kiosk",
        extra=f'[privacy]\nsalt_file = "{tmp_path}/missing.salt"\n'
        '[card_reader]\ndriver = "serial"\ndevice = "/dev/null"\n',
    )
    p = run_careterm("hw", "test", "card-reader", "--config", str(cfg2))
    assert p.returncode == 2 and "privacy.salt_file" in p.stderr and "Traceback" not in p.stderr
    p = run_careterm("hw", "test", "buttons", "--config", str(cfg), "--count", "0")
    assert p.returncode == 2
    cfg3 = kiosk_config(config_writer, salt_file, '[printer]\ndriver = "usb"\nprofile = "nope"\n')
    p = run_careterm("hw", "test", "printer", "--config", str(cfg3))
    assert p.returncode == 2 and "printer.profile" in p.stderr


def test_hw_list_runs_here() -> None:
    p = run_careterm("hw", "list")
    assert p.returncode == 0 and "Serial ports:" in p.stdout and "USB printers:" in p.stdout
    p = run_careterm("hw", "list", "--json")
    assert p.returncode == 0
    for line in p.stdout.splitlines():
        assert json.loads(line)["type"] in ("serial", "input", "usb_printer")


def test_hw_list_reads_by_id_names_and_usb_ids_from_a_fake_tree(tmp_path) -> None:
    dev, sys_ = tmp_path / "dev", tmp_path / "sys"
    (dev / "serial" / "by-id").mkdir(parents=True)
    (dev / "input" / "by-id").mkdir(parents=True)
    (dev / "ttyUSB0").touch()
    (dev / "input" / "event5").touch()
    os.symlink("../../ttyUSB0", dev / "serial" / "by-id" / "usb-1a86_USB_Serial-if00-port0")
    os.symlink("../event5", dev / "input" / "by-id" / "usb-Scanner-event-kbd")
    usbdev = sys_ / "devices" / "usb1" / "1-2"
    iface = usbdev / "1-2:1.0"
    iface.mkdir(parents=True)
    for k, v in {"idVendor": "1a86", "idProduct": "7523", "product": "USB Serial"}.items():
        (usbdev / k).write_text(v + "\n")
    tty = sys_ / "class" / "tty" / "ttyUSB0"
    tty.mkdir(parents=True)
    os.symlink(iface, tty / "device")
    [s] = serial_ports(dev, sys_ / "class" / "tty")
    assert s.device == str(dev / "ttyUSB0") and s.usb == "1a86:7523"
    assert s.by_id == [str(dev / "serial" / "by-id" / "usb-1a86_USB_Serial-if00-port0")]
    proc = tmp_path / "devices"
    proc.write_text('I: Bus=0003\nN: Name="HID Scanner"\nH: Handlers=sysrq kbd event5\n\n')
    [i] = input_devices(dev, proc)
    assert i.description == "HID Scanner" and i.by_id[0].endswith("usb-Scanner-event-kbd")
    # a USB printer interface (class 07) with its usblp node
    pdev = sys_ / "bus" / "usb" / "devices"
    pdev.mkdir(parents=True)
    prn = sys_ / "devices" / "usb1" / "1-3"
    (prn / "1-3:1.0").mkdir(parents=True)
    (prn / "1-3:1.0" / "bInterfaceClass").write_text("07\n")
    for k, v in {"idVendor": "0416", "idProduct": "5011", "manufacturer": "Winbond"}.items():
        (prn / k).write_text(v + "\n")
    os.symlink(prn / "1-3:1.0", pdev / "1-3:1.0")
    misc = sys_ / "class" / "usbmisc" / "lp0"
    misc.mkdir(parents=True)
    os.symlink(prn / "1-3:1.0", misc / "device")
    [p] = usb_printers(pdev, sys_ / "class" / "usbmisc")
    assert (p.usb, p.device, p.description) == ("0416:5011", "/dev/usb/lp0", "Winbond")
