#!/usr/bin/env bash
# The Keystone test tier's own environment, apart from .venv/ (Keystone pins its own oslo.*,
# SQLAlchemy and Flask): Debian's uwsgi with its python3 plugin, and .venv-keystone/ built from
# the pinned scripts/keystone-requirements.txt for the Python that plugin embeds.
#
#   scripts/setup_keystone.sh          # idempotent; about a minute cold, ~0.1 s when ready
#   scripts/setup_keystone.sh --lock   # re-pin scripts/keystone-requirements.txt (then commit it)
#
# Why Debian's uwsgi: uwsgi from PyPI compiles for ~1.5 minutes on this 2-core machine on every
# fresh environment (uv does not reuse that build); the Debian plugin is built for Debian's
# python3.11, so .venv-keystone uses /usr/bin/python3.11 (same ABI as the plugin) while .venv/
# stays on the pyenv Python. tests/keystone/conftest.py calls this script itself.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-keystone
REQUIREMENTS=scripts/keystone-requirements.txt
PYTHON=/usr/bin/python3.11
DEBIAN_PACKAGES=(uwsgi-core uwsgi-plugin-python3 python3.11)

if [ "${1:-}" = "--lock" ]; then
  printf 'keystone\n' | uv pip compile --quiet --python "$PYTHON" --python-version 3.11 \
    --custom-compile-command "scripts/setup_keystone.sh --lock" - -o "$REQUIREMENTS"
  echo "setup_keystone: wrote $REQUIREMENTS" >&2
  exit 0
fi

stamp() {
  { sha256sum "$REQUIREMENTS"; "$PYTHON" -V 2>&1; } | sha256sum | cut -d' ' -f1
}
ready() {
  [ -x /usr/bin/uwsgi ] && [ -f /usr/lib/uwsgi/plugins/python3_plugin.so ] \
    && [ -f /usr/lib/uwsgi/plugins/http_plugin.so ] && [ -x "$PYTHON" ] \
    && [ -f "$VENV/.cfbackup-stamp" ] && [ "$(cat "$VENV/.cfbackup-stamp")" = "$(stamp)" ]
}
ready 2>/dev/null && exit 0

# One set-up at a time (pytest sessions may start together): lock this script itself.
exec 9<"$0"
flock 9
ready 2>/dev/null && exit 0

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup_keystone: installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
if ! command -v uv >/dev/null 2>&1; then
  echo "setup_keystone: installing uv" >&2
  python3 -m pip install --quiet --disable-pip-version-check uv
fi

echo "setup_keystone: building $VENV from $REQUIREMENTS" >&2
rm -rf "$VENV"
uv venv --quiet --python "$PYTHON" "$VENV"
# byte-compiled now, or Keystone's first import in every test session compiles ~2000 modules
uv pip install --quiet --compile-bytecode --python "$VENV/bin/python" -r "$REQUIREMENTS"
stamp >"$VENV/.cfbackup-stamp"
echo "setup_keystone: ready ($VENV, $(uwsgi --version 2>/dev/null | head -1) from Debian)" >&2
