"""Device configuration: one typed, validated model of SPEC section 3, loaded from TOML."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
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
    id: Name
    role: Literal["rating_pad", "kiosk"]
    site: Name
    data_dir: StrictStr = "/var/lib/careterm"
    """Folder for the outbox and device state; created if missing."""
    retain_days: Annotated[StrictInt, Field(ge=1, le=365)] = 7
    """Days a sent event is kept for `resend` when the site never acks it."""


class MqttSection(_Section):
    url: StrictStr = "mqtt://127.0.0.1:1883"
    username: StrictStr = ""
    password_file: StrictStr = ""
    ca_file: StrictStr = ""
    cert_file: StrictStr = ""
    key_file: StrictStr = ""
    keepalive_s: Annotated[StrictInt, Field(ge=5, le=3600)] = 30
    topic_root: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")] = (
        "careterm"
    )

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
    salt_file: StrictStr = "/etc/careterm/site.salt"


class WindowSection(_Section):
    id: Annotated[StrictStr, Field(min_length=1, max_length=32)] = "W01"
    name: StrictStr = ""


class RatingSection(_Section):
    labels: Annotated[list[StrictStr], Field(min_length=3, max_length=5)] = Field(
        default_factory=lambda: list(DEFAULT_LABELS)
    )
    """Worst first; score = index + 1."""
    mode: Literal["prompted", "free"] = "prompted"
    prompt_window_s: Annotated[StrictInt, Field(ge=1, le=600)] = 15
    cooldown_s: Annotated[StrictInt, Field(ge=0, le=600)] = 5
    debounce_ms: Annotated[StrictInt, Field(ge=0, le=2000)] = 80
    reasons: Annotated[list[StrictStr], Field(min_length=1, max_length=9)] = Field(
        default_factory=lambda: list(DEFAULT_REASONS)
    )
    reason_timeout_s: Annotated[StrictInt, Field(ge=1, le=600)] = 10
    alert_at_or_below: Annotated[StrictInt, Field(ge=0, le=5)] = 1
    thanks_s: Annotated[StrictInt, Field(ge=1, le=60)] = 3
    """Seconds the thank-you screen stays (careterm extension)."""
    voice_dir: StrictStr = ""
    """Optional folder of WAV prompts (prompt.wav, thanks.wav, reason.wav); careterm extension."""
    language: Literal["zh", "en"] = "zh"
    """Screen language a pad starts in and returns to; the patient can switch (careterm extension)."""
    labels_en: list[StrictStr] = Field(default_factory=list)
    """English labels, same order as `labels`; empty: built-in ones (careterm extension)."""
    reasons_en: list[StrictStr] = Field(default_factory=list)
    """English reasons, same order as `reasons`; empty: built-in ones (careterm extension)."""
    trend_window: Annotated[StrictInt, Field(ge=0, le=500)] = 0
    """Last N ratings watched for a rising share of low scores; 0: off (careterm extension)."""
    trend_share: Annotated[float, Field(gt=0, le=1)] = 0.5
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
    driver: Literal["serial", "evdev", "touch", "keyboard", "sim"] = "serial"
    device: StrictStr = "/dev/ttyUSB0"
    baudrate: PosInt = 9600
    keys: dict[StrictStr, StrictInt | StrictStr] = Field(default_factory=lambda: dict(DEFAULT_KEYS))

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
    kind: Literal["id_card", "medical_card", "appointment_qr", "staff_card"]
    pattern: StrictStr

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
    driver: Literal["idcard", "serial", "evdev", "keyboard", "sim", "none"] = "none"
    device: StrictStr = ""
    baudrate: PosInt = 115200
    classify: list[ClassifyRule] = Field(
        default_factory=lambda: [ClassifyRule(**r) for r in DEFAULT_CLASSIFY]
    )


class PrinterSection(_Section):
    driver: Literal["usb", "serial", "network", "file", "sim", "none"] = "none"
    device: StrictStr = ""
    usb_vendor: Annotated[StrictInt, Field(ge=0, le=0xFFFF)] = 0x0416
    usb_product: Annotated[StrictInt, Field(ge=0, le=0xFFFF)] = 0x5011
    baudrate: PosInt = 9600
    encoding: StrictStr = "gb18030"
    columns: Annotated[StrictInt, Field(ge=16, le=96)] = 48
    cut: StrictBool = True
    profile: StrictStr = ""
    """python-escpos printer profile (e.g. "ZJ-5870"); one without native QR gets a raster QR.
    Empty: native `GS ( k` QR (careterm extension)."""

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str) -> str:
        import codecs

        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"unknown text encoding {v!r}") from None
        return v


class KioskSection(_Section):
    idle_timeout_s: Annotated[StrictInt, Field(ge=10, le=3600)] = 60
    checkin_early_min: Annotated[StrictInt, Field(ge=0, le=24 * 60)] = 60
    checkin_late_min: Annotated[StrictInt, Field(ge=0, le=24 * 60)] = 30
    language: Literal["zh", "en"] = "zh"
    fullscreen: StrictBool = True
    roster_file: StrictStr = ""
    maintenance_pin_sha256: Annotated[StrictStr, Field(pattern=r"^([0-9a-f]{64})?$")] = ""
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
        if self.mqtt.tls and bool(self.mqtt.cert_file) != bool(self.mqtt.key_file):
            raise _KeyedError("mqtt.key_file", "cert_file and key_file go together")
        return self

    @property
    def topics(self) -> Topics:
        """This device's MQTT topics (SPEC 4, built by `terminal.topics`)."""
        return Topics(self.mqtt.topic_root, self.device.site, self.device.id)

    @property
    def data_dir(self) -> Path:
        return Path(self.device.data_dir)


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
        return DeviceConfig.model_validate(data)
    except ValidationError as e:
        key, problem = _describe(e.errors()[0])
        raise ConfigError(path, key, problem) from None


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
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(p, "", "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(p, "", f"not valid TOML: {e}") from None
    return parse_config(data, p)


def config_path(explicit: str | None) -> str:
    return explicit or os.environ.get("CARETERM_CONFIG") or DEFAULT_CONFIG_PATH
