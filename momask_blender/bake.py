"""Headless bake: import a rig, generate (or load) a motion, bake it, save the .blend.

    python -m momask_blender.bake --rig RIG.glb --prompt "a person walks" --seconds 4 --seed 1 \\
        --checkpoints DIR --clip ViT-B-32.pt --out OUT.blend [--export-bvh OUT.bvh]
    python -m momask_blender.bake --rig RIG.fbx --source MOTION.bvh --out OUT.blend
    python -m momask_blender.bake --blend IN.blend --armature NAME --inpaint 40 80 --prompt "a person jumps" \
        --checkpoints DIR --clip ViT-B-32.pt --out OUT.blend        (or --extend-after / --extend-before SECONDS)
    python -m momask_blender.bake --rig RIG.glb --prompt "a person walks" --seconds 30 ... --out OUT.blend
    python -m momask_blender.bake --rig RIG.glb --sequence SEQ.txt ... --out OUT.blend   (lines: seconds<TAB>prompt)

Prints a JSON summary (bone map, frame range, fps, seconds per stage). Any problem: a message on
stderr and a non-zero exit status.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from model_core.cli import add_generation_flags

from .errors import MomaskError
from .rig.skeleton import FPS

RIG_SUFFIXES = (".glb", ".gltf", ".vrm", ".fbx", ".blend", ".bvh")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m momask_blender.bake", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    rig = p.add_mutually_exclusive_group(required=True)
    rig.add_argument("--rig", help="character file: " + ", ".join(RIG_SUFFIXES))
    rig.add_argument("--blend", help="an existing .blend to edit (with --inpaint)")
    p.add_argument("--armature", help="the armature object's name (default: the one with most bones)")
    p.add_argument("--prompt", default="", help="what the character does")
    p.add_argument("--source", help="bake this motion instead of generating: .bvh or HumanML3D .npy")
    p.add_argument("--out", required=True, help="the .blend to write")
    p.add_argument("--export-bvh", help="also write the motion as a HumanML3D-skeleton BVH")
    p.add_argument("--foot-lock", choices=("on", "off"), default="on")
    p.add_argument("--root-motion", choices=("full", "in-place", "keep"), default="full")
    p.add_argument("--fps", type=float, help="scene frame rate (default: the file's or Blender's)")
    p.add_argument("--frame-start", type=int, help="first frame (default: the scene's current frame)")
    p.add_argument("--bone-map", help="a bone-map preset (JSON) to use instead of detection")
    p.add_argument("--inpaint", nargs=2, type=int, metavar=("START", "END"),
                   help="regenerate only these frames of the armature's action")
    p.add_argument("--extend-before", type=float, metavar="SECONDS", help="new motion before the animation")
    p.add_argument("--extend-after", type=float, metavar="SECONDS", help="new motion after the animation")
    p.add_argument("--keep-original", action="store_true", help="with --inpaint/--extend: keep a copy of the action")
    p.add_argument("--sequence", help="a prompt sequence: lines of seconds<TAB>prompt, one continuous motion")
    add_generation_flags(p, model_required=False)  # model paths are only needed when generating
    return p


def import_rig(bpy, path: Path) -> None:
    """Load the character into a fresh, empty scene with Blender's own importers."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise MomaskError(f"rig file not found: {path}")
    if suffix not in RIG_SUFFIXES:
        raise MomaskError(f"unsupported rig file {path.name}: use one of {', '.join(RIG_SUFFIXES)}")
    try:
        if suffix == ".blend":
            bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False)
            return
        bpy.ops.wm.read_factory_settings(use_empty=True)
        if suffix in (".glb", ".gltf", ".vrm"):
            bpy.ops.import_scene.gltf(filepath=str(path))
        elif suffix == ".fbx":
            bpy.ops.import_scene.fbx(filepath=str(path))
        else:
            bpy.ops.import_anim.bvh(filepath=str(path), update_scene_fps=False)
    except RuntimeError as err:
        raise MomaskError(f"Blender could not import {path.name}: {str(err).strip()[-400:]}") from None


