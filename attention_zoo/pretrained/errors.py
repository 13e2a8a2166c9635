"""Errors of the pretrained-weights machinery: each names the problem and what to do about it.

All derive from `WeightsError`, a `ValueError`, so callers can catch one type.
"""


class WeightsError(ValueError):
    """Pretrained weights could not be found, fetched, read or loaded."""


class UnknownWeightsError(WeightsError):
    """The model has no weights under the requested tag (the message lists the tags it has)."""


class WeightsMismatchError(WeightsError):
    """The checkpoint does not fit the model: a missing, surplus or differently shaped tensor."""


class UnverifiedWeightsError(WeightsError):
    """The source publishes no checksum and the caller did not allow unverified weights."""


class ChecksumError(WeightsError):
    """A downloaded or cached file does not have the checksum the manifest records."""


class CorruptWeightsError(WeightsError):
    """A file is truncated, not in the format it claims, or not a checkpoint at all."""


class WeightsDownloadError(WeightsError):
    """The file could not be downloaded (no network, server error, missing file)."""
