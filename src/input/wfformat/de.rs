//! Deserializes a WfFormat document straight from the JSON text into compact records, with no
//! `serde_json::Value` tree: strings are interned as they are read, and the lists of parents,
//! children and files go into one shared array.
//!
//! The records keep the document as stated, wrong types included, so that validation (in the
//! parent module) can report every problem, in the same words, as it did when reading a
//! `Value`: a value of the wrong type is kept whole (it is rare and small) to be quoted. Every
//! field of both layouts is read whatever `schemaVersion` says, since JSON does not promise that
//! the version comes first; validation picks the fields its version uses.
//!
//! A repeated key replaces the earlier value, as it did in a `Value` map. Values under keys the
//! reader does not use are still parsed in full, so a document that was invalid JSON (a bad
//! escape, an out-of-range number, invalid UTF-8) anywhere is still refused.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Number, Value};

use super::intern::{Interner, Sym};

/// A value of the expected JSON type, or another (whose problem is named without quoting it).
pub(super) enum Shape<T> {
    Expected(T),
    Other,
}

impl<T> Shape<T> {
    fn other(_: Value) -> Self {
        Shape::Other
    }
}

/// A run of symbols in [`Sink::lists`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Span {
    pub start: u32,
    pub len: u32,
}

impl Span {
    pub(super) fn range(self) -> std::ops::Range<usize> {
        let start = self.start as usize;
        start..start + self.len as usize
    }
}

/// What the records refer to: the interned strings, the shared lists and 1.4's inline files.
#[derive(Default)]
pub(super) struct Sink {
    pub interner: Interner,
    /// The lists of parents, children and files of every task, back to back.
    pub lists: Vec<Sym>,
    /// The inline file entries of every 1.4 task, back to back.
    pub v14_files: Vec<Option<V14File>>,
    /// The strings of the list being read, interned together when it ends.
    pending: PendingStrings,
}

/// Strings held back to be interned as one list (see [`Interner::intern_all`]).
#[derive(Default)]
struct PendingStrings {
    text: String,
    ends: Vec<usize>,
}

impl PendingStrings {
    fn push(&mut self, text: &str) {
        self.text.push_str(text);
        self.ends.push(self.text.len());
    }

    fn iter(&self) -> impl Iterator<Item = &str> + Clone {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| self.text.get(start..end).unwrap_or_default())
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }
}

impl Sink {
    /// Sized for a document of `bytes` bytes. The 100k-task synthetic Montage holds a distinct
    /// string (task id, file name) per ~830 bytes; sizing for one per KiB spares most of the
    /// interner's growth without reserving much it will not use.
    pub(super) fn for_document(bytes: u64) -> Self {
        let strings = usize::try_from(bytes / 1024).unwrap_or(usize::MAX);
        Sink {
            interner: Interner::with_capacity(strings),
            ..Sink::default()
        }
    }

    fn intern<E: de::Error>(&mut self, text: &str) -> Result<Sym, E> {
        self.interner
            .intern(text)
            .ok_or_else(|| E::custom("more than 4294967294 distinct strings"))
    }

    /// Interns the held-back strings, in order, onto [`Sink::lists`].
    fn flush_pending<E: de::Error>(&mut self) -> Result<(), E> {
        let complete = self
            .interner
            .intern_all(self.pending.iter(), &mut self.lists);
        self.pending.clear();
        if complete {
            Ok(())
        } else {
            Err(E::custom("more than 4294967294 distinct strings"))
        }
    }

    pub(super) fn list(&self, span: Span) -> &[Sym] {
        self.lists.get(span.range()).unwrap_or_default()
    }

    fn span<E: de::Error>(start: usize, end: usize) -> Result<Span, E> {
        let too_long = || E::custom("more than 4294967295 list entries");
        let start = u32::try_from(start).map_err(|_| too_long())?;
        let len = u32::try_from(end - start as usize).map_err(|_| too_long())?;
        start.checked_add(len).ok_or_else(too_long)?;
        Ok(Span { start, len })
    }
}

/// The document root.
#[derive(Default)]
pub(super) struct Root {
    pub schema_version: Option<Value>,
    pub workflow: Option<Shape<WorkflowObject>>,
}

