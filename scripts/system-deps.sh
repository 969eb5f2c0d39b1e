#!/usr/bin/env bash
# Debian packages the project needs beyond pip: OpenBLAS (PyTensor links to it; without it
# PyTensor warns and fits run about twice as slowly) and, with --ci, a PostgreSQL
# server for the registry tests; docker-compose validates the compose file (no engine needed);
# libcurl4-openssl-dev builds the C example client (clients/c) that the tests run.
# wrk is the HTTP load generator of benchmarks/http.py (make bench). chromium and
# chromium-driver run the web pages' browser tests (tests/test_ui_browser.py, headless).
# haproxy: the balancer config is checked by, and the topology test runs, Debian's binary.
# calculix-ccx (with --ci): CalculiX 2.20 runs the exported hyperelastic cards in the tests.
# Installs only what is missing, and only when it can (root + apt); otherwise says what to do.
set -euo pipefail

packages=(libopenblas-dev docker-compose libcurl4-openssl-dev wrk chromium chromium-driver haproxy)
if [[ "${1:-}" == "--ci" ]]; then
  packages+=(postgresql calculix-ccx)
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
else
  echo "note: missing Debian packages ${missing[*]} (install them with apt-get for full speed)" >&2
fi
