"""The one place for the paper's facts: class orders, audio settings, training defaults.

Every other module imports from here, so a number in the paper changes in one line.
Section numbers refer to Pendyala et al., "Leveraging Unlabeled Audio-Visual Data in
Speech Emotion Recognition using Knowledge Distillation", Interspeech 2024.
"""

from __future__ import annotations

# --- Audio and features (section 3.3) ---------------------------------------------
SAMPLE_RATE = 16_000
N_MELS = 64
WIN_SECONDS = 0.128  # 128 ms analysis window
HOP_SECONDS = 0.032  # 32 ms stride
N_FFT = round(WIN_SECONDS * SAMPLE_RATE)  # 2048
HOP_LENGTH = round(HOP_SECONDS * SAMPLE_RATE)  # 512
CROP_SECONDS = 3.0  # the student sees 3 s of speech
CROP_FRAMES = 1 + round(CROP_SECONDS * SAMPLE_RATE) // HOP_LENGTH  # 94 frames (center=True)
EVAL_STRIDE_SECONDS = 0.1  # sliding-window evaluation stride
LOG_FLOOR = 1e-10  # power floor before log10; also the value of zero padding in dB
PAD_DB = -100.0  # 10 * log10(LOG_FLOOR): what a zero-padded waveform turns into
MIN_CLIP_SECONDS = 0.5  # shorter clips carry too little speech to be useful
# A decoded audio track or video stream may come out a little short of its header (codec
# delay, rounding); shorter than this fraction of the header means data is missing.
DECODED_FRACTION_MIN = 0.9
SILENCE_PEAK = 1e-4  # a clip whose absolute peak is below this is silent

# --- Teachers (sections 2.2, 3.2, 3.4) ----------------------------------------------
TEACHER_SEGMENT_SECONDS = 0.5  # teacher softmax per 0.5 s segment
VIDEO_FPS = 30
DFER_WINDOW_FRAMES = 16  # 16 frames = ~0.5 s at 30 fps, window length and stride

# --- Class orders ------------------------------------------------------------------
# RAVDESS emotion codes 01..08, in code order.
RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
# CREMA-D filename codes, in this order.
CREMAD_CODES = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
CREMAD_EMOTIONS = ("angry", "disgust", "fearful", "happy", "neutral", "sad")
# IEMOCAP's usual 4-class setup: excited is merged into happy, every other label is left out.
IEMOCAP_EMOTIONS = ("neutral", "happy", "angry", "sad")
IEMOCAP_CODES = {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad"}
# The video teacher's classes (FERV39k, section 3.2).
FERV39K_CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
# The classes speech (RAVDESS / CREMA-D / IEMOCAP) and video (FERV39k) teachers share, speech
# name -> FERV39k name. "calm" has no facial class and is left out.
FERV39K_OF_EMOTION = {
    "neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry",
    "fearful": "fear", "disgust": "disgust", "surprised": "surprise",
}

# --- Student training (section 3.6) ------------------------------------------------
LEARNING_RATE = 1e-4
BATCH_SIZE = 25
MAX_EPOCHS = 50
N_FOLDS = 5
LAMBDA_GRID = (0.1, 0.5, 1.0, 5.0, 10.0)

# Where the synthetic corpus draws its face in a frame (left, top, right, bottom, as fractions):
# the generator draws there, the "synthetic" face detector and the FERV39k stand-in cut it out.
SYNTH_FACE_BOX = (0.18, 0.12, 0.82, 0.76)
