"""The releaser agent (exec handler) of the approval-gated release example.

notes:   appends this step's section to the run's shared context key `notes`, with compare-and-set
         (several notes steps run at once; none is lost) -> {section, sections_now}
publish: writes the release file from the context's notes -> {file, sections}"""

import json
import sys
from pathlib import Path

from hive_api import get_context, update_context

payload = json.load(sys.stdin)
if payload["action"] == "notes":
    section = {"title": payload["title"], "items": payload["items"]}
    notes = update_context("notes", lambda old: (old or []) + [section])
    print(json.dumps({"section": payload["title"], "sections_now": len(notes)}))
elif payload["action"] == "publish":
    notes = sorted(get_context("notes") or [], key=lambda s: s["title"])
    lines = [f"# {payload['name']} {payload['version']}", ""]
    for section in notes:
        lines += [f"## {section['title']}"] + [f"- {item}" for item in section["items"]] + [""]
    out = Path(payload["dir"]).resolve() / f"RELEASE-{payload['version']}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(json.dumps({"file": str(out), "sections": [s["title"] for s in notes]}))
else:
    sys.exit(f"unknown action {payload['action']!r}")