/// `workflow`, with the fields of both layouts.
#[derive(Default)]
pub(super) struct WorkflowObject {
    /// 1.4: `workflow.tasks`.
    pub tasks: Option<Shape<Vec<Option<TaskObject>>>>,
    /// 1.4: `workflow.machines`.
    pub machines: Option<Value>,
    /// 1.5 and 1.6.
    pub specification: Option<Shape<Specification>>,
    pub execution: Option<Shape<Execution>>,
}

#[derive(Default)]
pub(super) struct Specification {
    pub tasks: Option<Shape<Vec<Option<TaskObject>>>>,
    pub files: Option<Shape<Vec<Option<FileEntry>>>>,
}

#[derive(Default)]
pub(super) struct Execution {
    pub tasks: Option<Shape<Vec<Option<TaskObject>>>>,
    pub machines: Option<Value>,
}

/// An entry of `workflow.specification.files`.
pub(super) struct FileEntry {
    /// Only when it is a string.
    pub id: Option<Sym>,
    /// Only when it is a number.
    pub size: Option<f64>,
}

/// An inline file of a 1.4 task. Rare enough to keep problems as text.
pub(super) struct V14File {
    pub name: Result<Option<Sym>, String>,
    pub path: Result<Option<Sym>, String>,
    /// Only when it is a number.
    pub size: Option<f64>,
    pub link: Result<Option<Sym>, String>,
}

/// The fields of a task object that any layout uses: a 1.4 task, a 1.5 specification task or
/// a 1.5 execution record.
pub(super) struct TaskObject {
    pub id: Option<Sym>,
    pub name: Option<Sym>,
    pub category: Option<Sym>,
    /// `command.program`, trimmed, when it is one word.
    pub program: Option<Sym>,
    pub parents: Span,
    pub children: Span,
    pub inputs: Span,
    pub outputs: Span,
    /// 1.4's inline files, a run of [`Sink::v14_files`]; `Err` when not an array.
    pub files: Option<Result<Span, ()>>,
    /// augur's `alternatives` extension, as written.
    pub alternatives: Option<serde_json::Value>,
    /// The machine it ran on: the first of a 1.5 execution record's `machines`, or 1.4's
    /// `machine`.
    pub machine: Option<Sym>,
    /// It has a `runtime` key, WfFormat 1.3's name for `runtimeInSeconds`.
    pub legacy_runtime: bool,
    numbers: [f64; NUMBERS],
    present: u8,
    /// Fields whose value had the wrong type, with the problem in words; the field itself is
    /// left empty.
    wrong: Vec<(Field, String)>,
}

/// The task fields that can hold a value of the wrong type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Id,
    Name,
    Category,
    Parents,
    Children,
    InputFiles,
    OutputFiles,
    Machine,
    Number(Quantity),
}

/// The measured quantities of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Quantity {
    Runtime = 0,
    /// 1.4's name for the core count.
    Cores,
    /// 1.5's name for it.
    CoreCount,
    Memory,
    AvgCpu,
    ReadBytes,
    WrittenBytes,
}

const NUMBERS: usize = 7;

impl TaskObject {
    fn new() -> Self {
        TaskObject {
            id: None,
            name: None,
            category: None,
            program: None,
            parents: Span::default(),
            children: Span::default(),
            inputs: Span::default(),
            outputs: Span::default(),
            files: None,
            alternatives: None,
            machine: None,
            legacy_runtime: false,
            numbers: [0.0; NUMBERS],
            present: 0,
            wrong: Vec::new(),
        }
    }

    /// The problem with `field`, if its value had the wrong type.
    pub(super) fn wrong(&self, field: Field) -> Option<&str> {
        self.wrong
            .iter()
            .find(|(wrong, _)| *wrong == field)
            .map(|(_, problem)| problem.as_str())
    }

    /// A string field as the `Value` reader returned it.
    pub(super) fn string(&self, field: Field, value: Option<Sym>) -> Result<Option<Sym>, String> {
        match self.wrong(field) {
            Some(problem) => Err(problem.to_string()),
            None => Ok(value),
        }
    }

