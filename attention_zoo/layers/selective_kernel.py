"""Selective Kernel convolution (Li et al., CVPR 2019): M convolution paths with different
receptive fields, fused by a softmax attention over the paths, per channel."""

import keras
from keras import ops

from attention_zoo.layers.base import AttentionLayer, make_divisible, register_layer
from attention_zoo.layers.conv_bn import ConvBN, pytorch_batchnorm
from attention_zoo.layers.pooling import global_pool
from attention_zoo.utils.counting import conv_macs, dense_macs


def _subsample(feature_map, stride):
    """Every `stride`-th row and column, as a 1x1 depthwise convolution with unit weights: a
    strided slice would be the same values, but XNNPACK does not delegate strided slices, so
    in a LiteRT file it would split the graph around each strided SK block."""
    unit_kernel = ops.ones((1, 1, feature_map.shape[-1], 1), dtype=feature_map.dtype)
    return ops.depthwise_conv(feature_map, unit_kernel, strides=stride, padding="valid")


def _softmax_across_paths(path_logits):
    """Softmax over a list of equally shaped logits: the per-path weights, summing to one."""
    if len(path_logits) == 2:
        # Two-way softmax is a sigmoid of the difference: one op that int8 handles well.
        first = ops.sigmoid(path_logits[0] - path_logits[1])
        return [first, 1.0 - first]
    peak = path_logits[0]
    for logits in path_logits[1:]:
        peak = ops.maximum(peak, logits)
    exponentials = [ops.exp(logits - peak) for logits in path_logits]
    total = exponentials[0]
    for exponential in exponentials[1:]:
        total = total + exponential
    return [exponential / total for exponential in exponentials]


