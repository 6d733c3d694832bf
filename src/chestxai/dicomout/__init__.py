"""DICOM objects from chestxai results: a TID 1500 Comprehensive 3D SR and a float32 Parametric Map per
source image, written with highdicom from the same predictions and heatmaps the CSV/PNG path writes."""
