"""The loaded MoMask networks and their single passes: text → features, tokens ↔ motion.

One object holds the loaded models; every call takes its own seed (a `torch.Generator` per
sample, never global RNG state), so the same prompt, seed and settings give the same motion
whatever else is in the batch.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from .. import motion as motion_repr
from ..checkpoints.layout import MASK_FILE, RESIDUAL_FILE, RVQ_FILE, ModelFolders, find_models
from ..checkpoints.options import read_options
from ..checkpoints.weights import assign_state, load_weights
from ..errors import ModelError
from ..inputs.arrays import finite_values
from ..inputs.numbers import seed as check_seed
from ..inputs.statistics import read_statistic
from ..networks import int8 as fast_path
from ..networks.length_estimator import LengthEstimator
from ..networks.rvq import RVQVAE, RVQConfig
from ..networks.transformer import (
    TRAINING_DEFAULT_HEADS,
    MaskTransformer,
    ResidualTransformer,
    TransformerConfig,
    guided,
)
from ..settings import MAX_FRAMES, GenerationSettings
from ..text.clip import load_clip_text
from ..text.tokenizer import tokenize
from .requests import RESIDUAL_LAYERS, Motion, Progress, check_prompts, report, report_step
from .sampling import lengths_to_padding, masked_decode, residual_decode

DEVICE_TYPES = ("cpu", "cuda")


def _resolve_device(device: str | torch.device) -> torch.device:
    """cpu, cuda, cuda:N or auto, as a torch.device that exists here; anything else is a ModelError."""
    text = str(device).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = text.partition(":")
    if kind not in DEVICE_TYPES or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise ModelError(f"unknown device {str(device)!r}: use cpu, cuda, cuda:N or auto")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"device {text!r} asked for, but PyTorch sees no CUDA GPU")
        if index and int(index) >= torch.cuda.device_count():
            raise ModelError(f"device {text!r} asked for, but PyTorch sees {torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device(text)


class TokenModel:
    """The loaded networks and what each does in one pass: text features, base tokens, residual
    layers, decoding tokens into motion and encoding motion into tokens."""

    def __init__(self, folders: ModelFolders, rvq: RVQVAE, mask_model: MaskTransformer,
                 residual_model: ResidualTransformer, length_model: LengthEstimator, clip: torch.nn.Module,
                 mean: np.ndarray, std: np.ndarray, device: torch.device, clip_path: Path | None = None):
        self.folders = folders
        self.clip_path = clip_path
        self.rvq, self.mask_model, self.residual_model = rvq, mask_model, residual_model
        self.length_model, self.clip = length_model, clip
        self.mean, self.std = mean.astype(np.float32), std.astype(np.float32)
        self.device = device

    # ----------------------------------------------------------------------------- loading

    @classmethod
    def load(cls, checkpoints: str | Path, clip: str | Path, device: str | torch.device = "cpu", *,
             dataset: str | None = None, mask_name: str | None = None,
             residual_name: str | None = None, fast: bool = False) -> TokenModel:
        """Load from the official folder layout and OpenAI's CLIP file; every file is checked.

        `fast=True` (CPU only) runs the masked transformer's feed-forward layers with int8 weights:
        faster, and its tokens can differ from the official ones where two choices are nearly tied.
        """
        device = _resolve_device(device)
        folders = find_models(checkpoints, dataset, mask_name, residual_name)
        for path in folders.files():
            if not path.is_file():
                raise ModelError(f"missing model file: expected {path}")
        mean = _load_stat(folders.rvq / "meta" / "mean.npy", folders.feature_dim)  # small files: checked first
        std = _load_stat(folders.rvq / "meta" / "std.npy", folders.feature_dim)
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
        length_model = _length_estimator(folders.length_estimator, clip_dim)
        model = cls(folders, rvq, mask_model, residual_model, length_model.eval(), text_model, mean, std, device,
                    clip_path=Path(clip))
        model.to(device)
        if fast:
            if device.type != "cpu" or not fast_path.available():
                raise ModelError("the fast path needs a CPU with PyTorch's fbgemm engine; use the exact path")
            fast_path.quantise_feed_forward(mask_model.seqTransEncoder.layers)
        return model

    def to(self, device: str | torch.device) -> TokenModel:
        self.device = _resolve_device(device)
        for module in (self.rvq, self.mask_model, self.residual_model, self.length_model, self.clip):
            module.to(self.device)
        return self

    def generators(self, seeds: Sequence[int]) -> list[torch.Generator]:
        """One random stream per sample, on the model's device: a sample's result never depends on
        what else is in its batch."""
        return [torch.Generator(device=self.device).manual_seed(check_seed(s)) for s in seeds]

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
        tokens = tokenize(check_prompts(prompts)).to(self.device)
        return _finite(self.clip(tokens).float(), "CLIP's text tower", self.clip_path)

    @torch.no_grad()
    def length_logits(self, text_features: torch.Tensor) -> torch.Tensor:
        """Scores over motion lengths in tokens (index i = i tokens)."""
        return _finite(self.length_model(text_features.to(self.device)), "the length estimator",
                       self.folders.length_estimator)

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
            return _finite(guided(lambda c: model(current, c, padding), cond, settings.guidance),
                           "the masked transformer", self.folders.mask_transformer / MASK_FILE)

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
            return _finite(guided(lambda c: model(history, layer, c, padding), cond, guidance),
                           "the residual transformer", self.folders.residual_transformer / RESIDUAL_FILE)

        return residual_decode(logits_fn, model.token_embeddings(), base.to(self.device), padding,
                               pad_id=model.pad_id, temperature=temperature, topk=topk,
                               generators=generators)

    def sample_tokens(self, text_features: torch.Tensor, token_lengths: Sequence[int], settings: GenerationSettings,
                      generators: list[torch.Generator] | None = None, progress: Progress | None = None, *,
                      ids: torch.Tensor | None = None, editable: torch.Tensor | None = None,
                      on_step: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
        """Base tokens (generated, or `editable` ones of `ids` refilled), then every residual layer: all
        ids (B, N, Q). Each remasking step and the residual layers are reported to `progress`, which
        may raise to stop between two passes; `on_step(step, ids)` sees each step's tokens."""
        def step(k: int, current: torch.Tensor) -> None:
            if on_step is not None:
                on_step(k, current)
            report_step(progress, k, settings.steps)

        base = self.base_tokens(text_features, token_lengths, settings, generators, ids=ids, editable=editable,
                                on_step=step)
        report(progress, "residual layers", RESIDUAL_LAYERS)
        return self.residual_tokens(text_features, base, token_lengths, settings.residual_guidance,
                                    settings.residual_temperature, settings.topk, generators)

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
            raise ModelError(f"the motion decoder produced NaN or infinite values: its weights "
                             f"({self.folders.rvq / RVQ_FILE}) are probably corrupted")
        features = self.denormalise(normalised)
        joints = np.zeros((*features.shape[:2], self.joints_num, 3), np.float32)
        for i, frames in enumerate(lengths):
            joints[i, :frames] = motion_repr.recover_from_ric(features[i, :frames], self.joints_num)
        try:
            finite_values(joints, "the generated joints")
        except ModelError as err:
            raise ModelError(f"{err}: the weight or statistics files are probably corrupted") from None
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


