"""Device configuration: one typed, validated model of SPEC section 3, loaded from TOML."""

from __future__ import annotations

import codecs
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from terminal.topics import Topics

DEFAULT_CONFIG_PATH = "/etc/careterm/device.toml"
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
KEY_ACTIONS = ("prompt", "pause", "resume", "sign_out")

DEFAULT_CLASSIFY: list[dict[str, str]] = [
    {"kind": "appointment_qr", "pattern": r"^CT1:(?P<number>[A-Za-z0-9-]{4,40})$"},
    {"kind": "id_card", "pattern": r"^(?P<number>[0-9]{17}[0-9Xx])$"},
    {"kind": "staff_card", "pattern": r"^S(?P<number>[0-9]{4,10})$"},
    {"kind": "medical_card", "pattern": r"^;?(?P<number>[0-9]{8,19})(=[0-9]*)?\??$"},
]
DEFAULT_LABELS = ["不满意", "基本满意", "满意", "非常满意"]
DEFAULT_REASONS = ["等候时间长", "服务态度差", "业务不熟练", "其他"]
DEFAULT_KEYS: dict[str, int | str] = {"1": 1, "2": 2, "3": 3, "4": 4, "P": "prompt", "S": "pause"}

Name = Annotated[StrictStr, Field(pattern=NAME_PATTERN)]
LABEL_MAX = 64
"""Longest `[rating] labels` entry: the rating event's `label` holds this much (the site
refuses to count a rating whose label is longer)."""
REASON_MAX = 200
"""Longest `[rating] reasons` entry: the `reason` event's `reason` holds this much."""
PosInt = Annotated[StrictInt, Field(gt=0)]


class ConfigError(Exception):
    """A configuration problem a technician can fix: names the file and the key."""

    def __init__(self, path: str | os.PathLike[str], key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {problem}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceSection(_Section):
    """Who the device is and where it keeps its state."""

    id: Name
    """Device id: MQTT client id, certificate name and topic segment (`pad-w03`); 1-32 lower-case
    letters, digits and `-`."""
    role: Literal["rating_pad", "kiosk"]
    """`rating_pad` (window rating pad, `careterm pad`) or `kiosk` (lobby kiosk, `careterm
    kiosk`)."""
    site: Name
    """Site id, the topic segment after the topic root; same pattern as `id`."""
    data_dir: StrictStr = "/var/lib/careterm"
    """Folder for the outbox and device state; created if missing; an absolute path."""
    retain_days: Annotated[StrictInt, Field(ge=1, le=365)] = 7
    """Days a sent event is kept for `resend` when the site never acks it (counted on a
    synchronised clock by the device itself, so a clock jump never shortens it)."""
    timezone: StrictStr = "Asia/Shanghai"
    """IANA time zone the device's system clock must be set to (SPEC 9.5); event times and
    the report's hours follow it. `careterm doctor` checks the system's zone against it."""

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("is empty: give the folder for the outbox, e.g. /var/lib/careterm")
        if not os.path.isabs(v):
            raise ValueError(f"{v!r} is not an absolute path (e.g. /var/lib/careterm)")
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{v!r} is not an IANA time zone name (e.g. Asia/Shanghai; "
                "`timedatectl list-timezones` lists them)"
            ) from None
        return v


class MqttSection(_Section):
    """How the device reaches the site's broker."""

    url: StrictStr = "mqtt://127.0.0.1:1883"
    """Broker address: `mqtt://host:1883`, or `mqtts://host:8883` for TLS (the site broker
    `provision broker` writes accepts only TLS with client certificates)."""
    username: StrictStr = ""
    """MQTT user name; empty: none (the site broker takes the certificate's name)."""
    password_file: StrictStr = ""
    """File holding the MQTT password (its content, surrounding white space removed); used
    only with `username`."""
    ca_file: StrictStr = ""
    """mqtts: CA certificate(s) the broker's certificate must chain to; required with `mqtts://`
    (the system's trust store is not used)."""
    cert_file: StrictStr = ""
    """mqtts: this device's client certificate (PEM); goes with `key_file`."""
    key_file: StrictStr = ""
    """mqtts: the private key of `cert_file` (PEM, readable by the service only)."""
    keepalive_s: Annotated[StrictInt, Field(ge=5, le=3600)] = 30
    """MQTT keep-alive: the broker declares the device lost (Last Will) after 1.5 times this without
    traffic."""
    topic_root: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")] = (
        "careterm"
    )
    """First segment(s) of every topic (`R` in the topic reference)."""

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("must look like mqtt://host:1883 or mqtts://host:8883")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as e:
            raise ValueError(f"bad port ({e})") from None
        return v

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8883 if self.tls else 1883)


