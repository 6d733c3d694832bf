"""``chestxai data ...``: look at a dataset through its reader before preparing it.

``chestxai data summary --source nih --root ../shared/data/tables/Data_Entry_2017.csv.zip``
prints images, patients, per-label positive/negative/unknown counts, boxes, masks, how many
listed image files exist, splits and the policies the reader applied. It needs only the label
tables; images are counted when present.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from typing import Any

EPILOG = """\
sources and their main options (--option key=value, repeatable):
  folder            class-per-folder tree (Kermany, COVID-19 Radiography): pneumonia_subtypes=true,
                    positive=CLASS (binary), classes=A,B, masks=false
  csv               any manifest: path_col=, label_col= [sep=| none_label=...] or label_cols=A,B,C,
                    positive=VALUE, patient_col=, split_col=, view_col=, id_col=, image_root=, manifest=
  nih               ChestX-ray14: labels_file=, bbox_file=, include_no_finding=true, official_split=false
  chexpert          views=frontal|lateral|all, uncertainty=ones|zeros|ignore
  siim              SIIM-ACR pneumothorax: labels_file=, read_headers=false
  rsna              RSNA pneumonia: labels_file=
  covid-collection  label_mode=finding|leaf|multilabel, positive=COVID-19, masks=false
  medmnist          flag=pneumoniamnist, size=28, download_missing=false

values: true/false/yes/no become booleans, whole numbers ints, decimals floats, the rest text.
examples:
  chestxai data summary --source nih --root ../shared/data/nih-bbox
  chestxai data summary --source chexpert --root CheXpert-v1.0-small --option uncertainty=ones --json
  chestxai data summary --source folder --root chest_xray --option pneumonia_subtypes=true
"""


def parse_value(text: str) -> Any:
    """Command-line text -> bool / int / float / str (``none`` -> None)."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``; a malformed pair is a ValueError naming it."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--option {pair!r}: expected key=value, e.g. --option uncertainty=ones")
        out[key.strip()] = parse_value(value)
    return out


def check_options(source: str, options: dict[str, Any]) -> None:
    """Fail before reading when ``options`` holds a name the reader does not take, listing valid ones."""
    from chestxai.data.readers import READERS, list_readers

    list_readers()  # loads every reader module
    params = inspect.signature(READERS.get(source)).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = [n for n in params if n != "root"]
    unknown = [k for k in options if k not in valid]
    if unknown:
        raise ValueError(
            f"source {source!r} has no option {', '.join(unknown)}; its options are: {', '.join(valid)}"
        )


def summary(args: argparse.Namespace) -> int:
    from chestxai.data.readers import read_table
    from chestxai.data.summary import format_summary, summarize

    options = parse_options(args.option)
    check_options(args.source, options)
    table = read_table(args.source, args.root, **options)
    result = summarize(table, check_files=not args.no_file_check)
    if args.json:
        json.dump(result, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(format_summary(result))
    return 0


def sources(args: argparse.Namespace) -> int:
    from chestxai.data.readers import READERS, list_readers

    for name in list_readers():
        doc = (READERS.get(name).__doc__ or "").strip().splitlines()
        print(f"{name:18s} {doc[0] if doc else ''}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="inspect datasets through their readers (summary, sources)",
        description="Inspect a dataset through its reader, from the label tables alone if images are absent.",
    )
    sub = parser.add_subparsers(dest="data_command", metavar="<data command>")
    parser.set_defaults(func=lambda a: (parser.print_help(), 2)[1])

    s = sub.add_parser(
        "summary",
        help="images, patients, label counts, boxes, masks, files on disk, splits",
        description="Read a dataset with its reader and print what it holds: images, patients, per-label "
        "positive/negative/unknown counts, boxes and masks per label, how many listed image files exist, "
        "split and view counts, and the policies the reader applied (notes).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--source", required=True, help="reader name (see `chestxai data sources`)")
    s.add_argument("--root", required=True, help="dataset folder, or its label table file")
    s.add_argument("--option", "-o", action="append", metavar="KEY=VALUE", help="reader option (repeatable)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.add_argument("--no-file-check", action="store_true", help="do not count which image files exist")
    s.set_defaults(func=summary)

    src = sub.add_parser("sources", help="list the dataset readers", description="List the dataset readers.")
    src.set_defaults(func=sources)
