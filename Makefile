# Set-up and entry points. `make demo` and `make test` do all set-up on a fresh Debian/Ubuntu machine
# with Python 3.11 and no ROS; each step is skipped when its stamp is newer than its inputs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALL := install
DEB_PACKAGES := libusb-1.0-0 libegl1 libegl-mesa0 libgl1 libgomp1 cmake g++ make
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Our interface packages are built into ./install; the ROS wheels find their own libraries.
export PYTHONPATH := $(CURDIR)/$(INSTALL)/lib/python3.11/site-packages$(if $(PYTHONPATH),:$(PYTHONPATH))
export LD_LIBRARY_PATH := $(CURDIR)/$(INSTALL)/lib$(if $(LD_LIBRARY_PATH),:$(LD_LIBRARY_PATH))
export HF_HUB_OFFLINE := 1
# Camera frames between local processes need a larger shared-memory segment (see the file).
export FASTDDS_DEFAULT_PROFILES_FILE ?= $(CURDIR)/config/fastdds_localhost.xml
export PYTHONUNBUFFERED := 1

INTERFACE_FILES := $(shell find interfaces -type f)

.PHONY: setup demo eval test bench clean

setup: .deps.stamp $(VENV)/.stamp $(INSTALL)/.stamp

.deps.stamp: Makefile
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@touch $@

$(VENV)/.stamp: requirements.txt setup.py .deps.stamp
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

# tf2_msgs is built from interfaces/compat only where the environment has none (PyPI wheels).
$(INSTALL)/.stamp: $(VENV)/.stamp $(INTERFACE_FILES)
	@set -e; source $(VENV)/bin/activate; \
	export AMENT_PREFIX_PATH=$$VIRTUAL_ENV$${AMENT_PREFIX_PATH:+:$$AMENT_PREFIX_PATH}; \
	paths=interfaces/modular_robot_interfaces; \
	if ! $(PY) scripts/has_ros_package.py tf2_msgs; then paths="$$paths interfaces/compat/tf2_msgs"; fi; \
	echo "Building interface packages: $$paths"; \
	colcon --log-base build/colcon-log build --base-paths $$paths --build-base build/interfaces \
	  --install-base $(INSTALL) --merge-install --event-handlers console_direct- \
	  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE=$(CURDIR)/$(PY)
	@touch $@

demo: setup
	$(VENV)/bin/modular-robot run sim/scenarios/demo_tabletop.yaml --stack config/stacks/sim_tabletop.yaml \
	  --out reports/demo

eval: setup
	$(VENV)/bin/modular-robot eval sim/scenarios --out reports/eval --jobs 2

# The linter (ruff.toml) runs first. Tests run in a ROS domain of their own (unless one is set), so
# that another stack on this machine, a benchmark or a second test run, is not on their graph.
test: setup
	$(VENV)/bin/ruff check .
	ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-$$((200 + RANDOM % 30))} $(PY) -m pytest tests -q -p no:cacheprovider

bench: setup
	$(PY) benchmarks/sim_bench.py

clean:
	rm -rf build $(INSTALL) log .deps.stamp
