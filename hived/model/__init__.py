"""Hive's vocabulary and wire contract, with no I/O: the API and YAML document schemas, the status
enums with their legal transitions, durations and sizes. The only part of `hived` that `hivectl` and
`tui` import; it imports nothing of `hived` outside itself."""

__version__ = "0.1.0"
