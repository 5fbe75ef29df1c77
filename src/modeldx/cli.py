"""The ``modeldx`` command."""

from __future__ import annotations

import inspect
import json
import time
import types
import typing
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from modeldx.errors import InvalidParameterError, ModeldxError, OutputError

console = Console()
err = Console(stderr=True, soft_wrap=True)


def _fail(exc: Exception) -> typing.NoReturn:
    """Print a user error as one line on stderr and exit with code 2."""
    err.print(f"[bold red]error:[/] {escape(' '.join(str(exc).split()))}", highlight=False)
    raise typer.Exit(code=2)


# typer >= 0.2x vendors its own click: take click's UsageError from typer's public BadParameter
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _shows_help(exc: Exception) -> bool:
    return type(exc).__name__ == "NoArgsIsHelpError"  # `modeldx` alone prints its help, as it should


class _UserErrorsInOneLine(TyperGroup):
    """Every user error — a :class:`ModeldxError` or a command line click cannot parse — is one line
    on stderr and exit code 2, in every subcommand. Anything else is a bug and keeps its traceback."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _UsageError as exc:
            if _shows_help(exc):
                raise
            _usage_error(exc)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _UsageError as exc:
            if _shows_help(exc):
                raise
            _usage_error(exc)
        except ModeldxError as exc:
            _fail(exc)


def _usage_error(exc) -> typing.NoReturn:
    where = exc.ctx.command_path if exc.ctx is not None else "modeldx"
    _fail(ModeldxError(f"{exc.format_message()} (see `{where} --help`)"))


app = typer.Typer(help="Diagnose deep-learning models: capture activations into a store, query them.",
                  no_args_is_help=True, pretty_exceptions_enable=False, cls=_UserErrorsInOneLine)

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
DataRoot = Annotated[str | None, typer.Option(help="Data root (else $MODELDX_DATA, ./data).")]


def _numbers(text: str, option: str, kind: type = float) -> list:
    """``"0.01,0.05"`` -> ``[0.01, 0.05]``; anything else is a user error naming the option."""
    try:
        return [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        kind_name = "integers" if kind is int else "numbers"
        raise InvalidParameterError(
            f"{option} expects comma-separated {kind_name}. Got {text!r}.") from None


def _splits(dataset: str, splits: str, data_root: str | None):
    from modeldx.data import load_dataset

    names = [s.strip() for s in splits.split(",") if s.strip()]
    return {s: load_dataset(dataset, s, root=data_root) for s in names} if dataset != "digits" else {
        "all": load_dataset("digits")}


@app.command()
def train(
    model: Annotated[str, typer.Option(
        help="Zoo architecture: lenet5, deepcnn, plaincnn, plaincnn-bn or resnet.")] = "lenet5",
    dataset: Annotated[str, typer.Option(help="mnist or fashion-mnist.")] = "mnist",
    epochs: int = 4,
    seed: int = 0,
    lr: Annotated[float, typer.Option(help="Adam's learning rate (plaincnn dies at 0.01).")] = 1e-3,
    batch_size: int = 128,
    train_items: Annotated[int | None, typer.Option(
        help="Train on a seeded random subset of this many items.")] = None,
    average_from: Annotated[int | None, typer.Option(
        help="Parameter averaging: average the weights of every step from this epoch (0-based) on.")] = None,
    out: Annotated[Path | None, typer.Option(help="Checkpoint path.")] = None,
    data_root: DataRoot = None,
    quiet: Quiet = False,
) -> None:
    """Train a zoo model and write a checkpoint with its test accuracy."""
    from modeldx.data import load_dataset
    from modeldx.zoo import train as train_model

    out = out or Path("runs") / f"{model}-{dataset}.pt"
    result = train_model(model, load_dataset(dataset, "train", root=data_root),
                         load_dataset(dataset, "test", root=data_root), epochs=epochs, seed=seed,
                         lr=lr, batch_size=batch_size, train_items=train_items, average_from=average_from,
                         checkpoint=out, dataset_name=dataset, progress=not quiet)
    console.print(f"{model} on {dataset}: test accuracy [bold]{result.test_accuracy:.2%}[/] "
                  f"after {result.seconds:.0f} s -> {out}")


@app.command()
def capture(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by `modeldx train`.")],
    store: Annotated[str, typer.Argument(
        help="Folder of the store to write, or an fsspec URL (file://, s3://...).")],
    dataset: str = "mnist",
    splits: Annotated[str, typer.Option(help="Comma-separated splits.")] = "train,test",
    layers: Annotated[str | None, typer.Option(help="Comma-separated layer names (default: auto).")] = None,
    reduction: Annotated[str, typer.Option(
        help="Conv maps: max, mean or none; sequences also last.")] = "max",
    encoding: Annotated[str, typer.Option(help="float16, float32 or uint8.")] = "float16",
    gradients: Annotated[bool, typer.Option(help="Also store gradients of the loss.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace a finished store at STORE.")] = False,
    device: Annotated[str, typer.Option(
        help="auto, cpu, cuda...; with --engine dask each worker resolves it on its machine.")] = "auto",
    engine: Annotated[str, typer.Option(
        help="local (this process) or dask (chunks captured by the workers of a Dask cluster).")] = "local",
    scheduler: Annotated[str | None, typer.Option(
        help="Dask scheduler address (default $MODELDX_SCHEDULER; neither: a local cluster).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes of the local Dask cluster (default: one per core).")] = None,
    chunk_order: Annotated[str, typer.Option(
        help="ascending, or random (a seeded permutation: the chunks written so far are a random "
             "sample).")] = "ascending",
    data_root: DataRoot = None,
    quiet: Quiet = False,
) -> None:
    """Capture activations of a checkpoint's model over a data set (resumes an interrupted run)."""
    from modeldx.capture import capture as run_capture
    from modeldx.zoo import load_checkpoint

    if store.startswith("memory://"):
        raise InvalidParameterError(
            f"{store} would be a store in this command's memory, gone when it ends; give a folder or "
            "the URL of lasting storage (file://, s3://...)")
    model, _ = load_checkpoint(checkpoint)
    start = time.perf_counter()
    st = run_capture(model, _splits(dataset, splits, data_root), store,
                     layers=layers.split(",") if layers else "auto", reduction=reduction,
                     encoding=encoding, gradients=gradients, overwrite=overwrite, device=device,
                     engine=engine, scheduler=scheduler, workers=workers, chunk_order=chunk_order,
                     progress=not quiet)
    console.print(f"captured {st.n_items} items x {len(st.layers)} layers into {store} "
                  f"in {time.perf_counter() - start:.1f} s ({st.stored_bytes() / 1e6:.1f} MB)")


