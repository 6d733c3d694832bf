"""``chestxai data ...``: look at a dataset through its reader before preparing it.

``chestxai data summary --source nih --root ../shared/data/tables/Data_Entry_2017.csv.zip``
prints images, patients, per-label positive/negative/unknown counts, boxes, masks, how many
listed image files exist, splits and the policies the reader applied. It needs only the label
tables; images are counted when present.
"""

from __future__ import annotations

import argparse
import json
import sys

from chestxai.commands._common import NoSwitch, add_common_flags
from chestxai.commands._options import HELP, reader_options

EPILOG = """\
sources and their main options (--option key=value, repeatable):
  folder            class-per-folder tree (Kermany, COVID-19 Radiography): pneumonia_subtypes=true,
                    positive=CLASS (binary), classes=A,B, masks=false; a NORMAL/other pair of
                    folders is binary (the other class), multiclass=true keeps two classes
  csv               any manifest: path_col=, label_col= [sep=| none_label=...] or label_cols=A,B,C,
                    positive=VALUE, patient_col=, split_col=, view_col=, id_col=, image_root=, manifest=,
                    sex_col=, age_col=, site_col= (demographics), allow_outside_root=true (read paths
                    outside the manifest's folder)
  nih               ChestX-ray14: labels_file=, bbox_file=, include_no_finding=true, official_split=false
  chexpert          views=frontal|lateral|all, uncertainty=ones|zeros|ignore
  siim              SIIM-ACR pneumothorax: labels_file=, read_headers=false
  rsna              RSNA pneumonia: labels_file=, read_headers=false
  covid-collection  label_mode=finding|leaf|multilabel, positive=COVID-19, masks=false
  medmnist          flag=pneumoniamnist, size=28, download_missing=false

values are read as the type the reader declares: true/false/yes/no for switches, numbers, text
(kept as typed: id_col=007 stays 007), lists as A,B or [A, B]; an unknown option name is an error
that lists the reader's options.
examples:
  chestxai data summary --source nih --root ../shared/data/nih-bbox
  chestxai data summary --source chexpert --root CheXpert-v1.0-small --option uncertainty=ones --json
  chestxai data summary --source folder --root chest_xray --option pneumonia_subtypes=true
"""


def summary(args: argparse.Namespace) -> int:
    from chestxai.data.readers import read_table
    from chestxai.data.summary import format_summary, summarize

    options = reader_options(args.source, args.option)
    table = read_table(args.source, args.root, **options)
    result = summarize(table, check_files=not args.no_file_check)
    if args.json:
        json.dump(result, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(format_summary(result))
    return 0


def sources(args: argparse.Namespace) -> int:
    """Every reader's layout and options; with names, those readers' whole description."""
    from chestxai.data.reader_help import format_reader_help, reader_help
    from chestxai.data.readers import list_readers

    names = args.names or list_readers()
    print("\n\n".join(format_reader_help(reader_help(name), full=bool(args.names)) for name in names))
    if not args.names:
        print("\nmore on one source (label rules, policies, options): chestxai data sources NAME")
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
    s.add_argument("--option", "-o", action="append", metavar="KEY=VALUE", help=HELP)
    s.add_argument(
        "--json", action=argparse.BooleanOptionalAction, default=False, help="print the summary as JSON"
    )
    s.add_argument(
        "--file-check", dest="no_file_check", action=NoSwitch, help="count which image files exist"
    )
    add_common_flags(s, device=False)  # --progress/--no-progress like every command (it draws no bar)
    s.set_defaults(func=summary)

    src = sub.add_parser(
        "sources",
        help="the dataset readers: the layout each expects and its options",
        description="List the dataset readers with the files each expects under --root and its --option "
        "names, defaults and types; name one or more to print their full description.",
    )
    src.add_argument(
        "names", nargs="*", metavar="NAME", help="readers to describe in full (default: all, briefly)"
    )
    add_common_flags(src, device=False)
    src.set_defaults(func=sources)
