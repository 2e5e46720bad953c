"""``python -m tfkit.records write|inspect|verify|schema``: convert, describe, check, or describe foreign records.

``inspect`` and ``verify`` read local splits without TensorFlow, so they answer in a fraction of a second; ``write``
loads it only for a tensorflow-datasets source. ``inspect``, ``verify`` and ``schema`` also take folders and globs of
TFRecord files tfkit did not write (a competition's ``.tfrec`` files): their schema is inferred from the records
(see tfkit.records.infer), or given with ``--schema``.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfkit import cli
from tfkit.errors import UserError
from tfkit.records import foreign
from tfkit.records.framing import Problem
from tfkit.records.sample import first_example
from tfkit.records.schema import SCHEMA_FILE, Schema
from tfkit.records.schema_file import read_schema
from tfkit.records.sources import open_source
from tfkit.records.staging import staged_folder
from tfkit.records.verification import nonfinite_records, verify
from tfkit.records.writing import write
from tfkit.units import format_bytes, parse_size

PROG = "python -m tfkit.records"


def parser() -> cli.Parser:
    """The command line's flags, with one subcommand each for write, inspect and verify."""
    top = cli.Parser(PROG, description=__doc__.split("\n")[0])
    commands = top.commands()
    write_command = commands.add_parser(
        "write",
        help="convert a dataset to sharded TFRecords",
        description=(
            "SOURCE: .npy files (one feature each, named by the file), an .npz, an HDF5 file (.h5/.hdf5), a folder "
            "of images in class subfolders, a CSV with --images (one row per image), or a prepared "
            "tensorflow-datasets folder (the one with dataset_info.json)."
        ),
    )
    write_command.add_argument("source", nargs="+", help="the data to convert")
    write_command.add_argument("--out", required=True, help="the output folder")
    write_command.add_argument("--split", default="train", help="split name of the shards (default train)")
    write_command.add_argument(
        "--eval_fraction",
        type=float,
        default=0.0,
        help="also write this share of the examples as OUT/eval (the rest to OUT/train)",
    )
    write_command.add_argument("--shard_size", default="128MB", help="target shard size (default 128MB)")
    write_command.add_argument("--compression", default="none", choices=["none", "gzip", "zlib"])
    write_command.add_argument("--shuffle_seed", type=int, default=None, help="shuffle at write time with this seed")
    write_command.add_argument("--workers", type=int, default=None, help="writer processes (default: by data size)")
    write_command.add_argument("--features", default=None, help="HDF5/npz: comma-separated names to keep (default all)")
    write_command.add_argument("--label", default=None, help="the label feature, to record its number of classes")
    write_command.add_argument("--tfds_split", default="train", help="tensorflow-datasets: which split to read")
    write_command.add_argument("--images", default=None, help="CSV: the folder of the images its rows name")
    write_command.add_argument("--id", default="id", help="CSV: the column naming each image file (default id)")
    write_command.add_argument(
        "--force",
        action="store_true",
        help="replace an --out folder that holds files (the old data stays until the new write is complete)",
    )
    inspect_command = commands.add_parser("inspect", help="print a split's schema, counts, sizes and one sample")
    inspect_command.add_argument("folder", nargs="+", help="a split's folder, or folders/globs of TFRecord files")
    inspect_command.add_argument("--schema", default=None, help="a schema file for foreign files (default: inferred)")
    verify_command = commands.add_parser(
        "verify", help="read every record; name each corrupt or truncated one, and each holding NaN or inf"
    )
    verify_command.add_argument("folder", nargs="+", help="a split's folder, or folders/globs of TFRecord files")
    verify_command.add_argument("--schema", default=None, help="a schema file for foreign files (default: inferred)")
    schema_command = commands.add_parser(
        "schema",
        help="infer the schema of TFRecord files tfkit did not write, for a person to read and edit",
        description="GLOB: folders, globs or files of TFRecords of any name (.tfrec, .tfrecords, none), gzip or not.",
    )
    schema_command.add_argument("glob", nargs="+", help="the record files")
    schema_command.add_argument("--out", required=True, help="the schema file to write (e.g. schema.json)")
    schema_command.add_argument("--split", default="train", help="the split name in the schema (default train)")
    schema_command.add_argument("--label", default=None, help="the label feature (default: class, label, ...)")
    schema_command.add_argument(
        "--skip_count", action="store_true", help="take record counts from Kaggle-style names (-798.tfrec)"
    )
    schema_command.add_argument("--force", action="store_true", help="replace an existing --out file")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; returns the exit code (verify: 1 on corruption).

    Raises:
        UserError: Bad flags or input, reported as one line by ``cli.run``.
    """
    args = parser().parse_args(list(argv if argv is not None else sys.argv[1:]))
    if args.command == "inspect":
        if _is_split(args.folder, args.schema):
            print(describe(args.folder[0]))
        else:
            schema = foreign.schema_of(args.folder, schema_file=args.schema)
            print(describe_schema(", ".join(args.folder), schema, ""))
        return 0
    if args.command == "verify":
        if _is_split(args.folder, args.schema):
            return _verify(args.folder[0])
        return _report(", ".join(args.folder), *foreign.verify_files(args.folder, schema_file=args.schema))
    if args.command == "schema":
        schema = foreign.write_inferred(
            args.glob, args.out, split=args.split, label=args.label, count=not args.skip_count, force=args.force
        )
        print(f"wrote the schema of {schema.records} records in {len(schema.shards)} file(s) to {args.out}")
        return 0
    return _write(args)


def describe(folder: str) -> str:
    """What ``inspect`` prints: the split's schema, counts and sizes, and its first record decoded."""
    return describe_schema(folder, read_schema(folder), folder)


