"""Preview PNGs: one per protocol, the size of a readable figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg

from app.imaging.phantom.preview import write_previews


def test_previews_are_written_per_protocol(phantom_factory, tmp_path: Path) -> None:
    phantom = phantom_factory.phantom(grade=4)
    paths = write_previews(phantom, tmp_path)
    assert [p.name for p in paths] == ["dess-small.png", "t2-mese-small.png", "t1rho-cubequant-small.png"]
    image = mpimg.imread(paths[0])
    assert image.shape[:2] == (768, 1440)
    assert image[..., :3].std() > 0.05  # not a blank canvas
