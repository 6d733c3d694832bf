"""Synthesis: a CycleGAN that translates chest X-rays between two label domains (``chestxai synth``).

networks    the published ResNet generator and 70x70 PatchGAN (Zhu et al., ICCV 2017)
losses      LSGAN, cycle and identity losses; pool: the 50-image history of fakes
domains     ``Pneumothorax`` / ``not:Pneumothorax`` / ``No Finding`` -> prepared cache rows
settings    the validated synthesis config; loop: training (resumable, seeded)
checkpoint  ``checkpoint.pt`` + ``splits.csv`` -> :class:`~chestxai.synth.checkpoint.SynthModel`
            (what ``chestxai synth generate`` / ``evaluate`` and their modules here read)
"""