    /// A quantity as the `Value` reader returned it.
    pub(super) fn number(&self, quantity: Quantity) -> Result<Option<f64>, String> {
        if let Some(problem) = self.wrong(Field::Number(quantity)) {
            return Err(problem.to_string());
        }
        let index = quantity as usize;
        Ok((self.present & (1 << index) != 0)
            .then(|| self.numbers.get(index).copied())
            .flatten())
    }

    /// A list field as the `Value` reader returned it.
    pub(super) fn list(&self, field: Field, span: Span) -> Result<Span, String> {
        match self.wrong(field) {
            Some(problem) => Err(problem.to_string()),
            None => Ok(span),
        }
    }

    fn forget(&mut self, field: Field) {
        self.wrong.retain(|(wrong, _)| *wrong != field);
    }

    fn set_number(&mut self, quantity: Quantity, value: Option<f64>) {
        let index = quantity as usize;
        match (value, self.numbers.get_mut(index)) {
            (Some(value), Some(slot)) => {
                *slot = value;
                self.present |= 1 << index;
            }
            _ => self.present &= !(1 << index),
        }
    }
}

/// Reads a whole document; the error is the JSON's (syntax, I/O), never its content's.
pub(super) fn document<'de, D: Deserializer<'de>>(
    deserializer: D,
    sink: &mut Sink,
) -> Result<Shape<Root>, D::Error> {
    object::<RootRead>(sink).deserialize(deserializer)
}

/// Reads the JSON types a visitor does not expect into a `Value` handed to `$other`.
macro_rules! keep_other {
    ($other:path => $($shape:ident),+) => { $(keep_other!(@ $other, $shape);)+ };
    (@ $other:path, bool) => {
        fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
            Ok($other(Value::Bool(value)))
        }
    };
    (@ $other:path, null) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($other(Value::Null))
        }
    };
    (@ $other:path, number) => {
        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
            Ok($other(Value::from(value)))
        }
        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
            Ok($other(Value::from(value)))
        }
        fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
            Ok($other(Value::from(value)))
        }
    };
    (@ $other:path, str) => {
        fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
            Ok($other(Value::String(value.to_string())))
        }
    };
    (@ $other:path, seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Value::deserialize(SeqAccessDeserializer::new(seq)).map($other)
        }
    };
    (@ $other:path, map) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Value::deserialize(MapAccessDeserializer::new(map)).map($other)
        }
    };
}

/// Object keys, matched without allocating.
trait KeyName: Sized {
    fn from_name(name: &str) -> Self;
    /// The key's text and its place among the object's known keys; `None` for an unknown key
    /// (skipped, however often it comes).
    fn known(&self) -> Option<(&'static str, u32)>;
}

/// The known keys one object has named so far. serde_json's own maps keep the last of two equal
/// keys without a word (`"runtimeInSeconds"` twice was read as the second), where a CSV header
/// naming a column twice is refused: which copy was meant would be a guess.
#[derive(Default)]
struct SeenKeys(u64);

impl SeenKeys {
    fn check<K: KeyName, E: de::Error>(&mut self, key: &K) -> Result<(), E> {
        let Some((text, at)) = key.known() else {
            return Ok(());
        };
        let bit = 1u64 << at;
        if self.0 & bit != 0 {
            return Err(E::custom(format!(
                "key {text:?} is given twice in one object"
            )));
        }
        self.0 |= bit;
        Ok(())
    }
}

struct Key<K>(K);

impl<'de, K: KeyName> Deserialize<'de> for Key<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor<K>(PhantomData<K>);
        impl<K: KeyName> Visitor<'_> for KeyVisitor<K> {
            type Value = Key<K>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(Key(K::from_name(name)))
            }
        }
        deserializer.deserialize_str(KeyVisitor(PhantomData))
    }
}

/// Any JSON value, parsed in full (as a `Value` would be, so invalid JSON is still refused)
/// and dropped.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
}

fn skip_value<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<Skip>().map(|_| ())
}

/// A string (interned), a number or any other value.
enum Scalar {
    Str(Sym),
    Number(Number),
    Other(Value),
}

struct ScalarSeed<'s> {
    sink: &'s mut Sink,
}

