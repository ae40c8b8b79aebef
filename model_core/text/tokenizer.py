"""CLIP's byte-level BPE tokenizer, equal to `clip.tokenize(texts, truncate=True)` token for token.

MoMask conditions on CLIP ViT-B/32 text features, so prompts must become exactly the ids OpenAI's
tokenizer gives. The `clip` package itself cannot be imported here (its `__init__` pulls torchvision,
PIL and pkg_resources), so this module re-implements the tokenizer and only borrows the package's
merge list file, found on disk without importing the package.
"""
from __future__ import annotations

import gzip
import html
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import ftfy
import regex
import torch

from ..errors import ModelError

SOT_TOKEN = 49406
EOT_TOKEN = 49407
CONTEXT_LENGTH = 77
VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
# OpenAI keeps the first 48894 merges of the file (49152 ids minus 256 bytes minus the 2 specials).
_N_MERGES = 49152 - 256 - 2
_SPECIALS = ("<|startoftext|>", "<|endoftext|>")
# The pre-tokenizer: special tokens, English contractions, letter runs, single digits, punctuation runs.
_PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)
_WHITESPACE = regex.compile(r"\s+")


def default_vocab_path() -> Path:
    """The merge list shipped in the `clip` package, located without running its `__init__`."""
    # find_spec of a top-level name only consults the path finders; it never executes the package.
    spec = importlib.util.find_spec("clip")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    folders += [str(Path(entry) / "clip") for entry in sys.path if entry]
    for folder in folders:
        candidate = Path(folder) / VOCAB_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"CLIP's BPE vocabulary {VOCAB_FILE} not found: install `clip-anytorch` (with --no-deps) "
        "or pass vocab_path"
    )


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """Every byte as a printable character, so BPE never sees whitespace or control characters.

    Bytes that are already printable Latin-1 keep their own character; the rest are moved, in byte
    order, to code points from 256 upwards. The dict's order matters: the printable bytes come
    first, then the moved ones, and the vocabulary's first 512 ids follow that order.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in keep}
    moved = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + moved)
            moved += 1
    return table


@dataclass(frozen=True)
class _Vocabulary:
    encoder: dict[str, int]
    ranks: dict[tuple[str, str], int]


@lru_cache(maxsize=4)
def _load_vocabulary(path: str) -> _Vocabulary:
    """Read the merge list once per process: it dominates the tokenizer's start-up cost (~0.1 s)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not a readable gzip BPE merge list ({exc})") from exc
    merges = [tuple(line.split()) for line in lines[1 : _N_MERGES + 1]]
    if len(merges) != _N_MERGES or any(len(m) != 2 for m in merges):
        raise ModelError(f"{path}: expected {_N_MERGES} merges of two symbols each, found {len(merges)}")
    symbols = list(byte_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + list(_SPECIALS)
    encoder = {token: i for i, token in enumerate(vocab)}
    if encoder.get(_SPECIALS[0]) != SOT_TOKEN or encoder.get(_SPECIALS[1]) != EOT_TOKEN:
        raise ModelError(f"{path}: special tokens do not land on ids {SOT_TOKEN}/{EOT_TOKEN}")
    return _Vocabulary(encoder=encoder, ranks={m: i for i, m in enumerate(merges)})


def clean_text(text: str) -> str:
    """OpenAI's normalisation: repair mojibake, unescape HTML twice, collapse whitespace, lowercase."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return _WHITESPACE.sub(" ", text).strip().lower()


class ClipTokenizer:
    """Prompts to CLIP token ids. Cheap to construct: the vocabulary loads on first use, once."""

    def __init__(self, vocab_path: str | Path | None = None, context_length: int = CONTEXT_LENGTH) -> None:
        if context_length < 2:
            raise ModelError(f"context_length must leave room for SOT and EOT, got {context_length}")
        self._vocab_path = Path(vocab_path) if vocab_path is not None else None
        self._loaded: _Vocabulary | None = None
        self.context_length = context_length
        self._bpe = lru_cache(maxsize=65536)(self._bpe_uncached)

    @property
    def vocab_path(self) -> Path:
        if self._vocab_path is None:
            self._vocab_path = default_vocab_path()
        return self._vocab_path

    @property
    def _vocab(self) -> _Vocabulary:
        if self._loaded is None:
            path = self.vocab_path
            if not path.is_file():
                raise FileNotFoundError(f"CLIP BPE vocabulary not found: {path}")
            self._loaded = _load_vocabulary(str(path.resolve()))
        return self._loaded

    def _bpe_uncached(self, word: str) -> tuple[int, ...]:
        """Merge a byte-encoded word greedily by merge rank; `</w>` marks the word's end."""
        vocab = self._vocab
        if word in _SPECIALS:
            return (vocab.encoder[word],)
        parts = [*word[:-1], word[-1] + "</w>"]
        ranks = vocab.ranks
        while len(parts) > 1:
            best = min(zip(parts, parts[1:], strict=False), key=lambda pair: ranks.get(pair, len(ranks)))
            if best not in ranks:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return tuple(vocab.encoder[p] for p in parts)

    def encode(self, text: str) -> list[int]:
        """The ids of one prompt, without SOT/EOT and without truncation."""
        table = byte_to_unicode()
        ids: list[int] = []
        for piece in _PATTERN.findall(clean_text(text)):
            ids.extend(self._bpe("".join(table[b] for b in piece.encode("utf-8"))))
        return ids

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        """int64 (N, context_length): SOT, ids, EOT, zeros; long prompts keep their start, with a warning."""
        if isinstance(texts, str):
            texts = [texts]
        out = torch.zeros(len(texts), self.context_length, dtype=torch.int64)
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"prompts must be strings, got {type(text).__name__}: {text!r}")
            ids = self.encode(text)
            if not ids:
                raise ModelError(f"prompt {_short(text)} is empty or whitespace only: nothing to encode")
            tokens = [SOT_TOKEN, *ids, EOT_TOKEN]
            if len(tokens) > self.context_length:
                warnings.warn(
                    f"prompt {_short(text)} is {len(tokens)} CLIP tokens long; only the first "
                    f"{self.context_length - 1} are used (CLIP's context is {self.context_length})",
                    stacklevel=2,
                )
                tokens = tokens[: self.context_length - 1] + [EOT_TOKEN]
            out[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.int64)
        return out


def _short(text: str, limit: int = 60) -> str:
    """A prompt as messages quote it: its start, never the whole of a long text."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}… ({len(text):,} characters)"


@lru_cache(maxsize=1)
def _default_tokenizer() -> ClipTokenizer:
    return ClipTokenizer()


def tokenize(texts: str | Sequence[str]) -> torch.Tensor:
    """`clip.tokenize(texts, context_length=77, truncate=True)` with the package's own vocabulary."""
    return _default_tokenizer()(texts)
