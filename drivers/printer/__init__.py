"""Ticket printers: ESC/POS over USB, serial, network or a file, and a simulated printer."""

from drivers.printer.escpos_cache import use_cache

use_cache()  # before any module of this package imports python-escpos
