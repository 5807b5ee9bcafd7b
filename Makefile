# The two commands that do everything are `make run` and `make test` (see README.md).
PY ?= python3
PYTEST_ARGS ?=

.PHONY: bench-routing run test lint typecheck layers unit integration tools bench bench-gateway bench-behind-gateway bench-operator install

install:
	$(PY) -m pip install -q -e '.[test]'

tools:
	bash hack/build-tools.sh

run: tools
	hack/netns.sh $(PY) hack/run_local.py

lint:
	$(PY) -m ruff check operator tests hack
	$(PY) -m ruff format --check operator tests hack
	hadolint Dockerfile

typecheck:
	$(PY) -m mypy

layers:
	lint-imports

unit:
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

# In a network namespace of its own (hack/netns.sh): Karpenter binds every interface.
integration: tools
	hack/netns.sh $(PY) -m pytest tests/integration tests/e2e $(PYTEST_ARGS)

# Everything CI runs: static checks first (cheap), then every test tier in one pytest run.
test: lint typecheck layers tools
	hack/netns.sh $(PY) -m pytest tests $(PYTEST_ARGS)

bench: bench-gateway bench-routing
	$(PY) -m inference_operator.bench.standard

# The standard set with the gateway in the path (its maxPerReplica, its count of requests).
bench-behind-gateway:
	$(PY) -m inference_operator.bench.standard --gateway

# Prefix-aware routing against least outstanding requests on a shared-prefix workload: on the
# fleet simulator, then through the real gateway in front of fake vLLM replicas (~4 min).
bench-routing:
	$(PY) -m inference_operator.bench.routing
	PYTHONPATH=operator:tests $(PY) hack/bench_prefix_gateway.py

# 5,000 InferenceDeployments over 50 namespaces on the local control plane at the default resync:
# time to reconcile all, memory, CPU, API calls and Prometheus queries at steady state.
bench-operator: tools
	$(PY) hack/bench_operator.py --scale 5000 --namespaces 50 --restart

bench-gateway:
	$(PY) -m inference_operator.gateway.bench
