import numpy as np
import pandas as pd

from modeldx.engine.groups import group_code, group_codes, group_sizes, n_groups


def test_group_codes_are_two_per_class_correct_last():
    items = pd.DataFrame({"label": [0, 0, 3, 9], "correct": [False, True, True, False]})
    assert group_codes(items).tolist() == [0, 1, 7, 18]
    assert int(group_code(3, True)) == 7 and n_groups(10) == 20
    sizes = group_sizes(items, 10)
    assert sizes.shape == (20,) and sizes.sum() == 4 and sizes[[0, 1, 7, 18]].tolist() == [1, 1, 1, 1]


def test_a_saved_sample_records_the_group_sizes_of_all_items(digits_store, tmp_path):
    import shutil

    from modeldx.sampling import sample

    shutil.copytree(digits_store.path, tmp_path / "s")
    s = sample(tmp_path / "s", "uniform", 0.05, save=False)
    assert np.array_equal(s.info["group_items"],
                          group_sizes(digits_store.items(), digits_store.manifest.num_classes))
