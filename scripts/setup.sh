#!/usr/bin/env bash
# Set up everything cfbackup needs on a fresh Debian machine: system packages (only the missing
# ones), uv, and the locked Python environment in .venv/ (duplicity with a working swift backend).
#
#   scripts/setup.sh           what cfbackup itself runs: for a server that backs up or restores
#   scripts/setup.sh --dev     also the servers and tools the tests, the demo and bench/ start
#                              (scripts/test.sh and scripts/demo.sh pass it): never on a
#                              production server, where Debian would start bind9 and sshd
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  gnupg            # encryption (gpg 2.2)
  nftables iptables iproute2   # firewall lock-down
  python3-venv     # uv's own environment when Debian's python3 refuses pip (below)
)
if [ "${1:-}" = "--dev" ]; then
  DEBIAN_PACKAGES+=(
    memcached        # tempauth of the local Swift keeps tokens there
    bind9 bind9-utils bind9-dnsutils   # a real DNS server for the IP fix-up tests
    openssh-server openssh-client      # remote firewall operations over SSH (tests)
    restic           # the peer in bench/
    msmtp            # a real sendmail-compatible client for the notify sendmail tests
    rsync
    strace           # tests: every program a run starts, with its argv and environment
  )
elif [ -n "${1:-}" ]; then
  echo "setup: unknown option $1 (only --dev)" >&2
  exit 2
fi
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

UV=uv
if ! command -v uv >/dev/null 2>&1; then
  echo "setup: installing uv" >&2
  if ! python3 -m pip install --quiet --disable-pip-version-check uv 2>/dev/null; then
    # Debian's own python3 is "externally managed" (and may have no pip): uv in a venv here
    python3 -m venv .uv
    .uv/bin/pip install --quiet --disable-pip-version-check uv
    UV=.uv/bin/uv
  fi
fi
"$UV" sync --frozen --quiet
echo "setup: ready (.venv/bin/cfbackup, .venv/bin/dt-cf-backup)" >&2
