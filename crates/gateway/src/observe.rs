//! Seeing what functions did: the invocation path that measures and records every
//! call ([`run_invocation`]), and the endpoints that show it: `/invocations/:id`,
//! `/functions/:name/invocations`, `/functions/:name/logs` (`?follow=1` streams),
//! `/stats`, `/stats/functions/:name`, `/metrics`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use minifaas_api::{
    FunctionStatsView, InvocationList, InvocationResponse, InvocationView, LogLineView, LogsView,
    PlatformStats,
};
use minifaas_core::{
    Error, FunctionName, InvocationRecord, InvocationStore, InvokeRequest, InvokeResponse, LogLine,
    Result,
};
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, status_of};
use crate::logs::LogBook;
use crate::records::{Recorder, unix_ms};
use crate::stats::{FunctionStats, InFlight, InstanceLabels, Sample, Stats};

/// Everything that watches invocations.
pub struct Observability {
    pub recorder: Recorder,
    pub records: Arc<dyn InvocationStore>,
    pub stats: Stats,
    pub logs: &'static LogBook,
}

/// The response header carrying the invocation id.
pub const INVOCATION_ID: &str = "x-invocation-id";

/// Runs one invocation of `name` through the scheduler, measuring and recording it.
/// Returns its id and the function's response.
pub(crate) async fn run_invocation(
    state: &AppState,
    name: &FunctionName,
    mut request: InvokeRequest,
) -> (String, Result<InvokeResponse>) {
    let observe = &state.observe;
    let id = observe.recorder.next_id();
    request.id = id.clone();
    let started_at = unix_ms();
    let clock = std::time::Instant::now();
    let in_flight = InFlight::new(&observe.stats.in_flight);
    let outcome = state.invoker.invoke(name, request).await;
    drop(in_flight);
    let mut record = InvocationRecord {
        id: id.clone(),
        function: name.to_string(),
        version: 0,
        status: 0,
        started_at,
        duration_ms: 0.0,
        wait_ms: 0.0,
        cold: false,
        init_ms: None,
        instance: None,
        error: None,
        logs: String::new(),
    };
    let (response, run, wait, init) = match outcome {
        Ok(observed) => {
            record.version = observed.version;
            record.instance = Some(observed.instance);
            record.cold = observed.cold;
            record.init_ms = observed.init.map(|d| d.as_secs_f64() * 1000.0);
            (
                observed.response,
                observed.run,
                observed.wait,
                observed.init,
            )
        }
        // Never admitted: it waited all this time.
        Err(err) => (Err(err), Duration::ZERO, clock.elapsed(), None),
    };
    match &response {
        Ok(ok) => record.status = ok.status,
        Err(err) => {
            record.status = status_of(err.kind).as_u16();
            record.error = Some(err.code.to_owned());
        }
    }
    record.duration_ms = run.as_secs_f64() * 1000.0;
    record.wait_ms = wait.as_secs_f64() * 1000.0;
    observe.stats.observe(Sample {
        function: &record.function,
        status: record.status,
        run,
        wait,
        cold: record.cold,
        init,
        at: started_at,
    });
    // Its logs are attached when the record is read or written: a line the readers
    // file a moment after the response still belongs to it.
    observe.recorder.record(record);
    (id, response)
}

/// A record not yet written gets its logs from the book.
pub(crate) fn with_logs(mut record: InvocationRecord, logs: &LogBook) -> InvocationRecord {
    if record.logs.is_empty() {
        record.logs = logs.invocation(&record.id);
    }
    record
}

/// Adds `X-Invocation-Id` to a response.
pub(crate) fn with_invocation_id(mut response: Response, id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(INVOCATION_ID, value);
    }
    response
}

fn view(record: InvocationRecord) -> InvocationView {
    InvocationView {
        id: record.id,
        function: record.function,
        version: record.version,
        status: record.status,
        started_at: record.started_at,
        duration_ms: record.duration_ms,
        wait_ms: record.wait_ms,
        cold: record.cold,
        init_ms: record.init_ms,
        instance: record.instance,
        error: record.error,
        logs: record.logs,
    }
}

pub(crate) async fn invocation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> std::result::Result<Json<InvocationResponse>, ApiError> {
    let found = match state.observe.recorder.recent(&id) {
        Some(record) => Some(with_logs(record, state.observe.logs)),
        None => state.observe.records.invocation(&id).await?,
    };
    let record = found.ok_or_else(|| {
        Error::not_found(format!(
            "no invocation '{id}' (unknown, older than the retention, or records are off)"
        ))
    })?;
    Ok(Json(InvocationResponse {
        ok: true,
        invocation: view(record),
    }))
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    /// An exact status (`502`) or a class (`5` for 5xx).
    status: Option<u16>,
    limit: Option<usize>,
}

