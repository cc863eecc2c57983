"""One independent random stream per consumer of randomness, derived from the run seed.

Initialization, batch order, augmentation, stochastic layers (dropout), the criteria's scores
and their batches, and the re-initialized controls must never draw from generators seeded
alike: with one seed for all, `pruning=random` scored the first layer with exactly the uniforms
`kaiming_uniform_` had used for its weights (correlation +1 with the initial weights). Each
stream's seed comes from numpy's SeedSequence with the run seed as entropy and the stream's
fixed id (plus an index, e.g. the round) as spawn key: the same construction as
`SeedSequence(seed).spawn(...)`, but addressed by name, so adding a stream never moves another.
"""

from __future__ import annotations

import numpy as np
import torch

# Fixed ids: never renumber (that would change every run's results).
STREAMS: dict[str, int] = {
    "init": 0,  # the dense model's initialization
    "batches": 1,  # training batch order, indexed by fit (0 = dense, r = result r)
    "augment": 2,  # crops and flips, indexed like batches
    "layers": 3,  # the global generator during a fit (dropout and other stochastic layers)
    "scores": 4,  # stochastic criteria (random scores, random channels)
    "score_batches": 5,  # order of the batches data-driven criteria score on
    "control": 6,  # re-initialization of the lottery ticket's control and of retrain
    "sparse": 7,  # sparse training: 0 = the initial random mask, 1 = SET's random regrowth
}


def stream_seed(seed: int, stream: str, index: int = 0) -> int:
    """A 32-bit seed for `stream` of a run (torch's CPU generator uses 32 bits of its seed).

    Args:
        seed: the run seed (any integer, also negative).
        stream: a name in STREAMS.
        index: which member of the stream (e.g. the fit's round); >= 0.
    """
    entropy = seed if seed >= 0 else [abs(seed), 1]  # SeedSequence takes non-negative entropy
    sequence = np.random.SeedSequence(entropy, spawn_key=(STREAMS[stream], index))
    return int(sequence.generate_state(1, np.uint32)[0])


def generator(seed: int, stream: str, index: int = 0) -> torch.Generator:
    """A CPU generator for `stream` of a run, independent of every other stream."""
    return torch.Generator().manual_seed(stream_seed(seed, stream, index))


def seed_global(seed: int, stream: str, index: int = 0) -> None:
    """Seed torch's global generator (model constructors and dropout draw from it)."""
    torch.manual_seed(stream_seed(seed, stream, index))
