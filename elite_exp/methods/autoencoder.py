"""Plain auto-encoder (unsupervised; score = squared reconstruction error) and the auto-encoder
pre-training that Deep SVDD, Deep SAD and hybrid SSAD build on (shared between them within a sweep:
:func:`shared_pretraining`)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import platform
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import torch

from elite_exp.methods.base import DeepDetector, seeded, train_runs
from elite_exp.methods.training import TrainSettings, diverged, run_training
from elite_exp.networks import NetworkSpec
from elite_exp.records import atomic_torch_save
from elite_exp.scores import AEScore

log = logging.getLogger(__name__)


def reconstruction_step(net, idx: torch.Tensor, data) -> tuple[torch.Tensor, dict]:
    """The auto-encoder's training step: the mean squared reconstruction error of the batch ``data['x'][idx]``."""
    return net(data["x"][idx]).mean(), {}


def train_autoencoder(ae: AEScore, x: torch.Tensor, s: TrainSettings, generator: torch.Generator, *,
                      desc: str, progress: bool) -> list[float]:
    """Minimise the mean squared reconstruction error of ``x``; returns the mean loss per epoch
    (TrainingDiverged when it turns NaN or infinite)."""
    losses = run_training(ae, len(x), reconstruction_step, s, generator, {"x": x}, desc=desc, progress=progress)[0]
    error = diverged(losses, desc)
    if error is not None:
        raise error
    return losses


@dataclasses.dataclass
class PretrainingStore:
    """A folder of finished pre-trainings (encoder states), each under a key of everything its result depends
    on (:func:`pretraining_key`); ``reused`` / ``trained`` count this store's hits and misses."""

    folder: Path
    reused: int = 0
    trained: int = 0


_STORE: ContextVar[PretrainingStore | None] = ContextVar("pretraining_store", default=None)


@contextmanager
def shared_pretraining(folder: str | Path) -> Iterator[PretrainingStore]:
    """Within the block, :func:`pretrained_encoder` keeps each pre-training it runs in ``folder`` and returns a
    kept one instead of training again when everything its result depends on is the same. In the paper's
    protocol Deep SVDD, Deep SAD (both batch modes) and hybrid SSAD pre-train the same auto-encoder on the same
    samples (the split's unlabeled then labeled samples), seed and settings, so a sweep trains it once per
    split and seed instead of four times, with the same result (the key includes the torch version, thread
    count and device, on which float rounding depends). The runner opens one in ``out_dir/.pretrained``;
    without it (the estimators alone) nothing is kept."""
    token = _STORE.set(store := PretrainingStore(Path(folder)))
    try:
        yield store
    finally:
        _STORE.reset(token)


@functools.cache
def _code_digest() -> str:
    """A digest of the source of the modules a pre-training runs (the auto-encoder, its layers, the training loop):
    a kept pre-training made by other code is not reused."""
    from elite_exp import networks, scores
    from elite_exp.methods import training

    files = [Path(__file__), Path(scores.__file__), Path(training.__file__),
             *Path(networks.__file__).parent.glob("*.py")]
    try:
        return hashlib.sha1(b"".join(f.read_bytes() for f in sorted(files))).hexdigest()
    except OSError:  # source not readable (e.g. a zipped install): nothing is shared beyond this process
        return uuid.uuid4().hex