class PrivacySection(_Section):
    """The site secret that turns card numbers into tokens."""

    salt_file: StrictStr = "/etc/careterm/site.salt"
    """The site's secret salt for card tokens (HMAC key; surrounding white space ignored); the same
    file on every device and site tool of a site."""


class WindowSection(_Section):
    """The service window a rating pad stands at."""

    id: Annotated[StrictStr, Field(min_length=1, max_length=32)] = "W01"
    """Window id carried in every rating and staff event (`W03`)."""
    name: StrictStr = ""
    """Window name shown on the pad and in alerts (`收费处 3号窗口`)."""


class RatingSection(_Section):
    """What a rating pad asks, and when a press counts."""

    labels: Annotated[
        list[Annotated[StrictStr, Field(min_length=1, max_length=LABEL_MAX)]],
        Field(min_length=3, max_length=5),
    ] = Field(default_factory=lambda: list(DEFAULT_LABELS))
    """Worst first; score = index + 1."""
    mode: Literal["prompted", "free"] = "prompted"
    """`prompted`: a press counts only within `prompt_window_s` after a prompt (`cmd/prompt` or the
    prompt key), once; `free`: any press counts, and a press within `cooldown_s` of the last is kept
    with `misuse: true`."""
    prompt_window_s: Annotated[StrictInt, Field(ge=1, le=600)] = 15
    """How long a prompt stays open for a rating."""
    cooldown_s: Annotated[StrictInt, Field(ge=0, le=600)] = 5
    """Presses closer than this to the last rating are kept with `misuse: true` (a stuck or hammered
    key)."""
    debounce_ms: Annotated[StrictInt, Field(ge=0, le=2000)] = 80
    """Repeats of the same key within this time are one press (contact bounce)."""
    reasons: Annotated[
        list[Annotated[StrictStr, Field(min_length=1, max_length=REASON_MAX)]],
        Field(min_length=1, max_length=9),
    ] = Field(default_factory=lambda: list(DEFAULT_REASONS))
    """Reasons offered after a low score, numbered from 1; on a keypad, the key that gives score N
    picks reason N."""
    reason_timeout_s: Annotated[StrictInt, Field(ge=1, le=600)] = 10
    """Without an answer in this time the reason is sent as null."""
    min_response_ms: Annotated[StrictInt, Field(ge=0, le=60_000)] = 700
    """A press sooner than this after its prompt is kept with `misuse: true` (SPEC 9.3)."""
    alert_at_or_below: Annotated[StrictInt, Field(ge=0, le=5)] = 1
    """Scores at or below this raise a `dissatisfied` alert and ask for a reason; 0: never."""
    thanks_s: Annotated[StrictInt, Field(ge=1, le=60)] = 3
    """Seconds the thank-you screen stays (careterm extension)."""
    voice_dir: StrictStr = ""
    """Folder of a site's own WAV prompts (<sound>.<lang>.wav); empty: the ones careterm ships."""
    voice: StrictBool = True
    """Spoken prompts on or off (careterm extension)."""
    voice_volume: Annotated[StrictInt, Field(ge=0, le=100)] = 80
    """Loudness of the spoken prompts in percent of the recorded level (careterm extension)."""
    language: Literal["zh", "en"] = "zh"
    """Screen language a pad starts in and returns to; the patient can switch (careterm extension)."""
    labels_en: list[StrictStr] = Field(default_factory=list)
    """English labels, same order as `labels`; empty: built-in ones (careterm extension)."""
    reasons_en: list[StrictStr] = Field(default_factory=list)
    """English reasons, same order as `reasons`; empty: built-in ones (careterm extension)."""
    trend_window: Annotated[StrictInt, Field(ge=0, le=500)] = 0
    """Last N ratings watched for a rising share of low scores; 0: off (careterm extension)."""
    trend_share: Annotated[StrictFloat, Field(gt=0, le=1)] = 0.5
    """Share of low scores among the last `trend_window` that raises a critical alert."""
    staff_required: StrictBool = False
    """true: closed until a clerk signs in; false: open, ratings carry `staff: null` until a
    clerk signs in. A sign-out always closes the window (careterm extension)."""

    @model_validator(mode="after")
    def _english(self) -> RatingSection:
        for key, en, zh in (
            ("labels_en", self.labels_en, self.labels),
            ("reasons_en", self.reasons_en, self.reasons),
        ):
            if en and len(en) != len(zh):
                raise _KeyedError(
                    f"rating.{key}",
                    f"has {len(en)} entries; "
                    f"rating.{key[:-3]} has {len(zh)} (same order, same count)",
                )
        return self

    @property
    def scale(self) -> int:
        return len(self.labels)


