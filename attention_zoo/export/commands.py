"""The `export` sub-command of `attention-zoo`.

    attention-zoo export MODEL_OR_FILE --format {tflite,saved_model,onnx}
        --quantize {none,float16,dynamic,int8} [--representative-data DIR|FILE.npy|synthetic:N]
        [--keep-float auto|LAYER[,LAYER...]]
        [--batch 1] [--input-size N] [--num-classes N] [--weights W] -o OUT

`add_commands(subparsers)` adds it to an argparse sub-parser set; the parsed namespace carries
`run(args) -> exit status`, the convention of `attention_zoo.cli`. Heavy imports wait until
the command runs, so `--help` stays fast.
"""

import argparse
import os

EPILOG = """\
examples:
  attention-zoo export cbam_resnet50 --input-size 224 -o cbam.tflite
  attention-zoo export runs/quickstart/best.keras --quantize int8 --representative-data photos/ -o model.tflite
  attention-zoo export stn_cnn --weights cluttered_digits --quantize int8 --representative-data digits.npy -o stn.tflite
  attention-zoo export runs/quickstart/best.keras --quantize int8 --keep-float auto \
      --representative-data digits.npy -o stn_int8.tflite
  attention-zoo export se_resnet50 --format saved_model -o se_resnet50_savedmodel
  attention-zoo export se_resnet50 --format onnx -o se_resnet50.onnx

LiteRT files use builtin ops only and are verified after writing: the file runs in the
LiteRT interpreter on the representative data (else random images) and a float32 file must
match the Keras model to a relative error of 1e-4. int8 is full-integer with int8 input and
output (--io-dtype uint8 or float32 to change); it needs --representative-data, and
'synthetic:N' calibrates on random images. --keep-float leaves chosen layers in float32
(auto: those the model declares int8-sensitive, such as a spatial transformer's sampler),
with their conversions at the boundaries; all ops stay builtins. The report (parity, quantisation scales and zero
points, ops, size) is written next to the file as OUT.json. A failed export writes nothing.
Needs KERAS_BACKEND=tensorflow (the default here). ONNX (pip install 'attention_zoo[onnx]')
also exports on KERAS_BACKEND=torch; the file runs in onnxruntime and must match to 1e-4.

exit status: 0 exported and verified, 2 bad arguments, unsupported op or parity failure.
"""


def _summary(report):
    size = f"{report.file_bytes / 2**20:.1f} MiB"
    lines = [f"wrote {report.path} ({report.format}, {report.quantize}, {size}, input {list(report.input_shape)})"]
    if report.verified:
        line = f"  vs Keras on {report.samples} inputs ({report.sample_source}, {report.runtime}): " \
               f"max relative error {report.max_relative_error:.3g}"
        if report.top1_agreement is not None:
            line += f", top-1 agreement {report.top1_agreement:.2%}"
        lines.append(line)
    else:
        lines.append("  not verified")
    for tensor in report.inputs + report.outputs:
        if "scale" in tensor:
            lines.append(
                f"  {tensor['name']}: {tensor['dtype']} scale {tensor['scale']:.6g} zero point {tensor['zero_point']}"
            )
    lines.append(f"  report: {report.report_path}")
    return "\n".join(lines)


def _export(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from attention_zoo import export

    if args.format != "tflite" and (
        args.quantize != "none" or args.representative_data or args.io_dtype or args.keep_float
    ):
        raise ValueError("--quantize, --representative-data, --io-dtype and --keep-float apply to --format tflite")
    if args.format == "tflite":  # before minutes of model building
        export.source.require_tensorflow("TFLite export")
    elif args.format == "onnx":
        export.formats.require_onnx(verify=not args.no_verify)
    is_name = not (args.model.endswith(".keras") or os.path.isfile(args.model))
    model = export.resolve_model(
        args.model,
        input_size=args.input_size,
        num_classes=args.num_classes if is_name else None,
        weights=args.weights,
        options=dict(args.option or ()),
    )
    options = {"normalization": args.normalization}
    if args.format == "tflite":
        options.update(
            quantize=args.quantize,
            representative_data=args.representative_data,
            io_dtype=args.io_dtype,
            keep_float=export.selective.parse(args.keep_float),
        )
    report = export.export_model(
        model, args.output, format=args.format, batch=args.batch, input_size=args.input_size,
        verify=not args.no_verify, **options,
    )
    print(report.to_json() if args.json else _summary(report))
    return 0


def add_commands(subparsers):
    from attention_zoo.cli import _option

    command = subparsers.add_parser(
        "export",
        help="export a model to TFLite (LiteRT), SavedModel or ONNX, verified against Keras",
        description="Converts MODEL (a registered name or a .keras file) at a static input shape, "
        "runs the result on sample inputs and reports its agreement with the Keras model.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("model", metavar="MODEL_OR_FILE", help="a registered model name or a .keras file")
    command.add_argument("-o", "--output", required=True, help="the file to write (.tflite for tflite)")
    command.add_argument("--format", default="tflite", choices=("tflite", "saved_model", "onnx"))
    command.add_argument("--quantize", default="none", choices=("none", "float16", "dynamic", "int8"))
    command.add_argument(
        "--representative-data",
        metavar="DIR|FILE.npy|synthetic:N",
        help="calibration and verification inputs: a directory of images, a .npy array (N, H, W, C) "
        "already normalised, or N random images",
    )
    command.add_argument(
        "--normalization",
        default="auto",
        choices=("auto", "imagenet", "unit", "none"),
        help="how images from a directory (and random ones) are scaled; auto: imagenet for RGB, unit for grayscale",
    )
    command.add_argument(
        "--io-dtype",
        choices=("int8", "uint8", "float32"),
        help="int8 only: the file's input and output type (default int8)",
    )
    command.add_argument(
        "--keep-float",
        metavar="auto|LAYER[,LAYER...]",
        help="int8 only: layers whose ops stay float32; auto: those the model declares int8-sensitive",
    )
    command.add_argument("--batch", type=int, default=1, help="static batch size of the file (default 1)")
    command.add_argument("--input-size", type=int, help="square input size (default: the model's own)")
    command.add_argument(
        "--num-classes", type=int, help="classifier size of a registered model (default: the weights' tag's, or 1000)"
    )
    command.add_argument(
        "--weights", help="pretrained weights of a registered model: a tag, a checkpoint or a .weights.h5"
    )
    command.add_argument(
        "--option", action="append", type=_option, metavar="KEY=VALUE", help="model option, e.g. classifier=resnet18"
    )
    command.add_argument("--no-verify", action="store_true", help="skip running the file (no parity in the report)")
    command.add_argument("--json", action="store_true", help="print the report as JSON")
    command.set_defaults(run=_export)
    return command

