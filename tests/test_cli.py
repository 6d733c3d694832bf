"""CLI-wide behaviour: every --help works, Ctrl-C and refused pickles end in one line, common flags."""

from __future__ import annotations

import argparse
import pickle

import pytest

from chestxai import cli


def _subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                out += [(*prefix, name), *_subcommands(child, (*prefix, name))]
    return out


COMMANDS = _subcommands(cli.build_parser())


def _parser_of(*names: str) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    for name in names:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def test_the_registry_holds_the_pipeline() -> None:
    top = {c[0] for c in COMMANDS}
    assert {
        "train",
        "quickstart",
        "evaluate",
        "explain",
        "report",
        "prepare",
        "compare",
        "ensemble",
        "models",
    } <= top
    assert not any(name.startswith("_") for name in top)  # helper modules are not commands


@pytest.mark.parametrize("argv", [(), *COMMANDS], ids=lambda c: " ".join(c) or "chestxai")
def test_help_exits_zero(argv, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([*argv, "--help"])
    assert info.value.code == 0
    assert "usage: chestxai" in capsys.readouterr().out


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_verbose_is_accepted_after_every_command(argv) -> None:
    assert "--verbose" in _parser_of(*argv)._option_string_actions


def test_verbose_counts_before_and_after_the_command() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["-vv", "models"]).verbose == 2
    assert parser.parse_args(["models", "-v"]).verbose == 1
    assert parser.parse_args(["models"]).verbose == 0


@pytest.mark.parametrize("command", ["train", "quickstart", "evaluate", "explain", "prepare"])
def test_common_flags_are_the_same_everywhere(command) -> None:
    """``explain --no-progress`` (issue 9, weaker) and the same --device on every command."""
    options = _parser_of(command)._option_string_actions
    assert "--no-progress" in options
    if command != "prepare":
        assert options["--device"].help.startswith("auto | cpu | cuda | cuda:N")


def _is_leaf(argv: tuple[str, ...]) -> bool:
    return not any(isinstance(a, argparse._SubParsersAction) for a in _parser_of(*argv)._actions)


@pytest.mark.parametrize("argv", [c for c in COMMANDS if _is_leaf(c)], ids=" ".join)
def test_every_command_takes_progress_and_no_progress(argv) -> None:
    """Issue 20 item 10i: the README says every command takes ``--no-progress``; ``export`` and
    ``ensemble`` (and ``models``, ``report``, ``data ...``) rejected it."""
    options = _parser_of(*argv)._option_string_actions
    assert "--progress" in options and "--no-progress" in options
    assert options["--no-progress"].dest == "no_progress"  # the one spelling every command reads


def test_export_and_ensemble_parse_no_progress() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["export", "runs/r", "--no-progress"]).no_progress is True
    assert (
        parser.parse_args(["ensemble", "runs/a", "runs/b", "--out", "o", "--no-progress"]).no_progress is True
    )
    assert parser.parse_args(["ensemble", "runs/a", "runs/b", "--out", "o"]).no_progress is False


def test_every_device_flag_defaults_to_auto() -> None:
    """Issue 20 item 10c: ``explain`` defaulted to ``--device cpu`` where every other command used
    ``auto``. None is "the recipe's" (train, experiment), whose own default is ``auto``."""
    from chestxai.config import RunConfig

    assert RunConfig().train.device == "auto"
    defaults = {
        " ".join(argv): _parser_of(*argv)._option_string_actions["--device"].default
        for argv in COMMANDS
        if "--device" in _parser_of(*argv)._option_string_actions
    }
    assert "explain" in defaults
    assert {name: d for name, d in defaults.items() if d not in ("auto", None)} == {}


def _fail_with(monkeypatch, exc: BaseException) -> None:
    import chestxai.commands.models as models

    def run(args):
        raise exc

    monkeypatch.setattr(models, "run", run)


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys) -> None:
    _fail_with(monkeypatch, KeyboardInterrupt())
    assert cli.main(["models"]) == 130
    err = capsys.readouterr().err.strip()
    assert err == "chestxai models: interrupted (Ctrl-C)"


class _Evil:
    def __reduce__(self):
        import os

        return (os.getcwd, ())  # harmless, but not something weights_only may call


