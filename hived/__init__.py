"""hived: the Hive daemon."""

__version__ = "0.1.0"
