"""The deployer agent (exec handler) of the deploy-with-rollback example. It deploys into a
directory (`target`): releases/<version>/ holds each build, `current` is a symlink to the live one.

build:    writes releases/<version>/ (app.txt and health, "ok" unless payload healthy is false)
deploy:   points `current` at the new release -> {previous, current}
smoke:    reads current/health; exits 1 unless it says ok
rollback: points `current` back at `previous` -> {rolled_back_to}"""

import json
import os
import sys
from pathlib import Path

payload = json.load(sys.stdin)
target = Path(payload["target"]).resolve()
current = target / "current"
action = payload["action"]


def switch(release: Path) -> None:
    tmp = target / "current.new"
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(release)
    os.replace(tmp, current)  # atomic: `current` is never missing


if action == "build":
    release = target / "releases" / payload["version"]
    release.mkdir(parents=True, exist_ok=True)
    (release / "app.txt").write_text(f"app {payload['version']}\n")
    (release / "health").write_text("ok\n" if payload.get("healthy", True) else "broken\n")
    print(json.dumps({"release": str(release)}))
elif action == "deploy":
    previous = str(current.resolve()) if current.exists() else None
    switch(Path(payload["release"]))
    print(f"current -> {payload['release']} (was {previous})", file=sys.stderr)
    print(json.dumps({"previous": previous, "current": payload["release"]}))
elif action == "smoke":
    health = (current / "health").read_text().strip()
    if health != "ok":
        sys.exit(f"smoke test failed: health is {health!r}")
    print(json.dumps({"health": health}))
elif action == "rollback":
    if not payload.get("previous"):
        sys.exit("nothing to roll back to: this was the first release")
    switch(Path(payload["previous"]))
    print(json.dumps({"rolled_back_to": payload["previous"]}))
else:
    sys.exit(f"unknown action {action!r}")
