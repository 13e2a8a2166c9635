"""Spatial pooling and the small convolution that the attention gates compute on every block.

Both compute exactly what `ops.mean` / `ops.max` over H and W and a k x k `ops.conv` compute;
they are written for speed, because gates run at every block at full resolution. Measured on
the TensorFlow CPU backend at 56x56 (batch 8, benchmarks/resnet_latency.py for the models):
pooling the map as one (H*W, 1) column per image is 1.5-2.5x faster than a reduction over H
and W, and a 2-channel 7x7 convolution to one channel ran about four times faster as a
matrix product on an AVX2 CPU. On a later AVX-512 CPU, whose convolution kernel is faster,
the product (one per output row, benchmarks/spatial_conv.py) takes about the convolution's time
at 56x56, 0.6-0.9x at 28x28 and 0.4-0.5x at 14x14 and 7x7.
"""

import numpy as np
from keras import ops

from attention_zoo.layers.tracing import tracing_for_tensorflow_kernels, tracing_plain_graph


def global_pool(inputs, kind="mean"):
    """(batch, channels): the mean ("mean") or maximum ("max") of an NHWC map over H and W.

    Where the size is static, TensorFlow pools each image as one (H*W, 1) column: its CPU
    pooling kernels run over a column 1.5-2.5x faster at 56x56x256 (batch 8) than its reductions
    over two middle axes or a pooling window over the whole map (1.1x at 7x7x2048). Exports
    (`tracing.plain_graph`) keep the forms LiteRT's XNNPACK delegate takes: a MEAN (it does
    not take int8 AVERAGE_POOL_2D) and a MAX_POOL_2D over the whole map."""
    height, width = inputs.shape[1:3]
    static = height is not None and width is not None  # a pooling window needs a static size
    if static and tracing_for_tensorflow_kernels():
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
    """`ops.conv(ops.concatenate(maps, axis=-1), kernel, padding="same")`: a square k x k kernel
    (k odd) with one output channel over a few single-channel maps, as in CBAM's spatial gate.

    `maps` is a sequence of (batch, H, W, 1) maps, one per input channel of `kernel`, in its
    order. TensorFlow's CPU convolution costs about 0.4 us per output pixel whatever the
    channel count, so this tiny convolution took a third of a CBAM block. Here every output row
    is one vector-matrix product: the k padded input rows it sees (all channels) are gathered
    into one vector, and one banded matrix that holds the kernel maps it to the row's W outputs.
    Needs static H and W and an odd k (falls back to `ops.conv` otherwise).
    """
    size = kernel.shape[0]
    channels = len(maps)
    _, height, width, _ = maps[0].shape
    if height is None or width is None or size % 2 == 0:
        return ops.conv(ops.concatenate(maps, axis=-1), ops.cast(kernel, maps[0].dtype), padding="same")
    pad = size // 2
    padded_width = width + 2 * pad
    # Channels stacked on a middle axis, so that a padded row holds each channel's W + 2p
    # values in a run: concatenating on the last axis would interleave them one by one, which
    # took about as long as the product itself at 56x56.
    stacked = ops.concatenate([ops.reshape(map_, (-1, height, 1, width)) for map_ in maps], axis=2)
    padded = ops.pad(stacked, ((0, 0), (pad, pad), (0, 0), (pad, pad)))
    padded = ops.reshape(padded, (-1, height + 2 * pad, channels * padded_width))
    windows = _row_windows(padded, height, size)  # (batch, H, k * channels * padded_width)
    # band[(y, c, i), w] = kernel[y, i - w, c] where padded column i is a tap of output column
    # w, else 0, gathered from the flattened kernel with a zero appended. The kernel is a
    # variable, so the band is rebuilt on every call: built as a product with a 0/1 shift
    # tensor, it took half of this function's time at 14x14 and 7x7.
    kernel_row, channel, padded_column, output_column = np.ogrid[:size, :channels, :padded_width, :width]
    kernel_column = padded_column - output_column
    index = np.where(
        (0 <= kernel_column) & (kernel_column < size),
        (kernel_row * size + kernel_column) * channels + channel,
        size * size * channels,
    ).astype("int32")
    dtype = maps[0].dtype
    flat_kernel = ops.concatenate([ops.reshape(ops.cast(kernel, dtype), (-1,)), ops.zeros((1,), dtype)])
    band = ops.take(flat_kernel, index.reshape(size * channels * padded_width, width))
    logits = ops.matmul(ops.reshape(windows, (-1, size * channels * padded_width)), band)
    return ops.reshape(logits, (-1, height, width, 1))


def _row_windows(padded, height, size):
    """(batch, height, size * row): output row h's window, padded rows h .. h + size - 1, as
    one vector. One gather of rows: with `size` slices concatenated instead, the whole
    convolution took 1.3x as long at 56x56 (1.03 against 0.80 ms). Exports
    (`tracing.plain_graph`) take the slices, concatenated four at a time, because LiteRT's
    XNNPACK delegate runs slices and concatenations but not a GATHER, and left a seven-way
    concatenation undelegated."""
    if tracing_plain_graph():
        windows = [padded[:, tap : tap + height] for tap in range(size)]
        while len(windows) > 1:
            windows = [ops.concatenate(windows[i : i + 4], axis=2) for i in range(0, len(windows), 4)]
        return windows[0]
    rows = (np.arange(height)[:, None] + np.arange(size)[None, :]).reshape(-1).astype("int32")
    windows = ops.take(padded, rows, axis=1)
    return ops.reshape(windows, (-1, height, size * padded.shape[-1]))
