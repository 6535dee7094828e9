"""From photos to try-on inputs: pose, masks, parsing, dense body map, cloth-agnostic person."""
