"""`hive-tui`: the Textual dashboard. Not built yet (its issue is open); says so instead of failing."""

from __future__ import annotations

import sys


def main() -> int:
    print(
        "hive-tui: the dashboard is not built yet; use 'hivectl status' and 'hivectl agent list'",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
