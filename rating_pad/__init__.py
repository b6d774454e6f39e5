"""The window rating pad: clerk on duty, one-press ratings, reasons, alerts, the queue's prompt."""
