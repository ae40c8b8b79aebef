"""The README's first command: a sentence becomes animation on a human rig, headless.

    python -m momask_blender.demo                        # what `make demo` runs
    python -m momask_blender.demo --prompt "a person jumps" --seconds 3 --steps 10
    python -m momask_blender.demo --source ../shared/motions/humanml3d_000612.npy   # bake a file

Builds Blender's human metarig (Rigify's, made procedurally; or `--rig FILE`), generates the
prompt with the first weights it finds, bakes it onto the rig and writes `demo/out.blend`,
`demo/out.bvh` and `demo/out.png` (a strip of the rig's poses over time). Where the weights are
looked for, in order (`find_weights`):

1. the add-on's preferences (checkpoint folder and CLIP file), or the files the preferences'
   buttons installed into the extension's user folder, when the extension is installed;
2. `MOMASK_CHECKPOINTS` (the folder holding `t2m/`) with `MOMASK_CLIP` (OpenAI's ViT-B-32.pt;
   looked for next to the checkpoints and in ~/.cache/clip when not set);
3. the official download beside the checkout: `../checkpoints` with `../ViT-B-32.pt`;
4. `../shared/reference` beside the checkout (small seeded models: the motion is not real).

With none of them, small random weights are made in the official layout (in `.cache/`, outside
git) and the outputs are named `out_RANDOM_WEIGHTS_meaningless.*`: the pipeline runs end to end,
the motion means nothing. Prints a JSON summary last (weights, frames, fps, files, seconds).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model_core.settings import GenerationSettings

from .errors import MomaskError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PROMPT = "a person walks forward and waves"
RANDOM_TAG = "RANDOM_WEIGHTS_meaningless"
CLIP_NAME = "ViT-B-32.pt"
DATASETS = ("t2m", "kit")
RANDOM_CACHE = ROOT / ".cache" / "demo_random_weights"
RANDOM_VERSION = "1"

HOW_TO_INSTALL = """\
To get the released MoMask weights:
  - run the official script from https://github.com/EricGuo5513/momask-codes
    (`bash prepare/download_models.sh`): it makes checkpoints/t2m/...;
  - download OpenAI's CLIP ViT-B/32 file, ViT-B-32.pt:
    https://openaipublic.azureedge.net/clip/models/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt
  - then either  export MOMASK_CHECKPOINTS=/path/to/checkpoints MOMASK_CLIP=/path/to/ViT-B-32.pt
    or put them beside this checkout as ../checkpoints and ../ViT-B-32.pt,
    or in Blender use the add-on's preferences (Install from file / Download)."""


@dataclass
class Weights:
    """Where the model files are and where they were found."""

    checkpoints: Path
    clip: Path
    origin: str                    # preferences, MOMASK_CHECKPOINTS, beside the checkout, reference, random
    random: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def meaningful(self) -> bool:
        return not self.random and self.origin != "reference"


# ----------------------------------------------------------------------------- weight discovery (pure)


def checkpoints_ok(path: Path) -> bool:
    """A folder in the official layout: it holds t2m/ (or kit/), or is one, with model folders inside."""
    path = Path(path)
    for dataset_dir in ([path] if path.name in DATASETS else []) + [path / d for d in DATASETS]:
        if dataset_dir.is_dir() and any(dataset_dir.glob("*/opt.txt")):
            return True
    return False


def clip_candidates(checkpoints: Path, env: Mapping[str, str], home: Path | None) -> list[Path]:
    """Where CLIP may be for a checkpoint folder: MOMASK_CLIP, beside it, in ~/.cache/clip (clip.load's)."""
    base = checkpoints.parent if checkpoints.name not in DATASETS else checkpoints.parent.parent
    out = [Path(env["MOMASK_CLIP"]).expanduser()] if env.get("MOMASK_CLIP") else []
    out += [base / CLIP_NAME, base / "clip" / CLIP_NAME, checkpoints / "clip" / CLIP_NAME]
    if home is not None:
        out.append(home / ".cache" / "clip" / CLIP_NAME)
    return out


