"""Export a pruned model to a folder a user loads with torch alone (no sweeplab).

The folder holds:
model.pt2   the architecture as a torch.export program (traced in eval mode, any batch size);
            with its weights when sparse=False (a structurally pruned model is simply smaller),
            without them (meta tensors) when sparse=True;
weights.pt  sparse=True only: every tensor in the encoding costs.encode_choice picks
            (dense, bitmask or index), so its payload is exactly costs.size_sparse_bytes;
load.py     a 40-line loader: `import load; model = load.load(folder)`;
README.txt  those two lines, and the inputs the model expects (shape, normalization), its
            classes and its run (engine.model_card);
meta.json   the same facts, machine-readable.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import shutil
import uuid
from pathlib import Path

import torch
from torch import Tensor, nn

from sweeplab.engine.costs import shippable
from sweeplab.engine.encoding import decode, encode
from sweeplab.engine.model_card import ModelCard
from sweeplab.engine.plain import plain_copy
from sweeplab.errors import SweeplabError

# The loader a user runs: torch and math only (decode's source is copied in, not imported).
LOADER = (
    '"""Load a model exported by sweeplab; needs only torch (>= 2.6), not sweeplab."""\n\n'
    "import math\nfrom pathlib import Path\n\nimport torch\n\n\n"
    + inspect.getsource(decode)
    + '''

def load(folder: str | Path) -> torch.nn.Module:
    """The exported model, in eval mode on the CPU; call it under torch.inference_mode()."""
    folder = Path(folder)
    model = torch.export.load(folder / "model.pt2").module()
    weights = folder / "weights.pt"
    if weights.exists():
        stored = torch.load(weights, weights_only=True)
        model.load_state_dict({k: decode(v) for k, v in stored.items()}, assign=True)
    return model
'''
)


def export_model(
    model: nn.Module,
    example_input: Tensor,
    out_path: str | Path,
    sparse: bool,
    card: ModelCard | None = None,
) -> Path:
    """Write model to a new folder out_path that `load.py` in it loads with torch alone.

    Args:
        model: the (pruned) model; attached masks are folded in, the model is left as it was.
        example_input: one batch of inputs, for tracing (any batch size works afterwards).
        out_path: folder to create; it must not exist yet.
        sparse: store the weights in the sparse encoding (unstructured pruning) instead of
            inside the program (a structurally pruned model, already small).
        card: what README.txt and meta.json state; by default only the input shape.
    Returns:
        out_path.
    """
    out = Path(out_path)
    if out.exists():
        raise SweeplabError(f"export path {out} already exists; choose a new path or delete it")
    cpu = plain_copy(model).cpu().eval()
    # A copy: a slice of the training tensor is a view of all of it, and torch.export saves a
    # traced input's whole storage (a 173 MB model.pt2 for a structured MNIST model).
    x = example_input.detach().cpu().clone()
    # Batch 2 or more: torch.export specializes a dimension traced at size 1.
    x = x.repeat(2, *([1] * (x.dim() - 1))) if len(x) < 2 else x
    dynamic = ({0: torch.export.Dim.DYNAMIC},)
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir(parents=True)
    try:
        if sparse:
            state = {k: encode(v) for k, v in shippable(cpu).items()}
            torch.save(state, tmp / "weights.pt")
            # The program carries shapes only: meta tensors have no data to store.
            cpu, x = cpu.to("meta"), x.to("meta")
        program = torch.export.export(cpu, (x,), dynamic_shapes=dynamic)
        torch.export.save(program, tmp / "model.pt2")
        (tmp / "load.py").write_text(LOADER)
        card = card or ModelCard(input_shape=tuple(example_input.shape[1:]))
        (tmp / "README.txt").write_text(card.readme(out.name))
        (tmp / "meta.json").write_text(card.meta_json())
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def load_exported(path: str | Path) -> nn.Module:
    """Load an exported folder with the loader shipped in it (what a user runs)."""
    folder = Path(path)
    if not (folder / "load.py").exists():
        raise SweeplabError(f"{folder} has no load.py; pass a folder written by sweeplab export")
    spec = importlib.util.spec_from_file_location(
        f"sweeplab_export_{uuid.uuid4().hex}", folder / "load.py"
    )
    assert spec is not None and spec.loader is not None
    loader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loader)
    return loader.load(folder)
