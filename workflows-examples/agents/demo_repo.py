"""Make the git repository that parallel-fixes.yaml works on: three modules with TODOs, on `main`.
python3 workflows-examples/agents/demo_repo.py workflows-examples/demo-repo
"""

import subprocess
import sys
from pathlib import Path

MODULE = '''"""The {name} module."""


def {name}(x):
    # TODO: handle None
    return x  # TODO: validate
'''


def main(path: str) -> None:
    repo = Path(path)
    repo.mkdir(parents=True)
    for name in ("alpha", "beta", "gamma"):
        (repo / f"{name}.py").write_text(MODULE.format(name=name))
    who = ["-c", "user.name=demo", "-c", "user.email=demo@example.invalid"]
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        [*who, "commit", "-q", "-m", "three modules with TODOs"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True)
    print(repo.resolve())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo-repo")
