"""`sweeplab run` and `sweeplab sensitivity`: check the command line, then hand it to Hydra
unchanged.

What Hydra itself refuses (an override it cannot parse, a key the config lacks, an
interpolation it cannot resolve) becomes one `sweeplab: error:` line too, exit 2.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from sweeplab.configs import check_choices
from sweeplab.errors import SweeplabError
from sweeplab.results.store import check_writable

GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"
FOLDERS = {"paths.results_dir": "results", "paths.cache_dir": "results/cache"}


def parse(overrides: list[str]) -> dict[str, list[Any]]:
    """Parse every override as Hydra will; returns {key: values} (a sweep gives several).

    Raises SweeplabError naming an override Hydra's grammar refuses.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    found: dict[str, list[Any]] = {}
    for arg in overrides:
        if arg.startswith("-") or ("=" not in arg and not arg.startswith("~")):
            continue  # Hydra's flags and their values (-m, --cfg job), not overrides
        try:
            override = parser.parse_overrides([arg])[0]
        except OverrideParseException as e:
            reason = str(e).splitlines()[0]
            raise SweeplabError(
                f"cannot parse the override {arg} ({reason}); quote values with spaces or "
                f"special characters, e.g. key='a b' (grammar: {GRAMMAR})"
            ) from None
        sweep = override.is_sweep_override()
        values = list(override.sweep_iterator()) if sweep else [override.value()]
        found[override.key_or_group] = values
    return found


def _standalone(value: str) -> str | None:
    """value with its interpolations resolved where that needs no config (oc.env), else None."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return str(OmegaConf.to_container(OmegaConf.create({"v": value}), resolve=True)["v"])
    except OmegaConfBaseException:
        return None  # it refers to the config: Hydra resolves it, and names it if it cannot


def check_folders(parsed: dict[str, list[Any]]) -> None:
    """paths.results_dir / paths.cache_dir from the command line: a folder name each, and
    the results dir writable (Hydra creates its own folder there before any task runs)."""
    for key, example in FOLDERS.items():
        for value in parsed.get(key, []):
            if not isinstance(value, str) or not value.strip():
                shown = "null" if value is None else repr(value)
                raise SweeplabError(
                    f"{key}={shown} is not a folder (an empty one means the filesystem "
                    f"root); give one, e.g. {key}={example}"
                )
            if key == "paths.results_dir":
                folder = _standalone(value) if "${" in value else value
                if folder is not None:
                    check_writable(folder)
    if "paths.results_dir" not in parsed:
        check_writable("results")


def hydra_error(e: Exception, overrides: list[str]) -> str:
    """One line for an error Hydra raises while composing the config, naming the override."""
    text = str(e)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines[0].startswith("Could not override") and e.__cause__ is not None:
        key = lines[0].split("'")[1]
        arg = next((a for a in overrides if a.lstrip("+~").split("=", 1)[0] == key), key)
        return (
            f"{arg}: the config has no key {key} ({str(e.__cause__).splitlines()[0]}); check "
            f"the spelling, or add a key the target takes with +{arg}"
        )
    if "Available options" in text:  # a group choice that no config file matches
        listed = [c.strip() for c in text.split("Available options")[1].splitlines()[1:]]
        choices = [c for c in listed if c and not c.startswith(("Config search", "provider="))]
        return f"{lines[0]}; choose one of: {', '.join(choices)}"
    full_key = getattr(e, "full_key", None)
    if full_key:
        interpolated = [a for a in overrides if "${" in a] or ["the config"]
        return (
            f"{full_key} cannot be resolved ({lines[0]}); fix the interpolation in "
            f"{', '.join(interpolated)}"
        )
    return "; ".join(line.rstrip(".") for line in lines[:3])


def _composing(e: BaseException) -> bool:
    """Whether Hydra raised e composing the config (not a run's own error passing through)."""
    from hydra.errors import ConfigCompositionException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(e, (ConfigCompositionException, OverrideParseException)):
        return True
    key = str(getattr(e, "full_key", "") or "")
    return isinstance(e, OmegaConfBaseException) and key.startswith("hydra.")


def complete(argv: list[str]) -> int:
    """Hydra's shell completion for `sweeplab run`: the script `sweeplab run -sc install=bash`
    prints calls `sweeplab -sc query=bash` with COMP_LINE `sweeplab run ...`; Hydra reads the
    line after the program's name, so the `run` goes too."""
    line = os.environ.get("COMP_LINE")
    if line:
        stripped = re.sub(r"^(\S+\s+)run(\s|$)", r"\1", line)
        point = int(os.environ.get("COMP_POINT", len(line)))
        os.environ["COMP_POINT"] = str(max(0, point - (len(line) - len(stripped))))
        os.environ["COMP_LINE"] = stripped
    return launch(argv)


def _working_folder_importable() -> None:
    """A user's model module in the working folder imports (model._target_=tinynet.TinyNet),
    as under `python -m`, here and in launcher workers (they inherit PYTHONPATH)."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if cwd not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [cwd, *paths] if p)


def launch(overrides: list[str], command: str = "run") -> int:
    """Run one config or a sweep with Hydra; returns the exit code (130 after Ctrl-C).

    Args:
        overrides: `sweeplab run`'s arguments, e.g. ["-m", "pruning.sparsity=0.5,0.9"].
        command: "run" (engine.task) or "sensitivity" (engine.sensitivity_task): the task each
            composed config goes to.
    """
    check_choices(overrides)
    check_folders(parse(overrides))
    if command == "sensitivity":
        from sweeplab.engine.sensitivity_task import main as hydra_main
    else:
        from sweeplab.engine.task import main as hydra_main

    sys.argv = [f"sweeplab {command}", *overrides]
    _working_folder_importable()
    full_error = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its errors instead of printing them
    try:
        hydra_main()
    except KeyboardInterrupt:
        print(
            "sweeplab: interrupted; finished runs are kept, the same command resumes",
            file=sys.stderr,
        )
        return 130
    except Exception as e:
        if isinstance(e.__cause__, SweeplabError):  # a plugin's refusal (hydra.launcher.*)
            raise e.__cause__ from None
        if _composing(e):
            raise SweeplabError(hydra_error(e, overrides)) from None
        raise
    finally:
        if full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = full_error
    return 0
