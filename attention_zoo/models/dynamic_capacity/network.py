"""The Dynamic Capacity Network: coarse layers everywhere, fine layers where the coarse
prediction is most sensitive, shared top layers on the mixture.

Forward pass of `DynamicCapacityNetwork` (geometry in `blocks`):

1. coarse feature map (batch, Hc, Wc, 24) from the whole image;
2. saliency (batch, Hc, Wc): L2 norm over channels of the gradient of the entropy of the coarse
   prediction, top(coarse), with respect to the coarse map (`saliency.py`);
3. the k most salient grid positions (`keras.ops.top_k`, k a Python int so that JAX sees a
   static shape);
4. their 14x14 input patches, gathered from the zero-padded image, through the fine layers:
   one 24-d fine vector per position;
5. the fine vectors replace the coarse ones at those positions (a gather and a select, exact);
6. the top layers classify the mixed map.

Training adds the hint loss, the squared distance between the coarse and the fine vectors at
the selected positions, averaged over examples and positions. The fine vectors are held
constant (`stop_gradient`), so the hint pulls only the coarse layers towards the fine
representation. The hint is registered with `add_loss` in the forward pass, which is how a
forward-pass loss reaches `compute_loss` on every backend: the JAX trainer returns such
losses from its stateless call and hands them to `compute_loss`, and the TensorFlow and
PyTorch trainers read them from `model.losses`. Keras' `compute_loss(x, y, y_pred,
sample_weight, training)` then adds them to the compiled task loss. Evaluation (training
False) reports the task loss alone.

The whole pass, saliency backward pass included, exports to LiteRT with builtin ops only
(`model.export(path, format="litert")` on TensorFlow, TFLITE_BUILTINS): top_k, one_hot, gather
(take_along_axis), select, pad, reshape, transposed convolution; see `blocks.Rectifier` and
`_mix` for the two places written around ops TFLite lacks. Tensors stay within 4-D except the
(batch, k, 14, 14, C) patches handed out by `attention`.
"""

import keras
import numpy as np
from keras import ops

from attention_zoo.layers.base import register_layer
from attention_zoo.models.dynamic_capacity import blocks
from attention_zoo.models.dynamic_capacity.saliency import saliency_map


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive Python integer; got {value!r}")
    return int(value)


