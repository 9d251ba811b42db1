"""pytest parameter sets shared by the tiers."""
import pytest

from . import paths


def profiles():
    """The chart defaults plus every profile in values/: (values_files tuple) params."""
    return [pytest.param((), id="defaults")] + [
        pytest.param((p,), id=p.stem) for p in paths.profiles()
    ]


def kube_versions():
    return [pytest.param(v, id=f"k8s-{v}") for v in (paths.KUBE_MIN, paths.KUBE_MAX)]
