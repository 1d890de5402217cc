"""The ``clipforensics`` command: a thin map onto the Python API."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import ClipForensicsError
from .faces.align import RECIPES
from .faces.detection import BACKENDS
from .media import Sampler
from .faces.options import FACE_MODES, FaceOptions
from .metrics import AGGREGATES
from .inference.runtime import PRECISIONS

EXIT_OK, EXIT_FAILED_INPUTS, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that answers a misspelt command or option with the closest valid one."""

    def error(self, message: str) -> None:  # type: ignore[override]
        hint = self._closest(message)
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}{hint}\n")

    def _closest(self, message: str) -> str:
        valid = _vocabulary(self)
        wrong = re.findall(r"invalid choice: '([^']*)'", message) + re.findall(r"(?<!\S)(--?[\w-]+)", message)
        for word in wrong:
            match = difflib.get_close_matches(word, valid, n=1, cutoff=0.6)
            if match and match[0] != word:
                return f" (did you mean {match[0]}?)"
        return ""


def _vocabulary(parser: argparse.ArgumentParser) -> list[str]:
    """Every option, command and choice the parser and its subcommands accept."""
    words: list[str] = []
    for action in parser._actions:
        words += action.option_strings
        words += [str(choice) for choice in action.choices or ()]
        if isinstance(action.choices, dict):
            for subparser in action.choices.values():
                words += _vocabulary(subparser)
    return words


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="clipforensics", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    detect = commands.add_parser("detect", help="score images and videos: one row per input")
    detect.add_argument("inputs", nargs="+", help="image and video files, or folders (searched recursively)")
    detect.add_argument("--model", required=True, help="zoo name (see `clipforensics zoo`) or checkpoint path")
    detect.add_argument("--output", help="results file: .jsonl (with per-frame detail; default: stdout) or .csv")
    detect.add_argument("--faces", choices=FACE_MODES, default="auto",
                        help="auto: find and align faces; none: inputs are already aligned face crops")
    _add_face_options(detect)
    detect.add_argument("--aggregate", choices=AGGREGATES, default="mean", help="a video's p_fake from its frames'")
    detect.add_argument("--save-crops", metavar="DIR", help="keep the aligned face crops here")
    detect.add_argument("--annotate", metavar="DIR", help="write each input with boxes and p_fake drawn here")
    detect.add_argument("--localize", metavar="DIR",
                        help="also write manipulation maps here, from the same forward (a model with a decoder)")
    detect.add_argument("--batch-size", type=_positive_int, default=32, help="face crops per model call")
    detect.add_argument("--workers", type=_positive_int, help="threads decoding and finding faces")
    detect.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    detect.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: bf16 on CUDA and CPUs with AMX/AVX512-BF16, fp32 elsewhere")
    detect.add_argument("--threshold", type=float, default=0.5, help="p_fake at or above which the label is fake")
    _add_sharding_options(detect)

    localize = commands.add_parser("localize", help="map manipulated pixels: a mask and an overlay per input")
    localize.add_argument("inputs", nargs="+", help="image and video files, or folders (searched recursively)")
    localize.add_argument("--model", required=True, help="zoo name (see `clipforensics zoo`) or checkpoint path")
    localize.add_argument("--output-dir", required=True, type=Path,
                          help="gets <input>.mask.png, <input>.overlay.png (videos: .mask/, .overlay.mp4), "
                               "results.jsonl")
    localize.add_argument("--faces", choices=FACE_MODES, default="none",
                          help="none: localize whole images (DeCLIP); auto: each aligned face, warped back")
    _add_face_options(localize)
    localize.add_argument("--batch-size", type=_positive_int, default=16, help="images (or faces) per model call")
    localize.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    localize.add_argument("--precision", choices=PRECISIONS, default="auto",
                          help="auto: bf16 on CUDA and CPUs with AMX/AVX512-BF16, fp32 elsewhere")
    localize.add_argument("--threshold", type=float, default=0.5, help="score at or above which the label is fake")
    _add_sharding_options(localize)

    preprocess = commands.add_parser("preprocess", help="videos and images to the training layout of face crops")
    preprocess.add_argument("inputs", nargs="+", help="video and image files, or folders (searched recursively)")
    preprocess.add_argument("--output", required=True, type=Path, help="root of <dataset>/<source>/<video>/<frame>.png")
    preprocess.add_argument("--dataset", required=True, help="dataset name, e.g. FF or CDFv2")
    preprocess.add_argument("--source", help="source name (default: the folder holding each video)")
    preprocess.add_argument("--label", choices=("real", "fake"), help="default: real when the source's name says so")
    preprocess.add_argument("--masks", type=Path, help="folder of manipulation-mask videos named like the inputs")
    preprocess.add_argument("--crop-size", type=_crop_size, default=256, help="side in pixels, or 'native' (gend)")
    preprocess.add_argument("--workers", type=_positive_int, default=1, help="videos processed in parallel")
    _add_face_options(preprocess)

    train = commands.add_parser("train", help="train a detector from a YAML config (see configs/)")
    train.add_argument("--config", type=Path, help="a preset such as configs/gend-clip-l14-ffpp.yaml")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a field, e.g. --set optim.lr=1e-4 --set trainer.devices=2")

    evaluate = commands.add_parser("evaluate", help="score a dataset of face crops: predictions, metrics, report")
    evaluate.add_argument("--model", required=True, help="zoo name (see `clipforensics zoo`) or checkpoint path")
    evaluate.add_argument("--data", required=True, nargs="+", metavar="D",
                          help="<dataset>/<source>/<video>/<frame> folders, list files (.txt), manifests (.csv, .json)")
    evaluate.add_argument("--output-dir", required=True, type=Path,
                          help="gets predictions.csv, metrics.json, report.html, report.md, plots/")
    evaluate.add_argument("--name", help="the run's name in reports and comparisons (default: the output folder's)")
    evaluate.add_argument("--task", choices=("detection", "localization"), default="detection",
                          help="localization: maps against masks (IoU, F1, pixel AP) for a model with a decoder")
    evaluate.add_argument("--split", help="keep one split of Dolos folders or DeepfakeBench JSON (train, valid, test)")
    evaluate.add_argument("--perturb", type=_perturbation, metavar="SPEC",
                          help="degrade frames first: jpeg:Q, blur:K,S (kernel, sigma) or resize:P (percent)")
    evaluate.add_argument("--batch-size", type=_positive_int, default=32, help="face crops per model call")
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    evaluate.add_argument("--precision", choices=PRECISIONS, default="auto",
                          help="auto: bf16 on CUDA and CPUs with AMX/AVX512-BF16, fp32 elsewhere")
    _add_sharding_options(evaluate)

    compare = commands.add_parser("compare", help="runs' metrics side by side (video-level AUROC, AP, EER)")
    compare.add_argument("runs", nargs="+", metavar="METRICS", help="metrics.json files, or the folders holding them")
    compare.add_argument("--level", choices=("video", "frame"), default="video", help="which table to compare")
    compare.add_argument("--output", type=Path, metavar="F.md", help="also write the table as Markdown")

    commands.add_parser("zoo", help="list the named published weights")

    demo = commands.add_parser("demo", help="an offline tour on built-in images")
    demo.add_argument("--workdir", type=Path, default=Path(".demo"), help="where the demo writes its files")
    return parser


