#!/usr/bin/env bash
# Runs every Parley test: installs the system packages the tests need (as root) or says exactly which
# to install, makes the trainer engine's Python environment (.venv-engine) and vLLM's (.venv-vllm), installs the npm dependencies
# and the pinned helm, then runs the TypeScript and Python suites.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(nats-server protobuf-compiler protobuf-compiler-grpc prometheus)

# The engine's interpreter, for the Python suite and the TypeScript tests that start the engine: PARLEY_PYTHON
# when set, else the project's .venv-engine (torch 2.x, transformers, peft from PyPI; made or updated here).
if [ -z "${PARLEY_PYTHON:-}" ]; then
  PARLEY_PYTHON=$(bash scripts/setup-engine-env.sh) || {
    echo "could not make .venv-engine (above); PARLEY_PYTHON=/usr/bin/python3 tests with Debian's python3-torch instead (the Hugging Face model tests then skip, or fail under CI=true)" >&2
    exit 2
  }
fi
export PARLEY_PYTHON
PYTHON=$PARLEY_PYTHON

# vLLM's CPU build for the tests against a real vLLM server (test/policy-vllm.test.ts): the project's .venv-vllm,
# made or updated here (the first time about 3.2 GB and 3.5 minutes). Without it those tests skip; under CI=true a
# failed setup fails the run. PARLEY_SKIP_VLLM=1 leaves it out (a quick local run on a machine without AVX2).
vllm_setup=ok
if [ "${PARLEY_SKIP_VLLM:-}" != 1 ]; then
  bash scripts/setup-vllm-env.sh >/dev/null || {
    vllm_setup=failed
    echo "could not make .venv-vllm (above): the real-vLLM tests skip (and the run fails under CI=true)" >&2
  }
fi

missing=()
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v protoc >/dev/null 2>&1 && [ -x /usr/bin/grpc_python_plugin ] || missing+=(protobuf-compiler protobuf-compiler-grpc)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing system packages: ${APT_PACKAGES[*]}"
    if [ "${PARLEY_SKIP_APT_UPDATE:-}" != 1 ]; then apt-get update -qq; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
  else
    echo "missing system packages; install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${APT_PACKAGES[*]}" >&2
    exit 2
  fi
fi

node -e 'const [a]=process.versions.node.split("."); if (+a < 20) { console.error("Node 20 or newer is required (found " + process.version + ")"); process.exit(2) }'
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund; fi

# helm for the chart tests (pinned; built with Go into .tools/bin). Without it they skip, or fail under CI=true.
bash scripts/install-helm.sh || echo "could not install helm: the chart tests that need it skip (and fail under CI=true)" >&2

mkdir -p .tmp
status=0
npm run --silent check:generated || status=1
npm run --silent typecheck || status=1
npm run --silent lint || status=1
npx vitest run --reporter=default --reporter=json --outputFile=.tmp/vitest.json || status=1
if [ -d services/learner/engine/tests ]; then
  (cd services/learner/engine && "$PYTHON" -m unittest discover -s tests 2>&1 | tee ../../../.tmp/unittest.log) || status=1
fi
node scripts/test-summary.mjs .tmp/vitest.json .tmp/unittest.log || status=1
if [ "$vllm_setup" = failed ] && [ "${CI:-}" = true ]; then
  echo "CI: .venv-vllm could not be made, so the real-vLLM tests did not run" >&2
  status=1
fi
exit $status
