"""Card and code readers: second-generation ID cards (SAM), serial and HID line readers, simulated."""
