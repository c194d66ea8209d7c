import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from seqcast import files
from seqcast.errors import SeqcastError


def _params():
    rng = np.random.default_rng(0)
    return {
        "params": {
            "Dense_0": {
                "kernel": rng.normal(size=(3, 20, 10)).astype(np.float32),
                "bias": np.zeros((3, 10), np.float32),
            },
            "Dense_1": {
                "kernel": jnp.ones((3, 10, 1), jnp.float32),
                "bias": np.arange(3, dtype=np.float64).reshape(3, 1),
            },
        },
        "mask": {"width": np.array([[True, False]] * 3)},
        "step": np.int32(7),
        "transposed": np.arange(6, dtype=np.float32).reshape(2, 3).T,
    }


def _assert_same_tree(actual, expected, where="$"):
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        assert actual.keys() == expected.keys(), where
        for key in expected:
            _assert_same_tree(actual[key], expected[key], f"{where}/{key}")
        return
    expected = np.asarray(expected)
    assert isinstance(actual, np.ndarray), where
    assert actual.dtype == expected.dtype, where
    assert actual.shape == expected.shape, where
    np.testing.assert_array_equal(actual, expected, err_msg=where)  # exact


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("weights_format", ["safetensors", "npz"])
def test_model_round_trip(tmp_path, weights_format):
    params = _params()
    config = {"window_size": 20, "layers": [10, 1], "activation": "relu"}
    folder = tmp_path / "nested" / "model"

    returned = files.save_model(folder, params, config, weights_format=weights_format)
    loaded_params, loaded_config = files.load_model(folder)

    assert returned == folder
    _assert_same_tree(loaded_params, params)
    assert loaded_config["window_size"] == 20
    assert loaded_config["layers"] == [10, 1]
    assert loaded_config["format_version"] == 1
    assert loaded_config["seqcast_version"] == files.__version__
    assert loaded_config["weights_file"] == files.WEIGHTS_FILES[weights_format]
    assert _leftovers(tmp_path / "nested") == []


def test_loaded_arrays_are_writable(tmp_path):
    files.save_model(tmp_path / "m", _params(), {})
    params, _ = files.load_model(tmp_path / "m")
    kernel = params["params"]["Dense_0"]["kernel"]
    kernel[0, 0, 0] = 1.0
    assert kernel[0, 0, 0] == 1.0


def test_weight_named_like_savez_argument(tmp_path):
    params = {"file": np.ones(2, np.float32), "allow_pickle": np.zeros(1)}
    files.save_model(tmp_path / "m", params, {}, weights_format="npz")
    loaded, _ = files.load_model(tmp_path / "m")
    _assert_same_tree(loaded, params)


def test_config_json_contents(tmp_path):
    config = {"b": 1, "a": float("nan"), "format_version": 99}
    files.save_model(tmp_path / "m", _params(), config)
    stored = json.loads((tmp_path / "m" / "config.json").read_text())
    assert list(stored) == [
        "b",
        "a",
        "format_version",
        "seqcast_version",
        "weights_file",
    ]
    assert stored["a"] is None
    assert stored["format_version"] == 1
    assert stored["weights_file"] == "weights.safetensors"


def test_history_written_with_null(tmp_path):
    history = {"loss": np.array([[1.0, 0.5, np.nan], [2.0, np.inf, 0.1]])}
    files.save_model(tmp_path / "m", _params(), {}, history=history)
    stored = json.loads((tmp_path / "m" / "history.json").read_text())
    assert stored == {"loss": [[1.0, 0.5, None], [2.0, None, 0.1]]}


def test_write_json_non_finite_as_null(tmp_path):
    path = tmp_path / "out.json"
    obj = {
        "nan": float("nan"),
        "inf": np.float32(np.inf),
        "list": [1, -float("inf"), np.int64(3), np.bool_(True)],
        "array": jnp.array([0.5, jnp.nan]),
        "path": tmp_path,
    }
    files.write_json(path, obj)
    text = path.read_text()
    # parse_constant rejects NaN and Infinity, which are not valid JSON.
    stored = json.loads(text, parse_constant=pytest.fail)
    assert stored == {
        "nan": None,
        "inf": None,
        "list": [1, None, 3, True],
        "array": [0.5, None],
        "path": str(tmp_path),
    }
    assert text.startswith('{\n  "nan": null,')
    assert text.endswith("}\n")


def test_write_json_rejects_unknown_type(tmp_path):
    with pytest.raises(SeqcastError, match=r"\$\.settings\.key.*object"):
        files.write_json(tmp_path / "x.json", {"settings": {"key": object()}})
    assert not (tmp_path / "x.json").exists()


def test_atomic_write_text_creates_parents(tmp_path):
    path = tmp_path / "a" / "b" / "c.txt"
    assert files.atomic_write_text(path, "héllo") == path
    assert path.read_text(encoding="utf-8") == "héllo"
    assert _leftovers(path.parent) == []


def test_atomic_write_new_file_mode(tmp_path):
    path = files.atomic_write_bytes(tmp_path / "x.bin", b"abc")
    assert path.stat().st_mode & 0o777 == files._NEW_FILE_MODE


def test_failed_replace_keeps_old_content(tmp_path, monkeypatch):
    path = tmp_path / "report.txt"
    path.write_text("old")

    def failing_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        files.atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_atomic_path_error_removes_temporary(tmp_path):
    path = tmp_path / "plot.png"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with files.atomic_path(path) as temporary:
            assert temporary.parent == tmp_path
            assert temporary.suffix == ".png"
            temporary.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_atomic_path_success_replaces(tmp_path):
    path = tmp_path / "sub" / "plot.png"
    with files.atomic_path(path) as temporary:
        temporary.write_bytes(b"new")
        assert not path.exists()
    assert path.read_bytes() == b"new"
    assert _leftovers(path.parent) == []


