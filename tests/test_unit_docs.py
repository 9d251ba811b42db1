"""Unit tier: documentation kept in step with the code."""
import subprocess
import sys

import pytest

from harness import paths

pytestmark = pytest.mark.unit


def test_values_reference_matches_values_yaml():
    """Each chart README's values table is generated from the `# --` comments; every
    leaf value has one. Fails when a value is added, renamed or undocumented."""
    proc = subprocess.run([sys.executable, str(paths.ROOT / "scripts" / "values_doc.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_quick_start_commands_exist():
    """The Quick start's commands are make targets or scripts that exist."""
    readme = (paths.ROOT / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines() if line.strip()]
    assert len(commands) == 2, f"Quick start must have exactly two commands, has {commands}"
    for cmd in commands:
        first = cmd.split()[0]
        if first == "make":
            # make -n: the target exists (exit 0) without running it.
            proc = subprocess.run(["make", "-n", *cmd.split()[1:]], cwd=paths.ROOT, capture_output=True, text=True)
            assert proc.returncode == 0, f"Quick start command {cmd!r}: {proc.stderr}"
        else:
            assert (paths.ROOT / first).exists(), f"Quick start command {cmd!r}: {first} does not exist"
