//! Lists stored as JSON text arrays of strings.

use tessera_core::store::StoreError;

/// Encodes strings as a JSON array.
pub(crate) fn encode<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<String, StoreError> {
    let items: Vec<&str> = items.into_iter().collect();
    serde_json::to_string(&items).map_err(|e| StoreError::Backend(Box::new(e)))
}

/// Decodes a JSON array of strings and parses each with `parse`; errors name the column.
pub(crate) fn decode<T, E: std::fmt::Display>(
    table: &str,
    column: &str,
    row: &str,
    raw: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Vec<T>, StoreError> {
    let items: Vec<String> =
        serde_json::from_str(raw).map_err(|e| crate::corrupt(table, column, row, e))?;
    items
        .iter()
        .map(|item| {
            parse(item).map_err(|e| crate::corrupt(table, column, row, format!("`{item}`: {e}")))
        })
        .collect()
}
