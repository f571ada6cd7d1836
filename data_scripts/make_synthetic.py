"""Generate the embedded synthetic WSOL dataset in the wsolevaluation format.

    python data_scripts/make_synthetic.py --out data/synthetic --seed 0
"""

import argparse

from fcam_nb.data.synthetic import SyntheticConfig, generate

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="data/synthetic")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--train", type=int, default=800)
    p.add_argument("--val", type=int, default=100)
    p.add_argument("--test", type=int, default=200)
    p.add_argument("--object-scale", type=float, default=SyntheticConfig.object_scale,
                   help="bird size relative to the image's short side (1 fills it)")
    a = p.parse_args()
    cfg = SyntheticConfig(num_classes=a.classes, n_train=a.train, n_val=a.val, n_test=a.test,
                          object_scale=a.object_scale, seed=a.seed)
    print(generate(a.out, cfg))
