"""`python -m terminal` runs the careterm command line."""

from terminal.cli import main

raise SystemExit(main())
