"""The trust scorecard: a run's explanations judged by the field's published protocols at once.

CheXlocalize (Saporta et al. 2022: hit rate, mIoU with Otsu and with val-tuned thresholds and
probability cutoffs, the human benchmark), ChestX-ray8 (Wang et al. 2017: accuracy at IoBB
thresholds per finding), Arun et al. 2021 (AUPRC against the mask; cascading randomisation,
repeatability and reproducibility against the random-pairs baseline) and Quantus's localisation
family (relevance mass and rank accuracy), each beside the random-map control, for every method x
layer x finding, with a verdict per (method, layer). Sits above ``explain`` (it computes maps
through the explain stage) and below ``bench``/``report`` (which call it).
"""
