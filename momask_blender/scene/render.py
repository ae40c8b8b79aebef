"""Pictures of a baked character, made by Blender's own Workbench renderer.

    render_still(scene, armature, "out.png", bone_map=..., moments=8, title="...")
    render_movie(scene, armature, "out.mp4", bone_map=...)

A still is a grid of tiles: a row per view (the side and the front, turning with the body), a
column per moment, each tile labelled with its frame and time by Blender's render stamp, under
title lines that the stamp draws too; the tiles are put together with NumPy and written with
Blender's image API. A movie is the whole motion from one view through Blender's FFmpeg output.
Both render from the temporary scene of `staging`, so the user's scene stays as it was.
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from ..errors import MomaskError, model_checks
from ..rig.framing import pick_frames, plan_framing
from .staging import (
    FRAMING_SAMPLES,
    TAG,
    Stage,
    add_floor,
    aim,
    bone_head,
    sample_motion,
    staged,
)

BACKGROUND = (0.97, 0.97, 0.96)
INK = (0.10, 0.10, 0.12, 1.0)
WARNING_INK = (0.80, 0.08, 0.06, 1.0)
GAP = 4                     # pixels between tiles


@dataclass
class Tile:
    """Where one rendered moment sits in the picture."""

    view: str
    frame: int
    box: tuple[int, int, int, int]   # x, y, width, height (top-left origin)
    joints_px: dict[str, tuple[float, float]]  # where each mapped joint's bone head is drawn, x and y;
    #                                            "root" is the bone the camera follows


# ----------------------------------------------------------------------------- Blender's renderer


def render_settings(scene) -> None:
    """Workbench with studio light, the materials' colours, outlines, cavities, shadows and FXAA
    (the cheap anti-aliasing: 8 samples cost six times as much with shadows for little gain at
    tile size), a transparent film, and the stamp for labels with every field but the note off."""
    r = scene.render
    r.engine = "BLENDER_WORKBENCH"
    r.film_transparent = True
    r.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"
    scene.display.render_aa = "FXAA"
    shading = scene.display.shading
    shading.light, shading.color_type = "STUDIO", "MATERIAL"
    shading.show_object_outline, shading.show_cavity = True, True
    shading.show_shadows, shading.shadow_intensity = True, 0.3
    r.use_stamp = True
    for name in dir(r):
        if name.startswith("use_stamp_") and name not in ("use_stamp_note", "use_stamp_labels"):
            setattr(r, name, False)
    r.use_stamp_note = True
    r.stamp_foreground, r.stamp_background = INK, (1.0, 1.0, 1.0, 0.0)


def render(scene, path: Path, *, animation: bool = False) -> None:
    """Render `scene` (a still: its current frame) to `path`. The scene is made the context's: the
    operator's own `scene=` argument renders every frame with the same pose."""
    scene.render.filepath = str(path)
    try:
        with bpy.context.temp_override(scene=scene, view_layer=scene.view_layers[0]):
            bpy.ops.render.render(animation=animation, write_still=not animation)
    except RuntimeError as err:
        raise MomaskError(f"Blender could not render the preview: {str(err).strip()[-300:]}") from None


# ----------------------------------------------------------------------------- pixels


def read_image(path: Path) -> np.ndarray:
    """(H, W, 4) float pixels of an image file, top row first, through Blender's image API."""
    img = bpy.data.images.load(str(path), check_existing=False)
    try:
        w, h = img.size
        px = np.empty(w * h * 4, np.float32)
        img.pixels.foreach_get(px)
    finally:
        bpy.data.images.remove(img)
    return px.reshape(h, w, 4)[::-1]


def write_png(path: Path, rgb: np.ndarray) -> Path:
    """Write an (H, W, 3) image (top row first, 0..1) as an 8-bit PNG with Blender's image API; the
    file appears whole or not at all (`place`)."""
    from .saving import check_output

    h, w = rgb.shape[:2]
    path = check_output(path, "picture")  # a folder, device or symbolic link there is refused
    img = bpy.data.images.new(TAG, w, h, alpha=False)
    try:
        px = np.concatenate([np.clip(rgb, 0.0, 1.0), np.ones((h, w, 1))], axis=2)[::-1]
        img.pixels.foreach_set(np.ascontiguousarray(px, np.float32).ravel())
        with tempfile.TemporaryDirectory(prefix=TAG) as tmp:
            made = Path(tmp) / "picture.png"
            img.filepath_raw, img.file_format = str(made), "PNG"
            try:
                img.save()
            except RuntimeError as err:
                raise MomaskError(f"cannot write the picture {path}: {str(err).strip().splitlines()[-1][:200]}") \
                    from None
            place(made, path, "picture")
    finally:
        bpy.data.images.remove(img)
    return path


