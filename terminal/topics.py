"""Every MQTT topic of the contract (SPEC 4 and 9.1), built and parsed here and nowhere else.

Topics are `R/S/D/<leaf>` for a device and `R/S/<document>` for the site's retained
documents, where `R` is the topic root (one or more segments), `S` the site and `D` the
device id. Devices, site tools and the broker ACL generator all use this module, so a
topic of another shape can be neither built nor accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
"""A site or device id (SPEC 3); it never holds `+`, `#` or `/`."""
LEAF_RE: Final = re.compile(r"^[a-z_]{1,32}$")
"""An event type, alert kind or command name (SPEC 9.1)."""
ROOT_RE: Final = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
"""The topic root: one or more plain segments."""

DeviceLeaf = Literal["status", "telemetry", "ack", "reply", "events", "alerts", "cmd"]
SiteDocument = Literal["roster", "directory", "survey", "staff"]

SINGLE_LEAVES: Final = ("status", "telemetry", "ack", "reply")
NAMED_LEAVES: Final = ("events", "alerts", "cmd")
SITE_DOCUMENTS: Final = ("roster", "directory", "survey", "staff")


class TopicError(ValueError):
    """A topic that is not one of the contract's shapes; the message says why."""


@dataclass(frozen=True)
class DeviceTopic:
    """`R/S/D/<leaf>` or `R/S/D/<leaf>/<name>` for `events`, `alerts` and `cmd`."""

    root: str
    site: str
    device: str
    leaf: DeviceLeaf
    name: str | None = None

    def __str__(self) -> str:
        base = f"{self.root}/{self.site}/{self.device}/{self.leaf}"
        return base if self.name is None else f"{base}/{self.name}"


@dataclass(frozen=True)
class SiteTopic:
    """`R/S/<document>`: a retained document the site publishes for its devices."""

    root: str
    site: str
    document: SiteDocument

    def __str__(self) -> str:
        return f"{self.root}/{self.site}/{self.document}"


def _check(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise TopicError(f"{what} {value!r} does not match {pattern.pattern}")
    return value


@dataclass(frozen=True)
class Topics:
    """The topics of one device: what it publishes and what it subscribes to."""

    root: str
    site: str
    device: str

    def __post_init__(self) -> None:
        _check(self.root, ROOT_RE, "topic root")
        _check(self.site, NAME_RE, "site")
        _check(self.device, NAME_RE, "device id")

    @property
    def base(self) -> str:
        return f"{self.root}/{self.site}/{self.device}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def telemetry(self) -> str:
        return f"{self.base}/telemetry"

    @property
    def ack(self) -> str:
        return f"{self.base}/ack"

    @property
    def reply(self) -> str:
        return f"{self.base}/reply"

    @property
    def commands(self) -> str:
        """The subscription filter for every command to this device."""
        return f"{self.base}/cmd/+"

    def event(self, etype: str, alert_kind: str = "") -> str:
        """Where an event of `etype` goes; alerts go to `alerts/<kind>`."""
        if etype == "alert":
            return f"{self.base}/alerts/{_check(alert_kind, LEAF_RE, 'alert kind')}"
        return f"{self.base}/events/{_check(etype, LEAF_RE, 'event type')}"

    def command(self, name: str) -> str:
        return f"{self.base}/cmd/{_check(name, LEAF_RE, 'command name')}"

    def site_document(self, document: SiteDocument) -> str:
        return site_document(self.root, self.site, document)


def site_document(root: str, site: str, document: SiteDocument) -> str:
    if document not in SITE_DOCUMENTS:
        raise TopicError(f"unknown site document {document!r}")
    return str(
        SiteTopic(_check(root, ROOT_RE, "topic root"), _check(site, NAME_RE, "site"), document)
    )


def device_filter(root: str, leaf: DeviceLeaf, *, site: str = "+", device: str = "+") -> str:
    """A subscription filter for one leaf of many devices, one level deep (`events/+`)."""
    _check(root, ROOT_RE, "topic root")
    for value, what in ((site, "site"), (device, "device id")):
        if value != "+":
            _check(value, NAME_RE, what)
    tail = f"{leaf}/+" if leaf in NAMED_LEAVES else leaf
    return f"{root}/{site}/{device}/{tail}"


def acl_device_pattern(root: str, site: str, leaf: DeviceLeaf) -> str:
    """The Mosquitto ACL pattern of one device leaf, `%u` standing for the device id.

    Named leaves get exactly one level (`events/+`), never `#`, so a device cannot nest
    another device's topic below its own.
    """
    _check(root, ROOT_RE, "topic root")
    _check(site, NAME_RE, "site")
    tail = f"{leaf}/+" if leaf in NAMED_LEAVES else leaf
    return f"{root}/{site}/%u/{tail}"


def parse(topic: str, root: str) -> DeviceTopic | SiteTopic:
    """The topic's parts, or TopicError for any shape the contract does not have."""
    prefix = f"{root}/"
    if not topic.startswith(prefix):
        raise TopicError(f"topic {topic!r} is not below the topic root {root!r}")
    parts = topic[len(prefix) :].split("/")
    if len(parts) == 2:
        site, document = parts
        _check(site, NAME_RE, "site")
        if document not in SITE_DOCUMENTS:
            raise TopicError(f"topic {topic!r}: unknown site document {document!r}")
        return SiteTopic(root, site, document)  # type: ignore[arg-type]
    if len(parts) not in (3, 4):
        raise TopicError(f"topic {topic!r} has {len(parts)} levels below the root; 2 to 4 expected")
    site, device, leaf = parts[:3]
    _check(site, NAME_RE, "site")
    _check(device, NAME_RE, "device id")
    if len(parts) == 3:
        if leaf not in SINGLE_LEAVES:
            raise TopicError(f"topic {topic!r}: unknown device topic {leaf!r}")
        return DeviceTopic(root, site, device, leaf)  # type: ignore[arg-type]
    if leaf not in NAMED_LEAVES:
        raise TopicError(f"topic {topic!r}: {leaf!r} takes no name below it")
    return DeviceTopic(root, site, device, leaf, _check(parts[3], LEAF_RE, f"{leaf} name"))  # type: ignore[arg-type]


def parse_device(topic: str, root: str) -> DeviceTopic:
    """Like `parse`, for the places that accept only device topics."""
    t = parse(topic, root)
    if not isinstance(t, DeviceTopic):
        raise TopicError(f"topic {topic!r} is a site document, not a device topic")
    return t
