"""The ``fitroom`` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import platform
import sys
from pathlib import Path

logger = logging.getLogger("fitroom")


def _size(text: str) -> tuple[int, int]:
    """Parse ``HxW`` (height x width), e.g. ``1024x768``."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HEIGHTxWIDTH such as 1024x768, got {text!r}") from None
    return height, width


def _views(text: str):
    from fitroom.labels import View

    try:
        return tuple(View(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"views are 'front', 'back' or 'front,back', got {text!r}") from None


def cmd_env(args: argparse.Namespace) -> int:
    """Print versions and optional weights, for bug reports."""
    from fitroom import __version__
    from fitroom.weights import KNOWN_WEIGHTS, find, weights_dir

    lines = [f"fitroom {__version__}", f"python {platform.python_version()} ({platform.platform()})"]
    for module in ("torch", "torchvision", "numpy", "cv2", "mediapipe", "kornia", "PIL"):
        try:
            version = importlib.import_module(module).__version__
        except ImportError:
            version = "not installed"
        lines.append(f"{module:12s} {version}")
    try:
        import torch

        lines.append(f"cuda         {'available: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'not available'}")
        lines.append(f"threads      {torch.get_num_threads()}")
    except ImportError:
        pass
    lines.append(f"weights dir  {weights_dir()}  (set FITROOM_WEIGHTS to change)")
    for weight in KNOWN_WEIGHTS:
        state = "present" if find(weight.name) else "missing"
        lines.append(f"  {weight.name:18s} {state:8s} {weight.filename}  ({weight.used_by})")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """Render a synthetic front/back dataset in the VITON-HD layout."""
    from fitroom.data.synthetic.problems import write_problem_set
    from fitroom.data.synthetic.writer import SynthConfig, synthesize

    config = SynthConfig(out=Path(args.out), count=args.count, size=args.size, views=args.views, seed=args.seed,
                         test_fraction=args.test_fraction, workers=args.workers)
    synthesize(config, progress=not args.quiet)
    if args.problems:
        labels = write_problem_set(config.out / "problems", args.problems, size=args.size, seed=args.seed,
                                   progress=not args.quiet)
        logger.info("problem photos: %s", labels)
    return 0


def cmd_dataset_check(args: argparse.Namespace) -> int:
    """Read every pair of a dataset and list broken files."""
    from fitroom.data.layout import DatasetError, VitonLayout

    problems = 0
    for split in args.splits:
        try:
            layout = VitonLayout(Path(args.root), split)
        except DatasetError as error:
            logger.error("%s", error)
            problems += 1
            continue
        found = layout.check()
        for error in found:
            logger.error("%s", error)
        logger.info("%s: %d pairs, %d problems", split, len(layout.pairs()) if not found or
                    not isinstance(found[0], DatasetError) else len(layout.names()), len(found))
        problems += len(found)
    return 1 if problems else 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the embedded defaults: render a sample set and a contact sheet."""
    from fitroom.data.synthetic.writer import SynthConfig, synthesize
    from fitroom.demo import contact_sheet
    from fitroom import imaging

    out = Path(args.out)
    config = SynthConfig(out=out / "dataset", count=args.count, size=args.size, seed=args.seed,
                         workers=args.workers, test_fraction=0.25)
    synthesize(config, progress=not args.quiet)
    sheet = contact_sheet(config.out, rows=args.count)
    path = out / "contact_sheet.png"
    imaging.save_image(path, sheet)
    logger.info("rendered %d people (front and back) into %s", args.count, config.out)
    logger.info("contact sheet: %s", path.resolve())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fitroom", description="An open-source virtual fitting room.")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    env = sub.add_parser("env", help="print versions and which optional weights are present")
    env.set_defaults(func=cmd_env)

    synth = sub.add_parser("synth", help="render a synthetic front/back try-on dataset (VITON-HD layout)")
    synth.add_argument("--out", required=True, help="dataset folder to write")
    synth.add_argument("--count", type=int, default=16, help="number of identities (each gives one sample per view)")
    synth.add_argument("--size", type=_size, default=(1024, 768), help="HEIGHTxWIDTH, 4:3 (default 1024x768)")
    synth.add_argument("--views", type=_views, default=_views("front,back"), help="front, back or front,back")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--workers", type=int, default=max(1, min(os.cpu_count() or 1, 8)))
    synth.add_argument("--test-fraction", type=float, default=0.25, help="share of identities in the test split")
    synth.add_argument("--problems", type=int, default=0, metavar="N",
                       help="also write N labelled problem photos to OUT/problems")
    synth.set_defaults(func=cmd_synth)

    dataset = sub.add_parser("dataset", help="dataset tools")
    dataset_sub = dataset.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    check = dataset_sub.add_parser("check", help="read every pair and report broken files")
    check.add_argument("root")
    check.add_argument("--splits", nargs="+", default=["train", "test"])
    check.set_defaults(func=cmd_dataset_check)

    demo = sub.add_parser("demo", help="the main job on the embedded defaults (what the README's quick start runs)")
    demo.add_argument("--out", default="outputs/demo")
    demo.add_argument("--count", type=int, default=8)
    demo.add_argument("--size", type=_size, default=(512, 384))
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--workers", type=int, default=max(1, min(os.cpu_count() or 1, 8)))
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s" if args.verbose else "%(message)s")
    from fitroom.data.layout import DatasetError
    from fitroom.imaging import ImageError

    try:
        return args.func(args)
    except (ImageError, DatasetError, ValueError, OSError) as error:
        logger.error("error: %s", error)
        return 2
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