def place(made: Path, path, what: str) -> Path:
    """Put a file Blender finished writing elsewhere (a temporary folder) at `path` through
    model_core.inputs.paths: copied into a temporary file beside the target and renamed, so a full
    disk or a crash leaves the old file (or none), never half a picture or movie."""
    import shutil

    from model_core.inputs.paths import write_file

    def copy(stream) -> None:
        with open(made, "rb") as source:
            shutil.copyfileobj(source, stream, 1 << 20)

    with model_checks():
        return write_file(path, copy, what)


def over(rgba: np.ndarray, background=BACKGROUND) -> np.ndarray:
    """An RGBA render (straight alpha) laid over a plain background."""
    a = rgba[..., 3:4]
    return rgba[..., :3] * a + np.asarray(background, np.float32) * (1 - a)


def grid(tiles: Sequence[np.ndarray], columns: int, gap: int = GAP, background=BACKGROUND) -> np.ndarray:
    """One image of equally sized (h, w, 3) tiles, row by row from the top, `gap` pixels apart."""
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    out = np.empty((rows * h + (rows + 1) * gap, columns * w + (columns + 1) * gap, 3), np.float32)
    out[:] = background
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        out[y:y + h, x:x + w] = tile[..., :3]
    return out


# ----------------------------------------------------------------------------- a still


