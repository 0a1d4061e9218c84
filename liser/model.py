"""Students: the LiSER CNN-LSTM (Table 1, section 2.3) and the NSL paper's CNN-6.

Three Conv2D blocks of 64 filters (Conv -> BatchNorm -> ReLU -> MaxPool, "same" padding)
pool the (mel, time) plane by (2, 2), (4, 2), (4, 1). The remaining mel bins and
channels form one vector per time step for an LSTM of hidden size 64, whose final
hidden state feeds three heads: g_sup (1 layer, K_S), g_sd (32 -> K_S) and g_vd
(32 -> K_V). With K_S = 8, K_V = 7 and 64 mel bands this is 105,143 parameters: the
paper's 105K.

:class:`CNN6` is the PANNs CNN-6 the NSL paper (section 2.1) trains as its lightweight
downstream model; :class:`HubertStudent` a HuBERT-architecture transformer (EmoDistill's student). Every student keeps a ``config`` dict with its ``arch``;
:func:`build_student` rebuilds any of them from it (checkpoints store that dict).
"""

from __future__ import annotations

from typing import Any, NamedTuple

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


class ClassifierOutput(NamedTuple):
    sup: torch.Tensor  # emotion logits [B, K]
    embedding: torch.Tensor  # intermediate embedding [B, D]: what NSL's neighbour loss compares


ARCH_ALIASES = {"liser": "cnn-lstm"}  # the CNN-LSTM's name in checkpoints written before it had its own


def _check_arch(arch: str, expected: str) -> None:
    if ARCH_ALIASES.get(arch, arch) != expected:
        raise ValueError(f"arch={arch!r} given to the {expected!r} student; rebuild checkpoints with build_student(config)")


