"""Where configs live and what they offer: conf/, `group=choice` checks, experiment files.

Shared by the command line and `sweeplab reproduce`; imports neither torch nor Hydra at module
level.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sweeplab.errors import SweeplabError

# The config tree that ships with the project (the repository's conf/).
CONF = Path(__file__).resolve().parent.parent / "conf"
_SWEEP_SYNTAX = ("(", "[", "*", "$", "{")


def check_choices(overrides: list[str], conf: Path = CONF) -> None:
    """Reject `group=name` overrides naming a config file that does not exist.

    Hydra would say the same in several lines; this says it in one and lists the choices.
    Sweep syntax beyond comma lists (ranges, globs, interpolations) is left to Hydra.
    """
    roots = [conf, *search_roots(overrides)]
    for arg in overrides:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.lstrip("+~").split("=", 1)
        groups = [root / key for root in roots if (root / key).is_dir()]
        hydra_group = key.startswith("hydra/")  # its choices come from plugins as well
        if "." in key or not (groups or hydra_group) or any(c in value for c in _SWEEP_SYNTAX):
            continue
        choices = sorted({p.stem for group in groups for p in group.glob("*.yaml")})
        if hydra_group:
            choices = sorted({*choices, *plugin_choices(key)})
            if not choices:
                continue  # not a group Hydra knows: Hydra names it
        for name in value.split(","):
            if name and name != "null" and name not in choices:
                raise SweeplabError(
                    f"unknown {key} {name!r}; choose one of: {', '.join(choices)} "
                    f"(or add conf/{key}/{name}.yaml)"
                )


def search_roots(overrides: Iterable[str]) -> list[Path]:
    """Config folders a `hydra.searchpath=[file://DIR,...]` override adds (pkg:// ones skipped)."""
    roots: list[Path] = []
    for arg in overrides:
        key, _, value = arg.lstrip("+").partition("=")
        if key != "hydra.searchpath":
            continue
        for entry in value.strip().strip("[]").split(","):
            entry = entry.strip().strip("'\"")
            if entry and (entry.startswith("file://") or "://" not in entry):
                roots.append(Path(entry.removeprefix("file://")))
    return roots


def plugin_choices(group: str) -> list[str]:
    """Config names Hydra's installed plugins register in `group` (joblib, optuna, basic...)."""
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    Plugins.instance()  # importing the plugins fills the ConfigStore
    try:
        names = ConfigStore.instance().list(group)
    except OSError:
        return []
    return [n.removesuffix(".yaml") for n in names if n.endswith(".yaml")]  # not subgroups


def experiment_files(overrides: Iterable[str] = ()) -> dict[str, Path]:
    """Experiment name -> file, from conf/experiment then any `hydra.searchpath` roots."""
    files: dict[str, Path] = {}
    for root in [CONF, *search_roots(overrides)]:
        for path in sorted((root / "experiment").glob("*.yaml")):
            files.setdefault(path.stem, path)
    return files
