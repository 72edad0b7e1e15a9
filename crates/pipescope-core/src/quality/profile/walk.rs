//! One record's values, read straight from its bytes (no tree of the record is built) and
//! staged: they reach the profile's figures only once the whole record parsed, so a record
//! found invalid half-way (cut short, say) leaves nothing behind but its count as invalid.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{Profile, ROOT_PATH};

/// Where a staged value goes: a field's index, or the folded bucket (with its path's hash).
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    Field(usize),
    Folded(u64),
}

/// A value as read, before it is counted.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scalar {
    Null,
    Bool(bool),
    PosInt(u64),
    NegInt(i64),
    Float(f64),
    /// A string, as a range of [`Stage::text`].
    Str {
        start: usize,
        end: usize,
    },
    Array {
        empty: bool,
    },
    Object {
        empty: bool,
    },
}

/// The values of the record being read, and what it added to the profile's field list.
#[derive(Debug, Clone, Default)]
pub(super) struct Stage {
    pub values: Vec<(Target, Scalar)>,
    /// The record's strings, one after the other.
    pub text: String,
    /// Containers whose nesting passed the depth cap.
    pub depth_capped: u64,
    /// Fields created by this record: removed again when it turns out invalid.
    pub fields_before: usize,
    path: String,
}

impl Stage {
    fn begin(&mut self, fields: usize) {
        self.values.clear();
        self.text.clear();
        self.depth_capped = 0;
        self.fields_before = fields;
        self.path.clear();
        self.path.push_str(ROOT_PATH);
    }

    pub fn str(&self, start: usize, end: usize) -> &str {
        &self.text[start..end]
    }
}

impl Profile {
    /// Stages the record in `payload`; `Err` when it is not JSON (nothing staged is kept).
    pub(super) fn stage_bytes(&mut self, payload: &[u8], at: u64) -> serde_json::Result<()> {
        let mut stage = std::mem::take(&mut self.stage);
        stage.begin(self.fields.len());
        let mut path = std::mem::take(&mut stage.path);
        let mut reader = serde_json::Deserializer::from_slice(payload);
        let read = Walk {
            profile: self,
            stage: &mut stage,
            path: &mut path,
            depth: 1,
            root: true,
            skip: false,
            at,
        }
        .deserialize(&mut reader)
        .and_then(|()| reader.end());
        stage.path = path;
        self.stage = stage;
        if read.is_err() {
            self.unstage();
        }
        read
    }

    /// Stages a record parsed already.
    pub(super) fn stage_value(&mut self, value: &Value, at: u64) {
        let mut stage = std::mem::take(&mut self.stage);
        stage.begin(self.fields.len());
        let mut path = std::mem::take(&mut stage.path);
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    path.clear();
                    path.push_str(key);
                    self.stage_tree(&mut stage, &mut path, child, 1, at);
                }
            }
            other => self.stage_tree(&mut stage, &mut path, other, 1, at),
        }
        stage.path = path;
        self.stage = stage;
    }

    fn stage_tree(
        &mut self,
        stage: &mut Stage,
        path: &mut String,
        value: &Value,
        depth: usize,
        at: u64,
    ) {
        let scalar = match value {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => Scalar::PosInt(u),
                (None, Some(i)) => Scalar::NegInt(i),
                _ => Scalar::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => {
                let start = stage.text.len();
                stage.text.push_str(s);
                Scalar::Str {
                    start,
                    end: stage.text.len(),
                }
            }
            Value::Array(items) => Scalar::Array {
                empty: items.is_empty(),
            },
            Value::Object(map) => Scalar::Object {
                empty: map.is_empty(),
            },
        };
        self.stage_one(stage, path, scalar, at);
        let deeper = matches!(
            scalar,
            Scalar::Array { empty: false } | Scalar::Object { empty: false }
        );
        if !deeper {
            return;
        }
        if depth >= self.limits.max_depth {
            stage.depth_capped += 1;
            return;
        }
        let len = path.len();
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    path.push('.');
                    path.push_str(key);
                    self.stage_tree(stage, path, child, depth + 1, at);
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                path.push_str("[]");
                for child in items {
                    self.stage_tree(stage, path, child, depth + 1, at);
                }
                path.truncate(len);
            }
            _ => {}
        }
    }

    /// Stages one value at `path`; returns its place in the stage (to mark a container
    /// non-empty once a child is read).
    fn stage_one(&mut self, stage: &mut Stage, path: &str, scalar: Scalar, at: u64) -> usize {
        let target = match self.field_index(path, at) {
            Some(index) => Target::Field(index),
            None => Target::Folded(super::value_hasher().hash_one(path)),
        };
        stage.values.push((target, scalar));
        stage.values.len() - 1
    }

    /// Forgets the fields the record being staged created.
    fn unstage(&mut self) {
        let before = self.stage.fields_before;
        for (path, _) in self.fields.drain(before..) {
            self.paths.remove(&path);
        }
        self.stage.values.clear();
    }
}

