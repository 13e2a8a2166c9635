"""Where downloaded and converted weights live, and the converted-weights file format.

Everything sits in `<cache_dir>/attention_zoo/`, where `cache_dir` is Keras' cache directory
(`$KERAS_HOME`, default `~/.keras`; `$ATTENTION_ZOO_CACHE_DIR` or the `cache_dir` argument
override it):
  <model>.<tag>.<url hash>.<ext>  the source file as downloaded (verified before it gets this name)
  <model>.<tag>.converted.h5      the same weights in Keras layout, so conversion runs once

The converted file is HDF5 with one dataset per Keras weight path (not a Keras
`.weights.h5`, which is tied to one built model): it loads into the model with any head,
with `include_top=False` or `features_only=True`. Files are written under a temporary name
and renamed, so an interrupted run never leaves a half-written file under the final name.
"""

import contextlib
import hashlib
import json
import os
import tempfile
import uuid

import numpy as np

from attention_zoo.pretrained.converters.common import CONVERTER_VERSION, ConvertedWeights
from attention_zoo.pretrained.errors import CorruptWeightsError

SUBDIR = "attention_zoo"
CONVERTED_FORMAT = "attention_zoo.converted_weights"
CACHE_ENV = "ATTENTION_ZOO_CACHE_DIR"


def cache_root(cache_dir=None):
    """`<cache_dir>/attention_zoo`, created if needed (falls back to the temp dir like Keras)."""
    base = cache_dir or os.environ.get(CACHE_ENV) or os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    base = os.path.expanduser(os.fspath(base))
    with contextlib.suppress(OSError):
        os.makedirs(base, exist_ok=True)
    if not os.access(base, os.W_OK):
        base = os.path.join(tempfile.gettempdir(), ".keras")
    root = os.path.join(base, SUBDIR)
    os.makedirs(root, exist_ok=True)
    return root


def source_path(root, entry):
    # The URL's hash in the name keeps a file from one URL from standing in for another's.
    url_hash = hashlib.sha1(entry.url.encode()).hexdigest()[:8]
    return os.path.join(root, f"{entry.model}.{entry.tag}.{url_hash}{entry.file_extension}")


def converted_path(root, entry):
    return os.path.join(root, f"{entry.model}.{entry.tag}.converted.h5")


def temporary_name(final_path):
    """A sibling name for writing `final_path` atomically (same directory, so rename is atomic)."""
    return f"{final_path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part"


def remove_quietly(path):
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def write_converted(path, converted, metadata):
    """Writes `converted` (a `ConvertedWeights`) and `metadata` (JSON-able) to `path` atomically."""
    import h5py

    temporary = temporary_name(path)
    try:
        with h5py.File(temporary, "w") as handle:
            handle.attrs["format"] = CONVERTED_FORMAT
            handle.attrs["converter_version"] = CONVERTER_VERSION
            handle.attrs["layout"] = converted.layout
            handle.attrs["metadata"] = json.dumps(metadata)
            handle.attrs["head"] = json.dumps(sorted(converted.head))
            handle.attrs["sources"] = json.dumps(converted.sources)
            handle.attrs["spatial_pool_orders"] = json.dumps(converted.spatial_pool_orders)
            group = handle.create_group("weights")
            for index, (name, array) in enumerate(converted.tensors.items()):
                dataset = group.create_dataset(f"w{index:05d}", data=array)
                dataset.attrs["path"] = name
        os.replace(temporary, path)
    finally:
        remove_quietly(temporary)


def is_converted_file(path):
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return handle.attrs.get("format") == CONVERTED_FORMAT
    except OSError:
        return False


def read_converted(path):
    """(ConvertedWeights, metadata) from a file written by `write_converted`."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            if handle.attrs.get("format") != CONVERTED_FORMAT:
                raise CorruptWeightsError(f"'{path}' is not an attention_zoo converted-weights file")
            tensors = {
                str(dataset.attrs["path"]): np.asarray(dataset[()], dtype=np.float32)
                for dataset in handle["weights"].values()
            }
            converted = ConvertedWeights(
                tensors=tensors,
                sources=json.loads(handle.attrs["sources"]),
                head=frozenset(json.loads(handle.attrs["head"])),
                spatial_pool_orders=json.loads(handle.attrs["spatial_pool_orders"]),
                layout=str(handle.attrs["layout"]),
            )
            metadata = json.loads(handle.attrs["metadata"])
            metadata["converter_version"] = int(handle.attrs["converter_version"])
    except CorruptWeightsError:
        raise
    except Exception as error:  # h5py raises OSError/KeyError/ValueError for damaged files
        raise CorruptWeightsError(f"'{path}' is damaged ({type(error).__name__}: {error})") from error
    return converted, metadata


__all__ = [
    "CACHE_ENV",
    "cache_root",
    "converted_path",
    "is_converted_file",
    "read_converted",
    "remove_quietly",
    "source_path",
    "temporary_name",
    "write_converted",
]
