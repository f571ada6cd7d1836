"""Prepare OpenImages30k (wsolevaluation) in place (run once).

    python data_scripts/prepare_openimages.py --root data/OpenImages \
        --images-archive OpenImages_images.zip --masks-archive OpenImages_annotations.zip

The two archives are the ones linked from the wsolevaluation README (Google Drive; download
them by hand). They are unpacked under <root>, the official metadata shipped with the package
is copied to <root>/metadata, and every split is checked: 29819 / 2500 / 5000 images,
100 classes, masks and ignore files present. Running it again skips finished steps.
"""

import argparse

from fcam_nb.data import prepare

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="data/OpenImages")
    p.add_argument("--images-archive", required=True)
    p.add_argument("--masks-archive", required=True)
    a = p.parse_args()
    for split, n in prepare.prepare_openimages(a.root, a.images_archive, a.masks_archive).items():
        print(f"{split}: {n} images OK")
