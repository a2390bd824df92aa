"""Exact and near dedup on hand-made documents: verification maths, keep rule, tiers, the on-disk index."""

from __future__ import annotations

import json
import pickle
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from truecost.curate.dedup import (
    NearDedupParams,
    cluster_signatures,
    find_exact_duplicates,
    find_near_duplicates,
    hashing,
    near_signature,
    near_signatures,
    similarity,
)
from truecost.curate.dedup.index import NearIndex
from truecost.curate.document import Document, split_words
from truecost.errors import UserError

NOTICE = (
    "This library is free software. You may copy it, change it and share it, on the condition that every copy "
    "you pass on carries this notice and the list of conditions below, unchanged. The authors give no warranty "
    "of any kind: not that it works, not that it suits any purpose, and not that it will not damage your data. "
    "If the software breaks, you keep both pieces. Contributions sent to the project are accepted under the "
    "same terms, unless the contributor states otherwise in writing before the change is merged."
)
GUIDE = (
    "To build the documentation, install the theme first, then run the make target named html from the top "
    "folder. The pages appear under the build directory and can be opened in any browser without a server. "
    "Each chapter lives in its own file; a new chapter must be listed in the table of contents or the build "
    "will warn about an orphan page. Pictures go beside the chapter that uses them, and their names should say "
    "what they show rather than when they were taken. Broken links fail the nightly check."
)
RECIPE = (
    "Soak the beans overnight in plenty of cold water, drain them, and cover them again with fresh water. "
    "Bring the pot to a gentle boil, skim the foam, and lower the heat until the surface barely moves. Add the "
    "onion, two bay leaves and a spoon of oil, but no salt yet, since salt this early keeps the skins tough. "
    "After about an hour taste one bean; when it is creamy all the way through, season, stir, and rest the pot "
    "off the heat for ten minutes before serving with bread."
)


def change_words(text: str, positions: list[int], new: str = "zebra") -> str:
    """`text` with the words at `positions` replaced, keeping everything else."""
    words = text.split(" ")
    for p in positions:
        words[p] = f"{new}{p}"
    return " ".join(words)


def docs(*texts: str) -> list[Document]:
    return [Document(id=f"d{i}", text=t) for i, t in enumerate(texts)]


