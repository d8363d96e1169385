"""The per-stem "hybrid" four-stem split (separation/learned4.py): bass from the bundled learned
splitter (umx-synth4), drums from the DSP split of the rest. The stems sum to the song, the streamed
form equals the whole-array one across windows, the choice reaches the CLI and the pipeline, and the
cache variant is distinct from the DSP and learned ones."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import make_song

from unmix_desktop import outputs
from unmix_desktop.audio.io import load_audio, save_audio
from unmix_desktop.cache import StemCache
from unmix_desktop.separation import learned4
from unmix_desktop.separation import pipeline as pl
from unmix_desktop.separation.fourstems import four_stems, split_accompaniment


@pytest.fixture(scope="module")
def two_stems():
    song = make_song(3.0, seed=3)
    return {"vocals": song["vocals"], "accompaniment": song["mixture"] - song["vocals"]}, song["mixture"]


def test_hybrid_takes_the_learned_bass_and_the_dsp_drums_and_sums_to_the_song(two_stems):
    stems, mixture = two_stems
    acc = stems["accompaniment"]
    out = four_stems(stems, model="hybrid")
    assert list(out) == ["vocals", "drums", "bass", "other"]
    assert np.abs(sum(out.values()) - mixture).max() < 1e-5
    learned = learned4.split_accompaniment_learned(acc, learned4.HYBRID_SPLITTER)
    np.testing.assert_allclose(out["bass"], learned["bass"], atol=1e-6)
    np.testing.assert_allclose(out["drums"], split_accompaniment(acc - learned["bass"])["drums"], atol=1e-6)
    assert all(np.sqrt(np.mean(out[k] ** 2)) > 1e-4 for k in ("drums", "bass", "other"))
    dsp = four_stems(stems, model="dsp")
    assert not np.allclose(dsp["bass"], out["bass"], atol=1e-4)


def test_stream_hybrid_equals_the_whole_array_split_across_windows():
    song = make_song(6.0, seed=4)
    acc = song["mixture"] - song["vocals"]
    opts = {"learned_window_s": 2.0, "window_s": 1.5, "overlap_s": 0.25}  # several windows of both stages
    whole = learned4.split_accompaniment_hybrid(acc, **opts)
    blocks = ((o, {"vocals": song["vocals"][o:o + 5000], "accompaniment": acc[o:o + 5000]})
              for o in range(0, acc.shape[0], 5000))
    fractions = []
    got = list(learned4.stream_hybrid(blocks, progress=fractions.append, frames=acc.shape[0], **opts))
    assert [o for o, _ in got] == sorted(o for o, _ in got) and len(got) > 2
    parts = {k: np.concatenate([b[k] for _, b in got]) for k in ("vocals", "drums", "bass", "other")}
    for k in ("drums", "bass", "other"):
        np.testing.assert_allclose(parts[k], whole[k], atol=2e-5)
    np.testing.assert_array_equal(parts["vocals"], song["vocals"])
    assert np.abs(sum(parts.values()) - song["mixture"]).max() < 1e-5
    assert fractions[-1] == 1.0


def test_cache_variants_are_distinct_and_the_default_is_named():
    variants = {pl.four_stem_variant(m) for m in ("dsp", "hybrid", "umx-synth4")}
    assert len(variants) == 3 and pl.four_stem_variant("dsp") == pl.FOUR_STEMS_VARIANT
    assert pl.four_stem_variant(None) == pl.four_stem_variant(learned4.DEFAULT)
    assert pl.SongRequest("x", "m", four_stems=True, four_stem_model="hybrid").variant == "4stems-hybrid"


def test_the_pipeline_runs_the_hybrid_and_caches_it_apart(tmp_path, tiny_umx):
    path = save_audio(tmp_path / "song.wav", make_song(3.0)["mixture"], subtype="FLOAT")
    pipe = pl.Pipeline(lambda name: tiny_umx, StemCache(tmp_path / "stems"), threads=1)
    hybrid = pipe.run(pl.SongRequest(path, "tiny", four_stems=True, four_stem_model="hybrid"))
    dsp = pipe.run(pl.SongRequest(path, "tiny", four_stems=True, four_stem_model="dsp"))
    assert list(hybrid.stems) == ["vocals", "drums", "bass", "other"] == list(dsp.stems)
    np.testing.assert_allclose(sum(hybrid.stems.values()), hybrid.mixture, atol=1e-4)
    expected = learned4.split_accompaniment_learned(hybrid.mixture - hybrid.stems["vocals"], "umx-synth4")["bass"]
    np.testing.assert_allclose(hybrid.stems["bass"], expected, atol=1e-4)
    assert not np.allclose(hybrid.stems["bass"], dsp.stems["bass"], atol=1e-4)
    again = pipe.run(pl.SongRequest(path, "tiny", four_stems=True, four_stem_model="hybrid"))
    assert again.from_cache
    np.testing.assert_array_equal(again.stems["bass"], hybrid.stems["bass"])


def test_separate_cli_hybrid_streams_and_sums(tmp_path, tiny_umx):
    from unmix_desktop.separation.bundle import save_bundle

    model = save_bundle(tmp_path / "tiny-model", tiny_umx)
    mixture = make_song(3.0)["mixture"]
    src = save_audio(tmp_path / "s.wav", mixture * (0.5 / np.abs(mixture).max()), subtype="FLOAT")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    base = [sys.executable, "-m", "unmix_desktop.cli", "separate", str(src), "--model-file", str(model),
            "--stems", "4", "--quiet", "--format", "wavf", "--out"]
    outs = {}
    for name in ("hybrid", "dsp"):
        r = subprocess.run(base + [str(tmp_path / name), "--four-stem-model", name], capture_output=True,
                           text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        outs[name] = {k: load_audio(tmp_path / name / "s" / f"{k}.wav") for k in ("vocals", "drums", "bass", "other")}
        assert np.abs(sum(outs[name].values()) - load_audio(src)).max() < 1e-4
    assert not np.allclose(outs["hybrid"]["bass"], outs["dsp"]["bass"], atol=1e-4)
    np.testing.assert_allclose(outs["hybrid"]["vocals"], outs["dsp"]["vocals"], atol=1e-6)
    help_text = subprocess.run([sys.executable, "-m", "unmix_desktop.cli", "separate", "--help"], capture_output=True,
                               text=True, env=env, timeout=120).stdout
    assert "hybrid" in help_text and f"default: {learned4.DEFAULT}" in help_text
    # the outputs' marker names the method, the default resolved: a later default is a new job
    assert outputs.read_job(tmp_path / "hybrid" / "s")["four_stem_model"] == "hybrid"
    r = subprocess.run(base + [str(tmp_path / "default")], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert outputs.read_job(tmp_path / "default" / "s")["four_stem_model"] == learned4.DEFAULT


def test_preferences_offer_the_hybrid_and_give_it_back(qtbot):
    from unmix_desktop.ui.dialogs import HYBRID_LABEL, Preferences, PreferencesDialog

    prefs = Preferences("tiny", 1, True, "wav", None, "hybrid")
    dialog = PreferencesDialog(prefs, [("tiny", "a model")], [], True, "", splitters=["umx-synth4"])
    qtbot.addWidget(dialog)
    assert dialog.stems_combo.currentText() == HYBRID_LABEL  # the saved choice is shown
    assert dialog.preferences().four_stem_model == "hybrid" and dialog.preferences().four_stems
    dialog.stems_combo.setCurrentIndex(1)  # the DSP split, after the model's own stems
    assert dialog.preferences().four_stem_model == "dsp"
    # without the bundled splitter there is no hybrid to offer
    bare = PreferencesDialog(prefs, [("tiny", "a model")], [], True, "", splitters=[])
    qtbot.addWidget(bare)
    assert HYBRID_LABEL not in [bare.stems_combo.itemText(i) for i in range(bare.stems_combo.count())]
