"""1:1 interest matching: the pure pairing policy (see ``policy``)."""

from __future__ import annotations

from chatd.matching.policy import (
    AGE_MAX,
    AGE_MIN,
    GENDERS,
    Arrivals,
    Level,
    MatchConfig,
    MatchPolicy,
    MetRecently,
    Pair,
    Prefs,
    RecentPairs,
    Seeker,
    UserId,
    never_met,
    tag_weights,
)

__all__ = [
    "AGE_MAX",
    "AGE_MIN",
    "GENDERS",
    "Arrivals",
    "Level",
    "MatchConfig",
    "MatchPolicy",
    "MetRecently",
    "Pair",
    "Prefs",
    "RecentPairs",
    "Seeker",
    "UserId",
    "never_met",
    "tag_weights",
]