def _finite(values: torch.Tensor, network: str, path: Path | None) -> torch.Tensor:
    """`values` if every one is finite; NaN or inf out of a network means its weights are broken.

    Checked on each network's output (a few thousand numbers a pass), not on the weights at load:
    a pass over hundreds of megabytes of weights would double the load time, and an output check
    also catches what no single weight shows (all-inf weights give NaN, not inf, further on)."""
    if not bool(torch.isfinite(values).all()):
        raise ModelError(f"{network} produced NaN or infinite values: its weights ({path}) are probably corrupted")
    return values


def _build(cls, config, path: Path, keys: tuple[str, ...]):
    """The network of `config` holding the weights at `path`, checked before anything is allocated.

    The options' counts and sizes are first compared with the weights' own (`config.check_weights`:
    an opt.txt saying 100000 layers is refused at once), then the module is laid out on the meta
    device (no memory) and every key and shape compared; the loaded tensors become its parameters.
    """
    state = load_weights(path, keys)
    config.check_weights(state, path)
    with torch.device("meta"):
        module = cls(config)
    assign_state(module, state, path)
    return module.eval()


def _length_estimator(path: Path, clip_dim: int) -> LengthEstimator:
    """The length estimator; its number of lengths is read off its last layer's weight."""
    state = load_weights(path, ("estimator",))
    layers = [(int(m.group(1)), k) for k in state if (m := re.match(r"^output\.(\d+)\.weight$", k))]
    if not layers or state[max(layers)[1]].ndim != 2:
        raise ModelError(f"{path}: no output.N.weight matrices, so not a length estimator")
    with torch.device("meta"):
        model = LengthEstimator(clip_dim, int(state[max(layers)[1]].shape[0]))
    assign_state(model, state, path)
    return model


def _load_stat(path: Path, width: int) -> np.ndarray:
    return read_statistic(path, width)
