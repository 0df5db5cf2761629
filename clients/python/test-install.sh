#!/usr/bin/env bash
# pip-installs clients/python into a fresh venv and imports it (for CI; needs python3 with venv and pip).
# The build backend (setuptools) comes from PyPI in pip's isolated build; without network, the venv's own
# setuptools is used instead (--no-build-isolation).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$(mktemp -d "${TMPDIR:-/tmp}/smartcar-auth-venv.XXXXXX")
trap 'rm -rf "$venv"' EXIT

# Build from a copy: setuptools leaves build/ and *.egg-info beside the sources it builds.
mkdir "$venv/source"
cp -R "$here/pyproject.toml" "$here/README.md" "$here/src" "$venv/source/"
python3 -m venv "$venv/env"
pip=$venv/env/bin/pip
if ! "$pip" install -q "$venv/source"; then
	echo "test-install.sh: isolated build failed; trying the venv's setuptools" >&2
	"$pip" install -q --no-build-isolation "$venv/source"
fi
cd "$venv" # away from the source tree, so that the installed copy is imported
"$venv/env/bin/python" - <<'PY'
import pathlib
import smartcar_auth_agent as s
from smartcar_auth_agent import AsyncAuthAgent, AuthAgent, Token

root = pathlib.Path(s.__file__).parent
assert "site-packages" in str(root), root
assert (root / "py.typed").is_file(), "py.typed is not installed"
print(f"installed smartcar_auth_agent {s.__version__} at {root}")
PY
echo "1 passed, 0 failed"
