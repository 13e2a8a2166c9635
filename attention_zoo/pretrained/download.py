"""Fetching a manifest entry's source file into the cache, verified, atomically.

The file is downloaded with `keras.utils.get_file` (any URL urllib opens, file:// included)
under a temporary name, checked (SHA-256 when the manifest knows it, the torch.hub file-name
prefix when that is all there is, and that it is not an HTML page), then renamed to its final
name. A failed or interrupted download leaves nothing behind; a cached file that no longer
matches its checksum is replaced.
"""

import hashlib
import os

from attention_zoo.pretrained.cache import remove_quietly, source_path, temporary_name
from attention_zoo.pretrained.checkpoints import sniff_format
from attention_zoo.pretrained.errors import ChecksumError, CorruptWeightsError, WeightsDownloadError

_CHUNK = 1 << 20
PROJECT_SCHEME = "project://"
# Weights this project trains are committed to the repository (weights/), next to the package.
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def resolve_url(entry):
    """The URL to fetch: `project://weights/x.weights.h5` is the file of the project's source
    tree (a checkout, or an editable install); anything else is itself."""
    if not entry.url.startswith(PROJECT_SCHEME):
        return entry.url
    path = os.path.join(PROJECT_ROOT, *entry.url[len(PROJECT_SCHEME):].split("/"))
    if not os.path.isfile(path):
        raise WeightsDownloadError(
            f"{entry.name}: {entry.url} is a file of the attention_zoo repository ({path} is missing): these "
            "weights ship with a source checkout (pip install -e .), not with a wheel. Copy the file from the "
            "repository's weights/ folder and pass its path as weights=."
        )
    return "file://" + path


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _manual_download_hint(entry, final_path):
    return (
        f"You can download {entry.url} yourself (page: {entry.page or entry.url}), check it, and either pass "
        f"its path as weights= or place it at {final_path}."
    )


def check_file(path, entry, final_path):
    """Raises if `path` is not the file `entry` describes; returns its SHA-256."""
    actual = sha256_of(path)
    if entry.sha256 is not None and actual != entry.sha256:
        raise ChecksumError(
            f"{entry.name}: the file from {entry.url} has SHA-256 {actual}, but the manifest records "
            f"{entry.sha256} (source: {entry.sha256_source}). It was not kept. Retry; if it persists, the "
            f"file was changed upstream or the download is being tampered with. {_manual_download_hint(entry, final_path)}"
        )
    if entry.sha256_prefix is not None and not actual.startswith(entry.sha256_prefix):
        raise ChecksumError(
            f"{entry.name}: the file from {entry.url} has SHA-256 {actual}, which does not start with "
            f"{entry.sha256_prefix} as the file name promises. It was not kept; retry."
        )
    if os.path.getsize(path) == 0 or sniff_format(path) == "html":
        raise CorruptWeightsError(
            f"{entry.name}: {entry.url} answered with a web page (or nothing), not a checkpoint; Google Drive "
            f"does this for large files. It was not kept. {_manual_download_hint(entry, final_path)}"
        )
    return actual


def fetch(entry, root):
    """Path of `entry`'s source file in `root`, downloading and verifying it if needed.

    Returns (path, sha256 of the file).
    """
    final_path = source_path(root, entry)
    if os.path.exists(final_path):
        try:
            return final_path, check_file(final_path, entry, final_path)
        except (ChecksumError, CorruptWeightsError):
            remove_quietly(final_path)  # damaged or outdated cache entry: fetch it again
    temporary = temporary_name(final_path)
    try:
        _download(resolve_url(entry), temporary, entry, final_path)
        digest = check_file(temporary, entry, final_path)
        os.replace(temporary, final_path)
    finally:
        remove_quietly(temporary)
    return final_path, digest


def _download(url, destination, entry, final_path):
    import keras

    directory, name = os.path.split(destination)
    try:
        downloaded = keras.utils.get_file(
            fname=name, origin=url, cache_dir=os.path.dirname(directory), cache_subdir=os.path.basename(directory)
        )
    except KeyboardInterrupt:
        remove_quietly(destination)
        raise
    except Exception as error:  # get_file wraps URLError/HTTPError in a bare Exception
        remove_quietly(destination)
        raise WeightsDownloadError(
            f"{entry.name}: could not download {url} ({error}). Check the network connection (and any proxy "
            f"settings) and retry. {_manual_download_hint(entry, final_path)}"
        ) from error
    if os.path.abspath(downloaded) != os.path.abspath(destination):
        # get_file fell back to another directory (cache not writable): bring the file home.
        os.replace(downloaded, destination)


__all__ = ["check_file", "fetch", "sha256_of"]
