"""Name -> attention layer, so that any block can take any attention (timm's create_attn).

Each entry builds a gate-style attention layer for a feature map of `channels` channels that
keeps its shape. Blocks call `create_attention(name, channels, **options)`.
"""

import difflib

from attention_zoo.layers.bam import BottleneckAttention
from attention_zoo.layers.cbam import CBAM, ChannelAttention, SpatialAttention
from attention_zoo.layers.eca import EfficientChannelAttention
from attention_zoo.layers.squeeze_excite import SqueezeExcite

_ATTENTION_BUILDERS = {}


def register_attention(name):
    """Registers `builder(channels, **options) -> layer` under `name`."""

    def decorator(builder):
        if name in _ATTENTION_BUILDERS:
            raise ValueError(f"attention '{name}' is already registered")
        _ATTENTION_BUILDERS[name] = builder
        return builder

    return decorator


def list_attention():
    return sorted(_ATTENTION_BUILDERS)


def create_attention(name, channels, **options):
    """A new attention layer of kind `name` for `channels` channels, or None for name None."""
    if name is None:
        return None
    if name not in _ATTENTION_BUILDERS:
        close = difflib.get_close_matches(str(name), list_attention(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown attention '{name}'.{hint} Registered: {', '.join(list_attention())}")
    return _ATTENTION_BUILDERS[name](channels, **options)


register_attention("se")(SqueezeExcite)
register_attention("eca")(EfficientChannelAttention)
register_attention("cbam")(CBAM)
register_attention("bam")(BottleneckAttention)
register_attention("channel")(ChannelAttention)


@register_attention("spatial")
def _spatial_attention(channels, **options):
    del channels  # the spatial gate works on any channel count
    return SpatialAttention(**options)
