"""Drawn talking faces: video frames whose expression carries a (hidden) emotion.

The unlabeled audio-visual corpus needs faces a video teacher could read: a skin-toned
head ellipse with hair, eyes, eyebrows, nose and mouth, where the brows, eyes and mouth
take the shape of a FERV39k expression (section 3.2) and the mouth opens with the speech
envelope. Small head motion, blinks, a textured background and clips where the face
leaves the frame, is covered or the picture goes blank make it less trivially clean.

Drawing is plain numpy, in head-local coordinates (u across the head, v down it, both
-1..1 at the head outline). For speed, each clip paints its parts once into premultiplied
RGBA layers (the person, and a small cache of eye and mouth states) and each frame only
composites them at the head's position over the background (~0.3 ms a frame).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import numpy as np

from liser.constants import FERV39K_OF_EMOTION

# The face shown for each RAVDESS emotion: the classes speech and video share, and FERV39k
# has no "calm", which looks neutral.
FERV_OF_EMOTION: dict[str, str] = {**FERV39K_OF_EMOTION, "calm": "neutral"}


@dataclass(frozen=True)
class Expression:
    """Facial configuration in head units (v grows downward, so raising is negative v)."""

    brow_raise: float = 0.0  # whole brow up (+)
    brow_inner: float = 0.0  # inner brow ends up (+, sad/fear) or pulled down-in (-, angry)
    eye_open: float = 1.0  # eye aperture scale (wide > 1, squint < 1)
    mouth_curve: float = 0.0  # corners up (+, smile) or down (-)
    mouth_width: float = 1.0
    mouth_open: float = 0.0  # jaw opening at rest
    lip_press: float = 0.0  # 0..1, thin pressed lips (tight angry mouth)
    lip_raise: float = 0.0  # one-sided upper-lip raise (disgust)
    wrinkle: float = 0.0  # 0..1, nose-wrinkle lines (disgust)
    talk_gain: float = 1.0  # how far speech opens the mouth


# FACS-inspired prototypes (Ekman & Friesen): happy AU6+12, sad AU1+4+15, angry AU4+5+23,
# surprise AU1+2+5+26, fear AU1+2+4+5+20, disgust AU9+10.
EXPRESSIONS: dict[str, Expression] = {
    "neutral": Expression(),
    "happy": Expression(brow_raise=0.02, eye_open=0.75, mouth_curve=0.14, mouth_width=1.2, mouth_open=0.03),
    "sad": Expression(brow_inner=0.10, eye_open=0.8, mouth_curve=-0.10, mouth_width=0.9, talk_gain=0.7),
    "angry": Expression(
        brow_raise=-0.05, brow_inner=-0.11, eye_open=0.9, mouth_curve=-0.02, mouth_width=0.85, lip_press=1.0, talk_gain=0.7
    ),
    "surprise": Expression(brow_raise=0.13, brow_inner=0.02, eye_open=1.6, mouth_width=0.7, mouth_open=0.18, talk_gain=0.5),
    "fear": Expression(brow_raise=0.09, brow_inner=0.08, eye_open=1.5, mouth_curve=-0.04, mouth_width=1.35, mouth_open=0.06),
    "disgust": Expression(brow_raise=-0.03, brow_inner=-0.05, eye_open=0.75, mouth_curve=-0.06, lip_raise=0.09, wrinkle=1.0),
}


def blend_expression(name: str, intensity: float) -> Expression:
    """Neutral moved ``intensity`` (0..1+) of the way toward the named expression."""
    base, target = EXPRESSIONS["neutral"], EXPRESSIONS[name]
    return Expression(
        **{f.name: getattr(base, f.name) + intensity * (getattr(target, f.name) - getattr(base, f.name)) for f in fields(Expression)}
    )


# --- Per-speaker look -----------------------------------------------------------------
SKIN_TONES = np.array([[255, 224, 196], [241, 194, 160], [224, 172, 125], [198, 134, 90], [141, 85, 54], [96, 60, 40]], np.float32)


@dataclass(frozen=True)
class FaceStyle:
    """How one speaker looks and the room they sit in (fixed per source video)."""

    skin: np.ndarray  # RGB float
    hair: np.ndarray
    shirt: np.ndarray
    lips: np.ndarray
    head_size: float  # head half-width as a fraction of the frame
    aspect: float  # half-height / half-width
    eye_dx: float  # eye distance from the midline, head units
    eye_y: float
    mouth_y: float
    hairline: float  # v where the hair ends on the forehead
    room: tuple[np.ndarray, np.ndarray]  # two background colours
    room_seed: int


def draw_face_style(rng: np.random.Generator) -> FaceStyle:
    """Draw a speaker's look: a skin tone between two palette entries, hair, proportions."""
    i = rng.uniform(0, len(SKIN_TONES) - 1)
    skin = SKIN_TONES[int(i)] + (i % 1) * (SKIN_TONES[min(int(i) + 1, len(SKIN_TONES) - 1)] - SKIN_TONES[int(i)])
    hair = np.array(rng.choice([[30, 25, 20], [70, 45, 25], [120, 80, 40], [200, 170, 110], [140, 140, 140]]), np.float32)
    return FaceStyle(
        skin=skin.astype(np.float32),
        hair=hair * rng.uniform(0.8, 1.1),
        shirt=rng.uniform(20, 230, 3).astype(np.float32),
        lips=(skin * np.array([0.75, 0.45, 0.45]) + np.array([40, 0, 0])).astype(np.float32),
        head_size=float(rng.uniform(0.24, 0.3)),
        aspect=float(rng.uniform(1.15, 1.35)),
        eye_dx=float(rng.uniform(0.33, 0.42)),
        eye_y=float(rng.uniform(-0.14, -0.04)),
        mouth_y=float(rng.uniform(0.42, 0.52)),
        hairline=float(rng.uniform(-0.62, -0.45)),
        room=(rng.uniform(40, 220, 3).astype(np.float32), rng.uniform(40, 220, 3).astype(np.float32)),
        room_seed=int(rng.integers(2**31)),
    )


