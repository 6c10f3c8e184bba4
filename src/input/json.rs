//! One JSON record of a JSONL stream, read as a [`Value`] that refuses a key given twice in
//! any object. serde_json keeps the last of two equal keys without a word, so
//! `{"value": 0.5, "value": 0.9}` was taken as 0.9, where a CSV header naming a column twice is
//! refused: either copy would be a guess.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `text` as one JSON value; an object (at any depth) with a key given twice is an
/// error naming the key.
pub fn parse_record(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<Strict>(text).map(|strict| strict.0)
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
    fn malformed_json_is_still_an_error() {
        for text in ["{", r#"{"a":}"#, "", "{\"a\":1} x"] {
            assert!(parse_record(text).is_err(), "{text}");
        }
    }
}
