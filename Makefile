# Two commands: `make run` starts Sector on the embedded default; `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench clean chromium

run: $(VENV)/.runtime
	$(PY) app.py dev

test: $(VENV)/.dev chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# tests/test_ops_page.py drives Debian's Chromium with Playwright. Installed here when missing and we may
# (root, apt-get); otherwise those tests skip and say why, and the rest of the suite runs.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	      echo "Could not install chromium; tests/test_ops_page.py will skip."; \
	  else echo "chromium is missing and apt-get is not available to us; tests/test_ops_page.py will skip."; fi; }

bench: $(VENV)/.dev
	$(PY) bench/write_path.py
	$(PY) bench/rosetta_chat.py
	$(PY) bench/translation.py
	$(PY) bench/files.py
	$(PY) bench/push_fanout.py
	$(PY) bench/realtime.py

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	touch $@

$(VENV)/.runtime: $(VENV)/.created requirements.txt
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

clean:
	rm -rf $(VENV) var .pytest_cache
