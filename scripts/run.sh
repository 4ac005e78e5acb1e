#!/usr/bin/env bash
# README's run command: installs what is needed (scripts/setup.sh), builds
# sluice and runs the main job on the embedded default config: a private
# Postfix on 127.0.0.1 with sluice-policyd as its policy service plays
# ordinary senders, a compromised mailbox and a hacked web script
# (scripts/demo.sh), then stops everything it started.
#   --simulate [ARGS]   run the in-process hosting simulation instead
#                       (sluice_simulate: --minutes N, --mailboxes N, --config FILE, --json)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [[ "${1:-}" == --simulate ]]; then
  shift
  bazel build --config=opt //bindings/cli:sluice_simulate >/dev/null 2>&1 ||
    bazel build --config=opt //bindings/cli:sluice_simulate
  exec "$(bazel info --config=opt bazel-bin 2>/dev/null)/bindings/cli/sluice_simulate" "$@"
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "run.sh: the demo starts a private Postfix, which needs root (or: run.sh --simulate)" >&2
  exit 1
fi
bazel build --config=opt //bindings/milter:sluice-milter //bindings/cli:sluice >/dev/null 2>&1 ||
  bazel build --config=opt //bindings/milter:sluice-milter //bindings/cli:sluice
exec bash scripts/demo.sh "$(bazel info --config=opt bazel-bin 2>/dev/null)" "$@"
