"""What the report's section VI shows: what the trained network learned.

ngram      character n-gram baselines (add-one unigram, interpolated Kneser-Ney)
surprisal  the best model reading the validation split: surprisal and hidden states
units      hidden units that track simple properties of the text
gradflow   how far back in time the gradient of one character's loss reaches
show       their HTML and figures
"""

from rnn.report.analysis import gradflow, ngram, show, surprisal, units

__all__ = ["gradflow", "ngram", "show", "surprisal", "units"]
