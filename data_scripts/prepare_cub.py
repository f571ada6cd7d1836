"""Prepare CUB-200-2011 in the wsolevaluation format (run once on a machine with internet).

    python data_scripts/prepare_cub.py --root data/CUB [--archive CUB_200_2011.tgz]
                                        [--cubv2-archive CUBV2.tar] [--official-metadata]

Downloads CUB_200_2011.tgz (md5-checked) unless --archive is given, unpacks it, writes train/test
metadata from CUB's own files, then the validation split: CUBV2 when its archive is given
(with --official-metadata the wsolevaluation metadata files are downloaded for all splits), else
5 train images per class are held out (a documented deviation). Finally validates every split.
Layout: <root>/images/<class>/<file>.jpg, <root>/metadata/{train,val,test}/.
"""

import argparse
import shutil
from pathlib import Path

from fcam_nb.data import prepare

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="data/CUB")
    p.add_argument("--archive", help="local CUB_200_2011.tgz (skips the download)")
    p.add_argument("--cubv2-archive", help="local CUBV2 archive from wsolevaluation")
    p.add_argument("--val-per-class", type=int, default=5,
                   help="train images per class held out as val when CUBV2 is not given")
    p.add_argument("--official-metadata", action="store_true",
                   help="download wsolevaluation's metadata instead of building it")
    a = p.parse_args()
    root = Path(a.root)
    archive = a.archive or prepare.download(prepare.CUB_URL, root / "CUB_200_2011.tgz",
                                            prepare.CUB_MD5)
    prepare.check_md5(archive, prepare.CUB_MD5 if a.archive is None else None)
    prepare.extract(archive, root / "raw")
    cub = root / "raw" / "CUB_200_2011"
    images = root / "images"
    if not images.exists():
        shutil.move(str(cub / "images"), images)
        (cub / "images").symlink_to(images.resolve())
    if a.official_metadata:
        prepare.fetch_wsoleval_metadata("CUB", root / "metadata")
    else:
        print(prepare.cub_metadata(cub, root / "metadata"))
        if a.cubv2_archive:
            prepare.extract(a.cubv2_archive, images)
            prepare.fetch_wsoleval_metadata("CUB", root / "metadata", splits=("val",))
        else:
            print(prepare.holdout_val(root / "metadata", a.val_per_class))
    for split in ("train", "val", "test"):
        n = prepare.validate_split(images, root / "metadata" / split, 200)
        print(f"{split}: {n} images OK")
