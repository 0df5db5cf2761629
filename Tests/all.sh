#!/usr/bin/env bash
# Every test of the project: the Swift suites (which also drive the real agent binary over pipes), the
# reliability suites in their short mode (fuzz, crash, upstream faults, secrets, rotation race, the rotation race
# across two simulated hosts on PostgreSQL, the model-based concurrency search on SQLite and PostgreSQL; about two
# minutes), then the clients' suites against the binaries that build made, then the README's install command into a
# temporary prefix and its shell and Python examples run from PATH (Tests/install-check.sh; a release build).
set -euo pipefail
cd "$(dirname "$0")/.."
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
# Every temporary folder of the run (the tests' own, SwiftPM's TemporaryDirectory.*, pytest's) lives in one
# folder that goes away at the end: the run leaves nothing in /tmp, even when a step fails.
run_temp=$(mktemp -d "${TMPDIR:-/tmp}/smartcar-auth-tests.XXXXXX")
trap 'rm -rf "$run_temp"' EXIT
export TMPDIR=$run_temp
# The tests keep the stores they leave (SQLite files with WAL and SHM, a pg_dumpall of each PostgreSQL cluster; the
# shell and Python clients' suites too) and the token values they hand out here; the scan at the end must find none
# of those values in those stores.
export SMARTCAR_AUTH_TEST_EVIDENCE=$run_temp/evidence
mkdir -m 700 "$SMARTCAR_AUTH_TEST_EVIDENCE"

swift build
swift test
swift run --skip-build agent-reliability
bash clients/shell/test.sh
python3 -m pytest -q clients/python/tests
bash Tests/install-check.sh
swift run --skip-build agent-reliability scan-stores "$SMARTCAR_AUTH_TEST_EVIDENCE"
