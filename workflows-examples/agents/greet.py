"""An exec handler: reads the task payload (JSON) on stdin, prints its result (JSON) on stdout."""

import json
import os
import sys

payload = json.load(sys.stdin)
name = payload.get("name", "world")
print(json.dumps({"greeting": f"hello, {name}", "task": os.environ["HIVE_TASK_ID"]}))
