"""Device configuration: valid files load; every mistake exits 2 with one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.config import ConfigError, load_config, parse_config

from ..conftest import run_careterm

GOOD = """
[device]
id = "pad-w03"
role = "rating_pad"
site = "main"
data_dir = "/tmp/x"

[rating]
labels = ["不满意", "满意", "非常满意"]
mode = "free"

[buttons]
driver = "serial"
device = "/dev/serial/by-id/usb-keypad"
keys = { "1" = 1, "2" = 2, "3" = 3, "P" = "prompt" }
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "device.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_a_full_spec_example_loads_with_its_values(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.device.id == "pad-w03"
    assert cfg.rating.scale == 3
    assert cfg.buttons.keys["P"] == "prompt"
    assert cfg.mqtt.port == 1883 and not cfg.mqtt.tls
    assert cfg.device.retain_days == 7
    assert [r.kind for r in cfg.card_reader.classify][0] == "appointment_qr"


@pytest.mark.parametrize(
    ("patch", "key", "words"),
    [
        ('[device]\nid = "Pad_W03"\nrole = "rating_pad"\nsite = "main"\n', "device.id", "pattern"),
        ('[device]\nid = "p"\nrole = "printer"\nsite = "main"\n', "device.role", "rating_pad"),
        (
            '[device]\nid = "p"\nrole = "kiosk"\nsite = "main"\ncolour = 3\n',
            "device.colour",
            "unknown key",
        ),
        (
            '[device]\nid = "p"\nrole = "kiosk"\nsite = "main"\n[mqtt]\nkeepalive_s = "30"\n',
            "mqtt.keepalive_s",
            "integer",
        ),
        (
            '[device]\nid = "p"\nrole = "kiosk"\nsite = "main"\n[mqtt]\nurl = "http://x"\n',
            "mqtt.url",
            "mqtt://",
        ),
        (
            '[device]\nid = "p"\nrole = "rating_pad"\nsite = "main"\n[rating]\nlabels = ["a","b"]\n',
            "rating.labels",
            "at least 3",
        ),
        (
            '[device]\nid = "p"\nrole = "rating_pad"\nsite = "main"\n[buttons]\nkeys = {"9" = 9}\n',
            "buttons.keys",
            "outside 1..5",
        ),
        (
            '[device]\nid = "p"\nrole = "rating_pad"\nsite = "main"\n[buttons]\nkeys = {"5" = 5}\n',
            "buttons.keys.5",
            "above the scale",
        ),
        (
            '[device]\nid = "p"\nrole = "rating_pad"\nsite = "main"\n[buttons]\nkeys = {"X" = "dance"}\n',
            "buttons.keys",
            "neither a score",
        ),
        (
            '[device]\nid = "p"\nrole = "kiosk"\nsite = "main"\n[card_reader]\nclassify = '
            '[{kind = "id_card", pattern = "^[0-9]+$"}]\n',
            "card_reader.classify.0.pattern",
            "number",
        ),
        (
            '[device]\nid = "p"\nrole = "kiosk"\nsite = "main"\n[printer]\nencoding = "klingon"\n',
            "printer.encoding",
            "klingon",
        ),
        ('[device]\nrole = "kiosk"\nsite = "main"\n', "device.id", "required"),
    ],
)
def test_a_bad_value_is_reported_by_its_key(
    tmp_path: Path, patch: str, key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, patch))
    assert e.value.key == key
    assert words in e.value.problem
    assert str(tmp_path / "device.toml") in str(e.value)


def test_toml_syntax_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, "[device\nid = 1"))
    assert "not valid TOML" in str(e.value)


def test_parse_config_accepts_a_dict() -> None:
    cfg = parse_config({"device": {"id": "kiosk-01", "role": "kiosk", "site": "main"}})
    assert cfg.kiosk.idle_timeout_s == 60 and cfg.printer.encoding == "gb18030"


def test_config_check_exits_0_for_a_good_file(tmp_path: Path) -> None:
    r = run_careterm("config", "check", str(write(tmp_path, GOOD)))
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


def test_config_check_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace('mode = "free"', 'mode = "free"\nmood = "happy"'))
    r = run_careterm("config", "check", str(p))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(p) in lines[0] and "rating.mood" in lines[0] and "unknown key" in lines[0]
    assert "Traceback" not in r.stderr


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    r = run_careterm("outbox", "stats", "--config", str(tmp_path / "nope.toml"))
    assert r.returncode == 2
    assert "file not found" in r.stderr


def test_pad_refuses_a_kiosk_config(tmp_path: Path) -> None:
    p = write(tmp_path, '[device]\nid = "k"\nrole = "kiosk"\nsite = "main"\n')
    r = run_careterm("pad", "--config", str(p), "--headless")
    assert r.returncode == 2
    assert "device.role" in r.stderr


PAD = '[device]\nid = "p"\nrole = "rating_pad"\nsite = "main"\n'


@pytest.mark.parametrize(
    ("patch", "key", "words"),
    [
        (PAD + '[rating]\ntrend_share = "0.5"\n', "rating.trend_share", "valid number"),
        (PAD.replace('site = "main"', 'site = "main"\ndata_dir = ""'), "device.data_dir", "empty"),
        (
            PAD.replace('site = "main"', 'site = "main"\ndata_dir = "var/x"'),
            "device.data_dir",
            "absolute",
        ),
        (
            PAD.replace('site = "main"', 'site = "main"\ntimezone = "Mars/Olympus"'),
            "device.timezone",
            "IANA",
        ),
        (PAD + '[rating]\nmin_response_ms = "700"\n', "rating.min_response_ms", "integer"),
        (PAD + "[buttons]\nkeys = {}\n", "buttons.keys", "empty"),
        (PAD + '[mqtt]\nurl = "mqtts://broker:8883"\n', "mqtt.ca_file", "CA bundle"),
        (PAD + "[device.extra]\nx = 1\n", "device.extra", "unknown key"),
    ],
)
def test_wrong_values_of_version_2_name_their_key(
    tmp_path: Path, patch: str, key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, patch))
    assert e.value.key == key, e.value
    assert words in e.value.problem


