//! Inline SVG line charts for augur's self-contained HTML pages (`simulate --report`,
//! `anomalies`' `report.html`): nothing is fetched, so a page opens offline and can be mailed.
//!
//! A line is drawn through at most four points per pixel column (the column's first, lowest,
//! highest and last: the M4 reduction), so a series of millions of samples costs a few thousand
//! points and still shows every spike a full drawing would.

use std::fmt::Write as _;

/// Escapes text for HTML and SVG text and attribute values. Control characters and the
/// non-characters U+FFFE/U+FFFF (a device name may hold any) become U+FFFD: XML allows the C0
/// controls and those two in no form, not even as references, so an SVG or XHTML reader
/// refuses a page with one (the C1 controls are legal there but draw as nothing useful).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The range `(low, high)` a chart's y axis shows for `values`: their finite extremes, widened
/// when they are all equal so that a flat line sits mid-chart. `(0, 1)` when none is finite.
pub fn value_range(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if low > high {
        return (0.0, 1.0);
    }
    if low == high {
        let pad = if low == 0.0 { 1.0 } else { low.abs() / 2.0 };
        return (low - pad, high + pad);
    }
    (low, high)
}

/// One chart: a plot area of `width` x `height` pixels mapping `x` and `y` ranges, built up
/// from bands, lines and marks, then closed by [`Chart::finish`].
pub struct Chart {
    width: f64,
    height: f64,
    x: (f64, f64),
    y: (f64, f64),
    body: String,
}

impl Chart {
    /// An empty chart. A range of zero width is widened so that nothing divides by zero.
    pub fn new(width: f64, height: f64, x: (f64, f64), y: (f64, f64)) -> Chart {
        let widen = |(low, high): (f64, f64)| {
            if high > low {
                (low, high)
            } else {
                (low, low + 1.0)
            }
        };
        Chart {
            width,
            height,
            x: widen(x),
            y: widen(y),
            body: String::new(),
        }
    }

    // Differences are taken of halves: the range of values near ±f64::MAX overflows to
    // infinity, and inf / inf drew NaN coordinates (halving is exact above the subnormals).
    fn px(&self, x: f64) -> f64 {
        (x / 2.0 - self.x.0 / 2.0) / (self.x.1 / 2.0 - self.x.0 / 2.0) * self.width
    }

    fn py(&self, y: f64) -> f64 {
        let clamped = y.clamp(self.y.0, self.y.1);
        self.height
            - (clamped / 2.0 - self.y.0 / 2.0) / (self.y.1 / 2.0 - self.y.0 / 2.0) * self.height
    }

    /// A shaded vertical band from `from` to `to` on the x axis, with a tooltip.
    pub fn band(&mut self, from: f64, to: f64, fill: &str, title: &str) {
        let (left, right) = (
            self.px(from).clamp(0.0, self.width),
            self.px(to).clamp(0.0, self.width),
        );
        // A band wholly outside the x range is not drawn (clamped, it was a 1-px sliver at
        // the edge, as if it were there).
        if right < left || to < self.x.0 || from > self.x.1 {
            return;
        }
        let _ = write!(
            self.body,
            r#"<rect x="{left:.1}" y="0" width="{:.1}" height="{}" fill="{fill}"><title>{}</title></rect>"#,
            (right - left).max(1.0),
            self.height,
            escape(title)
        );
    }

    /// A horizontal line across the chart at `y`.
    pub fn rule(&mut self, y: f64, stroke: &str) {
        let _ = write!(
            self.body,
            r#"<line x1="0" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="{stroke}" stroke-dasharray="4 2"/>"#,
            self.width,
            y = self.py(y)
        );
    }

