#!/usr/bin/env bash
# README's run command: installs what is needed, builds sluice and runs the
# main job on the embedded default config. Until the Postfix policy daemon
# exists, the main job is the built-in hosting simulation: thousands of
# ordinary mailboxes, one compromised mailbox and one hacked web script.
# Extra arguments go to sluice_simulate (--minutes N, --mailboxes N,
# --config FILE, --json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bazel build --config=opt //bindings:sluice_simulate >/dev/null 2>&1 ||
  bazel build --config=opt //bindings:sluice_simulate
exec "$(bazel info --config=opt bazel-bin 2>/dev/null)/bindings/sluice_simulate" "$@"
