#!/usr/bin/env bash
# Set up everything cfbackup needs on a fresh Debian machine: system packages (only the missing
# ones), uv, and the locked Python environment in .venv/ (duplicity with a working swift backend).
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  gnupg            # encryption (gpg 2.2)
  memcached        # tempauth of the local Swift keeps tokens there
  nftables iptables iproute2   # firewall lock-down and its network-namespace tests
  bind9 bind9-utils bind9-dnsutils   # a real DNS server for the IP fix-up tests
  openssh-server openssh-client      # remote firewall operations over SSH (tests)
  restic           # the peer in bench/
  msmtp            # a real sendmail-compatible client for the notify sendmail tests
  rsync
)
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v uv >/dev/null 2>&1; then
  echo "setup: installing uv" >&2
  python3 -m pip install --quiet --disable-pip-version-check uv
fi
uv sync --frozen --quiet
echo "setup: ready (.venv/bin/cfbackup, .venv/bin/dt-cf-backup)" >&2
