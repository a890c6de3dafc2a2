"""Concept families: presets close enough that a map fitted on one has seen the other.

Leave-one-concept-out is only honest if the map does not see the concept's near
relatives either: a map fitted on optimistic/pessimistic prompts has, in effect, seen a
good part of happy/sad. So when a concept is transferred, its whole family is left out
of the map's concept texts. The table is a judgement, written down once, with the reason
for each grouping; a preset in no family (or a user's own concept) leaves out only
itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """Presets whose contrasts move activations along related directions."""

    name: str
    presets: tuple[str, ...]
    reason: str


FAMILIES: tuple[Family, ...] = (
    Family("affect", ("happy-sad", "optimistic-pessimistic", "angry-calm"),
           "emotional valence and arousal: all three contrast a pleasant, hopeful or calm mood with an "
           "unpleasant one, and sentiment lexicons score them alike"),
    Family("register", ("formal-casual", "polite-rude", "verbose-terse"),
           "how a reply is worded rather than what it says: formal replies are also politer and longer, "
           "casual ones blunter and shorter, so the three contrasts co-vary in text"),
    Family("epistemic", ("confident-uncertain", "honest-deceptive"),
           "the speaker's stance towards the truth of what is said: certainty and sincerity of claims"),
    Family("refusal", ("refuse-comply",),
           "a behaviour (whether to answer at all), not a tone; no other preset contrasts it"),
    Family("language", ("french-english",),
           "which language is spoken: orthogonal to tone, stance and behaviour"),
)


def family_of(concept: str | None) -> Family | None:
    """The family ``concept`` belongs to, or None (no family, or no concept)."""
    return next((f for f in FAMILIES if concept in f.presets), None)


def relatives(concept: str | None) -> tuple[str, ...]:
    """Every preset a map carrying ``concept`` must not see: the concept and its family
    (just the concept when it is in none; nothing for no concept)."""
    if not concept:
        return ()
    family = family_of(concept)
    return family.presets if family else (concept,)
