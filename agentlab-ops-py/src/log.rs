//! The library's tracing events reach Python's `logging`: target `agentlab_ops::backup::s3`
//! becomes logger `agentlab_ops.backup.s3`, levels map one to one, fields are appended as
//! `key=value`, and every message passes the secret scrubber first. Configure it as any Python
//! logger (`logging.getLogger("agentlab_ops").setLevel(logging.DEBUG)`).

use std::fmt::Write as _;

use pyo3::prelude::*;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

struct PyLogging;

#[derive(Default)]
struct Message {
    message: String,
    fields: String,
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

fn py_level(l: &Level) -> i32 {
    match *l {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

/// Ours down to DEBUG; dependencies' (HTTP, SDK) only from WARN: their debug output is noise.
fn wanted(m: &Metadata<'_>) -> bool {
    if m.target().starts_with("agentlab_ops") {
        *m.level() <= Level::DEBUG
    } else {
        *m.level() <= Level::WARN
    }
}

impl<S: Subscriber> Layer<S> for PyLogging {
    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        wanted(metadata)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !wanted(meta) {
            return;
        }
        let mut msg = Message::default();
        event.record(&mut msg);
        let text = agentlab_ops::secret::redact(&format!("{}{}", msg.message, msg.fields));
        let logger_name = meta.target().replace("::", ".");
        let level = py_level(meta.level());
        Python::attach(|py| {
            let emit = || -> PyResult<()> {
                let logger = py
                    .import("logging")?
                    .call_method1("getLogger", (logger_name,))?;
                if logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
                    logger.call_method1("log", (level, "%s", text))?;
                }
                Ok(())
            };
            // Logging must never break a run.
            let _ = emit();
        });
    }
}

/// Install the bridge as the process's tracing subscriber (unless the host program set one).
pub(crate) fn install(_py: Python<'_>) -> PyResult<()> {
    let subscriber = tracing_subscriber::registry().with(PyLogging);
    let _ = tracing::subscriber::set_global_default(subscriber);
    Ok(())
}