@app.command()
def info(
    store: Annotated[str, typer.Argument(help="A store folder, or an fsspec URL (file://, s3://...).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    quick: Annotated[bool, typer.Option(
        "--quick", help="Only check that every chunk file is there instead of reading every chunk.")] = False,
) -> None:
    """Show what a store holds, after reading every chunk (exit 1 if it is damaged)."""

    from modeldx.store import open_store

    st = open_store(store)
    summary = st.summary()
    # a flipped or truncated chunk is found only by reading it (about 0.2 s for 70,000 MNIST items)
    problems = _verify(st, read=not quick, quiet=as_json or quick)
    if problems:
        summary["status"] = f"damaged ({len(problems)} problems; run `modeldx check {store}`)"
    if as_json:
        console.print_json(json.dumps({**summary, "problems": [str(p) for p in problems]}))
    else:
        for key, value in summary.items():
            if key == "bytes":
                value = f"{value / 1e6:.1f} MB on disk"
            if key != "layers":
                console.print(f"[bold]{key:>10}[/] {value}", highlight=False)
        table = Table("layer", "kind", "raw shape", "neurons", "reduction")
        for spec in summary["layers"]:
            table.add_row(spec["name"], spec["kind"], "x".join(map(str, spec["raw_shape"])),
                          str(spec["neurons"]), spec["reduction"])
        console.print(table)
    for problem in problems:
        err.print(f"damaged: {problem}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(code=1)


def _verify(st, *, read: bool, quiet: bool) -> list:
    """``Store.verify`` with a progress bar on stderr."""
    from tqdm.auto import tqdm

    with tqdm(unit="chunk", desc="verify", disable=quiet, leave=False) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        return st.verify(progress, read=read)


@app.command()
def check(
    store: Annotated[str, typer.Argument(help="A store folder, or an fsspec URL (file://, s3://...).")],
    quiet: Quiet = False,
) -> None:
    """Read every chunk of every array; print each missing or damaged one. Exit 0 if the store
    is whole, 1 if not."""

    from modeldx.errors import StoreCorruptError
    from modeldx.store import open_store

    try:
        st = open_store(store)
    except StoreCorruptError as exc:
        err.print(f"damaged: {exc}", highlight=False)
        raise typer.Exit(code=1) from None
    except ModeldxError as exc:
        _fail(exc)
    problems = _verify(st, read=True, quiet=quiet)
    for problem in problems:
        err.print(f"damaged: {problem}", highlight=False, soft_wrap=True)
    if problems:
        err.print(f"{store}: {len(problems)} problems; delete the store and run the same capture "
                  "again", highlight=False)
        raise typer.Exit(code=1)
    console.print(f"{store}: every chunk of {len(st.stored_arrays())} arrays read, no damage",
                  highlight=False, soft_wrap=True)
    if not st.complete:  # whole so far, but not a store a query can use yet
        console.print(f"{store}: unfinished ({len(st.done_chunks())} of {st.manifest.n_chunks} chunks "
                      "captured); run the same capture again to finish it", highlight=False, soft_wrap=True)


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# what a -p value may be, by the annotation of the parameter it sets
_KINDS = {int: ((int,), "an int"), float: ((float, int), "a float"), str: ((str,), "a string"),
          bool: ((bool,), "true or false"), type(None): ((type(None),), "null"),
          list: ((list,), "a JSON list"), tuple: ((list,), "a JSON list")}


def _accepted(hint, default) -> tuple[tuple[type, ...], str] | None:
    """Python types a parsed value may have, and how to say so; ``None``: anything goes."""
    if hint is None:  # unannotated: the default's type, if it says anything
        if default is None or default is inspect.Parameter.empty:
            return None
        hint = type(default)
    parts = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(
        hint) is typing.Union else (hint,)
    parts = [typing.get_origin(p) or p for p in parts]
    if any(p not in _KINDS for p in parts):
        return None
    kinds = tuple(t for p in parts for t in _KINDS[p][0])
    return kinds, " or ".join(_KINDS[p][1] for p in parts)


def _typed_params(owner: str, func, items: list[str], skip: tuple[str, ...] = ()) -> dict:
    """Parse ``KEY=VALUE`` strings against ``func``'s signature: an unknown key or a value of the
    wrong type is a user error naming the parameter and what it expects."""
    params = {n: p for n, p in inspect.signature(func).parameters.items() if n not in skip}
    try:
        hints = typing.get_type_hints(func.__init__ if isinstance(func, type) else func)
    except (NameError, TypeError):  # an annotation that cannot be resolved: check names only
        hints = {}
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise InvalidParameterError(f"--param expects KEY=VALUE. Got {item!r}.")
        if key not in params:
            raise InvalidParameterError(f"{owner} has no parameter {key!r}; it takes {', '.join(params)}")
        value = _parse_value(text)
        accepted = _accepted(hints.get(key), params[key].default)
        if accepted is not None:
            kinds, what = accepted
            if str in kinds and not isinstance(value, str) and not any(
                    isinstance(value, k) and not isinstance(value, bool) for k in kinds if k is not str):
                value = text  # a name that looks like a number ("7") is still a name
            if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
                raise InvalidParameterError(
                    f"the parameter {key!r} of {owner} expects {what}. Got {text!r} (-p {item}).")
        out[key] = value
    required = [n for n, p in params.items() if p.default is inspect.Parameter.empty
                and p.kind is not inspect.Parameter.VAR_KEYWORD and n not in out]
    if required:
        raise InvalidParameterError(
            f"{owner} needs " + ", ".join(f"-p {n}=..." for n in required)
            + f" (it takes {', '.join(params)})")
    return out


def _writable_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write to the folder {folder}: {exc.strerror or exc}") from exc


_SUFFIXES = {".csv": "csv", ".json": "json", ".parquet": "parquet"}
FORMATS = ("table", "csv", "json", "parquet")


def _output_format(fmt: str | None, out: Path | None) -> str:
    """The format to print or write, checked before any work: from ``--format``, else ``--out``'s suffix."""
    from_suffix = _SUFFIXES.get(out.suffix.lower()) if out else None
    if out is not None and from_suffix is None:
        raise InvalidParameterError(
            f"--out {out}: cannot write a {out.suffix or 'suffix-less'!r} file; name it .csv, .json or "
            ".parquet")
    if fmt is None:
        return from_suffix or "table"
    if fmt not in FORMATS:
        raise InvalidParameterError(f"--format must be one of {', '.join(FORMATS)}. Got {fmt!r}.")
    if out is not None and fmt != from_suffix:
        raise InvalidParameterError(f"--format {fmt} does not match --out {out}; drop one of them")
    if fmt == "parquet" and out is None:
        raise InvalidParameterError("--format parquet writes a file: pass --out FILE.parquet")
    return fmt


def _write_answer(frame, fmt: str, out: Path) -> None:
    """Write a query's answer; its provenance (``frame.attrs``) goes along in every format."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            table = pa.Table.from_pandas(frame.copy(deep=False).reset_index(drop=True),
                                         preserve_index=False)
            meta = {**(table.schema.metadata or {}), b"modeldx": json.dumps(frame.attrs, default=str)}
            pq.write_table(table.replace_schema_metadata(meta), out)
        else:
            out.write_text(_answer_text(frame, fmt))
    except OSError as exc:
        raise OutputError(f"cannot write the answer to {out}: {exc.strerror or exc}") from exc


def _answer_text(frame, fmt: str) -> str:
    if fmt == "csv":
        return frame.to_csv(index=False)
    return json.dumps({"answer": json.loads(frame.to_json(orient="records")), **frame.attrs},
                      indent=2, default=str)


@app.command("queries")
def list_queries() -> None:
    """List the queries and their parameters."""
    from modeldx.queries import QUERIES

    table = Table("query", "parameters", "what it answers")
    for name, q in sorted(QUERIES.items()):
        params = ", ".join(
            p.name if p.default is p.empty else f"{p.name}={p.default!r}" for p in q.parameters().values())
        table.add_row(name, params, q.summary)
    console.print(table)


@app.command()
def query(
    name: Annotated[str, typer.Argument(help="Query name (see `modeldx queries`).")],
    store: Annotated[str, typer.Argument(help="A store folder, or an fsspec URL (file://, s3://...).")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p",
                                                    help="KEY=VALUE (VALUE parsed as JSON).")] = None,
    sample: Annotated[str | None, typer.Option(help="Run on a named sample of the store.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the answer here (.csv, .json or .parquet).")] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", help="table, csv, json or parquet (default: from --out, else table).")] = None,
    engine: Annotated[str, typer.Option(help="local (in this process) or dask (a Dask cluster).")] = "local",
    scheduler: Annotated[str | None, typer.Option(
        help="Dask scheduler address (default: $MODELDX_SCHEDULER, else a local cluster).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes of a local Dask cluster.")] = None,
    quiet: Quiet = False,
) -> None:
    """Run one query on a store and print or write its answer."""
    from modeldx.queries import get
    from modeldx.store import open_store

    q = get(name)
    fmt = _output_format(fmt, out)
    kwargs = _typed_params(f"query {name!r}", q.func, param or [], skip=("store", "items", "weights",
                                                                          "engine", "progress"))
    st = open_store(store)
    if sample:  # ids, weights and provenance travel together
        from modeldx.sampling import load_sample

        kwargs["items"] = load_sample(st, sample)
    if "progress" in inspect.signature(q.func).parameters:
        kwargs["progress"] = not quiet  # on stderr: stdout keeps the answer alone
    from modeldx.engine import get_engine

    runner = get_engine(engine, scheduler=scheduler, workers=workers)
    if runner.name == "dask":
        with runner:  # one cluster for every pass the query makes
            frame = q.func(st, **kwargs, engine=runner)
    else:
        frame = q.func(st, **kwargs, engine=runner)
    if out:
        _write_answer(frame, fmt, out)
        console.print(f"{len(frame)} rows -> {out}", highlight=False)
    elif fmt == "table":
        console.print(frame.to_string(index=False, max_rows=60), markup=False, highlight=False)
    else:
        console.print(_answer_text(frame, fmt), markup=False, highlight=False)


@app.command("sample")
def sample_command(
    store: Annotated[Path, typer.Argument(help="A store with at least a latent pass.")],
    method: Annotated[str, typer.Argument(help="A sampler (see `modeldx samplers`).")],
    fraction: Annotated[float, typer.Option(help="Share of the items, in (0, 1].")] = 0.01,
    seed: int = 0,
    name: Annotated[str | None, typer.Option(help="Saved as samples/NAME.parquet.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p",
                                                    help="Sampler setting KEY=VALUE.")] = None,
    overwrite: bool = False,
) -> None:
    """Choose a sample from a store's latent space and save it in the store."""
    from modeldx.sampling import get, sample

    params = _typed_params(f"the sampler {method}", get(method), param or [], skip=("seed",))
    s = sample(store, method, fraction, seed=seed, name=name, overwrite=overwrite, **params)
    console.print(f"{s.name}: {s.size:,} items ({fraction:.2%}) by {method} in "
                  f"{s.info['seconds']:.2f} s -> {store}/samples/{s.name}.parquet")


@app.command("samplers")
def list_samplers() -> None:
    """List the samplers and their settings."""
    import inspect

    from modeldx.sampling import SAMPLERS

    table = Table("sampler", "supervised", "settings", "what it does")
    for name, cls in sorted(SAMPLERS.items()):
        params = ", ".join(f"{p.name}={p.default!r}" for p in inspect.signature(cls).parameters.values())
        table.add_row(name, "yes" if cls.supervised else "no", params,
                      (cls.__doc__ or "").strip().splitlines()[0])
    console.print(table)


@app.command()
def evaluate(
    store: Annotated[Path, typer.Argument(help="A store captured over every item (the exact answers).")],
    methods: Annotated[str | None, typer.Option(help="Comma-separated samplers (default: all).")] = None,
    fractions: Annotated[str, typer.Option(help="Comma-separated sample fractions.")] = (
        "0.005,0.01,0.02,0.05,0.1,0.2"),
    seeds: Annotated[int, typer.Option(help="Seeds 0..N-1 per (sampler, fraction).")] = 5,
    queries: Annotated[str, typer.Option(help="Comma-separated evaluated queries.")] = (
        "top-k-neurons,top-k-neurons-mean,confusion-matrix,dead-neurons"),
    k: int = 10,
    out: Annotated[Path, typer.Option(help="Folder for results.csv, summary.csv, figures, index.html.")] = (
        Path("modeldx-eval")),
    quiet: Quiet = False,
) -> None:
    """Score samplers against exact answers: results.csv, summary, figures and an HTML report."""
    from modeldx.evaluate import summarize, sweep, write_report
    from modeldx.evaluate.report import print_sampler_table
    from modeldx.store import open_store

    st = open_store(store)
    _writable_folder(out)  # before minutes of work, not after
    results = sweep(st, methods.split(",") if methods else None,
                    _numbers(fractions, "--fractions"), list(range(seeds)),
                    queries=queries.split(","), k=k, progress=not quiet)
    paths = write_report(results, out, context={"store": store, "items": st.n_items,
                                                "model": st.manifest.model_name, "k": k})
    print_sampler_table(console, summarize(results), "top-k-neurons", "precision@k")
    console.print(f"results -> {paths['results']}; report -> {paths['report']}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the checkpoint, store and results.")] = Path(
        "modeldx-demo"),
    dataset: Annotated[str, typer.Option(help="mnist or fashion-mnist.")] = "mnist",
    model: Annotated[str, typer.Option(
        help="Zoo architecture: lenet5, deepcnn, plaincnn, plaincnn-bn or resnet.")] = "lenet5",
    k: Annotated[int, typer.Option(help="Neurons per group in the headline query.")] = 10,
    methods: Annotated[str | None, typer.Option(help="Comma-separated samplers (default: all).")] = None,
    fractions: Annotated[str, typer.Option(help="Comma-separated sample fractions.")] = (
        "0.005,0.01,0.02,0.05,0.1,0.2"),
    seeds: Annotated[int, typer.Option(help="Seeds per (sampler, fraction); 0 skips the evaluation.")] = 5,
    data_root: DataRoot = None,
    quiet: Quiet = False,
) -> None:
    """The paper's experiment: train (or reuse) a model, capture train+test exactly, answer the headline
    query, score every sampler x fraction x seed against it, and write figures and an HTML report."""
    from modeldx.demo import run_demo

    run_demo(out, dataset=dataset, arch=model, k=k, methods=methods.split(",") if methods else None,
             fractions=_numbers(fractions, "--fractions"), seeds=tuple(range(seeds)),
             data_root=data_root, progress=not quiet, console=console)


