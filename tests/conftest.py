"""Shared fixtures. Tier markers are registered in pyproject.toml."""
import pytest

from harness import tools


def pytest_report_header(config):
    found = {name: tools.find(name) or "MISSING" for name in tools.TOOLS}
    lines = ["tools: " + ", ".join(f"{k}={v}" for k, v in found.items())]
    if tools.in_ci():
        lines.append("CI=true: a missing tool fails its tests instead of skipping them")
    return lines


@pytest.fixture(scope="session")
def helm():
    return tools.require("helm")