impl<'de> DeserializeSeed<'de> for ScalarSeed<'_> {
    type Value = Scalar;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed<'_> {
    type Value = Scalar;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<Scalar, E> {
        self.sink.intern(value).map(Scalar::Str)
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Scalar, E> {
        Ok(Scalar::Number(Number::from(value)))
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Scalar, E> {
        Ok(Scalar::Number(Number::from(value)))
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Scalar, E> {
        Ok(Number::from_f64(value).map_or(Scalar::Other(Value::Null), Scalar::Number))
    }
    keep_other!(Scalar::Other => bool, null, seq, map);
}

impl Scalar {
    /// The value as a `Value`, to quote it.
    fn quoted(self, sink: &Sink) -> Value {
        match self {
            Scalar::Str(sym) => Value::String(sink.interner.get(sym).to_string()),
            Scalar::Number(number) => Value::Number(number),
            Scalar::Other(value) => value,
        }
    }
}

/// A string field: `Ok(None)` when null.
fn string_value(key: &str, scalar: Scalar, sink: &Sink) -> Result<Option<Sym>, String> {
    match scalar {
        Scalar::Str(sym) => Ok(Some(sym)),
        Scalar::Other(Value::Null) => Ok(None),
        other => Err(format!("{key} {} is not a string", other.quoted(sink))),
    }
}

/// A number field: `Ok(None)` when null.
fn number_value(key: &str, scalar: Scalar, sink: &Sink) -> Result<Option<f64>, String> {
    match scalar {
        Scalar::Number(number) => number
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("{key} {number} is not representable")),
        Scalar::Other(Value::Null) => Ok(None),
        other => Err(format!("{key} {} is not a number", other.quoted(sink))),
    }
}

/// One entry of a list: a string is held back in [`Sink::pending`] (`None`); any other value
/// is returned, to be reported.
struct ListItemSeed<'s> {
    pending: &'s mut PendingStrings,
}

impl<'de> DeserializeSeed<'de> for ListItemSeed<'_> {
    type Value = Option<Scalar>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListItemSeed<'_> {
    type Value = Option<Scalar>;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        self.pending.push(value);
        Ok(None)
    }
    keep_other!(not_a_string => bool, null, number, seq, map);
}

/// A list entry that is not a string, kept to be quoted in the report.
fn not_a_string(value: Value) -> Option<Scalar> {
    Some(Scalar::Other(value))
}

/// A list of strings, appended to [`Sink::lists`]; the error names the field.
struct ListSeed<'s> {
    key: &'static str,
    sink: &'s mut Sink,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
    type Value = Result<Span, String>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = Result<Span, String>;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an array of strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let start = self.sink.lists.len();
        let mut problem = None;
        self.sink.pending.clear();
        while let Some(item) = seq.next_element_seed(ListItemSeed {
            pending: &mut self.sink.pending,
        })? {
            match item {
                None => {}
                Some(other) if problem.is_none() => {
                    let item = other.quoted(self.sink);
                    problem = Some(format!("{} holds {item}, which is not a string", self.key));
                }
                Some(_) => {}
            }
        }
        self.sink.flush_pending::<A::Error>()?;
        match problem {
            Some(problem) => Ok(Err(problem)),
            None => Sink::span(start, self.sink.lists.len()).map(Ok),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(Span::default()))
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Err(format!(
            "{} {} is not an array",
            self.key,
            Value::String(value.to_string())
        )))
    }
    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        Ok(Err(format!("{} {value} is not an array", self.key)))
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Err(format!("{} {value} is not an array", self.key)))
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Err(format!("{} {value} is not an array", self.key)))
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        Ok(Err(format!(
            "{} {} is not an array",
            self.key,
            Value::from(value)
        )))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let value = Value::deserialize(MapAccessDeserializer::new(map))?;
        Ok(Err(format!("{} {value} is not an array", self.key)))
    }
}

/// Reads the fields of one kind of object.
trait ObjectRead {
    type Out;
    fn read<'de, A: MapAccess<'de>>(sink: &mut Sink, map: A) -> Result<Self::Out, A::Error>;
}

/// An object; any other value is kept as a `Value`.
struct ObjectSeed<'s, R> {
    sink: &'s mut Sink,
    read: PhantomData<R>,
}

fn object<R>(sink: &mut Sink) -> ObjectSeed<'_, R> {
    ObjectSeed {
        sink,
        read: PhantomData,
    }
}