def _first_file(paths: Sequence[Path]) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def find_weights(env: Mapping[str, str], checkout: Path = ROOT, prefs: Sequence[tuple[str, str]] = (),
                 home: Path | None = None) -> Weights | None:
    """The first usable (checkpoints, CLIP) pair in the documented order, or None.

    `prefs` are (checkpoint folder, CLIP file) pairs from the add-on's preferences and from the
    extension's user folder. A `MOMASK_CHECKPOINTS` (or `MOMASK_CLIP`) that is set but wrong is an
    error, not a reason to fall through to other weights: the user asked for those files.
    """
    notes: list[str] = []
    for ckpt, clip in prefs:
        if not ckpt:
            continue
        c, k = Path(ckpt).expanduser(), Path(clip).expanduser() if clip else None
        if checkpoints_ok(c) and k is not None and k.is_file():
            return Weights(c, k, "preferences", notes=notes)
        notes.append(f"the add-on's preferences name {c} / {k or '(no CLIP file)'}, which are not complete: skipped")
    if env.get("MOMASK_CLIP") and not Path(env["MOMASK_CLIP"]).expanduser().is_file():
        raise MomaskError(f"MOMASK_CLIP={env['MOMASK_CLIP']} is not a file: point it at OpenAI's {CLIP_NAME}")
    if env.get("MOMASK_CHECKPOINTS"):
        c = Path(env["MOMASK_CHECKPOINTS"]).expanduser()
        if not checkpoints_ok(c):
            raise MomaskError(f"MOMASK_CHECKPOINTS={c} is not a checkpoint folder in the official layout "
                              "(it should hold t2m/<model folders with opt.txt>)")
        clip = _first_file(clip_candidates(c, env, home))
        if clip is None:
            raise MomaskError(f"MOMASK_CHECKPOINTS={c} is set but no {CLIP_NAME} was found: set MOMASK_CLIP")
        return Weights(c, clip, "MOMASK_CHECKPOINTS", notes=notes)
    parent = Path(checkout).resolve().parent
    for c in (parent / "checkpoints", parent / "momask-codes" / "checkpoints"):
        if checkpoints_ok(c):
            clip = _first_file(clip_candidates(c, env, home))
            if clip is not None:
                return Weights(c, clip, "beside the checkout", notes=notes)
            notes.append(f"found {c} but no {CLIP_NAME} beside it (or MOMASK_CLIP): skipped")
    ref = parent / "shared" / "reference"
    clip = _first_file([Path(env["MOMASK_CLIP"]).expanduser()] if env.get("MOMASK_CLIP") else []) \
        or _first_file([ref / "clip" / CLIP_NAME, ref / "clip" / "ViT-B-32.state_dict.pt"])
    if checkpoints_ok(ref / "checkpoints") and clip is not None:
        return Weights(ref / "checkpoints", clip, "reference", notes=notes)
    return None


# ----------------------------------------------------------------------------- random demo weights


def _standing_features(dataset: str = "t2m") -> np.ndarray:
    """One 263-d feature frame of a person standing still, arms down: the mean of the random weights."""
    from model_core.motion import joints_to_features

    from .rig.skeleton import INDEX, t_pose

    pose = t_pose()
    for side, sign in (("left", 1.0), ("right", -1.0)):  # arms down, 15° away from the body
        s = pose[INDEX[f"{side}_shoulder"]]
        down = np.array([sign * np.sin(np.radians(15)), -np.cos(np.radians(15)), 0.0])
        for joint, length in ((f"{side}_elbow", 0.257), (f"{side}_wrist", 0.266)):
            s = s + length * down
            pose[INDEX[joint]] = s
    still = np.repeat(pose[None], 3, axis=0)
    features, _ = joints_to_features(still, dataset)
    return features[0]


