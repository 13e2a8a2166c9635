"""Spatial Transformer (Jaderberg et al., NIPS 2015): a localisation network regresses the
parameters theta of a transform, a grid generator maps the output pixel grid through theta
into the input, and a bilinear sampler reads the input there. All three are differentiable,
so the network learns where to look from the classification loss alone.

Coordinates follow PyTorch's `affine_grid` / `grid_sample` defaults (align_corners=False):
normalised coordinates span [-1, 1] from the outer edge of the first pixel to the outer edge
of the last, so pixel i of a size-n axis has its centre at (2 i + 1) / n - 1. The identity
theta therefore reproduces an image of the same size exactly, and resamples one of another
size like a half-pixel-centred bilinear resize. theta maps output coordinates (x, y, 1) to
input coordinates: x_in = theta[0] . (x, y, 1), y_in = theta[1] . (x, y, 1); grids hold
(x, y) in their last axis, as in PyTorch.

The sampler is written with gathers (`ops.take` on flattened indices), `floor` and `clip`,
not `ops.image.affine_transform`: that op becomes a Flex op in TFLite and has no gradient
for the transform on TensorFlow, while gathers convert to builtins and differentiate with
respect to both the image and the grid on every backend.
"""

import keras
import numpy as np
from keras import ops

from attention_zoo.layers.base import AttentionLayer, register_layer
from attention_zoo.utils.counting import conv_macs, dense_macs

TRANSFORM_TYPES = {"affine": 6, "attention": 3}
PADDING_MODES = ("zeros", "border")
# Regression biases that make the initial transform the identity.
IDENTITY_PARAMS = {"affine": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), "attention": (1.0, 0.0, 0.0)}


def _pixel_centres(size):
    """Normalised centres of `size` pixels, align_corners=False: (2 i + 1) / size - 1."""
    return (2.0 * np.arange(size, dtype="float64") + 1.0) / size - 1.0


def _check_size(output_size, what="output_size"):
    try:
        height, width = (int(s) for s in output_size)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a pair (height, width) of positive integers; got {output_size!r}") from None
    if height < 1 or width < 1 or tuple(output_size) != (height, width):
        raise ValueError(f"{what} must be a pair (height, width) of positive integers; got {output_size!r}")
    return height, width


def attention_theta(params):
    """(batch, 3) parameters (s, tx, ty) -> the affine matrices [[s, 0, tx], [0, s, ty]].

    The paper's "attention" transform: isotropic scale and translation, a crop-and-zoom.
    """
    scale, tx, ty = params[:, 0], params[:, 1], params[:, 2]
    zero = ops.zeros_like(scale)
    return ops.reshape(ops.stack([scale, zero, tx, zero, scale, ty], axis=-1), (-1, 2, 3))


def affine_grid(theta, output_size):
    """Sampling grid of shape (batch, H_out, W_out, 2) holding input (x, y) in [-1, 1] units.

    Args:
        theta: (batch, 2, 3) affine matrices from output to input coordinates.
        output_size: static (H_out, W_out).
    Equals `torch.nn.functional.affine_grid(theta, (B, C, H_out, W_out), align_corners=False)`.
    """
    height, width = _check_size(output_size)
    theta = ops.cast(theta, "float32")
    # Flattened target coordinates, row-major like the output image.
    xs = ops.convert_to_tensor(np.tile(_pixel_centres(width), height).astype("float32"))
    ys = ops.convert_to_tensor(np.repeat(_pixel_centres(height), width).astype("float32"))
    # Broadcasting (batch, 1) * (H*W,) keeps the graph to elementwise ops and rank 2.
    x_in = theta[:, 0, 0:1] * xs + theta[:, 0, 1:2] * ys + theta[:, 0, 2:3]
    y_in = theta[:, 1, 0:1] * xs + theta[:, 1, 1:2] * ys + theta[:, 1, 2:3]
    return ops.reshape(ops.stack([x_in, y_in], axis=-1), (-1, height, width, 2))