use std::hash::BuildHasher as _;

/// Reads one value at `path` (and what it holds) into the stage.
struct Walk<'a> {
    profile: &'a mut Profile,
    stage: &'a mut Stage,
    path: &'a mut String,
    depth: usize,
    /// The record itself: an object's keys become top-level paths; anything else is `$`.
    root: bool,
    /// Past the depth cap: read (so the parser's own nesting limit still applies, as for a
    /// parse into a tree), not staged.
    skip: bool,
    at: u64,
}

impl Walk<'_> {
    fn scalar<E>(self, scalar: Scalar) -> Result<(), E> {
        if !self.skip {
            self.profile
                .stage_one(self.stage, self.path, scalar, self.at);
        }
        Ok(())
    }

    fn child(&mut self, skip: bool) -> Walk<'_> {
        Walk {
            profile: self.profile,
            stage: self.stage,
            path: self.path,
            depth: self.depth + 1,
            root: false,
            skip: self.skip || skip,
            at: self.at,
        }
    }

    /// Past the depth cap a container's contents are read but not staged.
    fn too_deep(&self) -> bool {
        self.depth >= self.profile.limits.max_depth
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.scalar(Scalar::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.scalar(Scalar::Bool(b))
    }

    fn visit_u64<E>(self, u: u64) -> Result<(), E> {
        self.scalar(Scalar::PosInt(u))
    }

    fn visit_i64<E>(self, i: i64) -> Result<(), E> {
        self.scalar(if i >= 0 {
            Scalar::PosInt(i as u64)
        } else {
            Scalar::NegInt(i)
        })
    }

    fn visit_f64<E>(self, x: f64) -> Result<(), E> {
        self.scalar(Scalar::Float(x))
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        if self.skip {
            return Ok(());
        }
        let start = self.stage.text.len();
        self.stage.text.push_str(s);
        let end = self.stage.text.len();
        self.scalar(Scalar::Str { start, end })
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        if self.skip {
            while seq.next_element_seed(self.child(true))?.is_some() {}
            return Ok(());
        }
        let at = self.stage_container(Scalar::Array { empty: true });
        let too_deep = self.too_deep();
        let len = self.path.len();
        self.path.push_str("[]");
        let mut empty = true;
        while seq.next_element_seed(self.child(too_deep))?.is_some() {
            empty = false;
        }
        self.path.truncate(len);
        self.stage.depth_capped += u64::from(too_deep && !empty);
        self.stage.values[at].1 = Scalar::Array { empty };
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        if self.root {
            // The record's own keys: top-level paths, at depth 1.
            self.depth = 0;
            while map
                .next_key_seed(KeyInto {
                    path: self.path,
                    clear: true,
                })?
                .is_some()
            {
                map.next_value_seed(self.child(false))?;
            }
            return Ok(());
        }
        let at = (!self.skip).then(|| self.stage_container(Scalar::Object { empty: true }));
        let too_deep = self.too_deep();
        let len = self.path.len();
        let mut empty = true;
        loop {
            self.path.push('.');
            if map
                .next_key_seed(KeyInto {
                    path: self.path,
                    clear: false,
                })?
                .is_none()
            {
                break;
            }
            empty = false;
            map.next_value_seed(self.child(too_deep))?;
            self.path.truncate(len);
        }
        self.path.truncate(len);
        if let Some(at) = at {
            self.stage.depth_capped += u64::from(too_deep && !empty);
            self.stage.values[at].1 = Scalar::Object { empty };
        }
        Ok(())
    }
}

impl Walk<'_> {
    /// Stages a container at the path (counted empty until a child is read).
    fn stage_container(&mut self, container: Scalar) -> usize {
        self.profile
            .stage_one(self.stage, self.path, container, self.at)
    }
}

/// Appends an object's key to the path (after clearing it, for the record's own keys).
struct KeyInto<'a> {
    path: &'a mut String,
    clear: bool,
}

impl<'de> DeserializeSeed<'de> for KeyInto<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyInto<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        if self.clear {
            self.path.clear();
        }
        self.path.push_str(key);
        Ok(())
    }
}
