"""Spoken prompts of the rating pad: `<name>.<lang>.wav`, made by `scripts/make-voice`."""