def _image_shape(data) -> tuple[int, int, int]:
    x = data.get_batch([0])[0]
    return tuple(int(v) for v in x.shape[1:])


@app.command()
def ldam(
    checkpoint: Annotated[Path, typer.Argument(help="A zoo checkpoint (modeldx train).")],
    layer: Annotated[str | None, typer.Option(help="Layer to target (default: pre-softmax outputs).")] = None,
    neurons: Annotated[str | None, typer.Option(help="Comma-separated neurons (default: first ten).")] = None,
    chains: Annotated[int, typer.Option(help="Chains per neuron (rows of the grid).")] = 8,
    steps: int = 400,
    burn_in: int = 100,
    l2: Annotated[float, typer.Option(help="L2 weight.")] = 0.1,
    beta: Annotated[float, typer.Option(help="Step size.")] = 0.05,
    sigma: Annotated[float, typer.Option(help="Noise standard deviation.")] = 0.05,
    discriminator: Annotated[bool, typer.Option(
        help="Train Algorithm 2's discriminator on real images and use it as a regulariser.")] = False,
    disc_weight: Annotated[float, typer.Option(help="The discriminator's weight.")] = 0.5,
    seed: int = 0,
    out: Annotated[Path, typer.Option(help="Folder for the PNGs.")] = Path("ldam"),
    data_root: DataRoot = None,
    quiet: Quiet = False,
) -> None:
    """Sample images that activate neurons (LDAM); writes the samples and running averages as PNGs."""
    import numpy as np

    from modeldx.data import load_dataset
    from modeldx.ldam import LDAM, DiscriminatorTrainer, OnlineDiscriminator, grid_image, save_png
    from modeldx.zoo import load_checkpoint

    model, meta = load_checkpoint(checkpoint)
    shape = _image_shape(load_dataset(meta.get("dataset", "mnist"), "test", root=data_root))
    chosen = None if neurons is None else _numbers(neurons, "--neurons", int)
    spec = {"layer": layer, "neurons": chosen, "l2": l2, "beta": beta, "sigma": sigma}
    disc = trainer = None
    if discriminator:  # as `serve ldam` runs it: an update at least every 20 steps of its own chains
        train_set = load_dataset(meta.get("dataset", "mnist"), "train", root=data_root)
        reals = train_set.get_batch(np.arange(min(10_000, len(train_set))))[0]
        disc = OnlineDiscriminator(reals, seed=seed, max_wait=20)
        trainer = DiscriminatorTrainer(lambda: LDAM(model, shape, **spec, chains=2, discriminator=disc,
                                                    disc_weight=1.0, burn_in=0, seed=seed + 1), disc)
    sampler = LDAM(model, shape, **spec, chains=chains, burn_in=burn_in, discriminator=disc,
                   disc_weight=disc_weight if discriminator else 0.0, seed=seed)
    from tqdm.auto import tqdm

    for _ in tqdm(range(steps), desc="ldam", unit="step", disable=quiet):
        if trainer is not None:
            trainer.step()
        sampler.step()
    out.mkdir(parents=True, exist_ok=True)
    name = f"{sampler.target.layer}-" + "-".join(map(str, sampler.target.neurons[:10]))
    for which in ("sample", "average"):
        save_png(grid_image(sampler.grid(which)), out / f"{name}-{which}.png")
    console.print(f"{sampler.target.layer} neurons {list(sampler.target.neurons)}: mean activation "
                  f"{float(sampler.activation.mean()):.3f} after {steps} steps -> {out}/{name}-average.png, "
                  f"{name}-sample.png (columns: neurons, rows: chains; grey is 0)")


