# Two entry points (README): `make run` sets up, builds Release and runs the main job; `make test` sets up,
# builds and runs the whole suite with ctest. BUILD_DIR, JOBS and CMAKE_FLAGS can be overridden.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
CTEST_FLAGS ?=

.PHONY: setup configure build build-nlpf run test fuzz clean

setup:
	@tools/setup.sh

configure: setup
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# The main job needs only the binary: tests and benchmarks are built by `make test`.
build-nlpf: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target nlpf

run: build-nlpf
	@tools/run_main_job.sh $(BUILD_DIR)/nlpf runs

# Tests that need all-MiniLM-L6-v2 find it through NLPF_MINILM_DIR (tools/fetch_minilm.sh fills .cache/minilm).
MINILM_DIR := $(if $(wildcard .cache/minilm/model.safetensors),$(CURDIR)/.cache/minilm,)

test: build
	@cd $(BUILD_DIR) && NLPF_MINILM_DIR=$${NLPF_MINILM_DIR:-$(MINILM_DIR)} ctest --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

fuzz: setup
	@tools/fuzz.sh

clean:
	rm -rf $(BUILD_DIR)
