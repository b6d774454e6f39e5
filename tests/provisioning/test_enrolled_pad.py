"""The real headless pad, configured from its bundle, through the site broker's TLS and ACL."""

from __future__ import annotations

import json
import tomllib

import pytest

from provisioning.bundle import render_toml
from tests.conftest import careterm_cmd, run_careterm, wait_for
from tests.provisioning.conftest import BASE

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_an_enrolled_pad_reports_takes_commands_and_acks_through_the_acl(
    site, site_broker, peers, processes, pty, tmp_path
):
    ident = site.identity("pad-w03")
    data = tomllib.loads((ident / "device.toml").read_text(encoding="utf-8"))
    # the bundle's config as installed, with /etc/careterm standing in the unpacked bundle
    for section, key in (
        ("mqtt", "ca_file"),
        ("mqtt", "cert_file"),
        ("mqtt", "key_file"),
        ("privacy", "salt_file"),
    ):
        data[section][key] = data[section][key].replace("/etc/careterm", str(ident))
    data["device"]["data_dir"] = str(tmp_path / "data")
    data["buttons"]["device"] = pty.path
    data["rating"] = {"mode": "free"}
    cfg = tmp_path / "device.toml"
    cfg.write_text(render_toml(data), encoding="utf-8")

    site_sub = peers("collector")
    for leaf in ("status", "events/#", "reply"):
        site_sub.subscribe(f"{BASE}/pad-w03/{leaf}")
    processes.start(
        careterm_cmd("pad", "--config", str(cfg), "--headless"), log=tmp_path / "pad.log"
    )

    def status() -> dict | None:
        msgs = site_sub.received(f"{BASE}/pad-w03/status")
        return json.loads(msgs[-1][1]) if msgs else None

    wait_for(lambda: (status() or {}).get("state") == "online", 20, what="pad online over TLS")
    pty.write(b"4")
    wait_for(lambda: site_sub.received(f"{BASE}/pad-w03/events/rating"), 10, what="rating")
    event = json.loads(site_sub.received(f"{BASE}/pad-w03/events/rating")[0][1])
    assert (event["device"], event["data"]["score"]) == ("pad-w03", 4)

    site_sub.publish(f"{BASE}/pad-w03/cmd/ping", b'{"cid": "doctor-1"}')
    wait_for(lambda: site_sub.received(f"{BASE}/pad-w03/reply"), 10, what="reply to ping")
    reply = json.loads(site_sub.received(f"{BASE}/pad-w03/reply")[0][1])
    assert reply["cid"] == "doctor-1" and reply["ok"] is True

    site_sub.publish(
        f"{BASE}/pad-w03/ack",
        json.dumps({"seq": event["seq"], "epoch": event["epoch"]}).encode(),
        retain=True,
    )

    def acked() -> bool:
        r = run_careterm("outbox", "stats", "--config", str(cfg))
        return r.returncode == 0 and json.loads(r.stdout)["site_acked_seq"] == event["seq"]

    wait_for(acked, 10, what="the site's ack to reach the pad's outbox")