    /// Short ticks along the top edge at each x, one per pixel column at most.
    pub fn marks(&mut self, xs: impl IntoIterator<Item = f64>, stroke: &str) {
        let mut columns: Vec<i64> = xs
            .into_iter()
            .filter(|x| x.is_finite())
            .map(|x| self.px(x).round() as i64)
            .collect();
        columns.dedup();
        if columns.is_empty() {
            return;
        }
        let mut path = String::new();
        for column in columns {
            let _ = write!(path, "M{column} 0v8");
        }
        let _ = write!(
            self.body,
            r#"<path d="{path}" stroke="{stroke}" stroke-width="1.5"/>"#
        );
    }

    /// A line through `points` (in x order), reduced to at most four points per pixel column;
    /// a non-finite value breaks the line.
    pub fn line(&mut self, points: impl IntoIterator<Item = (f64, f64)>, stroke: &str) {
        for run in reduce(points, |x| self.px(x).floor() as i64) {
            if run.is_empty() {
                continue;
            }
            // A lone point has no line to draw through it: a dot, or it would not show.
            if let [(x, y)] = run[..] {
                let _ = write!(
                    self.body,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="1.5" fill="{stroke}"/>"#,
                    self.px(x),
                    self.py(y)
                );
                continue;
            }
            let coordinates: Vec<String> = run
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", self.px(x), self.py(y)))
                .collect();
            let _ = write!(
                self.body,
                r#"<polyline fill="none" stroke="{stroke}" stroke-width="1" points="{}"/>"#,
                coordinates.join(" ")
            );
        }
    }

    /// A filled area between `low` and `high` (points `(x, low, high)` in x order), reduced to
    /// each pixel column's lowest low and highest high; non-finite points are skipped.
    pub fn area(&mut self, points: impl IntoIterator<Item = (f64, f64, f64)>, fill: &str) {
        // Per column: (first x, last x, lowest low, highest high).
        let mut columns: Vec<(i64, f64, f64, f64, f64)> = Vec::new();
        for (x, low, high) in points {
            if !(x.is_finite() && low.is_finite() && high.is_finite()) {
                continue;
            }
            let column = self.px(x).floor() as i64;
            match columns.last_mut() {
                Some(last) if last.0 == column => {
                    last.2 = x;
                    last.3 = last.3.min(low);
                    last.4 = last.4.max(high);
                }
                _ => columns.push((column, x, x, low, high)),
            }
        }
        if columns.is_empty() {
            return;
        }
        let mut path = String::new();
        for &(_, first, last, _, high) in &columns {
            for x in [first, last] {
                let command = if path.is_empty() { 'M' } else { 'L' };
                let _ = write!(path, "{command}{:.1} {:.1}", self.px(x), self.py(high));
            }
        }
        for &(_, first, last, low, _) in columns.iter().rev() {
            for x in [last, first] {
                let _ = write!(path, "L{:.1} {:.1}", self.px(x), self.py(low));
            }
        }
        let _ = write!(
            self.body,
            r#"<path d="{path}Z" fill="{fill}" stroke="none"/>"#
        );
    }

    /// The chart as one `<svg>` element, framed, with the y range written at its left edge.
    pub fn finish(self) -> String {
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="-52 -2 {vw} {vh}" font-size="10"><rect x="0" y="0" width="{w0}" height="{h0}" fill="none" stroke="#ccc"/>{body}<text x="-4" y="9" text-anchor="end">{top}</text><text x="-4" y="{h0}" text-anchor="end">{bottom}</text></svg>"##,
            w = self.width + 56.0,
            h = self.height + 4.0,
            vw = self.width + 56.0,
            vh = self.height + 4.0,
            w0 = self.width,
            h0 = self.height,
            body = self.body,
            top = short_number(self.y.1),
            bottom = short_number(self.y.0),
        )
    }
}

