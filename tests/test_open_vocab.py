"""Open-vocabulary detectors: 2D boxes lifted to 3D, NMS, and the full detect() path through tiny models.

The models are built from configs with random weights, saved with save_pretrained to a temporary
directory and loaded back through the detectors' own from_pretrained path: no download, no real
weights. Random weights make random boxes, so the detector tests check form, not accuracy; the
lifting tests use ray-traced depth of known scenes.
"""

import itertools
import json
import logging
import math
import subprocess
import sys

import numpy as np
import pytest

from modular_robot.core.camera import PinholeIntrinsics, depth_to_points, project
from modular_robot.core.perception.geometry import size_class
from modular_robot.core.perception.open_vocab import _grounding_dino_input_shape, lift_box, non_max_suppression
from modular_robot.core.perception.registry import DETECTOR_NAMES, create_detector
from modular_robot.core.perception.types import CameraFrame, Capsule
from modular_robot.core.transforms import Transform, quat_from_rpy, quat_to_matrix

PROMPTS = ["red cube", "blue ball", "mug"]
NMS_IOU = 0.5
INTRINSICS = PinholeIntrinsics(width=160, height=120, fx=140.0, fy=140.0, cx=79.5, cy=59.5)
# Optical axes (x right, y down, z forward) of a camera looking along world +x.
_LOOK_ALONG_X = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def _camera_pose(position, pitch_down: float = 0.0) -> Transform:
    rotation = quat_to_matrix(quat_from_rpy(0.0, pitch_down, 0.0)) @ _LOOK_ALONG_X
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = position
    return Transform.from_matrix(matrix)


def _render(pose: Transform, planes=(), boxes=(), spheres=(), noise_m=0.0, seed=0, k=INTRINSICS):
    """Ray-trace depth (NaN where nothing is hit) and a flat colour per surface."""
    us, vs = np.meshgrid(np.arange(k.width), np.arange(k.height))
    # Rays with optical z = 1, so the hit distance along a ray is the depth.
    rays = np.stack(((us - k.cx) / k.fx, (vs - k.cy) / k.fy, np.ones(us.shape)), axis=-1)
    d = rays @ quat_to_matrix(pose.rotation).T
    o = pose.translation
    hits = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for normal, offset in planes:
            hits.append((offset - np.dot(normal, o)) / (d @ np.asarray(normal)))
        for lo, hi in boxes:
            t0, t1 = (np.asarray(lo) - o) / d, (np.asarray(hi) - o) / d
            near, far = np.minimum(t0, t1).max(axis=-1), np.maximum(t0, t1).min(axis=-1)
            hits.append(np.where(far >= near, near, np.inf))
        for centre, radius in spheres:
            oc = o - np.asarray(centre)
            a, b, c = (d * d).sum(-1), 2 * (d @ oc), oc @ oc - radius**2
            disc = b * b - 4 * a * c
            hits.append(np.where(disc >= 0, (-b - np.sqrt(np.clip(disc, 0, None))) / (2 * a), np.inf))
    t = np.stack(hits)
    t[~(t > 0)] = np.inf
    surface = t.argmin(axis=0)
    depth = t.min(axis=0)
    depth = np.where(np.isfinite(depth), depth, np.nan)
    depth += np.random.default_rng(seed).normal(0.0, noise_m, depth.shape) if noise_m else 0.0
    palette = np.array([(128, 128, 128), (140, 100, 60), (200, 30, 30), (30, 60, 200), (30, 200, 60)], np.uint8)
    rgb = palette[surface % len(palette)]
    return CameraFrame(rgb=rgb, depth=depth.astype(np.float32), intrinsics=k, world_from_camera=pose)


def _tabletop_frame() -> CameraFrame:
    """Render a cube and a ball on a table before a wall, seen from 0.5 m up, tilted 20 degrees down."""
    return _render(
        _camera_pose((0.0, 0.0, 0.5), math.radians(20)),
        planes=[((1.0, 0.0, 0.0), 2.0), ((0.0, 0.0, 1.0), 0.0)],
        boxes=[((0.95, 0.05, 0.0), (1.05, 0.15, 0.1))],
        spheres=[((1.1, -0.2, 0.08), 0.08)],
        noise_m=0.001,
    )


# Thin panel 1 m ahead (x 1.00-1.01, y -0.10-0.10, z 0.40-0.55) before a wall 1.5 m ahead.
PANEL_LO, PANEL_HI = np.array([1.0, -0.1, 0.4]), np.array([1.01, 0.1, 0.55])


