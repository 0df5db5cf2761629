#!/usr/bin/env bash
# Every test of the project: the Swift suites (which also drive the real agent binary over pipes), the
# reliability suites in their short mode (fuzz, crash, upstream faults, secrets, rotation race; about a
# minute), then the clients' suites against the binaries that build made.
set -euo pipefail
cd "$(dirname "$0")/.."
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

swift build
swift test
swift run --skip-build agent-reliability
bash clients/shell/test.sh
# pytest's temporary folders (and its cache) go to a folder removed at the end, not /tmp/pytest-of-$USER.
pytest_temp=$(mktemp -d "${TMPDIR:-/tmp}/smartcar-auth-pytest.XXXXXX")
trap 'rm -rf "$pytest_temp"' EXIT
python3 -m pytest -q -p no:cacheprovider --basetemp "$pytest_temp/base" clients/python/tests
bash clients/python/test-install.sh
