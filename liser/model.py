"""The LiSER student: a 2D CNN-LSTM on log-Mel spectrograms (Table 1, section 2.3).

Three Conv2D blocks of 64 filters (Conv -> BatchNorm -> ReLU -> MaxPool, "same" padding)
pool the (mel, time) plane by (2, 2), (4, 2), (4, 1). The remaining mel bins and
channels form one vector per time step for an LSTM of hidden size 64, whose final
hidden state feeds three heads: g_sup (1 layer, K_S), g_sd (32 -> K_S) and g_vd
(32 -> K_V). With K_S = 8, K_V = 7 and 64 mel bands this is 105,143 parameters: the
paper's 105K.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from liser.constants import FERV39K_CLASSES, N_MELS, RAVDESS_EMOTIONS

# (kernel, pool) per conv block, over (mel, time): Table 1.
CONV_BLOCKS = (((3, 3), (2, 2)), ((3, 3), (4, 2)), ((3, 1), (4, 1)))


class StudentOutput(NamedTuple):
    sup: torch.Tensor  # g_sup logits [B, K_S]: the emotion prediction
    sd: torch.Tensor  # g_sd logits [B, K_S]: matched to the speech teacher
    vd: torch.Tensor  # g_vd logits [B, K_V]: matched to the video teacher
    embedding: torch.Tensor  # LSTM final hidden state [B, hidden]


class Student(nn.Module):
    def __init__(
        self,
        n_classes: int = len(RAVDESS_EMOTIONS),
        n_video_classes: int = len(FERV39K_CLASSES),
        n_mels: int = N_MELS,
        channels: int = 64,
        hidden: int = 64,
        head_hidden: int = 32,
    ):
        super().__init__()
        self.config = dict(
            n_classes=n_classes, n_video_classes=n_video_classes, n_mels=n_mels, channels=channels, hidden=hidden, head_hidden=head_hidden
        )
        layers: list[nn.Module] = []
        in_ch, mels = 1, n_mels
        for kernel, pool in CONV_BLOCKS:
            layers += [
                nn.Conv2d(in_ch, channels, kernel, padding=(kernel[0] // 2, kernel[1] // 2)),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(pool),
            ]
            in_ch, mels = channels, mels // pool[0]
        if mels < 1:
            raise ValueError(f"n_mels={n_mels} is too few for the pooling of Table 1 (needs at least 32)")
        # channels-last (NHWC) runs the full-resolution first block ~2x faster on CPU
        # (oneDNN conv and max-pool) and suits cuDNN too; the weights' values are unchanged.
        self.conv = nn.Sequential(*layers).to(memory_format=torch.channels_last)
        self.lstm = nn.LSTM(channels * mels, hidden, batch_first=True)
        self.g_sup = nn.Linear(hidden, n_classes)
        self.g_sd = nn.Sequential(nn.Linear(hidden, head_hidden), nn.ReLU(), nn.Linear(head_hidden, n_classes))
        self.g_vd = nn.Sequential(nn.Linear(hidden, head_hidden), nn.ReLU(), nn.Linear(head_hidden, n_video_classes))

    def forward(self, x: torch.Tensor) -> StudentOutput:
        """``x``: log-Mel [B, n_mels, frames]."""
        h = self.conv(x.unsqueeze(1).contiguous(memory_format=torch.channels_last))  # [B, C, mels', T']
        b, c, m, t = h.shape
        h = h.permute(0, 3, 1, 2).reshape(b, t, c * m)  # one vector per time step
        _, (h_n, _) = self.lstm(h)
        emb = h_n[-1]
        return StudentOutput(self.g_sup(emb), self.g_sd(emb), self.g_vd(emb), emb)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def describe(model: Student, frames: int) -> str:
    """A table of the student's blocks, output shapes and parameter counts."""
    rows = [("block", "layer", "output shape", "params")]
    x = torch.zeros(1, model.config["n_mels"], frames)
    h = x.unsqueeze(1)
    model.eval()
    with torch.no_grad():
        block = 1
        for layer in model.conv:
            h = layer(h)
            rows.append((str(block), type(layer).__name__, str(tuple(h.shape[1:])), f"{count_parameters(layer):,}"))
            if isinstance(layer, nn.MaxPool2d):
                block += 1
        seq = h.permute(0, 3, 1, 2).flatten(2)
        rows.append(("4", "LSTM", f"({seq.shape[1]}, {model.lstm.hidden_size})", f"{count_parameters(model.lstm):,}"))
        for name, head in (("5", "g_sup"), ("6", "g_sd"), ("7", "g_vd")):
            out = getattr(model, head)(torch.zeros(1, model.lstm.hidden_size))
            rows.append((name, head, str(tuple(out.shape[1:])), f"{count_parameters(getattr(model, head)):,}"))
    rows.append(("", "total", "", f"{count_parameters(model):,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
