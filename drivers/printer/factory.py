"""Builds the `[printer]` driver: a real ESC/POS printer on its transport, or the simulator."""

from __future__ import annotations

from pathlib import Path

from drivers.printer.base import TicketPrinter
from drivers.printer.escpos_build import TicketStyle
from terminal.config import ConfigError, DeviceConfig


def native_qr(profile: str, config_file: str = "device.toml") -> bool:
    """Whether the python-escpos profile prints `GS ( k` QR codes (empty profile: yes)."""
    if not profile:
        return True
    from escpos import capabilities

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
    )


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
        from drivers.printer.sim import SimulatedPrinter

        folder = (
            Path(out_dir) if out_dir else Path(p.device) if p.device else cfg.data_dir / "tickets"
        )
        return SimulatedPrinter(folder, style)

    from drivers.printer import transports as t
    from drivers.printer.escpos_printer import EscposPrinter

    transport: t.Transport
    if p.driver == "usb":
        transport = t.UsbTransport(p.usb_vendor, p.usb_product)
    elif p.driver == "file":
        target = p.device or (str(out_dir) if out_dir else "")
        if not target:
            raise ConfigError(
                config_file, "printer.device", 'driver "file" needs a file or folder path'
            )
        if Path(target).is_char_device():
            transport = t.DeviceTransport(target)
        else:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            transport = t.FileTransport(target)
    elif p.driver == "serial":
        if not p.device:
            raise ConfigError(
                config_file,
                "printer.device",
                'driver "serial" needs a port (/dev/serial/by-id/...)',
            )
        transport = t.SerialTransport(p.device, p.baudrate)
    elif p.driver == "network":
        try:
            transport = t.NetworkTransport.parse(p.device)
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
