"""pytest parameter sets shared by the tiers."""
import pytest

from . import paths


def profiles():
    """The chart defaults, every profile in values/ and every ci/*-values.yaml scenario,
    as (values_files tuple) params: nothing a user or CI passes goes unrendered."""
    return [pytest.param((), id="defaults")] + [
        pytest.param((p,), id=p.stem) for p in paths.profiles()
    ] + [pytest.param((p,), id=f"ci-{p.stem}") for p in paths.ci_values()]


def kube_versions():
    return [pytest.param(v, id=f"k8s-{v}") for v in (paths.KUBE_MIN, paths.KUBE_MAX)]
