"""docs/reference/topics.md: every MQTT topic with direction, QoS, retain and payload schema.

The topic shapes come from terminal.topics, the event types, commands and documents from
terminal.payloads; the table below adds what those modules do not say (who publishes, QoS,
retain). Generation fails when a topic, event type or command has no row here, so a new one
cannot reach the reference undocumented.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from careterm.reference.docstrings import one_line
from central import collector
from terminal import payloads, topics


@dataclass(frozen=True)
class TopicRow:
    leaf: str
    direction: str
    qos: int
    retained: bool
    schema: str
    what: str


DEVICE = "device → site"
TO_DEVICE = "site → device"
TO_DEVICES = "site → devices"

TOPIC_TABLE: tuple[TopicRow, ...] = (
    TopicRow(
        "status",
        DEVICE,
        1,
        True,
        "status.schema.json",
        "`online` on every connect, `offline`/`shutdown` before a clean stop; the Last Will "
        "is `offline`/`lost` with the same `session` number, so a late Will is told from a "
        "current one.",
    ),
    TopicRow(
        "telemetry",
        DEVICE,
        0,
        False,
        "telemetry.schema.json",
        "Every 60 s: uptime, outbox depth and age, device states, clock. Dropped while "
        "disconnected (QoS 0).",
    ),
    TopicRow(
        "events",
        DEVICE,
        1,
        False,
        "events/&lt;type&gt;.schema.json",
        "One event per message, in `seq` order, at least once: drop repeats by `id`.",
    ),
    TopicRow(
        "alerts",
        DEVICE,
        1,
        False,
        "events/alert.schema.json",
        "An event of type `alert`, on a topic named after its `kind`.",
    ),
    TopicRow(
        "ack",
        TO_DEVICE,
        1,
        True,
        "ack.schema.json",
        "Published by the site collector once events are committed: every event of `epoch` "
        "up to `seq` is stored; the device may forget them.",
    ),
    TopicRow(
        "cmd",
        TO_DEVICE,
        1,
        False,
        "commands/&lt;name&gt;.schema.json",
        "A command; every command whose `cid` can be read gets exactly one `reply`.",
    ),
    TopicRow(
        "reply",
        DEVICE,
        1,
        False,
        "reply.schema.json",
        "The answer to a command, with its `cid`: `ok` and `result`, or `ok: false` and `error`.",
    ),
    TopicRow(
        "roster",
        TO_DEVICES,
        1,
        True,
        "documents/roster.schema.json",
        "Today's appointments, for kiosks (`careterm site roster publish`).",
    ),
    TopicRow(
        "directory",
        TO_DEVICES,
        1,
        True,
        "documents/directory.schema.json",
        "Departments, floors and today's doctors, for kiosks.",
    ),
    TopicRow(
        "survey",
        TO_DEVICES,
        1,
        True,
        "documents/survey.schema.json",
        "The satisfaction survey kiosks offer.",
    ),
    TopicRow(
        "staff",
        TO_DEVICES,
        1,
        True,
        "documents/staff.schema.json",
        "The clerks pads may show (staff number, name, title, card token, photo).",
    ),
)

COMMAND_ROLES: dict[str, tuple[str, str]] = {
    "prompt": (
        "rating pad",
        "Ask the patient at this window to rate (the queue-calling system, when a "
        "transaction ends). `ticket` is copied into the rating. The reply's `result.prompt` "
        "is the id the rating will carry.",
    ),
    "staff": ("rating pad", "Sign a clerk in or out."),
    "pause": ("rating pad", "Close the window for ratings (the clerk's break)."),
    "resume": ("rating pad", "Open the window again."),
    "print_test": ("kiosk", "Print a test ticket; the reply carries the printer state."),
    "ping": ("both", "Liveness check; the reply is `ok`."),
    "resend": (
        "both",
        "Publish again the stored events `from`..`to` (same `id`), e.g. to fill a gap the "
        "collector saw.",
    ),
}
"""Command name -> (which role takes it, what it does)."""

EVENT_TYPES: dict[str, tuple[str, str]] = {
    "rating": ("rating pad", "A key press or touch that rated the service."),
    "reason": ("rating pad", "The reason a patient gave (or not) after a low score."),
    "prompt": ("rating pad", "A prompt that closed without a rating (expired or superseded)."),
    "staff": ("rating pad", "A clerk signed in or out, or the window paused or resumed."),
    "checkin": ("kiosk", "A check-in (or a reprint: `repeat: true`)."),
    "feedback": ("kiosk", "Praise, a suggestion or a complaint, with its tracking number."),
    "survey": ("kiosk", "A completed satisfaction survey."),
    "alert": ("both", "Something a supervisor or a technician should know now (`alerts/<kind>`)."),
}
"""Event type -> (which role sends it, what it records)."""


class ReferenceGap(Exception):
    """Something in the code has no row in the reference's tables; the message says what."""


def check_complete() -> None:
    leaves = set(topics.SINGLE_LEAVES) | set(topics.NAMED_LEAVES) | set(topics.SITE_DOCUMENTS)
    rows = {r.leaf for r in TOPIC_TABLE}
    problems = []
    for what, have, want in (
        ("topic", rows, leaves),
        ("event type", set(EVENT_TYPES), set(payloads.EVENT_DATA)),
        ("command", set(COMMAND_ROLES), set(payloads.COMMANDS)),
    ):
        if have != want:
            missing, extra = sorted(want - have), sorted(have - want)
            problems.append(f"{what}s: no row for {missing}; rows for unknown {extra}")
    if problems:
        raise ReferenceGap(
            "careterm/reference/topics_doc.py is behind the code: " + "; ".join(problems)
        )


