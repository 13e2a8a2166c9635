"""The Recurrent Attention Model family (Mnih et al., NIPS 2014): glimpses, a recurrent core
and a location policy trained with REINFORCE."""

from attention_zoo.models.recurrent_attention import presets
from attention_zoo.models.recurrent_attention.model import RecurrentAttentionModel
from attention_zoo.models.recurrent_attention.presets import RAM_PAPER, build_recurrent_attention

__all__ = ["RAM_PAPER", "RecurrentAttentionModel", "build_recurrent_attention", "presets"]
