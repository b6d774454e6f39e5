"""`provision revoke`: a lost device's certificate stops working at the broker; others do not."""

from __future__ import annotations

import pytest

from tests.provisioning.conftest import SITE, Peer, SiteBroker, careterm_ok, unpack

pytestmark = pytest.mark.broker


def connects(site, cert, key, client_id) -> bool:
    peer = Peer(site.port, site.broker_dir / "ca.crt", cert, key, client_id)
    try:
        return peer.connect()
    finally:
        peer.close()


def test_a_revoked_device_is_refused_and_a_new_bundle_for_it_works(site, tmp_path):
    pad = site.identity("pad-w03")
    kiosk = site.identity("kiosk-01")
    res = careterm_ok(
        "provision",
        "revoke",
        "--ca",
        str(site.ca),
        "--id",
        "pad-w03",
        "--broker-dir",
        str(site.broker_dir),
    )
    assert "restart mosquitto" in res.stdout
    conf = (site.broker_dir / "mosquitto.conf").read_text()
    assert f"crlfile {site.broker_dir.resolve()}/crl.pem" in conf

    broker = SiteBroker(site)
    try:
        assert not connects(site, pad / "device.crt", pad / "device.key", "pad-w03")
        assert connects(site, kiosk / "device.crt", kiosk / "device.key", "kiosk-01")
        # the replacement pad: a new certificate for the same id is not on the list
        careterm_ok(
            "provision",
            "device",
            "--ca",
            str(site.ca),
            "--id",
            "pad-w03",
            "--role",
            "rating_pad",
            "--site",
            SITE,
            "--window",
            "W03",
            "--broker",
            f"mqtts://localhost:{site.port}",
            "--out",
            str(tmp_path / "new.tar.gz"),
        )
        unpack(tmp_path / "new.tar.gz", tmp_path / "new")
        assert connects(site, tmp_path / "new/device.crt", tmp_path / "new/device.key", "pad-w03")
    finally:
        broker.stop()
    # a later broker folder from the same CA carries the revocation list from the start
    careterm_ok(
        "provision",
        "broker",
        "--ca",
        str(site.ca),
        "--site",
        SITE,
        "--out",
        str(tmp_path / "b2"),
        "--host",
        "localhost",
    )
    assert "crlfile " in (tmp_path / "b2/mosquitto.conf").read_text()


def test_revoking_an_unknown_device_is_a_usage_error(site):
    from tests.conftest import run_careterm

    res = run_careterm("provision", "revoke", "--ca", str(site.ca), "--id", "no-such-pad")
    assert res.returncode == 2 and "no-such-pad" in res.stderr
