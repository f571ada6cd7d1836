"""Prepare CUB-200-2011 in the wsolevaluation format (run once on a machine with internet).

    python data_scripts/prepare_cub.py --root data/CUB [--archive CUB_200_2011.tgz]
                                        [--cubv2-archive CUBV2.tar] [--holdout-per-class 5]

Downloads CUB_200_2011.tgz (md5-checked; a local --archive is checked too) and CUBV2.tar (the
protocol's 1000 validation images, from wsolevaluation's mirrors) unless given, unpacks both
into <root>/images/<class>/<file>.jpg, copies the official train/val/test metadata shipped with
the package into <root>/metadata and checks every file. Running it again skips finished steps.
--holdout-per-class N validates on N train images per class instead of CUBV2 (not the protocol).
"""

import argparse

from fcam_nb.data import prepare

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="data/CUB")
    p.add_argument("--archive", help="local CUB_200_2011.tgz (skips the download)")
    p.add_argument("--cubv2-archive", help="local CUBV2.tar (skips the download)")
    p.add_argument("--holdout-per-class", type=int,
                   help="validate on N held-out train images per class instead of CUBV2")
    p.add_argument("--no-md5", action="store_true", help="do not check the CUB archive's md5")
    p.add_argument("--redownload", action="store_true",
                   help="download the archives again even if present (CUBV2 has no checksum)")
    a = p.parse_args()
    counts = prepare.prepare_cub(a.root, a.archive, a.cubv2_archive, a.holdout_per_class,
                                 archive_md5=None if a.no_md5 else prepare.CUB_MD5,
                                 redownload=a.redownload)
    for split, n in counts.items():
        print(f"{split}: {n} images OK")
