"""What a run was computed with: package versions, device, threads, seed and the code's git commit.

Figures move between installs (a torch upgrade or another CPU changes the last digits of an AUC),
so a number is only reproducible together with the environment that produced it. ``save_config``
records this dictionary in every run's ``config.yaml`` and the report shows it.

Everything here is best effort and never raises: a missing package reads ``"not installed"``, a
checkout without git (or an installed wheel) reads ``"unknown"``. torch is imported inside the
functions so that importing :mod:`chestxai.config` (and ``chestxai --help``) stays light.
"""

from __future__ import annotations

import logging
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: distributions whose versions decide the figures (names as pip knows them)
PACKAGES = ("chestxai", "torch", "torchvision", "timm", "numpy", "grad-cam", "scikit-learn")
UNKNOWN = "unknown"


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux; ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or UNKNOWN


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(source: Path | None = None) -> dict[str, Any]:
    """``{"commit": sha, "dirty": bool}`` of the checkout holding chestxai's source, else unknown.

    The package directory must be *tracked* by the repository: an installed copy that merely sits
    inside some other repository (a venv under a project folder) would otherwise report that
    project's commit as chestxai's.
    """
    source = Path(source) if source else Path(__file__).resolve().parent
    unknown = {"commit": UNKNOWN, "dirty": UNKNOWN}
    if not source.is_dir():
        return unknown
    tracked = _git(["ls-files", "--", "__init__.py"], source)
    commit = _git(["rev-parse", "HEAD"], source)
    if not tracked or not commit:
        return unknown
    status = _git(["status", "--porcelain", "--untracked-files=no"], source)
    return {"commit": commit, "dirty": UNKNOWN if status is None else bool(status)}


def _torch_facts(device: Any) -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"device": str(device or "cpu"), "device_name": cpu_model(), "torch_threads": UNKNOWN}
    name = str(device) if device is not None else "auto"
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    facts: dict[str, Any] = {"device": name, "torch_threads": torch.get_num_threads()}
    dev = torch.device(name)
    if dev.type == "cuda" and torch.cuda.is_available():
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        facts["device_name"] = torch.cuda.get_device_name(index)
        facts["cuda"] = torch.version.cuda or UNKNOWN
        facts["cudnn"] = torch.backends.cudnn.version() or UNKNOWN
    else:
        facts["device_name"] = cpu_model()
    return facts


def capture_environment(device: Any = None, seed: int | None = None) -> dict[str, Any]:
    """The environment as a plain, YAML-safe dict (strings, numbers, booleans only).

    ``device`` is the training device (``"auto"``/None resolves as training does: CUDA when
    available); ``seed`` is the run's seed, recorded beside the rest so one section says it all.
    """
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
    }
    try:
        env.update(_torch_facts(device))
    except Exception as exc:  # an exotic device string must not stop a run from saving its config
        log.warning("could not describe device %r: %s", device, exc)
        env.update({"device": str(device), "device_name": UNKNOWN})
    if seed is not None:
        env["seed"] = int(seed)
    env["git"] = git_state()
    return env
