"""Rating keypads: serial (one byte per key), evdev (HID keypads), touch and simulated keys."""
