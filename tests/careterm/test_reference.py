"""docs/reference is generated from the code: stale files, undocumented keys and broken links fail."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from careterm import reference
from careterm.reference import config_doc, topics_doc
from central import roster
from terminal import payloads

jsonschema = pytest.importorskip("jsonschema")

DOCS = reference.DEST
SCHEMAS = DOCS / "schemas"


def test_generated_reference_is_current() -> None:
    problems = reference.stale()
    assert not problems, (
        "docs/reference is stale; regenerate it with `.venv/bin/python -m careterm.reference` "
        "and commit the result:\n  " + "\n  ".join(problems)
    )


def test_every_configuration_key_has_a_meaning() -> None:
    _, missing = config_doc.render()
    assert not missing, (
        "configuration keys without a docstring (their meaning in docs/reference/config.md): "
        f"{', '.join(missing)}; add one under each field in terminal/config.py"
    )


def test_every_topic_event_and_command_has_a_row() -> None:
    topics_doc.check_complete()


def test_the_topics_page_names_the_filters_the_collector_subscribes_to() -> None:
    """Integrators size broker ACLs and bridges from topics.md: it said the collector shares
    `.../events/+` while it subscribes to `.../events/#` (to see and refuse other shapes)."""
    from central.collector import CollectOptions, subscriptions

    page = (DOCS / "topics.md").read_text(encoding="utf-8")
    for topic_filter, _ in subscriptions(CollectOptions(topic_root="R", group="<group>")):
        assert f"`{topic_filter}`" in page, topic_filter
    assert "events/+`)" not in page


def test_the_telemetry_schema_names_every_field_a_device_sends(tmp_path: Path) -> None:
    """telemetry.schema.json lacked `epoch` (every device), `pad_state` and `screen`."""
    import time
    from types import SimpleNamespace

    from kiosk.service import KioskService
    from rating_pad.machine import PadState
    from rating_pad.runner import Pad
    from terminal.config import parse_config
    from terminal.outbox import Outbox
    from terminal.telemetry import telemetry_payload

    cfg = parse_config(
        {
            "device": {"id": "pad-w03", "role": "rating_pad", "site": "main"},
            "mqtt": {"cert_file": str(tmp_path / "device.crt")},
        }
    )
    outbox = Outbox(tmp_path / "outbox.sqlite", device="pad-w03", site="main")
    pad = SimpleNamespace(
        keypad=None,
        card_reader=None,
        service=SimpleNamespace(machine=SimpleNamespace(state=PadState.IDLE)),
    )
    kiosk = SimpleNamespace(
        _printer_state_name=lambda: "ok", card_reader=None, _view=SimpleNamespace(screen="home")
    )
    try:
        for app in (lambda: Pad._telemetry(pad), lambda: KioskService.telemetry(kiosk)):  # type: ignore[arg-type]
            body = telemetry_payload(cfg, outbox, time.monotonic(), app)
            payloads.parse(payloads.Telemetry, body)
            assert set(body) <= set(payloads.Telemetry.model_fields), set(body) - set(
                payloads.Telemetry.model_fields
            )
    finally:
        outbox.close()


def test_config_reference_states_units_types_and_defaults() -> None:
    text = (DOCS / "config.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `prompt_window_s` |"))
    assert "integer, 1 to 600" in row and "`15`" in row and "seconds" in row
    assert "| `id` | string matching" in text and "| required |" in text


def test_cli_reference_lists_every_leaf_command() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for command in ("careterm pad", "careterm demo", "careterm site roster build"):
        assert f"## {command}\n" in text
    assert "`--headless`" in text


@pytest.mark.parametrize("path", sorted(SCHEMAS.rglob("*.json")), ids=lambda p: p.name)
def test_each_schema_is_a_valid_json_schema(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)


def _validator(rel: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / rel).read_text(encoding="utf-8")))


RATING = {
    "v": 1,
    "id": "0193a1b2-7c4e-7d1a-9a53-3f1e2d4c5b6a",
    "seq": 7,
    "epoch": "9f2c4e1a7b3d5f60",
    "device": "pad-w03",
    "site": "main",
    "type": "rating",
    "ts": "2026-11-23T09:41:12.345+08:00",
    "clock_synced": True,
    "data": {
        "window": "W03",
        "staff": "E1024",
        "score": 4,
        "scale": 4,
        "label": "非常满意",
        "reason": None,
        "reason_asked": False,
        "prompt": "0193a1b2-0000-7000-8000-000000000001",
        "ticket": "A012",
        "misuse": False,
        "response_ms": 2300,
    },
}


def test_schemas_accept_what_the_models_accept() -> None:
    payloads.parse(payloads.Envelope, json.dumps(RATING))
    payloads.parse(payloads.RatingData, RATING["data"])
    assert not list(_validator("events/rating.schema.json").iter_errors(RATING))
    assert not list(_validator("event-data/rating.schema.json").iter_errors(RATING["data"]))
    prompt = {"cid": "q-1", "ticket": "A012"}
    payloads.parse(payloads.PromptCommand, prompt)
    assert not list(_validator("commands/prompt.schema.json").iter_errors(prompt))
    resend = {"cid": "c", "from": 3, "to": 9}
    assert not list(_validator("commands/resend.schema.json").iter_errors(resend))


def test_schemas_refuse_what_the_models_refuse() -> None:
    bad = json.loads(json.dumps(RATING))
    bad["data"]["score"] = "4"  # a string is never a number
    with pytest.raises(payloads.PayloadError):
        payloads.parse(payloads.RatingData, bad["data"])
    assert list(_validator("events/rating.schema.json").iter_errors(bad))
    wrong_type = {**RATING, "type": "checkin"}
    assert list(_validator("events/rating.schema.json").iter_errors(wrong_type))
    extra = {**RATING, "data": {**RATING["data"], "card_number": "6222"}}
    assert list(_validator("event-data/rating.schema.json").iter_errors(extra["data"]))


LINK = re.compile(r"\]\(([^)#]+)(#[^)]*)?\)")


@pytest.mark.parametrize(
    "page",
    [
        *sorted(DOCS.glob("*.md")),
        reference.REPO / "README.md",
        reference.REPO / "examples/README.md",
    ],
    ids=lambda p: p.name,
)
def test_links_stay_inside_the_repository_and_resolve(page: Path) -> None:
    for target, _anchor in LINK.findall(page.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        resolved = (page.parent / target).resolve()
        assert resolved.is_relative_to(reference.REPO), (
            f"{page.name}: {target} leaves the repository"
        )
        assert resolved.exists(), f"{page.name}: {target} does not exist"


def test_contract_names_every_roster_csv_column() -> None:
    text = (DOCS / "contract.md").read_text(encoding="utf-8")
    for column in (*roster.REQUIRED, *roster.OPTIONAL):
        assert f"`{column}`" in text, f"contract.md section 8.1 does not describe {column}"


def test_the_example_configuration_in_the_reference_is_valid() -> None:
    import tomllib

    from terminal.config import parse_config

    text = (DOCS / "config.md").read_text(encoding="utf-8")
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    cfg = parse_config(tomllib.loads(example), "docs/reference/config.md")
    assert cfg.device.role == "rating_pad" and cfg.mqtt.tls
