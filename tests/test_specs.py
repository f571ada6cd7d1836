"""The dataset registry: one spec per dataset, read by the CLI, the profiles and the presets."""

import pytest

from fcam_nb.data.official import NUM_CLASSES, SPLIT_SIZES, canonical_name
from fcam_nb.data.specs import DATASETS, DatasetSpec, dataset_spec, register_dataset


@pytest.fixture
def toy_dataset():
    spec = register_dataset(DatasetSpec("Toy", has_boxes=False, has_masks=True, num_classes=7,
                                        n_bg=0.2, schedules={"paper": (4, 2, 1.0)}))
    yield spec
    del DATASETS["Toy"]


def test_the_paper_datasets_as_the_official_splits_say():
    assert dataset_spec("cub").name == "CUB" and dataset_spec("OPENIMAGES").name == "OpenImages"
    assert (dataset_spec("CUB").has_boxes, dataset_spec("CUB").has_masks) == (True, False)
    assert (dataset_spec("OpenImages").has_boxes, dataset_spec("OpenImages").has_masks) == (
        False, True)
    assert NUM_CLASSES == {"CUB": 200, "OpenImages": 100}
    assert SPLIT_SIZES["CUB"] == {"train": 5994, "val": 1000, "test": 5794}
    assert canonical_name("openimages") == "OpenImages"
    with pytest.raises(ValueError, match="CUB or OpenImages, got 'synthetic'"):
        canonical_name("synthetic")  # registered, but no official metadata


def test_a_registered_dataset_reaches_the_cli_the_profiles_and_the_presets(toy_dataset, tmp_path):
    from fcam_nb.__main__ import parse_args
    from fcam_nb.course.notebook import Profile
    from fcam_nb.presets import paper_run, resolve_run

    assert parse_args(["--dataset", "Toy"]).dataset == "Toy"
    profile = Profile("full", tmp_path, base=None, dataset="Toy")
    assert (profile.has_boxes, profile.has_masks) == (False, True)
    with pytest.raises(ValueError, match="Toy: no official metadata is shipped"):
        resolve_run("toy", tmp_path / "run", data_root=str(tmp_path), allow_cpu=True)
    # the presets read the spec; the stage-1 recipe is the one table a new dataset adds to
    with pytest.raises(KeyError, match="no stage-1 recipe for 'toy'"):
        paper_run("Toy", tmp_path, tmp_path, tmp_path / "run")


def test_registration_is_checked():
    with pytest.raises(ValueError, match="already registered"):
        register_dataset(DatasetSpec("cub", has_boxes=True, has_masks=False))
    with pytest.raises(ValueError, match="needs boxes or masks"):
        DatasetSpec("blind", has_boxes=False, has_masks=False)
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; registered: "):
        dataset_spec("mnist")