def _add_face_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=_positive_int, default=32, help="frames sampled per video")
    parser.add_argument("--sampler", choices=Sampler.KINDS, default="uniform",
                        help="uniform: --frames spread evenly; stride: every --frames-th; spread: GenD's order")
    parser.add_argument("--all-faces", action="store_true", help="score every face, not only the largest")
    parser.add_argument("--face-detector", choices=BACKENDS, default="dlib-hog")
    parser.add_argument("--face-model", metavar="ONNX", help="det_10g.onnx for --face-detector retinaface")
    parser.add_argument("--face-max-side", type=int, default=640, metavar="PX",
                        help="search frames downscaled to this side (dlib finds faces over ~80 px there); 0: full size")
    parser.add_argument("--align", choices=RECIPES, default="deepfakebench", help="five-point alignment recipe")


def _add_sharding_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sharding across devices (one process each, results merged in input order)")
    group.add_argument("--devices", type=_positive_int, default=1, help="devices per machine (--device: their kind)")
    group.add_argument("--num-nodes", type=_positive_int, default=1, help="machines (MASTER_ADDR, NODE_RANK set)")
    group.add_argument("--strategy", default="ddp", help="Lightning strategy that launches the processes")


def _shards(args: argparse.Namespace):
    """This process's place in a sharded run (Lightning launches the other processes), or None."""
    from .inference.sharding import Devices, Shards

    devices = Devices.from_device(args.device, args.devices, args.num_nodes, args.strategy)
    return Shards(devices) if devices.sharded else None


def _face_options(args: argparse.Namespace) -> tuple[FaceOptions, Sampler]:
    options = FaceOptions(mode=getattr(args, "faces", "auto"), backend=args.face_detector, model_path=args.face_model,
                          policy="all" if args.all_faces else "largest", recipe=args.align,
                          max_side=args.face_max_side or None)
    return options, Sampler(args.sampler, args.frames)


