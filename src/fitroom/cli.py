"""The ``fitroom`` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import platform
import sys
from pathlib import Path

from fitroom.errors import ConfigurationError, InputError
from fitroom.labels import GarmentCategory, View

logger = logging.getLogger("fitroom")

#: every declared view, for --view
VIEW_NAMES = [view.value for view in View]


def _size(text: str) -> tuple[int, int]:
    """Parse ``HxW`` (height x width), e.g. ``1024x768``."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HEIGHTxWIDTH such as 1024x768, got {text!r}") from None
    return height, width


def _views(text: str):
    from fitroom.labels import RENDERED_VIEWS, View

    names = ", ".join(v.value for v in RENDERED_VIEWS)
    try:
        views = tuple(View(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"views are among {names}, comma-separated; got {text!r}") from None
    if not set(views) <= set(RENDERED_VIEWS):
        raise argparse.ArgumentTypeError(f"the renderer draws {names}; got {text!r}")
    return views


def cmd_env(args: argparse.Namespace) -> int:
    """Print versions and optional weights, for bug reports."""
    from fitroom import __version__
    from fitroom.devices import resolve_device
    from fitroom.weights import KNOWN_WEIGHTS, find, weights_dir

    versions = {"fitroom": __version__, "python": f"{platform.python_version()} ({platform.platform()})"}
    for module in ("torch", "torchvision", "numpy", "cv2", "mediapipe", "kornia", "PIL"):
        try:
            versions[module] = importlib.import_module(module).__version__
        except ImportError:
            versions[module] = "not installed"
    import torch

    cuda = f"available: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "not available"
    weights = [{"name": w.name, "present": find(w.name) is not None, "file": w.filename, "used_by": w.used_by}
               for w in KNOWN_WEIGHTS]
    if args.json:
        _print_json({"versions": versions, "cuda": cuda, "device_auto": str(resolve_device("auto")),
                     "threads": torch.get_num_threads(), "weights_dir": str(weights_dir()), "weights": weights})
        return 0
    lines = [f"fitroom {versions.pop('fitroom')}", f"python {versions.pop('python')}"]
    lines += [f"{module:12s} {version}" for module, version in versions.items()]
    lines += [f"cuda         {cuda}", f"device auto  {resolve_device('auto')}",
              f"threads      {torch.get_num_threads()}",
              f"weights dir  {weights_dir()}  (set FITROOM_WEIGHTS to change)"]
    lines += [f"  {w['name']:18s} {'present' if w['present'] else 'missing':8s} {w['file']}  ({w['used_by']})"
              for w in weights]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _print_json(document) -> None:
    """A command's result as JSON on stdout (``--json``)."""
    import json

    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def cmd_synth(args: argparse.Namespace) -> int:
    """Render a synthetic front/back dataset in the VITON-HD (or DressCode) layout."""
    from fitroom.data.synthetic.problems import write_problem_set
    from fitroom.data.synthetic.writer import SynthConfig, synthesize

    categories = args.categories
    config = SynthConfig(out=Path(args.out), count=args.count, size=args.size, views=args.views, seed=args.seed,
                         test_fraction=args.test_fraction, workers=args.workers, categories=categories,
                         shard=_shard(args.shard))
    if config.shard[1] > 1 and (args.layout != "viton-hd" or args.problems):
        raise ConfigurationError("--shard renders the VITON-HD layout's identities only: convert the finished "
                                 "dataset with `fitroom dataset convert`, and write --problems in one run")
    if args.layout == "aihub":
        from fitroom.data.synthetic.aihub import write_aihub

        if categories != (GarmentCategory.UPPER,):
            raise ConfigurationError("fitroom synth --layout aihub writes tops (main_top items) only; leave out "
                                     "--categories")
        height, width = args.size
        broken = write_aihub(args.out, args.count, size=(height, width), seed=args.seed,
                             test_fraction=args.test_fraction, damaged=args.damaged, progress=not args.quiet)
        for problem, names in broken.items():
            logger.info("damaged on purpose (%s): %s", problem, ", ".join(names))
        return 0
    if args.layout == "dresscode":  # rendered in the VITON-HD layout in a scratch folder, then written in DressCode's
        import tempfile
        from dataclasses import replace

        from fitroom.data.dresscode import convert_viton_to_dresscode

        with tempfile.TemporaryDirectory() as staging:
            synthesize(replace(config, out=Path(staging) / "viton"), progress=not args.quiet)
            convert_viton_to_dresscode(Path(staging) / "viton", args.out, progress=not args.quiet)
    else:
        synthesize(config, progress=not args.quiet)
    if args.problems:
        labels = write_problem_set(config.out / "problems", args.problems, size=args.size, seed=args.seed,
                                   progress=not args.quiet)
        logger.info("problem photos: %s", labels)
    return 0


def cmd_dataset_check(args: argparse.Namespace) -> int:
    """Read every pair of a dataset (VITON-HD or DressCode layout) and list broken files."""
    from fitroom.data.dresscode import CATEGORY_FOLDERS, DressCodeLayout
    from fitroom.data.layout import DatasetError, VitonLayout

    root = Path(args.root)
    if not root.is_dir():
        raise DatasetError(root, "no such folder")
    dresscode = any((root / folder).is_dir() for folder in CATEGORY_FOLDERS.values())
    splits = args.splits or ([s for s in ("train", "test") if (root / s).is_dir()] if not dresscode
                             else ["train", "test"])
    if not splits:
        raise DatasetError(root, "neither a 'train' nor a 'test' folder (VITON-HD layout) nor upper_body, lower_body "
                                 "or dresses (DressCode layout): is this a dataset?")
    problems = 0
    document = {}
    checks = ([(split, kind) for split in splits for kind in (("paired", "unpaired") if split == "test"
                                                              else ("paired",))] if dresscode
              else [(split, None) for split in splits])
    for split, kind in checks:
        label = f"{split} ({kind})" if kind else split
        try:
            layout = DressCodeLayout(root, split, kind) if dresscode else VitonLayout(root, split)
            found = layout.check()
            pairs = (len(layout.pairs()) if dresscode and not found else
                     sum(1 for _ in layout.pairs()) if not dresscode and layout.pairs_file.is_file() else 0)
        except DatasetError as error:
            logger.error("%s", error)
            problems += 1
            document[label] = {"pairs": 0, "problems": [str(error)]}
            continue
        for error in found:
            logger.error("%s", error)
        logger.info("%s: %d pairs, %d problems", label, pairs, len(found))
        problems += len(found)
        document[label] = {"pairs": pairs, "problems": [str(e) for e in found]}
    if args.json:
        _print_json(document)
    return 2 if problems else 0


def _shard(text: str) -> tuple[int, int]:
    """``--shard I/N`` as ``(I, N)``."""
    index, _, count = text.partition("/")
    try:
        return int(index), int(count or 1)
    except ValueError:
        raise InputError(f"--shard {text}: give I/N, e.g. 0/4") from None


def cmd_import_aihub(args: argparse.Namespace) -> int:
    """Import AI Hub's fashion set into the VITON-HD layout, with a per-record report."""
    from fitroom.data.aihub import AihubConfig, import_aihub

    rows = import_aihub(AihubConfig(root=Path(args.root), out=Path(args.out), category=args.category,
                                    size=args.size, shard=_shard(args.shard)), progress=not args.quiet)
    skipped = sum(r["status"] == "skipped" for r in rows)
    if args.json:
        _print_json({"imported": sum(r["status"] == "imported" for r in rows),
                     "done": sum(r["status"] == "done" for r in rows), "skipped": skipped,
                     "skipped_records": [{"record": r["record"], "reason": r["reason"]} for r in rows
                                         if r["status"] == "skipped"]})
    return 0


def cmd_dataset_convert(args: argparse.Namespace) -> int:
    """Write a VITON-HD layout dataset in the DressCode layout."""
    from fitroom.data.dresscode import convert_viton_to_dresscode

    ids = convert_viton_to_dresscode(args.root, args.out, progress=not args.quiet)
    logger.info("%d samples in %s", len(ids), Path(args.out).resolve())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the embedded defaults: try-ons on the bundled photos, a rendered sample set, sheets."""
    from fitroom import imaging
    from fitroom.data.synthetic.writer import SynthConfig, synthesize
    from fitroom.demo import contact_sheet, tryon_sheet

    out = Path(args.out)
    sheet = tryon_sheet(out / "tryon", engine_name=args.engine)
    imaging.save_image(out / "tryon_sheet.png", sheet)
    logger.info("try-ons of the bundled photos (%s engine): %s", args.engine, (out / "tryon").resolve())
    config = SynthConfig(out=out / "dataset", count=args.count, size=args.size, seed=args.seed,
                         workers=args.workers, test_fraction=0.25)
    synthesize(config, progress=not args.quiet)
    imaging.save_image(out / "contact_sheet.png", contact_sheet(config.out, rows=args.count))
    logger.info("rendered %d people (front and back) into %s", args.count, config.out)
    logger.info("results: %s (try-ons) and %s (rendered samples)", (out / "tryon_sheet.png").resolve(),
                (out / "contact_sheet.png").resolve())
    return 0


def _log_report(name: str, report, level: int = logging.WARNING) -> None:
    for result in report.results:
        if result.status.value in ("warn", "fail"):
            logger.log(level, "%s: %s (%s): %s %s", name, result.status.value, result.name, result.message,
                       result.fix)


def cmd_tryon(args: argparse.Namespace) -> int:
    """Dress the person of one photo in the garment of another."""
    from fitroom import fitting, imaging
    from fitroom.engines import create_engine
    from fitroom.labels import CIHP_PALETTE
    from fitroom.preprocess.pipeline import Preprocessor
    from fitroom.viz import draw_keypoints

    if bool(args.garment) == bool(args.garments):
        raise ConfigurationError("give one of --garment (a product photo) or --garments (a folder of them)")
    if args.garments and (args.views or args.save_intermediates):
        raise ConfigurationError("--garments (a catalogue) goes without --views and --save-intermediates")
    person = imaging.load_image(args.person)
    garment = imaging.load_image(args.garment) if args.garment else None
    views = _views(args.views) if args.views else []
    options = _engine_options(args)
    if views:  # the sampling options go to the pose-transfer model too, and to the engine where it takes them
        import inspect

        from fitroom.engines import ENGINES

        accepted = inspect.signature(ENGINES.get(args.engine)).parameters
        options = {name: value for name, value in options.items() if name in accepted}
    engine = create_engine(args.engine, checkpoint=args.checkpoint, device=args.device, progress=not args.quiet,
                           **options)
    pose_model = None
    if views:
        from fitroom.devices import resolve_device
        from fitroom.engines.pose_transfer import PoseTransfer

        pose_model = PoseTransfer(args.pose_checkpoint, device=resolve_device(args.device), progress=not args.quiet,
                                  **_pose_options(args))
    elif args.garment_back or args.pose_checkpoint:
        raise ConfigurationError("--garment-back and --pose-checkpoint go with --views (e.g. --views front,back)")
    dense_options = {"directory": args.dense_dir} if args.dense == "file" else {}
    name = Path(args.person).name

    def report(checked: fitting.Checked, category) -> None:  # after the checks, before any refusal
        logger.info("garment: %s (%s)", category.value, "given" if args.category else
                    "guessed from its shape; --category upper|lower|dress to say otherwise")
        seen = checked.report.view
        if not args.view and seen is not None:
            logger.info("view: %s (seen: %s, because %s; --view front|back to say otherwise)", checked.view.value,
                        seen.seen, seen.reason)
        _log_report(name, checked.report, logging.ERROR if checked.failed and not args.force else logging.WARNING)

    if args.garments:
        with Preprocessor(parser=args.parser, dense=args.dense, dense_options=dense_options,
                          allow_several_people=args.force) as preprocess:
            return _tryon_catalogue(args, engine, preprocess, person, report)
    with Preprocessor(parser=args.parser, dense=args.dense, dense_options=dense_options,
                      allow_several_people=args.force) as preprocess:
        try:
            prepared = fitting.check_and_prepare(preprocess, person, garment, category=args.category,
                                                 view=args.view, force=args.force, name=name,
                                                 garment_name=Path(args.garment).name, on_checked=report,
                                                 engine=engine)
        except fitting.PhotoRefusedError:
            logger.error("the photo was refused; fix the problems above or pass --force to try anyway")
            return 2
        inputs, view, category = prepared.inputs, prepared.view, prepared.category
        if views:
            return _tryon_views(args, engine, pose_model, preprocess, prepared, views, garment)
    result = fitting.try_on(engine, inputs)
    out = Path(args.out)
    imaging.save_image(out, result.image)
    logger.info("try-on done (%s engine, %s view)", args.engine, view.value)
    if args.json:
        _print_json({"result": str(out.resolve()), "engine": args.engine, "view": view.value,
                     "category": category.value, "category_given": prepared.category_given,
                     "forced": prepared.checked.failed, "guidance": prepared.report.to_dict(),
                     "seconds": result.timings})
    else:
        print(out.resolve(), flush=True)  # the result, on stdout (also under -q)
    if args.save_intermediates:
        folder = out.with_name(out.stem + "_intermediates")
        pictures = {
            "pose.png": draw_keypoints(person.shape[:2], inputs.keypoints, person),
            "parse.png": imaging.colorize_labels(inputs.parse, CIHP_PALETTE),
            "dense.png": inputs.dense, "agnostic.png": inputs.agnostic,
            "garment_mask.png": inputs.garment_mask,
        }
        if result.warped_garment is not None:
            pictures["warped_garment.png"] = result.warped_garment
        if result.parse is not None:
            pictures["result_parse.png"] = imaging.colorize_labels(result.parse, CIHP_PALETTE)
        for file_name, picture in pictures.items():
            imaging.save_image(folder / file_name, picture)
        logger.info("intermediates: %s", folder.resolve())
    return 0


def _tryon_catalogue(args: argparse.Namespace, engine, preprocess, person, report) -> int:
    """``tryon --garments DIR``: every product photo of the folder on the person, OUT/<garment>.png each."""
    import time

    from fitroom import fitting, imaging
    from fitroom.data.prepare import output_names

    folder, out = Path(args.garments), Path(args.out)
    if not folder.is_dir():
        raise InputError(f"--garments {folder}: not a folder of product photos")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not paths:
        raise InputError(f"--garments {folder} holds no files")
    names = {path: Path(name).with_suffix(".png").name for path, name in output_names(paths).items()}
    device = getattr(engine, "device", None)
    batch = 8 if device is not None and getattr(device, "type", "cpu") != "cpu" else 1
    out.mkdir(parents=True, exist_ok=True)
    rows, start = [], time.perf_counter()
    items = fitting.dress_catalogue(
        engine, preprocess, person, [(path.name, path) for path in paths], category=args.category,
        view=args.view, force=args.force, name=Path(args.person).name, batch_size=args.batch_size or batch,
        on_checked=report, progress=not args.quiet)
    for path, item in zip(paths, items):  # a garment that fails is a warning (exit 1 under --strict)
        row = {"garment": path.name, "category": item.category.value if item.category else None}
        if item.result is not None:
            target = out / names[path]
            imaging.save_image(target, item.result.image)
            row["result"] = str(target.resolve())
        else:
            row["error"] = item.error
            logger.warning("%s: no try-on: %s", path.name, item.error)
        rows.append(row)
    seconds = time.perf_counter() - start
    done = sum("result" in row for row in rows)
    logger.info("catalogue done: %d of %d garments in %.1f s (%.2f images/s, %s engine)", done, len(rows), seconds,
                done / seconds if seconds else 0.0, args.engine)
    if args.json:
        _print_json({"out": str(out.resolve()), "engine": args.engine, "garments": rows, "seconds": seconds})
    else:
        for row in rows:
            if "result" in row:
                print(row["result"], flush=True)
    if not done:
        logger.error("no garment could be tried on (the reasons are above)")
        return 2
    return 0


def _views(text: str) -> list:
    """``front,back`` -> views, in order, each once."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in VIEW_NAMES]
    if unknown or not names:
        raise InputError(f"--views takes views separated by commas from {', '.join(VIEW_NAMES)}, got {text!r}")
    return list(dict.fromkeys(View(name) for name in names))


def _pose_options(args: argparse.Namespace) -> dict:
    """The sampling options given on the command line, for the pose-transfer model of ``tryon --views`` (``--size``
    there is the try-on engine's, and so is --compile)."""
    return {name: value for name, value in _engine_options(args).items() if name not in ("size", "compile")}


def _tryon_views(args: argparse.Namespace, engine, pose_model, preprocess, prepared, views: list,
                 garment) -> int:
    """``fitroom tryon --views``: one picture per view, ``OUT_<view>.<suffix>``."""
    from fitroom import fitting, imaging

    garments = {prepared.view.surface: garment}
    if args.garment_back:
        garments[View.BACK] = imaging.load_image(args.garment_back)
    results = fitting.dress_views(engine, pose_model, preprocess, prepared, views, garments)
    out = Path(args.out)
    written = {}
    for result in results:
        path = out.with_name(f"{out.stem}_{result.view.value}{out.suffix or '.png'}")
        imaging.save_image(path, result.image)
        written[result.view.value] = {"result": str(path.resolve()), "made_by": result.how,
                                      "seconds": result.timings}
        logger.info("%s view: %s (%s)", result.view.value, path, result.how)
        if not args.json:
            print(path.resolve(), flush=True)
    if args.json:
        _print_json({"engine": args.engine, "view": prepared.view.value, "category": prepared.category.value,
                     "guidance": prepared.report.to_dict(), "views": written})
    return 0


def cmd_pose_transfer(args: argparse.Namespace) -> int:
    """The person of a photo seen from another view, or in the pose of another photo."""
    import numpy as np

    from fitroom import fitting, imaging
    from fitroom.devices import resolve_device
    from fitroom.engines.pose_transfer import PoseTransfer
    from fitroom.preprocess.pipeline import Preprocessor

    person = imaging.load_image(args.person)
    target = args.target if args.target in VIEW_NAMES else imaging.load_image(args.target)
    model = PoseTransfer(args.checkpoint, device=resolve_device(args.device), progress=not args.quiet,
                         **_engine_options(args))
    dense_options = {"directory": args.dense_dir} if args.dense == "file" else {}
    with Preprocessor(dense=args.dense, dense_options=dense_options, allow_several_people=args.force) as preprocess:
        analysis = preprocess.analyse_person(person, view=args.view, name=Path(args.person).name)
        dense = fitting.target_pose(preprocess, analysis, person.shape[:2], target, name=Path(args.target).name)
    result = model(person, analysis.mask, dense)
    out = Path(args.out)
    imaging.save_image(out, result.image)
    what = f"the {args.target} view" if args.target in VIEW_NAMES else f"the pose of {args.target}"
    logger.info("pose transfer done: %s, from the %s view", what, analysis.view.value)
    if args.save_intermediates:
        folder = out.with_name(out.stem + "_intermediates")
        imaging.save_image(folder / "target_dense.png", dense)
        imaging.save_image(folder / "regenerated.png", result.mask.astype(np.uint8) * 255)
        logger.info("intermediates: %s", folder.resolve())
    if args.json:
        _print_json({"result": str(out.resolve()), "from_view": analysis.view.value, "target": args.target,
                     "seconds": result.timings})
    else:
        print(out.resolve(), flush=True)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Time an engine on this machine (see :mod:`fitroom.bench`)."""
    from fitroom.bench import bench

    result = bench(args.engine, args.size, args.precision, args.runs, args.threads, args.checkpoint, args.networks,
                   args.runtime, args.compile)
    if args.json:
        _print_json(result)
        return 0
    about = result["machine"]
    lines = [
        f"machine: {about['capability']} ({', '.join(about['features']) or 'no AVX2'}), native bf16 "
        f"{'yes' if about['native_bf16'] else 'no'}, {about['threads']} threads of {about['cores']} cores",
        f"measured rates: matmul {result['matmul_gflops']:.0f} GFLOP/s, 3x3 convolution "
        f"{result['conv3x3_gflops']:.0f} GFLOP/s (float32)",
        f"{result['engine']} at {result['size'][0]}x{result['size'][1]}, {result['precision']} on "
        f"{result['runtime']}{' compiled' if result['compile'] else ''}, {result['weights']} weights: "
        f"{result['seconds']:.3f} s per image (median of {args.runs}), "
        + ", ".join(f"{k} {v:.3f}" for k, v in result["seconds_by_step"].items()),
        f"first picture (compilation, export, auto's check included): {result['first_seconds']:.2f} s",
    ]
    if result["gflop"]:
        lines.append(f"{result['gflop']:.1f} GFLOP per image, {result['gflops_per_s']:.0f} GFLOP/s")
    if result["precision"] != "fp32" or result["runtime"] != "torch" or result["compile"]:
        lines.append(f"against float32 on torch: max |difference| {result['max_abs_diff_vs_fp32']:.4f}, SSIM "
                     f"{result['ssim_vs_fp32']:.4f}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Photo guidance: will these photos give good try-ons? Exit 2 when a photo fails, 1 when one only warns and
    ``--strict`` is given, else 0."""
    import json

    from fitroom import fitting, imaging
    from fitroom.preprocess.pipeline import Preprocessor
    from fitroom.preprocess.quality import Thresholds

    thresholds = Thresholds.load(args.thresholds) if args.thresholds else Thresholds.load()
    worst = 0
    documents = []
    with Preprocessor(allow_several_people=True) as preprocess:
        for path in args.photos:
            try:
                image = imaging.load_image(path)
            except imaging.ImageError as error:
                worst = 2
                documents.append({"file": path, "status": "fail", "error": str(error).removeprefix(f"{path}: ")})
                if not args.json:
                    sys.stdout.write(f"{path}: FAIL\n  the file cannot be used: "
                                     f"{str(error).removeprefix(f'{path}: ')}\n")
                continue
            report = fitting.check(preprocess, image, args.category, args.view, Path(path).name, thresholds).report
            worst = max(worst, report.exit_code)
            documents.append({"file": path, **report.to_dict()})
            if not args.json:
                lines = [f"{path}: {report.status.value.upper()}"]
                for result in report.results:
                    value = "-" if result.value is None else f"{result.value:g}"
                    lines.append(f"  {result.status.value:4s}  {result.name:12s} {value:>9s}   {result.threshold}")
                    if result.message:
                        lines.append(f"        {result.message} {result.fix}")
                for crossing in report.intersections:
                    lines.append(f"  note  {crossing.part_a} crosses {crossing.part_b} at "
                                 f"({crossing.point[0]:.0f}, {crossing.point[1]:.0f})")
                sys.stdout.write("\n".join(lines) + "\n")
    if args.json:
        sys.stdout.write(json.dumps(documents if len(documents) > 1 else documents[0], indent=2) + "\n")
    if worst == 1 and not args.strict:
        return 0
    return worst


def cmd_prepare(args: argparse.Namespace) -> int:
    """Raw photos -> the VITON-HD layout."""
    from fitroom.data.prepare import PrepareConfig, merge, prepare

    if args.merge and args.shard != "0/1":
        raise InputError("--merge joins the shards once they are all done: give it without --shard")
    config = PrepareConfig(persons=Path(args.persons), garments=Path(args.garments), out=Path(args.out),
                           split=args.split, view=args.view, category=args.category,
                           pairs=Path(args.pairs) if args.pairs else None, workers=args.workers, parser=args.parser,
                           dense=args.dense, dense_dir=Path(args.dense_dir) if args.dense_dir else None,
                           shard=_shard(args.shard))
    rows = merge(config) if args.merge else prepare(config, progress=not args.quiet)
    if config.shard[1] > 1:
        return 0
    if args.json:
        _print_json({"report": str(Path(args.out) / "prepare_report.csv"), "files": rows})
    if not any(r["status"] != "failed" for r in rows if r["kind"] == "person"):
        logger.error("no person photo could be prepared (%s)", "the reasons are above and in "
                     f"{Path(args.out) / 'prepare_report.csv'}" if rows else f"{args.persons} holds no photos")
        return 2
    return 0  # photos that failed are warnings (exit 1 under --strict)


def _engine_options(args: argparse.Namespace) -> dict:
    """The engine options given on the command line (the diffusion engine's steps, guidance, seed and scheduler;
    the working size of the learned engines)."""
    options = {name: getattr(args, name, None)
               for name in ("steps", "guidance", "seed", "scheduler", "size", "precision", "compile")}
    return {name: value for name, value in options.items() if value is not None}


def _speed_options(parser: argparse.ArgumentParser) -> None:
    """--precision and --compile, for the learned engines that take them."""
    parser.add_argument("--precision", choices=["fp32", "bf16", "int8", "auto"],
                        help="learned engines: fp32 (hrviton's default, exact), bf16 (autocast; hrviton: its image "
                             "generator, the condition generator stays fp32), int8 (hrviton: its image generator's "
                             "SPADE-norm convolutions quantized in onnxruntime, calibrated on the first picture) or "
                             "auto (hrviton: the fastest of bf16 where it is native, int8 and onnxruntime on the CPU "
                             "whose first picture keeps SSIM 0.99 against fp32's)")
    parser.add_argument("--compile", action="store_true", default=None,
                        help="hrviton engine: run the image generator (under bf16 both networks) through "
                             "torch.compile with frozen weights (15-110 s of compilation on the first picture, "
                             "then about 30 %% faster on a CPU: for many pictures, not for one)")


def _sampling_options(parser: argparse.ArgumentParser, who: str = "") -> None:
    """The diffusion sampler's options: --steps, --guidance, --seed, --scheduler (``who``: whom they apply to)."""
    parser.add_argument("--steps", type=int, help=f"{who}denoising steps (default 30)")
    parser.add_argument("--guidance", type=float, help=f"{who}guidance scale (default 2.5)")
    parser.add_argument("--seed", type=int, help=f"{who}the seed of every random draw (default 42)")
    parser.add_argument("--scheduler", choices=["ddpm", "ddim", "dpm"],
                        help=f"{who}the sampler (default ddpm, as published)")


def _categories(text: str) -> tuple[GarmentCategory, ...]:
    """``upper,lower`` -> garment categories (argparse type)."""
    names = [c.strip() for c in text.split(",") if c.strip()]
    known = [c.value for c in GarmentCategory]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown) or 'nothing'}: give garment categories among "
                                         f"{', '.join(known)}, separated by commas")
    return tuple(GarmentCategory(n) for n in names)