impl<'de, R: ObjectRead> DeserializeSeed<'de> for ObjectSeed<'_, R> {
    type Value = Shape<R::Out>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, R: ObjectRead> Visitor<'de> for ObjectSeed<'_, R> {
    type Value = Shape<R::Out>;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        R::read(self.sink, map).map(Shape::Expected)
    }
    keep_other!(Shape::other => bool, null, number, str, seq);
}

/// An array of objects; an item that is not an object becomes `None`, and anything but an
/// array is kept as a `Value`.
struct ArraySeed<'s, R> {
    sink: &'s mut Sink,
    read: PhantomData<R>,
}

fn array<R>(sink: &mut Sink) -> ArraySeed<'_, R> {
    ArraySeed {
        sink,
        read: PhantomData,
    }
}

impl<'de, R: ObjectRead> DeserializeSeed<'de> for ArraySeed<'_, R> {
    type Value = Shape<Vec<Option<R::Out>>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, R: ObjectRead> Visitor<'de> for ArraySeed<'_, R> {
    type Value = Shape<Vec<Option<R::Out>>>;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(object::<R>(&mut *self.sink))? {
            items.push(match item {
                Shape::Expected(item) => Some(item),
                Shape::Other => None,
            });
        }
        Ok(Shape::Expected(items))
    }
    keep_other!(Shape::other => bool, null, number, str, map);
}

/// Declares an object's keys; any other key is `Other` and its value is skipped.
macro_rules! keys {
    ($name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        #[derive(Clone, Copy)]
        enum $name { $($variant,)+ Other }
        impl KeyName for $name {
            fn from_name(name: &str) -> Self {
                match name {
                    $($text => $name::$variant,)+
                    _ => $name::Other,
                }
            }
            fn known(&self) -> Option<(&'static str, u32)> {
                match self {
                    $($name::$variant => Some(($text, *self as u32)),)+
                    $name::Other => None,
                }
            }
        }
    };
}

keys!(RootKey {
    SchemaVersion = "schemaVersion",
    Workflow = "workflow",
});

struct RootRead;

impl ObjectRead for RootRead {
    type Out = Root;
    fn read<'de, A: MapAccess<'de>>(sink: &mut Sink, mut map: A) -> Result<Root, A::Error> {
        let mut root = Root::default();
        let mut seen = SeenKeys::default();
        while let Some(Key(key)) = map.next_key::<Key<RootKey>>()? {
            seen.check::<_, A::Error>(&key)?;
            match key {
                RootKey::SchemaVersion => root.schema_version = Some(map.next_value()?),
                RootKey::Workflow => {
                    root.workflow = Some(map.next_value_seed(object::<WorkflowRead>(sink))?)
                }
                RootKey::Other => skip_value(&mut map)?,
            }
        }
        Ok(root)
    }
}

keys!(WorkflowKey {
    Tasks = "tasks",
    Machines = "machines",
    Specification = "specification",
    Execution = "execution",
});

struct WorkflowRead;

impl ObjectRead for WorkflowRead {
    type Out = WorkflowObject;
    fn read<'de, A: MapAccess<'de>>(
        sink: &mut Sink,
        mut map: A,
    ) -> Result<WorkflowObject, A::Error> {
        let mut workflow = WorkflowObject::default();
        let mut seen = SeenKeys::default();
        while let Some(Key(key)) = map.next_key::<Key<WorkflowKey>>()? {
            seen.check::<_, A::Error>(&key)?;
            match key {
                WorkflowKey::Tasks => {
                    workflow.tasks = Some(map.next_value_seed(array::<TaskRead>(sink))?)
                }
                WorkflowKey::Machines => workflow.machines = Some(map.next_value()?),
                WorkflowKey::Specification => {
                    workflow.specification =
                        Some(map.next_value_seed(object::<SpecificationRead>(sink))?)
                }
                WorkflowKey::Execution => {
                    workflow.execution = Some(map.next_value_seed(object::<ExecutionRead>(sink))?)
                }
                WorkflowKey::Other => skip_value(&mut map)?,
            }
        }
        Ok(workflow)
    }
}

keys!(SpecificationKey {
    Tasks = "tasks",
    Files = "files",
});

struct SpecificationRead;