def test_save_replaces_saved_model(tmp_path):
    folder = tmp_path / "m"
    files.save_model(folder, _params(), {"version": "first"}, history={"loss": [1]})
    params = {"w": np.full(4, 2.0, np.float32)}
    files.save_model(folder, params, {"version": "second"}, weights_format="npz")

    loaded, config = files.load_model(folder)
    _assert_same_tree(loaded, params)
    assert config["version"] == "second"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "weights.npz"]
    assert _leftovers(tmp_path) == []


def test_save_into_empty_folder(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    files.save_model(folder, _params(), {})
    assert (folder / "config.json").is_file()


def test_save_rejects_foreign_files(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(SeqcastError, match=r"data.*notes\.txt.*another directory"):
        files.save_model(folder, _params(), {})
    assert (folder / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert _leftovers(tmp_path) == []


def test_save_rejects_extra_file_in_model(tmp_path):
    folder = tmp_path / "m"
    files.save_model(folder, _params(), {})
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(SeqcastError, match=r"notes\.txt"):
        files.save_model(folder, _params(), {})
    assert (folder / "notes.txt").read_text() == "mine"


def test_save_rejects_config_without_version(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text('{"window_size": 3}')
    with pytest.raises(SeqcastError, match="not a saved seqcast model"):
        files.save_model(folder, _params(), {})
    assert (folder / "config.json").read_text() == '{"window_size": 3}'


def test_save_rejects_file_target(tmp_path):
    target = tmp_path / "m"
    target.write_text("x")
    with pytest.raises(SeqcastError, match="it is a file"):
        files.save_model(target, _params(), {})


def test_failed_save_keeps_old_model(tmp_path, monkeypatch):
    folder = tmp_path / "m"
    old_params = _params()
    files.save_model(folder, old_params, {"version": "old"})

    def failing_save_file(tensors, filename, metadata=None):
        open(filename, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(files.safetensors.numpy, "save_file", failing_save_file)
    with pytest.raises(OSError, match="disk full"):
        files.save_model(folder, {"w": np.ones(1)}, {"version": "new"})

    loaded, config = files.load_model(folder)
    _assert_same_tree(loaded, old_params)
    assert config["version"] == "old"
    assert _leftovers(tmp_path) == []


def test_failed_final_rename_restores_model(tmp_path, monkeypatch):
    folder = tmp_path / "m"
    files.save_model(folder, {"w": np.zeros(2)}, {"version": "old"})
    real_replace = os.replace
    failures = []

    def replace(source, target):
        # Fail the first rename onto the model's path: the new folder moving in.
        if str(target) == str(folder) and not failures:
            failures.append(source)
            raise OSError("rename failed")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="rename failed"):
        files.save_model(folder, {"w": np.ones(2)}, {"version": "new"})
    _, config = files.load_model(folder)
    assert len(failures) == 1
    assert config["version"] == "old"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([np.ones(2)], "not a nested dict"),
        ({"a/b": np.ones(2)}, "'a/b' is invalid"),
        ({"": np.ones(2)}, "'' is invalid"),
        ({1: np.ones(2)}, "1 is invalid"),
        ({"a": {}}, "'a' is empty"),
        ({"a": np.array(["x"])}, "'a' has dtype <U1"),
        ({"a": np.array([object()])}, "'a' has dtype object"),
        ({"a": jnp.ones(2, jnp.bfloat16)}, "'a' has dtype bfloat16"),
    ],
)
def test_save_rejects_bad_params(tmp_path, params, message):
    with pytest.raises(SeqcastError, match=message):
        files.save_model(tmp_path / "m", params, {})
    assert not (tmp_path / "m").exists()
    assert _leftovers(tmp_path) == []


def test_save_rejects_bad_arguments(tmp_path):
    with pytest.raises(SeqcastError, match="weights_format 'pickle'"):
        files.save_model(tmp_path / "m", _params(), {}, weights_format="pickle")
    with pytest.raises(SeqcastError, match="config is a list"):
        files.save_model(tmp_path / "m", _params(), [])
    with pytest.raises(SeqcastError, match=r"history\.bad"):
        files.save_model(tmp_path / "m", _params(), {}, history={"bad": {1, 2}})
    assert not (tmp_path / "m").exists()


def test_load_missing_folder(tmp_path):
    with pytest.raises(SeqcastError, match=r"model folder .*nope not found"):
        files.load_model(tmp_path / "nope")


def test_load_missing_config(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(SeqcastError, match=r"config\.json not found"):
        files.load_model(tmp_path / "m")


def test_load_missing_weights(tmp_path):
    files.save_model(tmp_path / "m", _params(), {})
    (tmp_path / "m" / "weights.safetensors").unlink()
    with pytest.raises(SeqcastError, match=r"weights .*weights\.safetensors not found"):
        files.load_model(tmp_path / "m")


def test_load_corrupt_weights(tmp_path):
    files.save_model(tmp_path / "m", _params(), {})
    (tmp_path / "m" / "weights.safetensors").write_bytes(b"\x00" * 5)
    with pytest.raises(SeqcastError, match="failed to read weights"):
        files.load_model(tmp_path / "m")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"format_version": 2}, "format_version 2"),
        ({"window_size": 5}, "format_version None"),
        ({"format_version": 1, "weights_file": "../x.npz"}, "weights_file '../x.npz'"),
        ({"format_version": 1}, "weights_file None"),
        ([1, 2], "not contain a JSON object"),
    ],
)
def test_load_rejects_bad_config(tmp_path, config, message):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(SeqcastError, match=message):
        files.load_model(folder)


def test_load_invalid_json(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    with pytest.raises(SeqcastError, match="failed to read"):
        files.load_model(folder)
