"""TensorFlow's TFLite converter, without the rebuild in its freezing step.

`TFLiteConverter.from_concrete_functions` freezes the weights into constants of a GraphDef,
then rebuilds a ConcreteFunction from that GraphDef (a wrap, a prune and an import, each
copying every constant) only to read the function's input and output tensors back. The traced
function has them already. For a ResNet the rebuild was half of the whole conversion:
resnet50 at 32x32 converted in 10-14 s instead of 22-26 s without it, se_resnet152 in 47 s
instead of 106 s, to the same bytes.

`converter_class()` is the public converter with that step replaced. It calls two private
functions of TensorFlow's `convert_to_constants`, the ones the public step calls itself; a
TensorFlow without them, or with other signatures, falls back to the public step.
tests/export/test_freezing.py checks that both write the same file and that the installed
TensorFlow takes the direct path.
"""

import functools


@functools.cache
def converter_class():
    """A `tf.lite.TFLiteConverter` subclass that freezes without rebuilding the function."""
    import tensorflow as tf

    public = tf.lite.TFLiteConverter

    class DirectFreezeConverter(public):
        def _freeze_concrete_function(self):
            if len(self._funcs) != 1:
                return super()._freeze_concrete_function()  # its error message
            try:
                return _freeze_without_rebuild(self._funcs[0])
            except (TypeError, AttributeError):  # another TensorFlow: internals missing or reshaped
                return super()._freeze_concrete_function()

    return DirectFreezeConverter


def _freeze_without_rebuild(function):
    """(frozen GraphDef, input tensors, output tensors, the traced function), as the public
    step returns them, without rebuilding a function from the GraphDef."""
    import tensorflow as tf
    from tensorflow.python.framework import convert_to_constants

    variables = convert_to_constants._FunctionConverterDataInEager(
        func=function, lower_control_flow=False, aggressive_inlining=False
    )
    graph_def, frozen_indices = convert_to_constants._replace_variables_by_constants(converter_data=variables)
    captures = function.graph.internal_captures
    frozen = {id(captures[index]) for index in frozen_indices}
    inputs = [t for t in function.inputs if id(t) not in frozen and t.dtype != tf.resource]
    # The traced function stands in for the rebuilt one: the converter reads only its
    # graph, and only for Grappler passes that a conversion to builtin ops does not run.
    return graph_def, inputs, function.outputs, function
