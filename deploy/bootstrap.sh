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
  libcurl4-openssl-dev libhiredis-dev redis-server redis-tools
  python3 python3-aiosmtpd python3-sklearn python3-numpy python3-scipy python3-pandas
  make snakemake procps curl openssl ca-certificates
  clang-14 libclang-rt-14-dev clang-format
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "bootstrap: all packages present"
fi

# A real S3-compatible server that checks SigV4 signatures, for the snapshot remote tests.
S3RVER_DIR=${DROVER_S3RVER_DIR:-/opt/drover/s3rver}
if [[ ! -f $S3RVER_DIR/node_modules/@20minutes/s3rver/lib/cli.js ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "bootstrap: installing nodejs npm"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
  fi
  echo "bootstrap: installing @20minutes/s3rver into $S3RVER_DIR"
  $SUDO mkdir -p "$S3RVER_DIR"
  # Only the S3 remote tests need it; they say so and skip when it is missing, so a machine
  # that cannot reach the npm registry still builds, runs the demo and the other tests.
  if ! $SUDO npm install --no-audit --no-fund --loglevel=error --prefix "$S3RVER_DIR" \
      @20minutes/s3rver@5.0.0; then
    echo "bootstrap: WARNING: could not install @20minutes/s3rver from the npm registry;" \
         "the S3 remote tests will be skipped" >&2
  fi
fi