@register_layer
class SelectiveKernel(AttentionLayer):
    """Replaces a k x k convolution: paths (conv-BN-ReLU) with dilations 1, 2, ...; their sum
    -> GAP -> FC C->d (no bias) -> BN -> ReLU -> FC d->M*C (no bias) -> softmax over the M
    paths (path-major channel order, as in the official code and timm) -> weighted sum.

    A strided path with dilation d (d a multiple of the stride s) reads only every s-th row
    and column of its padded input, so it subsamples first and convolves at stride 1 with
    dilation d / s: the same result as the dilated strided convolution, which Keras 3 does
    not accept, at 1 / s^2 of the cost of computing it densely and throwing outputs away.

    Args:
        filters: output channels C.
        kernel_size: k of every path (3).
        dilations: one dilation per path ((1, 2): SKNet's 3x3 and "5x5" paths).
        strides: 1 or 2.
        groups: groups of each path's convolution (32 in SKNet-50).
        split_input: each path sees its own slice of the input channels (timm skresnet18/34/50).
        reduction, rd_divisor, rd_channels: d = make_divisible(C / reduction, rd_divisor),
            which gives the paper's max(C / 16, 32) with rd_divisor=32.

    Attention: the path weights, shape (batch, M, C), summing to 1 over M.
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        dilations=(1, 2),
        strides=1,
        groups=1,
        split_input=False,
        reduction=16,
        rd_divisor=8,
        rd_channels=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.dilations = tuple(int(d) for d in dilations)
        self.strides = int(strides)
        self.groups = int(groups)
        self.split_input = bool(split_input)
        self.reduction = reduction
        self.rd_divisor = rd_divisor
        self.rd_channels = rd_channels
        self.num_paths = len(self.dilations)
        self.attention_channels = int(rd_channels or make_divisible(self.filters / reduction, rd_divisor))
        dtype = self.dtype_policy
        self.paths = []
        for index, dilation in enumerate(self.dilations):
            conv_strides, conv_dilation, padding = self._path_geometry(dilation)
            self.paths.append(
                ConvBN(
                    self.filters,
                    self.kernel_size,
                    strides=conv_strides,
                    dilation_rate=conv_dilation,
                    padding=padding,
                    groups=self.groups,
                    activation="relu",
                    name=f"path{index}",
                    dtype=dtype,
                )
            )
        self.attention_reduce = keras.layers.Dense(self.attention_channels, use_bias=False, name="attention_reduce", dtype=dtype)
        self.attention_bn = pytorch_batchnorm("attention_bn", dtype)
        self.attention_select = keras.layers.Dense(
            self.num_paths * self.filters, use_bias=False, name="attention_select", dtype=dtype
        )

    def _path_geometry(self, dilation):
        """(conv strides, conv dilation, padding) of one path's Conv2D sublayer."""
        if self.strides == 1:
            return 1, dilation, "same"
        if dilation == 1:
            return self.strides, 1, "valid"
        if dilation % self.strides == 0:
            return 1, dilation // self.strides, "valid"
        return 1, dilation, "valid"  # computed densely, then subsampled

    def _path_input_channels(self, in_channels):
        return in_channels // self.num_paths if self.split_input else in_channels

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"SelectiveKernel expects NHWC feature maps of rank 4; got {tuple(input_shape)}")
        in_channels = input_shape[-1]
        if self.split_input and in_channels % self.num_paths:
            raise ValueError(f"split_input needs channels divisible by {self.num_paths} paths; got {in_channels}")
        path_channels = self._path_input_channels(in_channels)
        for path in self.paths:
            # Built without spatial sizes: strided paths see padded maps, and at the smallest
            # inputs the unpadded size would be too small for a valid 3x3 convolution.
            path.build((input_shape[0], None, None, path_channels))
        self.attention_reduce.build((None, self.filters))
        self.attention_bn.build((None, self.attention_channels))
        self.attention_select.build((None, self.attention_channels))

    def _run_path(self, index, inputs, training):
        dilation = self.dilations[index]
        x = inputs
        if self.strides > 1:
            pad = dilation * (self.kernel_size - 1) // 2
            x = ops.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
            if dilation > 1 and dilation % self.strides == 0:
                x = _subsample(x, self.strides)
        if self.strides > 1 and dilation > 1 and dilation % self.strides:
            # BN and ReLU act per position, so subsampling after them equals subsampling before.
            return _subsample(self.paths[index](x, training=training), self.strides)
        return self.paths[index](x, training=training)

    def attend(self, inputs, training=None):
        if self.split_input:
            path_inputs = ops.split(inputs, self.num_paths, axis=-1)
        else:
            path_inputs = [inputs] * self.num_paths
        paths = [self._run_path(i, x, training) for i, x in enumerate(path_inputs)]
        # GAP(sum of paths) = sum of GAP(path): no full-size sum is materialised.
        pooled = global_pool(paths[0])
        for path in paths[1:]:
            pooled = pooled + global_pool(path)
        descriptor = ops.relu(self.attention_bn(self.attention_reduce(pooled), training=training))
        logits = self.attention_select(descriptor)
        # Path-major logits are split, not reshaped to (batch, M, C): a softmax over a middle
        # axis and per-path slices of it become transposes and 5-D slices in a LiteRT file,
        # which XNNPACK leaves undelegated, cutting the graph into a partition per block.
        path_weights = _softmax_across_paths(
            [logits[:, index * self.filters : (index + 1) * self.filters] for index in range(self.num_paths)]
        )
        output = None
        for path, weights in zip(paths, path_weights):
            weighted = path * ops.reshape(weights, (-1, 1, 1, self.filters))
            output = weighted if output is None else output + weighted
        return output, ops.stack(path_weights, axis=1)

    def count_macs(self, input_shape):
        output_shape = self.compute_output_shape(input_shape)
        output_shape = output_shape[0] if self.return_attention else output_shape
        path_channels = self._path_input_channels(input_shape[-1])
        kernel = (self.kernel_size, self.kernel_size)
        macs = self.num_paths * conv_macs(output_shape, kernel, path_channels, self.filters, self.groups)
        return macs + dense_macs((1, self.filters), self.attention_channels) + dense_macs(
            (1, self.attention_channels), self.num_paths * self.filters
        )

    def compute_output_shape(self, input_shape):
        def reduce(size):
            return None if size is None else (size - 1) // self.strides + 1

        output_map = (input_shape[0], reduce(input_shape[1]), reduce(input_shape[2]), self.filters)
        if self.return_attention:
            return output_map, (input_shape[0], self.num_paths, self.filters)
        return output_map

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            dilations=list(self.dilations),
            strides=self.strides,
            groups=self.groups,
            split_input=self.split_input,
            reduction=self.reduction,
            rd_divisor=self.rd_divisor,
            rd_channels=self.rd_channels,
        )
        return config