serve_app = typer.Typer(help="Live sessions: train while you steer it from a web dashboard.",
                        no_args_is_help=True)
app.add_typer(serve_app, name="serve")
Host = Annotated[str, typer.Option(help="Address to bind; anything but loopback needs --token.")]
Port = Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")]
Token = Annotated[str | None, typer.Option(
    help="Required in the URL (?token=...) when given; at least 16 characters.")]
AllowedHost = Annotated[list[str] | None, typer.Option(
    "--allowed-host", help="Another host name browsers reach this server by (a proxy's; repeatable). "
                           "Requests naming any other host are refused (DNS rebinding).")]


@serve_app.command("kmeans")
def serve_kmeans(
    dataset: Annotated[str, typer.Option(help="mnist or fashion-mnist.")] = "mnist",
    k: Annotated[int, typer.Option(help="Number of clusters.")] = 64,
    checkpoint: Annotated[Path | None, typer.Option(
        help="A zoo checkpoint: cluster its layers' activations (eq. 2.6) instead of pixels.")] = None,
    layers: Annotated[str, typer.Option(help="Comma-separated layers of the checkpoint's model.")] = (
        "act2,act4"),
    split: Annotated[str, typer.Option(help="Which split to cluster.")] = "train",
    batch_size: int = 1024,
    host: Host = "127.0.0.1",
    port: Port = 8765,
    token: Token = None,
    allowed_host: AllowedHost = None,
    data_root: DataRoot = None,
) -> None:
    """Interactive k-means with a size-balance slider (and one weight slider per layer)."""
    from modeldx.data import load_dataset
    from modeldx.interactive.features import layer_features, pixel_features
    from modeldx.interactive.sessions import kmeans_session
    from modeldx.live.server import reserve, serve
    from modeldx.zoo import load_checkpoint

    sock = reserve(host, port, token)  # refuse an open bind, take the port: before loading anything
    data = load_dataset(dataset, split, root=data_root)
    pixels, _, _ = pixel_features(data)
    images = pixels.reshape(len(data), *data.get_batch([0])[0].shape[-2:])
    if checkpoint is None:
        features, blocks, names = pixels, None, None
    else:
        model, _ = load_checkpoint(checkpoint)
        features, blocks, names = layer_features(model, data, [s.strip() for s in layers.split(",")])
    session = kmeans_session(features, k, blocks=blocks, block_names=names, images=images,
                             batch_size=batch_size)
    serve(session, host=host, port=port, token=token, announce=console.print, sock=sock,
          allowed_hosts=allowed_host or ())


