//! One JSON record of a JSONL stream, read as a [`Value`] that refuses a key given twice in
//! any object. serde_json keeps the last of two equal keys without a word, so
//! `{"value": 0.5, "value": 0.9}` was taken as 0.9, where a CSV header naming a column twice is
//! refused: either copy would be a guess.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `text` as one JSON value; an object (at any depth) with a key given twice is an
/// error naming the key. A number beyond a 64-bit float's range (`1e400`) is read as the string
/// of its digits, which [`huge_number`] recognises: serde_json refuses the whole text for one,
/// even in a key nobody reads, where a bad optional field should cost that field only.
pub fn parse_record(text: &str) -> Result<Value, serde_json::Error> {
    match serde_json::from_str::<Strict>(text) {
        Err(error) if error.to_string().starts_with("number out of range") => {
            match quote_huge_numbers(text) {
                // Another fault of the text stands behind the number's: the first one found,
                // where it is, is as good a reason and its column is right.
                Some(quoted) => serde_json::from_str::<Strict>(&quoted)
                    .map(|strict| strict.0)
                    .map_err(|_| error),
                None => Err(error),
            }
        }
        parsed => parsed.map(|strict| strict.0),
    }
}

/// `text` with every number literal outside a string that a 64-bit float cannot hold put in
/// quotes; `None` where there is none.
fn quote_huge_numbers(text: &str) -> Option<String> {
    let mut quoted = String::with_capacity(text.len() + 8);
    let mut changed = false;
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c == '-' || c.is_ascii_digit() {
            let end = rest
                .find(|c: char| !matches!(c, '0'..='9' | '-' | '+' | '.' | 'e' | 'E'))
                .unwrap_or(rest.len());
            let literal = &rest[..end];
            if literal.parse::<f64>().is_ok_and(f64::is_infinite) {
                quoted.push('"');
                quoted.push_str(literal);
                quoted.push('"');
                changed = true;
            } else {
                quoted.push_str(literal);
            }
            rest = &rest[end..];
            continue;
        }
        quoted.push(c);
        rest = &rest[c.len_utf8()..];
    }
    changed.then_some(quoted)
}

/// The literal of a number too large for a 64-bit float, as [`parse_record`] keeps one (a
/// string of a number literal that overflows); `None` for any other value.
pub fn huge_number(value: &Value) -> Option<&str> {
    let Value::String(text) = value else {
        return None;
    };
    let literal = text.strip_prefix('-').unwrap_or(text);
    let digits = literal.starts_with(|c: char| c.is_ascii_digit())
        && literal
            .chars()
            .all(|c| matches!(c, '0'..='9' | '+' | '-' | '.' | 'e' | 'E'));
    (digits && text.parse::<f64>().is_ok_and(f64::is_infinite)).then_some(text.as_str())
}

/// A [`Value`] whose objects have distinct keys.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Strict, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        // serde_json never yields a non-finite number; were one to come, it is null, as
        // serde_json's own Value makes it.
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Strict::deserialize(deserializer).map(|strict| strict.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "key {key:?} is given twice"
                )));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_serde_json_reads_when_keys_are_distinct() {
        for text in [
            r#"{"time":1,"device":"d","resource":"cpu","value":0.5}"#,
            r#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}],"c":1e300,"d":18446744073709551615}"#,
            "[]",
            "null",
            "\"text\"",
            "-0.0",
        ] {
            let ours = parse_record(text).expect("parses");
            let theirs: Value = serde_json::from_str(text).expect("parses");
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth() {
        for text in [
            r#"{"value":0.5,"value":0.9}"#,
            r#"{"usage":{"cpu":0.1,"cpu":0.2}}"#,
            r#"[{"a":1,"a":1}]"#,
        ] {
            let error = parse_record(text).expect_err(text).to_string();
            assert!(error.contains("is given twice"), "{text}: {error}");
        }
    }

    #[test]
    fn a_number_past_a_float_is_kept_as_its_literal_not_the_whole_text_refused() {
        let record =
            parse_record(r#"{"a":1e400,"b":"1e400 in \"a string\"","c":[-2E+999,0.5],"d":1e-400}"#)
                .expect("parses");
        assert_eq!(huge_number(&record["a"]), Some("1e400"));
        assert_eq!(record["b"], "1e400 in \"a string\"");
        assert_eq!(huge_number(&record["b"]), None);
        assert_eq!(huge_number(&record["c"][0]), Some("-2E+999"));
        assert_eq!(record["c"][1], 0.5);
        // Underflow is serde_json's zero, as before.
        assert_eq!(record["d"], 0.0);
        assert_eq!(huge_number(&Value::from("0.5")), None);
        assert_eq!(huge_number(&Value::from("inf")), None);
        // A text with another fault stays refused, at the number it met first.
        let error = parse_record(r#"{"a":1e400,"b":}"#).expect_err("malformed");
        assert!(
            error.to_string().starts_with("number out of range"),
            "{error}"
        );
        // Keys given twice are still found.
        assert!(parse_record(r#"{"a":1e400,"a":1}"#).is_err());
    }

    #[test]
    fn malformed_json_is_still_an_error() {
        for text in ["{", r#"{"a":}"#, "", "{\"a\":1} x"] {
            assert!(parse_record(text).is_err(), "{text}");
        }
    }
}
