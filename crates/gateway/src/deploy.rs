//! The deploy pipeline, shared by the seed API and the main API:
//! validate → build → prepare (the executor validates and loads the artifact) →
//! commit (blobs, then the version row) → activate (the new version serves).
//!
//! Nothing is stored unless the build and `prepare` succeeded, and nothing serves that
//! is not stored. Loading at start-up goes through the same `prepare` + `activate`
//! (`minifaas_core::load_stored_version`).

use base64::Engine as _;
use bytes::Bytes;
use minifaas_core::{
    Error, FunctionConfig, FunctionName, FunctionRecord, Lang, NewVersion, PreparedVersion, Result,
    VersionRecord,
};
use serde_json::Value;

use crate::AppState;

/// The default language when a request names none (the Python seed's default).
pub(crate) const DEFAULT_LANG: Lang = Lang::Python;

/// Decodes a source given as `code` (text) or `code_base64` (binary); exactly one.
pub(crate) fn decode_source(
    code: Option<String>,
    code_base64: Option<String>,
) -> Result<Option<Bytes>> {
    match (code, code_base64) {
        (Some(_), Some(_)) => Err(Error::invalid(
            "invalid_code",
            "give the source as either `code` or `code_base64`, not both",
        )),
        (Some(code), None) => Ok(Some(Bytes::from(code))),
        (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map(|b| Some(Bytes::from(b)))
            .map_err(|e| {
                Error::invalid(
                    "invalid_code",
                    format!("code_base64 is not valid base64: {e}"),
                )
            }),
        (None, None) => Ok(None),
    }
}

fn check_source(state: &AppState, source: &Bytes) -> Result<()> {
    if source.is_empty() {
        return Err(Error::invalid(
            "empty_code",
            "the function's source is empty",
        ));
    }
    if source.len() > state.limits.max_source_bytes {
        return Err(Error::too_large(format!(
            "the source is {} bytes, more than the {} byte limit",
            source.len(),
            state.limits.max_source_bytes
        )));
    }
    Ok(())
}

/// Builds and prepares a version; nothing is stored yet.
async fn build_and_prepare(
    state: &AppState,
    name: &FunctionName,
    lang: Lang,
    config: &FunctionConfig,
    source: &Bytes,
) -> Result<(
    minifaas_core::Artifact,
    std::sync::Arc<dyn minifaas_core::PreparedFunction>,
)> {
    let artifact = state.builder.build(lang, source.clone(), config).await?;
    let function = state.invoker.prepare(name, config, &artifact).await?;
    Ok((artifact, function))
}

fn activate(
    state: &AppState,
    function: &FunctionRecord,
    version: &VersionRecord,
    prepared: std::sync::Arc<dyn minifaas_core::PreparedFunction>,
) {
    state.invoker.activate(PreparedVersion {
        name: version.name.clone(),
        id: function.id.clone(),
        version: version.version,
        config: version.config.clone(),
        function: prepared,
    });
}

/// Deploys a new function. `Conflict` if the name is taken.
pub(crate) async fn create(
    state: &AppState,
    raw_name: &str,
    raw_lang: Option<&str>,
    source: Bytes,
    config: &Value,
) -> Result<(FunctionRecord, VersionRecord)> {
    let name = FunctionName::parse(raw_name)?;
    let lang = match raw_lang {
        Some(raw) => Lang::parse(raw)?,
        None => DEFAULT_LANG,
    };
    let config = FunctionConfig::from_json(config)?;
    check_source(state, &source)?;
    // Answer a taken name before paying for a build; the commit checks again.
    if state
        .store
        .get_function(name.as_str())
        .await?
        .is_some_and(|(f, _)| f.name == name)
    {
        return Err(Error::name_taken(name.as_str()));
    }
    let (artifact, prepared) = build_and_prepare(state, &name, lang, &config, &source).await?;
    let (function, version) = state
        .store
        .create_function(
            &name,
            NewVersion {
                lang,
                config,
                source,
                artifact,
            },
        )
        .await?;
    activate(state, &function, &version, prepared);
    tracing::info!(function = %name, lang = %lang, "deployed");
    Ok((function, version))
}

/// Deploys a new version of an existing function: new source and/or config.
pub(crate) async fn update(
    state: &AppState,
    raw_name: &str,
    raw_lang: Option<&str>,
    source: Option<Bytes>,
    config_patch: &Value,
) -> Result<(FunctionRecord, VersionRecord)> {
    let name = FunctionName::parse(raw_name)?;
    let (_, current) = state
        .store
        .get_function(name.as_str())
        .await?
        .filter(|(f, _)| f.name == name)
        .ok_or_else(Error::function_not_found)?;
    let lang = match raw_lang {
        Some(raw) => Lang::parse(raw)?,
        None => current.lang,
    };
    let config = current.config.merged(config_patch)?;
    let source = match source {
        Some(source) => source,
        None => state.store.get_blob(&current.source_sha256).await?,
    };
    check_source(state, &source)?;
    let (artifact, prepared) = build_and_prepare(state, &name, lang, &config, &source).await?;
    let (function, version) = state
        .store
        .add_version(
            &name,
            NewVersion {
                lang,
                config,
                source,
                artifact,
            },
        )
        .await?;
    activate(state, &function, &version, prepared);
    tracing::info!(function = %name, version = version.version, "updated");
    Ok((function, version))
}

/// Deletes a function: it stops serving (requests in flight finish), then its rows and
/// blobs go.
pub(crate) async fn delete(state: &AppState, raw_name: &str) -> Result<FunctionName> {
    let name = FunctionName::parse(raw_name)?;
    state.invoker.remove(&name);
    if !state.store.delete_function(&name).await? {
        return Err(Error::function_not_found());
    }
    // A new function of the same name starts with no history (its records stay until
    // the retention removes them).
    state.observe.stats.forget(name.as_str());
    state.observe.logs.forget(name.as_str());
    tracing::info!(function = %name, "deleted");
    Ok(name)
}
