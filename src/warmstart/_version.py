"""The package version, in a module of its own: the modules that record it (checkpoints, run folders, exports) import
it from here, not from the package root, whose exports are lazy and would import the whole API."""

__version__ = "0.1.0"
