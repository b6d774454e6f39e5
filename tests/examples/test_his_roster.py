"""examples/his-roster: the HIS export becomes a roster, published retained on a real mosquitto."""

from __future__ import annotations

import json

import pytest

from central.roster import REQUIRED
from terminal import payloads
from terminal.privacy import card_token
from tests.conftest import ROOT, Broker, run_careterm, wait_for

jsonschema = pytest.importorskip("jsonschema")

CSV = ROOT / "examples" / "his-roster" / "his-export.csv"
SCHEMA = ROOT / "docs" / "reference" / "schemas" / "documents" / "roster.schema.json"


@pytest.fixture
def built(tmp_path):
    salt = tmp_path / "site.salt"
    salt.write_text("example-salt-not-for-production\n")
    out = tmp_path / "roster.json"
    r = run_careterm(
        "site",
        "roster",
        "build",
        "--csv",
        str(CSV),
        "--salt-file",
        str(salt),
        "--date",
        "2026-11-23",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    return salt.read_bytes().strip(), out, r.stderr


def test_the_example_export_has_every_required_column():
    header = CSV.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert set(REQUIRED) <= set(header)


def test_his_export_becomes_a_valid_roster_without_personal_data(built):
    salt, out, notes = built
    text = out.read_text(encoding="utf-8")
    roster = json.loads(text)
    payloads.parse(payloads.Roster, text)
    errors = [
        e.message
        for e in jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).iter_errors(roster)
    ]
    assert not errors
    # One entry per card: appointment 0002 may be found by ID card or by medical card.
    assert [a["id"] for a in roster["appointments"]] == [
        "A20261123-0001",
        "A20261123-0002",
        "A20261123-0002",
        "A20261123-0003",
    ]
    tokens = {a["token"] for a in roster["appointments"]}
    assert card_token(salt, "id_card", "110101198001010010") in tokens
    assert card_token(salt, "medical_card", "6222020011223344") in tokens
    # Names masked; no ID or card number and no full name reaches the roster.
    for secret in ("110101198001010010", "6222020011223344", "88001234", "陈小明", "欧阳晓燕"):
        assert secret not in text
    assert {a["name"] for a in roster["appointments"]} == {"陈*明", "欧**燕", "王*"}
    assert "1 row(s) are not on 2026-11-23" in notes


@pytest.mark.broker
def test_the_roster_is_published_retained(built, broker: Broker, subscriber_factory):
    _salt, out, _ = built
    r = run_careterm(
        "site", "roster", "publish", "--broker", broker.url, "--site", "main", str(out)
    )
    assert r.returncode == 0, r.stderr
    # A kiosk connecting later gets it: subscribe only now.
    sub = subscriber_factory(broker.port, ["careterm/main/roster"])
    got = wait_for(lambda: sub.payloads("/roster"), 10, what="the retained roster")
    assert got[-1] == json.loads(out.read_text(encoding="utf-8"))
    assert sub.messages[-1].retain
