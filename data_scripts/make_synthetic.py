"""Generate the built-in synthetic WSOL dataset in the wsolevaluation format.

    python data_scripts/make_synthetic.py --seed 0      # data/synthetic/seed0, the main job's set
    python data_scripts/make_synthetic.py --out my/folder --object-scale 0.8
"""

import argparse

from fcam_nb.data.synthetic import SyntheticConfig, generate, seed_folder

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="output folder (default: data/synthetic/seed<SEED>, where the "
                                 "main job looks)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", type=int, default=SyntheticConfig.num_classes)
    p.add_argument("--train", type=int, default=SyntheticConfig.n_train)
    p.add_argument("--val", type=int, default=SyntheticConfig.n_val)
    p.add_argument("--test", type=int, default=SyntheticConfig.n_test)
    p.add_argument("--object-scale", type=float, default=SyntheticConfig.object_scale,
                   help="bird size relative to the image's short side (1 fills it)")
    a = p.parse_args()
    cfg = SyntheticConfig(num_classes=a.classes, n_train=a.train, n_val=a.val, n_test=a.test,
                          object_scale=a.object_scale, seed=a.seed)
    print(generate(a.out or seed_folder("data/synthetic", a.seed), cfg))
