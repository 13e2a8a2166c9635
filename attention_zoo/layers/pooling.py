"""Spatial pooling and the small convolution that the attention gates compute on every block.

Both compute exactly what `ops.mean` / `ops.max` over H and W and a k x k `ops.conv` compute;
they are written for speed, because gates run at every block at full resolution. Measured on
the TensorFlow CPU backend at 56x56 (batch 8, benchmarks/resnet_latency.py for the models):
pooling the map as one (H*W, 1) column per image is 1.5-2.5x faster than a reduction over H
and W, and a 2-channel 7x7 convolution to one channel ran about four times faster as a
matrix product on an AVX2 CPU. On a later AVX-512 CPU, whose convolution kernel is faster,
the product took 1.2x the convolution's time at 56x56 and 0.6-0.7x at 14x14 and 7x7.
"""

import keras
import numpy as np
from keras import ops

from attention_zoo.layers.tracing import tracing_plain_graph


def global_pool(inputs, kind="mean"):
    """(batch, channels): the mean ("mean") or maximum ("max") of an NHWC map over H and W.

    Where the size is static, TensorFlow pools each image as one (H*W, 1) column: its CPU
    pooling kernels run over a column 1.5-2.5x faster at 56x56x256 (batch 8) than its reductions
    over two middle axes or a pooling window over the whole map (1.1x at 7x7x2048). Exports
    (`tracing.plain_graph`) keep the forms LiteRT's XNNPACK delegate takes: a MEAN (it does
    not take int8 AVERAGE_POOL_2D) and a MAX_POOL_2D over the whole map."""
    height, width = inputs.shape[1:3]
    static = height is not None and width is not None  # a pooling window needs a static size
    if static and keras.backend.backend() == "tensorflow" and not tracing_plain_graph():
        column = ops.reshape(inputs, (-1, height * width, 1, inputs.shape[-1]))
        pool = ops.average_pool if kind == "mean" else ops.max_pool
        pooled = pool(column, pool_size=(height * width, 1), strides=(1, 1), padding="valid")
        return ops.reshape(pooled, (-1, inputs.shape[-1]))
    if kind == "mean":
        return ops.mean(inputs, axis=(1, 2))
    if not static:
        return ops.max(inputs, axis=(1, 2))
    pooled = ops.max_pool(inputs, pool_size=(height, width), strides=(1, 1), padding="valid")
    return ops.reshape(pooled, (-1, inputs.shape[-1]))


def conv_to_one_channel(maps, kernel):
    """`ops.conv(maps, kernel, padding="same")` for a square k x k kernel (k odd) with a single
    output channel and few input channels, as in CBAM's spatial gate.

    TensorFlow's CPU convolution costs about 0.4 us per output pixel whatever the channel
    count, so this tiny convolution took a third of a CBAM block. Here each padded row of
    `maps`, flattened with its channels, is multiplied by one banded matrix that holds the k
    kernel rows: that gives every kernel row's contribution to every pixel of the output row,
    and summing the k contributions shifted by their row offsets finishes the convolution.
    Needs static H and W and an odd k (falls back to `ops.conv` otherwise).
    """
    size = kernel.shape[0]
    _, height, width, channels = maps.shape
    if height is None or width is None or size % 2 == 0:
        return ops.conv(maps, ops.cast(kernel, maps.dtype), padding="same")
    pad = size // 2
    padded_width = width + 2 * pad
    # band[i, c, y, w] = kernel[y, i - w, c] where padded column i is a tap of output column w,
    # else 0, gathered from the flattened kernel with a zero appended. The kernel is a variable,
    # so the band is rebuilt on every call: built as a product with a 0/1 shift tensor, it took
    # half of this function's time at 14x14 and 7x7.
    padded_column, channel, kernel_row, output_column = np.ogrid[:padded_width, :channels, :size, :width]
    kernel_column = padded_column - output_column
    index = np.where(
        (0 <= kernel_column) & (kernel_column < size),
        (kernel_row * size + kernel_column) * channels + channel,
        size * size * channels,
    ).astype("int32")
    flat_kernel = ops.concatenate([ops.reshape(ops.cast(kernel, maps.dtype), (-1,)), ops.zeros((1,), maps.dtype)])
    band = ops.take(flat_kernel, index.reshape(padded_width * channels, size * width))
    padded = ops.pad(maps, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    rows = ops.matmul(ops.reshape(padded, (-1, padded_width * channels)), band)
    rows = ops.reshape(rows, (-1, height + 2 * pad, size, width))
    # Kernel rows that see only the zero padding (on maps smaller than the kernel) are left
    # out. Slices keep the tap axis (tap:tap + 1): LiteRT turns an index into a strided slice
    # with a shrink mask, which XNNPACK does not delegate.
    taps = [tap for tap in range(size) if pad - height < tap < pad + height]
    logits = None
    for tap in taps:
        contribution = rows[:, tap : tap + height, tap : tap + 1]
        logits = contribution if logits is None else logits + contribution
    return ops.reshape(logits, (-1, height, width, 1))