def _machine(device: torch.device) -> tuple:
    """What float rounding depends on besides the code: the kernels' instruction set on CPU (torch's CPU capability,
    e.g. AVX2 / AVX512), the GPU and its cuDNN on CUDA, and torch's determinism switches."""
    if device.type == "cuda":
        where = (torch.cuda.get_device_name(device), torch.cuda.get_device_capability(device),
                 torch.backends.cudnn.version(), torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    else:
        where = (platform.machine(), torch.backends.cpu.get_cpu_capability())
    return (device.type, *where, torch.are_deterministic_algorithms_enabled())


def pretraining_key(spec: NetworkSpec, input_shape: tuple[int, ...], x: torch.Tensor, s: TrainSettings,
                    seed: int) -> str:
    """A digest of what a pre-training's result depends on: the samples ``x`` (values, shape, dtype, order), the
    network, the training settings, the seed, where and how it runs (:func:`_machine`, torch version and threads)
    and the code that runs it."""
    h = hashlib.sha1(repr((spec, tuple(input_shape), dataclasses.astuple(s), seed, tuple(x.shape), str(x.dtype),
                           _machine(x.device), torch.__version__, torch.get_num_threads(), _code_digest())).encode())
    h.update(x.detach().cpu().contiguous().numpy())  # the buffer itself: no copy of the samples
    return h.hexdigest()[:20]


# how long a run waits for another process's pre-training of the same key before training its own
WAIT_LIMIT_S = 3 * 3600


def _claim(lock: Path) -> bool:
    """Create ``lock`` holding this host and process id; False when it exists (another run trains that key)."""
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{socket.gethostname()} {os.getpid()}")
    return True


def _owner_gone(lock: Path) -> bool:
    """The process that wrote ``lock`` has ended (only known on this host; a lock from another host counts as
    held until :data:`WAIT_LIMIT_S`)."""
    try:
        host, pid = lock.read_text().split()
    except (OSError, ValueError):  # removed meanwhile, or not written yet
        return False
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


def _kept_state(kept: Path, store: PretrainingStore, device: torch.device) -> dict[str, torch.Tensor] | None:
    """The state kept at ``kept`` (counted as reused), or None when there is none, or it cannot be read, or it was
    kept under another key (a file renamed or copied by hand)."""
    if not kept.exists():
        return None
    try:
        blob = torch.load(kept, map_location=device, weights_only=True)
        if blob["key"] != kept.stem:
            raise ValueError(f"it holds the pre-training of key {blob['key']}")
        state = blob["state"]
    except Exception as err:  # a damaged or foreign file costs a pre-training, never the run
        reason = str(err).splitlines()[0] if str(err) else ""
        log.warning("kept pre-training %s is not usable (%s: %s); training it again", kept, type(err).__name__, reason)
        kept.unlink(missing_ok=True)
        return None
    store.reused += 1
    return state


def pretrained_encoder(spec: NetworkSpec, input_shape: tuple[int, ...], x: torch.Tensor, s: TrainSettings,
                       seed: int, progress: bool) -> tuple[dict[str, torch.Tensor], str]:
    """Deep SVDD's pre-training: train an auto-encoder whose encoder has ``spec`` on ``x`` and
    return the encoder's state (weights; training keeps no BatchNorm running statistics: a user of the
    encoder in eval mode computes them, as hybrid SSAD does) to initialise
    another network. Inside :func:`shared_pretraining`, a kept identical pre-training is returned instead; while
    another process trains the same one (a ``<key>.lock`` file beside it, e.g. two jobs of one split started
    together by the parallel launcher), this one waits for it (up to :data:`WAIT_LIMIT_S`; a lock whose process
    has ended on this host is cleared). Returns (the state, ``"trained"`` or ``"reused"``)."""
    store = _STORE.get()
    kept = store.folder / f"{pretraining_key(spec, input_shape, x, s, seed)}.pt" if store else None
    owned = None
    if kept is not None:
        state = _kept_state(kept, store, x.device)
        if state is not None:
            return state, "reused"
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            owned = _wait_or_claim(kept, store, x.device)
        except OSError as err:  # an unusable store (a file in its place, no permission): train, keep nothing
            log.warning("pre-training store %s is not usable (%s); training without it", kept.parent, err)
            kept = None
        if isinstance(owned, dict):  # the other run's, finished meanwhile
            return owned, "reused"
    try:
        with seeded(seed):
            ae = AEScore(spec, input_shape)
        ae.to(x.device)
        train_autoencoder(ae, x, s, torch.Generator().manual_seed(seed), desc="AE pre-training", progress=progress)
        state = ae.encoder.state_dict()
        if store is not None:
            store.trained += 1
        if kept is not None:
            try:
                atomic_torch_save({"key": kept.stem, "state": {k: v.detach().cpu() for k, v in state.items()}}, kept)
            except (OSError, RuntimeError) as err:  # a full or read-only disk must not stop the run
                log.warning("could not keep the pre-training at %s: %s", kept, err)
    finally:
        if isinstance(owned, Path):
            owned.unlink(missing_ok=True)
    return state, "trained"


def _wait_or_claim(kept: Path, store: PretrainingStore, device: torch.device) -> Path | dict | None:
    """Claim the lock of ``kept`` (returned: this run trains it), or wait for the run holding it and return the state
    it kept; None when the wait ran out (:data:`WAIT_LIMIT_S`: this run trains it without the lock)."""
    lock, deadline = kept.with_suffix(".lock"), time.monotonic() + WAIT_LIMIT_S
    while True:
        owned = _claim(lock)
        state = _kept_state(kept, store, device)  # finished meanwhile (also right after a claim)
        if state is not None:
            if owned:
                lock.unlink(missing_ok=True)
            return state
        if owned:
            return lock
        if _owner_gone(lock):
            lock.unlink(missing_ok=True)
        elif time.monotonic() > deadline:
            log.warning("waited %d s for the pre-training locked by %s; training it here", WAIT_LIMIT_S, lock)
            return None
        else:
            time.sleep(1.0)


class AutoEncoder(DeepDetector):
    """Auto-encoder trained on every sample of X (labels are never used); the anomaly score
    is the squared reconstruction error."""

    uses_labels = False

    def __init__(self, network=None, epochs: int = 30, batch_size: int = 128, lr: float = 1e-4,
                 optimizer: str = "adam", weight_decay: float = 1e-6, contamination: float = 0.1,
                 device: str = "auto", random_state: int = 0, progress: bool = False):
        self._keep_params(locals())

    def _check_params(self) -> None:
        """Only the training settings, checked by the base class."""

    def _build_module(self, input_shape):
        return AEScore(self._spec(input_shape), input_shape)

    def _train(self, runs) -> None:
        train_runs(runs, len(runs[0].x_unl), reconstruction_step, lambda run: {"x": run.x_unl}, desc="AE")