class ButtonsSection(_Section):
    """The rating pad's keys."""

    driver: Literal["serial", "evdev", "touch", "keyboard", "sim"] = "serial"
    """Where keys come from: `serial` (one ASCII byte per key), `evdev` (a USB-HID keypad), `touch`
    (the screen's buttons only), `keyboard`/`sim` (simulated, for the demo and tests)."""
    device: StrictStr = "/dev/ttyUSB0"
    """Serial port (prefer `/dev/serial/by-id/...`) or input device (`/dev/input/by-id/...`)."""
    baudrate: PosInt = 9600
    """Serial speed of the keypad."""
    keys: dict[StrictStr, StrictInt | StrictStr] = Field(default_factory=lambda: dict(DEFAULT_KEYS))
    """Key name (the serial byte, or an evdev name such as `KEY_KP4`) -> score 1-5 or an action:
    `prompt`, `pause`, `resume`, `sign_out`."""

    @field_validator("keys")
    @classmethod
    def _keys(cls, v: dict[str, int | str]) -> dict[str, int | str]:
        for name, what in v.items():
            if isinstance(what, int):
                if not 1 <= what <= 5:
                    raise ValueError(f"key {name!r}: score {what} is outside 1..5")
            elif what not in KEY_ACTIONS:
                raise ValueError(
                    f"key {name!r}: {what!r} is neither a score nor one of {', '.join(KEY_ACTIONS)}"
                )
        return v


class ClassifyRule(_Section):
    """One rule of `[card_reader].classify`: what a line read from a reader is."""

    kind: Literal["id_card", "medical_card", "appointment_qr", "staff_card"]
    """What a line matching `pattern` is."""
    pattern: StrictStr
    """Python regular expression with a named group `(?P<number>...)`; first matching rule wins."""

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        try:
            rx = re.compile(v)
        except re.error as e:
            raise ValueError(f"not a regular expression: {e}") from None
        if "number" not in rx.groupindex:
            raise ValueError("needs a named group (?P<number>...)")
        return v


class CardReaderSection(_Section):
    """The card or QR reader (patients' cards on a kiosk, staff cards on a pad)."""

    driver: Literal["idcard", "serial", "evdev", "keyboard", "sim", "none"] = "none"
    """`idcard` (second-generation ID card SAM reader), `serial` or `evdev` (line readers:
    magstripe, hospital card, QR scanner), `keyboard`/`sim` (simulated), `none`."""
    device: StrictStr = ""
    """Serial port (prefer `/dev/serial/by-id/...`) or input device of the reader."""
    baudrate: PosInt = 115200
    """Serial speed of the reader (SAM readers: 115200)."""
    classify: list[ClassifyRule] = Field(
        default_factory=lambda: [ClassifyRule(**r) for r in DEFAULT_CLASSIFY]
    )
    """Rules that tell what a line read from a `serial`/`evdev` reader is; absent: the four default
    rules."""