def _json_option(parser: argparse.ArgumentParser, what: str = "machine-readable output") -> None:
    parser.add_argument("--json", action="store_true", help=what)


def _device_option(parser: argparse.ArgumentParser, default: str | None = "auto", extra: str = "") -> None:
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=default,
                        help=f"where a learned engine runs: auto (default: a CUDA GPU, else Apple MPS, else the CPU), "
                             f"cpu, cuda or mps{extra}")


def _preprocessing_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--view", choices=VIEW_NAMES, default=None,
                        help="which side the photo shows (default: detected from the face and the shoulders)")
    parser.add_argument("--category", choices=["upper", "lower", "dress"], default=None,
                        help="garment category (default: guessed from the garment's shape)")
    parser.add_argument("--parser", default="builtin", help="human parser backend: builtin or schp")
    parser.add_argument("--dense", default="builtin", choices=["builtin", "file"], help="dense body map backend")
    parser.add_argument("--dense-dir", help="folder of DensePose renders for --dense file")


def cmd_export_onnx(args: argparse.Namespace) -> int:
    """Export an hrviton checkpoint at one size to an ONNX file (see :mod:`fitroom.models.hrviton_onnx`)."""
    from fitroom.engines.hrviton import HrvitonEngine
    from fitroom.labels import View
    from fitroom.models.hrviton_onnx import export_onnx

    engine = HrvitonEngine(args.checkpoint, size=args.size)
    if engine.per_view:
        if not args.view:
            raise ConfigurationError(f"{args.checkpoint} holds one model per view "
                                     f"({', '.join(v.value for v in engine.per_view)}): say which with --view")
        if View(args.view) not in engine.per_view:
            raise ConfigurationError(f"{args.checkpoint} has no {args.view} model")
        engine = engine.per_view[View(args.view)]
    path = export_onnx(engine.model, engine.size, args.out)
    if args.json:
        _print_json({"onnx": str(path.resolve()), "size": list(engine.size), "noise": "none"})
    else:
        print(path.resolve(), flush=True)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Published checkpoints -> fitroom model folders, by the family's converter."""
    from fitroom.converters import CONVERTERS

    converter = CONVERTERS.get(args.convert_command)
    options = {o.keyword: getattr(args, o.keyword) for o in converter.options}
    written = converter(out=args.out, **options)
    for part, folder in written.items():
        logger.info("%s: %s", part.replace("_", " "), Path(folder).resolve())
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train a stage of a model from a YAML config with key=value overrides."""
    from fitroom.training.config import load_config
    from fitroom.training.trainer import Trainer

    config = load_config(args.config, [f"stage={args.stage}", *args.set])
    trainer = Trainer(config, progress=not args.quiet)
    logs = trainer.run()
    logger.info("trained to step %d (%d skipped); last losses: %s; run folder: %s", trainer.step, trainer.skipped,
                ", ".join(f"{k} {v:.4f}" for k, v in logs.items()), Path(config.out).resolve())
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    """List, download or import the published weight files fitroom can use."""
    from fitroom import weights

    if args.action == "list" and args.json:
        _print_json({"weights_dir": str(weights.weights_dir()),
                     "weights": [{"name": k.name, "present": weights.find(k.name) is not None, "file": k.filename,
                                  "used_by": k.used_by, "source": k.source, "direct_download": k.direct}
                                 for k in weights.KNOWN_WEIGHTS]})
        return 0
    if args.action == "list":
        lines = [f"weights dir {weights.weights_dir()} (set FITROOM_WEIGHTS to change)"]
        for known in weights.KNOWN_WEIGHTS:
            state = "present" if weights.find(known.name) else "missing"
            lines.append(f"  {known.name:18s} {state:8s} {known.filename}  ({known.used_by}; {known.source})")
        sys.stdout.write("\n".join(lines) + "\n")
        return 0
    if not args.name:
        raise InputError(f"fitroom weights {args.action} NAME: name the weights, one of "
                         f"{', '.join(w.name for w in weights.KNOWN_WEIGHTS)}")
    if args.action == "fetch":
        path = weights.fetch(args.name)
        known = weights.entry(args.name)
        if known.convert:  # the published files become a model folder, as `fitroom convert` makes it
            from fitroom.converters import CONVERTERS

            base = path.parent / known.extra[0].split("/")[0]
            path = weights.weights_dir() / known.name
            CONVERTERS.get(known.convert)(out=path, checkpoint=weights.hub_folder(known.name) / known.filename,
                                          base=base)
            logger.info("converted into %s: use it as --checkpoint", path)
    else:
        if not args.file:
            raise InputError("fitroom weights import NAME FILE: the file to import is missing")
        path = weights.import_file(args.name, args.file)
    logger.info("%s ready: %s", args.name, path)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate an engine on a dataset split: results, protocol, per-sample CSV and a sample grid."""
    from fitroom.evaluation import EvalConfig, evaluate, markdown

    try:
        config = EvalConfig(engine=args.engine, data=args.data, out=args.out, pairs=args.pairs,
                            checkpoint=args.checkpoint or "", split=args.split, limit=args.limit,
                            device=args.device, options=_engine_options(args), shard=_shard(args.shard),
                            merge=args.merge)
    except ValueError as error:
        raise InputError(str(error)) from None
    results = evaluate(config, progress=not args.quiet)
    if "shard" in results:  # one shard's share, kept for the merge
        return 0
    if args.json:
        _print_json(results)
    else:
        sys.stdout.write(markdown({k: v for k, v in results.items() if k != "protocol"}) + "\n")
    logger.info("report: %s", Path(args.out).resolve())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the fitting-room service (API, shopper page, admin page) with uvicorn."""
    import uvicorn

    from fitroom.engines import create_engine
    from fitroom.service.app import create_app
    from fitroom.service.settings import Settings

    settings = Settings.from_env(data_dir=args.data_dir, engine=args.engine, checkpoint=args.checkpoint,
                                 workers=args.workers, check_processes=args.check_processes,
                                 device=args.device, root_path=args.root_path,
                                 access_log=args.access_log or None)
    # the engine (when this process runs try-ons) and the database are opened before the server starts: a missing
    # checkpoint or an unreachable database is one line and exit status 3
    engine = create_engine(settings.engine, checkpoint=settings.checkpoint, device=settings.device, progress=False,
                           **settings.engine_options) if settings.workers else None
    _open_service_storage(settings)
    if not settings.workers:
        logger.info("no try-on workers in this process (--workers 0): start `fitroom worker` processes on the same "
                    "database and image storage")
    logger.info("serving on http://%s:%d (API docs at /docs); data in %s", args.host, args.port,
                Path(settings.data_dir).resolve())
    from fitroom.service.logs import configure

    configure(settings.log_format)  # request ids on every line; JSON lines with FITROOM_LOG_FORMAT=json
    # forwarded addresses are the app's to believe (FITROOM_TRUSTED_PROXIES), not the server's default; in JSON
    # mode uvicorn's own lines go through the same handlers (its logging left unconfigured)
    uvicorn.run(create_app(settings, engine=engine), host=args.host, port=args.port, proxy_headers=False,
                log_level="info" if settings.access_log else "warning", access_log=settings.access_log,
                **({"log_config": None} if settings.log_format == "json" else {}))
    return 0


def _open_service_storage(settings) -> None:
    """Check the data folder, the database (migrated) and the image storage before a server or worker starts."""
    from fitroom.service import storage
    from fitroom.service.objects import open_store

    if Path(settings.data_dir).exists() and not Path(settings.data_dir).is_dir():
        raise InputError(f"{settings.data_dir} is not a folder: --data-dir (FITROOM_DATA_DIR) is where the service "
                         f"keeps its database and images")
    if not settings.database_url or not settings.storage:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    storage.open_database(settings.database)[0].dispose()
    problem = open_store(settings.storage, settings.data_dir).problem()
    if problem:
        raise ConfigurationError(f"{problem} ({settings.storage or Path(settings.data_dir).resolve()})")


def cmd_worker(args: argparse.Namespace) -> int:
    """Run try-on jobs from the service's queue until SIGTERM (the same FITROOM_* settings as ``fitroom serve``)."""
    from fitroom.service.logs import configure
    from fitroom.service.settings import Settings
    from fitroom.service.worker import run_worker

    settings = Settings.from_env(data_dir=args.data_dir, engine=args.engine, checkpoint=args.checkpoint,
                                 device=args.device)
    _open_service_storage(settings)
    configure(settings.log_format)
    run_worker(settings, max_jobs=args.max_jobs, metrics_port=args.metrics_port, metrics_host=args.metrics_host)
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    """Export shared, rated try-ons as a dataset for fine-tuning."""
    from fitroom.service.feedback import export_feedback
    from fitroom.service.settings import Settings

    count = export_feedback(Settings.from_env(data_dir=args.data_dir), args.out, only_good=args.only_good,
                            progress=not args.quiet)
    logger.info("%d samples in %s", count, Path(args.out).resolve())
    return 0


