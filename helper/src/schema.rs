//! `nshelper schema`: the JSON Schemas of the documents, from the model's types.

use nshelper_model::schema::{combined_schema, Document};
use serde_json::Value;

use crate::cli::SchemaDocument;

/// The schema `nshelper schema [DOCUMENT]` prints.
pub fn print(document: Option<SchemaDocument>) -> Value {
    match document {
        None => combined_schema(),
        Some(SchemaDocument::Query) => Document::Query.schema(),
        Some(SchemaDocument::List) => Document::List.schema(),
        Some(SchemaDocument::Whois) => Document::Whois.schema(),
    }
}

#[cfg(test)]
mod tests {
    use nshelper_model::schema::NAMESPACE_TYPES;
    use nshelper_namespaces::NsType;

    #[test]
    fn the_schema_names_every_namespace_type_the_helper_can_join() {
        let mut joinable: Vec<&str> = NsType::ALL.iter().map(|kind| kind.name()).collect();
        let mut named = NAMESPACE_TYPES.to_vec();
        joinable.sort_unstable();
        named.sort_unstable();
        assert_eq!(joinable, named);
    }
}
