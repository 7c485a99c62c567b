#!/usr/bin/env bash
# Installs the LLVM bundle that `cargo build --features cuda` needs, from PyPI instead of
# GitHub. cubecl-cuda 0.11 links LLVM (with its NVPTX target) through tracel-llvm-bundler,
# whose build script downloads a prebuilt LLVM 23.1 from GitHub releases unless one is
# already installed. On machines that reach PyPI but not GitHub, this script installs the
# static LLVM 23.1 SDK published on PyPI (mlc-llvm-static plus its extra-targets wheel,
# which holds NVPTX) where the bundler looks, and marks it installed.
#
#   tools/llvm-bundle-from-pypi.sh        # then: cargo build --release --features cuda
set -euo pipefail
version=23.1.1.post0
dest="${XDG_DATA_HOME:-$HOME/.local/share}/tracel/tracel-llvm-23.1.0-4"
if [ -e "$dest/.tracel-llvm-installed" ]; then
  echo "already installed: $dest"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" \
  --platform manylinux_2_28_x86_64 \
  "mlc-llvm-static==$version" "mlc-llvm-static-extra-targets==$version"
for wheel in "$tmp"/*.whl; do
  python3 -m zipfile -e "$wheel" "$tmp/unpacked"
done
sdk="$tmp/unpacked/mlc_llvm_static/static"
chmod +x "$sdk/bin/llvm-config"
"$sdk/bin/llvm-config" --targets-built | grep -qw NVPTX || {
  echo "the SDK lacks the NVPTX target" >&2
  exit 1
}
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
cp -r "$sdk" "$dest"
touch "$dest/.tracel-llvm-installed"
echo "installed LLVM $("$dest/bin/llvm-config" --version) with NVPTX at $dest"
