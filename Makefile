# Every target creates and uses .venv itself: `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: run test lint bench install dev services browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Re-install (and rebuild the filter's C extension) whenever these change.
$(VENV)/.installed: pyproject.toml setup.py filters/_native.c | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

run: install
	$(BIN)/chatd serve $(ARGS)

services:
	bash .ci/ensure-services

# The browser tests drive Debian's Chromium; CJK fonts make the screenshots readable.
# ffprobe cross-checks the voice clips chatd stores (tests/test_media_webm.py).
browser:
	@test -x /usr/bin/chromium || (apt-get update -q && apt-get install -y -q chromium \
		fonts-wqy-microhei fonts-noto-color-emoji)
	@test -x /usr/bin/ffprobe || (apt-get update -q && apt-get install -y -q ffmpeg)

test: dev services browser
	$(BIN)/python -m pytest $(ARGS)

lint: dev
	$(BIN)/ruff check chatd filters bench tests
	$(BIN)/mypy

bench: dev
	$(BIN)/python -m bench.filter_bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
