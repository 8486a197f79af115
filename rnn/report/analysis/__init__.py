"""What the report's section VI shows: what the trained network learned; and the bonus
report's measures of samples. Each module is imported by name (nothing here loads them).

ngram      character n-gram baselines (add-one unigram, interpolated Kneser-Ney)
surprisal  the best model reading the validation split: surprisal and hidden states
units      hidden units that track simple properties of the text
gradflow   how far back in time the gradient of one character's loss reaches
show       their HTML and figures
sampling   how good a sample is, by measures that did not generate it (the bonus report)
"""
