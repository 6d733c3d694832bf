"""``chestxai prepare``: decode + resize a dataset once into a reusable uint8 cache."""

from __future__ import annotations

import argparse
from typing import Any

from chestxai.commands._common import NoSwitch, add_common_flags
from chestxai.commands._options import HELP, reader_options

EPILOG = """\
examples:
  chestxai prepare --source medmnist --root ~/data/medmnist --size 28 --out cache/
  chestxai prepare --source nih --root /data/ChestX-ray14 --size 224 --out cache/ --workers 4
  chestxai prepare --source folder --root ./xrays --size 256 --out cache/ --strict
  chestxai prepare --source nih --root /data/nih --size 224 --out cache/ --option bbox_size=1024

  # on a cluster: 8 array jobs, then one merge (same flags each time; shards count from 1)
  chestxai prepare --source nih --root /data/nih --size 224 --out cache/ --shard 3/8
  chestxai prepare --source nih --root /data/nih --size 224 --out cache/ --merge-shards 8

The cache directory is <out>/<source>-<size>px-<hash>; the hash covers the source, root, reader
options, file sizes/mtimes, size and decode settings, so an identical re-run reuses it and an
interrupted run resumes where it stopped. Images that cannot be decoded are skipped and listed
with their reason in <cache>/prepare_report.json (--strict makes that an error).

--shard K/N decodes only the K-th of N contiguous blocks of the rows (K = 1..N) into
<cache>.shards/shard-K-of-N/ (resumable, locked while written); --merge-shards N, run once all N are
done, merges them into the one cache a single run writes (same key and bytes) and lists every
shard's skipped images in its report. A missing or unfinished shard is an error naming it.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "prepare",
        help="decode + resize a dataset once into a uint8 memory-mapped cache",
        description="Decode every image of a dataset (PNG 8/16-bit, JPEG, DICOM), convert to grayscale, "
        "resize to SIZE x SIZE (stretched, Lanczos) and store it with labels, boxes and masks in a "
        "cache that training and evaluation read. Prints the cache path and a summary.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--source", required=True, help="reader name (e.g. medmnist, nih, folder, csv, chexpert, siim)"
    )
    p.add_argument("--root", required=True, help="folder (or file) holding the dataset")
    p.add_argument("--size", type=int, default=224, help="output side length in pixels (default 224)")
    p.add_argument("--out", default=None, help="cache folder (default: $CHESTXAI_CACHE/prepared)")
    p.add_argument(
        "--workers", type=int, default=None, help="decoding processes (default min(CPUs, 4); 1 = none)"
    )
    p.add_argument(
        "--strict",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="fail when any image cannot be decoded",
    )
    p.add_argument(
        "--force",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="rebuild even if a finished cache of the same inputs exists",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="refuse images larger than this many pixels (decompression-bomb guard; default 80 million, "
        "at most Pillow's own limit, about 179 million)",
    )
    p.add_argument(
        "--max-decode-mb",
        type=float,
        default=None,
        help="refuse images whose decoded samples (width x height x bands x bytes per sample, all "
        "frames) need more than this many MiB (decompression-bomb guard; default 256)",
    )
    scale = p.add_mutually_exclusive_group()
    scale.add_argument(
        "--shard",
        metavar="K/N",
        default=None,
        help="prepare only shard K of N (K counts from 1), e.g. one per array job; then --merge-shards N",
    )
    scale.add_argument(
        "--merge-shards",
        type=int,
        metavar="N",
        default=None,
        help="merge the N finished shards into the cache (same flags as the shards otherwise)",
    )
    p.add_argument(
        "--voi",
        dest="no_voi",
        action=NoSwitch,
        help="apply the DICOM VOI LUT / window (--no-voi: min-max instead)",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=HELP,
    )
    add_common_flags(p, device=False, progress_aliases=("--quiet",))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chestxai.data.cache import META
    from chestxai.data.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, MIB, DecodeSettings
    from chestxai.data.prepare import summary
    from chestxai.data.shards import parse_shard, prepare_sharded, shard_summary

    shard = parse_shard(args.shard) if args.shard is not None else None  # bad K/N: fail before reading
    max_pixels = DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels
    max_bytes = DEFAULT_MAX_BYTES if args.max_decode_mb is None else int(args.max_decode_mb * MIB)
    settings = DecodeSettings(max_pixels=max_pixels, voi=not args.no_voi, max_bytes=max_bytes)
    path = prepare_sharded(
        args.source,
        args.root,
        size=args.size,
        out=args.out,
        workers=args.workers,
        strict=args.strict,
        options=reader_options(args.source, args.option),
        decode=settings,
        force=args.force,
        progress=not args.no_progress,
        shard=shard,
        merge_shards=args.merge_shards,
    )
    print(path)
    if shard is not None and not (path / META).exists():  # the shard's folder, not the finished cache
        print(shard_summary(path))
        return 0
    if shard is not None:
        print(f"the cache is already merged and complete; shard {shard[0]}/{shard[1]} had nothing to do")
    print(summary(path))
    print(train_hint(path, args.out))
    return 0


def train_hint(path, out: str | None) -> str:
    """The train command that uses this cache: train prepares its own under $CHESTXAI_CACHE/prepared
    unless pointed at the folder (``prepare --out cache/`` then a plain ``train`` decoded it all again)."""
    lines = [f"train on this cache: chestxai train --config RECIPE --set data.cache_dir={path}"]
    if out:
        lines.append(
            f"  (or --cache {out}: train reuses a cache under it prepared from the same source, root, size "
            "and options)"
        )
    return "\n".join(lines)
