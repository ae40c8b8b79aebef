"""The MoMask object: text → tokens → motion, and motion → tokens → edited motion.

One object holds the loaded models; every call takes its own seed (a `torch.Generator` per
sample, never global RNG state), so the same prompt, seed and settings give the same motion
whatever else is in the batch.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import fast as fast_path
from . import motion as motion_repr
from .checkpoint import assign_state, load_weights
from .clip_text import load_clip_text
from .errors import ModelError
from .layout import MASK_FILE, RESIDUAL_FILE, RVQ_FILE, ModelFolders, find_models
from .length_estimator import LengthEstimator
from .options import read_options
from .rvq import RVQVAE, RVQConfig
from .sampling import lengths_to_padding, masked_decode, residual_decode
from .settings import EDIT_RESIDUAL_GUIDANCE, FPS, MAX_FRAMES, GenerationSettings  # noqa: F401 (re-exported)
from .tokenizer import tokenize
from .transformer import TRAINING_DEFAULT_HEADS, MaskTransformer, ResidualTransformer, TransformerConfig, guided

Progress = Callable[[str, float], None]


class Cancelled(Exception):
    """Raised by a progress callback to stop a generation between two model passes."""


@dataclass
class Motion:
    """A batch of motions. Arrays are padded to the longest sample; `lengths` gives each one's frames."""
    joints: np.ndarray          # (B, T, J, 3) metres, HumanML3D axes (Y up, starts facing +Z)
    features: np.ndarray        # (B, T, C) de-normalised HumanML3D features
    tokens: np.ndarray          # (B, T/4, Q) token ids, -1 past a sample's length
    lengths: list[int]          # frames of each sample
    prompts: list[str] = field(default_factory=list)
    fps: int = FPS
    seams: list[int] = field(default_factory=list)  # frames where a long motion's windows meet


def _check_prompts(prompts: Sequence[str] | str) -> list[str]:
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise ModelError("no prompt given")
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str) or not prompt.strip():
            raise ModelError(f"prompt {i} is empty: describe the motion in words")
    return prompts


def frames_to_tokens(frames: int, unit: int = 4) -> int:
    """Lengths are cut down to whole tokens; at least one token, at most one model call."""
    if not isinstance(frames, (int, np.integer)) or isinstance(frames, bool):
        raise ModelError(f"length must be a whole number of frames, got {frames!r}")
    if frames < unit or frames > MAX_FRAMES:
        raise ModelError(f"length of {frames} frames is out of range: one call makes {unit} to {MAX_FRAMES} "
                         f"frames ({unit / FPS:.1f} to {MAX_FRAMES / FPS:.1f} s at {FPS} fps)")
    return int(frames) // unit


def seconds_to_frames(seconds: float) -> int:
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds):
        raise ModelError(f"seconds must be a finite number, got {seconds!r}")
    if seconds <= 0:
        raise ModelError(f"length must be positive, got {seconds} s")
    frames = seconds * FPS
    if not math.isfinite(frames) or frames > 1e9:
        raise ModelError(f"length of {seconds} s is far beyond what can be generated")
    return int(math.floor(frames + 1e-6))


def _report(progress: Progress | None, stage: str, fraction: float) -> None:
    if progress is not None:
        progress(stage, fraction)


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError("device 'cuda' asked for, but PyTorch sees no CUDA GPU")
    return device


