"""What a device reports about its own client certificate (telemetry `cert_days_left`)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509


def days_left(cert: x509.Certificate, now: dt.datetime | None = None) -> int:
    """Whole days until `cert` expires (negative once expired)."""
    remaining = cert.not_valid_after_utc - (now or dt.datetime.now(dt.UTC))
    return int(remaining.total_seconds() // 86400)


def cert_days_left(path: str | os.PathLike[str] | None) -> int | None:
    """Whole days until the certificate at `path` expires (negative once expired).

    None when there is no certificate to read (empty path, missing or unreadable file), so
    telemetry can add it unconditionally; it never raises.
    """
    if not path:
        return None
    # Imported here: cryptography's x509 costs ~50 ms of CPU at import (~0.5 s on a Pi-class
    # device), and only devices with a client certificate ever read one, after start-up.
    from cryptography import x509

    try:
        return days_left(x509.load_pem_x509_certificate(Path(path).read_bytes()))
    except (OSError, ValueError):
        return None
