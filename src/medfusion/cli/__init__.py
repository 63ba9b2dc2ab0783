"""The ``medfusion`` command line."""

import os

# Plain one-line usage errors instead of Typer's rich boxes (read by typer.core at import time).
os.environ.setdefault("TYPER_USE_RICH", "0")