class PrinterSection(_Section):
    """The kiosk's ticket printer (ESC/POS)."""

    driver: Literal["usb", "serial", "network", "file", "sim", "none"] = "none"
    """`usb`, `serial`, `network` (`host:9100`), `file` (write ESC/POS bytes to a file), `sim` (a
    folder of .bin and .png previews), `none`."""
    device: StrictStr = ""
    """Serial port, `host:port` for `network`, a file path for `file`, a folder for `sim`; unused
    for `usb`."""
    usb_vendor: Annotated[StrictInt, Field(ge=0, le=0xFFFF)] = 0x0416
    """USB vendor id of the printer (`usb` driver; `careterm hw list` shows it)."""
    usb_product: Annotated[StrictInt, Field(ge=0, le=0xFFFF)] = 0x5011
    """USB product id of the printer (`usb` driver)."""
    baudrate: PosInt = 9600
    """Serial speed of the printer (`serial` driver)."""
    encoding: StrictStr = "gb18030"
    """Text encoding the printer's Chinese font expects."""
    columns: Annotated[StrictInt, Field(ge=16, le=96)] = 48
    """Characters per line at normal size (58 mm paper: 32, 80 mm: 48)."""
    cut: StrictBool = True
    """Cut the paper after each ticket (`GS V`)."""
    profile: StrictStr = ""
    """python-escpos printer profile (e.g. "ZJ-5870"); one without native QR gets a raster QR.
    Empty: native `GS ( k` QR (careterm extension)."""

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str) -> str:
        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"unknown text encoding {v!r}") from None
        return v


class KioskSection(_Section):
    """The lobby kiosk's behaviour."""

    idle_timeout_s: Annotated[StrictInt, Field(ge=10, le=3600)] = 60
    """Without a touch or card for this long the kiosk returns home and forgets the patient."""
    checkin_early_min: Annotated[StrictInt, Field(ge=0, le=24 * 60)] = 60
    """Check-in opens this long before the appointment's slot."""
    checkin_late_min: Annotated[StrictInt, Field(ge=0, le=24 * 60)] = 30
    """Check-in stays open this long after the slot starts."""
    language: Literal["zh", "en"] = "zh"
    """Screen language the kiosk starts in and returns to; the patient can switch."""
    fullscreen: StrictBool = True
    """Full screen (a real kiosk); false: a window (demo, development)."""
    roster_file: StrictStr = ""
    """Optional local roster JSON (demo, or a site without roster publishing); empty: only the
    published roster."""
    maintenance_pin_sha256: Annotated[StrictStr, Field(pattern=r"^([0-9a-f]{64})?$")] = ""
    """SHA-256 (hex) of the maintenance PIN; empty: no maintenance screen."""
    # SPEC 9.6: site texts, lookup, voice, help (empty texts fall back to neutral wording)
    hospital_name: StrictStr = ""
    """Title bar and ticket header, e.g. "市第一人民医院"; empty: "门诊自助服务"."""
    hospital_name_en: StrictStr = ""
    """English title; empty: `hospital_name`, else "Outpatient self-service"."""
    logo: StrictStr = ""
    """PNG or JPEG shown left of the title (path); empty: none."""
    location: StrictStr = ""
    """Where this kiosk stands, sent with a `help` alert, e.g. "门诊楼1层大厅东侧"."""
    help_desk: StrictStr = ""
    """Where patients get help, e.g. "一楼服务台"; empty: "人工窗口"."""
    help_desk_en: StrictStr = ""
    """English `help_desk`; empty: "a service window"."""
    booking_hint: StrictStr = ""
    """How to book when no appointment is found, e.g. "关注医院公众号预约"; empty: not shown."""
    booking_hint_en: StrictStr = ""
    """English `booking_hint`."""
    feedback_reply_days: Annotated[StrictInt, Field(ge=1, le=60)] = 3
    """Working days within which a feedback with a callback number is answered."""
    lookup: list[Literal["appointment", "phone_birth"]] = Field(
        default_factory=lambda: ["appointment", "phone_birth"]
    )
    """Manual lookups offered when no card works; []: none."""
    voice: StrictBool = True
    """Spoken guidance (shipped zh/en audio) on the main steps."""
    voice_volume: Annotated[StrictInt, Field(ge=0, le=100)] = 80
    """Percent of full scale."""