def _perturbation(text: str):
    from .evaluation.detection import Perturbation

    try:
        return Perturbation.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _crop_size(text: str) -> int | None:
    return None if text == "native" else _positive_int(text)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ClipForensicsError as error:
        print(f"clipforensics: {error}", file=sys.stderr)
        return EXIT_FAILED_INPUTS
    except ValueError as error:
        print(f"clipforensics: error: {error}", file=sys.stderr)
        return EXIT_USAGE


def run_detect(args: argparse.Namespace) -> int:
    from .inference.predictor import load

    if args.output and Path(args.output).suffix.lower() not in (".jsonl", ".csv"):
        raise ValueError(f"--output must end in .jsonl or .csv, not {args.output!r}")
    faces, sampler = _face_options(args)
    shards = _shards(args)
    device = str(shards.device) if shards else args.device
    detector = load(args.model, device, args.precision, args.batch_size, args.threshold)
    options = {"faces": faces, "frames": sampler, "aggregate_by": args.aggregate, "save_crops": args.save_crops,
               "annotate": args.annotate, "workers": args.workers, "save_maps": args.localize}
    if shards is None:
        return _report_detections(detector.iter_predict(args.inputs, **options), args.output)
    mine = detector.predict(args.inputs, shard=(shards.rank, shards.world), progress=shards.is_main, **options)
    merged = shards.gather(mine)
    return EXIT_OK if merged is None else _report_detections(merged, args.output)


def _report_detections(results, output: str | None) -> int:
    """Writes results (to ``output`` or stdout) as they come; the exit status says whether any failed."""
    from .inference.writers import ResultWriter

    failed = total = 0
    writer = ResultWriter(output) if output else None
    try:
        for result in results:
            total += 1
            failed += not result.ok
            if writer:
                writer.write(result)
            else:
                print(result.to_json(), flush=True)
    finally:
        if writer:
            writer.close()
    where = f" -> {output}" if output else ""
    print(f"{total} inputs: {total - failed} scored, {failed} failed{where}", file=sys.stderr)
    return EXIT_FAILED_INPUTS if failed else EXIT_OK


def run_localize(args: argparse.Namespace) -> int:
    import json

    from .inference.predictor import load

    faces, sampler = _face_options(args)
    shards = _shards(args)
    localizer = load(args.model, str(shards.device) if shards else args.device, args.precision, args.batch_size,
                     args.threshold)
    if not localizer.localizes:
        raise ValueError(f"{args.model} is a detector without a decoder: it cannot map manipulated pixels")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    results = localizer.iter_predict(args.inputs, faces=faces, frames=sampler, save_maps=args.output_dir,
                                     shard=(shards.rank, shards.world) if shards else None,
                                     progress=shards.is_main if shards else None)
    if shards:  # each process wrote its own files; only the rows travel
        results = shards.gather([_without_maps(result) for result in results])
        if results is None:
            return EXIT_OK
    rows = args.output_dir / "results.jsonl"
    failed = total = 0
    with rows.open("w") as file:
        for result in results:
            total += 1
            failed += not result.ok
            row = {"path": result.path, "p_fake": result.p_fake, "label": result.label, "kind": result.kind,
                   "mask": result.files.get("mask"), "overlay": result.files.get("overlay"), "error": result.error,
                   "note": "; ".join(result.notes) or None}
            file.write(json.dumps(row) + "\n")
            file.flush()
    print(f"{total} inputs: {total - failed} localized, {failed} failed -> {rows}", file=sys.stderr)
    return EXIT_FAILED_INPUTS if failed else EXIT_OK


def _without_maps(result):
    result.maps = []
    return result


