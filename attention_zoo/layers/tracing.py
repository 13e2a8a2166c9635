"""Which form of a computation the layers trace: the fastest under Keras' own backends, or the
plainest for a graph that an exporter freezes and another runtime compiles.

Three pieces compute an op in a form chosen for TensorFlow's own CPU kernels:

- `ConvBN` applies the folded BatchNorm scale to small outputs rather than to large kernels;
- `grouped_conv` runs TensorFlow's own grouped kernels instead of Keras' XLA path, or where
  TensorFlow has none, narrow groups as a depthwise convolution and a sum;
- `global_pool` (every gate's squeeze) pools each map as one (H*W, 1) column.

None helps a converted graph. Its weights are constants, so a kernel fold costs nothing at
run time; LiteRT's XNNPACK runs a grouped convolution about twice as fast as the rewrite
(sknet50's int8 file took 131 ms with it against 65 ms without); and XNNPACK takes an int8
MEAN but not an int8 AVERAGE_POOL_2D. Exports therefore trace inside `plain_graph()`, which
gives them plain biased convolutions with the BN folded in, the grouped convolutions as they
are and the gates' means as MEAN, i.e. the graph before these speed-ups existed.
"""

import contextlib
import contextvars

_PLAIN_GRAPH = contextvars.ContextVar("attention_zoo_plain_graph", default=False)


@contextlib.contextmanager
def plain_graph():
    """Trace the plain form of every layer's computation inside this block (for exports)."""
    token = _PLAIN_GRAPH.set(True)
    try:
        yield
    finally:
        _PLAIN_GRAPH.reset(token)


def tracing_plain_graph():
    return _PLAIN_GRAPH.get()
