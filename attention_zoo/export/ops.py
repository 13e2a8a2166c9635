"""Which ops a LiteRT flatbuffer uses, which of its constants are infinite, and which Keras
layer an op came from.

TensorFlow names each op after the name scopes it was built in, and Keras opens a scope per
layer call, so an op or tensor name such as `model_1/stage2_block0_1/cbam_1/Max` leads back
to the layer `cbam` (Keras' TF backend adds `_N` suffixes when a scope name repeats).
"""

import re

import numpy as np

_SCOPE_SUFFIX = re.compile(r"_\d+$")


def flatbuffer_ops(content):
    """(sorted builtin op names, {custom op name: [names of the tensors it writes]})."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.python.schema_util import get_builtin_code_from_operator_code

    model = schema.Model.GetRootAs(content, 0)
    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    opcodes = [model.OperatorCodes(index) for index in range(model.OperatorCodesLength())]
    builtins, custom = set(), {}
    for subgraph in (model.Subgraphs(index) for index in range(model.SubgraphsLength())):
        for operator in (subgraph.Operators(index) for index in range(subgraph.OperatorsLength())):
            opcode = opcodes[operator.OpcodeIndex()]
            code = get_builtin_code_from_operator_code(opcode)
            if code != schema.BuiltinOperator.CUSTOM:
                builtins.add(names.get(code, str(code)))
                continue
            written = [subgraph.Tensors(operator.Outputs(i)).Name().decode() for i in range(operator.OutputsLength())]
            custom.setdefault(opcode.CustomCode().decode(), []).extend(written)
    return sorted(builtins), custom


def infinite_constants(content):
    """Names of the float tensors whose constant data holds an infinity."""
    from tensorflow.lite.python import schema_py_generated as schema

    dtypes = {
        schema.TensorType.FLOAT16: np.float16,
        schema.TensorType.FLOAT32: np.float32,
        schema.TensorType.FLOAT64: np.float64,
    }
    model = schema.Model.GetRootAs(content, 0)
    found = []
    for subgraph in (model.Subgraphs(index) for index in range(model.SubgraphsLength())):
        for tensor in (subgraph.Tensors(index) for index in range(subgraph.TensorsLength())):
            buffer = model.Buffers(tensor.Buffer())
            if tensor.Type() not in dtypes or not buffer.DataLength():
                continue
            if np.isinf(buffer.DataAsNumpy().view(dtypes[tensor.Type()])).any():
                found.append(tensor.Name().decode())
    return found


def layer_names(model):
    return {layer.name for layer in model._flatten_layers(include_self=False)}


def layers_in_scope(scope, known_layers):
    """The layer names along a TF scope path, outermost first."""
    found = []
    for part in scope.split("@", 1)[0].split("/"):
        for candidate in (part, _SCOPE_SUFFIX.sub("", part)):
            if candidate in known_layers:
                found.append(candidate)
                break
    return found


def describe_ops(ops_to_scopes, model):
    """{op: [innermost layer of each scope it appears in]} and a human sentence listing them."""
    known = layer_names(model)
    located = {}
    for op, scopes in ops_to_scopes.items():
        layers = []
        for scope in scopes:
            path = layers_in_scope(scope, known)
            if path and path[-1] not in layers:
                layers.append(path[-1])
        located[op] = layers
    parts = [
        f"{op} (in layer {', '.join(repr(name) for name in layers)})" if layers else f"{op} (layer not found)"
        for op, layers in sorted(located.items())
    ]
    return located, "; ".join(parts)


def converter_unsupported_ops(error):
    """{TF op name: [scopes]} of the ops a ConverterError says have no builtin kernel."""
    ops = {}
    for data in getattr(error, "errors", None) or []:
        message = data.error_message
        if "neither a custom op nor a flex op" not in message and "NEEDS_FLEX" not in message:
            continue
        op = data.operator.name.removeprefix("tf.") or "unknown op"
        scopes = ops.setdefault(op, [])
        scopes.extend(call.name for call in data.location.call if call.name and "/" in call.name)
    if not ops:  # older converters put the list in the message only
        text = str(error)
        for match in re.finditer(r"'tf\.(\w+)' op is neither a custom op nor a flex op", text):
            ops.setdefault(match.group(1), [])
        for line in re.findall(r"TF Select ops: ([^\n]+)", text):
            for op in line.split(","):
                ops.setdefault(op.strip(), [])
    return ops
