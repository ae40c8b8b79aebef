"""Regenerate a frame range of an animation, or extend it, with MoMask (pure NumPy, no bpy).

The Blender side samples the armature's evaluated pose at 20 fps over a *window* (the range plus
context on both sides, at most 196 model frames), this module turns that pose into the 22
HumanML3D joints, asks the model to regenerate the tokens covering the range, puts the decoded
window back where the original one was (the model's `process_file` path moved it to the origin,
facing +Z, feet on the floor), and turns the new frames into the rig's local rotations and root
path at the scene's frames, blended into the untouched neighbours by quaternion slerp.

Frames: *scene frames* are the timeline's; *model frames* are 20 fps samples of the window,
numbered from its first sample; one token covers 4 model frames.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from model_core.control.curves import smoothstep
from model_core.control.targets import yaw_matrices
from model_core.settings import MAX_FRAMES

from ..errors import MomaskError
from .plan import SOURCE_LEG, RigPlan, local_rotations, mover_location
from .retarget import joints_from_pose, solve_rotations
from .rotations import continuous_quats, from_quat, matrix_to_quat, polar_rotation, quat_to_matrix, slerp, to_quat
from .skeleton import FPS, INDEX, JOINTS, PELVIS_HEIGHT, from_blender, to_blender

TOKEN = 4                 # model frames per token
MAX_WINDOW = MAX_FRAMES   # model frames one call sees (9.8 s)
MAX_EXTEND_SECONDS = (MAX_WINDOW - TOKEN) / FPS  # an extension keeps at least one token of context
BLEND_SECONDS = 0.4       # border blend length (clamped to a third of the range)
MIN_BLEND_FRAMES = 3
# Joints the inverse retarget must find on the rig for the 22-joint motion to mean anything.
INVERSE_REQUIRED = ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
                    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")
SIDES = ("BEFORE", "AFTER")


@dataclass(frozen=True)
class Window:
    """Where to sample, what the model regenerates, and which scene frames get new keys."""

    first: float            # scene frame of sample 0
    step: float             # scene frames per model frame (scene fps / 20)
    samples: int            # joint frames to sample (feature rows + 1)
    offset: int             # decoded frame of sample 0 (the new frames of an extension before it)
    edit_start: int         # first regenerated model frame of the decoded window (token aligned)
    edit_end: int           # one past the last (token aligned)
    keys: np.ndarray        # (K,) integer scene frames that get new keys
    kind: str = "RANGE"     # RANGE | BEFORE | AFTER

    @property
    def frames(self) -> int:
        """Feature rows the sampled window gives (a multiple of 4)."""
        return self.samples - 1

    @property
    def decoded(self) -> int:
        """Frames of the model's decoded window."""
        return self.frames + (self.edit_end - self.edit_start if self.kind != "RANGE" else 0)

    def sample_frames(self) -> np.ndarray:
        """Scene frames (maybe fractional) of the joint samples."""
        return self.first + self.step * np.arange(self.samples)

    def key_positions(self) -> np.ndarray:
        """Each key's position in decoded model frames."""
        return self.offset + (self.keys - self.first) / self.step

    @property
    def anchor(self) -> int:
        """The original key the new keys join: the one before a range or an extension after the
        animation, the one after an extension before it."""
        return int(self.keys[-1] + 1) if self.kind == "BEFORE" else int(self.keys[0] - 1)

    def blend_positions(self) -> np.ndarray:
        """Decoded positions the new motion is read at: the keys, and for an extension the join
        as well (first row after the animation, last row before it)."""
        keys = self.key_positions()
        if self.kind == "RANGE":
            return keys
        join = self.offset + (self.anchor - self.first) / self.step
        return np.concatenate([[join], keys]) if self.kind == "AFTER" else np.concatenate([keys, [join]])

    def context_mask(self) -> np.ndarray:
        """(frames,) True on the sampled frames whose tokens the model kept."""
        decoded = self.offset + np.arange(self.frames)
        return (decoded < self.edit_start) | (decoded >= self.edit_end)

    def covered(self) -> tuple[int, int]:
        """Scene frames the regenerated tokens span (the range rounded outward to whole tokens)."""
        lo = self.first + (self.edit_start - self.offset) * self.step
        hi = self.first + (self.edit_end - 1 - self.offset) * self.step
        return int(math.floor(lo + 1e-6)), int(math.ceil(hi - 1e-6))