def _panel_frame(k: PinholeIntrinsics = INTRINSICS) -> CameraFrame:
    return _render(_camera_pose((0.0, 0.0, 0.5)), planes=[((1.0, 0.0, 0.0), 1.5)], boxes=[(PANEL_LO, PANEL_HI)], k=k)


def _panel_bbox(frame: CameraFrame, margin: float) -> tuple[int, int, int, int]:
    """Return the panel's image box, grown by `margin` of its size on each side."""
    corners = np.array(list(itertools.product(*zip(PANEL_LO, PANEL_HI, strict=True))))
    u, v = project(frame.world_from_camera.inverse().apply(corners), frame.intrinsics)
    x0, x1, y0, y1 = u.min(), u.max(), v.min(), v.max()
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    x0, y0 = int(math.floor(x0 - dx)), int(math.floor(y0 - dy))
    return x0, y0, int(math.ceil(x1 + dx)) - x0, int(math.ceil(y1 + dy)) - y0


# --- lifting and NMS, no model ---------------------------------------------------------------------

def test_lifted_centre_stays_on_object_in_a_loose_box_before_a_wall():
    frame = _panel_frame()
    bbox = _panel_bbox(frame, margin=0.25)
    x, y, w, h = bbox
    box_depth = frame.depth[y:y + h, x:x + w]
    assert np.mean(box_depth > 1.4) > 0.25  # the box holds plenty of wall
    centre, size, _ = lift_box(frame, bbox)
    assert np.linalg.norm(centre - (PANEL_LO + PANEL_HI) / 2) < 0.01
    assert size[2] == pytest.approx(0.15, abs=0.01)
    assert size[0] == pytest.approx(0.20, abs=0.01)


def test_tight_box_keeps_the_object_full_extent():
    frame = _panel_frame()
    centre, size, _ = lift_box(frame, _panel_bbox(frame, margin=0.0))
    assert np.linalg.norm(centre - (PANEL_LO + PANEL_HI) / 2) < 0.01
    np.testing.assert_allclose(np.sort(size)[::-1], [0.20, 0.15, 0.01], atol=0.01)


def test_large_box_is_sampled_without_losing_the_object():
    frame = _panel_frame(PinholeIntrinsics(width=640, height=480, fx=560.0, fy=560.0, cx=319.5, cy=239.5))
    bbox = _panel_bbox(frame, margin=0.25)
    assert bbox[2] * bbox[3] > 20_000  # sampled every other pixel or coarser
    centre, size, _ = lift_box(frame, bbox)
    assert np.linalg.norm(centre - (PANEL_LO + PANEL_HI) / 2) < 0.01
    np.testing.assert_allclose(np.sort(size)[::-1], [0.20, 0.15, 0.01], atol=0.01)


def test_box_without_valid_depth_lifts_to_nothing():
    frame = _panel_frame()
    frame.depth[:] = np.nan
    assert lift_box(frame, _panel_bbox(frame, margin=0.1)) is None
    assert lift_box(_panel_frame(), (500, 500, 10, 10)) is None  # outside the image


def test_points_on_the_robot_are_not_the_object():
    frame = _panel_frame()
    frame.robot_capsules = (Capsule(start=np.array([1.005, -0.2, 0.475]), end=np.array([1.005, 0.2, 0.475]),
                                    radius=0.12),)
    centre, _, _ = lift_box(frame, _panel_bbox(frame, margin=0.25))
    assert centre[0] == pytest.approx(1.5, abs=0.01)  # only the wall behind the gripper is left


def test_nms_keeps_the_best_of_overlapping_boxes_in_score_order():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]])
    scores = np.array([0.5, 0.9, 0.4, 0.3])
    assert non_max_suppression(boxes, scores, 0.5).tolist() == [1, 2]
    assert non_max_suppression(boxes, scores, 0.5, max_kept=1).tolist() == [1]
    assert non_max_suppression(boxes, scores, 1.0).tolist() == [1, 0, 2, 3]
    assert non_max_suppression(np.zeros((0, 4)), np.zeros(0), 0.5).size == 0


# --- tiny random-weight checkpoints --------------------------------------------------------------

def _write_image_settings(directory, settings: dict) -> None:
    # The checkpoints' processor settings file, as the hub's has it: the image processor classes
    # themselves need torchvision or Pillow, which the project does not install.
    (directory / "preprocessor_config.json").write_text(json.dumps(settings))