@serve_app.command("lda")
def serve_lda(
    k: Annotated[int, typer.Option(help="Number of topics (the k choice changes it on restart).")] = 20,
    batch: Annotated[int, typer.Option("--batch", help="Documents per step.")] = 256,
    nsamps: Annotated[int, typer.Option(help="SAME's replicated samples m at the start.")] = 100,
    min_count: Annotated[int, typer.Option(help="Keep words seen at least this often in training.")] = 5,
    max_doc_share: Annotated[float, typer.Option(help="Drop words in more documents than this share.")] = 0.5,
    seed: int = 0,
    host: Host = "127.0.0.1",
    port: Port = 8765,
    token: Token = None,
    allowed_host: AllowedHost = None,
    data_root: DataRoot = None,
) -> None:
    """Interactive LDA on Reuters-21578 (ModApte train; perplexity on test): nsamps, L1 and cosine sliders."""
    from modeldx._params import Interval, check_params
    from modeldx.data import load_reuters
    from modeldx.interactive.sessions import MAX_TOPICS, lda_session
    from modeldx.live.server import reserve, serve

    # the flags first: a bad one is an error now, not after loading Reuters
    check_params("serve lda", {"k": k, "batch": batch, "nsamps": nsamps},
                 {"k": Interval(int, 2, MAX_TOPICS), "batch": Interval(int, 1, None),
                  "nsamps": Interval(int, 1, None)})
    sock = reserve(host, port, token)  # refuse an open bind, take the port: before loading anything
    train = load_reuters("train", root=data_root, min_count=min_count, max_doc_share=max_doc_share)
    test = load_reuters("test", root=data_root, vocabulary=train.vocabulary)
    session = lda_session(train, k, test=test, batch_size=batch, nsamps=nsamps, seed=seed)
    serve(session, host=host, port=port, token=token, announce=console.print, sock=sock,
          allowed_hosts=allowed_host or ())


