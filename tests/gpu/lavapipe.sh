#!/usr/bin/env bash
# Every method's training step on the wgpu backend against the CPU, on Mesa's software Vulkan
# driver (lavapipe): the Ladder and its baselines (MLP and conv), adversarial noise, VAT, LVAN,
# Π and Mean Teacher, plain models A/B/C with FGSM, PGD and TRADES training, the semantic noise
# models; costs and every parameter's gradient within the tolerances of src/agreement.rs, and
# the attacks' norms and clipping on the GPU. Installs mesa-vulkan-drivers (root) when missing;
# the Vulkan loader is pointed at lavapipe alone, so a machine's real GPU driver is never used.
#   tests/gpu/lavapipe.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { echo "tests/gpu/lavapipe.sh: $*" >&2; }
icd() { ls /usr/share/vulkan/icd.d/lvp_icd.*.json 2>/dev/null | head -1; }
if [[ -z $(icd) ]]; then
  say "installing mesa-vulkan-drivers"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q mesa-vulkan-drivers >/dev/null
fi
[[ -n $(icd) ]] || { say "FAILED: no lavapipe ICD after installing mesa-vulkan-drivers"; exit 1; }
export VK_ICD_FILENAMES=$(icd)
start=$(date +%s)
cargo test --profile gpu-check --features wgpu --lib --no-run >/dev/null 2>&1 ||
  cargo test --profile gpu-check --features wgpu --lib --no-run
built=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --profile gpu-check --features wgpu --lib agreement -- --nocapture --test-threads 1 \
  >"$log" 2>&1 || status=$?
grep -E "^agreement|^test |^test result" "$log" || true
[[ $status == 0 ]] || tail -n 60 "$log"
say "build $((built - start)) s, tests $(($(date +%s) - built)) s, status $status"
exit "$status"
