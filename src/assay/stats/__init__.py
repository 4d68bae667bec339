"""Statistics, the bottom layer: pure, seeded functions that every other package (evals, report, judge, chat,
benchmarks) imports from here. Nothing in this package imports from assay above ``common`` / ``errors``
(tests/test_layers.py checks it).

- ``intervals``  Wilson intervals for proportions, bootstrap intervals for means and corpus metrics, the summaries
                 a scorecard prints (``proportion_summary``, ``mean_summary``).
- ``paired``     two runs on the same samples: exact McNemar, paired bootstrap, sign-flip permutation, minimum
                 detectable difference, the verdict (``compare_scores`` → ``PairedResult``).
- ``agreement``  Cohen's kappa with a bootstrap interval (judge vs judge, judge vs human).
- ``ratings``    Bradley-Terry ratings on the Elo scale with bootstrap intervals, win-rate matrices.
- ``gate``       fixed-n non-inferiority of a candidate against a base (non_inferior / worse / undecided, exit
                 0 / 1 / 2) with a margin, absolute or relative, and the samples that would likely decide.
- ``sequential`` the anytime-valid confidence sequence (hedged-capital betting CS) and the same verdicts under
                 peeking after every batch (docs/gate.md).

The rules they implement are in docs/architecture.md ("Statistics rules").
"""

from assay.stats.agreement import Kappa, cohen_kappa
from assay.stats.gate import (EXIT_CODES, NON_INFERIOR, UNDECIDED, WORSE, GateResult, Margin, bonett_price,
                              gate_decision, samples_needed)
from assay.stats.intervals import (Z95, bootstrap_ci, bootstrap_corpus_ci, mean_summary, proportion_summary,
                                   resampled_means, wilson)
from assay.stats.paired import (ALPHA, POWER, PairedResult, compare_scores, discordant, format_p, mcnemar_exact,
                                min_detectable_diff, min_discordant_for_significance, paired_bootstrap, sign_flip_p,
                                verdict)
from assay.stats.ratings import ELO_BASE, ELO_SCALE, BTResult, bradley_terry, win_matrix
from assay.stats.sequential import (HedgedCS, SequentialResult, hedged_cs, paired_diff_cs, sequential_decision,
                                    sequential_gate)

__all__ = ["ALPHA", "ELO_BASE", "ELO_SCALE", "POWER", "Z95", "BTResult", "Kappa", "PairedResult", "bootstrap_ci",
           "bootstrap_corpus_ci", "bradley_terry", "cohen_kappa", "compare_scores", "discordant", "format_p",
           "mcnemar_exact", "mean_summary", "min_detectable_diff", "min_discordant_for_significance",
           "paired_bootstrap", "proportion_summary", "resampled_means", "sign_flip_p", "verdict", "win_matrix",
           "wilson",
           # gate / sequential (issue 28)
           "EXIT_CODES", "NON_INFERIOR", "UNDECIDED", "WORSE", "GateResult", "HedgedCS", "Margin", "SequentialResult",
           "bonett_price", "gate_decision", "hedged_cs", "paired_diff_cs", "samples_needed", "sequential_decision",
           "sequential_gate"]