def make_random_weights(cache: Path | None = None, seed: int = 0) -> Weights:
    """Small random MoMask weights in the official layout (made once), and a small CLIP text tower.

    Built from model_core's own modules, saved as the official trainers save them: state dicts
    under their official entries, opt.txt files, meta/mean.npy and std.npy. The mean is a person
    standing still, so the random motion is a jittering figure rather than a collapsed point.
    """
    import torch

    from model_core.networks.length_estimator import LengthEstimator
    from model_core.networks.rvq import RVQVAE, RVQConfig
    from model_core.networks.transformer import MaskTransformer, ResidualTransformer, TransformerConfig
    from model_core.text.clip import ClipTextConfig, ClipTextEncoder

    cache = Path(cache) if cache is not None else RANDOM_CACHE
    done = cache / ".complete"
    clip_path = cache / "clip" / "RANDOM_clip_text.state_dict.pt"
    ckpt = cache / "checkpoints"
    if done.is_file() and done.read_text().strip() == RANDOM_VERSION:
        return Weights(ckpt, clip_path, "random", random=True)
    import shutil

    if cache.exists():
        shutil.rmtree(cache)
    gen = torch.Generator().manual_seed(seed)

    def random_state(module: torch.nn.Module, scale: float = 0.1) -> dict:
        return {k: torch.randn(v.shape, generator=gen) * scale for k, v in module.state_dict().items()}

    def write_opt(folder: Path, options: dict) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        lines = [f"{k}: {v}" for k, v in sorted(options.items())]
        banner, end = "------------ Options -------------", "-------------- End ----------------"
        (folder / "opt.txt").write_text("\n".join([banner, *lines, end]) + "\n")

    def save(path: Path, entry: str, state: dict, **extra) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({entry: state, **extra}, path)

    nq, nb_code, code_dim, width, latent, ff, layers, heads = 6, 64, 32, 64, 64, 128, 2, 4
    base = ckpt / "t2m"
    rvq_name = f"rvq_nq{nq}_dc{code_dim}_nc{nb_code}_noshare_qdp0.2"
    mask_name = f"t2m_nlayer{layers}_nhead{heads}_ld{latent}_ff{ff}_cdp0.1_rvq{nq}ns"
    res_name = f"tres_nlayer{layers}_ld{latent}_ff{ff}_rvq{nq}ns_cdp0.2_sw"
    write_opt(base / rvq_name, dict(
        dataset_name="t2m", name=rvq_name, code_dim=code_dim, output_emb_width=code_dim, nb_code=nb_code,
        num_quantizers=nq, width=width, depth=1, down_t=2, stride_t=2, dilation_growth_rate=2, vq_act="relu",
        vq_norm=None, shared_codebook=False, quantize_dropout_prob=0.2, mu=0.99))
    rvq = RVQVAE(RVQConfig(input_dim=263, nb_code=nb_code, code_dim=code_dim, num_quantizers=nq, width=width,
                           depth=1, down_t=2, stride_t=2, dilation_growth_rate=2))
    save(base / rvq_name / "model" / "net_best_fid.tar", "vq_model", random_state(rvq), ep=0, total_it=0)
    (base / rvq_name / "meta").mkdir()
    mean = _standing_features().astype(np.float32)
    std = np.full(263, 0.02, np.float32)
    std[:4] = 0.005  # root turn, velocity and height: a little drift, no flying
    np.save(base / rvq_name / "meta" / "mean.npy", mean)
    np.save(base / rvq_name / "meta" / "std.npy", std)
    clip_dim = 512
    for name, cls, entry, file, share in ((mask_name, MaskTransformer, "t2m_transformer", "latest.tar", False),
                                          (res_name, ResidualTransformer, "res_transformer", "net_best_fid.tar",
                                           True)):
        write_opt(base / name, dict(
            name=name, vq_name=rvq_name, dataset_name="t2m", latent_dim=latent, ff_size=ff, n_layers=layers,
            n_heads=heads, dropout=0.2, cond_drop_prob=0.1, max_motion_length=196, unit_length=4,
            share_weight=share))
        config = TransformerConfig(num_tokens=nb_code, code_dim=code_dim, latent_dim=latent, ff_size=ff,
                                   num_layers=layers, num_heads=heads, num_quantizers=nq, clip_dim=clip_dim,
                                   share_weight=share)
        save(base / name / "model" / file, entry, random_state(cls(config)), ep=0, total_it=0)
    save(base / "length_estimator" / "model" / "finest.tar", "estimator",
         random_state(LengthEstimator(clip_dim, 50)), epoch=0, niter=0)
    clip_config = ClipTextConfig(vocab_size=49408, context_length=77, width=64, layers=1, heads=1,
                                 embed_dim=clip_dim)
    clip_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: (v * 0.2).half() for k, v in random_state(ClipTextEncoder(clip_config), 1.0).items()},
               clip_path)
    (cache / "README_RANDOM_WEIGHTS.txt").write_text(
        "These are RANDOM weights made by `make demo` so that the pipeline can run without the released\n"
        "MoMask files. Motions generated with them are meaningless.\n\n" + HOW_TO_INSTALL + "\n")
    done.write_text(RANDOM_VERSION + "\n")
    return Weights(ckpt, clip_path, "random", random=True)


def banner(lines: Sequence[str]) -> str:
    bar = "!" * 78
    return "\n".join([bar, *(f"!! {line}" for line in lines), bar])