def _topic(leaf: str) -> str:
    if leaf in topics.SITE_DOCUMENTS:
        return f"R/S/{leaf}"
    if leaf in topics.NAMED_LEAVES:
        name = {"events": "type", "alerts": "kind", "cmd": "name"}[leaf]
        return f"R/S/D/{leaf}/<{name}>"
    return f"R/S/D/{leaf}"


def alert_kinds() -> list[str]:
    return list(typing.get_args(payloads.AlertKind))


def render() -> str:
    check_complete()
    out = [
        "# MQTT topics reference\n\n",
        "MQTT 5. `R` is the topic root (`[mqtt] topic_root`, default `careterm`), `S` the site "
        "id, `D` the device id (`[device]` in device.toml); both ids match "
        f"`{topics.NAME_RE.pattern}`, so they never hold `+`, `#` or `/`. Event types, alert "
        f"kinds and command names match `{topics.LEAF_RE.pattern}` and sit exactly one level "
        "below `events`, `alerts` and `cmd`: a topic of any other shape is refused by the site "
        "tools and by the broker's ACL. Payloads are UTF-8 JSON objects; each links to the "
        "JSON Schema it validates against (folder [`schemas/`](schemas/)).\n\n",
        "| topic | direction | QoS | retained | payload | what |\n|---|---|---|---|---|---|\n",
    ]
    for r in TOPIC_TABLE:
        schema = r.schema.replace("&lt;", "<").replace("&gt;", ">")
        link = schema if "<" in schema else f"[{schema}](schemas/{schema})"
        out.append(
            f"| `{_topic(r.leaf)}` | {r.direction} | {r.qos} | {'yes' if r.retained else 'no'} "
            f"| {link.replace('<', '&lt;').replace('>', '&gt;') if '<' in schema else link} "
            f"| {one_line(r.what)} |\n"
        )
    filters = collector.subscriptions(collector.CollectOptions(topic_root="R", group="<group>"))
    shared = ", ".join(f"`{f}`" for f, _ in filters if f.startswith("$share/"))
    direct = ", ".join(f"`{f}`" for f, _ in filters if not f.startswith("$share/"))
    out.append(
        "\nDevices connect with client id = device id, clean start off and a session expiry of "
        "one day, so commands sent while a device is away reach it when it returns. Site tools "
        "subscribe with their own client ids. `careterm site collect` subscribes to "
        f"{shared} (shared subscriptions: several collectors in one group share the load; "
        "`events/#` and `alerts/#` so that a topic of another shape is seen, counted and "
        f"refused rather than missed) and to {direct} directly (a shared subscription gets no "
        "retained messages).\n"
    )
    out.append("\n## Event types (`R/S/D/events/<type>`)\n\n")
    out.append("| type | sent by | what it records | whole event | `data` only |\n")
    out.append("|---|---|---|---|---|\n")
    for etype in payloads.EVENT_DATA:
        role, what = EVENT_TYPES[etype]
        out.append(
            f"| `{etype}` | {role} | {one_line(what)} | "
            f"[events/{etype}](schemas/events/{etype}.schema.json) | "
            f"[event-data/{etype}](schemas/event-data/{etype}.schema.json) |\n"
        )
    out.append(
        "\n## Alert kinds (`R/S/D/alerts/<kind>`)\n\n"
        "An alert is an event of type `alert`; its `data.kind` is the topic's last segment. "
        "Kinds: " + ", ".join(f"`{k}`" for k in alert_kinds()) + ". "
        "Severity is `info`, `warning` or `critical`; kind-specific details (a `dissatisfied` "
        "alert's window, staff, score) ride along in `data`.\n"
    )
    out.append("\n## Commands (`R/S/D/cmd/<name>`)\n\n")
    out.append("| command | taken by | what it does | payload |\n|---|---|---|---|\n")
    for name in payloads.COMMANDS:
        role, what = COMMAND_ROLES[name]
        out.append(
            f"| `{name}` | {role} | {one_line(what)} | "
            f"[commands/{name}](schemas/commands/{name}.schema.json) |\n"
        )
    out.append(
        "\nA command a device does not take, or a malformed one, gets `ok: false` with the "
        "reason; it never changes anything. Example, prompting the pad at window W03:\n\n"
        "```sh\n"
        "mosquitto_pub -q 1 -t careterm/main/pad-w03/cmd/prompt \\\n"
        '    -m \'{"cid": "q-20261123-0042", "ticket": "A012"}\'\n'
        "# reply on careterm/main/pad-w03/reply:\n"
        '# {"cid": "q-20261123-0042", "ok": true, "result": {"prompt": "<id>", "window_s": 15}}\n'
        "```\n"
    )
    out.append("\n## Retained site documents (`R/S/<document>`)\n\n")
    out.append("| document | read by | schema |\n|---|---|---|\n")
    readers = {"roster": "kiosks", "directory": "kiosks", "survey": "kiosks", "staff": "pads"}
    for name in payloads.DOCUMENTS:
        out.append(
            f"| `{name}` | {readers.get(name, 'devices')} | "
            f"[documents/{name}](schemas/documents/{name}.schema.json) |\n"
        )
    out.append(
        "\nA document that fails validation never replaces the last good one a device holds; the "
        "device raises a `document` alert naming the document and the fault.\n"
    )
    return "".join(out)
