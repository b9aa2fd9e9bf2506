"""A reviewer agent (exec handler) for the code-review example.

payload {check: style|security|docs, root, files: [...]} -> {check, findings: [{file, line, message}], count}.
The checks are real but small: long lines and trailing spaces; eval/exec/shell=True/pickle; functions
without a docstring (through ast)."""

import ast
import json
import re
import sys
from pathlib import Path

RISKY = re.compile(r"\beval\(|\bexec\(|shell=True|pickle\.loads")


def style(path, lines):
    for number, line in enumerate(lines, 1):
        if len(line) > 100:
            yield number, f"line longer than 100 characters ({len(line)})"
        if line != line.rstrip():
            yield number, "trailing whitespace"


def security(path, lines):
    for number, line in enumerate(lines, 1):
        if RISKY.search(line.split("#")[0]):
            yield number, f"risky call: {line.strip()}"


def docs(path, lines):
    for node in ast.walk(ast.parse("\n".join(lines), filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not ast.get_docstring(node):
            yield node.lineno, f"function {node.name}() has no docstring"


CHECKS = {"style": style, "security": security, "docs": docs}

payload = json.load(sys.stdin)
check = CHECKS[payload["check"]]
root = Path(payload["root"])
findings = []
for name in payload["files"]:
    lines = (root / name).read_text().splitlines()
    for line, message in check(root / name, lines):
        findings.append({"file": name, "line": line, "message": message})
        print(f"{payload['check']}: {name}:{line}: {message}", file=sys.stderr)
print(json.dumps({"check": payload["check"], "findings": findings, "count": len(findings)}))
