"""Open-vocabulary detectors (OWLv2, Grounding DINO) whose 2D boxes are lifted to 3D with depth.

Both load a transformers checkpoint from a local directory (``from_pretrained``, never the hub): the
model, its tokenizer and its image processor's saved settings (``preprocessor_config.json``). The
image preprocessing is done here in torch, on the model's device, following transformers'
torchvision image processors step by step: those classes need torchvision or Pillow, which this
project does not install, and doing it on the GPU also saves a host-side resize per frame.

torch and transformers are imported inside the constructors and methods, so importing this module
stays cheap for nodes that run another detector.
"""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modular_robot.core.perception.geometry import box_from_points, size_class
from modular_robot.core.perception.self_filter import inside_capsules
from modular_robot.core.perception.types import CameraFrame, Detection

if TYPE_CHECKING:
    import torch

_LOG = logging.getLogger(__name__)

# Image statistics of the processors these checkpoints ship with, for settings files that omit them.
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_DTYPES = ("float32", "float16", "bfloat16")
# Most depth pixels lift_box back-projects per box; larger boxes are sampled on a coarser grid.
_MAX_LIFT_PIXELS = 10_000


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
                        max_kept: int | None = None) -> np.ndarray:
    """Return the indices of the boxes greedy non-maximum suppression keeps, best score first.

    Args:
        boxes: (N, 4) pixel boxes (x0, y0, x1, y1), x1 and y1 exclusive.
        scores: (N,) scores.
        iou_threshold: A box whose intersection-over-union with a kept, better box exceeds this is
            dropped.
        max_kept: Stop after keeping this many boxes; None keeps all survivors.

    Returns:
        (K,) int indices into `boxes`, in order of decreasing score.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept: list[int] = []
    while order.size and (max_kept is None or len(kept) < max_kept):
        best, rest = order[0], order[1:]
        kept.append(int(best))
        width = np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0])
        height = np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1])
        intersection = np.clip(width, 0.0, None) * np.clip(height, 0.0, None)
        union = areas[best] + areas[rest] - intersection
        iou = np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(kept, dtype=np.intp)


def lift_box(
    frame: CameraFrame,
    bbox: tuple[int, int, int, int],
    shrink: float = 0.1,
    depth_bin_m: float = 0.01,
    min_bin_fraction: float = 0.05,
    min_points: int = 10,
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Return the 3D box (centre, size, yaw) in the world frame of the object inside a 2D box.

    A 2D box also holds background (a wall, the table behind) and, near its edges, pixels that
    mix both. The object is taken to be the dominant depth mode of the box's inner part (the box
    shrunk by `shrink` on each side, where the object fills most pixels): the depths are binned,
    bins holding at least `min_bin_fraction` of the fullest bin form contiguous runs, and the run
    with the most pixels wins. Every pixel of the whole box inside that run's depth range is then
    back-projected, so the object's full extent is kept while background at other depths is not.
    Points inside the robot's own links (`frame.robot_capsules`) are dropped first. Boxes of more
    than 10 000 pixels are sampled on a coarser grid, with bins widened in proportion.

    Args:
        frame: The RGB-D frame the box was found in.
        bbox: (x_offset, y_offset, width, height) in pixels; clipped to the image.
        shrink: Fraction of the box's width and height cut from each side to find the depth mode.
        depth_bin_m: Width of the depth histogram's bins (m).
        min_bin_fraction: Bins below this fraction of the fullest bin separate depth modes.
        min_points: Fewer object points (sampled pixels) than this give no box.

    Returns:
        (centre (3,), size (3,), yaw) as geometry.box_from_points, or None when the box holds too
        few valid depth pixels.
    """
    depth = np.asarray(frame.depth)
    x, y, w, h = (int(v) for v in bbox)
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, depth.shape[1]), min(y + h, depth.shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    # Large boxes are sampled on a coarser grid: the cost stays about 1 ms (a whole 640x480 box
    # took 0.1 s) while the extent loses at most the stride, a few pixels.
    stride = max(1, math.ceil(math.sqrt((x1 - x0) * (y1 - y0) / _MAX_LIFT_PIXELS)))
    crop = depth[y0:y1:stride, x0:x1:stride]
    rows, cols = np.nonzero(np.isfinite(crop) & (crop > 0.0))
    if rows.size < min_points:
        return None
    z = crop[rows, cols].astype(np.float32)
    rows, cols = rows * stride, cols * stride  # pixel offsets from the box's corner
    k = frame.intrinsics
    camera_points = np.column_stack(((cols + (x0 - k.cx)) * (z / k.fx), (rows + (y0 - k.cy)) * (z / k.fy), z))
    world = frame.world_from_camera.apply(camera_points.astype(np.float32))
    if frame.robot_capsules:
        outside = ~inside_capsules(world, frame.robot_capsules)
        rows, cols, z, world = rows[outside], cols[outside], z[outside], world[outside]
        if rows.size < min_points:
            return None
    inner_rows = _inner_range(y1 - y0, shrink)
    inner_cols = _inner_range(x1 - x0, shrink)
    inner = ((rows >= inner_rows[0]) & (rows < inner_rows[1])
             & (cols >= inner_cols[0]) & (cols < inner_cols[1]))
    # A box whose centre has no depth (a hole, a dark object) still has its edge pixels to go on;
    # sampled rows of a slanted surface lie further apart in depth, and wider bins keep them one mode.
    z_low, z_high = _dominant_depth_range(z[inner] if inner.any() else z, depth_bin_m * stride, min_bin_fraction)
    selected = (z >= z_low) & (z <= z_high)
    if np.count_nonzero(selected) < min_points:
        return None
    return box_from_points(world[selected])


def _inner_range(length: int, shrink: float) -> tuple[int, int]:
    """Return the [start, stop) of the middle part of `length` pixels, never empty."""
    start = int(length * shrink)
    return start, max(start + 1, int(math.ceil(length * (1.0 - shrink))))


def _dominant_depth_range(z: np.ndarray, bin_m: float, min_bin_fraction: float) -> tuple[float, float]:
    """Return the depth range of the run of well-filled histogram bins holding the most pixels."""
    z_min = float(z.min())
    n_bins = max(1, int(math.ceil((float(z.max()) - z_min) / bin_m)))
    edges = z_min + bin_m * np.arange(n_bins + 1)
    counts, _ = np.histogram(z, bins=edges)
    filled = np.concatenate(([False], counts >= min_bin_fraction * counts.max(), [False]))
    changes = np.flatnonzero(filled[1:] != filled[:-1])
    starts, stops = changes[::2], changes[1::2]
    cumulative = np.concatenate(([0], np.cumsum(counts)))
    # argmax takes the first of equal runs: the nearer one, which occludes the other.
    best = int(np.argmax(cumulative[stops] - cumulative[starts]))
    return float(edges[starts[best]]), float(edges[stops[best]])


def _clean_prompts(prompts: Sequence[str]) -> list[str]:
    """Return the non-blank prompts, stripped, without repeats, in their first order."""
    if isinstance(prompts, str):
        raise TypeError(f"prompts must be a sequence of strings, not the string {prompts!r}")
    prompts = list(prompts)
    if not all(isinstance(p, str) for p in prompts):
        raise TypeError(f"prompts must be a sequence of strings, got {prompts!r}")
    return list(dict.fromkeys(p.strip() for p in prompts if p.strip()))


def _frame_has_pixels(frame: CameraFrame) -> bool:
    """Return whether the frame has pixels to look at; raise ValueError when its parts disagree."""
    rgb, depth = np.asarray(frame.rgb), np.asarray(frame.depth)
    if rgb.size == 0 or depth.size == 0:
        return False
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be an (H, W, 3) uint8 image, got shape {rgb.shape} and dtype {rgb.dtype}")
    if depth.ndim != 2:
        raise ValueError(f"depth must be an (H, W) image, got shape {depth.shape}")
    if rgb.shape[:2] != depth.shape:
        raise ValueError(f"rgb ({rgb.shape[1]}x{rgb.shape[0]}) and depth ({depth.shape[1]}x{depth.shape[0]}) "
                         "differ in size (width x height); depth must be registered to colour")
    k = frame.intrinsics
    if depth.shape != (k.height, k.width):
        raise ValueError(f"images are {depth.shape[1]}x{depth.shape[0]} but the intrinsics are {k.width}x{k.height}")
    return True


def _resolve_device_dtype(device: str, dtype: str) -> tuple[torch.device, torch.dtype]:
    """Return the torch device and dtype that "auto" or explicit names stand for."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resolved = torch.device(device)
    if dtype == "auto":
        # Half precision roughly halves GPU latency with no loss that matters for detection; CPUs
        # lack fast fp16 kernels.
        return resolved, torch.float16 if resolved.type == "cuda" else torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be 'auto' or one of {', '.join(_DTYPES)}, got {dtype!r}")
    return resolved, getattr(torch, dtype)


def _image_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """Return the image as a (1, 3, H, W) float32 tensor of 0-255 values on `device`."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(2, 0, 1).unsqueeze(0).float()


def _gaussian_blur(image: torch.Tensor, sigma_y: float, sigma_x: float) -> torch.Tensor:
    """Blur an (N, C, H, W) image with a Gaussian as torchvision's gaussian_blur (reflect borders)."""
    import torch
    import torch.nn.functional as F

    channels = image.shape[1]
    for sigma, shape in ((sigma_y, (-1, 1)), (sigma_x, (1, -1))):
        radius = int(math.ceil(3.0 * sigma))
        offsets = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
        kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
        kernel = (kernel / kernel.sum()).view(1, 1, *shape).expand(channels, 1, *shape)
        padding = (0, 0, radius, radius) if shape[0] == -1 else (radius, radius, 0, 0)
        image = F.conv2d(F.pad(image, padding, mode="reflect"), kernel, groups=channels)
    return image


def _normalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Return (image - mean) / std per channel."""
    import torch

    mean_t = torch.tensor(mean, dtype=image.dtype, device=image.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=image.dtype, device=image.device).view(1, -1, 1, 1)
    return (image - mean_t) / std_t


@dataclass(frozen=True)
class _ImageSettings:
    """What a checkpoint's image processor does to a picture, from its saved settings.

    Attributes:
        rescale: Factor from 0-255 values to the model's range (1 without rescaling).
        mean: Per-channel mean subtracted after rescaling (zeros without normalising).
        std: Per-channel divisor after subtracting the mean (ones without normalising).
        pad: Whether the image is padded (OWLv2: to a square, at the bottom and right).
        size: Target size: height and width, or shortest_edge and longest_edge.
    """

    rescale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pad: bool
    size: dict[str, int]

    @classmethod
    def load(cls, model_dir: Path, mean: Sequence[float], std: Sequence[float],
             size: dict[str, int]) -> _ImageSettings:
        """Read preprocessor_config.json (or processor_config.json) with these defaults for absent keys."""
        from transformers.image_processing_base import ImageProcessingMixin

        saved, _ = ImageProcessingMixin.get_image_processor_dict(str(model_dir), local_files_only=True)
        normalize = saved.get("do_normalize", True)
        return cls(
            rescale=float(saved.get("rescale_factor", 1.0 / 255.0)) if saved.get("do_rescale", True) else 1.0,
            mean=tuple(saved.get("image_mean", mean)) if normalize else (0.0, 0.0, 0.0),
            std=tuple(saved.get("image_std", std)) if normalize else (1.0, 1.0, 1.0),
            pad=bool(saved.get("do_pad", True)),
            size=dict(saved.get("size", size)),
        )


def _grounding_dino_input_shape(height: int, width: int, size: dict[str, int]) -> tuple[int, int]:
    """Return the model input (height, width) of an image, as GroundingDinoImageProcessor resizes it.

    `size` holds height and width, or shortest_edge and longest_edge: the short side is scaled to
    shortest_edge unless that makes the long side exceed longest_edge.
    """
    if "height" in size:
        return int(size["height"]), int(size["width"])
    shortest, longest = int(size["shortest_edge"]), int(size["longest_edge"])
    short_side, long_side = min(height, width), max(height, width)
    raw = None
    if long_side / short_side * shortest > longest:
        raw = longest * short_side / long_side
        shortest = int(round(raw))
    if short_side == shortest:
        return height, width
    # Rounded as the processor does (get_size_with_aspect_ratio), to give the same input size.
    base = raw if raw is not None else shortest
    if width < height:
        return int(base * height / width), shortest
    return shortest, int(base * width / height)


class _OpenVocabDetector(abc.ABC):
    """Shared detect(): a model's 2D boxes, thresholded, suppressed across prompts, lifted to 3D."""

    name: str

    def __init__(self, model_dir: str | Path, device: str, dtype: str, score_threshold: float,
                 nms_iou: float, max_detections: int, box_shrink: float, min_points: int) -> None:
        self.model_dir = Path(model_dir)
        if not self.model_dir.is_dir():
            raise FileNotFoundError(f"{self.name}: model directory {self.model_dir} does not exist")
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if not 0.0 < nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {nms_iou}")
        if max_detections < 1:
            raise ValueError(f"max_detections must be >= 1, got {max_detections}")
        if not 0.0 <= box_shrink < 0.5:
            raise ValueError(f"box_shrink must be in [0, 0.5), got {box_shrink}")
        if min_points < 1:
            raise ValueError(f"min_points must be >= 1, got {min_points}")
        self.device, self.dtype = _resolve_device_dtype(device, dtype)
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.max_detections = int(max_detections)
        self.box_shrink = float(box_shrink)
        self.min_points = int(min_points)

    def detect(self, frame: CameraFrame, prompts: Sequence[str] = ()) -> list[Detection]:
        """Return the objects named by `prompts` found in `frame`, best score first.

        Args:
            frame: RGB-D frame with intrinsics and camera pose.
            prompts: Object names to look for ("mug", "red cube"); each detection's label is one.

        Returns:
            At most `max_detections` detections whose boxes overlap by no more than `nms_iou`,
            whatever prompt they match. Boxes without valid depth are left out.

        Raises:
            ValueError: if the frame's images or intrinsics disagree in size, or rgb is not uint8.
            TypeError: if `prompts` is a single string or holds something other than strings.
        """
        labels = _clean_prompts(prompts)
        if not labels or not _frame_has_pixels(frame):
            return []
        depth = np.asarray(frame.depth)
        if not np.any(np.isfinite(depth) & (depth > 0.0)):
            return []  # nothing could be lifted: spare the model a pass
        height, width = depth.shape
        boxes, scores, prompt_index = self.predict_boxes(np.asarray(frame.rgb), labels)
        # Half precision can overflow to inf or NaN: such boxes are dropped, never cast to pixels.
        finite = np.isfinite(scores) & np.all(np.isfinite(boxes), axis=1)
        boxes = np.where(finite[:, None], boxes, 0.0)
        # Whole pixels, so that NMS judges exactly the boxes the detections report.
        rois = np.column_stack((
            np.clip(np.floor(boxes[:, 0]), 0, width), np.clip(np.floor(boxes[:, 1]), 0, height),
            np.clip(np.ceil(boxes[:, 2]), 0, width), np.clip(np.ceil(boxes[:, 3]), 0, height),
        )).astype(np.int64)
        candidates = np.flatnonzero(finite & (scores >= self.score_threshold)
                                    & (rois[:, 2] > rois[:, 0]) & (rois[:, 3] > rois[:, 1]))
        kept = candidates[non_max_suppression(rois[candidates], scores[candidates], self.nms_iou,
                                              self.max_detections)]
        detections = []
        for i in kept:
            x0, y0, x1, y1 = (int(v) for v in rois[i])
            bbox = (x0, y0, x1 - x0, y1 - y0)
            lifted = lift_box(frame, bbox, shrink=self.box_shrink, min_points=self.min_points)
            if lifted is None:
                continue
            centre, size, yaw = lifted
            label = labels[int(prompt_index[i])]
            detections.append(Detection(label=label, category=label, attributes=(size_class(size),),
                                        score=float(scores[i]), bbox=bbox, position=centre, size=size,
                                        yaw=float(yaw), color=None))
        return detections

    @abc.abstractmethod
    def predict_boxes(self, rgb: np.ndarray, prompts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return every 2D box the model proposes in one image, unthresholded and unsuppressed.

        Args:
            rgb: (H, W, 3) uint8 image.
            prompts: Non-empty list of object names.

        Returns:
            (N, 4) float boxes (x0, y0, x1, y1) in pixels of `rgb`, (N,) scores in [0, 1], and (N,)
            indices into `prompts` of what each box shows.
        """


class Owlv2Detector(_OpenVocabDetector):
    """OWLv2 (google/owlv2-*): one box per image patch, scored against each prompt's text embedding."""

    name = "owlv2"

    def __init__(self, model_dir: str | Path, device: str = "auto", dtype: str = "auto",
                 score_threshold: float = 0.1, nms_iou: float = 0.5, max_detections: int = 50,
                 box_shrink: float = 0.1, min_points: int = 10) -> None:
        """Load the model, tokenizer and image settings from a local checkpoint directory.

        Args:
            model_dir: Directory written by ``save_pretrained`` (model and processor).
            device: "auto" (CUDA when available, else CPU) or a torch device name.
            dtype: "auto" (float16 on CUDA, float32 on CPU), "float32", "float16" or "bfloat16".
            score_threshold: Boxes scoring below this are dropped (OWLv2's usual 0.1).
            nms_iou: Overlap above which the lower-scoring of two boxes is dropped, across prompts.
            max_detections: Most detections returned per frame.
            box_shrink: Fraction cut from each side of a box to find its object's depth.
            min_points: Fewest depth pixels that make an object.

        Raises:
            FileNotFoundError: if `model_dir` is not a directory.
            ValueError: on a parameter out of range.
        """
        super().__init__(model_dir, device, dtype, score_threshold, nms_iou, max_detections, box_shrink,
                         min_points)
        from transformers import AutoTokenizer, Owlv2ForObjectDetection

        self._model = Owlv2ForObjectDetection.from_pretrained(self.model_dir, dtype=self.dtype,
                                                              local_files_only=True).to(self.device).eval()
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self._image = _ImageSettings.load(self.model_dir, _CLIP_MEAN, _CLIP_STD, {"height": 960, "width": 960})
        # The patch grid and its box priors are built for one input size: the model's, not the
        # processor's, decides it.
        self._input_size = int(self._model.config.vision_config.image_size)
        self._max_text_tokens = int(self._model.config.text_config.max_position_embeddings)

    def _pixels(self, rgb: np.ndarray) -> torch.Tensor:
        """Preprocess as Owlv2ImageProcessor: pad to a square, anti-alias, resize, normalise."""
        import torch.nn.functional as F

        image = _image_tensor(rgb, self.device) * self._image.rescale
        height, width = image.shape[-2:]
        if self._image.pad:
            # Padding at the bottom and right keeps boxes relative to the top-left corner.
            side = max(height, width)
            image = F.pad(image, (0, side - width, 0, side - height))
        factor_y = image.shape[-2] / self._input_size
        factor_x = image.shape[-1] / self._input_size
        # As the processor (after skimage): blur against aliasing only when shrinking along both axes.
        if factor_y > 1.0 and factor_x > 1.0:
            image = _gaussian_blur(image, (factor_y - 1.0) / 2.0, (factor_x - 1.0) / 2.0)
        image = F.interpolate(image, size=(self._input_size, self._input_size), mode="bilinear",
                              align_corners=False, antialias=False)
        return _normalize(image, self._image.mean, self._image.std).to(self.dtype)

    def predict_boxes(self, rgb: np.ndarray, prompts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score every patch box against every prompt; keep each box's best prompt."""
        import torch

        text = self._tokenizer(prompts, padding="max_length", truncation=True, max_length=self._max_text_tokens,
                               return_tensors="pt").to(self.device)
        with torch.inference_mode():
            outputs = self._model(input_ids=text["input_ids"], attention_mask=text["attention_mask"],
                                  pixel_values=self._pixels(rgb))
            best = outputs.logits[0].float().max(dim=-1)
            scores = torch.sigmoid(best.values)
            cx, cy, w, h = outputs.pred_boxes[0].float().unbind(-1)
            height, width = rgb.shape[:2]
            # Boxes are relative to the padded square (or to the stretched image without padding).
            scale_x, scale_y = (max(height, width),) * 2 if self._image.pad else (width, height)
            boxes = torch.stack(((cx - w / 2) * scale_x, (cy - h / 2) * scale_y,
                                 (cx + w / 2) * scale_x, (cy + h / 2) * scale_y), dim=-1)
        return boxes.cpu().numpy(), scores.cpu().numpy(), best.indices.cpu().numpy()


class GroundingDinoDetector(_OpenVocabDetector):
    """Grounding DINO (IDEA-Research/grounding-dino-*): query boxes scored against prompt tokens."""

    name = "grounding_dino"

    def __init__(self, model_dir: str | Path, device: str = "auto", dtype: str = "auto",
                 score_threshold: float = 0.3, nms_iou: float = 0.5, max_detections: int = 50,
                 box_shrink: float = 0.1, min_points: int = 10) -> None:
        """Load the model, tokenizer and image settings from a local checkpoint directory.

        Args:
            model_dir: Directory written by ``save_pretrained`` (model and processor).
            device: "auto" (CUDA when available, else CPU) or a torch device name.
            dtype: "auto" (float16 on CUDA, float32 on CPU), "float32", "float16" or "bfloat16".
            score_threshold: Boxes scoring below this are dropped (Grounding DINO's box threshold).
            nms_iou: Overlap above which the lower-scoring of two boxes is dropped, across prompts.
            max_detections: Most detections returned per frame.
            box_shrink: Fraction cut from each side of a box to find its object's depth.
            min_points: Fewest depth pixels that make an object.

        Raises:
            FileNotFoundError: if `model_dir` is not a directory.
            ValueError: on a parameter out of range or image settings without a usable size.
        """
        super().__init__(model_dir, device, dtype, score_threshold, nms_iou, max_detections, box_shrink,
                         min_points)
        from transformers import AutoTokenizer, GroundingDinoForObjectDetection

        self._model = GroundingDinoForObjectDetection.from_pretrained(
            self.model_dir, dtype=self.dtype, local_files_only=True).to(self.device).eval()
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self._image = _ImageSettings.load(self.model_dir, _IMAGENET_MEAN, _IMAGENET_STD,
                                          {"shortest_edge": 800, "longest_edge": 1333})
        size = self._image.size
        if not ({"shortest_edge", "longest_edge"} <= size.keys() or {"height", "width"} <= size.keys()):
            raise ValueError(f"{self.model_dir}: image size {size} needs shortest_edge and longest_edge, "
                             "or height and width")
        self._max_text_tokens = int(self._model.config.max_text_len)
        self._unsearched: set[str] = set()

    def _pixels(self, rgb: np.ndarray) -> torch.Tensor:
        """Preprocess as GroundingDinoImageProcessor: resize keeping the aspect ratio, normalise."""
        import torch.nn.functional as F

        image = _image_tensor(rgb, self.device) * self._image.rescale
        size = _grounding_dino_input_shape(*rgb.shape[:2], self._image.size)
        if size != tuple(image.shape[-2:]):
            image = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)
        # A single image needs no padding: its pixel mask is all ones.
        return _normalize(image, self._image.mean, self._image.std).to(self.dtype)

    def _encode_prompts(self, prompts: list[str]) -> tuple[dict[str, torch.Tensor], np.ndarray]:
        """Tokenize the prompts as one "a. b." caption; return the inputs and each token's prompt (-1: none)."""
        # "." and "?" delimit phrases inside the model; inside a prompt they would split it.
        phrases = [" ".join(p.lower().replace(".", " ").replace("?", " ").split()) for p in prompts]
        spans, caption = [], ""
        for phrase in phrases:
            spans.append((len(caption), len(caption) + len(phrase)))
            caption += phrase + ". "
        encoding = self._tokenizer(caption.strip(), return_tensors="pt", return_offsets_mapping=True,
                                   return_token_type_ids=True, truncation=True, max_length=self._max_text_tokens)
        offsets = encoding.pop("offset_mapping")[0].numpy()
        token_prompt = np.full(len(offsets), -1, dtype=np.int64)
        for index, (start, stop) in enumerate(spans):
            token_prompt[(offsets[:, 0] >= start) & (offsets[:, 1] <= stop) & (offsets[:, 1] > offsets[:, 0])] = index
        missing = [p for i, p in enumerate(prompts) if not np.any(token_prompt == i) and p not in self._unsearched]
        if missing:
            # Once per prompt: the same prompts come with every frame.
            self._unsearched.update(missing)
            _LOG.warning("%s: prompts with no tokens within the %d-token text limit are not searched: %s",
                         self.name, self._max_text_tokens, missing)
        return dict(encoding), token_prompt

    def predict_boxes(self, rgb: np.ndarray, prompts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score every query box against each prompt's tokens; keep each box's best prompt."""
        import torch

        encoding, token_prompt = self._encode_prompts(prompts)
        pixels = self._pixels(rgb)
        pixel_mask = torch.ones((1, *pixels.shape[-2:]), dtype=torch.long, device=self.device)
        with torch.inference_mode():
            outputs = self._model(pixel_values=pixels, pixel_mask=pixel_mask,
                                  **{name: value.to(self.device) for name, value in encoding.items()})
            token_probs = torch.sigmoid(outputs.logits[0, :, :len(token_prompt)].float())  # (queries, tokens)
            membership = torch.from_numpy(token_prompt[:, None] == np.arange(len(prompts))[None, :])
            # A prompt scores as its best token (multi-token names light up unevenly); probabilities
            # are >= 0, so zeroing the other prompts' tokens leaves each prompt's maximum.
            prompt_probs = (token_probs.unsqueeze(-1) * membership.to(self.device, torch.float32)).amax(dim=1)
            best = prompt_probs.max(dim=-1)
            cx, cy, w, h = outputs.pred_boxes[0].float().unbind(-1)
            height, width = rgb.shape[:2]
            # Boxes are relative to the image itself (padding, if any, is excluded).
            boxes = torch.stack(((cx - w / 2) * width, (cy - h / 2) * height,
                                 (cx + w / 2) * width, (cy + h / 2) * height), dim=-1)
        return boxes.cpu().numpy(), best.values.cpu().numpy(), best.indices.cpu().numpy()