def random_warning(name: str = f"out_{RANDOM_TAG}") -> str:
    return banner(["NO MOMASK WEIGHTS FOUND: USING SMALL RANDOM WEIGHTS.",
                   "THE MOTION IS MEANINGLESS NOISE until the released weights are installed.",
                   f"Output files are named {name}.*", "",
                   *HOW_TO_INSTALL.splitlines()])


def reference_warning(w: Weights) -> str:
    return banner([f"Using the small seeded test models in {w.checkpoints.parent}:",
                   "they exercise the pipeline; THE MOTION IS NOT A REAL MOTION.", "",
                   *HOW_TO_INSTALL.splitlines()])


# ----------------------------------------------------------------------------- Blender


def preference_candidates(bpy) -> list[tuple[str, str]]:
    """(checkpoints, clip) pairs from an installed/enabled MoMask add-on: its preferences, then its user folder."""
    out: list[tuple[str, str]] = []
    for addon in bpy.context.preferences.addons:
        module = addon.module
        if module.rpartition(".")[2] not in ("momask", "momask_blender"):
            continue
        prefs = addon.preferences
        if prefs is not None and getattr(prefs, "checkpoints", ""):
            out.append((bpy.path.abspath(prefs.checkpoints), bpy.path.abspath(getattr(prefs, "clip", ""))))
        if module.startswith("bl_ext."):
            try:
                root = Path(bpy.utils.extension_path_user(module, create=False))
            except (ValueError, RuntimeError, TypeError):
                continue
            out.append((str(root / "checkpoints"), str(root / "clip" / CLIP_NAME)))
    return out


