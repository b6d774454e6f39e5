"""Audio prompts: a `Speaker` plays a WAV file at a volume, never blocking its caller."""