fn function_name(name: &str) -> Result<FunctionName> {
    FunctionName::parse(name).map_err(|_| Error::function_not_found())
}

pub(crate) async fn list_invocations(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<ListQuery>,
) -> std::result::Result<Json<InvocationList>, ApiError> {
    let name = function_name(&name)?;
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    let matches = |r: &InvocationRecord| match query.status {
        Some(class) if class < 10 => r.status / 100 == class,
        Some(exact) => r.status == exact,
        None => true,
    };
    // The newest are in memory (some not written yet); older ones in the database.
    let mut records: Vec<InvocationRecord> = state
        .observe
        .recorder
        .recent_of(name.as_str(), usize::MAX)
        .into_iter()
        .filter(|r| matches(r))
        .take(limit)
        .map(|r| with_logs(r, state.observe.logs))
        .collect();
    if records.len() < limit {
        for record in state
            .observe
            .records
            .list_invocations(name.as_str(), query.status, limit)
            .await?
        {
            if !records.iter().any(|r| r.id == record.id) {
                records.push(record);
            }
        }
    }
    records.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
    records.truncate(limit);
    Ok(Json(InvocationList {
        ok: true,
        invocations: records.into_iter().map(view).collect(),
    }))
}

#[derive(Deserialize)]
pub(crate) struct LogsQuery {
    limit: Option<usize>,
    follow: Option<String>,
}

fn line_view(line: LogLine) -> LogLineView {
    LogLineView {
        at: line.at,
        invocation: line.invocation,
        line: line.line,
    }
}

pub(crate) async fn logs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<LogsQuery>,
) -> std::result::Result<Response, ApiError> {
    let name = function_name(&name)?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let follow = matches!(query.follow.as_deref(), Some("1" | "true" | "yes"));
    let recent = state.observe.logs.recent(name.as_str(), limit);
    if !follow {
        return Ok(Json(LogsView {
            ok: true,
            function: name.to_string(),
            lines: recent.into_iter().map(line_view).collect(),
        })
        .into_response());
    }
    // Server-sent events: the recent lines, then each new one as it is printed.
    let receiver = state.observe.logs.follow();
    let function = name.to_string();
    let backlog = futures_util::stream::iter(recent);
    let live = futures_util::stream::unfold(
        (receiver, function),
        |(mut receiver, function)| async move {
            loop {
                match receiver.recv().await {
                    Ok(line) if line.function == function => {
                        return Some((line, (receiver, function)));
                    }
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    use futures_util::StreamExt as _;
    let events = backlog.chain(live).map(|line| {
        let data = serde_json::to_string(&line_view(line)).unwrap_or_default();
        Ok::<Event, Infallible>(Event::default().event("log").data(data))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

pub(crate) async fn platform_stats(
    State(state): State<AppState>,
) -> std::result::Result<Json<PlatformStats>, ApiError> {
    let totals = state.observe.stats.totals();
    let functions = state.store.list_functions().await?.len();
    Ok(Json(PlatformStats {
        ok: true,
        functions,
        instances: state.invoker.instances().len(),
        invocations: totals.invocations,
        errors: totals.errors,
        cold_starts: totals.cold_starts,
        uptime_seconds: totals.uptime.as_secs_f64(),
        records_dropped: state.observe.recorder.dropped(),
    }))
}

pub(crate) async fn function_stats(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> std::result::Result<Json<FunctionStatsView>, ApiError> {
    let name = function_name(&name)?;
    if state.store.get_function(name.as_str()).await?.is_none() {
        return Err(Error::function_not_found().into());
    }
    let instances = state
        .invoker
        .instances()
        .iter()
        .filter(|i| i.function == name.as_str())
        .count();
    let view = |f: &FunctionStats| FunctionStatsView {
        ok: true,
        function: name.to_string(),
        invocations: f.invocations,
        errors: f.errors,
        cold_starts: f.cold_starts,
        p50_ms: f.percentile_ms(0.50),
        p95_ms: f.percentile_ms(0.95),
        p99_ms: f.percentile_ms(0.99),
        mean_ms: f.mean_ms(),
        last_invocation: f.last_invocation,
        instances,
    };
    // A function not invoked since the server started has all-zero statistics.
    let stats = state.observe.stats.function(name.as_str(), view);
    Ok(Json(stats.unwrap_or_else(|| view(&FunctionStats::new()))))
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let stats = &state.observe.stats;
    // Instances are read at scrape time.
    stats.instances.clear();
    for instance in state.invoker.instances() {
        stats
            .instances
            .get_or_create(&InstanceLabels {
                function: instance.function.clone(),
                state: instance.state.as_str().to_owned(),
            })
            .inc();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        stats.encode(),
    )
        .into_response()
}
