"""Reading source checkpoints into {key: numpy array} without executing code from the file.

- `.safetensors`: `safetensors.numpy.load_file` (no torch needed).
- PyTorch pickles (`.pth`, `.pt`, `.bin`, `.tar`): `torch.load(..., weights_only=True)`, whose
  unpickler only rebuilds tensors and plain containers; a file that asks for anything else
  is refused. Needs torch (`pip install torch`); without it the error says so.
Training checkpoints are unwrapped ({'state_dict': ...}) and DataParallel's 'module.'
prefix is removed.
"""

import os

import numpy as np

from attention_zoo.pretrained.errors import CorruptWeightsError

_TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".tar", ".ckpt")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "model_state")


def sniff_format(path):
    """"safetensors", "pytorch", "hdf5", "html" or None, from the file's first bytes (and name)."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    size = os.path.getsize(path)
    if head.startswith(_HDF5_MAGIC):
        return "hdf5"
    if head.startswith(b"PK\x03\x04"):  # torch's zip archive format
        return "pytorch"
    # safetensors: a little-endian u64 header length, then the JSON header.
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < size:
        return "safetensors"
    if head[:1] == b"\x80":  # torch's legacy format: a bare pickle stream
        return "pytorch"
    if head.lstrip()[:1] == b"<":
        return "html"
    lower = os.fspath(path).lower()
    if lower.endswith(".safetensors"):
        return "safetensors"
    if lower.endswith(_TORCH_SUFFIXES):
        return "pytorch"
    return None


def _not_a_checkpoint(path, detail):
    return CorruptWeightsError(
        f"'{path}' could not be read as a checkpoint: {detail}. If it was downloaded, the download is "
        "truncated or corrupt: delete it and download again."
    )


def read_safetensors(path):
    try:
        from safetensors.numpy import load_file
    except ImportError as error:
        raise ImportError(
            "reading .safetensors checkpoints needs the safetensors package: pip install safetensors "
            "(or pip install 'attention_zoo[pretrained]')"
        ) from error
    try:
        return dict(load_file(os.fspath(path)))
    except Exception as error:  # safetensors raises its own SafetensorError and OS/Value errors
        raise _not_a_checkpoint(path, f"invalid safetensors file ({error})") from error


def _to_numpy(value, key, path):
    import torch

    if not isinstance(value, torch.Tensor):
        raise _not_a_checkpoint(path, f"entry '{key}' is a {type(value).__name__}, not a tensor")
    value = value.detach().cpu()
    if value.dtype in (torch.bfloat16, torch.float16):
        value = value.float()
    return value.numpy()


def read_torch(path):
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"'{path}' is a PyTorch checkpoint; reading it safely needs torch (torch.load with "
            "weights_only=True): pip install torch. Or convert it to .safetensors where torch is installed."
        ) from error
    try:
        checkpoint = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError for forbidden globals, RuntimeError/EOFError for truncation
        raise _not_a_checkpoint(
            path, f"torch.load(weights_only=True) refused it ({type(error).__name__}: {str(error)[:300]})"
        ) from error
    if not isinstance(checkpoint, dict):
        raise _not_a_checkpoint(path, f"it holds a {type(checkpoint).__name__}, not a state dict")
    for key in _WRAPPER_KEYS:
        if isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    return {key: _to_numpy(value, key, path) for key, value in checkpoint.items()}


def strip_prefix(state_dict, prefix="module."):
    """Removes DataParallel's prefix when every key carries it."""
    if state_dict and all(key.startswith(prefix) for key in state_dict):
        return {key[len(prefix) :]: value for key, value in state_dict.items()}
    return state_dict


def read_state_dict(path, file_format=None):
    """{key: np.ndarray} of a .safetensors or PyTorch checkpoint at `path`."""
    if not os.path.isfile(path):
        raise CorruptWeightsError(f"'{path}' is not a file")
    if os.path.getsize(path) == 0:
        raise _not_a_checkpoint(path, "the file is empty")
    sniffed = sniff_format(path)
    if sniffed == "html":
        raise CorruptWeightsError(
            f"'{path}' is a web page, not a checkpoint: the server answered with HTML (a login, quota or "
            "'virus scan' page, as Google Drive sends for large files). Download the file in a browser "
            "and pass its path as weights=."
        )
    file_format = file_format or sniffed
    if file_format == "safetensors":
        state_dict = read_safetensors(path)
    elif file_format == "pytorch":
        state_dict = read_torch(path)
    else:
        raise _not_a_checkpoint(path, "not a .safetensors file, a PyTorch checkpoint or a Keras .h5 file")
    state_dict = strip_prefix(state_dict)
    return {key: np.asarray(value) for key, value in state_dict.items()}


__all__ = ["read_safetensors", "read_state_dict", "read_torch", "sniff_format", "strip_prefix"]