def pick_armature(bpy, name: str | None):
    arms = [o for o in bpy.context.scene.objects if o.type == "ARMATURE"]
    if name:
        obj = bpy.data.objects.get(name)
        if obj is None or obj.type != "ARMATURE":
            raise MomaskError(f"no armature named '{name}' (armatures: {', '.join(o.name for o in arms) or 'none'})")
        return obj
    if not arms:
        raise MomaskError("the file has no armature")
    return max(arms, key=lambda o: len(o.data.bones))


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    import bpy

    from . import register
    from .ui import operators

    timings: dict[str, float] = {}
    editing = args.inpaint is not None or args.extend_before is not None or args.extend_after is not None
    if editing and not args.blend:
        raise MomaskError("--inpaint and --extend-* edit an existing animation: give it with --blend IN.blend")
    if args.blend and not editing:
        raise MomaskError("--blend needs --inpaint START END, --extend-before or --extend-after")
    import_rig(bpy, Path(args.rig or args.blend).expanduser().resolve())
    timings["import_rig_s"] = time.perf_counter() - started
    obj = pick_armature(bpy, args.armature)
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    scene = bpy.context.scene
    if args.fps:
        scene.render.fps, scene.render.fps_base = int(round(args.fps)), round(args.fps) / args.fps
    if args.frame_start is not None:
        scene.frame_set(args.frame_start)
    if args.bone_map:
        from .jobs.bake import BONE_MAP_PROPERTY
        from .rig.bone_map import load_preset, map_to_json

        obj[BONE_MAP_PROPERTY] = map_to_json(load_preset(args.bone_map, [b.name for b in obj.data.bones]))
    register()
    if editing:
        return _save(bpy, args, _edit(bpy, args), started)
    if args.sequence:
        return _save(bpy, args, _long(bpy, args), started)
    operators.last_error = ""
    try:
        result = _generate_operator(bpy, args)
    except RuntimeError as err:  # bpy.ops raises when the operator reports an error
        raise MomaskError(operators.last_error or str(err).strip()) from None
    if "FINISHED" not in result:
        raise MomaskError(operators.last_error or "the bake was cancelled")
    job, actions = operators.last_job, operators.last_actions
    if args.export_bvh:
        from .rig.bvh import write_bvh

        t = time.perf_counter()
        write_bvh(args.export_bvh, job.joints[0], job.source_fps if job.source is not None else FPS)
        timings["export_bvh_s"] = time.perf_counter() - t
    t = time.perf_counter()
    out = Path(args.out).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(out), check_existing=False)
    timings["save_s"] = time.perf_counter() - t
    from .jobs.bake import summary

    info = summary(job, actions)
    info["seconds"] = {**{k: round(v, 4) for k, v in timings.items()}, **info["seconds"],
                       "total_s": round(time.perf_counter() - started, 4)}
    info["out"] = str(out)
    return info


def _generate_operator(bpy, args) -> set:
    """bpy.ops.momask.generate with the command line's settings (any length: the model goes window
    by window past 9.8 s)."""
    return bpy.ops.momask.generate(
        prompt=args.prompt, seconds=args.seconds or 0.0, seed=args.seed, variations=args.variations,
        steps=args.steps, guidance=args.guidance, residual_guidance=args.residual_guidance,
        temperature=args.temperature, topk=args.topk, device=args.device,
        checkpoints=str(Path(args.checkpoints).expanduser().resolve()) if args.checkpoints else "",
        clip=str(Path(args.clip).expanduser().resolve()) if args.clip else "",
        source=str(Path(args.source).expanduser().resolve()) if args.source else "",
        root_motion=args.root_motion, foot_lock=args.foot_lock == "on")


def _model_paths(args) -> dict:
    return {"checkpoints": str(Path(args.checkpoints).expanduser().resolve()) if args.checkpoints else "",
            "clip": str(Path(args.clip).expanduser().resolve()) if args.clip else ""}


