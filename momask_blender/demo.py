"""The README's first command: a sentence becomes animation on a human rig, headless.

    python -m momask_blender.demo                        # what `make demo` runs
    python -m momask_blender.demo --prompt "a person jumps" --seconds 3 --steps 10
    python -m momask_blender.demo --source ../shared/motions/humanml3d_000612.npy   # bake a file

Builds Blender's human metarig (Rigify's, made procedurally; or `--rig FILE`), generates the
prompt with the first weights it finds, bakes it onto the rig and writes `demo/out.blend`,
`demo/out.bvh` and `demo/out.png` (Blender's Workbench render of the character from the side and
the front at a few moments). Where the weights are looked for, in order (`choose_weights`):

1. the add-on's preferences (checkpoint folder and CLIP file), or the files the preferences'
   buttons installed into the extension's user folder, when the extension is installed;
2. `MOMASK_CHECKPOINTS` (the folder holding `t2m/`) with `MOMASK_CLIP` (OpenAI's ViT-B-32.pt;
   looked for next to the checkpoints and in ~/.cache/clip when not set);
3. the official download beside the checkout: `../checkpoints` with `../ViT-B-32.pt`;
4. the user's cache, where step 6 puts them: `$XDG_CACHE_HOME/momask` (else `~/.cache/momask`);
5. `../shared/reference` beside the checkout (small seeded models: the motion is not real);
6. the network: the released checkpoints (the official Google Drive zip) and OpenAI's ViT-B/32
   are downloaded into the cache of step 4, with progress, resuming an interrupted download and
   checking CLIP's SHA-256. When the hosts do not answer within a few seconds, or
   `MOMASK_NO_DOWNLOAD=1` is set, this step is skipped.

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
from dataclasses import asdict
from pathlib import Path

from model_core.settings import GenerationSettings

from .errors import MomaskError, model_checks
from .setup.assets import CLIP_URL
from .setup.fetch import RELEASED, Sources, downloads_allowed, fetch_weights, user_cache
from .setup.weights import CLIP_NAME, Weights, checkpoints_ok, clip_candidates, find_weights, first_file

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PROMPT = "a person walks forward and waves"
RANDOM_TAG = "RANDOM_WEIGHTS_meaningless"
RANDOM_CACHE = ROOT / ".cache" / "demo_random_weights"

HOW_TO_INSTALL = f"""\
To get the released MoMask weights:
  - let the demo download them (it does when the network answers and MOMASK_NO_DOWNLOAD is not set);
  - or run the official script from https://github.com/EricGuo5513/momask-codes
    (`bash prepare/download_models.sh`): it makes checkpoints/t2m/...;
    and download OpenAI's CLIP ViT-B/32 file, ViT-B-32.pt:
    {CLIP_URL}
    then either  export MOMASK_CHECKPOINTS=/path/to/checkpoints MOMASK_CLIP=/path/to/ViT-B-32.pt
    or put them beside this checkout as ../checkpoints and ../ViT-B-32.pt,
    or in Blender use the add-on's preferences (Install from file / Download)."""


def make_random_weights(cache: Path | None = None) -> Weights:
    """Small random weights in the official layout (made once in `cache`), from model_core's test helpers
    (a checkout has them; the extension's wheel leaves them out)."""
    try:
        from model_core.testing.random_weights import demo_weights
    except ModuleNotFoundError as err:
        if not (err.name or "").startswith("model_core.testing"):  # PyTorch, most likely
            from .setup.pytorch import missing_message

            raise MomaskError(missing_message([err.name or str(err)])) from None
        raise MomaskError("no MoMask weights were found, and this install cannot make the demo's random ones "
                          "(model_core.testing comes with a checkout of the repository, not with the extension).\n"
                          + HOW_TO_INSTALL) from None

    cache = Path(cache) if cache is not None else RANDOM_CACHE
    checkpoints, clip = demo_weights(cache)
    readme = cache / "README_RANDOM_WEIGHTS.txt"
    if not readme.is_file():
        from model_core.inputs.paths import write_text

        with model_checks():
            write_text(readme, "These are RANDOM weights made by `make demo` so that the pipeline can run without "
                       "the released\nMoMask files. Motions generated with them are meaningless.\n\n"
                       + HOW_TO_INSTALL + "\n", "note beside the random weights")
    return Weights(checkpoints, clip, "random", random=True)


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


# ----------------------------------------------------------------------------- weights


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
    p.add_argument("--frames", type=int, default=8, help="moments in the picture")
    p.add_argument("--tile", type=int, nargs=2, default=(200, 280), metavar=("W", "H"),
                   help="pixels of one moment in the picture")
    p.add_argument("--fps", type=float, default=30.0, help="scene frame rate")
    p.add_argument("--device", default="cpu")
    return p