@serve_app.command("classifier")
def serve_classifier(
    dataset: Annotated[str, typer.Option(help="mnist or fashion-mnist.")] = "mnist",
    model: Annotated[str, typer.Option(
        help="Zoo architecture: lenet5, deepcnn, plaincnn, plaincnn-bn or resnet.")] = "lenet5",
    host: Host = "127.0.0.1",
    port: Port = 8765,
    token: Token = None,
    allowed_host: AllowedHost = None,
    data_root: DataRoot = None,
) -> None:
    """Train a zoo classifier with learning-rate and weight-decay sliders and live loss/accuracy."""
    from modeldx.data import load_dataset
    from modeldx.interactive.sessions import classifier_session
    from modeldx.live.server import reserve, serve

    sock = reserve(host, port, token)  # refuse an open bind, take the port: before loading anything
    session = classifier_session(load_dataset(dataset, "train", root=data_root),
                                 load_dataset(dataset, "test", root=data_root), arch=model)
    serve(session, host=host, port=port, token=token, announce=console.print, sock=sock,
          allowed_hosts=allowed_host or ())


@serve_app.command("ldam")
def serve_ldam(
    checkpoint: Annotated[Path, typer.Argument(help="A zoo checkpoint (modeldx train).")],
    store: Annotated[Path | None, typer.Option(help="A store of this model: enables the neuron map.")] = None,
    discriminator: Annotated[bool, typer.Option(help="Train Algorithm 2's discriminator on real images.")] = (
        True),
    chains: int = 8,
    host: Host = "127.0.0.1",
    port: Port = 8765,
    token: Token = None,
    allowed_host: AllowedHost = None,
    data_root: DataRoot = None,
) -> None:
    """LDAM live: chains animate while sliders change L2, step size, noise and the discriminator weight."""
    import numpy as np

    from modeldx.api import open_store  # checks the store was captured from this model
    from modeldx.data import load_dataset
    from modeldx.ldam.session import ldam_session
    from modeldx.live.server import reserve, serve
    from modeldx.zoo import load_checkpoint

    sock = reserve(host, port, token)  # refuse an open bind, take the port: before loading anything
    model, meta = load_checkpoint(checkpoint)
    train_set = load_dataset(meta.get("dataset", "mnist"), "train", root=data_root)
    reals = train_set.get_batch(np.arange(min(10_000, len(train_set))))[0] if discriminator else None
    st = open_store(store, model=model) if store is not None else None
    session = ldam_session(model, _image_shape(train_set), real_images=reals, store=st, chains=chains)
    serve(session, host=host, port=port, token=token, announce=console.print, sock=sock,
          allowed_hosts=allowed_host or ())


