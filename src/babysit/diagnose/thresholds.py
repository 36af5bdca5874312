"""Every threshold the diagnosis uses, in one place, each with where it comes from.

"lecture" is the CS231n notes (items B2-B5, G8 of docs/lecture.md); "AutoTrainer" is Zhang et al.,
*AutoTrainer: An Automatic DNN Training Problem Detection and Repair System* (ICSE 2021); "DeepDiagnosis"
is Wardat et al., *DeepDiagnosis: Automatically Diagnosing Faults and Recommending Actionable Fixes in
Deep Learning Programs* (ICSE 2022). "calibrated" values were set on babysit's fault zoos (tests/zoo/: an MLP on
the digits, a small ResNet on 32x32 images, a character-level transformer) with a margin on both sides; the zoos
re-check them. Accuracy thresholds are shares of the learnable range ``1 - 1/C`` so they mean the same for 2
classes and for a 97-character vocabulary.
"""

from __future__ import annotations

# --- update/weight ratio (lecture B4) ------------------------------------------------------------------------
RATIO_TARGET = 1e-3  # lecture: "about 1e-3 is healthy"; suggestions rescale lr towards it
RATIO_HIGH = 1e-1  # DeepDiagnosis: abnormal outside 1e-3 x/÷ 100
RATIO_LOW = 1e-5  # DeepDiagnosis: abnormal outside 1e-3 x/÷ 100
RATIO_PLATEAU = 2e-2  # calibrated: a high plateau (lr_too_high) needs ratios above this (healthy runs: < 1e-2)
SIGN_STEP_OVERWRITES = 1.0  # Adam's lone first step (lr * sign(g)) as large as the weights: too high at any reading
RATIO_SMALL = 1e-4  # a tenth of the lecture's ~1e-3: updates this small explain a run that learns nothing
FLOAT32_TINY = 1e-18  # a step this small underflows float32's squares (below 1e-38): not applied, not measurable
FLOAT32_RESOLUTION = 1e-6  # float32 spacing is 1.2e-7 of a weight; lr*|grad|/|W| below 1e-6 rounds most updates away

# --- activations and gradients across depth (lecture B5) ------------------------------------------------------
ACT_VANISH = 1e-2  # calibrated: std of the last weighted layer's output / the first's; healthy inits: 0.2 .. 5
ACT_EXPLODE = 1e2  # calibrated, mirror image of ACT_VANISH
ACT_MIN_WEIGHTED = 3  # a trend through depth needs at least three weighted layers
GRAD_VANISH = 1e-3  # AutoTrainer: gradient norm of the first layer / the last below 1e-3
GRAD_EXPLODE = 70.0  # AutoTrainer: that ratio above 70
SATURATED = 0.5  # DeepDiagnosis: more than 50% of a layer's pre-activations beyond +-5
DEAD = 0.7  # AutoTrainer: dying ReLU when >= 70% of the units are dead (here: never positive on the sub-sample)
INIT_SMALL = 0.3  # calibrated: initial weight std below 0.3x Xavier's 1/sqrt(fan_in) is "too small"
INIT_LARGE = 3.0  # calibrated: above 3x He's sqrt(2/fan_in) is "too large"
INIT_LOSS = 3.0  # a first loss above 3x ln C (the softmax loss of uniform scores) comes from too large an init
MAJORITY = 0.5  # a per-sample condition must hold on at least half the sampled steps to be reported

# --- loss curve (lecture B2) ---------------------------------------------------------------------------------
LOSS_EXPLODE = 10.0  # calibrated: a loss above 10x its first value counts as diverged (like NaN/inf)
LOSS_RISE = 1.5  # calibrated: final epoch loss above 1.5x the lowest epoch loss = rising (lr_too_high)
LOSS_STILL = 0.02  # a loss that moved by less than 2% of its first value over the run did not move
PLATEAU_MIN_EPOCHS = 3  # the plateau shapes need at least this many epochs
PLATEAU_FLAT = 0.05  # calibrated: relative change of the train loss over the last third below 5% = flat
PLATEAU_FLAT_EPOCH = 0.01  # ... and below 1% per epoch there: in a 3-epoch run the last third is one epoch, and a
# loss still falling 4.5% an epoch has not flattened (a 15-epoch run's third is 5 epochs: both bounds agree there)
PLATEAU_HIGH = 0.25  # calibrated: flat while still above 25% of the initial loss = a high plateau
SLOW_DECREASE = 0.25  # calibrated: the loss fell by less than 25% of its first value over the run = slow
LINEAR_R2 = 0.9  # calibrated: a straight line explains >= 90% of the per-epoch loss curve = "almost linear"
NOISE = 0.3  # calibrated: step-to-step jitter / loss level above 0.3 = noisy (digits, batch 4: 0.45; 64: < 0.21)

# --- accuracy (lecture B3); gaps and levels are shares of the learnable range 1 - 1/C ------------------------------
OVERFIT_GAP = 0.15  # calibrated: a gap of 15% of the learnable range is overfitting on its own (healthy digits: < 7%)
OVERFIT_MIN_GAP = 0.03  # a gap under 3% of the learnable range is not worth a warning, however well resolved
OVERFIT_Z = 3.0  # the gap must exceed 3 binomial standard errors of the validation accuracy (p < 0.002)
VAL_LOSS_RISE = 0.2  # calibrated: validation loss 20% above its lowest (earlier) value = the model has begun to overfit
VAL_LOSS_NEW_LOW = 0.01  # a last validation loss 1% below every earlier one: still improving, not overfitting yet
UNDERFIT_ACC = 2 / 3  # calibrated: train accuracy below 2/3 of the learnable range (70% for 10 classes), small gap
UNDERFIT_GAP = 0.05  # "close": train and validation accuracy within 5% of the learnable range
CHANCE_MARGIN = 0.1  # no_learning: validation accuracy never more than 10% of the learnable range above chance
BELOW_CHANCE = 0.5  # no_learning: running training accuracy below half of chance = batches ordered by class
MEMORISING = 0.2  # no_learning: training accuracy 20% of the learnable range above chance = memorising labels

# --- set-up mistakes --------------------------------------------------------------------------------------------
REG_DOMINATES = 1.0  # lecture G8: the L2 term above the data loss ...
REG_STUCK = 0.5  # ... while the data loss is still above half its first value
REG_ALIGNED = -0.5  # calibrated: the weight norm falls by >= half of each update's size (pure L2 steps: -1, Adam: -0.8)
REG_SHRUNK = 0.5  # with the weight norms at most half their first value: hidden L2 or weight decay at work
INPUT_MEAN = 1.0  # calibrated: |mean| of the inputs above 1 (standardized: ~0; raw digits: ~4.9)
INPUT_STD = (0.1, 3.0)  # calibrated: std of the inputs outside [0.1, 3] (standardized: 1; raw digits: ~6)
PROBABILITY_TOL = 1e-3  # outputs >= 0 whose rows sum to 1 within 1e-3 are probabilities
CARRY = 0.3  # calibrated: > 30% of .grad left over from earlier steps = zero_grad missing (healthy: < 1e-3)
EVAL_TOLERANCE = 1e-5  # two evaluation passes differing by more than 1e-5 (relative) disagree
