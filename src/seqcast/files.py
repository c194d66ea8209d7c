"""Atomic file writes, and saving and loading models as safetensors plus JSON.

Every writer here puts its output in a temporary sibling of the target first and
renames it into place only once it is complete, so an interrupted run never leaves
a truncated file where a good one used to be.

A saved model is a folder with three files:

* ``config.json``: the model's configuration plus ``format_version``,
  ``seqcast_version`` and ``weights_file``;
* ``weights.safetensors`` (or ``weights.npz``): the parameter arrays, one entry per
  leaf of the parameter tree, named by the ``/``-joined keys leading to it;
* ``history.json`` (optional): the training history.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from seqcast import __version__
from seqcast.errors import SeqcastError

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
SERIES_FILE = "series.npz"
WEIGHTS_FILES = {"safetensors": "weights.safetensors", "npz": "weights.npz"}

_MODEL_FILES = frozenset(
    {CONFIG_FILE, HISTORY_FILE, SERIES_FILE, *WEIGHTS_FILES.values()}
)
# Both weight formats store these dtypes and read them back with plain numpy.
_SUPPORTED_DTYPES = frozenset(
    np.dtype(name)
    for name in (
        "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
        "uint64", "float16", "float32", "float64",
    )
)  # fmt: skip


def _read_umask() -> int:
    # os.umask can only be read by setting it, so restore it at once.
    mask = os.umask(0)
    os.umask(mask)
    return mask


# NamedTemporaryFile and mkdtemp create private files and folders (modes 0o600 and
# 0o700). Finished ones get the mode that open() or mkdir() would have given them,
# using the umask in force when seqcast.files was imported.
_UMASK = _read_umask()
_NEW_FILE_MODE = 0o666 & ~_UMASK
_NEW_FOLDER_MODE = 0o777 & ~_UMASK


def _fsync_directory(directory: Path) -> None:
    # Makes a rename durable on POSIX. Windows cannot open a folder for this.
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path that replaces ``path`` when the block succeeds.

    The temporary file sits in the same folder as ``path`` and has the same suffix,
    so writers that choose a format from the file name (``Figure.savefig``,
    ``safetensors.numpy.save_file``) behave as they would on ``path`` itself.
    Missing parent folders are created.

    Args:
        path: the file to create or replace.

    Yields:
        The temporary path to write to. It exists and is empty when yielded.

    Raises:
        Whatever the block raises. The temporary file is then removed and ``path``
        is left as it was.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_path(target) as temporary:
        ...     _ = temporary.write_text("done")
        >>> target.read_text()
        'done'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix,
        delete=False,
    ) as handle:  # fmt: skip
        temporary = Path(handle.name)
    try:
        yield temporary
        _fsync_file(temporary)
        mode = target.stat().st_mode & 0o7777 if target.exists() else _NEW_FILE_MODE
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, creating parent folders.

    Returns:
        ``path`` as a ``Path``.
    """
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8"
) -> Path:
    """Write ``text`` to ``path`` atomically, creating parent folders.

    Returns:
        ``path`` as a ``Path``.
    """
    return atomic_write_bytes(path, text.encode(encoding))


