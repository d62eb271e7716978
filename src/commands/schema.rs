//! `skip-action schema`: the JSON Schema of `skip-action.yml`, derived from the config types
//! ([`crate::config::schema::json_schema`]) so it cannot drift from what the parser accepts.

/// The schema as committed in `schema/skip-action.schema.json` (pretty, with a final newline).
pub fn text() -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(&crate::config::schema::json_schema())? + "\n")
}

pub fn run() -> anyhow::Result<()> {
    print!("{}", text()?);
    Ok(())
}
