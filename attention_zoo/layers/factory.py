"""Name -> attention layer, so that any block can take any attention (timm's create_attn).

Each entry builds a gate-style attention layer for a feature map of `channels` channels that
keeps its shape. Blocks call `create_attention(name, channels, **options)`.
"""

import difflib

from attention_zoo.layers.bam import BottleneckAttention
from attention_zoo.layers.cbam import CBAM, ChannelAttention, SpatialAttention
from attention_zoo.layers.danet import ChannelSelfAttention, PositionAttention
from attention_zoo.layers.eca import EfficientChannelAttention
from attention_zoo.layers.non_local import NonLocalBlock
from attention_zoo.layers.squeeze_excite import SqueezeExcite

_ATTENTION_BUILDERS = {}


def register_attention(kind):
    """Registers `builder(channels, **options) -> layer` under the name `kind`."""

    def decorator(builder):
        if kind in _ATTENTION_BUILDERS:
            raise ValueError(f"attention '{kind}' is already registered")
        _ATTENTION_BUILDERS[kind] = builder
        return builder

    return decorator


def list_attention():
    return sorted(_ATTENTION_BUILDERS)


def create_attention(kind, channels, **options):
    """A new attention layer of kind `kind` for `channels` channels, or None for kind None.

    `options` go to the layer, including Keras' `name` and the zoo's `return_attention`.
    """
    if kind is None:
        return None
    if kind not in _ATTENTION_BUILDERS:
        close = difflib.get_close_matches(str(kind), list_attention(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown attention '{kind}'.{hint} Registered: {', '.join(list_attention())}")
    return _ATTENTION_BUILDERS[kind](channels, **options)


register_attention("se")(SqueezeExcite)
register_attention("eca")(EfficientChannelAttention)
register_attention("cbam")(CBAM)
register_attention("bam")(BottleneckAttention)
register_attention("channel")(ChannelAttention)
register_attention("non_local")(NonLocalBlock)
register_attention("danet_position")(PositionAttention)
register_attention("danet_channel")(ChannelSelfAttention)


@register_attention("spatial")
def _spatial_attention(channels, **options):
    del channels  # the spatial gate works on any channel count
    return SpatialAttention(**options)
