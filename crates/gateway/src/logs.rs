//! What functions print: a bounded in-memory book of recent lines per function, each
//! tagged with the invocation it was printed during, fed by the executors' `tracing`
//! events (target `minifaas::function`) through [`LogLayer`].
//!
//! Invariants: memory is bounded (lines per function, bytes per invocation, invocations
//! remembered); writers never wait on readers (`follow` subscribers that fall behind
//! lose lines, not the server).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};

use minifaas_core::{FUNCTION_OUTPUT_TARGET, LogLine};
use tokio::sync::broadcast;

/// Recent lines kept per function.
const LINES_PER_FUNCTION: usize = 1000;
/// Bytes of log kept per invocation (the record's `logs`).
const BYTES_PER_INVOCATION: usize = 16 * 1024;
/// Invocations whose logs are kept until their record takes them.
const INVOCATIONS_REMEMBERED: usize = 4096;

#[derive(Default)]
struct Book {
    by_function: HashMap<String, VecDeque<LogLine>>,
    by_invocation: HashMap<String, String>,
    invocation_order: VecDeque<String>,
}

pub struct LogBook {
    book: Mutex<Book>,
    live: broadcast::Sender<LogLine>,
}

impl Default for LogBook {
    fn default() -> Self {
        Self {
            book: Mutex::new(Book::default()),
            live: broadcast::channel(1024).0,
        }
    }
}

/// The process's book: the tracing layer writes to it, the gateway reads it.
pub fn log_book() -> &'static LogBook {
    static BOOK: OnceLock<LogBook> = OnceLock::new();
    BOOK.get_or_init(LogBook::default)
}

impl LogBook {
    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn push(&self, line: LogLine) {
        {
            let mut book = self.book();
            if let Some(id) = &line.invocation {
                if !book.by_invocation.contains_key(id) {
                    book.invocation_order.push_back(id.clone());
                    if book.invocation_order.len() > INVOCATIONS_REMEMBERED
                        && let Some(old) = book.invocation_order.pop_front()
                    {
                        book.by_invocation.remove(&old);
                    }
                }
                let text = book.by_invocation.entry(id.clone()).or_default();
                if text.len() < BYTES_PER_INVOCATION {
                    let room = BYTES_PER_INVOCATION - text.len();
                    let mut end = line.line.len().min(room);
                    while !line.line.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.push_str(&line.line[..end]);
                    text.push('\n');
                }
            }
            let lines = book.by_function.entry(line.function.clone()).or_default();
            if lines.len() == LINES_PER_FUNCTION {
                lines.pop_front();
            }
            lines.push_back(line.clone());
        }
        // Nobody following is fine.
        let _ = self.live.send(line);
    }

    /// The logs of one invocation (kept until newer invocations push them out).
    pub fn invocation(&self, id: &str) -> String {
        self.book()
            .by_invocation
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// The newest `limit` lines of a function, oldest first.
    pub fn recent(&self, function: &str, limit: usize) -> Vec<LogLine> {
        let book = self.book();
        match book.by_function.get(function) {
            Some(lines) => lines
                .iter()
                .skip(lines.len().saturating_sub(limit))
                .cloned()
                .collect(),
            None => Vec::new(),
        }
    }

    /// Lines as they are pushed (all functions; the reader filters).
    pub fn follow(&self) -> broadcast::Receiver<LogLine> {
        self.live.subscribe()
    }

    /// Forgets a deleted function's lines.
    pub fn forget(&self, function: &str) {
        self.book().by_function.remove(function);
    }
}

/// A `tracing` layer that files the executors' function-output events in
/// [`log_book`]. Install it with the server's subscriber.
pub struct LogLayer;

#[derive(Default)]
struct LineFields {
    function: Option<String>,
    invocation: Option<String>,
    message: Option<String>,
}

impl tracing::field::Visit for LineFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "function" => self.function = Some(value.to_owned()),
            "invocation" => self.invocation = Some(value.to_owned()),
            "message" => self.message = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = Some(format!("{value:?}")),
            "function" => self.function = Some(format!("{value:?}").trim_matches('"').to_owned()),
            "invocation" => {
                self.invocation = Some(format!("{value:?}").trim_matches('"').to_owned())
            }
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if event.metadata().target() != FUNCTION_OUTPUT_TARGET {
            return;
        }
        let mut fields = LineFields::default();
        event.record(&mut fields);
        let (Some(function), Some(line)) = (fields.function, fields.message) else {
            return;
        };
        log_book().push(LogLine {
            at: crate::records::unix_ms(),
            function,
            invocation: fields.invocation.filter(|i| !i.is_empty()),
            line,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(function: &str, invocation: Option<&str>, text: &str) -> LogLine {
        LogLine {
            at: 1,
            function: function.into(),
            invocation: invocation.map(Into::into),
            line: text.into(),
        }
    }

    #[test]
    fn lines_are_filed_by_function_and_by_invocation() {
        let book = LogBook::default();
        book.push(line("f", Some("i1"), "one"));
        book.push(line("f", Some("i2"), "two"));
        book.push(line("g", None, "other"));
        book.push(line("f", Some("i1"), "three"));
        assert_eq!(book.invocation("i1"), "one\nthree\n");
        assert_eq!(book.invocation("i3"), "");
        let recent: Vec<String> = book.recent("f", 2).into_iter().map(|l| l.line).collect();
        assert_eq!(recent, ["two", "three"]);
        assert_eq!(book.recent("g", 10).len(), 1);
    }

    #[test]
    fn memory_stays_bounded() {
        let book = LogBook::default();
        for i in 0..(LINES_PER_FUNCTION + 10) {
            book.push(line(
                "f",
                Some("big"),
                &format!("line {i} {}", "x".repeat(100)),
            ));
        }
        assert_eq!(book.recent("f", usize::MAX).len(), LINES_PER_FUNCTION);
        assert!(book.invocation("big").len() <= BYTES_PER_INVOCATION + 1);
        for i in 0..(INVOCATIONS_REMEMBERED + 1) {
            book.push(line("g", Some(&format!("i{i}")), "x"));
        }
        assert_eq!(book.invocation("big"), "");
    }
}