def grid_sample(images, grid, padding_mode="zeros"):
    """Bilinear sampling of NHWC `images` at `grid` (batch, H_out, W_out, 2) of (x, y).

    Equals `torch.nn.functional.grid_sample(..., mode="bilinear", padding_mode=padding_mode,
    align_corners=False)` in NHWC. padding_mode "zeros": the image is zero outside its
    borders, so each of the four neighbours outside contributes nothing; "border": sample
    positions are clamped to the image, repeating the edge pixels.

    Differentiable with respect to `images` (through the gathers) and `grid` (through the
    bilinear weights). Spatial sizes of `images` and `grid` must be static.
    """
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}; got {padding_mode!r}")
    if len(images.shape) != 4 or len(grid.shape) != 4 or grid.shape[-1] != 2:
        raise ValueError(
            f"grid_sample expects images (batch, H, W, C) and a grid (batch, H_out, W_out, 2); "
            f"got {tuple(images.shape)} and {tuple(grid.shape)}"
        )
    _, height, width, channels = images.shape
    _, out_height, out_width, _ = grid.shape
    if None in (height, width, channels, out_height, out_width):
        raise ValueError(
            f"grid_sample needs static spatial sizes and channels; got images {tuple(images.shape)} "
            f"and grid {tuple(grid.shape)}"
        )
    if not keras.backend.is_float_dtype(images.dtype):
        images = ops.cast(images, "float32")
    grid = ops.cast(grid, "float32")
    # align_corners=False: normalised -1 is the outer edge of pixel 0, i.e. pixel -0.5.
    # One multiply-add per axis: ((g + 1) * size - 1) / 2 as a chain of three ops gets an
    # int8 scale calibrated for the pixel range on g + 1 already: steps of about 19 pixels.
    x = grid[..., 0] * (0.5 * width) + (0.5 * width - 0.5)
    y = grid[..., 1] * (0.5 * height) + (0.5 * height - 0.5)
    if padding_mode == "border":
        x = ops.clip(x, 0.0, width - 1.0)
        y = ops.clip(y, 0.0, height - 1.0)
    # The four neighbours of each sample point along a last axis, (batch, H_out, W_out, 4):
    # offsets (0, 0), (1, 0), (0, 1), (1, 1) from the top-left one.
    dx = np.array([0, 1, 0, 1])
    dy = np.array([0, 0, 1, 1])
    # The top-left neighbour and the fractions, both read off the same coordinate: mod(x, 1)
    # equals x - floor(x) (and has its gradient, 1, so the grid's gradient flows through the
    # fractions), but in an int8 TFLite file it runs on the dequantised coordinate like floor,
    # so the fraction is exact for the integer corner the file picks.
    fx = ops.mod(x, 1.0)[..., None]
    fy = ops.mod(y, 1.0)[..., None]
    # Integer corners from one cast per axis, then integer arithmetic: floor(x) clipped to
    # [-2, size] (beyond, both neighbours are outside anyway) and shifted to be positive, so
    # that truncating the half-integer k + 2.5 gives k + 2 even when an int8 file has moved
    # it by up to half a pixel. A NaN coordinate casts to an arbitrary integer: clipping the
    # indices keeps the gather in range and the NaN fraction makes the output NaN.
    x0 = ops.cast(ops.clip(ops.floor(x), -2.0, float(width)) + 2.5, "int32") - 2
    y0 = ops.cast(ops.clip(ops.floor(y), -2.0, float(height)) + 2.5, "int32") - 2
    corner_x = x0[..., None] + ops.convert_to_tensor(dx.astype("int32"))
    corner_y = y0[..., None] + ops.convert_to_tensor(dy.astype("int32"))
    # 1 - f for the near neighbour, f for the far one, written without abs() so that the
    # gradient stays right when a sample point falls exactly on a pixel centre.
    dx = ops.convert_to_tensor(dx.astype("float32"))
    dy = ops.convert_to_tensor(dy.astype("float32"))
    weights = (1.0 - dx + (2.0 * dx - 1.0) * fx) * (1.0 - dy + (2.0 * dy - 1.0) * fy)
    inside = (corner_x >= 0) & (corner_x <= width - 1) & (corner_y >= 0) & (corner_y <= height - 1)
    weights = weights * ops.cast(inside, "float32")
    # Outside neighbours read a valid (clipped) pixel that the zero weight discards.
    col = ops.clip(corner_x, 0, width - 1)
    row = ops.clip(corner_y, 0, height - 1)
    indices = row * width + col

    # Flat rows of the whole batch: image b's pixel p is row b * H * W + p.
    batch_offsets = ops.cumsum(ops.ones_like(indices[:, 0, 0, 0])) - 1
    indices = indices + batch_offsets[:, None, None, None] * (height * width)
    flat_images = ops.reshape(images, (-1, channels))
    flat_indices = ops.reshape(indices, (-1,))
    neighbours = ops.take(flat_images, flat_indices, axis=0)
    neighbours = ops.reshape(neighbours, (-1, out_height * out_width, 4, channels))
    weights = ops.cast(ops.reshape(weights, (-1, out_height * out_width, 4, 1)), images.dtype)
    sampled = ops.sum(neighbours * weights, axis=2)
    return ops.reshape(sampled, (-1, out_height, out_width, channels))


