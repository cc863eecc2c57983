"""What an export's README.txt and meta.json tell a user: the inputs the model expects (shape,
normalization), its classes, and which run it is, with its test accuracy."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sweeplab.data.base import Normalization, Splits

FORMULA = "x[:, c] = (raw[:, c] / scale - mean[c]) / std[c]  (one mean/std: every channel)"


@dataclass(frozen=True)
class ModelCard:
    """The facts an exported folder states about its model."""

    input_shape: tuple[int, ...]  # one example's shape
    num_classes: int | None = None
    classes: tuple[str, ...] = ()
    normalization: Normalization | None = None
    run_id: str | None = None
    run: str = ""  # the run in words: data, model, strategy, sparsity, seed
    acc_test: float | None = None  # measured on the run's test split during the export

    @classmethod
    def of(cls, row: Mapping[str, Any], splits: Splits, acc_test: float) -> ModelCard:
        """The card of a row's model, whose data loads as splits."""
        words = [f"{k}={row[k]}" for k in ("data", "model", "strategy") if row.get(k)]
        words += [f"{k}={row[k]}" for k in ("sparsity_requested", "round", "seed")
                  if row.get(k) is not None]  # fmt: skip
        return cls(
            input_shape=tuple(splits.input_shape),
            num_classes=splits.num_classes,
            classes=tuple(splits.classes),
            normalization=splits.normalization,
            run_id=str(row["run_id"]),
            run=" ".join(words),
            acc_test=acc_test,
        )

    def meta(self) -> dict[str, Any]:
        """meta.json's content."""
        norm = None
        if self.normalization is not None:
            norm = {"formula": FORMULA, **asdict(self.normalization)}
            norm["mean"], norm["std"] = list(norm["mean"]), list(norm["std"])
        return {
            "run_id": self.run_id,
            "run": self.run,
            "acc_test": self.acc_test,
            "input_shape": list(self.input_shape),
            "input_dtype": "float32",
            "normalization": norm,
            "num_classes": self.num_classes,
            "classes": list(self.classes) or None,
        }

    def meta_json(self) -> str:
        return json.dumps(self.meta(), indent=1) + "\n"

    def readme(self, name: str) -> str:
        """README.txt's text for a folder named name."""
        shape = ", ".join(str(d) for d in self.input_shape)
        lines = []
        if self.run_id is not None:
            acc = "" if self.acc_test is None else f"; test accuracy {self.acc_test:.4f}"
            lines += [*_wrap(f"Exported by sweeplab from run {self.run_id} ({self.run}{acc})."), ""]
        lines += [
            "Load with torch alone (>= 2.6), from this folder's parent:",
            "",
            f'    import sys; sys.path.insert(0, "{name}"); import load',
            f'    model = load.load("{name}")  # then: with torch.inference_mode(): model(x)',
            "",
            f"Input x: float32, shape (N, {shape}), any batch size N.",
            *_normalization_lines(self.normalization),
            *_output_lines(self.num_classes, self.classes),
            "meta.json says the same, machine-readable (normalization with full precision).",
        ]
        return "\n".join(lines) + "\n"


def _numbers(values: Sequence[float]) -> str:
    text = ", ".join(f"{v:.6g}" for v in values)
    return text if len(values) == 1 else f"[{text}]"


def _normalization_lines(norm: Normalization | None) -> list[str]:
    if norm is None:
        return [
            "Normalization: not recorded by the run's data loader; feed inputs as it made them."
        ]
    scaled = "raw" if norm.scale == 1 else f"raw / {norm.scale:g}"
    if len(norm.mean) == 1:
        formula = f"x = ({scaled} - mean) / std"
    else:
        formula = f"x[:, c] = ({scaled.replace('raw', 'raw[:, c]')} - mean[c]) / std[c]"
    return _wrap(
        f"Normalization: {formula} with mean = {_numbers(norm.mean)}, std = "
        f"{_numbers(norm.std)}, where raw = {norm.raw}. The model was trained and tested on "
        "inputs normalized so; raw inputs mispredict."
    )


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, 92, subsequent_indent="  ", break_on_hyphens=False)


def _output_lines(num_classes: int | None, classes: Sequence[str]) -> list[str]:
    if num_classes is None:
        return ["Output: logits, one per class; the prediction is their argmax over dim 1."]
    out = [f"Output: (N, {num_classes}) logits; the prediction is their argmax over dim 1."]
    if classes == tuple(str(k) for k in range(num_classes)):
        out.append(f"Classes: the index is the label itself (0 to {num_classes - 1}).")
    elif classes:
        shown = ", ".join(f"{k}={c}" for k, c in enumerate(classes[:20]))
        more = f", ... ({len(classes)} in meta.json)" if len(classes) > 20 else ""
        out += _wrap(f"Classes: {shown}{more}.")
    return out