def choose_weights(args, prefs: Sequence[tuple[str, str]], env: Mapping[str, str] = os.environ,
                   home: Path | None = None, sources: Sources = RELEASED) -> Weights:
    """The weights the demo runs on, in the order of the module's docstring."""
    home = Path.home() if home is None else home
    if args.random_weights:
        return make_random_weights()
    if args.checkpoints:
        c = Path(args.checkpoints).expanduser()
        clip = Path(args.clip).expanduser() if args.clip else first_file(clip_candidates(c, env, home))
        if not checkpoints_ok(c) or clip is None or not clip.is_file():
            raise MomaskError(f"--checkpoints {c} / --clip {args.clip or '(not found)'}: not a complete model")
        return Weights(c, clip, "--checkpoints")
    cache = user_cache(env, home)
    return (find_weights(env, ROOT, prefs, home, cache=cache) or fetch_released(cache, env, home, sources)
            or make_random_weights())


def fetch_released(cache: Path, env: Mapping[str, str], home: Path, sources: Sources = RELEASED) -> Weights | None:
    """Download the released files into `cache`, or None (saying why) when downloading is turned
    off, the hosts do not answer within a few seconds, or the download fails."""
    from .setup.download import DownloadError
    from .setup.install import InstallError

    if not downloads_allowed(env):
        print(f"note: MOMASK_NO_DOWNLOAD is set: not downloading the released weights into {cache}", file=sys.stderr)
        return None
    print(f"No MoMask weights found: downloading the released ones into {cache} "
          "(set MOMASK_NO_DOWNLOAD=1 to skip)", file=sys.stderr, flush=True)
    progress, on_stage = progress_printer()
    clip = first_file([home / ".cache" / "clip" / CLIP_NAME])  # where OpenAI's clip.load keeps it
    try:
        checkpoints, clip = fetch_weights(cache, sources=sources, clip=clip, progress=progress, on_stage=on_stage)
    except (DownloadError, InstallError) as err:
        print(banner(["COULD NOT DOWNLOAD THE RELEASED WEIGHTS:", *str(err).splitlines()]), file=sys.stderr)
        return None
    return Weights(checkpoints, clip, "downloaded")


def progress_printer(stream=sys.stderr, every: float = 2.0):
    """`progress(done, total)` and `on_stage(text)` callbacks that print a line at most every `every` s."""
    last = [0.0]

    def on_stage(text: str) -> None:
        print(f"{text} ...", file=stream, flush=True)
        last[0] = 0.0

    def progress(done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] < every and (total is None or done < total):
            return
        last[0] = now
        of = f" of {total / 1e6:,.1f} MB ({100 * done / total:.0f}%)" if total else " MB"
        print(f"  {done / 1e6:,.1f}{of}", file=stream, flush=True)

    return progress, on_stage


