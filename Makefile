# phase5-monitoring: everything installs inside the project (.venv/, bin/).
# Fresh machine needs only Python 3.11+ and Go 1.26+.

PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
PROFILE ?= dev
PYTEST_ARGS ?=
# Two workers, whole files each: the cluster tier (mostly waiting on the API server and
# Helm's polling) runs beside the CPU-bound tiers; module fixtures stay in one process.
# Modules go out in the order tests/conftest.py collects them (longest tiers first, the short
# unit modules last to even out the end), not xdist's default of most tests first.
PYTEST_XDIST ?= -n 2 --dist loadfile --no-loadscope-reorder

.PHONY: all help prereqs venv checkov tools test unit conformance e2e cluster-tier deploy render lint package release registry docs schemas keep-lists clean preview bench bench-queries bench-render bench-series cluster

all: test

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## Create .venv with the pinned test dependencies and the harness package (editable: scripts/ import it)

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

checkov: bin/checkov ## Install checkov into .venv-checkov/ (own venv: its pins clash with pytest) and link bin/checkov

bin/checkov: requirements-checkov.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	mkdir -p bin && ln -sf ../.venv-checkov/bin/checkov bin/checkov && touch -h bin/checkov

tools: ## Build helm 3/4, promtool, prometheus, amtool, alertmanager, jaeger, node_exporter, the Kubernetes control plane, etcd, kwok, registry, cosign, actionlint, controller-gen, prometheus-operator and its CRDs into bin/ (tools.versions)
	scripts/install-tools.sh

# The virtualenvs (pip, mostly waiting on PyPI) are made while the Go tools build.
prereqs:
	@$(MAKE) --no-print-directory -j3 venv tools checkov

test: prereqs ## Run the whole test suite (every tier; the cluster tier on KUBECONFIG's cluster, else on a local control plane)
	$(PY) -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

unit conformance e2e: prereqs ## Run one tier
	$(PY) -m pytest $(PYTEST_XDIST) -m $@ $(PYTEST_ARGS)

cluster-tier: venv tools ## Run the cluster tier only (marker `cluster`)
	$(PY) -m pytest $(PYTEST_XDIST) -m cluster $(PYTEST_ARGS)

cluster: venv tools ## Run a local Kubernetes control plane (real API server, 3 simulated nodes); prints the KUBECONFIG, Ctrl-C stops it
	$(PY) scripts/cluster.py

deploy: venv tools ## Deploy to the cluster in KUBECONFIG (or kind; renders when none): DEPLOY_ARGS='--profile production'
	scripts/deploy-monitoring.sh $(DEPLOY_ARGS)

render: venv tools ## Render a profile (PROFILE=dev|production|...) to build/ and summarise it
	$(PY) scripts/render.py --profile $(PROFILE)

lint: venv tools ## helm lint --strict the umbrella and every subchart
	$(PY) -m pytest -m conformance -k lint $(PYTEST_ARGS)

package: tools ## helm package the umbrella chart into build/ (Artifact Hub annotations in its Chart.yaml)
	mkdir -p build && bin/helm package charts/phase5-monitoring -d build

release: venv ## Package, sign (GPG .prov) and publish: RELEASE_ARGS='--repo-dir DIR --oci oci://HOST/PATH'; keys from RELEASE_GPG_KEY, RELEASE_GPG_KEYRING, COSIGN_KEY (scripts/release.py --help)
	scripts/install-tools.sh helm cosign
	$(PY) scripts/release.py $(RELEASE_ARGS)

registry: venv ## Run a local OCI registry and a classic chart repository on 127.0.0.1 to release into and install from; Ctrl-C stops them
	scripts/install-tools.sh registry
	$(PY) scripts/registry.py $(REGISTRY_ARGS)

docs: venv ## Regenerate the values tables in the chart READMEs from the `# --` comments
	$(PY) scripts/values_doc.py --write

preview: venv tools ## Run the rendered Prometheus+Alertmanager on 127.0.0.1 with a synthetic workload; switch alert scenarios
	$(PY) scripts/preview.py

bench: venv tools ## Measure alert latency, dashboard query latency (10,000 pods, backfilled), render time, series stored and Prometheus memory at 1,000 and 10,000 pods against kube-prometheus-stack (KPS_CHART), requests; writes docs/benchmarks.md in one run
	$(PY) scripts/bench.py

bench-series: venv tools ## Only the series stored and Prometheus memory against kube-prometheus-stack's configuration (1,000 and 10,000 live pods on the local control plane); rewrites that section of docs/benchmarks.md
	$(PY) scripts/bench.py --only series $(BENCH_ARGS)

bench-queries: venv tools ## Only the dashboard query latency at 10,000 pods (backfilled blocks, real promtool/prometheus; needs Go for scripts/bench-backfill); rewrites that section of docs/benchmarks.md
	$(PY) scripts/bench.py --only queries $(BENCH_ARGS)

bench-render: venv ## Only the render comparison with kube-prometheus-stack (KPS_CHART=dir, default build/kps/kube-prometheus-stack; BENCH_ARGS='--render-baseline main' adds a before/after); rewrites that section of docs/benchmarks.md
	scripts/install-tools.sh helm helm4
	$(PY) scripts/bench.py --render-only $(BENCH_ARGS)

keep-lists: venv ## Regenerate prometheus/files/keep-lists.yaml from the series the rules, alerts and dashboards read (scripts/series_inventory.py; without --write it lists them)
	$(PY) scripts/series_inventory.py --write

schemas: ## Generate every values.schema.json from values.yaml and its `# --`/`# @schema` comments (scripts/schemas.py)
	$(PYTHON) scripts/schemas.py --write

clean: ## Remove build output (keeps .venv and bin)
	rm -rf build .pytest_cache .hypothesis
