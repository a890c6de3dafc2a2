"""Judge-free scores of generated text for a concept (no LLM judge exists offline).

- sentiment-like presets: VADER's compound score (lexicon shipped in the
  ``vaderSentiment`` wheel), mapped from [-1, 1] to [0, 1];
- every other preset: a scikit-learn classifier (TF-IDF of word and character n-grams,
  logistic regression) trained on the preset's own positive/negative example texts;
  the score is p(positive side).
Either way 1.0 means "reads like the positive side of the concept".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union

from ..concepts.contrast import load_preset


@dataclass
class ConceptScorer:
    """Scores texts in [0, 1] for one preset's concept."""

    name: str
    kind: str  # "sentiment" or "classifier"
    _model: object

    def score(self, texts: Sequence[str]) -> np.ndarray:
        if self.kind == "sentiment":
            return np.array([(self._model.polarity_scores(t)["compound"] + 1) / 2 for t in texts])
        return self._model.predict_proba(list(texts))[:, 1]


def scorer_for(preset: str) -> ConceptScorer:
    """The scorer a preset asks for (``scorer`` field: sentiment or classifier)."""
    p = load_preset(preset)
    if p.get("scorer") == "sentiment":
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        return ConceptScorer(preset, "sentiment", SentimentIntensityAnalyzer())
    return ConceptScorer(preset, "classifier", classifier(p["positive_examples"], p["negative_examples"]))


def classifier(positive: Sequence[str], negative: Sequence[str]):
    """TF-IDF (word and character n-grams) + logistic regression, fitted on two lists of
    example texts; ``predict_proba(texts)[:, 1]`` is p(positive side)."""
    features = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True))
    clf = make_pipeline(features, LogisticRegression(C=4.0, max_iter=2000))
    return clf.fit(list(positive) + list(negative), [1] * len(positive) + [0] * len(negative))
