//! Prometheus' text exposition format 0.0.4, as node_exporter serves it, parsed into samples.
//!
//! The parser is total: any input gives samples and a list of problems, never a panic, because
//! a scrape target is someone else's program. A bad line is reported and skipped; the rest of
//! the page is still used. Accepted: `# HELP`/`# TYPE` lines and other comments, label values
//! with the `\\`, `\"` and `\n` escapes, a trailing comma in a label set, `NaN`, `+Inf`/`-Inf`
//! (any case, as Go's `ParseFloat` takes them), an optional integer timestamp in milliseconds,
//! and `\r\n` line ends.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpositionSample {
    /// The metric name (for histograms and summaries with its `_bucket`/`_sum`/`_count` suffix).
    pub name: String,
    /// Label pairs in the order written.
    pub labels: Vec<(String, String)>,
    /// The value; may be NaN or infinite, as the format allows.
    pub value: f64,
    /// The sample's own timestamp in milliseconds, when the line gives one.
    pub timestamp_ms: Option<i64>,
}

impl ExpositionSample {
    /// The value of the label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label, _)| label == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A line that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub reason: String,
}

/// A parsed page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// The sample lines, in page order.
    pub samples: Vec<ExpositionSample>,
    /// `# TYPE` per metric family (`counter`, `gauge`, ...).
    pub types: BTreeMap<String, String>,
    /// `# HELP` per metric family, unescaped.
    pub help: BTreeMap<String, String>,
    /// Lines that were skipped.
    pub problems: Vec<LineProblem>,
}

impl Exposition {
    /// The samples of one metric.
    pub fn samples_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a ExpositionSample> {
        self.samples
            .iter()
            .filter(move |sample| sample.name == name)
    }
}

/// Parses a whole page. Never panics; every skipped line is in `problems`.
pub fn parse_exposition(text: &str) -> Exposition {
    let mut page = Exposition::default();
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.trim_end_matches([' ', '\t']).is_empty() {
            continue;
        }
        let outcome = match trimmed.strip_prefix('#') {
            Some(comment) => parse_comment(comment, &mut page),
            None => parse_sample(trimmed).map(|sample| page.samples.push(sample)),
        };
        if let Err(reason) = outcome {
            page.problems.push(LineProblem {
                line: index + 1,
                reason,
            });
        }
    }
    page
}

/// `# HELP name text`, `# TYPE name type`, or any other comment (ignored).
fn parse_comment(comment: &str, page: &mut Exposition) -> Result<(), String> {
    let mut cursor = Cursor::new(comment);
    cursor.skip_blanks();
    let keyword = cursor.take_while(|c| !is_blank(c));
    if keyword != "HELP" && keyword != "TYPE" {
        return Ok(());
    }
    cursor.skip_blanks();
    let name = cursor.take_while(|c| !is_blank(c));
    if !is_metric_name(name) {
        return Err(format!("# {keyword}: {name:?} is not a metric name"));
    }
    let _ = cursor.eat(' ') || cursor.eat('\t');
    let rest = cursor.rest();
    if keyword == "HELP" {
        page.help.insert(name.to_string(), unescape_help(rest));
        return Ok(());
    }
    let kind = rest.trim_matches([' ', '\t']);
    if !matches!(
        kind,
        "counter" | "gauge" | "histogram" | "summary" | "untyped"
    ) {
        return Err(format!("# TYPE {name}: unknown type {kind:?}"));
    }
    if page
        .types
        .insert(name.to_string(), kind.to_string())
        .is_some()
    {
        return Err(format!("# TYPE {name}: given twice"));
    }
    Ok(())
}

/// HELP text knows only the `\\` and `\n` escapes; anything else stays as written.
fn unescape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// `name[{labels}] value [timestamp]`.
fn parse_sample(line: &str) -> Result<ExpositionSample, String> {
    let mut cursor = Cursor::new(line);
    let name = cursor.take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if !is_metric_name(name) {
        return Err(format!(
            "expected a metric name at the start of {:?}",
            clip(line)
        ));
    }
    let blanks_after_name = cursor.skip_blanks();
    let (labels, blanks) = if cursor.eat('{') {
        (parse_labels(&mut cursor)?, cursor.skip_blanks())
    } else {
        (Vec::new(), blanks_after_name)
    };
    if blanks == 0 {
        return Err(format!("{name}: expected a blank before the value"));
    }
    let value_text = cursor.take_while(|c| !is_blank(c));
    let value = parse_value(value_text)
        .ok_or_else(|| format!("{name}: bad value {:?}", clip(value_text)))?;
    cursor.skip_blanks();
    let timestamp_text = cursor.take_while(|c| !is_blank(c));
    let timestamp_ms = if timestamp_text.is_empty() {
        None
    } else {
        Some(
            timestamp_text
                .parse::<i64>()
                .map_err(|_| format!("{name}: bad timestamp {:?}", clip(timestamp_text)))?,
        )
    };
    cursor.skip_blanks();
    if !cursor.rest().is_empty() {
        return Err(format!(
            "{name}: unexpected text after the sample: {:?}",
            clip(cursor.rest())
        ));
    }
    Ok(ExpositionSample {
        name: name.to_string(),
        labels,
        value,
        timestamp_ms,
    })
}

