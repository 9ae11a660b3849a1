#!/usr/bin/env bash
# Installs every build, test and demo dependency of Drover from Debian 12 packages.
# Idempotent: packages already present are skipped by apt. Run as root.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost-system-dev libboost-filesystem-dev libboost-program-options-dev
  libboost-dev
  libyaml-cpp-dev libsqlite3-dev sqlite3 libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev googletest
  nlohmann-json3-dev libcli11-dev libssl-dev libhowardhinnant-date-dev tzdata
  libcurl4-openssl-dev
  python3 python3-sklearn python3-numpy python3-scipy python3-pandas
  make snakemake procps curl
  clang-14 libclang-rt-14-dev
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "bootstrap: all packages present"
fi
