//! Splitting a line of a CSV-like file into its fields, as spreadsheet and pandas exports
//! write them (RFC 4180): a field in double quotes may hold the separator, and a doubled
//! quote inside it stands for one. Every reader of metric and series files takes its fields
//! here, so that `run` and the evaluation commands read one file alike (`"n1"` and `n1` are one
//! device to both).
//!
//! Fields are trimmed of the whitespace around them (not inside quotes). A line with no double
//! quote at all, the usual case, is split in place without allocating; a field is owned only
//! where doubled quotes had to be undone.

use std::borrow::Cow;

/// The fields of one line, in order.
pub(crate) enum Fields<'a> {
    /// No double quote in the line: fields are borrowed from a plain split.
    Plain(std::str::Split<'a, char>),
    /// Read quote by quote up front.
    Quoted(std::vec::IntoIter<Cow<'a, str>>),
}

impl<'a> Iterator for Fields<'a> {
    type Item = Cow<'a, str>;

    fn next(&mut self) -> Option<Cow<'a, str>> {
        match self {
            Fields::Plain(split) => split.next().map(|field| Cow::Borrowed(field.trim())),
            Fields::Quoted(fields) => fields.next(),
        }
    }
}

/// The fields of `text` separated by `separator`, or why the line's quoting is malformed: a
/// quote opened and never closed, or text between a closing quote and the next separator
/// (which no writer of CSV produces, and which would leave the field's value a guess). A
/// double quote inside an unquoted field is kept as it is.
pub(crate) fn split_fields(text: &str, separator: char) -> Result<Fields<'_>, String> {
    if !text.contains('"') {
        return Ok(Fields::Plain(text.split(separator)));
    }
    quoted_fields(text, separator).map(|fields| Fields::Quoted(fields.into_iter()))
}

fn quoted_fields(text: &str, separator: char) -> Result<Vec<Cow<'_, str>>, String> {
    // Whitespace around a field, but never the separator itself (should it be a tab).
    let blank = |c: char| c.is_whitespace() && c != separator;
    let mut fields = Vec::new();
    let mut rest = text;
    loop {
        let start = rest.trim_start_matches(blank);
        let Some(inner) = start.strip_prefix('"') else {
            match start.find(separator) {
                Some(at) => {
                    fields.push(Cow::Borrowed(start[..at].trim()));
                    rest = &start[at + separator.len_utf8()..];
                    continue;
                }
                None => {
                    fields.push(Cow::Borrowed(start.trim()));
                    return Ok(fields);
                }
            }
        };
        let number = fields.len() + 1;
        let (field, after) = unquote(inner)
            .ok_or_else(|| format!("field {number} opens a double quote that is never closed"))?;
        fields.push(field);
        let after = after.trim_start_matches(blank);
        if after.is_empty() {
            return Ok(fields);
        }
        match after.strip_prefix(separator) {
            Some(next) => rest = next,
            None => {
                return Err(format!(
                    "field {number} has text after its closing double quote: {:?}",
                    after.split(separator).next().unwrap_or(after)
                ))
            }
        }
    }
}

/// The value of a quoted field whose opening quote is just before `inner`, and the text after
/// its closing quote; `None` when it is never closed.
fn unquote(inner: &str) -> Option<(Cow<'_, str>, &str)> {
    let mut owned: Option<String> = None;
    let mut from = 0;
    loop {
        let quote = from + inner[from..].find('"')?;
        if inner[quote + 1..].starts_with('"') {
            // A doubled quote: one quote of the value.
            owned
                .get_or_insert_with(String::new)
                .push_str(&inner[from..=quote]);
            from = quote + 2;
            continue;
        }
        let value = match owned {
            Some(mut value) => {
                value.push_str(&inner[from..quote]);
                Cow::Owned(value)
            }
            None => Cow::Borrowed(&inner[..quote]),
        };
        return Some((value, &inner[quote + 1..]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str, separator: char) -> Result<Vec<String>, String> {
        split_fields(text, separator).map(|fields| fields.map(Cow::into_owned).collect())
    }

    #[test]
    fn plain_lines_are_split_and_trimmed() {
        assert_eq!(
            fields(" a , b,,c ", ',').expect("a well-formed line"),
            ["a", "b", "", "c"]
        );
        assert_eq!(fields("", ',').expect("a well-formed line"), [""]);
        assert_eq!(fields("a,", ',').expect("a well-formed line"), ["a", ""]);
        assert_eq!(
            fields("1;\t2", ';').expect("a well-formed line"),
            ["1", "2"]
        );
    }

    #[test]
    fn quoted_fields_keep_separators_and_undo_doubled_quotes() {
        assert_eq!(
            fields(r#"10,"rack 1, node 3",cpu,0.5"#, ',').expect("a well-formed line"),
            ["10", "rack 1, node 3", "cpu", "0.5"]
        );
        assert_eq!(
            fields(r#""say ""hi""", "", x"#, ',').expect("a well-formed line"),
            [r#"say "hi""#, "", "x"]
        );
        assert_eq!(
            fields(r#" "n1" ,"#, ',').expect("a well-formed line"),
            ["n1", ""]
        );
        // Inside the quotes, space is part of the value.
        assert_eq!(
            fields(r#"" n1 ""#, ',').expect("a well-formed line"),
            [" n1 "]
        );
        assert_eq!(fields(r#""""#, ',').expect("a well-formed line"), [""]);
        assert_eq!(
            fields(r#""""""#, ',').expect("a well-formed line"),
            [r#"""#]
        );
        // A quote inside an unquoted field is kept.
        assert_eq!(
            fields(r#"5",x"#, ',').expect("a well-formed line"),
            [r#"5""#, "x"]
        );
        // A tab separator is not taken for the whitespace around a field.
        assert_eq!(
            fields("\"a\"\t\tb", '\t').expect("a well-formed line"),
            ["a", "", "b"]
        );
        assert_eq!(
            fields("\"a\u{e9}\"\u{e9}b", '\u{e9}').expect("a well-formed line"),
            ["a\u{e9}", "b"]
        );
    }

    #[test]
    fn fields_are_borrowed_unless_quotes_were_undone() {
        let all: Vec<Cow<str>> = split_fields(r#"a,"b","c""d""#, ',')
            .expect("a well-formed line")
            .collect();
        assert!(matches!(all[0], Cow::Borrowed("a")));
        assert!(matches!(all[1], Cow::Borrowed("b")));
        assert!(matches!(&all[2], Cow::Owned(value) if value == r#"c"d"#));
    }

    #[test]
    fn malformed_quoting_is_an_error_naming_the_field() {
        let open = fields(r#"10,"n1,cpu,0.5"#, ',').expect_err("a malformed line");
        assert_eq!(open, "field 2 opens a double quote that is never closed");
        let trailing = fields(r#"10,"n1"x,cpu"#, ',').expect_err("a malformed line");
        assert_eq!(
            trailing,
            r#"field 2 has text after its closing double quote: "x""#
        );
        assert!(fields(r#""a""b"#, ',').is_err());
    }

    #[test]
    fn arbitrary_text_never_panics() {
        // Every split of every prefix of awkward text, with multi-byte characters next to the
        // quotes and separators.
        let text = "\"é,\"\"ü\" ,\t\"x\"\"\"\"y;,\"\u{2028}\"\"";
        for end in text.char_indices().map(|(i, _)| i).chain([text.len()]) {
            for separator in [',', ';', '\t', 'é'] {
                let _ = fields(&text[..end], separator);
            }
        }
    }
}