def _to_json_value(value: Any, where: str) -> Any:
    """Convert ``value`` to plain JSON types, with NaN and infinities as None."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SeqcastError(
                    f"JSON key {key!r} at {where} is a {type(key).__name__}, not a "
                    "str; convert the keys to strings"
                )
            result[key] = _to_json_value(item, f"{where}.{key}")
        return result
    if isinstance(value, list | tuple):
        return [_to_json_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if hasattr(value, "__array__"):  # numpy and JAX arrays
        array = np.asarray(value)
        if array.dtype.kind in "biuf":
            return _to_json_value(array.tolist(), where)
    raise SeqcastError(
        f"value at {where} of type {type(value).__name__} cannot be written as "
        "JSON; pass numbers, strings, booleans, None, lists, dicts or numeric arrays"
    )


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically.

    Dict keys keep their insertion order. NaN and infinite floats become ``null``
    because JSON has no literal for them. Numpy scalars and numeric numpy or JAX
    arrays are converted to numbers and (nested) lists.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        SeqcastError: if ``obj`` contains a value JSON cannot represent.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "scores.json"
        >>> _ = write_json(target, {"mae": float("nan")})
        >>> target.read_text()
        '{\\n  "mae": null\\n}\\n'
    """
    text = json.dumps(_to_json_value(obj, "$"), indent=2, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def _flatten_params(params: Any) -> dict[str, np.ndarray]:
    """Flatten a nested mapping of arrays into ``{"a/b/c": array}``."""
    if not isinstance(params, Mapping):
        raise SeqcastError(
            f"params is a {type(params).__name__}, not a nested dict of arrays; "
            "pass the parameter tree, such as {'params': {'Dense_0': {...}}}"
        )
    flat: dict[str, np.ndarray] = {}
    for key, value in params.items():
        if not isinstance(key, str) or not key or "/" in key:
            raise SeqcastError(
                f"parameter key {key!r} is invalid; keys must be non-empty strings "
                "without '/'"
            )
        if isinstance(value, Mapping):
            if not value:
                raise SeqcastError(
                    f"parameter group {key!r} is empty; remove it from params"
                )
            for name, array in _flatten_params(value).items():
                flat[f"{key}/{name}"] = array
            continue
        array = np.asarray(value)
        if array.dtype not in _SUPPORTED_DTYPES:
            raise SeqcastError(
                f"parameter {key!r} has dtype {array.dtype}, which cannot be saved; "
                "cast it to float32 (or another bool, int, uint or float dtype)"
            )
        # Not np.ascontiguousarray, which turns 0-d arrays into shape (1,).
        flat[key] = np.require(array, requirements="C")
    return flat


def _unflatten_params(flat: Mapping[str, np.ndarray], source: Path) -> dict:
    """Rebuild the nested dict that ``_flatten_params`` flattened."""
    params: dict = {}
    for key in sorted(flat):
        *groups, name = key.split("/")
        node = params
        for group in groups:
            node = node.setdefault(group, {})
            if not isinstance(node, dict):
                raise SeqcastError(
                    f"weight {key!r} in {source} conflicts with another weight; "
                    "save the model again"
                )
        if name in node:
            raise SeqcastError(
                f"weight {key!r} in {source} conflicts with another weight; "
                "save the model again"
            )
        node[name] = flat[key]
    return params


def _write_npz(path: Path, flat: Mapping[str, np.ndarray]) -> None:
    # np.savez takes the arrays as keyword arguments, so a weight named like one of
    # its own parameters (such as "file") would be misread. Write the archive
    # member by member in the same layout np.savez uses.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for key, array in flat.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _check_replaceable(directory: Path) -> None:
    """Raise unless ``directory`` is missing, empty or a model saved by seqcast."""
    if not directory.exists():
        return
    if not directory.is_dir():
        raise SeqcastError(
            f"cannot save a model to {directory}: it is a file; choose another "
            "directory"
        )
    names = {entry.name for entry in directory.iterdir()}
    if not names:
        return
    foreign = sorted(names - _MODEL_FILES)
    if foreign:
        raise SeqcastError(
            f"cannot save a model to {directory}: it contains files seqcast did not "
            f"write ({', '.join(foreign[:3])}); choose another directory"
        )
    try:
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    if not isinstance(config, dict) or "format_version" not in config:
        raise SeqcastError(
            f"cannot save a model to {directory}: it is not a saved seqcast model "
            f"(no valid {CONFIG_FILE}); choose another directory"
        )


def _swap_into_place(built: Path, directory: Path) -> None:
    """Rename the folder ``built`` to ``directory``, replacing a saved model."""
    if not directory.exists():
        os.replace(built, directory)
        return
    # A folder cannot be renamed over a non-empty one, so move the old model
    # aside first. NOTE: between the two renames ``directory`` does not exist.
    retired = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    retired.rmdir()
    os.replace(directory, retired)
    try:
        os.replace(built, directory)
    except BaseException:
        os.replace(retired, directory)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def save_model(
    directory: str | os.PathLike[str],
    params: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    history: Mapping[str, Any] | None = None,
    series: Mapping[str, np.ndarray] | None = None,
    weights_format: str = "safetensors",
) -> Path:
    """Save a parameter tree, its configuration and its history to a folder.

    The folder is built as a temporary sibling and renamed into place once every
    file is written, so a failed save leaves any earlier model untouched. An
    existing ``directory`` is replaced only when it is empty or contains nothing but
    a model saved by this function.

    Args:
        directory: the folder to write. Missing parent folders are created.
        params: nested dict of numpy or JAX arrays, such as
            ``{"params": {"Dense_0": {"kernel": ..., "bias": ...}}}``. Keys are
            non-empty strings without ``/``. Dtypes are kept as they are.
        config: JSON-serializable settings stored in ``config.json``. Its
            ``format_version``, ``seqcast_version`` and ``weights_file`` entries, if
            present, are replaced by the values for this save.
        history: optional JSON-serializable training history, such as
            ``{"loss": array of shape (models, epochs)}``, stored in
            ``history.json`` with NaN written as ``null``.
        series: optional named arrays of the series the model was fitted on,
            such as ``{"values": ..., "time_ns": ...}``, stored in
            ``series.npz`` and read back with :func:`load_series_arrays`.
        weights_format: ``"safetensors"`` or ``"npz"``.

    Returns:
        ``directory`` as a ``Path``.

    Raises:
        SeqcastError: if an argument is invalid, or ``directory`` is a file or a
            folder that contains anything other than a saved model.

    Example:
        >>> import tempfile, pathlib, numpy as np
        >>> folder = pathlib.Path(tempfile.mkdtemp()) / "model"
        >>> params = {"params": {"Dense_0": {"bias": np.zeros(3, np.float32)}}}
        >>> _ = save_model(folder, params, {"window_size": 20})
        >>> sorted(p.name for p in folder.iterdir())
        ['config.json', 'weights.safetensors']
    """
    if weights_format not in WEIGHTS_FILES:
        raise SeqcastError(
            f"weights_format {weights_format!r} is not supported; use "
            "'safetensors' or 'npz'"
        )
    if not isinstance(config, Mapping):
        raise SeqcastError(
            f"config is a {type(config).__name__}, not a dict; pass the model "
            "settings as a dict"
        )
    flat = _flatten_params(params)
    weights_file = WEIGHTS_FILES[weights_format]
    stored_config = dict(config)
    stored_config.update(
        format_version=FORMAT_VERSION,
        seqcast_version=__version__,
        weights_file=weights_file,
    )
    # Convert before touching the disk so that a bad value raises early.
    config_value = _to_json_value(stored_config, "config")
    history_value = None if history is None else _to_json_value(history, "history")

    target = Path(directory)
    _check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    built = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        if weights_format == "safetensors":
            safetensors.numpy.save_file(flat, built / weights_file)
        else:
            _write_npz(built / weights_file, flat)
        write_json(built / CONFIG_FILE, config_value)
        if series is not None:
            _write_npz(
                built / SERIES_FILE, {k: np.asarray(v) for k, v in series.items()}
            )
        if history_value is not None:
            write_json(built / HISTORY_FILE, history_value)
        for entry in built.iterdir():
            # safetensors creates its file with mode 0600; match the other files.
            os.chmod(entry, _NEW_FILE_MODE)
            _fsync_file(entry)
        os.chmod(built, _NEW_FOLDER_MODE)
        _swap_into_place(built, target)
    except BaseException:
        shutil.rmtree(built, ignore_errors=True)
        raise
    _fsync_directory(target.parent)
    return target


def _read_weights(path: Path) -> dict[str, np.ndarray]:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        return {
            key: np.array(array)  # a writable copy, not a view of the file
            for key, array in safetensors.numpy.load_file(path).items()
        }
    except (OSError, ValueError, zipfile.BadZipFile, safetensors.SafetensorError) as e:
        raise SeqcastError(
            f"failed to read weights {path}: {e}; save the model again"
        ) from e


def load_model(directory: str | os.PathLike[str]) -> tuple[dict, dict]:
    """Load a model saved by :func:`save_model`.

    Args:
        directory: the folder that ``save_model`` wrote.

    Returns:
        ``(params, config)``: the parameter tree as nested dicts of numpy arrays
        with the dtypes they were saved with, and the contents of ``config.json``,
        including ``format_version``, ``seqcast_version`` and ``weights_file``.

    Raises:
        SeqcastError: if the folder, its ``config.json`` or its weights file is
            missing or unreadable, or the format version is not one this version
            of seqcast reads.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise SeqcastError(
            f"model folder {folder} not found; check the path, or save a model "
            "there with seqcast run or Forecaster.save"
        )
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise SeqcastError(
            f"{config_path} not found because {folder} is not a saved seqcast "
            "model; pass the model/ folder that seqcast run or Forecaster.save wrote"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SeqcastError(
            f"failed to read {config_path}: {e}; save the model again"
        ) from e
    if not isinstance(config, dict):
        raise SeqcastError(
            f"{config_path} does not contain a JSON object; save the model again"
        )
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise SeqcastError(
            f"{config_path} has format_version {version!r}, but seqcast "
            f"{__version__} reads only version {FORMAT_VERSION}; save the model "
            "again with this version of seqcast"
        )
    weights_file = config.get("weights_file")
    if weights_file not in WEIGHTS_FILES.values():
        raise SeqcastError(
            f"{config_path} names weights_file {weights_file!r}; expected one of "
            f"{sorted(WEIGHTS_FILES.values())}, so save the model again"
        )
    weights_path = folder / weights_file
    if not weights_path.is_file():
        raise SeqcastError(
            f"weights {weights_path} not found; save the model again or restore "
            "the file"
        )
    params = _unflatten_params(_read_weights(weights_path), weights_path)
    return params, config


def load_series_arrays(directory: str | os.PathLike[str]) -> dict | None:
    """Return the series arrays saved with a model, or ``None`` if there are none."""
    path = Path(directory) / SERIES_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise SeqcastError(
            f"failed to read {path}: {e}, so save the model again"
        ) from e
