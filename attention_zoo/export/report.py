"""The export report and the all-or-nothing writing of an export's files."""

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from importlib.metadata import PackageNotFoundError, version


@dataclasses.dataclass
class ExportReport:
    """What was exported and how well it agrees with the Keras model.

    parity: per-output figures on the sample inputs, measured by running the written file:
        `max_relative_error` = max|exported - keras| / max|keras| and, for outputs with
        scores over a last axis (classifiers, segmentation), `top1_agreement`: the
        fraction of argmaxes that agree.
    inputs / outputs: name, shape, dtype and, for quantised tensors, `scale` and
        `zero_point` (real = scale * (q - zero_point)).
    float_layers: layers whose ops an int8 file keeps in float32 (`keep_float`).
    delegation: how LiteRT's XNNPACK delegate took the file (`verify.delegation`): its
        partitions and the op types it left to LiteRT's reference kernels.
    """

    path: str
    format: str
    model: str
    quantize: str = "none"
    batch: int = 1
    input_shape: tuple = ()
    file_bytes: int = 0
    inputs: list = dataclasses.field(default_factory=list)
    outputs: list = dataclasses.field(default_factory=list)
    ops: list = dataclasses.field(default_factory=list)
    float_layers: list = dataclasses.field(default_factory=list)
    delegation: dict = dataclasses.field(default_factory=dict)
    verified: bool = False
    runtime: str = ""
    samples: int = 0
    sample_source: str = ""
    parity: list = dataclasses.field(default_factory=list)
    tolerance: float = None
    seconds: dict = dataclasses.field(default_factory=dict)
    versions: dict = dataclasses.field(default_factory=dict)

    @property
    def max_relative_error(self):
        errors = [output["max_relative_error"] for output in self.parity]
        return max(errors) if errors else None

    @property
    def top1_agreement(self):
        """Agreement of the first output that has one (the logits of a classifier)."""
        return next((output["top1_agreement"] for output in self.parity if "top1_agreement" in output), None)

    @property
    def report_path(self):
        return report_path(self.path)

    def to_dict(self):
        report = dataclasses.asdict(self)
        report["max_relative_error"] = self.max_relative_error
        report["top1_agreement"] = self.top1_agreement
        return report

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, default=_plain)


def package_versions(*packages):
    """{"keras": its version, package: version} for the installed ones among `packages`
    (import names; a missing one is left out: e.g. LiteRT's fallback interpreter ran)."""
    import keras

    versions = {"keras": keras.__version__}
    for package in packages:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            pass
    return versions


def report_path(path):
    """`model.tflite` -> `model.tflite.json` (a SavedModel directory `model` -> `model.json`)."""
    return os.fspath(path).rstrip("/\\") + ".json"


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def staging_path(path, directory=False):
    """A fresh, hidden name next to `path`: renaming it onto `path` is atomic (same file system)."""
    parent, name = os.path.split(os.path.abspath(os.fspath(path)))
    os.makedirs(parent, exist_ok=True)
    if directory:
        return tempfile.mkdtemp(dir=parent, prefix=f".{name}.", suffix=".partial")
    handle, staged = tempfile.mkstemp(dir=parent, prefix=f".{name}.", suffix=".partial")
    os.close(handle)
    # mkstemp makes the file private (0600); the published file gets the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staged, 0o666 & ~umask)
    return staged


def remove(path):
    with contextlib.suppress(FileNotFoundError):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def publish(staged, path):
    """Moves a finished file or directory onto `path`, replacing what was there."""
    path = os.fspath(path)
    if os.path.isdir(staged) and os.path.exists(path):
        # rename() refuses to replace a non-empty directory: move the old one aside first.
        retired = staging_path(path, directory=True)
        os.rmdir(retired)
        os.replace(path, retired)
        os.replace(staged, path)
        remove(retired)
    else:
        os.replace(staged, path)


@contextlib.contextmanager
def staged(path, directory=False):
    """Yields a staging name next to `path`; published onto `path` if the block succeeds,
    removed if it raises, so a failure never leaves a half-written file."""
    staging = staging_path(path, directory=directory)
    try:
        yield staging
        publish(staging, path)
    except BaseException:
        remove(staging)
        raise


def write_report(report):
    """Writes the report as JSON next to its file, atomically."""
    with staged(report.report_path) as staging:
        with open(staging, "w", encoding="utf-8") as handle:
            handle.write(report.to_json() + "\n")
    return report.report_path