class DeviceConfig(_Section):
    device: DeviceSection
    mqtt: MqttSection = Field(default_factory=MqttSection)
    privacy: PrivacySection = Field(default_factory=PrivacySection)
    window: WindowSection = Field(default_factory=WindowSection)
    rating: RatingSection = Field(default_factory=RatingSection)
    buttons: ButtonsSection = Field(default_factory=ButtonsSection)
    card_reader: CardReaderSection = Field(default_factory=CardReaderSection)
    printer: PrinterSection = Field(default_factory=PrinterSection)
    kiosk: KioskSection = Field(default_factory=KioskSection)
    _source: str = PrivateAttr(default="device.toml")

    @property
    def source(self) -> str:
        """The file this configuration was read from (for messages naming file and key)."""
        return self._source

    @model_validator(mode="after")
    def _cross_checks(self) -> DeviceConfig:
        if self.device.role == "rating_pad":
            scale = self.rating.scale
            for name, what in self.buttons.keys.items():
                if isinstance(what, int) and what > scale:
                    raise _KeyedError(
                        f"buttons.keys.{name}",
                        f"score {what} is above the scale of {scale} labels in [rating].labels",
                    )
            if self.rating.alert_at_or_below >= scale:
                raise _KeyedError(
                    "rating.alert_at_or_below",
                    f"{self.rating.alert_at_or_below} would alert on every score of a {scale}-key scale",
                )
            if self.buttons.driver != "touch" and not self.buttons.keys:
                raise _KeyedError(
                    "buttons.keys",
                    'is empty: no key could rate (map key names to scores, or driver = "touch")',
                )
            for name in self.buttons.keys:
                problem = _key_name_problem(self.buttons.driver, name)
                if problem:
                    raise _KeyedError(f"buttons.keys.{name}", problem)
        if self.mqtt.tls and bool(self.mqtt.cert_file) != bool(self.mqtt.key_file):
            raise _KeyedError("mqtt.key_file", "cert_file and key_file go together")
        if self.mqtt.tls and not self.mqtt.ca_file:
            raise _KeyedError(
                "mqtt.ca_file", "mqtts:// needs the broker's CA bundle (e.g. /etc/careterm/ca.crt)"
            )
        return self

    @property
    def topics(self) -> Topics:
        """This device's MQTT topics (SPEC 4, built by `terminal.topics`)."""
        return Topics(self.mqtt.topic_root, self.device.site, self.device.id)

    @property
    def data_dir(self) -> Path:
        return Path(self.device.data_dir)


EVDEV_KEY_NAME = re.compile(r"(KEY|BTN)_[A-Z0-9_]+")
"""A Linux input key name (`KEY_KP4`, `BTN_0`), as an evdev keypad reports it."""


def _key_name_problem(driver: str, name: str) -> str | None:
    """Why no key of a `driver` keypad could ever be `name` (SPEC 6.1), or None: a serial
    keypad sends one ASCII byte per key, an evdev keypad a key code (`KEY_KP4`, or the
    character of one, `4`). A name it cannot send is a typo that would leave a key dead."""
    if driver == "serial" and not (len(name) == 1 and name.isascii()):
        return (
            f"{name!r} is not one ASCII character: a serial keypad sends one byte per key, "
            'and the key\'s name is that character (e.g. "4"; KEY_... names are for driver = "evdev")'
        )
    if driver == "evdev" and not (len(name) == 1 or EVDEV_KEY_NAME.fullmatch(name)):
        return (
            f"{name!r} is not an input key name: an evdev keypad's keys are named like "
            'KEY_1, KEY_KP4 (or by their character, "4")'
        )
    return None


class _KeyedError(ValueError):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key
        self.problem = problem


def _describe(err: dict[str, Any]) -> tuple[str, str]:
    loc = [str(p) for p in err.get("loc", ())]
    kind = err.get("type", "")
    msg = err.get("msg", "invalid")
    ctx = err.get("ctx") or {}
    inner = ctx.get("error")
    if isinstance(inner, _KeyedError):
        return inner.key, inner.problem
    if kind == "extra_forbidden":
        return ".".join(loc), "unknown key (a typo? see SPEC section 3 for the keys)"
    if kind == "missing":
        return ".".join(loc), "is required"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    got = err.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
    return ".".join(loc), f"{msg}{shown}"


