"""What the user sees when a DICOMweb server cannot be reached or refuses: one line with the fix;
retries bounded and only where asking again can help; a STOW refused for one object of two is
reported for that object. A scripted local server plays the parts Orthanc will not play on demand."""

from __future__ import annotations

import csv

import pydicom
import pytest
from dicomweb_fakes import fake_server, stow_answer, tiny_dicom
from orthanc_server import free_port

from chestxai.cli import main
from chestxai.dicomweb.connection import (
    DicomwebError,
    Server,
    ServerSettings,
    credentials,
    open_session,
)
from chestxai.dicomweb.query import find_instances, parse_modalities, parse_since
from chestxai.dicomweb.roundtrip import FAILED, Ledger, store_all
from chestxai.errors import UserError

JSON = "application/dicom+json"
NO_CREDENTIALS = {}


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch):
    for key in ("CHESTXAI_DICOMWEB_TOKEN", "CHESTXAI_DICOMWEB_USER", "CHESTXAI_DICOMWEB_PASSWORD"):
        monkeypatch.delenv(key, raising=False)


def _cli(run, url, tmp_path, *extra) -> list[str]:
    argv = ["dicomweb", str(run), "--url", url, "--study", "1.2.3.4", "--out", str(tmp_path / "out")]
    return [*argv, "--no-progress", *extra]


