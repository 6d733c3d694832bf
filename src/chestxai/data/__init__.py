"""Data layer: readers (one per public source) -> ImageTable -> prepared uint8 cache -> dataset."""
