"""Recompute every recorded output of a reference folder from its inputs alone.

A reference folder holds the official code's inputs and outputs on small seeded weights
(`cases.npz`, `meta.json`, `checkpoints/`, `clip/ViT-B-32.pt`, `source_motion.npy`). This module
reads only the inputs, reruns each recipe that `meta.json` describes with our implementation,
and returns the outputs under the same keys, so an outside check can compare them.
Settings (steps, guidance, temperatures) are read from the recipe texts, not assumed.
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import torch

from . import motion as motion_repr
from .errors import ModelError
from .generation.pipeline import MoMask
from .generation.sampling import lengths_to_padding
from .motion import skeleton
from .networks.transformer import guided
from .settings import GenerationSettings
from .text.tokenizer import tokenize

INPUTS = ("prompts", "vq_input", "mt_ids", "mt_lens", "gen_lens_tokens", "edit_mask")
FEET_THRESHOLD = 0.002


def _recipe_value(recipe: str, name: str, default: float, occurrence: int = 0) -> float:
    """The `occurrence`-th `name=value` in a recipe text (e.g. the second cond_scale is the residual one)."""
    found = re.findall(rf"{name}\s*=\s*([-+0-9.eE]+)", recipe)
    return float(found[occurrence]) if len(found) > occurrence else default


def _scale_from_key(key: str) -> float:
    """Guidance named in a key such as `mt_logits_cfg4`."""
    match = re.search(r"cfg([0-9.]+)$", key)
    if not match:
        raise ModelError(f"cannot read a guidance scale from key {key!r}")
    return float(match.group(1))


def _greedy_settings(recipe: str, residual_default: float) -> GenerationSettings:
    return GenerationSettings(
        steps=int(_recipe_value(recipe, "timesteps", 10)),
        guidance=_recipe_value(recipe, "cond_scale", 4.0, 0),
        residual_guidance=_recipe_value(recipe, "cond_scale", residual_default, 1),
        temperature=_recipe_value(recipe, "temperature", 1e-9, 0),
        residual_temperature=_recipe_value(recipe, "temperature", 1e-9, 1),
        topk=_recipe_value(recipe, "topk_filter_thres", 0.9),
    )


@torch.no_grad()
def replay(ref_dir: str | Path, device: str = "cpu") -> dict[str, np.ndarray]:
    ref = Path(ref_dir)
    meta, cases = _read_reference(ref)
    recipes: dict[str, str] = meta.get("recipes", {})
    model = MoMask.load(ref / "checkpoints", ref / "clip" / "ViT-B-32.pt", device=device)
    out: dict[str, np.ndarray] = {}
    prompts = [str(p) for p in cases["prompts"]]

    out["clip_tokens"] = tokenize(prompts).numpy()
    text = model.encode_text(prompts)
    out["text_features"] = text.cpu().numpy()
    out["length_logits"] = model.length_logits(text).cpu().numpy()

    vq_input = torch.from_numpy(cases["vq_input"]).to(model.device)
    code_idx, all_codes = model.rvq.encode(vq_input)
    out["vq_code_idx"] = code_idx.cpu().numpy()
    out["vq_all_codes"] = all_codes.cpu().numpy()
    out["vq_decoded"] = model.rvq.decode(code_idx).cpu().numpy()
    out["vq_decoded_first2"] = model.rvq.decode(code_idx[..., :2]).cpu().numpy()

    _mask_transformer_logits(model, cases, text, meta, out)
    _residual_logits(model, code_idx, text, meta, out)
    _generation(model, cases, text, recipes.get("gen_*", ""), out)
    _editing(model, cases, code_idx, prompts, recipes.get("edit_*", ""), out)
    _motion_representation(ref, out)
    return {key: value for key, value in out.items() if key in meta["shapes"]}


def _read_reference(ref: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """meta.json and the inputs of cases.npz, or a ModelError naming what is missing or unreadable."""
    if not ref.is_dir():
        raise ModelError(f"reference folder not found: {ref}")
    try:
        meta = json.loads((ref / "meta.json").read_text(encoding="utf-8"))
        with np.load(ref / "cases.npz", allow_pickle=False) as data:
            cases = {key: data[key] for key in INPUTS if key in data.files}
    except FileNotFoundError as err:
        raise ModelError(f"the reference folder {ref} has no {Path(err.filename).name}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ModelError(f"the reference folder {ref} holds an unreadable file ({str(err)[:200]})") from None
    missing = [key for key in INPUTS if key not in cases]
    if not isinstance(meta, dict) or not isinstance(meta.get("shapes"), dict) or missing:
        raise ModelError(f"{ref}: meta.json needs 'shapes' and cases.npz the inputs {', '.join(missing) or INPUTS}")
    return meta, cases


def _mask_transformer_logits(model: MoMask, cases, text, meta, out) -> None:
    mt = model.mask_model
    ids = torch.from_numpy(cases["mt_ids"]).to(model.device)
    padding = lengths_to_padding(torch.from_numpy(cases["mt_lens"]).to(model.device), ids.shape[1])
    ids = torch.where(padding, mt.pad_id, ids)
    cond = text[: len(ids)]
    for key in meta["shapes"]:
        if not key.startswith("mt_logits_"):
            continue
        if key.endswith("_cond"):
            logits = mt(ids, cond, padding)
        elif key.endswith("_uncond"):
            logits = mt(ids, torch.zeros_like(cond), padding)
        else:
            logits = guided(lambda c: mt(ids, c, padding), cond, _scale_from_key(key))
        out[key] = logits.permute(0, 2, 1).cpu().numpy()


def _residual_logits(model: MoMask, code_idx, text, meta, out) -> None:
    rt = model.residual_model
    tables = rt.token_embeddings()
    for key in meta["shapes"]:
        if not key.startswith("rt_logits_"):
            continue
        scale, history, layers = _scale_from_key(key), 0, []
        for layer in range(1, code_idx.shape[-1]):
            history = history + torch.nn.functional.embedding(code_idx[..., layer - 1], tables[layer - 1])
            cond = text[: len(code_idx)]
            layers.append(guided(lambda c, h=history, q=layer: rt(h, q, c, None), cond, scale).permute(0, 2, 1))
        out[key] = torch.stack(layers).cpu().numpy()


def _generation(model: MoMask, cases, text, recipe: str, out) -> None:
    lengths = [int(n) for n in cases["gen_lens_tokens"]]
    settings = _greedy_settings(recipe, residual_default=5.0)
    cond = text[: len(lengths)]
    steps: list[torch.Tensor] = []
    base = model.base_tokens(cond, lengths, settings, on_step=lambda _, ids: steps.append(ids.clone()))
    all_ids = model.residual_tokens(cond, base, lengths, settings.residual_guidance,
                                    settings.residual_temperature, settings.topk)
    frames = [n * model.frames_per_token for n in lengths]
    motion = model.decode(all_ids, frames, as_padded_batch=True)
    out["gen_step_ids"] = torch.stack(steps).cpu().numpy()
    out["gen_base_ids"] = base.cpu().numpy()
    out["gen_all_ids"] = all_ids.cpu().numpy()
    out["gen_decoded_norm"] = model.normalise(motion.features)
    out["gen_features"] = motion.features
    for i, n in enumerate(frames):
        out[f"gen_joints_{i}"] = motion.joints[i, :n]


def _editing(model: MoMask, cases, code_idx, prompts, recipe: str, out) -> None:
    edit_mask = torch.from_numpy(cases["edit_mask"]).bool()
    settings = _greedy_settings(recipe, residual_default=2.0)
    match = re.search(r"prompts\[(\d+):(\d+)\]", recipe)
    chosen = prompts[int(match.group(1)):int(match.group(2))] if match else prompts[1:2]
    steps: list[torch.Tensor] = []
    motion = model.edit(chosen, code_idx[..., 0], edit_mask, settings=settings,
                        on_step=lambda _, ids: steps.append(ids.clone()))
    out["edit_step_ids"] = torch.stack(steps).cpu().numpy()
    out["edit_base_ids"] = motion.tokens[..., 0]
    out["edit_all_ids"] = motion.tokens
    out["edit_decoded_norm"] = model.normalise(motion.features)


def _motion_representation(ref: Path, out) -> None:
    source = np.load(ref / "source_motion.npy", allow_pickle=False)
    spec = skeleton.T2M if source.shape[-1] == skeleton.T2M.feature_dim else skeleton.KIT
    joints = motion_repr.recover_from_ric(source, spec.joints_num)
    offsets = skeleton.offsets_from_joints(spec, joints[0])
    features, positions = motion_repr.joints_to_features(joints, spec, FEET_THRESHOLD, target_offsets=offsets)
    out["source_joints"] = joints
    out["tgt_offsets"] = offsets
    out["process_file_features"] = features
    out["process_file_global_positions"] = positions