def test_an_unreachable_server_is_one_line(tiny_run, tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/dicom-web"  # nothing listens there
    assert main(_cli(tiny_run, url, tmp_path, "--retries", "0")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("chestxai dicomweb: error: cannot reach http://127.0.0.1:")
    assert "connection refused, 1 try" in err and "check --url and that the server is running" in err


def test_401_is_one_line_naming_the_variables(tiny_run, tmp_path, capsys):
    with fake_server([(401, {"Message": "Unauthorized"}, "application/json")]) as (url, script):
        assert main(_cli(tiny_run, url, tmp_path, "--retries", "3")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "401 Unauthorized" in err
    assert (
        "set CHESTXAI_DICOMWEB_TOKEN (bearer) or CHESTXAI_DICOMWEB_USER and CHESTXAI_DICOMWEB_PASSWORD" in err
    )
    assert len(script.requests) == 1  # a refusal is final: not asked again
    assert not (tmp_path / "out" / "dicomweb.csv").exists()


@pytest.mark.parametrize(("status", "words"), [(403, "not allowed"), (404, "is the DICOMweb root")])
def test_403_and_404_say_which_and_the_fix(status, words):
    refused = pytest.raises(DicomwebError, match=f"answered {status} .*{words}")
    with fake_server([(status, b"", "text/plain")]) as (url, script), refused:
        find_instances(Server(ServerSettings(url, retries=3, backoff=0)), study="1.2.3")
    assert len(script.requests) == 1


def test_retries_are_bounded_and_back_off():
    waits: list[float] = []
    answer = (503, {"Message": "database busy"}, "application/json")
    with fake_server([answer]) as (url, script):
        server = Server(ServerSettings(url, retries=3, backoff=0.5), sleep=waits.append)
        with pytest.raises(DicomwebError, match="503 Service Unavailable .*database busy \\(4 tries\\)"):
            find_instances(server, study="1.2.3")
    assert len(script.requests) == 4 and server.attempts == 4
    assert waits == [0.5, 1.0, 2.0]  # doubling, none after the last try


def test_a_retry_that_succeeds_goes_on():
    waits: list[float] = []
    empty = pytest.raises(UserError, match="has no series in study 1.2.3")  # answered, and empty
    with fake_server([(502, b"bad gateway", "text/plain"), (200, [], JSON)]) as (url, script), empty:
        find_instances(Server(ServerSettings(url, retries=1, backoff=0), sleep=waits.append), study="1.2.3")
    assert len(script.requests) == 2 and waits == [0]


def test_connection_errors_are_retried_too():
    waits: list[float] = []
    server = Server(
        ServerSettings(f"http://127.0.0.1:{free_port()}", retries=2, backoff=0), sleep=waits.append
    )
    with pytest.raises(DicomwebError, match="connection refused, 3 tries"):
        find_instances(server, study="1.2.3")
    assert server.attempts == 3


def test_a_stow_refused_for_one_object_is_reported_for_that_object(tmp_path):
    sr, pmap, pr = (tiny_dicom(tmp_path / f"{k}.dcm") for k in ("sr", "pmap", "pr"))
    uid = {k: pydicom.dcmread(p).SOPInstanceUID for k, p in (("sr", sr), ("pmap", pmap), ("pr", pr))}
    answers = [
        (200, stow_answer(uid["sr"]), JSON),  # stored
        (409, stow_answer(uid["pmap"], failed=0xA700), JSON),  # refused: out of resources
        (200, stow_answer(uid["pr"], failed=0xC000), JSON),  # 200, but the object is in FailedSOPSequence
    ]
    ledger = Ledger()
    with fake_server(answers) as (url, script):
        server = Server(ServerSettings(url, retries=2, backoff=0))
        written = [{"source": "a.dcm", "sr": str(sr), "pmap": str(pmap), "pr": str(pr)}]
        store_all(server, written, {}, ledger, progress=False)
    assert [r["method"] for r in script.requests] == ["POST"] * 3  # one request per object, 409 not retried
    got = {r["object"]: (r["uid"], r["status"]) for r in ledger.rows}
    assert got == {"sr": (uid["sr"], "done"), "pmap": (uid["pmap"], FAILED), "pr": (uid["pr"], FAILED)}
    reasons = {r["object"]: r["reason"] for r in ledger.rows}
    assert "409 Conflict" in reasons["pmap"] and "0xA700" in reasons["pmap"]
    assert "0xC000 cannot understand" in reasons["pr"]
    assert "2 failed:" in ledger.table()
    ledger.write(tmp_path / "ledger.csv")
    with open(tmp_path / "ledger.csv", newline="") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["done", FAILED, FAILED]


def test_credentials_come_from_the_environment():
    assert credentials(NO_CREDENTIALS)[0] is None
    auth, what = credentials({"CHESTXAI_DICOMWEB_USER": "u", "CHESTXAI_DICOMWEB_PASSWORD": "p"})
    assert auth == ("u", "p") and "basic" in what
    with pytest.raises(UserError, match="CHESTXAI_DICOMWEB_PASSWORD is not set"):
        credentials({"CHESTXAI_DICOMWEB_USER": "u"})
    with pytest.raises(UserError, match="not both"):
        credentials({"CHESTXAI_DICOMWEB_TOKEN": "t", "CHESTXAI_DICOMWEB_USER": "u"})
    with fake_server([(200, [], JSON)]) as (url, script):
        settings = ServerSettings(url, retries=0)
        session = open_session(settings, {"CHESTXAI_DICOMWEB_TOKEN": "abc.def"})
        with pytest.raises(UserError, match="has no series"):
            find_instances(Server(settings, session), study="1.2.3")
    assert script.requests[0]["headers"]["Authorization"] == "Bearer abc.def"
    assert session.verify is True  # TLS verified unless --ca-bundle names a CA file


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--study", "not-a-uid"], "--study 'not-a-uid' is not a DICOM UID"),
        (["--since", "May 1st"], "--since 'May 1st' is not a date"),
        (["--study", "1.2.3", "--modality", "C R"], "--modality 'C R'"),
        (["--study", "1.2.3", "--series", "1.2.4"], "not allowed with argument"),
    ],
)
def test_bad_flags_are_usage_errors(tiny_run, flags, words, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["dicomweb", str(tiny_run), "--url", "http://127.0.0.1:1/dicom-web", *flags])
    assert caught.value.code == 2 and words in capsys.readouterr().err


def test_settings_are_checked_before_any_request(tmp_path):
    with pytest.raises(UserError, match="is not an http\\(s\\) URL"):
        Server(ServerSettings("localhost:8042/dicom-web"))
    with pytest.raises(UserError, match="--ca-bundle .*no such file"):
        Server(ServerSettings("https://pacs.example.org/dicom-web", ca_bundle=tmp_path / "ca.pem"))
    with pytest.raises(UserError, match="--retries must be in"):
        Server(ServerSettings("https://pacs.example.org/dicom-web", retries=-1))
    assert parse_since("2024-05-01") == parse_since("20240501") == "20240501-"
    assert parse_modalities("cr, DX,cr") == ("CR", "DX")
