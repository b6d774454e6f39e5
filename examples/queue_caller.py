#!/usr/bin/env python3
"""A queue-calling system's side of a rating: prompt the pad at a window, read the rating back.

When the clerk finishes with ticket A012, the queue system sends `cmd/prompt` to the window's
pad, reads the pad's `reply` (which carries the prompt's id), and waits for the `rating`
event that answers that prompt, or for the `prompt` event that says it closed unanswered.
It needs only paho-mqtt 2.x; nothing of careterm is imported.

    python examples/queue_caller.py --broker mqtt://127.0.0.1:1883 --site main \\
        --device pad-w03 --ticket A012

On a site broker made by `careterm provision broker` use mqtts:// with a certificate the
broker's ACL lets publish commands (`--ca ca.crt --cert F.crt --key F.key`).

It prints one JSON line and exits 0 with a rating, 3 when the prompt closed without one,
1 on a refused prompt or a timeout, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

NO_RATING = 3


class QueueCaller:
    """One MQTT connection; paho's thread hands every message to a queue this thread reads."""

    def __init__(self, url: str, client_id: str, tls: dict[str, str]) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"--broker {url!r}: use mqtt://host:1883 or mqtts://host:8883")
        self.messages: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
        )
        if parts.scheme == "mqtts":
            self.client.tls_set(
                ca_certs=tls.get("ca") or None,
                certfile=tls.get("cert") or None,
                keyfile=tls.get("key") or None,
            )
        self.subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda c, u, mid, codes, props: self.subscribed.set()
        self.client.connect(
            parts.hostname, parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        )
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.messages.put((msg.topic, json.loads(msg.payload)))
        except ValueError:
            pass  # not JSON: not for us

    def subscribe(self, topics: list[str], timeout: float) -> None:
        self.client.subscribe([(t, 1) for t in topics])
        if not self.subscribed.wait(timeout):
            raise TimeoutError(f"the broker did not confirm the subscription within {timeout:g} s")

    def next(self, timeout: float) -> tuple[str, Any]:
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def prompt_and_wait(
    caller: QueueCaller,
    base: str,
    ticket: str | None,
    timeout: float,
    with_reason: bool = False,
) -> tuple[int, dict[str, Any]]:
    """Send one prompt to the pad at `base` (R/S/D) and wait for its outcome."""
    reply_topic = f"{base}/reply"
    rating_topic = f"{base}/events/rating"
    closed_topic = f"{base}/events/prompt"
    reason_topic = f"{base}/events/reason"
    caller.subscribe([reply_topic, rating_topic, closed_topic, reason_topic], timeout)

    # The cid makes the prompt idempotent: sending it again (after a lost connection, say)
    # gets the first reply back and opens no second prompt.
    cid = f"queue-{uuid.uuid4().hex[:12]}"
    body: dict[str, Any] = {"cid": cid}
    if ticket:
        body["ticket"] = ticket
    caller.client.publish(f"{base}/cmd/prompt", json.dumps(body), qos=1)

    prompt_id: str | None = None
    rating: dict[str, Any] | None = None
    events: list[tuple[str, dict[str, Any]]] = []  # kept until the reply names the prompt
    seen: set[str] = set()  # delivery is at least once: drop repeats by event id
    while True:
        try:
            topic, msg = caller.next(timeout)
        except queue.Empty:
            what = "a rating" if prompt_id else "the pad's reply"
            return 1, {"error": f"no {what} within {timeout:g} s", "cid": cid, "prompt": prompt_id}
        if not isinstance(msg, dict):
            continue
        if topic == reply_topic:
            if msg.get("cid") != cid:
                continue
            if not msg.get("ok"):
                return 1, {"error": f"prompt refused: {msg.get('error')}", "cid": cid}
            prompt_id = msg["result"]["prompt"]
        elif msg.get("id") not in seen:
            seen.add(msg.get("id"))
            events.append((topic, msg))
        if prompt_id is None:
            continue
        while events:
            topic, msg = events.pop(0)
            data = msg.get("data") or {}
            if topic == rating_topic and data.get("prompt") == prompt_id:
                rating = {
                    "ticket": data.get("ticket"),
                    "prompt": prompt_id,
                    "event": msg["id"],
                    "window": data["window"],
                    "staff": data["staff"],
                    "score": data["score"],
                    "scale": data["scale"],
                    "label": data["label"],
                    "misuse": data["misuse"],
                    "response_ms": data["response_ms"],
                    "reason": data.get("reason"),
                }
                if not (with_reason and data.get("reason_asked")):
                    return 0, rating
            elif topic == reason_topic and rating and data.get("rating") == rating["event"]:
                return 0, {**rating, "reason": data.get("reason")}
            elif topic == closed_topic and data.get("prompt") == prompt_id:
                return NO_RATING, {
                    "ticket": ticket,
                    "prompt": prompt_id,
                    "outcome": data["outcome"],
                }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--broker", required=True, metavar="URL", help="mqtt://host:1883 or mqtts://host:8883"
    )
    p.add_argument("--root", default="careterm", help="topic root (default careterm)")
    p.add_argument("--site", required=True, help="site id, e.g. main")
    p.add_argument("--device", required=True, help="the pad's device id, e.g. pad-w03")
    p.add_argument("--ticket", default=None, help="queue number being served, e.g. A012")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds to wait")
    p.add_argument(
        "--with-reason", action="store_true", help="after a low score, wait for the reason"
    )
    p.add_argument("--client-id", default="", help="MQTT client id (default: a fresh one)")
    p.add_argument("--ca", default="", help="mqtts: CA certificate of the broker")
    p.add_argument("--cert", default="", help="mqtts: this system's certificate")
    p.add_argument("--key", default="", help="mqtts: its private key")
    args = p.parse_args(argv)
    base = f"{args.root}/{args.site}/{args.device}"
    try:
        caller = QueueCaller(
            args.broker,
            args.client_id or f"queue-caller-{uuid.uuid4().hex[:8]}",
            {"ca": args.ca, "cert": args.cert, "key": args.key},
        )
    except ValueError as e:
        print(f"queue_caller: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # refused, unreachable, TLS handshake failed
        print(f"queue_caller: cannot reach {args.broker}: {e}", file=sys.stderr)
        return 1
    try:
        rc, result = prompt_and_wait(caller, base, args.ticket, args.timeout, args.with_reason)
    except TimeoutError as e:
        rc, result = 1, {"error": str(e)}
    finally:
        caller.close()
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