def render_still(user_scene, arm, path, *, bone_map: Mapping[str, str] | None = None, moments: int = 8,
                 frames: Sequence[int] | None = None, views: Sequence[str] = ("side", "front"),
                 tile: tuple[int, int] = (200, 280), title: str = "", subtitle: str = "", warning: str = "",
                 frame_range: tuple[int, int] | None = None) -> dict:
    """A PNG of the character from each view (a row each) at a few moments (a column each): the
    frames given, or `moments` spread over `frame_range` (default: the armature's action).
    `bone_map` (joint → bone) names the pelvis the camera follows and the hips that say where the
    front is. Returns the picture's size, its tiles and the render times."""
    started = time.perf_counter()
    font = max(10, min(16, tile[0] // 14))
    with staged(user_scene, arm, bone_map, frame_range) as stage, tempfile.TemporaryDirectory(prefix=TAG) as tmp:
        first, last = stage.frame_range
        frames = sorted(set(frames)) if frames is not None else pick_frames(first, last, moments)
        if not frames:
            raise MomaskError("the preview has no frames to show")
        motion = sample_motion(stage, sorted(set(pick_frames(first, last, FRAMING_SAMPLES)) | set(frames)))
        add_floor(stage, motion.points)
        render_settings(stage.scene)
        r = stage.scene.render
        r.resolution_x, r.resolution_y, r.stamp_font_size = tile[0], tile[1], font
        framings = plan_framing(motion, views, tile, top_px=int(font * 1.6) + 6, turn=True)
        fps = r.fps / r.fps_base
        images, placed, timings = [], [], []
        for framing in framings:
            for f in frames:
                t = time.perf_counter()
                aim(stage, framing, motion.facings[motion.at(f)])
                stage.scene.frame_set(f)
                r.stamp_note_text = f"{framing.view}  F{f}  {(f - first) / fps:.1f} s"
                out = Path(tmp) / f"{framing.view}_{f}.png"
                render(stage.scene, out)
                images.append(over(read_image(out)))
                placed.append((framing.view, f, _joints_on_screen(stage)))
                timings.append(time.perf_counter() - t)
        picture = grid(images, len(frames))
        bands = _title_bands(stage, Path(tmp), picture.shape[1], font, title, subtitle, warning)
        header = sum(b.shape[0] for b in bands)
        write_png(Path(path), np.concatenate([*bands, picture]))
        shown = "bones" if stage.stand_in else "mesh: " + ", ".join(o.name for o in stage.shown)
    tiles = []
    for k, (view, f, on_screen) in enumerate(placed):
        row, col = divmod(k, len(frames))
        x, y = GAP + col * (tile[0] + GAP), header + GAP + row * (tile[1] + GAP)
        px = {j: (x + u * tile[0], y + (1 - v) * tile[1]) for j, (u, v) in on_screen.items()}
        tiles.append(Tile(view, f, (x, y, tile[0], tile[1]), px))
    return {"path": str(path), "size": [picture.shape[1], header + picture.shape[0]], "tiles": tiles,
            "frames": frames, "header_px": header, "character": shown,
            "seconds": {"first_tile_s": round(timings[0], 3),
                        "per_tile_s": round(float(np.mean(timings[1:] or timings)), 3),
                        "total_s": round(time.perf_counter() - started, 3)}}


def _joints_on_screen(stage: Stage) -> dict[str, tuple[float, float]]:
    """Where the root and each mapped joint's bone head are on the camera's picture (0..1 from the
    bottom-left corner): what the tiles' `joints_px` report, for checking a picture."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    cam = stage.camera.evaluated_get(stage.depsgraph)
    bones = {"root": stage.root_bone, **{j: b for j, b in stage.bone_map.items() if b in stage.armature.pose.bones}}
    out = {}
    for joint, bone in bones.items():
        p = world_to_camera_view(stage.scene, cam, Vector(bone_head(stage, bone)))
        out[joint] = (float(p.x), float(p.y))
    return out


def _title_bands(stage: Stage, folder: Path, width: int, font: int, title: str, subtitle: str,
                 warning: str) -> list[np.ndarray]:
    """The lines above the tiles, each a render of an empty scene that only carries the stamp."""
    lines = [(text, ink, size) for text, ink, size in
             ((title, INK, font + 3), (subtitle, INK, font), (warning, WARNING_INK, font + 1)) if text]
    if not lines:
        return []
    scene = stage.new(bpy.data.scenes)
    render_settings(scene)
    scene.camera = stage.new(bpy.data.objects, stage.new(bpy.data.cameras))
    scene.collection.objects.link(scene.camera)
    bands = []
    for k, (text, ink, size) in enumerate(lines):
        r = scene.render
        r.resolution_x, r.resolution_y = width, int((text.count("\n") + 1) * size * 1.3 + 8)
        r.stamp_font_size, r.stamp_note_text, r.stamp_foreground = size, text, ink
        render(scene, folder / f"line{k}.png")
        bands.append(over(read_image(folder / f"line{k}.png")))
    return bands


# ----------------------------------------------------------------------------- a movie


def check_movie_support() -> None:
    """A clear message where this Blender cannot write video."""
    if not bpy.app.build_options.codec_ffmpeg:
        raise MomaskError(f"this Blender ({bpy.app.version_string}) was built without FFmpeg, so it cannot "
                          "write an .mp4: ask for a .png preview instead")


def render_movie(user_scene, arm, path, *, bone_map: Mapping[str, str] | None = None,
                 view: str = "three-quarter", size: tuple[int, int] = (480, 480), title: str = "",
                 frame_range: tuple[int, int] | None = None) -> dict:
    """An H.264 .mp4 of the whole motion from one view (fixed at the first frame's facing, the
    camera following the pelvis), each frame stamped with its number and `title`."""
    check_movie_support()
    from .saving import check_output

    check_output(path, "movie")  # before the render: a folder, device or symbolic link there is refused
    started = time.perf_counter()
    size = (size[0] + size[0] % 2, size[1] + size[1] % 2)  # H.264 wants even sizes
    font = max(10, min(16, size[0] // 28))
    with staged(user_scene, arm, bone_map, frame_range) as stage, tempfile.TemporaryDirectory(prefix=TAG) as tmp:
        first, last = stage.frame_range
        motion = sample_motion(stage, pick_frames(first, last, FRAMING_SAMPLES))
        add_floor(stage, motion.points)
        scene, r = stage.scene, stage.scene.render
        render_settings(scene)
        r.resolution_x, r.resolution_y, r.stamp_font_size = size[0], size[1], font
        (framing,) = plan_framing(motion, [view], size, top_px=int(font * 1.6) + 6, turn=False)
        aim(stage, framing, motion.facings[0])
        r.film_transparent = False  # video has no alpha: the world's colour is the background
        scene.world = stage.new(bpy.data.worlds)
        scene.world.color = BACKGROUND
        r.use_stamp_frame, r.stamp_note_text = True, title or view
        _movie_format(r)
        render(scene, Path(tmp) / "movie", animation=True)
        made = sorted(Path(tmp).glob("movie*.mp4"))
        if not made:
            raise MomaskError("Blender rendered the preview but wrote no .mp4")
        place(made[0], path, "movie")
    return {"path": str(path), "size": list(size), "frames": [first, last],
            "seconds": {"total_s": round(time.perf_counter() - started, 3)}}


def _movie_format(r) -> None:
    """H.264 in an MPEG-4 file (Blender 5 first says the output is a video; 4.2 has no such switch)."""
    settings = r.image_settings
    if hasattr(settings, "media_type"):
        settings.media_type = "VIDEO"
    settings.file_format = "FFMPEG"
    r.ffmpeg.format, r.ffmpeg.codec = "MPEG4", "H264"
    r.ffmpeg.constant_rate_factor, r.ffmpeg.ffmpeg_preset = "MEDIUM", "GOOD"
    r.ffmpeg.audio_codec = "NONE"
    r.use_file_extension = True