def draw_background(style: FaceStyle, size: int, margin: int) -> np.ndarray:
    """A room, channel-first [3, n, n]: vertical gradient, a few soft blocks (furniture,
    windows) and fine texture; ``margin`` pixels of slack on each side let the camera pan."""
    rng = np.random.default_rng(style.room_seed)
    n = size + 2 * margin
    y, x = np.mgrid[0:n, 0:n].astype(np.float32) / n
    top, bottom = (c[:, None, None] for c in style.room)
    img = top + y * (bottom - top)
    for _ in range(int(rng.integers(2, 6))):
        cx, cy, w, h = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.08, 0.4), rng.uniform(0.08, 0.5)
        inside = np.clip(4 * (np.minimum(w - np.abs(x - cx), h - np.abs(y - cy))) * n / 8, 0, 1)
        img += inside * (rng.uniform(20, 235, (3, 1, 1)).astype(np.float32) - img) * rng.uniform(0.4, 0.9)
    img += rng.normal(0, 4, (1, n, n)).astype(np.float32)
    return img.astype(np.float32)


# --- Painting helpers -----------------------------------------------------------------
# Layers are channel-first premultiplied RGBA float32 [4, h, w]: numpy broadcasts over a
# trailing axis of 3 very slowly, and premultiplied alpha makes painting onto a
# transparent layer the same one-line blend as painting onto the frame.


def _rgba(color: np.ndarray | float) -> np.ndarray:
    """An opaque paint colour as a [4, 1, 1] column (grey levels allowed)."""
    rgb = np.broadcast_to(np.asarray(color, np.float32), (3,))
    return np.append(rgb, np.float32(1.0)).astype(np.float32)[:, None, None]


@dataclass
class _Pose:
    """Where the head sits on a layer: centre and half-axes in pixels, and roll."""

    cx: float
    cy: float
    a: float
    b: float
    cos: float
    sin: float


