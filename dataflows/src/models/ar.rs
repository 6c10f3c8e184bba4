//! AR(p) with an intercept, fitted by least squares on the window at each refit and advanced per
//! sample in between (its lags are the window's newest values, so an update costs nothing). A
//! forecast is a linear function of the newest p lags, worked out once per fit and horizon
//! (O(p² h)) and then O(p) a query.

use std::cell::{Cell, RefCell};

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::fit_memo::constant_value;
use super::{recent, History, Member, FIT_SPAN};

/// Orders up to this run their forecast path in a ring on the stack.
const MAX_STACK_ORDER: usize = 32;

/// Forecast paths up to this long are computed on the stack.
const STACK_PATH: usize = 64;

/// Rows needed per coefficient before a fit is trusted.
const ROWS_PER_COEFFICIENT: usize = 3;

/// Horizons up to this long get their [`LinearForm`] from the fit's MA weights ([`Psi`], O(p h)
/// to extend); longer ones by powers of the step's matrix, so that a horizon of many steps
/// (10 minutes of 1-ms samples is 600,000) costs O(p³ log h) a fit.
const MAX_FORM_STEPS: usize = 4096;

/// Forms kept per fit (a series asks for a handful of horizons: `auto`'s error buckets and the
/// placement horizon).
const MAX_FORMS: usize = 16;

/// A forecast `h` steps ahead, or the mean of the next `h`, as a linear function of the newest
/// lags: `centre + constant + Σ weights[i] (lag_i − centre)`, lag 0 the newest. The path's
/// recursion is linear in the lags, so this is the path's own value, rounded differently, and
/// costs p multiplications where walking the path costs p h: the series operator asks every
/// series for its mean over the horizon (60 steps at 10-second samples) at every sample.
#[derive(Clone, Debug)]
struct LinearForm {
    h: usize,
    mean: bool,
    constant: f64,
    weights: Vec<f64>,
}

/// A fit's MA(∞) weights ψ_0 = 1, ψ_k = Σ_i phi_i ψ_{k−1−i}, with their running sums,
/// extended as far as the longest form asked: each form is then a short sum over them. The
/// value h steps ahead is intercept Σ_{k<h} ψ_k + Σ_j w_j lag_j with
/// w_j = Σ_{i≥j} phi_i ψ_{h−1−i+j}, and the mean of steps 1..=h the same over the running sums:
/// O(p) a step of horizon and O(p²) a form, where running the path's recursion on symbols
/// was O(p²) a step (most of what rebuilding the forms after a refit cost).
#[derive(Clone, Debug, Default)]
struct Psi {
    psi: Vec<f64>,
    /// Ψ(k) = Σ_{m ≤ k} ψ_m.
    cumulative: Vec<f64>,
    /// Σ_{s ≤ k} Ψ(s).
    cumulative_sums: Vec<f64>,
}

impl Psi {
    /// Extends the weights to at least `count` of them.
    fn extend_to(&mut self, phi: &[f64], count: usize) {
        while self.psi.len() < count {
            let k = self.psi.len();
            let value = if k == 0 {
                1.0
            } else {
                phi.iter()
                    .take(k)
                    .enumerate()
                    .map(|(i, phi)| phi * self.psi[k - 1 - i])
                    .sum()
            };
            let cumulative = self.cumulative.last().copied().unwrap_or(0.0) + value;
            let sums = self.cumulative_sums.last().copied().unwrap_or(0.0) + cumulative;
            self.psi.push(value);
            self.cumulative.push(cumulative);
            self.cumulative_sums.push(sums);
        }
    }

    /// The form of the value `h` ≥ 1 steps ahead, or (`mean`) of the mean of steps 1..=h;
    /// the weights must reach `h`.
    fn form(&self, ar: &Ar, h: usize, mean: bool) -> LinearForm {
        let phi = &ar.coefficients;
        let table = if mean { &self.cumulative } else { &self.psi };
        let weights = (0..phi.len())
            .map(|j| {
                // ψ (or Ψ) at h − 1 − i + j for i ≥ j: zero below index 0.
                let sum: f64 = (j..phi.len())
                    .filter_map(|i| {
                        (h + j)
                            .checked_sub(1 + i)
                            .map(|index| phi[i] * table[index])
                    })
                    .sum();
                if mean {
                    sum / h as f64
                } else {
                    sum
                }
            })
            .collect();
        let constant = if mean {
            ar.intercept * self.cumulative_sums[h - 1] / h as f64
        } else {
            ar.intercept * self.cumulative[h - 1]
        };
        LinearForm {
            h,
            mean,
            constant,
            weights,
        }
    }
}

/// The [`LinearForm`]s of one fit, flat: a series asks for the same few horizons at every
/// sample (`auto`'s five error buckets, then the placement horizon's mean), in the same order,
/// and a search among forms each holding its own `Vec` was most of what a query cost.
#[derive(Clone, Debug, Default)]
struct Forms {
    /// `(h, mean)` of each form, in the order built.
    keys: Vec<(usize, bool)>,
    /// Per form, its constant then its weights on lags 0..p: `stride` values.
    values: Vec<f64>,
    stride: usize,
    /// The form after the last one found: where the next query usually is.
    next: usize,
    /// The MA weights the forms were built from, to extend for a longer horizon.
    psi: Psi,
}