@pytest.fixture(scope="session")
def owlv2_dir(tmp_path_factory):
    import torch
    from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    directory = tmp_path_factory.mktemp("owlv2")
    # Byte-level symbols alone and at word ends, no merges. "!" (id 0) pads: OWLv2 treats a query
    # whose first id is 0 as padding. End-of-text has the highest id: the text tower pools there.
    symbols = list(bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols)} | {s + "</w>": 256 + i for i, s in enumerate(symbols)}
    vocab |= {"<|startoftext|>": 512, "<|endoftext|>": 513}
    CLIPTokenizer(vocab=vocab, merges=[], pad_token="!", model_max_length=16).save_pretrained(directory)
    config = Owlv2Config(
        text_config=dict(vocab_size=514, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16, pad_token_id=0, bos_token_id=512,
                         eos_token_id=513),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=96, patch_size=16),
        projection_dim=32,
    )
    torch.manual_seed(0)
    Owlv2ForObjectDetection(config).save_pretrained(directory)
    _write_image_settings(directory, {
        "image_processor_type": "Owlv2ImageProcessor", "do_resize": True, "size": {"height": 96, "width": 96},
        "do_pad": True, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    })
    return directory


@pytest.fixture(scope="session")
def grounding_dino_dir(tmp_path_factory):
    import torch
    from transformers import BertConfig, BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection, SwinConfig

    directory = tmp_path_factory.mktemp("grounding_dino")
    # Grounding DINO hard-codes BERT's ids of [CLS], [SEP], "." and "?" (101, 102, 1012, 1029).
    letters = "abcdefghijklmnopqrstuvwxyz"
    pieces = [*letters, *("##" + c for c in letters), "red", "cube", "blue", "ball", "mug"]
    named = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103, ".": 1012, "?": 1029}
    named |= {piece: 200 + i for i, piece in enumerate(pieces)}
    taken = set(named.values())
    vocab = named | {f"[unused{i}]": i for i in range(1100) if i not in taken}
    BertTokenizer(vocab=vocab).save_pretrained(directory)
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1],
                                   num_heads=[1, 1, 1, 1], window_size=4, out_indices=[2, 3, 4]),
        text_config=BertConfig(vocab_size=1100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32, max_position_embeddings=64),
        # d_model must be a multiple of 32 (GroupNorm), and box heads are shared across >= 2 decoder layers.
        num_queries=30, encoder_layers=1, decoder_layers=2, d_model=32, encoder_ffn_dim=32, decoder_ffn_dim=32,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_n_points=1, decoder_n_points=1,
        max_text_len=32,
    )
    torch.manual_seed(0)
    GroundingDinoForObjectDetection(config).save_pretrained(directory)
    _write_image_settings(directory, {
        "image_processor_type": "GroundingDinoImageProcessor", "do_resize": True,
        "size": {"shortest_edge": 64, "longest_edge": 96}, "do_pad": True, "do_rescale": True,
        "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
    })
    return directory


@pytest.fixture(scope="session", params=["owlv2", "grounding_dino"])
def detector(request):
    model_dir = request.getfixturevalue(f"{request.param}_dir")
    return create_detector(request.param, model_dir=model_dir, device="cpu", score_threshold=0.0, nms_iou=NMS_IOU)


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


# --- full detect() path --------------------------------------------------------------------------

def test_detections_are_well_formed(detector):
    frame = _tabletop_frame()
    world = frame.world_from_camera.apply(depth_to_points(frame.depth, INTRINSICS).astype(np.float64))
    lo, hi = world.min(axis=0) - 1e-6, world.max(axis=0) + 1e-6

    detections = detector.detect(frame, PROMPTS)

    assert detections, "score_threshold 0 keeps every box; some must have depth"
    assert len(detections) <= detector.max_detections
    for det in detections:
        assert det.label in PROMPTS and det.category == det.label
        assert det.attributes == (size_class(det.size),)
        assert 0.0 <= det.score <= 1.0
        x, y, w, h = det.bbox
        assert all(isinstance(v, int) for v in det.bbox)
        assert x >= 0 and y >= 0 and w > 0 and h > 0
        assert x + w <= INTRINSICS.width and y + h <= INTRINSICS.height
        assert np.all(np.isfinite(det.position)) and np.all((det.position >= lo) & (det.position <= hi))
        assert np.all(det.size > 0) and math.isfinite(det.yaw)
        assert det.color is None
    scores = [det.score for det in detections]
    assert scores == sorted(scores, reverse=True)
    for a, b in itertools.combinations(detections, 2):
        assert _iou(a.bbox, b.bbox) <= NMS_IOU, (a, b)


