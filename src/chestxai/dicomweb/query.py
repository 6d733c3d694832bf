"""QIDO-RS: the instances of a study, a series, or of every study since a date, chosen by modality.

The query walks series first: Modality is a series attribute (DICOM PS3.18 returns it for every
series; an instance-level answer need not), so the modality filter is decided once per series and
a series that is not a chest radiograph - the SR and Parametric Map series an earlier
``dicomweb --store`` put into the study among them - is listed as skipped without fetching its
instances. QIDO has no OR on one attribute, so ``--modality CR,DX`` is matched here, not on the
server.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from pydicom.uid import RE_VALID_UID

from chestxai.dicomweb.connection import Server
from chestxai.errors import UserError

#: the modalities predict accepts without --force-modality (computed and digital radiography)
DEFAULT_MODALITIES = ("CR", "DX")

STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"
MODALITY = "00080060"


@dataclass(frozen=True)
class InstanceRef:
    """One instance the server holds, by its three UIDs."""

    study: str
    series: str
    sop: str
    modality: str = ""

    def path(self) -> str:
        """The WADO-RS path below the DICOMweb root."""
        return f"studies/{self.study}/series/{self.series}/instances/{self.sop}"

    def url(self, root: str) -> str:
        """The instance's WADO-RS URL: how the CSVs and the ledger name it."""
        return f"{root.rstrip('/')}/{self.path()}"


@dataclass
class Selection:
    """What the query found: the instances to predict, and the series left out with the reason."""

    instances: list[InstanceRef]
    skipped: list[dict[str, str]]  # {"series", "modality", "reason"}


def check_uid(uid: str, flag: str) -> str:
    if len(uid) > 64 or not RE_VALID_UID.match(uid):
        raise UserError(f"{flag} {uid!r} is not a DICOM UID (digits and dots, at most 64 characters)")
    return uid


def parse_since(text: str) -> str:
    """``--since 2024-05-01`` (or ``20240501``) -> the QIDO range ``20240501-`` (that day and after)."""
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            day = _dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        return f"{day:%Y%m%d}-"
    raise UserError(f"--since {text!r} is not a date; write it as YYYY-MM-DD (e.g. 2024-05-01)")


def parse_modalities(text: str) -> tuple[str, ...]:
    """``--modality CR,DX`` -> ("CR", "DX"): DICOM modality codes (upper case, at most 16 characters)."""
    codes = tuple(dict.fromkeys(c.strip().upper() for c in text.split(",") if c.strip()))
    bad = [c for c in codes if len(c) > 16 or not c.replace("_", "").isalnum()]
    if not codes or bad:
        raise UserError(f"--modality {text!r}: give modality codes separated by commas, e.g. CR,DX")
    return codes


def value(item: dict[str, Any], tag: str) -> str:
    """The first value of ``tag`` in a DICOM JSON item ('' when absent)."""
    values = (item.get(tag) or {}).get("Value") or [""]
    return str(values[0])


def find_instances(
    server: Server,
    study: str | None = None,
    series: str | None = None,
    since: str | None = None,
    modalities: tuple[str, ...] = DEFAULT_MODALITIES,
) -> Selection:
    """The instances of ``study``, of ``series``, or of every study from the QIDO date range ``since``
    (exactly one of them), in the series whose Modality is one of ``modalities``."""
    if sum(x is not None for x in (study, series, since)) != 1:
        raise UserError("give exactly one of --study UID, --series UID or --since DATE")
    if series is not None:
        found = server.call(
            f"search for series {series}",
            server.client.search_for_series,
            search_filters={"SeriesInstanceUID": series},
            fields=["Modality", "StudyInstanceUID"],
        )
        if not found:
            raise UserError(f"{server.url} has no series {series}; check the UID (--series)")
    else:
        studies = [study] if study is not None else _studies_since(server, since)
        found = []
        for uid in studies:
            rows = server.call(
                f"search for series of study {uid}",
                server.client.search_for_series,
                study_instance_uid=uid,
                fields=["Modality"],
                get_remaining=True,
            )
            found += [{STUDY_UID: {"Value": [uid]}, **row} for row in rows]
        if study is not None and not found:
            raise UserError(f"{server.url} has no series in study {study}; check the UID (--study)")
    instances, skipped = [], []
    for row in found:
        study_uid, series_uid, modality = value(row, STUDY_UID), value(row, SERIES_UID), value(row, MODALITY)
        if modality.upper() not in modalities:
            shown = modality or "none"
            skipped.append(
                {
                    "series": series_uid,
                    "modality": modality,
                    "reason": f"modality {shown} is not one of --modality {','.join(modalities)}",
                }
            )
            continue
        rows = server.call(
            f"search for instances of series {series_uid}",
            server.client.search_for_instances,
            study_instance_uid=study_uid,
            series_instance_uid=series_uid,
            get_remaining=True,
        )
        instances += [InstanceRef(study_uid, series_uid, value(r, SOP_UID), modality.upper()) for r in rows]
    return Selection(instances, skipped)


def _studies_since(server: Server, since: str | None) -> list[str]:
    rows = server.call(
        f"search for studies since {since}",
        server.client.search_for_studies,
        search_filters={"StudyDate": since},
        get_remaining=True,
    )
    return [value(r, STUDY_UID) for r in rows if value(r, STUDY_UID)]