class Student(nn.Module):
    def __init__(
        self,
        n_classes: int = len(RAVDESS_EMOTIONS),
        n_video_classes: int = len(FERV39K_CLASSES),
        n_mels: int = N_MELS,
        channels: int = 64,
        hidden: int = 64,
        head_hidden: int = 32,
        *,
        arch: str = "cnn-lstm",  # accepted so Student(**model.config) keeps working
    ):
        super().__init__()
        _check_arch(arch, "cnn-lstm")
        self.config = dict(
            arch="cnn-lstm", n_classes=n_classes, n_video_classes=n_video_classes, n_mels=n_mels,
            channels=channels, hidden=hidden, head_hidden=head_hidden,
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


class CNN6(nn.Module):
    """PANNs CNN-6, the NSL paper's lightweight downstream model (section 2.1).

    Four blocks of Conv 5x5 (no bias) -> BatchNorm -> ReLU -> AvgPool 2x2, then the mean
    over mel bins, max + mean over time, FC1 + ReLU (the embedding) and the output layer.
    Parameters: 25 * (1*c1 + c1*c2 + c2*c3 + c3*c4) conv weights, 2 * sum(c) BatchNorm,
    (c4 + 1) * D FC1 and (D + 1) * K output. With the defaults (D = 512, K = 8) that is
    4,571,080. The paper's 4.44 M is its released Keras CNN-6 with D = 256 and K = 7:
    4,437,447 here (Keras adds 1,920 BatchNorm statistics to its count, 4,439,367). That
    code also max-pools between blocks and averages globally; we follow PANNs.
    """

    def __init__(
        self,
        n_classes: int = len(RAVDESS_EMOTIONS),
        n_mels: int = N_MELS,
        channels: tuple[int, ...] | list[int] = (64, 128, 256, 512),
        embedding: int = 512,
        *,
        arch: str = "cnn6",
    ):
        super().__init__()
        _check_arch(arch, "cnn6")
        channels = tuple(int(c) for c in channels)
        if n_mels < 2 ** len(channels):
            raise ValueError(f"n_mels={n_mels} is too few for {len(channels)} 2x2 poolings (needs at least {2 ** len(channels)})")
        # a list, not a tuple, so the config survives a JSON round trip unchanged
        self.config = dict(arch="cnn6", n_classes=n_classes, n_mels=n_mels, channels=list(channels), embedding=embedding)
        layers: list[nn.Module] = []
        in_ch = 1
        for out_ch in channels:
            layers += [
                nn.Conv2d(in_ch, out_ch, 5, padding=2, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(inplace=True),
                nn.AvgPool2d(2),
            ]
            in_ch = out_ch
        # channels-last: a training step 7-15 % faster on CPU than NCHW (1 thread, batch 8 x 64 x 300)
        self.conv = nn.Sequential(*layers).to(memory_format=torch.channels_last)
        self.fc1 = nn.Linear(in_ch, embedding)
        self.fc_out = nn.Linear(embedding, n_classes)
        self.min_frames = 2 ** len(channels)

    def forward(self, x: torch.Tensor) -> ClassifierOutput:
        """``x``: log-Mel [B, n_mels, frames], at least 16 frames for four blocks."""
        if x.shape[-1] < self.min_frames:
            raise ValueError(f"CNN6 needs at least {self.min_frames} frames, got {x.shape[-1]}")
        h = self.conv(x.unsqueeze(1).contiguous(memory_format=torch.channels_last))  # [B, C, mels', T']
        h = h.mean(dim=2)  # over mel bins
        h = h.amax(dim=2) + h.mean(dim=2)  # over time
        emb = torch.relu(self.fc1(h))
        return ClassifierOutput(self.fc_out(emb), emb)


class HubertStudent(nn.Module):
    """A HuBERT-architecture student (EmoDistill's student family, section 3) on log-Mel frames.

    HuBERT is a waveform conv encoder, a feature projection and a transformer encoder with a
    convolutional position embedding. Every liser student reads the cached log-Mel features,
    so here a LayerNorm + linear projection of each mel frame (32 ms hop) stands in for the
    waveform conv encoder (20 ms hop), and the transformer is transformers' own
    ``HubertEncoder`` built from a ``HubertConfig``; the embedding is its output averaged
    over time. It is small by default (2 layers of 128, ~0.5 M parameters) so it trains on a
    CPU; EmoDistill's HuBERT-base student is ``hidden=768, layers=12, heads=12,
    intermediate=3072`` (trained from scratch: hub weights expect the waveform encoder).
    """

    def __init__(
        self,
        n_classes: int = len(RAVDESS_EMOTIONS),
        n_mels: int = N_MELS,
        hidden: int = 128,
        layers: int = 2,
        heads: int = 4,
        intermediate: int = 256,
        dropout: float = 0.1,
        *,
        arch: str = "hubert",
    ):
        super().__init__()
        _check_arch(arch, "hubert")
        from transformers import HubertConfig
        from transformers.models.hubert.modeling_hubert import HubertEncoder

        self.config = dict(
            arch="hubert", n_classes=n_classes, n_mels=n_mels, hidden=hidden, layers=layers, heads=heads, intermediate=intermediate, dropout=dropout
        )
        hubert = HubertConfig(
            hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=intermediate,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, hidden_dropout=dropout, attention_dropout=dropout,
            activation_dropout=dropout, layerdrop=0.0,
        )
        hubert._attn_implementation = "eager"  # plain matmul attention: exports to ONNX
        self.frame_norm = nn.LayerNorm(n_mels)
        self.projection = nn.Linear(n_mels, hidden)
        self.encoder = HubertEncoder(hubert)
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> ClassifierOutput:
        """``x``: log-Mel [B, n_mels, frames]."""
        h = self.projection(self.frame_norm(x.transpose(1, 2)))  # [B, frames, hidden]
        emb = self.encoder(h).last_hidden_state.mean(1)
        return ClassifierOutput(self.classifier(emb), emb)


ARCHITECTURES: dict[str, type[nn.Module]] = {"cnn-lstm": Student, "cnn6": CNN6, "hubert": HubertStudent}


def build_student(config: dict[str, Any]) -> nn.Module:
    """The student a ``model.config`` describes; a config without ``arch`` (older checkpoints) is LiSER's CNN-LSTM."""
    config = dict(config)
    arch = config.pop("arch", "cnn-lstm")
    arch = ARCH_ALIASES.get(arch, arch)
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown student arch {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[arch](**config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def describe(model: Student, frames: int) -> str:
    """A table of the LiSER student's blocks, output shapes and parameter counts."""
    if not isinstance(model, Student):
        raise TypeError(f"describe() covers the LiSER Student, not {type(model).__name__}")
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