def test_bad_input_gives_no_detections_or_a_clear_error(detector):
    frame = _tabletop_frame()
    assert detector.detect(frame, []) == []
    assert detector.detect(frame, ["  ", ""]) == []
    empty = CameraFrame(rgb=np.zeros((0, 0, 3), np.uint8), depth=np.zeros((0, 0), np.float32),
                        intrinsics=INTRINSICS, world_from_camera=frame.world_from_camera)
    assert detector.detect(empty, PROMPTS) == []
    no_depth = _tabletop_frame()
    no_depth.depth[:] = np.nan
    assert detector.detect(no_depth, PROMPTS) == []
    small_rgb = CameraFrame(rgb=frame.rgb[:60, :80], depth=frame.depth, intrinsics=INTRINSICS,
                            world_from_camera=frame.world_from_camera)
    with pytest.raises(ValueError, match="differ in size"):
        detector.detect(small_rgb, PROMPTS)
    other_camera = PinholeIntrinsics(width=320, height=240, fx=280.0, fy=280.0, cx=159.5, cy=119.5)
    with pytest.raises(ValueError, match="intrinsics"):
        detector.detect(CameraFrame(frame.rgb, frame.depth, other_camera, frame.world_from_camera), PROMPTS)
    with pytest.raises(TypeError, match="sequence of strings"):
        detector.detect(frame, "mug")
    with pytest.raises(TypeError, match="sequence of strings"):
        detector.detect(frame, ["mug", None])


def test_float16_inference_runs(owlv2_dir, grounding_dino_dir):
    # The GPU default is fp16; running it on the CPU here catches dtype mismatches without a GPU.
    frame = _tabletop_frame()
    for name, model_dir in (("owlv2", owlv2_dir), ("grounding_dino", grounding_dino_dir)):
        detector = create_detector(name, model_dir=model_dir, device="cpu", dtype="float16", score_threshold=0.0)
        detections = detector.detect(frame, PROMPTS)
        assert detections and all(np.all(np.isfinite(d.position)) for d in detections)


def test_grounding_dino_warns_once_about_prompts_past_its_text_limit(grounding_dino_dir, caplog):
    detector = create_detector("grounding_dino", model_dir=grounding_dino_dir, device="cpu", score_threshold=0.0)
    prompts = [f"mug {letter}" for letter in "abcdefghijklmnop"]  # 3 tokens each with the "."; the limit is 32
    frame = _tabletop_frame()
    with caplog.at_level(logging.WARNING, logger="modular_robot.core.perception.open_vocab"):
        detections = detector.detect(frame, prompts)
        detector.detect(frame, prompts)
    warnings = [record for record in caplog.records if "not searched" in record.getMessage()]
    assert len(warnings) == 1 and "mug p" in warnings[0].getMessage() and "mug a" not in warnings[0].getMessage()
    assert detections and all(det.label in prompts[:11] for det in detections)


def test_grounding_dino_input_size_matches_the_processor_rule():
    from transformers.image_transforms import get_size_with_aspect_ratio

    size = {"shortest_edge": 800, "longest_edge": 1333}
    for shape in [(480, 640), (640, 480), (720, 1280), (800, 1200), (100, 1000), (1000, 100), (799, 801)]:
        assert _grounding_dino_input_shape(*shape, size) == get_size_with_aspect_ratio(shape, 800, 1333), shape
    assert _grounding_dino_input_shape(480, 640, {"height": 320, "width": 400}) == (320, 400)


# --- factory -------------------------------------------------------------------------------------

def test_factory_knows_the_detectors_and_rejects_others(owlv2_dir, tmp_path):
    assert set(DETECTOR_NAMES) >= {"geometric", "owlv2", "grounding_dino"}
    with pytest.raises(ValueError, match="geometric.*owlv2.*grounding_dino"):
        create_detector("yolo")
    detector = create_detector("owlv2", model_dir=owlv2_dir, device="cpu")
    assert detector.name == "owlv2" and str(detector.dtype) == "torch.float32"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_detector("owlv2", model_dir=tmp_path / "missing")
    with pytest.raises(ValueError, match="dtype"):
        create_detector("owlv2", model_dir=owlv2_dir, device="cpu", dtype="int8")


def test_importing_the_detectors_loads_neither_torch_nor_transformers():
    code = ("import sys, modular_robot.core.perception.registry, modular_robot.core.perception.open_vocab; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
