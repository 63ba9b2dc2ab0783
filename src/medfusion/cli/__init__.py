"""The ``medfusion`` command line."""

from medfusion.settings import set_process_default

# Plain one-line usage errors instead of Typer's rich boxes (read by typer.core at import time).
set_process_default("TYPER_USE_RICH", "0")