/// The label set after its `{`, up to and including the `}`.
fn parse_labels(cursor: &mut Cursor<'_>) -> Result<Vec<(String, String)>, String> {
    let mut labels: Vec<(String, String)> = Vec::new();
    loop {
        cursor.skip_blanks();
        if cursor.eat('}') {
            return Ok(labels);
        }
        let name = cursor.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
        if !is_label_name(name) {
            return Err(format!(
                "expected a label name or '}}' at {:?}",
                clip(cursor.rest())
            ));
        }
        cursor.skip_blanks();
        if !cursor.eat('=') {
            return Err(format!("label {name}: expected '='"));
        }
        cursor.skip_blanks();
        if !cursor.eat('"') {
            return Err(format!("label {name}: the value must be in double quotes"));
        }
        let value =
            parse_label_value(cursor).map_err(|reason| format!("label {name}: {reason}"))?;
        if labels.iter().any(|(existing, _)| existing == name) {
            return Err(format!("label {name} given twice"));
        }
        labels.push((name.to_string(), value));
        cursor.skip_blanks();
        if cursor.eat(',') {
            continue;
        }
        if cursor.eat('}') {
            return Ok(labels);
        }
        return Err(format!("after label {name}: expected ',' or '}}'"));
    }
}

/// A quoted label value after its opening quote, up to and including the closing one.
fn parse_label_value(cursor: &mut Cursor<'_>) -> Result<String, String> {
    let mut value = String::new();
    loop {
        match cursor.next() {
            None => return Err("unterminated value".to_string()),
            Some('"') => return Ok(value),
            Some('\\') => match cursor.next() {
                Some('\\') => value.push('\\'),
                Some('"') => value.push('"'),
                Some('n') => value.push('\n'),
                Some(other) => return Err(format!("invalid escape \\{other}")),
                None => return Err("unterminated value".to_string()),
            },
            Some(c) => value.push(c),
        }
    }
}

/// A float as Go's `ParseFloat` writes and reads them for this format: decimals, exponents,
/// `NaN` and `±Inf` in any case. Rust's parser also takes `infinity`, which is harmless.
fn parse_value(text: &str) -> Option<f64> {
    if text.is_empty() {
        return None;
    }
    match text.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "+inf" | "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => text.parse::<f64>().ok(),
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The start of a long piece of text, for messages (problems must stay small on any input): 60
/// characters, then an ellipsis.
fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    crate::input::clip(text, 60)
}