@serve_app.command("capture")
def serve_capture_command(
    store: Annotated[str, typer.Argument(
        help="The store a capture writes (or, with --checkpoint, will write): a folder or an fsspec URL.",
        metavar="<path>")],
    checkpoint: Annotated[Path | None, typer.Option(
        help="A zoo checkpoint: capture it into STORE in the background while the page follows. "
             "Without it, follow a capture started elsewhere.")] = None,
    dataset: Annotated[str, typer.Option(help="With --checkpoint: the data set.")] = "mnist",
    splits: Annotated[str, typer.Option(help="With --checkpoint: comma-separated splits.")] = "train,test",
    chunk_items: Annotated[int, typer.Option(
        min=1, help="With --checkpoint: items per chunk; the answer refines per chunk.")] = 1000,
    order: Annotated[str, typer.Option(
        help="With --checkpoint: chunk order, random (answers are a sample) or ascending.")] = "random",
    seed: Annotated[int, typer.Option(help="With --checkpoint: seed of the random chunk order.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="With --checkpoint: replace a finished store.")] = False,
    k: Annotated[int, typer.Option(min=1, help="Neurons per group in the answer.")] = 10,
    replicates: Annotated[int, typer.Option(min=10, help="Replicates of the confidence.")] = 100,
    device: str = "auto",
    host: Host = "127.0.0.1",
    port: Port = 8765,
    token: Token = None,
    allowed_host: AllowedHost = None,
    data_root: DataRoot = None,
) -> None:
    """A capture's progress and its headline answer converging, with each neuron's confidence."""
    import threading

    from modeldx._params import OneOf, check_params
    from modeldx.errors import StoreNotFoundError
    from modeldx.live.capture_app import CaptureView, serve_capture
    from modeldx.live.server import reserve

    check_params("serve capture", {"order": order}, {"order": OneOf("random", "ascending")})
    sock = reserve(host, port, token)  # refuse an open bind, take the port: before loading anything
    failure: list[str] = []
    try:
        from modeldx.store.fs import StoreFS

        if checkpoint is None and not StoreFS(store).exists():
            raise StoreNotFoundError(f"no store at {store}: start the capture first, or pass --checkpoint to "
                                     "capture into it from here")
        if checkpoint is not None:
            from modeldx.capture import capture as run_capture
            from modeldx.zoo import load_checkpoint

            model, _ = load_checkpoint(checkpoint)
            data = _splits(dataset, splits, data_root)

            def work() -> None:
                try:
                    run_capture(model, data, store, chunk_items=chunk_items, chunk_order=order,
                                seed=seed, overwrite=overwrite, device=device, progress=False)
                except Exception as exc:  # noqa: BLE001 - shown on the page; the store stays resumable
                    failure.append(f"{type(exc).__name__}: {exc}")

            # a daemon: interrupting the server stops the capture too; its chunks so far stay, resumable
            threading.Thread(target=work, daemon=True, name="modeldx-capture").start()
        view = CaptureView(store, k=k, replicates=replicates, error=lambda: failure[0] if failure else None)
    except BaseException:
        sock.close()
        raise
    serve_capture(view, host=host, port=port, token=token, sock=sock, allowed_hosts=allowed_host or (),
                  announce=lambda line: console.print(line, soft_wrap=True))  # a URL never broken in two


@app.command()
def explore(
    store: Annotated[Path, typer.Argument(help="A store (modeldx capture).")],
    checkpoint: Annotated[Path | None, typer.Option(
        help="The store's zoo checkpoint: the model's layer graph, weight bundles and LDAM images.")] = None,
    sample: Annotated[str | None, typer.Option(
        help="A sample saved in the store: compute on it, weighted.")] = None,
    k: Annotated[int | None, typer.Option(min=2, help="Clusters per layer (default: by silhouette).")] = None,
    center: Annotated[bool, typer.Option(
        help="Cluster by class means minus each neuron's mean; --no-center: raw cosine.")] = True,
    host: Host = "127.0.0.1",
    port: Port = 8765,
    token: Token = None,
    allowed_host: AllowedHost = None,
    data_root: DataRoot = None,
) -> None:
    """The network explorer: layers as columns of neuron clusters, bundles between them, in the browser."""
    from modeldx.api import open_store  # checks the store was captured from this model
    from modeldx.live.explorer_app import serve_explorer
    from modeldx.live.server import reserve
    from modeldx.neurons.explore import Explorer
    from modeldx.zoo import load_checkpoint

    sock = reserve(host, port, token)  # refuse an open bind, take the port: before loading anything
    try:
        model = load_checkpoint(checkpoint)[0] if checkpoint is not None else None
        explorer = Explorer(open_store(store, model=model), model, sample=sample, k=k, center=center,
                            data_root=data_root)
    except BaseException:
        sock.close()
        raise
    console.print(f"computed clusters, matrices and bundles of {len(explorer.layers)} layers in "
                  f"{explorer.compute_s:.2f} s")
    serve_explorer(explorer, host=host, port=port, token=token, sock=sock, allowed_hosts=allowed_host or (),
                   announce=lambda line: console.print(line, soft_wrap=True))  # a URL never broken in two


@app.command()
def dynamics(
    run: Annotated[Path, typer.Argument(help="A recorded run (modeldx.dynamics.record).")],
    checkpoint: Annotated[Path | None, typer.Option(
        help="A zoo checkpoint of the run's architecture (its weights are not used: each snapshot's "
             "come from the run): lets the neuron view name contributors.")] = None,
    host: Host = "127.0.0.1",
    port: Port = 8765,
    token: Token = None,
    allowed_host: AllowedHost = None,
) -> None:
    """Training dynamics in the browser: loss and layers over time, sampled neuron series, contributors."""
    from modeldx.dynamics import open_run
    from modeldx.live.dynamics_app import serve_dynamics
    from modeldx.live.server import reserve
    from modeldx.zoo import load_checkpoint

    sock = reserve(host, port, token)  # refuse an open bind, take the port: before loading anything
    try:
        recorded = open_run(run)
        model = load_checkpoint(checkpoint)[0] if checkpoint is not None else None
    except BaseException:
        sock.close()
        raise
    serve_dynamics(recorded, model=model, host=host, port=port, token=token, sock=sock,
                   allowed_hosts=allowed_host or (),
                   announce=lambda line: console.print(line, soft_wrap=True))  # a URL never broken in two


if __name__ == "__main__":  # pragma: no cover
    app()
