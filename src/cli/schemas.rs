//! `pagesplit schemas`: print the bundled Avro schemas, register them, or check them against the
//! registry's compatibility rules.

use super::args::SchemasCommand;
use crate::config::Config;
use crate::registry::RegistryClient;

/// Runs one schema command.
pub async fn run(config: &Config, command: SchemasCommand) -> anyhow::Result<()> {
    let subjects = crate::app::value_subjects(config);
    match command {
        SchemasCommand::Print => {
            for (subject, schema) in subjects {
                println!("# {subject}\n{schema}");
            }
            Ok(())
        }
        SchemasCommand::Register => register(config, subjects).await,
        SchemasCommand::Check => check(config, subjects).await,
    }
}

/// Registers every schema, setting `registry.compatibility` first when it is set.
async fn register(config: &Config, subjects: Vec<(String, &'static str)>) -> anyhow::Result<()> {
    let client = RegistryClient::new(&config.registry)?;
    let level = Some(config.registry.compatibility.as_str()).filter(|level| !level.is_empty());
    for (subject, schema) in subjects {
        let id = client.register_with_level(&subject, schema, level).await?;
        println!("{subject}: id {id}");
    }
    Ok(())
}

/// Checks every schema; fails when one is incompatible.
async fn check(config: &Config, subjects: Vec<(String, &'static str)>) -> anyhow::Result<()> {
    let client = RegistryClient::new(&config.registry)?;
    let mut incompatible = 0;
    for (subject, schema) in subjects {
        match client.check_compatibility(&subject, schema).await? {
            Ok(()) => println!("{subject}: compatible"),
            Err(messages) => {
                incompatible += 1;
                let reason = if messages.is_empty() {
                    "(the registry gave no reason)".to_owned()
                } else {
                    messages.join("; ")
                };
                println!("{subject}: INCOMPATIBLE {reason}");
            }
        }
    }
    if incompatible > 0 {
        anyhow::bail!("{incompatible} schema(s) incompatible with the registry");
    }
    Ok(())
}
