"""Several labellers' yes/no answers for one feature -> the likeliest truth, and how good each labeller is.

Dawid and Skene, "Maximum likelihood estimation of observer error-rates using the EM
algorithm", Applied Statistics 28 (1979) 20-28, for two classes: each item i has a hidden truth
z_i in {0, 1} with prior pi = P(z = 1); labeller j says y_ij = 1 with probability se_j (its
sensitivity) when z_i = 1 and 1 - sp_j (sp_j its specificity) when z_i = 0, independently of the
other labellers given z_i. EM from the majority vote:
  E-step  T_i = pi prod_j se_j^y (1-se_j)^(1-y) / (that + (1-pi) prod_j (1-sp_j)^y sp_j^(1-y)),
          over the labellers that labelled item i (a missing answer drops out of the product)
  M-step  pi = mean T;  se_j = sum_i T_i y_ij / sum_i T_i;  sp_j = sum_i (1-T_i)(1-y_ij) / sum_i (1-T_i)
until no parameter moves more than 1e-6 (at most 200 rounds). Rates are kept in [SMOOTH, 1 -
SMOOTH] (SMOOTH = 1e-3) so one perfect labeller cannot make every other answer irrelevant by a
division by zero, and sensitivities start from the majority vote, which keeps EM out of the
mirror solution (every label read backwards) while most labellers are better than chance.
crowd-kit (Apache-2.0) has the same model, but needs pandas, pyarrow, nltk and transformers in
the light core; these lines are all it takes for two classes.

Independence given the true label is the model's assumption. `error_correlation` measures what
it ignores: for two labellers, the correlation of their errors within each true class (errors on
the positives, then on the negatives: across classes, two labellers that both miss more than
they invent would correlate with no shared cause) against a reference truth: the human audit
where there is one, else the aggregate itself, which can only see part of it (when two of three
labellers make the same error the majority takes it, so neither seems wrong).
"""

from __future__ import annotations

SMOOTH = 1e-3
TOL = 1e-6
MAX_ROUNDS = 200


def majority(Y, M):
    """Majority vote per item: Y (items x labellers) 0/1, M the same shape, 1 = answered. Ties -> 1/2."""
    import numpy as np

    yes, n = (Y * M).sum(1), M.sum(1)
    return np.where(n > 0, np.sign(2 * yes - n) * 0.5 + 0.5, 0.5)  # 1, 0, or 0.5 on a tie


def dawid_skene(Y, M):
    """(T: posterior P(z = 1) per item, pi, se per labeller, sp per labeller, rounds)."""
    import numpy as np

    Y, M = np.asarray(Y, float), np.asarray(M, float)
    T = majority(Y, M)
    rounds = 0
    pi = se = sp = None
    for rounds in range(1, MAX_ROUNDS + 1):
        # M-step
        pi_new = float(np.clip(T.mean(), SMOOTH, 1 - SMOOTH))
        w1, w0 = T[:, None] * M, (1 - T)[:, None] * M
        se_new = np.clip((w1 * Y).sum(0) / np.maximum(w1.sum(0), 1e-12), SMOOTH, 1 - SMOOTH)
        sp_new = np.clip((w0 * (1 - Y)).sum(0) / np.maximum(w0.sum(0), 1e-12), SMOOTH, 1 - SMOOTH)
        moved = (pi is None or max(abs(pi_new - pi), np.abs(se_new - se).max(), np.abs(sp_new - sp).max()) > TOL)
        pi, se, sp = pi_new, se_new, sp_new
        # E-step, in logs: sum over the answers each item has
        l1 = np.log(pi) + (M * (Y * np.log(se) + (1 - Y) * np.log(1 - se))).sum(1)
        l0 = np.log(1 - pi) + (M * (Y * np.log(1 - sp) + (1 - Y) * np.log(sp))).sum(1)
        T = 1 / (1 + np.exp(l0 - l1))
        if not moved:
            break
    return T, pi, se, sp, rounds


def rates(y, truth, m):
    """(sensitivity, specificity, positives, negatives) of answers y against truth where m is set."""
    import numpy as np

    y, truth, m = (np.asarray(a, bool) for a in (y, truth, m))
    pos, neg = m & truth, m & ~truth
    se = float((y & pos).sum() / pos.sum()) if pos.any() else None
    sp = float((~y & neg).sum() / neg.sum()) if neg.any() else None
    return se, sp, int(pos.sum()), int(neg.sum())


def error_correlation(Y, M, truth, ref_mask) -> dict[tuple[int, int, str], tuple[float | None, int, int, int]]:
    """{(j, k, class): (phi of labeller j's and k's errors, items both answered, j's errors, k's errors)}
    within each true class ("positives", "negatives") of the items of ref_mask; phi None where
    either never (or always) errs there."""
    import numpy as np

    Y, M = np.asarray(Y, bool), np.asarray(M, bool)
    truth, ref = np.asarray(truth, bool), np.asarray(ref_mask, bool)
    out = {}
    for j in range(Y.shape[1]):
        for k in range(j + 1, Y.shape[1]):
            for name, cls in (("positives", truth), ("negatives", ~truth)):
                both = M[:, j] & M[:, k] & ref & cls
                ej, ek = (Y[both, j] != truth[both]), (Y[both, k] != truth[both])
                phi = None if both.sum() < 2 or ej.std() == 0 or ek.std() == 0 else float(np.corrcoef(ej, ek)[0, 1])
                out[(j, k, name)] = (phi, int(both.sum()), int(ej.sum()), int(ek.sum()))
    return out
