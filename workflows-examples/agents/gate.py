"""The checker agent (exec handler) of the rerun example.

build: -> {artifact}
check: fails unless the file `ready_file` exists (a check that fails until someone fixes things)
deploy: -> {deployed: artifact}"""

import json
import sys
from pathlib import Path

payload = json.load(sys.stdin)
action = payload["action"]
if action == "check" and not Path(payload["ready_file"]).exists():
    print(f"not ready: {payload['ready_file']} does not exist", file=sys.stderr)
    sys.exit(1)
print(json.dumps({"build": {"artifact": "app.tar"}, "check": {"ok": True}}.get(action, payload)))
