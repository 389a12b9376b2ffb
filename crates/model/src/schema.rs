//! JSON Schemas (draft 2020-12) of the documents nshelper prints, derived from the types of
//! this crate so that the schema cannot drift from what the code serialises.
//!
//! The schemas describe the serialised form: a field that is always printed, even as
//! `null`, is required, and an object accepts no key the contract does not define, so that
//! a validator catches any drift between a program's expectations and nshelper's output.

use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::transform::{transform_subschemas, Transform};
use schemars::{json_schema, JsonSchema, Schema};
use serde_json::Value;

use crate::{ListDocument, QueryDocument, WhoisDocument};

/// A document that nshelper prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Document {
    /// [`QueryDocument`], printed by `nshelper query`.
    Query,
    /// [`ListDocument`], printed by `nshelper list`.
    List,
    /// [`WhoisDocument`], printed by `nshelper whois`.
    Whois,
}

impl Document {
    /// The schema of this document alone, with every type it uses in `$defs`.
    pub fn schema(self) -> Value {
        let generator = generator();
        let schema = match self {
            Document::Query => generator.into_root_schema_for::<QueryDocument>(),
            Document::List => generator.into_root_schema_for::<ListDocument>(),
            Document::Whois => generator.into_root_schema_for::<WhoisDocument>(),
        };
        schema.to_value()
    }
}

/// One schema that any document nshelper prints validates against: exactly one of the
/// documents, which their distinct keys (`results`, `namespaces`, `matches`) tell apart.
pub fn combined_schema() -> Value {
    let mut generator = generator();
    let documents = [
        generator.subschema_for::<QueryDocument>(),
        generator.subschema_for::<ListDocument>(),
        generator.subschema_for::<WhoisDocument>(),
    ];
    let definitions = generator.take_definitions(true);
    let meta_schema = generator.settings().meta_schema.clone();
    json_schema!({
        "$schema": meta_schema,
        "title": "nshelper",
        "description": "Any JSON document that nshelper prints on stdout: that of query, list or whois.",
        "oneOf": documents,
        "$defs": definitions,
    })
    .to_value()
}

fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .for_serialize()
        .with_transform(OmittedIsNeverNull)
        .into_generator()
}

/// A property that may be absent is an `Option` that is skipped when it is `None`, so it is
/// never printed as `null`; schemars still allows `null` there, which would let a consumer
/// write code for a value nshelper never prints, and would let such a change go unnoticed.
#[derive(Debug, Clone)]
struct OmittedIsNeverNull;

impl Transform for OmittedIsNeverNull {
    fn transform(&mut self, schema: &mut Schema) {
        transform_subschemas(self, schema);
        let Some(object) = schema.as_object_mut() else {
            return;
        };
        let required: Vec<Value> = match object.get("required") {
            Some(Value::Array(required)) => required.clone(),
            _ => Vec::new(),
        };
        let Some(Value::Object(properties)) = object.get_mut("properties") else {
            return;
        };
        for (name, property) in properties.iter_mut() {
            if !required.iter().any(|r| r.as_str() == Some(name.as_str())) {
                remove_null(property);
            }
        }
    }
}

/// Takes `null` out of `"type": [T, "null"]`, or out of `"anyOf": [S, {"type": "null"}]`.
fn remove_null(property: &mut Value) {
    let Some(object) = property.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            object.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(choices)) = object.get_mut("anyOf") {
        choices.retain(|choice| choice.get("type").is_none_or(|t| t != "null"));
        if choices.len() == 1 {
            let Some(Value::Object(only)) = object.remove("anyOf").map(|mut c| c[0].take()) else {
                return;
            };
            object.extend(only);
        }
    }
}

/// The names of the namespace types nshelper can join, as `/proc/PID/ns/` names them: the
/// keys of a result's `namespaces`.
pub const NAMESPACE_TYPES: [&str; 7] = ["user", "net", "uts", "ipc", "cgroup", "pid", "mnt"];

/// A map's schema says only that its values are integers; the keys are namespace type
/// names, which a consumer may rely on.
pub(crate) fn namespace_inodes(generator: &mut SchemaGenerator) -> Schema {
    let inode = u64::json_schema(generator);
    json_schema!({
        "type": "object",
        "propertyNames": {"enum": NAMESPACE_TYPES},
        "additionalProperties": inode,
    })
}