def describe_schema(where: str, schema: Schema, folder: str) -> str:
    """``inspect``'s lines for a schema whose shards are under ``folder`` (or hold their own paths)."""
    lines = [
        f"{where}: split {schema.split}, {schema.records} records in {len(schema.shards)} shard(s), "
        f"{format_bytes(schema.bytes)}, compression {schema.compression or 'none'}"
    ]
    for name, feature in schema.features.items():
        extra = f", {feature.num_classes} classes" if feature.num_classes else ""
        if feature.nonfinite is not None and feature.nonfinite.count:
            extra += f", {feature.nonfinite.count} NaN/inf from record {feature.nonfinite.first_record}"
        lines.append(f"  {name}: {feature.dtype} {list(feature.shape)} ({feature.encoding}{extra})")
    sizes = [shard.records for shard in schema.shards]
    lines.append(f"  records per shard: {min(sizes)} to {max(sizes)}" if sizes else "  records per shard: no shards")
    for name, value in first_example(folder, schema).items():
        text = np.array2string(value, threshold=8, edgeitems=2) if value.dtype != object else repr(value.item())[:80]
        lines.append(f"  sample {name}: {text.replace(chr(10), ' ')}")
    return "\n".join(lines)


def _verify(folder: str) -> int:
    # Non-finite values are named but do not fail verify: data.allow_nonfinite may want them; training refuses them.
    schema, problems, counts = verify(folder)
    nonfinite = [record.describe() for record in nonfinite_records(folder, schema)]
    return _report(folder, schema, problems, counts, nonfinite=nonfinite)


def _report(
    where: str, schema: Schema, problems: list[Problem], counts: list[int], *, nonfinite: Sequence[str] = ()
) -> int:
    for problem in problems:
        print(f"corrupt: {problem.describe()}")
    for line in nonfinite:
        print(f"nonfinite: {line}")
    state = f"{len(problems)} problem(s)" if problems else "clean"
    if nonfinite:
        state += f"; {len(nonfinite)} record(s) with NaN/inf values"
    print(f"{where}: {sum(counts)} good records of {schema.records} in {len(schema.shards)} shard(s); {state}")
    return 1 if problems else 0


