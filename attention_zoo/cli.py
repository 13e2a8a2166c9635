"""The `attention-zoo` command.

    attention-zoo list [PATTERN]          registered models (shell wildcards)
    attention-zoo info MODEL [--build]    paper, reference figures; --build measures them
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
    model = zoo.get(name)
    size = input_size or zoo.model_info(name).default_input_size
    channels = zoo.model_info(name).input_channels
    return {
        "params": zoo.count_params(model),
        "gmacs": round(zoo.count_macs(model, input_shape=(size, size, channels)) / 1e9, 3),
        "input_size": size,
    }


def _info(args):
    zoo = _import_zoo()
    info = zoo.model_info(args.model)
    report = dataclasses.asdict(info)
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
    if args.build:
        measured = report["measured"]
        print(f"  built:    {measured['params']:,} parameters (PyTorch convention), "
              f"{measured['gmacs']} GMACs at {measured['input_size']}x{measured['input_size']}")
        if info.params:
            verdict = "matches" if measured["params"] == info.params else "DIFFERS FROM"
            print(f"            parameter count {verdict} the reference")
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
