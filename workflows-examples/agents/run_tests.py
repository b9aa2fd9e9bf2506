"""The tester agent (exec handler) of the test-matrix example.

list: the project's test modules (tests/test_*.py) -> {modules: [...]}
test: runs one test module of the project with unittest, in a fresh interpreter
      -> {module, tests, failures, errors, ok}
report: sums the matrix -> {tests, failed, ok}"""

import json
import subprocess
import sys
import unittest
from pathlib import Path

payload = json.load(sys.stdin)
if payload["action"] == "report":
    # A failed step's result is what its process left (output tails), not a summary: count it failed.
    runs = [r if r and "tests" in r else None for r in payload["results"]]
    tests = sum(r["tests"] for r in runs if r)
    failed = sum(r["failures"] + r["errors"] if r else 1 for r in runs)
    print(json.dumps({"tests": tests, "failed": failed, "ok": failed == 0, "modules": len(runs)}))
    sys.exit(0)

root = Path(payload["project"]).resolve()
if payload["action"] == "list":
    print(json.dumps({"modules": sorted(p.stem for p in (root / "tests").glob("test_*.py"))}))
    sys.exit(0)
if payload.get("compile_only"):
    files = [str(p) for p in root.rglob("*.py")]
    proc = subprocess.run([sys.executable, "-m", "py_compile", *files], capture_output=True, text=True)
    print(proc.stderr, file=sys.stderr, end="")
    print(
        json.dumps({"module": "compile", "tests": len(files), "failures": proc.returncode != 0, "errors": 0})
    )
    sys.exit(proc.returncode)

sys.path[:0] = [str(root), str(root / "tests")]
suite = unittest.defaultTestLoader.loadTestsFromName(payload["module"])
result = unittest.TextTestRunner(stream=sys.stderr, verbosity=2).run(suite)
summary = {
    "module": payload["module"],
    "tests": result.testsRun,
    "failures": len(result.failures),
    "errors": len(result.errors),
    "ok": result.wasSuccessful(),
}
print(json.dumps(summary))
sys.exit(0 if result.wasSuccessful() else 1)
