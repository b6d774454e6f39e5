"""Builds the `[printer]` driver: a real ESC/POS printer on its transport, or the simulator."""

from __future__ import annotations

from pathlib import Path

from escpos import capabilities

from drivers.base import DeviceState
from drivers.printer import transports as t
from drivers.printer.base import PrinterStatus, PrintResult, TicketPrinter
from drivers.printer.document import Document
from drivers.printer.escpos_build import TicketStyle
from drivers.printer.escpos_printer import EscposPrinter
from drivers.printer.sim import SimulatedPrinter
from terminal.config import ConfigError, DeviceConfig


def native_qr(profile: str, config_file: str = "device.toml") -> bool:
    """Whether the python-escpos profile prints `GS ( k` QR codes (empty profile: yes)."""
    if not profile:
        return True
    try:
        return bool(capabilities.get_profile(profile).supports("qrCode"))
    except KeyError:
        raise ConfigError(
            config_file,
            "printer.profile",
            f"unknown python-escpos printer profile {profile!r} "
            '(e.g. "default", "TM-T88V", "ZJ-5870")',
        ) from None


def ticket_style(cfg: DeviceConfig, config_file: str = "device.toml") -> TicketStyle:
    p = cfg.printer
    return TicketStyle(
        columns=p.columns,
        encoding=p.encoding,
        cut=p.cut,
        native_qr=native_qr(p.profile, config_file),
        profile=p.profile,
    )


class FaultyPrinter(TicketPrinter):
    """A printer that cannot work as configured (its folder cannot be made, ...): state
    `error` with the reason, every ticket refused at once. The kiosk goes on without it."""

    def __init__(self, why: str) -> None:
        super().__init__("printer")
        self.why = why
        self._set_state(DeviceState.ERROR, why)

    def print_document(self, doc: Document, timeout: float = 5.0) -> PrintResult:
        return PrintResult(False, self.why)

    def status(self) -> PrinterStatus:
        return PrinterStatus()


def open_printer(
    cfg: DeviceConfig,
    out_dir: str | Path | None = None,
    config_file: str = "device.toml",
    *,
    poll_every: float | None = 5.0,
) -> TicketPrinter | None:
    """The configured printer, or None for `driver = "none"`.

    `sim` writes tickets (`.bin` + `.png`) to `out_dir`, else the folder `[printer].device`,
    else `<data_dir>/tickets`;
    `file` with `out_dir` given and no `device` also writes there.
    """
    p = cfg.printer
    if p.driver == "none":
        return None
    style = ticket_style(cfg, config_file)
    if p.driver == "sim":
        folder = (
            Path(out_dir) if out_dir else Path(p.device) if p.device else cfg.data_dir / "tickets"
        )
        return SimulatedPrinter(folder, style)

    transport: t.Deadlined
    if p.driver == "usb":
        transport = t.UsbPrinter(p.usb_vendor, p.usb_product)
    elif p.driver == "file":
        target = p.device or (str(out_dir) if out_dir else "")
        if not target:
            raise ConfigError(
                config_file, "printer.device", 'driver "file" needs a file or folder path'
            )
        if Path(target).is_char_device():
            transport = t.DevicePrinter(target)
        else:
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                why = f"{Path(target).parent}: cannot create the folder ({e.strerror or e})"
                return FaultyPrinter(f"[printer].device: {why}")
            transport = t.FilePrinter(target)
    elif p.driver == "serial":
        if not p.device:
            raise ConfigError(
                config_file,
                "printer.device",
                'driver "serial" needs a port (/dev/serial/by-id/...)',
            )
        transport = t.SerialPrinter(p.device, p.baudrate)
    elif p.driver == "network":
        try:
            transport = t.NetworkPrinter.parse(p.device)
        except ValueError:
            raise ConfigError(
                config_file,
                "printer.device",
                f"{p.device!r} is not host:port (e.g. 192.168.1.50:9100)",
            ) from None
        if not transport.host:
            raise ConfigError(config_file, "printer.device", 'driver "network" needs host:9100')
    else:
        raise ConfigError(config_file, "printer.driver", f"unknown driver {p.driver!r}")
    return EscposPrinter(transport, style, poll_every=poll_every if transport.can_read else None)
