"""A grid of self-blended samples for docs/: each real crop, its pseudo-fake as training pairs them, and the mask.

python scripts/sbi_grid.py runs/faces/manifest.csv docs/sbi_samples.png [--n 8] [--seed 0] [--mask five|dense] [--colour paper|strong]

With ``--mask dense`` the masks are hulls of the 468-point face mesh (meshed once into <manifest>.facemesh.npz),
and the mask row shows the face oval the mesh found (docs/sbi_samples_dense.png).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fakelens.constants import SBI_COLOURS, SBI_MASKS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="manifest of REAL crops (e.g. the face pool's)")
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument("--n", type=int, default=8, help="pairs to show (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="which crops and which blends (default 0)")
    parser.add_argument("--mask", choices=SBI_MASKS, default="five", help="SBI mask (default five)")
    parser.add_argument("--colour", choices=SBI_COLOURS, default="paper", help="SBI colour change (default paper)")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fakelens import atomic
    from fakelens.data import load_crop, read_manifest
    from fakelens.sbi import SBIConfig, self_blend

    rows = [r for r in read_manifest(args.manifest) if r.label == "real"]
    rng = np.random.default_rng(args.seed)
    chosen = [rows[i] for i in rng.choice(len(rows), size=min(args.n, len(rows)), replace=False)]
    config, dense_all = SBIConfig.preset(args.colour, args.mask), [None] * len(chosen)
    if args.mask == "dense":
        from fakelens.facemesh import FACE_OVAL, cache_path_for, dense_landmarks

        dense_all = dense_landmarks(chosen, cache_path_for(args.manifest))
    fig, axes = plt.subplots(3, len(chosen), figsize=(1.9 * len(chosen), 6.0))
    axes = np.asarray(axes).reshape(3, -1)
    for col, row in enumerate(chosen):
        image, landmarks = load_crop(row)
        dense = None if dense_all[col] is None else dense_all[col] * (image.shape[1], image.shape[0])
        result = self_blend(image, landmarks, np.random.default_rng([args.seed, col]), config, dense)
        if dense is not None:
            axes[2, col].plot(*dense[list(FACE_OVAL) + [FACE_OVAL[0]]].T, color="tab:orange", linewidth=0.6)
        for ax, picture, title in zip(axes[:, col], (result.real, result.image, result.mask), ("real", "SBI fake", "mask")):
            ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1 if picture.ndim == 2 else None)
            ax.set_title(f"{title}" + (f"\n{row.dataset}" if title == "real" else ""), fontsize=8)
            ax.axis("off")
    title = "Self-blended images (fakelens.sbi): the real target, its pseudo-fake, the blend mask"
    if args.colour != "paper":
        title += f" ({args.colour} colour change)"
    if args.mask == "dense":
        title += "\n(dense masks from the 468-point face mesh; orange: its face oval)"
    fig.suptitle(title, fontsize=9)
    with atomic.atomic_path(args.out) as tmp:
        fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
