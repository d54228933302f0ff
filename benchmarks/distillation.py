"""Distillation (issue 16): what a smaller student keeps of its teacher, and what distillation adds over training the
same student on the labels alone.

images: Fashion-MNIST classes 5-9. The teacher is a `cnn` (widths 16-32-64) trained on K labelled images per class;
    the student is a `cnn` of a quarter of the width (4-8-16; --image-student-widths 8 16 32: half). Arms:
    `labels only` (the baseline: the student trained on the labels with the same budget: distill with alpha=1,
    which leaves only the cross-entropy),
    `distilled` (the teacher on the student's augmented images, alpha 0.5; --mix mixup for Beyer et al.'s mixed
    images) and `distilled + unlabelled` (U more training images without their labels). Every arm gets the same
    light augmentation and budget. Test: all 5,000 test images of classes 5-9.
text: TREC (or Banking77). The teacher is MiniLM-L6 fine-tuned on K labelled texts per class (all texts with
    --text-shots 0; `full`, or with --text-teacher-strategy lp-ft the whole-set recipe of text_few_shot.py); the
    students are the teacher cut to 3 and 2 of its 6 layers (every other layer: DistilBERT's initialisation; or
    named layers, --text-layers 0,1: the bottom two). Arms per student: `labels only` (alpha=1), `distilled`,
    `distilled + unlabelled` (U of the training texts, without their labels; --text-unlabeled-from banking77: U
    texts of another set, out-of-domain questions for TREC), and when named in --arms
    `distilled + features` (also DistilBERT's cosine loss between the student's and the teacher's sentence
    embeddings, weight --feature-weight) and
    `distilled + masked` (each step, a share --mask-tokens of the tokens read as [MASK] by both: consistent teaching
    on the training texts' neighbourhoods). Test: the whole test split.

The teacher is trained once (seed 0); every student arm runs --seeds seeds (each seed draws its own K examples when
K is set, shared by the arms). Writes benchmarks/results/NAME.{json,md}.

Accuracy (the machine may be loaded; it measures accuracy, not time):

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/distillation.py --part images
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/distillation.py --part text --name distillation_text

Speed (latency at batch 1, throughput at batch 64, PyTorch and ONNX Runtime; on a quiet machine only):

    .venv/bin/python benchmarks/distillation.py --part all --seeds 1 --speed-rounds 50 --name distillation_speed
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig
from warmstart.strategies import create_strategy

from _common import command_line, machine_info, RESULTS, write_results

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
QUIET = dict(progress=False, trackers=())
STUDENT_WIDTHS = [4, 8, 16]  # a quarter of cnn's default 16-32-64
ARMS = ("labels only", "distilled", "distilled + unlabelled", "distilled + features", "distilled + masked")


def chosen_arms(args, unlabeled) -> list[str]:
    """``--arms`` in its order, or every arm the data allows (the unlabelled one only with unlabelled data)."""
    if args.arms and ARMS[2] in args.arms and unlabeled is None:
        raise SystemExit(f"--arms '{ARMS[2]}' needs unlabelled data: set --image-unlabeled / --text-unlabeled")
    # feature matching and token masking are asked for by name: they need a student cut from the teacher
    return list(args.arms or ARMS[:2] + ((ARMS[2],) if unlabeled is not None else ()))


def unlabelled_images(folder: Path, count: int, seed: int = 1234) -> DataConfig:
    """``count`` training images of Fashion-MNIST classes 5-9 without their labels, as an .npz in ``folder``
    (outside the repository): the unlabelled extension of the transfer set."""
    from warmstart.data import fashion_mnist

    train, _ = fashion_mnist.load()
    pool = np.flatnonzero(train.y >= 5)
    chosen = np.sort(np.random.default_rng(seed).choice(pool, min(count, len(pool)), replace=False))
    x = (train.x[chosen, 0] * 255).round().astype(np.uint8)
    path = folder / "unlabelled.npz"
    np.savez(path, x=x, y=np.zeros(len(x), dtype=np.int64), x_test=x[:2], y_test=np.zeros(2, dtype=np.int64),
             class_names=np.array(["unlabelled"]))
    return DataConfig(str(path))


def unlabelled_texts(folder: Path, source: Path, count: int, seed: int = 1234) -> DataConfig:
    """``count`` texts of ``source``'s train.csv (all with 0) with a placeholder label, as a CSV folder in ``folder``
    (outside the repository): the unlabelled extension of the transfer set."""
    import csv

    with open(source / "train.csv", encoding="utf-8", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    if count:
        texts = [texts[i] for i in sorted(np.random.default_rng(seed).choice(len(texts), count, replace=False))]
    out = folder / "unlabelled-texts"
    out.mkdir()
    for name, rows in (("train.csv", texts), ("test.csv", texts[:2])):  # a test file: no hold-out of the train one
        with open(out / name, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows([text, "?"] for text in rows)
    return DataConfig(str(out))


def summarise(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.4f}"


def run_arms(teacher_dir: Path, data_for_seed, students, arms, args, folder: Path, unlabeled) -> list[dict]:
    """Every (student, arm, seed): the distillation run and what it reported."""
    rows = []
    # seed-major, so that a run stopped early still holds paired (same seed, every arm) results
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for student_label, student in students:
            for arm in arms:
                baseline = arm == "labels only"
                alpha = 1.0 if baseline else args.alpha
                images = student_label.startswith("cnn")
                train = TrainConfig(epochs=args.student_epochs, seed=seed, lr=args.student_lr,
                                    batch_size=args.batch_size, augment=args.augment_for_images if images else "none",
                                    mix=(args.baseline_mix if baseline else args.mix) if images else "none", **QUIET)
                started = time.perf_counter()
                result = warmstart.distill(teacher_dir, data_for_seed(seed), student=student,
                                           unlabeled=unlabeled if arm.endswith("unlabelled") else None,
                                           temperature=args.temperature, alpha=alpha, train=train,
                                           feature_weight=args.feature_weight if arm.endswith("features") else 0.0,
                                           mask_tokens=args.mask_tokens if arm.endswith("masked") else 0.0,
                                           out=folder / f"{student_label}-{arm}-{seed}".replace(" ", "_"),
                                           speed_rounds=args.speed_rounds)
                comparison = result.comparison
                row = {"student": student_label, "arm": arm, "seed": seed,
                       "accuracy": comparison["student"]["accuracy"],
                       "teacher_accuracy": comparison["teacher"]["accuracy"],
                       "agreement": comparison["summary"]["agreement"],
                       "parameters": comparison["student"]["parameters"],
                       "teacher_parameters": comparison["teacher"]["parameters"],
                       "file_bytes": comparison["student"]["file_bytes"],
                       "teacher_file_bytes": comparison["teacher"]["file_bytes"],
                       "wall_s": time.perf_counter() - started}
                if args.speed_rounds:
                    row["speed"] = {"student": comparison["student"]["speed"],
                                    "teacher": comparison["teacher"]["speed"], **{
                                        k: v for k, v in comparison["summary"].items() if "speedup" in k}}
                rows.append(row)
                print(f"{student_label} {arm} seed {seed}: {row['accuracy']:.4f} (teacher "
                      f"{row['teacher_accuracy']:.4f}, agreement {row['agreement']:.4f}, {row['wall_s']:.0f} s)",
                      flush=True)
                write_results(args.out, f"{args.name}.partial", {"rows": rows})  # survives a stopped run
    return rows


def images(args, folder: Path) -> dict:
    shots = args.image_shots or None
    data = lambda seed: DataConfig("fashion-mnist", classes="5-9", shots=shots)  # noqa: E731 (each seed draws)
    started = time.perf_counter()
    teacher = warmstart.pretrain(data(0), model="cnn", out=folder / "teacher",
                                 train=TrainConfig(epochs=args.teacher_epochs, lr=args.teacher_lr,
                                                   batch_size=args.batch_size, augment=args.augment_for_images,
                                                   **QUIET))
    print(f"images teacher: {teacher.metrics.accuracy:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)
    unlabeled = unlabelled_images(folder, args.image_unlabeled) if args.image_unlabeled else None
    arms = chosen_arms(args, unlabeled)
    label = "cnn " + "-".join(map(str, args.image_student_widths))
    student = ModelConfig("cnn", {"widths": args.image_student_widths})
    rows = run_arms(teacher.run_dir, data, [(label, student)], arms, args, folder, unlabeled)
    return {"teacher_accuracy": teacher.metrics.accuracy, "rows": rows,
            "setting": {"data": "fashion-mnist classes 5-9", "shots": shots, "unlabelled": args.image_unlabeled,
                        "teacher": "cnn 16-32-64", "student": label}}


def text_student(layers: str, width: int | None) -> tuple[str, str | ModelConfig]:
    """``0,1,2`` (those layers), ``0,1,2:768`` (and each feed-forward block pruned to 768 neurons:
    models/ffn_pruning.py; ``width``, from --text-intermediate-size, is the default): the label and the SPEC."""
    layers, _, own = layers.partition(":")
    width = int(own) if own else width
    if width is None:
        return f"layers={layers}", f"layers={layers}"
    return f"layers={layers} ffn={width}", ModelConfig(f"layers={layers}", {"intermediate_size": width})


def text(args, folder: Path) -> dict:
    source = str(SHARED / args.text_data)
    shots = args.text_shots or None
    label_column = "category" if args.text_data == "banking77" else "label"  # as ../shared/data holds them
    data = lambda seed: DataConfig(source, shots=shots, max_length=args.max_length,  # noqa: E731
                                   label_column=label_column)
    started = time.perf_counter()
    if args.text_teacher is not None:  # a teacher run made earlier with this script's settings, reused
        teacher_dir = Path(args.text_teacher)
        teacher_accuracy = warmstart.evaluate(teacher_dir, data(0)).accuracy
    else:
        if args.text_teacher_strategy == "lp-ft":  # text_few_shot.py's whole-set recipe (Banking77's best: 0.939)
            strategy = create_strategy("lp-ft", probe="lbfgs")
            recipe = dict(batch_size=32, weight_decay=0.01, schedule="linear")
        else:
            strategy, recipe = "full", dict(batch_size=16)
        out = Path(args.text_teacher_out) if args.text_teacher_out else folder / "text-teacher"
        teacher = warmstart.finetune("minilm", data(0), strategy=strategy, out=out,
                                     train=TrainConfig(epochs=args.text_teacher_epochs, lr=args.text_teacher_lr,
                                                       **recipe, **QUIET))
        teacher_dir, teacher_accuracy = teacher.run_dir, teacher.metrics.accuracy
    print(f"text teacher: {teacher_accuracy:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)
    unlabelled_source = SHARED / (args.text_unlabeled_from or args.text_data)
    unlabeled = unlabelled_texts(folder, unlabelled_source, args.text_unlabeled) if args.text_unlabeled >= 0 else None
    arms = chosen_arms(args, unlabeled)
    students = [text_student(k, args.text_intermediate_size) for k in args.text_layers]
    text_args = argparse.Namespace(**{**vars(args), "student_epochs": args.text_student_epochs,
                                      "student_lr": args.text_student_lr, "batch_size": 16})
    rows = run_arms(teacher_dir, data, students, arms, text_args, folder, unlabeled)
    return {"teacher_accuracy": teacher_accuracy, "rows": rows,
            "setting": {"data": args.text_data, "shots": shots,
                        "teacher": f"minilm (6 layers, {args.text_teacher_strategy})",
                        "unlabelled": None if unlabeled is None else
                        f"{args.text_unlabeled or 'all'} training texts of {unlabelled_source.name}"}}


def table(part: dict) -> list[str]:
    lines = ["| student | arm | accuracy | vs teacher (points) | agreement | parameters (teacher / student) |",
             "|---|---|---|---|---|---|"]
    keys = list(dict.fromkeys((r["student"], r["arm"]) for r in part["rows"]))  # in the order they ran
    for student, arm in keys:
        rows = [r for r in part["rows"] if r["student"] == student and r["arm"] == arm]
        accuracy = [r["accuracy"] for r in rows]
        gap = 100 * (statistics.mean(accuracy) - part["teacher_accuracy"])
        lines.append(f"| {student} | {arm} | {summarise(accuracy)} | {gap:+.2f} | "
                     f"{summarise([r['agreement'] for r in rows])} | "
                     f"{rows[0]['teacher_parameters'] / rows[0]['parameters']:.1f}x ({rows[0]['parameters']:,}) |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["images", "text", "all"], default="images")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds FIRST..FIRST+SEEDS-1 (to split the "
                        "seeds of one benchmark between processes)")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--alpha", type=float, default=0.5, help="distilled arms; labels only uses 1")
    parser.add_argument("--feature-weight", type=float, default=1.0,
                        help="the 'distilled + features' arm's weight of the cosine loss on the feature vectors")
    parser.add_argument("--mask-tokens", type=float, default=0.15,
                        help="the 'distilled + masked' arm's share of tokens read as the mask token (text)")
    parser.add_argument("--speed-rounds", type=int, default=0, help="> 0: also CPU speed (quiet machine only)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--arms", nargs="+", default=None, choices=ARMS,
                        help="the arms to run, in this order (default: every arm the data allows)")
    images_group = parser.add_argument_group("images")
    images_group.add_argument("--image-shots", type=int, default=300, help="labelled images per class (0: all)")
    images_group.add_argument("--image-unlabeled", type=int, default=1500, help="unlabelled images (0: none)")
    images_group.add_argument("--image-student-widths", type=int, nargs=3, default=STUDENT_WIDTHS,
                              metavar="WIDTH", help="the student cnn's widths (default: a quarter of the teacher's; "
                              "8 16 32 is half, about 4x fewer parameters)")
    images_group.add_argument("--teacher-epochs", type=int, default=12)
    images_group.add_argument("--teacher-lr", type=float, default=2e-3)
    images_group.add_argument("--student-epochs", type=int, default=12)
    images_group.add_argument("--student-lr", type=float, default=3e-3)
    images_group.add_argument("--augment-for-images", default="light")
    images_group.add_argument("--mix", default="none", help="the distilled arms' batch mix (mixup: Beyer et "
                              "al.'s function matching, which needs a far longer schedule than this one)")
    images_group.add_argument("--baseline-mix", default="none", help="the labels-only arm's (mixup hurts it on "
                              "short schedules: benchmarks/results/augmentation.md)")
    text_group = parser.add_argument_group("text")
    text_group.add_argument("--text-data", default="trec", choices=["trec", "banking77"])
    text_group.add_argument("--text-shots", type=int, default=16, help="labelled texts per class (0: all)")
    text_group.add_argument("--text-unlabeled", type=int, default=200,
                            help="unlabelled training texts (0: all of them; -1: no unlabelled arm)")
    text_group.add_argument("--text-unlabeled-from", choices=["trec", "banking77"], default=None,
                            help="the set whose training texts are the unlabelled ones (default: --text-data's)")
    text_group.add_argument("--text-layers", nargs="+", default=["3", "2"],
                            help="the students: K (K layers, evenly spaced) or I,J (those layers)")
    text_group.add_argument("--text-intermediate-size", type=int, default=None,
                            help="prune each student layer's feed-forward block to this many neurons (MiniLM: 1536); "
                                 "one student's own: --text-layers 0,1,2:768")
    text_group.add_argument("--text-teacher", default=None,
                            help="reuse this teacher run (made by this script with the same data settings)")
    text_group.add_argument("--text-teacher-epochs", type=int, default=6)
    text_group.add_argument("--text-teacher-lr", type=float, default=1e-4)
    text_group.add_argument("--text-teacher-out", default=None,
                            help="keep the new teacher run there, for --text-teacher later (default: temporary)")
    text_group.add_argument("--text-teacher-strategy", choices=["full", "lp-ft"], default="full",
                            help="lp-ft: the L-BFGS probe, then every layer (batch 32, linear decay, weight decay "
                                 "0.01): the whole-set recipe of benchmarks/text_few_shot.py")
    text_group.add_argument("--text-student-epochs", type=int, default=4)
    text_group.add_argument("--text-student-lr", type=float, default=1e-4)
    text_group.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--name", default="distillation")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    started = time.perf_counter()
    report = {"command": command_line("benchmarks/distillation.py"),
              "arguments": {k: v for k, v in vars(args).items() if k != "out"}}
    with tempfile.TemporaryDirectory(prefix="warmstart-bench-distill-") as tmp:
        if args.part in ("images", "all"):
            report["images"] = images(args, Path(tmp))
        if args.part in ("text", "all"):
            report["text"] = text(args, Path(tmp))
    report["total_s"] = time.perf_counter() - started
    report["machine"] = machine_info()
    lines = [f"# Distillation ({args.part})", "", f"Command: `{report['command']}` (total "
             f"{report['total_s']:.0f} s; load average {report['machine']['load_average'][0]:.1f} at the end).", ""]
    for part in ("images", "text"):
        if part in report:
            setting = report[part]["setting"]
            lines += [f"## {part}: {setting['data']}", "",
                      "Setting: " + ", ".join(f"{k} {v}" for k, v in setting.items() if k != "data")
                      + f"; teacher test accuracy {report[part]['teacher_accuracy']:.4f}. Mean ± std over "
                      f"{args.seeds} seed(s).", "", *table(report[part]), ""]
    write_results(args.out, args.name, report, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
