#!/usr/bin/env bash
# Similar images on real photographs: the photographs Debian's python3-skimage ships under skimage/data, embedded with
# a model (the pretrained ResNet-18 ONNX featurizer once the ONNX loader is merged; any ImageNet-shaped model works),
# then `resnet similar` for a few of them, and `resnet predict` when the model has a classifier.
#
#     tools/demo/similar_photos.sh [MODEL [OUT_DIR [PREPROCESS]]]     # OUT_DIR default: runs/similar-photos
#
# Without MODEL: the ImageNet-pretrained ResNet-18 featurizer of Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1 from
# the NuGet cache (restored by building tests/ResNetSharp.Onnx.Tests) with its ResNetPreprocess.onnx as PREPROCESS.
#
# Installs python3-skimage with apt-get when it is missing (root or sudo). Uses the `resnet` built from this checkout.
set -euo pipefail
cd "$(dirname "$0")/../.."
featurizer=${NUGET_PACKAGES:-$HOME/.nuget/packages}/microsoft.ml.dnnimagefeaturizer.resnet18/0.23.1/tools/DnnImageModels
model=${1:-$featurizer/ResNet18Onnx/ResNet18.onnx}
out=${2:-runs/similar-photos}
preprocess=${3:-}
if [ -z "${1:-}" ]; then
  preprocess=$featurizer/ResNetPrepOnnx/ResNetPreprocess.onnx
  [ -f "$model" ] || { echo "no model given and $model is missing: build tests/ResNetSharp.Onnx.Tests to restore it" >&2; exit 1; }
fi
pre_args=(); [ -n "$preprocess" ] && pre_args=(--preprocess "$preprocess")

if ! dpkg-query -W -f='${Status}' python3-skimage 2>/dev/null | grep -q "install ok installed"; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing python3-skimage with apt-get" >&2
  $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends python3-skimage
fi
data=$(/usr/bin/python3 -c 'import os, skimage; print(os.path.join(os.path.dirname(skimage.__file__), "data"))')

# The colour photographs (the grayscale test patterns and the tiny .npy/.txt files are left out).
mkdir -p "$out/photos"
for f in astronaut.png chelsea.png coffee.png rocket.jpg motorcycle_left.png motorcycle_right.png hubble_deep_field.jpg \
         ihc.png immunohistochemistry.png retina.jpg color.png logo.png; do
  [ -f "$data/$f" ] && cp "$data/$f" "$out/photos/" || true
done
ls "$out/photos"

dotnet build src/ResNetSharp.Cli -c Release -v quiet -nologo > /dev/null
resnet() { dotnet src/ResNetSharp.Cli/bin/Release/net10.0/resnet.dll "$@"; }

resnet embed --model "$model" "${pre_args[@]}" --images "$out/photos" --out "$out/photos.index" --skip-errors
for q in chelsea.png coffee.png motorcycle_left.png; do
  [ -f "$out/photos/$q" ] && resnet similar --index "$out/photos.index" "$out/photos/$q" -k 3
done
resnet predict --model "$model" "${pre_args[@]}" -k 3 "$out"/photos/*.{png,jpg} 2>/dev/null || echo "(predict skipped: the model has no classifier)"