def params_to_theta(params, transform_type):
    """(batch, 6) affine or (batch, 3) attention parameters -> (batch, 2, 3) matrices."""
    params = ops.cast(params, "float32")
    if transform_type == "attention":
        return attention_theta(params)
    return ops.reshape(params, (-1, 2, 3))


@register_layer
class AffineSampler(keras.layers.Layer):
    """Transform parameters -> theta -> sampling grid -> bilinearly sampled images.

    `call(images, params)` returns `(sampled, theta, grid)`. A layer of its own so that an
    export can single out this coordinate arithmetic: an int8 tensor cannot hold a coordinate
    across a whole image to sub-pixel precision (60 pixels in 256 steps is a quarter pixel),
    which is why `SpatialTransformer` names it in `INT8_SENSITIVE_SUBLAYERS`.

    Args:
        output_size: (H_out, W_out); None samples at the input's size.
        transform_type: "affine" (params (batch, 6)) or "attention" ((batch, 3): s, tx, ty).
        padding_mode: "zeros" or "border" (see `grid_sample`).
    """

    def __init__(self, output_size=None, transform_type="affine", padding_mode="zeros", **kwargs):
        super().__init__(**kwargs)
        if transform_type not in TRANSFORM_TYPES:
            raise ValueError(f"transform_type must be one of {sorted(TRANSFORM_TYPES)}; got {transform_type!r}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}; got {padding_mode!r}")
        self.output_size = None if output_size is None else _check_size(output_size)
        self.transform_type = transform_type
        self.padding_mode = padding_mode

    def output_size_for(self, images_shape):
        """(H_out, W_out) of the samples taken from images of `images_shape`."""
        return self.output_size or (images_shape[1], images_shape[2])

    def build(self, images_shape, params_shape=None):
        self.built = True

    def call(self, images, params):
        theta = params_to_theta(params, self.transform_type)
        grid = affine_grid(theta, self.output_size_for(images.shape))
        return grid_sample(images, grid, self.padding_mode), theta, grid

    def compute_output_shape(self, images_shape, params_shape=None):
        batch = images_shape[0]
        height, width = self.output_size_for(images_shape)
        return (batch, height, width, images_shape[-1]), (batch, 2, 3), (batch, height, width, 2)

    def get_config(self):
        config = super().get_config()
        config.update(output_size=self.output_size, transform_type=self.transform_type, padding_mode=self.padding_mode)
        return config


