#!/usr/bin/env bash
# Every test of the project: the Swift package's suites (which drive the real agent binary), then the clients'.
set -euo pipefail
cd "$(dirname "$0")/.."
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

swift build
swift test
