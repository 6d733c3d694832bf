"""A thin DICOMweb client over predict: query (QIDO-RS) -> retrieve (WADO-RS) -> predict and explain ->
store (STOW-RS)."""