@register_layer
class SpatialTransformer(AttentionLayer):
    """Localisation network -> theta -> sampling grid -> bilinear sampler.

    The default localisation network is the common one for 60x60 cluttered MNIST:
    max-pool 2, conv 20@5x5, max-pool 2, conv 20@5x5 (valid convolutions), dense 50, then the
    regression layer to theta; ReLU after every hidden layer. The regression layer starts at
    the identity transform (zero kernel, identity bias), so an untrained transformer passes
    the input through, resampled to `output_size`, and learns to move away from it.

    Args:
        output_size: (H_out, W_out) of the transformed image; None keeps the input size.
        transform_type: "affine" (6 parameters) or "attention" (s, tx, ty: isotropic scale
            and translation, [[s, 0, tx], [0, s, ty]]).
        padding_mode: "zeros" (the paper's sampler: black outside the image) or "border".
        localization_filters: filters of the localisation convolutions, each preceded by a
            max-pool of `localization_pool_size` (None or 1 for no pooling).
        localization_kernel_size: kernel of those convolutions (valid padding).
        localization_units: hidden dense layers before the regression layer.
        localization_activation: activation of every hidden localisation layer.
        localization_network: instead of the options above, any serializable Keras layer or
            model mapping the input images to a (batch, features) vector; the identity-
            initialised regression layer is added on top of it.

    Attention: {"theta": (batch, 2, 3) affine matrices, "grid": (batch, H_out, W_out, 2)
    input (x, y) coordinates in [-1, 1] at which each output pixel was sampled}.
    """

    # Sublayers an int8 export keeps in float when asked to (`keep_float="auto"`): a quantised
    # theta or sampling coordinate moves the whole glimpse by a fraction of a pixel, enough
    # to change a classifier's answer on a few percent of images.
    INT8_SENSITIVE_SUBLAYERS = ("regression", "sampler")

    def __init__(
        self,
        output_size=None,
        transform_type="affine",
        padding_mode="zeros",
        localization_filters=(20, 20),
        localization_kernel_size=5,
        localization_pool_size=2,
        localization_units=(50,),
        localization_activation="relu",
        localization_network=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        dtype = self.dtype_policy
        # The sampler validates and keeps the output size, transform type and padding mode.
        self.sampler = AffineSampler(output_size, transform_type, padding_mode, name="sampler", dtype=dtype)
        if localization_network is not None and not isinstance(localization_network, keras.layers.Layer):
            raise ValueError(
                "localization_network must be a Keras layer or model mapping images to (batch, features); "
                f"got {type(localization_network).__name__}"
            )
        self.localization_filters = tuple(int(f) for f in localization_filters)
        self.localization_kernel_size = int(localization_kernel_size)
        self.localization_pool_size = None if localization_pool_size in (None, 1) else int(localization_pool_size)
        self.localization_units = tuple(int(u) for u in localization_units)
        # Stored serialised, so a function such as keras.activations.relu survives get_config.
        self.localization_activation = keras.activations.serialize(keras.activations.get(localization_activation))
        self.localization_network = localization_network
        self.num_params = TRANSFORM_TYPES[transform_type]
        self.localization_layers = []
        if localization_network is None:
            for index, filters in enumerate(self.localization_filters):
                if self.localization_pool_size:
                    self.localization_layers.append(
                        keras.layers.MaxPooling2D(self.localization_pool_size, name=f"loc_pool{index + 1}", dtype=dtype)
                    )
                self.localization_layers.append(
                    keras.layers.Conv2D(
                        filters,
                        self.localization_kernel_size,
                        activation=self.localization_activation,
                        name=f"loc_conv{index + 1}",
                        dtype=dtype,
                    )
                )
            self.localization_layers.append(keras.layers.Flatten(name="loc_flatten", dtype=dtype))
            for index, units in enumerate(self.localization_units):
                self.localization_layers.append(
                    keras.layers.Dense(
                        units, activation=self.localization_activation, name=f"loc_fc{index + 1}", dtype=dtype
                    )
                )
        self.regression = keras.layers.Dense(
            self.num_params,
            kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(IDENTITY_PARAMS[transform_type]),
            name="regression",
            dtype=dtype,
        )

    @property
    def output_size(self):
        return self.sampler.output_size

    @property
    def transform_type(self):
        return self.sampler.transform_type

    @property
    def padding_mode(self):
        return self.sampler.padding_mode

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"SpatialTransformer '{self.name}' expects NHWC images of rank 4; got shape {tuple(input_shape)}"
            )
        if None in tuple(input_shape[1:]):
            raise ValueError(
                f"SpatialTransformer '{self.name}' needs static height, width and channels (its localisation "
                f"network flattens the image and its sampler indexes pixels); got shape {tuple(input_shape)}"
            )
        shape = tuple(input_shape)
        if self.localization_network is not None:
            if not self.localization_network.built:
                self.localization_network.build(shape)
            shape = tuple(self.localization_network.compute_output_shape(shape))
            if len(shape) != 2:
                raise ValueError(
                    f"SpatialTransformer '{self.name}': localization_network must output (batch, features); "
                    f"its output shape is {shape}"
                )
        else:
            for layer in self.localization_layers:
                try:
                    next_shape = tuple(layer.compute_output_shape(shape))
                except ValueError:
                    next_shape = (shape[0], 0)
                if any(size is not None and size < 1 for size in next_shape[1:]):
                    raise ValueError(
                        f"SpatialTransformer '{self.name}': input {tuple(input_shape[1:3])} is too small for the "
                        f"localisation network ({layer.name} gets {shape}); use larger images or fewer / smaller "
                        "localisation layers"
                    )
                layer.build(shape)
                shape = next_shape
        self.regression.build(shape)
        self.sampler.build(tuple(input_shape), (input_shape[0], self.num_params))

    def _params(self, inputs, training=None):
        if self.localization_network is not None:
            features = self.localization_network(inputs, training=training)
        else:
            features = inputs
            for layer in self.localization_layers:
                features = layer(features)
        return self.regression(features)

    def localize(self, inputs, training=None):
        """The (batch, 2, 3) affine matrices the localisation network predicts for `inputs`."""
        return params_to_theta(self._params(inputs, training=training), self.transform_type)

    def attend(self, inputs, training=None):
        # theta is formed inside the sampler, so that its ops belong to the int8-sensitive part.
        sampled, theta, grid = self.sampler(inputs, self._params(inputs, training=training))
        return sampled, {"theta": theta, "grid": grid}

    def count_macs(self, input_shape):
        """Localisation convolutions and dense layers, the grid (6 per output pixel) and the
        bilinear sampler (4 per output value)."""
        out_height, out_width = self.sampler.output_size_for(input_shape)
        channels = input_shape[-1]
        total = 0
        shape = tuple(input_shape)
        if self.localization_network is not None:
            from attention_zoo.utils.counting import count_macs

            net = self.localization_network
            if not isinstance(net, keras.Model):
                raise NotImplementedError("count_macs needs localization_network to be a functional or Sequential model")
            # Counted on a clone: calling `net` again would add graph nodes that a later count
            # would see twice.
            total += count_macs(net, input_shape=shape[1:])
            shape = tuple(net.compute_output_shape(shape))
        else:
            for layer in self.localization_layers:
                out_shape = tuple(layer.compute_output_shape(shape))
                if isinstance(layer, keras.layers.Conv2D):
                    total += conv_macs(out_shape, layer.kernel_size, shape[-1], layer.filters)
                elif isinstance(layer, keras.layers.Dense):
                    total += dense_macs(shape, layer.units)
                shape = out_shape
        total += dense_macs(shape, self.num_params)
        return total + out_height * out_width * 6 + out_height * out_width * channels * 4

    def compute_output_shape(self, input_shape):
        out_height, out_width = self.sampler.output_size_for(input_shape)
        output = (input_shape[0], out_height, out_width, input_shape[-1])
        if self.return_attention:
            return output, {"theta": (input_shape[0], 2, 3), "grid": (input_shape[0], out_height, out_width, 2)}
        return output

    def get_config(self):
        config = super().get_config()
        config.update(
            output_size=self.output_size,
            transform_type=self.transform_type,
            padding_mode=self.padding_mode,
            localization_filters=self.localization_filters,
            localization_kernel_size=self.localization_kernel_size,
            localization_pool_size=self.localization_pool_size,
            localization_units=self.localization_units,
            localization_activation=self.localization_activation,
            localization_network=(
                None
                if self.localization_network is None
                else keras.saving.serialize_keras_object(self.localization_network)
            ),
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("localization_network"), dict):
            config["localization_network"] = keras.saving.deserialize_keras_object(config["localization_network"])
        return cls(**config)


__all__ = ["AffineSampler", "SpatialTransformer", "affine_grid", "attention_theta", "grid_sample"]
