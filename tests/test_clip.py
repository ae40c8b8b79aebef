"""CLIP text side: tokenizer ids, the TorchScript reader, and text features against the official run."""
from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_core.text.clip import ClipTextConfig, ClipTextEncoder, is_text_key, load_clip_text
from model_core.text.tokenizer import EOT_TOKEN, SOT_TOKEN, ClipTokenizer, default_vocab_path, tokenize
from model_core.text.torchscript import (
    TorchScriptArchive,
    is_torchscript_archive,
    read_torchscript_state_dict,
)
from tests.conftest import ROOT, assert_close_rel

CLIP_FILES = ["ViT-B-32.pt", "ViT-B-32.state_dict.pt"]


def _prompts(cases: dict[str, np.ndarray]) -> list[str]:
    return [str(p) for p in cases["prompts"]]


@pytest.fixture(scope="module")
def clip_dir(reference_dir: Path) -> Path:
    return reference_dir / "clip"


@pytest.fixture(scope="module")
def openai_state(clip_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(clip_dir / "ViT-B-32.state_dict.pt", map_location="cpu", weights_only=True)


# ----------------------------------------------------------------------------- tokenizer


def test_tokens_match_clip_tokenize(cases):
    prompts = _prompts(cases)
    with pytest.warns(UserWarning, match="a person slowly and very carefully") as caught:
        ids = tokenize(prompts)
    assert len(caught) == 1, "only the over-long prompt warns"
    assert ids.dtype == torch.int64
    np.testing.assert_array_equal(ids.numpy(), cases["clip_tokens"])


def test_truncation_keeps_the_start_and_ends_with_eot():
    words = "walk " * 100
    with pytest.warns(UserWarning, match="102 CLIP tokens long"):
        ids = tokenize(words)[0]
    assert ids[0] == SOT_TOKEN and ids[-1] == EOT_TOKEN
    assert (ids[1:-1] == ids[1]).all()


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t ", "\u3000"])
def test_empty_prompt_is_refused(prompt):
    with pytest.raises(ValueError, match="empty or whitespace only"):
        tokenize(["a person walks", prompt])


def test_construction_does_not_read_the_vocabulary(tmp_path):
    missing = tmp_path / "nowhere" / "bpe.txt.gz"
    tokenizer = ClipTokenizer(vocab_path=missing)  # cheap: nothing is read yet
    with pytest.raises(FileNotFoundError, match="nowhere"):
        tokenizer("a person walks")


def test_broken_vocabulary_names_the_file(tmp_path):
    bad = tmp_path / "bpe.txt.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(ValueError, match=str(bad)):
        ClipTokenizer(vocab_path=bad)("a person walks")


def test_vocabulary_found_without_running_the_clip_package():
    path = default_vocab_path()
    assert path.name == "bpe_simple_vocab_16e6.txt.gz" and path.is_file()
    assert "clip" not in sys.modules


def test_model_core_imports_without_blender_or_vision_packages():
    """In a fresh interpreter, nothing reaches for bpy, torchvision, PIL, pkg_resources or clip's modules."""
    script = textwrap.dedent(
        """
        import sys
        asked = []
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0]
                if top in {"bpy", "torchvision", "PIL", "pkg_resources"} or name.startswith("clip."):
                    asked.append(name)
                    raise ImportError(f"blocked {name}")
                return None
        sys.meta_path.insert(0, Blocker())
        import model_core, model_core.text.tokenizer, model_core.text.torchscript, model_core.text.clip
        from model_core.text.tokenizer import tokenize
        assert tokenize("a person walks").shape == (1, 77)
        assert not asked, asked
        assert "clip" not in sys.modules
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


_PIECES = st.sampled_from(
    ["&amp;", "&amp;amp;", "&lt;3", "&#39;", "'s", "'LL", "don't", "Walks", "\u00e9", "e\u0301", "\ufb01",
     "\u0130", "\U0001f642", "\u00c3\u00a9", "  ", "\n", "\t", "42", "x2", "!?", "\u4e2d\u6587", "\u0645\u0631\u062d"]
)
_TEXT = st.lists(st.one_of(st.text(max_size=12), _PIECES), max_size=12).map("".join)


def _encode_or_none(tokenizer: ClipTokenizer, text: str) -> torch.Tensor | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return tokenizer(text)[0]
        except ValueError as exc:
            assert "empty or whitespace only" in str(exc)
            return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXT)
def test_any_text_gives_a_well_formed_row(text):
    ids = _encode_or_none(ClipTokenizer(), text)
    if ids is None:
        return
    assert ids.shape == (77,) and ids.dtype == torch.int64
    assert ids[0] == SOT_TOKEN
    assert int((ids >= 0).all()) and int((ids < 49408).all())
    if "<|endoftext|>" not in text.lower():  # CLIP's own tokenizer honours the literal special token
        assert int((ids == EOT_TOKEN).sum()) == 1
    end = int(ids.argmax())
    assert ids[end] == EOT_TOKEN and not ids[end + 1 :].any()


def _openai_tokenizer():
    """OpenAI's SimpleTokenizer, loaded from its file alone (the package's __init__ cannot import here)."""
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("needs the clip-anytorch package (installed with --no-deps)")
    source = Path(list(spec.submodule_search_locations)[0]) / "simple_tokenizer.py"
    file_spec = importlib.util.spec_from_file_location("_openai_simple_tokenizer", source)
    module = importlib.util.module_from_spec(file_spec)
    file_spec.loader.exec_module(module)
    return module.SimpleTokenizer()


@pytest.fixture(scope="module")
def openai_tokenizer():
    return _openai_tokenizer()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_TEXT)
def test_same_ids_as_openai_tokenizer(openai_tokenizer, text):
    ours = _encode_or_none(ClipTokenizer(), text)
    theirs = [SOT_TOKEN, *openai_tokenizer.encode(text), EOT_TOKEN]
    if len(theirs) > 77:
        theirs = theirs[:76] + [EOT_TOKEN]
    if ours is None:
        assert len(theirs) == 2, "we refuse only prompts that CLIP encodes as nothing"
        return
    assert ours[: len(theirs)].tolist() == theirs and not ours[len(theirs) :].any()


# ----------------------------------------------------------------------------- TorchScript reader


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_reader_matches_torch_jit(clip_dir):
    path = clip_dir / "ViT-B-32.pt"
    ours = read_torchscript_state_dict(path)
    oracle = torch.jit.load(str(path), map_location="cpu").state_dict()
    assert list(ours) == list(oracle)
    for key, want in oracle.items():
        got = ours[key]
        assert got.dtype == want.dtype and got.shape == want.shape, key
        assert torch.equal(got, want), key


def test_layout_detection(clip_dir, tmp_path):
    assert is_torchscript_archive(clip_dir / "ViT-B-32.pt")
    assert not is_torchscript_archive(clip_dir / "ViT-B-32.state_dict.pt")
    assert not is_torchscript_archive(tmp_path / "missing.pt")


def _copy_zip(src: Path, dst: Path, drop=lambda name: False, replace: dict[str, bytes] | None = None) -> None:
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            if not drop(info.filename):
                zout.writestr(info.filename, replace.get(info.filename, zin.read(info.filename)))


def _storage_keys(path: Path, prefix: str) -> set[str]:
    with TorchScriptArchive(path) as archive:
        return {rec.storage for key, rec in archive.records.items() if key.startswith(prefix)}


def test_vision_storages_are_never_read(clip_dir, cases, tmp_path):
    """With every vision storage cut out of the archive, the text tower still loads and matches."""
    src = clip_dir / "ViT-B-32.pt"
    visual = _storage_keys(src, "visual.")
    assert visual and not visual & _storage_keys(src, "transformer.")
    cut = tmp_path / "ViT-B-32.pt"
    _copy_zip(src, cut, drop=lambda name: name.split("/data/")[-1] in visual and "/data/" in name)
    model = load_clip_text(cut)
    assert_close_rel(model.encode_text(_prompts(cases)[:2]).numpy(), cases["text_features"][:2])
    with pytest.raises(ValueError, match=r"ViT-B-32\.pt.*missing"):
        read_torchscript_state_dict(cut)


def _evil_archive(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("evil/data.pkl", payload)
        zf.writestr("evil/constants.pkl", pickle.dumps(()))
        zf.writestr("evil/code/__torch__/m.py", "class M(Module):\n  __parameters__ = []\n")
        zf.writestr("evil/version", "3\n")
    return path


@pytest.mark.parametrize(
    ("module", "name"), [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("torch", "load")]
)
def test_malicious_archive_is_refused_without_running_it(tmp_path, module, name):
    marker = tmp_path / "pwned"
    # GLOBAL module.name, then call it on one string argument: what a hostile pickle does.
    payload = (
        b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n"
        + b"X" + len(f"touch {marker}").to_bytes(4, "little") + f"touch {marker}".encode()
        + b"\x85R."
    )
    path = _evil_archive(tmp_path / "evil.pt", payload)
    assert is_torchscript_archive(path)
    with pytest.raises(ValueError, match=rf"evil\.pt.*{module}\.{name}"):
        TorchScriptArchive(path)
    with pytest.raises(ValueError, match=rf"evil\.pt.*{module}\.{name}"):
        load_clip_text(path)
    assert not marker.exists()


def test_torch_class_placeholders_stay_inert(tmp_path):
    """A __torch__ class is only a record: even a hostile name runs nothing and yields no tensors."""
    payload = b"\x80\x02c__torch__.os\nsystem\n)\x81}X\x01\x00\x00\x00aK\x01sb."
    with TorchScriptArchive(_evil_archive(tmp_path / "inert.pt", payload)) as archive:
        assert archive.records == {}


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_archive_names_the_file(clip_dir, tmp_path, keep):
    data = (clip_dir / "ViT-B-32.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match=r"cut\.pt"):
        TorchScriptArchive(cut)
    with pytest.raises(ValueError, match=r"cut\.pt"):
        load_clip_text(cut)


def test_damaged_records_name_the_file_and_record(clip_dir, tmp_path):
    src = clip_dir / "ViT-B-32.pt"
    key = next(iter(_storage_keys(src, "token_embedding.")))
    record = f"ViT-B-32/data/{key}"
    short = tmp_path / "short.pt"
    _copy_zip(src, short, replace={record: b"\0" * 10})
    with pytest.raises(ValueError, match=rf"short\.pt.*{record}.*10 bytes"):
        load_clip_text(short)
    gone = tmp_path / "gone.pt"
    _copy_zip(src, gone, drop=lambda name: name == record)
    with pytest.raises(ValueError, match=rf"gone\.pt.*{record}.*missing"):
        load_clip_text(gone)
    nopickle = tmp_path / "nopickle.pt"
    _copy_zip(src, nopickle, replace={"ViT-B-32/data.pkl": b"\x80\x02}q\x00(X"})
    with pytest.raises(ValueError, match=r"nopickle\.pt.*damaged"):
        load_clip_text(nopickle)
    future = tmp_path / "future.pt"
    _copy_zip(src, future, replace={"ViT-B-32/data.pkl": b"\x80\x09N."})
    with pytest.raises(ValueError, match=r"future\.pt.*damaged"):
        load_clip_text(future)


# ----------------------------------------------------------------------------- text tower


def test_config_read_off_the_shapes(openai_state):
    config = ClipTextConfig.from_shapes({k: v.shape for k, v in openai_state.items()})
    assert config == ClipTextConfig(
        vocab_size=49408, context_length=77, width=128, layers=2, heads=2, embed_dim=512
    )


@pytest.fixture(scope="module", params=CLIP_FILES)
def text_model(request, clip_dir) -> ClipTextEncoder:
    return load_clip_text(clip_dir / request.param)


def test_text_features_match_official(text_model, cases):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        features = text_model.encode_text(_prompts(cases))
    assert features.dtype == torch.float32 and not features.requires_grad
    assert_close_rel(features.numpy(), cases["text_features"])
    with torch.no_grad():
        assert_close_rel(text_model(torch.from_numpy(cases["clip_tokens"])).numpy(), cases["text_features"])


def test_batch_equals_one_by_one(text_model, cases):
    """Trimming the batch at its last EOT must not change any row."""
    prompts = _prompts(cases)[:4]
    batch = text_model.encode_text(prompts)
    single = torch.cat([text_model.encode_text([p]) for p in prompts])
    assert_close_rel(batch.numpy(), single.numpy(), tol=1e-5)


def test_keys_are_openais_text_keys(text_model, openai_state):
    assert not text_model.training
    assert set(text_model.state_dict()) == {k for k in openai_state if is_text_key(k)}
    # everything computes in fp32; the token table keeps the file's fp16 and widens the rows it looks up
    weights = dict(text_model.named_parameters())
    assert weights.pop("token_embedding.weight").dtype == openai_state["token_embedding.weight"].dtype
    assert all(p.dtype == torch.float32 for p in weights.values())


def test_bad_token_input_is_refused(text_model):
    with pytest.raises(ValueError, match="token ids"):
        text_model(torch.tensor([[SOT_TOKEN, 50000, EOT_TOKEN]]))
    with pytest.raises(ValueError, match=r"\(N, 1\.\.77\)"):
        text_model(torch.zeros(1, 78, dtype=torch.int64))
    with pytest.raises(ValueError, match="empty"):
        text_model.encode_text([" "])


def test_text_only_state_dict_loads(openai_state, cases, tmp_path):
    path = tmp_path / "text_only.pt"
    torch.save({k: v for k, v in openai_state.items() if is_text_key(k)}, path)
    features = load_clip_text(path).encode_text(_prompts(cases)[:1])
    assert_close_rel(features.numpy(), cases["text_features"][:1])


def _save_edited(openai_state, path: Path, edit) -> Path:
    state = dict(openai_state)
    edit(state)
    torch.save(state, path)
    return path


def test_wrong_shape_names_file_key_and_shapes(openai_state, tmp_path):
    def widen(state):
        state["transformer.resblocks.1.mlp.c_fc.bias"] = torch.zeros(100, dtype=torch.float16)

    path = _save_edited(openai_state, tmp_path / "wide.pt", widen)
    with pytest.raises(ValueError, match=r"wide\.pt.*resblocks\.1\.mlp\.c_fc\.bias.*\(100,\).*\(512,\)"):
        load_clip_text(path)


def test_missing_and_unexpected_keys_are_named(openai_state, tmp_path):
    path = _save_edited(openai_state, tmp_path / "lacking.pt", lambda s: s.pop("transformer.resblocks.0.ln_2.bias"))
    with pytest.raises(ValueError, match=r"lacking\.pt.*resblocks\.0\.ln_2\.bias.*\(128,\)"):
        load_clip_text(path)
    path = _save_edited(openai_state, tmp_path / "extra.pt", lambda s: s.update({"ln_final.extra": torch.zeros(1)}))
    with pytest.raises(ValueError, match=r"extra\.pt.*ln_final\.extra"):
        load_clip_text(path)
    path = _save_edited(openai_state, tmp_path / "nolayers.pt", lambda s: s.pop("ln_final.weight"))
    with pytest.raises(ValueError, match=r"nolayers\.pt.*ln_final\.weight"):
        load_clip_text(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_clip"):
        load_clip_text(tmp_path / "no_such_clip.pt")
    with pytest.raises(ValueError, match="is a folder"):
        load_clip_text(tmp_path)


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, b"PK\x03\x04broken"])
def test_unreadable_state_dict_names_the_file(tmp_path, content):
    path = tmp_path / "junk.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"junk\.pt"):
        load_clip_text(path)


def test_truncated_state_dict_names_the_file(clip_dir, tmp_path):
    data = (clip_dir / "ViT-B-32.state_dict.pt").read_bytes()
    path = tmp_path / "half.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"half\.pt"):
        load_clip_text(path)