@register_layer
class DynamicCapacityNetwork(keras.Model):
    """Dynamic Capacity Network (Almahairi et al., ICML 2016), cluttered-digit architecture.

    Args:
        image_shape: (height, width, channels) of the images, static: the patch gather works on
            the fixed coarse grid. Each side needs at least `blocks.min_image_size()` pixels.
        num_classes: classes of the top classifier.
        num_patches: k, the number of grid positions that get the fine layers.
        hint_weight: weight of the hint loss added to the task loss during training. The
            hint grows with the unnormalised ReLU features (tens to hundreds on the toy data of
            the tests), so a small weight keeps it from swamping the cross-entropy; 0.01 as in
            a public TensorFlow re-implementation (beopst/dcn.tf, whose layers are
            batch-normalised); the paper's value is not recorded in REFERENCE.md. On the
            embedded 100x100 digits the hint reached about 235 after 20 epochs on 20,000
            canvases and about 135 after the recipe's 8 epochs on 50,000, so at 0.01 it
            outweighs the cross-entropy. At 20,000 canvases 0.001 and 0 tested no worse, by
            less than the spread between seeds (README).
        classifier_activation: None for logits, or an activation applied to them ("softmax").
            The saliency always uses the logits.

    `model(images)` gives the class logits; `model(images, return_attention=True)` gives
    `(logits, attention)` with the dict described in `attention`.
    """

    def __init__(
        self,
        image_shape=(100, 100, 1),
        num_classes=10,
        num_patches=8,
        hint_weight=0.01,
        classifier_activation=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        image_shape = tuple(image_shape)
        if len(image_shape) != 3:
            raise ValueError(f"{self.name}: image_shape must be (height, width, channels); got {image_shape}")
        height, width, channels = (_positive_int(size, f"{self.name}: image_shape entries") for size in image_shape)
        min_size = blocks.min_image_size()
        if height < min_size or width < min_size:
            raise ValueError(
                f"{self.name} needs images of at least {min_size}x{min_size} pixels (the coarse grid must fit the "
                f"top 4x4 convolution); got image_shape {image_shape}"
            )
        self.image_shape = (height, width, channels)
        self.grid_shape = (blocks.coarse_grid_size(height), blocks.coarse_grid_size(width))
        positions = self.grid_shape[0] * self.grid_shape[1]
        self.num_patches = _positive_int(num_patches, f"{self.name}: num_patches")
        if self.num_patches > positions:
            raise ValueError(
                f"{self.name}: num_patches={num_patches} exceeds the {positions} positions of the "
                f"{self.grid_shape[0]}x{self.grid_shape[1]} coarse grid of {height}x{width} images"
            )
        self.num_classes = _positive_int(num_classes, f"{self.name}: num_classes")
        if isinstance(hint_weight, bool) or not isinstance(hint_weight, (int, float)) or hint_weight < 0:
            raise ValueError(f"{self.name}: hint_weight must be a non-negative number; got {hint_weight!r}")
        self.hint_weight = float(hint_weight)
        if classifier_activation is not None:
            if not isinstance(classifier_activation, str):
                raise ValueError(
                    f"{self.name}: classifier_activation must be None or the name of a Keras activation "
                    f"(it is saved in the model's config); got {classifier_activation!r}"
                )
            keras.activations.get(classifier_activation)  # unknown names fail here, not at the first call
        self.classifier_activation = classifier_activation

        dtype = self.dtype_policy
        self.image_padding = blocks.image_padding(dtype=dtype)
        self.coarse = keras.Sequential(blocks.coarse_layers(dtype), name="coarse")
        self.fine = keras.Sequential(blocks.fine_layers(dtype), name="fine")
        self.top = keras.Sequential(blocks.top_layers(self.num_classes, dtype), name="top")
        self.predictions = (
            keras.layers.Activation(classifier_activation, name="predictions", dtype=dtype)
            if classifier_activation is not None
            else None
        )

    # ----------------------------------------------------------------------------- building

    def _check_images(self, shape):
        shape = tuple(shape)
        if len(shape) != 4 or tuple(shape[1:]) != self.image_shape:
            raise ValueError(
                f"{self.name} was built for images of shape (batch, {', '.join(map(str, self.image_shape))}) "
                f"(NHWC; the size is static because patches are gathered on a fixed coarse grid); "
                f"got shape {shape}. Build another model with image_shape={tuple(shape[1:])} for other sizes."
            )

    def build(self, input_shape):
        self._check_images(input_shape)
        height, width, channels = self.image_shape
        self.image_padding.build((None, height, width, channels))
        self.coarse.build((None, height, width, channels))
        self.fine.build((None, blocks.PATCH_SIZE, blocks.PATCH_SIZE, channels))
        self.top.build((None, *self.grid_shape, blocks.FEATURE_CHANNELS))
        if self.predictions is not None:
            self.predictions.build((None, self.num_classes))

    # ------------------------------------------------------------------------------ forward

    @property
    def _positions(self):
        return self.grid_shape[0] * self.grid_shape[1]

    def _gather_patches(self, images, indices):
        """(batch * k, 14, 14, C) input patches of the grid positions `indices` (batch, k)."""
        height, width, channels = self.image_shape
        padded_width = width + sum(blocks.IMAGE_PADDING)
        padded = self.image_padding(images)
        flat = ops.reshape(padded, (-1, (height + sum(blocks.IMAGE_PADDING)) * padded_width, channels))
        stride, size, k = blocks.COARSE_STRIDE, blocks.PATCH_SIZE, indices.shape[1]
        rows, cols = indices // self.grid_shape[1], indices % self.grid_shape[1]
        starts = rows * (stride * padded_width) + cols * stride
        offsets = (np.arange(size)[:, None] * padded_width + np.arange(size)[None, :]).reshape(-1).astype("int32")
        pixels = ops.expand_dims(starts, -1) + ops.convert_to_tensor(offsets)[None, None, :]
        pixels = ops.reshape(pixels, (-1, k * size * size, 1))
        if channels > 1:
            pixels = ops.repeat(pixels, channels, axis=2)
        patches = ops.take_along_axis(flat, pixels, axis=1)
        return ops.reshape(patches, (-1, size, size, channels))

    def _mix(self, coarse_flat, fine, indices):
        """Coarse vectors (batch, N, D) with the fine ones (batch, k, D) at `indices` (batch, k).

        Both branches are selected, never summed or multiplied, so the fine vectors arrive
        bit-exact at their positions and the coarse ones everywhere else."""
        one_hot = ops.one_hot(indices, self._positions, dtype="int32")  # (batch, k, N)
        selected = ops.sum(one_hot, axis=1) > 0  # (batch, N); top_k indices are distinct
        # Which of the k fine vectors belongs at position n (0 where none does). An integer sum
        # rather than argmax: Keras' TF argmax adds a bitwise op that TFLite lacks.
        slots = ops.convert_to_tensor(np.arange(self.num_patches, dtype="int32"))[None, :, None]
        slot = ops.sum(one_hot * slots, axis=1)
        slot = ops.repeat(ops.expand_dims(slot, -1), blocks.FEATURE_CHANNELS, axis=2)
        fine_everywhere = ops.take_along_axis(fine, slot, axis=1)
        return ops.where(ops.expand_dims(selected, -1), fine_everywhere, coarse_flat)

    def _forward(self, images, training=None):
        k, channels = self.num_patches, blocks.FEATURE_CHANNELS
        coarse = self.coarse(images, training=training)
        saliency = saliency_map(self.top, coarse)
        # Integer indices: nothing flows back from the selection into the saliency.
        _, indices = ops.top_k(ops.reshape(saliency, (-1, self._positions)), k, sorted=True)
        indices = ops.cast(indices, "int32")
        patches = self._gather_patches(images, indices)
        fine = ops.reshape(self.fine(patches, training=training), (-1, k, channels))
        coarse_flat = ops.reshape(coarse, (-1, self._positions, channels))
        mixed = ops.reshape(self._mix(coarse_flat, fine, indices), (-1, *self.grid_shape, channels))
        logits = self.top(mixed, training=training)
        return {
            "logits": logits,
            "coarse": coarse,
            "coarse_flat": coarse_flat,
            "saliency": saliency,
            "indices": indices,
            "patches": patches,
            "fine": fine,
            "mixed": mixed,
        }

    def _hint_loss(self, coarse_flat, fine, indices):
        at = ops.repeat(ops.expand_dims(indices, -1), blocks.FEATURE_CHANNELS, axis=2)
        coarse_selected = ops.take_along_axis(coarse_flat, at, axis=1)
        target = ops.stop_gradient(fine)
        return ops.mean(ops.sum(ops.square(ops.cast(coarse_selected - target, "float32")), axis=-1))

    def _attention(self, outputs):
        indices = outputs["indices"]
        rows, cols = indices // self.grid_shape[1], indices % self.grid_shape[1]
        positions = ops.stack([rows, cols], axis=-1)
        top, left = blocks.patch_origin(rows), blocks.patch_origin(cols)
        boxes = ops.stack([top, left, top + blocks.PATCH_SIZE, left + blocks.PATCH_SIZE], axis=-1)
        size, channels = blocks.PATCH_SIZE, self.image_shape[-1]
        return {
            "positions": positions,
            "saliency": outputs["saliency"],
            "boxes": boxes,
            "patches": ops.reshape(outputs["patches"], (-1, self.num_patches, size, size, channels)),
        }

    def call(self, inputs, training=None, return_attention=False):
        self._check_images(inputs.shape)
        outputs = self._forward(inputs, training=training)
        if training:
            hint = self._hint_loss(outputs["coarse_flat"], outputs["fine"], outputs["indices"])
            self.add_loss(self.hint_weight * hint)
        predictions = outputs["logits"]
        if self.predictions is not None:
            predictions = self.predictions(predictions)
        if return_attention:
            return predictions, self._attention(outputs)
        return predictions

    def compute_output_spec(self, inputs, training=None, return_attention=False):
        self._check_images(inputs.shape)
        batch = inputs.shape[0]
        predictions = keras.KerasTensor((batch, self.num_classes), dtype=self.compute_dtype)
        if not return_attention:
            return predictions
        k, size, channels = self.num_patches, blocks.PATCH_SIZE, self.image_shape[-1]
        return predictions, {
            "positions": keras.KerasTensor((batch, k, 2), dtype="int32"),
            "saliency": keras.KerasTensor((batch, *self.grid_shape), dtype="float32"),
            "boxes": keras.KerasTensor((batch, k, 4), dtype="int32"),
            "patches": keras.KerasTensor((batch, k, size, size, channels), dtype=self.compute_dtype),
        }

    # ------------------------------------------------------------------------ inspection

    def attention(self, images):
        """What the network attended to, for visualisation (inference mode):

        positions: (batch, k, 2) int32 (row, col) on the coarse grid, most salient first;
        saliency: (batch, Hc, Wc) entropy-gradient norm of every grid position;
        boxes: (batch, k, 4) int32 (top, left, bottom, right) of each patch in input pixels,
            bottom/right exclusive; a box may reach 2 pixels before or 1 after the image, where
            the patch reads zero padding;
        patches: (batch, k, 14, 14, C) the input patches the fine layers saw.
        """
        return self(images, training=False, return_attention=True)[1]

    def extract_patches(self, images, positions):
        """(batch, n, 14, 14, C) input patches that the fine layers see at grid `positions`
        (batch, n, 2) of (row, col); parts outside the image are zeros."""
        self._check_images(tuple(images.shape))
        positions = ops.cast(ops.convert_to_tensor(positions), "int32")
        if len(positions.shape) != 3 or positions.shape[-1] != 2:
            raise ValueError(
                f"positions must be (batch, n, 2) grid (row, col) pairs; got shape {tuple(positions.shape)}"
            )
        count = positions.shape[1]
        indices = positions[..., 0] * self.grid_shape[1] + positions[..., 1]
        size, channels = blocks.PATCH_SIZE, self.image_shape[-1]
        return ops.reshape(self._gather_patches(images, indices), (-1, count, size, size, channels))

    def feature_maps(self, images, training=False):
        """The representations inside the forward pass, for analysis:

        coarse: (batch, Hc, Wc, 24) coarse map; fine: (batch, k, 24) fine vectors of the selected
        positions (in `attention(...)["positions"]` order); mixed: (batch, Hc, Wc, 24) the map the
        top layers classify; hint: () the hint loss (unweighted)."""
        self._check_images(tuple(images.shape))
        outputs = self._forward(images, training=training)
        return {
            "coarse": outputs["coarse"],
            "fine": outputs["fine"],
            "mixed": outputs["mixed"],
            "hint": self._hint_loss(outputs["coarse_flat"], outputs["fine"], outputs["indices"]),
        }

    def with_patches(self, num_patches):
        """This network with another number of fine patches k and the same weights.

        k only sets how many positions the top_k keeps, so a network trained with one k runs
        with any other: more patches cost `num_patches` fine passes per image and see more of
        it (`count_macs` of the copy prices them). The copy shares no variables with this one;
        its weights keep this network's paths, so it saves and loads like the original."""
        config = self.get_config()
        config.update(num_patches=num_patches)
        model = type(self).from_config(config)
        model.build((None, *self.image_shape))
        model.set_weights(self.get_weights())
        return model

    def count_macs(self, input_shape=None):
        """Multiply-accumulates per image of the whole DCN pass (see `macs_report`)."""
        from attention_zoo.models.dynamic_capacity.costs import macs_report

        if input_shape is not None and tuple(input_shape) != self.image_shape:
            raise ValueError(
                f"{self.name} is built for {self.image_shape} images; got input_shape {tuple(input_shape)}"
            )
        return macs_report(self)["dcn"]

    def get_config(self):
        config = super().get_config()
        config.update(
            image_shape=list(self.image_shape),
            num_classes=self.num_classes,
            num_patches=self.num_patches,
            hint_weight=self.hint_weight,
            classifier_activation=self.classifier_activation,
        )
        return config