def parse_config(data: dict[str, Any], path: str | os.PathLike[str] = "<config>") -> DeviceConfig:
    try:
        cfg = DeviceConfig.model_validate(data)
    except ValidationError as e:
        key, problem = _describe(e.errors()[0])
        raise ConfigError(path, key, problem) from None
    cfg._source = str(path)
    return cfg


def load_config(path: str | os.PathLike[str]) -> DeviceConfig:
    """Read and validate a device.toml; raise ConfigError naming the file and the key."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(p, "", "file not found (use --config or $CARETERM_CONFIG)") from None
    except OSError as e:
        raise ConfigError(p, "", f"cannot read: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))  # a BOM from Windows Notepad is fine
    except UnicodeDecodeError:
        raise ConfigError(p, "", "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(p, "", f"not valid TOML: {e}") from None
    cfg = parse_config(data, p)
    data_dir = cfg.data_dir
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigError(p, "device.data_dir", f"{data_dir} is a file, not a folder")
    return cfg


def file_problems(cfg: DeviceConfig) -> list[tuple[str, str]]:
    """(key, problem) for every configured path that cannot work as it is: files that must be
    readable, folders that must be folders. `careterm config check` and `doctor` use it; the
    services find the same faults when they open the device or the broker."""
    out: list[tuple[str, str]] = []

    def readable(key: str, value: str, what: str) -> None:
        if not value:
            return
        path = Path(value)
        if not path.is_absolute():
            out.append((key, relative_path_problem(cfg, value, what)))
        elif not path.exists():
            out.append((key, f"{value}: no such file ({what})"))
        elif not path.is_file():
            out.append((key, f"{value}: not a file ({what})"))
        elif not os.access(path, os.R_OK):
            out.append((key, f"{value}: not readable by this user ({what})"))

    d = cfg.data_dir
    if d.exists() and not d.is_dir():
        out.append(("device.data_dir", f"{d} is a file, not a folder"))
    elif not d.exists():
        parent = next((p for p in d.parents if p.exists()), None)
        if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            out.append(("device.data_dir", f"{d} does not exist and cannot be created here"))
    elif not os.access(d, os.W_OK | os.X_OK):
        out.append(("device.data_dir", f"{d} is not writable by this user"))
    m = cfg.mqtt
    readable("mqtt.password_file", m.password_file, "the broker password")
    if m.tls:
        readable("mqtt.ca_file", m.ca_file, "the broker's CA bundle")
        readable("mqtt.cert_file", m.cert_file, "the device certificate")
        readable("mqtt.key_file", m.key_file, "the device key")
    uses_cards = cfg.card_reader.driver != "none"
    if uses_cards:
        readable("privacy.salt_file", cfg.privacy.salt_file, "the site salt for card tokens")
    if cfg.device.role == "kiosk":
        readable("kiosk.roster_file", cfg.kiosk.roster_file, "the local roster")
        readable("kiosk.logo", cfg.kiosk.logo, "the logo image")
        if cfg.printer.driver == "file" and cfg.printer.device:
            target = Path(cfg.printer.device)
            folder = target if target.is_dir() else target.parent
            existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
            if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK):
                out.append(
                    (
                        "printer.device",
                        f"folder {folder} does not exist and cannot be created here "
                        "(the kiosk would show tickets on screen only)",
                    )
                )
    elif cfg.rating.voice_dir and not Path(cfg.rating.voice_dir).is_absolute():
        out.append(
            ("rating.voice_dir", relative_path_problem(cfg, cfg.rating.voice_dir, "voice prompts"))
        )
    elif cfg.rating.voice_dir and not Path(cfg.rating.voice_dir).is_dir():
        out.append(("rating.voice_dir", f"{cfg.rating.voice_dir}: not a folder"))
    return out


def relative_path_problem(cfg: DeviceConfig, value: str, what: str) -> str:
    """A relative path resolves against the folder a program starts in: here, the shell's;
    under systemd, `/`. It would pass a check run beside the file and fail in the service."""
    full = Path(cfg.source).resolve().parent / value
    return (
        f"{value}: a relative path ({what}); the service starts in /, not in this folder: "
        f"write the full path, e.g. {full}"
    )


def config_path(explicit: str | None) -> str:
    return explicit or os.environ.get("CARETERM_CONFIG") or DEFAULT_CONFIG_PATH