def _scene_step(fps: float) -> float:
    """Scene frames per model frame, the scene's rate checked as every frame rate is."""
    from model_core.inputs.timing import frame_rate

    from ..errors import model_checks

    with model_checks():
        return frame_rate(fps, "the scene's frame rate") / FPS


def plan_range(anim_start: int, anim_end: int, start: int, end: int, fps: float,
               max_window: int = MAX_WINDOW) -> Window:
    """The window for regenerating scene frames start..end (inclusive) of an animation
    spanning anim_start..anim_end. The range starts on a token border; context fills the rest
    of the window, split between both sides."""
    step = _scene_step(fps)
    if end < start:
        raise MomaskError(f"the range ends (frame {end}) before it starts (frame {start})")
    if start < anim_start or end > anim_end:
        raise MomaskError(f"frames {start}-{end} are outside the animation (frames {anim_start}-{anim_end}): "
                          "pick a range inside it, or extend the animation first")
    span = (end - start) / step                   # model frames between the first and last key
    if span + 1 < TOKEN - 1e-6:
        raise MomaskError(f"frames {start}-{end} are shorter than one token ({TOKEN} frames at 20 fps = "
                          f"{TOKEN * step:g} scene frames): pick a longer range")
    length = TOKEN * math.ceil((math.ceil(span - 1e-6) + 1) / TOKEN)   # regenerated model frames
    budget = max_window - length
    if budget < TOKEN:
        raise MomaskError(f"frames {start}-{end} ({(end - start + 1) / fps:.2f} s) leave no room for context in "
                          f"one model window of {max_window / FPS:g} s: pick a range of at most "
                          f"{(max_window - TOKEN) / FPS:g} s")
    room_before = (start - anim_start) / step
    room_after = (anim_end - start) / step - length   # the last sample sits `after` frames past the range
    before = min(room_before, max(budget / 2, budget - max(room_after, 0)))
    before = TOKEN * int(math.floor(before / TOKEN + 1e-9))
    after = TOKEN * int(math.floor(max(0.0, min(room_after, budget - before)) / TOKEN + 1e-9))
    if before + after < TOKEN:
        raise MomaskError(f"frames {start}-{end} leave no room for context: the model needs at least "
                          f"{TOKEN / FPS:g} s of animation before or after the range (it has "
                          f"{max(room_before, 0) / FPS:.2f} s before, {max(room_after, 0) / FPS:.2f} s after)")
    frames = before + length + after
    return Window(first=start - before * step, step=step, samples=frames + 1, offset=0, edit_start=before,
                  edit_end=before + length, keys=np.arange(start, end + 1), kind="RANGE")


def plan_extension(anim_start: int, anim_end: int, seconds: float, side: str, fps: float,
                   max_window: int = MAX_WINDOW) -> Window:
    """The window for `seconds` of new motion before or after the animation."""
    step = _scene_step(fps)
    if side not in SIDES:
        raise MomaskError(f"extend side must be one of {SIDES}, got {side!r}")
    limit = (max_window - TOKEN) / FPS
    if not (math.isfinite(seconds) and seconds > 0) or seconds > limit + 1e-9:
        raise MomaskError(f"an extension adds more than 0 and at most {limit:g} s, got {seconds:g} s")
    count = int(round(seconds * fps))
    # model frames the new keys need: after, the last key must lie on a decoded frame (+1)
    new = TOKEN * math.ceil((count / step + (side == "AFTER")) / TOKEN - 1e-6)
    if new > max_window - TOKEN:
        raise MomaskError(f"an extension adds more than 0 and at most {limit:g} s, got {seconds:g} s")
    length = (anim_end - anim_start) / step
    context = TOKEN * int(math.floor(min(length, max_window - new) / TOKEN + 1e-9))
    if context < TOKEN:
        raise MomaskError(f"the animation (frames {anim_start}-{anim_end}) is shorter than one token "
                          f"({TOKEN / FPS:g} s): nothing to continue from")
    if side == "AFTER":
        keys = anim_end + np.arange(1, count + 1)
        keys = keys[(keys - anim_end) / step <= new - 1 + 1e-6]
        return Window(first=anim_end - context * step, step=step, samples=context + 1, offset=0,
                      edit_start=context, edit_end=context + new, keys=keys, kind="AFTER")
    keys = anim_start - np.arange(count, 0, -1)
    keys = keys[(anim_start - keys) / step <= new + 1e-6]
    return Window(first=float(anim_start), step=step, samples=context + 1, offset=new, edit_start=0,
                  edit_end=new, keys=keys, kind="BEFORE")