def announce(weights: Weights, out_name: str) -> None:
    """Say which weights run, loudly when the motion cannot mean anything."""
    for note in weights.notes:
        print(f"note: {note}", file=sys.stderr)
    if weights.random:
        print(random_warning(f"{out_name}_{RANDOM_TAG}"), file=sys.stderr, flush=True)
    elif weights.origin == "reference":
        print(reference_warning(weights), file=sys.stderr, flush=True)
    print(f"weights: {weights.origin}: {weights.checkpoints} + {weights.clip}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- the run


class Stopwatch:
    """Seconds per stage, for the summary."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self.last, 3)
        self.last = now


def build_character(bpy, args):
    """The rig (the metarig, or --rig), selected and active, in a scene at --fps from frame 1."""
    from .scene.characters import build_metarig, import_rig, pick_armature, select_only, set_frame_rate

    if args.rig:
        import_rig(Path(args.rig).expanduser().resolve())
        obj, rig_kind = pick_armature(None), Path(args.rig).name
    else:
        obj, rig_kind = build_metarig()
    select_only(obj)
    scene = bpy.context.scene
    set_frame_rate(scene, args.fps)
    scene.frame_start = 1
    scene.frame_set(1)
    return obj, rig_kind


def bake_motion(bpy, obj, args, weights: Weights | None):
    """Generate with `weights` (or load --source) and bake it, as the sidebar's Generate does."""
    from .jobs import bake

    gen = None
    if weights is not None:
        gen = bake.Generation(prompt=args.prompt, seconds=args.seconds or None, seed=args.seed, variations=1,
                              checkpoints=str(weights.checkpoints), clip=str(weights.clip), device=args.device,
                              **asdict(GenerationSettings(steps=args.steps)))  # the official settings otherwise
    source = str(Path(args.source).expanduser().resolve()) if args.source else ""
    job, actions = bake.run(bpy.context, obj, prompt="" if args.source else args.prompt, generation=gen,
                            source_path=source)
    bpy.context.scene.frame_end = job.frame_start + job.bakes[0].frames - 1
    return job, actions


def output_paths(args, weights: Weights | None) -> dict[str, Path]:
    """OUT.blend, OUT.bvh and OUT.png (OUT_RANDOM_WEIGHTS_meaningless.* with random weights), each
    checked before any work: a folder, device or symbolic link there is refused (scene.saving)."""
    from .scene.saving import check_output

    out = Path(args.out).expanduser()
    out = out if out.is_absolute() else Path.cwd() / out
    if weights is not None and weights.random:
        out = out.with_name(f"{out.name}_{RANDOM_TAG}")
    return {kind: check_output(out.with_suffix(f".{kind}"), f"demo {kind} file") for kind in ("blend", "bvh", "png")}


def captions(args, weights: Weights | None, rig_kind: str, frames: int, fps: float) -> tuple[str, str, str]:
    """The picture's title, subtitle and warning line."""
    if args.source:
        title, sub = Path(args.source).name, f"baked from {Path(args.source).name} onto the {rig_kind}"
    else:
        title, sub = f"'{args.prompt}'", f"{weights.origin} weights, seed {args.seed}, {args.steps} steps, " \
                                         f"on the {rig_kind}"
    warning = ""
    if weights is not None and weights.random:
        warning = "RANDOM WEIGHTS: THIS MOTION IS MEANINGLESS. INSTALL THE RELEASED MOMASK WEIGHTS."
    elif weights is not None and weights.origin == "reference":
        warning = "SMALL TEST MODELS (../shared/reference): NOT A REAL MOTION."
    return title, f"{sub}; {frames} frames at {fps:g} fps", warning


def run(args) -> dict:
    clock = Stopwatch()
    import bpy  # noqa: F401  (before torch: Blender as a module)

    from model_core.motion.bvh import write_bvh

    from . import register
    from .rig.resample import fps_settings
    from .scene.render import render_still
    from .scene.saving import save_blend

    clock.lap("import_s")
    fps_settings(args.fps)  # checked before any work
    weights = None
    paths = output_paths(args, weights)
    if not args.source:
        weights = choose_weights(args, preference_candidates(bpy))
        announce(weights, Path(args.out).name)
        paths = output_paths(args, weights)
        clock.lap("find_weights_s")
    obj, rig_kind = build_character(bpy, args)
    register()
    clock.lap("build_rig_s")
    job, actions = bake_motion(bpy, obj, args, weights)
    clock.seconds.update({k: round(v, 3) for k, v in job.timings.items()})
    clock.last = time.perf_counter()
    with model_checks():
        write_bvh(paths["bvh"], job.joints[0], job.motion_fps, "demo bvh file")
    clock.lap("export_bvh_s")
    frames, fps = job.bakes[0].frames, job.options.fps
    title, subtitle, warning = captions(args, weights, rig_kind, frames, fps)
    picture = render_still(bpy.context.scene, obj, paths["png"], bone_map=job.plan.bone_map, moments=args.frames,
                           tile=tuple(args.tile), frame_range=(job.frame_start, job.frame_start + frames - 1),
                           title=title, subtitle=subtitle, warning=warning)
    clock.seconds.update({f"picture_{k}": v for k, v in picture["seconds"].items()})
    clock.last = time.perf_counter()
    save_blend(paths["blend"], "demo blend file")
    clock.lap("save_blend_s")
    clock.seconds["total_s"] = round(time.perf_counter() - clock.started, 3)
    return {
        "prompt": None if args.source else args.prompt,
        "source": str(args.source) if args.source else None,
        "weights": None if weights is None else {
            "origin": weights.origin, "random": weights.random, "meaningful": weights.meaningful,
            "checkpoints": str(weights.checkpoints), "clip": str(weights.clip)},
        "rig": rig_kind, "armature": obj.name, "action": actions[0].name,
        "joints_mapped": len(job.plan.bone_map), "frames": frames,
        "frame_range": [job.frame_start, job.frame_start + frames - 1], "fps": fps,
        "motion_seconds": round(frames / fps, 3),
        "picture": {k: picture[k] for k in ("size", "frames", "header_px", "character")},
        "files": {k: str(v) for k, v in paths.items()},
        "seconds": clock.seconds,
    }


def main(argv=None) -> int:
    from model_core.errors import ModelError

    args = build_parser().parse_args(argv)
    try:
        info = run(args)
    except (MomaskError, ModelError) as err:  # ModelError: a model_core check the job did not wrap
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
    from .scene.teardown import exit_process

    exit_process(main())
