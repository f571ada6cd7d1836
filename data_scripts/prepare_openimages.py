"""Prepare OpenImages30k (wsolevaluation) in place (run once on a machine with internet).

    python data_scripts/prepare_openimages.py --root data/OpenImages \
        --images-archive OpenImages_images.zip --masks-archive OpenImages_annotations.zip

The two archives are the ones linked from the wsolevaluation README (Google Drive; download
them by hand). They are unpacked under <root>, the public metadata (train/val/test) is fetched
from the wsolevaluation repository (or copied from --metadata-dir), and every split is checked:
29819 / 2500 / 5000 images, 100 classes, masks and ignore files present.
"""

import argparse
import shutil
from pathlib import Path

from fcam_nb.data import prepare

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="data/OpenImages")
    p.add_argument("--images-archive", required=True)
    p.add_argument("--masks-archive", required=True)
    p.add_argument("--metadata-dir", help="local copy of wsolevaluation's metadata/OpenImages")
    a = p.parse_args()
    root = Path(a.root)
    prepare.extract(a.images_archive, root)
    prepare.extract(a.masks_archive, root)
    if a.metadata_dir:
        shutil.copytree(a.metadata_dir, root / "metadata", dirs_exist_ok=True)
    else:
        prepare.fetch_wsoleval_metadata("OpenImages", root / "metadata")
    for split in ("train", "val", "test"):
        n = prepare.validate_split(root, root / "metadata" / split, 100, mask_root=root)
        print(f"{split}: {n} images OK")
