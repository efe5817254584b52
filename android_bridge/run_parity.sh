#!/usr/bin/env bash
# Parity of the Android bridge with the Python runtime, over a bundle's golden vectors.
#
#   android_bridge/run_parity.sh java|node|all BUNDLE_DIR [GOLDEN_JSON] [MODEL_FILE]
#
# java: compile the library with javac (no Maven; src/ort is left out: it needs the onnxruntime
#       jar) and run the JUnit 4 golden-vector tests, then print Java timings.
# node: run the model with onnxruntime-node and tokenize with tokenizers.js (logits within 1e-5).
# GOLDEN_JSON defaults to BUNDLE_DIR/golden_vectors.json; MODEL_FILE (node only) runs another
# file than the manifest's model, e.g. the .ort conversion.
# Needs: JDK 17 (javac, java), JUnit 4 + hamcrest (Debian junit4: JUNIT_JARS overrides the path),
# Node 20 + npm (node/node_modules is installed on first use with `npm ci`).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode="${1:?usage: run_parity.sh java|node|all BUNDLE_DIR [GOLDEN_JSON] [MODEL_FILE]}"
bundle="$(cd "${2:?bundle folder required}" && pwd)"
golden="$(realpath "${3:-$bundle/golden_vectors.json}")"
model="${4:-}"
junit="${JUNIT_JARS:-/usr/share/java/junit4.jar:/usr/share/java/hamcrest-core.jar}"
[[ -f "$golden" ]] || { echo "no golden vectors at $golden" >&2; exit 2; }

run_java() {
  local build
  build="$(mktemp -d)"
  trap 'rm -rf "$build"' RETURN
  javac -Xlint:all -Werror -d "$build" -cp "$junit" \
    $(find "$here/src/main/java" "$here/src/test/java" -name '*.java')
  java -cp "$build:$junit" -Dedgelingua.bundle="$bundle" -Dedgelingua.golden="$golden" \
    org.junit.runner.JUnitCore org.edgelingua.bridge.GoldenParityTest
  java -cp "$build:$junit" org.edgelingua.bridge.JavaTimings "$bundle" "$golden"
}

run_node() {
  if [[ ! -d "$here/node/node_modules/onnxruntime-node" ]]; then
    (cd "$here/node" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund)
  fi
  local args=(--bundle "$bundle" --golden "$golden" --tolerance 1e-5)
  [[ -n "$model" ]] && args+=(--model "$(realpath "$model")")
  (cd "$here/node" && node parity.mjs "${args[@]}")
}

case "$mode" in
  java) run_java ;;
  node) run_node ;;
  all) run_java; run_node ;;
  *) echo "unknown mode $mode (java, node or all)" >&2; exit 2 ;;
esac
