"""The `attention-zoo` command.

    attention-zoo list [PATTERN]          registered models (shell wildcards)
    attention-zoo info MODEL [--build]    paper, reference figures; --build measures them
    attention-zoo show MODEL --image PATH -o OUT.png
                                          the model's attention maps drawn on an image
    attention-zoo train RECIPE [--set key=value ...]
                                          fine-tune a model from a recipe (resumes)
    attention-zoo evaluate RUN_DIR        metrics of a run's best model
    attention-zoo export MODEL_OR_FILE -o OUT.tflite [--quantize int8 ...]
                                          TFLite / SavedModel / ONNX, verified against Keras
"""

import argparse
import dataclasses
import json
import os
import sys


def _import_zoo():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import attention_zoo

    return attention_zoo


def _list(args):
    zoo = _import_zoo()
    names = zoo.list_models(args.pattern)
    if args.json:
        print(json.dumps(names))
        return 0
    for name in names:
        info = zoo.model_info(name)
        params = f"{info.params / 1e6:7.2f} M" if info.params else "      -  "
        print(f"{name:28s} {info.family:20s} {params}  {info.paper.title}")
    return 0


def _measure(zoo, name, input_size):
    from attention_zoo.registry import square_input_shape

    model = zoo.get(name)
    input_shape = square_input_shape(name, input_size)
    return {
        "params": zoo.count_params(model),
        "gmacs": round(zoo.count_macs(model, input_shape=input_shape) / 1e9, 3),
        "input_size": input_shape[0],
    }


def _published_weights(name):
    """{tag: summary} of the published weights that load into `name`."""
    from attention_zoo import pretrained

    default = pretrained.default_tag(name)
    return {
        tag: {"default": tag == default, "dataset": entry.dataset, "num_classes": entry.num_classes,
              "verified": entry.sha256 is not None, "url": entry.url}
        for tag, entry in sorted(pretrained.available_weights(name).items())
    }


def _info(args):
    zoo = _import_zoo()
    info = zoo.model_info(args.model)
    report = dataclasses.asdict(info)
    report["weights"] = _published_weights(info.name)
    if args.build:
        report["measured"] = _measure(zoo, args.model, args.input_size)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{info.name}  ({info.family})")
    print(f"  paper:    {info.paper.title}, {info.paper.authors}, {info.paper.venue} {info.paper.year}")
    print(f"  url:      {info.paper.url}")
    print(f"  layout:   {info.layout}")
    print(f"  params:   {info.params:,}" if info.params else "  params:   (no reference)")
    print(f"  GMACs:    {info.gmacs} at {info.default_input_size}x{info.default_input_size}" if info.gmacs else "  GMACs:    (no reference)")
    for key, value in info.reported.items():
        print(f"  {key}: {value}")
    if info.notes:
        print(f"  notes:    {info.notes}")
    for tag, weights in report["weights"].items():
        checked = "sha256 published" if weights["verified"] else "no published sha256: needs allow_unverified"
        default = " (the default: weights='imagenet' loads it)" if weights["default"] else ""
        print(f"  weights:  '{tag}'{default}, {weights['dataset']}, {weights['num_classes']} classes, {checked}")
    if args.build:
        measured = report["measured"]
        print(f"  built:    {measured['params']:,} parameters (PyTorch convention), "
              f"{measured['gmacs']} GMACs at {measured['input_size']}x{measured['input_size']}")
        if info.params:
            verdict = "matches" if measured["params"] == info.params else "DIFFERS FROM"
            print(f"            parameter count {verdict} the reference")
    return 0