/// The M4 reduction: per pixel column (`column` of x), the points that are first, lowest,
/// highest and last in it, in their own order; runs split where a value is not finite.
fn reduce(
    points: impl IntoIterator<Item = (f64, f64)>,
    column: impl Fn(f64) -> i64,
) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    // The current column's points, as indices into the run being built are not stable.
    let mut group: Vec<(f64, f64)> = Vec::new();
    let mut current: Option<i64> = None;
    let flush = |group: &mut Vec<(f64, f64)>, run: &mut Vec<(f64, f64)>| {
        if group.is_empty() {
            return;
        }
        let lowest = (0..group.len())
            .min_by(|&a, &b| group[a].1.total_cmp(&group[b].1))
            .unwrap_or(0);
        let highest = (0..group.len())
            .max_by(|&a, &b| group[a].1.total_cmp(&group[b].1))
            .unwrap_or(0);
        let mut keep = [0, lowest, highest, group.len() - 1];
        keep.sort_unstable();
        let mut last = None;
        for index in keep {
            if last != Some(index) {
                run.push(group[index]);
                last = Some(index);
            }
        }
        group.clear();
    };
    for (x, y) in points {
        if !x.is_finite() || !y.is_finite() {
            let run = runs.last_mut().expect("runs starts non-empty");
            flush(&mut group, run);
            current = None;
            runs.push(Vec::new());
            continue;
        }
        let here = column(x);
        if current != Some(here) {
            let run = runs.last_mut().expect("runs starts non-empty");
            flush(&mut group, run);
            current = Some(here);
        }
        group.push((x, y));
    }
    let run = runs.last_mut().expect("runs starts non-empty");
    flush(&mut group, run);
    runs.retain(|run| !run.is_empty());
    runs
}

