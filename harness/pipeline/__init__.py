"""The pipeline's stages, each a plain function over plain values.

``images`` (scan, split) -> ``backbone`` (build) -> ``extract`` (bottlenecks through
``cache``) -> ``train`` (the new layer; ``augment`` for distortions) -> ``evaluate`` ->
``export`` (SavedModel). ``tfops`` holds the image ops all of them share.
"""
