"""`python -m careterm` runs the careterm command line."""

from careterm.cli import main

raise SystemExit(main())
