"""`python -m sidecar` is `turnout`."""

import sys

from sidecar.cli import main

sys.exit(main())