def _generation(args) -> dict:
    return dict(prompt=args.prompt, seed=args.seed, steps=args.steps, guidance=args.guidance,
                residual_guidance=args.residual_guidance, temperature=args.temperature, topk=args.topk,
                device=args.device, **_model_paths(args))


def _edit(bpy, args) -> dict:
    """--inpaint / --extend-*: edit the armature's current action in place."""
    from .ui import timeline_ops as inpaint_ops

    inpaint_ops.last_error = ""
    if sum(x is not None for x in (args.inpaint, args.extend_before, args.extend_after)) != 1:
        raise MomaskError("give one of --inpaint, --extend-before and --extend-after")
    try:
        if args.inpaint is not None:
            result = bpy.ops.momask.inpaint(frame_start=args.inpaint[0], frame_end=args.inpaint[1],
                                            keep_original=args.keep_original, **_generation(args))
        else:
            side = "BEFORE" if args.extend_before is not None else "AFTER"
            seconds = args.extend_before if side == "BEFORE" else args.extend_after
            from .rig.windows import MAX_EXTEND_SECONDS

            if not 0 < seconds <= MAX_EXTEND_SECONDS:
                raise MomaskError(f"an extension adds more than 0 and at most {MAX_EXTEND_SECONDS:g} s, "
                                  f"got {seconds:g} s")
            result = bpy.ops.momask.extend(seconds=seconds, side=side, keep_original=args.keep_original,
                                           **_generation(args))
    except RuntimeError as err:  # the operator's error report
        raise MomaskError(inpaint_ops.last_error or str(err).removeprefix("Error: ").strip()) from None
    if "FINISHED" not in result:
        raise MomaskError(inpaint_ops.last_error or "the edit was cancelled")
    return dict(inpaint_ops.last_result)


def _long(bpy, args) -> dict:
    """--seconds past one model call, or --sequence FILE: one continuous motion, window by window."""
    from .ui import timeline_ops as inpaint_ops

    text = ""
    if args.sequence:
        try:
            text = Path(args.sequence).expanduser().read_text(encoding="utf-8")
        except OSError as err:
            raise MomaskError(f"cannot read the sequence file {args.sequence}: {err.strerror}") from None
        if not text.strip():
            raise MomaskError(f"the sequence file {args.sequence} is empty: write lines of seconds<TAB>prompt")
    inpaint_ops.last_error = ""
    try:
        result = bpy.ops.momask.generate_sequence(sequence=text, seconds=args.seconds or 0.0,
                                                  root_motion=args.root_motion, foot_lock=args.foot_lock == "on",
                                                  **_generation(args))
    except RuntimeError as err:
        raise MomaskError(inpaint_ops.last_error or str(err).removeprefix("Error: ").strip()) from None
    if "FINISHED" not in result:
        raise MomaskError(inpaint_ops.last_error or "the generation was cancelled")
    info = dict(inpaint_ops.last_result)
    job = info.pop("job")
    if args.export_bvh:
        from .rig.bvh import write_bvh

        write_bvh(args.export_bvh, job.joints[0], FPS)
    return info


def _save(bpy, args, info: dict, started: float) -> dict:
    t = time.perf_counter()
    out = Path(args.out).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(out), check_existing=False)
    info["seconds"] = {**info.get("seconds", {}), "save_s": round(time.perf_counter() - t, 4),
                       "total_s": round(time.perf_counter() - started, 4)}
    info["out"] = str(out)
    return info


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not (args.source or args.sequence) and not args.prompt.strip():
        print("error: give --prompt (or --source MOTION to bake a file)", file=sys.stderr)
        return 2
    try:
        info = run(args)
    except MomaskError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(info))
    return 0


def _exit(code: int) -> None:
    """Exit with `code`. The bpy 4.2 module segfaults in its own teardown once classes with property
    callbacks were registered (see tests/exit_bpy42.py), which would turn success into exit -11:
    there, leave without the teardown, after flushing what was printed."""
    bpy = sys.modules.get("bpy")
    if bpy is not None and bpy.app.version < (4, 3, 0):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    _exit(main())