@pytest.mark.parametrize(
    ("driver", "name", "words"),
    [
        ("serial", "KEY_KP4", "one ASCII character"),
        ("serial", "PP", "one ASCII character"),
        ("serial", "四", "one ASCII character"),
        ("evdev", "KP4", "input key name"),
        ("evdev", "key_1", "input key name"),
    ],
)
def test_a_key_name_the_keypad_can_never_send_is_refused(
    tmp_path: Path, driver: str, name: str, words: str
) -> None:
    """SPEC 6.1: a serial key's name is the one character it sends; an evdev key's is a key
    code. Any other name would be a dead key in the field, so config check refuses it."""
    text = PAD + f'[buttons]\ndriver = "{driver}"\nkeys = {{ "1" = 1, "{name}" = 4 }}\n'
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    assert e.value.key == f"buttons.keys.{name}", e.value
    assert words in e.value.problem


@pytest.mark.parametrize(
    ("driver", "keys"),
    [
        ("serial", '{ "1" = 1, "4" = 4, "P" = "prompt", "*" = "pause" }'),
        ("evdev", '{ "KEY_KP1" = 1, "KEY_4" = 4, "BTN_0" = "prompt", "P" = "pause" }'),
        ("touch", '{ "any name" = 1 }'),
    ],
)
def test_key_names_a_keypad_sends_are_accepted(tmp_path: Path, driver: str, keys: str) -> None:
    text = PAD + f'[buttons]\ndriver = "{driver}"\nkeys = {keys}\n'
    assert load_config(write(tmp_path, text)).buttons.driver == driver


def test_labels_and_reasons_longer_than_their_events_hold_are_refused(tmp_path: Path) -> None:
    """A label or reason the rating / reason event cannot carry made every such rating
    uncountable at the site (stored, not counted); config check now names it instead."""
    from terminal.payloads import RatingData, ReasonData

    label_max, reason_max = 64, 200  # what RatingData.label and ReasonData.reason hold
    for key, value in (("labels", "好" * (label_max + 1)), ("reasons", "久" * (reason_max + 1))):
        default = '["差", "中", "好"]' if key == "labels" else '["慢"]'
        text = PAD + f'[rating]\n{key} = {default[:-1]}, "{value}"]\n'
        with pytest.raises(ConfigError) as e:
            load_config(write(tmp_path, text))
        assert e.value.key.startswith(f"rating.{key}."), e.value
    rating = {"labels": ["差", "中", "好", "优" * label_max], "reasons": ["久" * reason_max]}
    cfg = parse_config(
        {"device": {"id": "p", "role": "rating_pad", "site": "main"}, "rating": rating}
    )
    label, reason = cfg.rating.labels[3], cfg.rating.reasons[0]
    RatingData(
        window="W01",
        staff=None,
        score=4,
        scale=4,
        label=label,
        prompt=None,
        misuse=False,
        response_ms=None,
    )
    ReasonData(rating="r", window="W01", staff=None, reason=reason)


def test_new_keys_have_their_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.device.timezone == "Asia/Shanghai"
    assert cfg.rating.min_response_ms == 700
    assert cfg.rating.trend_share == 0.5
    assert cfg.source == str(tmp_path / "device.toml")


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "device.toml"
    p.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert load_config(p).device.id == "pad-w03"


def test_data_dir_pointing_at_a_file_is_one_line_exit_2(tmp_path: Path) -> None:
    afile = tmp_path / "not-a-folder"
    afile.write_text("x")
    p = write(tmp_path, GOOD.replace('data_dir = "/tmp/x"', f'data_dir = "{afile}"'))
    for args in (("config", "check", str(p)), ("outbox", "stats", "--config", str(p))):
        r = run_careterm(*args)
        assert r.returncode == 2, r
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr
        assert str(p) in lines[0] and "device.data_dir" in lines[0] and "not a folder" in lines[0]


def test_config_check_fails_configs_that_cannot_work(tmp_path: Path) -> None:
    base = GOOD.replace('data_dir = "/tmp/x"', f'data_dir = "{tmp_path / "data"}"')
    cases = [
        ('[mqtt]\nurl = "mqtts://b:8883"\nca_file = "/nope/ca.crt"\n', "mqtt.ca_file"),
        ('[mqtt]\nusername = "pad"\npassword_file = "/nope/pw"\n', "mqtt.password_file"),
        (
            '[card_reader]\ndriver = "serial"\ndevice = "/dev/ttyUSB1"\n'
            '[privacy]\nsalt_file = "/nope/site.salt"\n',
            "privacy.salt_file",
        ),
    ]
    for extra, key in cases:
        p = write(tmp_path, base + extra)
        r = run_careterm("config", "check", str(p))
        assert r.returncode == 2, (extra, r.stdout)
        assert f"{p}: {key}:" in r.stderr and "Traceback" not in r.stderr


def test_the_salt_file_error_names_the_config_file_and_the_salt_file(tmp_path: Path) -> None:
    from drivers.card_reader.factory import make_classifier

    p = write(
        tmp_path,
        GOOD + '[card_reader]\ndriver = "sim"\n[privacy]\nsalt_file = "/nope/site.salt"\n',
    )
    with pytest.raises(ConfigError) as e:
        make_classifier(load_config(p))
    assert e.value.path == str(p) and e.value.key == "privacy.salt_file"
    assert "/nope/site.salt" in e.value.problem