impl ObjectRead for SpecificationRead {
    type Out = Specification;
    fn read<'de, A: MapAccess<'de>>(
        sink: &mut Sink,
        mut map: A,
    ) -> Result<Specification, A::Error> {
        let mut specification = Specification::default();
        let mut seen = SeenKeys::default();
        while let Some(Key(key)) = map.next_key::<Key<SpecificationKey>>()? {
            seen.check::<_, A::Error>(&key)?;
            match key {
                SpecificationKey::Tasks => {
                    specification.tasks = Some(map.next_value_seed(array::<TaskRead>(sink))?)
                }
                SpecificationKey::Files => {
                    specification.files = Some(map.next_value_seed(array::<FileEntryRead>(sink))?)
                }
                SpecificationKey::Other => skip_value(&mut map)?,
            }
        }
        Ok(specification)
    }
}

keys!(ExecutionKey {
    Tasks = "tasks",
    Machines = "machines",
});

struct ExecutionRead;

impl ObjectRead for ExecutionRead {
    type Out = Execution;
    fn read<'de, A: MapAccess<'de>>(sink: &mut Sink, mut map: A) -> Result<Execution, A::Error> {
        let mut execution = Execution::default();
        let mut seen = SeenKeys::default();
        while let Some(Key(key)) = map.next_key::<Key<ExecutionKey>>()? {
            seen.check::<_, A::Error>(&key)?;
            match key {
                ExecutionKey::Tasks => {
                    execution.tasks = Some(map.next_value_seed(array::<TaskRead>(sink))?)
                }
                ExecutionKey::Machines => execution.machines = Some(map.next_value()?),
                ExecutionKey::Other => skip_value(&mut map)?,
            }
        }
        Ok(execution)
    }
}

keys!(FileKey {
    Id = "id",
    Name = "name",
    Path = "path",
    Size = "sizeInBytes",
    Link = "link",
});

/// The size of a file: `None` unless it is a number.
fn file_size(scalar: Scalar) -> Option<f64> {
    match scalar {
        Scalar::Number(number) => number.as_f64(),
        _ => None,
    }
}

/// An entry of the 1.5 file table.
struct FileEntryRead;

impl ObjectRead for FileEntryRead {
    type Out = FileEntry;
    fn read<'de, A: MapAccess<'de>>(sink: &mut Sink, mut map: A) -> Result<FileEntry, A::Error> {
        let mut entry = FileEntry {
            id: None,
            size: None,
        };
        let mut seen = SeenKeys::default();
        while let Some(Key(key)) = map.next_key::<Key<FileKey>>()? {
            seen.check::<_, A::Error>(&key)?;
            match key {
                FileKey::Id => {
                    entry.id = match map.next_value_seed(ScalarSeed { sink: &mut *sink })? {
                        Scalar::Str(sym) => Some(sym),
                        _ => None,
                    }
                }
                FileKey::Size => {
                    entry.size = file_size(map.next_value_seed(ScalarSeed { sink: &mut *sink })?)
                }
                _ => skip_value(&mut map)?,
            }
        }
        Ok(entry)
    }
}

/// An inline file of a 1.4 task.
struct V14FileRead;

impl ObjectRead for V14FileRead {
    type Out = V14File;
    fn read<'de, A: MapAccess<'de>>(sink: &mut Sink, mut map: A) -> Result<V14File, A::Error> {
        let mut file = V14File {
            name: Ok(None),
            path: Ok(None),
            size: None,
            link: Ok(None),
        };
        let mut seen = SeenKeys::default();
        while let Some(Key(key)) = map.next_key::<Key<FileKey>>()? {
            seen.check::<_, A::Error>(&key)?;
            let slot = match key {
                FileKey::Name => (&mut file.name, "name"),
                FileKey::Path => (&mut file.path, "path"),
                FileKey::Link => (&mut file.link, "link"),
                FileKey::Size => {
                    file.size = file_size(map.next_value_seed(ScalarSeed { sink: &mut *sink })?);
                    continue;
                }
                FileKey::Id | FileKey::Other => {
                    skip_value(&mut map)?;
                    continue;
                }
            };
            let scalar = map.next_value_seed(ScalarSeed { sink: &mut *sink })?;
            *slot.0 = string_value(slot.1, scalar, sink);
        }
        Ok(file)
    }
}