def build_parser() -> argparse.ArgumentParser:
    # -q / -v are accepted before or after the subcommand
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="only errors, no progress bars (results still go to stdout)")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="debug logging, and the traceback of an error")
    common.add_argument("--strict", action="store_true", default=argparse.SUPPRESS,
                        help="exit with status 1 when there were warnings (a photo check, a left-out file)")
    from fitroom import __version__

    parser = argparse.ArgumentParser(prog="fitroom", description="An open-source virtual fitting room.",
                                     parents=[common])
    parser.add_argument("--version", action="version", version=f"fitroom {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_parser = sub.add_parser

    def subcommand(name: str, **kwargs) -> argparse.ArgumentParser:
        return add_parser(name, parents=[common], **kwargs)

    sub.add_parser = subcommand  # type: ignore[method-assign]

    env = sub.add_parser("env", help="print versions and which optional weights are present")
    _json_option(env)
    env.set_defaults(func=cmd_env)

    synth = sub.add_parser("synth", help="render a synthetic front/back try-on dataset (VITON-HD layout)")
    synth.add_argument("--out", required=True, help="dataset folder to write")
    synth.add_argument("--count", type=int, default=16, help="number of identities (each gives one sample per view)")
    synth.add_argument("--size", type=_size, default=(1024, 768), help="HEIGHTxWIDTH, 4:3 (default 1024x768)")
    synth.add_argument("--views", type=_views, default=_views("front,back"), help="front, back or front,back")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--workers", type=int, default=max(1, min(os.cpu_count() or 1, 8)))
    synth.add_argument("--test-fraction", type=float, default=0.25, help="share of identities in the test split")
    synth.add_argument("--categories", type=_categories, default=(GarmentCategory.UPPER,),
                       help="garment categories tried on, identities taking turns: upper, lower, dress or a list "
                            "such as upper,lower,dress (lower: trousers, shorts and skirts)")
    synth.add_argument("--shard", default="0/1", help="I/N: render the identities i with i %% N == I (one "
                                                       "machine's share; every shard writes the same lists)")
    synth.add_argument("--layout", choices=["viton-hd", "dresscode", "aihub"], default="viton-hd",
                       help="the dataset layout to write (dresscode: upper_body/, lower_body/ and dresses/ with "
                            "NNNNNN_0.jpg persons and NNNNNN_1.jpg garments; aihub: AI Hub's fashion set with tops "
                            "(main_top), 9:16 model photos with polygon parses, 17 keypoints, _F/_B product photos "
                            "and pairing files, --size being the 3:4 render padded to 9:16)")
    synth.add_argument("--damaged", action="store_true",
                       help="aihub: break a few records on purpose, each in one way an importer must name")
    synth.add_argument("--problems", type=int, default=0, metavar="N",
                       help="also write N labelled problem photos to OUT/problems")
    synth.set_defaults(func=cmd_synth)

    dataset = sub.add_parser("dataset", help="dataset tools")
    dataset_sub = dataset.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    dataset_check = dataset_sub.add_parser("check", help="read every pair and report broken files")
    dataset_check.add_argument("root")
    dataset_check.add_argument("--splits", nargs="+", choices=["train", "test"], default=None,
                               help="the splits to check (default: those the dataset has)")
    _json_option(dataset_check)
    dataset_check.set_defaults(func=cmd_dataset_check)
    dataset_convert = dataset_sub.add_parser("convert", help="write a VITON-HD layout dataset in the DressCode "
                                                             "layout (upper_body/, NNNNNN_0.jpg persons, NNNNNN_1.jpg "
                                                             "garments)")
    dataset_convert.add_argument("root", help="the VITON-HD layout dataset")
    dataset_convert.add_argument("--to", choices=["dresscode"], required=True)
    dataset_convert.add_argument("--out", required=True, help="the folder to write")
    dataset_convert.set_defaults(func=cmd_dataset_convert)

    importer = sub.add_parser("import", help="import a published dataset into the VITON-HD layout")
    importer_sub = importer.add_subparsers(dest="import_source", required=True, metavar="SOURCE")
    aihub = importer_sub.add_parser("aihub", help="AI Hub's fashion products and wearing images (front/back)")
    aihub.add_argument("--root", required=True, help="the downloaded set (label and image folders, pairing files)")
    aihub.add_argument("--out", required=True, help="the dataset folder to write (VITON-HD layout)")
    aihub.add_argument("--category", choices=["upper", "lower"],
                       default="upper", help="which garment of each record: upper (main_top) or lower (bottom)")
    aihub.add_argument("--size", type=_size, default=(1024, 768), help="HEIGHTxWIDTH of the output (3:4)")
    aihub.add_argument("--shard", default="0/1", help="I/N: the records whose position is I modulo N")
    _json_option(aihub, "counts and the skipped records as JSON")
    aihub.set_defaults(func=cmd_import_aihub)

    tryon = sub.add_parser("tryon", help="dress the person in a photo in a garment")
    tryon.add_argument("--person", required=True, help="photo of the person")
    tryon.add_argument("--garment", help="product photo of the garment")
    tryon.add_argument("--garments", help="a folder of product photos instead of --garment: a catalogue on one "
                       "person (the photo checked once per garment category, each garment segmented once); --out "
                       "is then a folder, one OUT/<garment>.png each")
    tryon.add_argument("--batch-size", type=int,
                       help="with --garments: garments per network batch (default 1 on the CPU, where a batch of 8 "
                            "was measured slower than one by one, and 8 on a GPU)")
    tryon.add_argument("--out", required=True, help="where to write the result (PNG or JPEG by suffix)")
    tryon.add_argument("--engine", default="warp",
                       help="try-on engine: warp (default, needs no weights); hrviton, cpvton or diffusion (need "
                            "--checkpoint)")
    tryon.add_argument("--checkpoint", help="model folder for a learned engine (e.g. from `fitroom convert hrviton`)")
    _device_option(tryon)
    _sampling_options(tryon, "diffusion engine and pose transfer (--views): ")
    _speed_options(tryon)
    tryon.add_argument("--size", type=_size, help="hrviton and diffusion engines: the working HEIGHTxWIDTH "
                       "(default 1024x768)")
    tryon.add_argument("--views", help="several views in one call, e.g. front,back: the photo's own view is the "
                       "try-on, the others the dressed person turned by a pose-transfer model (--pose-checkpoint); "
                       "writes OUT_<view>.<suffix> per view")
    tryon.add_argument("--garment-back", help="with --views: the garment's back product photo, tried on the turned "
                       "person so that the garment's own back shows")
    tryon.add_argument("--pose-checkpoint", help="with --views: a pose-transfer model folder (`fitroom train "
                       "pose_transfer`, or `fitroom convert leffa` of pose_transfer.pth)")
    tryon.add_argument("--save-intermediates", action="store_true",
                       help="also write pose, parse, dense map, agnostic person and warped garment")
    tryon.add_argument("--force", action="store_true", help="try on even when a photo check fails")
    _preprocessing_options(tryon)
    _json_option(tryon, "the result's path, the view, the category, the guidance and the timings as JSON")
    tryon.set_defaults(func=cmd_tryon)

    pose = sub.add_parser("pose-transfer", help="the person of a photo seen from another view, or in the pose of "
                                                "another photo (needs a pose-transfer model)")
    pose.add_argument("--person", required=True, help="photo of the person")
    pose.add_argument("--target", required=True, help=f"a view ({', '.join(VIEW_NAMES)}: the person's own "
                      f"skeleton turned to it) or a photo of someone in the target pose")
    pose.add_argument("--out", required=True, help="where to write the result (PNG or JPEG by suffix)")
    pose.add_argument("--checkpoint", help="a pose-transfer model folder (`fitroom train pose_transfer`, or "
                      "`fitroom convert leffa` of the published pose_transfer.pth)")
    pose.add_argument("--view", choices=VIEW_NAMES, default=None,
                      help="which side the photo shows (default: detected)")
    _device_option(pose)
    _sampling_options(pose)
    pose.add_argument("--size", type=_size, help="the working HEIGHTxWIDTH (default: the model's training size)")
    pose.add_argument("--force", action="store_true", help="use the most prominent person when there are several")
    pose.add_argument("--dense", default="builtin", choices=["builtin", "file"],
                      help="dense body map backend for a target photo (file: renders made by DensePose elsewhere, "
                           "e.g. the IUV maps the published pose model was trained on)")
    pose.add_argument("--dense-dir", help="folder of DensePose renders for --dense file, by the photos' names")
    pose.add_argument("--save-intermediates", action="store_true",
                      help="also write the target's dense map and the regenerated area")
    _json_option(pose, "the result's path, the views and the timings as JSON")
    pose.set_defaults(func=cmd_pose_transfer)

    timing = sub.add_parser("bench", help="time an engine on this machine (seconds per image, GFLOP/s, the "
                                          "machine's measured rates, reduced precision against float32)")
    timing.add_argument("engine", choices=["hrviton", "warp"])
    timing.add_argument("--size", type=_size, default=(512, 384), help="HEIGHTxWIDTH (default 512x384)")
    timing.add_argument("--precision", choices=["auto", "fp32", "bf16", "int8"], default="fp32",
                        help="fp32 (default), bf16 (the image generator under autocast), int8 (the image "
                             "generator's SPADE-norm convolutions quantized in onnxruntime, calibrated on another "
                             "rendered picture than the one timed) or auto (the engine's choice: bf16 where native, "
                             "else int8, else onnxruntime, if its first picture keeps SSIM 0.99 against fp32's)")
    timing.add_argument("--runtime", choices=["torch", "onnxruntime"],
                        help="hrviton: run the networks in torch (default; with --precision auto, the engine's "
                             "choice) or as an ONNX graph in onnxruntime")
    timing.add_argument("--compile", action="store_true",
                        help="hrviton: both networks through torch.compile, weights frozen")
    timing.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    timing.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up (default 3)")
    timing.add_argument("--checkpoint", help="hrviton: time these weights instead of random full-size networks")
    timing.add_argument("--networks", choices=["full", "test"], default="full",
                        help="random networks at the published width (full) or the tiny test ones")
    _json_option(timing, "one JSON object (seconds, precision, max_abs_diff_vs_fp32, ssim_vs_fp32, ...)")
    timing.set_defaults(func=cmd_bench)

    check = sub.add_parser("check", help="photo guidance: will these photos give good try-ons? (exit 2 on a "
                                         "failed photo, 1 on warnings with --strict)")
    check.add_argument("photos", nargs="+", help="person photos")
    _json_option(check)
    check.add_argument("--category", choices=["upper", "lower", "dress"], default="upper",
                       help="the garment category to check for (full length depends on it)")
    check.add_argument("--view", choices=VIEW_NAMES, default=None,
                       help="the view the photo is for (default: detected; given, a contradiction warns)")
    check.add_argument("--thresholds", help="a thresholds JSON file instead of the calibrated defaults")
    check.set_defaults(func=cmd_check)

    from fitroom.converters import CONVERTERS

    onnx = sub.add_parser("export-onnx", help="export an hrviton checkpoint at one size to an ONNX file (run it "
                                              "with onnxruntime; SPADE's noise left out)")
    onnx.add_argument("--checkpoint", required=True, help="an hrviton checkpoint folder")
    onnx.add_argument("--size", type=_size, help="HEIGHTxWIDTH, multiples of 64 (default: the engine's working size)")
    onnx.add_argument("--view", choices=VIEW_NAMES, help="which model of a per-view checkpoint")
    onnx.add_argument("--out", required=True, help="the .onnx file to write")
    _json_option(onnx, "the file, the size and the noise as JSON")
    onnx.set_defaults(func=cmd_export_onnx)

    convert = sub.add_parser("convert", help="convert published checkpoints into fitroom model folders")
    convert_sub = convert.add_subparsers(dest="convert_command", required=True, metavar="FAMILY")
    for family, converter in CONVERTERS.items():  # one subcommand per registered converter
        command = convert_sub.add_parser(family, help=converter.help)
        for option in converter.options:
            command.add_argument(option.flag, help=option.help, required=option.required, choices=option.choices,
                                 default=option.default)
        command.add_argument("--out", required=True, help="folder for the converted model(s)")
        command.set_defaults(func=cmd_convert)

    evaluation = sub.add_parser("eval", help="evaluate an engine on a dataset (SSIM, LPIPS, FID, KID; resumable)")
    evaluation.add_argument("--engine", required=True, help="warp, hrviton, cpvton or diffusion")
    evaluation.add_argument("--checkpoint", help="the engine's checkpoint folder (hrviton, cpvton, diffusion)")
    _device_option(evaluation)
    evaluation.add_argument("--data", required=True, help="a dataset in the VITON-HD or the DressCode layout")
    evaluation.add_argument("--pairs", choices=["paired", "unpaired"], default="paired")
    evaluation.add_argument("--split", choices=["train", "test"], default="test")
    evaluation.add_argument("--limit", type=int, default=0, help="only the first N pairs")
    evaluation.add_argument("--out", required=True, help="report folder")
    evaluation.add_argument("--shard", default="0/1", help="I/N: evaluate the pairs whose position is I modulo N, "
                                                           "keeping their scores and features for --merge")
    evaluation.add_argument("--merge", action="store_true", help="join the finished shards (the same --out) into "
                                                                 "the results, FID and KID from their features")
    _sampling_options(evaluation, "diffusion engine: ")
    _speed_options(evaluation)
    evaluation.add_argument("--size", type=_size, help="hrviton and diffusion engines: the working HEIGHTxWIDTH")
    _json_option(evaluation, "the results and the protocol as JSON instead of the table")
    evaluation.set_defaults(func=cmd_eval)

    serve = sub.add_parser("serve", help="run the fitting-room web service and page")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--engine", default=None, help="try-on engine (default warp; FITROOM_ENGINE)")
    serve.add_argument("--checkpoint", default=None)
    _device_option(serve, default=None, extra="; FITROOM_DEVICE")
    serve.add_argument("--data-dir", default=None, help="database and images (default ./fitroom-data)")
    serve.add_argument("--workers", type=int, default=None,
                       help="try-on workers in this process (FITROOM_WORKERS, default 1); 0: none, `fitroom worker` "
                            "processes run the try-ons")
    serve.add_argument("--check-processes", type=int, default=None,
                       help="photo checks in N processes of their own, side by side (FITROOM_CHECK_PROCESSES; "
                            "default 0: in the server, one at a time); each process holds its own models")
    serve.add_argument("--root-path", default=None,
                       help="the path prefix a reverse proxy serves the service under, e.g. /fitroom "
                            "(FITROOM_ROOT_PATH)")
    serve.add_argument("--access-log", action="store_true",
                       help="log one line per request (FITROOM_ACCESS_LOG)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run the service's try-on jobs in a process of its own (any machine "
                                           "that sees the database and the image storage)")
    worker.add_argument("--engine", default=None, help="try-on engine (default warp; FITROOM_ENGINE)")
    worker.add_argument("--checkpoint", default=None)
    _device_option(worker, default=None, extra="; FITROOM_DEVICE")
    worker.add_argument("--data-dir", default=None,
                        help="the service's data folder (default ./fitroom-data; FITROOM_DATA_DIR): its SQLite "
                             "database and images unless FITROOM_DATABASE_URL / FITROOM_STORAGE say otherwise")
    worker.add_argument("--max-jobs", type=int, default=None, help="stop after this many try-ons")
    worker.add_argument("--metrics-port", type=int, default=None,
                        help="serve this worker's /metrics (Prometheus text) on this port")
    worker.add_argument("--metrics-host", default="127.0.0.1",
                        help="the address for --metrics-port (0.0.0.0: reachable from other machines)")
    worker.set_defaults(func=cmd_worker)

    feedback = sub.add_parser("feedback", help="export shoppers' shared, rated try-ons for fine-tuning")
    feedback.add_argument("action", choices=["export"])
    feedback.add_argument("--out", required=True, help="the dataset folder to write (VITON-HD layout)")
    feedback.add_argument("--data-dir", default=None, help="the service's data folder (default ./fitroom-data)")
    feedback.add_argument("--only-good", action="store_true", help="only try-ons rated good")
    feedback.set_defaults(func=cmd_feedback)

    weights = sub.add_parser("weights", help="list, download (fetch) or import published weight files")
    weights.add_argument("action", choices=["list", "fetch", "import"])
    weights.add_argument("name", nargs="?", default="", help="a name from `fitroom weights list`")
    weights.add_argument("file", nargs="?", help="import: the file obtained elsewhere")
    _json_option(weights, "list: as JSON")
    weights.set_defaults(func=cmd_weights)

    train = sub.add_parser("train", help="train a model stage (accelerate; resumes from its run folder)")
    train.add_argument("stage", help="a training stage; built in: HR-VITON's condition, then generator "
                                      "(condition=RUN), CP-VTON's gmm, then tom (condition=RUN)")
    train.add_argument("--config", help="a YAML experiment file (e.g. configs/condition.yaml)")
    train.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                       help="overrides, e.g. data=data/synth steps=100 loss_weights.vgg=0 (repeatable: every "
                            "--set adds to the others)")
    train.set_defaults(func=cmd_train)

    prepare = sub.add_parser("prepare", help="turn folders of raw photos into a VITON-HD layout dataset")
    prepare.add_argument("--persons", required=True, help="folder of person photos")
    prepare.add_argument("--garments", required=True, help="folder of garment product photos")
    prepare.add_argument("--out", required=True, help="dataset folder to write (resumable)")
    prepare.add_argument("--split", choices=["train", "test"], default="test")
    prepare.add_argument("--pairs", help="file of 'person garment' lines (default: same name, else in turn)")
    prepare.add_argument("--workers", type=int, default=1)
    prepare.add_argument("--shard", default="0/1", help="I/N: prepare the photos whose position is I modulo N (one "
                                                         "machine's share; then --merge)")
    prepare.add_argument("--merge", action="store_true", help="join the finished shards' reports into the "
                                                              "dataset's report, pair list and views")
    _preprocessing_options(prepare)
    _json_option(prepare, "every file's outcome as JSON")
    prepare.set_defaults(func=cmd_prepare)

    demo = sub.add_parser("demo", help="the main job on the embedded defaults (what the README's quick start runs)")
    demo.add_argument("--out", default="outputs/demo")
    demo.add_argument("--engine", default="warp")
    demo.add_argument("--count", type=int, default=8)
    demo.add_argument("--size", type=_size, default=(512, 384))
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--workers", type=int, default=max(1, min(os.cpu_count() or 1, 8)))
    demo.set_defaults(func=cmd_demo)
    return parser