/// A position in a line; every step is on a char boundary.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Cursor<'a> {
        Cursor { rest: text }
    }

    fn rest(&self) -> &'a str {
        self.rest
    }

    fn next(&mut self) -> Option<char> {
        let mut chars = self.rest.chars();
        let c = chars.next()?;
        self.rest = chars.as_str();
        Some(c)
    }

    fn eat(&mut self, wanted: char) -> bool {
        match self.rest.strip_prefix(wanted) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let end = self
            .rest
            .char_indices()
            .find(|(_, c)| !keep(*c))
            .map_or(self.rest.len(), |(at, _)| at);
        let (taken, rest) = self.rest.split_at(end);
        self.rest = rest;
        taken
    }

    /// Skips blanks; how many.
    fn skip_blanks(&mut self) -> usize {
        self.take_while(is_blank).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> ExpositionSample {
        let page = parse_exposition(line);
        assert!(page.problems.is_empty(), "{line:?}: {:?}", page.problems);
        assert_eq!(page.samples.len(), 1, "{line:?}");
        page.samples[0].clone()
    }

    fn refused(line: &str) -> String {
        let page = parse_exposition(line);
        assert!(
            page.samples.is_empty(),
            "{line:?} parsed: {:?}",
            page.samples
        );
        assert_eq!(page.problems.len(), 1, "{line:?}");
        page.problems[0].reason.clone()
    }

    #[test]
    fn help_type_and_samples() {
        let page = parse_exposition(
            "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n\
             # TYPE node_cpu_seconds_total counter\n\
             node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 5473.12\n\
             # a free comment\n\
             \n\
             go_goroutines 8\n",
        );
        assert!(page.problems.is_empty(), "{:?}", page.problems);
        assert_eq!(page.types["node_cpu_seconds_total"], "counter");
        assert_eq!(
            page.help["node_cpu_seconds_total"],
            "Seconds the CPUs spent in each mode."
        );
        assert_eq!(page.samples.len(), 2);
        assert_eq!(page.samples[0].label("mode"), Some("idle"));
        assert_eq!(page.samples[0].value, 5473.12);
        assert_eq!(page.samples[1].name, "go_goroutines");
        assert!(page.samples[1].labels.is_empty());
    }

    #[test]
    fn label_escapes_and_unicode() {
        let sample = one(r#"m{path="C:\\dir\\x",quote="say \"hi\"",nl="a\nb",u="çà ∑"} 1"#);
        assert_eq!(sample.label("path"), Some(r"C:\dir\x"));
        assert_eq!(sample.label("quote"), Some(r#"say "hi""#));
        assert_eq!(sample.label("nl"), Some("a\nb"));
        assert_eq!(sample.label("u"), Some("çà ∑"));
    }

    #[test]
    fn special_values_timestamps_and_layout() {
        assert!(one("m NaN").value.is_nan());
        assert_eq!(one("m +Inf").value, f64::INFINITY);
        assert_eq!(one("m -Inf").value, f64::NEG_INFINITY);
        assert_eq!(one("m 1e3").value, 1000.0);
        assert_eq!(one("m{} -2.5").value, -2.5);
        assert_eq!(one("m{a=\"1\",} 7").labels, vec![("a".into(), "1".into())]);
        let sample = one("m{ a = \"1\" }\t3 1700000000123\r");
        assert_eq!(sample.timestamp_ms, Some(1_700_000_000_123));
        assert_eq!(sample.value, 3.0);
        assert_eq!(one("  indented:name 1 -5").timestamp_ms, Some(-5));
        assert_eq!(one("m {a=\"b\"} 1").label("a"), Some("b"));
    }

    #[test]
    fn bad_lines_are_reported_and_skipped() {
        for (line, expected) in [
            ("m", "blank before the value"),
            ("m{a=\"1\"}", "blank before the value"),
            ("m abc", "bad value"),
            ("m 1 2.5", "bad timestamp"),
            ("m 1 2 3", "unexpected text"),
            ("m{a=\"1} 2", "unterminated"),
            ("m{a=1} 2", "double quotes"),
            ("m{a=\"\\x\"} 2", "invalid escape"),
            ("m{a=\"1\" b=\"2\"} 3", "expected ',' or '}'"),
            ("m{a=\"1\",a=\"2\"} 3", "given twice"),
            ("m{1a=\"1\"} 3", "label name"),
            ("9m 1", "metric name"),
            ("{} 1", "metric name"),
            ("m{a=\"1\"", "expected ','"),
        ] {
            let reason = refused(line);
            assert!(reason.contains(expected), "{line:?}: {reason}");
        }
        let reason = refused("# TYPE m gauge-ish");
        assert!(reason.contains("unknown type"), "{reason}");
        let page = parse_exposition("# TYPE m gauge\n# TYPE m counter\nm 1\nbad line here\nn 2\n");
        assert_eq!(page.samples.len(), 2);
        let lines: Vec<usize> = page.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 4]);
    }

    #[test]
    fn help_unescapes_only_its_escapes() {
        let page = parse_exposition("# HELP m a\\\\b\\nc \\\"q\\\"\n");
        assert_eq!(page.help["m"], "a\\b\nc \\\"q\\\"");
    }

    #[test]
    fn problems_stay_small_on_huge_lines() {
        let line = format!("m {}", "9".repeat(100_000) + "x");
        let reason = refused(&line);
        assert!(reason.len() < 200, "{}", reason.len());
    }

    /// Every prefix of a page with all the syntax in it, cut at any byte that is a char
    /// boundary, parses without panicking.
    #[test]
    fn every_prefix_parses_without_panic() {
        let page = "# HELP m h\\n\n# TYPE m counter\nm{a=\"x\\\"y\",b=\"é\"} +Inf 12\r\nn NaN\n";
        for end in 0..=page.len() {
            if let Some(prefix) = page.get(..end) {
                let _ = parse_exposition(prefix);
            }
        }
    }
}
