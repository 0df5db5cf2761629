#!/usr/bin/env bash
# Builds the release agent and installs it with the shell client, smartcar-auth, into PREFIX/bin.
#
#   ./install.sh [--prefix DIR]      (or PREFIX=DIR ./install.sh; default ~/.local, so ~/.local/bin)
#
# The client runs the agent installed beside it, so the two always match. The Python client is installed
# separately (pip install ./clients/python), as it goes into a Python environment rather than a folder of PATH.
set -euo pipefail

usage() {
	sed -n '2,7s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

prefix=${PREFIX:-${HOME:?install.sh: HOME is not set; give --prefix DIR}/.local}
while (($# > 0)); do
	case $1 in
	--prefix)
		(($# > 1)) || {
			echo "install.sh: --prefix needs a folder" >&2
			exit 2
		}
		prefix=$2
		shift 2
		;;
	--prefix=*)
		prefix=${1#*=}
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "install.sh: unknown argument '$1' (see --help)" >&2
		exit 2
		;;
	esac
done
[[ -n $prefix ]] || {
	echo "install.sh: the prefix is empty" >&2
	exit 2
}
bin=$prefix/bin

cd "$(dirname "${BASH_SOURCE[0]}")"
swift build -c release --product smartcar-auth-agent
built=$(swift build -c release --show-bin-path)/smartcar-auth-agent

mkdir -p "$bin"
# Through a temporary name in the same folder, then renamed: an agent running from the old file keeps it.
for pair in "$built:smartcar-auth-agent" "clients/shell/smartcar-auth:smartcar-auth"; do
	source_file=${pair%%:*}
	target=$bin/${pair#*:}
	cp "$source_file" "$target.installing.$$"
	chmod 755 "$target.installing.$$"
	mv -f "$target.installing.$$" "$target"
done

echo "installed smartcar-auth-agent $("$bin/smartcar-auth-agent" --version | sed 's/.* //') and smartcar-auth in $bin"
case ":$PATH:" in
*":$bin:"*) ;;
*) echo "install.sh: $bin is not on PATH; add it, e.g. in ~/.profile: export PATH=\"$bin:\$PATH\"" >&2 ;;
esac
echo "The Python client: pip install $(pwd)/clients/python"