def test_a_refused_pickle_is_one_line(monkeypatch, capsys, tmp_path) -> None:
    import torch

    path = tmp_path / "checkpoint.pt"
    torch.save({"weights": _Evil()}, path)

    import chestxai.commands.models as models

    monkeypatch.setattr(models, "run", lambda args: torch.load(path, weights_only=True))
    assert cli.main(["models"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("chestxai models: error: not a chestxai checkpoint, refused to unpickle")
    assert "\n" not in err and "Traceback" not in err


def test_unpickling_error_is_mapped_and_other_runtime_errors_are_not(monkeypatch, capsys) -> None:
    _fail_with(monkeypatch, pickle.UnpicklingError("invalid load key, 'x'."))
    assert cli.main(["models"]) == 2
    assert "refused to unpickle (invalid load key" in capsys.readouterr().err
    _fail_with(monkeypatch, RuntimeError("CUDA out of memory"))
    with pytest.raises(RuntimeError, match="out of memory"):
        cli.main(["models"])


def test_user_errors_stay_one_line(monkeypatch, capsys) -> None:
    _fail_with(monkeypatch, KeyError("unknown model 'resnet7'; choose one of resnet18, ..."))
    assert cli.main(["models"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "chestxai models: error: unknown model 'resnet7'; choose one of resnet18, ..."
    )


def test_a_user_error_is_one_line_and_a_programming_error_keeps_its_traceback(monkeypatch, capsys) -> None:
    """Issue 19: UserError (a ChestXaiError and a ValueError) -> one line, exit 2; a bug -> traceback."""
    from chestxai.errors import ChestXaiError, UserError

    assert issubclass(UserError, ChestXaiError) and issubclass(UserError, ValueError)
    _fail_with(monkeypatch, UserError("--split 'tset' is not a split; use train, val or test"))
    assert cli.main(["models"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "chestxai models: error: --split 'tset' is not a split; use train, val or test"
    assert "Traceback" not in err
    for bug in (TypeError("run() got an unexpected keyword 'x'"), AttributeError("'NoneType' has no 'eval'")):
        _fail_with(monkeypatch, bug)
        with pytest.raises(type(bug)):
            cli.main(["models"])


def test_config_errors_are_user_errors() -> None:
    from chestxai.config import load_config
    from chestxai.errors import UserError

    with pytest.raises(UserError, match="train.lr must be in"):
        load_config(None, ["train.lr=-1"])


def test_building_the_parser_loads_no_heavy_module() -> None:
    """The flags are generated from settings dataclasses; reading them must not import torch, so
    ``chestxai --help`` stays fast (0.2 s rather than 3 s)."""
    import subprocess
    import sys

    code = (
        "import sys; from chestxai.cli import build_parser; build_parser(); "
        "print([m for m in ('torch', 'numpy', 'pandas', 'scipy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- one flag grammar across every command (issue 19) ---------------------------------------------
def _options() -> list[tuple[str, argparse.Action]]:
    """(command path, action) for every option and positional of every (sub)command."""
    out = []
    for argv in COMMANDS:
        for action in _parser_of(*argv)._actions:
            if action.help != argparse.SUPPRESS and not isinstance(action, argparse._SubParsersAction):
                out.append((" ".join(argv), action))
    return out


def _kind(action: argparse.Action) -> str:
    """What a flag takes: a switch, a count (-v), or a value of one type (by its parser's return type)."""
    if isinstance(action, argparse.BooleanOptionalAction):
        return "switch"
    if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._CountAction)):
        return type(action).__name__
    many = "..." if action.nargs in ("+", "*") else ""  # words after one flag (a repeatable flag is one)
    kind = action.type
    if kind is None or kind is str:
        return f"text{many}"
    if kind in (int, float):
        return f"{kind.__name__}{many}"
    returned = str(getattr(kind, "__annotations__", {}).get("return", "text"))
    return {"str": "text"}.get(returned, returned) + many


def test_every_switch_is_an_x_no_x_pair() -> None:
    lone = [
        f"{cmd} {a.option_strings}"
        for cmd, a in _options()
        if a.nargs == 0
        and not isinstance(a, (argparse.BooleanOptionalAction, argparse._HelpAction, argparse._VersionAction))
        and not isinstance(a, argparse._CountAction)
    ]
    assert lone == [], "use argparse.BooleanOptionalAction (or _common.NoSwitch)"


def test_a_flag_name_has_one_type_on_every_command() -> None:
    kinds: dict[str, dict[str, list[str]]] = {}
    for cmd, action in _options():
        for flag in action.option_strings:
            kinds.setdefault(flag, {}).setdefault(_kind(action), []).append(cmd)
    mixed = {flag: by_kind for flag, by_kind in kinds.items() if len(by_kind) > 1}
    assert mixed == {}
    assert set(kinds["--sanity"]) == {"switch"} and set(kinds["--explain"]) == {"text"}
    assert set(kinds["--layers"]) == {"text..."}  # --layers a b c (explain also takes a,b,c)


def test_the_run_a_command_reads_is_its_positional_RUN() -> None:
    for cmd, action in _options():
        if not action.option_strings and "run" in action.dest:
            assert action.metavar == "RUN", f"{cmd} {action.dest}"
        # an existing run is never an option; --run-dir names the folder of a run being created
        if "--run-dir" in action.option_strings:
            assert cmd in ("train", "synth train", "tune", "quickstart"), cmd


def test_n_boot_has_one_default() -> None:
    from chestxai.commands._common import N_BOOT

    defaults = {cmd: a.default for cmd, a in _options() if "--n-boot" in a.option_strings}
    assert len(defaults) >= 4 and set(defaults.values()) == {N_BOOT}, defaults