class _WarningCounter(logging.Handler):
    """Counts fitroom's warnings during a command, for ``--strict``."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.WARNING:
            self.count += 1


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the exit status (see :mod:`fitroom.errors`): 0 success (warnings included), 1
    warnings under ``--strict``, 2 bad input or a refused photo, 3 missing weights or configuration, 4 internal
    error. Every failure is one line on stderr; ``-v`` adds the traceback."""
    from fitroom.errors import EXIT_INTERNAL, EXIT_OK, EXIT_WARNINGS, exit_code

    parser = build_parser()
    args = parser.parse_args(argv)
    for flag in ("quiet", "verbose", "strict", "json"):
        setattr(args, flag, getattr(args, flag, False))
    level = logging.DEBUG if args.verbose else logging.ERROR if args.quiet else logging.INFO
    if int(os.environ.get("RANK", "0")) > 0:  # one of several processes (torchrun, accelerate): the first speaks
        level = max(level, logging.ERROR)
    root = logging.getLogger()
    fresh = not root.handlers
    # warnings are always made (--strict counts them); -q filters them at the terminal's handler
    logging.basicConfig(level=min(level, logging.WARNING),
                        format="%(levelname)s %(name)s: %(message)s" if args.verbose else "%(message)s")
    if fresh:
        for handler in root.handlers:
            handler.setLevel(level)
    warnings_seen = _WarningCounter()
    logger.addHandler(warnings_seen)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130
    except Exception as error:
        code = exit_code(error)
        if code == EXIT_INTERNAL:
            logger.error("internal error: %s: %s (this is a bug: run again with -v for the traceback and report it)",
                         type(error).__name__, error, exc_info=args.verbose)
        else:
            logger.error("error: %s", error, exc_info=args.verbose)
        return code
    finally:
        logger.removeHandler(warnings_seen)
    if args.strict and code == EXIT_OK and warnings_seen.count:
        return EXIT_WARNINGS
    return code


if __name__ == "__main__":
    sys.exit(main())