def run_preprocess(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from .data.preprocess import DONE_FILE, VideoOutcome, plan_jobs, run_jobs, write_manifest

    faces, sampler = _face_options(args)
    faces = dataclasses.replace(faces, crop_size=args.crop_size, policy="mask" if args.masks else faces.policy)
    jobs = plan_jobs(args.inputs, args.output, args.dataset, args.source, args.label, args.masks)
    outcomes = list(run_jobs(jobs, faces, sampler, workers=args.workers))
    everything = [VideoOutcome(**json.loads(done.read_text())) for done in sorted(args.output.rglob(DONE_FILE))]
    summary = write_manifest(everything, args.output / "manifest.csv")
    (args.output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    failed = [o for o in outcomes if o.error]
    print(f"{len(outcomes)} inputs: {sum(len(o.rows) for o in outcomes)} frames kept, "
          f"{sum(o.faceless for o in outcomes)} frames without a face, {len(failed)} inputs failed "
          f"-> {args.output / 'manifest.csv'}", file=sys.stderr)
    for outcome in failed:
        print(f"  {outcome.media}: {outcome.error}", file=sys.stderr)
    return EXIT_FAILED_INPUTS if failed else EXIT_OK


def run_train(args: argparse.Namespace) -> int:
    from .training.fit import fit, load_config

    out = fit(load_config(args.config, args.overrides))
    print(f"best and last models: {out / 'best'}, {out / 'last'}; logs: {out / 'logs'}", file=sys.stderr)
    return EXIT_OK


def run_evaluate(args: argparse.Namespace) -> int:
    from .inference.predictor import load
    from .evaluation.detection import Evaluation, evaluate, load_samples, predict_samples, write_evaluation

    samples = load_samples(args.data, args.split)
    shards = _shards(args)
    detector = load(args.model, str(shards.device) if shards else args.device, args.precision, args.batch_size)
    if args.task == "localization":
        return _evaluate_localization(args, detector, samples, shards)
    if shards is None:
        evaluation = evaluate(detector, samples, args.perturb)
    else:
        mine = predict_samples(detector, shards.share(samples), args.perturb, progress=shards.is_main)
        predictions = shards.gather(mine)
        if predictions is None:
            return EXIT_OK
        evaluation = Evaluation(predictions, dict(detector.provenance), str(args.perturb) if args.perturb else None)
    write_evaluation(evaluation, args.output_dir, args.name or args.output_dir.resolve().name)
    counts = evaluation.counts()
    print(f"{counts['frames']} frames: {counts['scored']} scored, {counts['failed']} failed; {counts['videos']} videos "
          f"-> {args.output_dir / 'report.html'}", file=sys.stderr)
    for row in evaluation.tables["video"]:
        if row.source is None and row.dataset is not None:
            print(f"  {row.dataset}: video AUROC {row.metrics['auroc']:.4f}, AP {row.metrics['ap']:.4f}, "
                  f"EER {row.metrics['eer']:.4f}", file=sys.stderr)
    for prediction in evaluation.failed[:10]:
        print(f"  failed: {prediction.error}", file=sys.stderr)
    if len(evaluation.failed) > 10:
        print(f"  ... and {len(evaluation.failed) - 10} more in {args.output_dir / 'predictions.csv'}", file=sys.stderr)
    return EXIT_FAILED_INPUTS if evaluation.failed else EXIT_OK


def _evaluate_localization(args: argparse.Namespace, model, samples: list, shards) -> int:
    from .evaluation.localization import LocalizationEvaluation, evaluate_localization, write_localization

    if not model.localizes:
        raise ValueError(f"{args.model} has no decoder: --task localization needs a localizer")
    evaluation = evaluate_localization(model, shards.share(samples) if shards else samples, args.perturb,
                                       progress=shards.is_main if shards else None)
    if shards:
        predictions = shards.gather(evaluation.predictions)
        if predictions is None:
            return EXIT_OK
        evaluation = LocalizationEvaluation(predictions, evaluation.model, evaluation.perturbation,
                                            evaluation.examples)
    write_localization(evaluation, args.output_dir, args.name or args.output_dir.resolve().name)
    overall = evaluation.rows[0] if evaluation.rows else None
    print(f"{len(evaluation.predictions)} images: {len(evaluation.failed)} failed"
          + (f"; IoU {overall['iou']:.4f}, F1 {overall['f1']:.4f}, best F1 {overall['best_f1']:.4f}, "
             f"pixel AP {overall['pixel_ap']:.4f} over {overall['masked']} masked fakes" if overall else "")
          + f" -> {args.output_dir / 'report.html'}", file=sys.stderr)
    for prediction in evaluation.failed[:10]:
        print(f"  failed: {prediction.error}", file=sys.stderr)
    return EXIT_FAILED_INPUTS if evaluation.failed else EXIT_OK


def run_compare(args: argparse.Namespace) -> int:
    from .evaluation.reports import comparison, load_runs, markdown_table, text_table

    table = comparison(load_runs(args.runs), args.level)
    print(text_table(*table))
    if args.output:
        args.output.write_text(f"# {args.level.capitalize()}-level metrics (%)\n\n{markdown_table(*table)}\n")
    return EXIT_OK


def run_zoo(args: argparse.Namespace) -> int:
    from .hub.zoo import ZOO

    for entry in ZOO.values():
        print(f"{entry.name:<24} {entry.summary}\n{'':<24} {entry.address}")
    return EXIT_OK


def run_demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(args.workdir)


COMMANDS = {"detect": run_detect, "localize": run_localize, "preprocess": run_preprocess, "train": run_train,
            "evaluate": run_evaluate, "compare": run_compare, "zoo": run_zoo, "demo": run_demo}

if __name__ == "__main__":
    sys.exit(main())
