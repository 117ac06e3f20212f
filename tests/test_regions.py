"""Face regions from 5 landmarks partition the crop, and heatmap shares follow where the heat is."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens.regions import REGIONS, area_shares, mean_region_shares, region_masks, region_shares

# A frontal face in a 224 crop (left eye, right eye, nose, mouth left, mouth right), as MTCNN gives them.
LANDMARKS = [[76.0, 92.5], [139.0, 84.0], [105.6, 127.9], [91.4, 162.5], [139.3, 156.3]]


def test_regions_partition_the_crop():
    masks = region_masks(LANDMARKS)
    assert list(masks) == list(REGIONS)
    stacked = np.stack([masks[n] for n in REGIONS]).astype(int)
    assert (stacked.sum(axis=0) == 1).all(), "every pixel is in exactly one region"
    x, y = np.round(LANDMARKS[0]).astype(int)
    assert masks["eyes"][y, x] and masks["nose"][128, 106] and masks["background"][2, 2]
    assert abs(sum(area_shares(LANDMARKS).values()) - 1.0) < 1e-9


@pytest.mark.parametrize("region,point", [("eyes", (92, 76)), ("mouth", (160, 115)), ("background", (10, 10))])
def test_a_hot_spot_puts_its_mass_in_its_region(region, point):
    heatmap = np.zeros((224, 224), np.float32)
    y, x = point
    heatmap[y - 2 : y + 3, x - 2 : x + 3] = 1.0
    shares = region_shares(heatmap, LANDMARKS)
    assert shares[region] > 0.9 and abs(sum(shares.values()) - 1.0) < 1e-9


def test_summary_per_label_skips_crops_without_landmarks():
    flat = np.ones((224, 224), np.float32)
    summary = mean_region_shares([flat, flat, flat], [LANDMARKS, None, LANDMARKS], ["real", "fake", "fake"])
    assert summary["real"]["crops"] == 1 and summary["fake"]["crops"] == 1 and summary["skipped"]["crops"] == 1
    # A flat map's mass share is the area share.
    for name in REGIONS:
        assert summary["real"]["mass"][name] == pytest.approx(summary["real"]["area"][name])
    with pytest.raises(ValueError):
        region_masks([[0, 0]] * 5)