def brute_lcs(a: list[int], b: list[int]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def test_bit_parallel_lcs_equals_dynamic_programming() -> None:
    rng = random.Random(3)
    for _ in range(300):
        a = [rng.randint(0, 6) for _ in range(rng.randint(0, 70))]
        b = [rng.randint(0, 6) for _ in range(rng.randint(0, 70))]
        arr_a, arr_b = np.array(a, dtype=np.uint32), np.array(b, dtype=np.uint32)
        assert similarity.lcs_length(arr_a, arr_b) == brute_lcs(a, b)
        sim = similarity.edit_similarity(arr_a, arr_b)
        assert similarity.bag_bound(similarity.bag_keys(arr_a), similarity.bag_keys(arr_b)) >= sim - 1e-12
        assert similarity.length_bound(len(a), len(b)) >= sim - 1e-12


def test_minhash_estimates_jaccard_of_shingle_sets() -> None:
    words = split_words(NOTICE + " " + GUIDE)
    other = words[:60] + split_words(RECIPE) + words[60:]
    ha, hb = hashing.word_hashes(words), hashing.word_hashes(other)
    sa, sb = hashing.shingle_hashes(ha, 2), hashing.shingle_hashes(hb, 2)
    true_jaccard = len(np.intersect1d(sa, sb)) / len(np.union1d(sa, sb))
    a, b = hashing.permutation_params(512, seed=5)
    estimate = float(np.mean(hashing.minhash(sa, a, b) == hashing.minhash(sb, a, b)))
    # 512 permutations: standard error sqrt(J(1-J)/512) < 0.023; allow four of them.
    assert abs(estimate - true_jaccard) < 0.09, (estimate, true_jaccard)
    assert 0.3 < true_jaccard < 0.8


def test_word_hashes_ignore_case_only() -> None:
    h = hashing.word_hashes(["Licence", "licence", "LICENCE", "licences", "été", "ÉTÉ"])
    assert h[0] == h[1] == h[2] != h[3]
    assert h[4] == h[5]
    assert len(set(hashing.word_hashes(split_words(GUIDE)).tolist())) == len(set(w.lower() for w in split_words(GUIDE)))


def test_short_notice_with_a_few_changed_words_is_found() -> None:
    # 86 words, 4 scattered changes: word 5-gram Jaccard is ~0.6, edit similarity ~0.95.
    variant = change_words(NOTICE, [5, 25, 45, 70])
    result = find_near_duplicates(docs(NOTICE, GUIDE, variant, RECIPE))
    assert result.cluster_of == {"d0": "d0", "d1": None, "d2": "d0", "d3": None}
    reason = result.removed["d2"]
    assert reason["rule"] == "near_duplicate" and reason["kept"] == "d0" and reason["matched"] == "d0"
    expected = similarity.edit_similarity(hashing.word_hashes(split_words(NOTICE)),
                                          hashing.word_hashes(split_words(variant)))
    assert reason["similarity"] == pytest.approx(expected, abs=1e-4)
    assert reason["threshold"] == NearDedupParams().threshold


def test_documents_below_the_threshold_stay_apart() -> None:
    # Every third word changed: a third of the words differ, far below 0.75.
    positions = list(range(0, len(NOTICE.split(" ")), 3))
    result = find_near_duplicates(docs(NOTICE, change_words(NOTICE, positions)))
    assert result.removed == {}
    assert result.cluster_of == {"d0": None, "d1": None}


def test_keep_rule_keeps_the_longest_then_the_first() -> None:
    longer = NOTICE + " Questions go to the mailing list."
    same_length = change_words(NOTICE, [10])
    result = find_near_duplicates(docs(same_length, NOTICE, longer, GUIDE))
    assert result.kept_ids == ["d2", "d3"]
    assert set(result.removed) == {"d0", "d1"}
    assert {result.cluster_of[i] for i in ("d0", "d1", "d2")} == {"d2"}
    # Equal lengths: the earlier one stays.
    result = find_near_duplicates(docs(GUIDE, change_words(NOTICE, [10]), NOTICE))
    assert result.kept_ids == ["d0", "d1"] and result.removed["d2"]["kept"] == "d1"


def test_chains_do_not_join_documents_that_are_not_near_duplicates() -> None:
    # a~b and b~c pass, a~c does not: a cluster keeps one document and removes only those close to it.
    words = NOTICE.split(" ")
    a = NOTICE
    b = change_words(NOTICE, list(range(0, len(words), 6)))
    c = change_words(b, list(range(3, len(words), 6)), new="yak")
    hs = [hashing.word_hashes(split_words(t)) for t in (a, b, c)]
    threshold = NearDedupParams().threshold
    assert similarity.edit_similarity(hs[0], hs[1]) >= threshold
    assert similarity.edit_similarity(hs[1], hs[2]) >= threshold
    assert similarity.edit_similarity(hs[0], hs[2]) < threshold
    result = find_near_duplicates(docs(a, b, c))
    # b reaches both others, so it is the one kept; each removed document is close to b itself.
    assert result.kept_ids == ["d1"] and set(result.removed) == {"d0", "d2"}
    for doc_id, reason in result.removed.items():
        i = int(doc_id[1:])
        assert reason["kept"] == "d1"
        assert reason["similarity"] == pytest.approx(similarity.edit_similarity(hs[i], hs[1]), abs=1e-4)
    # A fourth document close to c only is not removed through the chain: it is its own cluster's kept one.
    d = change_words(c, list(range(1, len(words), 6)), new="emu")
    hd = hashing.word_hashes(split_words(d))
    assert similarity.edit_similarity(hd, hs[1]) < threshold <= similarity.edit_similarity(hd, hs[2])
    result = find_near_duplicates(docs(a, b, c, d))
    for doc_id, reason in result.removed.items():
        kept_words = hashing.word_hashes(split_words((a, b, c, d)[int(reason["kept"][1:])]))
        own = hashing.word_hashes(split_words((a, b, c, d)[int(doc_id[1:])]))
        assert similarity.edit_similarity(own, kept_words) >= threshold
    assert len(result.kept_ids) == 2


def test_pairs_across_a_length_tier_boundary_are_found() -> None:
    params = NearDedupParams(tiers=((0, 2), (100, 3)))
    assert params.tiers_for(80) == [0, 1] and params.tiers_for(30) == [0] and params.tiers_for(500) == [1]
    short = " ".join(GUIDE.split(" ")[:92])
    longer = short + " Ask on the list when in doubt, and say which version of the theme you use."
    result = find_near_duplicates(docs(short, longer, RECIPE), tiers=[[0, 2], [100, 3]])
    assert result.removed["d0"]["kept"] == "d1"


def test_exact_dedup_ignores_case_punctuation_and_spacing() -> None:
    result = find_exact_duplicates(docs(NOTICE, NOTICE.upper().replace(",", " ,  "), GUIDE, NOTICE + " Extra."))
    assert result.cluster_of == {"d0": "d0", "d1": "d0", "d2": None, "d3": None}
    assert result.removed == {"d1": {"rule": "exact_duplicate", "kept": "d0", "matched": "d0", "similarity": 1.0,
                                     "threshold": 1.0}}


def test_signatures_are_the_same_in_another_process() -> None:
    """The Ray map step runs in other processes: signatures must not depend on the process (no hash seed)."""
    params = NearDedupParams()
    local = near_signature("x", split_words(NOTICE), params)
    code = (
        "import pickle,sys;from truecost.curate.dedup import near_signature, NearDedupParams;"
        "from truecost.curate.document import split_words;"
        f"sys.stdout.buffer.write(pickle.dumps(near_signature('x', split_words({NOTICE!r}), NearDedupParams())))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout
    remote = pickle.loads(out)
    assert np.array_equal(local.band_keys, remote.band_keys)
    assert np.array_equal(local.words, remote.words)
    assert local.sequence_hash == remote.sequence_hash


def test_map_and_driver_steps_equal_the_one_call() -> None:
    texts = [NOTICE, GUIDE, change_words(NOTICE, [3, 30]), RECIPE, change_words(GUIDE, [9]), NOTICE]
    documents = docs(*texts)
    params = NearDedupParams()
    split = cluster_signatures([near_signature(d.id, d.words, params) for d in reversed(documents)][::-1], params)
    whole = find_near_duplicates(documents)
    assert split.cluster_of == whole.cluster_of and split.removed == whole.removed


def test_second_dataset_is_deduplicated_against_the_first_through_the_disk_index(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    first = [Document("a1", NOTICE), Document("a2", GUIDE), Document("a3", change_words(GUIDE, [4]))]
    result1 = find_near_duplicates(first, index_dir=index_dir)
    assert result1.removed.keys() == {"a3"}
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert [s["docs"] for s in manifest["segments"]] == [3]

    second = [
        Document("b1", change_words(NOTICE, [12, 50])),  # near copy of a1
        Document("b2", RECIPE),                          # new
        Document("b3", change_words(GUIDE, [20])),       # near copy of the a2/a3 cluster
        Document("b4", change_words(RECIPE, [7])),       # near copy of b2, inside this dataset
    ]
    result2 = find_near_duplicates(second, index_dir=index_dir)
    assert result2.cluster_of == {"b1": "a1", "b2": "b2", "b3": "a2", "b4": "b2"}
    assert set(result2.removed) == {"b1", "b3", "b4"}
    assert result2.removed["b1"]["kept"] == "a1" and result2.removed["b1"]["matched"] == "a1"
    assert result2.stats["indexed_docs"] == 3

    # The index now holds both datasets; a third run sees the second one too, read back from disk.
    reloaded = NearIndex.load(index_dir, NearDedupParams())
    assert [s.id for s in reloaded.signatures] == ["a1", "a2", "a3", "b1", "b2", "b3", "b4"]
    result3 = find_near_duplicates([Document("c1", RECIPE)], index_dir=index_dir, update_index=False)
    assert result3.cluster_of == {"c1": "b2"} and "c1" in result3.removed

    # Running the second dataset again finds every document in the index (itself) and adds nothing.
    again = find_near_duplicates(second, index_dir=index_dir)
    assert set(again.removed) == {"b1", "b2", "b3", "b4"}
    assert again.removed["b2"]["matched"] == "b2"
    assert json.loads((index_dir / "manifest.json").read_text())["docs"] == 7

    with pytest.raises(UserError, match="parameters"):
        find_near_duplicates([Document("c1", RECIPE)], index_dir=index_dir, threshold=0.9)


def test_bad_parameters_and_ids_are_user_errors() -> None:
    with pytest.raises(UserError):
        find_near_duplicates(docs(NOTICE), threshold=1.5)
    with pytest.raises(UserError):
        find_near_duplicates(docs(NOTICE), shingle=3)
    with pytest.raises(UserError):
        find_near_duplicates([Document("same", NOTICE), Document("same", GUIDE)])
    for bad in ({"threshold": "high"}, {"num_bands": 2.5}, {"tiers": [[0, "x"]]}, {"tiers": [[10, 2]]},
                {"rows_per_band": True}):
        with pytest.raises(UserError):
            find_near_duplicates(docs(NOTICE), **bad)
    with pytest.raises(UserError):
        find_exact_duplicates(docs(NOTICE), threshold=0.9)
    with pytest.raises(UserError):
        find_exact_duplicates([Document("same", NOTICE), Document("same", GUIDE)])
    # Recipe values arrive as TOML types: integral floats and lists are accepted.
    assert find_near_duplicates(docs(NOTICE), num_bands=32.0, tiers=[[0, 2]]).stats["params"]["num_bands"] == 32


def test_empty_input_and_empty_documents() -> None:
    assert find_near_duplicates([]).cluster_of == {}
    result = find_near_duplicates(docs("", NOTICE))
    assert result.cluster_of == {"d0": None, "d1": None}


def test_many_near_copies_form_one_cluster_with_few_verifications() -> None:
    """300 near-copies: one cluster, about one exact check per copy rather than one per pair (44,850)."""
    rng = random.Random(11)
    words = NOTICE.split(" ")
    copies = [change_words(NOTICE, rng.sample(range(len(words)), 2), new=f"w{i}x") for i in range(300)]
    result = find_near_duplicates(docs(*copies))
    assert len(result.removed) == 299 and len(set(result.cluster_of.values())) == 1
    assert result.stats["verified_pairs"] < 300 * 6, result.stats  # all pairs would be 44,850


def test_batch_signatures_equal_one_at_a_time() -> None:
    """The vectorised batch map step must give exactly the per-document signatures (its reference)."""
    rng = random.Random(5)
    pool = split_words(NOTICE + " " + GUIDE + " " + RECIPE)
    texts = ["", "one", "two words", "a b c", NOTICE, GUIDE, RECIPE]
    texts += [" ".join(rng.choice(pool) for _ in range(rng.choice([3, 40, 90, 120, 160, 6000]))) for _ in range(25)]
    items = [(f"d{i}", split_words(t)) for i, t in enumerate(texts)]
    params = NearDedupParams()
    batch = near_signatures(items, params)
    for (doc_id, words), got in zip(items, batch, strict=True):
        want = near_signature(doc_id, words, params)
        assert got.id == want.id and got.sequence_hash == want.sequence_hash
        assert np.array_equal(got.words, want.words) and np.array_equal(got.band_keys, want.band_keys), doc_id


def test_a_damaged_index_is_a_user_error(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    find_near_duplicates(docs(NOTICE, GUIDE), index_dir=index_dir)
    segment = next(index_dir.glob("segment-*.npz"))
    segment.write_bytes(b"not a numpy archive")
    with pytest.raises(UserError, match="segment"):
        find_near_duplicates(docs(RECIPE), index_dir=index_dir)
    (index_dir / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match="manifest"):
        find_near_duplicates(docs(RECIPE), index_dir=index_dir)
    with pytest.raises(UserError, match="not a folder"):
        find_near_duplicates(docs(RECIPE), index_dir=segment)


class _ArrayWords:
    """`clusters.WordSource` over word-hash arrays given by gid (the split step's whole view of a corpus)."""

    def __init__(self, texts: list[np.ndarray]) -> None:
        self.texts = texts

    def words(self, gid: int) -> np.ndarray:
        return self.texts[gid]

    def n_words(self, gids: np.ndarray) -> np.ndarray:
        return np.array([len(self.texts[g]) for g in gids.tolist()], dtype=np.int64)

    def sequence_hash(self, gid: int) -> int:
        return hash(self.texts[gid].tobytes())


def test_kept_document_covers_the_exact_copies_that_were_removed_first() -> None:
    """Exact dedup first leaves one member per exact group, standing for its copies (`weight`). The kept document
    must be chosen as if the copies were there, even when the member with many copies falls outside the sample
    of members that ranks the candidates (the shared sample's Apache-notice family was split 83 + 4 that way)."""
    from truecost.curate.dedup import clusters

    threshold = NearDedupParams().threshold
    base = np.arange(100, dtype=np.int64)
    longer = np.concatenate([base, 1000 + np.arange(20)])  # more words, so it wins ties, but misses `heavy`
    n_plain = clusters.REPRESENTATIVE_PROBES + 6
    plain = [np.where(base == i % 100, 5000 + i, base) for i in range(n_plain)]  # one word changed each
    heavy = np.concatenate([base[:75], 9000 + np.arange(25)])  # the last quarter rewritten
    texts = [base, longer, *plain, heavy]
    members = np.arange(len(texts), dtype=np.int64)
    heavy_gid = len(texts) - 1
    weight = {heavy_gid: 10}  # itself and 9 exact copies removed before near dedup
    assert heavy_gid not in clusters._spread(members.tolist(), clusters.REPRESENTATIVE_PROBES)

    def sim(a: int, b: int) -> float:
        return similarity.edit_similarity(texts[a], texts[b])

    assert sim(1, heavy_gid) < threshold <= sim(0, heavy_gid)
    # Brute force: the weighted coverage of every member as the kept document.
    coverage = [sum(weight.get(b, 1) for b in members.tolist() if a == b or sim(a, b) >= threshold)
                for a in members.tolist()]
    split = clusters.split_components(members, np.zeros_like(members), _ArrayWords(texts), threshold,
                                      weight=weight)
    kept = sorted(set(split.kept.tolist()))
    total = len(texts) - 1 + weight[heavy_gid]
    assert max(coverage) == total
    assert [coverage[k] for k in kept] == [total]  # one cluster, kept by a document that covers every copy
    assert heavy_gid in split.gid.tolist()
    removed = split.removed
    for g, k, s in zip(split.gid[removed].tolist(), split.kept[removed].tolist(), split.similarity[removed].tolist(),
                       strict=True):
        assert s == pytest.approx(sim(g, k)) and s >= threshold


def test_sample_over_documents_equals_the_plain_sample_without_copies() -> None:
    """Members with no exact copies are sampled as before (so near dedup alone is unchanged); a member standing for
    a k-th of the documents is always in a sample of k."""
    from truecost.curate.dedup.clusters import _spread

    for n in range(1, 200):
        items = list(range(0, 3 * n, 3))
        for k in (2, 7, 32):
            assert _spread(items, k, {items[0]: 1}) == _spread(items, k)
            heavy = items[-1]
            copies = -(-(n - 1) // (k - 1))  # the least weight w with w >= (n - 1 + w) / k
            sample = _spread(items, k, {heavy: copies})
            assert len(sample) <= k and heavy in sample and sample == sorted(set(sample))