/// 1.4's `files`: a run of [`Sink::v14_files`], or `Err` when it is not an array.
struct V14FilesSeed<'s> {
    sink: &'s mut Sink,
}

impl<'de> DeserializeSeed<'de> for V14FilesSeed<'_> {
    type Value = Result<Span, ()>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for V14FilesSeed<'_> {
    type Value = Result<Span, ()>;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an array of files")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut files = Vec::new();
        while let Some(file) = seq.next_element_seed(object::<V14FileRead>(&mut *self.sink))? {
            files.push(match file {
                Shape::Expected(file) => Some(file),
                Shape::Other => None,
            });
        }
        let start = self.sink.v14_files.len();
        self.sink.v14_files.extend(files);
        Sink::span(start, self.sink.v14_files.len()).map(Ok)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Err(()))
    }
}

keys!(CommandKey { Program = "program" });

/// `command.program`, trimmed, when it is one word; `None` for anything else. Nextflow puts a
/// whole script there, which is not worth interning.
struct ProgramRead;

impl ObjectRead for ProgramRead {
    type Out = Option<Sym>;
    fn read<'de, A: MapAccess<'de>>(sink: &mut Sink, mut map: A) -> Result<Option<Sym>, A::Error> {
        let mut program = None;
        let mut seen = SeenKeys::default();
        while let Some(Key(key)) = map.next_key::<Key<CommandKey>>()? {
            seen.check::<_, A::Error>(&key)?;
            match key {
                CommandKey::Program => {
                    program = map.next_value_seed(ProgramSeed { sink: &mut *sink })?
                }
                CommandKey::Other => skip_value(&mut map)?,
            }
        }
        Ok(program)
    }
}

struct ProgramSeed<'s> {
    sink: &'s mut Sink,
}

impl<'de> DeserializeSeed<'de> for ProgramSeed<'_> {
    type Value = Option<Sym>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ProgramSeed<'_> {
    type Value = Option<Sym>;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        let program = value.trim();
        if super::is_single_word(program) {
            self.sink.intern(program).map(Some)
        } else {
            Ok(None)
        }
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        SkipVisitor.visit_seq(seq).map(|_| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        SkipVisitor.visit_map(map).map(|_| None)
    }
}

keys!(TaskKey {
    Id = "id",
    Name = "name",
    Category = "category",
    Parents = "parents",
    Children = "children",
    InputFiles = "inputFiles",
    OutputFiles = "outputFiles",
    Files = "files",
    Command = "command",
    Runtime = "runtimeInSeconds",
    Cores = "cores",
    CoreCount = "coreCount",
    Memory = "memoryInBytes",
    AvgCpu = "avgCPU",
    ReadBytes = "readBytes",
    WrittenBytes = "writtenBytes",
    Alternatives = "alternatives",
    Machine = "machine",
    Machines = "machines",
    LegacyRuntime = "runtime",
});

/// A task object of any layout.
struct TaskRead;