/// A number for an axis label: at most four significant digits, no trailing zeros.
pub fn short_number(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs().log10().floor();
    if !(-3.0..6.0).contains(&magnitude) {
        return format!("{value:.3e}");
    }
    let decimals = (3.0 - magnitude).max(0.0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::{escape, reduce, short_number, value_range, Chart};

    #[test]
    fn reduction_keeps_each_columns_extremes_in_order() {
        // Ten points per column over three columns, a spike in the middle of the second.
        let points: Vec<(f64, f64)> = (0..30)
            .map(|i| (i as f64, if i == 14 { 100.0 } else { (i % 7) as f64 }))
            .collect();
        let runs = reduce(points.clone(), |x| (x / 10.0).floor() as i64);
        assert_eq!(runs.len(), 1);
        let run = &runs[0];
        assert!(run.len() <= 12, "{run:?}");
        // Every column's max and min and its ends survive.
        for column in 0..3 {
            let inside: Vec<_> = points[column * 10..column * 10 + 10].to_vec();
            let max = inside.iter().map(|p| p.1).fold(f64::MIN, f64::max);
            let min = inside.iter().map(|p| p.1).fold(f64::MAX, f64::min);
            let kept: Vec<_> = run
                .iter()
                .filter(|p| (p.0 / 10.0).floor() as usize == column)
                .collect();
            assert!(kept.iter().any(|p| p.1 == max) && kept.iter().any(|p| p.1 == min));
            assert_eq!(kept.first().map(|p| p.0), Some(inside[0].0));
            assert_eq!(kept.last().map(|p| p.0), Some(inside[9].0));
        }
        assert!(run.windows(2).all(|w| w[0].0 < w[1].0), "x order kept");
        assert!(run.contains(&(14.0, 100.0)));
    }

    #[test]
    fn a_missing_value_breaks_the_line() {
        let points = vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0), (3.0, 4.0)];
        let runs = reduce(points, |x| x as i64);
        assert_eq!(runs, vec![vec![(0.0, 1.0)], vec![(2.0, 3.0), (3.0, 4.0)]]);
        assert!(reduce(Vec::new(), |x| x as i64).is_empty());
    }

    #[test]
    fn ranges_widen_flat_and_empty_series() {
        assert_eq!(value_range([2.0, f64::NAN, 5.0]), (2.0, 5.0));
        assert_eq!(value_range([4.0, 4.0]), (2.0, 6.0));
        assert_eq!(value_range([0.0]), (-1.0, 1.0));
        assert_eq!(value_range([f64::NAN]), (0.0, 1.0));
    }

    #[test]
    fn charts_draw_what_they_are_given_inside_their_frame() {
        let mut chart = Chart::new(100.0, 50.0, (0.0, 10.0), (0.0, 1.0));
        chart.band(2.0, 4.0, "orange", "window <1>");
        chart.rule(0.5, "grey");
        chart.marks([3.0, 3.01, 7.0], "red");
        chart.line((0..=10).map(|i| (i as f64, i as f64 / 10.0)), "black");
        let svg = chart.finish();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(
            svg.contains(r#"<rect x="20.0" y="0" width="20.0""#),
            "{svg}"
        );
        assert!(svg.contains("window &lt;1&gt;"));
        assert!(
            svg.contains(r#"y1="25.0""#),
            "the rule sits mid-height: {svg}"
        );
        assert!(svg.contains("M30 0v8M70 0v8"), "two columns marked: {svg}");
        assert!(
            svg.contains("0.0,50.0") && svg.contains("100.0,0.0"),
            "{svg}"
        );
        // Values outside the range are drawn at its edge, not outside the frame.
        let mut chart = Chart::new(10.0, 10.0, (0.0, 1.0), (0.0, 1.0));
        chart.line([(0.0, -5.0), (1.0, 9.0)], "black");
        assert!(chart.finish().contains(r#"points="0.0,10.0 10.0,0.0""#));
        // A range as wide as f64 allows.
        let mut chart = Chart::new(10.0, 10.0, (0.0, 1.0), value_range([-1e308, 1e308]));
        chart.line([(0.0, -1e308), (1.0, 1e308)], "black");
        let svg = chart.finish();
        assert!(
            !svg.contains("NaN") && svg.contains(r#"points="0.0,10.0 10.0,0.0""#),
            "{svg}"
        );
    }

    #[test]
    fn a_lone_point_is_a_dot_a_band_outside_is_not_drawn_an_area_is_a_closed_path() {
        let mut chart = Chart::new(100.0, 10.0, (0.0, 10.0), (0.0, 1.0));
        chart.line([(5.0, 0.5)], "black");
        chart.band(-5.0, -1.0, "orange", "before the data");
        chart.band(11.0, 12.0, "orange", "after the data");
        let svg = chart.finish();
        assert!(svg.contains(r#"<circle cx="50.0" cy="5.0""#), "{svg}");
        assert!(!svg.contains("the data"), "{svg}");
        let mut chart = Chart::new(10.0, 10.0, (0.0, 1.0), (0.0, 1.0));
        chart.area(
            [
                (0.0, 0.2, 0.4),
                (0.02, 0.1, 0.3),
                (1.0, 0.5, 0.9),
                (1.0, f64::NAN, 1.0),
            ],
            "#ddd",
        );
        let svg = chart.finish();
        assert!(
            svg.contains(r##"<path d="M0.0 6.0L0.2 6.0L10.0 1.0L10.0 1.0L10.0 5.0L10.0 5.0L0.2 9.0L0.0 9.0Z" fill="#ddd""##),
            "{svg}"
        );
    }

    #[test]
    fn labels_and_text_are_short_and_escaped() {
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(1.0), "1");
        assert_eq!(short_number(12.345678), "12.35");
        assert_eq!(short_number(-0.5), "-0.5");
        assert_eq!(short_number(1234567.0), "1.235e6");
        assert_eq!(escape(r#"a<b>&"c""#), "a&lt;b&gt;&amp;&quot;c&quot;");
        assert_eq!(
            escape("ctl\u{1}\u{1f}\u{7f}x\té"),
            "ctl\u{FFFD}\u{FFFD}\u{FFFD}x\té"
        );
        assert_eq!(escape("\u{FFFE}\u{FFFF}"), "\u{FFFD}\u{FFFD}");
    }
}
