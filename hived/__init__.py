"""hived: the Hive daemon."""

from hived.model import __version__

__all__ = ["__version__"]