impl ObjectRead for TaskRead {
    type Out = TaskObject;
    fn read<'de, A: MapAccess<'de>>(sink: &mut Sink, mut map: A) -> Result<TaskObject, A::Error> {
        let mut task = TaskObject::new();
        let mut seen = SeenKeys::default();
        while let Some(Key(key)) = map.next_key::<Key<TaskKey>>()? {
            seen.check::<_, A::Error>(&key)?;
            let (field, name) = match key {
                TaskKey::Id => (Field::Id, "id"),
                TaskKey::Name => (Field::Name, "name"),
                TaskKey::Category => (Field::Category, "category"),
                TaskKey::Parents => (Field::Parents, "parents"),
                TaskKey::Children => (Field::Children, "children"),
                TaskKey::InputFiles => (Field::InputFiles, "inputFiles"),
                TaskKey::OutputFiles => (Field::OutputFiles, "outputFiles"),
                TaskKey::Runtime => (Field::Number(Quantity::Runtime), "runtimeInSeconds"),
                TaskKey::Cores => (Field::Number(Quantity::Cores), "cores"),
                TaskKey::CoreCount => (Field::Number(Quantity::CoreCount), "coreCount"),
                TaskKey::Memory => (Field::Number(Quantity::Memory), "memoryInBytes"),
                TaskKey::AvgCpu => (Field::Number(Quantity::AvgCpu), "avgCPU"),
                TaskKey::ReadBytes => (Field::Number(Quantity::ReadBytes), "readBytes"),
                TaskKey::WrittenBytes => (Field::Number(Quantity::WrittenBytes), "writtenBytes"),
                TaskKey::Files => {
                    task.files = Some(map.next_value_seed(V14FilesSeed { sink: &mut *sink })?);
                    continue;
                }
                TaskKey::Command => {
                    task.program = match map.next_value_seed(object::<ProgramRead>(sink))? {
                        Shape::Expected(program) => program,
                        Shape::Other => None,
                    };
                    continue;
                }
                TaskKey::Alternatives => {
                    // augur's extension: equivalent variants of the task, few and small, so
                    // read whole and checked with the rest of the task.
                    task.alternatives = Some(map.next_value::<serde_json::Value>()?);
                    continue;
                }
                TaskKey::Machine => {
                    // 1.4: the name of the machine it ran on.
                    task.forget(Field::Machine);
                    let scalar = map.next_value_seed(ScalarSeed { sink: &mut *sink })?;
                    match string_value("machine", scalar, sink) {
                        Ok(machine) => task.machine = machine,
                        Err(problem) => task.wrong.push((Field::Machine, problem)),
                    }
                    continue;
                }
                TaskKey::Machines => {
                    // 1.5: the machines it ran on (one in every instance seen); the first
                    // stands for its clock.
                    task.forget(Field::Machine);
                    // The names land at the end of the shared lists, and only the first is
                    // kept: they go again once read. (A null is an empty span at 0, which
                    // must not be taken for a place in the lists.)
                    let start = sink.lists.len();
                    let span = map.next_value_seed(ListSeed {
                        key: "machines",
                        sink: &mut *sink,
                    })?;
                    task.machine = None;
                    match span {
                        Ok(span) if span.len > 0 => task.machine = sink.lists.get(start).copied(),
                        Ok(_) => {}
                        Err(problem) => task.wrong.push((Field::Machine, problem)),
                    }
                    sink.lists.truncate(start);
                    continue;
                }
                TaskKey::LegacyRuntime => {
                    task.legacy_runtime = true;
                    skip_value(&mut map)?;
                    continue;
                }
                TaskKey::Other => {
                    skip_value(&mut map)?;
                    continue;
                }
            };
            task.forget(field);
            let problem = match field {
                Field::Id | Field::Name | Field::Category => {
                    let scalar = map.next_value_seed(ScalarSeed { sink: &mut *sink })?;
                    let value = string_value(name, scalar, sink);
                    let slot = match field {
                        Field::Id => &mut task.id,
                        Field::Name => &mut task.name,
                        _ => &mut task.category,
                    };
                    *slot = value.as_ref().ok().copied().flatten();
                    value.err()
                }
                Field::Parents | Field::Children | Field::InputFiles | Field::OutputFiles => {
                    let span = map.next_value_seed(ListSeed {
                        key: name,
                        sink: &mut *sink,
                    })?;
                    let slot = match field {
                        Field::Parents => &mut task.parents,
                        Field::Children => &mut task.children,
                        Field::InputFiles => &mut task.inputs,
                        _ => &mut task.outputs,
                    };
                    *slot = span.as_ref().ok().copied().unwrap_or_default();
                    span.err()
                }
                // Read above, as are its keys.
                Field::Machine => {
                    skip_value(&mut map)?;
                    None
                }
                Field::Number(quantity) => {
                    let scalar = map.next_value_seed(ScalarSeed { sink: &mut *sink })?;
                    let value = number_value(name, scalar, sink);
                    task.set_number(quantity, value.as_ref().ok().copied().flatten());
                    value.err()
                }
            };
            if let Some(problem) = problem {
                task.wrong.push((field, problem));
            }
        }
        Ok(task)
    }
}

impl Sink {
    /// Appends a list built after reading (1.4's inputs and outputs).
    pub(super) fn push_list(&mut self, items: &[Sym]) -> Result<Span, String> {
        let start = self.lists.len();
        self.lists.extend_from_slice(items);
        Sink::span::<serde_json::Error>(start, self.lists.len()).map_err(|error| error.to_string())
    }
}
