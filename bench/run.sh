#!/usr/bin/env bash
# The benchmark in one command: ResNetSharp against ONNX Runtime (inference) and PyTorch 1.13 (training steps).
#
#     bench/run.sh                        # every row, default rounds; writes docs/performance.md
#     bench/run.sh --only r50-b1,rss      # some rows (r50-b1 r50-b16 r18-b1 r20-train r18-train rss)
#     bench/run.sh --rounds 5 --iters 20  # more samples; every other harness option passes through (--help lists them)
#     BENCH_REV=HEAD bench/run.sh         # measure a clean checkout of a commit instead of the working tree
#     bench/run.sh --layers r18-b1        # where the time goes: ours per plan step beside ONNX Runtime per node (no report)
#     bench/run.sh --ab NchwConv.UseWinograd=true,false --ab-work r20-train   # one engine switch against itself (no report)
#
# Steps: install Debian's PyTorch if missing (python3-torch, python3-torchvision; apt, needs root or sudo), export the
# models (bench/.models, only when absent or older than the export script), build the harness and the engine in Release
# into their own artifacts folder (apart from src/*/bin and obj, so a build of src/ going on elsewhere does not clash),
# run it. It writes docs/performance.md (unless --markdown is given) and bench/results/latest.json; the table also goes
# to stdout, progress to stderr. The report records the commit, and whether src/ differed from it.
#
# The python `onnx` package is not needed: torch.onnx.export in PyTorch 1.13 serialises the model itself.
# Environment: BENCH_REV (a commit to build cleanly, via git archive into bench/.checkout/), BENCH_MODELS (default
# bench/.models), BENCH_PYTHON (default /usr/bin/python3: the python3 first on PATH may lack torch).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
models=${BENCH_MODELS:-bench/.models}
python=${BENCH_PYTHON:-/usr/bin/python3}
say() { echo "bench/run.sh: $*" >&2; }

# 1. Debian's PyTorch (the peer for training, and the exporter of the models).
missing=()
for pkg in python3-torch python3-torchvision; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  say "installing ${missing[*]} with apt-get"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
"$python" -c "import torch, torchvision" 2>/dev/null \
  || { say "$python cannot import torch and torchvision (set BENCH_PYTHON to Debian's /usr/bin/python3)"; exit 1; }
command -v dotnet > /dev/null || { say "the .NET 10 SDK is missing (dotnet is not on PATH)"; exit 1; }

# 2. The models both engines load: <arch>.onnx for ONNX Runtime, <arch>.safetensors for ours, from one seeded model.
export_needed=0
for arch in resnet18 resnet50; do
  for ext in onnx safetensors; do
    f="$models/$arch.$ext"
    if [ ! -s "$f" ] || [ bench/peers/export_models.py -nt "$f" ]; then export_needed=1; fi
  done
done
if [ "$export_needed" -eq 1 ]; then
  say "exporting resnet18 and resnet50 to $models"
  "$python" bench/peers/export_models.py "$models" >&2
fi

# 3. What to build: the working tree, or a clean checkout of BENCH_REV.
src="$root"
source_args=()
rev_prefix=""
if [ -n "${BENCH_REV:-}" ]; then
  sha=$(git rev-parse --verify "${BENCH_REV}^{commit}")
  src="$root/bench/.checkout/$sha"
  if [ ! -f "$src/.complete" ]; then
    rm -rf "$src"
    mkdir -p "$src"
    git archive "$sha" | tar -x -C "$src"
    touch "$src/.complete"
  fi
  [ -f "$src/bench/ResNetSharp.Bench/ResNetSharp.Bench.csproj" ] || { say "commit $sha has no bench/ResNetSharp.Bench"; exit 1; }
  source_args=(--source-commit "$sha" --torch-script "$src/bench/peers/torch_train.py")
  rev_prefix="BENCH_REV=$sha "
  say "measuring a clean checkout of $sha ($src)"
elif [ -n "$(git status --porcelain --untracked-files=no -- src bench 2>/dev/null)" ]; then
  say "note: src/ or bench/ differ from the commit; the report says so (BENCH_REV=HEAD measures the commit itself)"
fi

# 4. Build (Release).
say "building bench/ResNetSharp.Bench and the engine (Release)"
build_log=$(mktemp)
if ! dotnet build "$src/bench/ResNetSharp.Bench/ResNetSharp.Bench.csproj" -c Release --artifacts-path "$src/bench/.artifacts" > "$build_log" 2>&1; then
  cat "$build_log" >&2
  say "build failed"
  rm -f "$build_log"
  exit 1
fi
rm -f "$build_log"

# 5. Run. Defaults first, so that options given to this script override them. --wait-quiet 120: the machine is shared,
# so first wait (up to 2 minutes, and up to 30 s before each row) until other processes leave the CPUs alone.
markdown=(--markdown docs/performance.md)
command="${rev_prefix}bench/run.sh"
for a in "$@"; do
  if [ "$a" = "--markdown" ]; then markdown=(); fi
  case "$a" in
    *[[:space:]]*|'') command+=" '$a'" ;;
    *) command+=" $a" ;;
  esac
done
mkdir -p bench/results
exec "$src/bench/.artifacts/bin/ResNetSharp.Bench/release_linux-x64/ResNetSharp.Bench" \
  --models "$models" --python "$python" --wait-quiet 120 --json-file bench/results/latest.json "${markdown[@]}" "${source_args[@]}" \
  --command "$command" "$@"