def _option(text):
    """KEY=VALUE with a JSON value (numbers, true/false, lists), else the plain string."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _static_size(model):
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        shape = (None, *(getattr(model, "image_shape", None) or (None, None, None)))
    if isinstance(shape, tuple) and len(shape) == 4 and shape[1] is not None and shape[2] is not None:
        return (int(shape[1]), int(shape[2])), shape[3]
    return None, (shape[3] if isinstance(shape, tuple) and len(shape) == 4 else None)


def _show_model(zoo, args):
    """(model, (height, width), channels) for a registered name or a .keras file."""
    if args.model.endswith(".keras"):
        if args.weights or args.option:
            raise ValueError("--weights and --option apply to registered models, not to a .keras file")
        if not os.path.isfile(args.model):
            raise ValueError(f"model file {args.model!r} does not exist")
        import keras

        try:
            model = keras.saving.load_model(args.model)
        except Exception as error:  # Keras raises many types for a bad archive
            raise ValueError(f"cannot load model file {args.model!r}: {error}") from None
        size, channels = _static_size(model)
        if size is None:
            side = args.input_size or 224
            size = (side, side)
        elif args.input_size and (args.input_size, args.input_size) != size:
            raise ValueError(
                f"{args.model} was saved for {size[0]}x{size[1]} images; got --input-size {args.input_size}"
            )
        return model, size, channels or 3
    zoo.model_info(args.model)  # an unknown name raises, listing the closest ones
    reserved = sorted({key for key, _ in args.option or ()} & {"weights", "num_classes", "input_shape"})
    if reserved:
        raise ValueError(f"--option {reserved[0]}=... : use --weights, --num-classes or --input-size instead")
    from attention_zoo.registry import square_input_shape

    input_shape = square_input_shape(args.model, args.input_size, args.weights)
    model = zoo.get(
        args.model,
        weights=args.weights,
        num_classes=args.num_classes,
        input_shape=input_shape,
        **dict(args.option or ()),
    )
    size, channels = _static_size(model)
    return model, size or input_shape[:2], channels or input_shape[2]


def _show_pixels(visualization, model, image, size, channels, scale):
    """The image as the model's input: with the evaluation preprocessing of its pretrained
    weights (centre crop, resize, normalisation) under scale "auto", else resized whole."""
    recipe = getattr(getattr(model, "pretrained_weights", None), "preprocessing", None)
    if scale == "auto" and recipe is not None and channels == 3:
        import numpy as np
        from keras import ops

        rgb = np.asarray(image.convert("RGB"), dtype="float32")
        return np.asarray(ops.convert_to_numpy(recipe(rgb, input_size=size)))[0]
    return visualization.prepare_image(image, size, channels, "unit" if scale == "auto" else scale)


def _show(args):
    zoo = _import_zoo()
    from attention_zoo import visualization

    missing = visualization.missing_dependencies()
    if missing:  # checked before any work
        raise ValueError(f"'show' needs matplotlib and pillow (missing: {', '.join(missing)}): "
                         "pip install 'attention_zoo[viz]'")
    # The image first: a bad file is reported before minutes of model building.
    image = visualization.read_image(args.image)
    model, size, channels = _show_model(zoo, args)
    if not visualization.has_attention(model):
        raise ValueError(f"{model.name} has no attention layers that hand back their maps")
    pixels = _show_pixels(visualization, model, image, size, channels, args.scale)
    query = None if args.query is None else tuple(args.query)
    visualization.plot_attention(
        model, pixels, path=args.output, kind=args.kind, layers=args.layer, query=query, dpi=args.dpi
    )
    print(f"wrote {args.output}: attention of {model.name} on {args.image} at {size[0]}x{size[1]}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="attention-zoo", description="Vision attention architectures for Keras 3.")
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="list registered models")
    listing.add_argument("pattern", nargs="?", default="*", help="shell-style wildcard, e.g. 'cbam_*'")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=_list)

    info = commands.add_parser("info", help="describe a model: paper, reference figures, measured figures")
    info.add_argument("model")
    info.add_argument("--build", action="store_true", help="build the model and measure parameters and MACs")
    info.add_argument("--input-size", type=int, help="image size for the MAC count (default: the model's)")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=_info)

    show = commands.add_parser(
        "show",
        help="draw a model's attention maps on an image (PNG)",
        description="Runs MODEL on the image and writes a figure of its attention: maps laid over the "
        "image per stage, channel gates, selective-kernel path weights, spatial-transformer grids, "
        "glimpse paths or selected patches, whichever the model has.",
    )
    show.add_argument("model", help="a registered model name, or the path of a .keras file")
    show.add_argument("--image", required=True, help="PNG or JPEG file; resized to the model's input size")
    show.add_argument("-o", "--output", required=True, help="the PNG to write")
    show.add_argument(
        "--weights",
        help="pretrained weights for the registered model: a tag ('imagenet'), a checkpoint or a .weights.h5",
    )
    show.add_argument(
        "--num-classes", type=int, help="classifier size the weights were saved with (default: the tag's, or 1000)"
    )
    show.add_argument("--input-size", type=int, help="square input size (default: the model's)")
    show.add_argument(
        "--option", action="append", type=_option, metavar="KEY=VALUE", help="model option, e.g. attention=non_local"
    )
    show.add_argument("--layer", action="append", metavar="NAME", help="draw only this layer (repeatable)")
    show.add_argument(
        "--query",
        type=float,
        nargs=2,
        metavar=("ROW", "COL"),
        help="input pixel whose self-attention map is drawn (default: the centre)",
    )
    show.add_argument(
        "--kind",
        default="auto",
        choices=("auto", "overlay", "channels", "paths", "affinity", "transformer", "glimpses", "patches"),
        help="which figure: auto picks sections for the attention the model has",
    )
    show.add_argument(
        "--scale",
        default="auto",
        choices=("auto", "unit", "imagenet", "raw"),
        help="pixel scaling: auto (the pretrained weights' own preprocessing, else /255), /255, "
        "ImageNet mean/std, or 0..255",
    )
    show.add_argument("--dpi", type=int, default=100, help="resolution of the PNG")
    show.set_defaults(run=_show)

    from attention_zoo.training.commands import add_commands

    add_commands(commands)

    from attention_zoo.export.commands import add_commands as add_export_commands

    add_export_commands(commands)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ValueError as error:  # bad names and options: a message, not a traceback
        print(f"attention-zoo: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
