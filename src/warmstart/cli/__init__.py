"""The command line: options parsed into config objects, then one call into the Python API.

``app`` (the typer app and ``main``), ``options`` (the option groups, declared once), ``build`` (each group into
its config object), ``config_file`` (``--config``), one module per command group (``train``, ``inspect``,
``select``, ``demo``) and ``render`` (what they print). Nothing here imports torch until a command runs.
"""

from .app import app, main

__all__ = ["app", "main"]
