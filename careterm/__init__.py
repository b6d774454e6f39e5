"""The composition root: the `careterm` command line and the demo, above every app."""