# ----------------------------------------------------------------------------- the range to edit


def range_from_keys(selected: np.ndarray) -> tuple[int, int]:
    """The range spanned by selected keyframes (their frames, any order)."""
    selected = np.asarray(selected, dtype=np.float64).ravel()
    if selected.size == 0:
        raise MomaskError("no keyframes are selected: select the keys of the range in the Dope Sheet or Graph Editor")
    return int(math.floor(selected.min() + 1e-6)), int(math.ceil(selected.max() - 1e-6))


def range_from_preview(use_preview: bool, start: int, end: int) -> tuple[int, int]:
    if not use_preview:
        raise MomaskError("the scene has no preview range: set one (Ctrl P in the timeline) or type the frames")
    return int(start), int(end)


def check_inverse_map(joint_bone: dict[int, int]) -> None:
    """Every joint the inverse retarget needs is mapped, or an error listing the unmapped ones."""
    lacking = [j for j in INVERSE_REQUIRED if INDEX[j] not in joint_bone]
    if lacking:
        unmapped = [j for j in JOINTS if INDEX[j] not in joint_bone]
        raise MomaskError(f"cannot read the motion back from this rig: the joints {', '.join(lacking)} have no "
                          f"bone (unmapped: {', '.join(unmapped)}); map them in the 'momask_bone_map' bone map")


# ----------------------------------------------------------------------------- rig pose → joints


def world_deltas(rest: np.ndarray, pose: np.ndarray, world: np.ndarray) -> np.ndarray:
    """World deltas (F, N, 3, 3) from rest (N, 4, 4) and posed (F, N, 4, 4) armature-space bone
    matrices and the object's world matrix: pose orientation × rest orientationᵀ, in world axes."""
    A = polar_rotation(np.asarray(world, np.float64)[:3, :3])
    R = polar_rotation(np.asarray(rest, np.float64)[:, :3, :3])
    P = polar_rotation(np.asarray(pose, np.float64)[..., :3, :3])
    return A @ P @ np.swapaxes(R, -1, -2) @ A.T


def rig_joints(plan: RigPlan, pose: np.ndarray) -> np.ndarray:
    """22 joints (F, 22, 3), HumanML3D axes and proportions, from posed armature-space bone
    matrices (F, N, 4, 4) ordered like `plan.rig.names`."""
    pose = np.asarray(pose, np.float64)
    Q = world_deltas(plan.rig.matrices, pose, plan.rig.world)
    pelvis = plan.rig.to_world(pose[:, plan.joint_bone[0], :3, 3])
    return from_blender(joints_from_pose(plan, Q, pelvis))


