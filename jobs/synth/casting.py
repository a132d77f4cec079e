"""Casting: which people, backgrounds and products appear in each influencer's videos.

The bundled material is split into two disjoint casts. The influencers that ``pe train``'s split will hold out
for testing are cast from :data:`HELD_OUT`, every other influencer from :data:`SEEN`, so the videos a model is
judged on show people, scenes and products that no training or validation video shows: a model cannot pass
the test by recognising who or what is on screen.

The held-out influencers are found with the trainer's own rule (:func:`models.labels.split_by_group` over all
the campaign's videos, with ``train.split_seed``, ``train.val_fraction`` and ``train.test_fraction`` of the
config ``pe sample`` runs with). A model trained with other split settings, or on a subset (``train.limit``),
has other test influencers; ``pe evaluate`` reports how many of its test videos are held-out material.

Only the material is cast: the scenario mix, the storyboards' rules and the attention rule of the truth are
the same for both casts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from jobs.synth.footage import BACKGROUND_KEYS, PERSON_KEYS
from jobs.synth.products import PRODUCT_KEYS

if TYPE_CHECKING:
    from models.settings import TrainSettings


@dataclass(frozen=True)
class Cast:
    """A set of material: person, background and product keys (:mod:`jobs.synth.footage`,
    :mod:`jobs.synth.products`). ``name`` is what ``sample_truth.material`` records."""

    name: str
    people: tuple[str, ...]
    backgrounds: tuple[str, ...]
    products: tuple[str, ...]


# Each cast has a photo person and a second person, a background clip and photos, a non-box product and two
# printed boxes, so neither is an easier kind of video than the other.
SEEN = Cast("seen", ("astronaut", "carphone"), ("bikes", "brick", "grass", "gravel"),
            ("espresso-cup", "cat-food", "rocket-kit"))
HELD_OUT = Cast("held_out", ("hopper", "luispedro"), ("bigbuckbunny", "china", "motorcycle"),
                ("gift-box", "space-puzzle", "coin-set"))
#: every influencer from all the material (a campaign made without a training split to hold out)
ANY = Cast("any", PERSON_KEYS, BACKGROUND_KEYS, PRODUCT_KEYS)


@dataclass(frozen=True)
class HoldOut:
    """The training split whose test influencers get the held-out cast (as ``train.*`` in the config)."""

    split_seed: int
    val_fraction: float
    test_fraction: float

    @classmethod
    def of(cls, train: "TrainSettings") -> HoldOut:
        """The split ``pe train`` makes with these settings (``cfg.train``)."""
        return cls(train.split_seed, train.val_fraction, train.test_fraction)


def default_hold_out() -> HoldOut:
    """The split ``pe train`` makes with the default config."""
    from models.settings import TrainSettings

    return HoldOut.of(TrainSettings())


def cast_influencers(video_ids: list[str], influencer_ids: list[str], hold_out: HoldOut | None) -> dict[str, Cast]:
    """The cast of each influencer, from the campaign's videos (``video_ids[i]`` made by ``influencer_ids[i]``):
    :data:`HELD_OUT` for those the split puts in test, :data:`SEEN` for the rest; :data:`ANY` for all when
    ``hold_out`` is None."""
    if hold_out is None:
        return {i: ANY for i in influencer_ids}
    from models.labels import split_by_group

    videos = pd.DataFrame({"video_id": video_ids, "influencer_id": influencer_ids})
    split = split_by_group(videos, seed=hold_out.split_seed, val_fraction=hold_out.val_fraction,
                           test_fraction=hold_out.test_fraction)
    return {inf: (HELD_OUT if s == "test" else SEEN) for inf, s in zip(influencer_ids, split)}


def people_of(rng: np.random.Generator, influencer_ids: list[str], casts: dict[str, Cast]) -> list[str]:
    """The person showing each influencer (in ``influencer_ids`` order): within a cast, influencers take its
    people in turn, starting from a random order, so every person of a cast with enough influencers appears."""
    order = {c.name: [str(p) for p in rng.permutation(c.people)] for c in (SEEN, HELD_OUT, ANY)}
    taken: dict[str, int] = {}
    out = []
    for inf in influencer_ids:
        name = casts[inf].name
        k = taken.get(name, 0)
        out.append(order[name][k % len(order[name])])
        taken[name] = k + 1
    return out


class ProductTurns:
    """Hands out products within each cast in turn, from a random first one: (key, variant) per call, the
    variant counting how often the key has come up (so every video gets its own SKU)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._offset = {c.name: int(rng.integers(0, len(c.products))) for c in (SEEN, HELD_OUT, ANY)}
        self._count: dict[str, int] = {}

    def next(self, cast: Cast) -> tuple[str, int]:
        k = self._count.get(cast.name, 0)
        self._count[cast.name] = k + 1
        return cast.products[(k + self._offset[cast.name]) % len(cast.products)], k // len(cast.products)