def _is_split(locations: Sequence[str], schema_file: str | None) -> bool:
    """Whether the command names one split written by tfkit.records (a folder with its ``schema.json``)."""
    return len(locations) == 1 and schema_file is None and os.path.isfile(os.path.join(locations[0], SCHEMA_FILE))


def _write(args: argparse.Namespace) -> int:
    # Every flag is checked before the source is opened or anything written.
    shard_bytes = parse_size(args.shard_size, key="--shard_size")
    if not 0 <= args.eval_fraction < 1:
        raise UserError(f"--eval_fraction received {args.eval_fraction}; expected a share in [0, 1), e.g. 0.1.")
    source = open_source(
        args.source,
        features=args.features.split(",") if args.features else None,
        label=args.label,
        tfds_split=args.tfds_split,
        images=args.images,
        id_column=args.id,
    )
    if args.eval_fraction:
        order = np.random.default_rng(args.shuffle_seed or 0).permutation(len(source))
        held_out = max(1, round(len(order) * args.eval_fraction))
        parts = {"eval": np.sort(order[:held_out]), "train": np.sort(order[held_out:])}
        targets: list[tuple[str, str, np.ndarray | None]] = [
            (split, split, indices) for split, indices in parts.items()
        ]
    else:
        targets = [(args.split, "", None)]
    if args.compression == "none":
        _check_space(args.out, needed=len(source) * source.example_bytes)
    written = []
    try:
        with staged_folder(args.out, force=args.force) as staging:
            for split, subfolder, indices in targets:
                schema = write(
                    source,
                    staging / subfolder,
                    split=split,
                    indices=indices,
                    shard_bytes=shard_bytes,
                    compression=args.compression,
                    shuffle_seed=args.shuffle_seed,
                    workers=args.workers,
                )
                written.append((str(Path(args.out) / subfolder) if subfolder else args.out, schema))
    except OSError as error:
        # What the file system refuses (a full disk, a read-only mount, a file h5py cannot read) is the user's to
        # fix; the staged folder is gone and the old data untouched.
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UserError(
                f"the disk of '{args.out}' is full ({error.strerror}); expected room for the new split. Nothing was "
                "changed: free space, or choose another --out."
            ) from None
        if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise UserError(
                f"cannot write to '{args.out}' ({error.strerror}); expected a writable folder. Nothing was changed: "
                "choose another --out, or make it writable."
            ) from None
        what = f"'{error.filename}'" if error.filename else source.describe()
        reason = error.strerror or (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(
            f"writing '{args.out}' failed on {what} ({reason}); expected a readable source and a writable output "
            "folder. Nothing was changed: fix the file or choose another --out."
        ) from None
    for folder, schema in written:
        print(_written(folder, schema))
    return 0


def _check_space(out: str, *, needed: int) -> None:
    """Refuses a write whose uncompressed records cannot fit on the output's disk, before anything is written."""
    existing = Path(os.path.abspath(out))
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise UserError(
            f"the split needs at least {format_bytes(needed)} and the disk of '{out}' has {format_bytes(free)} free; "
            "expected room for it. Free space, use --compression gzip, or choose another --out."
        )


def _written(folder: str, schema: Schema) -> str:
    lines = [
        f"wrote {schema.records} records in {len(schema.shards)} shard(s), {format_bytes(schema.bytes)}, to {folder} "
        f"(features: {', '.join(schema.features)})"
    ]
    for name, feature in schema.features.items():
        if feature.nonfinite is not None and feature.nonfinite.count:
            lines.append(
                f"note: feature '{name}' holds {feature.nonfinite.count} NaN/inf value(s), the first in record "
                f"{feature.nonfinite.first_record}; training refuses them unless data.allow_nonfinite: true "
                f"(python -m tfkit.records verify {folder} names every such record)"
            )
    return "\n".join(lines)
