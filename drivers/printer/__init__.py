"""Ticket printers: ESC/POS over USB, serial, network or a file, and a simulated printer."""
