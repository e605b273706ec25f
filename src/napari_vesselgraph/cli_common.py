"""What the command lines (``vesselgraph predict``, ``vesselgraph annotate propose``) share."""

from __future__ import annotations

import sys


def pick_and_say(image, channel=None, tiled: bool = False):
    """The installed checkpoint that suits ``image`` best (``inference.predict.suited_checkpoint``, the choice the
    widgets and ``predict()`` make); says on stderr which, with a warning line for each mismatch. None (predict's
    own default) when no checkpoint is installed."""
    from .inference.predict import suited_checkpoint

    ckpt, choice = suited_checkpoint(image, channel, tiled, warn=False)  # the mismatches are said below
    if choice is None:
        return None
    print(f"vesselgraph: no --checkpoint given; using '{choice['checkpoint']}' for this image", file=sys.stderr)
    for line in choice["warnings"]:
        print(f"vesselgraph: warning: {line}", file=sys.stderr)
    return ckpt