class MoMask:
    """The loaded models and what can be done with them."""

    def __init__(self, folders: ModelFolders, rvq: RVQVAE, mask_model: MaskTransformer,
                 residual_model: ResidualTransformer, length_model: LengthEstimator, clip: torch.nn.Module,
                 mean: np.ndarray, std: np.ndarray, device: torch.device):
        self.folders = folders
        self.rvq, self.mask_model, self.residual_model = rvq, mask_model, residual_model
        self.length_model, self.clip = length_model, clip
        self.mean, self.std = mean.astype(np.float32), std.astype(np.float32)
        self.device = device

    # ----------------------------------------------------------------------------- loading

    @classmethod
    def load(cls, checkpoints: str | Path, clip: str | Path, device: str | torch.device = "cpu", *,
             dataset: str | None = None, mask_name: str | None = None,
             residual_name: str | None = None, fast: bool = False) -> MoMask:
        """Load from the official folder layout and OpenAI's CLIP file; every file is checked.

        `fast=True` (CPU only) runs the masked transformer's feed-forward layers with int8 weights:
        faster, and its tokens can differ from the official ones where two choices are nearly tied.
        """
        device = _resolve_device(device)
        folders = find_models(checkpoints, dataset, mask_name, residual_name)
        for path in folders.files():
            if not path.is_file():
                raise ModelError(f"missing model file: expected {path}")
        try:
            text_model = load_clip_text(clip, device="cpu")
        except ModelError:
            raise
        except (ValueError, OSError) as err:  # the CLIP reader's own errors name the file
            raise ModelError(str(err)) from err
        clip_dim = int(text_model.config.embed_dim)

        rvq_opt_path = folders.rvq / "opt.txt"
        rvq_config = RVQConfig.from_options(read_options(rvq_opt_path), folders.feature_dim, rvq_opt_path)
        rvq = _build(RVQVAE, rvq_config, folders.rvq / RVQ_FILE, ("vq_model", "net"))

        def transformer_config(folder: Path, default_heads: int | None) -> TransformerConfig:
            options = read_options(folder / "opt.txt")
            if options.get("vq_name") != folders.rvq.name:
                raise ModelError(f"{folder / 'opt.txt'}: trained on {options.get('vq_name')!r}, "
                                 f"not on {folders.rvq.name!r}")
            return TransformerConfig.from_options(
                options, folder / "opt.txt", num_tokens=rvq_config.nb_code, code_dim=rvq_config.code_dim,
                num_quantizers=rvq_config.num_quantizers, clip_dim=clip_dim, default_heads=default_heads)

        mask_model = _build(MaskTransformer, transformer_config(folders.mask_transformer, None),
                            folders.mask_transformer / MASK_FILE, ("t2m_transformer", "trans"))
        residual_model = _build(ResidualTransformer,
                                transformer_config(folders.residual_transformer, TRAINING_DEFAULT_HEADS),
                                folders.residual_transformer / RESIDUAL_FILE, ("res_transformer",))
        length_state = load_weights(folders.length_estimator, ("estimator",))
        last = max((k for k in length_state if k.endswith(".weight")), key=lambda k: int(k.split(".")[1]))
        length_model = LengthEstimator(clip_dim, int(length_state[last].shape[0]))
        assign_state(length_model, length_state, folders.length_estimator)

        mean = _load_stat(folders.rvq / "meta" / "mean.npy", folders.feature_dim)
        std = _load_stat(folders.rvq / "meta" / "std.npy", folders.feature_dim)
        model = cls(folders, rvq, mask_model, residual_model, length_model.eval(), text_model, mean, std, device)
        model.to(device)
        if fast:
            if device.type != "cpu" or not fast_path.available():
                raise ModelError("the fast path needs a CPU with PyTorch's fbgemm engine; use the exact path")
            fast_path.quantise_feed_forward(mask_model.seqTransEncoder.layers)
        return model

    def to(self, device: str | torch.device) -> MoMask:
        self.device = _resolve_device(device)
        for module in (self.rvq, self.mask_model, self.residual_model, self.length_model, self.clip):
            module.to(self.device)
        return self

    def generators(self, seeds: Sequence[int]) -> list[torch.Generator]:
        """One random stream per sample, on the model's device: a sample's result never depends on
        what else is in its batch."""
        return [torch.Generator(device=self.device).manual_seed(int(s)) for s in seeds]

    @property
    def feature_dim(self) -> int:
        return self.folders.feature_dim

    @property
    def joints_num(self) -> int:
        return self.folders.joints_num

    @property
    def frames_per_token(self) -> int:
        return self.rvq.config.frames_per_token

    # ----------------------------------------------------------------------------- text

    @torch.no_grad()
    def encode_text(self, prompts: Sequence[str] | str) -> torch.Tensor:
        """CLIP text features (B, clip_dim), fp32."""
        tokens = tokenize(_check_prompts(prompts)).to(self.device)
        return self.clip(tokens).float()

    @torch.no_grad()
    def length_logits(self, text_features: torch.Tensor) -> torch.Tensor:
        """Scores over motion lengths in tokens (index i = i tokens)."""
        return self.length_model(text_features.to(self.device))

    def estimate_tokens(self, text_features: torch.Tensor, generators: list[torch.Generator]) -> list[int]:
        """Sample each motion's token count from the length estimator, as the official code does
        when no length is given (at least one token, at most one model call)."""
        probs = self.length_logits(text_features).softmax(-1)
        most = MAX_FRAMES // self.frames_per_token
        picks = [torch.multinomial(p, 1, generator=g) for p, g in zip(probs, generators, strict=True)]
        return [int(pick.clamp(1, most)) for pick in picks]

    # ----------------------------------------------------------------------------- tokens

    @torch.no_grad()
    def base_tokens(self, text_features: torch.Tensor, token_lengths: Sequence[int], settings: GenerationSettings,
                    generators: list[torch.Generator] | None = None, *, ids: torch.Tensor | None = None,
                    editable: torch.Tensor | None = None,
                    on_step: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
        """Masked-transformer decoding: generation (ids None) or editing of `editable` positions."""
        lengths = torch.as_tensor(list(token_lengths), device=self.device)
        size = int(lengths.max()) if ids is None else ids.shape[1]
        padding = lengths_to_padding(lengths, size)
        model = self.mask_model
        if ids is None:
            ids = torch.full(padding.shape, model.mask_id, device=self.device)
            editable = torch.ones_like(padding)
        ids = torch.where(padding, model.pad_id, ids.to(self.device))
        cond = text_features.to(self.device)

        def logits_fn(current: torch.Tensor) -> torch.Tensor:
            return guided(lambda c: model(current, c, padding), cond, settings.guidance)

        return masked_decode(logits_fn, ids, editable.to(self.device), padding, steps=settings.steps,
                             mask_id=model.mask_id, temperature=settings.temperature, topk=settings.topk,
                             generators=generators, on_step=on_step)

    @torch.no_grad()
    def residual_tokens(self, text_features: torch.Tensor, base: torch.Tensor, token_lengths: Sequence[int],
                        guidance: float, temperature: float, topk: float,
                        generators: list[torch.Generator] | None = None) -> torch.Tensor:
        """Residual layers 1..Q-1 for base ids (B, N) → all ids (B, N, Q)."""
        lengths = torch.as_tensor(list(token_lengths), device=self.device)
        padding = lengths_to_padding(lengths, base.shape[1])
        model = self.residual_model
        cond = text_features.to(self.device)

        def logits_fn(history: torch.Tensor, layer: int) -> torch.Tensor:
            return guided(lambda c: model(history, layer, c, padding), cond, guidance)

        return residual_decode(logits_fn, model.token_embeddings(), base.to(self.device), padding,
                               pad_id=model.pad_id, temperature=temperature, topk=topk,
                               generators=generators)

    # ----------------------------------------------------------------------------- motion

    def normalise(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.std

    def denormalise(self, features: np.ndarray) -> np.ndarray:
        return features * self.std + self.mean

    @torch.no_grad()
    def decode(self, ids: torch.Tensor | np.ndarray, lengths: Sequence[int] | None = None,
               prompts: Sequence[str] = (), *, as_padded_batch: bool = False) -> Motion:
        """Token ids (B, N, q) → Motion; ids of -1 count as zero codes, as in the official decoder.

        Each sample is decoded at its own length (samples of one length share a call), so padding
        in the batch never reaches a sample's frames; `as_padded_batch` decodes the padded batch
        as a whole, as the official script does.
        """
        ids = torch.as_tensor(np.asarray(ids) if isinstance(ids, np.ndarray) else ids).to(self.device)
        unit = self.frames_per_token
        if lengths is None:
            lengths = [int((row[:, 0] >= 0).sum()) * unit for row in ids]
        normalised = np.zeros((ids.shape[0], ids.shape[1] * unit, self.feature_dim), np.float32)
        if as_padded_batch:
            normalised[:] = self.rvq.decode(ids).float().cpu().numpy()
        else:
            for frames in sorted(set(lengths)):
                rows = [i for i, n in enumerate(lengths) if n == frames]
                decoded = self.rvq.decode(ids[rows, : frames // unit]).float().cpu().numpy()
                normalised[rows, :frames] = decoded
        if not np.isfinite(normalised).all():
            raise ModelError("the model produced NaN or infinite values: its weight files are probably corrupted")
        features = self.denormalise(normalised)
        joints = np.zeros((*features.shape[:2], self.joints_num, 3), np.float32)
        for i, frames in enumerate(lengths):
            joints[i, :frames] = motion_repr.recover_from_ric(features[i, :frames], self.joints_num)
            if not as_padded_batch:
                features[i, frames:] = 0.0
        return Motion(joints=joints, features=features.astype(np.float32), tokens=ids.cpu().numpy(),
                      lengths=list(lengths), prompts=list(prompts))

    @torch.no_grad()
    def encode(self, features: np.ndarray) -> torch.Tensor:
        """De-normalised features (B, T, C) → token ids (B, T/4, Q)."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim == 2:
            features = features[None]
        if features.ndim != 3 or features.shape[-1] != self.feature_dim:
            raise ModelError(f"features should be (frames, {self.feature_dim}) or (batch, frames, "
                             f"{self.feature_dim}), found {features.shape}")
        if not np.isfinite(features).all():
            raise ModelError("features hold NaN or infinite values")
        if features.shape[1] < self.frames_per_token:
            raise ModelError(f"at least {self.frames_per_token} frames are needed to encode, found {features.shape[1]}")
        normalised = torch.from_numpy(self.normalise(features)).to(self.device)
        ids, _ = self.rvq.encode(normalised)
        return ids

    # ----------------------------------------------------------------------------- high level

    def generate(self, prompts: Sequence[str] | str, seconds: float | Sequence[float] | None = None, *,
                 frames: int | Sequence[int] | None = None, seed: int = 0, variations: int = 1,
                 settings: GenerationSettings | None = None, progress: Progress | None = None) -> Motion:
        """Motions for each prompt × variation; variation k of any prompt uses seed + k.

        Length: `frames` or `seconds` (one value or one per prompt); with neither, the length
        estimator samples it, as the official code does.
        """
        settings = settings or GenerationSettings()
        settings.validate()
        prompts = _check_prompts(prompts)
        if not isinstance(variations, int) or variations < 1:
            raise ModelError(f"variations must be a positive whole number, got {variations!r}")
        batch = [p for p in prompts for _ in range(variations)]
        per_prompt = _per_prompt_frames(seconds, frames, len(prompts))
        if per_prompt is not None and max(per_prompt) > MAX_FRAMES:
            return self._generate_long(prompts, per_prompt, seed, variations, settings, progress)
        generators = self.generators([seed + k for _ in prompts for k in range(variations)])

        _report(progress, "text", 0.0)
        features = self.encode_text(batch)
        if per_prompt is None:
            _report(progress, "length", 0.05)
            token_lengths = self.estimate_tokens(features, generators)
        else:
            token_lengths = [frames_to_tokens(f, self.frames_per_token) for f in per_prompt for _ in range(variations)]

        return self._tokens_to_motion(features, token_lengths, settings, generators, batch, progress)

    def _tokens_to_motion(self, text_features: torch.Tensor, token_lengths: list[int], settings: GenerationSettings,
                          generators: list[torch.Generator], prompts: list[str], progress: Progress | None, *,
                          ids: torch.Tensor | None = None, editable: torch.Tensor | None = None,
                          on_step: Callable[[int, torch.Tensor], None] | None = None) -> Motion:
        """Base tokens (generated, or `editable` ones of `ids` refilled), residual layers, decode."""
        def report_step(step: int, current: torch.Tensor) -> None:
            if on_step is not None:
                on_step(step, current)
            _report(progress, "base tokens", 0.1 + 0.6 * step / settings.steps)

        base = self.base_tokens(text_features, token_lengths, settings, generators, ids=ids, editable=editable,
                                on_step=report_step)
        _report(progress, "residual layers", 0.7)
        all_ids = self.residual_tokens(text_features, base, token_lengths, settings.residual_guidance,
                                       settings.residual_temperature, settings.topk, generators)
        _report(progress, "decode", 0.9)
        result = self.decode(all_ids, [n * self.frames_per_token for n in token_lengths], prompts)
        _report(progress, "done", 1.0)
        return result

    def _generate_long(self, prompts: list[str], frames: list[int], seed: int, variations: int,
                       settings: GenerationSettings, progress: Progress | None) -> Motion:
        """Lengths past one model call: each prompt's motion is made window by window."""
        from .timeline import Segment, generate_sequence

        parts = [generate_sequence(self, [Segment(p, f)], seed=seed, variations=variations, settings=settings,
                                   progress=progress) for p, f in zip(prompts, frames, strict=True)]
        return stack_motions(parts)

    def edit(self, prompts: Sequence[str] | str, ids: torch.Tensor | np.ndarray, edit_mask: torch.Tensor | np.ndarray,
             *, seed: int = 0, settings: GenerationSettings | None = None, progress: Progress | None = None,
             on_step: Callable[[int, torch.Tensor], None] | None = None) -> Motion:
        """Regenerate the tokens where `edit_mask` (B, N) is True, keeping the others (temporal inpainting).

        `ids` (B, N, Q) or base ids (B, N) of an encoded motion; the masked transformer refills the
        masked base tokens with the prompt in context, then every residual layer is predicted
        again for the whole motion, as the official editing script does.
        """
        settings = settings or GenerationSettings(residual_guidance=EDIT_RESIDUAL_GUIDANCE)
        settings.validate()
        prompts = _check_prompts(prompts)
        ids = torch.as_tensor(np.asarray(ids) if isinstance(ids, np.ndarray) else ids).to(self.device)
        base = ids[..., 0] if ids.ndim == 3 else ids
        mask = torch.as_tensor(np.asarray(edit_mask) if isinstance(edit_mask, np.ndarray) else edit_mask)
        mask = mask.to(self.device, torch.bool)
        if len(prompts) != base.shape[0] or mask.shape != base.shape:
            raise ModelError(f"edit needs one prompt per motion and a mask shaped like the tokens {tuple(base.shape)}; "
                             f"got {len(prompts)} prompts and a mask of {tuple(mask.shape)}")
        if not mask.any():
            raise ModelError("the edit mask selects no token: nothing to regenerate")
        if (base < 0).any() or (base >= self.mask_model.config.num_tokens).any():
            raise ModelError("token ids out of range for this model")
        generators = self.generators([seed] * len(prompts))
        lengths = [base.shape[1]] * len(prompts)
        _report(progress, "text", 0.0)
        features = self.encode_text(prompts)
        return self._tokens_to_motion(features, lengths, settings, generators, prompts, progress, ids=base,
                                      editable=mask, on_step=on_step)


def stack_motions(parts: Sequence[Motion]) -> Motion:
    """One batch from several, padded to the longest (tokens past a length are -1)."""
    frames = max(p.joints.shape[1] for p in parts)
    tokens = max(p.tokens.shape[1] for p in parts)

    def pad(a: np.ndarray, size: int, value: float = 0) -> np.ndarray:
        return np.pad(a, [(0, 0), (0, size - a.shape[1])] + [(0, 0)] * (a.ndim - 2), constant_values=value)

    return Motion(joints=np.concatenate([pad(p.joints, frames) for p in parts]),
                  features=np.concatenate([pad(p.features, frames) for p in parts]),
                  tokens=np.concatenate([pad(p.tokens, tokens, -1) for p in parts]),
                  lengths=[n for p in parts for n in p.lengths], prompts=[t for p in parts for t in p.prompts],
                  fps=parts[0].fps, seams=parts[0].seams if len(parts) == 1 else [])


def _per_prompt_frames(seconds, frames, count: int) -> list[int] | None:
    if seconds is not None and frames is not None:
        raise ModelError("give the length in seconds or in frames, not both")
    if seconds is None and frames is None:
        return None
    if frames is None:
        values = [seconds] * count if np.isscalar(seconds) else list(seconds)
        values = [seconds_to_frames(s) for s in values]
    else:
        values = [frames] * count if np.isscalar(frames) else list(frames)
    if len(values) != count:
        raise ModelError(f"{len(values)} lengths given for {count} prompts")
    return values


def _build(cls, config, path: Path, keys: tuple[str, ...]):
    module = cls(config)
    assign_state(module, load_weights(path, keys), path)
    return module.eval()


def _load_stat(path: Path, width: int) -> np.ndarray:
    try:
        value = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ModelError(f"{path}: not a readable .npy file ({err})") from err
    if value.shape != (width,):
        raise ModelError(f"{path}: expected shape ({width},), found {value.shape}")
    if not np.isfinite(value).all() or (path.name == "std.npy" and (value <= 0).any()):
        raise ModelError(f"{path}: holds NaN, infinite or non-positive values")
    return value
