"""Finding the three MoMask models and the length estimator in the official folder layout.

`checkpoints/<dataset>/<name>/{opt.txt, model/*.tar, meta/*.npy}`, as the official download
script unpacks it. The masked transformer's opt.txt names its RVQ (`vq_name`); the residual
transformer is the `tres_*` folder trained on that same RVQ.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from .options import read_options

DATASETS = {"t2m": (263, 22), "kit": (251, 21)}  # feature width, joints
RVQ_FILE = Path("model") / "net_best_fid.tar"
MASK_FILE = Path("model") / "latest.tar"
RESIDUAL_FILE = Path("model") / "net_best_fid.tar"
LENGTH_FILE = Path("length_estimator") / "model" / "finest.tar"


@dataclass(frozen=True)
class ModelFolders:
    dataset: str
    root: Path               # checkpoints/<dataset>
    rvq: Path
    mask_transformer: Path
    residual_transformer: Path

    @property
    def length_estimator(self) -> Path:
        return self.root / LENGTH_FILE

    @property
    def feature_dim(self) -> int:
        return DATASETS[self.dataset][0]

    @property
    def joints_num(self) -> int:
        return DATASETS[self.dataset][1]

    def files(self) -> list[Path]:
        """Every file a full load reads, for status displays and clear 'missing' messages."""
        return [self.rvq / "opt.txt", self.rvq / RVQ_FILE, self.rvq / "meta" / "mean.npy",
                self.rvq / "meta" / "std.npy", self.mask_transformer / "opt.txt",
                self.mask_transformer / MASK_FILE, self.residual_transformer / "opt.txt",
                self.residual_transformer / RESIDUAL_FILE, self.length_estimator]


def _dataset_root(checkpoints: Path, dataset: str | None) -> tuple[str, Path]:
    if not checkpoints.is_dir():
        raise ModelError(f"checkpoint folder not found: {checkpoints}")
    if checkpoints.name in DATASETS and (dataset is None or dataset == checkpoints.name):
        return checkpoints.name, checkpoints
    names = [dataset] if dataset else list(DATASETS)
    for name in names:
        if (checkpoints / name).is_dir():
            return name, checkpoints / name
    wanted = " or ".join(str(checkpoints / n) for n in names)
    raise ModelError(f"no model folder in {checkpoints}: expected {wanted} (the official download's layout)")


def find_models(checkpoints: str | Path, dataset: str | None = None, mask_name: str | None = None,
                residual_name: str | None = None) -> ModelFolders:
    """Locate the models under `checkpoints` (a folder holding t2m/ or kit/, or one of those)."""
    if dataset is not None and dataset not in DATASETS:
        raise ModelError(f"unknown dataset {dataset!r}: expected one of {sorted(DATASETS)}")
    dataset, root = _dataset_root(Path(checkpoints).expanduser(), dataset)
    if mask_name is None:
        # a folder that names its RVQ and is not a residual model; its weights are checked later,
        # so a missing latest.tar is reported by its full path
        named = {p.parent for p in root.glob("*/opt.txt") if "vq_name" in read_options(p)}
        weighted = {p.parent.parent for p in root.glob(f"*/{MASK_FILE.as_posix()}")}
        candidates = sorted(p for p in named | weighted if not p.name.startswith("tres_"))
        if not candidates:
            raise ModelError(f"no masked transformer in {root}: expected a folder with opt.txt and {MASK_FILE}")
        if len(candidates) > 1:
            raise ModelError(f"several masked transformers in {root} ({', '.join(c.name for c in candidates)}): "
                             "name one explicitly")
        mask = candidates[0]
    else:
        mask = root / mask_name
    vq_name = read_options(mask / "opt.txt").get("vq_name")
    if not isinstance(vq_name, str):
        raise ModelError(f"{mask / 'opt.txt'}: option 'vq_name' is missing")
    if residual_name is None:
        folders = sorted(p for p in root.glob("tres_*") if p.is_dir())
        residuals = [p for p in folders if (p / "opt.txt").is_file()
                     and read_options(p / "opt.txt").get("vq_name") == vq_name]
        unreadable = [p for p in folders if not (p / "opt.txt").is_file()]
        if not residuals and unreadable:
            raise ModelError(f"missing options file: expected {unreadable[0] / 'opt.txt'}")
        if not residuals:
            raise ModelError(f"no residual transformer trained on {vq_name} in {root}: expected a tres_* folder")
        if len(residuals) > 1:
            raise ModelError(f"several residual transformers for {vq_name} in {root} "
                             f"({', '.join(r.name for r in residuals)}): name one explicitly")
        residual = residuals[0]
    else:
        residual = root / residual_name
    return ModelFolders(dataset=dataset, root=root, rvq=root / vq_name, mask_transformer=mask,
                        residual_transformer=residual)
