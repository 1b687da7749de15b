"""The progress bar: silent by default, a tqdm bar on stderr with ``verbose``."""

import re

import joblib
import numpy as np
import pytest
from tqdm import tqdm

import skemd._cli_solve
import skemd._engine
import skemd._progress
from skemd import PairwiseEMDTransformer, emd_batch, iter_emd_batch
from skemd._cli import main
from skemd._progress import progress_bar


@pytest.fixture
def M(rng):
    return rng.random((1000, 4, 4))


@pytest.fixture
def bars(monkeypatch):
    """Every bar the engine makes, as it makes them."""
    made = []

    def recording(*args, **kwargs):
        made.append(progress_bar(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(skemd._engine, "progress_bar", recording)
    return made


def _last_draw(err):
    return err.rstrip("\n").split("\r")[-1]


def test_nothing_is_printed_by_default(M, capfd):
    emd_batch(M, n_jobs=2)
    for _ in iter_emd_batch(M, n_jobs=2, batch_size=100):
        pass
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize(
    "backend", ["threading", pytest.param("loky", marks=pytest.mark.slow)]
)
def test_the_bar_reaches_the_total_on_every_backend(M, backend, capfd):
    expected = emd_batch(M).distance
    with joblib.parallel_config(backend=backend):
        res = emd_batch(M, n_jobs=2, verbose=1)
    np.testing.assert_array_equal(res.distance, expected)
    out, err = capfd.readouterr()
    last = _last_draw(err)
    assert out == "" and err.endswith("\n")
    assert last.startswith("100%") and "1000/1000" in last and "problems/s" in last
    assert "Done" not in err  # verbose=1 is the bar alone, not joblib's messages


def test_verbose_2_adds_joblibs_messages(M, capfd):
    emd_batch(M, n_jobs=2, verbose=2)
    err = capfd.readouterr().err
    assert "1000/1000" in err
    assert "Done   8 out of   8" in err  # 8 chunks


def test_a_single_chunk_shows_the_bar_too(M, capfd):
    emd_batch(M[:10], verbose=True)
    assert "10/10" in _last_draw(capfd.readouterr().err)


@pytest.mark.parametrize("ordered", [True, False])
def test_the_stream_closes_its_bar_when_exhausted(M, bars, ordered, capfd, monkeypatch):
    monkeypatch.setattr(skemd._progress, "_MININTERVAL", 0)  # draw every chunk
    seen = 0
    for rows, _ in iter_emd_batch(
        M, n_jobs=2, batch_size=100, verbose=1, ordered=ordered
    ):
        assert bars[0] in tqdm._instances  # open while the stream is
        seen += rows.stop - rows.start
        assert f"{seen}/1000" in capfd.readouterr().err
    assert bars[0] not in tqdm._instances
    err = capfd.readouterr().err
    assert err.endswith("\n") and "1000/1000" in _last_draw(err)


# joblib says that it cancelled the chunks in flight.
@pytest.mark.filterwarnings("ignore:.*successfully executed:UserWarning")
def test_the_stream_closes_its_bar_when_closed_early(M, bars, capfd):
    stream = iter_emd_batch(M, n_jobs=2, batch_size=100, verbose=1)
    next(stream)
    assert bars[0] in tqdm._instances
    stream.close()
    assert bars[0] not in tqdm._instances
    err = capfd.readouterr().err
    assert err.endswith("\n") and "100/1000" in _last_draw(err)


def test_pairwise_counts_the_pairs_it_solves(rng, solved, capfd):
    X = rng.random((10, 5, 2))
    est = PairwiseEMDTransformer(verbose=1).fit(X)
    est.fit_transform(X)
    est.transform(rng.random((4, 5, 2)))
    draws = re.findall(r"100%.*?(\d+)/(\d+)", capfd.readouterr().err)
    assert solved == [45, 40]  # the upper triangle, then every new pair
    assert [(int(n), int(total)) for n, total in draws] == [(45, 45), (40, 40)]


def test_a_resumed_bar_counts_only_this_runs_rate(capsys):
    with progress_bar(1000, initial=900) as bar:
        assert "900/1000" in capsys.readouterr().err  # drawn at the start
        bar.start_t -= 10  # as if this run had taken 10 s
        bar.update(100)
    last = _last_draw(capsys.readouterr().err)
    assert "1000/1000" in last
    # 100 problems in 10 s, not the 1000 that the bar has counted.
    rate = float(re.search(r"([\d.]+)problems/s", last).group(1))
    assert rate == pytest.approx(10, rel=0.01)


def test_a_resumed_cli_run_starts_the_bar_at_the_problems_done(
    rng, tmp_path, monkeypatch, capsys
):
    np.save(tmp_path / "M.npy", rng.random((300, 4, 4)))
    argv = ["solve", str(tmp_path / "M.npy"), "-o", str(tmp_path / "out.npz")]
    argv += ["--n-jobs", "1"]
    solve = skemd._cli_solve.iter_emd_batch

    def interrupted(*args, **kwargs):
        for i, chunk in enumerate(solve(*args, **kwargs)):
            if i == 10:
                raise KeyboardInterrupt
            yield chunk

    monkeypatch.setattr(skemd._cli_solve, "iter_emd_batch", interrupted)
    assert main(argv) == 130
    capsys.readouterr()
    saved = len(list((tmp_path / "out.npz.partial").glob("chunk-*.npz")))
    done = 3 * saved  # 100 chunks of 3 problems
    assert saved >= 10
    monkeypatch.setattr(skemd._cli_solve, "iter_emd_batch", solve)
    assert main(argv) == 0
    draws = capsys.readouterr().err.split("\r")
    assert f" {done}/300 " in draws[1]  # the first draw, before any chunk
    assert f"{100 - saved} chunks" in draws[-1]
    assert any(draw.startswith("100%") and "300/300" in draw for draw in draws)


def test_quiet_cli_prints_nothing(rng, tmp_path, capsys):
    np.save(tmp_path / "M.npy", rng.random((30, 4, 4)))
    argv = ["solve", str(tmp_path / "M.npy"), "-o", str(tmp_path / "out.npz")]
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
