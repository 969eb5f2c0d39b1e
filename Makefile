# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean proto

install: $(STAMP)

$(STAMP): pyproject.toml clients/python/pyproject.toml scripts/system-deps.sh
	./scripts/system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[train,test,bench,fe]' -e clients/python
	# Compile the prediction kernels once, as the image build does: otherwise the first
	# replicas to start (`make run`, or several at once in `make test`) each compile them.
	$(BIN)/surrogate-serve warmup
	touch $(STAMP)

# Migrate the embedded registry, fit the demo model once if absent, then serve it.
run: install
	$(BIN)/surrogate-serve migrate
	$(BIN)/surrogate-train demo
	$(BIN)/surrogate-serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --no-loadscope-reorder --durations=15

lint: install
	$(BIN)/ruff check service training tests benchmarks
	$(BIN)/lint-imports --no-cache

bench: install
	$(BIN)/python benchmarks/kernel.py
	$(BIN)/python benchmarks/http.py
	$(BIN)/python benchmarks/vs_pymc.py
	$(BIN)/python benchmarks/ui.py
	$(BIN)/python benchmarks/cards.py

# Regenerate the committed gRPC modules (service/oip/*_pb2*.py) from grpc_predict_v2.proto.
proto: install
	PYTHON=$(BIN)/python ./scripts/gen-proto.sh

clean:
	rm -rf $(VENV) var .pytest_cache
