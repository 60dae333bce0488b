"""The reading of one budget of the reproduction: plain-language bullets generated from the
numbers (RAT against SAT, the soft-label signature, Tables 3 and 4, black-box attacks, untrained
models, the evaluation's self-checks). Each `*_values` function returns the numbers a bullet
quotes, as data.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Optional

from benchmarks import templates_reproduction as T
from benchmarks.results_common import ATTACK_COLUMNS, DATASET_NAMES, LABELS, LARGE_GAP, fmt
from benchmarks.results_tables import PAPER_TABLE4


def _diff(a: float, b: float) -> str:
    return f"{a - b:+.1f}"


def trained_floor(rows: dict[str, dict[str, Any]], dataset: str) -> float:
    """Clean accuracy below which a model counts as barely trained: half of ST's at the same budget
    (a small CNN after 780 steps on CIFAR-10 is far from MNIST's 99%), 50% without an ST row."""
    st = rows.get(f"{dataset}-st")
    return 0.5 * st["clean"] if st else 50.0


def _value(row: dict[str, Any], key: str) -> float:
    return row[key] if key in ("clean", "worst_case") else row["attacks"][key]


def rat_vs_sat_values(sat: dict[str, Any], rat: dict[str, Any]) -> dict[str, Any]:
    """Where RAT is above and below SAT, and the differences (RAT minus SAT, points)."""
    keys = ["clean", *[k for k, _ in ATTACK_COLUMNS if k in sat["attacks"] and k in rat["attacks"]], "worst_case"]
    return {"better": [k for k in keys if _value(rat, k) > _value(sat, k)],
            "worse": [k for k in keys if _value(rat, k) < _value(sat, k)],
            "strongest": {r["name"]: min(r["attacks"], key=r["attacks"].get) for r in (sat, rat)},
            **{f"d_{k}": _value(rat, k) - _value(sat, k) for k in ("clean", "pgd", "worst_case")}}


def _rat_vs_sat(rows: dict[str, dict[str, Any]], dataset: str, sat: dict[str, Any], rat: dict[str, Any],
                noise: Optional[float]) -> list[str]:
    v = rat_vs_sat_values(sat, rat)
    pgd_steps = rat["budget"]["eval"]["pgd_steps"]
    names = {k: label.format(pgd=pgd_steps) for k, label in ATTACK_COLUMNS}
    names.update(clean="clean", worst_case="worst case")
    out = [T.RAT_VS_SAT.substitute(
        dataset=DATASET_NAMES[dataset], better=", ".join(names[k] for k in v["better"]) or "nothing",
        worse=", ".join(names[k] for k in v["worse"]) or "nothing", pgd_label=f"PGD-{pgd_steps}",
        **{f"{who}_{k}": fmt(_value(r, key)) for who, r in (("rat", rat), ("sat", sat))
           for k, key in (("clean", "clean"), ("pgd", "pgd"), ("worst", "worst_case"))},
        d_clean=_diff(rat["clean"], sat["clean"]), d_pgd=_diff(rat["attacks"]["pgd"], sat["attacks"]["pgd"]),
        d_worst=_diff(rat["worst_case"], sat["worst_case"]))]
    out.append(T.STRONGEST.substitute(parts="; ".join(
        f"{name}: {names[k]} ({fmt(rows[name]['attacks'][k])})" for name, k in v["strongest"].items())))
    if sat["clean"] < trained_floor(rows, dataset) <= rat["clean"]:
        out.append(T.CAVEAT.substitute(sat_clean=fmt(sat["clean"]), rat_clean=fmt(rat["clean"])))
    if noise is not None:
        gap = abs(v["d_worst_case"])
        out.append(T.SEED_NOISE.substitute(noise=f"{noise:.1f}", gap=f"{gap:.1f}",
                                           larger="larger" if gap > noise else "not larger"))
    else:
        out.append(T.NO_SECOND_SEED.substitute(dataset=DATASET_NAMES[dataset]))
    out.append(T.PAPER_CLAIM.substitute(dataset=DATASET_NAMES[dataset], d_pgd=_diff(rat["attacks"]["pgd"],
                                        sat["attacks"]["pgd"]), d_worst=_diff(rat["worst_case"], sat["worst_case"])))
    return out


SOFT_LABEL_METHODS = ("rat", "avmixup")


def signature_values(rows: dict[str, dict[str, Any]], dataset: str) -> Optional[dict[str, Any]]:
    """PGD-CE minus the worst case per method of one dataset, split at LARGE_GAP; None without rows.

    "kind" says what the large gaps have in common: "soft_only" (only soft-label methods),
    "not_only_soft" (a one-hot method too), "no_soft_row" or None; "ars_share" is "most" or
    "part" when SAT+ARS (RAT's region samples with one-hot labels) has a large gap.
    """
    gaps = OrderedDict()
    for method in ("rat", "avmixup", "sat", "sat_ars", "trades", "adt"):
        row = rows.get(f"{dataset}-{method}")
        if row and "pgd" in row["attacks"]:
            gaps[method] = row["attacks"]["pgd"] - row["worst_case"]
    if not gaps:
        return None
    large = [m for m, g in gaps.items() if g > LARGE_GAP]
    soft_large = [m for m in large if m in SOFT_LABEL_METHODS]
    hard_large = [m for m in large if m not in SOFT_LABEL_METHODS]
    kind = ("soft_only" if soft_large and not hard_large else "not_only_soft" if soft_large
            else "no_soft_row" if not any(m in SOFT_LABEL_METHODS for m in gaps) else None)
    ars_share = None
    if kind == "not_only_soft" and "sat_ars" in hard_large and "rat" in gaps:
        ars_share = "most" if gaps["sat_ars"] >= 0.5 * gaps["rat"] else "part"
    return {"gaps": gaps, "large": large, "small": [m for m, g in gaps.items() if g <= LARGE_GAP],
            "hard_large": hard_large, "kind": kind, "ars_share": ars_share}


def _signature_reading(rows: dict[str, dict[str, Any]], dataset: str) -> Optional[str]:
    v = signature_values(rows, dataset)
    if v is None:
        return None
    gaps = v["gaps"]
    text = T.SIGNATURE.substitute(dataset=DATASET_NAMES[dataset],
                                  parts=", ".join(f"{LABELS[m]} {g:.1f}" for m, g in gaps.items()))
    if v["large"]:
        text += T.SIGNATURE_LARGE.substitute(limit=f"{LARGE_GAP:g}", methods=", ".join(LABELS[m] for m in v["large"]))
    if v["small"]:
        text += T.SIGNATURE_SMALL.substitute(methods=", ".join(LABELS[m] for m in v["small"]))
    if v["kind"] == "soft_only":
        text += T.SIGNATURE_SOFT_ONLY
    elif v["kind"] == "not_only_soft":
        plural = len(v["hard_large"]) > 1
        text += T.SIGNATURE_NOT_ONLY_SOFT.substitute(methods=", ".join(LABELS[m] for m in v["hard_large"]),
                                                     train="train" if plural else "trains",
                                                     have="have" if plural else "has")
        if v["ars_share"]:
            text += T.SIGNATURE_ARS_SHARE.substitute(share=v["ars_share"], ars_gap=f"{gaps['sat_ars']:.1f}",
                                                     rat_gap=f"{gaps['rat']:.1f}")
    elif v["kind"] == "no_soft_row":
        text += T.SIGNATURE_NO_SOFT
    return text.strip()


def seed_noise(rows: dict[str, dict[str, Any]]) -> Optional[float]:
    """The largest worst-case difference between seeds 0 and 1 of MNIST's SAT and RAT, or None."""
    spreads = []
    for method in ("sat", "rat"):
        a, b = rows.get(f"mnist-{method}"), rows.get(f"mnist-{method}-seed1")
        if a and b:
            spreads.append(abs(a["worst_case"] - b["worst_case"]))
    return max(spreads) if spreads else None


def table4_values(rows: dict[str, dict[str, Any]], noise: Optional[float]) -> Optional[dict[str, Any]]:
    """The beta settings that ran: lowest and best worst case, those above the default by more than `noise`."""
    rat = rows.get("mnist-rat")
    done = [r for r in (rows.get(f"mnist-rat-b{a}-{b}") for (a, b) in PAPER_TABLE4 if (a, b) != ("1.0", "0.1")) if r]
    if not (rat and done):
        return None
    every = [rat, *done]
    return {"settings": len(every), "best": max(every, key=lambda r: r["worst_case"]),
            "low": min(every, key=lambda r: r["worst_case"]), "default": rat,
            "above_noise": (None if noise is None else
                            [r["name"] for r in done if r["worst_case"] - rat["worst_case"] > noise]),
            "every_gap_large": all(r["attacks"]["pgd"] - r["worst_case"] > LARGE_GAP for r in every)}


def reading(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Plain-language reading generated from the numbers of one budget."""
    out = []
    noise = seed_noise(rows)   # second seeds: MNIST only
    for dataset in DATASET_NAMES:
        sat, rat = rows.get(f"{dataset}-sat"), rows.get(f"{dataset}-rat")
        if sat and rat:
            out += _rat_vs_sat(rows, dataset, sat, rat, noise if dataset == "mnist" else None)
    for dataset in DATASET_NAMES:
        text = _signature_reading(rows, dataset)
        if text:
            out.append(text)
    sat, ars, rat = rows.get("mnist-sat"), rows.get("mnist-sat_ars"), rows.get("mnist-rat")   # Tables 3, 4: MNIST
    if sat and ars and rat:
        out.append(T.TABLE3_READING.substitute(
            **{f"{who}_{k}": fmt(r[key]) for who, r in (("sat", sat), ("ars", ars), ("rat", rat))
               for k, key in (("worst", "worst_case"), ("clean", "clean"))},
            d_ars_worst=_diff(ars["worst_case"], sat["worst_case"]), d_ars_clean=_diff(ars["clean"], sat["clean"]),
            d_dls_worst=_diff(rat["worst_case"], ars["worst_case"]), d_dls_clean=_diff(rat["clean"], ars["clean"])))
    t4 = table4_values(rows, noise)
    if t4:
        text = T.TABLE4_READING.substitute(
            settings=t4["settings"], low=fmt(t4["low"]["worst_case"]), low_name=t4["low"]["name"],
            best=fmt(t4["best"]["worst_case"]), best_name=t4["best"]["name"], default=fmt(rat["worst_case"]))
        if t4["above_noise"] is not None:
            text += T.TABLE4_ABOVE_NOISE.substitute(noise=f"{noise:.1f}", above=", ".join(t4["above_noise"]) or "none")
        text += T.TABLE4_PAPER
        if t4["every_gap_large"]:
            text += T.TABLE4_EVERY_GAP.substitute(limit=f"{LARGE_GAP:g}")
        out.append(text + ".")
    weak = [(r["name"], r["attacks"][k], r["worst_case"], label) for r in rows.values() if r["method"] == "st"
            for k, label in (("nattack", "NAttack"), ("square", "Square")) if k in r["attacks"]]
    weak = [w for w in weak if w[1] - w[2] > 10]
    if weak:
        out.append(T.BLACK_BOX.substitute(
            parts="; ".join(T.BLACK_BOX_PART.substitute(attack=label, name=name, accuracy=fmt(acc), worst=fmt(worst))
                            for name, acc, worst, label in weak),
            attacks=" and ".join(sorted({w[3] for w in weak}))))
    chance = [r for r in rows.values() if r["clean"] < 20.0]
    barely = [r for r in rows.values()
              if 20.0 <= r["clean"] < trained_floor(rows, r["name"].split("-")[0]) and r["method"] != "st"]
    if chance:
        out.append(T.NOT_TRAINED.substitute(runs=", ".join(f"{r['name']} (clean {fmt(r['clean'])})" for r in chance)))
    if barely:
        out.append(T.BARELY_TRAINED.substitute(
            runs=", ".join(f"{r['name']} (clean {fmt(r['clean'])})" for r in barely)))
    # evaluate_main's check that PGD-CE is within 3 points of the worst case fires on most robust
    # models; its gaps are the `PGD − worst` column, so it is counted here, not quoted per model.
    fired = [(r["name"], msg) for r in rows.values() for msg in r.get("checks_fired", [])]
    flatters = sorted({name for name, msg in fired if msg.startswith("PGD-CE accuracy is")})
    others = sorted({(name, msg) for name, msg in fired if not msg.startswith("PGD-CE accuracy is")})
    if flatters:
        out.append(T.SELF_CHECKS.substitute(failed=len(flatters), total=len(rows), limit=LARGE_GAP))
    if others:
        out.append(T.OTHER_CHECKS.substitute(checks="; ".join(f"{name}: {msg}" for name, msg in others)))
    elif any("checks_fired" in r for r in rows.values()):
        out.append(T.NO_OTHER_CHECKS)
    return out