impl Forms {
    fn len(&self) -> usize {
        self.keys.len()
    }

    fn clear(&mut self) {
        self.keys.clear();
        self.values.clear();
        self.next = 0;
        self.psi = Psi::default();
    }

    #[inline]
    fn find(&mut self, h: usize, mean: bool) -> Option<usize> {
        let index = if self.keys.get(self.next) == Some(&(h, mean)) {
            self.next
        } else {
            self.keys.iter().position(|&key| key == (h, mean))?
        };
        self.next = index + 1;
        Some(index)
    }

    /// Keeps `form`, returning its index.
    fn push(&mut self, form: &LinearForm) -> usize {
        if self.keys.is_empty() {
            self.stride = 1 + form.weights.len();
        }
        self.keys.push((form.h, form.mean));
        self.values.push(form.constant);
        self.values.extend_from_slice(&form.weights);
        self.next = self.keys.len();
        self.keys.len() - 1
    }

    /// Form `index` applied to `centred` lags (newest first), less the centre: its constant,
    /// then each weight times its lag added in lag order.
    #[inline]
    fn apply(&self, index: usize, centred: &[f64]) -> f64 {
        let form = &self.values[index * self.stride..(index + 1) * self.stride];
        let (constant, weights) = (form[0], &form[1..]);
        // The default order as arrays, so the loop unrolls; the same additions in the same
        // order as the general loop below.
        if let (Ok(weights), Ok(lags)) = (
            <&[f64; 8]>::try_from(weights),
            <&[f64; 8]>::try_from(centred),
        ) {
            let mut value = constant;
            for k in 0..8 {
                value += weights[k] * lags[k];
            }
            return value;
        }
        let mut value = constant;
        for (weight, lag) in weights.iter().zip(centred) {
            value += weight * lag;
        }
        value
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Ar {
    order: usize,
    /// The window mean the coefficients were fitted around (for conditioning).
    centre: f64,
    intercept: f64,
    /// phi_1..phi_p; empty before the first fit, when the forecast is the newest value.
    coefficients: Vec<f64>,
    /// Whether the fit is flat: every coefficient and the intercept zero, as a window of one
    /// value fits (a least-squares fit can also land on exact zeros, rarely). Every forecast is
    /// then the centre, which is what the forms would sum to, less the sign of a zero centre.
    flat: bool,
    /// Linear forms of this fit's forecasts, by horizon; rebuilt after a refit or a restore.
    #[serde(skip)]
    forms: RefCell<Forms>,
    /// This fit's variance factor at one horizon (the series operator asks the same horizon
    /// at every sample, and each is O(p h) to sum, or a matrix power past
    /// [`MAX_FORM_STEPS`]); cleared with the forms.
    #[serde(skip)]
    variance: Cell<Option<(usize, f64)>>,
}

impl Ar {
    pub(crate) fn new(order: usize) -> Ar {
        Ar {
            order: order.max(1),
            centre: 0.0,
            intercept: 0.0,
            coefficients: Vec::new(),
            flat: false,
            forms: RefCell::new(Forms::default()),
            variance: Cell::new(None),
        }
    }

    /// Least squares on `values` at order up to `order` (fewer when the window is short):
    /// (centre, intercept, coefficients), or `None` when there is no fit.
    fn fit(values: &[f64], order: usize) -> Option<(f64, f64, Vec<f64>)> {
        let n = values.len();
        let p = order.min(n.saturating_sub(1) / (ROWS_PER_COEFFICIENT + 1));
        if p == 0 {
            return None;
        }
        // A window of one value has nothing to fit: least squares would only fit the rounding
        // of its mean. Its AR(p) is that value, with every coefficient zero (and so costs no
        // more to refit than this check: no memo is needed, as the other members keep).
        if let Some(value) = constant_value(values) {
            return Some((value, 0.0, vec![0.0; p]));
        }
        let centre = values.iter().sum::<f64>() / n as f64;
        let (gram, moment) = lag_products(values, centre, p);
        let beta = solve_ridge(gram, moment)?;
        Some((centre, beta[0], beta.iter().skip(1).copied().collect()))
    }

    /// Whether forecasts come from [`LinearForm`]s, at any horizon: once there is a fit (before
    /// it, the forecast is the newest value, and the path is walked).
    fn fitted(&self) -> bool {
        !self.coefficients.is_empty()
    }

    /// The forecast `h` steps ahead (`mean`: the mean of steps 1..=h), from the linear form
    /// of this fit, built the first time it is asked for (a flat fit's is its centre at every
    /// horizon); `None` when the path must be walked (see [`Ar::fitted`]).
    fn by_form(&self, h: usize, mean: bool, history: &History) -> Option<f64> {
        if self.flat {
            return Some(self.centre);
        }
        if !self.fitted() {
            return None;
        }
        let mut value = 0.0;
        self.with_centred_lags(history, |centred| {
            value = self.form_value(h, mean, centred);
        });
        Some(value)
    }

    /// `f` given the newest p lags less the centre, newest first, read from the window once
    /// for any number of forms (on the stack for the usual orders).
    fn with_centred_lags(&self, history: &History, f: impl FnOnce(&[f64])) {
        let p = self.coefficients.len();
        if p <= MAX_STACK_ORDER {
            let mut centred = [0.0; MAX_STACK_ORDER];
            for (i, lag) in centred.iter_mut().take(p).enumerate() {
                *lag = history.lag(i) - self.centre;
            }
            f(&centred[..p]);
        } else {
            let centred: Vec<f64> = (0..p).map(|i| history.lag(i) - self.centre).collect();
            f(&centred);
        }
    }

    /// The form of (`h`, `mean`) applied to `centred` lags (see [`Ar::with_centred_lags`]).
    fn form_value(&self, h: usize, mean: bool, centred: &[f64]) -> f64 {
        let mut forms = self.forms.borrow_mut();
        let index = self.form_index(&mut forms, h.max(1), mean);
        forms.apply(index, centred) + self.centre
    }

    /// Where the form of (`h` ≥ 1, `mean`) is kept, built the first time it is asked for.
    #[inline]
    fn form_index(&self, forms: &mut Forms, h: usize, mean: bool) -> usize {
        match forms.find(h, mean) {
            Some(index) => index,
            None => self.build_form(forms, h, mean),
        }
    }

    /// Builds and keeps the form of (`h`, `mean`): once per fit and horizon, so kept out of
    /// line, where its loops do not crowd the lookup's registers.
    #[cold]
    #[inline(never)]
    fn build_form(&self, forms: &mut Forms, h: usize, mean: bool) -> usize {
        if forms.len() >= MAX_FORMS {
            forms.clear();
        }
        let form = self.linear_form(h, mean, &mut forms.psi);
        forms.push(&form)
    }

    /// The form of (`h` ≥ 1, `mean`) from the fit's MA weights ([`Psi`], extended as far as
    /// needed: `auto`'s buckets and the placement horizon's mean share them); past
    /// [`MAX_FORM_STEPS`], by [`Ar::power_form`].
    fn linear_form(&self, h: usize, mean: bool, psi: &mut Psi) -> LinearForm {
        if h > MAX_FORM_STEPS {
            return self.power_form(h, mean);
        }
        psi.extend_to(&self.coefficients, h);
        psi.form(self, h, mean)
    }

    /// [`Ar::linear_form`] from MA weights of its own.
    #[cfg(test)]
    fn psi_form(&self, h: usize, mean: bool) -> LinearForm {
        let mut psi = Psi::default();
        psi.extend_to(&self.coefficients, h);
        psi.form(self, h, mean)
    }

    /// The matrix of one step on `[1, lag 0, …, lag p−1]` (centred lags, newest first): the
    /// constant stays 1, the new value is `intercept + Σ phi_i lag_i`, the lags shift down.
    fn step_matrix(&self) -> Matrix {
        let p = self.coefficients.len();
        let mut step = Matrix::zeros(p + 1);
        step.set(0, 0, 1.0);
        step.set(1, 0, self.intercept);
        for (i, phi) in self.coefficients.iter().enumerate() {
            step.set(1, 1 + i, *phi);
        }
        for k in 2..=p {
            step.set(k, k - 1, 1.0);
        }
        step
    }

    /// The form of `h` steps (or of their mean) from the step matrix M: row 1 of M^h, or of
    /// (M + M² + … + M^h) / h, by binary powers: O(p³ log h) instead of the MA weights' O(p h).
    fn power_form(&self, h: usize, mean: bool) -> LinearForm {
        let step = self.step_matrix();
        let (power, sum) = power_and_sum(&step, h);
        let row = if mean { sum.row(1) } else { power.row(1) };
        let scale = if mean { 1.0 / h as f64 } else { 1.0 };
        LinearForm {
            h,
            mean,
            constant: row[0] * scale,
            weights: row[1..].iter().map(|w| w * scale).collect(),
        }
    }

    /// Σ psi_j² over j < h by doubling: with C the lags' companion matrix and e the first unit
    /// vector, psi_j = (C^j e)_0, so the sum is entry (0, 0) of Σ_j C^j e eᵀ (C^j)ᵀ.
    fn psi_square_sum(&self, h: usize) -> f64 {
        let p = self.coefficients.len();
        let mut companion = Matrix::zeros(p);
        for (i, phi) in self.coefficients.iter().enumerate() {
            companion.set(0, i, *phi);
        }
        for k in 1..p {
            companion.set(k, k - 1, 1.0);
        }
        let mut first = Matrix::zeros(p);
        first.set(0, 0, 1.0);
        // (n, C^n, Σ_{j<n} C^j Q C^jᵀ) for the bits of h taken so far, and for the current bit.
        let mut done = (Matrix::identity(p), Matrix::zeros(p));
        let mut bit = (companion, first);
        let mut rest = h;
        while rest > 0 {
            if rest & 1 == 1 {
                // Append the bit's block after what is done: W = W_done + A_done W_bit A_doneᵀ.
                let shifted = done.0.mul(&bit.1).mul(&done.0.transpose());
                done = (done.0.mul(&bit.0), done.1.add(&shifted));
            }
            rest >>= 1;
            if rest > 0 {
                let shifted = bit.0.mul(&bit.1).mul(&bit.0.transpose());
                bit = (bit.0.mul(&bit.0), bit.1.add(&shifted));
            }
        }
        done.1.get(0, 0)
    }

    #[cfg(test)]
    pub(crate) fn coefficients(&self) -> (&[f64], f64) {
        (&self.coefficients, self.intercept)
    }

    /// Forecasts of steps 1..=out.len() into `out`. The path runs on centred values in a ring
    /// on the stack (the newest p lags, then the path's own forecasts), so nothing is allocated
    /// and each lag is read once from the window.
    fn path(&self, history: &History, out: &mut [f64]) {
        let p = self.coefficients.len();
        if p == 0 || p > MAX_STACK_ORDER {
            if p == 0 {
                out.fill(history.last());
            } else {
                self.path_slow(history, out);
            }
            return;
        }
        // lags[(head + i) % p] is the value i + 1 steps before the next one.
        let mut lags = [0.0; MAX_STACK_ORDER];
        for (i, lag) in lags.iter_mut().take(p).enumerate() {
            *lag = history.lag(i) - self.centre;
        }
        let mut head = 0;
        for slot in out.iter_mut() {
            // Summed oldest lag first: only the last term waits on the step before (the newest
            // lag is that step's forecast), so consecutive steps overlap. `linear_form` sums in
            // the same order.
            let mut next = self.intercept;
            let (near, far) = self.coefficients.split_at(p - head);
            for (phi, y) in far.iter().zip(&lags[..head]).rev() {
                next += phi * y;
            }
            for (phi, y) in near.iter().zip(&lags[head..p]).rev() {
                next += phi * y;
            }
            // The oldest lag drops out and the forecast becomes the newest.
            head = if head == 0 { p - 1 } else { head - 1 };
            lags[head] = next;
            *slot = next + self.centre;
        }
    }

    /// [`Ar::path`] for orders too large for the stack ring.
    fn path_slow(&self, history: &History, out: &mut [f64]) {
        for j in 0..out.len() {
            let mut next = self.intercept;
            // Oldest first, as in the ring.
            for (i, phi) in self.coefficients.iter().enumerate().rev() {
                let lag = if i < j {
                    out[j - 1 - i]
                } else {
                    history.lag(i - j)
                };
                next += phi * (lag - self.centre);
            }
            out[j] = next + self.centre;
        }
    }

    /// `f` applied to the path of the next `h` steps, on the stack for the usual horizons.
    fn with_path<T>(&self, h: usize, history: &History, f: impl FnOnce(&[f64]) -> T) -> T {
        let h = h.max(1);
        if h <= STACK_PATH {
            let mut buffer = [0.0; STACK_PATH];
            self.path(history, &mut buffer[..h]);
            f(&buffer[..h])
        } else {
            let mut buffer = vec![0.0; h];
            self.path(history, &mut buffer);
            f(&buffer)
        }
    }

    /// The first `count` (at least one) psi weights of the MA(inf) form ([`Psi`]).
    fn psi(&self, count: usize) -> Vec<f64> {
        let mut psi = Psi::default();
        psi.extend_to(&self.coefficients, count.max(1));
        psi.psi
    }
}

impl Member for Ar {
    fn observe(&mut self, _value: f64, _history: &History) {}

    fn refit(&mut self, values: &[f64]) {
        // A window grown for long seasons would only make the fit costlier.
        let values = recent(values, FIT_SPAN);
        let Some((centre, intercept, coefficients)) = Ar::fit(values, self.order) else {
            return;
        };
        self.flat = intercept == 0.0 && coefficients.iter().all(|&phi| phi == 0.0);
        self.centre = centre;
        self.intercept = intercept;
        self.coefficients = coefficients;
        self.forms.get_mut().clear();
        self.variance.set(None);
    }

    fn forecast(&self, h: usize, history: &History) -> f64 {
        if !self.fitted() && h > MAX_FORM_STEPS {
            return history.last();
        }
        self.by_form(h, false, history)
            .unwrap_or_else(|| self.with_path(h, history, |path| path[path.len() - 1]))
    }

    fn forecasts_at(&self, horizons: &[usize], history: &History, out: &mut [f64]) {
        let longest = horizons.iter().copied().max().unwrap_or(1).max(1);
        if self.flat {
            out.iter_mut()
                .take(horizons.len())
                .for_each(|slot| *slot = self.centre);
            return;
        }
        if self.fitted() {
            // The lags are read once for every horizon.
            self.with_centred_lags(history, |centred| {
                let mut forms = self.forms.borrow_mut();
                for (slot, &h) in out.iter_mut().zip(horizons) {
                    let index = self.form_index(&mut forms, h.max(1), false);
                    *slot = forms.apply(index, centred) + self.centre;
                }
            });
            return;
        }
        // One walk of the path serves every horizon.
        self.with_path(longest, history, |path| {
            for (slot, &h) in out.iter_mut().zip(horizons) {
                *slot = path[h.clamp(1, longest) - 1];
            }
        });
    }

    fn mean_over(&self, h: usize, history: &History) -> f64 {
        if !self.fitted() && h > MAX_FORM_STEPS {
            // Before the first fit every step is the newest value; no need to write h of them.
            return history.last();
        }
        self.by_form(h, true, history).unwrap_or_else(|| {
            self.with_path(h, history, |path| {
                path.iter().sum::<f64>() / path.len() as f64
            })
        })
    }

    fn variance_factor(&self, h: usize) -> f64 {
        if self.coefficients.is_empty() {
            // The naive forecast before a fit: a random walk's error grows with h.
            return h as f64;
        }
        if let Some((at, factor)) = self.variance.get() {
            if at == h {
                return factor;
            }
        }
        let factor = if h <= MAX_FORM_STEPS {
            self.psi(h).iter().map(|w| w * w).sum()
        } else {
            self.psi_square_sum(h)
        };
        self.variance.set(Some((h, factor)));
        factor
    }
}

/// A small dense square matrix, row-major: the step matrices of [`Ar::power_form`] and
/// [`Ar::psi_square_sum`] (order p + 1 at most, so no BLAS is worth calling).
#[derive(Clone, Debug, PartialEq)]
struct Matrix {
    n: usize,
    values: Vec<f64>,
}

impl Matrix {
    fn zeros(n: usize) -> Matrix {
        Matrix {
            n,
            values: vec![0.0; n * n],
        }
    }

    fn identity(n: usize) -> Matrix {
        let mut m = Matrix::zeros(n);
        for i in 0..n {
            m.set(i, i, 1.0);
        }
        m
    }

    fn get(&self, row: usize, col: usize) -> f64 {
        self.values[row * self.n + col]
    }

    fn set(&mut self, row: usize, col: usize, value: f64) {
        self.values[row * self.n + col] = value;
    }

    fn row(&self, row: usize) -> &[f64] {
        &self.values[row * self.n..(row + 1) * self.n]
    }

    fn mul(&self, other: &Matrix) -> Matrix {
        let n = self.n;
        let mut out = Matrix::zeros(n);
        for i in 0..n {
            for k in 0..n {
                let a = self.get(i, k);
                if a == 0.0 {
                    continue;
                }
                for j in 0..n {
                    out.values[i * n + j] += a * other.values[k * n + j];
                }
            }
        }
        out
    }

    fn add(&self, other: &Matrix) -> Matrix {
        Matrix {
            n: self.n,
            values: self
                .values
                .iter()
                .zip(&other.values)
                .map(|(a, b)| a + b)
                .collect(),
        }
    }

    fn transpose(&self) -> Matrix {
        let mut out = Matrix::zeros(self.n);
        for i in 0..self.n {
            for j in 0..self.n {
                out.set(j, i, self.get(i, j));
            }
        }
        out
    }
}

/// (M^h, M + M² + … + M^h) by binary powers: O(n³ log h).
fn power_and_sum(step: &Matrix, h: usize) -> (Matrix, Matrix) {
    let n = step.n;
    // What the bits of h taken so far give, and (M^b, M + … + M^b) for the current bit's b.
    let mut done = (Matrix::identity(n), Matrix::zeros(n));
    let mut bit = (step.clone(), step.clone());
    let mut rest = h;
    while rest > 0 {
        if rest & 1 == 1 {
            // Σ_{k=1}^{a+b} M^k = S_a + M^a S_b.
            done = (done.0.mul(&bit.0), done.1.add(&done.0.mul(&bit.1)));
        }
        rest >>= 1;
        if rest > 0 {
            bit = (bit.0.mul(&bit.0), bit.1.add(&bit.0.mul(&bit.1)));
        }
    }
    done
}

/// The normal equations of AR(`p`) with an intercept on `values` less `centre`: the Gram
/// matrix XᵀX and the moment Xᵀy of the design whose row for t = p..n is
/// [1, z(t−1), …, z(t−p)] with target z(t), z = value − centre.
///
/// Without the design: every entry is a sum of lagged products over the same run of t,
/// Σ z(t−i) z(t−j), and shifting both lags by one moves the run back by one, so that
/// G(i+1, j+1) = G(i, j) + z(p−1−i) z(p−1−j) − z(n−1−i) z(n−1−j). The first row (lag 0
/// against lags 0..=p) is summed, O(n p); the rest follows from it, O(p²). Building the design
/// and multiplying it out (O(n p²)) was most of a refit of AR, refitted per series every few
/// hundred samples. The sums round differently from the product's, by a few ulps of the largest
/// entry.
fn lag_products(values: &[f64], centre: f64, p: usize) -> (Array2<f64>, Array1<f64>) {
    let n = values.len();
    let z: Vec<f64> = values.iter().map(|v| v - centre).collect();
    let width = p + 1;
    // lags[i * width + j] = Σ_{t = p}^{n − 1} z(t − i) z(t − j), for lags 0..=p.
    let mut lags = vec![0.0; width * width];
    let (first, _) = lags.split_at_mut(width);
    for t in p..n {
        let target = z[t];
        for (sum, lagged) in first.iter_mut().zip(z[t - p..=t].iter().rev()) {
            *sum += target * lagged;
        }
    }
    for i in 0..p {
        for j in i..p {
            let shifted =
                lags[i * width + j] + z[p - 1 - i] * z[p - 1 - j] - z[n - 1 - i] * z[n - 1 - j];
            lags[(i + 1) * width + j + 1] = shifted;
        }
    }
    // sums[j] = Σ_{t = p}^{n − 1} z(t − j), by the same shift.
    let mut sums = vec![0.0; width];
    sums[0] = z[p..].iter().sum();
    for j in 0..p {
        sums[j + 1] = sums[j] + z[p - 1 - j] - z[n - 1 - j];
    }
    let at = |i: usize, j: usize| lags[i.min(j) * width + i.max(j)];
    let mut gram = Array2::<f64>::zeros((width, width));
    gram[[0, 0]] = (n - p) as f64;
    for a in 1..width {
        gram[[0, a]] = sums[a];
        gram[[a, 0]] = sums[a];
        for b in 1..width {
            gram[[a, b]] = at(a, b);
        }
    }
    let mut moment = Array1::<f64>::zeros(width);
    moment[0] = sums[0];
    for a in 1..width {
        moment[a] = at(0, a);
    }
    (gram, moment)
}

/// Solves the normal equations `gram x = moment` by Cholesky, with a small ridge on the diagonal
/// so that a constant or collinear window still gives an answer; `None` if the matrix is not
/// positive definite even then (non-finite input).
pub(crate) fn solve_ridge(mut gram: Array2<f64>, mut moment: Array1<f64>) -> Option<Array1<f64>> {
    let k = gram.nrows();
    if k == 0 || gram.ncols() != k || moment.len() != k {
        return None;
    }
    let trace: f64 = (0..k).map(|i| gram[[i, i]]).sum();
    let ridge = 1e-9 * (trace / k as f64) + 1e-300;
    for i in 0..k {
        gram[[i, i]] += ridge;
    }
    // In-place Cholesky: the lower triangle becomes L with gram = L L^T.
    for j in 0..k {
        let mut diagonal = gram[[j, j]];
        for m in 0..j {
            diagonal -= gram[[j, m]] * gram[[j, m]];
        }
        if diagonal.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || !diagonal.is_finite()
        {
            return None;
        }
        let root = diagonal.sqrt();
        gram[[j, j]] = root;
        for i in j + 1..k {
            let mut value = gram[[i, j]];
            for m in 0..j {
                value -= gram[[i, m]] * gram[[j, m]];
            }
            gram[[i, j]] = value / root;
        }
    }
    // L y = moment, then L^T x = y.
    for i in 0..k {
        let mut value = moment[i];
        for m in 0..i {
            value -= gram[[i, m]] * moment[m];
        }
        moment[i] = value / gram[[i, i]];
    }
    for i in (0..k).rev() {
        let mut value = moment[i];
        for m in i + 1..k {
            value -= gram[[m, i]] * moment[m];
        }
        moment[i] = value / gram[[i, i]];
    }
    moment.iter().all(|x| x.is_finite()).then_some(moment)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{seasonal, Noise};
    use super::super::{Core, ModelConfig, ModelKind, SeriesModel};
    use super::*;
    use ndarray::array;

    fn model(order: usize) -> SeriesModel {
        SeriesModel::new(&ModelConfig {
            ar_order: order,
            ..ModelConfig::new(ModelKind::Ar)
        })
    }

    fn fitted(intercept: f64, coefficients: &[f64]) -> Ar {
        let mut ar = Ar::new(coefficients.len());
        ar.centre = 0.5;
        ar.intercept = intercept;
        ar.coefficients = coefficients.to_vec();
        ar
    }

    /// Forms by powers of the step matrix equal the MA weights', and the psi sum by doubling
    /// the term-by-term one, within rounding, stationary or on a unit root.
    #[test]
    fn long_horizon_forms_and_variance_by_powers_match_the_ma_weights() {
        let cases: [(f64, &[f64]); 4] = [
            (0.01, &[0.5, 0.2, -0.1]),
            (0.0, &[0.9]),
            (-0.02, &[0.3, 0.1, 0.05, 0.2, -0.1, 0.05, 0.1, 0.1]),
            (0.0, &[1.0]),
        ];
        for (intercept, coefficients) in cases {
            let ar = fitted(intercept, coefficients);
            for h in [1, 2, 7, 60, 300, 5_000] {
                for mean in [false, true] {
                    let slow = ar.psi_form(h, mean);
                    let fast = ar.power_form(h, mean);
                    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
                    assert!(
                        close(fast.constant, slow.constant),
                        "{coefficients:?} h {h}"
                    );
                    for (f, s) in fast.weights.iter().zip(&slow.weights) {
                        assert!(close(*f, *s), "{coefficients:?} h {h} mean {mean}: {f} {s}");
                    }
                }
                let looped: f64 = ar.psi(h).iter().map(|w| w * w).sum();
                let doubled = ar.psi_square_sum(h);
                assert!(
                    (doubled - looped).abs() <= 1e-9 * looped,
                    "{coefficients:?} h {h}: {doubled} vs {looped}"
                );
            }
        }
    }

    /// MA weights extended from horizon to horizon build each form to the bit as fresh ones
    /// would, whatever order the horizons come in.
    #[test]
    fn extended_ma_weights_build_the_forms_fresh_ones_would() {
        let ar = fitted(-0.02, &[0.3, 0.1, 0.05, 0.2, -0.1, 0.05, 0.1, 0.1]);
        let mut kept = Psi::default();
        for (h, mean) in [
            (1, false),
            (3, false),
            (24, false),
            (60, true),
            (2, false),
            (2, true),
            (60, false),
            (7, true),
        ] {
            let resumed = ar.linear_form(h, mean, &mut kept);
            let fresh = ar.psi_form(h, mean);
            assert_eq!(
                resumed.constant.to_bits(),
                fresh.constant.to_bits(),
                "h {h}"
            );
            for (r, f) in resumed.weights.iter().zip(&fresh.weights) {
                assert_eq!(r.to_bits(), f.to_bits(), "h {h} mean {mean}");
            }
        }
    }

    /// Forms kept across samples and rebuilt after each refit answer what an AR with the same
    /// fit and no forms kept answers, to the bit, in any order of asking.
    #[test]
    fn forms_rebuilt_after_a_refit_answer_as_fresh_ones() {
        let mut m = model(8);
        let mut noise = Noise::new(17);
        for t in 0..700 {
            m.update(seasonal(t, 40) + noise.next());
            let Core::Ar(ar) = &m.core else {
                unreachable!("an AR model")
            };
            let mut kept = [0.0; 5];
            ar.forecasts_at(&[1, 3, 6, 12, 24], &m.history, &mut kept);
            let kept_mean = ar.mean_over(60, &m.history);
            let fresh = ar.clone();
            fresh.forms.borrow_mut().clear();
            let fresh_mean = fresh.mean_over(60, &m.history);
            for (h, value) in [1, 3, 6, 12, 24].into_iter().zip(kept) {
                let answer = fresh.forecast(h, &m.history);
                assert_eq!(value.to_bits(), answer.to_bits(), "t {t} h {h}");
            }
            assert_eq!(kept_mean.to_bits(), fresh_mean.to_bits(), "t {t}");
        }
    }

    /// A horizon of 600,000 steps (10 minutes of 1-ms samples) is answered from forms, and
    /// its variance is the psi sum, cached for the fit.
    #[test]
    fn a_very_long_horizon_is_answered_without_walking_it() {
        let mut m = model(4);
        let mut noise = Noise::new(9);
        for t in 0..2_000 {
            m.update(seasonal(t, 50) + noise.next());
        }
        let h = 600_000;
        let (mean, forecast, sigma) = (m.mean_over(h), m.forecast(h), m.sigma(h));
        assert!(mean.is_finite() && forecast.is_finite() && sigma.is_finite());
        let Core::Ar(ar) = &m.core else {
            unreachable!("an AR model")
        };
        let walked = ar.with_path(h, &m.history, |path| path.iter().sum::<f64>() / h as f64);
        assert!((m.history.clamp(walked) - mean).abs() <= 1e-9 * mean.abs().max(1.0));
        assert_eq!(ar.variance.get().map(|(at, _)| at), Some(h));
    }

    /// The normal equations from lagged sums are the design's XᵀX and Xᵀy, within rounding,
    /// at every order the window allows, on a noisy, a seasonal and a spiky series.
    #[test]
    fn lag_products_are_the_design_s_normal_equations() {
        let mut noise = Noise::new(31);
        let series: [Vec<f64>; 3] = [
            (0..400).map(|_| 5.0 + noise.next()).collect(),
            (0..1008).map(|t| seasonal(t, 48) + noise.next()).collect(),
            (0..300)
                .map(|t| if t % 97 == 5 { 1e6 } else { 0.3 * noise.next() })
                .collect(),
        ];
        for values in &series {
            let n = values.len();
            let centre = values.iter().sum::<f64>() / n as f64;
            for p in [1, 2, 8, 12] {
                let (gram, moment) = lag_products(values, centre, p);
                let width = p + 1;
                let row = |t: usize| -> Vec<f64> {
                    std::iter::once(1.0)
                        .chain((1..=p).map(|j| values[t - j] - centre))
                        .collect()
                };
                let scale = gram[[1, 1]].abs().max(1.0);
                for a in 0..width {
                    let expected: f64 = (p..n).map(|t| row(t)[a] * (values[t] - centre)).sum();
                    assert!(
                        (moment[a] - expected).abs() <= 1e-9 * scale,
                        "p {p} moment {a}: {} {expected}",
                        moment[a]
                    );
                    for b in 0..width {
                        let expected: f64 = (p..n).map(|t| row(t)[a] * row(t)[b]).sum();
                        assert!(
                            (gram[[a, b]] - expected).abs() <= 1e-9 * scale,
                            "p {p} gram {a},{b}: {} {expected}",
                            gram[[a, b]]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn cholesky_solves_a_known_system() {
        let gram = array![[4.0, 2.0], [2.0, 3.0]];
        let x = solve_ridge(gram, array![10.0, 8.0]).expect("positive definite");
        // 4a + 2b = 10, 2a + 3b = 8: a = 1.75, b = 1.5.
        assert!(
            (x[0] - 1.75).abs() < 1e-6 && (x[1] - 1.5).abs() < 1e-6,
            "{x}"
        );
        assert!(solve_ridge(array![[f64::NAN]], array![1.0]).is_none());
        assert!(solve_ridge(array![[-1.0]], array![1.0]).is_none());
    }

    #[test]
    fn recovers_the_coefficients_of_a_simulated_ar2() {
        let (phi1, phi2, mean) = (0.6, -0.3, 20.0);
        let mut noise = Noise::new(11);
        let mut m = model(2);
        let (mut y1, mut y2) = (mean, mean);
        for _ in 0..2016 {
            let y = mean + phi1 * (y1 - mean) + phi2 * (y2 - mean) + noise.next();
            m.update(y);
            (y2, y1) = (y1, y);
        }
        let Core::Ar(ar) = &m.core else {
            unreachable!("an AR model")
        };
        let (phi, intercept) = ar.coefficients();
        assert!((phi[0] - phi1).abs() < 0.06, "{phi:?}");
        assert!((phi[1] - phi2).abs() < 0.06, "{phi:?}");
        assert!(intercept.abs() < 0.1);
        // The long-run forecast returns to the mean.
        assert!((m.forecast(200) - mean).abs() < 0.3, "{}", m.forecast(200));
        // psi_1 = phi1; the 2-step variance factor is 1 + phi1^2.
        let factor = 1.0 + phi[0] * phi[0];
        assert!((m.sigma(2) / m.sigma(1) - factor.sqrt()).abs() < 1e-9);
    }

    #[test]
    fn stack_ring_path_matches_the_direct_recursion() {
        let mut noise = Noise::new(12);
        let mut m = model(5);
        for _ in 0..700 {
            m.update(3.0 + noise.next());
        }
        let Core::Ar(ar) = &m.core else {
            unreachable!("an AR model")
        };
        let (mut fast, mut slow) = ([0.0; 30], [0.0; 30]);
        ar.path(&m.history, &mut fast);
        ar.path_slow(&m.history, &mut slow);
        // The same sums in the same order (oldest lag first), so the same bits.
        for (a, b) in fast.iter().zip(&slow) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a} {b}");
        }
    }

    #[test]
    fn linear_forms_give_the_path_s_values() {
        for (seed, order) in [(1, 1), (2, 3), (7, 8), (9, 12)] {
            let mut noise = Noise::new(seed);
            let mut m = model(order);
            let mut level = 0.0;
            for t in 0..900 {
                level = 0.8 * level + noise.next();
                m.update(20.0 + seasonal(t, 48) * 0.1 + level);
                if t % 97 != 0 {
                    continue;
                }
                let Core::Ar(ar) = &m.core else {
                    unreachable!("an AR model")
                };
                for h in [1, 2, 6, 12, 24, 60, 200] {
                    let mut path = vec![0.0; h];
                    ar.path(&m.history, &mut path);
                    let mean = path.iter().sum::<f64>() / h as f64;
                    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + b.abs());
                    let point = ar.forecast(h, &m.history);
                    assert!(close(point, path[h - 1]), "order {order} t {t} h {h}");
                    let over = ar.mean_over(h, &m.history);
                    assert!(
                        close(over, mean),
                        "order {order} t {t} h {h}: {over} {mean}"
                    );
                }
            }
        }
    }

    #[test]
    fn constant_series_forecasts_the_constant() {
        let mut m = model(8);
        for _ in 0..300 {
            m.update(0.42);
        }
        // Exactly: a window of one value fits no coefficients, where least squares would fit
        // the rounding of its mean.
        for h in [1, 6, 12, 60, 5000] {
            assert_eq!(m.forecast(h), 0.42, "h = {h}");
            assert_eq!(m.mean_over(h), 0.42, "mean over {h}");
        }
        let Core::Ar(ar) = &m.core else {
            unreachable!()
        };
        assert!(ar.flat);
        assert_eq!(ar.variance_factor(12), 1.0);
        // One other value in the window, and the fit is least squares again.
        m.update(0.5);
        for _ in 0..300 {
            m.update(0.42);
        }
        let Core::Ar(ar) = &m.core else {
            unreachable!()
        };
        assert!(!ar.flat);
        assert!(ar.coefficients().0.iter().any(|&phi| phi != 0.0));
        assert!((m.forecast(12) - 0.42).abs() < 1e-3);
    }

    #[test]
    fn linear_trend_is_extrapolated() {
        let mut m = model(2);
        for t in 0..600 {
            m.update(10.0 + 0.5 * t as f64);
        }
        let expected = 10.0 + 0.5 * (599 + 6) as f64;
        assert!((m.forecast(6) - expected).abs() < 0.05, "{}", m.forecast(6));
    }

    #[test]
    fn seasonal_series_is_tracked_by_its_lags() {
        let mut m = model(8);
        for t in 0..1000 {
            m.update(seasonal(t, 48));
        }
        assert!((m.forecast(1) - seasonal(1000, 48)).abs() < 0.05);
    }

    #[test]
    fn step_change_is_followed() {
        let mut m = model(4);
        let mut noise = Noise::new(6);
        for _ in 0..500 {
            m.update(10.0 + 0.1 * noise.next());
        }
        for _ in 0..300 {
            m.update(30.0 + 0.1 * noise.next());
        }
        assert!((m.forecast(6) - 30.0).abs() < 1.5, "{}", m.forecast(6));
    }
}
