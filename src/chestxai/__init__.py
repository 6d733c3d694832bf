"""chestxai: explainable chest X-ray diagnosis.

Stages talk through files: a prepared cache (``chestxai prepare``) feeds training, and a run
directory (``runs/<name>/``) feeds evaluation, explanation and reports. See README.md.
"""

__version__ = "0.1.0"
