#!/usr/bin/env python3
"""Measure open-vocabulary detection latency at 640x480: OWLv2 and Grounding DINO, real sizes.

The models have the real checkpoints' architectures (google/owlv2-base-patch16-ensemble: ViT-B/16
at 960x960; IDEA-Research/grounding-dino-tiny: Swin-T backbone, BERT-base text encoder, 900
queries) with random weights, which time the same as trained ones and need no download. Each is
saved to a temporary directory and loaded back through the detector's own from_pretrained path,
then detect() runs on a synthetic RGB-D tabletop frame with five prompts.

Prints a readable table and then, as its last line, one JSON object whose keys carry their units
(ARCHITECTURE.md, "Figures that tools can read"), e.g. ``owlv2_ms_p50_640x480_cuda_fp16``:

    .venv/bin/python benchmarks/open_vocab_bench.py --device cuda            # fp16 on the GPU
    .venv/bin/python benchmarks/open_vocab_bench.py --device cpu --runs 3    # fp32, seconds per frame

``*_ms_*`` times all of detect() (preprocessing, model, boxes, lifting to 3D); ``*_model_ms_*``
times predict_boxes() alone (preprocessing, model, 2D boxes). Random weights propose many boxes,
so the lifting share is an upper bound: up to max_detections (50) boxes are lifted per frame.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from modular_robot.core.camera import PinholeIntrinsics
from modular_robot.core.perception.registry import create_detector
from modular_robot.core.perception.types import CameraFrame
from modular_robot.core.transforms import Transform, quat_from_rpy, quat_to_matrix

WIDTH, HEIGHT = 640, 480
PROMPTS = ("red cube", "blue ball", "mug", "tray", "duck")
DETECTORS = ("owlv2", "grounding_dino")
DTYPE_TAGS = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def _save_image_settings(directory: Path, settings: dict) -> None:
    """Write the checkpoint's preprocessor_config.json as the hub's checkpoints carry it."""
    (directory / "preprocessor_config.json").write_text(json.dumps(settings, indent=2))


def build_owlv2(directory: Path, device, dtype) -> None:
    """Save a random-weight OWLv2 base patch16 (ensemble) checkpoint with a small CLIP tokenizer."""
    import torch
    from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    # Owlv2Config's defaults are the base model except the input size: the checkpoints use 960, not 768.
    config = Owlv2Config(vision_config={"image_size": 960, "patch_size": 16})
    with torch.device(device):  # initialising on the GPU is much faster than on the CPU
        model = Owlv2ForObjectDetection(config)
    model.to(dtype).save_pretrained(directory)
    # Every query is padded to 16 tokens, so the tokenizer's vocabulary does not change the cost:
    # byte-level symbols suffice. "!" (id 0) pads; end-of-text has the highest id, where OWLv2 pools.
    symbols = list(bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols)} | {s + "</w>": 256 + i for i, s in enumerate(symbols)}
    vocab |= {"<|startoftext|>": 512, "<|endoftext|>": 513}
    CLIPTokenizer(vocab=vocab, merges=[], pad_token="!", model_max_length=16).save_pretrained(directory)
    _save_image_settings(directory, {
        "image_processor_type": "Owlv2ImageProcessor", "do_resize": True, "size": {"height": 960, "width": 960},
        "do_pad": True, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    })


def build_grounding_dino(directory: Path, device, dtype) -> None:
    """Save a random-weight Grounding DINO tiny checkpoint with a BERT tokenizer that knows the prompts."""
    import torch
    from transformers import BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection

    config = GroundingDinoConfig()  # the defaults are grounding-dino-tiny: Swin-T, BERT-base
    with torch.device(device):
        model = GroundingDinoForObjectDetection(config)
    model.to(dtype).save_pretrained(directory)
    # The caption's length sets the text cost: give each prompt word one token, as bert-base-uncased
    # does, with the special tokens at the ids the model hard-codes.
    words = sorted({word for prompt in PROMPTS for word in prompt.split()})
    named = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103, ".": 1012, "?": 1029}
    named |= {word: 2000 + i for i, word in enumerate(words)}
    taken = set(named.values())
    vocab = named | {f"[unused{i}]": i for i in range(config.text_config.vocab_size) if i not in taken}
    BertTokenizer(vocab=vocab).save_pretrained(directory)
    _save_image_settings(directory, {
        "image_processor_type": "GroundingDinoImageProcessor", "do_resize": True,
        "size": {"shortest_edge": 800, "longest_edge": 1333}, "do_pad": True, "do_rescale": True,
        "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
    })


def synthetic_frame() -> CameraFrame:
    """Return a 640x480 RGB-D view of a table with three boxes, from 0.6 m up, tilted 35 degrees down."""
    intrinsics = PinholeIntrinsics(WIDTH, HEIGHT, fx=600.0, fy=600.0, cx=319.5, cy=239.5)
    look_along_x = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    matrix = np.eye(4)
    matrix[:3, :3] = quat_to_matrix(quat_from_rpy(0.0, math.radians(35), 0.0)) @ look_along_x
    matrix[:3, 3] = (0.0, 0.0, 0.6)
    pose = Transform.from_matrix(matrix)
    us, vs = np.meshgrid(np.arange(WIDTH), np.arange(HEIGHT))
    rays = np.stack(((us - intrinsics.cx) / intrinsics.fx, (vs - intrinsics.cy) / intrinsics.fy,
                     np.ones(us.shape)), axis=-1) @ matrix[:3, :3].T
    with np.errstate(divide="ignore"):
        depth = np.where(rays[..., 2] < 0, -0.6 / rays[..., 2], np.nan)  # the table plane z = 0
    rgb = np.full((HEIGHT, WIDTH, 3), (140, 100, 60), dtype=np.uint8)
    for (u0, v0, u1, v1), colour in (((200, 260, 260, 320), (200, 30, 30)), ((330, 240, 400, 300), (30, 60, 200)),
                                     ((430, 300, 520, 380), (220, 200, 40))):
        depth[v0:v1, u0:u1] = np.nanmin(depth[v0:v1, u0:u1]) - 0.03  # 3 cm nearer than the table
        rgb[v0:v1, u0:u1] = colour
    return CameraFrame(rgb=rgb, depth=depth.astype(np.float32), intrinsics=intrinsics, world_from_camera=pose)


def _percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1e3, q))


def measure(name: str, device: str, dtype: str, runs: int, warmup: int, frame: CameraFrame) -> dict[str, float]:
    """Build, save, load and time one detector; return its figures."""
    import torch

    builder = build_owlv2 if name == "owlv2" else build_grounding_dino
    torch_dtype = getattr(torch, dtype)
    with tempfile.TemporaryDirectory(prefix=f"{name}_bench_") as tmp:
        builder(Path(tmp), device, torch_dtype)
        if device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        detector = create_detector(name, model_dir=tmp, device=device, dtype=dtype)
        load_s = time.perf_counter() - t0
    for _ in range(warmup):
        detector.detect(frame, PROMPTS)
    detect_s, model_s, counts = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        counts.append(len(detector.detect(frame, PROMPTS)))
        detect_s.append(time.perf_counter() - t0)
    for _ in range(runs):
        t0 = time.perf_counter()
        detector.predict_boxes(frame.rgb, list(PROMPTS))  # returns host arrays: the device has finished
        model_s.append(time.perf_counter() - t0)
    figures = {
        "ms_p50": _percentile_ms(detect_s, 50), "ms_p95": _percentile_ms(detect_s, 95),
        "model_ms_p50": _percentile_ms(model_s, 50), "detections_mean": float(np.mean(counts)),
        "load_s": load_s,
    }
    if device == "cuda":
        figures["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: cuda when available")
    parser.add_argument("--dtype", choices=("auto", *DTYPE_TAGS), default="auto",
                        help="auto: float16 on cuda, float32 on cpu")
    parser.add_argument("--runs", type=int, default=20, help="timed frames per detector")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed frames first (allocation, kernel choice); default 3 on cuda, 1 on cpu")
    parser.add_argument("--detectors", nargs="+", choices=DETECTORS, default=list(DETECTORS))
    args = parser.parse_args()
    if args.runs < 1 or (args.warmup is not None and args.warmup < 0):
        parser.error("--runs must be >= 1 and --warmup >= 0")

    import torch
    import transformers
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # keep the table and the JSON line readable
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    dtype = ("float16" if device == "cuda" else "float32") if args.dtype == "auto" else args.dtype
    warmup = (3 if device == "cuda" else 1) if args.warmup is None else args.warmup
    tag = f"{WIDTH}x{HEIGHT}_{device}_{DTYPE_TAGS[dtype]}"
    device_name = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    frame = synthetic_frame()

    figures: dict[str, object] = {"device": device_name, "dtype": dtype, "runs": args.runs, "warmup": warmup,
                                  "prompts": len(PROMPTS), "torch": torch.__version__,
                                  "transformers": transformers.__version__}
    rows = []
    for name in args.detectors:
        result = measure(name, device, dtype, args.runs, warmup, frame)
        rows.append((name, result))
        figures[f"{name}_ms_p50_{tag}"] = round(result["ms_p50"], 2)
        figures[f"{name}_ms_p95_{tag}"] = round(result["ms_p95"], 2)
        figures[f"{name}_model_ms_p50_{tag}"] = round(result["model_ms_p50"], 2)
        figures[f"{name}_detections_mean"] = round(result["detections_mean"], 1)
        figures[f"{name}_load_s"] = round(result["load_s"], 2)
        if device == "cuda":
            figures[f"{name}_gpu_peak_mib_{DTYPE_TAGS[dtype]}"] = round(result["gpu_peak_mib"], 1)

    print(f"open-vocabulary detection, {WIDTH}x{HEIGHT}, {len(PROMPTS)} prompts, {device_name}, {dtype}, "
          f"{args.runs} runs after {warmup} warm-up")
    header = f"{'detector':<16}{'detect p50':>12}{'detect p95':>12}{'model p50':>12}{'dets':>7}{'load':>9}"
    print(header + ("  gpu peak" if device == "cuda" else ""))
    for name, result in rows:
        line = (f"{name:<16}{result['ms_p50']:>9.1f} ms{result['ms_p95']:>9.1f} ms{result['model_ms_p50']:>9.1f} ms"
                f"{result['detections_mean']:>7.1f}{result['load_s']:>7.1f} s")
        if device == "cuda":
            line += f"{result['gpu_peak_mib']:>7.0f} MiB"
        print(line)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
