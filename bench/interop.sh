#!/usr/bin/env bash
# The interop check: torchvision ResNet-18/34/50/101/152 exported by Debian's PyTorch 1.13, run by ResNetSharp's ONNX
# importer and by ONNX Runtime, both against torch's own outputs; the state dicts loaded as native models too.
#
#     bench/interop.sh            # exports into bench/.models/interop (once), builds, writes docs/interop.md
#
# Needs python3-torch and python3-torchvision (apt). The models (about 700 MB) stay in bench/.models, never in git.
set -euo pipefail
cd "$(dirname "$0")/.."
models=bench/.models/interop
python=${BENCH_PYTHON:-/usr/bin/python3}
if [ ! -f "$models/resnet152_opset13.onnx" ]; then
  mkdir -p "$models"
  "$python" tools/interop/export_torchvision.py "$models"
fi
dotnet build bench/ResNetSharp.Interop -c Release --artifacts-path bench/.artifacts -v q -nologo > /dev/null
table=$(mktemp)
status=0
dotnet bench/.artifacts/bin/ResNetSharp.Interop/release_linux-x64/ResNetSharp.Interop.dll "$models" > "$table" || status=$?
{
  echo "# Interop: torchvision ResNets from PyTorch, ONNX Runtime and ResNetSharp"
  echo
  echo "Written by \`bench/interop.sh\` at commit $(git rev-parse --short HEAD) on $(date -u +%Y-%m-%d) ($(nproc) cores)."
  echo "Models: \`tools/interop/export_torchvision.py\` (torch $("$python" -c 'import torch; print(torch.__version__)'),"
  echo "torchvision random weights, non-trivial BN statistics, dynamic N/H/W). ONNX Runtime 1.31.1 (default options)."
  echo "Criterion: largest absolute difference within 1e-4 of the output's scale (max |reference|)."
  echo
  cat "$table"
} > docs/interop.md.tmp
mv docs/interop.md.tmp docs/interop.md
cat "$table"
rm -f "$table"
exit $status
