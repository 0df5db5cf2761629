#!/usr/bin/env bash
# The README's install command into a temporary prefix, the Python client into a fresh virtual environment, then
# the README's shell and Python examples exactly as printed (cut out of README.md between their
# <!-- example:… --> markers), with PATH holding only the prefix's bin, the venv's bin and the system folders.
# Needs python3 with venv and pip; leaves nothing behind.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/smartcar-auth-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
python=$(command -v python3)

# example NAME: the README's fenced block that follows <!-- example:NAME -->, without its fences.
example() {
	awk -v marker="<!-- example:$1 -->" '
		$0 == marker { found = 1; next }
		found && /^```/ { if (inside) exit; inside = 1; next }
		inside { print }
	' "$repo/README.md"
}
for name in install shell python; do
	if [[ -z $(example "$name") ]]; then
		echo "install-check.sh: README.md has no example:$name block" >&2
		exit 1
	fi
done

# 1. The install command, as printed, with PREFIX pointing at the temporary prefix.
prefix=$work/prefix
(cd "$repo" && PREFIX=$prefix bash -euo pipefail -c "$(example install)") >"$work/install.out"
cat "$work/install.out"
for file in smartcar-auth-agent smartcar-auth; do
	[[ -x $prefix/bin/$file ]] || {
		echo "install-check.sh: $prefix/bin/$file was not installed" >&2
		exit 1
	}
done

# 2. The Python client into a fresh venv, built from a copy (setuptools writes build/ beside its sources). Its
# build backend comes from PyPI in pip's isolated build; without network, the venv's own setuptools is used.
mkdir "$work/source"
cp -R "$repo/clients/python/pyproject.toml" "$repo/clients/python/README.md" "$repo/clients/python/src" "$work/source/"
"$python" -m venv "$work/venv"
if ! "$work/venv/bin/pip" install -q "$work/source"; then
	echo "install-check.sh: isolated build failed; trying the venv's setuptools" >&2
	"$work/venv/bin/pip" install -q --no-build-isolation "$work/source"
fi

# 3. The examples, from a folder outside the repository, as a new user: a home of their own, no Smartcar
# variables, PATH without the build folders.
mkdir "$work/home" "$work/cwd"
example shell >"$work/cwd/example.sh"
example python >"$work/cwd/example.py"
cd "$work/cwd"
env -i HOME="$work/home" PATH="$prefix/bin:$work/venv/bin:/usr/local/bin:/usr/bin:/bin" LANG=C.UTF-8 \
	no_proxy="127.0.0.1,localhost" bash -euo pipefail -c '
		source ./example.sh >shell.out
		python example.py >python.out
		python - <<PY
import smartcar_auth_agent as s, pathlib
root = pathlib.Path(s.__file__).parent
assert "site-packages" in str(root), root
assert (root / "py.typed").is_file(), "py.typed is not installed"
PY
	'
shell_token=$(tail -n 1 shell.out)
python_token=$(cat python.out)
if [[ -z $shell_token || $python_token != "$shell_token" ]]; then
	echo "install-check.sh: the examples disagree: shell printed '$shell_token', Python '$python_token'" >&2
	exit 1
fi
echo "install-check.sh: installed into $prefix/bin; the README's shell and Python examples ran from PATH"
echo "1 passed, 0 failed"