def build_metarig(bpy):
    """Blender's human metarig (Rigify's, built by its operator) in a fresh empty scene; a plain
    armature of the HumanML3D skeleton when Rigify is not available."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    try:
        import addon_utils

        addon_utils.enable("rigify", default_set=True)
        bpy.ops.object.armature_human_metarig_add()
        obj = bpy.context.object
        bpy.ops.object.mode_set(mode="OBJECT")
        return obj, "Rigify human metarig"
    except (ImportError, AttributeError, RuntimeError):
        return build_plain_rig(bpy), "plain HumanML3D-skeleton armature (Rigify unavailable)"


def build_plain_rig(bpy):
    from .rig.skeleton import JOINTS, NEXT, PARENTS, t_pose, to_blender

    pos = to_blender(t_pose())
    arm = bpy.data.armatures.new("Human")
    obj = bpy.data.objects.new("Human", arm)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    bpy.ops.object.mode_set(mode="EDIT")
    names = {0: "Hips", 3: "Spine", 6: "Spine1", 9: "Spine2", 12: "Neck", 15: "Head"}
    sides = {"left": "Left", "right": "Right"}
    parts = {"hip": "UpLeg", "knee": "Leg", "ankle": "Foot", "foot": "ToeBase", "collar": "Shoulder",
             "shoulder": "Arm", "elbow": "ForeArm", "wrist": "Hand"}
    for j, joint in enumerate(JOINTS):
        if j not in names:
            side, _, part = joint.partition("_")
            names[j] = sides[side] + parts[part]
    bones = {}
    for j in range(22):
        b = arm.edit_bones.new(names[j])
        b.head = pos[j]
        tail = pos[NEXT[j]] if j in NEXT else pos[j] + (pos[j] - pos[PARENTS[j]]) * 0.5
        b.tail = tail if np.linalg.norm(tail - pos[j]) > 1e-3 else pos[j] + np.array([0.0, 0.0, 0.1])
        bones[j] = b
    for j in range(1, 22):
        bones[j].parent = bones[PARENTS[j]]
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def sample_rig(bpy, obj, frame_offsets: Sequence[int], frame_start: int):
    """World positions of the mapped bones' heads (and the leaf bones' tails) at those frames, plus
    the segments between them and their sides: what `strip.render_strip` draws."""
    from .jobs.bake import BONE_MAP_PROPERTY
    from .rig.bone_map import map_from_json
    from .rig.skeleton import INDEX, JOINTS, PARENTS
    from .scene.strip import CENTER, LEFT, RIGHT

    bmap = map_from_json(obj[BONE_MAP_PROPERTY])
    mapped = [j for j in range(22) if JOINTS[j] in bmap]
    idx = {j: k for k, j in enumerate(mapped)}
    segments, kinds = [], []

    def side(j):
        name = JOINTS[j]
        return LEFT if name.startswith("left") else RIGHT if name.startswith("right") else CENTER

    for j in mapped:
        p = PARENTS[j]
        while p >= 0 and p not in idx:
            p = PARENTS[p]
        if p >= 0:
            segments.append((idx[p], idx[j]))
            kinds.append(side(j))
    leaves = [INDEX[n] for n in ("left_foot", "right_foot", "left_wrist", "right_wrist", "head")
              if INDEX[n] in idx]
    tails = {}
    for j in leaves:
        tails[j] = len(mapped) + len(tails)
        if JOINTS[j] != "head":
            segments.append((idx[j], tails[j]))
            kinds.append(side(j))
    scene = bpy.context.scene
    points = np.empty((len(frame_offsets), len(mapped) + len(tails), 3))
    for f, off in enumerate(frame_offsets):
        scene.frame_set(frame_start + int(off))
        mw = np.array(obj.matrix_world)
        for j in mapped:
            pb = obj.pose.bones[bmap[JOINTS[j]]]
            points[f, idx[j]] = mw[:3, :3] @ np.array(pb.head) + mw[:3, 3]
            if j in tails:
                points[f, tails[j]] = mw[:3, :3] @ np.array(pb.tail) + mw[:3, 3]
    head = None
    if INDEX["head"] in tails:
        head = (idx[INDEX["head"]], tails[INDEX["head"]])
    pairs = [(idx[INDEX[f"left_{n}"]], idx[INDEX[f"right_{n}"]]) for n in ("hip", "shoulder")
             if INDEX[f"left_{n}"] in idx and INDEX[f"right_{n}"] in idx]
    facing = None
    if pairs:
        from .scene.strip import body_facing

        facing = body_facing(points, [a for a, _ in pairs], [b for _, b in pairs])
    return points, segments, kinds, head, facing


# ----------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m momask_blender.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompt", default=DEFAULT_PROMPT)
    p.add_argument("--seconds", type=float, default=6.0, help="length of the motion (0: the model's guess)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=GenerationSettings().steps, help="remask steps (official default)")
    p.add_argument("--source", help="bake this motion (.bvh or HumanML3D .npy) instead of generating")
    p.add_argument("--rig", help="a character file to use instead of the metarig (.glb .fbx .blend .vrm ...)")
    p.add_argument("--checkpoints", help="the checkpoint folder (overrides the search)")
    p.add_argument("--clip", help="OpenAI's ViT-B-32.pt (with --checkpoints)")
    p.add_argument("--random-weights", action="store_true", help="use the random demo weights even if others exist")
    p.add_argument("--out", default=str(ROOT / "demo" / "out"),
                   help="output path without suffix: writes OUT.blend, OUT.bvh, OUT.png (default: demo/out)")
    p.add_argument("--frames", type=int, default=8, help="poses in the picture")
    p.add_argument("--fps", type=float, default=30.0, help="scene frame rate")
    p.add_argument("--device", default="cpu")
    return p


def choose_weights(args, prefs: Sequence[tuple[str, str]]) -> Weights:
    if args.random_weights:
        return make_random_weights()
    if args.checkpoints:
        c = Path(args.checkpoints).expanduser()
        clip = Path(args.clip).expanduser() if args.clip else _first_file(clip_candidates(c, os.environ, Path.home()))
        if not checkpoints_ok(c) or clip is None or not clip.is_file():
            raise MomaskError(f"--checkpoints {c} / --clip {args.clip or '(not found)'}: not a complete model")
        return Weights(c, clip, "--checkpoints")
    return find_weights(os.environ, ROOT, prefs, Path.home()) or make_random_weights()


def run(args) -> dict:
    started = time.perf_counter()
    seconds: dict[str, float] = {}

    def stage(name: str, t0: float) -> float:
        t = time.perf_counter()
        seconds[name] = round(t - t0, 3)
        return t

    import bpy  # noqa: F401  (before torch: Blender as a module)

    from . import register
    from .bake import import_rig, pick_armature
    from .scene import strip
    from .ui import operators

    t = stage("import_s", started)
    weights = None
    if not args.source:
        weights = choose_weights(args, preference_candidates(bpy))
        for note in weights.notes:
            print(f"note: {note}", file=sys.stderr)
        if weights.random:
            print(random_warning(f"{Path(args.out).name}_{RANDOM_TAG}"), file=sys.stderr, flush=True)
        elif weights.origin == "reference":
            print(reference_warning(weights), file=sys.stderr, flush=True)
        print(f"weights: {weights.origin}: {weights.checkpoints} + {weights.clip}", file=sys.stderr, flush=True)
        t = stage("find_weights_s", t)
    if args.rig:
        import_rig(bpy, Path(args.rig).expanduser().resolve())
        obj, rig_kind = pick_armature(bpy, None), Path(args.rig).name
    else:
        obj, rig_kind = build_metarig(bpy)
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = int(round(args.fps)), round(args.fps) / args.fps
    scene.frame_start = 1
    scene.frame_set(1)
    t = stage("build_rig_s", t)
    try:
        register()
    except ValueError:
        pass  # already registered in this process
    operators.last_error = ""
    kw = dict(prompt=args.prompt if not args.source else "", root_motion="full", foot_lock=True)
    if args.source:
        kw["source"] = str(Path(args.source).expanduser().resolve())
    else:
        kw.update(seconds=args.seconds or 0.0, seed=args.seed, steps=args.steps, device=args.device,
                  checkpoints=str(weights.checkpoints), clip=str(weights.clip))
    result = bpy.ops.momask.generate(**kw)
    if "FINISHED" not in result:
        raise MomaskError(operators.last_error or "the bake was cancelled")
    job, actions = operators.last_job, operators.last_actions
    for k, v in job.timings.items():
        seconds[k] = round(v, 3)
    t = time.perf_counter()
    bake = job.bakes[0]
    frame_end = job.frame_start + bake.frames - 1
    scene.frame_end = frame_end

    out = Path(args.out).expanduser()
    if not out.is_absolute():
        out = Path.cwd() / out
    if weights is not None and weights.random:
        out = out.with_name(f"{out.name}_{RANDOM_TAG}")
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {"blend": out.with_suffix(".blend"), "bvh": out.with_suffix(".bvh"), "png": out.with_suffix(".png")}

    from .rig.bvh import write_bvh

    write_bvh(str(paths["bvh"]), job.joints[0], job.source_fps if job.source is not None else 20.0)
    t = stage("export_bvh_s", t)

    offsets = strip.pick_frames(bake.frames, args.frames)
    points, segments, kinds, head, facing = sample_rig(bpy, obj, offsets, job.frame_start)
    what = f"'{args.prompt}'" if not args.source else Path(args.source).name
    if args.source:
        sub = f"baked from {Path(args.source).name} onto the {rig_kind}"
    else:
        sub = f"{weights.origin} weights, seed {args.seed}, {args.steps} steps, on the {rig_kind}"
    warning = ""
    if weights is not None and weights.random:
        warning = "RANDOM WEIGHTS: THIS MOTION IS MEANINGLESS. INSTALL THE RELEASED MOMASK WEIGHTS."
    elif weights is not None and weights.origin == "reference":
        warning = "SMALL TEST MODELS (../shared/reference): NOT A REAL MOTION."
    fps = job.options.fps
    img = strip.render_strip(points, segments, kinds,
                             labels=[f"F{job.frame_start + o}  {o / fps:.1f}S" for o in offsets], title=what,
                             subtitle=sub + f", {bake.frames} frames at {fps:g} fps; views turn with the body",
                             head=head, facing=facing, warning=warning)
    strip.write_png(paths["png"], img)
    t = stage("strip_png_s", t)
    scene.frame_set(job.frame_start)
    bpy.ops.wm.save_as_mainfile(filepath=str(paths["blend"].resolve()), check_existing=False)
    stage("save_blend_s", t)
    seconds["total_s"] = round(time.perf_counter() - started, 3)
    info = {
        "prompt": args.prompt if not args.source else None,
        "source": str(args.source) if args.source else None,
        "weights": None if weights is None else {
            "origin": weights.origin, "random": weights.random, "meaningful": weights.meaningful,
            "checkpoints": str(weights.checkpoints), "clip": str(weights.clip)},
        "rig": rig_kind,
        "armature": obj.name,
        "action": actions[0].name,
        "joints_mapped": len(job.plan.bone_map),
        "frames": bake.frames,
        "frame_range": [job.frame_start, frame_end],
        "fps": fps,
        "motion_seconds": round(bake.frames / fps, 3),
        "files": {k: str(v) for k, v in paths.items()},
        "seconds": seconds,
    }
    return info


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        info = run(args)
    except MomaskError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    w = info["weights"]
    if w is not None and w["random"]:
        print(random_warning(Path(info["files"]["png"]).stem), file=sys.stderr)
    print(f"wrote {info['files']['blend']}\n      {info['files']['bvh']}\n      {info['files']['png']}",
          file=sys.stderr)
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
