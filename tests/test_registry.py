"""The one registry idiom: decorator registration, helpful unknown-name errors, and packages whose
every module is imported on first lookup (so a new entry is a new file and nothing else)."""

from __future__ import annotations

import sys
import textwrap

import pytest

from chestxai.registry import Registry, UnknownNameError


def test_register_lookup_and_errors():
    reg: Registry[int] = Registry("widget")
    reg.register("alpha")(1)
    reg.add("beta", 2)
    assert reg.get("alpha") == 1 and reg.names() == ["alpha", "beta"] and "beta" in reg and len(reg) == 2
    with pytest.raises(UnknownNameError, match="did you mean 'alpha'.*Valid widgets: alpha, beta"):
        reg.get("alpah")
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("alpha", 3)


def test_a_package_registry_imports_every_module_on_first_lookup(tmp_path, monkeypatch):
    pkg = tmp_path / "plugpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from chestxai.registry import Registry\nTHINGS = Registry('thing', package=__name__)\n"
    )
    for name in ("one", "two"):
        (pkg / f"{name}.py").write_text(
            textwrap.dedent(f"""
                from plugpkg import THINGS

                @THINGS.register({name!r})
                def build():
                    return {name!r}
            """)
        )
    (pkg / "_private.py").write_text("raise RuntimeError('helpers starting with _ are not plugins')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import plugpkg

        assert "plugpkg.one" not in sys.modules  # nothing imported before a lookup
        assert plugpkg.THINGS.names() == ["one", "two"]
        assert plugpkg.THINGS.get("two")() == "two"
    finally:
        for mod in [m for m in sys.modules if m == "plugpkg" or m.startswith("plugpkg.")]:
            del sys.modules[mod]


def test_a_broken_plugin_fails_every_lookup_not_only_the_first(tmp_path, monkeypatch):
    pkg = tmp_path / "brokenpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from chestxai.registry import Registry\nTHINGS = Registry('thing', package=__name__)\n"
    )
    (pkg / "bad.py").write_text("raise ImportError('missing optional dependency')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import brokenpkg

        for _ in range(2):
            with pytest.raises(ImportError, match="optional dependency"):
                brokenpkg.THINGS.names()
    finally:
        for mod in [m for m in sys.modules if m == "brokenpkg" or m.startswith("brokenpkg.")]:
            del sys.modules[mod]


def test_did_you_mean_names_the_closest_choice_or_nothing():
    from chestxai.registry import did_you_mean

    assert did_you_mean("resnt18", ["resnet18", "densenet121"]) == " (did you mean 'resnet18'?)"
    assert did_you_mean("zzz", ["resnet18", "densenet121"]) == ""