def pose_from_joints(plan: RigPlan, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of `rig_joints`: local quaternions (F, K, 4) of the keyed bones (`plan.key_bones`:
    the mapped ones, or their drivers) and the root bone's location channel (F, 3), from joints (F, 22, 3) in the
    space `rig_joints` returns (HumanML3D axes, the rig's world placement divided by its scale)."""
    J = to_blender(joints)
    Q = solve_rotations(J, plan)
    scale = plan.leg_length / SOURCE_LEG
    rest = plan.heads[plan.joint_bone[0]]
    target = np.empty((len(J), 3))
    target[:, :2] = scale * J[:, 0, :2]
    target[:, 2] = scale * (J[:, 0, 2] - PELVIS_HEIGHT) + rest[2]
    quats = continuous_quats(matrix_to_quat(local_rotations(plan, Q, plan.key_bones)), axis=0)
    return quats, mover_location(plan, target - rest)


# ----------------------------------------------------------------------------- putting the window back


def fit_yaw_translation(moved: np.ndarray, original: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rotation about +Y (3, 3) and translation (3,) taking `moved` (..., 3) onto `original`
    (..., 3) in the least-squares sense (HumanML3D axes: Y up)."""
    a = np.asarray(moved, np.float64).reshape(-1, 3)
    b = np.asarray(original, np.float64).reshape(-1, 3)
    ca, cb = a.mean(0), b.mean(0)
    a0, b0 = a - ca, b - cb
    # rotation about Y (yaw_matrices): x' = c x + s z, z' = -s x + c z
    num = (a0[:, 2] * b0[:, 0] - a0[:, 0] * b0[:, 2]).sum()
    den = (a0[:, 0] * b0[:, 0] + a0[:, 2] * b0[:, 2]).sum()
    R = yaw_matrices(math.atan2(num, den))
    return R, cb - R @ ca


def put_back(decoded: np.ndarray, aligned: np.ndarray, original: np.ndarray, context: np.ndarray) -> np.ndarray:
    """The decoded window (D, 22, 3) moved by the yaw and translation that lay its frames
    `aligned` (F, 22, 3; those that match the samples) onto the `original` samples (F, 22, 3),
    fitted over the context frames (F,) the model kept."""
    if not context.any():
        raise MomaskError("no context frames to place the regenerated motion by")
    R, t = fit_yaw_translation(aligned[context], original[context])
    return decoded @ R.T + t


# ----------------------------------------------------------------------------- blending


def blend_frames(count: int, fps: float) -> int:
    """Frames of the blend at each border of a range of `count` keys."""
    return int(max(1, min(max(MIN_BLEND_FRAMES, round(BLEND_SECONDS * fps)), count // 3)))


def border_weights(count: int, blend: int, start: bool = True, end: bool = True) -> np.ndarray:
    """(count,) weights of the new motion: 0 → 1 over `blend` keys after the start border and
    1 → 0 before the end border (smoothstep), never reaching 0 or 1 on the blended keys."""
    k = np.arange(count, dtype=np.float64)
    w = np.ones(count)
    if start:
        w = np.minimum(w, (k + 1) / (blend + 1))
    if end:
        w = np.minimum(w, (count - k) / (blend + 1))
    return smoothstep(w)


def crossfade(original: np.ndarray, new: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Quaternions (K, 4): slerp from the original keys to the new ones by the weights, sign-
    continuous and starting in the original's hemisphere."""
    out = slerp(original, new, weights)
    flip = (out * original).sum(-1) < 0
    out[flip] *= -1
    return continuous_quats(out, axis=0) if len(out) else out


def _fade(count: int, at_start: bool, blend: int) -> np.ndarray:
    """(count,) weights of the offset at each new key: key k is k+1 keys from the join."""
    k = np.arange(count) if at_start else np.arange(count)[::-1]
    return smoothstep(1.0 - (k + 1) / (blend + 1))


def fade_offset(anchor: np.ndarray, new: np.ndarray, at_start: bool, blend: int) -> np.ndarray:
    """Quaternions (K, 4) of the new keys: `new` (K+1, 4) holds the new motion at the join (its
    first row when the new keys follow the join, its last when they precede it) and at each key;
    the rotation taking the join onto `anchor` (the original key there) is faded out over `blend`."""
    new = np.asarray(new, np.float64)
    join, keys = (new[0], new[1:]) if at_start else (new[-1], new[:-1])
    if not len(keys):
        return keys
    delta = matrix_to_quat(quat_to_matrix(anchor) @ quat_to_matrix(join).T)
    ident = np.broadcast_to(np.array([1.0, 0.0, 0.0, 0.0]), keys.shape)
    d = quat_to_matrix(slerp(ident, np.broadcast_to(delta, keys.shape), _fade(len(keys), at_start, blend)))
    return matrix_to_quat(d @ quat_to_matrix(keys))


def fade_values(anchor: np.ndarray, new: np.ndarray, at_start: bool, blend: int) -> np.ndarray:
    """Location values (K, C) of the new keys: `new` (K+1, C) laid out as in `fade_offset`, the
    offset to the original key at the join faded out over `blend` keys."""
    new = np.asarray(new, np.float64)
    join, keys = (new[0], new[1:]) if at_start else (new[-1], new[:-1])
    return keys + _fade(len(keys), at_start, blend)[:, None] * (np.asarray(anchor, np.float64) - join)


# ----------------------------------------------------------------------------- the model step


def model_window(model, window: Window, joints: np.ndarray, prompt: str, *, seed: int = 0,
                 settings=None, progress=None, constraints=()) -> np.ndarray:
    """Run the model on the sampled window joints (samples, 22, 3; HumanML3D axes) and return
    the decoded window (decoded, 22, 3) placed back where the sampled window was, its
    regenerated frames meeting `constraints` (decoded frames, the samples' space). `model` is a
    loaded `MoMask` or a server's `RemoteModel`: both have `edit_range` and `extend`."""
    import model_core
    from model_core.motion import joints_to_features

    joints = np.asarray(joints, np.float64)
    if joints.shape != (window.samples, 22, 3):
        raise MomaskError(f"expected {window.samples} sampled frames of 22 joints, got {joints.shape}")
    try:
        features, _ = joints_to_features(joints.astype(np.float32))
        if window.kind == "RANGE":
            edited = model.edit_range(features, window.edit_start, window.edit_end - 1, prompt, seed=seed,
                                      settings=settings, progress=progress)
        else:
            new = window.edit_end - window.edit_start
            sides = {"frames_after": new} if window.kind == "AFTER" else {"frames_before": new}
            edited = model.extend(features, prompt, seed=seed, settings=settings, progress=progress, **sides)
    except model_core.ModelError as err:
        raise MomaskError(str(err)) from None
    decoded = np.asarray(edited.motion.joints[0, : edited.motion.lengths[0]], np.float64)
    if not np.isfinite(decoded).all():
        raise MomaskError("the model produced NaN/inf joint positions (broken checkpoints?)")
    if (edited.frame_start, edited.frame_end) != (window.edit_start, window.edit_end):
        raise MomaskError(f"the model regenerated frames {edited.frame_start}-{edited.frame_end}, expected "
                          f"{window.edit_start}-{window.edit_end}")
    own = decoded[window.offset: window.offset + window.frames]
    placed = put_back(decoded, own, joints[: window.frames], window.context_mask())
    if not constraints:
        return placed
    from model_core.control import meet_constraints

    try:
        return meet_constraints(placed, constraints, span=(window.edit_start, window.edit_end))
    except model_core.ModelError as err:
        raise MomaskError(str(err)) from None


# ----------------------------------------------------------------------------- channels


def blend_rotation(mode: str, original: np.ndarray, new: np.ndarray, kind: str, blend: int,
                   anchor: np.ndarray) -> np.ndarray:
    """Channel values (K, C) for one bone's new keys.

    RANGE: slerp from the original keys (K, C) into the new quaternions (K, 4) and back over
    `blend` keys at each border; `anchor` is the value on the key before the range.
    AFTER/BEFORE: `new` (K+1, 4) also holds the join (see `fade_offset`); the offset to `anchor`
    (the original end key) is faded out."""
    new = np.asarray(new, np.float64)
    if kind == "RANGE":
        q = crossfade(to_quat(original, mode), new, border_weights(len(new), blend))
    else:
        q = fade_offset(to_quat(np.asarray(anchor)[None], mode)[0], new, kind == "AFTER", blend)
    if kind == "BEFORE":  # continue from the anchor backwards in time
        return from_quat(q[::-1], mode, anchor)[::-1]
    return from_quat(q, mode, anchor)


def blend_location(original: np.ndarray, new: np.ndarray, kind: str, blend: int, anchor: np.ndarray) -> np.ndarray:
    """Location values (K, 3) for the root bone's new keys (linear blends: locations are vectors)."""
    new = np.asarray(new, np.float64)
    if kind == "RANGE":
        w = border_weights(len(new), blend)[:, None]
        return np.asarray(original, np.float64) * (1 - w) + new * w
    return fade_values(anchor, new, kind == "AFTER", blend)