def _window(
    layer: np.ndarray, pose: _Pose, u: float, v: float, half_u: float, half_v: float
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
    """The pixel box around head point (u, v) +- (half_u, half_v), with its head coordinates.

    Returns None when the box is entirely off the layer.
    """
    du, dv = u * pose.a, v * pose.b
    px, py = pose.cx + du * pose.cos - dv * pose.sin, pose.cy + du * pose.sin + dv * pose.cos
    ru, rv = half_u * pose.a, half_v * pose.b
    rx = abs(pose.cos) * ru + abs(pose.sin) * rv + 2
    ry = abs(pose.sin) * ru + abs(pose.cos) * rv + 2
    h, w = layer.shape[1:]
    x0, x1 = max(int(px - rx), 0), min(int(px + rx) + 2, w)
    y0, y1 = max(int(py - ry), 0), min(int(py + ry) + 2, h)
    if x0 >= x1 or y0 >= y1:
        return None
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(pose.cy)
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(pose.cx)
    uu = (xs * pose.cos + ys * pose.sin) * (1 / pose.a)
    vv = (ys * pose.cos - xs * pose.sin) * (1 / pose.b)
    return (slice(y0, y1), slice(x0, x1)), uu, vv


def _paint(layer: np.ndarray, where: tuple[slice, slice], alpha: np.ndarray, color: np.ndarray) -> None:
    """Blend an ``_rgba`` colour (or a per-pixel [4, h, w] field) into ``layer`` with coverage ``alpha``."""
    region = layer[(slice(None), *where)]
    region += np.clip(alpha, 0, 1) * (color - region)


def _ellipse_alpha(uu: np.ndarray, vv: np.ndarray, cu: float | np.ndarray, cv: float, ru: float, rv: float, pixels: float) -> np.ndarray:
    """Anti-aliased filled ellipse; ``pixels`` is about how many pixels one radius spans.

    Uses 1 - r^2 ~ 2 (1 - r) near the outline, which saves a square root.
    """
    r2 = ((uu - cu) * (1 / ru)) ** 2 + ((vv - cv) * (1 / rv)) ** 2
    return 0.5 + (1 - r2) * (0.5 * pixels)


def _segment_alpha(
    uu: np.ndarray, vv: np.ndarray, p: tuple[float, float], q: tuple[float, float], width: float, px_per_unit: float
) -> np.ndarray:
    """Anti-aliased thick line (capsule) from p to q, all in head units."""
    du, dv = q[0] - p[0], q[1] - p[1]
    t = np.clip(((uu - p[0]) * du + (vv - p[1]) * dv) * (1 / (du * du + dv * dv + 1e-9)), 0, 1)
    dist = np.sqrt((uu - p[0] - t * du) ** 2 + (vv - p[1] - t * dv) ** 2)
    return 0.5 + (width - dist) * px_per_unit


# --- Face parts -----------------------------------------------------------------------
# Each painter works in one window; eyes and brows use the mirror |u| so both sides
# cost one pass.


def _body(layer: np.ndarray, pose: _Pose, style: FaceStyle) -> None:
    """Shoulders: a wide ellipse under the head, so the frame is not a floating face."""
    win = _window(layer, pose, 0.0, 2.9, 2.6, 1.5)
    if win is not None:
        where, uu, vv = win
        _paint(layer, where, _ellipse_alpha(uu, vv, 0, 2.9, 2.6, 1.5, 2.6 * pose.a), _rgba(style.shirt))


def _head(layer: np.ndarray, pose: _Pose, style: FaceStyle) -> None:
    """Neck, then the head ellipse with soft shading and a hair cap, in one blend."""
    win = _window(layer, pose, 0.0, 1.05, 0.45, 0.5)
    if win is not None:
        where, uu, vv = win
        alpha = np.minimum((0.42 - np.abs(uu)) * pose.a, (1.5 - vv) * pose.b) + 0.5
        _paint(layer, where, alpha, _rgba(style.skin * 0.8))
    win = _window(layer, pose, 0.0, 0.0, 1.1, 1.1)
    if win is None:
        return
    where, uu, vv = win
    skin = _ellipse_alpha(uu, vv, 0, 0, 1, 1, pose.a)
    volume = _ellipse_alpha(uu, vv, 0, -0.03, 1.07, 1.05, pose.a)  # hair stands off the skull
    hair = np.clip(np.minimum(volume, 0.5 + (style.hairline + 0.35 * uu * uu - vv) * pose.b), 0, 1)
    shade = 1.0 - 0.12 * uu - 0.08 * vv - 0.1 * (uu * uu + vv * vv)  # light from the upper left
    color = _rgba(style.skin) * np.concatenate([np.broadcast_to(shade, (3, *shade.shape)), np.ones((1, *shade.shape), np.float32)])
    color += hair * (_rgba(style.hair) - color)
    _paint(layer, where, np.maximum(skin, hair), color)


def _person(layer: np.ndarray, pose: _Pose, style: FaceStyle) -> None:
    """Shoulders, neck, head and hair: everything that only moves with the head."""
    _body(layer, pose, style)
    _head(layer, pose, style)


def _eyes_and_brows(layer: np.ndarray, pose: _Pose, style: FaceStyle, expr: Expression, blink: float, gaze: float) -> None:
    """Eye whites, irises, lids and brows; aperture from expression and blinks."""
    rv = max(0.075 * expr.eye_open * blink, 0.01)
    base = style.eye_y - 0.2 - expr.brow_raise
    top = min(base - abs(expr.brow_inner), style.eye_y - rv) - 0.06
    bottom = style.eye_y + rv + 0.02
    win = _window(layer, pose, 0.0, (top + bottom) / 2, style.eye_dx + 0.22, (bottom - top) / 2)
    if win is None:
        return
    where, uu, vv = win
    au = np.abs(uu)
    white = _ellipse_alpha(au, vv, style.eye_dx, style.eye_y, 0.15, rv, pose.b * rv)
    _paint(layer, where, white * min(1.0, rv / 0.03), _rgba(245.0))
    iris_u = style.eye_dx + gaze * np.sign(uu)
    iris = np.minimum(_ellipse_alpha(au, vv, iris_u, style.eye_y, 0.06, 0.06 * pose.a / pose.b, 0.06 * pose.a), white)
    _paint(layer, where, iris, _rgba(35.0))
    lid_v = style.eye_y - 0.9 * rv
    lid = np.minimum((0.014 - np.abs(vv - lid_v)) * pose.b, (0.15 - np.abs(au - style.eye_dx)) * pose.a) + 0.5
    _paint(layer, where, lid * 0.8, _rgba(style.skin * 0.45))
    inner = (0.12, base - expr.brow_inner)
    outer = (style.eye_dx + 0.17, base + 0.02 + 0.3 * expr.brow_inner)
    _paint(layer, where, _segment_alpha(au, vv, inner, outer, 0.03, pose.a), _rgba(style.hair * 0.8))


def _nose_and_mouth(layer: np.ndarray, pose: _Pose, style: FaceStyle, expr: Expression, talk: float) -> None:
    """Nose shadow, nostrils, disgust wrinkles, and lips around a mouth opening whose
    curve, width and gap follow the expression and the speech envelope."""
    half_w = 0.24 * expr.mouth_width
    low = style.mouth_y + 0.25
    win = _window(layer, pose, 0.0, (low - 0.08) / 2, max(half_w, 0.12) + 0.05, (low + 0.08) / 2)
    if win is None:
        return
    where, uu, vv = win
    dark = _rgba(style.skin * 0.65)
    nose = np.maximum(
        0.6 * _segment_alpha(uu, vv, (0.02, -0.05), (0.06, 0.22), 0.015, pose.a),
        0.8 * _ellipse_alpha(np.abs(uu), vv, 0.07, 0.26, 0.035, 0.025, pose.a * 0.03),
    )
    if expr.wrinkle > 0.05:
        band = np.abs(((vv + 0.02) % 0.05) - 0.025)  # three short horizontal creases
        crease = np.minimum((0.008 - band) * pose.b * 2, (0.08 - np.abs(uu)) * pose.a) + 0.5
        crease = np.where((vv > -0.04) & (vv < 0.11), crease, 0)
        nose = np.maximum(nose, expr.wrinkle * 0.7 * np.clip(crease, 0, 1))
    _paint(layer, where, nose, dark)
    t = uu * (1 / half_w)
    edge = np.sqrt(np.clip(1 - t * t, 0, 1))
    mid = style.mouth_y - expr.mouth_curve * (t * t - 0.35)
    opening = max(expr.mouth_open, 0) + 0.12 * expr.talk_gain * talk
    upper = mid - 0.35 * opening * edge - expr.lip_raise * np.clip(t + 0.3, 0, 1.3) * edge
    lower = mid + 0.65 * opening * edge
    lip = 0.035 * (1 - 0.6 * expr.lip_press)
    inside_x = (1 - np.abs(t)) * (half_w * pose.a)
    lips = np.minimum(np.minimum(vv - (upper - lip), (lower + lip) - vv) * pose.b, inside_x) + 0.5
    _paint(layer, where, lips, _rgba(style.lips))
    if opening * pose.b > 0.3:  # a visible gap: dark mouth with upper teeth
        gap = np.minimum(np.minimum(vv - upper, lower - vv) * pose.b, inside_x - 1) + 0.5
        _paint(layer, where, gap, _rgba(40.0))
        teeth = np.minimum(gap, (upper + 0.3 * (lower - upper) - vv) * pose.b + 0.5)
        _paint(layer, where, teeth * (0.9 * min(1.0, opening / 0.05)), _rgba(225.0))


# --- Layers and compositing ----------------------------------------------------------


@dataclass
class _Layer:
    """A premultiplied RGBA sprite and where its top-left sits relative to the head centre."""

    rgba: np.ndarray  # [4, h, w]
    dx: int
    dy: int


def _make_layer(a: float, b: float, roll: float, box: tuple[float, float, float], paint: Callable[[np.ndarray, _Pose], Any]) -> _Layer:
    """Paint onto a transparent canvas holding head box (|u| <= box[0], box[1] <= v <= box[2]),
    then crop to what was painted."""
    half_w = int(box[0] * a + abs(roll) * box[2] * b) + 4
    top, bottom = int(-box[1] * b) + 4, int(box[2] * b) + 4
    canvas = np.zeros((4, top + bottom, 2 * half_w), np.float32)
    paint(canvas, _Pose(float(half_w), float(top), a, b, float(np.cos(roll)), float(np.sin(roll))))
    rows = np.flatnonzero(canvas[3].max(1) > 1e-3)
    cols = np.flatnonzero(canvas[3].max(0) > 1e-3)
    if rows.size == 0:
        return _Layer(canvas[:, :0, :0], 0, 0)
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return _Layer(np.ascontiguousarray(canvas[:, y0:y1, x0:x1]), int(x0) - half_w, int(y0) - top)


def _composite(img: np.ndarray, layer: _Layer, cx: int, cy: int) -> None:
    """Draw ``layer`` over the [3, H, W] frame with the head centre at pixel (cx, cy)."""
    h, w = layer.rgba.shape[1:]
    x0, y0 = cx + layer.dx, cy + layer.dy
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + w, img.shape[2]), min(y0 + h, img.shape[1])
    if fx0 >= fx1 or fy0 >= fy1:
        return
    part = layer.rgba[:, fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    region = img[:, fy0:fy1, fx0:fx1]
    region *= 1 - part[3]
    region += part[:3]


# --- Clips ----------------------------------------------------------------------------
NO_FACE_KINDS = ("exit", "occluded", "blank")
# Expression strength of in-the-wild faces (0 = neutral face): subtle as often as clear. The
# unlabeled clips draw from it, and so does the FERV39k stand-in the small DFER learns from.
EXPRESSION_INTENSITY = (0.25, 1.0)
LEVELS = 6  # expression-intensity steps cached per clip
TALK_LEVELS = 8  # mouth-opening steps cached per clip


@dataclass
class _Motion:
    """Smooth random head motion (sideways sway, nodding): sums of slow sinusoids."""

    freqs: np.ndarray
    phases: np.ndarray
    amps: np.ndarray  # [2 channels: dx, dy] x [2 sinusoids], as frame fractions

    @staticmethod
    def draw(rng: np.random.Generator) -> _Motion:
        scale = np.array([[0.035], [0.02]])
        return _Motion(rng.uniform(0.1, 0.8, (2, 2)), rng.uniform(0, 2 * np.pi, (2, 2)), scale * rng.uniform(0.3, 1.0, (2, 2)))

    def at(self, t: np.ndarray) -> np.ndarray:
        """Offsets [2, len(t)]."""
        return (self.amps[..., None] * np.sin(2 * np.pi * self.freqs[..., None] * t + self.phases[..., None])).sum(1)


def mouth_track(voice: np.ndarray, n_frames: int, fps: int, sr: int) -> np.ndarray:
    """Mouth opening 0..1 per video frame from the speech voicing envelope."""
    per = sr / fps
    idx = np.minimum((np.arange(len(voice)) / per).astype(int), n_frames - 1)
    sums = np.bincount(idx, weights=voice, minlength=n_frames)[:n_frames]
    counts = np.maximum(np.bincount(idx, minlength=n_frames)[:n_frames], 1)
    return np.clip(sums / counts / 1.1, 0, 1)


def _no_face_span(rng: np.random.Generator, n_frames: int, fps: int) -> tuple[int, int]:
    """Frames [start, stop) of the face-less stretch: 0.7-2.5 s somewhere in the clip."""
    length = int(min(rng.uniform(0.7, 2.5) * fps, 0.6 * n_frames))
    start = int(rng.integers(0, max(n_frames - length, 1)))
    return start, start + length


def _blinks(rng: np.random.Generator, n: int, fps: int) -> np.ndarray:
    """Which frames are mid-blink: a three-frame blink every 2-5 s."""
    out = np.zeros(n, bool)
    f = int(rng.integers(0, 2 * fps))
    while f < n:
        out[f : f + 3] = True
        f += int(rng.uniform(2, 5) * fps)
    return out


@dataclass
class _Script:
    """Per-frame plan of a clip: head position, camera pan, cached-part keys, visibility."""

    cx: np.ndarray
    cy: np.ndarray
    pan: np.ndarray
    level: np.ndarray  # expression step 0..LEVELS-1
    talk: np.ndarray  # mouth step 0..TALK_LEVELS-1
    blink: np.ndarray
    gaze: np.ndarray  # -1, 0, 1: glances aside
    hidden: np.ndarray  # inside the face-less stretch
    visible: np.ndarray  # a face detector would find a face


def _script(
    rng: np.random.Generator, intensity: float, mouth: np.ndarray, size: int, margin: int, a: float, fps: int, no_face: str | None
) -> _Script:
    """Draw the clip's motion, expression breathing, blinks and face-less stretch."""
    n = len(mouth)
    t = np.arange(n) / fps
    motion = _Motion.draw(rng).at(t)
    drift = rng.uniform(0, 2 * np.pi)
    cx = np.round(size * (0.5 + motion[0])).astype(int)
    span = _no_face_span(rng, n, fps) if no_face else (n, n)
    hidden = (np.arange(n) >= span[0]) & (np.arange(n) < span[1])
    visible = ~hidden
    if no_face == "exit":  # slide out sideways and back in, 0.3 s each way
        ramp = np.clip(np.minimum(np.arange(n) - span[0] + 1, span[1] - np.arange(n)) / (0.3 * fps), 0, 1) * hidden
        cx = cx + np.round(float(rng.choice([-1.0, 1.0])) * ramp * (0.5 * size + 1.2 * a)).astype(int)
        visible = (np.minimum(cx + a, size) - np.maximum(cx - a, 0)) / (2 * a) >= 0.6
    return _Script(
        cx=cx,
        cy=np.round(size * (0.44 + motion[1])).astype(int),
        pan=np.round(margin + 0.5 * margin * np.sin(0.3 * t + drift)).astype(int),  # slow camera pan
        level=np.round(intensity * (0.85 + 0.15 * np.sin(2 * np.pi * 0.2 * t + drift)) * (LEVELS - 1)).astype(int),
        talk=np.round(np.clip(mouth, 0, 1) * (TALK_LEVELS - 1)).astype(int),
        blink=_blinks(rng, n, fps),
        gaze=np.round(np.sin(0.7 * t + drift)).astype(int),
        hidden=hidden,
        visible=visible,
    )


def render_clip(
    style: FaceStyle,
    ferv_class: str,
    intensity: float,
    mouth: np.ndarray,
    rng: np.random.Generator,
    size: int,
    fps: int,
    no_face: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames uint8 [n, size, size, 3] of a talking face, and whether a face is visible in each.

    ``intensity`` scales the expression (0 = neutral face); it also breathes a little over
    time. ``mouth`` (0..1 per frame) opens the mouth. ``no_face`` ("exit" | "occluded" |
    "blank") hides the face for one stretch.
    """
    margin = max(size // 16, 2)
    background = draw_background(style, size, margin)
    a = style.head_size * size
    b = a * style.aspect
    roll = float(rng.normal(0, 0.05))  # a per-clip head tilt
    plan = _script(rng, intensity, mouth, size, margin, a, fps, no_face)
    occluder = rng.uniform(40, 200, (3, 1, 1)).astype(np.float32)
    occ = slice(int(rng.uniform(0.0, 0.12) * size), int(rng.uniform(0.88, 1.0) * size))
    occluder = (
        occluder * np.linspace(0.75, 1.15, size, dtype=np.float32)[None, occ] * np.linspace(1.1, 0.8, size, dtype=np.float32)[:, None]
    )

    person = _make_layer(a, b, roll, (2.7, -1.2, 4.5), partial(_person, style=style))
    eyes: dict[tuple[int, bool, int], _Layer] = {}
    mouths: dict[tuple[int, int], _Layer] = {}
    frames = np.empty((len(mouth), size, size, 3), np.uint8)
    for i in range(len(mouth)):
        img = background[:, margin : margin + size, plan.pan[i] : plan.pan[i] + size].copy()
        if no_face == "blank" and plan.hidden[i]:  # the picture drops out (a cut, a fade)
            frames[i] = np.clip(img * 0.08 + 8, 0, 255).transpose(1, 2, 0)
            continue
        expr = blend_expression(ferv_class, plan.level[i] / (LEVELS - 1))
        key_e = (int(plan.level[i]), bool(plan.blink[i]), int(plan.gaze[i]))
        if key_e not in eyes:
            paint = partial(_eyes_and_brows, style=style, expr=expr, blink=0.1 if key_e[1] else 1.0, gaze=0.02 * key_e[2])
            eyes[key_e] = _make_layer(a, b, roll, (0.8, -0.75, 0.15), paint)
        key_m = (int(plan.level[i]), int(plan.talk[i]))
        if key_m not in mouths:
            paint = partial(_nose_and_mouth, style=style, expr=expr, talk=key_m[1] / (TALK_LEVELS - 1))
            mouths[key_m] = _make_layer(a, b, roll, (0.6, -0.2, 0.95), paint)
        for layer in (person, eyes[key_e], mouths[key_m]):
            _composite(img, layer, int(plan.cx[i]), int(plan.cy[i]))
        if no_face == "occluded" and plan.hidden[i]:  # something passes close in front of the camera
            img[:, :, occ] = occluder
        frames[i] = np.clip(img, 0, 255).transpose(1, 2, 0)
    return frames, plan.visible
