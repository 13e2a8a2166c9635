"""Which form of a computation the layers trace: the fastest under Keras' own backends, or the
plainest for a graph that an exporter freezes and another runtime compiles.

Three pieces compute an op in a form chosen for TensorFlow's own CPU kernels, where
`tracing_for_tensorflow_kernels()` says so:

- `ConvBN` adds its folded BatchNorm's bias as a BiasAdd, which oneDNN fuses with a block's
  residual add and ReLU;
- `grouped_conv` runs TensorFlow's own grouped kernels instead of Keras' XLA path, or where
  TensorFlow has none, narrow groups as a depthwise convolution and a sum;
- `global_pool` (every gate's squeeze) pools each map as one (H*W, 1) column.

Two more choose their form on every backend but in exports (`tracing_plain_graph()`):
`ConvBN.folds_into_kernel` applies the folded BatchNorm scale to small outputs rather than to
large kernels, and CBAM's `conv_to_one_channel` gathers each output row's input rows
(exports take slices instead: XNNPACK runs no GATHER).

None helps a converted graph. Its weights are constants, so a kernel fold costs nothing at
run time; LiteRT's XNNPACK runs a grouped convolution about twice as fast as the rewrite
(sknet50's int8 file took 131 ms with it against 65 ms without); and XNNPACK takes an int8
MEAN but not an int8 AVERAGE_POOL_2D. Exports therefore trace inside `plain_graph()`, which
gives them plain biased convolutions with the BN folded in, the grouped convolutions as they
are and the gates' means as MEAN, i.e. the graph before these speed-ups existed.
"""

import contextlib
import contextvars

import keras

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


def tracing_for_tensorflow_kernels():
    """Whether to trace the forms chosen for TensorFlow's own CPU kernels: on the TensorFlow
    backend, outside `plain_graph()`."""
    return keras.backend.backend() == "tensorflow" and not tracing_plain_graph()
